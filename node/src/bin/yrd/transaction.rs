//! Building and signing transactions from parsed command-line arguments.
//!
//! Invariant: a body leaves this module only after it passed the same stateless checks the node
//! applies (`yrd_chaincode::Transaction::try_from`), its encoding is within the size limits, and
//! it is signed by every given key in order with distinct signers.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use prost::Message;
use rand_core::RngCore;
use sha2::{Digest, Sha256};
use yrd_chaincode::date::DAY_MS;
use yrd_chaincode::Transaction;
use yrd_proto::limits::{
    TRANSACTION_BODY_BYTES_MAX, TRANSACTION_BYTES_MAX, TRANSACTION_SIGNATURES_MAX,
};
use yrd_proto::signing::{sign_transaction, transaction_hash, Hash};
use yrd_proto::v1::{self, transaction_body::Action};

use crate::args::{DocumentArgs, ReportContentArgs, TxAction};
use crate::error::CliError;
use crate::parse::MemberKeyArg;

/// Milliseconds since the Unix epoch by the local clock.
pub fn now_ms() -> Result<u64, CliError> {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| CliError::Input("the local clock is before 1970".into()))?;
    u64::try_from(elapsed.as_millis())
        .map_err(|_| CliError::Input("the local clock is out of range".into()))
}

/// A random nonce from the operating system's randomness.
#[must_use]
pub fn random_nonce() -> u64 {
    rand_core::OsRng.next_u64()
}

/// Reads the signing keys, in order, refusing none, too many, or the same key twice.
pub fn read_keys(paths: &[std::path::PathBuf]) -> Result<Vec<SigningKey>, CliError> {
    if paths.is_empty() {
        return Err(CliError::Input(
            "a transaction needs at least one --key FILE (the acting party's key first)".into(),
        ));
    }
    if paths.len() > TRANSACTION_SIGNATURES_MAX {
        return Err(CliError::Input(format!(
            "at most {TRANSACTION_SIGNATURES_MAX} --key files, found {}",
            paths.len()
        )));
    }
    let mut keys: Vec<SigningKey> = Vec::with_capacity(paths.len());
    for path in paths {
        let key = yrd_node::keyfile::read(path)?;
        if keys
            .iter()
            .any(|known| known.verifying_key() == key.verifying_key())
        {
            return Err(CliError::Input(format!(
                "{}: the same key is given twice",
                path.display()
            )));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// SHA-256 of a file, read in a stream (the file is never sent).
pub fn hash_file(path: &Path) -> Result<Hash, CliError> {
    let io = |source| CliError::Io {
        path: format!("--document {}", path.display()),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io)?;
    Ok(hasher.finalize().into())
}

fn document_hash(document: &DocumentArgs) -> Result<Vec<u8>, CliError> {
    match (&document.document_sha256, &document.document) {
        (Some(hash), None) => Ok(hash.to_vec()),
        (None, Some(path)) => Ok(hash_file(path)?.to_vec()),
        _ => Err(CliError::Input(
            "give exactly one of --document-sha256 HEX and --document FILE".into(),
        )),
    }
}

fn event_end_day(content: &ReportContentArgs) -> u32 {
    content
        .event_end_day
        .or(content.event_end_date)
        .unwrap_or(0)
}

/// One of two alternative flags (`--x-fen` / `--x-cny`, `--due-day` / `--due-date`).
fn one_of<T: Copy>(first: Option<T>, second: Option<T>, flags: &str) -> Result<T, CliError> {
    match (first, second) {
        (Some(value), None) | (None, Some(value)) => Ok(value),
        _ => Err(CliError::Input(format!("give exactly one of {flags}"))),
    }
}

fn member_key(key: &MemberKeyArg) -> v1::MemberKey {
    v1::MemberKey {
        public_key: key.public_key.to_vec(),
        roles: key.roles.iter().map(|role| *role as i32).collect(),
    }
}

/// Builds the action of a transaction. `now_ms` is used only by `--valid-days`; files given
/// with `--document` are hashed here.
#[allow(clippy::too_many_lines)] // One arm per transaction type, each a struct literal.
pub fn build_action(action: &TxAction, now_ms: u64) -> Result<Action, CliError> {
    Ok(match action {
        TxAction::RegisterMember {
            uscc,
            name,
            kind,
            member_key: keys,
        } => Action::RegisterMember(v1::RegisterMember {
            uscc: uscc.clone(),
            name: name.clone(),
            kind: v1::MemberKind::from(*kind) as i32,
            keys: keys.iter().map(member_key).collect(),
        }),
        TxAction::AddMemberKey {
            uscc,
            member_key: key,
        } => Action::AddMemberKey(v1::AddMemberKey {
            uscc: uscc.clone(),
            key: Some(member_key(key)),
        }),
        TxAction::RevokeMemberKey { public_key } => Action::RevokeMemberKey(v1::RevokeMemberKey {
            public_key: public_key.to_vec(),
        }),
        TxAction::AddValidator {
            public_key,
            operator,
        } => Action::AddValidator(v1::AddValidator {
            public_key: public_key.to_vec(),
            operator_uscc: operator.clone(),
        }),
        TxAction::RemoveValidator { public_key } => Action::RemoveValidator(v1::RemoveValidator {
            public_key: public_key.to_vec(),
        }),
        TxAction::RecordReport {
            report_id,
            subject,
            kind,
            content,
        } => Action::RecordCreditReport(v1::RecordCreditReport {
            report_id: report_id.clone(),
            subject_uscc: subject.clone(),
            kind: v1::ReportKind::from(*kind) as i32,
            document_sha256: document_hash(&content.document)?,
            negative: content.negative,
            event_end_day: event_end_day(content),
            summary: content.summary.clone(),
        }),
        TxAction::AmendReport { report_id, content } => {
            Action::AmendCreditReport(v1::AmendCreditReport {
                report_id: report_id.clone(),
                document_sha256: document_hash(&content.document)?,
                negative: content.negative,
                event_end_day: event_end_day(content),
                summary: content.summary.clone(),
            })
        }
        TxAction::FileObjection { report_id, reason } => Action::FileObjection(v1::FileObjection {
            report_id: report_id.clone(),
            reason: reason.clone(),
        }),
        TxAction::ResolveObjection {
            report_id,
            outcome,
            note,
        } => Action::ResolveObjection(v1::ResolveObjection {
            report_id: report_id.clone(),
            outcome: v1::ObjectionOutcome::from(*outcome) as i32,
            note: note.clone(),
        }),
        TxAction::GrantAuthorization {
            grantee,
            purpose,
            expires_at_ms,
            valid_days,
        } => {
            let from_days = valid_days
                .map(|days| {
                    days.checked_mul(DAY_MS)
                        .and_then(|ms| ms.checked_add(now_ms))
                        .ok_or_else(|| CliError::Input("--valid-days is too large".into()))
                })
                .transpose()?;
            Action::GrantAuthorization(v1::GrantAuthorization {
                grantee_uscc: grantee.clone(),
                purpose: v1::QueryPurpose::from(*purpose) as i32,
                expires_at_ms: one_of(*expires_at_ms, from_days, "--expires-at-ms, --valid-days")?,
            })
        }
        TxAction::RevokeAuthorization { grantee, purpose } => {
            Action::RevokeAuthorization(v1::RevokeAuthorization {
                grantee_uscc: grantee.clone(),
                purpose: v1::QueryPurpose::from(*purpose) as i32,
            })
        }
        TxAction::RecordQuery { report_id, purpose } => {
            Action::RecordCreditQuery(v1::RecordCreditQuery {
                report_id: report_id.clone(),
                purpose: v1::QueryPurpose::from(*purpose) as i32,
            })
        }
        TxAction::RegisterReceivable {
            id,
            debtor,
            creditor,
            face_fen,
            face_cny,
            due_day,
            due_date,
            invoice_sha256,
            contract_sha256,
        } => Action::RegisterReceivable(v1::RegisterReceivable {
            receivable_id: id.clone(),
            debtor_uscc: debtor.clone(),
            creditor_uscc: creditor.clone(),
            face_fen: one_of(*face_fen, *face_cny, "--face-fen, --face-cny")?,
            due_day: one_of(*due_day, *due_date, "--due-day, --due-date")?,
            invoice_hashes: invoice_sha256.iter().map(|hash| hash.to_vec()).collect(),
            contract_hash: contract_sha256.to_vec(),
        }),
        TxAction::ConfirmReceivable { id } => Action::ConfirmReceivable(v1::ConfirmReceivable {
            receivable_id: id.clone(),
        }),
        TxAction::TransferReceivable {
            unit,
            to,
            amount_fen,
            amount_cny,
        } => Action::TransferReceivable(v1::TransferReceivable {
            unit_id: unit.clone(),
            to_uscc: to.clone(),
            amount_fen: one_of(*amount_fen, *amount_cny, "--amount-fen, --amount-cny")?,
        }),
        TxAction::PledgeReceivable {
            unit,
            pledgee,
            secured_fen,
            secured_cny,
        } => Action::PledgeReceivable(v1::PledgeReceivable {
            unit_id: unit.clone(),
            pledgee_uscc: pledgee.clone(),
            secured_amount_fen: one_of(*secured_fen, *secured_cny, "--secured-fen, --secured-cny")?,
        }),
        TxAction::FactorReceivable {
            unit,
            factor,
            advance_fen,
            advance_cny,
        } => Action::FactorReceivable(v1::FactorReceivable {
            unit_id: unit.clone(),
            factor_uscc: factor.clone(),
            advance_fen: one_of(*advance_fen, *advance_cny, "--advance-fen, --advance-cny")?,
        }),
        TxAction::ReleaseFinancing { unit } => {
            Action::ReleaseReceivableFinancing(v1::ReleaseReceivableFinancing {
                unit_id: unit.clone(),
            })
        }
        TxAction::PayReceivable {
            id,
            amount_fen,
            amount_cny,
        } => Action::RecordReceivablePayment(v1::RecordReceivablePayment {
            receivable_id: id.clone(),
            amount_fen: one_of(*amount_fen, *amount_cny, "--amount-fen, --amount-cny")?,
        }),
        TxAction::CancelReceivable { id } => Action::CancelReceivable(v1::CancelReceivable {
            receivable_id: id.clone(),
        }),
        TxAction::RegisterFund {
            id,
            manager,
            filing_number,
            total_units,
        } => Action::RegisterFund(v1::RegisterFund {
            fund_id: id.clone(),
            manager_uscc: manager.clone(),
            filing_number: filing_number.clone(),
            total_units: *total_units,
        }),
        TxAction::RegisterHolding {
            fund,
            holder,
            units,
        } => Action::RegisterHolding(v1::RegisterHolding {
            fund_id: fund.clone(),
            holder_uscc: holder.clone(),
            units: *units,
        }),
        TxAction::TransferUnits { fund, to, units } => {
            Action::TransferFundUnits(v1::TransferFundUnits {
                fund_id: fund.clone(),
                to_uscc: to.clone(),
                units: *units,
            })
        }
        TxAction::PledgeUnits {
            fund,
            pledgor,
            pledgee,
            units,
        } => Action::PledgeFundUnits(v1::PledgeFundUnits {
            fund_id: fund.clone(),
            pledgor_uscc: pledgor.clone(),
            pledgee_uscc: pledgee.clone(),
            units: *units,
        }),
        TxAction::ReleasePledge { pledge_id } => Action::ReleaseFundPledge(v1::ReleaseFundPledge {
            pledge_id: *pledge_id,
        }),
        TxAction::EnforcePledge {
            pledge_id,
            to,
            units,
        } => Action::EnforceFundPledge(v1::EnforceFundPledge {
            pledge_id: *pledge_id,
            to_uscc: to.clone(),
            units: *units,
        }),
        TxAction::FreezeUnits {
            fund,
            holder,
            units,
            court_reference,
        } => Action::FreezeFundUnits(v1::FreezeFundUnits {
            fund_id: fund.clone(),
            holder_uscc: holder.clone(),
            units: *units,
            court_reference: court_reference.clone(),
        }),
        TxAction::UnfreezeUnits { freeze_id } => Action::UnfreezeFundUnits(v1::UnfreezeFundUnits {
            freeze_id: *freeze_id,
        }),
    })
}

/// Assembles a body and checks it as the node will (stateless rules and size).
pub fn build_body(
    action: Action,
    chain_id: &str,
    nonce: u64,
    valid_until_ms: u64,
) -> Result<v1::TransactionBody, CliError> {
    yrd_proto::signing::check_chain_id(chain_id)?;
    let body = v1::TransactionBody {
        chain_id: chain_id.to_owned(),
        nonce,
        valid_until_ms,
        action: Some(action),
    };
    Transaction::try_from(body.clone())?;
    let length = body.encoded_len();
    if length > TRANSACTION_BODY_BYTES_MAX {
        return Err(CliError::Input(format!(
            "the transaction body is {length} bytes, more than the {TRANSACTION_BODY_BYTES_MAX} allowed"
        )));
    }
    Ok(body)
}

/// Signs a body with every key in order; returns the envelope and the transaction hash.
pub fn sign(
    body: &v1::TransactionBody,
    keys: &[SigningKey],
) -> Result<(v1::SignedTransaction, Hash), CliError> {
    let key_refs: Vec<&SigningKey> = keys.iter().collect();
    let envelope = sign_transaction(body, &key_refs)?;
    let length = envelope.encoded_len();
    if length > TRANSACTION_BYTES_MAX {
        return Err(CliError::Input(format!(
            "the signed transaction is {length} bytes, more than the {TRANSACTION_BYTES_MAX} allowed"
        )));
    }
    let hash = transaction_hash(&body.chain_id, &envelope.body)?;
    Ok((envelope, hash))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod tests {
    use clap::Parser;
    use yrd_proto::signing::{decode_envelope, verify_transaction};

    use super::*;
    use crate::args::{Cli, Command};

    const USCC_A: &str = "91310115MA1HT7Q4X0";
    const USCC_B: &str = "914403001922038216";
    const USCC_C: &str = "9144030071526726XG";
    const NOW_MS: u64 = 1_780_000_000_000;

    /// Parses `yrd tx <args> --key k` and builds the action.
    fn action(args: &[&str]) -> Action {
        let mut all = vec!["yrd", "tx"];
        all.extend_from_slice(args);
        all.extend(["--key", "k.json"]);
        let cli = Cli::try_parse_from(all).unwrap();
        let Command::Tx(tx) = cli.command else {
            panic!("not a tx")
        };
        let built = build_action(&tx.action, NOW_MS).unwrap();
        build_body(built.clone(), "yrd-test", 1, NOW_MS).unwrap();
        built
    }

    fn public_hex() -> (SigningKey, String) {
        let key = yrd_node::keyfile::generate();
        let hex_key = hex::encode(key.verifying_key().to_bytes());
        (key, hex_key)
    }

    #[test]
    fn governance_actions() {
        let (key, key_hex) = public_hex();
        let member_key = format!("{key_hex}:financier,enterprise");
        let built = action(&[
            "register-member",
            "--uscc",
            USCC_A,
            "--name",
            "First Bank",
            "--kind",
            "bank",
            "--member-key",
            &member_key,
        ]);
        let Action::RegisterMember(member) = built else {
            panic!("{built:?}")
        };
        assert_eq!(member.uscc, USCC_A);
        assert_eq!(member.kind, v1::MemberKind::Bank as i32);
        assert_eq!(member.keys.len(), 1);
        assert_eq!(member.keys[0].public_key, key.verifying_key().to_bytes());
        assert_eq!(
            member.keys[0].roles,
            vec![v1::Role::Financier as i32, v1::Role::Enterprise as i32]
        );

        let built = action(&[
            "add-member-key",
            "--uscc",
            USCC_A,
            "--member-key",
            &member_key,
        ]);
        assert!(matches!(
            built,
            Action::AddMemberKey(v1::AddMemberKey { key: Some(_), .. })
        ));
        let built = action(&["revoke-member-key", "--public-key", &key_hex]);
        assert!(matches!(built, Action::RevokeMemberKey(_)));
        let built = action(&[
            "add-validator",
            "--public-key",
            &key_hex,
            "--operator",
            USCC_B,
        ]);
        let Action::AddValidator(validator) = built else {
            panic!("{built:?}")
        };
        assert_eq!(validator.operator_uscc, USCC_B);
        let built = action(&["remove-validator", "--public-key", &key_hex]);
        assert!(matches!(built, Action::RemoveValidator(_)));
    }

    #[test]
    fn credit_actions() {
        let hash = "cd".repeat(32);
        let built = action(&[
            "record-report",
            "--report-id",
            "R-1",
            "--subject",
            USCC_A,
            "--kind",
            "court-judgment",
            "--document-sha256",
            &hash,
            "--negative",
            "--event-end-day",
            "20000",
            "--summary",
            "judgment",
        ]);
        let Action::RecordCreditReport(report) = built else {
            panic!("{built:?}")
        };
        assert_eq!(report.kind, v1::ReportKind::CourtJudgment as i32);
        assert_eq!(report.document_sha256, vec![0xcd; 32]);
        assert!(report.negative);
        assert_eq!(report.event_end_day, 20000);
        assert_eq!(report.summary, "judgment");

        let dir = std::env::temp_dir().join(format!("yrd-cli-doc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let document = dir.join("report.pdf");
        std::fs::write(&document, b"the document").unwrap();
        let built = action(&[
            "amend-report",
            "--report-id",
            "R-1",
            "--document",
            document.to_str().unwrap(),
        ]);
        let Action::AmendCreditReport(amend) = built else {
            panic!("{built:?}")
        };
        assert_eq!(
            amend.document_sha256,
            Sha256::digest(b"the document").to_vec()
        );
        assert_eq!(amend.event_end_day, 0, "not ended");
        std::fs::remove_dir_all(&dir).unwrap();

        let built = action(&["file-objection", "--report-id", "R-1", "--reason", "wrong"]);
        assert!(matches!(built, Action::FileObjection(_)));
        let built = action(&[
            "resolve-objection",
            "--report-id",
            "R-1",
            "--outcome",
            "upheld",
        ]);
        let Action::ResolveObjection(resolve) = built else {
            panic!("{built:?}")
        };
        assert_eq!(resolve.outcome, v1::ObjectionOutcome::Upheld as i32);

        let built = action(&[
            "grant-authorization",
            "--grantee",
            USCC_B,
            "--purpose",
            "supply-chain-finance",
            "--valid-days",
            "30",
        ]);
        let Action::GrantAuthorization(grant) = built else {
            panic!("{built:?}")
        };
        assert_eq!(grant.expires_at_ms, NOW_MS + 30 * DAY_MS);
        assert_eq!(grant.purpose, v1::QueryPurpose::SupplyChainFinance as i32);
        let built = action(&[
            "revoke-authorization",
            "--grantee",
            USCC_B,
            "--purpose",
            "loan-approval",
        ]);
        assert!(matches!(built, Action::RevokeAuthorization(_)));
        let built = action(&[
            "record-query",
            "--report-id",
            "R-1",
            "--purpose",
            "post-loan-management",
        ]);
        assert!(matches!(built, Action::RecordCreditQuery(_)));
    }

    #[test]
    fn receivable_actions() {
        let invoice_1 = "01".repeat(32);
        let invoice_2 = "02".repeat(32);
        let contract = "03".repeat(32);
        let built = action(&[
            "register-receivable",
            "--id",
            "AR-1",
            "--debtor",
            USCC_A,
            "--creditor",
            USCC_B,
            "--face-cny",
            "1234.56",
            "--due-date",
            "2026-01-01",
            "--invoice-sha256",
            &invoice_1,
            "--invoice-sha256",
            &invoice_2,
            "--contract-sha256",
            &contract,
        ]);
        let Action::RegisterReceivable(receivable) = built else {
            panic!("{built:?}")
        };
        assert_eq!(receivable.face_fen, 123_456);
        assert_eq!(receivable.due_day, 20454);
        assert_eq!(receivable.invoice_hashes, vec![vec![1; 32], vec![2; 32]]);
        assert_eq!(receivable.contract_hash, vec![3; 32]);

        let built = action(&["confirm-receivable", "--id", "AR-1"]);
        assert!(matches!(built, Action::ConfirmReceivable(_)));
        let built = action(&[
            "transfer-receivable",
            "--unit",
            "AR-1",
            "--to",
            USCC_C,
            "--amount-fen",
            "500",
        ]);
        let Action::TransferReceivable(transfer) = built else {
            panic!("{built:?}")
        };
        assert_eq!(
            (transfer.unit_id.as_str(), transfer.amount_fen),
            ("AR-1", 500)
        );
        let built = action(&[
            "pledge-receivable",
            "--unit",
            "AR-1#1",
            "--pledgee",
            USCC_C,
            "--secured-fen",
            "100",
        ]);
        let Action::PledgeReceivable(pledge) = built else {
            panic!("{built:?}")
        };
        assert_eq!(pledge.secured_amount_fen, 100);
        let built = action(&[
            "factor-receivable",
            "--unit",
            "AR-1",
            "--factor",
            USCC_C,
            "--advance-cny",
            "1",
        ]);
        let Action::FactorReceivable(factor) = built else {
            panic!("{built:?}")
        };
        assert_eq!(factor.advance_fen, 100);
        let built = action(&["release-financing", "--unit", "AR-1#1"]);
        assert!(matches!(built, Action::ReleaseReceivableFinancing(_)));
        let built = action(&["pay-receivable", "--id", "AR-1", "--amount-fen", "9"]);
        let Action::RecordReceivablePayment(payment) = built else {
            panic!("{built:?}")
        };
        assert_eq!(payment.amount_fen, 9);
        let built = action(&["cancel-receivable", "--id", "AR-1"]);
        assert!(matches!(built, Action::CancelReceivable(_)));
    }

    #[test]
    fn fund_actions() {
        let built = action(&[
            "register-fund",
            "--id",
            "F-1",
            "--manager",
            USCC_A,
            "--filing-number",
            "SX1234",
            "--total-units",
            "1000",
        ]);
        let Action::RegisterFund(fund) = built else {
            panic!("{built:?}")
        };
        assert_eq!(fund.total_units, 1000);
        assert_eq!(fund.filing_number, "SX1234");
        let built = action(&[
            "register-holding",
            "--fund",
            "F-1",
            "--holder",
            USCC_B,
            "--units",
            "10",
        ]);
        assert!(matches!(built, Action::RegisterHolding(_)));
        let built = action(&[
            "transfer-units",
            "--fund",
            "F-1",
            "--to",
            USCC_C,
            "--units",
            "5",
        ]);
        assert!(matches!(built, Action::TransferFundUnits(_)));
        let built = action(&[
            "pledge-units",
            "--fund",
            "F-1",
            "--pledgor",
            USCC_B,
            "--pledgee",
            USCC_C,
            "--units",
            "5",
        ]);
        let Action::PledgeFundUnits(pledge) = built else {
            panic!("{built:?}")
        };
        assert_eq!((pledge.pledgor_uscc.as_str(), pledge.units), (USCC_B, 5));
        let built = action(&["release-pledge", "--pledge-id", "3"]);
        assert!(matches!(
            built,
            Action::ReleaseFundPledge(v1::ReleaseFundPledge { pledge_id: 3 })
        ));
        let built = action(&[
            "enforce-pledge",
            "--pledge-id",
            "3",
            "--to",
            USCC_C,
            "--units",
            "2",
        ]);
        assert!(matches!(built, Action::EnforceFundPledge(_)));
        let built = action(&[
            "freeze-units",
            "--fund",
            "F-1",
            "--holder",
            USCC_B,
            "--units",
            "1",
            "--court-reference",
            "(2026) Hu 01 Zhi 1",
        ]);
        let Action::FreezeFundUnits(freeze) = built else {
            panic!("{built:?}")
        };
        assert_eq!(freeze.court_reference, "(2026) Hu 01 Zhi 1");
        let built = action(&["unfreeze-units", "--freeze-id", "4"]);
        assert!(matches!(
            built,
            Action::UnfreezeFundUnits(v1::UnfreezeFundUnits { freeze_id: 4 })
        ));
    }

    #[test]
    fn stateless_checks_run_before_sending() {
        let zero = Action::TransferFundUnits(v1::TransferFundUnits {
            fund_id: "F-1".into(),
            to_uscc: USCC_A.into(),
            units: 0,
        });
        assert!(matches!(
            build_body(zero, "yrd-test", 1, NOW_MS),
            Err(CliError::Malformed(_))
        ));
        let fine = Action::ConfirmReceivable(v1::ConfirmReceivable {
            receivable_id: "AR-1".into(),
        });
        assert!(matches!(
            build_body(fine, "", 1, NOW_MS),
            Err(CliError::Signing(_))
        ));
    }

    #[test]
    fn signing_covers_every_key_in_order() {
        let first = yrd_node::keyfile::generate();
        let second = yrd_node::keyfile::generate();
        let body = build_body(
            Action::ConfirmReceivable(v1::ConfirmReceivable {
                receivable_id: "AR-1".into(),
            }),
            "yrd-test",
            42,
            NOW_MS,
        )
        .unwrap();
        let (envelope, hash) = sign(&body, &[first.clone(), second.clone()]).unwrap();
        assert_eq!(envelope.signatures.len(), 2);
        assert_eq!(
            envelope.signatures[0].public_key,
            first.verifying_key().to_bytes()
        );
        assert_eq!(
            envelope.signatures[1].public_key,
            second.verifying_key().to_bytes()
        );
        let decoded = decode_envelope(&envelope.encode_to_vec()).unwrap();
        let verified = verify_transaction(decoded, "yrd-test").unwrap();
        assert_eq!(verified.hash, hash);
        assert_eq!(verified.body.nonce, 42);
    }

    #[test]
    fn key_lists_are_checked() {
        assert!(read_keys(&[]).is_err());
        let dir = std::env::temp_dir().join(format!("yrd-cli-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.json");
        let _ = std::fs::remove_file(&path);
        yrd_node::keyfile::write(&path, &yrd_node::keyfile::generate()).unwrap();
        assert_eq!(read_keys(std::slice::from_ref(&path)).unwrap().len(), 1);
        assert!(read_keys(&[path.clone(), path]).is_err(), "same key twice");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
