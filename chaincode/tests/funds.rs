//! Rules of the private-fund share registry (DOMAIN.md, ledger 3, and invariant 4): each
//! accepted when it should be and rejected, with its reason code and no writes, when it should
//! not. `funds::audit` runs after every transaction these tests submit.

use yrd_chaincode::funds;
use yrd_chaincode::keys;
use yrd_chaincode::testkit::{
    assert_accepted, assert_rejected, submit_and_writes, test_uscc, Harness, Party,
};
use yrd_chaincode::WriteSet;
use yrd_proto::v1::{self, transaction_body::Action, PledgeStatus, ReasonCode};
use yrd_proto::Message;

const FUND: &str = "FUND-1";
const TOTAL: u64 = 10_000;
const COURT: &str = "(2026) Hu 0115 Zhi Bao 123";

/// The standard parties, cloned out of the harness so it can be borrowed mutably.
struct Parties {
    bank_a: Party,
    bank_b: Party,
    bureau: Party,
    market: Party,
    market_b: Party,
    core: Party,
    supplier: Party,
    supplier_b: Party,
    regulator: Party,
}

fn parties(harness: &Harness) -> Parties {
    Parties {
        bank_a: harness.bank_a.clone(),
        bank_b: harness.bank_b.clone(),
        bureau: harness.bureau.clone(),
        market: harness.market.clone(),
        market_b: harness.market_b.clone(),
        core: harness.core.clone(),
        supplier: harness.supplier.clone(),
        supplier_b: harness.supplier_b.clone(),
        regulator: harness.regulator.clone(),
    }
}

// ---------------------------------------------------------------- actions

fn register_fund(fund_id: &str, manager: &str, total_units: u64) -> Action {
    Action::RegisterFund(v1::RegisterFund {
        fund_id: fund_id.to_owned(),
        manager_uscc: manager.to_owned(),
        filing_number: "SXX123".to_owned(),
        total_units,
    })
}

fn register_holding(fund_id: &str, holder: &str, units: u64) -> Action {
    Action::RegisterHolding(v1::RegisterHolding {
        fund_id: fund_id.to_owned(),
        holder_uscc: holder.to_owned(),
        units,
    })
}

fn transfer(to: &str, units: u64) -> Action {
    Action::TransferFundUnits(v1::TransferFundUnits {
        fund_id: FUND.to_owned(),
        to_uscc: to.to_owned(),
        units,
    })
}

fn pledge(pledgor: &str, pledgee: &str, units: u64) -> Action {
    pledge_of(FUND, pledgor, pledgee, units)
}

fn pledge_of(fund_id: &str, pledgor: &str, pledgee: &str, units: u64) -> Action {
    Action::PledgeFundUnits(v1::PledgeFundUnits {
        fund_id: fund_id.to_owned(),
        pledgor_uscc: pledgor.to_owned(),
        pledgee_uscc: pledgee.to_owned(),
        units,
    })
}

fn release(pledge_id: u64) -> Action {
    Action::ReleaseFundPledge(v1::ReleaseFundPledge { pledge_id })
}

fn enforce(pledge_id: u64, to: &str, units: u64) -> Action {
    Action::EnforceFundPledge(v1::EnforceFundPledge {
        pledge_id,
        to_uscc: to.to_owned(),
        units,
    })
}

fn freeze(holder: &str, units: u64) -> Action {
    freeze_of(FUND, holder, units)
}

fn freeze_of(fund_id: &str, holder: &str, units: u64) -> Action {
    Action::FreezeFundUnits(v1::FreezeFundUnits {
        fund_id: fund_id.to_owned(),
        holder_uscc: holder.to_owned(),
        units,
        court_reference: COURT.to_owned(),
    })
}

fn unfreeze(freeze_id: u64) -> Action {
    Action::UnfreezeFundUnits(v1::UnfreezeFundUnits { freeze_id })
}

// ---------------------------------------------------------------- helpers

/// Submits, requires acceptance and a clean audit; returns the receipt.
#[track_caller]
fn accept(harness: &mut Harness, action: Action, signers: &[&Party]) -> v1::Receipt {
    let receipt = harness.submit(action, signers);
    assert_accepted(&receipt);
    audit(harness);
    receipt
}

/// Submits, requires a rejection with `reason`, no writes and an unchanged state.
#[track_caller]
fn reject(harness: &mut Harness, action: Action, signers: &[&Party], reason: ReasonCode) {
    let before = harness.state.clone();
    let (receipt, writes) = submit_and_writes(harness, action, signers);
    assert_rejected(&receipt, reason);
    assert!(
        writes.is_empty(),
        "a rejected transaction must write nothing, wrote {writes:?}"
    );
    assert_eq!(
        harness.state, before,
        "a rejected transaction must change nothing"
    );
    audit(harness);
}

#[track_caller]
fn audit(harness: &Harness) {
    if let Err(violation) = funds::audit(&harness.state) {
        panic!("audit: {violation}");
    }
}

/// The holding of a party in `FUND` as (units, pledged, frozen); (0, 0, 0) when absent.
fn units_of(harness: &Harness, holder: &Party) -> (u64, u64, u64) {
    funds::holding(&harness.state, FUND, &holder.id())
        .map_or((0, 0, 0), |h| (h.units, h.pledged_units, h.frozen_units))
}

fn fund_record(harness: &Harness) -> v1::FundRecord {
    funds::fund(&harness.state, FUND).expect("fund registered")
}

fn pledge_record(harness: &Harness, pledge_id: u64) -> v1::FundPledgeRecord {
    funds::pledge(&harness.state, pledge_id).expect("pledge exists")
}

fn created(receipt: &v1::Receipt) -> u64 {
    receipt.created_id.parse().expect("created id is a number")
}

/// A chain with `FUND` (registrar `market`, 10 000 units) where the supplier holds 1 000 units
/// and the second supplier 500.
fn setup() -> (Harness, Parties) {
    let mut harness = Harness::new();
    let p = parties(&harness);
    accept(
        &mut harness,
        register_fund(FUND, &p.core.id(), TOTAL),
        &[&p.market],
    );
    accept(
        &mut harness,
        register_holding(FUND, &p.supplier.id(), 1_000),
        &[&p.market],
    );
    accept(
        &mut harness,
        register_holding(FUND, &p.supplier_b.id(), 500),
        &[&p.market],
    );
    (harness, p)
}

/// Registers a pledge of the supplier's units to `pledgee` and returns its id.
fn pledge_supplier(harness: &mut Harness, p: &Parties, pledgee: &Party, units: u64) -> u64 {
    let receipt = accept(
        harness,
        pledge(&p.supplier.id(), &pledgee.id(), units),
        &[&p.supplier, pledgee, &p.market],
    );
    created(&receipt)
}

/// Freezes the supplier's units by the regulator and returns the freeze id.
fn freeze_supplier(harness: &mut Harness, p: &Parties, units: u64) -> u64 {
    let receipt = accept(harness, freeze(&p.supplier.id(), units), &[&p.regulator]);
    created(&receipt)
}

// ---------------------------------------------------------------- RegisterFund

#[test]
fn register_fund_by_an_equity_market_makes_it_registrar_with_no_units_issued() {
    let (harness, p) = setup();
    let mut harness = harness;
    let receipt = accept(
        &mut harness,
        register_fund("FUND-2", &p.supplier_b.id(), 50),
        &[&p.market_b],
    );
    assert!(receipt.created_id.is_empty());
    let fund = funds::fund(&harness.state, "FUND-2").expect("registered");
    assert_eq!(fund.registrar_uscc, p.market_b.id());
    assert_eq!(fund.manager_uscc, p.supplier_b.id());
    assert_eq!(fund.filing_number, "SXX123");
    assert_eq!(fund.total_units, 50);
    assert_eq!(fund.issued_units, 0);
    let registered = fund.registered.expect("provenance");
    assert_eq!(registered.height, harness.height);
    assert_eq!(
        registered.signers,
        vec![p.market_b.key.verifying_key().to_bytes().to_vec()]
    );
}

#[test]
fn register_fund_requires_a_registrar_key_as_first_signer() {
    let mut harness = Harness::new();
    let p = parties(&harness);
    for signer in [&p.supplier, &p.bank_a, &p.regulator, &p.bureau] {
        reject(
            &mut harness,
            register_fund(FUND, &p.core.id(), TOTAL),
            &[signer],
            ReasonCode::ReasonRoleNotPermitted,
        );
    }
    // A market's countersignature does not help when the first signer lacks the role.
    reject(
        &mut harness,
        register_fund(FUND, &p.core.id(), TOTAL),
        &[&p.supplier, &p.market],
        ReasonCode::ReasonRoleNotPermitted,
    );
}

#[test]
fn register_fund_requires_the_manager_to_be_a_member() {
    let mut harness = Harness::new();
    let p = parties(&harness);
    reject(
        &mut harness,
        register_fund(FUND, test_uscc(999).as_str(), TOTAL),
        &[&p.market],
        ReasonCode::ReasonMemberNotFound,
    );
}

#[test]
fn register_fund_rejects_an_existing_fund_id() {
    let (mut harness, p) = setup();
    for market in [&p.market, &p.market_b] {
        reject(
            &mut harness,
            register_fund(FUND, &p.supplier_b.id(), 5),
            &[market],
            ReasonCode::ReasonFundExists,
        );
    }
    assert_eq!(fund_record(&harness).total_units, TOTAL);
}

#[test]
fn register_fund_with_zero_units_is_malformed() {
    let mut harness = Harness::new();
    let p = parties(&harness);
    reject(
        &mut harness,
        register_fund(FUND, &p.core.id(), 0),
        &[&p.market],
        ReasonCode::ReasonMalformed,
    );
}

// ---------------------------------------------------------------- RegisterHolding

#[test]
fn register_holding_adds_units_to_the_holding_and_to_the_issued_units() {
    let (mut harness, p) = setup();
    assert_eq!(units_of(&harness, &p.supplier), (1_000, 0, 0));
    assert_eq!(fund_record(&harness).issued_units, 1_500);
    accept(
        &mut harness,
        register_holding(FUND, &p.supplier.id(), 250),
        &[&p.market],
    );
    assert_eq!(units_of(&harness, &p.supplier), (1_250, 0, 0));
    // A bank may hold units too.
    accept(
        &mut harness,
        register_holding(FUND, &p.bank_b.id(), 8_250),
        &[&p.market],
    );
    assert_eq!(fund_record(&harness).issued_units, TOTAL);
}

#[test]
fn register_holding_only_by_the_funds_registrar() {
    let (mut harness, p) = setup();
    reject(
        &mut harness,
        register_holding(FUND, &p.supplier.id(), 1),
        &[&p.market_b],
        ReasonCode::ReasonNotFundRegistrar,
    );
    for signer in [&p.supplier, &p.bank_a, &p.regulator] {
        reject(
            &mut harness,
            register_holding(FUND, &p.supplier.id(), 1),
            &[signer, &p.market],
            ReasonCode::ReasonRoleNotPermitted,
        );
    }
}

#[test]
fn register_holding_requires_a_registered_fund_and_a_member_holder() {
    let (mut harness, p) = setup();
    reject(
        &mut harness,
        register_holding("NO-SUCH-FUND", &p.supplier.id(), 1),
        &[&p.market],
        ReasonCode::ReasonFundNotFound,
    );
    reject(
        &mut harness,
        register_holding(FUND, test_uscc(999).as_str(), 1),
        &[&p.market],
        ReasonCode::ReasonMemberNotFound,
    );
}

#[test]
fn register_holding_never_issues_more_than_the_total_units() {
    let (mut harness, p) = setup();
    reject(
        &mut harness,
        register_holding(FUND, &p.core.id(), TOTAL - 1_500 + 1),
        &[&p.market],
        ReasonCode::ReasonUnitsExceedTotal,
    );
    reject(
        &mut harness,
        register_holding(FUND, &p.core.id(), u64::MAX),
        &[&p.market],
        ReasonCode::ReasonArithmeticOverflow,
    );
    accept(
        &mut harness,
        register_holding(FUND, &p.core.id(), TOTAL - 1_500),
        &[&p.market],
    );
    reject(
        &mut harness,
        register_holding(FUND, &p.core.id(), 1),
        &[&p.market],
        ReasonCode::ReasonUnitsExceedTotal,
    );
}

// ---------------------------------------------------------------- TransferFundUnits

#[test]
fn transfer_moves_free_units_with_the_registrars_countersignature() {
    let (mut harness, p) = setup();
    accept(
        &mut harness,
        transfer(&p.supplier_b.id(), 300),
        &[&p.supplier, &p.market],
    );
    assert_eq!(units_of(&harness, &p.supplier), (700, 0, 0));
    assert_eq!(units_of(&harness, &p.supplier_b), (800, 0, 0));
    // To a member with no holding yet: the holding is created.
    accept(
        &mut harness,
        transfer(&p.bank_a.id(), 100),
        &[&p.supplier, &p.market],
    );
    assert_eq!(units_of(&harness, &p.bank_a), (100, 0, 0));
    assert_eq!(fund_record(&harness).issued_units, 1_500);
}

#[test]
fn transfer_of_every_unit_removes_the_holding() {
    let (mut harness, p) = setup();
    accept(
        &mut harness,
        transfer(&p.supplier.id(), 500),
        &[&p.supplier_b, &p.market],
    );
    assert!(funds::holding(&harness.state, FUND, &p.supplier_b.id()).is_none());
    reject(
        &mut harness,
        transfer(&p.supplier.id(), 1),
        &[&p.supplier_b, &p.market],
        ReasonCode::ReasonHoldingNotFound,
    );
}

#[test]
fn transfer_requires_the_funds_registrar_to_countersign() {
    let (mut harness, p) = setup();
    reject(
        &mut harness,
        transfer(&p.supplier_b.id(), 1),
        &[&p.supplier],
        ReasonCode::ReasonMissingSignature,
    );
    reject(
        &mut harness,
        transfer(&p.supplier_b.id(), 1),
        &[&p.supplier, &p.market_b],
        ReasonCode::ReasonMissingSignature,
    );
}

#[test]
fn transfer_is_made_by_the_holder_as_first_signer() {
    let (mut harness, p) = setup();
    // The market cannot move a holder's units on its own.
    reject(
        &mut harness,
        transfer(&p.supplier_b.id(), 1),
        &[&p.market, &p.supplier],
        ReasonCode::ReasonRoleNotPermitted,
    );
    // A member without a holding has nothing to transfer.
    reject(
        &mut harness,
        transfer(&p.supplier_b.id(), 1),
        &[&p.core, &p.market],
        ReasonCode::ReasonHoldingNotFound,
    );
}

#[test]
fn transfer_requires_a_member_recipient_other_than_the_holder() {
    let (mut harness, p) = setup();
    reject(
        &mut harness,
        transfer(test_uscc(999).as_str(), 1),
        &[&p.supplier, &p.market],
        ReasonCode::ReasonMemberNotFound,
    );
    reject(
        &mut harness,
        transfer(&p.supplier.id(), 1),
        &[&p.supplier, &p.market],
        ReasonCode::ReasonSelfTransfer,
    );
    reject(
        &mut harness,
        Action::TransferFundUnits(v1::TransferFundUnits {
            fund_id: "NO-SUCH-FUND".to_owned(),
            to_uscc: p.supplier_b.id(),
            units: 1,
        }),
        &[&p.supplier, &p.market],
        ReasonCode::ReasonFundNotFound,
    );
}

#[test]
fn transfer_takes_free_units_only() {
    let (mut harness, p) = setup();
    reject(
        &mut harness,
        transfer(&p.supplier_b.id(), 1_001),
        &[&p.supplier, &p.market],
        ReasonCode::ReasonInsufficientFreeUnits,
    );
    accept(
        &mut harness,
        transfer(&p.supplier_b.id(), 1_000),
        &[&p.supplier, &p.market],
    );
}

#[test]
fn transfer_never_moves_pledged_units_art_443() {
    let (mut harness, p) = setup();
    pledge_supplier(&mut harness, &p, &p.bank_a, 600);
    reject(
        &mut harness,
        transfer(&p.supplier_b.id(), 401),
        &[&p.supplier, &p.market],
        ReasonCode::ReasonInsufficientFreeUnits,
    );
    // Not even with the pledgee's signature: only enforcement moves pledged units.
    reject(
        &mut harness,
        transfer(&p.supplier_b.id(), 401),
        &[&p.supplier, &p.market, &p.bank_a],
        ReasonCode::ReasonInsufficientFreeUnits,
    );
    accept(
        &mut harness,
        transfer(&p.supplier_b.id(), 400),
        &[&p.supplier, &p.market],
    );
    assert_eq!(units_of(&harness, &p.supplier), (600, 600, 0));
    reject(
        &mut harness,
        transfer(&p.supplier_b.id(), 1),
        &[&p.supplier, &p.market],
        ReasonCode::ReasonInsufficientFreeUnits,
    );
}

#[test]
fn transfer_never_moves_frozen_units() {
    let (mut harness, p) = setup();
    freeze_supplier(&mut harness, &p, 300);
    reject(
        &mut harness,
        transfer(&p.supplier_b.id(), 701),
        &[&p.supplier, &p.market],
        ReasonCode::ReasonInsufficientFreeUnits,
    );
    accept(
        &mut harness,
        transfer(&p.supplier_b.id(), 700),
        &[&p.supplier, &p.market],
    );
    assert_eq!(units_of(&harness, &p.supplier), (300, 0, 300));
}

// ---------------------------------------------------------------- PledgeFundUnits

#[test]
fn pledge_signed_by_pledgor_pledgee_and_registrar_reserves_free_units() {
    let (mut harness, p) = setup();
    let receipt = accept(
        &mut harness,
        pledge(&p.supplier.id(), &p.bank_a.id(), 600),
        &[&p.supplier, &p.bank_a, &p.market],
    );
    assert_eq!(receipt.created_id, "1");
    let record = pledge_record(&harness, 1);
    assert_eq!(record.fund_id, FUND);
    assert_eq!(record.pledgor_uscc, p.supplier.id());
    assert_eq!(record.pledgee_uscc, p.bank_a.id());
    assert_eq!(record.units, 600);
    assert_eq!(record.status(), PledgeStatus::Active);
    assert!(record.registered.is_some());
    assert_eq!(units_of(&harness, &p.supplier), (1_000, 600, 0));
    // The signatures may come in any order.
    let receipt = accept(
        &mut harness,
        pledge(&p.supplier.id(), &p.bank_b.id(), 100),
        &[&p.market, &p.bank_b, &p.supplier],
    );
    assert_eq!(receipt.created_id, "2");
    assert_eq!(units_of(&harness, &p.supplier), (1_000, 700, 0));
}

#[test]
fn pledge_requires_each_of_the_three_signatures() {
    let (mut harness, p) = setup();
    let action = || pledge(&p.supplier.id(), &p.bank_a.id(), 10);
    for signers in [
        vec![&p.bank_a, &p.market],
        vec![&p.supplier, &p.market],
        vec![&p.supplier, &p.bank_a],
        vec![&p.supplier, &p.bank_a, &p.market_b],
    ] {
        reject(
            &mut harness,
            action(),
            &signers,
            ReasonCode::ReasonMissingSignature,
        );
    }
    assert_eq!(units_of(&harness, &p.supplier), (1_000, 0, 0));
}

#[test]
fn pledge_requires_a_financier_pledgee() {
    let (mut harness, p) = setup();
    // An enterprise cannot take a pledge: its key lacks the FINANCIER role.
    reject(
        &mut harness,
        pledge(&p.supplier.id(), &p.supplier_b.id(), 10),
        &[&p.supplier, &p.supplier_b, &p.market],
        ReasonCode::ReasonRoleNotPermitted,
    );
}

#[test]
fn pledge_requires_a_registered_fund_and_a_holding() {
    let (mut harness, p) = setup();
    reject(
        &mut harness,
        pledge_of("NO-SUCH-FUND", &p.supplier.id(), &p.bank_a.id(), 10),
        &[&p.supplier, &p.bank_a, &p.market],
        ReasonCode::ReasonFundNotFound,
    );
    reject(
        &mut harness,
        pledge(&p.core.id(), &p.bank_a.id(), 10),
        &[&p.core, &p.bank_a, &p.market],
        ReasonCode::ReasonHoldingNotFound,
    );
}

#[test]
fn pledge_same_pledgor_and_pledgee_is_malformed() {
    let (mut harness, p) = setup();
    accept(
        &mut harness,
        register_holding(FUND, &p.bank_a.id(), 10),
        &[&p.market],
    );
    reject(
        &mut harness,
        pledge(&p.bank_a.id(), &p.bank_a.id(), 10),
        &[&p.bank_a, &p.market],
        ReasonCode::ReasonMalformed,
    );
}

#[test]
fn pledge_never_over_pledges_a_holding() {
    let (mut harness, p) = setup();
    pledge_supplier(&mut harness, &p, &p.bank_a, 600);
    reject(
        &mut harness,
        pledge(&p.supplier.id(), &p.bank_b.id(), 401),
        &[&p.supplier, &p.bank_b, &p.market],
        ReasonCode::ReasonInsufficientFreeUnits,
    );
    // The same pledgee cannot pledge the same units twice either.
    reject(
        &mut harness,
        pledge(&p.supplier.id(), &p.bank_a.id(), 401),
        &[&p.supplier, &p.bank_a, &p.market],
        ReasonCode::ReasonInsufficientFreeUnits,
    );
    pledge_supplier(&mut harness, &p, &p.bank_b, 400);
    assert_eq!(units_of(&harness, &p.supplier), (1_000, 1_000, 0));
    reject(
        &mut harness,
        pledge(&p.supplier.id(), &p.bank_b.id(), 1),
        &[&p.supplier, &p.bank_b, &p.market],
        ReasonCode::ReasonInsufficientFreeUnits,
    );
}

#[test]
fn pledge_never_over_pledges_within_one_block() {
    let (mut harness, p) = setup();
    let first = harness.body(pledge(&p.supplier.id(), &p.bank_a.id(), 600));
    let second = harness.body(pledge(&p.supplier.id(), &p.bank_b.id(), 600));
    let envelopes = vec![
        Harness::sign(&first, &[&p.supplier.key, &p.bank_a.key, &p.market.key]),
        Harness::sign(&second, &[&p.supplier.key, &p.bank_b.key, &p.market.key]),
    ];
    let outcome = harness.execute(envelopes);
    assert_accepted(&outcome.receipts[0]);
    assert_rejected(
        &outcome.receipts[1],
        ReasonCode::ReasonInsufficientFreeUnits,
    );
    audit(&harness);
    assert_eq!(units_of(&harness, &p.supplier), (1_000, 600, 0));
}

#[test]
fn pledge_of_frozen_units_is_rejected() {
    let (mut harness, p) = setup();
    freeze_supplier(&mut harness, &p, 700);
    reject(
        &mut harness,
        pledge(&p.supplier.id(), &p.bank_a.id(), 301),
        &[&p.supplier, &p.bank_a, &p.market],
        ReasonCode::ReasonInsufficientFreeUnits,
    );
    pledge_supplier(&mut harness, &p, &p.bank_a, 300);
    assert_eq!(units_of(&harness, &p.supplier), (1_000, 300, 700));
}

#[test]
fn pledge_priority_follows_registration_order() {
    let (mut harness, p) = setup();
    let first = pledge_supplier(&mut harness, &p, &p.bank_b, 100);
    let receipt = accept(
        &mut harness,
        pledge(&p.supplier_b.id(), &p.bank_a.id(), 100),
        &[&p.supplier_b, &p.bank_a, &p.market],
    );
    let second = created(&receipt);
    let third = pledge_supplier(&mut harness, &p, &p.bank_a, 100);
    let priorities: Vec<u64> = [first, second, third]
        .iter()
        .map(|id| pledge_record(&harness, *id).priority)
        .collect();
    assert!(
        priorities.windows(2).all(|pair| pair[0] < pair[1]),
        "{priorities:?}"
    );
}

// ---------------------------------------------------------------- ReleaseFundPledge

#[test]
fn release_by_the_pledgee_frees_the_units() {
    let (mut harness, p) = setup();
    let id = pledge_supplier(&mut harness, &p, &p.bank_a, 600);
    accept(&mut harness, release(id), &[&p.bank_a]);
    let record = pledge_record(&harness, id);
    assert_eq!(record.status(), PledgeStatus::Released);
    assert_eq!(
        record.units, 600,
        "a released pledge records what it released"
    );
    assert_eq!(units_of(&harness, &p.supplier), (1_000, 0, 0));
    // The units are free again: they may be transferred.
    accept(
        &mut harness,
        transfer(&p.supplier_b.id(), 1_000),
        &[&p.supplier, &p.market],
    );
}

#[test]
fn release_by_anyone_but_the_pledgee_is_rejected() {
    let (mut harness, p) = setup();
    let id = pledge_supplier(&mut harness, &p, &p.bank_a, 600);
    reject(
        &mut harness,
        release(id),
        &[&p.bank_b],
        ReasonCode::ReasonNotPledgee,
    );
    // The pledgee's countersignature does not make another financier the releaser.
    reject(
        &mut harness,
        release(id),
        &[&p.bank_b, &p.bank_a],
        ReasonCode::ReasonNotPledgee,
    );
    for signer in [&p.supplier, &p.market, &p.regulator] {
        reject(
            &mut harness,
            release(id),
            &[signer],
            ReasonCode::ReasonRoleNotPermitted,
        );
    }
    assert_eq!(units_of(&harness, &p.supplier), (1_000, 600, 0));
}

#[test]
fn release_requires_an_active_pledge() {
    let (mut harness, p) = setup();
    reject(
        &mut harness,
        release(1),
        &[&p.bank_a],
        ReasonCode::ReasonPledgeNotFound,
    );
    let id = pledge_supplier(&mut harness, &p, &p.bank_a, 600);
    accept(&mut harness, release(id), &[&p.bank_a]);
    reject(
        &mut harness,
        release(id),
        &[&p.bank_a],
        ReasonCode::ReasonPledgeNotActive,
    );
    let id = pledge_supplier(&mut harness, &p, &p.bank_a, 100);
    accept(
        &mut harness,
        enforce(id, &p.bank_a.id(), 100),
        &[&p.bank_a, &p.market],
    );
    reject(
        &mut harness,
        release(id),
        &[&p.bank_a],
        ReasonCode::ReasonPledgeNotActive,
    );
}

// ---------------------------------------------------------------- EnforceFundPledge

#[test]
fn enforce_moves_pledged_units_to_the_pledgee() {
    let (mut harness, p) = setup();
    let id = pledge_supplier(&mut harness, &p, &p.bank_a, 600);
    accept(
        &mut harness,
        enforce(id, &p.bank_a.id(), 200),
        &[&p.bank_a, &p.market],
    );
    assert_eq!(units_of(&harness, &p.supplier), (800, 400, 0));
    assert_eq!(units_of(&harness, &p.bank_a), (200, 0, 0));
    let record = pledge_record(&harness, id);
    assert_eq!((record.units, record.status()), (400, PledgeStatus::Active));
    accept(
        &mut harness,
        enforce(id, &p.bank_a.id(), 400),
        &[&p.market, &p.bank_a],
    );
    let record = pledge_record(&harness, id);
    assert_eq!((record.units, record.status()), (0, PledgeStatus::Enforced));
    assert_eq!(units_of(&harness, &p.supplier), (400, 0, 0));
    assert_eq!(units_of(&harness, &p.bank_a), (600, 0, 0));
    assert_eq!(fund_record(&harness).issued_units, 1_500);
    reject(
        &mut harness,
        enforce(id, &p.bank_a.id(), 1),
        &[&p.bank_a, &p.market],
        ReasonCode::ReasonPledgeNotActive,
    );
}

#[test]
fn enforce_moves_pledged_units_to_a_buyer_as_free_units() {
    let (mut harness, p) = setup();
    let id = pledge_supplier(&mut harness, &p, &p.bank_a, 1_000);
    accept(
        &mut harness,
        enforce(id, &p.supplier_b.id(), 1_000),
        &[&p.bank_a, &p.market],
    );
    assert!(funds::holding(&harness.state, FUND, &p.supplier.id()).is_none());
    assert_eq!(units_of(&harness, &p.supplier_b), (1_500, 0, 0));
    accept(
        &mut harness,
        transfer(&p.core.id(), 1_500),
        &[&p.supplier_b, &p.market],
    );
}

#[test]
fn enforce_never_exceeds_the_pledged_units() {
    let (mut harness, p) = setup();
    let id = pledge_supplier(&mut harness, &p, &p.bank_a, 600);
    pledge_supplier(&mut harness, &p, &p.bank_b, 100);
    reject(
        &mut harness,
        enforce(id, &p.bank_a.id(), 601),
        &[&p.bank_a, &p.market],
        ReasonCode::ReasonExceedsPledgedUnits,
    );
    accept(
        &mut harness,
        enforce(id, &p.bank_a.id(), 500),
        &[&p.bank_a, &p.market],
    );
    reject(
        &mut harness,
        enforce(id, &p.bank_a.id(), 101),
        &[&p.bank_a, &p.market],
        ReasonCode::ReasonExceedsPledgedUnits,
    );
}

#[test]
fn enforce_requires_the_pledgee_and_the_registrar() {
    let (mut harness, p) = setup();
    let id = pledge_supplier(&mut harness, &p, &p.bank_a, 600);
    for signers in [
        vec![&p.market],
        vec![&p.bank_a],
        vec![&p.bank_b, &p.market],
        vec![&p.bank_a, &p.market_b],
        vec![&p.supplier, &p.market],
    ] {
        reject(
            &mut harness,
            enforce(id, &p.bank_a.id(), 100),
            &signers,
            ReasonCode::ReasonMissingSignature,
        );
    }
    reject(
        &mut harness,
        enforce(99, &p.bank_a.id(), 1),
        &[&p.bank_a, &p.market],
        ReasonCode::ReasonPledgeNotFound,
    );
}

#[test]
fn enforce_requires_a_member_recipient_other_than_the_pledgor() {
    let (mut harness, p) = setup();
    let id = pledge_supplier(&mut harness, &p, &p.bank_a, 600);
    reject(
        &mut harness,
        enforce(id, &p.supplier.id(), 100),
        &[&p.bank_a, &p.market],
        ReasonCode::ReasonSelfTransfer,
    );
    reject(
        &mut harness,
        enforce(id, test_uscc(999).as_str(), 100),
        &[&p.bank_a, &p.market],
        ReasonCode::ReasonMemberNotFound,
    );
}

#[test]
fn enforce_is_allowed_on_a_frozen_holding_and_leaves_the_frozen_units() {
    let (mut harness, p) = setup();
    let id = pledge_supplier(&mut harness, &p, &p.bank_a, 600);
    freeze_supplier(&mut harness, &p, 400);
    assert_eq!(units_of(&harness, &p.supplier), (1_000, 600, 400));
    accept(
        &mut harness,
        enforce(id, &p.bank_a.id(), 600),
        &[&p.bank_a, &p.market],
    );
    assert_eq!(units_of(&harness, &p.supplier), (400, 0, 400));
    assert_eq!(units_of(&harness, &p.bank_a), (600, 0, 0));
}

#[test]
fn enforce_of_an_earlier_pledge_is_never_blocked_by_a_later_one() {
    let (mut harness, p) = setup();
    let earlier = pledge_supplier(&mut harness, &p, &p.bank_a, 300);
    let later = pledge_supplier(&mut harness, &p, &p.bank_b, 700);
    assert!(pledge_record(&harness, earlier).priority < pledge_record(&harness, later).priority);
    // The later pledge is enforced first; the earlier one keeps every unit it reserved.
    accept(
        &mut harness,
        enforce(later, &p.bank_b.id(), 700),
        &[&p.bank_b, &p.market],
    );
    assert_eq!(units_of(&harness, &p.supplier), (300, 300, 0));
    accept(
        &mut harness,
        enforce(earlier, &p.supplier_b.id(), 300),
        &[&p.bank_a, &p.market],
    );
    assert!(funds::holding(&harness.state, FUND, &p.supplier.id()).is_none());
    assert_eq!(units_of(&harness, &p.supplier_b), (800, 0, 0));
}

// ---------------------------------------------------------------- FreezeFundUnits

#[test]
fn freeze_by_a_regulator_or_the_funds_registrar_freezes_free_units() {
    let (mut harness, p) = setup();
    let receipt = accept(&mut harness, freeze(&p.supplier.id(), 100), &[&p.regulator]);
    assert_eq!(receipt.created_id, "1");
    let receipt = accept(&mut harness, freeze(&p.supplier.id(), 200), &[&p.market]);
    assert_eq!(receipt.created_id, "2");
    assert_eq!(units_of(&harness, &p.supplier), (1_000, 0, 300));
    let record = funds::freeze(&harness.state, 2).expect("freeze");
    assert_eq!(record.fund_id, FUND);
    assert_eq!(record.holder_uscc, p.supplier.id());
    assert_eq!(record.units, 200);
    assert_eq!(record.court_reference, COURT);
    assert!(record.active);
    assert!(record.registered.is_some());
}

#[test]
fn freeze_by_anyone_else_is_rejected() {
    let (mut harness, p) = setup();
    reject(
        &mut harness,
        freeze(&p.supplier.id(), 100),
        &[&p.market_b],
        ReasonCode::ReasonNotFundRegistrar,
    );
    for signer in [&p.bank_a, &p.supplier, &p.bureau] {
        reject(
            &mut harness,
            freeze(&p.supplier.id(), 100),
            &[signer, &p.regulator],
            ReasonCode::ReasonRoleNotPermitted,
        );
    }
}

#[test]
fn freeze_requires_a_court_reference() {
    let (mut harness, p) = setup();
    let mut action = freeze(&p.supplier.id(), 100);
    if let Action::FreezeFundUnits(body) = &mut action {
        body.court_reference = String::new();
    }
    reject(
        &mut harness,
        action,
        &[&p.regulator],
        ReasonCode::ReasonMalformed,
    );
}

#[test]
fn freeze_requires_a_registered_fund_and_a_holding() {
    let (mut harness, p) = setup();
    reject(
        &mut harness,
        freeze_of("NO-SUCH-FUND", &p.supplier.id(), 1),
        &[&p.regulator],
        ReasonCode::ReasonFundNotFound,
    );
    reject(
        &mut harness,
        freeze(&p.core.id(), 1),
        &[&p.regulator],
        ReasonCode::ReasonHoldingNotFound,
    );
}

#[test]
fn freeze_of_pledged_units_is_rejected() {
    let (mut harness, p) = setup();
    pledge_supplier(&mut harness, &p, &p.bank_a, 800);
    reject(
        &mut harness,
        freeze(&p.supplier.id(), 201),
        &[&p.regulator],
        ReasonCode::ReasonInsufficientFreeUnits,
    );
    freeze_supplier(&mut harness, &p, 200);
    assert_eq!(units_of(&harness, &p.supplier), (1_000, 800, 200));
    reject(
        &mut harness,
        freeze(&p.supplier.id(), 1),
        &[&p.market],
        ReasonCode::ReasonInsufficientFreeUnits,
    );
}

// ---------------------------------------------------------------- UnfreezeFundUnits

#[test]
fn unfreeze_by_a_regulator_or_the_funds_registrar_frees_the_units() {
    let (mut harness, p) = setup();
    let by_regulator = freeze_supplier(&mut harness, &p, 300);
    let by_market = created(&accept(
        &mut harness,
        freeze(&p.supplier.id(), 200),
        &[&p.market],
    ));
    // Either may lift a freeze the other made.
    accept(&mut harness, unfreeze(by_regulator), &[&p.market]);
    assert_eq!(units_of(&harness, &p.supplier), (1_000, 0, 200));
    accept(&mut harness, unfreeze(by_market), &[&p.regulator]);
    assert_eq!(units_of(&harness, &p.supplier), (1_000, 0, 0));
    let record = funds::freeze(&harness.state, by_regulator).expect("kept");
    assert!(!record.active);
    accept(
        &mut harness,
        transfer(&p.supplier_b.id(), 1_000),
        &[&p.supplier, &p.market],
    );
}

#[test]
fn unfreeze_by_anyone_else_is_rejected() {
    let (mut harness, p) = setup();
    let id = freeze_supplier(&mut harness, &p, 300);
    reject(
        &mut harness,
        unfreeze(id),
        &[&p.market_b],
        ReasonCode::ReasonNotFundRegistrar,
    );
    for signer in [&p.supplier, &p.bank_a] {
        reject(
            &mut harness,
            unfreeze(id),
            &[signer],
            ReasonCode::ReasonRoleNotPermitted,
        );
    }
    assert_eq!(units_of(&harness, &p.supplier), (1_000, 0, 300));
}

#[test]
fn unfreeze_requires_an_active_freeze() {
    let (mut harness, p) = setup();
    reject(
        &mut harness,
        unfreeze(1),
        &[&p.regulator],
        ReasonCode::ReasonFreezeNotFound,
    );
    let id = freeze_supplier(&mut harness, &p, 300);
    accept(&mut harness, unfreeze(id), &[&p.regulator]);
    reject(
        &mut harness,
        unfreeze(id),
        &[&p.regulator],
        ReasonCode::ReasonFreezeNotActive,
    );
}

// ---------------------------------------------------------------- views

#[test]
fn fund_view_shows_the_funds_holdings_pledges_and_freezes_only() {
    let (mut harness, p) = setup();
    accept(
        &mut harness,
        register_fund("FUND-0", &p.core.id(), 100),
        &[&p.market_b],
    );
    accept(
        &mut harness,
        register_holding("FUND-0", &p.supplier.id(), 100),
        &[&p.market_b],
    );
    let other_pledge = created(&accept(
        &mut harness,
        pledge_of("FUND-0", &p.supplier.id(), &p.bank_a.id(), 10),
        &[&p.supplier, &p.bank_a, &p.market_b],
    ));
    let pledged = pledge_supplier(&mut harness, &p, &p.bank_a, 100);
    accept(
        &mut harness,
        freeze_of("FUND-0", &p.supplier.id(), 5),
        &[&p.regulator],
    );
    let frozen = freeze_supplier(&mut harness, &p, 50);

    let view = funds::fund_view(&harness.state, FUND).expect("view");
    assert_eq!(view.fund.expect("fund").fund_id, FUND);
    let holders: Vec<&str> = view
        .holdings
        .iter()
        .map(|h| h.holder_uscc.as_str())
        .collect();
    let mut sorted = holders.clone();
    sorted.sort_unstable();
    assert_eq!(holders, sorted, "holdings come in holder order");
    assert_eq!(holders.len(), 2);
    assert!(view.holdings.iter().all(|h| h.fund_id == FUND));
    assert_eq!(
        view.pledges.iter().map(|x| x.pledge_id).collect::<Vec<_>>(),
        vec![pledged]
    );
    assert_ne!(pledged, other_pledge);
    assert_eq!(
        view.freezes.iter().map(|x| x.freeze_id).collect::<Vec<_>>(),
        vec![frozen]
    );
    assert!(funds::fund_view(&harness.state, "NO-SUCH-FUND").is_none());
    assert!(funds::holding(&harness.state, FUND, &p.core.id()).is_none());
    assert_eq!(
        funds::holding(&harness.state, "FUND-0", &p.supplier.id()).map(|h| h.units),
        Some(100)
    );
}

// ---------------------------------------------------------------- audit

/// Replaces a stored record with `edit` applied, bypassing the rules.
fn tamper<M: Message + Default>(harness: &mut Harness, key: Vec<u8>, edit: impl FnOnce(&mut M)) {
    let mut record: M = harness.get(&key).expect("record to tamper with");
    edit(&mut record);
    let mut writes = WriteSet::new();
    writes.insert(key, Some(record.encode_to_vec()));
    harness.state.apply(&writes);
}

#[test]
fn audit_detects_a_holding_with_more_encumbered_than_held_units() {
    let (mut harness, p) = setup();
    pledge_supplier(&mut harness, &p, &p.bank_a, 600);
    freeze_supplier(&mut harness, &p, 400);
    let key = keys::holding(FUND, &p.supplier.id());
    tamper(&mut harness, key, |h: &mut v1::HoldingRecord| {
        h.frozen_units = 401
    });
    let error = funds::audit(&harness.state).expect_err("broken invariant 4");
    assert!(error.contains("invariant 4"), "{error}");
}

#[test]
fn audit_detects_records_that_disagree() {
    let (harness, p) = setup();
    let mut pledged = harness.clone();
    pledge_supplier(&mut pledged, &p, &p.bank_a, 600);

    let mut broken = pledged.clone();
    tamper(
        &mut broken,
        keys::fund_pledge(1),
        |r: &mut v1::FundPledgeRecord| r.units = 500,
    );
    assert!(
        funds::audit(&broken.state).is_err(),
        "pledged units vs pledges"
    );

    let mut broken = pledged.clone();
    tamper(
        &mut broken,
        keys::fund_pledge(1),
        |r: &mut v1::FundPledgeRecord| {
            r.set_status(PledgeStatus::Enforced);
        },
    );
    assert!(
        funds::audit(&broken.state).is_err(),
        "enforced pledge with units"
    );

    let mut broken = pledged.clone();
    tamper(
        &mut broken,
        keys::fund_pledge(1),
        |r: &mut v1::FundPledgeRecord| r.fund_id = "NO-SUCH-FUND".to_owned(),
    );
    let error = funds::audit(&broken.state).expect_err("pledge of an unregistered fund");
    assert!(error.contains("unregistered fund"), "{error}");

    let mut broken = harness.clone();
    tamper(&mut broken, keys::fund(FUND), |f: &mut v1::FundRecord| {
        f.issued_units = 1_400
    });
    assert!(
        funds::audit(&broken.state).is_err(),
        "issued units vs holdings"
    );

    let mut broken = harness.clone();
    tamper(
        &mut broken,
        keys::holding(FUND, &p.supplier.id()),
        |h: &mut v1::HoldingRecord| {
            h.frozen_units = 1;
        },
    );
    assert!(
        funds::audit(&broken.state).is_err(),
        "frozen units vs freezes"
    );

    let mut broken = harness;
    tamper(&mut broken, keys::fund(FUND), |f: &mut v1::FundRecord| {
        f.total_units = 1_499
    });
    assert!(funds::audit(&broken.state).is_err(), "issued beyond total");
}

/// A long deterministic mixture of valid and invalid fund-share transactions: the audit holds
/// after every block, and every rejected transaction writes nothing.
#[test]
fn audit_holds_over_a_long_mixed_sequence() {
    let (mut harness, p) = setup();
    let holders = [&p.supplier, &p.supplier_b, &p.bank_a, &p.bank_b, &p.core];
    let financiers = [&p.bank_a, &p.bank_b];
    let mut seed: u64 = 0x5eed;
    let mut next = move |bound: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % bound
    };
    let mut accepted = [0u32; 8];
    for _ in 0..400 {
        let holder = holders[next(5) as usize];
        let other = holders[next(5) as usize];
        let financier = financiers[next(2) as usize];
        let units = 1 + next(400);
        let id = 1 + next(12);
        let kind = next(8) as usize;
        let (action, signers): (Action, Vec<&Party>) = match kind {
            0 => (register_holding(FUND, &holder.id(), units), vec![&p.market]),
            1 => (transfer(&other.id(), units), vec![holder, &p.market]),
            2 => (
                pledge(&holder.id(), &financier.id(), units),
                vec![holder, financier, &p.market],
            ),
            3 => (release(id), vec![financier]),
            4 => (enforce(id, &other.id(), units), vec![financier, &p.market]),
            5 => (freeze(&holder.id(), units), vec![&p.regulator]),
            6 => (unfreeze(1 + next(6)), vec![&p.market]),
            _ => (
                pledge(&holder.id(), &financier.id(), units / 4 + 1),
                vec![holder, financier, &p.market],
            ),
        };
        // An envelope never carries the same key twice (a bank may be holder and pledgee).
        let mut unique: Vec<&Party> = Vec::new();
        for signer in signers {
            if !unique.iter().any(|u| u.uscc == signer.uscc) {
                unique.push(signer);
            }
        }
        let before = harness.state.clone();
        let (receipt, writes) = submit_and_writes(&mut harness, action, &unique);
        if receipt.accepted {
            accepted[kind] += 1;
        } else {
            assert!(writes.is_empty());
            assert_eq!(harness.state, before);
        }
        audit(&harness);
    }
    assert!(
        accepted.iter().all(|count| *count > 0),
        "every kind of transaction should be accepted at least once: {accepted:?}"
    );
}
