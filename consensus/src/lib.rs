//! `yrd-consensus`: the pure Tendermint BFT core of the `yrd` ledger; it owns no I/O, no clock and
//! no randomness, and turns [`Input`]s into [`Output`]s deterministically.
//!
//! The protocol is Tendermint as published in Buchman, Kwon and Milosevic, *The latest gossip on BFT
//! consensus*, arXiv:1807.04938, Algorithm 1. Every transition of [`round`] names the line of
//! Algorithm 1 it implements (`// L22-L27`).
//!
//! # How a host drives the core
//!
//! ```text
//!   host                                   Consensus
//!   ----                                   ---------
//!   Consensus::new(config)  or  Consensus::restore(config, safety_data)
//!   handle(Input::StartHeight { height, validators })      -> outputs
//!   handle(Input::Proposal { .. } | Input::Vote(..))       -> outputs   (from the network)
//!   handle(Input::TimeoutFired(timeout))                   -> outputs   (a timer it scheduled)
//!   handle(Input::ProposeValue { .. })                     -> outputs   (answer to GetValue)
//!   handle(Input::ValueValidity { .. })                    -> outputs   (answer to ValidateValue)
//!   handle(Input::Signed { .. })                           -> outputs   (answer to Sign)
//!   handle(Input::DecidedElsewhere { .. })                 -> outputs   (catch-up / sync)
//!   rebroadcast()                                          -> outputs   (gossip timer, when stalled)
//! ```
//!
//! A host loop, in outline (`Config::new` takes the chain id, the validator's public key and the
//! signature scheme):
//!
//! ```
//! use yrd_consensus::{Config, Consensus, Ed25519, Height, Input, Output, PublicKey, ValidatorSet};
//!
//! let me = PublicKey([7; 32]);
//! let validators = ValidatorSet::new(vec![me, PublicKey([8; 32])]).expect("valid set");
//! let mut core = Consensus::new(Config::new("yrd-main", me, Ed25519)).expect("valid config");
//! for output in core.handle(Input::StartHeight { height: Height(1), validators }) {
//!     match output {
//!         Output::Persist(safety) => { /* write safety.encode() durably, then continue */ }
//!         Output::Sign(request) => { /* sign request.message(chain_id), answer Input::Signed */ }
//!         Output::ScheduleTimeout { .. } => { /* start a timer, answer Input::TimeoutFired */ }
//!         _ => { /* broadcast, GetValue, ValidateValue, Decide, Evidence, Rejected */ }
//!     }
//! }
//! ```
//!
//! **Ordering contract.** The host executes the outputs of one `handle` call in order, and an
//! [`Output::Persist`] must be durable before the host executes any output that follows it. The
//! core emits `Persist` immediately before every [`Output::Sign`], so what a validator is about to
//! sign (and the lock that goes with it) is on disk before the signature exists, and therefore
//! before any vote can leave the node. A validator restarted with [`Consensus::restore`] from the
//! last persisted [`SafetyData`] never signs two different votes (or proposals) for one height,
//! round and step.
//!
//! After [`Output::Decide`] the core is idle until the host sends [`Input::StartHeight`] for a
//! later height, with the validator set of that height; messages for that height that arrive in
//! between are kept in a bounded buffer (see [`limits`]).
//!
//! The payload is opaque: the core carries a [`BlockHash`] and payload bytes. The host produces
//! payloads ([`Output::GetValue`]), judges them ([`Output::ValidateValue`]), checks that a
//! payload hashes to its block hash before handing a proposal in, and executes blocks after
//! `Decide`.
//!
//! **Gossip and restarts.** Algorithm 1 assumes that every message a correct validator receives
//! eventually reaches all correct validators. The host provides that by broadcasting
//! [`Consensus::rebroadcast`] when a height stalls, by answering lagging peers with decided
//! blocks and their [`CommitCertificate`]s ([`Input::DecidedElsewhere`]), and by logging the
//! messages of the current height and replaying them after a restore.
//!
//! **Verification.** The core verifies every peer's vote and proposal with the configured
//! [`SignatureScheme`] before it counts; [`CommitCertificate::verify`] needs only the validator
//! set and the chain id. The signed byte layouts are documented in [`signing`], the stored
//! safety data layout in [`safety`].

pub mod certificate;
pub mod consensus;
pub mod error;
pub mod limits;
pub mod round;
pub mod safety;
pub mod signing;
pub mod types;
pub mod validators;
pub mod votes;

pub use certificate::CommitCertificate;
pub use consensus::{Config, Consensus, Evidence, Input, Output, SignRequest, TimeoutConfig};
pub use error::Error;
pub use safety::{RoundValue, SafetyData, SignedState};
pub use signing::{proposal_signing_message, vote_signing_message, Ed25519, SignatureScheme};
pub use types::{
    BlockHash, Height, Proposal, PublicKey, Round, Signature, SignedProposal, SignedVote, Step,
    Timeout, TimeoutStep, ValidatorIndex, Vote, VoteKind,
};
pub use validators::ValidatorSet;
