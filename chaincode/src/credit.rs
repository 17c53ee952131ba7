//! The credit-information registry: credit reports and their versions, objections by the
//! subject, query authorizations granted by the subject, and the log of served queries
//! (DOMAIN.md, "Ledger 1: credit information"; invariants 5 and 6).
//!
//! It owns the keys `c/r/`, `c/v/`, `c/s/`, `c/a/` and `c/q/` (see [`crate::keys`]) and keeps:
//! - every report has versions `1..=version_count` (at least one, at most
//!   `VERSIONS_PER_REPORT_MAX`); a version, once written, is never changed or deleted;
//! - only a key holding the role a rule names writes (`REASON_ROLE_NOT_PERMITTED` otherwise), and
//!   a rejected transaction writes nothing;
//! - a query is recorded only for a regulator, the report's issuer or subject, or a member
//!   holding an active authorization from the subject for the purpose; details are served (see
//!   [`report_view`]) only to a regulator, the issuer, the subject, or under such a recorded
//!   query.
//!
//! Rules, with the choices made where DOMAIN.md is silent:
//! - `RecordCreditReport`: the issuer is the organisation of the first signature, whose key must
//!   hold `CreditReporter` (so banks and bureaus only). The subject must be a member
//!   (`REASON_MEMBER_NOT_FOUND`); it may be the issuer itself. The report id is unique
//!   chain-wide (`REASON_REPORT_EXISTS`). Writes the report, version 1 with its provenance, and
//!   the subject index. The receipt names the report id.
//! - `AmendCreditReport`: the first key must hold `CreditReporter`, and a key of the issuer
//!   organisation with `CreditReporter` must have signed (`REASON_NOT_REPORT_ISSUER`). Writes
//!   version n + 1 (`REASON_TOO_MANY_VERSIONS` past `VERSIONS_PER_REPORT_MAX`); earlier versions
//!   stay. Amending is allowed while an objection is open (that is how a correction is made).
//!   The receipt names `<report id>#<version>`.
//! - `FileObjection`: the first key must hold `Enterprise`, and a key of the subject
//!   organisation with `Enterprise` must have signed (`REASON_NOT_REPORT_SUBJECT`). One open
//!   objection at a time (`REASON_OBJECTION_ALREADY_OPEN`); a new objection after a resolution
//!   replaces the last one. It records the block time and the version objected to. A subject
//!   whose kind holds no `Enterprise` role (a bureau, an equity market, a regulator) cannot
//!   object on chain.
//! - `ResolveObjection`: the issuer, as for an amendment; needs an open objection
//!   (`REASON_NO_OPEN_OBJECTION`). `CORRECTED` needs an amendment after the filing
//!   (`version_count > version_at_filing`, else `REASON_CORRECTION_WITHOUT_AMENDMENT`);
//!   `UPHELD` and `UNRESOLVED` are always allowed.
//! - Overdue objection: derived, never stored: open and block time later than
//!   `filed_at_ms + OBJECTION_RESPONSE_MS` (20 days).
//! - `GrantAuthorization`: the subject is the first signer's organisation, key with
//!   `Enterprise`. The grantee must be a member (any kind; it may be the subject). The expiry
//!   must be later than the block time (`REASON_EXPIRY_NOT_IN_FUTURE`). A grant replaces an
//!   earlier one for the same (subject, grantee, purpose), renewing or shortening it and
//!   clearing a revocation.
//! - `RevokeAuthorization`: the subject, as for a grant; the authorization must be active (not
//!   revoked, not expired), else `REASON_AUTHORIZATION_NOT_FOUND`. The record stays, marked
//!   revoked.
//! - `RecordCreditQuery`: the querier is the first signer's organisation, with a key holding
//!   `Supervisor` (a regulator, no authorization needed) or else `CreditQuerier`. The report must
//!   exist (`REASON_REPORT_NOT_FOUND`). The report's issuer and its subject query without an
//!   authorization; anyone else needs an active authorization (not revoked, expiry later than
//!   the block time) from the report's subject to the querier for that purpose, else
//!   `REASON_NOT_AUTHORIZED`. Writes a `QueryLogRecord` under the transaction hash; the receipt
//!   names the hash in hex.
//! - Retention (art. 16): a negative version whose event ended (`event_end_day != 0`) more than
//!   `RETENTION_YEARS` calendar years before the block day is served to nobody, a regulator
//!   included: its hash and provenance remain, its summary, negative flag and event day are
//!   withheld.
//! - Views ([`report_view`]): details are served to a regulator, the issuer, the subject, or a
//!   querier showing its committed `RecordCreditQuery` of that very report; for a querier that
//!   is neither issuer nor subject, the authorization the query was made under must still be
//!   active at the latest block time (revoking or letting it expire stops serving details). A
//!   viewer not entitled to details gets hashes, provenance and the objection's status only.
//! - Order of checks: the signer's role first, then the report's existence, then who the
//!   organisation is with respect to the report, then the state of the report.

use prost::Message;
use yrd_proto::limits::VERSIONS_PER_REPORT_MAX;
use yrd_proto::signing::Hash;
use yrd_proto::v1::{self, ObjectionStatus, ReasonCode};

use crate::date::{add_years, day_of, DAY_MS};
use crate::exec::{Outcome, Rejection, TxContext};
use crate::keys;
use crate::state::{StateRead, StateScan};
use crate::transaction::{
    Action, Identifier, ObjectionOutcome, QueryPurpose, ReportContent, ReportKind, Role,
};
use crate::uscc::Uscc;

/// Time the issuer has to resolve an objection before it is reported as overdue
/// (Credit Reporting Industry Regulation art. 25): 20 days.
pub const OBJECTION_RESPONSE_MS: u64 = 20 * DAY_MS;

/// Years after the end of its event during which negative information is served (art. 16).
pub const RETENTION_YEARS: i64 = 5;

/// Most reports [`reports_of_subject`] lists for one subject.
pub const SUBJECT_REPORTS_LISTED_MAX: usize = 10_000;

/// Applies an action of the credit registry.
pub(crate) fn apply(context: &mut TxContext<'_>, action: Action) -> Outcome<()> {
    match action {
        Action::RecordCreditReport {
            report_id,
            subject,
            kind,
            content,
        } => record_report(context, &report_id, &subject, kind, content),
        Action::AmendCreditReport { report_id, content } => {
            amend_report(context, &report_id, content)
        }
        Action::FileObjection { report_id, reason } => file_objection(context, &report_id, reason),
        Action::ResolveObjection {
            report_id,
            outcome,
            note,
        } => resolve_objection(context, &report_id, outcome, note),
        Action::GrantAuthorization {
            grantee,
            purpose,
            expires_at_ms,
        } => grant_authorization(context, &grantee, purpose, expires_at_ms),
        Action::RevokeAuthorization { grantee, purpose } => {
            revoke_authorization(context, &grantee, purpose)
        }
        Action::RecordCreditQuery { report_id, purpose } => {
            record_query(context, &report_id, purpose)
        }
        _ => unreachable!("credit::apply is only given credit-information actions"),
    }
}

fn version_record(
    context: &TxContext<'_>,
    version: u32,
    content: ReportContent,
) -> v1::CreditReportVersion {
    v1::CreditReportVersion {
        version,
        document_sha256: content.document_sha256.to_vec(),
        negative: content.negative,
        event_end_day: content.event_end_day,
        summary: content.summary,
        provenance: Some(context.provenance()),
    }
}

fn load_report(
    context: &mut TxContext<'_>,
    report_id: &Identifier,
) -> Outcome<v1::CreditReportRecord> {
    context
        .get(&keys::credit_report(report_id.as_str()))
        .ok_or_else(|| {
            Rejection::new(
                ReasonCode::ReasonReportNotFound,
                format!("report {report_id} does not exist"),
            )
        })
}

/// Requires a `CreditReporter` key of the report's issuer to have signed (the caller has checked
/// that the first key, of `actor`, holds `CreditReporter`).
fn require_issuer(
    context: &TxContext<'_>,
    actor: &Uscc,
    report: &v1::CreditReportRecord,
) -> Outcome<()> {
    let issuer = context.stored_uscc("issuer", &report.issuer_uscc)?;
    if !context.signed_by(&issuer, Role::CreditReporter) {
        return Err(Rejection::new(
            ReasonCode::ReasonNotReportIssuer,
            format!(
                "{actor} is not the issuer {issuer} of report {}",
                report.report_id
            ),
        ));
    }
    Ok(())
}

fn record_report(
    context: &mut TxContext<'_>,
    report_id: &Identifier,
    subject: &Uscc,
    kind: ReportKind,
    content: ReportContent,
) -> Outcome<()> {
    let issuer = context.acting(Role::CreditReporter)?;
    let report_key = keys::credit_report(report_id.as_str());
    if context.exists(&report_key) {
        return Err(Rejection::new(
            ReasonCode::ReasonReportExists,
            format!("report {report_id} already exists"),
        ));
    }
    context.require_member(subject)?;
    let report = v1::CreditReportRecord {
        report_id: report_id.as_str().to_owned(),
        issuer_uscc: issuer.as_str().to_owned(),
        subject_uscc: subject.as_str().to_owned(),
        kind: kind as i32,
        version_count: 1,
        objection: None,
    };
    let version = version_record(context, 1, content);
    context.put(report_key, &report);
    context.put(keys::credit_report_version(report_id.as_str(), 1), &version);
    context.put_raw(
        keys::credit_report_by_subject(subject.as_str(), report_id.as_str()),
        Vec::new(),
    );
    context.created_id = report_id.as_str().to_owned();
    Ok(())
}

fn amend_report(
    context: &mut TxContext<'_>,
    report_id: &Identifier,
    content: ReportContent,
) -> Outcome<()> {
    let actor = context.acting(Role::CreditReporter)?;
    let mut report = load_report(context, report_id)?;
    require_issuer(context, &actor, &report)?;
    if report.version_count >= VERSIONS_PER_REPORT_MAX {
        return Err(Rejection::new(
            ReasonCode::ReasonTooManyVersions,
            format!("report {report_id} already has {VERSIONS_PER_REPORT_MAX} versions"),
        ));
    }
    let next = report.version_count.checked_add(1).ok_or_else(|| {
        Rejection::new(
            ReasonCode::ReasonArithmeticOverflow,
            "version count overflows",
        )
    })?;
    let version = version_record(context, next, content);
    report.version_count = next;
    context.put(
        keys::credit_report_version(report_id.as_str(), next),
        &version,
    );
    context.put(keys::credit_report(report_id.as_str()), &report);
    context.created_id = format!("{report_id}#{next}");
    Ok(())
}

fn is_open(objection: Option<&v1::ObjectionRecord>) -> bool {
    objection.is_some_and(|o| o.status() == ObjectionStatus::Open)
}

fn file_objection(
    context: &mut TxContext<'_>,
    report_id: &Identifier,
    reason: String,
) -> Outcome<()> {
    let actor = context.acting(Role::Enterprise)?;
    let mut report = load_report(context, report_id)?;
    let subject = context.stored_uscc("subject", &report.subject_uscc)?;
    if !context.signed_by(&subject, Role::Enterprise) {
        return Err(Rejection::new(
            ReasonCode::ReasonNotReportSubject,
            format!("{actor} is not the subject {subject} of report {report_id}"),
        ));
    }
    if is_open(report.objection.as_ref()) {
        return Err(Rejection::new(
            ReasonCode::ReasonObjectionAlreadyOpen,
            format!("report {report_id} already has an open objection"),
        ));
    }
    report.objection = Some(v1::ObjectionRecord {
        status: ObjectionStatus::Open as i32,
        reason,
        filed_at_ms: context.block.time_ms,
        version_at_filing: report.version_count,
        resolved_at_ms: 0,
        note: String::new(),
    });
    context.put(keys::credit_report(report_id.as_str()), &report);
    Ok(())
}

fn resolve_objection(
    context: &mut TxContext<'_>,
    report_id: &Identifier,
    outcome: ObjectionOutcome,
    note: String,
) -> Outcome<()> {
    let actor = context.acting(Role::CreditReporter)?;
    let mut report = load_report(context, report_id)?;
    require_issuer(context, &actor, &report)?;
    let version_count = report.version_count;
    let objection = match report.objection.as_mut() {
        Some(objection) if objection.status() == ObjectionStatus::Open => objection,
        _ => {
            return Err(Rejection::new(
                ReasonCode::ReasonNoOpenObjection,
                format!("report {report_id} has no open objection"),
            ))
        }
    };
    let status = match outcome {
        ObjectionOutcome::Corrected => {
            if version_count <= objection.version_at_filing {
                return Err(Rejection::new(
                    ReasonCode::ReasonCorrectionWithoutAmendment,
                    format!(
                        "report {report_id} was not amended since the objection was filed at \
                         version {}",
                        objection.version_at_filing
                    ),
                ));
            }
            ObjectionStatus::Corrected
        }
        ObjectionOutcome::Upheld => ObjectionStatus::Upheld,
        ObjectionOutcome::Unresolved => ObjectionStatus::Unresolved,
        ObjectionOutcome::Unspecified => {
            return Err(Rejection::new(
                ReasonCode::ReasonMalformed,
                "objection outcome must be specified",
            ))
        }
    };
    objection.status = status as i32;
    objection.resolved_at_ms = context.block.time_ms;
    objection.note = note;
    context.put(keys::credit_report(report_id.as_str()), &report);
    Ok(())
}

fn authorization_key(subject: &str, grantee: &str, purpose: QueryPurpose) -> Vec<u8> {
    // Purposes are small positive enum values (checked by `TryFrom`), so they fit a byte.
    let purpose = u8::try_from(purpose as i32).unwrap_or(u8::MAX);
    keys::authorization(subject, grantee, purpose)
}

/// Whether an authorization permits queries at `now_ms`: not revoked and not yet expired.
#[must_use]
pub fn authorization_active(authorization: &v1::AuthorizationRecord, now_ms: u64) -> bool {
    !authorization.revoked && authorization.expires_at_ms > now_ms
}

fn grant_authorization(
    context: &mut TxContext<'_>,
    grantee: &Uscc,
    purpose: QueryPurpose,
    expires_at_ms: u64,
) -> Outcome<()> {
    let subject = context.acting(Role::Enterprise)?;
    context.require_member(grantee)?;
    let now_ms = context.block.time_ms;
    if expires_at_ms <= now_ms {
        return Err(Rejection::new(
            ReasonCode::ReasonExpiryNotInFuture,
            format!("expiry {expires_at_ms} ms is not after the block time {now_ms} ms"),
        ));
    }
    let record = v1::AuthorizationRecord {
        subject_uscc: subject.as_str().to_owned(),
        grantee_uscc: grantee.as_str().to_owned(),
        purpose: purpose as i32,
        granted_at_ms: now_ms,
        expires_at_ms,
        revoked: false,
    };
    context.put(
        authorization_key(subject.as_str(), grantee.as_str(), purpose),
        &record,
    );
    Ok(())
}

fn revoke_authorization(
    context: &mut TxContext<'_>,
    grantee: &Uscc,
    purpose: QueryPurpose,
) -> Outcome<()> {
    let subject = context.acting(Role::Enterprise)?;
    let key = authorization_key(subject.as_str(), grantee.as_str(), purpose);
    let now_ms = context.block.time_ms;
    match context.get::<v1::AuthorizationRecord>(&key) {
        Some(mut record) if authorization_active(&record, now_ms) => {
            record.revoked = true;
            context.put(key, &record);
            Ok(())
        }
        _ => Err(Rejection::new(
            ReasonCode::ReasonAuthorizationNotFound,
            format!(
                "{subject} has no active authorization for {grantee} for {}",
                purpose.as_str_name()
            ),
        )),
    }
}

fn record_query(
    context: &mut TxContext<'_>,
    report_id: &Identifier,
    purpose: QueryPurpose,
) -> Outcome<()> {
    let (querier, regulator) = match context.acting(Role::Supervisor) {
        Ok(uscc) => (uscc, true),
        Err(_) => (context.acting(Role::CreditQuerier)?, false),
    };
    let report = load_report(context, report_id)?;
    let own_report =
        report.issuer_uscc == querier.as_str() || report.subject_uscc == querier.as_str();
    if !regulator && !own_report {
        let key = authorization_key(&report.subject_uscc, querier.as_str(), purpose);
        let now_ms = context.block.time_ms;
        let authorized = context
            .get::<v1::AuthorizationRecord>(&key)
            .is_some_and(|record| authorization_active(&record, now_ms));
        if !authorized {
            return Err(Rejection::new(
                ReasonCode::ReasonNotAuthorized,
                format!(
                    "{querier} holds no active authorization from {} for {}",
                    report.subject_uscc,
                    purpose.as_str_name()
                ),
            ));
        }
    }
    let log = v1::QueryLogRecord {
        querier_uscc: querier.as_str().to_owned(),
        subject_uscc: report.subject_uscc.clone(),
        report_id: report.report_id.clone(),
        purpose: purpose as i32,
        provenance: Some(context.provenance()),
    };
    let tx_hash = context.tx_hash;
    context.put(keys::query_log(&tx_hash), &log);
    context.created_id = hex(&tx_hash);
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------- views

/// Who asks for a report. The node authenticates the caller and says who it is; the view decides
/// what that caller may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Viewer {
    /// A regulator: sees every detail (except what retention withholds from everyone).
    Regulator,
    /// A member that recorded a query of the report (`RecordCreditQuery`) in the committed
    /// transaction `query_tx_hash`.
    Querier {
        /// The querying organisation.
        uscc: Uscc,
        /// Hash of its committed `RecordCreditQuery` transaction.
        query_tx_hash: Hash,
    },
    /// An organisation that claims to be the report's issuer.
    Issuer(Uscc),
    /// An organisation that claims to be the report's subject.
    Subject(Uscc),
    /// Anyone else: hashes, provenance and status only.
    Public,
}

fn decode<M: Message + Default>(state: &dyn StateRead, key: &[u8]) -> Option<M> {
    state
        .get(key)
        .and_then(|bytes| M::decode(bytes.as_slice()).ok())
}

/// Whether an objection is open and older than [`OBJECTION_RESPONSE_MS`] at `now_ms`.
#[must_use]
pub fn objection_overdue(objection: &v1::ObjectionRecord, now_ms: u64) -> bool {
    objection.status() == ObjectionStatus::Open
        && now_ms > objection.filed_at_ms.saturating_add(OBJECTION_RESPONSE_MS)
}

/// Whether a version is negative information whose event ended more than [`RETENTION_YEARS`]
/// before the day of `now_ms`, and so is no longer served (art. 16).
#[must_use]
pub fn retention_expired(version: &v1::CreditReportVersion, now_ms: u64) -> bool {
    version.negative
        && version.event_end_day != 0
        && add_years(u64::from(version.event_end_day), RETENTION_YEARS) < day_of(now_ms)
}

/// Whether `viewer` may see the details of `report` at `now_ms`.
///
/// A querier must show a recorded query of this very report by its own organisation, and,
/// unless it is the issuer or the subject, the authorization that query was made under (same
/// subject, querier and purpose) must still be active: a revoked or expired authorization stops
/// serving details even under an earlier query.
fn details_permitted(
    state: &dyn StateRead,
    report: &v1::CreditReportRecord,
    viewer: &Viewer,
    now_ms: u64,
) -> bool {
    match viewer {
        Viewer::Regulator => true,
        Viewer::Issuer(uscc) => report.issuer_uscc == uscc.as_str(),
        Viewer::Subject(uscc) => report.subject_uscc == uscc.as_str(),
        Viewer::Public => false,
        Viewer::Querier {
            uscc,
            query_tx_hash,
        } => {
            let Some(log) = decode::<v1::QueryLogRecord>(state, &keys::query_log(query_tx_hash))
            else {
                return false;
            };
            if log.report_id != report.report_id || log.querier_uscc != uscc.as_str() {
                return false;
            }
            if report.issuer_uscc == uscc.as_str() || report.subject_uscc == uscc.as_str() {
                return true;
            }
            let key = authorization_key(&report.subject_uscc, uscc.as_str(), log.purpose());
            decode::<v1::AuthorizationRecord>(state, &key)
                .is_some_and(|record| authorization_active(&record, now_ms))
        }
    }
}

fn withhold(version: &mut v1::CreditReportVersion) {
    version.summary.clear();
    version.negative = false;
    version.event_end_day = 0;
}

/// A report as served to `viewer` at `now_ms` (the latest block time), or `None` if it does not
/// exist.
///
/// Every version is listed in order with its document hash and provenance. Its details
/// (summary, negative flag, event day) are served only to a regulator, the issuer, the subject,
/// or a querier with a recorded query (see [`Viewer::Querier`]), and never for a version past
/// retention ([`retention_expired`]); withheld details read as empty and set
/// `details_withheld`. A viewer not entitled to details also gets the objection without its
/// reason and note. `under_objection` and `objection_overdue` are derived from the open
/// objection and `now_ms`.
#[must_use]
pub fn report_view(
    state: &dyn StateScan,
    report_id: &str,
    viewer: &Viewer,
    now_ms: u64,
) -> Option<v1::CreditReportView> {
    let mut report: v1::CreditReportRecord = decode(state, &keys::credit_report(report_id))?;
    let permitted = details_permitted(state, &report, viewer, now_ms);
    let count = usize::try_from(report.version_count).unwrap_or(usize::MAX);
    let mut details_withheld = false;
    let versions = state
        .scan_prefix(&keys::credit_report_versions(report_id), count)
        .into_iter()
        .filter_map(|(_, bytes)| v1::CreditReportVersion::decode(bytes.as_slice()).ok())
        .map(|mut version| {
            if !permitted || retention_expired(&version, now_ms) {
                withhold(&mut version);
                details_withheld = true;
            }
            version
        })
        .collect();
    let (under_objection, objection_overdue) = match report.objection.as_ref() {
        Some(objection) => (
            objection.status() == ObjectionStatus::Open,
            objection_overdue(objection, now_ms),
        ),
        None => (false, false),
    };
    if !permitted {
        if let Some(objection) = report.objection.as_mut() {
            objection.reason.clear();
            objection.note.clear();
        }
    }
    Some(v1::CreditReportView {
        report: Some(report),
        versions,
        under_objection,
        objection_overdue,
        details_withheld,
    })
}

/// The reports about `subject`, in report-id order, at most [`SUBJECT_REPORTS_LISTED_MAX`].
/// Records only (issuer, kind, version count, objection status): no version details, and the
/// objections without their reason and note, which [`report_view`] serves to those entitled.
#[must_use]
pub fn reports_of_subject(state: &dyn StateScan, subject: &str) -> Vec<v1::CreditReportRecord> {
    let prefix = keys::credit_reports_of_subject(subject);
    state
        .scan_prefix(&prefix, SUBJECT_REPORTS_LISTED_MAX)
        .into_iter()
        .filter_map(|(key, _)| {
            let report_id = std::str::from_utf8(&key[prefix.len()..]).ok()?;
            decode::<v1::CreditReportRecord>(state, &keys::credit_report(report_id))
        })
        .map(|mut report| {
            if let Some(objection) = report.objection.as_mut() {
                objection.reason.clear();
                objection.note.clear();
            }
            report
        })
        .collect()
}

// ---------------------------------------------------------------- audit

fn audit_decode<M: Message + Default>(key: &[u8], bytes: &[u8]) -> Result<M, String> {
    M::decode(bytes).map_err(|error| {
        format!(
            "record under {} does not decode: {error}",
            String::from_utf8_lossy(key)
        )
    })
}

fn audit_member(state: &dyn StateRead, what: &str, uscc: &str) -> Result<(), String> {
    Uscc::parse(uscc).map_err(|error| format!("{what} {uscc:?} is not a USCC: {error}"))?;
    if state.get(&keys::member(uscc)).is_none() {
        return Err(format!("{what} {uscc} is not a member"));
    }
    Ok(())
}

/// Checks the credit registry's invariants over the whole state; the first violation found is
/// returned as a message.
///
/// - every report decodes under its own id, has `1 <= version_count <=
///   VERSIONS_PER_REPORT_MAX` and exactly the versions `1..=version_count`, each numbered as
///   its key and carrying provenance; there is no version of a missing report;
/// - the issuer and the subject of every report are members, and the report is in the subject
///   index; every subject-index entry points to a report with that subject;
/// - an open objection has `filed_at_ms > 0` and `1 <= version_at_filing <= version_count`; a
///   corrected one has `version_count > version_at_filing`;
/// - every authorization decodes under its own (subject, grantee, purpose), both are members,
///   and it expires after it was granted;
/// - every query log names a member querier and an existing report with the same subject.
pub fn audit(state: &dyn StateScan) -> Result<(), String> {
    audit_reports(state)?;
    audit_orphan_versions(state)?;
    audit_subject_index(state)?;
    audit_authorizations(state)?;
    audit_query_logs(state)
}

fn audit_reports(state: &dyn StateScan) -> Result<(), String> {
    for (key, bytes) in state.scan_prefix(b"c/r/", usize::MAX) {
        let report: v1::CreditReportRecord = audit_decode(&key, &bytes)?;
        let id = &report.report_id;
        if keys::credit_report(id) != key {
            return Err(format!(
                "report {id} is stored under {}",
                String::from_utf8_lossy(&key)
            ));
        }
        if report.version_count == 0 || report.version_count > VERSIONS_PER_REPORT_MAX {
            return Err(format!(
                "report {id} has version_count {}, outside 1..={VERSIONS_PER_REPORT_MAX}",
                report.version_count
            ));
        }
        let versions = state.scan_prefix(&keys::credit_report_versions(id), usize::MAX);
        let expected = usize::try_from(report.version_count).unwrap_or(usize::MAX);
        if versions.len() != expected {
            return Err(format!(
                "report {id} has version_count {} but {} version records",
                report.version_count,
                versions.len()
            ));
        }
        for (number, (version_key, version_bytes)) in (1u32..).zip(versions) {
            if version_key != keys::credit_report_version(id, number) {
                return Err(format!("report {id}: version {number} is missing"));
            }
            let version: v1::CreditReportVersion = audit_decode(&version_key, &version_bytes)?;
            if version.version != number {
                return Err(format!(
                    "report {id}: version record {number} says it is version {}",
                    version.version
                ));
            }
            if version.provenance.is_none() {
                return Err(format!("report {id}: version {number} has no provenance"));
            }
        }
        audit_member(
            state,
            &format!("issuer of report {id}"),
            &report.issuer_uscc,
        )?;
        audit_member(
            state,
            &format!("subject of report {id}"),
            &report.subject_uscc,
        )?;
        if state
            .get(&keys::credit_report_by_subject(&report.subject_uscc, id))
            .is_none()
        {
            return Err(format!("report {id} is missing from its subject index"));
        }
        if let Some(objection) = &report.objection {
            audit_objection(id, report.version_count, objection)?;
        }
    }
    Ok(())
}

fn audit_objection(
    id: &str,
    version_count: u32,
    objection: &v1::ObjectionRecord,
) -> Result<(), String> {
    match objection.status() {
        ObjectionStatus::Open => {
            if objection.filed_at_ms == 0 {
                return Err(format!("report {id}: open objection has no filing time"));
            }
        }
        ObjectionStatus::Corrected => {
            if version_count <= objection.version_at_filing {
                return Err(format!(
                    "report {id}: objection corrected without an amendment after version {}",
                    objection.version_at_filing
                ));
            }
        }
        ObjectionStatus::Upheld | ObjectionStatus::Unresolved => {}
        ObjectionStatus::Unspecified => {
            return Err(format!("report {id}: objection has no status"));
        }
    }
    if objection.version_at_filing == 0 || objection.version_at_filing > version_count {
        return Err(format!(
            "report {id}: objection filed at version {} of {version_count}",
            objection.version_at_filing
        ));
    }
    Ok(())
}

fn audit_orphan_versions(state: &dyn StateScan) -> Result<(), String> {
    for (key, _) in state.scan_prefix(b"c/v/", usize::MAX) {
        // `c/v/<report id>/<version u32 BE>`; identifiers never contain `/`.
        let rest = &key[4..];
        let id = rest
            .len()
            .checked_sub(5)
            .and_then(|end| std::str::from_utf8(&rest[..end]).ok())
            .ok_or_else(|| format!("malformed version key {}", String::from_utf8_lossy(&key)))?;
        if state.get(&keys::credit_report(id)).is_none() {
            return Err(format!("version of missing report {id}"));
        }
    }
    Ok(())
}

fn audit_subject_index(state: &dyn StateScan) -> Result<(), String> {
    for (key, _) in state.scan_prefix(b"c/s/", usize::MAX) {
        let entry = String::from_utf8_lossy(&key[4..]).into_owned();
        let Some((subject, id)) = entry.split_once('/') else {
            return Err(format!("malformed subject index entry {entry}"));
        };
        let Some(bytes) = state.get(&keys::credit_report(id)) else {
            return Err(format!("subject index {entry} points to a missing report"));
        };
        let report: v1::CreditReportRecord = audit_decode(&keys::credit_report(id), &bytes)?;
        if report.subject_uscc != subject {
            return Err(format!(
                "subject index {entry} points to report {id} about {}",
                report.subject_uscc
            ));
        }
    }
    Ok(())
}

fn audit_authorizations(state: &dyn StateScan) -> Result<(), String> {
    for (key, bytes) in state.scan_prefix(b"c/a/", usize::MAX) {
        let record: v1::AuthorizationRecord = audit_decode(&key, &bytes)?;
        let expected =
            authorization_key(&record.subject_uscc, &record.grantee_uscc, record.purpose());
        if record.purpose() == QueryPurpose::Unspecified || expected != key {
            return Err(format!(
                "authorization of {} to {} is stored under the wrong key",
                record.subject_uscc, record.grantee_uscc
            ));
        }
        audit_member(state, "authorizing subject", &record.subject_uscc)?;
        audit_member(state, "authorized grantee", &record.grantee_uscc)?;
        if record.expires_at_ms <= record.granted_at_ms {
            return Err(format!(
                "authorization of {} to {} expires before it was granted",
                record.subject_uscc, record.grantee_uscc
            ));
        }
    }
    Ok(())
}

fn audit_query_logs(state: &dyn StateScan) -> Result<(), String> {
    for (key, bytes) in state.scan_prefix(b"c/q/", usize::MAX) {
        let log: v1::QueryLogRecord = audit_decode(&key, &bytes)?;
        audit_member(state, "querier", &log.querier_uscc)?;
        let Some(report_bytes) = state.get(&keys::credit_report(&log.report_id)) else {
            return Err(format!("query log names missing report {}", log.report_id));
        };
        let report: v1::CreditReportRecord =
            audit_decode(&keys::credit_report(&log.report_id), &report_bytes)?;
        if report.subject_uscc != log.subject_uscc {
            return Err(format!(
                "query log of report {} names subject {}, the report is about {}",
                log.report_id, log.subject_uscc, report.subject_uscc
            ));
        }
    }
    Ok(())
}
