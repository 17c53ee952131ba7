//! Verifiable answers on the command line: `prove`, `history`, `headers` and `validators` fetch
//! an answer of the node's `Proofs` service, print it, optionally verify it against a genesis
//! file (`--genesis`) and save it as a `ProofBundle` (`--save`); `verify` checks saved bundles
//! offline, against the genesis file alone.
//!
//! Invariants: nothing is printed as proven unless `yrd_verify` verified it and it answers the
//! question that was asked (key, height, first version, first header); an answer printed without
//! `--genesis` says plainly that it is NOT verified; with `--genesis`, only an answer that
//! verified is saved; a saved file never replaces an existing one and appears whole or not at
//! all; a bundle file is length-checked before it is read.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::Path;

use prost::Message;
use serde_json::{json, Value};
use yrd_node::config::GenesisFile;
use yrd_proto::limits::MESSAGE_BYTES_MAX;
use yrd_proto::signing::sha256;
use yrd_proto::v1::{self, proof_bundle::Answer};
use yrd_verify::{
    Proven, ProvenHeader, ProvenHistory, ProvenState, ProvenValidatorSet, ProvenVersion, Trust,
};

use crate::args::{
    AnswerOptions, Cli, HeadersArgs, HistoryArgs, ProveArgs, ValidatorsArgs, VerifyArgs,
};
use crate::error::{CliError, EXIT_NOT_VERIFIED, EXIT_OK};
use crate::render::{hex, time_text};
use crate::state_key::StateKey;
use crate::{connect, Output};

/// Largest bundle file `yrd verify` reads, in bytes: the largest answer a node may send.
pub const BUNDLE_FILE_BYTES_MAX: usize = MESSAGE_BYTES_MAX;

/// What an answer printed without `--genesis` says about itself.
const NOT_VERIFIED: &str = "NOT VERIFIED: this is what the node claims; nothing has been \
checked. Give --genesis FILE to verify it now, or save it with --save and run \
`yrd verify --genesis FILE BUNDLE`.";

/// The question a command asked, to check that an answer is about it.
enum Asked<'a> {
    State {
        key: &'a StateKey,
        height: Option<u64>,
    },
    History {
        key: &'a StateKey,
        height: Option<u64>,
        from_version: u32,
        limit: Option<u32>,
    },
    Headers {
        from_height: u64,
        limit: Option<u32>,
    },
    ValidatorSet {
        height: Option<u64>,
    },
}

fn check_key_and_height(
    key: &StateKey,
    height: Option<u64>,
    found_key: &[u8],
    found_height: u64,
) -> Result<(), String> {
    if found_key != key.bytes.as_slice() {
        return Err(format!(
            "the answer is about key {}, not the key asked, {} ({})",
            yrd_verify::render::key(found_key),
            key,
            yrd_verify::render::key(&key.bytes)
        ));
    }
    match height {
        Some(asked) if asked != found_height => Err(format!(
            "the answer is about height {found_height}, not the height asked, {asked}"
        )),
        _ => Ok(()),
    }
}

fn check_limit(what: &str, found: usize, limit: Option<u32>) -> Result<(), String> {
    match limit {
        Some(limit) if found > limit as usize => Err(format!(
            "the answer has {found} {what}, more than the {limit} asked"
        )),
        _ => Ok(()),
    }
}

impl Asked<'_> {
    /// Whether the answer's own fields are about the question (before any verification).
    fn check_claims(&self, answer: &Answer) -> Result<(), String> {
        match (self, answer) {
            (Asked::State { key, height }, Answer::State(response)) => {
                check_key_and_height(key, *height, &response.key, response.height)
            }
            (
                Asked::History {
                    key, height, limit, ..
                },
                Answer::History(response),
            ) => {
                check_key_and_height(key, *height, &response.key, response.height)?;
                check_limit("versions", response.versions.len(), *limit)
            }
            (Asked::Headers { limit, .. }, Answer::Headers(response)) => {
                check_limit("headers", response.headers.len(), *limit)
            }
            (Asked::ValidatorSet { height }, Answer::ValidatorSet(response)) => match height {
                Some(asked) if *asked != response.height => Err(format!(
                    "the answer is about height {}, not the height asked, {asked}",
                    response.height
                )),
                _ => Ok(()),
            },
            _ => Err(format!(
                "the answer is a {} answer, not the kind asked",
                answer_kind(answer)
            )),
        }
    }

    /// Whether what was proven answers the question: the facts known only once verified.
    fn check_proven(&self, proven: &Proven) -> Result<(), String> {
        match (self, proven) {
            (Asked::History { from_version, .. }, Proven::History(history)) => {
                match history.versions.first() {
                    Some(first) if first.index != *from_version => Err(format!(
                        "the versions start at {}, not at the version asked, {from_version}",
                        first.index
                    )),
                    None if *from_version < history.version_count => Err(format!(
                        "no version is returned, though the key has {} and version \
                         {from_version} on was asked",
                        history.version_count
                    )),
                    _ => Ok(()),
                }
            }
            (Asked::Headers { from_height, .. }, Proven::Headers(headers)) => {
                match headers.headers.first() {
                    Some(first) if first.height() != *from_height => Err(format!(
                        "the headers start at height {}, not at the height asked, {from_height}",
                        first.height()
                    )),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }
}

/// The name of an answer's kind, as in JSON output.
fn answer_kind(answer: &Answer) -> &'static str {
    match answer {
        Answer::State(_) => "state",
        Answer::History(_) => "history",
        Answer::Headers(_) => "headers",
        Answer::ValidatorSet(_) => "validator_set",
    }
}

/// Reads the genesis file and makes it the root of trust. A bad file is local input (exit 2).
fn load_trust(path: &Path) -> Result<Trust, CliError> {
    let genesis = GenesisFile::load(path)
        .map_err(|error| CliError::Input(format!("genesis file {error}")))?;
    Trust::from_genesis(&genesis).map_err(|error| {
        CliError::Input(format!(
            "genesis file {}: not a usable root of trust: {error}",
            path.display()
        ))
    })
}

/// The local part of a fetch, done before any request: the trust root and the save target.
struct Prepared<'a> {
    trust: Option<Trust>,
    save: Option<&'a Path>,
}

impl<'a> Prepared<'a> {
    fn new(options: &'a AnswerOptions) -> Result<Self, CliError> {
        let trust = options.genesis.as_deref().map(load_trust).transpose()?;
        let save = options.save.as_deref();
        if let Some(path) = save {
            // Checked again, atomically, when the file is written.
            if path.symlink_metadata().is_ok() {
                return Err(exists(path));
            }
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            if parent.is_some_and(|folder| !folder.is_dir()) {
                return Err(CliError::Input(format!(
                    "--save {}: the folder does not exist",
                    path.display()
                )));
            }
        }
        Ok(Self { trust, save })
    }

    /// Checks, prints and saves an answer to `call`.
    fn finish(self, call: &'static str, asked: &Asked, answer: Answer) -> Result<Output, CliError> {
        let (mut json, mut text) = match &self.trust {
            Some(trust) => {
                let not_verified = |problem: String| CliError::NotVerified {
                    what: format!("the answer to {call}"),
                    problem,
                };
                asked.check_claims(&answer).map_err(not_verified)?;
                let bundle = v1::ProofBundle {
                    answer: Some(answer),
                };
                let proven = yrd_verify::verify_bundle(trust, &bundle)
                    .map_err(|error| not_verified(error.to_string()))?;
                asked.check_proven(&proven).map_err(not_verified)?;
                let result = (proven_json(&proven), proven_text(trust, &proven));
                self.save(&bundle)?;
                result
            }
            None => {
                asked
                    .check_claims(&answer)
                    .map_err(|problem| CliError::Response { call, problem })?;
                let result = (unverified_json(&answer), unverified_text(&answer));
                self.save(&v1::ProofBundle {
                    answer: Some(answer),
                })?;
                result
            }
        };
        if let Some(path) = self.save {
            json["saved"] = Value::from(path.display().to_string());
            text.push_str(&format!("\nsaved to {}", path.display()));
        }
        Ok(Output::new(json, text))
    }

    fn save(&self, bundle: &v1::ProofBundle) -> Result<(), CliError> {
        match self.save {
            Some(path) => save_bundle(path, &bundle.encode_to_vec()),
            None => Ok(()),
        }
    }
}

/// `yrd prove KEY`: `Proofs.GetStateProof`.
pub async fn prove(cli: &Cli, args: &ProveArgs) -> Result<Output, CliError> {
    let prepared = Prepared::new(&args.answer)?;
    let request = v1::StateProofRequest {
        key: args.key.bytes.clone(),
        height: args.height.unwrap_or(0),
    };
    let response = connect(cli).await?.state_proof(request).await?;
    let asked = Asked::State {
        key: &args.key,
        height: args.height,
    };
    prepared.finish("GetStateProof", &asked, Answer::State(response))
}

/// `yrd history KEY`: `Proofs.GetHistory`.
pub async fn history(cli: &Cli, args: &HistoryArgs) -> Result<Output, CliError> {
    let prepared = Prepared::new(&args.answer)?;
    let request = v1::HistoryRequest {
        key: args.key.bytes.clone(),
        height: args.height.unwrap_or(0),
        from_version: args.from,
        limit: args.limit.unwrap_or(0),
    };
    let response = connect(cli).await?.history(request).await?;
    let asked = Asked::History {
        key: &args.key,
        height: args.height,
        from_version: args.from,
        limit: args.limit,
    };
    prepared.finish("GetHistory", &asked, Answer::History(response))
}

/// `yrd headers --from H`: `Proofs.GetHeaders`.
pub async fn headers(cli: &Cli, args: &HeadersArgs) -> Result<Output, CliError> {
    let prepared = Prepared::new(&args.answer)?;
    let request = v1::HeadersRequest {
        from_height: args.from,
        limit: args.limit.unwrap_or(0),
    };
    let response = connect(cli).await?.headers(request).await?;
    let asked = Asked::Headers {
        from_height: args.from,
        limit: args.limit,
    };
    prepared.finish("GetHeaders", &asked, Answer::Headers(response))
}

/// `yrd validators`: `Proofs.GetValidatorSet`.
pub async fn validators(cli: &Cli, args: &ValidatorsArgs) -> Result<Output, CliError> {
    let prepared = Prepared::new(&args.answer)?;
    let request = v1::ValidatorSetRequest {
        height: args.height.unwrap_or(0),
    };
    let response = connect(cli).await?.validator_set(request).await?;
    let asked = Asked::ValidatorSet {
        height: args.height,
    };
    prepared.finish("GetValidatorSet", &asked, Answer::ValidatorSet(response))
}

/// `yrd verify --genesis FILE BUNDLE...`: verifies each saved bundle offline. Every file is
/// reported; the exit code is 9 when any does not verify. A file that cannot be read or decoded
/// stops the command with exit code 2. One bundle is held in memory at a time.
pub fn verify(args: &VerifyArgs) -> Result<Output, CliError> {
    let trust = load_trust(&args.genesis)?;
    let mut results = Vec::with_capacity(args.bundles.len());
    let mut texts = Vec::with_capacity(args.bundles.len());
    let mut failed = 0_usize;
    for path in &args.bundles {
        let bundle = read_bundle(path)?;
        let file = path.display().to_string();
        match yrd_verify::verify_bundle(&trust, &bundle) {
            Ok(proven) => {
                let mut result = proven_json(&proven);
                result["file"] = Value::from(file.clone());
                results.push(result);
                texts.push(format!("{file}: {}", proven_text(&trust, &proven)));
            }
            Err(error) => {
                failed += 1;
                results.push(json!({
                    "file": file,
                    "verified": false,
                    "answer": bundle.answer.as_ref().map(answer_kind),
                    "error": error.to_string(),
                }));
                texts.push(format!("{file}: DOES NOT VERIFY: {error}"));
            }
        }
    }
    let verified = failed == 0;
    let json = json!({
        "verified": verified,
        "chain_id": trust.chain_id(),
        "bundles": results,
    });
    let mut text = texts.join("\n");
    if !verified {
        let summary = format!(
            "{failed} of {} bundle(s) do not verify against the genesis",
            args.bundles.len()
        );
        eprintln!("yrd: {summary}");
        text.push('\n');
        text.push_str(&summary);
    }
    Ok(Output {
        json: Some(json),
        text: Some(text),
        exit: if verified { EXIT_OK } else { EXIT_NOT_VERIFIED },
    })
}

// ---------------------------------------------------------------- files

fn exists(path: &Path) -> CliError {
    CliError::Input(format!(
        "{} exists; --save never overwrites a file",
        path.display()
    ))
}

/// Reads and decodes a bundle file, refusing one larger than [`BUNDLE_FILE_BYTES_MAX`] before
/// reading it.
fn read_bundle(path: &Path) -> Result<v1::ProofBundle, CliError> {
    let io = |source| CliError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let length = file.metadata().map_err(io)?.len();
    let too_large = |length: u64| {
        CliError::Input(format!(
            "{}: {length} bytes, more than the {BUNDLE_FILE_BYTES_MAX} bytes a bundle may have",
            path.display()
        ))
    };
    if length > BUNDLE_FILE_BYTES_MAX as u64 {
        return Err(too_large(length));
    }
    // The file may grow after the check: read at most one byte more than allowed.
    let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    file.take(BUNDLE_FILE_BYTES_MAX as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > BUNDLE_FILE_BYTES_MAX {
        return Err(too_large(bytes.len() as u64));
    }
    let bundle = v1::ProofBundle::decode(bytes.as_slice()).map_err(|error| {
        CliError::Input(format!("{}: not a ProofBundle: {error}", path.display()))
    })?;
    if bundle.answer.is_none() {
        return Err(CliError::Input(format!(
            "{}: not a ProofBundle: it holds no answer",
            path.display()
        )));
    }
    Ok(bundle)
}

/// Writes `bytes` to a new file `path`, whole or not at all: into a temporary file beside it,
/// synced, then linked to `path`, which fails if `path` exists (a rename would replace it).
fn save_bundle(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let io = |source| CliError::Io {
        path: path.display().to_string(),
        source,
    };
    let name = path
        .file_name()
        .ok_or_else(|| CliError::Input(format!("--save {}: not a file name", path.display())))?;
    let dir = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        });
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(io(error));
    }
    let published = match std::fs::hard_link(&temp, path) {
        Ok(()) => std::fs::remove_file(&temp).map_err(io),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Err(exists(path)),
        // A file system without hard links: rename, after checking once more.
        Err(_) if path.symlink_metadata().is_ok() => Err(exists(path)),
        Err(_) => std::fs::rename(&temp, path).map_err(io),
    };
    if published.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    published?;
    // Make the new name durable; not every platform can sync a folder, and the data is synced.
    if let Ok(folder) = File::open(dir) {
        let _ = folder.sync_all();
    }
    Ok(())
}

// ---------------------------------------------------------------- output

fn value_facts(value: Option<&[u8]>) -> Value {
    json!({
        "exists": value.is_some(),
        "value_bytes": value.map(<[u8]>::len),
        "value_sha256": value.map(|v| hex(&sha256(v))),
    })
}

/// Merges the fields of `extra` (an object) into `object` (an object).
fn merge(mut object: Value, extra: Value) -> Value {
    if let (Some(target), Value::Object(fields)) = (object.as_object_mut(), extra) {
        target.extend(fields);
    }
    object
}

fn key_facts(key: &[u8]) -> Value {
    json!({
        "key": yrd_verify::render::key(key),
        "key_hex": hex(key),
    })
}

fn header_json(header: &ProvenHeader) -> Value {
    json!({
        "height": header.height(),
        "block_hash": hex(&header.block_hash),
        "block_time_ms": header.header.time_ms,
        "block_time": time_text(header.header.time_ms),
        "state_root": hex(&header.header.state_root),
        "signers": header.signers,
        "validators": header.validators,
    })
}

fn version_json(version: &ProvenVersion) -> Value {
    let value = (!version.deleted).then_some(version.value.as_slice());
    json!({
        "index": version.index,
        "height": version.height,
        "tx_index": version.tx_index,
        "tx_hash": hex(&version.tx_hash),
        "signers": version.signers.iter().map(|key| hex(key)).collect::<Vec<_>>(),
        "block_time_ms": version.block_time_ms,
        "block_time": time_text(version.block_time_ms),
        "block_hash": hex(&version.block_hash),
        "deleted": version.deleted,
        "value_bytes": value.map(<[u8]>::len),
        "value_sha256": value.map(|v| hex(&sha256(v))),
    })
}

fn state_json(state: &ProvenState) -> Value {
    let facts = merge(key_facts(&state.key), header_json(&state.header));
    merge(facts, value_facts(state.value.as_deref()))
}

fn history_json(history: &ProvenHistory) -> Value {
    let facts = merge(key_facts(&history.key), header_json(&history.header));
    let facts = merge(facts, value_facts(history.value.as_deref()));
    merge(
        facts,
        json!({
            "version_count": history.version_count,
            "complete": history.complete,
            "includes_latest": history.includes_latest,
            "versions": history.versions.iter().map(version_json).collect::<Vec<_>>(),
        }),
    )
}

fn validator_set_json(set: &ProvenValidatorSet) -> Value {
    json!({
        "height": set.height,
        "validators": set.validators.keys().iter().map(|key| hex(&key.0)).collect::<Vec<_>>(),
        "set_hash": hex(&set.validators.hash()),
        "quorum": set.validators.quorum(),
        "changes": set.changes,
    })
}

/// What was proven, as one JSON object with `"verified": true`.
fn proven_json(proven: &Proven) -> Value {
    let (kind, facts) = match proven {
        Proven::State(state) => ("state", state_json(state)),
        Proven::History(history) => ("history", history_json(history)),
        Proven::Headers(headers) => (
            "headers",
            json!({
                "count": headers.headers.len(),
                "from_height": headers.headers.first().map(ProvenHeader::height),
                "to_height": headers.headers.last().map(ProvenHeader::height),
                "headers": headers.headers.iter().map(header_json).collect::<Vec<_>>(),
            }),
        ),
        Proven::ValidatorSet(set) => ("validator_set", validator_set_json(set)),
    };
    merge(json!({ "verified": true, "answer": kind }), facts)
}

/// What was proven, in words.
fn proven_text(trust: &Trust, proven: &Proven) -> String {
    format!(
        "VERIFIED against the genesis of chain {}: {proven}",
        trust.chain_id()
    )
}

fn claimed_value(exists: bool, value: &[u8]) -> Option<&[u8]> {
    exists.then_some(value)
}

fn value_text(value: Option<&[u8]>) -> String {
    match value {
        Some(value) => format!(
            "value ({} bytes, sha256 {})",
            value.len(),
            hex(&sha256(value))
        ),
        None => "no value".to_owned(),
    }
}

/// Heights of the headers of an answer as the node claims them (undecodable: `None`).
fn claimed_heights(headers: &[v1::CertifiedHeader]) -> Vec<Option<u64>> {
    headers
        .iter()
        .map(|certified| {
            v1::BlockHeader::decode(certified.header.as_slice())
                .ok()
                .map(|header| header.height)
        })
        .collect()
}

/// What the node claims, as one JSON object with `"verified": false`.
fn unverified_json(answer: &Answer) -> Value {
    let facts = match answer {
        Answer::State(response) => merge(
            merge(
                key_facts(&response.key),
                json!({ "height": response.height }),
            ),
            value_facts(claimed_value(response.exists, &response.value)),
        ),
        Answer::History(response) => merge(
            merge(
                key_facts(&response.key),
                json!({
                    "height": response.height,
                    "version_count": response.version_count,
                    "versions_returned": response.versions.len(),
                }),
            ),
            value_facts(claimed_value(response.exists, &response.value)),
        ),
        Answer::Headers(response) => {
            let heights = claimed_heights(&response.headers);
            json!({
                "count": response.headers.len(),
                "from_height": heights.first().copied().flatten(),
                "to_height": heights.last().copied().flatten(),
            })
        }
        Answer::ValidatorSet(response) => json!({
            "height": response.height,
            "validators": response.validators.iter().map(|key| hex(key)).collect::<Vec<_>>(),
        }),
    };
    merge(
        json!({
            "verified": false,
            "warning": NOT_VERIFIED,
            "answer": answer_kind(answer),
        }),
        facts,
    )
}

/// What the node claims, in words, under the NOT VERIFIED warning.
fn unverified_text(answer: &Answer) -> String {
    let claim = match answer {
        Answer::State(response) => format!(
            "key {} at height {}: {}",
            yrd_verify::render::key(&response.key),
            response.height,
            value_text(claimed_value(response.exists, &response.value))
        ),
        Answer::History(response) => format!(
            "key {} at height {}: {} version{}, {} returned; current {}",
            yrd_verify::render::key(&response.key),
            response.height,
            response.version_count,
            if response.version_count == 1 { "" } else { "s" },
            response.versions.len(),
            value_text(claimed_value(response.exists, &response.value))
        ),
        Answer::Headers(response) => {
            let heights = claimed_heights(&response.headers);
            let height = |h: Option<&Option<u64>>| {
                h.copied()
                    .flatten()
                    .map_or_else(|| "?".to_owned(), |h| h.to_string())
            };
            format!(
                "{} headers, heights {} to {}",
                response.headers.len(),
                height(heights.first()),
                height(heights.last())
            )
        }
        Answer::ValidatorSet(response) => {
            let mut text = format!(
                "height {} is decided by {} validators",
                response.height,
                response.validators.len()
            );
            for key in &response.validators {
                text.push_str(&format!("\n  {}", hex(key)));
            }
            text
        }
    };
    format!("{NOT_VERIFIED}\n{claim}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("yrd-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn state_bundle() -> v1::ProofBundle {
        v1::ProofBundle {
            answer: Some(Answer::State(v1::StateProofResponse {
                key: b"c/r/CR-1".to_vec(),
                height: 3,
                exists: true,
                value: vec![7; 5],
                ..Default::default()
            })),
        }
    }

    #[test]
    fn saving_never_overwrites_and_round_trips() {
        let dir = temp_dir("save");
        let path = dir.join("answer.bundle");
        let bytes = state_bundle().encode_to_vec();
        save_bundle(&path, &bytes).unwrap();
        assert_eq!(read_bundle(&path).unwrap(), state_bundle());
        let error = save_bundle(&path, b"other").unwrap_err();
        assert_eq!(error.exit_code(), 2, "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "left as it was");
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unreadable_bundles_are_local_input_errors() {
        let dir = temp_dir("read");
        let garbage = dir.join("garbage");
        std::fs::write(&garbage, [0xff, 0xff, 0xff]).unwrap();
        assert_eq!(read_bundle(&garbage).unwrap_err().exit_code(), 2);
        let empty = dir.join("empty");
        std::fs::write(&empty, []).unwrap();
        assert_eq!(read_bundle(&empty).unwrap_err().exit_code(), 2);
        let large = dir.join("large");
        let file = File::create(&large).unwrap();
        file.set_len(BUNDLE_FILE_BYTES_MAX as u64 + 1).unwrap();
        let error = read_bundle(&large).unwrap_err();
        assert!(error.to_string().contains("more than"), "{error}");
        assert_eq!(read_bundle(&dir.join("absent")).unwrap_err().exit_code(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn answers_about_another_question_are_refused() {
        let key = crate::state_key::state_key("credit-report:CR-1").unwrap();
        let Some(answer) = state_bundle().answer else {
            panic!("no answer")
        };
        let asked = |height| Asked::State { key: &key, height };
        assert!(asked(None).check_claims(&answer).is_ok());
        assert!(asked(Some(3)).check_claims(&answer).is_ok());
        assert!(asked(Some(4)).check_claims(&answer).is_err());
        let other = crate::state_key::state_key("credit-report:CR-2").unwrap();
        let error = Asked::State {
            key: &other,
            height: None,
        }
        .check_claims(&answer)
        .unwrap_err();
        assert!(error.contains("c/r/CR-1"), "{error}");
        assert!(Asked::ValidatorSet { height: None }
            .check_claims(&answer)
            .is_err());
    }

    #[test]
    fn unverified_answers_say_so() {
        let Some(answer) = state_bundle().answer else {
            panic!("no answer")
        };
        let json = unverified_json(&answer);
        assert_eq!(json["verified"], false);
        assert_eq!(json["answer"], "state");
        assert_eq!(json["key"], "c/r/CR-1");
        assert_eq!(json["value_bytes"], 5);
        let text = unverified_text(&answer);
        assert!(text.starts_with("NOT VERIFIED"), "{text}");
        assert!(text.contains("key c/r/CR-1 at height 3"), "{text}");
    }
}
