//! Rules of the member registry, governance, signers and replay protection: each accepted when
//! it should be and rejected, with its reason code and no writes, when it should not.

use ed25519_dalek::SigningKey;
use yrd_chaincode::keys;
use yrd_chaincode::members::{genesis_writes, validator_set_for_height, GenesisError};
use yrd_chaincode::testkit::{
    assert_accepted, assert_rejected, test_key, Harness, Party, CHAIN_ID,
};
use yrd_chaincode::{execute_block, BlockContext};
use yrd_proto::signing::{verify_transaction, verify_transactions};
use yrd_proto::v1::{self, transaction_body::Action, MemberKind, ReasonCode, Role};

fn register(party: &Party, name: &str) -> Action {
    Action::RegisterMember(party.registration(name))
}

fn validators(harness: &Harness, count: usize) -> Vec<SigningKey> {
    harness.validators[..count].to_vec()
}

fn submit_by_validators(harness: &mut Harness, action: Action, count: usize) -> v1::Receipt {
    let keys = validators(harness, count);
    let refs: Vec<&SigningKey> = keys.iter().collect();
    harness.submit_with_keys(action, &refs)
}

/// Submits and checks that a rejection leaves the state exactly as it was.
fn rejected_without_writes(
    harness: &mut Harness,
    action: Action,
    keys: &[&SigningKey],
    reason: ReasonCode,
) {
    let before = harness.state.clone();
    let receipt = harness.submit_with_keys(action, keys);
    assert_rejected(&receipt, reason);
    assert_eq!(
        harness.state, before,
        "a rejected transaction must write nothing"
    );
}

#[test]
fn register_member_with_two_thirds_of_validators() {
    let mut harness = Harness::new();
    let newcomer = Party::new("newcomer", 100, MemberKind::Enterprise);
    let receipt = submit_by_validators(&mut harness, register(&newcomer, "Newcomer"), 3);
    assert_accepted(&receipt);
    let member: v1::MemberRecord = harness
        .get(&keys::member(newcomer.uscc.as_str()))
        .expect("member");
    assert_eq!(member.kind(), MemberKind::Enterprise);
    let key: v1::KeyRecord = harness
        .get(&keys::member_key(&newcomer.key.verifying_key().to_bytes()))
        .expect("key");
    assert_eq!(key.uscc, newcomer.id());
    assert_eq!(key.roles().collect::<Vec<_>>(), vec![Role::Enterprise]);
}

#[test]
fn register_member_without_quorum_is_rejected() {
    let mut harness = Harness::new();
    let newcomer = Party::new("newcomer", 100, MemberKind::Enterprise);
    let two = validators(&harness, 2);
    rejected_without_writes(
        &mut harness,
        register(&newcomer, "Newcomer"),
        &[&two[0], &two[1]],
        ReasonCode::ReasonInsufficientApprovals,
    );
    // A member's own key is no validator approval.
    let bank = harness.bank_a.key.clone();
    rejected_without_writes(
        &mut harness,
        register(&newcomer, "Newcomer"),
        &[&bank],
        ReasonCode::ReasonInsufficientApprovals,
    );
}

#[test]
fn unknown_signer_is_rejected() {
    let mut harness = Harness::new();
    let stranger = test_key("stranger");
    let receipt_action = Action::ConfirmReceivable(v1::ConfirmReceivable {
        receivable_id: "R-1".into(),
    });
    rejected_without_writes(
        &mut harness,
        receipt_action,
        &[&stranger],
        ReasonCode::ReasonUnknownSigner,
    );
}

#[test]
fn duplicate_member_and_duplicate_key_are_rejected() {
    let mut harness = Harness::new();
    let supplier = harness.supplier.clone();
    let keys = validators(&harness, 3);
    let refs: Vec<&SigningKey> = keys.iter().collect();
    rejected_without_writes(
        &mut harness,
        register(&supplier, "Again"),
        &refs,
        ReasonCode::ReasonMemberExists,
    );
    let mut other = Party::new("other", 101, MemberKind::Enterprise);
    other.key = supplier.key.clone();
    rejected_without_writes(
        &mut harness,
        register(&other, "Other"),
        &refs,
        ReasonCode::ReasonKeyExists,
    );
}

#[test]
fn role_not_allowed_for_kind_is_rejected() {
    let mut harness = Harness::new();
    let keys = validators(&harness, 3);
    let refs: Vec<&SigningKey> = keys.iter().collect();
    let enterprise = Party::new("greedy", 102, MemberKind::Enterprise);
    let mut registration = enterprise.registration("Greedy");
    registration.keys[0].roles.push(Role::Financier as i32);
    rejected_without_writes(
        &mut harness,
        Action::RegisterMember(registration),
        &refs,
        ReasonCode::ReasonRoleNotAllowedForKind,
    );
}

#[test]
fn add_and_revoke_member_key() {
    let mut harness = Harness::new();
    let extra = test_key("supplier-second-key");
    let add = Action::AddMemberKey(v1::AddMemberKey {
        uscc: harness.supplier.id(),
        key: Some(v1::MemberKey {
            public_key: extra.verifying_key().to_bytes().to_vec(),
            roles: vec![Role::Enterprise as i32],
        }),
    });
    assert_accepted(&submit_by_validators(&mut harness, add.clone(), 3));
    let member: v1::MemberRecord = harness
        .get(&keys::member(harness.supplier.uscc.as_str()))
        .expect("member");
    assert_eq!(member.keys.len(), 2);
    // The same key again.
    let keys3 = validators(&harness, 3);
    let refs: Vec<&SigningKey> = keys3.iter().collect();
    rejected_without_writes(&mut harness, add, &refs, ReasonCode::ReasonKeyExists);
    // The new key signs for the supplier: a grant by it is accepted.
    let grant = Action::GrantAuthorization(v1::GrantAuthorization {
        grantee_uscc: harness.bank_a.id(),
        purpose: v1::QueryPurpose::LoanApproval as i32,
        expires_at_ms: harness.time_ms + 86_400_000,
    });
    assert_accepted(&harness.submit_with_keys(grant.clone(), &[&extra]));
    // Revoked, it is an unknown signer.
    let revoke = Action::RevokeMemberKey(v1::RevokeMemberKey {
        public_key: extra.verifying_key().to_bytes().to_vec(),
    });
    assert_accepted(&submit_by_validators(&mut harness, revoke.clone(), 3));
    rejected_without_writes(
        &mut harness,
        grant,
        &[&extra],
        ReasonCode::ReasonUnknownSigner,
    );
    rejected_without_writes(&mut harness, revoke, &refs, ReasonCode::ReasonKeyNotFound);
}

#[test]
fn add_key_to_unknown_member_or_beyond_the_limit_is_rejected() {
    let mut harness = Harness::new();
    let keys3 = validators(&harness, 3);
    let refs: Vec<&SigningKey> = keys3.iter().collect();
    let key = |seed: &str| v1::MemberKey {
        public_key: test_key(seed).verifying_key().to_bytes().to_vec(),
        roles: vec![Role::Enterprise as i32],
    };
    let unknown = Action::AddMemberKey(v1::AddMemberKey {
        uscc: Party::new("x", 555, MemberKind::Enterprise).id(),
        key: Some(key("k")),
    });
    rejected_without_writes(
        &mut harness,
        unknown,
        &refs,
        ReasonCode::ReasonMemberNotFound,
    );
    for index in 1..yrd_proto::limits::KEYS_PER_MEMBER_MAX {
        let add = Action::AddMemberKey(v1::AddMemberKey {
            uscc: harness.core.id(),
            key: Some(key(&format!("core-{index}"))),
        });
        assert_accepted(&harness.submit_with_keys(add, &refs));
    }
    let one_more = Action::AddMemberKey(v1::AddMemberKey {
        uscc: harness.core.id(),
        key: Some(key("core-last")),
    });
    rejected_without_writes(&mut harness, one_more, &refs, ReasonCode::ReasonTooManyKeys);
}

#[test]
fn validator_changes_take_effect_two_heights_later_and_keep_four() {
    let mut harness = Harness::new();
    let newcomer = test_key("validator-4");
    let remove_first = Action::RemoveValidator(v1::RemoveValidator {
        public_key: harness.validators[0].verifying_key().to_bytes().to_vec(),
    });
    let keys3 = validators(&harness, 3);
    let refs: Vec<&SigningKey> = keys3.iter().collect();
    rejected_without_writes(
        &mut harness,
        remove_first.clone(),
        &refs,
        ReasonCode::ReasonTooFewValidators,
    );

    let add = Action::AddValidator(v1::AddValidator {
        public_key: newcomer.verifying_key().to_bytes().to_vec(),
        operator_uscc: harness.bank_b.id(),
    });
    let receipt = submit_by_validators(&mut harness, add.clone(), 3);
    assert_accepted(&receipt);
    let committed_at = harness.height;
    assert_eq!(
        receipt.created_id,
        format!("effective-height:{}", committed_at + 2)
    );
    assert_eq!(
        validator_set_for_height(&harness.state, committed_at + 1)
            .expect("set")
            .len(),
        4
    );
    assert_eq!(
        validator_set_for_height(&harness.state, committed_at + 2)
            .expect("set")
            .len(),
        5
    );
    rejected_without_writes(&mut harness, add, &refs, ReasonCode::ReasonValidatorExists);

    // Once in force, five validators need four approvals, and one may be removed.
    harness.execute(vec![]);
    let current: v1::ValidatorSetRecord = harness.get(keys::VALIDATORS_CURRENT).expect("current");
    assert_eq!(current.validators.len(), 5);
    let keys3 = validators(&harness, 3);
    let refs3: Vec<&SigningKey> = keys3.iter().collect();
    rejected_without_writes(
        &mut harness,
        remove_first.clone(),
        &refs3,
        ReasonCode::ReasonInsufficientApprovals,
    );
    let mut four: Vec<&SigningKey> = refs3.clone();
    four.push(&newcomer);
    assert_accepted(&harness.submit_with_keys(remove_first.clone(), &four));
    // Removing a key that is no validator.
    let unknown = Action::RemoveValidator(v1::RemoveValidator {
        public_key: test_key("nobody").verifying_key().to_bytes().to_vec(),
    });
    rejected_without_writes(
        &mut harness,
        unknown,
        &four,
        ReasonCode::ReasonValidatorNotFound,
    );
}

#[test]
fn add_validator_with_unknown_operator_is_rejected() {
    let mut harness = Harness::new();
    let keys3 = validators(&harness, 3);
    let refs: Vec<&SigningKey> = keys3.iter().collect();
    let add = Action::AddValidator(v1::AddValidator {
        public_key: test_key("v9").verifying_key().to_bytes().to_vec(),
        operator_uscc: Party::new("ghost", 700, MemberKind::Bank).id(),
    });
    rejected_without_writes(&mut harness, add, &refs, ReasonCode::ReasonMemberNotFound);
}

fn grant(harness: &Harness) -> Action {
    Action::GrantAuthorization(v1::GrantAuthorization {
        grantee_uscc: harness.bank_a.id(),
        purpose: v1::QueryPurpose::LoanApproval as i32,
        expires_at_ms: harness.time_ms + 86_400_000,
    })
}

#[test]
fn the_same_transaction_never_applies_twice() {
    let mut harness = Harness::new();
    let body = harness.body(grant(&harness));
    let envelope = Harness::sign(&body, &[&harness.supplier.key]);
    // Twice in one block: the second is a duplicate.
    let outcome = harness.execute(vec![envelope.clone(), envelope.clone()]);
    assert_accepted(&outcome.receipts[0]);
    assert_rejected(&outcome.receipts[1], ReasonCode::ReasonDuplicateTransaction);
    // Again in a later block.
    let before = harness.state.clone();
    let outcome = harness.execute(vec![envelope]);
    assert_rejected(&outcome.receipts[0], ReasonCode::ReasonDuplicateTransaction);
    assert_eq!(harness.state, before);
}

#[test]
fn expired_and_too_long_validity_are_rejected_and_replay_entries_are_pruned() {
    let mut harness = Harness::new();
    let mut body = harness.body(grant(&harness));
    body.valid_until_ms = harness.time_ms - 1;
    let expired = Harness::sign(&body, &[&harness.supplier.key]);
    assert_rejected(
        &harness.execute(vec![expired]).receipts[0],
        ReasonCode::ReasonExpired,
    );

    let mut body = harness.body(grant(&harness));
    body.valid_until_ms = harness.time_ms + yrd_proto::limits::TRANSACTION_VALIDITY_MS_MAX + 1;
    let too_long = Harness::sign(&body, &[&harness.supplier.key]);
    assert_rejected(
        &harness.execute(vec![too_long]).receipts[0],
        ReasonCode::ReasonValidityTooLong,
    );

    let body = harness.body(grant(&harness));
    let valid_until = body.valid_until_ms;
    let envelope = Harness::sign(&body, &[&harness.supplier.key]);
    let hash = verify_transaction(envelope.clone(), CHAIN_ID)
        .expect("verify")
        .hash;
    assert_accepted(&harness.execute(vec![envelope.clone()]).receipts[0]);
    assert!(harness
        .state
        .iter()
        .any(|(key, _)| key == &keys::applied_by_expiry(valid_until, &hash)));
    // After its expiry the entry is pruned, and the transaction is refused as expired.
    harness.time_ms = valid_until + 1;
    let outcome = harness.execute(vec![envelope]);
    assert_rejected(&outcome.receipts[0], ReasonCode::ReasonExpired);
    assert!(!harness.state.iter().any(|(key, _)| key.starts_with(b"x/")));
}

#[test]
fn malformed_body_is_rejected() {
    let mut harness = Harness::new();
    let action = Action::GrantAuthorization(v1::GrantAuthorization {
        grantee_uscc: "91310000000000001X".into(), // bad check character
        purpose: v1::QueryPurpose::LoanApproval as i32,
        expires_at_ms: harness.time_ms + 1000,
    });
    let supplier = harness.supplier.key.clone();
    rejected_without_writes(
        &mut harness,
        action,
        &[&supplier],
        ReasonCode::ReasonMalformed,
    );
    let mut body = harness.body(grant(&harness));
    body.action = None;
    let envelope = Harness::sign(&body, &[&supplier]);
    assert_rejected(
        &harness.execute(vec![envelope]).receipts[0],
        ReasonCode::ReasonMalformed,
    );
}

#[test]
fn transaction_for_another_chain_is_rejected_by_execution_too() {
    let mut harness = Harness::new();
    let mut body = harness.body(grant(&harness));
    body.chain_id = "other-chain".into();
    let envelope = Harness::sign(&body, &[&harness.supplier.key]);
    assert!(verify_transactions(vec![envelope.clone()], CHAIN_ID)[0].is_err());
    let verified = verify_transaction(envelope, "other-chain").expect("verifies for its own chain");
    let block = BlockContext {
        chain_id: CHAIN_ID.into(),
        height: 1,
        time_ms: harness.time_ms,
    };
    let outcome = execute_block(&harness.state, &block, &[verified]).expect("execute");
    assert_rejected(&outcome.receipts[0], ReasonCode::ReasonWrongChainId);
    assert!(outcome.writes.is_empty());
}

#[test]
fn genesis_is_validated() {
    let harness = Harness::new();
    let member = harness.bank_a.registration("Bank A");
    let validator = |seed: &str| v1::ValidatorRecord {
        public_key: test_key(seed).verifying_key().to_bytes().to_vec(),
        operator_uscc: harness.bank_a.id(),
    };
    let mut genesis = v1::Genesis {
        chain_id: "g".into(),
        genesis_time_ms: 1,
        validators: (0..3).map(|i| validator(&format!("g{i}"))).collect(),
        members: vec![member.clone()],
    };
    assert!(matches!(
        genesis_writes(&genesis),
        Err(GenesisError::ValidatorCount { found: 3, .. })
    ));
    genesis.validators.push(validator("g0"));
    assert!(matches!(
        genesis_writes(&genesis),
        Err(GenesisError::Validator { index: 3, .. })
    ));
    genesis.validators[3] = validator("g3");
    assert!(genesis_writes(&genesis).is_ok());
    genesis.members.push(member);
    assert!(matches!(
        genesis_writes(&genesis),
        Err(GenesisError::Member { index: 1, .. })
    ));
    genesis.members.pop();
    genesis.chain_id = String::new();
    assert!(matches!(
        genesis_writes(&genesis),
        Err(GenesisError::ChainId(_))
    ));
}

#[test]
fn a_dry_run_judges_a_replay_as_a_block_would() {
    let mut harness = Harness::new();
    let body = harness.body(grant(&harness));
    let envelope = Harness::sign(&body, &[&harness.supplier.key]);
    assert_accepted(&harness.execute(vec![envelope.clone()]).receipts[0]);
    let verified = verify_transaction(envelope.clone(), CHAIN_ID).expect("verifies");
    let dry_run_at = |harness: &Harness| {
        let block = BlockContext {
            chain_id: CHAIN_ID.to_owned(),
            height: harness.height + 1,
            time_ms: harness.time_ms,
        };
        let receipts =
            yrd_chaincode::dry_run(&harness.state, &block, std::slice::from_ref(&verified))
                .expect("dry run");
        receipts.into_iter().next().expect("one receipt")
    };
    // While its replay entry lives, a duplicate.
    assert_rejected(
        &dry_run_at(&harness),
        ReasonCode::ReasonDuplicateTransaction,
    );
    // Past its validity the block's prologue prunes the entry, which the dry run skips: both
    // refuse it as expired all the same.
    harness.advance_ms(body.valid_until_ms + 1 - harness.time_ms);
    assert_rejected(&dry_run_at(&harness), ReasonCode::ReasonExpired);
    assert_rejected(
        &harness.execute(vec![envelope]).receipts[0],
        ReasonCode::ReasonExpired,
    );
}
