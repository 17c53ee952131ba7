//! Multi-process tests of the node over loopback: real `yrd-node` processes, free ports, their
//! own folders, killed with SIGKILL and restarted. Waits are on observed state with deadlines.

use std::collections::BTreeSet;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use tonic::Code;
use yrd_proto::v1::{self, transaction_body::Action};
use yrd_tests::{now_ms, sign, Cluster};

const START: Duration = Duration::from_secs(90);
const PROGRESS: Duration = Duration::from_secs(60);

fn grant(grantee: &str, purpose: v1::QueryPurpose) -> Action {
    Action::GrantAuthorization(v1::GrantAuthorization {
        grantee_uscc: grantee.into(),
        purpose: purpose as i32,
        expires_at_ms: now_ms() + 86_400_000,
    })
}

async fn wait_all(cluster: &Cluster, indices: &[usize], height: u64) {
    for &index in indices {
        cluster.wait_height(index, height, PROGRESS).await;
    }
}

fn header_of(block: &v1::CommittedBlock) -> v1::BlockHeader {
    block
        .block
        .as_ref()
        .and_then(|b| b.header.clone())
        .expect("header")
}

async fn submit(
    cluster: &Cluster,
    index: usize,
    envelope: v1::SignedTransaction,
) -> Result<Vec<u8>, tonic::Status> {
    let mut client = cluster.ledger(index).await.expect("connect");
    client
        .submit(v1::SubmitRequest {
            transaction: Some(envelope),
        })
        .await
        .map(|r| r.into_inner().tx_hash)
}

async fn wait_commit(cluster: &Cluster, index: usize, tx_hash: &[u8]) -> v1::TransactionResult {
    let mut client = cluster.ledger(index).await.expect("connect");
    let mut request = tonic::Request::new(v1::TransactionHash {
        tx_hash: tx_hash.to_vec(),
    });
    request.set_timeout(PROGRESS);
    client
        .wait_for_commit(request)
        .await
        .unwrap_or_else(|s| {
            panic!(
                "wait on node {index}: {s}; log:\n{}",
                cluster.log_tail(index)
            )
        })
        .into_inner()
}

/// gRPC health says SERVING and server reflection lists the yrd services, so standard tools
/// (grpcurl, grpc_health_probe) work without the proto files.
async fn assert_health_and_reflection(cluster: &Cluster, index: usize) {
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let channel = cluster.channel(index).await.expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let answer = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "yrd.v1.Ledger".into(),
        })
        .await
        .expect("health check")
        .into_inner();
    assert_eq!(
        answer.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("reflection answer")
        .expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("reflection did not list services: {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in ["yrd.v1.Ledger", "yrd.v1.Registry"] {
        assert!(
            names.iter().any(|n| n == service),
            "reflection lists {names:?}, not {service}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_sent_to_any_node_commits_with_the_same_block_and_state_on_all_four() {
    let cluster = Cluster::start("any-node", 4, 0);
    wait_all(&cluster, &[0, 1, 2, 3], 1).await;
    assert_health_and_reflection(&cluster, 0).await;
    let (_, core_key) = cluster.member("core");
    let (bank, _) = cluster.member("bank0");
    let mut heights = Vec::new();
    for index in 0..4 {
        let envelope = sign(
            grant(&bank, v1::QueryPurpose::LoanApproval),
            &[&core_key],
            1_000 + index as u64,
        );
        let hash = submit(&cluster, index, envelope).await.expect("submit");
        let result = wait_commit(&cluster, (index + 1) % 4, &hash).await;
        assert!(result.receipt.expect("receipt").accepted);
        heights.push(result.height);
    }
    let top = *heights.iter().max().expect("heights");
    wait_all(&cluster, &[0, 1, 2, 3], top).await;
    for height in heights {
        let mut seen = BTreeSet::new();
        for index in 0..4 {
            let header = header_of(&cluster.block(index, height).await.expect("block"));
            seen.insert((
                yrd_proto::block::block_hash(&header).expect("hash"),
                header.state_root,
            ));
        }
        assert_eq!(seen.len(), 1, "nodes disagree at height {height}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_validator_does_not_stop_the_others_and_catches_up_with_equal_state() {
    let mut cluster = Cluster::start("kill-one", 4, 0);
    wait_all(&cluster, &[0, 1, 2, 3], 2).await;
    cluster.kill(3);
    let before = cluster.status(0).await.expect("status").height;
    wait_all(&cluster, &[0, 1, 2], before + 3).await;
    let (_, core_key) = cluster.member("core");
    let (bank, _) = cluster.member("bank1");
    let hash = submit(
        &cluster,
        1,
        sign(
            grant(&bank, v1::QueryPurpose::GuaranteeApproval),
            &[&core_key],
            7,
        ),
    )
    .await
    .expect("submit");
    let committed = wait_commit(&cluster, 2, &hash).await;
    cluster.start_node(3);
    let target = cluster
        .status(0)
        .await
        .expect("status")
        .height
        .max(committed.height);
    cluster.wait_height(3, target, PROGRESS).await;
    for height in 1..=target {
        let ours = header_of(&cluster.block(0, height).await.expect("block"));
        let theirs = header_of(
            &cluster
                .block(3, height)
                .await
                .expect("block on the restarted node"),
        );
        assert_eq!(
            ours.state_root, theirs.state_root,
            "state roots differ at height {height}"
        );
        assert_eq!(ours, theirs);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_of_four_stopped_nothing_commits_until_one_returns() {
    let mut cluster = Cluster::start("two-down", 4, 0);
    wait_all(&cluster, &[0, 1, 2, 3], 2).await;
    cluster.kill(2);
    cluster.kill(3);
    // A block already in its last step may still commit; after that, none can.
    let stopped_at = cluster.status(0).await.expect("status").height;
    let (_, core_key) = cluster.member("core");
    let (bank, _) = cluster.member("bank0");
    let hash = submit(
        &cluster,
        0,
        sign(
            grant(&bank, v1::QueryPurpose::PostLoanManagement),
            &[&core_key],
            9,
        ),
    )
    .await
    .expect("submit");
    tokio::time::sleep(Duration::from_secs(6)).await; // a window in which no commit may happen
    let during = cluster.status(0).await.expect("status").height;
    assert!(
        during <= stopped_at + 1,
        "committed without a quorum: {stopped_at} -> {during}"
    );
    let mut client = cluster.ledger(1).await.expect("connect");
    let lookup = client
        .get_transaction(v1::TransactionHash {
            tx_hash: hash.clone(),
        })
        .await;
    assert_eq!(lookup.expect_err("not committed").code(), Code::NotFound);
    cluster.start_node(2);
    let result = wait_commit(&cluster, 0, &hash).await;
    assert!(result.height > during);
    // Node 2 was down when the transaction was gossiped, and the proposal that carried it named
    // it only by reference: the commit needed node 2's vote, so node 2 fetched it from a peer.
    wait_all(&cluster, &[2], result.height).await;
    let log = cluster.log(2);
    assert!(
        log.contains(FETCHED_LOG_LINE),
        "node 2 never fetched a proposal's transaction; log:\n{}",
        cluster.log_tail(2)
    );
}

/// What a node logs when transactions it lacked for a block arrive from a peer.
const FETCHED_LOG_LINE: &str = "a block's missing transactions arrived from a peer";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_transactions_survive_a_crash_of_every_node_and_none_applies_twice() {
    let mut cluster = Cluster::start("crash-all", 4, 0);
    wait_all(&cluster, &[0, 1, 2, 3], 1).await;
    let (_, core_key) = cluster.member("core");
    let (bank, _) = cluster.member("bank0");
    let purposes = [
        v1::QueryPurpose::LoanApproval,
        v1::QueryPurpose::PostLoanManagement,
        v1::QueryPurpose::GuaranteeApproval,
        v1::QueryPurpose::SupplyChainFinance,
    ];
    let (acks, mut acked) = tokio::sync::mpsc::channel(64);
    let mut handles = Vec::new();
    for nonce in 0..40u64 {
        let envelope = sign(
            grant(&bank, purposes[(nonce % 4) as usize]),
            &[&core_key],
            50_000 + nonce,
        );
        let endpoint = cluster.nodes[(nonce % 4) as usize].endpoint.clone();
        let acks = acks.clone();
        handles.push(tokio::spawn(async move {
            let Some(mut client) = yrd_tests::connect(&endpoint)
                .await
                .map(v1::ledger_client::LedgerClient::new)
            else {
                return;
            };
            let mut request = tonic::Request::new(v1::SubmitRequest {
                transaction: Some(envelope.clone()),
            });
            request.set_timeout(Duration::from_secs(30));
            if let Ok(result) = client.submit_and_wait(request).await {
                let _ = acks
                    .send((
                        result.into_inner().receipt.unwrap_or_default().tx_hash,
                        envelope,
                    ))
                    .await;
            }
        }));
    }
    drop(acks);
    // Crash every node once a few commits were acknowledged, with the rest of the load in flight.
    let mut acknowledged: Vec<(Vec<u8>, v1::SignedTransaction)> = Vec::new();
    while acknowledged.len() < 5 {
        let next = tokio::time::timeout(PROGRESS, acked.recv())
            .await
            .expect("acknowledgements within the deadline");
        acknowledged.push(next.expect("load still running"));
    }
    for index in 0..4 {
        cluster.kill(index);
    }
    for handle in handles {
        let _ = handle.await;
    }
    while let Ok(ack) = acked.try_recv() {
        acknowledged.push(ack);
    }
    assert!(
        !acknowledged.is_empty(),
        "no transaction was acknowledged before the crash"
    );
    for index in 0..4 {
        cluster.start_node(index);
    }
    let tip = cluster.wait_height(0, 1, START).await.height;
    wait_all(&cluster, &[0, 1, 2, 3], tip + 1).await;
    let mut client = cluster.ledger(0).await.expect("connect");
    for (hash, envelope) in &acknowledged {
        let found = client
            .get_transaction(v1::TransactionHash {
                tx_hash: hash.clone(),
            })
            .await
            .expect("acknowledged transaction is present");
        assert!(found.into_inner().receipt.expect("receipt").accepted);
        let again = client
            .submit(v1::SubmitRequest {
                transaction: Some(envelope.clone()),
            })
            .await;
        assert_eq!(
            again
                .expect_err("a committed transaction is refused")
                .code(),
            Code::AlreadyExists
        );
    }
    let tip = cluster.status(0).await.expect("status").height;
    let mut applied = BTreeSet::new();
    for height in 1..=tip {
        let block = cluster.block(0, height).await.expect("block");
        for receipt in block.receipts.iter().filter(|r| r.accepted) {
            assert!(
                applied.insert(receipt.tx_hash.clone()),
                "transaction applied twice at height {height}"
            );
        }
    }
}

fn with_keys(body: &v1::TransactionBody, keys: &[&SigningKey]) -> v1::SignedTransaction {
    yrd_proto::signing::sign_transaction(body, keys).expect("sign")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transactions_are_refused_with_their_status_and_unknown_peers_cannot_connect() {
    let mut cluster = Cluster::start("refusals", 4, 0);
    wait_all(&cluster, &[0, 1, 2, 3], 1).await;
    let (_, core_key) = cluster.member("core");
    let (bank, _) = cluster.member("bank0");
    let (subject, _) = cluster.member("supplier");
    let body = |action: Action, chain: &str| v1::TransactionBody {
        chain_id: chain.into(),
        nonce: 77,
        valid_until_ms: now_ms() + 60_000,
        action: Some(action),
    };
    let good = body(
        grant(&bank, v1::QueryPurpose::LoanApproval),
        yrd_node::devnet::DEVNET_CHAIN_ID,
    );

    let mut bad_signature = with_keys(&good, &[&core_key]);
    bad_signature.signatures[0].signature[0] ^= 1;
    let wrong_chain = with_keys(
        &body(
            grant(&bank, v1::QueryPurpose::LoanApproval),
            "another-chain",
        ),
        &[&core_key],
    );
    let stranger = SigningKey::from_bytes(&[42; 32]);
    let unknown_signer = with_keys(&good, &[&stranger]);
    let report = Action::RecordCreditReport(v1::RecordCreditReport {
        report_id: "CR-1".into(),
        subject_uscc: subject,
        kind: v1::ReportKind::Loan as i32,
        document_sha256: vec![1; 32],
        negative: false,
        event_end_day: 0,
        summary: String::new(),
    });
    let missing_role = with_keys(
        &body(report, yrd_node::devnet::DEVNET_CHAIN_ID),
        &[&core_key],
    );
    let cases = [
        ("bad signature", bad_signature, Code::InvalidArgument),
        ("wrong chain id", wrong_chain, Code::InvalidArgument),
        ("unknown signer", unknown_signer, Code::PermissionDenied),
        ("missing role", missing_role, Code::PermissionDenied),
    ];
    let batch_cases = cases.clone();
    let before = cluster.status(0).await.expect("status");
    for (what, envelope, code) in cases {
        let hash =
            yrd_proto::signing::transaction_hash(yrd_node::devnet::DEVNET_CHAIN_ID, &envelope.body)
                .expect("hash");
        let refused = submit(&cluster, 0, envelope).await.expect_err(what);
        assert_eq!(refused.code(), code, "{what}: {}", refused.message());
        let mut client = cluster.ledger(0).await.expect("connect");
        let lookup = client
            .get_transaction(v1::TransactionHash {
                tx_hash: hash.to_vec(),
            })
            .await;
        assert_eq!(
            lookup.expect_err("nothing written").code(),
            Code::NotFound,
            "{what}"
        );
    }
    assert_eq!(
        cluster
            .status(0)
            .await
            .expect("status")
            .mempool_transactions,
        before.mempool_transactions
    );

    // A batch: each transaction gets the outcome Submit would give it alone, and the bad ones
    // spoil nothing for the good one (sent twice: admitted once, both answered with its hash).
    let valid = with_keys(&good, &[&core_key]);
    let valid_hash =
        yrd_proto::signing::transaction_hash(yrd_node::devnet::DEVNET_CHAIN_ID, &valid.body)
            .expect("hash");
    let mut batch = vec![valid.clone()];
    batch.extend(batch_cases.iter().map(|(_, envelope, _)| envelope.clone()));
    batch.push(valid.clone());
    let mut client = cluster.ledger(1).await.expect("connect");
    let too_many = client
        .submit_batch(v1::SubmitBatchRequest {
            transactions: vec![valid.clone(); yrd_proto::limits::SUBMIT_BATCH_TRANSACTIONS_MAX + 1],
        })
        .await
        .expect_err("a batch over the bound is refused whole");
    assert_eq!(
        too_many.code(),
        Code::InvalidArgument,
        "{}",
        too_many.message()
    );
    assert_eq!(
        cluster
            .status(1)
            .await
            .expect("status")
            .mempool_transactions,
        0,
        "a refused batch admits nothing"
    );
    let outcomes = client
        .submit_batch(v1::SubmitBatchRequest {
            transactions: batch,
        })
        .await
        .expect("batch")
        .into_inner()
        .outcomes;
    assert_eq!(outcomes.len(), batch_cases.len() + 2);
    for outcome in [&outcomes[0], &outcomes[outcomes.len() - 1]] {
        assert_eq!(outcome.code, Code::Ok as i32, "{}", outcome.message);
        assert_eq!(outcome.tx_hash, valid_hash.to_vec());
    }
    for ((what, _, code), outcome) in batch_cases.iter().zip(&outcomes[1..]) {
        assert_eq!(outcome.code, *code as i32, "{what}: {}", outcome.message);
        assert!(outcome.tx_hash.is_empty(), "{what}");
        assert!(!outcome.message.is_empty(), "{what}");
    }
    let result = wait_commit(&cluster, 2, &valid_hash).await;
    assert!(result.receipt.expect("receipt").accepted);

    // An intruder with a key that is neither a validator nor an observer.
    let intruder = yrd_tests::Intruder::start(&cluster);
    tokio::time::sleep(Duration::from_secs(5)).await; // a window in which it must not connect
    let status = intruder.status().await.expect("intruder answers");
    assert_eq!(status.peers, 0, "an unknown key connected");
    assert_eq!(status.height, 0, "an unknown key received blocks");
    for index in 0..4 {
        assert_eq!(
            cluster.status(index).await.expect("status").peers,
            3,
            "node {index} accepted the intruder"
        );
    }
    drop(intruder);
    cluster.kill(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_syncs_verifies_and_answers_the_same_queries() {
    let cluster = Cluster::start("observer", 4, 1);
    wait_all(&cluster, &[0, 1, 2, 3], 1).await;
    let (core, _) = cluster.member("core");
    let (supplier, supplier_key) = cluster.member("supplier");
    let (_, bureau_key) = cluster.member("bureau");
    let receivable = Action::RegisterReceivable(v1::RegisterReceivable {
        receivable_id: "AR-OBS".into(),
        debtor_uscc: core.clone(),
        creditor_uscc: supplier,
        face_fen: 1_000_000,
        due_day: u32::try_from(now_ms() / 86_400_000).expect("day") + 30,
        invoice_hashes: vec![vec![5; 32]],
        contract_hash: vec![6; 32],
    });
    let report = Action::RecordCreditReport(v1::RecordCreditReport {
        report_id: "CR-OBS".into(),
        subject_uscc: core,
        kind: v1::ReportKind::Basic as i32,
        document_sha256: vec![7; 32],
        negative: false,
        event_end_day: 0,
        summary: "basic".into(),
    });
    let first = submit(&cluster, 0, sign(receivable, &[&supplier_key], 1))
        .await
        .expect("submit");
    let second = submit(&cluster, 1, sign(report, &[&bureau_key], 2))
        .await
        .expect("submit");
    let height = wait_commit(&cluster, 0, &first)
        .await
        .height
        .max(wait_commit(&cluster, 0, &second).await.height);
    let observer = cluster.wait_height(4, height, PROGRESS).await;
    assert!(!observer.validator);
    for h in 1..=height {
        let on_observer = cluster.block(4, h).await.expect("observer block");
        let on_validator = cluster.block(0, h).await.expect("validator block");
        assert_eq!(on_observer.block, on_validator.block, "block {h} differs");
        assert_eq!(
            on_observer.receipts, on_validator.receipts,
            "receipts of block {h} differ"
        );
        // Each node keeps the quorum of precommits it saw: the signer sets may differ, the block
        // they certify may not, and the observer verified its certificate before committing.
        let certificate = on_observer.certificate.expect("certificate");
        let hash = yrd_proto::block::block_hash(&header_of(&on_validator)).expect("hash");
        assert_eq!(certificate.block_hash, hash.to_vec());
        assert!(
            certificate.signatures.len() >= 3,
            "certificate of block {h} has fewer than a quorum"
        );
    }
    let mut on_observer = cluster.registry(4).await.expect("connect");
    let mut on_validator = cluster.registry(0).await.expect("connect");
    let query = v1::ReceivableQuery {
        receivable_id: "AR-OBS".into(),
    };
    assert_eq!(
        on_observer
            .get_receivable(query.clone())
            .await
            .expect("observer")
            .into_inner(),
        on_validator
            .get_receivable(query)
            .await
            .expect("validator")
            .into_inner()
    );
    let query = v1::CreditReportQuery {
        report_id: "CR-OBS".into(),
        query_tx_hash: vec![],
    };
    assert_eq!(
        on_observer
            .get_credit_report(query.clone())
            .await
            .expect("observer")
            .into_inner(),
        on_validator
            .get_credit_report(query)
            .await
            .expect("validator")
            .into_inner()
    );
}

/// A node whose gRPC port is taken stops at start and says why, instead of running on without
/// its gRPC server.
#[test]
fn a_node_whose_grpc_port_is_taken_stops_with_that_error() {
    let mut cluster = Cluster::generate("grpc-port-taken", 4, 0);
    let address = cluster.nodes[0]
        .endpoint
        .trim_start_matches("http://")
        .to_owned();
    let _taken = std::net::TcpListener::bind(&address).expect("take the node's gRPC port");
    cluster.start_node(0);
    let status = cluster
        .wait_exit(0, START)
        .unwrap_or_else(|| panic!("the node kept running; log:\n{}", cluster.log_tail(0)));
    assert!(!status.success(), "the node exited with {status}");
    let log = cluster.log(0);
    assert!(
        log.contains(&format!("gRPC listen address {address}")),
        "the node did not name the address; log:\n{log}"
    );
}
