//! Test support: a chain with a standard set of members, deterministic keys and a block
//! clock, for unit tests, property tests and benchmarks. Not used by the node.

use ed25519_dalek::SigningKey;
use prost::Message;
use yrd_proto::signing::{self, sha256, VerifiedTransaction};
use yrd_proto::v1::{
    self, transaction_body::Action as WireAction, MemberKind, ReasonCode, ReportKind, Role,
};

use crate::exec::{execute_block, BlockContext, BlockOutcome};
use crate::members::genesis_writes;
use crate::state::{MemoryState, StateRead};
use crate::uscc::{check_character, Uscc};

/// Chain id of test chains.
pub const CHAIN_ID: &str = "yrd-test";
/// Genesis time of test chains: 2026-01-01T00:00:00Z in ms.
pub const GENESIS_TIME_MS: u64 = 1_767_225_600_000;
/// Time between test blocks, ms.
pub const BLOCK_INTERVAL_MS: u64 = 1_000;

/// A valid USCC made from a number, for tests.
#[must_use]
pub fn test_uscc(number: u32) -> Uscc {
    let first = format!("91310000{number:09}");
    let check = check_character(&first).unwrap_or('0');
    Uscc::parse(&format!("{first}{check}")).unwrap_or_else(|e| panic!("test USCC {first}: {e}"))
}

/// A deterministic signing key made from a name.
#[must_use]
pub fn test_key(name: &str) -> SigningKey {
    SigningKey::from_bytes(&sha256(name.as_bytes()))
}

/// A member organisation of the test chain with one key.
#[derive(Clone, Debug)]
pub struct Party {
    /// Its code.
    pub uscc: Uscc,
    /// Its one key.
    pub key: SigningKey,
    /// Its kind.
    pub kind: MemberKind,
}

impl Party {
    /// A party with a key derived from `name` and every role its kind allows.
    #[must_use]
    pub fn new(name: &str, number: u32, kind: MemberKind) -> Self {
        Self {
            uscc: test_uscc(number),
            key: test_key(name),
            kind,
        }
    }

    /// Its registration as a genesis member, with every role its kind allows.
    #[must_use]
    pub fn registration(&self, name: &str) -> v1::RegisterMember {
        v1::RegisterMember {
            uscc: self.uscc.as_str().to_owned(),
            name: name.to_owned(),
            kind: self.kind as i32,
            keys: vec![v1::MemberKey {
                public_key: self.key.verifying_key().to_bytes().to_vec(),
                roles: crate::members::allowed_roles(self.kind)
                    .iter()
                    .map(|r| *r as i32)
                    .collect(),
            }],
        }
    }

    /// The USCC as a `String`, for wire messages.
    #[must_use]
    pub fn id(&self) -> String {
        self.uscc.as_str().to_owned()
    }
}

/// A test chain: state, block clock and the standard members.
#[derive(Clone, Debug)]
pub struct Harness {
    /// The committed state.
    pub state: MemoryState,
    /// Height of the last executed block.
    pub height: u64,
    /// Time of the next block, ms.
    pub time_ms: u64,
    nonce: u64,
    /// Validator keys (operated by the banks).
    pub validators: Vec<SigningKey>,
    /// A bank (financier, reporter, querier, enterprise roles).
    pub bank_a: Party,
    /// A second bank.
    pub bank_b: Party,
    /// A credit bureau.
    pub bureau: Party,
    /// A regional equity market.
    pub market: Party,
    /// A second equity market.
    pub market_b: Party,
    /// A core enterprise (a debtor).
    pub core: Party,
    /// A supplier (a creditor).
    pub supplier: Party,
    /// A second supplier.
    pub supplier_b: Party,
    /// A regulator.
    pub regulator: Party,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A chain at genesis with the standard members and four validators.
    #[must_use]
    pub fn new() -> Self {
        let bank_a = Party::new("bank-a", 1, MemberKind::Bank);
        let bank_b = Party::new("bank-b", 2, MemberKind::Bank);
        let bureau = Party::new("bureau", 3, MemberKind::Bureau);
        let market = Party::new("market", 4, MemberKind::EquityMarket);
        let market_b = Party::new("market-b", 5, MemberKind::EquityMarket);
        let core = Party::new("core", 6, MemberKind::Enterprise);
        let supplier = Party::new("supplier", 7, MemberKind::Enterprise);
        let supplier_b = Party::new("supplier-b", 8, MemberKind::Enterprise);
        let regulator = Party::new("regulator", 9, MemberKind::Regulator);
        let validators: Vec<SigningKey> = (0..4)
            .map(|i| test_key(&format!("validator-{i}")))
            .collect();
        let members = [
            (&bank_a, "Bank A"),
            (&bank_b, "Bank B"),
            (&bureau, "Bureau"),
            (&market, "Market"),
            (&market_b, "Market B"),
            (&core, "Core Enterprise"),
            (&supplier, "Supplier"),
            (&supplier_b, "Supplier B"),
            (&regulator, "Regulator"),
        ]
        .iter()
        .map(|(party, name)| party.registration(name))
        .collect();
        let genesis = v1::Genesis {
            chain_id: CHAIN_ID.to_owned(),
            genesis_time_ms: GENESIS_TIME_MS,
            validators: validators
                .iter()
                .enumerate()
                .map(|(i, key)| v1::ValidatorRecord {
                    public_key: key.verifying_key().to_bytes().to_vec(),
                    operator_uscc: if i % 2 == 0 { bank_a.id() } else { bank_b.id() },
                })
                .collect(),
            members,
        };
        let mut state = MemoryState::new();
        state.apply(&genesis_writes(&genesis).unwrap_or_else(|e| panic!("test genesis: {e}")));
        Self {
            state,
            height: 0,
            time_ms: GENESIS_TIME_MS + BLOCK_INTERVAL_MS,
            nonce: 0,
            validators,
            bank_a,
            bank_b,
            bureau,
            market,
            market_b,
            core,
            supplier,
            supplier_b,
            regulator,
        }
    }

    /// A body for `action`, valid for ten minutes from the next block, with a fresh nonce.
    pub fn body(&mut self, action: WireAction) -> v1::TransactionBody {
        self.nonce += 1;
        v1::TransactionBody {
            chain_id: CHAIN_ID.to_owned(),
            nonce: self.nonce,
            valid_until_ms: self.time_ms + 600_000,
            action: Some(action),
        }
    }

    /// Signs a body with the given keys.
    #[must_use]
    pub fn sign(body: &v1::TransactionBody, keys: &[&SigningKey]) -> v1::SignedTransaction {
        signing::sign_transaction(body, keys).unwrap_or_else(|e| panic!("test signing: {e}"))
    }

    /// Executes one block of envelopes (verifying their signatures first), applies its writes
    /// and advances the clock. Panics if an envelope fails stateless verification.
    pub fn execute(&mut self, envelopes: Vec<v1::SignedTransaction>) -> BlockOutcome {
        let verified: Vec<VerifiedTransaction> = signing::verify_transactions(envelopes, CHAIN_ID)
            .into_iter()
            .map(|r| r.unwrap_or_else(|e| panic!("test envelope fails verification: {e}")))
            .collect();
        self.execute_verified(&verified)
    }

    /// Executes one block of already verified transactions, applies it and advances the clock.
    pub fn execute_verified(&mut self, verified: &[VerifiedTransaction]) -> BlockOutcome {
        self.height += 1;
        let block = BlockContext {
            chain_id: CHAIN_ID.to_owned(),
            height: self.height,
            time_ms: self.time_ms,
        };
        let outcome = execute_block(&self.state, &block, verified)
            .unwrap_or_else(|e| panic!("execution: {e}"));
        self.state.apply(&outcome.writes);
        self.time_ms += BLOCK_INTERVAL_MS;
        outcome
    }

    /// Signs `action` with the keys of `signers` and executes it alone in a block.
    pub fn submit(&mut self, action: WireAction, signers: &[&Party]) -> v1::Receipt {
        let keys: Vec<&SigningKey> = signers.iter().map(|p| &p.key).collect();
        self.submit_with_keys(action, &keys)
    }

    /// Signs `action` with `keys` and executes it alone in a block.
    pub fn submit_with_keys(&mut self, action: WireAction, keys: &[&SigningKey]) -> v1::Receipt {
        let body = self.body(action);
        let envelope = Self::sign(&body, keys);
        let mut outcome = self.execute(vec![envelope]);
        outcome.receipts.remove(0)
    }

    /// Moves the block clock forward.
    pub fn advance_ms(&mut self, ms: u64) {
        self.time_ms += ms;
    }

    /// Reads and decodes a record of the committed state.
    #[must_use]
    pub fn get<M: Message + Default>(&self, key: &[u8]) -> Option<M> {
        self.state
            .get(key)
            .map(|bytes| M::decode(bytes.as_slice()).unwrap_or_else(|e| panic!("decode: {e}")))
    }

    /// Registers an extra member by governance (signed by three of the four validators).
    pub fn register_member(&mut self, party: &Party, name: &str) -> v1::Receipt {
        let validators: Vec<SigningKey> = self.validators[..3].to_vec();
        let keys: Vec<&SigningKey> = validators.iter().collect();
        self.submit_with_keys(WireAction::RegisterMember(party.registration(name)), &keys)
    }
}

/// Asserts a receipt is accepted, showing its detail otherwise.
#[track_caller]
pub fn assert_accepted(receipt: &v1::Receipt) {
    assert!(
        receipt.accepted,
        "expected acceptance, got {:?}: {}",
        ReasonCode::try_from(receipt.reason).unwrap_or(ReasonCode::ReasonNone),
        receipt.detail
    );
    assert_eq!(receipt.reason, ReasonCode::ReasonNone as i32);
}

/// Asserts a receipt is a rejection with `reason`.
#[track_caller]
pub fn assert_rejected(receipt: &v1::Receipt, reason: ReasonCode) {
    assert!(
        !receipt.accepted,
        "expected {reason:?}, but the transaction was accepted"
    );
    assert_eq!(
        ReasonCode::try_from(receipt.reason).ok(),
        Some(reason),
        "expected {reason:?}, got reason {} ({})",
        receipt.reason,
        receipt.detail
    );
    assert!(receipt.created_id.is_empty());
}

/// The roles of a key, for assertions.
#[must_use]
pub fn roles_of(kind: MemberKind) -> Vec<Role> {
    crate::members::allowed_roles(kind).to_vec()
}

/// Whether executing `action` signed by `signers` in a fresh block changes nothing but the
/// replay entries when rejected: runs it and returns the receipt and the writes.
pub fn submit_and_writes(
    harness: &mut Harness,
    action: WireAction,
    signers: &[&Party],
) -> (v1::Receipt, crate::state::WriteSet) {
    let keys: Vec<&SigningKey> = signers.iter().map(|p| &p.key).collect();
    let body = harness.body(action);
    let envelope = Harness::sign(&body, &keys);
    let mut outcome = harness.execute(vec![envelope]);
    (outcome.receipts.remove(0), outcome.writes)
}

/// Encodes a wire message, for golden fixtures.
#[must_use]
pub fn encode<M: Message>(message: &M) -> Vec<u8> {
    message.encode_to_vec()
}

/// A positive loan report `report_id` on `subject`, as a reporter records it.
#[must_use]
pub fn loan_report(report_id: &str, subject: &Party) -> WireAction {
    WireAction::RecordCreditReport(v1::RecordCreditReport {
        report_id: report_id.to_owned(),
        subject_uscc: subject.id(),
        kind: ReportKind::Loan as i32,
        document_sha256: vec![1; 32],
        negative: false,
        event_end_day: 0,
        summary: "loan repaid on time".to_owned(),
    })
}
