//! The private-fund share registry of the regional equity markets (DOMAIN.md, ledger 3): funds,
//! the holdings a market keeps in custody, fund-share pledges and court freezes.
//!
//! It owns the records under `f/` (`FundRecord`, `HoldingRecord`, `FundPledgeRecord`,
//! `FreezeRecord`) and the sequences `FUND_PLEDGE` and `FREEZE`; it draws pledge priorities from
//! the chain-wide `FINANCING_PRIORITY` sequence it shares with the receivables registry.
//!
//! Invariants kept here (checked by [`audit`]):
//! - invariant 4: for every holding, `pledged_units + frozen_units <= units`; the free units are
//!   `units - pledged_units - frozen_units`, and transfers, new pledges and new freezes take free
//!   units only;
//! - the units of a fund's holdings add up to its `issued_units`, which never exceed its
//!   `total_units`;
//! - a holding's `pledged_units` is the sum of the units of its ACTIVE pledges and its
//!   `frozen_units` the sum of the units of its active freezes;
//! - a holding with no units is removed, so every stored holding has at least one unit;
//! - an ACTIVE pledge holds at least one unit, an ENFORCED one none; pledge priorities grow with
//!   pledge ids (registration order);
//! - every pledge and freeze refers to a registered fund, every fund's registrar is an equity
//!   market, and every manager, holder, pledgor and pledgee is a member.
//!
//! Rules (where DOMAIN.md is silent, the choice is written here):
//! - `RegisterFund`: the acting organisation (first signer, role `REGISTRAR`: an equity market)
//!   becomes the fund's registrar; the manager must be a member; the fund id is unique; the fund
//!   starts with no units issued.
//! - `RegisterHolding`: only the fund's registrar (a key with the role `REGISTRAR` of another
//!   market gets `NOT_FUND_REGISTRAR`); the holder must be a member; `issued + units <= total`;
//!   the units are added to the holder's holding (created if absent).
//! - `TransferFundUnits`: the holder (first signer, role `ENTERPRISE`) moves free units to
//!   another member, countersigned by the fund's registrar. Pledged units never move by a
//!   transfer (Civil Code art. 443: only enforcement, which needs the pledgee, moves them);
//!   frozen units never move at all.
//! - `PledgeFundUnits`: the pledgor (`ENTERPRISE`), the pledgee (`FINANCIER`) and the fund's
//!   registrar (`REGISTRAR`) all sign, in any order; only free units are pledged, so a freeze
//!   blocks new pledges of the frozen units. The pledge id comes from the `FUND_PLEDGE`
//!   sequence and the priority from `FINANCING_PRIORITY` (registration order on the chain:
//!   lower is earlier, and earlier has priority). The receipt names the pledge id.
//! - `ReleaseFundPledge`: only the pledgee (first signer, role `FINANCIER`) releases an ACTIVE
//!   pledge; its units become free again. A RELEASED pledge keeps in `units` what was still
//!   pledged when it was released, as a record; only ACTIVE pledges count in `pledged_units`.
//! - `EnforceFundPledge`: the pledgee (`FINANCIER`) and the fund's registrar sign; part or all
//!   of an ACTIVE pledge's units move from the pledgor's holding (units and pledged units both
//!   decrease) to the recipient, who is the pledgee or a buyer (any member other than the
//!   pledgor), as free units. The pledge keeps the units not yet enforced and becomes ENFORCED
//!   when none remain. Enforcement is allowed on a holding that is partly frozen: pledged and
//!   frozen units are disjoint, so a freeze never covers pledged units. Priority: each pledge
//!   reserves its own units when it is registered and no later pledge, freeze or transfer can
//!   take them, so an earlier-registered pledge (lower priority number) is never blocked or
//!   diminished by a later one.
//! - `FreezeFundUnits`: the first signer is a regulator (`SUPERVISOR`) or the fund's registrar
//!   (`REGISTRAR`; another market gets `NOT_FUND_REGISTRAR`); a court reference is required;
//!   only free units are frozen (a freeze never covers pledged units). The receipt names the
//!   freeze id, from the `FREEZE` sequence.
//! - `UnfreezeFundUnits`: a regulator or the fund's registrar lifts an active freeze as a whole
//!   (any of them may lift a freeze made by another); the freeze record stays, inactive.
//! - Order of checks: the acting role and the signatures of parties the transaction names
//!   first, then the records it names (fund, pledge, freeze), then the signatures of parties
//!   those records name (the fund's registrar, a pledge's pledgee), then the state-dependent
//!   rules. Self-transfers and enforcement back to the pledgor are rejected with
//!   `SELF_TRANSFER`.
//! - A stored record that holds an invalid code is a corrupt state: the block fails with
//!   `ChaincodeError::CorruptState` and the node stops (see `TxContext::stored_uscc`);
//!   [`audit`] reports it too.

use std::collections::BTreeMap;

use prost::Message;
use yrd_proto::v1::{self, PledgeStatus, ReasonCode};

use crate::exec::{Outcome, Rejection, TxContext};
use crate::keys::{self, sequences};
use crate::state::{StateRead, StateScan};
use crate::transaction::{Action, Identifier, Role};
use crate::uscc::Uscc;

/// Prefix of every `FundRecord` (`keys::fund`).
const FUNDS_PREFIX: &[u8] = b"f/f/";
/// Prefix of every `HoldingRecord` (`keys::holding`).
const HOLDINGS_PREFIX: &[u8] = b"f/h/";
/// Prefix of every `FundPledgeRecord` (`keys::fund_pledge`).
const PLEDGES_PREFIX: &[u8] = b"f/p/";
/// Prefix of every `FreezeRecord` (`keys::freeze`).
const FREEZES_PREFIX: &[u8] = b"f/z/";

// ---------------------------------------------------------------- helpers

fn overflow(what: impl std::fmt::Display) -> Rejection {
    Rejection::new(
        ReasonCode::ReasonArithmeticOverflow,
        format!("{what} overflows"),
    )
}

/// The free units of a holding, `units - pledged_units - frozen_units`, or `None` when the
/// holding breaks invariant 4.
#[must_use]
pub fn free_units(holding: &v1::HoldingRecord) -> Option<u64> {
    holding
        .pledged_units
        .checked_add(holding.frozen_units)
        .and_then(|encumbered| holding.units.checked_sub(encumbered))
}

/// Requires `units` free units in `holding`.
fn require_free_units(holding: &v1::HoldingRecord, units: u64, doing: &str) -> Outcome<()> {
    let free = free_units(holding).ok_or_else(|| {
        overflow(format_args!(
            "the free units of {} in fund {}",
            holding.holder_uscc, holding.fund_id
        ))
    })?;
    if units > free {
        return Err(Rejection::new(
            ReasonCode::ReasonInsufficientFreeUnits,
            format!(
                "cannot {doing} {units} units of {} in fund {}: {free} free of {} held \
                 ({} pledged, {} frozen)",
                holding.holder_uscc,
                holding.fund_id,
                holding.units,
                holding.pledged_units,
                holding.frozen_units
            ),
        ));
    }
    Ok(())
}

fn require_fund(context: &mut TxContext<'_>, fund_id: &str) -> Outcome<v1::FundRecord> {
    context.get(&keys::fund(fund_id)).ok_or_else(|| {
        Rejection::new(
            ReasonCode::ReasonFundNotFound,
            format!("fund {fund_id:?} is not registered"),
        )
    })
}

fn require_holding(
    context: &mut TxContext<'_>,
    fund_id: &str,
    holder: &str,
) -> Outcome<v1::HoldingRecord> {
    context.get(&keys::holding(fund_id, holder)).ok_or_else(|| {
        Rejection::new(
            ReasonCode::ReasonHoldingNotFound,
            format!("{holder} holds no units of fund {fund_id:?}"),
        )
    })
}

fn require_pledge(context: &mut TxContext<'_>, pledge_id: u64) -> Outcome<v1::FundPledgeRecord> {
    context.get(&keys::fund_pledge(pledge_id)).ok_or_else(|| {
        Rejection::new(
            ReasonCode::ReasonPledgeNotFound,
            format!("fund pledge {pledge_id} does not exist"),
        )
    })
}

fn require_active_pledge(pledge: &v1::FundPledgeRecord) -> Outcome<()> {
    if pledge.status() != PledgeStatus::Active {
        return Err(Rejection::new(
            ReasonCode::ReasonPledgeNotActive,
            format!(
                "fund pledge {} is {}",
                pledge.pledge_id,
                pledge.status().as_str_name()
            ),
        ));
    }
    Ok(())
}

fn require_freeze(context: &mut TxContext<'_>, freeze_id: u64) -> Outcome<v1::FreezeRecord> {
    context.get(&keys::freeze(freeze_id)).ok_or_else(|| {
        Rejection::new(
            ReasonCode::ReasonFreezeNotFound,
            format!("freeze {freeze_id} does not exist"),
        )
    })
}

/// Requires that the fund's registrar countersigned with a `REGISTRAR` key.
fn require_registrar_signature(context: &TxContext<'_>, fund: &v1::FundRecord) -> Outcome<()> {
    let registrar = context.stored_uscc("registrar", &fund.registrar_uscc)?;
    context.require_signature(&registrar, Role::Registrar)
}

/// Requires that `market` is the fund's registrar.
fn require_fund_registrar(market: &Uscc, fund: &v1::FundRecord) -> Outcome<()> {
    if market.as_str() != fund.registrar_uscc {
        return Err(Rejection::new(
            ReasonCode::ReasonNotFundRegistrar,
            format!(
                "{market} is not the registrar of fund {:?} ({})",
                fund.fund_id, fund.registrar_uscc
            ),
        ));
    }
    Ok(())
}

/// Writes a holding, or removes it when it has no units left.
fn put_holding(context: &mut TxContext<'_>, holding: &v1::HoldingRecord) {
    let key = keys::holding(&holding.fund_id, &holding.holder_uscc);
    if holding.units == 0 {
        context.delete(key);
    } else {
        context.put(key, holding);
    }
}

/// Adds free units to a holder's holding, creating it if absent.
fn add_free_units(
    context: &mut TxContext<'_>,
    fund_id: &str,
    holder: &Uscc,
    units: u64,
) -> Outcome<()> {
    let mut holding = context
        .get::<v1::HoldingRecord>(&keys::holding(fund_id, holder.as_str()))
        .unwrap_or_else(|| v1::HoldingRecord {
            fund_id: fund_id.to_owned(),
            holder_uscc: holder.as_str().to_owned(),
            ..v1::HoldingRecord::default()
        });
    holding.units = holding
        .units
        .checked_add(units)
        .ok_or_else(|| overflow(format_args!("the units of {holder} in fund {fund_id:?}")))?;
    put_holding(context, &holding);
    Ok(())
}

fn reject_self_transfer(from: &Uscc, to: &Uscc, what: &str) -> Outcome<()> {
    if from == to {
        return Err(Rejection::new(
            ReasonCode::ReasonSelfTransfer,
            format!("{what}: {to} would receive its own units"),
        ));
    }
    Ok(())
}

/// Who may freeze and unfreeze: a regulator, or an equity market (which must be the fund's
/// registrar, checked once the fund is known).
enum FreezeAuthority {
    Regulator,
    Market(Uscc),
}

fn freeze_authority(context: &TxContext<'_>) -> Outcome<FreezeAuthority> {
    if context.acting(Role::Supervisor).is_ok() {
        return Ok(FreezeAuthority::Regulator);
    }
    match context.acting(Role::Registrar) {
        Ok(market) => Ok(FreezeAuthority::Market(market)),
        Err(rejection) if rejection.reason == ReasonCode::ReasonMissingSignature => Err(rejection),
        Err(_) => Err(Rejection::new(
            ReasonCode::ReasonRoleNotPermitted,
            "the first signing key must hold the role ROLE_SUPERVISOR or ROLE_REGISTRAR",
        )),
    }
}

fn check_freeze_authority(authority: &FreezeAuthority, fund: &v1::FundRecord) -> Outcome<()> {
    match authority {
        FreezeAuthority::Regulator => Ok(()),
        FreezeAuthority::Market(market) => require_fund_registrar(market, fund),
    }
}

// ---------------------------------------------------------------- rules

/// Applies an action of the fund-share registry.
pub(crate) fn apply(context: &mut TxContext<'_>, action: Action) -> Outcome<()> {
    match action {
        Action::RegisterFund {
            fund_id,
            manager,
            filing_number,
            total_units,
        } => register_fund(context, &fund_id, &manager, filing_number, total_units),
        Action::RegisterHolding {
            fund_id,
            holder,
            units,
        } => register_holding(context, &fund_id, &holder, units),
        Action::TransferFundUnits { fund_id, to, units } => {
            transfer_units(context, &fund_id, &to, units)
        }
        Action::PledgeFundUnits {
            fund_id,
            pledgor,
            pledgee,
            units,
        } => pledge_units(context, &fund_id, &pledgor, &pledgee, units),
        Action::ReleaseFundPledge { pledge_id } => release_pledge(context, pledge_id),
        Action::EnforceFundPledge {
            pledge_id,
            to,
            units,
        } => enforce_pledge(context, pledge_id, &to, units),
        Action::FreezeFundUnits {
            fund_id,
            holder,
            units,
            court_reference,
        } => freeze_units(context, &fund_id, &holder, units, court_reference),
        Action::UnfreezeFundUnits { freeze_id } => unfreeze_units(context, freeze_id),
        _ => unreachable!("funds::apply is only given fund-share actions"),
    }
}

fn register_fund(
    context: &mut TxContext<'_>,
    fund_id: &Identifier,
    manager: &Uscc,
    filing_number: String,
    total_units: u64,
) -> Outcome<()> {
    let registrar = context.acting(Role::Registrar)?;
    context.require_member(manager)?;
    if context.exists(&keys::fund(fund_id.as_str())) {
        return Err(Rejection::new(
            ReasonCode::ReasonFundExists,
            format!("fund {fund_id} is already registered"),
        ));
    }
    let record = v1::FundRecord {
        fund_id: fund_id.as_str().to_owned(),
        registrar_uscc: registrar.as_str().to_owned(),
        manager_uscc: manager.as_str().to_owned(),
        filing_number,
        total_units,
        issued_units: 0,
        registered: Some(context.provenance()),
    };
    context.put(keys::fund(fund_id.as_str()), &record);
    Ok(())
}

fn register_holding(
    context: &mut TxContext<'_>,
    fund_id: &Identifier,
    holder: &Uscc,
    units: u64,
) -> Outcome<()> {
    let market = context.acting(Role::Registrar)?;
    let mut fund = require_fund(context, fund_id.as_str())?;
    require_fund_registrar(&market, &fund)?;
    context.require_member(holder)?;
    let issued = fund
        .issued_units
        .checked_add(units)
        .ok_or_else(|| overflow(format_args!("the issued units of fund {fund_id}")))?;
    if issued > fund.total_units {
        return Err(Rejection::new(
            ReasonCode::ReasonUnitsExceedTotal,
            format!(
                "fund {fund_id} has {} of {} units issued; {units} more would exceed the total",
                fund.issued_units, fund.total_units
            ),
        ));
    }
    fund.issued_units = issued;
    context.put(keys::fund(fund_id.as_str()), &fund);
    add_free_units(context, fund_id.as_str(), holder, units)
}

fn transfer_units(
    context: &mut TxContext<'_>,
    fund_id: &Identifier,
    to: &Uscc,
    units: u64,
) -> Outcome<()> {
    let holder = context.acting(Role::Enterprise)?;
    let fund = require_fund(context, fund_id.as_str())?;
    require_registrar_signature(context, &fund)?;
    reject_self_transfer(&holder, to, "transfer")?;
    context.require_member(to)?;
    let mut from = require_holding(context, fund_id.as_str(), holder.as_str())?;
    require_free_units(&from, units, "transfer")?;
    from.units = from
        .units
        .checked_sub(units)
        .ok_or_else(|| overflow(format_args!("the units of {holder} in fund {fund_id}")))?;
    put_holding(context, &from);
    add_free_units(context, fund_id.as_str(), to, units)
}

fn pledge_units(
    context: &mut TxContext<'_>,
    fund_id: &Identifier,
    pledgor: &Uscc,
    pledgee: &Uscc,
    units: u64,
) -> Outcome<()> {
    context.require_signature(pledgor, Role::Enterprise)?;
    context.require_signature(pledgee, Role::Financier)?;
    let fund = require_fund(context, fund_id.as_str())?;
    require_registrar_signature(context, &fund)?;
    let mut holding = require_holding(context, fund_id.as_str(), pledgor.as_str())?;
    require_free_units(&holding, units, "pledge")?;
    holding.pledged_units = holding
        .pledged_units
        .checked_add(units)
        .ok_or_else(|| overflow(format_args!("the pledged units of {pledgor}")))?;
    let pledge_id = context.next_sequence(sequences::FUND_PLEDGE);
    let priority = context.next_sequence(sequences::FINANCING_PRIORITY);
    let record = v1::FundPledgeRecord {
        pledge_id,
        fund_id: fund_id.as_str().to_owned(),
        pledgor_uscc: pledgor.as_str().to_owned(),
        pledgee_uscc: pledgee.as_str().to_owned(),
        units,
        status: PledgeStatus::Active as i32,
        priority,
        registered: Some(context.provenance()),
    };
    context.put(keys::fund_pledge(pledge_id), &record);
    put_holding(context, &holding);
    context.created_id = pledge_id.to_string();
    Ok(())
}

fn release_pledge(context: &mut TxContext<'_>, pledge_id: u64) -> Outcome<()> {
    let financier = context.acting(Role::Financier)?;
    let mut pledge = require_pledge(context, pledge_id)?;
    if financier.as_str() != pledge.pledgee_uscc {
        return Err(Rejection::new(
            ReasonCode::ReasonNotPledgee,
            format!(
                "{financier} is not the pledgee of fund pledge {pledge_id} ({})",
                pledge.pledgee_uscc
            ),
        ));
    }
    require_active_pledge(&pledge)?;
    let mut holding = require_holding(context, &pledge.fund_id, &pledge.pledgor_uscc)?;
    holding.pledged_units = holding
        .pledged_units
        .checked_sub(pledge.units)
        .ok_or_else(|| overflow(format_args!("the pledged units of {}", pledge.pledgor_uscc)))?;
    pledge.set_status(PledgeStatus::Released);
    put_holding(context, &holding);
    context.put(keys::fund_pledge(pledge_id), &pledge);
    Ok(())
}

fn enforce_pledge(
    context: &mut TxContext<'_>,
    pledge_id: u64,
    to: &Uscc,
    units: u64,
) -> Outcome<()> {
    let mut pledge = require_pledge(context, pledge_id)?;
    let fund = require_fund(context, &pledge.fund_id)?;
    let pledgee = context.stored_uscc("pledgee", &pledge.pledgee_uscc)?;
    let pledgor = context.stored_uscc("pledgor", &pledge.pledgor_uscc)?;
    context.require_signature(&pledgee, Role::Financier)?;
    require_registrar_signature(context, &fund)?;
    require_active_pledge(&pledge)?;
    if units > pledge.units {
        return Err(Rejection::new(
            ReasonCode::ReasonExceedsPledgedUnits,
            format!(
                "cannot enforce {units} units: fund pledge {pledge_id} holds {}",
                pledge.units
            ),
        ));
    }
    reject_self_transfer(&pledgor, to, "enforcement")?;
    context.require_member(to)?;
    let mut from = require_holding(context, &pledge.fund_id, pledgor.as_str())?;
    let what = || {
        overflow(format_args!(
            "the units of {pledgor} in fund {}",
            pledge.fund_id
        ))
    };
    from.units = from.units.checked_sub(units).ok_or_else(what)?;
    from.pledged_units = from.pledged_units.checked_sub(units).ok_or_else(what)?;
    put_holding(context, &from);
    add_free_units(context, &pledge.fund_id, to, units)?;
    pledge.units = pledge
        .units
        .checked_sub(units)
        .ok_or_else(|| overflow(format_args!("the units of fund pledge {pledge_id}")))?;
    if pledge.units == 0 {
        pledge.set_status(PledgeStatus::Enforced);
    }
    context.put(keys::fund_pledge(pledge_id), &pledge);
    Ok(())
}

fn freeze_units(
    context: &mut TxContext<'_>,
    fund_id: &Identifier,
    holder: &Uscc,
    units: u64,
    court_reference: String,
) -> Outcome<()> {
    let authority = freeze_authority(context)?;
    let fund = require_fund(context, fund_id.as_str())?;
    check_freeze_authority(&authority, &fund)?;
    let mut holding = require_holding(context, fund_id.as_str(), holder.as_str())?;
    require_free_units(&holding, units, "freeze")?;
    holding.frozen_units = holding
        .frozen_units
        .checked_add(units)
        .ok_or_else(|| overflow(format_args!("the frozen units of {holder}")))?;
    let freeze_id = context.next_sequence(sequences::FREEZE);
    let record = v1::FreezeRecord {
        freeze_id,
        fund_id: fund_id.as_str().to_owned(),
        holder_uscc: holder.as_str().to_owned(),
        units,
        court_reference,
        active: true,
        registered: Some(context.provenance()),
    };
    context.put(keys::freeze(freeze_id), &record);
    put_holding(context, &holding);
    context.created_id = freeze_id.to_string();
    Ok(())
}

fn unfreeze_units(context: &mut TxContext<'_>, freeze_id: u64) -> Outcome<()> {
    let authority = freeze_authority(context)?;
    let mut freeze = require_freeze(context, freeze_id)?;
    let fund = require_fund(context, &freeze.fund_id)?;
    check_freeze_authority(&authority, &fund)?;
    if !freeze.active {
        return Err(Rejection::new(
            ReasonCode::ReasonFreezeNotActive,
            format!("freeze {freeze_id} was already lifted"),
        ));
    }
    let mut holding = require_holding(context, &freeze.fund_id, &freeze.holder_uscc)?;
    holding.frozen_units = holding
        .frozen_units
        .checked_sub(freeze.units)
        .ok_or_else(|| overflow(format_args!("the frozen units of {}", freeze.holder_uscc)))?;
    freeze.active = false;
    put_holding(context, &holding);
    context.put(keys::freeze(freeze_id), &freeze);
    Ok(())
}

// ---------------------------------------------------------------- views

fn read<M: Message + Default>(state: &(impl StateRead + ?Sized), key: &[u8]) -> Option<M> {
    state
        .get(key)
        .and_then(|bytes| M::decode(bytes.as_slice()).ok())
}

/// The record of a fund, if registered.
#[must_use]
pub fn fund(state: &dyn StateRead, fund_id: &str) -> Option<v1::FundRecord> {
    read(state, &keys::fund(fund_id))
}

/// The holding of `holder` in a fund, if it holds units of it.
#[must_use]
pub fn holding(state: &dyn StateRead, fund_id: &str, holder: &str) -> Option<v1::HoldingRecord> {
    read(state, &keys::holding(fund_id, holder))
}

/// A fund-share pledge, whatever its status.
#[must_use]
pub fn pledge(state: &dyn StateRead, pledge_id: u64) -> Option<v1::FundPledgeRecord> {
    read(state, &keys::fund_pledge(pledge_id))
}

/// A freeze, active or lifted.
#[must_use]
pub fn freeze(state: &dyn StateRead, freeze_id: u64) -> Option<v1::FreezeRecord> {
    read(state, &keys::freeze(freeze_id))
}

/// A fund as the node serves it: its record, its holdings in holder order, and every pledge and
/// freeze of its units ever registered (whatever their status), in id order. `None` if the fund
/// is not registered.
///
/// Pledges and freezes are found by scanning every pledge and freeze of the chain and keeping
/// those of the fund: linear in the number of pledges and freezes, acceptable at the volumes of
/// a regional market.
#[must_use]
pub fn fund_view(state: &dyn StateScan, fund_id: &str) -> Option<v1::FundView> {
    let fund: v1::FundRecord = read(state, &keys::fund(fund_id))?;
    let holdings = state
        .scan_prefix(&keys::holdings_of_fund(fund_id), usize::MAX)
        .into_iter()
        .filter_map(|(_, value)| v1::HoldingRecord::decode(value.as_slice()).ok())
        .collect();
    let pledges = state
        .scan_prefix(PLEDGES_PREFIX, usize::MAX)
        .into_iter()
        .filter_map(|(_, value)| v1::FundPledgeRecord::decode(value.as_slice()).ok())
        .filter(|pledge| pledge.fund_id == fund_id)
        .collect();
    let freezes = state
        .scan_prefix(FREEZES_PREFIX, usize::MAX)
        .into_iter()
        .filter_map(|(_, value)| v1::FreezeRecord::decode(value.as_slice()).ok())
        .filter(|freeze| freeze.fund_id == fund_id)
        .collect();
    Some(v1::FundView {
        fund: Some(fund),
        holdings,
        pledges,
        freezes,
    })
}

// ---------------------------------------------------------------- audit

fn decode<M: Message + Default>(kind: &str, key: &[u8], value: &[u8]) -> Result<M, String> {
    M::decode(value).map_err(|error| {
        format!(
            "{kind} under {:?} does not decode: {error}",
            String::from_utf8_lossy(key)
        )
    })
}

fn sequence_value(state: &dyn StateScan, name: &str) -> Result<u64, String> {
    match state.get(&keys::sequence(name)) {
        None => Ok(0),
        Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| format!("sequence {name} is not 8 bytes")),
    }
}

fn require_member_record(state: &dyn StateScan, uscc: &str, role: &str) -> Result<(), String> {
    if state.get(&keys::member(uscc)).is_none() {
        return Err(format!("the {role} {uscc} is not a member"));
    }
    Ok(())
}

fn add_to(
    sums: &mut BTreeMap<(String, String), u64>,
    fund_id: &str,
    holder: &str,
    units: u64,
    what: &str,
) -> Result<(), String> {
    let sum = sums
        .entry((fund_id.to_owned(), holder.to_owned()))
        .or_insert(0);
    *sum = sum
        .checked_add(units)
        .ok_or_else(|| format!("{what} of {holder} in fund {fund_id} overflow"))?;
    Ok(())
}

/// Checks every invariant of the fund-share registry over the whole state (see the module
/// documentation); returns a message naming the first violation found.
pub fn audit(state: &dyn StateScan) -> Result<(), String> {
    let mut funds: BTreeMap<String, v1::FundRecord> = BTreeMap::new();
    for (key, value) in state.scan_prefix(FUNDS_PREFIX, usize::MAX) {
        let fund: v1::FundRecord = decode("fund", &key, &value)?;
        if key != keys::fund(&fund.fund_id) {
            return Err(format!("fund {:?} is stored under {key:?}", fund.fund_id));
        }
        if fund.total_units == 0 || fund.issued_units > fund.total_units {
            return Err(format!(
                "fund {:?} has {} of {} units issued",
                fund.fund_id, fund.issued_units, fund.total_units
            ));
        }
        match read::<v1::MemberRecord>(state, &keys::member(&fund.registrar_uscc)) {
            Some(member) if member.kind() == v1::MemberKind::EquityMarket => {}
            _ => {
                return Err(format!(
                    "the registrar {} of fund {:?} is not an equity market",
                    fund.registrar_uscc, fund.fund_id
                ))
            }
        }
        require_member_record(state, &fund.manager_uscc, "manager")?;
        funds.insert(fund.fund_id.clone(), fund);
    }

    let mut issued: BTreeMap<String, u64> = BTreeMap::new();
    let mut holdings: BTreeMap<(String, String), v1::HoldingRecord> = BTreeMap::new();
    for (key, value) in state.scan_prefix(HOLDINGS_PREFIX, usize::MAX) {
        let holding: v1::HoldingRecord = decode("holding", &key, &value)?;
        let name = format!(
            "holding of {} in fund {:?}",
            holding.holder_uscc, holding.fund_id
        );
        if key != keys::holding(&holding.fund_id, &holding.holder_uscc) {
            return Err(format!("{name} is stored under {key:?}"));
        }
        if !funds.contains_key(&holding.fund_id) {
            return Err(format!("{name} refers to a fund that is not registered"));
        }
        require_member_record(state, &holding.holder_uscc, "holder")?;
        if holding.units == 0 {
            return Err(format!("{name} has no units but is still stored"));
        }
        if free_units(&holding).is_none() {
            return Err(format!(
                "invariant 4: {name} has {} pledged + {} frozen units, more than the {} held",
                holding.pledged_units, holding.frozen_units, holding.units
            ));
        }
        let sum = issued.entry(holding.fund_id.clone()).or_insert(0);
        *sum = sum
            .checked_add(holding.units)
            .ok_or_else(|| format!("the holdings of fund {:?} overflow", holding.fund_id))?;
        holdings.insert(
            (holding.fund_id.clone(), holding.holder_uscc.clone()),
            holding,
        );
    }
    for (fund_id, fund) in &funds {
        let held = issued.get(fund_id).copied().unwrap_or(0);
        if held != fund.issued_units {
            return Err(format!(
                "the holdings of fund {fund_id:?} add up to {held} units, but {} are issued",
                fund.issued_units
            ));
        }
    }

    let mut pledged: BTreeMap<(String, String), u64> = BTreeMap::new();
    let last_pledge_id = sequence_value(state, sequences::FUND_PLEDGE)?;
    let mut last_priority = 0u64;
    for (key, value) in state.scan_prefix(PLEDGES_PREFIX, usize::MAX) {
        let pledge: v1::FundPledgeRecord = decode("fund pledge", &key, &value)?;
        let name = format!("fund pledge {}", pledge.pledge_id);
        if key != keys::fund_pledge(pledge.pledge_id) {
            return Err(format!("{name} is stored under {key:?}"));
        }
        if pledge.pledge_id == 0 || pledge.pledge_id > last_pledge_id {
            return Err(format!(
                "{name} was not issued by the sequence (last issued {last_pledge_id})"
            ));
        }
        if !funds.contains_key(&pledge.fund_id) {
            return Err(format!(
                "{name} refers to unregistered fund {:?}",
                pledge.fund_id
            ));
        }
        if pledge.pledgor_uscc == pledge.pledgee_uscc {
            return Err(format!("{name} has the same pledgor and pledgee"));
        }
        require_member_record(state, &pledge.pledgor_uscc, "pledgor")?;
        require_member_record(state, &pledge.pledgee_uscc, "pledgee")?;
        if pledge.priority <= last_priority {
            return Err(format!(
                "{name} has priority {}, not after the previous pledge's {last_priority}",
                pledge.priority
            ));
        }
        last_priority = pledge.priority;
        match PledgeStatus::try_from(pledge.status) {
            Ok(PledgeStatus::Active) => {
                if pledge.units == 0 {
                    return Err(format!("{name} is active with no units"));
                }
                add_to(
                    &mut pledged,
                    &pledge.fund_id,
                    &pledge.pledgor_uscc,
                    pledge.units,
                    "the active pledges",
                )?;
            }
            Ok(PledgeStatus::Enforced) => {
                if pledge.units != 0 {
                    return Err(format!(
                        "{name} is enforced but holds {} units",
                        pledge.units
                    ));
                }
            }
            Ok(PledgeStatus::Released) => {}
            Ok(PledgeStatus::Unspecified) | Err(_) => {
                return Err(format!("{name} has no valid status ({})", pledge.status));
            }
        }
    }

    let mut frozen: BTreeMap<(String, String), u64> = BTreeMap::new();
    let last_freeze_id = sequence_value(state, sequences::FREEZE)?;
    for (key, value) in state.scan_prefix(FREEZES_PREFIX, usize::MAX) {
        let freeze: v1::FreezeRecord = decode("freeze", &key, &value)?;
        let name = format!("freeze {}", freeze.freeze_id);
        if key != keys::freeze(freeze.freeze_id) {
            return Err(format!("{name} is stored under {key:?}"));
        }
        if freeze.freeze_id == 0 || freeze.freeze_id > last_freeze_id {
            return Err(format!(
                "{name} was not issued by the sequence (last issued {last_freeze_id})"
            ));
        }
        if !funds.contains_key(&freeze.fund_id) {
            return Err(format!(
                "{name} refers to unregistered fund {:?}",
                freeze.fund_id
            ));
        }
        if freeze.units == 0 || freeze.court_reference.is_empty() {
            return Err(format!("{name} has no units or no court reference"));
        }
        if freeze.active {
            add_to(
                &mut frozen,
                &freeze.fund_id,
                &freeze.holder_uscc,
                freeze.units,
                "the active freezes",
            )?;
        }
    }

    for ((fund_id, holder), holding) in &holdings {
        let pledge_sum = pledged
            .get(&(fund_id.clone(), holder.clone()))
            .copied()
            .unwrap_or(0);
        if holding.pledged_units != pledge_sum {
            return Err(format!(
                "holding of {holder} in fund {fund_id:?} has {} pledged units, its active \
                 pledges hold {pledge_sum}",
                holding.pledged_units
            ));
        }
        let freeze_sum = frozen
            .get(&(fund_id.clone(), holder.clone()))
            .copied()
            .unwrap_or(0);
        if holding.frozen_units != freeze_sum {
            return Err(format!(
                "holding of {holder} in fund {fund_id:?} has {} frozen units, its active \
                 freezes hold {freeze_sum}",
                holding.frozen_units
            ));
        }
    }
    for (what, sums) in [("active pledges", &pledged), ("active freezes", &frozen)] {
        if let Some((fund_id, holder)) = sums.keys().find(|key| !holdings.contains_key(*key)) {
            return Err(format!(
                "{what} on {holder} in fund {fund_id:?}, which holds no units of it"
            ));
        }
    }
    Ok(())
}
