//! The command line of `yrd`: every command, flag and help text (clap derive).
//!
//! Invariant: values that have a local format (USCCs, identifiers, hex hashes and keys, dates,
//! CNY amounts, member keys) are parsed here by [`crate::parse`], so a malformed value is refused
//! before any key is read or any request is sent.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use yrd_proto::signing::{Hash, PublicKeyBytes};
use yrd_proto::v1::{MemberKind, ObjectionOutcome, QueryPurpose, ReportKind};

use crate::parse::{self, MemberKeyArg};
use crate::state_key::{self, StateKey};

/// Endpoint used when neither `--endpoint` nor `YRD_ENDPOINT` is given.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:7100";
/// Longest timeout accepted for one request, in seconds.
pub const TIMEOUT_SECS_MAX: u64 = 3_600;
/// Default validity of a transaction, in seconds.
pub const VALID_FOR_SECS_DEFAULT: u64 = 300;
/// Longest validity of a transaction, in seconds (the node's limit).
pub const VALID_FOR_SECS_MAX: u64 = yrd_proto::limits::TRANSACTION_VALIDITY_MS_MAX / 1_000;
/// Longest authorization granted with `--valid-days`, in days.
pub const VALID_DAYS_MAX: u64 = 100 * 366;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  other failure (node unreachable, unexpected response, gRPC status other than below)
  2  invalid command line or local input (bad flag, hex, date, USCC, key file)
  3  the node refused the request as invalid (gRPC INVALID_ARGUMENT)
  4  not found (gRPC NOT_FOUND)
  5  permission denied (gRPC PERMISSION_DENIED)
  6  deadline exceeded (gRPC DEADLINE_EXCEEDED or --timeout-secs passed)
  7  resource exhausted, e.g. the mempool is full (gRPC RESOURCE_EXHAUSTED)
  8  the transaction was committed but rejected (tx --wait, wait)
  9  the answer does not verify against the genesis file (verify, or a fetch with --genesis)

Errors are written to stderr with the gRPC status code and message. With --json, stdout carries
exactly one JSON object per command (for errors: {\"error\": {...}}); `watch --json` prints one
object per line.";

/// `yrd`: the member command line of the yrd ledger.
#[derive(Debug, Parser)]
#[command(
    name = "yrd",
    version,
    about = "yrd: the member command line of the yrd ledger (keys, status, transactions, queries)",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// gRPC endpoint of a node.
    #[arg(
        long,
        env = "YRD_ENDPOINT",
        default_value = DEFAULT_ENDPOINT,
        value_name = "URL",
        global = true,
        help_heading = "Global options"
    )]
    pub endpoint: String,
    /// Print exactly one JSON object on stdout instead of readable text.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    /// Seconds to wait for the node before giving up (connect and each request).
    #[arg(
        long,
        default_value_t = 10,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..=TIMEOUT_SECS_MAX),
        global = true,
        help_heading = "Global options"
    )]
    pub timeout_secs: u64,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate and show member key files.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Show the node's and the chain's status.
    Status,
    /// Build, sign and submit a transaction.
    Tx(TxCommand),
    /// Read one committed record: a transaction, block, member, report, receivable or fund.
    #[command(subcommand)]
    Get(GetCommand),
    /// List records.
    #[command(subcommand)]
    List(ListCommand),
    /// Wait until a submitted transaction is committed and print its receipt.
    Wait {
        /// The transaction hash (hex).
        #[arg(value_parser = parse::hash_hex, value_name = "HASH")]
        hash: Hash,
    },
    /// Stream committed blocks, one line each, until Ctrl-C or the end of the stream.
    Watch {
        /// First height to stream.
        #[arg(long, default_value_t = 1, value_name = "N")]
        from_height: u64,
    },
    /// Fetch the value (or absence) of a state key at a height, with its proof.
    Prove(ProveArgs),
    /// Fetch the versions of a state key, each with its proof and the transaction that wrote it.
    History(HistoryArgs),
    /// Fetch certified block headers from a height on.
    Headers(HeadersArgs),
    /// Fetch the validator set that decides a height, with its changes since genesis.
    Validators(ValidatorsArgs),
    /// Verify saved answers (from --save) offline, against the genesis file alone.
    Verify(VerifyArgs),
}

/// `yrd keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new ed25519 key into a new file (mode 0600) and print its public key.
    Generate {
        /// The key file to create; an existing file is never overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print the public key of a key file.
    Show {
        /// The key file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// `yrd get ...`
#[derive(Debug, Subcommand)]
pub enum GetCommand {
    /// A committed transaction with its receipt and place in the chain.
    Tx {
        /// The transaction hash (hex).
        #[arg(value_parser = parse::hash_hex, value_name = "HASH")]
        hash: Hash,
    },
    /// A committed block, by height or by hash.
    Block {
        /// The block height.
        #[arg(
            value_name = "HEIGHT",
            required_unless_present = "hash",
            conflicts_with = "hash"
        )]
        height: Option<u64>,
        /// The block hash (hex), instead of a height.
        #[arg(long, value_parser = parse::hash_hex, value_name = "HEX")]
        hash: Option<Hash>,
    },
    /// A member organisation.
    Member {
        /// Its USCC.
        #[arg(value_parser = parse::uscc)]
        uscc: String,
    },
    /// A credit report and its versions (details only for a regulator or a recorded query).
    Report {
        /// The report id.
        #[arg(value_parser = parse::identifier, value_name = "ID")]
        id: String,
        /// Hash of the committed record-query transaction that authorizes the details.
        #[arg(long, value_parser = parse::hash_hex, value_name = "HASH")]
        query_tx: Option<Hash>,
    },
    /// A receivable and its units.
    Receivable {
        /// The receivable id.
        #[arg(value_parser = parse::identifier, value_name = "ID")]
        id: String,
    },
    /// A fund with its holdings, pledges and freezes.
    Fund {
        /// The fund id.
        #[arg(value_parser = parse::identifier, value_name = "ID")]
        id: String,
    },
}

/// `yrd list ...`
#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// The credit reports about a subject.
    Reports {
        /// The subject's USCC.
        #[arg(value_parser = parse::uscc, value_name = "SUBJECT")]
        subject: String,
    },
}

/// `yrd tx <ACTION> ... --key FILE`
#[derive(Debug, Args)]
pub struct TxCommand {
    /// The transaction.
    #[command(subcommand)]
    pub action: TxAction,
    /// Signing and submission options.
    #[command(flatten)]
    pub options: TxOptions,
}

/// Options common to every transaction.
#[derive(Debug, Args)]
pub struct TxOptions {
    /// Key file to sign with; repeat for co-signers. The first key is the acting party.
    #[arg(
        long = "key",
        value_name = "FILE",
        global = true,
        help_heading = "Signing options"
    )]
    pub keys: Vec<PathBuf>,
    /// Wait until the transaction is committed and print its receipt.
    #[arg(long, global = true, help_heading = "Signing options")]
    pub wait: bool,
    /// Chain id to sign for (default: asked from the node).
    #[arg(
        long,
        value_name = "ID",
        global = true,
        help_heading = "Signing options"
    )]
    pub chain_id: Option<String>,
    /// Seconds the transaction stays valid (at most 3600).
    #[arg(
        long,
        default_value_t = VALID_FOR_SECS_DEFAULT,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..=VALID_FOR_SECS_MAX),
        global = true,
        help_heading = "Signing options"
    )]
    pub valid_for_secs: u64,
    /// Nonce of the transaction (default: a random u64 from the operating system).
    #[arg(
        long,
        value_name = "N",
        global = true,
        help_heading = "Signing options"
    )]
    pub nonce: Option<u64>,
    /// Build and sign, print the signed transaction and its hash, and do not submit.
    #[arg(long, global = true, help_heading = "Signing options")]
    pub dry_run: bool,
}

/// Kinds of member organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MemberKindArg {
    /// A commercial bank.
    Bank,
    /// A credit bureau.
    Bureau,
    /// A regional equity market.
    EquityMarket,
    /// An enterprise.
    Enterprise,
    /// A regulator.
    Regulator,
}

impl From<MemberKindArg> for MemberKind {
    fn from(kind: MemberKindArg) -> Self {
        match kind {
            MemberKindArg::Bank => Self::Bank,
            MemberKindArg::Bureau => Self::Bureau,
            MemberKindArg::EquityMarket => Self::EquityMarket,
            MemberKindArg::Enterprise => Self::Enterprise,
            MemberKindArg::Regulator => Self::Regulator,
        }
    }
}

/// Kinds of credit report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportKindArg {
    /// Basic registration information.
    Basic,
    /// A loan.
    Loan,
    /// A guarantee.
    Guarantee,
    /// Tax arrears.
    TaxArrears,
    /// A court judgment.
    CourtJudgment,
    /// Utility payments.
    UtilityPayment,
}

impl From<ReportKindArg> for ReportKind {
    fn from(kind: ReportKindArg) -> Self {
        match kind {
            ReportKindArg::Basic => Self::Basic,
            ReportKindArg::Loan => Self::Loan,
            ReportKindArg::Guarantee => Self::Guarantee,
            ReportKindArg::TaxArrears => Self::TaxArrears,
            ReportKindArg::CourtJudgment => Self::CourtJudgment,
            ReportKindArg::UtilityPayment => Self::UtilityPayment,
        }
    }
}

/// Purposes of a query authorization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PurposeArg {
    /// Approving a loan.
    LoanApproval,
    /// Managing a loan after it was granted.
    PostLoanManagement,
    /// Approving a guarantee.
    GuaranteeApproval,
    /// Supply-chain finance.
    SupplyChainFinance,
}

impl From<PurposeArg> for QueryPurpose {
    fn from(purpose: PurposeArg) -> Self {
        match purpose {
            PurposeArg::LoanApproval => Self::LoanApproval,
            PurposeArg::PostLoanManagement => Self::PostLoanManagement,
            PurposeArg::GuaranteeApproval => Self::GuaranteeApproval,
            PurposeArg::SupplyChainFinance => Self::SupplyChainFinance,
        }
    }
}

/// How an objection is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutcomeArg {
    /// The report was corrected by an amendment filed after the objection.
    Corrected,
    /// The report stands as it is.
    Upheld,
    /// The issuer could not resolve it.
    Unresolved,
}

impl From<OutcomeArg> for ObjectionOutcome {
    fn from(outcome: OutcomeArg) -> Self {
        match outcome {
            OutcomeArg::Corrected => Self::Corrected,
            OutcomeArg::Upheld => Self::Upheld,
            OutcomeArg::Unresolved => Self::Unresolved,
        }
    }
}

/// The document of a report: its hash, given or computed from a file.
#[derive(Debug, Args)]
pub struct DocumentArgs {
    /// SHA-256 of the off-chain document (hex).
    #[arg(
        long,
        value_parser = parse::sha256_hex,
        value_name = "HEX",
        required_unless_present = "document",
        conflicts_with = "document"
    )]
    pub document_sha256: Option<Hash>,
    /// The off-chain document; its SHA-256 is computed locally and the file is not sent.
    #[arg(long, value_name = "FILE")]
    pub document: Option<PathBuf>,
}

/// The content of a report version.
#[derive(Debug, Args)]
pub struct ReportContentArgs {
    /// The document.
    #[command(flatten)]
    pub document: DocumentArgs,
    /// The report is negative information.
    #[arg(long)]
    pub negative: bool,
    /// Day (days since 1970-01-01) the underlying event ended; omit if it has not ended.
    #[arg(long, value_name = "N", conflicts_with = "event_end_date")]
    pub event_end_day: Option<u32>,
    /// Date (YYYY-MM-DD, UTC) the underlying event ended, instead of --event-end-day.
    #[arg(long, value_parser = parse::date_to_day, value_name = "YYYY-MM-DD")]
    pub event_end_date: Option<u32>,
    /// Short summary (at most 512 bytes).
    #[arg(long, default_value = "")]
    pub summary: String,
}

/// One transaction to build; one subcommand per transaction type of the ledger.
#[derive(Debug, Subcommand)]
pub enum TxAction {
    /// Admit a member organisation (signed by more than two thirds of the validators' operators).
    RegisterMember {
        /// The member's USCC.
        #[arg(long, value_parser = parse::uscc)]
        uscc: String,
        /// The organisation's name.
        #[arg(long)]
        name: String,
        /// The kind of organisation.
        #[arg(long, value_enum)]
        kind: MemberKindArg,
        /// A key and its roles, PUBHEX:role1,role2 (roles: credit-reporter, credit-querier,
        /// financier, registrar, enterprise, supervisor); repeat for several keys.
        #[arg(long, value_parser = parse::member_key, value_name = "PUBHEX:ROLES", required = true)]
        member_key: Vec<MemberKeyArg>,
    },
    /// Add a key to a member (governance).
    AddMemberKey {
        /// The member's USCC.
        #[arg(long, value_parser = parse::uscc)]
        uscc: String,
        /// The key and its roles, PUBHEX:role1,role2.
        #[arg(long, value_parser = parse::member_key, value_name = "PUBHEX:ROLES")]
        member_key: MemberKeyArg,
    },
    /// Revoke a member key (governance).
    RevokeMemberKey {
        /// The key to revoke (hex).
        #[arg(long, value_parser = parse::public_key_hex, value_name = "HEX")]
        public_key: PublicKeyBytes,
    },
    /// Add a validator (governance).
    AddValidator {
        /// The validator's consensus key (hex).
        #[arg(long, value_parser = parse::public_key_hex, value_name = "HEX")]
        public_key: PublicKeyBytes,
        /// The USCC of the member that operates it.
        #[arg(long, value_parser = parse::uscc)]
        operator: String,
    },
    /// Remove a validator (governance).
    RemoveValidator {
        /// The validator's consensus key (hex).
        #[arg(long, value_parser = parse::public_key_hex, value_name = "HEX")]
        public_key: PublicKeyBytes,
    },
    /// Record a credit report about a subject (version 1).
    RecordReport {
        /// The new report's id.
        #[arg(long, value_parser = parse::identifier, value_name = "ID")]
        report_id: String,
        /// The subject's USCC.
        #[arg(long, value_parser = parse::uscc)]
        subject: String,
        /// The kind of report.
        #[arg(long, value_enum)]
        kind: ReportKindArg,
        /// Content of the report.
        #[command(flatten)]
        content: ReportContentArgs,
    },
    /// Amend a report (a new version), as its issuer.
    AmendReport {
        /// The report id.
        #[arg(long, value_parser = parse::identifier, value_name = "ID")]
        report_id: String,
        /// Content of the new version.
        #[command(flatten)]
        content: ReportContentArgs,
    },
    /// Object to a report, as its subject.
    FileObjection {
        /// The report id.
        #[arg(long, value_parser = parse::identifier, value_name = "ID")]
        report_id: String,
        /// Why the report is wrong.
        #[arg(long)]
        reason: String,
    },
    /// Resolve the open objection on a report, as its issuer.
    ResolveObjection {
        /// The report id.
        #[arg(long, value_parser = parse::identifier, value_name = "ID")]
        report_id: String,
        /// The outcome.
        #[arg(long, value_enum)]
        outcome: OutcomeArg,
        /// A note on the resolution.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Authorize a member to query your reports for a purpose.
    GrantAuthorization {
        /// The grantee's USCC.
        #[arg(long, value_parser = parse::uscc)]
        grantee: String,
        /// The purpose.
        #[arg(long, value_enum)]
        purpose: PurposeArg,
        /// When the authorization expires (ms since the Unix epoch).
        #[arg(
            long,
            value_name = "MS",
            required_unless_present = "valid_days",
            conflicts_with = "valid_days"
        )]
        expires_at_ms: Option<u64>,
        /// Days from now until the authorization expires, instead of --expires-at-ms.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=VALID_DAYS_MAX))]
        valid_days: Option<u64>,
    },
    /// Revoke an authorization you granted.
    RevokeAuthorization {
        /// The grantee's USCC.
        #[arg(long, value_parser = parse::uscc)]
        grantee: String,
        /// The purpose.
        #[arg(long, value_enum)]
        purpose: PurposeArg,
    },
    /// Record a query of a report under an authorization (then `get report --query-tx`).
    RecordQuery {
        /// The report id.
        #[arg(long, value_parser = parse::identifier, value_name = "ID")]
        report_id: String,
        /// The purpose.
        #[arg(long, value_enum)]
        purpose: PurposeArg,
    },
    /// Register a receivable, as its creditor.
    RegisterReceivable {
        /// The receivable id.
        #[arg(long, value_parser = parse::identifier, value_name = "ID")]
        id: String,
        /// The debtor's USCC.
        #[arg(long, value_parser = parse::uscc)]
        debtor: String,
        /// The creditor's USCC.
        #[arg(long, value_parser = parse::uscc)]
        creditor: String,
        /// Face amount in fen.
        #[arg(
            long,
            value_name = "FEN",
            required_unless_present = "face_cny",
            conflicts_with = "face_cny"
        )]
        face_fen: Option<u64>,
        /// Face amount in CNY with at most two decimals (1234.56), instead of --face-fen.
        #[arg(long, value_parser = parse::cny_to_fen, value_name = "CNY")]
        face_cny: Option<u64>,
        /// Due day (days since 1970-01-01).
        #[arg(
            long,
            value_name = "N",
            required_unless_present = "due_date",
            conflicts_with = "due_date"
        )]
        due_day: Option<u32>,
        /// Due date (YYYY-MM-DD, UTC), instead of --due-day.
        #[arg(long, value_parser = parse::date_to_day, value_name = "YYYY-MM-DD")]
        due_date: Option<u32>,
        /// SHA-256 of an invoice backing the receivable (hex); repeat for each invoice.
        #[arg(long = "invoice-sha256", value_parser = parse::sha256_hex, value_name = "HEX", required = true)]
        invoice_sha256: Vec<Hash>,
        /// SHA-256 of the contract (hex).
        #[arg(long, value_parser = parse::sha256_hex, value_name = "HEX")]
        contract_sha256: Hash,
    },
    /// Confirm a receivable, as its debtor.
    ConfirmReceivable {
        /// The receivable id.
        #[arg(long, value_parser = parse::identifier, value_name = "ID")]
        id: String,
    },
    /// Transfer part or all of a receivable unit, as its holder.
    TransferReceivable {
        /// The unit id (`<receivable_id>` or `<receivable_id>#<part>`).
        #[arg(long, value_parser = parse::unit_id, value_name = "UNIT")]
        unit: String,
        /// The new holder's USCC.
        #[arg(long, value_parser = parse::uscc)]
        to: String,
        /// Amount in fen.
        #[arg(
            long,
            value_name = "FEN",
            required_unless_present = "amount_cny",
            conflicts_with = "amount_cny"
        )]
        amount_fen: Option<u64>,
        /// Amount in CNY (1234.56), instead of --amount-fen.
        #[arg(long, value_parser = parse::cny_to_fen, value_name = "CNY")]
        amount_cny: Option<u64>,
    },
    /// Pledge a receivable unit (signed by holder and pledgee).
    PledgeReceivable {
        /// The unit id.
        #[arg(long, value_parser = parse::unit_id, value_name = "UNIT")]
        unit: String,
        /// The pledgee's USCC.
        #[arg(long, value_parser = parse::uscc)]
        pledgee: String,
        /// Secured amount in fen.
        #[arg(
            long,
            value_name = "FEN",
            required_unless_present = "secured_cny",
            conflicts_with = "secured_cny"
        )]
        secured_fen: Option<u64>,
        /// Secured amount in CNY (1234.56), instead of --secured-fen.
        #[arg(long, value_parser = parse::cny_to_fen, value_name = "CNY")]
        secured_cny: Option<u64>,
    },
    /// Factor a receivable unit (signed by holder and factor).
    FactorReceivable {
        /// The unit id.
        #[arg(long, value_parser = parse::unit_id, value_name = "UNIT")]
        unit: String,
        /// The factor's USCC.
        #[arg(long, value_parser = parse::uscc)]
        factor: String,
        /// Advance in fen.
        #[arg(
            long,
            value_name = "FEN",
            required_unless_present = "advance_cny",
            conflicts_with = "advance_cny"
        )]
        advance_fen: Option<u64>,
        /// Advance in CNY (1234.56), instead of --advance-fen.
        #[arg(long, value_parser = parse::cny_to_fen, value_name = "CNY")]
        advance_cny: Option<u64>,
    },
    /// Release the active financing of a unit, as its financier.
    ReleaseFinancing {
        /// The unit id.
        #[arg(long, value_parser = parse::unit_id, value_name = "UNIT")]
        unit: String,
    },
    /// Record a payment on a receivable, as its debtor.
    PayReceivable {
        /// The receivable id.
        #[arg(long, value_parser = parse::identifier, value_name = "ID")]
        id: String,
        /// Amount paid in fen.
        #[arg(
            long,
            value_name = "FEN",
            required_unless_present = "amount_cny",
            conflicts_with = "amount_cny"
        )]
        amount_fen: Option<u64>,
        /// Amount paid in CNY (1234.56), instead of --amount-fen.
        #[arg(long, value_parser = parse::cny_to_fen, value_name = "CNY")]
        amount_cny: Option<u64>,
    },
    /// Cancel an unconfirmed receivable, as creditor or debtor.
    CancelReceivable {
        /// The receivable id.
        #[arg(long, value_parser = parse::identifier, value_name = "ID")]
        id: String,
    },
    /// Register a private fund, as an equity market.
    RegisterFund {
        /// The fund id.
        #[arg(long, value_parser = parse::identifier, value_name = "ID")]
        id: String,
        /// The manager's USCC.
        #[arg(long, value_parser = parse::uscc)]
        manager: String,
        /// The fund's filing number.
        #[arg(long)]
        filing_number: String,
        /// Total units of the fund.
        #[arg(long, value_name = "N")]
        total_units: u64,
    },
    /// Register units held in custody, as the fund's equity market.
    RegisterHolding {
        /// The fund id.
        #[arg(long, value_parser = parse::identifier, value_name = "ID")]
        fund: String,
        /// The holder's USCC.
        #[arg(long, value_parser = parse::uscc)]
        holder: String,
        /// Units held.
        #[arg(long, value_name = "N")]
        units: u64,
    },
    /// Transfer free units, as the holder (countersigned by the fund's equity market).
    TransferUnits {
        /// The fund id.
        #[arg(long, value_parser = parse::identifier, value_name = "ID")]
        fund: String,
        /// The receiver's USCC.
        #[arg(long, value_parser = parse::uscc)]
        to: String,
        /// Units to transfer.
        #[arg(long, value_name = "N")]
        units: u64,
    },
    /// Pledge free units (signed by pledgor, pledgee and the fund's equity market).
    PledgeUnits {
        /// The fund id.
        #[arg(long, value_parser = parse::identifier, value_name = "ID")]
        fund: String,
        /// The pledgor's USCC.
        #[arg(long, value_parser = parse::uscc)]
        pledgor: String,
        /// The pledgee's USCC.
        #[arg(long, value_parser = parse::uscc)]
        pledgee: String,
        /// Units to pledge.
        #[arg(long, value_name = "N")]
        units: u64,
    },
    /// Release a fund-unit pledge, as the pledgee.
    ReleasePledge {
        /// The pledge id.
        #[arg(long, value_name = "N")]
        pledge_id: u64,
    },
    /// Enforce a pledge: move pledged units to the pledgee or a buyer.
    EnforcePledge {
        /// The pledge id.
        #[arg(long, value_name = "N")]
        pledge_id: u64,
        /// The receiver's USCC.
        #[arg(long, value_parser = parse::uscc)]
        to: String,
        /// Units to move.
        #[arg(long, value_name = "N")]
        units: u64,
    },
    /// Freeze free units under a court reference (regulator or the fund's equity market).
    FreezeUnits {
        /// The fund id.
        #[arg(long, value_parser = parse::identifier, value_name = "ID")]
        fund: String,
        /// The holder's USCC.
        #[arg(long, value_parser = parse::uscc)]
        holder: String,
        /// Units to freeze.
        #[arg(long, value_name = "N")]
        units: u64,
        /// The court's reference.
        #[arg(long)]
        court_reference: String,
    },
    /// Lift a freeze (regulator or the fund's equity market).
    UnfreezeUnits {
        /// The freeze id.
        #[arg(long, value_name = "N")]
        freeze_id: u64,
    },
}

/// Most bundle files one `yrd verify` accepts.
pub const BUNDLE_FILES_MAX: usize = 1_024;

/// Where a fetched answer goes and how it is checked.
#[derive(Debug, Args)]
pub struct AnswerOptions {
    /// Save the answer as a ProofBundle (binary protobuf) to FILE, for `yrd verify`; an
    /// existing file is never overwritten. With --genesis, only an answer that verifies is saved.
    #[arg(long, value_name = "FILE", help_heading = "Answer options")]
    pub save: Option<PathBuf>,
    /// Verify the answer against this genesis file (genesis.json) and print what it proves;
    /// without it the answer is printed as NOT verified.
    #[arg(long, value_name = "FILE", help_heading = "Answer options")]
    pub genesis: Option<PathBuf>,
}

/// `yrd prove KEY`
#[derive(Debug, Args)]
pub struct ProveArgs {
    /// The state key: member:USCC, credit-report:ID, report-version:ID:N,
    /// authorization:SUBJECT:GRANTEE:PURPOSE_NUMBER, receivable:ID, unit:ID:PART, fund:ID,
    /// holding:FUND:HOLDER, fund-pledge:N, freeze:N or raw:HEX.
    #[arg(value_parser = state_key::state_key, value_name = "KEY")]
    pub key: StateKey,
    /// Height of the state (default: the latest committed height).
    #[arg(long, value_name = "H", value_parser = clap::value_parser!(u64).range(1..))]
    pub height: Option<u64>,
    /// Saving and verifying.
    #[command(flatten)]
    pub answer: AnswerOptions,
}

/// `yrd history KEY`
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The state key (same forms as for `yrd prove`).
    #[arg(value_parser = state_key::state_key, value_name = "KEY")]
    pub key: StateKey,
    /// Height of the state (default: the latest committed height).
    #[arg(long, value_name = "H", value_parser = clap::value_parser!(u64).range(1..))]
    pub height: Option<u64>,
    /// First version index to return (0 for the first version).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub from: u32,
    /// Most versions to return (default and maximum: the node's, 256).
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32)
            .range(1..=i64::from(yrd_node::proofs::HISTORY_VERSIONS_MAX))
    )]
    pub limit: Option<u32>,
    /// Saving and verifying.
    #[command(flatten)]
    pub answer: AnswerOptions,
}

/// `yrd headers --from H`
#[derive(Debug, Args)]
pub struct HeadersArgs {
    /// First height.
    #[arg(long, value_name = "H", value_parser = clap::value_parser!(u64).range(1..))]
    pub from: u64,
    /// Most headers to return (default and maximum: the node's, 1024).
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32)
            .range(1..=i64::from(yrd_node::proofs::HEADERS_MAX))
    )]
    pub limit: Option<u32>,
    /// Saving and verifying.
    #[command(flatten)]
    pub answer: AnswerOptions,
}

/// `yrd validators`
#[derive(Debug, Args)]
pub struct ValidatorsArgs {
    /// The height decided by the set (default: the height after the latest committed one).
    #[arg(long, value_name = "H", value_parser = clap::value_parser!(u64).range(1..))]
    pub height: Option<u64>,
    /// Saving and verifying.
    #[command(flatten)]
    pub answer: AnswerOptions,
}

/// `yrd verify --genesis FILE BUNDLE...`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The chain's genesis file (genesis.json): the only thing trusted.
    #[arg(long, value_name = "FILE")]
    pub genesis: PathBuf,
    /// Bundle files saved with --save.
    #[arg(value_name = "BUNDLE", required = true, num_args = 1..=BUNDLE_FILES_MAX)]
    pub bundles: Vec<PathBuf>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;

    const USCC_A: &str = "91310115MA1HT7Q4X0";
    const USCC_B: &str = "914403001922038216";

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("yrd").chain(args.iter().copied()))
    }

    #[test]
    fn command_definition_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn global_flags_parse_anywhere() {
        let cli = parse(&["status", "--json", "--endpoint", "http://node:7100"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.endpoint, "http://node:7100");
        assert_eq!(cli.timeout_secs, 10);
        assert!(matches!(cli.command, Command::Status));
        assert!(parse(&["--timeout-secs", "0", "status"]).is_err());
    }

    #[test]
    fn tx_options_follow_the_action() {
        let cli = parse(&[
            "tx",
            "transfer-receivable",
            "--unit",
            "AR-1#2",
            "--to",
            USCC_B,
            "--amount-cny",
            "10.5",
            "--key",
            "a.json",
            "--key",
            "b.json",
            "--wait",
            "--nonce",
            "7",
        ])
        .unwrap();
        let Command::Tx(tx) = cli.command else {
            panic!("not a tx")
        };
        assert_eq!(
            tx.options.keys,
            vec![PathBuf::from("a.json"), PathBuf::from("b.json")]
        );
        assert!(tx.options.wait);
        assert_eq!(tx.options.nonce, Some(7));
        assert_eq!(tx.options.valid_for_secs, VALID_FOR_SECS_DEFAULT);
        match tx.action {
            TxAction::TransferReceivable {
                unit,
                to,
                amount_fen,
                amount_cny,
            } => {
                assert_eq!(unit, "AR-1#2");
                assert_eq!(to, USCC_B);
                assert_eq!((amount_fen, amount_cny), (None, Some(1050)));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn validity_is_bounded() {
        let base = ["tx", "confirm-receivable", "--id", "AR-1", "--key", "k"];
        let with = |secs: &str| {
            let mut args = base.to_vec();
            args.extend(["--valid-for-secs", secs]);
            parse(&args)
        };
        assert!(with("3600").is_ok());
        assert!(with("3601").is_err());
        assert!(with("0").is_err());
    }

    #[test]
    fn alternatives_are_exclusive_and_one_is_required() {
        let base = [
            "tx",
            "register-receivable",
            "--id",
            "AR-1",
            "--debtor",
            USCC_A,
            "--creditor",
            USCC_B,
            "--invoice-sha256",
        ];
        let hash = "11".repeat(32);
        let mut args: Vec<&str> = base.to_vec();
        args.extend([hash.as_str(), "--contract-sha256", hash.as_str()]);
        let mut ok = args.clone();
        ok.extend(["--face-fen", "100", "--due-date", "2026-01-01"]);
        assert!(parse(&ok).is_ok());
        let mut both = args.clone();
        both.extend(["--face-fen", "100", "--face-cny", "1", "--due-day", "1"]);
        assert!(parse(&both).is_err(), "face given twice");
        let mut none = args.clone();
        none.extend(["--due-day", "1"]);
        assert!(parse(&none).is_err(), "face missing");
        let mut bad_date = args;
        bad_date.extend(["--face-fen", "1", "--due-date", "2026-02-30"]);
        assert!(parse(&bad_date).is_err(), "impossible date");
    }

    #[test]
    fn local_formats_are_refused_by_the_parser() {
        assert!(parse(&["get", "member", "91310115MA1HT7Q4X1"]).is_err());
        assert!(parse(&["get", "tx", "abcd"]).is_err());
        assert!(parse(&["get", "block"]).is_err(), "height or hash");
        assert!(parse(&["get", "block", "5", "--hash", &"00".repeat(32)]).is_err());
        assert!(parse(&["get", "block", "--hash", &"00".repeat(32)]).is_ok());
        assert!(parse(&[
            "tx",
            "register-member",
            "--uscc",
            USCC_A,
            "--name",
            "Bank",
            "--kind",
            "equity-market"
        ])
        .is_err());
    }

    #[test]
    fn proof_commands_parse() {
        let cli = parse(&[
            "history",
            "credit-report:CR-1",
            "--height",
            "5",
            "--from",
            "1",
            "--limit",
            "2",
            "--save",
            "h.bundle",
            "--genesis",
            "genesis.json",
        ])
        .unwrap();
        let Command::History(history) = cli.command else {
            panic!("not history")
        };
        assert_eq!(
            history.key.bytes,
            yrd_chaincode::keys::credit_report("CR-1")
        );
        assert_eq!(
            (history.height, history.from, history.limit),
            (Some(5), 1, Some(2))
        );
        assert_eq!(history.answer.save, Some(PathBuf::from("h.bundle")));
        assert_eq!(history.answer.genesis, Some(PathBuf::from("genesis.json")));
        assert!(parse(&["prove", "credit-report:CR-1"]).is_ok());
        assert!(parse(&["prove", "credit-report:CR/1"]).is_err(), "bad id");
        assert!(parse(&["prove", "credit-report:CR-1", "--height", "0"]).is_err());
        assert!(parse(&["history", "fund:F-1", "--limit", "257"]).is_err());
        assert!(parse(&["headers"]).is_err(), "--from is required");
        assert!(parse(&["headers", "--from", "0"]).is_err());
        assert!(parse(&["headers", "--from", "1", "--limit", "1024"]).is_ok());
        assert!(parse(&["validators"]).is_ok());
        assert!(
            parse(&["verify", "a.bundle"]).is_err(),
            "--genesis is required"
        );
        assert!(
            parse(&["verify", "--genesis", "g.json"]).is_err(),
            "a bundle"
        );
        let cli = parse(&["verify", "--genesis", "g.json", "a", "b"]).unwrap();
        let Command::Verify(verify) = cli.command else {
            panic!("not verify")
        };
        assert_eq!(verify.bundles.len(), 2);
    }

    #[test]
    fn report_flags_parse() {
        let cli = parse(&[
            "tx",
            "record-report",
            "--report-id",
            "R-1",
            "--subject",
            USCC_A,
            "--kind",
            "tax-arrears",
            "--document-sha256",
            &"ab".repeat(32),
            "--negative",
            "--event-end-date",
            "2026-01-01",
            "--summary",
            "arrears",
            "--key",
            "k.json",
        ])
        .unwrap();
        let Command::Tx(tx) = cli.command else {
            panic!("not a tx")
        };
        let TxAction::RecordReport { kind, content, .. } = tx.action else {
            panic!("not record-report")
        };
        assert_eq!(kind, ReportKindArg::TaxArrears);
        assert!(content.negative);
        assert_eq!(content.event_end_date, Some(20454));
        assert_eq!(content.document.document_sha256, Some([0xab; 32]));
    }
}
