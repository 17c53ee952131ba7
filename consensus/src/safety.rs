//! Safety data: what a validator must remember across a restart so it never equivocates, and its
//! fixed-layout storage encoding. Invariant: `last_signed` only moves forward in
//! (height, round, step) order, and the core never signs anything at or below it unless it is
//! the very same message.
//!
//! # Encoding (version 1, 143 bytes, integers unsigned big-endian)
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | magic `yrdS` |
//! | 4 | 1 | version `0x01` |
//! | 5 | 8 | height |
//! | 13 | 4 | round |
//! | 17 | 1 | step: 0 unstarted, 1 propose, 2 prevote, 3 precommit, 4 commit |
//! | 18 | 1 | locked present (0/1) |
//! | 19 | 4 | locked round |
//! | 23 | 32 | locked block hash |
//! | 55 | 1 | valid present (0/1) |
//! | 56 | 4 | valid round |
//! | 60 | 32 | valid block hash |
//! | 92 | 1 | last signed present (0/1) |
//! | 93 | 8 | last signed height |
//! | 101 | 4 | last signed round |
//! | 105 | 1 | last signed step: 1 proposal, 2 prevote, 3 precommit |
//! | 106 | 1 | last signed has block (0/1) |
//! | 107 | 32 | last signed block hash |
//! | 139 | 4 | first 4 bytes of SHA-256 of bytes 0..139 |
//!
//! Absent fields are all zero bytes. Decoding rejects any other length, magic, version, flag or
//! step value, non-zero absent fields and a checksum mismatch.

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::types::{BlockHash, Height, Round, Step, VoteKind};

/// A value together with the round it is associated with (lock or valid value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoundValue {
    /// `lockedRound_p` or `validRound_p`.
    pub round: Round,
    /// `lockedValue_p` or `validValue_p` (its id).
    pub block_hash: BlockHash,
}

/// What a validator signs, in protocol order within a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignStep {
    /// A proposal.
    Proposal,
    /// A prevote.
    Prevote,
    /// A precommit.
    Precommit,
}

impl From<VoteKind> for SignStep {
    fn from(kind: VoteKind) -> Self {
        match kind {
            VoteKind::Prevote => SignStep::Prevote,
            VoteKind::Precommit => SignStep::Precommit,
        }
    }
}

/// The last message this validator asked to have signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignedState {
    /// Its height.
    pub height: Height,
    /// Its round.
    pub round: Round,
    /// Its step.
    pub step: SignStep,
    /// Its value (`None`: a nil vote).
    pub block_hash: Option<BlockHash>,
}

impl SignedState {
    /// Whether a validator whose last signed message is `self` may sign `next`: only if `next`
    /// comes strictly later in (height, round, step) order, or is the very same message.
    #[must_use]
    pub fn permits(&self, next: &SignedState) -> bool {
        let here = (self.height, self.round, self.step);
        let there = (next.height, next.round, next.step);
        there > here || (there == here && next.block_hash == self.block_hash)
    }
}

/// The data a validator persists before any signature leaves it (see the crate docs for the
/// ordering contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SafetyData {
    /// `h_p`.
    pub height: Height,
    /// `round_p`.
    pub round: Round,
    /// `step_p`.
    pub step: Step,
    /// `lockedRound_p`, `lockedValue_p`.
    pub locked: Option<RoundValue>,
    /// `validRound_p`, `validValue_p`.
    pub valid: Option<RoundValue>,
    /// The last message signed (or about to be signed).
    pub last_signed: Option<SignedState>,
}

/// Length of [`SafetyData::encode`]'s output.
pub const SAFETY_DATA_BYTES: usize = 143;
const MAGIC: &[u8; 4] = b"yrdS";
const VERSION: u8 = 1;
const CHECKSUM_AT: usize = 139;

fn step_code(step: Step) -> u8 {
    match step {
        Step::Unstarted => 0,
        Step::Propose => 1,
        Step::Prevote => 2,
        Step::Precommit => 3,
        Step::Commit => 4,
    }
}

fn checksum(bytes: &[u8]) -> [u8; 4] {
    let digest = Sha256::digest(bytes);
    [digest[0], digest[1], digest[2], digest[3]]
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let end = self.at + N;
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or(Error::MalformedSafetyData {
                reason: "truncated",
            })?;
        self.at = end;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.take::<4>()?))
    }
    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.take::<8>()?))
    }
    fn flag(&mut self) -> Result<bool, Error> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::MalformedSafetyData {
                reason: "flag is neither 0 nor 1",
            }),
        }
    }
}

fn absent<T>(present: bool, value: T, raw_is_zero: bool) -> Result<Option<T>, Error> {
    match (present, raw_is_zero) {
        (true, _) => Ok(Some(value)),
        (false, true) => Ok(None),
        (false, false) => Err(Error::MalformedSafetyData {
            reason: "absent field is not zero",
        }),
    }
}

impl SafetyData {
    /// The fixed 143-byte encoding described in the module docs.
    #[must_use]
    pub fn encode(&self) -> [u8; SAFETY_DATA_BYTES] {
        let mut out = Vec::with_capacity(SAFETY_DATA_BYTES);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.height.0.to_be_bytes());
        out.extend_from_slice(&self.round.0.to_be_bytes());
        out.push(step_code(self.step));
        for value in [self.locked, self.valid] {
            match value {
                Some(v) => {
                    out.push(1);
                    out.extend_from_slice(&v.round.0.to_be_bytes());
                    out.extend_from_slice(&v.block_hash.0);
                }
                None => out.extend_from_slice(&[0u8; 37]),
            }
        }
        match self.last_signed {
            Some(s) => {
                out.push(1);
                out.extend_from_slice(&s.height.0.to_be_bytes());
                out.extend_from_slice(&s.round.0.to_be_bytes());
                out.push(match s.step {
                    SignStep::Proposal => 1,
                    SignStep::Prevote => 2,
                    SignStep::Precommit => 3,
                });
                match s.block_hash {
                    Some(hash) => {
                        out.push(1);
                        out.extend_from_slice(&hash.0);
                    }
                    None => out.extend_from_slice(&[0u8; 33]),
                }
            }
            None => out.extend_from_slice(&[0u8; 47]),
        }
        debug_assert_eq!(out.len(), CHECKSUM_AT);
        let sum = checksum(&out);
        out.extend_from_slice(&sum);
        let mut fixed = [0u8; SAFETY_DATA_BYTES];
        fixed.copy_from_slice(&out);
        fixed
    }

    /// Decodes [`SafetyData::encode`]'s output, rejecting anything malformed.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != SAFETY_DATA_BYTES {
            return Err(Error::MalformedSafetyData {
                reason: "wrong length",
            });
        }
        if checksum(&bytes[..CHECKSUM_AT]) != bytes[CHECKSUM_AT..] {
            return Err(Error::MalformedSafetyData {
                reason: "checksum mismatch",
            });
        }
        let mut r = Reader { bytes, at: 0 };
        if &r.take::<4>()? != MAGIC {
            return Err(Error::MalformedSafetyData {
                reason: "bad magic",
            });
        }
        if r.u8()? != VERSION {
            return Err(Error::MalformedSafetyData {
                reason: "unknown version",
            });
        }
        let height = Height(r.u64()?);
        let round = Round(r.u32()?);
        let step = match r.u8()? {
            0 => Step::Unstarted,
            1 => Step::Propose,
            2 => Step::Prevote,
            3 => Step::Precommit,
            4 => Step::Commit,
            _ => return Err(Error::MalformedSafetyData { reason: "bad step" }),
        };
        let mut values = [None, None];
        for slot in &mut values {
            let present = r.flag()?;
            let value_round = r.u32()?;
            let hash = r.take::<32>()?;
            let zero = value_round == 0 && hash == [0u8; 32];
            *slot = absent(
                present,
                RoundValue {
                    round: Round(value_round),
                    block_hash: BlockHash(hash),
                },
                zero,
            )?;
        }
        let present = r.flag()?;
        let signed_height = r.u64()?;
        let signed_round = r.u32()?;
        let signed_step = r.u8()?;
        let has_block = r.flag()?;
        let hash = r.take::<32>()?;
        let last_signed = if present {
            let step = match signed_step {
                1 => SignStep::Proposal,
                2 => SignStep::Prevote,
                3 => SignStep::Precommit,
                _ => {
                    return Err(Error::MalformedSafetyData {
                        reason: "bad signed step",
                    })
                }
            };
            if !has_block && hash != [0u8; 32] {
                return Err(Error::MalformedSafetyData {
                    reason: "nil vote with a block hash",
                });
            }
            if step == SignStep::Proposal && !has_block {
                return Err(Error::MalformedSafetyData {
                    reason: "proposal without a block",
                });
            }
            Some(SignedState {
                height: Height(signed_height),
                round: Round(signed_round),
                step,
                block_hash: has_block.then_some(BlockHash(hash)),
            })
        } else {
            let zero = signed_height == 0
                && signed_round == 0
                && signed_step == 0
                && !has_block
                && hash == [0u8; 32];
            if !zero {
                return Err(Error::MalformedSafetyData {
                    reason: "absent field is not zero",
                });
            }
            None
        };
        Ok(SafetyData {
            height,
            round,
            step,
            locked: values[0],
            valid: values[1],
            last_signed,
        })
    }
}
