//! The supply-chain receivables registry: registration against invoices, confirmation by the
//! debtor, split transfers, pledges and factorings, payments and cancellation.
//!
//! It owns the records under `r/`: the `ReceivableRecord` of each receivable (`r/r/<id>`), its
//! units (`r/u/<id>/<part>`, part 0 is the root unit, part n the n-th part split off, unit id
//! text `<id>` or `<id>#<n>`) each with at most one embedded active `FinancingRecord`, and the
//! invoice index (`r/i/<invoice hash>` -> receivable id).
//!
//! Invariants kept here (DOMAIN.md invariants 2, 3, 5; checked by [`audit`]):
//! - the amounts of all units of a receivable always add up to its face, every unit amount is
//!   positive, and every part records a parent of the same receivable with a lower part number;
//! - `paid_fen <= face_fen`, and a receivable is `SETTLED` exactly when `paid_fen == face_fen`;
//! - a unit has at most one active financing (it is a field, not a list), whose amount never
//!   exceeds the unit's; a settled receivable has no financing on any unit;
//! - an invoice hash backs at most one receivable that is not cancelled, and the index points to
//!   it;
//! - a rejected action returns `Err` before or instead of any write it would make (the
//!   transaction overlay is discarded), so it changes nothing.
//!
//! Rules (decided by the lead, or chosen here where DOMAIN.md is silent):
//! - `RegisterReceivable`: signed by the creditor with an `ENTERPRISE` key (`REASON_NOT_CREDITOR`
//!   when no key of the creditor signed); debtor and creditor are members; the id is new; the
//!   due day is not before the block's day (`REASON_DUE_DATE_PASSED`); no invoice may back
//!   another receivable that is not cancelled (`REASON_INVOICE_ALREADY_USED`). Chosen: only
//!   cancellation frees an invoice; a settled receivable keeps its invoices used forever, since
//!   a paid invoice must never back a new financing.
//! - `ConfirmReceivable`: a key of the debtor with `ENTERPRISE` signs (`REASON_NOT_DEBTOR`
//!   otherwise); only a `REGISTERED` receivable is confirmed (`REASON_ALREADY_CONFIRMED`,
//!   `REASON_RECEIVABLE_SETTLED`, or `REASON_RECEIVABLE_CANCELLED`, a code added for this).
//! - Transfers and financings need a `CONFIRMED` receivable (`REASON_NOT_CONFIRMED`), never a
//!   settled one (`REASON_RECEIVABLE_SETTLED`), and not an overdue one
//!   (`REASON_RECEIVABLE_OVERDUE`: the block's day is after the due day).
//! - `TransferReceivable`: the unit's holder signs (`REASON_NOT_HOLDER`); the recipient is
//!   another member (`REASON_SELF_TRANSFER`); the amount is at most the unit's. A financed unit
//!   moves only whole (`REASON_INSUFFICIENT_BALANCE`: its unencumbered balance is zero) and only
//!   with the financier's `FINANCIER` signature (Civil Code art. 445, `REASON_MISSING_SIGNATURE`),
//!   the financing staying attached. A whole transfer changes the holder; a partial one creates
//!   part `parts_created + 1` (at most `PARTS_PER_RECEIVABLE_MAX`) held by the recipient, taken
//!   from the unit, and names it in the receipt.
//! - `PledgeReceivable` / `FactorReceivable`: the holder and the financier (`FINANCIER` key)
//!   sign; chosen: the financier must not be the holder (`REASON_SELF_TRANSFER`); the unit has no
//!   active financing (`REASON_ALREADY_FINANCED`); the secured amount or advance is at most the
//!   unit's amount; the priority is the next number of the chain-wide financing sequence
//!   (registration order, Civil Code arts. 414 and 768).
//! - `ReleaseReceivableFinancing`: the unit has an active financing (`REASON_NOT_FINANCED`) and
//!   its financier signs with a `FINANCIER` key (`REASON_NOT_FINANCIER`).
//! - `RecordReceivablePayment`: the debtor signs; the receivable is confirmed; paid never exceeds
//!   face (`REASON_OVERPAYMENT`). Chosen: payments are recorded against the receivable as a
//!   whole, not allocated to units, and a partly paid receivable can still be transferred and
//!   financed. Full payment settles it and releases the financing of every unit.
//! - `CancelReceivable`: the creditor or the debtor signs (`REASON_NOT_CREDITOR` when neither
//!   did); only a `REGISTERED` receivable (`REASON_NOT_CANCELLABLE`); its invoices are freed.
//! - Overdue is derived, never stored: confirmed, not settled, and the day of the time asked
//!   about is after the due day. Payments are still accepted when overdue.
//!
//! Check order in every rule: the records the rule reads to know its parties
//! (`REASON_RECEIVABLE_NOT_FOUND`, and `REASON_NOT_FINANCED` for a release), then the
//! signatures of those parties, then the state of the receivable, then the amounts.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use yrd_proto::limits::PARTS_PER_RECEIVABLE_MAX;
use yrd_proto::signing::Hash;
use yrd_proto::v1::{self, FinancingKind, ReasonCode, ReceivableStatus};

use crate::date::day_of;
use crate::exec::{Outcome, Rejection, TxContext};
use crate::keys::{self, sequences};
use crate::state::{StateRead, StateScan};
use crate::transaction::{Action, Identifier, Role, UnitId};
use crate::uscc::Uscc;

/// Applies an action of the receivables registry.
pub(crate) fn apply(context: &mut TxContext<'_>, action: Action) -> Outcome<()> {
    match action {
        Action::RegisterReceivable {
            receivable_id,
            debtor,
            creditor,
            face_fen,
            due_day,
            invoice_hashes,
            contract_hash,
        } => register(
            context,
            Registration {
                receivable_id,
                debtor,
                creditor,
                face_fen,
                due_day,
                invoice_hashes,
                contract_hash,
            },
        ),
        Action::ConfirmReceivable { receivable_id } => confirm(context, &receivable_id),
        Action::TransferReceivable {
            unit_id,
            to,
            amount_fen,
        } => transfer(context, &unit_id, &to, amount_fen),
        Action::PledgeReceivable {
            unit_id,
            pledgee,
            secured_amount_fen,
        } => finance(
            context,
            &unit_id,
            &pledgee,
            secured_amount_fen,
            FinancingKind::Pledge,
        ),
        Action::FactorReceivable {
            unit_id,
            factor,
            advance_fen,
        } => finance(
            context,
            &unit_id,
            &factor,
            advance_fen,
            FinancingKind::Factoring,
        ),
        Action::ReleaseReceivableFinancing { unit_id } => release(context, &unit_id),
        Action::RecordReceivablePayment {
            receivable_id,
            amount_fen,
        } => record_payment(context, &receivable_id, amount_fen),
        Action::CancelReceivable { receivable_id } => cancel(context, &receivable_id),
        _ => unreachable!("receivables::apply is only given receivable actions"),
    }
}

/// The fields of a `RegisterReceivable`.
struct Registration {
    receivable_id: Identifier,
    debtor: Uscc,
    creditor: Uscc,
    face_fen: u64,
    due_day: u32,
    invoice_hashes: Vec<Hash>,
    contract_hash: Hash,
}

// ---------------------------------------------------------------- helpers

/// Whether some key of organisation `uscc` signed, whatever its roles.
fn signed_by_org(context: &TxContext<'_>, uscc: &Uscc) -> bool {
    context
        .signers
        .iter()
        .any(|signer| signer.member.as_ref() == Some(uscc))
}

/// Requires a signature of the party a rule names: `absent` when no key of `uscc` signed,
/// `REASON_ROLE_NOT_PERMITTED` when its signing keys lack `role`.
fn require_party(
    context: &TxContext<'_>,
    uscc: &Uscc,
    role: Role,
    absent: ReasonCode,
    what: &str,
) -> Outcome<()> {
    if !signed_by_org(context, uscc) {
        return Err(Rejection::new(
            absent,
            format!("{what} {uscc} did not sign"),
        ));
    }
    context.require_signature(uscc, role)
}

fn overflow(what: &str) -> Rejection {
    Rejection::new(
        ReasonCode::ReasonArithmeticOverflow,
        format!("{what} overflows"),
    )
}

fn load_receivable(
    context: &mut TxContext<'_>,
    receivable_id: &str,
) -> Outcome<v1::ReceivableRecord> {
    context
        .get(&keys::receivable(receivable_id))
        .ok_or_else(|| {
            Rejection::new(
                ReasonCode::ReasonReceivableNotFound,
                format!("receivable {receivable_id} is not registered"),
            )
        })
}

/// The receivable of a unit and the unit itself, or `REASON_RECEIVABLE_NOT_FOUND`.
fn load_unit(
    context: &mut TxContext<'_>,
    unit_id: &UnitId,
) -> Outcome<(v1::ReceivableRecord, v1::ReceivableUnitRecord)> {
    let receivable = load_receivable(context, unit_id.receivable_id.as_str())?;
    let unit = if unit_id.part <= receivable.parts_created {
        context.get(&keys::receivable_unit(
            unit_id.receivable_id.as_str(),
            unit_id.part,
        ))
    } else {
        None
    };
    let unit = unit.ok_or_else(|| {
        Rejection::new(
            ReasonCode::ReasonReceivableNotFound,
            format!("unit {unit_id} does not exist"),
        )
    })?;
    Ok((receivable, unit))
}

/// Whether a receivable is overdue at `now_ms`: confirmed, not settled, past its due day.
#[must_use]
pub fn is_overdue(receivable: &v1::ReceivableRecord, now_ms: u64) -> bool {
    receivable.status() == ReceivableStatus::Confirmed
        && day_of(now_ms) > u64::from(receivable.due_day)
}

/// Requires a receivable that may be transferred or financed at the block's time.
fn require_tradable(context: &TxContext<'_>, receivable: &v1::ReceivableRecord) -> Outcome<()> {
    let id = &receivable.receivable_id;
    match receivable.status() {
        ReceivableStatus::Confirmed => {
            if is_overdue(receivable, context.block.time_ms) {
                Err(Rejection::new(
                    ReasonCode::ReasonReceivableOverdue,
                    format!("receivable {id} was due on day {}", receivable.due_day),
                ))
            } else {
                Ok(())
            }
        }
        ReceivableStatus::Settled => Err(Rejection::new(
            ReasonCode::ReasonReceivableSettled,
            format!("receivable {id} is settled"),
        )),
        status => Err(Rejection::new(
            ReasonCode::ReasonNotConfirmed,
            format!("receivable {id} is {}, not confirmed", status.as_str_name()),
        )),
    }
}

fn unit_key(unit: &v1::ReceivableUnitRecord, part: u32) -> Vec<u8> {
    keys::receivable_unit(&unit.receivable_id, part)
}

// ---------------------------------------------------------------- rules

fn register(context: &mut TxContext<'_>, registration: Registration) -> Outcome<()> {
    let Registration {
        receivable_id,
        debtor,
        creditor,
        face_fen,
        due_day,
        invoice_hashes,
        contract_hash,
    } = registration;
    require_party(
        context,
        &creditor,
        Role::Enterprise,
        ReasonCode::ReasonNotCreditor,
        "creditor",
    )?;
    context.require_member(&debtor)?;
    context.require_member(&creditor)?;
    let id = receivable_id.as_str();
    if context.exists(&keys::receivable(id)) {
        return Err(Rejection::new(
            ReasonCode::ReasonReceivableExists,
            format!("receivable {id} is already registered"),
        ));
    }
    let today = day_of(context.block.time_ms);
    if u64::from(due_day) < today {
        return Err(Rejection::new(
            ReasonCode::ReasonDueDatePassed,
            format!("due day {due_day} is before the block's day {today}"),
        ));
    }
    for invoice in &invoice_hashes {
        // Cancellation deletes its entries, so any entry names a live or settled receivable.
        if let Some(owner) = context.get_raw(&keys::invoice(invoice)) {
            return Err(Rejection::new(
                ReasonCode::ReasonInvoiceAlreadyUsed,
                format!(
                    "invoice {} already backs receivable {}",
                    crate::exec::hex_short(invoice),
                    String::from_utf8_lossy(&owner)
                ),
            ));
        }
    }
    for invoice in &invoice_hashes {
        context.put_raw(keys::invoice(invoice), id.as_bytes().to_vec());
    }
    let mut record = v1::ReceivableRecord {
        receivable_id: id.to_owned(),
        debtor_uscc: debtor.as_str().to_owned(),
        creditor_uscc: creditor.as_str().to_owned(),
        face_fen,
        due_day,
        invoice_hashes: invoice_hashes.iter().map(|h| h.to_vec()).collect(),
        contract_hash: contract_hash.to_vec(),
        status: 0,
        paid_fen: 0,
        parts_created: 0,
        registered: Some(context.provenance()),
    };
    record.set_status(ReceivableStatus::Registered);
    context.put(keys::receivable(id), &record);
    context.put(
        keys::receivable_unit(id, 0),
        &v1::ReceivableUnitRecord {
            unit_id: id.to_owned(),
            receivable_id: id.to_owned(),
            parent_unit_id: String::new(),
            holder_uscc: creditor.as_str().to_owned(),
            amount_fen: face_fen,
            financing: None,
        },
    );
    context.created_id = id.to_owned();
    Ok(())
}

fn confirm(context: &mut TxContext<'_>, receivable_id: &Identifier) -> Outcome<()> {
    let mut receivable = load_receivable(context, receivable_id.as_str())?;
    let debtor = context.stored_uscc("party", &receivable.debtor_uscc)?;
    require_party(
        context,
        &debtor,
        Role::Enterprise,
        ReasonCode::ReasonNotDebtor,
        "debtor",
    )?;
    match receivable.status() {
        ReceivableStatus::Registered => {}
        ReceivableStatus::Confirmed => {
            return Err(Rejection::new(
                ReasonCode::ReasonAlreadyConfirmed,
                format!("receivable {receivable_id} is already confirmed"),
            ))
        }
        ReceivableStatus::Settled => {
            return Err(Rejection::new(
                ReasonCode::ReasonReceivableSettled,
                format!("receivable {receivable_id} is settled"),
            ))
        }
        _ => {
            return Err(Rejection::new(
                ReasonCode::ReasonReceivableCancelled,
                format!("receivable {receivable_id} is cancelled"),
            ))
        }
    }
    receivable.set_status(ReceivableStatus::Confirmed);
    context.put(keys::receivable(receivable_id.as_str()), &receivable);
    Ok(())
}

fn transfer(
    context: &mut TxContext<'_>,
    unit_id: &UnitId,
    to: &Uscc,
    amount_fen: u64,
) -> Outcome<()> {
    let (mut receivable, mut unit) = load_unit(context, unit_id)?;
    let holder = context.stored_uscc("party", &unit.holder_uscc)?;
    require_party(
        context,
        &holder,
        Role::Enterprise,
        ReasonCode::ReasonNotHolder,
        "holder",
    )?;
    if let Some(financing) = &unit.financing {
        // Civil Code art. 445: a pledged receivable is not transferred without the pledgee.
        let financier = context.stored_uscc("party", &financing.financier_uscc)?;
        context.require_signature(&financier, Role::Financier)?;
    }
    require_tradable(context, &receivable)?;
    context.require_member(to)?;
    if *to == holder {
        return Err(Rejection::new(
            ReasonCode::ReasonSelfTransfer,
            format!("{to} already holds unit {unit_id}"),
        ));
    }
    if amount_fen > unit.amount_fen {
        return Err(Rejection::new(
            ReasonCode::ReasonInsufficientBalance,
            format!(
                "unit {unit_id} holds {} fen, {amount_fen} fen asked",
                unit.amount_fen
            ),
        ));
    }
    if amount_fen == unit.amount_fen {
        unit.holder_uscc = to.as_str().to_owned();
        context.put(unit_key(&unit, unit_id.part), &unit);
        return Ok(());
    }
    if unit.financing.is_some() {
        return Err(Rejection::new(
            ReasonCode::ReasonInsufficientBalance,
            format!("unit {unit_id} is financed: it moves only whole, with its financing"),
        ));
    }
    let part = receivable
        .parts_created
        .checked_add(1)
        .ok_or_else(|| overflow("part number"))?;
    if part > PARTS_PER_RECEIVABLE_MAX {
        return Err(Rejection::new(
            ReasonCode::ReasonTooManyParts,
            format!(
                "receivable {} already has {PARTS_PER_RECEIVABLE_MAX} parts",
                receivable.receivable_id
            ),
        ));
    }
    unit.amount_fen = unit
        .amount_fen
        .checked_sub(amount_fen)
        .ok_or_else(|| overflow("unit amount"))?;
    let child_id = UnitId {
        receivable_id: unit_id.receivable_id.clone(),
        part,
    }
    .to_string();
    let child = v1::ReceivableUnitRecord {
        unit_id: child_id.clone(),
        receivable_id: receivable.receivable_id.clone(),
        parent_unit_id: unit.unit_id.clone(),
        holder_uscc: to.as_str().to_owned(),
        amount_fen,
        financing: None,
    };
    receivable.parts_created = part;
    context.put(unit_key(&unit, unit_id.part), &unit);
    context.put(unit_key(&child, part), &child);
    context.put(keys::receivable(&receivable.receivable_id), &receivable);
    context.created_id = child_id;
    Ok(())
}

fn finance(
    context: &mut TxContext<'_>,
    unit_id: &UnitId,
    financier: &Uscc,
    amount_fen: u64,
    kind: FinancingKind,
) -> Outcome<()> {
    let (receivable, mut unit) = load_unit(context, unit_id)?;
    let holder = context.stored_uscc("party", &unit.holder_uscc)?;
    require_party(
        context,
        &holder,
        Role::Enterprise,
        ReasonCode::ReasonNotHolder,
        "holder",
    )?;
    context.require_signature(financier, Role::Financier)?;
    context.require_member(financier)?;
    if *financier == holder {
        return Err(Rejection::new(
            ReasonCode::ReasonSelfTransfer,
            format!("{financier} cannot finance the unit {unit_id} it holds"),
        ));
    }
    require_tradable(context, &receivable)?;
    if let Some(active) = &unit.financing {
        return Err(Rejection::new(
            ReasonCode::ReasonAlreadyFinanced,
            format!(
                "unit {unit_id} already has a {} by {} (priority {})",
                active.kind().as_str_name(),
                active.financier_uscc,
                active.priority
            ),
        ));
    }
    if amount_fen > unit.amount_fen {
        return Err(Rejection::new(
            ReasonCode::ReasonInsufficientBalance,
            format!(
                "unit {unit_id} holds {} fen, {amount_fen} fen asked",
                unit.amount_fen
            ),
        ));
    }
    let priority = context.next_sequence(sequences::FINANCING_PRIORITY);
    let mut financing = v1::FinancingRecord {
        kind: 0,
        financier_uscc: financier.as_str().to_owned(),
        amount_fen,
        priority,
        registered: Some(context.provenance()),
    };
    financing.set_kind(kind);
    unit.financing = Some(financing);
    context.put(unit_key(&unit, unit_id.part), &unit);
    Ok(())
}

fn release(context: &mut TxContext<'_>, unit_id: &UnitId) -> Outcome<()> {
    let (_, mut unit) = load_unit(context, unit_id)?;
    let financier = match &unit.financing {
        Some(financing) => context.stored_uscc("party", &financing.financier_uscc)?,
        None => {
            return Err(Rejection::new(
                ReasonCode::ReasonNotFinanced,
                format!("unit {unit_id} has no active financing"),
            ))
        }
    };
    require_party(
        context,
        &financier,
        Role::Financier,
        ReasonCode::ReasonNotFinancier,
        "financier",
    )?;
    unit.financing = None;
    context.put(unit_key(&unit, unit_id.part), &unit);
    Ok(())
}

fn record_payment(
    context: &mut TxContext<'_>,
    receivable_id: &Identifier,
    amount_fen: u64,
) -> Outcome<()> {
    let id = receivable_id.as_str();
    let mut receivable = load_receivable(context, id)?;
    let debtor = context.stored_uscc("party", &receivable.debtor_uscc)?;
    require_party(
        context,
        &debtor,
        Role::Enterprise,
        ReasonCode::ReasonNotDebtor,
        "debtor",
    )?;
    match receivable.status() {
        ReceivableStatus::Confirmed => {}
        ReceivableStatus::Settled => {
            return Err(Rejection::new(
                ReasonCode::ReasonReceivableSettled,
                format!("receivable {id} is already settled"),
            ))
        }
        status => {
            return Err(Rejection::new(
                ReasonCode::ReasonNotConfirmed,
                format!("receivable {id} is {}, not confirmed", status.as_str_name()),
            ))
        }
    }
    let paid_fen = receivable
        .paid_fen
        .checked_add(amount_fen)
        .ok_or_else(|| overflow("paid amount"))?;
    if paid_fen > receivable.face_fen {
        return Err(Rejection::new(
            ReasonCode::ReasonOverpayment,
            format!(
                "{amount_fen} fen would bring paid to {paid_fen} fen, above the face of {} fen",
                receivable.face_fen
            ),
        ));
    }
    receivable.paid_fen = paid_fen;
    if paid_fen == receivable.face_fen {
        receivable.set_status(ReceivableStatus::Settled);
        // Full payment releases every encumbrance on every part (bounded by the parts limit).
        for part in 0..=receivable.parts_created {
            let key = keys::receivable_unit(id, part);
            if let Some(mut unit) = context.get::<v1::ReceivableUnitRecord>(&key) {
                if unit.financing.take().is_some() {
                    context.put(key, &unit);
                }
            }
        }
    }
    context.put(keys::receivable(id), &receivable);
    Ok(())
}

fn cancel(context: &mut TxContext<'_>, receivable_id: &Identifier) -> Outcome<()> {
    let id = receivable_id.as_str();
    let mut receivable = load_receivable(context, id)?;
    let creditor = context.stored_uscc("party", &receivable.creditor_uscc)?;
    let debtor = context.stored_uscc("party", &receivable.debtor_uscc)?;
    if signed_by_org(context, &creditor) {
        context.require_signature(&creditor, Role::Enterprise)?;
    } else if signed_by_org(context, &debtor) {
        context.require_signature(&debtor, Role::Enterprise)?;
    } else {
        return Err(Rejection::new(
            ReasonCode::ReasonNotCreditor,
            format!("only the creditor {creditor} or the debtor {debtor} may cancel {id}"),
        ));
    }
    if receivable.status() != ReceivableStatus::Registered {
        return Err(Rejection::new(
            ReasonCode::ReasonNotCancellable,
            format!(
                "receivable {id} is {}; only an unconfirmed one is cancelled",
                receivable.status().as_str_name()
            ),
        ));
    }
    for invoice in &receivable.invoice_hashes {
        let Ok(invoice) = Hash::try_from(invoice.as_slice()) else {
            continue;
        };
        let key = keys::invoice(&invoice);
        if context.get_raw(&key).as_deref() == Some(id.as_bytes()) {
            context.delete(key);
        }
    }
    receivable.set_status(ReceivableStatus::Cancelled);
    context.put(keys::receivable(id), &receivable);
    Ok(())
}

// ---------------------------------------------------------------- views

fn decode<M: Message + Default>(bytes: &[u8]) -> Option<M> {
    M::decode(bytes).ok()
}

/// A receivable with all its units in part order, and whether it is overdue at `now_ms` (the
/// latest block time). `None` if it is not registered (or a record is missing or does not
/// decode, which [`audit`] reports).
#[must_use]
pub fn receivable_view(
    state: &dyn StateRead,
    receivable_id: &str,
    now_ms: u64,
) -> Option<v1::ReceivableView> {
    let receivable: v1::ReceivableRecord = decode(&state.get(&keys::receivable(receivable_id))?)?;
    let mut units = Vec::new();
    for part in 0..=receivable.parts_created.min(PARTS_PER_RECEIVABLE_MAX) {
        let bytes = state.get(&keys::receivable_unit(receivable_id, part))?;
        units.push(decode(&bytes)?);
    }
    Some(v1::ReceivableView {
        overdue: is_overdue(&receivable, now_ms),
        receivable: Some(receivable),
        units,
    })
}

/// One unit by its id text (`<receivable id>` or `<receivable id>#<part>`), if it exists.
#[must_use]
pub fn unit(state: &dyn StateRead, unit_id: &str) -> Option<v1::ReceivableUnitRecord> {
    let unit_id = UnitId::parse("unit_id", unit_id).ok()?;
    decode(&state.get(&keys::receivable_unit(
        unit_id.receivable_id.as_str(),
        unit_id.part,
    ))?)
}

// ---------------------------------------------------------------- audit

/// Splits a unit key `r/u/<receivable id>/<part u32 BE>` into its id and part.
fn parse_unit_key(key: &[u8]) -> Option<(String, u32)> {
    let rest = key.strip_prefix(keys::RECEIVABLE_UNITS_PREFIX)?;
    let split = rest.len().checked_sub(5)?;
    let (id, tail) = rest.split_at(split);
    if tail[0] != b'/' {
        return None;
    }
    let part = u32::from_be_bytes([tail[1], tail[2], tail[3], tail[4]]);
    Some((String::from_utf8(id.to_vec()).ok()?, part))
}

/// Checks the invariants of the whole receivables registry (DOMAIN.md invariants 2 and 3, and
/// the invoice rule): returns a message naming the first violation found.
///
/// For every receivable: its status is specified, `paid_fen <= face_fen`, it is settled exactly
/// when fully paid and unpaid unless confirmed or settled; units `0..=parts_created` exist,
/// name their receivable and id, have positive amounts that add up to `face_fen`; part 0 has no
/// parent and part n a parent of the same receivable with a lower part number; no unit exists
/// beyond `parts_created`; each financing has a kind, a financier, a positive amount at most
/// the unit's and a unique priority, and only confirmed receivables have financings. Every
/// invoice index entry points to a receivable that lists the invoice and is not cancelled, and
/// every invoice of a receivable that is not cancelled is indexed to it (so no two such
/// receivables share an invoice).
pub fn audit(state: &dyn StateScan) -> Result<(), String> {
    let mut receivables = BTreeMap::new();
    for (key, value) in state.scan_prefix(keys::RECEIVABLES_PREFIX, usize::MAX) {
        let record: v1::ReceivableRecord = decode(&value)
            .ok_or_else(|| format!("receivable record under {key:?} does not decode"))?;
        if key != keys::receivable(&record.receivable_id) {
            return Err(format!(
                "receivable {} is stored under {key:?}",
                record.receivable_id
            ));
        }
        receivables.insert(record.receivable_id.clone(), record);
    }
    let mut units = BTreeMap::new();
    for (key, value) in state.scan_prefix(keys::RECEIVABLE_UNITS_PREFIX, usize::MAX) {
        let (id, part) =
            parse_unit_key(&key).ok_or_else(|| format!("unit key {key:?} is malformed"))?;
        let record: v1::ReceivableUnitRecord =
            decode(&value).ok_or_else(|| format!("unit under {key:?} does not decode"))?;
        units.insert((id, part), record);
    }
    let mut priorities = BTreeSet::new();
    for (id, receivable) in &receivables {
        audit_receivable(id, receivable, &units, &mut priorities)?;
    }
    for (id, part) in units.keys() {
        match receivables.get(id) {
            Some(receivable) if *part <= receivable.parts_created => {}
            Some(_) => return Err(format!("unit {id}#{part} is beyond parts_created")),
            None => return Err(format!("unit {id}#{part} has no receivable")),
        }
    }
    audit_invoices(state, &receivables)
}

fn audit_receivable(
    id: &str,
    receivable: &v1::ReceivableRecord,
    units: &BTreeMap<(String, u32), v1::ReceivableUnitRecord>,
    priorities: &mut BTreeSet<u64>,
) -> Result<(), String> {
    let status = receivable.status();
    if status == ReceivableStatus::Unspecified {
        return Err(format!("receivable {id} has no status"));
    }
    if receivable.paid_fen > receivable.face_fen {
        return Err(format!(
            "receivable {id}: paid {} exceeds face {}",
            receivable.paid_fen, receivable.face_fen
        ));
    }
    if (status == ReceivableStatus::Settled) != (receivable.paid_fen == receivable.face_fen) {
        return Err(format!(
            "receivable {id} is {} with {} of {} fen paid",
            status.as_str_name(),
            receivable.paid_fen,
            receivable.face_fen
        ));
    }
    if matches!(
        status,
        ReceivableStatus::Registered | ReceivableStatus::Cancelled
    ) && receivable.paid_fen != 0
    {
        return Err(format!("unconfirmed receivable {id} has payments"));
    }
    if receivable.parts_created > PARTS_PER_RECEIVABLE_MAX {
        return Err(format!("receivable {id} has too many parts"));
    }
    let mut sum_fen: u64 = 0;
    for part in 0..=receivable.parts_created {
        let unit = units
            .get(&(id.to_owned(), part))
            .ok_or_else(|| format!("unit {id}#{part} is missing"))?;
        let expected_id = if part == 0 {
            id.to_owned()
        } else {
            format!("{id}#{part}")
        };
        if unit.unit_id != expected_id || unit.receivable_id != id {
            return Err(format!(
                "unit {expected_id} names itself {} of {}",
                unit.unit_id, unit.receivable_id
            ));
        }
        if unit.amount_fen == 0 {
            return Err(format!("unit {expected_id} has a zero amount"));
        }
        if Uscc::parse(&unit.holder_uscc).is_err() {
            return Err(format!("unit {expected_id} has an invalid holder"));
        }
        if part == 0 {
            if !unit.parent_unit_id.is_empty() {
                return Err(format!("root unit {id} has a parent"));
            }
        } else {
            let parent = UnitId::parse("parent_unit_id", &unit.parent_unit_id)
                .map_err(|e| format!("unit {expected_id} has a malformed parent: {e}"))?;
            if parent.receivable_id.as_str() != id || parent.part >= part {
                return Err(format!(
                    "unit {expected_id} has parent {} outside its receivable or not before it",
                    unit.parent_unit_id
                ));
            }
        }
        sum_fen = sum_fen
            .checked_add(unit.amount_fen)
            .ok_or_else(|| format!("unit amounts of {id} overflow"))?;
        if let Some(financing) = &unit.financing {
            if status != ReceivableStatus::Confirmed {
                return Err(format!(
                    "unit {expected_id} of a {} receivable has a financing",
                    status.as_str_name()
                ));
            }
            if financing.kind() == FinancingKind::Unspecified
                || Uscc::parse(&financing.financier_uscc).is_err()
                || financing.amount_fen == 0
                || financing.amount_fen > unit.amount_fen
            {
                return Err(format!(
                    "unit {expected_id} has an invalid financing {financing:?} for {} fen",
                    unit.amount_fen
                ));
            }
            if financing.priority == 0 || !priorities.insert(financing.priority) {
                return Err(format!(
                    "financing priority {} of unit {expected_id} is zero or not unique",
                    financing.priority
                ));
            }
        }
    }
    if sum_fen != receivable.face_fen {
        return Err(format!(
            "units of {id} add up to {sum_fen} fen, face is {} fen",
            receivable.face_fen
        ));
    }
    Ok(())
}

fn audit_invoices(
    state: &dyn StateScan,
    receivables: &BTreeMap<String, v1::ReceivableRecord>,
) -> Result<(), String> {
    let mut index = BTreeMap::new();
    for (key, value) in state.scan_prefix(keys::INVOICES_PREFIX, usize::MAX) {
        let invoice = key[keys::INVOICES_PREFIX.len()..].to_vec();
        let owner = String::from_utf8(value)
            .map_err(|_| format!("invoice entry {key:?} holds a non-text id"))?;
        let receivable = receivables
            .get(&owner)
            .ok_or_else(|| format!("invoice entry {key:?} points to unknown {owner}"))?;
        if receivable.status() == ReceivableStatus::Cancelled {
            return Err(format!("invoice entry {key:?} points to cancelled {owner}"));
        }
        if !receivable.invoice_hashes.contains(&invoice) {
            return Err(format!(
                "invoice entry {key:?} points to {owner}, which does not list it"
            ));
        }
        index.insert(invoice, owner);
    }
    let mut seen: BTreeMap<&[u8], &str> = BTreeMap::new();
    for (id, receivable) in receivables {
        if receivable.status() == ReceivableStatus::Cancelled {
            continue;
        }
        for invoice in &receivable.invoice_hashes {
            if let Some(other) = seen.insert(invoice.as_slice(), id.as_str()) {
                return Err(format!(
                    "receivables {other} and {id} share an invoice, neither cancelled"
                ));
            }
            if index.get(invoice) != Some(id) {
                return Err(format!("an invoice of {id} is not indexed to it"));
            }
        }
    }
    Ok(())
}
