//! The one error type of the crate. Every variant says what failed; [`VerifyError::Context`]
//! wraps an inner error with where it happened (which version, which height, which proof), so a
//! message reads from the outside in: `version 2: block: certificate: ...`.

use yrd_proto::signing::SigningError;

/// Why an answer does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// An inner failure, with where it happened.
    #[error("{what}: {source}")]
    Context {
        /// Where: which answer part, version or height.
        what: String,
        /// The failure.
        #[source]
        source: Box<VerifyError>,
    },
    /// A field is absent.
    #[error("{what} is missing")]
    Missing {
        /// The field.
        what: &'static str,
    },
    /// A field has the wrong length or form.
    #[error("{what} is malformed: {reason}")]
    Malformed {
        /// The field.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A list is longer than this verifier accepts.
    #[error("{what}: {found} items, more than the {max} accepted")]
    TooMany {
        /// The list.
        what: &'static str,
        /// Items found.
        found: usize,
        /// Most accepted.
        max: usize,
    },
    /// A byte string is longer than this verifier accepts.
    #[error("{what} is {found} bytes, more than the {max} accepted")]
    TooLarge {
        /// The field.
        what: &'static str,
        /// Bytes found.
        found: usize,
        /// Most accepted.
        max: usize,
    },
    /// A value differs from the one the rest of the answer proves.
    #[error("{what}: expected {expected}, found {found}")]
    Mismatch {
        /// What was compared.
        what: &'static str,
        /// The proven value.
        expected: String,
        /// The value in the answer.
        found: String,
    },
    /// The answer contradicts itself or a rule of the chain.
    #[error("{0}")]
    Inconsistent(String),
    /// A state proof's leaf names another key, where an inclusion proof needs this key.
    #[error("state proof is for key hash {found}, not {expected}")]
    ProofKeyMismatch {
        /// SHA-256 of the key asked about.
        expected: String,
        /// The leaf's key hash.
        found: String,
    },
    /// A state proof's leaf holds another value.
    #[error("state proof leaf has value hash {found}, the value hashes to {expected}")]
    ProofValueMismatch {
        /// SHA-256 of the value given.
        expected: String,
        /// The leaf's value hash.
        found: String,
    },
    /// A value was given but the proof ends in an empty subtree.
    #[error("expected an inclusion proof, found a proof of absence")]
    ProofNotInclusion,
    /// An absence was claimed but the proof's leaf is the key itself.
    #[error("expected a proof of absence, but the proof's leaf is the key")]
    ProofKeyPresent,
    /// A proof of absence whose leaf is not on the key's path.
    #[error(
        "proof of absence: the leaf shares {common} leading bits with the key, fewer than the \
         {depth} levels of the proof"
    )]
    ProofLeafOffPath {
        /// Leading bits the key hash shares with the leaf's key hash.
        common: usize,
        /// Number of siblings.
        depth: usize,
    },
    /// The proof folds to another root.
    #[error("state proof computes root {found}, the header commits to {expected}")]
    ProofRootMismatch {
        /// The trusted root.
        expected: String,
        /// The root the proof computes.
        found: String,
    },
    /// The header bytes are not the canonical encoding of the header they decode to.
    #[error("header bytes are not the canonical encoding of the header")]
    NonCanonicalHeader,
    /// The commit certificate does not verify against the validator set.
    #[error("certificate: {0}")]
    Certificate(yrd_consensus::Error),
    /// A validator list does not make a valid set.
    #[error("validator set: {0}")]
    ValidatorSet(yrd_consensus::Error),
    /// A transaction does not verify.
    #[error("transaction: {0}")]
    Transaction(SigningError),
    /// The chain id of the trust root is invalid, or a hash could not be taken under it.
    #[error("chain id: {0}")]
    ChainId(SigningError),
    /// The audit path does not lead from the transaction hash to the transactions root.
    #[error(
        "transaction {tx_index} of {transaction_count} is not under the block's transactions \
         root by the given audit path"
    )]
    NotIncluded {
        /// The transaction's position.
        tx_index: u32,
        /// Transactions in the block.
        transaction_count: u32,
    },
}

impl VerifyError {
    /// This error wrapped with where it happened.
    #[must_use]
    pub fn context(self, what: impl Into<String>) -> Self {
        VerifyError::Context {
            what: what.into(),
            source: Box::new(self),
        }
    }
}

/// Adds context to a result's error.
pub(crate) trait Context<T> {
    /// Wraps the error with `what()`.
    fn context_with(self, what: impl FnOnce() -> String) -> Result<T, VerifyError>;
    /// Wraps the error with a fixed description.
    fn context(self, what: &'static str) -> Result<T, VerifyError>;
}

impl<T> Context<T> for Result<T, VerifyError> {
    fn context_with(self, what: impl FnOnce() -> String) -> Result<T, VerifyError> {
        self.map_err(|error| error.context(what()))
    }

    fn context(self, what: &'static str) -> Result<T, VerifyError> {
        self.map_err(|error| error.context(what))
    }
}
