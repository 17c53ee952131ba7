//! The one error type of the crate. Variants carry what was expected and what was found.

use crate::types::{BlockHash, Height, Round, ValidatorIndex};

/// Everything that can be wrong with an input, a certificate, a validator set or stored bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A validator set needs at least one validator.
    #[error("validator set is empty")]
    EmptyValidatorSet,
    /// A validator set is larger than [`crate::limits::VALIDATORS_MAX`].
    #[error("validator set has {count} validators, the maximum is {max}")]
    TooManyValidators {
        /// Validators given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The same public key appears twice in a validator set.
    #[error("validator at index {index} repeats an earlier key")]
    DuplicateValidator {
        /// Index of the second occurrence.
        index: usize,
    },
    /// The chain id is longer than [`crate::limits::CHAIN_ID_BYTES_MAX`].
    #[error("chain id is {len} bytes, the maximum is {max}")]
    ChainIdTooLong {
        /// Length given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A validator index outside the validator set.
    #[error("unknown validator index {index}, the set has {count} validators")]
    UnknownValidator {
        /// Index given.
        index: ValidatorIndex,
        /// Size of the set.
        count: usize,
    },
    /// A signature that does not verify under the claimed validator's key.
    #[error("invalid signature from validator {index}")]
    InvalidSignature {
        /// The claimed signer.
        index: ValidatorIndex,
    },
    /// A certificate with too few distinct signers.
    #[error("certificate has {count} signers, the quorum is {quorum}")]
    InsufficientQuorum {
        /// Distinct valid signers.
        count: usize,
        /// Signers needed.
        quorum: usize,
    },
    /// A validator appears twice in a certificate.
    #[error("validator {index} signs the certificate twice")]
    DuplicateSigner {
        /// The repeated signer.
        index: ValidatorIndex,
    },
    /// Certificate signers must be listed in strictly ascending index order.
    #[error("certificate signer {index} follows signer {previous}: not ascending")]
    UnorderedSigners {
        /// The earlier index.
        previous: ValidatorIndex,
        /// The out-of-order index.
        index: ValidatorIndex,
    },
    /// More signatures than validators.
    #[error("certificate has {count} signatures, the set has {max} validators")]
    TooManySignatures {
        /// Signatures given.
        count: usize,
        /// Validators in the set.
        max: usize,
    },
    /// A proposal signed by someone other than the round's proposer.
    #[error("proposal for round {round} from validator {actual}, the proposer is {expected}")]
    WrongProposer {
        /// The round.
        round: Round,
        /// The proposer of that round.
        expected: ValidatorIndex,
        /// The signer.
        actual: ValidatorIndex,
    },
    /// A proposal whose proof-of-lock round is not below its round.
    #[error("proposal for round {round} carries proof-of-lock round {pol_round}")]
    InvalidPolRound {
        /// The proposal's round.
        round: Round,
        /// Its proof-of-lock round.
        pol_round: Round,
    },
    /// A payload larger than [`crate::limits::PAYLOAD_BYTES_MAX`].
    #[error("payload is {len} bytes, the maximum is {max}")]
    PayloadTooLarge {
        /// Length given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Two block hashes that should be equal are not.
    #[error("block hash mismatch: expected {expected}, found {actual}")]
    BlockHashMismatch {
        /// The hash expected.
        expected: BlockHash,
        /// The hash found.
        actual: BlockHash,
    },
    /// A certificate or value for the wrong height.
    #[error("wrong height: expected {expected}, found {actual}")]
    HeightMismatch {
        /// The height expected.
        expected: Height,
        /// The height found.
        actual: Height,
    },
    /// `StartHeight` for a height that is not after the current one.
    #[error("cannot start height {requested}: the core is at height {current}")]
    HeightNotAfterCurrent {
        /// The current height.
        current: Height,
        /// The height requested.
        requested: Height,
    },
    /// A signature from the host that answers no outstanding request.
    #[error("signature answers no outstanding signing request")]
    UnexpectedSignature,
    /// An input that needs a started height arrived before `StartHeight`.
    #[error("no height started yet")]
    NotStarted,
    /// Stored safety data that cannot be decoded.
    #[error("malformed safety data: {reason}")]
    MalformedSafetyData {
        /// What is wrong.
        reason: &'static str,
    },
}
