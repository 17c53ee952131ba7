//! Golden-byte fixtures of the transaction format: the encoded body, the signing bytes, the
//! transaction hash, the signature and the encoded envelope of fixed transactions. A change to
//! any of them changes what every signer signs; it must be a deliberate act: rerun with
//! `YRD_UPDATE_GOLDEN=1` and commit the new fixture with an explanation.

use std::fmt::Write as _;
use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use prost::Message;
use yrd_proto::signing::{
    sign_transaction, signing_bytes, transaction_hash, verify_transaction, Domain,
};
use yrd_proto::v1::{self, transaction_body::Action};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Fixed transactions covering a single-signer and a three-signer envelope.
fn cases() -> Vec<(&'static str, v1::TransactionBody, Vec<SigningKey>)> {
    let key = |seed: u8| SigningKey::from_bytes(&[seed; 32]);
    vec![
        (
            "register_receivable",
            v1::TransactionBody {
                chain_id: "yrd-golden".into(),
                nonce: 42,
                valid_until_ms: 1_767_225_600_000,
                action: Some(Action::RegisterReceivable(v1::RegisterReceivable {
                    receivable_id: "AR-2026-0001".into(),
                    debtor_uscc: "91310115MA1HT7Q4X0".into(),
                    creditor_uscc: "91320594MA1NT7Q45Q".into(),
                    face_fen: 125_000_000,
                    due_day: 20_600,
                    invoice_hashes: vec![vec![0x11; 32], vec![0x22; 32]],
                    contract_hash: vec![0x33; 32],
                })),
            },
            vec![key(7)],
        ),
        (
            "pledge_fund_units",
            v1::TransactionBody {
                chain_id: "yrd-golden".into(),
                nonce: 43,
                valid_until_ms: 1_767_225_600_000,
                action: Some(Action::PledgeFundUnits(v1::PledgeFundUnits {
                    fund_id: "SH-PE-001".into(),
                    pledgor_uscc: "914403001922038216".into(),
                    pledgee_uscc: "9144030071526726XG".into(),
                    units: 5_000,
                })),
            },
            vec![key(1), key(2), key(3)],
        ),
    ]
}

fn render() -> String {
    let mut out = String::new();
    for (name, body, keys) in cases() {
        let refs: Vec<&SigningKey> = keys.iter().collect();
        let envelope = sign_transaction(&body, &refs).expect("sign");
        let verified = verify_transaction(envelope.clone(), &body.chain_id).expect("verify");
        let signing =
            signing_bytes(Domain::Transaction, &body.chain_id, &envelope.body).expect("bytes");
        let hash = transaction_hash(&body.chain_id, &envelope.body).expect("hash");
        assert_eq!(verified.hash, hash);
        writeln!(out, "[{name}]").expect("write");
        writeln!(out, "body = {}", hex::encode(&envelope.body)).expect("write");
        writeln!(out, "signing_bytes = {}", hex::encode(&signing)).expect("write");
        writeln!(out, "tx_hash = {}", hex::encode(hash)).expect("write");
        for (index, signature) in envelope.signatures.iter().enumerate() {
            writeln!(
                out,
                "public_key.{index} = {}",
                hex::encode(&signature.public_key)
            )
            .expect("write");
            writeln!(
                out,
                "signature.{index} = {}",
                hex::encode(&signature.signature)
            )
            .expect("write");
        }
        writeln!(out, "envelope = {}", hex::encode(envelope.encode_to_vec())).expect("write");
        writeln!(out).expect("write");
    }
    out
}

#[test]
fn transaction_encoding_signing_bytes_and_hash_match_the_fixture() {
    let path = fixture_path("transactions.golden");
    let rendered = render();
    if std::env::var_os("YRD_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &rendered).expect("write fixture");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with YRD_UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    assert_eq!(
        rendered, expected,
        "the transaction format changed; if deliberate, rerun with YRD_UPDATE_GOLDEN=1 and commit the fixture"
    );
}

#[test]
fn signing_bytes_start_with_the_domain_and_chain_id() {
    let bytes = signing_bytes(Domain::Transaction, "yrd-golden", b"BODY").expect("bytes");
    let mut expected = b"yrd/tx/v1\0".to_vec();
    expected.push(10);
    expected.extend_from_slice(b"yrd-golden");
    expected.extend_from_slice(b"BODY");
    assert_eq!(bytes, expected);
}
