//! Verifiable provenance end to end: a network commits a credit report and two amendments, and
//! a client fetches the report's history from an observer and verifies every version offline
//! against the genesis file alone.

use std::time::Duration;

use prost::Message;
use yrd_proto::v1::{self, proofs_client::ProofsClient};
use yrd_tests::{amend_report, record_report, sign, submit_and_wait, Cluster};

const PROGRESS: Duration = Duration::from_secs(60);
const REPORT: &str = "CR-PROV";

/// Versions `from_version ..` of `key` at `height` (at most `limit`, 0 for the server's most).
async fn history(
    observer: &mut ProofsClient<tonic::transport::Channel>,
    key: &[u8],
    height: u64,
    from_version: u32,
    limit: u32,
) -> v1::HistoryResponse {
    observer
        .get_history(v1::HistoryRequest {
            key: key.to_vec(),
            height,
            from_version,
            limit,
        })
        .await
        .unwrap_or_else(|status| panic!("history at {height} from {from_version}: {status}"))
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reports_history_from_an_observer_verifies_offline() {
    let cluster = Cluster::start("provenance", 4, 1);
    cluster.wait_height(0, 1, PROGRESS).await;
    let (core, _) = cluster.member("core");
    let (_, bureau_key) = cluster.member("bureau");
    let record = record_report(REPORT, core);
    let mut written = Vec::new();
    written.push(submit_and_wait(&cluster, 0, sign(record, &[&bureau_key], 1)).await);
    written.push(
        submit_and_wait(
            &cluster,
            1,
            sign(amend_report(REPORT, "second", 2), &[&bureau_key], 2),
        )
        .await,
    );
    written.push(
        submit_and_wait(
            &cluster,
            2,
            sign(amend_report(REPORT, "third", 3), &[&bureau_key], 3),
        )
        .await,
    );
    let last = written.last().expect("written").height;
    cluster.wait_height(4, last, PROGRESS).await;

    let genesis = yrd_node::config::GenesisFile::load(&cluster.dir.join("genesis.json"))
        .expect("genesis file");
    let trust = yrd_verify::Trust::from_genesis(&genesis).expect("trust");
    let mut observer =
        ProofsClient::new(cluster.channel(4).await.expect("connect to the observer"));
    let key = yrd_chaincode::keys::credit_report(REPORT);
    let answer = history(&mut observer, &key, last, 0, 0).await;
    // What crosses the wire is checked as bytes: a client saves the answer and verifies it later.
    let bytes = answer.encode_to_vec();
    let answer = v1::HistoryResponse::decode(bytes.as_slice()).expect("decode");
    let proven = yrd_verify::verify_history(&trust, &answer).expect("the history verifies");
    assert_eq!(proven.version_count, 3);
    assert!(proven.complete, "all versions are returned");
    assert_eq!(proven.versions.len(), 3);
    for (index, (version, result)) in proven.versions.iter().zip(&written).enumerate() {
        assert_eq!(version.index as usize, index);
        assert_eq!(version.height, result.height, "version {index}");
        assert_eq!(version.tx_index, result.tx_index, "version {index}");
        assert_eq!(
            version.tx_hash.to_vec(),
            result.receipt.as_ref().expect("receipt").tx_hash,
            "version {index}"
        );
        assert_eq!(
            version.signers,
            vec![bureau_key.verifying_key().to_bytes()],
            "version {index}"
        );
        let stored = v1::CreditReportRecord::decode(version.value.as_slice()).expect("record");
        assert_eq!(stored.version_count as usize, index + 1);
    }
    assert!(proven.includes_latest);
    let latest = proven.value.as_ref().expect("the report exists");
    assert_eq!(latest, &proven.versions[2].value);
    println!("{proven}");

    // One changed byte anywhere in what the client relies on and the answer does not verify.
    let mut tampered = answer.clone();
    tampered.versions[1].entry[10] ^= 1;
    assert!(yrd_verify::verify_history(&trust, &tampered).is_err());
    let mut tampered = answer.clone();
    tampered.versions.remove(1);
    assert!(yrd_verify::verify_history(&trust, &tampered).is_err());
    let mut tampered = answer;
    tampered.value[0] ^= 1;
    assert!(yrd_verify::verify_history(&trust, &tampered).is_err());

    // A page that stops before the latest version still proves the count; an answer about the
    // height of the second version counts two (the node finds past counts from the entries).
    let page = history(&mut observer, &key, last, 0, 1).await;
    let proven_page = yrd_verify::verify_history(&trust, &page).expect("the page verifies");
    assert_eq!(proven_page.version_count, 3);
    assert_eq!(proven_page.versions.len(), 1);
    assert!(!proven_page.includes_latest && !proven_page.complete);
    let mut unproven = page;
    unproven.last_entry_proof = None;
    assert!(yrd_verify::verify_history(&trust, &unproven).is_err());
    // An empty page past the last version still proves the count.
    let empty = history(&mut observer, &key, last, 3, 0).await;
    let proven_empty = yrd_verify::verify_history(&trust, &empty).expect("the empty page verifies");
    assert_eq!(proven_empty.version_count, 3);
    assert!(proven_empty.versions.is_empty() && !proven_empty.includes_latest);
    let second = written[1].height;
    assert!(second < written[2].height);
    for height in [second, written[2].height - 1] {
        let earlier = history(&mut observer, &key, height, 0, 0).await;
        let proven_earlier =
            yrd_verify::verify_history(&trust, &earlier).expect("the earlier history verifies");
        assert_eq!(proven_earlier.version_count, 2, "at height {height}");
        assert!(proven_earlier.complete && proven_earlier.includes_latest);
    }
    // History counts are outside the state tree: a proof of one is refused.
    let refused = observer
        .get_state_proof(v1::StateProofRequest {
            key: yrd_chaincode::keys::history_count(&key),
            height: 0,
        })
        .await
        .expect_err("h/c keys are not proven");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    // The other answers verify too: the report's state proof, headers and the validator set.
    let state = observer
        .get_state_proof(v1::StateProofRequest {
            key: key.clone(),
            height: 0,
        })
        .await
        .expect("state proof")
        .into_inner();
    let proven_state = yrd_verify::verify_state(&trust, &state).expect("the state proof verifies");
    assert!(proven_state.value.is_some());
    let absent = observer
        .get_state_proof(v1::StateProofRequest {
            key: yrd_chaincode::keys::credit_report("CR-NEVER"),
            height: last,
        })
        .await
        .expect("absence proof")
        .into_inner();
    assert!(!absent.exists);
    let proven_absent = yrd_verify::verify_state(&trust, &absent).expect("absence verifies");
    assert!(proven_absent.value.is_none());
    let headers = observer
        .get_headers(v1::HeadersRequest {
            from_height: 1,
            limit: 0,
        })
        .await
        .expect("headers")
        .into_inner();
    let proven_headers = yrd_verify::verify_headers(&trust, &headers).expect("headers verify");
    assert!(proven_headers.len() as u64 >= last);
    let set = observer
        .get_validator_set(v1::ValidatorSetRequest { height: last })
        .await
        .expect("validator set")
        .into_inner();
    yrd_verify::verify_validator_set(&trust, &set).expect("the validator set verifies");
}
