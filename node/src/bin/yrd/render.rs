//! Output of the `yrd` CLI: JSON objects built from the prost messages (bytes as hex, enums as
//! their protobuf names, amounts as integers of fen) and short human-readable summaries.
//!
//! Invariant: rendering never fails and never panics on what a node sends; a missing optional
//! message renders as `null` (JSON) or is left out (text), an unknown enum value renders as
//! `UNKNOWN(<n>)`, an undecodable transaction body as its hex.

use std::fmt::Write as _;

use prost::Message;
use serde_json::{json, Value};
use yrd_proto::block::block_hash;
use yrd_proto::signing::transaction_hash;
use yrd_proto::v1::{self, transaction_body::Action};

use crate::parse::{day_to_date, fen_to_cny};

/// Hex of some bytes.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn hex_list(items: &[Vec<u8>]) -> Value {
    Value::from(items.iter().map(|item| hex(item)).collect::<Vec<_>>())
}

/// The protobuf name of an enum value, or `UNKNOWN(<n>)`.
fn enum_name<E: TryFrom<i32>>(value: i32, name: fn(&E) -> &'static str) -> String {
    E::try_from(value)
        .map(|known| name(&known).to_owned())
        .unwrap_or_else(|_| format!("UNKNOWN({value})"))
}

/// The name of a rejection reason (`REASON_NOT_HOLDER`).
#[must_use]
pub fn reason_name(value: i32) -> String {
    enum_name(value, v1::ReasonCode::as_str_name)
}

fn member_kind(value: i32) -> String {
    enum_name(value, v1::MemberKind::as_str_name)
}

fn role(value: i32) -> String {
    enum_name(value, v1::Role::as_str_name)
}

fn report_kind(value: i32) -> String {
    enum_name(value, v1::ReportKind::as_str_name)
}

fn purpose(value: i32) -> String {
    enum_name(value, v1::QueryPurpose::as_str_name)
}

/// A time in ms since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
#[must_use]
pub fn time_text(time_ms: u64) -> String {
    const DAY_MS: u64 = yrd_chaincode::date::DAY_MS;
    let day = time_ms / DAY_MS;
    let in_day = time_ms % DAY_MS;
    let date = u32::try_from(day).map_or_else(|_| format!("day {day}"), day_to_date);
    format!(
        "{date}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1_000 % 60,
        in_day % 1_000
    )
}

fn amount_text(fen: u64) -> String {
    format!("{fen} fen ({} CNY)", fen_to_cny(fen))
}

// ---------------------------------------------------------------- status

/// `GetStatus` as JSON.
#[must_use]
pub fn status_json(status: &v1::StatusResponse) -> Value {
    json!({
        "chain_id": status.chain_id,
        "height": status.height,
        "last_block_hash": hex(&status.last_block_hash),
        "state_root": hex(&status.state_root),
        "validator": status.validator,
        "peers": status.peers,
        "node_public_key": hex(&status.node_public_key),
        "mempool_transactions": status.mempool_transactions,
    })
}

/// `GetStatus` as text.
#[must_use]
pub fn status_text(status: &v1::StatusResponse) -> String {
    format!(
        "chain      {}\nheight     {}\nlast block {}\nstate root {}\nnode key   {}{}\npeers      {}\nmempool    {} transactions",
        status.chain_id,
        status.height,
        hex(&status.last_block_hash),
        hex(&status.state_root),
        hex(&status.node_public_key),
        if status.validator { " (validator)" } else { "" },
        status.peers,
        status.mempool_transactions,
    )
}

// ---------------------------------------------------------------- transactions

/// A transaction body's action as JSON: `{"type": "<oneof name>", ...fields}`.
#[allow(clippy::too_many_lines)] // One arm per transaction type.
#[must_use]
pub fn action_json(action: &Action) -> Value {
    let member_key = |key: &v1::MemberKey| {
        json!({
            "public_key": hex(&key.public_key),
            "roles": key.roles.iter().map(|r| role(*r)).collect::<Vec<_>>(),
        })
    };
    match action {
        Action::RegisterMember(a) => json!({
            "type": "register_member", "uscc": a.uscc, "name": a.name,
            "kind": member_kind(a.kind),
            "keys": a.keys.iter().map(member_key).collect::<Vec<_>>(),
        }),
        Action::AddMemberKey(a) => json!({
            "type": "add_member_key", "uscc": a.uscc, "key": a.key.as_ref().map(member_key),
        }),
        Action::RevokeMemberKey(a) => {
            json!({"type": "revoke_member_key", "public_key": hex(&a.public_key)})
        }
        Action::AddValidator(a) => json!({
            "type": "add_validator", "public_key": hex(&a.public_key),
            "operator_uscc": a.operator_uscc,
        }),
        Action::RemoveValidator(a) => {
            json!({"type": "remove_validator", "public_key": hex(&a.public_key)})
        }
        Action::RecordCreditReport(a) => json!({
            "type": "record_credit_report", "report_id": a.report_id,
            "subject_uscc": a.subject_uscc, "kind": report_kind(a.kind),
            "document_sha256": hex(&a.document_sha256), "negative": a.negative,
            "event_end_day": a.event_end_day, "summary": a.summary,
        }),
        Action::AmendCreditReport(a) => json!({
            "type": "amend_credit_report", "report_id": a.report_id,
            "document_sha256": hex(&a.document_sha256), "negative": a.negative,
            "event_end_day": a.event_end_day, "summary": a.summary,
        }),
        Action::FileObjection(a) => json!({
            "type": "file_objection", "report_id": a.report_id, "reason": a.reason,
        }),
        Action::ResolveObjection(a) => json!({
            "type": "resolve_objection", "report_id": a.report_id,
            "outcome": enum_name(a.outcome, v1::ObjectionOutcome::as_str_name), "note": a.note,
        }),
        Action::GrantAuthorization(a) => json!({
            "type": "grant_authorization", "grantee_uscc": a.grantee_uscc,
            "purpose": purpose(a.purpose), "expires_at_ms": a.expires_at_ms,
        }),
        Action::RevokeAuthorization(a) => json!({
            "type": "revoke_authorization", "grantee_uscc": a.grantee_uscc,
            "purpose": purpose(a.purpose),
        }),
        Action::RecordCreditQuery(a) => json!({
            "type": "record_credit_query", "report_id": a.report_id,
            "purpose": purpose(a.purpose),
        }),
        Action::RegisterReceivable(a) => json!({
            "type": "register_receivable", "receivable_id": a.receivable_id,
            "debtor_uscc": a.debtor_uscc, "creditor_uscc": a.creditor_uscc,
            "face_fen": a.face_fen, "due_day": a.due_day,
            "invoice_hashes": hex_list(&a.invoice_hashes), "contract_hash": hex(&a.contract_hash),
        }),
        Action::ConfirmReceivable(a) => {
            json!({"type": "confirm_receivable", "receivable_id": a.receivable_id})
        }
        Action::TransferReceivable(a) => json!({
            "type": "transfer_receivable", "unit_id": a.unit_id, "to_uscc": a.to_uscc,
            "amount_fen": a.amount_fen,
        }),
        Action::PledgeReceivable(a) => json!({
            "type": "pledge_receivable", "unit_id": a.unit_id, "pledgee_uscc": a.pledgee_uscc,
            "secured_amount_fen": a.secured_amount_fen,
        }),
        Action::FactorReceivable(a) => json!({
            "type": "factor_receivable", "unit_id": a.unit_id, "factor_uscc": a.factor_uscc,
            "advance_fen": a.advance_fen,
        }),
        Action::ReleaseReceivableFinancing(a) => {
            json!({"type": "release_receivable_financing", "unit_id": a.unit_id})
        }
        Action::RecordReceivablePayment(a) => json!({
            "type": "record_receivable_payment", "receivable_id": a.receivable_id,
            "amount_fen": a.amount_fen,
        }),
        Action::CancelReceivable(a) => {
            json!({"type": "cancel_receivable", "receivable_id": a.receivable_id})
        }
        Action::RegisterFund(a) => json!({
            "type": "register_fund", "fund_id": a.fund_id, "manager_uscc": a.manager_uscc,
            "filing_number": a.filing_number, "total_units": a.total_units,
        }),
        Action::RegisterHolding(a) => json!({
            "type": "register_holding", "fund_id": a.fund_id, "holder_uscc": a.holder_uscc,
            "units": a.units,
        }),
        Action::TransferFundUnits(a) => json!({
            "type": "transfer_fund_units", "fund_id": a.fund_id, "to_uscc": a.to_uscc,
            "units": a.units,
        }),
        Action::PledgeFundUnits(a) => json!({
            "type": "pledge_fund_units", "fund_id": a.fund_id, "pledgor_uscc": a.pledgor_uscc,
            "pledgee_uscc": a.pledgee_uscc, "units": a.units,
        }),
        Action::ReleaseFundPledge(a) => {
            json!({"type": "release_fund_pledge", "pledge_id": a.pledge_id})
        }
        Action::EnforceFundPledge(a) => json!({
            "type": "enforce_fund_pledge", "pledge_id": a.pledge_id, "to_uscc": a.to_uscc,
            "units": a.units,
        }),
        Action::FreezeFundUnits(a) => json!({
            "type": "freeze_fund_units", "fund_id": a.fund_id, "holder_uscc": a.holder_uscc,
            "units": a.units, "court_reference": a.court_reference,
        }),
        Action::UnfreezeFundUnits(a) => {
            json!({"type": "unfreeze_fund_units", "freeze_id": a.freeze_id})
        }
    }
}

/// A transaction body as JSON.
#[must_use]
pub fn body_json(body: &v1::TransactionBody) -> Value {
    json!({
        "chain_id": body.chain_id,
        "nonce": body.nonce,
        "valid_until_ms": body.valid_until_ms,
        "action": body.action.as_ref().map(action_json),
    })
}

/// A signed transaction as JSON: its hash, decoded body (or the raw hex if it does not decode)
/// and signatures.
#[must_use]
pub fn signed_transaction_json(envelope: &v1::SignedTransaction) -> Value {
    let decoded = v1::TransactionBody::decode(envelope.body.as_slice()).ok();
    let tx_hash = decoded
        .as_ref()
        .and_then(|body| transaction_hash(&body.chain_id, &envelope.body).ok())
        .map(|hash| hex(&hash));
    json!({
        "tx_hash": tx_hash,
        "body": decoded.as_ref().map_or_else(|| json!({"undecodable": hex(&envelope.body)}), body_json),
        "signatures": envelope.signatures.iter().map(|signature| json!({
            "public_key": hex(&signature.public_key),
            "signature": hex(&signature.signature),
        })).collect::<Vec<_>>(),
    })
}

/// A receipt as JSON.
#[must_use]
pub fn receipt_json(receipt: &v1::Receipt) -> Value {
    json!({
        "tx_hash": hex(&receipt.tx_hash),
        "accepted": receipt.accepted,
        "reason": reason_name(receipt.reason),
        "detail": receipt.detail,
        "created_id": receipt.created_id,
    })
}

/// A committed transaction (`GetTransaction`, `SubmitAndWait`, `WaitForCommit`) as JSON.
#[must_use]
pub fn transaction_result_json(result: &v1::TransactionResult) -> Value {
    let receipt = result.receipt.as_ref();
    json!({
        "tx_hash": receipt.map(|r| hex(&r.tx_hash)),
        "accepted": receipt.is_some_and(|r| r.accepted),
        "reason": receipt.map(|r| reason_name(r.reason)),
        "detail": receipt.map(|r| r.detail.clone()),
        "created_id": receipt.map(|r| r.created_id.clone()),
        "height": result.height,
        "tx_index": result.tx_index,
        "block_hash": hex(&result.block_hash),
        "transaction": result.transaction.as_ref().map(signed_transaction_json),
    })
}

/// A committed transaction as text: accepted or rejected with the reason, and where.
#[must_use]
pub fn transaction_result_text(result: &v1::TransactionResult) -> String {
    let mut text = String::new();
    match &result.receipt {
        Some(receipt) if receipt.accepted => {
            let _ = write!(text, "accepted  tx {}", hex(&receipt.tx_hash));
            if !receipt.created_id.is_empty() {
                let _ = write!(text, "\ncreated   {}", receipt.created_id);
            }
        }
        Some(receipt) => {
            let _ = write!(
                text,
                "rejected  tx {}\nreason    {}",
                hex(&receipt.tx_hash),
                reason_name(receipt.reason)
            );
            if !receipt.detail.is_empty() {
                let _ = write!(text, ": {}", receipt.detail);
            }
        }
        None => text.push_str("no receipt"),
    }
    let _ = write!(
        text,
        "\nheight    {} (tx index {})\nblock     {}",
        result.height,
        result.tx_index,
        hex(&result.block_hash)
    );
    if let Some(action) = result
        .transaction
        .as_ref()
        .and_then(|envelope| v1::TransactionBody::decode(envelope.body.as_slice()).ok())
        .and_then(|body| body.action)
    {
        if let Some(kind) = action_json(&action)["type"].as_str() {
            let _ = write!(text, "\naction    {kind}");
        }
    }
    text
}

// ---------------------------------------------------------------- blocks

/// The hash of a committed block's header, or the certificate's block hash if the header is
/// missing or cannot be hashed.
fn committed_block_hash(block: &v1::CommittedBlock) -> Vec<u8> {
    block
        .block
        .as_ref()
        .and_then(|b| b.header.as_ref())
        .and_then(|header| block_hash(header).ok())
        .map_or_else(
            || {
                block
                    .certificate
                    .as_ref()
                    .map(|c| c.block_hash.clone())
                    .unwrap_or_default()
            },
            |hash| hash.to_vec(),
        )
}

fn receipt_counts(block: &v1::CommittedBlock) -> (usize, usize) {
    let accepted = block.receipts.iter().filter(|r| r.accepted).count();
    (accepted, block.receipts.len() - accepted)
}

fn header_json(header: &v1::BlockHeader) -> Value {
    json!({
        "chain_id": header.chain_id,
        "height": header.height,
        "parent_hash": hex(&header.parent_hash),
        "time_ms": header.time_ms,
        "proposer": hex(&header.proposer),
        "transactions_root": hex(&header.transactions_root),
        "receipts_root": hex(&header.receipts_root),
        "state_root": hex(&header.state_root),
        "validator_set_hash": hex(&header.validator_set_hash),
        "next_validator_set_hash": hex(&header.next_validator_set_hash),
        "transaction_count": header.transaction_count,
    })
}

/// A committed block as JSON: header, decoded transactions, receipts and certificate.
#[must_use]
pub fn block_json(block: &v1::CommittedBlock) -> Value {
    let header = block.block.as_ref().and_then(|b| b.header.as_ref());
    let transactions: Vec<Value> = block
        .block
        .as_ref()
        .map(|b| b.transactions.iter().map(signed_transaction_json).collect())
        .unwrap_or_default();
    let (accepted, rejected) = receipt_counts(block);
    json!({
        "height": header.map(|h| h.height),
        "block_hash": hex(&committed_block_hash(block)),
        "header": header.map(header_json),
        "transaction_count": transactions.len(),
        "accepted": accepted,
        "rejected": rejected,
        "transactions": transactions,
        "receipts": block.receipts.iter().map(receipt_json).collect::<Vec<_>>(),
        "certificate": block.certificate.as_ref().map(|c| json!({
            "height": c.height,
            "round": c.round,
            "block_hash": hex(&c.block_hash),
            "signatures": c.signatures.iter().map(|s| json!({
                "validator_index": s.validator_index,
                "signature": hex(&s.signature),
            })).collect::<Vec<_>>(),
        })),
    })
}

/// One line per block for `watch`: height, hash, time, transaction and receipt counts.
#[must_use]
pub fn block_line(block: &v1::CommittedBlock) -> String {
    let header = block.block.as_ref().and_then(|b| b.header.as_ref());
    let transactions = block.block.as_ref().map_or(0, |b| b.transactions.len());
    let (accepted, rejected) = receipt_counts(block);
    format!(
        "height {} hash {} time {} txs {transactions} accepted {accepted} rejected {rejected}",
        header.map_or(0, |h| h.height),
        hex(&committed_block_hash(block)),
        header.map_or_else(|| "?".to_owned(), |h| time_text(h.time_ms)),
    )
}

/// A committed block as text: the line of [`block_line`] and one line per transaction.
#[must_use]
pub fn block_text(block: &v1::CommittedBlock) -> String {
    let mut text = block_line(block);
    if let Some(header) = block.block.as_ref().and_then(|b| b.header.as_ref()) {
        let _ = write!(
            text,
            "\nparent {}\nstate root {}\nproposer {}",
            hex(&header.parent_hash),
            hex(&header.state_root),
            hex(&header.proposer)
        );
    }
    for (index, receipt) in block.receipts.iter().enumerate() {
        let outcome = if receipt.accepted {
            "accepted".to_owned()
        } else {
            format!("rejected {}", reason_name(receipt.reason))
        };
        let _ = write!(text, "\n  #{index} {} {outcome}", hex(&receipt.tx_hash));
    }
    text
}

// ---------------------------------------------------------------- registries

fn provenance_json(provenance: Option<&v1::Provenance>) -> Value {
    provenance.map_or(Value::Null, |p| {
        json!({
            "height": p.height,
            "tx_index": p.tx_index,
            "tx_hash": hex(&p.tx_hash),
            "block_time_ms": p.block_time_ms,
            "signers": hex_list(&p.signers),
        })
    })
}

/// A member as JSON.
#[must_use]
pub fn member_json(member: &v1::MemberRecord) -> Value {
    json!({
        "uscc": member.uscc,
        "name": member.name,
        "kind": member_kind(member.kind),
        "keys": hex_list(&member.keys),
        "registered": provenance_json(member.registered.as_ref()),
    })
}

/// A member as text.
#[must_use]
pub fn member_text(member: &v1::MemberRecord) -> String {
    let mut text = format!(
        "{} {}\nkind {}",
        member.uscc,
        member.name,
        member_kind(member.kind)
    );
    if let Some(registered) = &member.registered {
        let _ = write!(text, "\nregistered at height {}", registered.height);
    }
    for key in &member.keys {
        let _ = write!(text, "\nkey {}", hex(key));
    }
    text
}

fn report_record_json(report: &v1::CreditReportRecord) -> Value {
    json!({
        "report_id": report.report_id,
        "issuer_uscc": report.issuer_uscc,
        "subject_uscc": report.subject_uscc,
        "kind": report_kind(report.kind),
        "version_count": report.version_count,
        "objection": report.objection.as_ref().map(|o| json!({
            "status": enum_name(o.status, v1::ObjectionStatus::as_str_name),
            "reason": o.reason,
            "filed_at_ms": o.filed_at_ms,
            "version_at_filing": o.version_at_filing,
            "resolved_at_ms": o.resolved_at_ms,
            "note": o.note,
        })),
    })
}

/// A credit report view as JSON.
#[must_use]
pub fn report_view_json(view: &v1::CreditReportView) -> Value {
    json!({
        "report": view.report.as_ref().map(report_record_json),
        "versions": view.versions.iter().map(|v| json!({
            "version": v.version,
            "document_sha256": hex(&v.document_sha256),
            "negative": v.negative,
            "event_end_day": v.event_end_day,
            "summary": v.summary,
            "provenance": provenance_json(v.provenance.as_ref()),
        })).collect::<Vec<_>>(),
        "under_objection": view.under_objection,
        "objection_overdue": view.objection_overdue,
        "details_withheld": view.details_withheld,
    })
}

fn report_line(report: &v1::CreditReportRecord) -> String {
    format!(
        "{} {} by {} about {}, {} version(s)",
        report.report_id,
        report_kind(report.kind),
        report.issuer_uscc,
        report.subject_uscc,
        report.version_count
    )
}

/// A credit report view as text.
#[must_use]
pub fn report_view_text(view: &v1::CreditReportView) -> String {
    let mut text = view
        .report
        .as_ref()
        .map_or_else(|| "report (no record)".to_owned(), report_line);
    if view.under_objection {
        text.push_str("\nunder objection");
        if view.objection_overdue {
            text.push_str(" (overdue)");
        }
    }
    if view.details_withheld {
        text.push_str("\ndetails withheld");
    }
    for version in &view.versions {
        let _ = write!(
            text,
            "\n  v{} {}{} document {}",
            version.version,
            if version.negative { "negative " } else { "" },
            if version.event_end_day == 0 {
                "ongoing".to_owned()
            } else {
                format!("ended {}", day_to_date(version.event_end_day))
            },
            hex(&version.document_sha256)
        );
        if !version.summary.is_empty() {
            let _ = write!(text, ": {}", version.summary);
        }
    }
    text
}

/// A list of credit reports as JSON.
#[must_use]
pub fn report_list_json(list: &v1::CreditReportList) -> Value {
    json!({ "reports": list.reports.iter().map(report_record_json).collect::<Vec<_>>() })
}

/// A list of credit reports as text.
#[must_use]
pub fn report_list_text(list: &v1::CreditReportList) -> String {
    if list.reports.is_empty() {
        return "no reports".to_owned();
    }
    list.reports
        .iter()
        .map(report_line)
        .collect::<Vec<_>>()
        .join("\n")
}

fn unit_json(unit: &v1::ReceivableUnitRecord) -> Value {
    json!({
        "unit_id": unit.unit_id,
        "receivable_id": unit.receivable_id,
        "parent_unit_id": unit.parent_unit_id,
        "holder_uscc": unit.holder_uscc,
        "amount_fen": unit.amount_fen,
        "financing": unit.financing.as_ref().map(|f| json!({
            "kind": enum_name(f.kind, v1::FinancingKind::as_str_name),
            "financier_uscc": f.financier_uscc,
            "amount_fen": f.amount_fen,
            "priority": f.priority,
            "registered": provenance_json(f.registered.as_ref()),
        })),
    })
}

/// A receivable view as JSON.
#[must_use]
pub fn receivable_view_json(view: &v1::ReceivableView) -> Value {
    json!({
        "receivable": view.receivable.as_ref().map(|r| json!({
            "receivable_id": r.receivable_id,
            "debtor_uscc": r.debtor_uscc,
            "creditor_uscc": r.creditor_uscc,
            "face_fen": r.face_fen,
            "due_day": r.due_day,
            "invoice_hashes": hex_list(&r.invoice_hashes),
            "contract_hash": hex(&r.contract_hash),
            "status": enum_name(r.status, v1::ReceivableStatus::as_str_name),
            "paid_fen": r.paid_fen,
            "parts_created": r.parts_created,
            "registered": provenance_json(r.registered.as_ref()),
        })),
        "units": view.units.iter().map(unit_json).collect::<Vec<_>>(),
        "overdue": view.overdue,
    })
}

/// A receivable view as text.
#[must_use]
pub fn receivable_view_text(view: &v1::ReceivableView) -> String {
    let mut text = match &view.receivable {
        Some(r) => format!(
            "{} {}\ndebtor {} creditor {}\nface {} paid {}\ndue {}{}",
            r.receivable_id,
            enum_name(r.status, v1::ReceivableStatus::as_str_name),
            r.debtor_uscc,
            r.creditor_uscc,
            amount_text(r.face_fen),
            amount_text(r.paid_fen),
            day_to_date(r.due_day),
            if view.overdue { " (overdue)" } else { "" },
        ),
        None => "receivable (no record)".to_owned(),
    };
    for unit in &view.units {
        let _ = write!(
            text,
            "\n  unit {} held by {}: {}",
            unit.unit_id,
            unit.holder_uscc,
            amount_text(unit.amount_fen)
        );
        if let Some(financing) = &unit.financing {
            let _ = write!(
                text,
                ", {} by {} for {}",
                enum_name(financing.kind, v1::FinancingKind::as_str_name),
                financing.financier_uscc,
                amount_text(financing.amount_fen)
            );
        }
    }
    text
}

/// A fund view as JSON.
#[must_use]
pub fn fund_view_json(view: &v1::FundView) -> Value {
    json!({
        "fund": view.fund.as_ref().map(|f| json!({
            "fund_id": f.fund_id,
            "registrar_uscc": f.registrar_uscc,
            "manager_uscc": f.manager_uscc,
            "filing_number": f.filing_number,
            "total_units": f.total_units,
            "issued_units": f.issued_units,
            "registered": provenance_json(f.registered.as_ref()),
        })),
        "holdings": view.holdings.iter().map(|h| json!({
            "fund_id": h.fund_id,
            "holder_uscc": h.holder_uscc,
            "units": h.units,
            "pledged_units": h.pledged_units,
            "frozen_units": h.frozen_units,
        })).collect::<Vec<_>>(),
        "pledges": view.pledges.iter().map(|p| json!({
            "pledge_id": p.pledge_id,
            "fund_id": p.fund_id,
            "pledgor_uscc": p.pledgor_uscc,
            "pledgee_uscc": p.pledgee_uscc,
            "units": p.units,
            "status": enum_name(p.status, v1::PledgeStatus::as_str_name),
            "priority": p.priority,
            "registered": provenance_json(p.registered.as_ref()),
        })).collect::<Vec<_>>(),
        "freezes": view.freezes.iter().map(|f| json!({
            "freeze_id": f.freeze_id,
            "fund_id": f.fund_id,
            "holder_uscc": f.holder_uscc,
            "units": f.units,
            "court_reference": f.court_reference,
            "active": f.active,
            "registered": provenance_json(f.registered.as_ref()),
        })).collect::<Vec<_>>(),
    })
}

/// A fund view as text.
#[must_use]
pub fn fund_view_text(view: &v1::FundView) -> String {
    let mut text = match &view.fund {
        Some(f) => format!(
            "{} filing {} manager {} registrar {}\nunits {} issued of {} total",
            f.fund_id,
            f.filing_number,
            f.manager_uscc,
            f.registrar_uscc,
            f.issued_units,
            f.total_units
        ),
        None => "fund (no record)".to_owned(),
    };
    for h in &view.holdings {
        let _ = write!(
            text,
            "\n  holding {}: {} units ({} pledged, {} frozen)",
            h.holder_uscc, h.units, h.pledged_units, h.frozen_units
        );
    }
    for p in &view.pledges {
        let _ = write!(
            text,
            "\n  pledge {} {}: {} units from {} to {}",
            p.pledge_id,
            enum_name(p.status, v1::PledgeStatus::as_str_name),
            p.units,
            p.pledgor_uscc,
            p.pledgee_uscc
        );
    }
    for f in &view.freezes {
        let _ = write!(
            text,
            "\n  freeze {} {}: {} units of {} ({})",
            f.freeze_id,
            if f.active { "active" } else { "lifted" },
            f.units,
            f.holder_uscc,
            f.court_reference
        );
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod tests {
    use super::*;

    #[test]
    fn status_renders_as_one_json_object() {
        let status = v1::StatusResponse {
            chain_id: "yrd-devnet".into(),
            height: 42,
            last_block_hash: vec![0xaa; 32],
            state_root: vec![0xbb; 32],
            validator: true,
            peers: 3,
            node_public_key: vec![0xcc; 32],
            mempool_transactions: 7,
        };
        let json = status_json(&status);
        assert_eq!(json["chain_id"], "yrd-devnet");
        assert_eq!(json["height"], 42);
        assert!(json["height"].is_u64());
        assert_eq!(json["validator"], true);
        assert_eq!(json["peers"], 3);
        assert_eq!(json["mempool_transactions"], 7);
        assert_eq!(json["last_block_hash"], "aa".repeat(32));
        assert_eq!(json["node_public_key"], "cc".repeat(32));
        let line = serde_json::to_string(&json).unwrap();
        assert!(!line.contains('\n'), "one line");
        assert!(status_text(&status).contains("(validator)"));
    }

    #[test]
    fn receipts_render_reason_names() {
        let result = v1::TransactionResult {
            transaction: None,
            receipt: Some(v1::Receipt {
                tx_hash: vec![1; 32],
                accepted: false,
                reason: v1::ReasonCode::ReasonNotHolder as i32,
                detail: "unit AR-1 is held by someone else".into(),
                created_id: String::new(),
            }),
            height: 9,
            tx_index: 2,
            block_hash: vec![2; 32],
        };
        let json = transaction_result_json(&result);
        assert_eq!(json["accepted"], false);
        assert_eq!(json["reason"], "REASON_NOT_HOLDER");
        assert_eq!(json["height"], 9);
        assert_eq!(json["tx_index"], 2);
        let text = transaction_result_text(&result);
        assert!(text.contains("rejected"));
        assert!(text.contains("REASON_NOT_HOLDER: unit AR-1 is held by someone else"));
        assert_eq!(reason_name(9999), "UNKNOWN(9999)");
    }

    #[test]
    fn transactions_render_with_hash_and_action() {
        let key = yrd_node::keyfile::generate();
        let body = v1::TransactionBody {
            chain_id: "yrd-test".into(),
            nonce: 5,
            valid_until_ms: 1_000,
            action: Some(Action::RecordReceivablePayment(
                v1::RecordReceivablePayment {
                    receivable_id: "AR-1".into(),
                    amount_fen: 250,
                },
            )),
        };
        let envelope = yrd_proto::signing::sign_transaction(&body, &[&key]).unwrap();
        let json = signed_transaction_json(&envelope);
        let expected = transaction_hash("yrd-test", &envelope.body).unwrap();
        assert_eq!(json["tx_hash"], hex(&expected));
        assert_eq!(json["body"]["action"]["type"], "record_receivable_payment");
        assert_eq!(json["body"]["action"]["amount_fen"], 250);
        assert_eq!(
            json["signatures"][0]["public_key"],
            hex(&key.verifying_key().to_bytes())
        );
        let garbage = v1::SignedTransaction {
            body: vec![0xff, 0xff],
            signatures: vec![],
        };
        assert_eq!(
            signed_transaction_json(&garbage)["body"]["undecodable"],
            "ffff"
        );
    }

    #[test]
    fn blocks_render_counts() {
        let header = v1::BlockHeader {
            chain_id: "yrd-test".into(),
            height: 3,
            time_ms: 1_767_225_600_000,
            ..Default::default()
        };
        let receipt = |accepted| v1::Receipt {
            accepted,
            ..Default::default()
        };
        let block = v1::CommittedBlock {
            block: Some(v1::Block {
                header: Some(header.clone()),
                transactions: vec![v1::SignedTransaction::default(); 3],
                transaction_refs: vec![],
            }),
            receipts: vec![receipt(true), receipt(false), receipt(true)],
            certificate: None,
        };
        let line = block_line(&block);
        assert!(line.starts_with("height 3 hash "));
        assert!(line.contains("time 2026-01-01T00:00:00.000Z"));
        assert!(line.ends_with("txs 3 accepted 2 rejected 1"));
        let json = block_json(&block);
        assert_eq!(json["height"], 3);
        assert_eq!(json["accepted"], 2);
        assert_eq!(json["rejected"], 1);
        assert_eq!(json["block_hash"], hex(&block_hash(&header).unwrap()));
    }
}
