//! Domain transactions, built from the wire `TransactionBody` by `TryFrom`, which bounds every
//! length and rejects what is malformed. Business rules only ever see these types.
//!
//! Invariant: every value of these types is within the limits of `yrd_proto::limits`; amounts
//! and unit counts are positive; identifiers use the identifier alphabet; enums are specified.

use std::fmt;

use yrd_proto::limits::{
    COURT_REFERENCE_BYTES_MAX, FILING_NUMBER_BYTES_MAX, IDENTIFIER_BYTES_MAX,
    INVOICES_PER_RECEIVABLE_MAX, KEYS_PER_MEMBER_MAX, NAME_BYTES_MAX, NOTE_BYTES_MAX,
    ROLES_PER_KEY_MAX, SUMMARY_BYTES_MAX,
};
use yrd_proto::signing::{parse_public_key, Hash, PublicKeyBytes};
use yrd_proto::v1::{self, transaction_body::Action as WireAction};

pub use yrd_proto::v1::{MemberKind, ObjectionOutcome, QueryPurpose, ReportKind, Role};

use crate::uscc::Uscc;

/// Why a wire body is not a valid transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct MalformedError {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

fn malformed(field: &'static str, problem: impl Into<String>) -> MalformedError {
    MalformedError {
        field,
        problem: problem.into(),
    }
}

/// An identifier chosen by a member: 1 to 64 bytes of `A-Z a-z 0-9 . _ - :`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identifier(String);

impl Identifier {
    /// Checks an identifier.
    pub fn parse(field: &'static str, text: &str) -> Result<Self, MalformedError> {
        if text.is_empty() || text.len() > IDENTIFIER_BYTES_MAX {
            return Err(malformed(
                field,
                format!(
                    "must be 1 to {IDENTIFIER_BYTES_MAX} bytes, found {}",
                    text.len()
                ),
            ));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
        {
            return Err(malformed(
                field,
                format!("character {bad:?} is not allowed in an identifier"),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The identifier as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Identifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:?}", self.0)
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Checks free text: at most `max` bytes, no control characters.
fn text(
    field: &'static str,
    value: String,
    max: usize,
    required: bool,
) -> Result<String, MalformedError> {
    if value.len() > max {
        return Err(malformed(
            field,
            format!("is {} bytes, more than the {max} allowed", value.len()),
        ));
    }
    if required && value.trim().is_empty() {
        return Err(malformed(field, "must not be empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(malformed(field, "must not contain control characters"));
    }
    Ok(value)
}

fn uscc(field: &'static str, value: &str) -> Result<Uscc, MalformedError> {
    Uscc::parse(value).map_err(|error| malformed(field, error.to_string()))
}

fn hash(field: &'static str, value: &[u8]) -> Result<Hash, MalformedError> {
    value
        .try_into()
        .map_err(|_| malformed(field, format!("must be 32 bytes, found {}", value.len())))
}

fn positive(field: &'static str, value: u64) -> Result<u64, MalformedError> {
    if value == 0 {
        return Err(malformed(field, "must be positive"));
    }
    Ok(value)
}

fn public_key(field: &'static str, value: &[u8]) -> Result<PublicKeyBytes, MalformedError> {
    let key = parse_public_key(value).ok_or_else(|| {
        malformed(
            field,
            "must be a valid 32-byte ed25519 key not of small order",
        )
    })?;
    Ok(key.to_bytes())
}

fn enumeration<E: TryFrom<i32>>(field: &'static str, value: i32) -> Result<E, MalformedError> {
    if value == 0 {
        return Err(malformed(field, "must be specified"));
    }
    E::try_from(value).map_err(|_| malformed(field, format!("unknown value {value}")))
}

/// A member key with its roles (distinct, at least one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberKeySpec {
    /// The ed25519 public key.
    pub public_key: PublicKeyBytes,
    /// Its roles, sorted and distinct.
    pub roles: Vec<Role>,
}

impl TryFrom<v1::MemberKey> for MemberKeySpec {
    type Error = MalformedError;
    fn try_from(wire: v1::MemberKey) -> Result<Self, Self::Error> {
        if wire.roles.is_empty() || wire.roles.len() > ROLES_PER_KEY_MAX {
            return Err(malformed(
                "key.roles",
                format!("must hold 1 to {ROLES_PER_KEY_MAX} roles"),
            ));
        }
        let mut roles = wire
            .roles
            .iter()
            .map(|&role| enumeration::<Role>("key.roles", role))
            .collect::<Result<Vec<_>, _>>()?;
        roles.sort();
        roles.dedup();
        if roles.len() != wire.roles.len() {
            return Err(malformed("key.roles", "roles must be distinct"));
        }
        Ok(Self {
            public_key: public_key("key.public_key", &wire.public_key)?,
            roles,
        })
    }
}

/// A validated transaction body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// The chain it is meant for.
    pub chain_id: String,
    /// Client-chosen number.
    pub nonce: u64,
    /// Latest block time at which it may be included, ms.
    pub valid_until_ms: u64,
    /// What it does.
    pub action: Action,
}

/// Every action of the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Fields mirror the documented protobuf fields one to one.
pub enum Action {
    // ---- governance
    RegisterMember {
        uscc: Uscc,
        name: String,
        kind: MemberKind,
        keys: Vec<MemberKeySpec>,
    },
    AddMemberKey {
        uscc: Uscc,
        key: MemberKeySpec,
    },
    RevokeMemberKey {
        public_key: PublicKeyBytes,
    },
    AddValidator {
        public_key: PublicKeyBytes,
        operator: Uscc,
    },
    RemoveValidator {
        public_key: PublicKeyBytes,
    },
    // ---- credit information
    RecordCreditReport {
        report_id: Identifier,
        subject: Uscc,
        kind: ReportKind,
        content: ReportContent,
    },
    AmendCreditReport {
        report_id: Identifier,
        content: ReportContent,
    },
    FileObjection {
        report_id: Identifier,
        reason: String,
    },
    ResolveObjection {
        report_id: Identifier,
        outcome: ObjectionOutcome,
        note: String,
    },
    GrantAuthorization {
        grantee: Uscc,
        purpose: QueryPurpose,
        expires_at_ms: u64,
    },
    RevokeAuthorization {
        grantee: Uscc,
        purpose: QueryPurpose,
    },
    RecordCreditQuery {
        report_id: Identifier,
        purpose: QueryPurpose,
    },
    // ---- receivables
    RegisterReceivable {
        receivable_id: Identifier,
        debtor: Uscc,
        creditor: Uscc,
        face_fen: u64,
        due_day: u32,
        invoice_hashes: Vec<Hash>,
        contract_hash: Hash,
    },
    ConfirmReceivable {
        receivable_id: Identifier,
    },
    TransferReceivable {
        unit_id: UnitId,
        to: Uscc,
        amount_fen: u64,
    },
    PledgeReceivable {
        unit_id: UnitId,
        pledgee: Uscc,
        secured_amount_fen: u64,
    },
    FactorReceivable {
        unit_id: UnitId,
        factor: Uscc,
        advance_fen: u64,
    },
    ReleaseReceivableFinancing {
        unit_id: UnitId,
    },
    RecordReceivablePayment {
        receivable_id: Identifier,
        amount_fen: u64,
    },
    CancelReceivable {
        receivable_id: Identifier,
    },
    // ---- fund shares
    RegisterFund {
        fund_id: Identifier,
        manager: Uscc,
        filing_number: String,
        total_units: u64,
    },
    RegisterHolding {
        fund_id: Identifier,
        holder: Uscc,
        units: u64,
    },
    TransferFundUnits {
        fund_id: Identifier,
        to: Uscc,
        units: u64,
    },
    PledgeFundUnits {
        fund_id: Identifier,
        pledgor: Uscc,
        pledgee: Uscc,
        units: u64,
    },
    ReleaseFundPledge {
        pledge_id: u64,
    },
    EnforceFundPledge {
        pledge_id: u64,
        to: Uscc,
        units: u64,
    },
    FreezeFundUnits {
        fund_id: Identifier,
        holder: Uscc,
        units: u64,
        court_reference: String,
    },
    UnfreezeFundUnits {
        freeze_id: u64,
    },
}

/// The content of one version of a credit report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportContent {
    /// SHA-256 of the off-chain document.
    pub document_sha256: Hash,
    /// Whether it is negative information.
    pub negative: bool,
    /// Day the underlying event ended (days since epoch), 0 if not ended.
    pub event_end_day: u32,
    /// Short summary.
    pub summary: String,
}

/// A receivable unit: the root receivable (`part == 0`) or a part split from it,
/// written `<receivable_id>#<part>`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitId {
    /// The receivable the unit belongs to.
    pub receivable_id: Identifier,
    /// 0 for the root, n for the n-th part split off.
    pub part: u32,
}

impl UnitId {
    /// Parses `<receivable_id>` or `<receivable_id>#<part>` (part 1 or more, no leading zero).
    pub fn parse(field: &'static str, text: &str) -> Result<Self, MalformedError> {
        match text.split_once('#') {
            None => Ok(Self {
                receivable_id: Identifier::parse(field, text)?,
                part: 0,
            }),
            Some((root, part)) => {
                let valid_digits = !part.is_empty()
                    && part.len() <= 10
                    && part.bytes().all(|b| b.is_ascii_digit())
                    && !part.starts_with('0');
                let number = valid_digits.then(|| part.parse::<u32>().ok()).flatten();
                match number {
                    Some(part) => Ok(Self {
                        receivable_id: Identifier::parse(field, root)?,
                        part,
                    }),
                    None => Err(malformed(
                        field,
                        format!("part number {part:?} is not a positive integer"),
                    )),
                }
            }
        }
    }
}

impl fmt::Display for UnitId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.part == 0 {
            write!(formatter, "{}", self.receivable_id)
        } else {
            write!(formatter, "{}#{}", self.receivable_id, self.part)
        }
    }
}

impl fmt::Debug for UnitId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "UnitId({self})")
    }
}

fn content(
    document_sha256: &[u8],
    negative: bool,
    event_end_day: u32,
    summary: String,
) -> Result<ReportContent, MalformedError> {
    Ok(ReportContent {
        document_sha256: hash("document_sha256", document_sha256)?,
        negative,
        event_end_day,
        summary: text("summary", summary, SUMMARY_BYTES_MAX, false)?,
    })
}

impl TryFrom<v1::TransactionBody> for Transaction {
    type Error = MalformedError;

    fn try_from(body: v1::TransactionBody) -> Result<Self, Self::Error> {
        let action = body
            .action
            .ok_or_else(|| malformed("action", "is missing"))?;
        Ok(Self {
            chain_id: body.chain_id,
            nonce: body.nonce,
            valid_until_ms: body.valid_until_ms,
            action: Action::try_from(action)?,
        })
    }
}

impl TryFrom<WireAction> for Action {
    type Error = MalformedError;

    #[allow(clippy::too_many_lines)] // One arm per transaction type, each a few checks.
    fn try_from(action: WireAction) -> Result<Self, Self::Error> {
        Ok(match action {
            WireAction::RegisterMember(m) => {
                if m.keys.is_empty() || m.keys.len() > KEYS_PER_MEMBER_MAX {
                    return Err(malformed(
                        "keys",
                        format!("must hold 1 to {KEYS_PER_MEMBER_MAX} keys"),
                    ));
                }
                let keys = m
                    .keys
                    .into_iter()
                    .map(MemberKeySpec::try_from)
                    .collect::<Result<Vec<_>, _>>()?;
                for (index, key) in keys.iter().enumerate() {
                    if keys[..index]
                        .iter()
                        .any(|earlier| earlier.public_key == key.public_key)
                    {
                        return Err(malformed("keys", "keys must be distinct"));
                    }
                }
                Self::RegisterMember {
                    uscc: uscc("uscc", &m.uscc)?,
                    name: text("name", m.name, NAME_BYTES_MAX, true)?,
                    kind: enumeration("kind", m.kind)?,
                    keys,
                }
            }
            WireAction::AddMemberKey(m) => Self::AddMemberKey {
                uscc: uscc("uscc", &m.uscc)?,
                key: MemberKeySpec::try_from(m.key.ok_or_else(|| malformed("key", "is missing"))?)?,
            },
            WireAction::RevokeMemberKey(m) => Self::RevokeMemberKey {
                public_key: public_key("public_key", &m.public_key)?,
            },
            WireAction::AddValidator(m) => Self::AddValidator {
                public_key: public_key("public_key", &m.public_key)?,
                operator: uscc("operator_uscc", &m.operator_uscc)?,
            },
            WireAction::RemoveValidator(m) => Self::RemoveValidator {
                public_key: public_key("public_key", &m.public_key)?,
            },
            WireAction::RecordCreditReport(m) => Self::RecordCreditReport {
                report_id: Identifier::parse("report_id", &m.report_id)?,
                subject: uscc("subject_uscc", &m.subject_uscc)?,
                kind: enumeration("kind", m.kind)?,
                content: content(&m.document_sha256, m.negative, m.event_end_day, m.summary)?,
            },
            WireAction::AmendCreditReport(m) => Self::AmendCreditReport {
                report_id: Identifier::parse("report_id", &m.report_id)?,
                content: content(&m.document_sha256, m.negative, m.event_end_day, m.summary)?,
            },
            WireAction::FileObjection(m) => Self::FileObjection {
                report_id: Identifier::parse("report_id", &m.report_id)?,
                reason: text("reason", m.reason, NOTE_BYTES_MAX, true)?,
            },
            WireAction::ResolveObjection(m) => Self::ResolveObjection {
                report_id: Identifier::parse("report_id", &m.report_id)?,
                outcome: enumeration("outcome", m.outcome)?,
                note: text("note", m.note, NOTE_BYTES_MAX, false)?,
            },
            WireAction::GrantAuthorization(m) => Self::GrantAuthorization {
                grantee: uscc("grantee_uscc", &m.grantee_uscc)?,
                purpose: enumeration("purpose", m.purpose)?,
                expires_at_ms: positive("expires_at_ms", m.expires_at_ms)?,
            },
            WireAction::RevokeAuthorization(m) => Self::RevokeAuthorization {
                grantee: uscc("grantee_uscc", &m.grantee_uscc)?,
                purpose: enumeration("purpose", m.purpose)?,
            },
            WireAction::RecordCreditQuery(m) => Self::RecordCreditQuery {
                report_id: Identifier::parse("report_id", &m.report_id)?,
                purpose: enumeration("purpose", m.purpose)?,
            },
            WireAction::RegisterReceivable(m) => {
                if m.invoice_hashes.is_empty()
                    || m.invoice_hashes.len() > INVOICES_PER_RECEIVABLE_MAX
                {
                    return Err(malformed(
                        "invoice_hashes",
                        format!("must hold 1 to {INVOICES_PER_RECEIVABLE_MAX} hashes"),
                    ));
                }
                let invoice_hashes = m
                    .invoice_hashes
                    .iter()
                    .map(|h| hash("invoice_hashes", h))
                    .collect::<Result<Vec<_>, _>>()?;
                for (index, invoice) in invoice_hashes.iter().enumerate() {
                    if invoice_hashes[..index].contains(invoice) {
                        return Err(malformed(
                            "invoice_hashes",
                            "invoice hashes must be distinct",
                        ));
                    }
                }
                let debtor = uscc("debtor_uscc", &m.debtor_uscc)?;
                let creditor = uscc("creditor_uscc", &m.creditor_uscc)?;
                if debtor == creditor {
                    return Err(malformed(
                        "creditor_uscc",
                        "debtor and creditor must differ",
                    ));
                }
                Self::RegisterReceivable {
                    receivable_id: Identifier::parse("receivable_id", &m.receivable_id)?,
                    debtor,
                    creditor,
                    face_fen: positive("face_fen", m.face_fen)?,
                    due_day: u32::try_from(positive("due_day", u64::from(m.due_day))?)
                        .map_err(|_| malformed("due_day", "out of range"))?,
                    invoice_hashes,
                    contract_hash: hash("contract_hash", &m.contract_hash)?,
                }
            }
            WireAction::ConfirmReceivable(m) => Self::ConfirmReceivable {
                receivable_id: Identifier::parse("receivable_id", &m.receivable_id)?,
            },
            WireAction::TransferReceivable(m) => Self::TransferReceivable {
                unit_id: UnitId::parse("unit_id", &m.unit_id)?,
                to: uscc("to_uscc", &m.to_uscc)?,
                amount_fen: positive("amount_fen", m.amount_fen)?,
            },
            WireAction::PledgeReceivable(m) => Self::PledgeReceivable {
                unit_id: UnitId::parse("unit_id", &m.unit_id)?,
                pledgee: uscc("pledgee_uscc", &m.pledgee_uscc)?,
                secured_amount_fen: positive("secured_amount_fen", m.secured_amount_fen)?,
            },
            WireAction::FactorReceivable(m) => Self::FactorReceivable {
                unit_id: UnitId::parse("unit_id", &m.unit_id)?,
                factor: uscc("factor_uscc", &m.factor_uscc)?,
                advance_fen: positive("advance_fen", m.advance_fen)?,
            },
            WireAction::ReleaseReceivableFinancing(m) => Self::ReleaseReceivableFinancing {
                unit_id: UnitId::parse("unit_id", &m.unit_id)?,
            },
            WireAction::RecordReceivablePayment(m) => Self::RecordReceivablePayment {
                receivable_id: Identifier::parse("receivable_id", &m.receivable_id)?,
                amount_fen: positive("amount_fen", m.amount_fen)?,
            },
            WireAction::CancelReceivable(m) => Self::CancelReceivable {
                receivable_id: Identifier::parse("receivable_id", &m.receivable_id)?,
            },
            WireAction::RegisterFund(m) => Self::RegisterFund {
                fund_id: Identifier::parse("fund_id", &m.fund_id)?,
                manager: uscc("manager_uscc", &m.manager_uscc)?,
                filing_number: text(
                    "filing_number",
                    m.filing_number,
                    FILING_NUMBER_BYTES_MAX,
                    true,
                )?,
                total_units: positive("total_units", m.total_units)?,
            },
            WireAction::RegisterHolding(m) => Self::RegisterHolding {
                fund_id: Identifier::parse("fund_id", &m.fund_id)?,
                holder: uscc("holder_uscc", &m.holder_uscc)?,
                units: positive("units", m.units)?,
            },
            WireAction::TransferFundUnits(m) => Self::TransferFundUnits {
                fund_id: Identifier::parse("fund_id", &m.fund_id)?,
                to: uscc("to_uscc", &m.to_uscc)?,
                units: positive("units", m.units)?,
            },
            WireAction::PledgeFundUnits(m) => {
                let pledgor = uscc("pledgor_uscc", &m.pledgor_uscc)?;
                let pledgee = uscc("pledgee_uscc", &m.pledgee_uscc)?;
                if pledgor == pledgee {
                    return Err(malformed("pledgee_uscc", "pledgor and pledgee must differ"));
                }
                Self::PledgeFundUnits {
                    fund_id: Identifier::parse("fund_id", &m.fund_id)?,
                    pledgor,
                    pledgee,
                    units: positive("units", m.units)?,
                }
            }
            WireAction::ReleaseFundPledge(m) => Self::ReleaseFundPledge {
                pledge_id: positive("pledge_id", m.pledge_id)?,
            },
            WireAction::EnforceFundPledge(m) => Self::EnforceFundPledge {
                pledge_id: positive("pledge_id", m.pledge_id)?,
                to: uscc("to_uscc", &m.to_uscc)?,
                units: positive("units", m.units)?,
            },
            WireAction::FreezeFundUnits(m) => Self::FreezeFundUnits {
                fund_id: Identifier::parse("fund_id", &m.fund_id)?,
                holder: uscc("holder_uscc", &m.holder_uscc)?,
                units: positive("units", m.units)?,
                court_reference: text(
                    "court_reference",
                    m.court_reference,
                    COURT_REFERENCE_BYTES_MAX,
                    true,
                )?,
            },
            WireAction::UnfreezeFundUnits(m) => Self::UnfreezeFundUnits {
                freeze_id: positive("freeze_id", m.freeze_id)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_bounded_and_restricted() {
        assert!(Identifier::parse("id", "INV-2026.01_a:b").is_ok());
        assert!(Identifier::parse("id", "").is_err());
        assert!(Identifier::parse("id", &"a".repeat(65)).is_err());
        assert!(Identifier::parse("id", "a/b").is_err());
        assert!(Identifier::parse("id", "a#1").is_err());
    }

    #[test]
    fn unit_ids_parse_root_and_parts() {
        let root = UnitId::parse("unit", "R-1").expect("root");
        assert_eq!((root.receivable_id.as_str(), root.part), ("R-1", 0));
        let part = UnitId::parse("unit", "R-1#12").expect("part");
        assert_eq!(part.part, 12);
        assert_eq!(part.to_string(), "R-1#12");
        for bad in ["R-1#", "R-1#0", "R-1#01", "R-1#x", "#3", "R-1#99999999999"] {
            assert!(UnitId::parse("unit", bad).is_err(), "{bad}");
        }
    }
}
