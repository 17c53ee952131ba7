//! Plain statements of what each answer proved, for people reading `yrd verify` output.

use std::fmt;

use yrd_proto::signing::sha256;

use crate::answers::{
    Proven, ProvenHeaders, ProvenHistory, ProvenState, ProvenValidatorSet, ProvenVersion,
};
use crate::header::ProvenHeader;
use crate::render::{hex, key, short};

fn value(value: &[u8]) -> String {
    format!("{} bytes, sha256 {}", value.len(), short(&sha256(value)))
}

impl fmt::Display for ProvenHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "block {} at height {} (time {} ms) certified by {} of {} validators",
            short(&self.block_hash),
            self.header.height,
            self.header.time_ms,
            self.signers,
            self.validators
        )
    }
}

impl fmt::Display for ProvenState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "key {} has value ({})", key(&self.key), value(v))?,
            None => write!(f, "key {} has no value", key(&self.key))?,
        }
        write!(
            f,
            " at height {}, in block {} certified by {} of {} validators",
            self.header.header.height,
            short(&self.header.block_hash),
            self.header.signers,
            self.header.validators
        )
    }
}

impl fmt::Display for ProvenVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "version {}: ", self.index)?;
        if self.deleted {
            write!(f, "deleted")?;
        } else {
            write!(f, "value ({})", value(&self.value))?;
        }
        write!(
            f,
            ", by transaction {} (#{} of block {} at height {}, time {} ms) signed by {}",
            short(&self.tx_hash),
            self.tx_index,
            short(&self.block_hash),
            self.height,
            self.block_time_ms,
            self.signers
                .iter()
                .map(|k| hex(k))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

impl fmt::Display for ProvenHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let height = self.header.header.height;
        write!(
            f,
            "key {} at height {}: {} version{}",
            key(&self.key),
            height,
            self.version_count,
            if self.version_count == 1 { "" } else { "s" }
        )?;
        match (self.versions.first(), self.versions.last()) {
            (Some(first), Some(last)) => {
                write!(
                    f,
                    ", {} shown ({} to {})",
                    self.versions.len(),
                    first.index,
                    last.index
                )?;
            }
            _ => write!(f, ", none shown")?,
        }
        if self.complete {
            write!(f, ", complete")?;
        }
        if let (true, Some(last)) = (self.includes_latest, self.versions.last()) {
            write!(
                f,
                "; version {} is the latest as of height {height}",
                last.index
            )?;
        }
        match &self.value {
            Some(v) => write!(f, "; current value ({})", value(v))?,
            None => write!(f, "; no current value")?,
        }
        write!(
            f,
            "; in block {} certified by {} of {} validators",
            short(&self.header.block_hash),
            self.header.signers,
            self.header.validators
        )?;
        for version in &self.versions {
            write!(f, "\n  {version}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ProvenHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.headers.first(), self.headers.last()) {
            (Some(first), Some(last)) => write!(
                f,
                "{} chained headers, heights {} to {}",
                self.headers.len(),
                first.header.height,
                last.header.height
            )?,
            _ => write!(f, "no headers")?,
        }
        for header in &self.headers {
            write!(f, "\n  {header}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ProvenValidatorSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "height {} is decided by {} validators (set hash {}, quorum {}), after {} change{} \
             from genesis",
            self.height,
            self.validators.len(),
            short(&self.validators.hash()),
            self.validators.quorum(),
            self.changes,
            if self.changes == 1 { "" } else { "s" }
        )?;
        for validator in self.validators.keys() {
            write!(f, "\n  {}", hex(&validator.0))?;
        }
        Ok(())
    }
}

impl fmt::Display for Proven {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proven::State(proven) => proven.fmt(f),
            Proven::History(proven) => proven.fmt(f),
            Proven::Headers(proven) => proven.fmt(f),
            Proven::ValidatorSet(proven) => proven.fmt(f),
        }
    }
}
