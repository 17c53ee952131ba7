//! The validator set of one height: an ordered list of distinct public keys with equal voting
//! power. Invariants: 1 <= len <= `VALIDATORS_MAX`, no key twice; quorum and proposer are pure
//! functions of the list.

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::limits::VALIDATORS_MAX;
use crate::types::{Height, PublicKey, Round, ValidatorIndex};

/// Domain prefix of [`ValidatorSet::hash`]: `b"yrd/validator-set/v1"` (20 bytes, no terminator).
pub const VALIDATOR_SET_DOMAIN: &[u8; 20] = b"yrd/validator-set/v1";

/// An ordered set of validators, each with one vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSet {
    keys: Vec<PublicKey>,
}

impl ValidatorSet {
    /// A set from keys in their canonical order; rejects an empty, oversized or repeating list.
    pub fn new(keys: Vec<PublicKey>) -> Result<Self, Error> {
        if keys.is_empty() {
            return Err(Error::EmptyValidatorSet);
        }
        if keys.len() > VALIDATORS_MAX {
            return Err(Error::TooManyValidators {
                count: keys.len(),
                max: VALIDATORS_MAX,
            });
        }
        let mut sorted: Vec<(PublicKey, usize)> = keys
            .iter()
            .copied()
            .enumerate()
            .map(|(i, k)| (k, i))
            .collect();
        sorted.sort();
        for pair in sorted.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(Error::DuplicateValidator {
                    index: pair[0].1.max(pair[1].1),
                });
            }
        }
        Ok(ValidatorSet { keys })
    }

    /// Number of validators `n`.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a set has at least one validator. Present for API symmetry with `len`.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys in canonical order.
    #[must_use]
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// The key of validator `index`, if it exists.
    #[must_use]
    pub fn key(&self, index: ValidatorIndex) -> Option<&PublicKey> {
        self.keys.get(usize::from(index))
    }

    /// The index of `key` in the set, if it is a validator.
    #[must_use]
    pub fn index_of(&self, key: &PublicKey) -> Option<ValidatorIndex> {
        self.keys
            .iter()
            .position(|k| k == key)
            .and_then(|i| ValidatorIndex::try_from(i).ok())
    }

    /// `f`, the most Byzantine validators tolerated: `floor((n - 1) / 3)`.
    #[must_use]
    pub fn max_faulty(&self) -> usize {
        (self.keys.len() - 1) / 3
    }

    /// Votes needed for a quorum (the paper's `2f + 1`, i.e. more than two thirds of `n`):
    /// `floor(2n / 3) + 1`.
    #[must_use]
    pub fn quorum(&self) -> usize {
        2 * self.keys.len() / 3 + 1
    }

    /// Distinct validators needed to prove that at least one correct validator is involved
    /// (the paper's `f + 1`, L55).
    #[must_use]
    pub fn skip_threshold(&self) -> usize {
        self.max_faulty() + 1
    }

    /// `proposer(h, r)`: round-robin, `(h + r) mod n`.
    #[must_use]
    pub fn proposer(&self, height: Height, round: Round) -> ValidatorIndex {
        let n = self.keys.len() as u64;
        let index = (height.0 % n + u64::from(round.0) % n) % n;
        // n <= VALIDATORS_MAX <= 65536, so the index fits.
        index as ValidatorIndex
    }

    /// SHA-256 over `b"yrd/validator-set/v1"`, the count as u32 big-endian, then each 32-byte key
    /// in order. Light clients use it to name the set a certificate is checked against.
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(VALIDATOR_SET_DOMAIN);
        hasher.update((self.keys.len() as u32).to_be_bytes());
        for key in &self.keys {
            hasher.update(key.0);
        }
        hasher.finalize().into()
    }
}
