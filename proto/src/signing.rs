//! Transaction signing and verification: ed25519 with strict verification over a SHA-256
//! digest taken under a domain-separation prefix and the chain id.
//!
//! Layout of the signed digest, for every message type:
//!
//! ```text
//! digest = SHA-256( domain || u8(len(chain_id)) || chain_id || payload )
//! ```
//!
//! `domain` is one of the [`Domain`] prefixes, each ending in a zero byte, so a signature made
//! for one chain or one message type never verifies as another. For a transaction the payload
//! is exactly the `SignedTransaction.body` bytes as carried: nothing is re-encoded before it is
//! verified. The transaction hash is that digest, so it does not depend on the signatures.
//!
//! Invariant: a [`VerifiedTransaction`] exists only for an envelope whose every signature
//! verified under `verify_strict` (or in a batch whose keys and nonces are not of small order),
//! whose signers are distinct, whose sizes are within [`crate::limits`], and whose body names
//! the expected chain.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use ed25519_dalek::{Signature as Ed25519Signature, Signer, SigningKey, VerifyingKey};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::limits::{
    CHAIN_ID_BYTES_MAX, TRANSACTION_BODY_BYTES_MAX, TRANSACTION_BYTES_MAX,
    TRANSACTION_SIGNATURES_MAX,
};
use crate::v1;

/// A 32-byte SHA-256 digest.
pub type Hash = [u8; 32];

/// A 32-byte ed25519 public key as carried on the wire.
pub type PublicKeyBytes = [u8; 32];

/// Message types that are signed, each with its own domain-separation prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// A transaction body.
    Transaction,
    /// A block header (the block hash is taken under this prefix).
    BlockHeader,
    /// A consensus vote.
    Vote,
    /// A consensus proposal.
    Proposal,
}

impl Domain {
    /// The prefix bytes of this domain.
    #[must_use]
    pub const fn prefix(self) -> &'static [u8] {
        match self {
            Self::Transaction => b"yrd/tx/v1\0",
            Self::BlockHeader => b"yrd/header/v1\0",
            Self::Vote => b"yrd/vote/v1\0",
            Self::Proposal => b"yrd/proposal/v1\0",
        }
    }
}

/// Errors of signing and stateless verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// The chain id is empty or longer than allowed.
    #[error("chain id must be 1 to {max} bytes, found {found}")]
    ChainIdLength {
        /// Bytes found.
        found: usize,
        /// Most allowed.
        max: usize,
    },
    /// An encoded message is longer than its limit.
    #[error("{what} is {found} bytes, more than the {max} allowed")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Bytes found.
        found: usize,
        /// Most allowed.
        max: usize,
    },
    /// Bytes that do not decode as the expected message.
    #[error("{what} does not decode: {reason}")]
    Decode {
        /// What failed to decode.
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// The envelope carries no signature.
    #[error("transaction carries no signature")]
    NoSignatures,
    /// The envelope carries more signatures than allowed.
    #[error("transaction carries {found} signatures, more than the {max} allowed")]
    TooManySignatures {
        /// Signatures found.
        found: usize,
        /// Most allowed.
        max: usize,
    },
    /// One key signed twice.
    #[error("signature {index} repeats the key of an earlier signature")]
    DuplicateSigner {
        /// Index of the repeated signature.
        index: usize,
    },
    /// A public key is not 32 bytes or not a valid, non-weak curve point.
    #[error("signature {index}: public key is malformed or of small order")]
    BadPublicKey {
        /// Index of the signature.
        index: usize,
    },
    /// A signature does not verify.
    #[error("signature {index} does not verify")]
    BadSignature {
        /// Index of the signature.
        index: usize,
    },
    /// The body names another chain.
    #[error("transaction is for chain {found:?}, this chain is {expected:?}")]
    WrongChainId {
        /// This chain.
        expected: String,
        /// The body's chain id.
        found: String,
    },
}

/// Checks that a chain id has an allowed length.
pub fn check_chain_id(chain_id: &str) -> Result<(), SigningError> {
    if chain_id.is_empty() || chain_id.len() > CHAIN_ID_BYTES_MAX {
        return Err(SigningError::ChainIdLength {
            found: chain_id.len(),
            max: CHAIN_ID_BYTES_MAX,
        });
    }
    Ok(())
}

/// The bytes whose SHA-256 is signed: `domain || u8(len(chain_id)) || chain_id || payload`.
pub fn signing_bytes(
    domain: Domain,
    chain_id: &str,
    payload: &[u8],
) -> Result<Vec<u8>, SigningError> {
    check_chain_id(chain_id)?;
    let prefix = domain.prefix();
    let mut bytes = Vec::with_capacity(prefix.len() + 1 + chain_id.len() + payload.len());
    bytes.extend_from_slice(prefix);
    // Fits: check_chain_id bounds the length by CHAIN_ID_BYTES_MAX <= 255.
    bytes.push(chain_id.len() as u8);
    bytes.extend_from_slice(chain_id.as_bytes());
    bytes.extend_from_slice(payload);
    Ok(bytes)
}

/// The signed digest of a payload: SHA-256 of [`signing_bytes`], computed without a copy.
pub fn signing_digest(
    domain: Domain,
    chain_id: &str,
    payload: &[u8],
) -> Result<Hash, SigningError> {
    check_chain_id(chain_id)?;
    let mut hasher = Sha256::new();
    hasher.update(domain.prefix());
    hasher.update([chain_id.len() as u8]);
    hasher.update(chain_id.as_bytes());
    hasher.update(payload);
    Ok(hasher.finalize().into())
}

/// The hash of a transaction: the digest its signers sign.
pub fn transaction_hash(chain_id: &str, body: &[u8]) -> Result<Hash, SigningError> {
    signing_digest(Domain::Transaction, chain_id, body)
}

/// SHA-256 of an envelope's encoding: names one exact envelope, signatures included, where
/// [`transaction_hash`] names only its body (a proposal's `v1::TransactionRef`).
#[must_use]
pub fn envelope_hash(envelope: &v1::SignedTransaction) -> Hash {
    sha256(&envelope.encode_to_vec())
}

/// The reference a proposal carries for a verified transaction.
#[must_use]
pub fn transaction_ref(transaction: &VerifiedTransaction) -> v1::TransactionRef {
    v1::TransactionRef {
        hash: transaction.hash.to_vec(),
        envelope_hash: envelope_hash(&transaction.envelope).to_vec(),
    }
}

/// SHA-256 of some bytes.
#[must_use]
pub fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// Encodes `body` and signs it with every key given, in order.
pub fn sign_transaction(
    body: &v1::TransactionBody,
    keys: &[&SigningKey],
) -> Result<v1::SignedTransaction, SigningError> {
    let body_bytes = body.encode_to_vec();
    let digest = transaction_hash(&body.chain_id, &body_bytes)?;
    let signatures = keys
        .iter()
        .map(|key| v1::Signature {
            public_key: key.verifying_key().to_bytes().to_vec(),
            signature: key.sign(&digest).to_bytes().to_vec(),
        })
        .collect();
    Ok(v1::SignedTransaction {
        body: body_bytes,
        signatures,
    })
}

/// A transaction whose signatures, sizes and chain id were checked.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedTransaction {
    /// The transaction hash (the signed digest).
    pub hash: Hash,
    /// The decoded body; its bytes are `envelope.body`.
    pub body: v1::TransactionBody,
    /// The distinct keys that signed, in envelope order.
    pub signers: Vec<PublicKeyBytes>,
    /// The envelope as received.
    pub envelope: v1::SignedTransaction,
}

/// An envelope whose shape was checked, waiting for its signatures to be checked.
struct Prepared {
    hash: Hash,
    body: v1::TransactionBody,
    keys: Vec<VerifyingKey>,
    signatures: Vec<Ed25519Signature>,
}

/// Decodes a `SignedTransaction` from untrusted bytes, bounding its size first.
pub fn decode_envelope(bytes: &[u8]) -> Result<v1::SignedTransaction, SigningError> {
    if bytes.len() > TRANSACTION_BYTES_MAX {
        return Err(SigningError::TooLarge {
            what: "transaction",
            found: bytes.len(),
            max: TRANSACTION_BYTES_MAX,
        });
    }
    v1::SignedTransaction::decode(bytes).map_err(|error| SigningError::Decode {
        what: "transaction",
        reason: error.to_string(),
    })
}

fn prepare(envelope: &v1::SignedTransaction, chain_id: &str) -> Result<Prepared, SigningError> {
    if envelope.body.len() > TRANSACTION_BODY_BYTES_MAX {
        return Err(SigningError::TooLarge {
            what: "transaction body",
            found: envelope.body.len(),
            max: TRANSACTION_BODY_BYTES_MAX,
        });
    }
    if envelope.signatures.is_empty() {
        return Err(SigningError::NoSignatures);
    }
    if envelope.signatures.len() > TRANSACTION_SIGNATURES_MAX {
        return Err(SigningError::TooManySignatures {
            found: envelope.signatures.len(),
            max: TRANSACTION_SIGNATURES_MAX,
        });
    }
    let body = v1::TransactionBody::decode(envelope.body.as_slice()).map_err(|error| {
        SigningError::Decode {
            what: "transaction body",
            reason: error.to_string(),
        }
    })?;
    if body.chain_id != chain_id {
        return Err(SigningError::WrongChainId {
            expected: chain_id.to_owned(),
            found: body.chain_id,
        });
    }
    let hash = transaction_hash(chain_id, &envelope.body)?;
    let mut keys = Vec::with_capacity(envelope.signatures.len());
    let mut signatures = Vec::with_capacity(envelope.signatures.len());
    for (index, signature) in envelope.signatures.iter().enumerate() {
        let key =
            parse_public_key(&signature.public_key).ok_or(SigningError::BadPublicKey { index })?;
        if keys.contains(&key) {
            return Err(SigningError::DuplicateSigner { index });
        }
        let bytes: [u8; 64] = signature
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| SigningError::BadSignature { index })?;
        keys.push(key);
        signatures.push(Ed25519Signature::from_bytes(&bytes));
    }
    Ok(Prepared {
        hash,
        body,
        keys,
        signatures,
    })
}

/// Most public keys [`parse_public_key`] keeps decoded. A consortium has hundreds of member
/// keys, not thousands; when the cache is full it is emptied, so its memory stays bounded
/// whatever keys peers and clients send.
pub const KEY_CACHE_MAX: usize = 4_096;

/// Keys already decoded, by their encoding: at most [`KEY_CACHE_MAX`], emptied when full.
/// Decoding a key takes a square root in the field (about 5 µs, a third of the cost of
/// checking one signature in a batch), and the same member keys sign transaction after
/// transaction.
pub(crate) struct KeyCache<V>(Mutex<Option<HashMap<PublicKeyBytes, V>>>);

impl<V: Copy> KeyCache<V> {
    /// An empty cache.
    pub(crate) const fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// The decoded `key`: the one kept, or else `decode(key)`, kept unless `None`.
    pub(crate) fn get_or_decode(
        &self,
        key: &PublicKeyBytes,
        decode: impl FnOnce(&PublicKeyBytes) -> Option<V>,
    ) -> Option<V> {
        // The map is valid whatever a panicking holder did: each entry is inserted whole.
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let cache = guard.get_or_insert_with(HashMap::new);
        if let Some(decoded) = cache.get(key) {
            return Some(*decoded);
        }
        let decoded = decode(key)?;
        if cache.len() >= KEY_CACHE_MAX {
            cache.clear();
        }
        cache.insert(*key, decoded);
        Some(decoded)
    }

    /// How many keys are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        guard.as_ref().map_or(0, HashMap::len)
    }

    /// Whether `key` is kept.
    #[cfg(test)]
    pub(crate) fn contains(&self, key: &PublicKeyBytes) -> bool {
        let guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        guard.as_ref().is_some_and(|cache| cache.contains_key(key))
    }
}

/// The verifying keys [`parse_public_key`] decoded.
static KEY_CACHE: KeyCache<VerifyingKey> = KeyCache::new();

/// Parses a public key, refusing malformed encodings and keys of small order. Valid keys are
/// kept decoded (at most [`KEY_CACHE_MAX`]), so the same key is decoded once.
#[must_use]
pub fn parse_public_key(bytes: &[u8]) -> Option<VerifyingKey> {
    let array: PublicKeyBytes = bytes.try_into().ok()?;
    KEY_CACHE.get_or_decode(&array, |array| {
        VerifyingKey::from_bytes(array)
            .ok()
            .filter(|key| !key.is_weak())
    })
}

fn finish(prepared: Prepared, envelope: v1::SignedTransaction) -> VerifiedTransaction {
    VerifiedTransaction {
        hash: prepared.hash,
        body: prepared.body,
        signers: prepared.keys.iter().map(VerifyingKey::to_bytes).collect(),
        envelope,
    }
}

fn verify_each(prepared: &Prepared) -> Result<(), SigningError> {
    for (index, (key, signature)) in prepared.keys.iter().zip(&prepared.signatures).enumerate() {
        key.verify_strict(&prepared.hash, signature)
            .map_err(|_| SigningError::BadSignature { index })?;
    }
    Ok(())
}

/// Verifies one envelope for `chain_id` with strict ed25519 verification.
pub fn verify_transaction(
    envelope: v1::SignedTransaction,
    chain_id: &str,
) -> Result<VerifiedTransaction, SigningError> {
    let prepared = prepare(&envelope, chain_id)?;
    verify_each(&prepared)?;
    Ok(finish(prepared, envelope))
}

/// Every encoding of a point of small order, with the sign bit of `x` (the top bit of the last
/// byte) cleared. An encoding carries `y` in its low 255 bits and decodes to `y mod p`; the
/// eight points of small order have five `y` values (1, p - 1, 0 and the two of the points of
/// order 8), and the only other 255-bit numbers congruent to one of them are p (for 0) and
/// p + 1 (for 1). So these seven are all of them: the libsodium blacklist. A test checks them
/// against curve25519-dalek's eight torsion points.
const SMALL_ORDER_ENCODINGS: [[u8; 32]; 7] = [
    // y = 0: the two points of order 4.
    [0; 32],
    // y = 1: the identity.
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    // The points of order 8, by their two `y` values.
    [
        38, 232, 149, 143, 194, 178, 39, 176, 69, 195, 244, 137, 242, 239, 152, 240, 213, 223, 172,
        5, 211, 198, 51, 57, 177, 56, 2, 136, 109, 83, 252, 5,
    ],
    [
        199, 23, 106, 112, 61, 77, 216, 79, 186, 60, 11, 118, 13, 16, 103, 15, 42, 32, 83, 250, 44,
        57, 204, 198, 78, 199, 253, 119, 146, 172, 3, 122,
    ],
    // y = p - 1: the point of order 2.
    [
        236, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 127,
    ],
    // y = p, the non-canonical 0.
    [
        237, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 127,
    ],
    // y = p + 1, the non-canonical 1.
    [
        238, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 127,
    ],
];

/// Whether the nonce point `R` of a signature is of small order; such signatures are refused
/// by the batch path just as `verify_strict` refuses them. A comparison of the encoding with
/// [`SMALL_ORDER_ENCODINGS`], so the point is not decoded twice (the batch decodes it). An `R`
/// that does not decode at all fails the batch, and then `verify_strict` names it.
fn nonce_is_weak(signature: &Ed25519Signature) -> bool {
    let mut encoding = *signature.r_bytes();
    encoding[31] &= 0x7f;
    SMALL_ORDER_ENCODINGS.contains(&encoding)
}

/// Verifies many envelopes at once. All signatures of all well-formed envelopes are checked in
/// one ed25519 batch, the terms of each key merged (`ed25519_batch`); if the batch fails, each
/// envelope is checked on its own so that exactly the bad ones are reported. The result has
/// one entry per envelope, in order.
pub fn verify_transactions(
    envelopes: Vec<v1::SignedTransaction>,
    chain_id: &str,
) -> Vec<Result<VerifiedTransaction, SigningError>> {
    let prepared: Vec<Result<Prepared, SigningError>> = envelopes
        .iter()
        .map(|envelope| prepare(envelope, chain_id))
        .collect();
    let mut messages: Vec<&[u8]> = Vec::new();
    let mut signatures = Vec::new();
    let mut keys = Vec::new();
    let mut any_weak_nonce = false;
    for candidate in prepared.iter().flatten() {
        for (key, signature) in candidate.keys.iter().zip(&candidate.signatures) {
            any_weak_nonce |= nonce_is_weak(signature);
            messages.push(&candidate.hash);
            signatures.push(*signature);
            keys.push(*key);
        }
    }
    let batch_ok = !any_weak_nonce
        && !signatures.is_empty()
        && crate::ed25519_batch::verify_batch(&messages, &signatures, &keys);
    prepared
        .into_iter()
        .zip(envelopes)
        .map(|(candidate, envelope)| {
            let candidate = candidate?;
            if !batch_ok {
                verify_each(&candidate)?;
            }
            Ok(finish(candidate, envelope))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn body(chain_id: &str) -> v1::TransactionBody {
        v1::TransactionBody {
            chain_id: chain_id.to_owned(),
            nonce: 7,
            valid_until_ms: 1_000,
            action: Some(v1::transaction_body::Action::ConfirmReceivable(
                v1::ConfirmReceivable {
                    receivable_id: "R-1".to_owned(),
                },
            )),
        }
    }

    #[test]
    fn signed_transaction_verifies_singly_and_in_batch() {
        let (a, b) = (key(1), key(2));
        let envelope = sign_transaction(&body("yrd-test"), &[&a, &b]).expect("sign");
        let verified = verify_transaction(envelope.clone(), "yrd-test").expect("verify");
        assert_eq!(
            verified.signers,
            vec![a.verifying_key().to_bytes(), b.verifying_key().to_bytes()]
        );
        let batch = verify_transactions(vec![envelope.clone(), envelope], "yrd-test");
        assert!(batch.iter().all(Result::is_ok));
    }

    #[test]
    fn signature_for_one_chain_does_not_verify_on_another() {
        let a = key(1);
        let mut envelope = sign_transaction(&body("chain-a"), &[&a]).expect("sign");
        // Same signature, body rewritten to name the other chain: the digest differs.
        let mut other = body("chain-b");
        other.nonce = 7;
        envelope.body = other.encode_to_vec();
        assert_eq!(
            verify_transaction(envelope, "chain-b"),
            Err(SigningError::BadSignature { index: 0 })
        );
        // And the untouched envelope is refused by a node of the other chain.
        let envelope = sign_transaction(&body("chain-a"), &[&a]).expect("sign");
        assert!(matches!(
            verify_transaction(envelope, "chain-b"),
            Err(SigningError::WrongChainId { .. })
        ));
    }

    #[test]
    fn signature_for_another_message_type_does_not_verify() {
        let a = key(1);
        let body_bytes = body("yrd-test").encode_to_vec();
        let vote_digest = signing_digest(Domain::Vote, "yrd-test", &body_bytes).expect("digest");
        let envelope = v1::SignedTransaction {
            body: body_bytes,
            signatures: vec![v1::Signature {
                public_key: a.verifying_key().to_bytes().to_vec(),
                signature: a.sign(&vote_digest).to_bytes().to_vec(),
            }],
        };
        assert_eq!(
            verify_transaction(envelope.clone(), "yrd-test"),
            Err(SigningError::BadSignature { index: 0 })
        );
        assert!(verify_transactions(vec![envelope], "yrd-test")[0].is_err());
    }

    #[test]
    fn tampered_body_fails_and_batch_names_the_bad_envelope() {
        let a = key(3);
        let good = sign_transaction(&body("yrd-test"), &[&a]).expect("sign");
        let mut bad = good.clone();
        let last = bad.body.len() - 1;
        bad.body[last] ^= 1;
        assert!(verify_transaction(bad.clone(), "yrd-test").is_err());
        let results = verify_transactions(vec![good.clone(), bad, good], "yrd-test");
        assert!(results[0].is_ok());
        assert!(results[1].is_err());
        assert!(results[2].is_ok());
    }

    #[test]
    fn duplicate_signer_and_limits_are_refused() {
        let a = key(4);
        let mut envelope = sign_transaction(&body("yrd-test"), &[&a]).expect("sign");
        envelope.signatures.push(envelope.signatures[0].clone());
        assert_eq!(
            verify_transaction(envelope, "yrd-test"),
            Err(SigningError::DuplicateSigner { index: 1 })
        );
        let unsigned = v1::SignedTransaction {
            body: body("yrd-test").encode_to_vec(),
            signatures: vec![],
        };
        assert_eq!(
            verify_transaction(unsigned, "yrd-test"),
            Err(SigningError::NoSignatures)
        );
        let huge = vec![0u8; TRANSACTION_BYTES_MAX + 1];
        assert!(matches!(
            decode_envelope(&huge),
            Err(SigningError::TooLarge { .. })
        ));
        assert!(signing_digest(Domain::Transaction, "", b"x").is_err());
    }

    #[test]
    fn small_order_public_key_is_refused() {
        // The identity point encodes as 1 followed by zeros: a key of small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(parse_public_key(&identity).is_none());
        assert!(parse_public_key(&[0u8; 31]).is_none());
    }

    #[test]
    fn small_order_encodings_are_exactly_the_torsion_points() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        let masked = |mut encoding: [u8; 32]| {
            encoding[31] &= 0x7f;
            encoding
        };
        // Every point of small order is listed, by its canonical encoding...
        for point in &EIGHT_TORSION {
            assert!(SMALL_ORDER_ENCODINGS.contains(&masked(point.compress().to_bytes())));
        }
        // ... and every listed encoding, with either sign bit, decodes (where it decodes at
        // all) to a point of small order, so the list refuses nothing `verify_strict` accepts.
        for encoding in SMALL_ORDER_ENCODINGS {
            let mut decoded = 0;
            for sign in [0u8, 0x80] {
                let mut bytes = encoding;
                bytes[31] |= sign;
                if let Ok(point) = VerifyingKey::from_bytes(&bytes) {
                    assert!(
                        point.is_weak(),
                        "{bytes:?} decodes to a point of large order"
                    );
                    decoded += 1;
                }
            }
            assert!(decoded > 0, "{encoding:?} decodes with neither sign");
        }
        // The two non-canonical ones are 0 and 1 plus p, so decode to the first two.
        for (canonical, noncanonical) in [(0, 5), (1, 6)] {
            let point = |index: usize| {
                VerifyingKey::from_bytes(&SMALL_ORDER_ENCODINGS[index])
                    .ok()
                    .map(|key| key.to_edwards())
            };
            assert!(point(canonical).is_some());
            assert_eq!(point(noncanonical), point(canonical));
        }
    }

    #[test]
    fn signature_with_a_nonce_of_small_order_is_refused_in_a_batch_and_alone() {
        let a = key(1);
        let good = sign_transaction(&body("yrd-test"), &[&a]).expect("sign");
        for nonce in SMALL_ORDER_ENCODINGS {
            let mut weak = good.clone();
            weak.signatures[0].signature[..32].copy_from_slice(&nonce);
            let batch = verify_transactions(vec![good.clone(), weak.clone()], "yrd-test");
            assert!(batch[0].is_ok());
            assert_eq!(batch[1], Err(SigningError::BadSignature { index: 0 }));
            assert_eq!(
                verify_transaction(weak, "yrd-test"),
                Err(SigningError::BadSignature { index: 0 })
            );
        }
    }

    #[test]
    fn cached_keys_decode_as_uncached_ones() {
        let a = key(9).verifying_key().to_bytes();
        let first = parse_public_key(&a).expect("valid key");
        let second = parse_public_key(&a).expect("valid key, from the cache");
        assert_eq!(first, second);
        assert_eq!(second.to_bytes(), a);
        assert!(KEY_CACHE.len() <= KEY_CACHE_MAX);
        // A key of small order is never cached, so it is refused every time.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(parse_public_key(&identity).is_none());
        assert!(!KEY_CACHE.contains(&identity));
    }
}
