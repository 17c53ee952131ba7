//! The member CLI's verifiable answers end to end: a network commits a credit report and an
//! amendment, `yrd history` and `yrd prove` fetch and save its answers from an observer, and
//! `yrd verify` checks the saved bundles offline against the genesis file alone: exit 0 for the
//! answers as served, exit 9 for an answer changed by one byte.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use prost::Message;
use yrd_proto::v1::{self, proof_bundle::Answer};
use yrd_tests::{amend_report, cli_binary, record_report, sign, submit_and_wait, Cluster};

const PROGRESS: Duration = Duration::from_secs(60);
const REPORT: &str = "CR-CLI";
/// The exit code of an answer that does not verify.
const EXIT_NOT_VERIFIED: i32 = 9;

/// Runs `yrd` with `args` against `endpoint` and returns its output. The CLI bounds every
/// request with `--timeout-secs`, so it always ends.
fn yrd(endpoint: &str, args: &[&str]) -> Output {
    Command::new(cli_binary())
        .args(["--endpoint", endpoint, "--timeout-secs", "30"])
        .args(args)
        .output()
        .expect("run yrd")
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("not one JSON object ({error}): {}", text(output)))
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

fn read_bundle(path: &Path) -> v1::ProofBundle {
    v1::ProofBundle::decode(std::fs::read(path).expect("read bundle").as_slice()).expect("decode")
}

fn write_bundle(path: &Path, bundle: &v1::ProofBundle) {
    std::fs::write(path, bundle.encode_to_vec()).expect("write bundle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_answers_verify_offline_and_tampered_ones_do_not() {
    let cluster = Cluster::start("cli-proofs", 4, 1);
    cluster.wait_height(0, 1, PROGRESS).await;
    let (core, _) = cluster.member("core");
    let (_, bureau_key) = cluster.member("bureau");
    let record = record_report(REPORT, core);
    let amend = amend_report(REPORT, "second", 2);
    submit_and_wait(&cluster, 0, sign(record, &[&bureau_key], 1)).await;
    let last = submit_and_wait(&cluster, 1, sign(amend, &[&bureau_key], 2))
        .await
        .height;
    // The observer answers about its latest height: wait until it has the amendment.
    cluster.wait_height(4, last, PROGRESS).await;

    let endpoint = cluster.nodes[4].endpoint.as_str();
    let genesis = cluster.dir.join("genesis.json");
    let genesis = path_str(&genesis);
    let dir = cluster.dir.join("cli-proofs");
    std::fs::create_dir_all(&dir).expect("folder");
    let file = |name: &str| -> PathBuf { dir.join(name) };
    let history_file = file("history.bundle");
    let state_file = file("state.bundle");
    let key = format!("credit-report:{REPORT}");

    // Fetch and save without verifying: the output says it is not verified.
    let output = yrd(
        endpoint,
        &["history", &key, "--save", path_str(&history_file)],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        stdout(&output).contains("NOT VERIFIED"),
        "{}",
        text(&output)
    );
    println!("{}", stdout(&output));
    let output = yrd(endpoint, &["prove", &key, "--save", path_str(&state_file)]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        stdout(&output).contains("NOT VERIFIED"),
        "{}",
        text(&output)
    );

    // A saved file is never overwritten.
    let saved = std::fs::read(&history_file).expect("saved");
    let output = yrd(
        endpoint,
        &["history", &key, "--save", path_str(&history_file)],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert_eq!(std::fs::read(&history_file).expect("saved"), saved);

    // Verified on the spot with --genesis, as JSON.
    let output = yrd(endpoint, &["--json", "history", &key, "--genesis", genesis]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let answer = json(&output);
    println!("{answer:#}");
    assert_eq!(answer["verified"], true, "{answer}");
    assert_eq!(answer["key"], format!("c/r/{REPORT}"));
    assert_eq!(answer["version_count"], 2);
    assert_eq!(answer["complete"], true);
    assert_eq!(answer["includes_latest"], true);
    assert_eq!(answer["versions"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        answer["versions"][0]["signers"][0],
        hex::encode(bureau_key.verifying_key().to_bytes())
    );

    // Offline: both saved answers verify against the genesis file alone.
    let output = yrd(
        endpoint,
        &[
            "verify",
            "--genesis",
            genesis,
            path_str(&history_file),
            path_str(&state_file),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let printed = stdout(&output);
    println!("{printed}");
    assert!(printed.contains(&format!("c/r/{REPORT}")), "{printed}");
    assert!(printed.contains("2 versions"), "{printed}");
    let output = yrd(
        endpoint,
        &[
            "--json",
            "verify",
            "--genesis",
            genesis,
            path_str(&history_file),
            path_str(&state_file),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let verified = json(&output);
    assert_eq!(verified["verified"], true, "{verified}");
    assert_eq!(verified["bundles"][0]["answer"], "history");
    assert_eq!(verified["bundles"][0]["version_count"], 2);
    assert_eq!(verified["bundles"][1]["answer"], "state");
    assert_eq!(verified["bundles"][1]["exists"], true);

    // One byte changed in the record's current value: the history no longer verifies.
    let mut bundle = read_bundle(&history_file);
    let Some(Answer::History(history)) = bundle.answer.as_mut() else {
        panic!("not a history bundle")
    };
    let middle = history.value.len() / 2;
    history.value[middle] ^= 1;
    let tampered_history = file("tampered-history.bundle");
    write_bundle(&tampered_history, &bundle);
    // One byte changed in a hash of the state proof (a record's is the proof of its latest
    // version): the state proof no longer verifies.
    let mut bundle = read_bundle(&state_file);
    let Some(Answer::State(state)) = bundle.answer.as_mut() else {
        panic!("not a state bundle")
    };
    assert!(
        state.proof.is_none(),
        "a record with versions has no leaf proof"
    );
    assert_eq!(state.version_count, 2);
    let proof = state.last_entry_proof.as_mut().expect("last_entry_proof");
    proof.siblings.first_mut().expect("a sibling")[0] ^= 1;
    let tampered_state = file("tampered-state.bundle");
    write_bundle(&tampered_state, &bundle);

    for tampered in [&tampered_history, &tampered_state] {
        let output = yrd(
            endpoint,
            &["verify", "--genesis", genesis, path_str(tampered)],
        );
        assert_eq!(
            output.status.code(),
            Some(EXIT_NOT_VERIFIED),
            "{}",
            text(&output)
        );
        assert!(
            stdout(&output).contains("DOES NOT VERIFY"),
            "{}",
            text(&output)
        );
        println!("{}", text(&output));
    }
    // With good and tampered bundles together, each is reported and the exit code is 9.
    let output = yrd(
        endpoint,
        &[
            "--json",
            "verify",
            "--genesis",
            genesis,
            path_str(&history_file),
            path_str(&tampered_history),
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(EXIT_NOT_VERIFIED),
        "{}",
        text(&output)
    );
    let report = json(&output);
    println!("{report:#}");
    assert_eq!(report["verified"], false, "{report}");
    assert_eq!(report["bundles"][0]["verified"], true);
    assert_eq!(report["bundles"][1]["verified"], false);
    assert!(report["bundles"][1]["error"].is_string());

    // A malformed KEY is refused before any request.
    let output = yrd(endpoint, &["prove", "credit-report:CR/1"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}
