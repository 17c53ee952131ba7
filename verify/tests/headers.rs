//! Certified headers and validator sets: a header verifies only with its exact bytes and a
//! quorum of distinct validators of the set deciding its height, and validator-set changes are
//! followed from genesis.

mod common;

use common::{certificate, certify, certify_by, set_of, validator_keys, Chain};
use prost::Message;
use yrd_chaincode::testkit::CHAIN_ID;
use yrd_proto::v1;
use yrd_verify::{
    verify_bundle, verify_certified_header, verify_headers, verify_state, verify_validator_set,
    Proven, Trust, VerifyError,
};

fn chain_with_blocks(count: usize) -> Chain {
    let mut chain = Chain::new();
    for _ in 0..count {
        chain.commit(vec![]);
    }
    chain
}

fn verify_one(chain: &Chain, certified: &v1::CertifiedHeader) -> Result<(), VerifyError> {
    verify_certified_header(CHAIN_ID, &set_of(&chain.validators), certified).map(|_| ())
}

#[test]
fn headers_verify_and_chain() {
    let chain = chain_with_blocks(3);
    let response = v1::HeadersResponse {
        headers: chain.headers.clone(),
        validator_changes: None,
    };
    let proven = verify_headers(&chain.trust(), &response).expect("verifies");
    assert_eq!(proven.len(), 3);
    assert_eq!(proven[2].block_hash, chain.block_hashes[2]);
    let bundle = v1::ProofBundle {
        answer: Some(v1::proof_bundle::Answer::Headers(response.clone())),
    };
    let text = verify_bundle(&chain.trust(), &bundle)
        .expect("bundle")
        .to_string();
    assert!(text.contains("3 chained headers, heights 1 to 3"), "{text}");
    assert!(text.contains("certified by 3 of 4 validators"), "{text}");
    // A gap, a reordering, an unchained header, no headers.
    let mut gap = response.clone();
    gap.headers.remove(1);
    assert!(verify_headers(&chain.trust(), &gap).is_err());
    let mut swapped = response.clone();
    swapped.headers.swap(0, 1);
    assert!(verify_headers(&chain.trust(), &swapped).is_err());
    let mut unchained = response.clone();
    let mut header = v1::BlockHeader::decode(unchained.headers[1].header.as_slice()).expect("h");
    header.parent_hash = vec![9; 32];
    unchained.headers[1] = certify(&header, &chain.validators);
    assert!(verify_one(&chain, &unchained.headers[1]).is_ok());
    assert!(verify_headers(&chain.trust(), &unchained).is_err());
    assert!(verify_headers(&chain.trust(), &v1::HeadersResponse::default()).is_err());
}

#[test]
fn flipping_any_byte_of_header_block_hash_or_signature_fails() {
    let chain = chain_with_blocks(1);
    let good = chain.header(1);
    verify_one(&chain, &good).expect("verifies");
    for i in 0..good.header.len() {
        let mut bad = good.clone();
        bad.header[i] ^= 1;
        assert!(verify_one(&chain, &bad).is_err(), "header byte {i}");
    }
    let wire = good.certificate.clone().expect("certificate");
    for i in 0..32 {
        let mut bad = good.clone();
        bad.certificate.as_mut().expect("c").block_hash[i] ^= 1;
        assert!(verify_one(&chain, &bad).is_err(), "block hash byte {i}");
    }
    for s in 0..wire.signatures.len() {
        for i in 0..64 {
            let mut bad = good.clone();
            bad.certificate.as_mut().expect("c").signatures[s].signature[i] ^= 1;
            assert!(verify_one(&chain, &bad).is_err(), "signature {s} byte {i}");
        }
    }
    let mut bad = good.clone();
    bad.certificate.as_mut().expect("c").height += 1;
    assert!(verify_one(&chain, &bad).is_err());
    let mut bad = good.clone();
    bad.certificate.as_mut().expect("c").round += 1;
    assert!(verify_one(&chain, &bad).is_err());
    let mut bad = good.clone();
    bad.certificate = None;
    assert!(verify_one(&chain, &bad).is_err());
}

#[test]
fn non_canonical_or_foreign_headers_fail() {
    let chain = chain_with_blocks(1);
    let good = chain.header(1);
    let header = v1::BlockHeader::decode(good.header.as_slice()).expect("header");
    // The same header with an unknown field appended, certified over those bytes.
    let mut bytes = good.header.clone();
    bytes.extend_from_slice(&[0xa0, 0x06, 0x01]); // field 100, varint 1
    assert_eq!(
        v1::BlockHeader::decode(bytes.as_slice()).expect("decodes"),
        header
    );
    let hash = yrd_proto::signing::signing_digest(
        yrd_proto::signing::Domain::BlockHeader,
        CHAIN_ID,
        &bytes,
    )
    .expect("hash");
    let signers: Vec<_> = chain
        .validators
        .iter()
        .take(3)
        .enumerate()
        .map(|(i, k)| (i as u16, k))
        .collect();
    let padded = v1::CertifiedHeader {
        header: bytes,
        certificate: Some(certificate(1, 0, hash, &signers)),
    };
    assert_eq!(
        verify_one(&chain, &padded),
        Err(VerifyError::NonCanonicalHeader)
    );
    let mut foreign = header.clone();
    foreign.chain_id = "other-chain".to_owned();
    assert!(verify_one(&chain, &certify(&foreign, &chain.validators)).is_err());
    let mut oversized = good.clone();
    oversized.header = vec![0; 64 * 1024 + 1];
    assert!(matches!(
        verify_one(&chain, &oversized),
        Err(VerifyError::TooLarge { .. })
    ));
}

#[test]
fn too_few_foreign_or_repeated_signers_fail() {
    let chain = chain_with_blocks(1);
    let header = v1::BlockHeader::decode(chain.header(1).header.as_slice()).expect("header");
    let v = &chain.validators;
    let ok = certify_by(&header, &[(0, &v[0]), (1, &v[1]), (3, &v[3])]);
    verify_one(&chain, &ok).expect("any three of four");
    let two = certify_by(&header, &[(0, &v[0]), (1, &v[1])]);
    assert!(matches!(
        verify_one(&chain, &two),
        Err(VerifyError::Certificate(
            yrd_consensus::Error::InsufficientQuorum { .. }
        ))
    ));
    let strangers = validator_keys("stranger", 4);
    let foreign: Vec<_> = strangers
        .iter()
        .enumerate()
        .map(|(i, k)| (i as u16, k))
        .collect();
    assert!(matches!(
        verify_one(&chain, &certify_by(&header, &foreign)),
        Err(VerifyError::Certificate(
            yrd_consensus::Error::InvalidSignature { .. }
        ))
    ));
    let repeated = certify_by(&header, &[(0, &v[0]), (0, &v[0]), (1, &v[1])]);
    assert!(matches!(
        verify_one(&chain, &repeated),
        Err(VerifyError::Certificate(
            yrd_consensus::Error::DuplicateSigner { .. }
        ))
    ));
    let unordered = certify_by(&header, &[(1, &v[1]), (0, &v[0]), (2, &v[2])]);
    assert!(verify_one(&chain, &unordered).is_err());
    let unknown = certify_by(&header, &[(0, &v[0]), (1, &v[1]), (7, &v[2])]);
    assert!(verify_one(&chain, &unknown).is_err());
    // A right signature under another validator's index.
    let misattributed = certify_by(&header, &[(0, &v[0]), (1, &v[2]), (2, &v[1])]);
    assert!(verify_one(&chain, &misattributed).is_err());
}

/// A chain whose set goes from 4 to 5 validators after height 2.
fn changed_chain() -> (Chain, Vec<ed25519_dalek::SigningKey>) {
    let mut chain = chain_with_blocks(1);
    let old = chain.validators.clone();
    let mut new = old.clone();
    new.extend(validator_keys("newcomer", 1));
    chain.next_validators = Some(new);
    chain.commit(vec![]); // height 2 names the new set
    chain.commit(vec![]); // height 3, decided by five
    chain.commit(vec![]); // height 4
    assert_eq!(chain.validators.len(), 5);
    assert_eq!(chain.changes.len(), 1);
    (chain, old)
}

#[test]
fn validator_set_change_is_followed() {
    let (chain, old) = changed_chain();
    let trust = chain.trust();
    let state = chain.state_response(b"v/current", 4);
    let proven = verify_state(&trust, &state).expect("state at height 4");
    assert_eq!(proven.header.validators, 5);
    assert!(
        proven
            .to_string()
            .contains("certified by 4 of 5 validators"),
        "{proven}"
    );
    // Without the change the header of height 4 names an unknown set.
    let mut missing = state.clone();
    missing.validator_changes = None;
    assert!(verify_state(&trust, &missing).is_err());
    // A header of height 4 certified by the old set after the change fails, whether it names
    // the old set or the new one.
    let mut header = v1::BlockHeader::decode(chain.header(4).header.as_slice()).expect("h");
    let mut by_old = state.clone();
    by_old.header = Some(certify(&header, &old));
    assert!(verify_state(&trust, &by_old).is_err());
    header.validator_set_hash = set_of(&old).hash().to_vec();
    by_old.header = Some(certify(&header, &old));
    assert!(verify_state(&trust, &by_old).is_err());
    // The change must be certified by the set in force at its height.
    let mut forged = state.clone();
    let change = &mut forged.validator_changes.as_mut().expect("changes").changes[0];
    let mut change_header =
        v1::BlockHeader::decode(change.header.as_ref().expect("h").header.as_slice()).expect("h");
    change_header.time_ms += 1;
    change.header = Some(certify(&change_header, &validator_keys("stranger", 4)));
    assert!(verify_state(&trust, &forged).is_err());
    // The change's validators must be the set its header names.
    let mut swapped = state.clone();
    swapped.validator_changes.as_mut().expect("changes").changes[0]
        .validators
        .swap(0, 1);
    assert!(verify_state(&trust, &swapped).is_err());
    // Headers across the change verify; states before it need no change.
    let headers = v1::HeadersResponse {
        headers: chain.headers.clone(),
        validator_changes: chain.changes_below(4),
    };
    assert_eq!(verify_headers(&trust, &headers).expect("headers").len(), 4);
    verify_state(&trust, &chain.state_response(b"v/current", 2)).expect("state at 2");
    // A change at or above the answer's height is refused.
    let mut late = chain.state_response(b"v/current", 2);
    late.validator_changes = chain.changes_below(4);
    assert!(verify_state(&trust, &late).is_err());
}

#[test]
fn validator_set_answers() {
    let (chain, old) = changed_chain();
    let trust = chain.trust();
    let keys = |set: &[ed25519_dalek::SigningKey]| -> Vec<Vec<u8>> {
        set.iter()
            .map(|k| k.verifying_key().to_bytes().to_vec())
            .collect()
    };
    let genesis = v1::ValidatorSetResponse {
        height: 1,
        validators: keys(&old),
        validator_changes: None,
        previous_header: None,
    };
    let proven = verify_validator_set(&trust, &genesis).expect("genesis set");
    assert_eq!(proven.validators.len(), 4);
    let mut wrong = genesis.clone();
    wrong.validators.swap(0, 1);
    assert!(verify_validator_set(&trust, &wrong).is_err());
    let new = v1::ValidatorSetResponse {
        height: 3,
        validators: keys(&chain.validators),
        validator_changes: chain.changes_below(3),
        previous_header: Some(chain.header(2)),
    };
    let proven = verify_validator_set(&trust, &new).expect("new set");
    assert_eq!(proven.changes, 1);
    let text = verify_bundle(
        &trust,
        &v1::ProofBundle {
            answer: Some(v1::proof_bundle::Answer::ValidatorSet(new.clone())),
        },
    )
    .expect("bundle");
    assert!(matches!(text, Proven::ValidatorSet(_)));
    assert!(
        text.to_string()
            .contains("height 3 is decided by 5 validators"),
        "{text}"
    );
    let mut stale = new.clone();
    stale.validators = keys(&old);
    assert!(verify_validator_set(&trust, &stale).is_err());
    let mut no_previous = new.clone();
    no_previous.previous_header = None;
    assert!(verify_validator_set(&trust, &no_previous).is_err());
    let mut wrong_previous = new.clone();
    wrong_previous.previous_header = Some(chain.header(1));
    assert!(verify_validator_set(&trust, &wrong_previous).is_err());
    let mut no_changes = new;
    no_changes.validator_changes = None;
    assert!(verify_validator_set(&trust, &no_changes).is_err());
    assert!(Trust::from_genesis(&v1::Genesis::default()).is_err());
}
