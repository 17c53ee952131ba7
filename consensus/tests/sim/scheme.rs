//! A cheap, deterministic stand-in for Ed25519 so the simulator can run hundreds of thousands of
//! heights: a signature is a keyed mixing of the 32-byte message. It is forgeable by design; the
//! simulated Byzantine validators only ever sign with their own keys.

use sha2::{Digest, Sha256};
use yrd_consensus::{PublicKey, Signature, SignatureScheme};

/// The simulator's signature scheme.
#[derive(Debug, Clone, Copy, Default)]
pub struct TestScheme;

/// The signature of `message` under `key`.
pub fn test_sign(key: &PublicKey, message: &[u8; 32]) -> Signature {
    let mut signature = [0u8; 64];
    for i in 0..32 {
        signature[i] = message[i] ^ key.0[i];
        signature[32 + i] = message[i].wrapping_add(key.0[31 - i]);
    }
    Signature(signature)
}

impl SignatureScheme for TestScheme {
    fn verify(&self, public_key: &PublicKey, message: &[u8; 32], signature: &Signature) -> bool {
        test_sign(public_key, message) == *signature
    }
}

/// The public key of simulated validator `index`.
pub fn sim_key(index: usize) -> PublicKey {
    let mut hasher = Sha256::new();
    hasher.update(b"yrd-sim-key");
    hasher.update((index as u64).to_be_bytes());
    PublicKey(hasher.finalize().into())
}
