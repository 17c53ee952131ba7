//! Offline verification of yrd answers: state proofs, record histories, certified headers and
//! validator sets, checked against the genesis alone (a [`Trust`]). Nothing a node sends is
//! believed until it is tied, by hashes and signatures, to a header certified by a quorum of the
//! validator set that decides its height, and that set to the genesis set.
//!
//! Invariants: every `Proven*` value exists only for an answer that verified in full; every
//! length an answer controls is checked against [`limits`] before it is used; nothing here
//! panics on any input. The exact hashes, encodings and algorithms are in `docs/PROOFS.md`.
//!
//! With the `jmt` feature, [`state_proof_from_jmt`] turns a `jmt` proof into its wire form (the
//! prover side, for the node).

mod answers;
mod display;
mod error;
mod header;
pub mod keys;
pub mod limits;
#[cfg(feature = "jmt")]
mod prover;
pub mod render;
pub mod state;

pub use answers::{
    verify_bundle, verify_headers, verify_history, verify_state, verify_validator_set, Proven,
    ProvenHeaders, ProvenHistory, ProvenState, ProvenValidatorSet, ProvenVersion,
    UNAUTHENTICATED_PREFIXES,
};
pub use error::VerifyError;
pub use header::{
    certificate_from_wire, validator_set, verify_certified_header, ProvenHeader, Trust,
    ValidatorSchedule,
};
#[cfg(feature = "jmt")]
pub use prover::state_proof_from_jmt;
pub use state::verify_state_proof;
