//! Every bound of the consensus core, in one place, with compile-time checks of how the bounds
//! relate. Nothing a peer sends can grow memory beyond what these constants allow.

/// Most validators a [`crate::ValidatorSet`] may hold (indices are `u16`).
pub const VALIDATORS_MAX: usize = 1024;

/// Longest chain id, in bytes (it is length-prefixed by one byte in signed messages).
pub const CHAIN_ID_BYTES_MAX: usize = 64;

/// Largest opaque payload (block) a proposal may carry, in bytes.
pub const PAYLOAD_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Votes and proposals for rounds more than this many rounds ahead of the current round are
/// dropped; the vote keeper therefore holds at most `2 * (ROUNDS_AHEAD_MAX + 1)` votes per
/// validator beyond the rounds this node has already reached.
pub const ROUNDS_AHEAD_MAX: u32 = 8;

/// Distinct proposals kept per round: the first, and one conflicting one (evidence, and a chance
/// to decide the value a Byzantine proposer showed to the majority).
pub const PROPOSALS_PER_ROUND_MAX: usize = 2;

/// Votes stored per (validator, round, kind): the first, and one conflicting vote (evidence, and
/// a correct node must still see the quorum an equivocator's second vote belongs to).
pub const VOTES_PER_SLOT_MAX: usize = 2;

/// Messages for heights more than this many heights ahead of the current height are dropped.
pub const HEIGHTS_AHEAD_MAX: u64 = 2;

/// Messages for future heights buffered per signing validator.
pub const FUTURE_MESSAGES_PER_VALIDATOR_MAX: usize = 32;

/// Messages for future heights buffered in total.
pub const FUTURE_MESSAGES_MAX: usize = VALIDATORS_MAX * FUTURE_MESSAGES_PER_VALIDATOR_MAX;

/// Payload bytes buffered in total with future-height proposals.
pub const FUTURE_PAYLOAD_BYTES_MAX: usize = 4 * PAYLOAD_BYTES_MAX;

/// Signature requests awaiting an answer from the host; the oldest is forgotten beyond this.
pub const PENDING_SIGNATURES_MAX: usize = 8;

/// Default first-round duration of each timeout (propose, prevote, precommit), in milliseconds.
pub const TIMEOUT_BASE_MS_DEFAULT: u64 = 1000;

/// Default growth of each timeout per round, in milliseconds.
pub const TIMEOUT_DELTA_MS_DEFAULT: u64 = 500;

/// Longest timeout the core ever schedules, in milliseconds, however many rounds have passed.
pub const TIMEOUT_MAX_MS: u64 = 120_000;

/// Upper bound on round-state transitions applied while handling one input; each transition
/// either moves the step or round forward or sets a once-per-round guard, so the bound is never
/// reached by a correct implementation (it is asserted).
pub const TRANSITIONS_PER_INPUT_MAX: usize = 64 + 4 * ROUNDS_AHEAD_MAX as usize;

const _: () = assert!(VALIDATORS_MAX <= u16::MAX as usize + 1);
const _: () = assert!(CHAIN_ID_BYTES_MAX <= u8::MAX as usize);
const _: () = assert!(PROPOSALS_PER_ROUND_MAX >= 2);
const _: () = assert!(VOTES_PER_SLOT_MAX >= 2);
// An honest validator sends, per height, one proposal and two votes per round: the buffer holds
// what it sends for the first rounds of the next height.
const _: () = assert!(FUTURE_MESSAGES_PER_VALIDATOR_MAX >= 3 * (ROUNDS_AHEAD_MAX as usize + 1));
const _: () = assert!(FUTURE_MESSAGES_MAX >= VALIDATORS_MAX * FUTURE_MESSAGES_PER_VALIDATOR_MAX);
const _: () = assert!(PAYLOAD_BYTES_MAX <= FUTURE_PAYLOAD_BYTES_MAX);
const _: () = assert!(PENDING_SIGNATURES_MAX >= 3);
const _: () = assert!(HEIGHTS_AHEAD_MAX >= 1);
const _: () = assert!(TIMEOUT_BASE_MS_DEFAULT > 0 && TIMEOUT_BASE_MS_DEFAULT <= TIMEOUT_MAX_MS);
