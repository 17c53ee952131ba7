//! Admission of transactions to the mempool, from a client or a peer: stateless verification
//! (size, signatures in one batch, chain id), then a dry run against the committed state that
//! refuses what can never apply (malformed, expired, replayed, unknown signer, missing role).
//!
//! Invariant: a refused transaction changes nothing; an admitted one is in the mempool once.

use std::time::{SystemTime, UNIX_EPOCH};

use yrd_chaincode::{execute_block, BlockContext};
use yrd_proto::signing::{self, Hash, SigningError};
use yrd_proto::v1::{self, ReasonCode};

use crate::mempool::{AdmitError, Mempool};
use crate::storage::Store;

/// Why a transaction was refused at admission, mapped to a gRPC status by the service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// Malformed, bad signature, wrong chain, expired: `INVALID_ARGUMENT`.
    #[error("{0}")]
    Invalid(String),
    /// Unknown signer or a key lacking the role: `PERMISSION_DENIED`.
    #[error("{0}")]
    PermissionDenied(String),
    /// Already committed: `ALREADY_EXISTS`.
    #[error("transaction is already committed at height {height}")]
    AlreadyCommitted {
        /// Height of its block.
        height: u64,
    },
    /// Mempool full: `RESOURCE_EXHAUSTED`.
    #[error("{0}")]
    Overloaded(String),
    /// The node's storage failed: `INTERNAL`.
    #[error("storage: {0}")]
    Storage(String),
}

impl From<SigningError> for AdmissionError {
    fn from(error: SigningError) -> Self {
        Self::Invalid(error.to_string())
    }
}

/// Milliseconds since the Unix epoch by the local clock (never used by the chaincode).
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Reasons that make a transaction unable to apply whatever else is committed first.
fn refusal(receipt: &v1::Receipt) -> Option<AdmissionError> {
    let reason = ReasonCode::try_from(receipt.reason).ok()?;
    let detail = format!("{}: {}", reason.as_str_name(), receipt.detail);
    match reason {
        ReasonCode::ReasonMalformed
        | ReasonCode::ReasonWrongChainId
        | ReasonCode::ReasonExpired
        | ReasonCode::ReasonValidityTooLong => Some(AdmissionError::Invalid(detail)),
        ReasonCode::ReasonUnknownSigner | ReasonCode::ReasonRoleNotPermitted => {
            Some(AdmissionError::PermissionDenied(detail))
        }
        ReasonCode::ReasonDuplicateTransaction => {
            Some(AdmissionError::AlreadyCommitted { height: 0 })
        }
        _ => None,
    }
}

/// Verifies and admits envelopes; one result per envelope, in order. A transaction already
/// waiting in the mempool is admitted again without error (submission is idempotent).
pub fn admit(
    store: &Store,
    mempool: &Mempool,
    chain_id: &str,
    envelopes: Vec<v1::SignedTransaction>,
) -> Vec<Result<Hash, AdmissionError>> {
    let sizes: Vec<usize> = envelopes.iter().map(prost::Message::encoded_len).collect();
    let verified = signing::verify_transactions(envelopes, chain_id);
    let tip = store.tip();
    let state = store.state();
    let block = BlockContext {
        chain_id: chain_id.to_owned(),
        height: tip.height + 1,
        time_ms: now_ms().max(tip.time_ms + 1),
    };
    verified
        .into_iter()
        .zip(sizes)
        .map(|(verified, size)| {
            let verified = verified?;
            if mempool.contains(&verified.hash) {
                return Ok(verified.hash);
            }
            match store.transaction_location(&verified.hash) {
                Ok(Some(location)) => {
                    return Err(AdmissionError::AlreadyCommitted {
                        height: location.height,
                    })
                }
                Ok(None) => {}
                Err(error) => return Err(AdmissionError::Storage(error.to_string())),
            }
            let outcome = execute_block(&state, &block, std::slice::from_ref(&verified))
                .map_err(|e| AdmissionError::Storage(e.to_string()))?;
            state
                .check()
                .map_err(|e| AdmissionError::Storage(e.to_string()))?;
            if let Some(receipt) = outcome.receipts.first() {
                if let Some(refused) = refusal(receipt) {
                    return Err(refused);
                }
            }
            let hash = verified.hash;
            match mempool.insert(verified, size) {
                Ok(()) | Err(AdmitError::Duplicate) => Ok(hash),
                Err(full @ AdmitError::Full { .. }) => {
                    Err(AdmissionError::Overloaded(full.to_string()))
                }
            }
        })
        .collect()
}
