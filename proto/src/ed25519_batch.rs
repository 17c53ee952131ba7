//! Batch verification of ed25519 signatures with the terms of each key merged.
//!
//! `ed25519_dalek::verify_batch` checks, for random 128-bit `z_i`,
//!
//! ```text
//! [-Σ z_i s_i] B + Σ [z_i] R_i + Σ [z_i h_i] A_i == identity
//! ```
//!
//! with `h_i = SHA-512(R_i || A_i || M_i) mod ℓ`, as one multiscalar multiplication over
//! `1 + 2n` points. When a key signs several messages of the batch (a member submitting many
//! transactions), its terms add up: `Σ_{i: A_i = A} [z_i h_i] A = [Σ_{i: A_i = A} z_i h_i] A`.
//! [`verify_batch`] computes exactly that sum, the same group element, over `1 + n + k` points
//! for `k` distinct keys, so it accepts exactly what the same equation accepts and costs about
//! a third less when, as in the benchmark's mix, 256 signatures come from 70 keys.
//!
//! What stays the same as `ed25519_dalek::verify_batch`: every `s_i` must be canonical (below
//! `ℓ`), every `R_i` must decode, and the check is cofactorless. The `z_i` are each drawn from
//! the operating system's random source (dalek derives them from a transcript of the batch);
//! either way a party that does not know them cannot make invalid signatures cancel out, but
//! for a chance of about 2^-128. Callers refuse keys and nonces of small order before, as
//! `verify_strict` would.
//!
//! The points are those of curve25519-dalek 5, not of the version 4 inside `ed25519_dalek`
//! 2: its multiscalar multiplication has an AVX-512 IFMA backend, picked at run time on CPUs
//! that have it, which takes less than half the time of the AVX2 one (see
//! `.cargo/config.toml`). The two versions do not share point types, so the keys are decoded
//! again for this crate, once each, and kept as the signing module keeps its verifying keys
//! (`KeyCache`, at most [`crate::signing::KEY_CACHE_MAX`]).

use std::collections::HashMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::{Signature, VerifyingKey};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha512};

use crate::signing::KeyCache;

/// Bytes of each random coefficient `z_i`.
const COEFFICIENT_BYTES: usize = 16;

/// Keys already decoded as curve points of this crate's curve library.
static KEY_POINTS: KeyCache<EdwardsPoint> = KeyCache::new();

/// The curve point of each key, decoded once and then kept; `None` if one does not decode,
/// which a `VerifyingKey` always does.
fn key_points<'a>(keys: impl Iterator<Item = &'a [u8; 32]>) -> Option<Vec<EdwardsPoint>> {
    keys.map(|key| KEY_POINTS.get_or_decode(key, |key| CompressedEdwardsY(*key).decompress()))
        .collect()
}

/// Whether every `signatures[i]` is a valid signature of `messages[i]` by `keys[i]`, checked
/// at once. False when the slices differ in length or are empty, or the random source fails:
/// the caller then checks the signatures one by one.
#[must_use]
pub fn verify_batch(messages: &[&[u8]], signatures: &[Signature], keys: &[VerifyingKey]) -> bool {
    let count = signatures.len();
    if count == 0 || messages.len() != count || keys.len() != count {
        return false;
    }
    let mut randomness = vec![0_u8; count * COEFFICIENT_BYTES];
    if OsRng.try_fill_bytes(&mut randomness).is_err() {
        return false;
    }
    let mut basepoint_coefficient = Scalar::ZERO;
    let mut nonce_coefficients = Vec::with_capacity(count);
    let mut nonces = Vec::with_capacity(count);
    // One term per distinct key: its coefficient and point, by the key's encoding.
    let mut key_terms: HashMap<&[u8; 32], usize> = HashMap::new();
    let mut key_coefficients: Vec<Scalar> = Vec::new();
    let mut distinct_keys: Vec<&[u8; 32]> = Vec::new();
    for (index, ((message, signature), key)) in
        messages.iter().zip(signatures).zip(keys).enumerate()
    {
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(*signature.s_bytes()))
        else {
            return false;
        };
        let Some(nonce) = CompressedEdwardsY(*signature.r_bytes()).decompress() else {
            return false;
        };
        let challenge = Scalar::from_bytes_mod_order_wide(
            &Sha512::new()
                .chain_update(signature.r_bytes())
                .chain_update(key.as_bytes())
                .chain_update(message)
                .finalize()
                .into(),
        );
        let mut z = [0_u8; COEFFICIENT_BYTES];
        z.copy_from_slice(&randomness[index * COEFFICIENT_BYTES..][..COEFFICIENT_BYTES]);
        let z = Scalar::from(u128::from_le_bytes(z));
        basepoint_coefficient += z * s;
        nonce_coefficients.push(z);
        nonces.push(nonce);
        let term = *key_terms.entry(key.as_bytes()).or_insert_with(|| {
            key_coefficients.push(Scalar::ZERO);
            distinct_keys.push(key.as_bytes());
            distinct_keys.len() - 1
        });
        key_coefficients[term] += z * challenge;
    }
    let Some(key_points) = key_points(distinct_keys.into_iter()) else {
        return false;
    };
    let scalars = std::iter::once(-basepoint_coefficient)
        .chain(nonce_coefficients)
        .chain(key_coefficients);
    let points = std::iter::once(ED25519_BASEPOINT_POINT)
        .chain(nonces)
        .chain(key_points);
    EdwardsPoint::vartime_multiscalar_mul(scalars, points).is_identity()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use proptest::prelude::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// `count` messages signed by `keys` distinct keys in turn.
    fn batch(count: usize, keys: u8) -> (Vec<Vec<u8>>, Vec<Signature>, Vec<VerifyingKey>) {
        let mut messages = Vec::new();
        let mut signatures = Vec::new();
        let mut verifying = Vec::new();
        for i in 0..count {
            let signer = key(1 + u8::try_from(i % usize::from(keys)).unwrap());
            let message = format!("message {i}").into_bytes();
            signatures.push(signer.sign(&message));
            verifying.push(signer.verifying_key());
            messages.push(message);
        }
        (messages, signatures, verifying)
    }

    fn both(messages: &[Vec<u8>], signatures: &[Signature], keys: &[VerifyingKey]) -> (bool, bool) {
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        (
            verify_batch(&messages, signatures, keys),
            ed25519_dalek::verify_batch(&messages, signatures, keys).is_ok(),
        )
    }

    fn with_s(signature: &Signature, s: [u8; 32]) -> Signature {
        let mut bytes = signature.to_bytes();
        bytes[32..].copy_from_slice(&s);
        Signature::from_bytes(&bytes)
    }

    #[test]
    fn a_valid_batch_with_repeated_keys_verifies() {
        for (count, keys) in [(1, 1), (2, 1), (16, 3), (256, 70), (300, 7)] {
            let (messages, signatures, verifying) = batch(count, keys);
            assert_eq!(
                both(&messages, &signatures, &verifying),
                (true, true),
                "{count} by {keys}"
            );
        }
    }

    #[test]
    fn empty_or_mismatched_input_is_not_a_valid_batch() {
        let (messages, signatures, keys) = batch(4, 2);
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        assert!(!verify_batch(&[], &[], &[]));
        assert!(!verify_batch(&messages[..3], &signatures, &keys));
        assert!(!verify_batch(&messages, &signatures[..3], &keys));
        assert!(!verify_batch(&messages, &signatures, &keys[..3]));
    }

    #[test]
    fn errors_of_one_key_that_would_cancel_in_its_merged_term_do_not() {
        // Two signatures by the same key, one with s + 1 and one with s - 1: the sum of the
        // s terms is unchanged, and only the per-signature coefficients catch it.
        let (messages, mut signatures, verifying) = batch(6, 2);
        assert_eq!(verifying[0], verifying[2]);
        let one = Scalar::ONE;
        let s0 = Scalar::from_canonical_bytes(*signatures[0].s_bytes()).unwrap();
        let s2 = Scalar::from_canonical_bytes(*signatures[2].s_bytes()).unwrap();
        signatures[0] = with_s(&signatures[0], (s0 + one).to_bytes());
        signatures[2] = with_s(&signatures[2], (s2 - one).to_bytes());
        assert_eq!(both(&messages, &signatures, &verifying), (false, false));
    }

    #[test]
    fn a_non_canonical_s_is_refused_as_dalek_refuses_it() {
        let (messages, mut signatures, verifying) = batch(4, 2);
        // s + ℓ is the same scalar, not the same encoding: malleability, refused.
        let order: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        assert_eq!(Scalar::from_bytes_mod_order(order), Scalar::ZERO, "ℓ");
        let s = Scalar::from_canonical_bytes(*signatures[1].s_bytes()).unwrap();
        let mut wide = [0_u8; 33];
        let mut carry = 0_u16;
        for (i, byte) in wide.iter_mut().take(32).enumerate() {
            let sum = u16::from(s.as_bytes()[i]) + u16::from(order[i]) + carry;
            *byte = (sum & 0xff) as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0, "s + ℓ fits in 32 bytes");
        signatures[1] = with_s(&signatures[1], wide[..32].try_into().unwrap());
        assert_eq!(both(&messages, &signatures, &verifying), (false, false));
    }

    #[test]
    fn a_nonce_that_does_not_decode_is_refused() {
        let (messages, mut signatures, verifying) = batch(3, 1);
        let mut bytes = signatures[2].to_bytes();
        // y = 2 is not the y of any point on the curve.
        let mut nonce = [0_u8; 32];
        nonce[0] = 2;
        bytes[..32].copy_from_slice(&nonce);
        assert!(CompressedEdwardsY(bytes[..32].try_into().unwrap())
            .decompress()
            .is_none());
        signatures[2] = Signature::from_bytes(&bytes);
        assert_eq!(both(&messages, &signatures, &verifying), (false, false));
    }

    #[test]
    fn key_points_are_the_keys_and_stay_bounded() {
        let keys: Vec<[u8; 32]> = (0..=u32::try_from(crate::signing::KEY_CACHE_MAX).unwrap())
            .map(|i| {
                let mut seed = [0_u8; 32];
                seed[..4].copy_from_slice(&i.to_le_bytes());
                SigningKey::from_bytes(&seed).verifying_key().to_bytes()
            })
            .collect();
        let points = key_points(keys.iter()).unwrap();
        for (key, point) in keys.iter().zip(&points) {
            assert_eq!(point.compress().to_bytes(), *key);
        }
        assert!(KEY_POINTS.len() <= crate::signing::KEY_CACHE_MAX);
        // A point not on the curve (no x for y = 2) is refused, not cached.
        let mut off_curve = [0_u8; 32];
        off_curve[0] = 2;
        assert!(key_points(std::iter::once(&off_curve)).is_none());
        assert!(!KEY_POINTS.contains(&off_curve));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever is tampered with (a bit of R, of s, of a message, or a key swapped for
        /// another member's), the merged batch says what dalek's batch says.
        #[test]
        fn agrees_with_dalek_on_tampered_batches(
            count in 1_usize..40,
            keys in 1_u8..6,
            target in 0_usize..40,
            kind in 0_u8..5,
            bit in 0_usize..256,
        ) {
            let (mut messages, mut signatures, mut verifying) = batch(count, keys);
            let target = target % count;
            match kind {
                0 => {
                    let mut bytes = signatures[target].to_bytes();
                    bytes[bit / 8] ^= 1 << (bit % 8);
                    signatures[target] = Signature::from_bytes(&bytes);
                }
                1 => {
                    let mut bytes = signatures[target].to_bytes();
                    bytes[32 + bit / 8 % 32] ^= 1 << (bit % 8);
                    signatures[target] = Signature::from_bytes(&bytes);
                }
                2 => messages[target].push(1),
                3 => verifying[target] = key(200).verifying_key(),
                _ => {}
            }
            let (merged, dalek) = both(&messages, &signatures, &verifying);
            prop_assert_eq!(merged, dalek);
            prop_assert_eq!(merged, kind == 4);
        }
    }
}
