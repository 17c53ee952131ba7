//! `yrd`, the member command line of the yrd ledger: key files, status, building, signing and
//! submitting every transaction type, registry queries, a block stream, and verifiable answers
//! (fetched, saved and verified offline against the genesis file).
//!
//! Layout: [`args`] is the command line, [`parse`] the value parsers, [`state_key`] the KEY
//! parser, [`transaction`] builds and signs bodies, [`client`] talks gRPC to a node, [`proofs`]
//! fetches, saves and verifies verifiable answers, [`render`] prints JSON and text, [`error`]
//! maps failures to exit codes.
//!
//! Invariants: with `--json`, stdout carries exactly one JSON object per command (one per line
//! for `watch`), also on failure; messages for people go to stderr; the exit code follows the
//! table in `yrd --help`.

mod args;
mod client;
mod error;
mod parse;
mod proofs;
mod render;
mod state_key;
mod transaction;

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use prost::Message;
use serde_json::{json, Value};
use yrd_proto::signing::Hash;
use yrd_proto::v1::{self, get_block_request::Selector};

use crate::args::{Cli, Command, GetCommand, KeysCommand, ListCommand, TxCommand};
use crate::client::Node;
use crate::error::{CliError, EXIT_OK, EXIT_OTHER, EXIT_REJECTED};
use crate::render::hex;

/// What a command prints on success, and its exit code.
struct Output {
    /// The one JSON object printed under `--json` (none when already streamed).
    json: Option<Value>,
    /// The text printed otherwise.
    text: Option<String>,
    /// The exit code (0, or 8 for a rejected transaction).
    exit: u8,
}

impl Output {
    fn new(json: Value, text: String) -> Self {
        Self {
            json: Some(json),
            text: Some(text),
            exit: EXIT_OK,
        }
    }

    /// A committed transaction: exit code 8 when its receipt is a rejection.
    fn committed(result: &v1::TransactionResult) -> Self {
        let accepted = result.receipt.as_ref().is_some_and(|r| r.accepted);
        Self {
            json: Some(render::transaction_result_json(result)),
            text: Some(render::transaction_result_text(result)),
            exit: if accepted { EXIT_OK } else { EXIT_REJECTED },
        }
    }

    /// Nothing more to print (the output was streamed).
    fn streamed() -> Self {
        Self {
            json: None,
            text: None,
            exit: EXIT_OK,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(&cli)),
        Err(error) => Err(CliError::Input(format!(
            "cannot start the async runtime: {error}"
        ))),
    };
    let mut stdout = std::io::stdout().lock();
    match result {
        Ok(output) => {
            // A closed stdout (`yrd ... | head`) is not worth a panic; the exit code stands.
            let printed = if cli.json {
                output.json.map(|json| writeln!(stdout, "{json}"))
            } else {
                output.text.map(|text| writeln!(stdout, "{text}"))
            };
            if let Some(Err(error)) = printed {
                if error.kind() != std::io::ErrorKind::BrokenPipe {
                    eprintln!("yrd: cannot write the output: {error}");
                    return ExitCode::from(EXIT_OTHER);
                }
            }
            ExitCode::from(output.exit)
        }
        Err(error) => {
            eprintln!("yrd: {error}");
            if cli.json {
                let _ = writeln!(stdout, "{}", error.to_json());
            }
            ExitCode::from(error.exit_code())
        }
    }
}

async fn connect(cli: &Cli) -> Result<Node, CliError> {
    Node::connect(&cli.endpoint, Duration::from_secs(cli.timeout_secs)).await
}

async fn run(cli: &Cli) -> Result<Output, CliError> {
    match &cli.command {
        Command::Keys(command) => keys(command),
        Command::Status => {
            let status = connect(cli).await?.status().await?;
            Ok(Output::new(
                render::status_json(&status),
                render::status_text(&status),
            ))
        }
        Command::Tx(command) => submit(cli, command).await,
        Command::Get(command) => get(cli, command).await,
        Command::List(ListCommand::Reports { subject }) => {
            let list = connect(cli).await?.reports(subject).await?;
            Ok(Output::new(
                render::report_list_json(&list),
                render::report_list_text(&list),
            ))
        }
        Command::Wait { hash } => {
            let result = connect(cli).await?.wait_for_commit(hash).await?;
            Ok(Output::committed(&result))
        }
        Command::Watch { from_height } => watch(cli, *from_height).await,
        Command::Prove(args) => proofs::prove(cli, args).await,
        Command::History(args) => proofs::history(cli, args).await,
        Command::Headers(args) => proofs::headers(cli, args).await,
        Command::Validators(args) => proofs::validators(cli, args).await,
        Command::Verify(args) => proofs::verify(args),
    }
}

fn keys(command: &KeysCommand) -> Result<Output, CliError> {
    let (path, key) = match command {
        KeysCommand::Generate { out } => {
            let key = yrd_node::keyfile::generate();
            yrd_node::keyfile::write(out, &key)?;
            (out, key)
        }
        KeysCommand::Show { file } => (file, yrd_node::keyfile::read(file)?),
    };
    let public_key = hex(&key.verifying_key().to_bytes());
    Ok(Output::new(
        json!({ "file": path.display().to_string(), "public_key": public_key }),
        public_key,
    ))
}

async fn submit(cli: &Cli, command: &TxCommand) -> Result<Output, CliError> {
    let options = &command.options;
    if options.wait && options.dry_run {
        return Err(CliError::Input(
            "--wait and --dry-run exclude each other".into(),
        ));
    }
    // Everything local first: a bad key file or flag never costs a round trip.
    let keys = transaction::read_keys(&options.keys)?;
    let now_ms = transaction::now_ms()?;
    let action = transaction::build_action(&command.action, now_ms)?;
    let valid_until_ms = now_ms
        .checked_add(options.valid_for_secs * 1_000)
        .ok_or_else(|| CliError::Input("--valid-for-secs overflows the clock".into()))?;
    let nonce = options.nonce.unwrap_or_else(transaction::random_nonce);

    let mut node = None;
    let chain_id = match &options.chain_id {
        Some(chain_id) => chain_id.clone(),
        None => {
            let mut connected = connect(cli).await?;
            let chain_id = connected.status().await?.chain_id;
            node = Some(connected);
            chain_id
        }
    };
    let body = transaction::build_body(action, &chain_id, nonce, valid_until_ms)?;
    let (envelope, local_hash) = transaction::sign(&body, &keys)?;

    if options.dry_run {
        let mut json = render::signed_transaction_json(&envelope);
        json["encoded"] = Value::from(hex(&envelope.encode_to_vec()));
        let text = format!(
            "tx {} (not submitted)\n{}",
            hex(&local_hash),
            hex(&envelope.encode_to_vec())
        );
        return Ok(Output::new(json, text));
    }
    let mut node = match node {
        Some(node) => node,
        None => connect(cli).await?,
    };
    if options.wait {
        let result = node.submit_and_wait(envelope).await?;
        let reported = result.receipt.as_ref().map(|r| r.tx_hash.as_slice());
        check_hash("SubmitAndWait", &local_hash, reported)?;
        return Ok(Output::committed(&result));
    }
    let tx_hash = node.submit(envelope).await?;
    check_hash("Submit", &local_hash, Some(&tx_hash))?;
    Ok(Output::new(
        json!({ "tx_hash": hex(&tx_hash) }),
        hex(&tx_hash),
    ))
}

/// Refuses a node's answer about another transaction than the one sent.
fn check_hash(
    call: &'static str,
    expected: &Hash,
    reported: Option<&[u8]>,
) -> Result<(), CliError> {
    match reported {
        Some(reported) if reported == expected.as_slice() => Ok(()),
        Some(reported) => Err(CliError::Response {
            call,
            problem: format!(
                "transaction hash {} differs from the hash {} of the transaction sent",
                hex(reported),
                hex(expected)
            ),
        }),
        None => Err(CliError::Response {
            call,
            problem: "no receipt".into(),
        }),
    }
}

async fn get(cli: &Cli, command: &GetCommand) -> Result<Output, CliError> {
    let mut node = connect(cli).await?;
    Ok(match command {
        GetCommand::Tx { hash } => {
            let result = node.transaction(hash).await?;
            // A rejected transaction is still a successful lookup.
            Output {
                exit: EXIT_OK,
                ..Output::committed(&result)
            }
        }
        GetCommand::Block { height, hash } => {
            let selector = match (height, hash) {
                (_, Some(hash)) => Selector::BlockHash(hash.to_vec()),
                (Some(height), None) => Selector::Height(*height),
                (None, None) => return Err(CliError::Input("give a HEIGHT or --hash HEX".into())),
            };
            let block = node.block(selector).await?;
            Output::new(render::block_json(&block), render::block_text(&block))
        }
        GetCommand::Member { uscc } => {
            let member = node.member(uscc).await?;
            Output::new(render::member_json(&member), render::member_text(&member))
        }
        GetCommand::Report { id, query_tx } => {
            let view = node.report(id, query_tx.as_ref()).await?;
            Output::new(
                render::report_view_json(&view),
                render::report_view_text(&view),
            )
        }
        GetCommand::Receivable { id } => {
            let view = node.receivable(id).await?;
            Output::new(
                render::receivable_view_json(&view),
                render::receivable_view_text(&view),
            )
        }
        GetCommand::Fund { id } => {
            let view = node.fund(id).await?;
            Output::new(render::fund_view_json(&view), render::fund_view_text(&view))
        }
    })
}

async fn watch(cli: &Cli, from_height: u64) -> Result<Output, CliError> {
    let mut stream = connect(cli).await?.stream_blocks(from_height).await?;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let next = tokio::select! {
            _ = &mut ctrl_c => return Ok(Output::streamed()),
            next = stream.message() => next,
        };
        let block = match next {
            Ok(Some(block)) => block,
            Ok(None) => return Ok(Output::streamed()),
            Err(status) => {
                return Err(CliError::Status {
                    call: "StreamBlocks",
                    status,
                })
            }
        };
        let line = if cli.json {
            render::block_json(&block).to_string()
        } else {
            render::block_line(&block)
        };
        if writeln!(std::io::stdout().lock(), "{line}").is_err() {
            // The reader went away (`yrd watch | head`): stop quietly.
            return Ok(Output::streamed());
        }
    }
}
