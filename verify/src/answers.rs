//! The four verifiable answers of the `Proofs` service, each checked against a [`Trust`] alone,
//! and what each proves. The step-by-step algorithms are in `docs/PROOFS.md`.

use prost::Message;
use yrd_consensus::ValidatorSet;
use yrd_proto::block::verify_audit_path;
use yrd_proto::signing::{verify_transaction, Hash, PublicKeyBytes};
use yrd_proto::v1;

use crate::error::{Context, VerifyError};
use crate::header::{validator_set, ProvenHeader, Trust, ValidatorSchedule};
use crate::keys::{history_entry, is_proven_by_history};
use crate::limits::{
    AUDIT_PATH_MAX, HEADERS_MAX, HISTORY_ENTRY_BYTES_MAX, KEY_BYTES_MAX, VALUE_BYTES_MAX,
    VERSIONS_MAX,
};
use crate::render::hex;
use crate::state::{hash32, verify_state_proof};

/// A key's value, or its absence, at a height.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvenState {
    /// The state key.
    pub key: Vec<u8>,
    /// The value; `None` when the key has none.
    pub value: Option<Vec<u8>>,
    /// The header of the height, whose state root the proof is checked against.
    pub header: ProvenHeader,
}

/// One version of a key: its history entry is in the state of the answer's height, and the
/// transaction that wrote it is in the certified block its provenance names.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvenVersion {
    /// The version index, 0 for the first.
    pub index: u32,
    /// Height of the block that wrote it.
    pub height: u64,
    /// Position of the transaction in that block.
    pub tx_index: u32,
    /// Hash of the transaction.
    pub tx_hash: Hash,
    /// Keys that signed the transaction, in envelope order.
    pub signers: Vec<PublicKeyBytes>,
    /// Time of the block, ms since the Unix epoch.
    pub block_time_ms: u64,
    /// Hash of the block.
    pub block_hash: Hash,
    /// True when the transaction deleted the key.
    pub deleted: bool,
    /// The value written; empty when deleted.
    pub value: Vec<u8>,
}

/// Versions of a key as of a height, and its current value.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvenHistory {
    /// The state key.
    pub key: Vec<u8>,
    /// How many versions the key has at the height.
    pub version_count: u32,
    /// The versions returned, consecutive by index.
    pub versions: Vec<ProvenVersion>,
    /// The value at the height; `None` when the key has none.
    pub value: Option<Vec<u8>>,
    /// Whether `versions` holds every version, `0 .. version_count`.
    pub complete: bool,
    /// Whether the last of `versions` is the latest version as of the height.
    pub includes_latest: bool,
    /// The header of the height.
    pub header: ProvenHeader,
}

/// Consecutive certified headers, each chained to the one before.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvenHeaders {
    /// The headers, by increasing height.
    pub headers: Vec<ProvenHeader>,
}

/// The validator set that decides a height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenValidatorSet {
    /// The height.
    pub height: u64,
    /// The set, in canonical order.
    pub validators: ValidatorSet,
    /// Validator-set changes followed from genesis.
    pub changes: usize,
}

/// What a [`v1::ProofBundle`] proved.
#[derive(Debug, Clone, PartialEq)]
pub enum Proven {
    /// A state value or absence.
    State(ProvenState),
    /// A key's versions.
    History(ProvenHistory),
    /// Certified headers.
    Headers(ProvenHeaders),
    /// A validator set.
    ValidatorSet(ProvenValidatorSet),
}

/// Prefixes of the keys left out of the state tree: the replay-protection index (`x/`) and the
/// history counts (`h/c/`). A proof about one says nothing, since every such key is absent from
/// every tree; a history answer proves a key's version count from its entries instead.
pub const UNAUTHENTICATED_PREFIXES: [&[u8]; 2] = [b"x/", b"h/c/"];

fn check_key(key: &[u8]) -> Result<(), VerifyError> {
    if key.len() > KEY_BYTES_MAX {
        return Err(VerifyError::TooLarge {
            what: "key",
            found: key.len(),
            max: KEY_BYTES_MAX,
        });
    }
    if let Some(prefix) = UNAUTHENTICATED_PREFIXES
        .iter()
        .find(|prefix| key.starts_with(prefix))
    {
        return Err(VerifyError::Malformed {
            what: "key",
            reason: format!(
                "keys under {} are not in the authenticated state; no proof covers them",
                String::from_utf8_lossy(prefix)
            ),
        });
    }
    Ok(())
}

/// The claimed value of a key: `Some` when `exists`; refuses a value with `exists == false`.
fn claimed_value(exists: bool, value: &[u8]) -> Result<Option<&[u8]>, VerifyError> {
    if value.len() > VALUE_BYTES_MAX {
        return Err(VerifyError::TooLarge {
            what: "value",
            found: value.len(),
            max: VALUE_BYTES_MAX,
        });
    }
    match (exists, value.is_empty()) {
        (true, _) => Ok(Some(value)),
        (false, true) => Ok(None),
        (false, false) => Err(VerifyError::Inconsistent(format!(
            "answer says the key does not exist but carries a {}-byte value",
            value.len()
        ))),
    }
}

/// Verifies the header of an answer's height, following the validator changes up to it.
fn answer_header(
    trust: &Trust,
    height: u64,
    header: Option<&v1::CertifiedHeader>,
    changes: Option<&v1::ValidatorSetProof>,
) -> Result<(ValidatorSchedule, ProvenHeader), VerifyError> {
    let certified = header.ok_or(VerifyError::Missing { what: "header" })?;
    let schedule = ValidatorSchedule::follow(trust, changes, height)?;
    let header = schedule.verify_header(certified).context("header")?;
    if header.height() != height {
        return Err(VerifyError::Mismatch {
            what: "header height",
            expected: height.to_string(),
            found: header.height().to_string(),
        });
    }
    Ok((schedule, header))
}

/// Verifies a state answer: the key's value (or absence) at a certified height.
pub fn verify_state(
    trust: &Trust,
    response: &v1::StateProofResponse,
) -> Result<ProvenState, VerifyError> {
    check_key(&response.key)?;
    let value = claimed_value(response.exists, &response.value)?;
    let (_, header) = answer_header(
        trust,
        response.height,
        response.header.as_ref(),
        response.validator_changes.as_ref(),
    )?;
    let root = header.state_root()?;
    let key = &response.key;
    let count = response.version_count;
    let by_history = is_proven_by_history(key);
    if by_history {
        // A versioned record: its count first, then its latest version holds the value.
        let count_proof = response.count_proof.as_ref().ok_or(VerifyError::Missing {
            what: "count_proof (the key is a versioned record)",
        })?;
        verify_state_proof(&root, &history_entry(key, count), None, count_proof)
            .context("count_proof")?;
    }
    match count.checked_sub(1).filter(|_| by_history) {
        Some(last) => {
            let entry = verify_latest_entry(
                &root,
                key,
                last,
                &response.last_entry,
                response.last_entry_proof.as_ref(),
            )?;
            value_is_latest(&entry, value, header.height())?;
        }
        // Any other key, or a record without versions (its genesis value): its own leaf.
        None => {
            let proof = response
                .proof
                .as_ref()
                .ok_or(VerifyError::Missing { what: "proof" })?;
            verify_state_proof(&root, key, value, proof).context("proof")?;
        }
    }
    Ok(ProvenState {
        key: response.key.clone(),
        value: value.map(<[u8]>::to_vec),
        header,
    })
}

/// Verifies a history answer: the key's version count, the versions returned (each in the state
/// and in its block), and its current value, all at a certified height.
pub fn verify_history(
    trust: &Trust,
    response: &v1::HistoryResponse,
) -> Result<ProvenHistory, VerifyError> {
    let key = &response.key;
    check_key(key)?;
    if response.versions.len() > VERSIONS_MAX {
        return Err(VerifyError::TooMany {
            what: "versions",
            found: response.versions.len(),
            max: VERSIONS_MAX,
        });
    }
    let current = claimed_value(response.exists, &response.value)?;
    let (schedule, header) = answer_header(
        trust,
        response.height,
        response.header.as_ref(),
        response.validator_changes.as_ref(),
    )?;
    let root = header.state_root()?;

    // The count n: versions are numbered from 0 without gaps, so entry n is absent and, unless
    // n is 0, entry n - 1 is present (checked below, from `versions` or `last_entry`).
    let count = response.version_count;
    let count_proof = response.count_proof.as_ref().ok_or(VerifyError::Missing {
        what: "count_proof",
    })?;
    verify_state_proof(&root, &history_entry(key, count), None, count_proof)
        .context("count_proof")?;

    let mut versions: Vec<ProvenVersion> = Vec::with_capacity(response.versions.len());
    let mut first_index = None;
    for (position, version) in response.versions.iter().enumerate() {
        // Consecutive from the first; cannot overflow: position < VERSIONS_MAX and the previous
        // index is below the count.
        let expected_index = first_index.map(|first: u32| first + position as u32);
        let proven = verify_version(
            &schedule,
            &header,
            &root,
            key,
            count,
            expected_index,
            versions.last(),
            version,
        )
        .context_with(|| format!("version at position {position}"))?;
        first_index.get_or_insert(proven.index);
        versions.push(proven);
    }

    let includes_latest = versions
        .last()
        .is_some_and(|last| u64::from(last.index) + 1 == u64::from(count));
    let latest = match count.checked_sub(1) {
        None => None,
        Some(_) if includes_latest => versions.last().map(|last| v1::HistoryEntry {
            index: last.index,
            provenance: None,
            deleted: last.deleted,
            value: last.value.clone(),
        }),
        Some(last) => Some(verify_latest_entry(
            &root,
            key,
            last,
            &response.last_entry,
            response.last_entry_proof.as_ref(),
        )?),
    };
    match latest.filter(|_| is_proven_by_history(key)) {
        // A versioned record: its latest version, proven above, holds the value.
        Some(entry) => value_is_latest(&entry, current, header.height())?,
        // Any other key, or a record without versions (its genesis value): its own leaf.
        None => {
            let value_proof = response.value_proof.as_ref().ok_or(VerifyError::Missing {
                what: "value_proof",
            })?;
            verify_state_proof(&root, key, current, value_proof).context("value_proof")?;
        }
    }
    let complete = first_index.unwrap_or(0) == 0 && versions.len() as u64 == u64::from(count);
    Ok(ProvenHistory {
        key: key.clone(),
        version_count: count,
        versions,
        value: current.map(<[u8]>::to_vec),
        complete,
        includes_latest,
        header,
    })
}

/// Entry `last` (the count less one), the latest version: bounded, decoded, of that index, and
/// present at the answer's root.
fn verify_latest_entry(
    root: &Hash,
    key: &[u8],
    last: u32,
    entry: &[u8],
    proof: Option<&v1::StateProof>,
) -> Result<v1::HistoryEntry, VerifyError> {
    let decoded = decode_entry(entry, "last_entry")?;
    let proof = proof.ok_or(VerifyError::Missing {
        what: "last_entry_proof (the answer does not otherwise hold the latest version)",
    })?;
    verify_state_proof(root, &history_entry(key, last), Some(entry), proof)
        .context("last_entry_proof")?;
    if decoded.index != last {
        return Err(VerifyError::Mismatch {
            what: "last_entry index",
            expected: last.to_string(),
            found: decoded.index.to_string(),
        });
    }
    Ok(decoded)
}

/// An encoded history entry (`what` names it in errors): bounded, decoded, and a deletion
/// carries no value.
fn decode_entry(bytes: &[u8], what: &'static str) -> Result<v1::HistoryEntry, VerifyError> {
    if bytes.len() > HISTORY_ENTRY_BYTES_MAX {
        return Err(VerifyError::TooLarge {
            what,
            found: bytes.len(),
            max: HISTORY_ENTRY_BYTES_MAX,
        });
    }
    let entry = v1::HistoryEntry::decode(bytes).map_err(|error| VerifyError::Malformed {
        what,
        reason: error.to_string(),
    })?;
    if entry.deleted && !entry.value.is_empty() {
        return Err(VerifyError::Inconsistent(format!(
            "{what} is a deletion but carries a value"
        )));
    }
    Ok(entry)
}

/// The claimed value of a versioned record is the one its latest version holds.
fn value_is_latest(
    latest: &v1::HistoryEntry,
    claimed: Option<&[u8]>,
    height: u64,
) -> Result<(), VerifyError> {
    let held = (!latest.deleted).then_some(latest.value.as_slice());
    if held == claimed {
        return Ok(());
    }
    Err(VerifyError::Inconsistent(format!(
        "latest version {} {}, but the answer says the key {} at height {height}",
        latest.index,
        if latest.deleted {
            "deleted the key"
        } else {
            "holds another value"
        },
        if claimed.is_some() {
            "has a value"
        } else {
            "is absent"
        },
    )))
}

#[allow(clippy::too_many_arguments)]
fn verify_version(
    schedule: &ValidatorSchedule,
    answer: &ProvenHeader,
    root: &Hash,
    key: &[u8],
    count: u32,
    expected_index: Option<u32>,
    previous: Option<&ProvenVersion>,
    version: &v1::RecordVersion,
) -> Result<ProvenVersion, VerifyError> {
    // The entry, bounded, decoded, at its index, and in the state of the answer's height.
    let entry = decode_entry(&version.entry, "history entry")?;
    if let Some(expected) = expected_index {
        if entry.index != expected {
            return Err(VerifyError::Mismatch {
                what: "version index (versions must be consecutive)",
                expected: expected.to_string(),
                found: entry.index.to_string(),
            });
        }
    }
    if entry.index >= count {
        return Err(VerifyError::Inconsistent(format!(
            "version index {} is not below the version count {count}",
            entry.index
        )));
    }
    let index = entry.index;
    let in_version = |error: VerifyError| error.context(format!("version {index}"));
    let entry_proof = version.entry_proof.as_ref().ok_or(VerifyError::Missing {
        what: "entry_proof",
    });
    let entry_proof = entry_proof.map_err(in_version)?;
    verify_state_proof(
        root,
        &history_entry(key, index),
        Some(&version.entry),
        entry_proof,
    )
    .context("entry_proof")
    .map_err(in_version)?;
    verify_provenance(schedule, answer, previous, &entry, version).map_err(in_version)
}

fn verify_provenance(
    schedule: &ValidatorSchedule,
    answer: &ProvenHeader,
    previous: Option<&ProvenVersion>,
    entry: &v1::HistoryEntry,
    version: &v1::RecordVersion,
) -> Result<ProvenVersion, VerifyError> {
    let provenance = entry.provenance.as_ref().ok_or(VerifyError::Missing {
        what: "entry provenance",
    })?;
    if provenance.height == 0 || provenance.height > answer.height() {
        return Err(VerifyError::Inconsistent(format!(
            "provenance height {} is not within 1 ..= {}",
            provenance.height,
            answer.height()
        )));
    }
    if let Some(previous) = previous {
        if (provenance.height, provenance.tx_index) <= (previous.height, previous.tx_index) {
            return Err(VerifyError::Inconsistent(format!(
                "written at height {} transaction {}, not after version {} (height {} \
                 transaction {})",
                provenance.height,
                provenance.tx_index,
                previous.index,
                previous.height,
                previous.tx_index
            )));
        }
    }
    let tx_hash = hash32("provenance tx_hash", &provenance.tx_hash)?;

    // The transaction: it verifies, and is the one the provenance names.
    let envelope = version.transaction.clone().ok_or(VerifyError::Missing {
        what: "transaction",
    })?;
    let transaction =
        verify_transaction(envelope, schedule.chain_id()).map_err(VerifyError::Transaction)?;
    if transaction.hash != tx_hash {
        return Err(VerifyError::Mismatch {
            what: "transaction hash",
            expected: hex(&tx_hash),
            found: hex(&transaction.hash),
        });
    }
    let signers_match = transaction.signers.len() == provenance.signers.len()
        && transaction
            .signers
            .iter()
            .zip(&provenance.signers)
            .all(|(signed, named)| signed.as_slice() == named.as_slice());
    if !signers_match {
        return Err(VerifyError::Inconsistent(format!(
            "the transaction's signers ({}) are not the provenance's signers ({})",
            transaction
                .signers
                .iter()
                .map(|key| hex(key))
                .collect::<Vec<_>>()
                .join(", "),
            provenance
                .signers
                .iter()
                .map(|key| hex(key))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }

    // The block: certified, the one the provenance names, and it includes the transaction.
    let certified = version
        .block
        .as_ref()
        .ok_or(VerifyError::Missing { what: "block" })?;
    let block = schedule.verify_header(certified).context("block")?;
    if block.height() != provenance.height {
        return Err(VerifyError::Mismatch {
            what: "block height",
            expected: provenance.height.to_string(),
            found: block.height().to_string(),
        });
    }
    if block.height() == answer.height() && block.block_hash != answer.block_hash {
        return Err(VerifyError::Inconsistent(
            "block of the answer's height differs from the answer's header".to_owned(),
        ));
    }
    if block.header.time_ms != provenance.block_time_ms {
        return Err(VerifyError::Mismatch {
            what: "block time_ms",
            expected: provenance.block_time_ms.to_string(),
            found: block.header.time_ms.to_string(),
        });
    }
    if version.inclusion_path.len() > AUDIT_PATH_MAX {
        return Err(VerifyError::TooMany {
            what: "inclusion_path",
            found: version.inclusion_path.len(),
            max: AUDIT_PATH_MAX,
        });
    }
    let path = version
        .inclusion_path
        .iter()
        .map(|hash| hash32("inclusion_path hash", hash))
        .collect::<Result<Vec<Hash>, _>>()?;
    let transactions_root = hash32("block transactions_root", &block.header.transactions_root)?;
    if !verify_audit_path(
        &transactions_root,
        &tx_hash,
        u64::from(provenance.tx_index),
        u64::from(block.header.transaction_count),
        &path,
    ) {
        return Err(VerifyError::NotIncluded {
            tx_index: provenance.tx_index,
            transaction_count: block.header.transaction_count,
        });
    }
    Ok(ProvenVersion {
        index: entry.index,
        height: provenance.height,
        tx_index: provenance.tx_index,
        tx_hash,
        signers: transaction.signers,
        block_time_ms: provenance.block_time_ms,
        block_hash: block.block_hash,
        deleted: entry.deleted,
        value: entry.value.clone(),
    })
}

/// Verifies consecutive certified headers, each chained to the previous by `parent_hash`.
pub fn verify_headers(
    trust: &Trust,
    response: &v1::HeadersResponse,
) -> Result<Vec<ProvenHeader>, VerifyError> {
    let count = response.headers.len();
    if count > HEADERS_MAX {
        return Err(VerifyError::TooMany {
            what: "headers",
            found: count,
            max: HEADERS_MAX,
        });
    }
    let last = response
        .headers
        .last()
        .ok_or(VerifyError::Missing { what: "headers" })?;
    // Decode the last header's height without trusting it yet: it only bounds the changes
    // followed, and the header itself is verified below.
    let up_to = v1::BlockHeader::decode(last.header.as_slice())
        .map(|header| header.height)
        .unwrap_or(0);
    let schedule = ValidatorSchedule::follow(trust, response.validator_changes.as_ref(), up_to)?;
    let mut proven: Vec<ProvenHeader> = Vec::with_capacity(count);
    for (position, certified) in response.headers.iter().enumerate() {
        let header = schedule
            .verify_header(certified)
            .context_with(|| format!("header at position {position}"))?;
        if let Some(previous) = proven.last() {
            if header.height() != previous.height() + 1 {
                return Err(VerifyError::Mismatch {
                    what: "header height (headers must be consecutive)",
                    expected: (previous.height() + 1).to_string(),
                    found: header.height().to_string(),
                });
            }
            if header.header.parent_hash != previous.block_hash {
                return Err(VerifyError::Mismatch {
                    what: "parent_hash",
                    expected: hex(&previous.block_hash),
                    found: hex(&header.header.parent_hash),
                }
                .context(format!("header of height {}", header.height())));
            }
        }
        proven.push(header);
    }
    Ok(proven)
}

/// Verifies the validator set deciding a height.
pub fn verify_validator_set(
    trust: &Trust,
    response: &v1::ValidatorSetResponse,
) -> Result<ProvenValidatorSet, VerifyError> {
    let height = response.height;
    if height == 0 {
        return Err(VerifyError::Inconsistent(
            "height 0 is decided by no validator set".to_owned(),
        ));
    }
    let keys: Vec<&[u8]> = response.validators.iter().map(Vec::as_slice).collect();
    let validators = validator_set(&keys).context("validators")?;
    let schedule = ValidatorSchedule::follow(trust, response.validator_changes.as_ref(), height)?;
    let derived = schedule.set_at(height);
    if *derived != validators {
        return Err(VerifyError::Mismatch {
            what: "validator set hash (the set the changes lead to)",
            expected: hex(&derived.hash()),
            found: hex(&validators.hash()),
        });
    }
    if height > 1 {
        let certified = response
            .previous_header
            .as_ref()
            .ok_or(VerifyError::Missing {
                what: "previous_header",
            })?;
        let previous = schedule
            .verify_header(certified)
            .context("previous_header")?;
        if previous.height() != height - 1 {
            return Err(VerifyError::Mismatch {
                what: "previous_header height",
                expected: (height - 1).to_string(),
                found: previous.height().to_string(),
            });
        }
        if previous.header.next_validator_set_hash != validators.hash() {
            return Err(VerifyError::Mismatch {
                what: "previous_header next_validator_set_hash",
                expected: hex(&validators.hash()),
                found: hex(&previous.header.next_validator_set_hash),
            });
        }
    }
    Ok(ProvenValidatorSet {
        height,
        validators,
        changes: schedule.changes(),
    })
}

/// Verifies whichever answer a bundle holds.
pub fn verify_bundle(trust: &Trust, bundle: &v1::ProofBundle) -> Result<Proven, VerifyError> {
    use v1::proof_bundle::Answer;
    match bundle.answer.as_ref() {
        None => Err(VerifyError::Missing { what: "answer" }),
        Some(Answer::State(response)) => verify_state(trust, response).map(Proven::State),
        Some(Answer::History(response)) => verify_history(trust, response).map(Proven::History),
        Some(Answer::Headers(response)) => verify_headers(trust, response)
            .map(|headers| Proven::Headers(ProvenHeaders { headers })),
        Some(Answer::ValidatorSet(response)) => {
            verify_validator_set(trust, response).map(Proven::ValidatorSet)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_outside_the_tree_are_refused() {
        assert!(check_key(b"c/r/CR-1").is_ok());
        assert!(check_key(b"x/h/0123").is_err());
        assert!(check_key(b"x/e/").is_err());
        assert!(check_key(&vec![b'a'; KEY_BYTES_MAX + 1]).is_err());
    }
}
