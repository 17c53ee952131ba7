//! Block execution: takes a block's verified transactions and the block time, and yields one
//! receipt per transaction and the block's state writes.
//!
//! Invariants kept here:
//! - a rejected transaction yields a receipt with a reason code and no writes (each transaction
//!   runs in its own overlay, merged into the block's only on success);
//! - an accepted transaction is remembered by hash until its `valid_until_ms`, and a
//!   transaction may only be included while `block time <= valid_until_ms <= block time +
//!   TRANSACTION_VALIDITY_MS_MAX`, so no transaction applies twice;
//! - every signer is a registered member key or a validator key of the current set;
//! - the outcome depends only on the state, the block context and the transactions.

use prost::Message;
use yrd_proto::limits::{BLOCK_TRANSACTIONS_MAX, TRANSACTION_VALIDITY_MS_MAX};
use yrd_proto::signing::{Hash, PublicKeyBytes, VerifiedTransaction};
use yrd_proto::v1::{self, ReasonCode};

use crate::keys;
use crate::state::{Overlay, ReadCache, StateRead, StateScan, WriteSet};
use crate::transaction::{Action, Role, Transaction};
use crate::uscc::Uscc;
use crate::{credit, funds, members, receivables};

/// What execution knows of the block: agreed by consensus, never a local clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockContext {
    /// The chain id.
    pub chain_id: String,
    /// The block height.
    pub height: u64,
    /// The block time, ms since the epoch.
    pub time_ms: u64,
}

/// A rule refused a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Machine-readable reason.
    pub reason: ReasonCode,
    /// Human-readable detail.
    pub detail: String,
}

impl Rejection {
    /// A rejection with its reason and detail.
    pub fn new(reason: ReasonCode, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// The result of a rule.
pub type Outcome<T = ()> = Result<T, Rejection>;

/// Errors that stop execution: the node's own state is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChaincodeError {
    /// A stored record does not decode: the state is corrupt and the node must stop.
    #[error("state invariant broken: {0}")]
    CorruptState(String),
    /// A block carries more transactions than allowed.
    #[error("block carries {found} transactions, more than the {max} allowed")]
    TooManyTransactions {
        /// Transactions in the block.
        found: usize,
        /// Most allowed.
        max: usize,
    },
}

/// One signer of a transaction, resolved against the member registry and validator set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    /// The public key.
    pub public_key: PublicKeyBytes,
    /// The member the key belongs to, if it is a member key.
    pub member: Option<Uscc>,
    /// The key's roles (empty for a validator key).
    pub roles: Vec<Role>,
    /// Whether the key is a validator of the current set.
    pub validator: bool,
}

/// What a rule sees while a transaction executes: its own overlay of the state, the block, and
/// the resolved signers.
pub struct TxContext<'a> {
    state: Overlay<'a, dyn StateRead + 'a>,
    /// The block being executed.
    pub block: &'a BlockContext,
    /// The transaction hash.
    pub tx_hash: Hash,
    /// Position of the transaction in the block.
    pub tx_index: u32,
    /// The signers, in envelope order.
    pub signers: Vec<Signer>,
    /// Identifier created by the transaction, reported in its receipt.
    pub created_id: String,
    corruption: std::cell::RefCell<Option<String>>,
}

impl<'a> TxContext<'a> {
    /// A context over `state` for one transaction.
    pub fn new(
        state: &'a (dyn StateRead + 'a),
        block: &'a BlockContext,
        tx_hash: Hash,
        tx_index: u32,
        signers: Vec<Signer>,
    ) -> Self {
        Self {
            state: Overlay::new(state),
            block,
            tx_hash,
            tx_index,
            signers,
            created_id: String::new(),
            corruption: std::cell::RefCell::new(None),
        }
    }

    /// Reads and decodes a record. A record that does not decode marks the state corrupt (the
    /// block then fails with [`ChaincodeError::CorruptState`]) and reads as absent.
    pub fn get<M: Message + Default>(&mut self, key: &[u8]) -> Option<M> {
        let bytes = self.state.get(key)?;
        match M::decode(bytes.as_slice()) {
            Ok(record) => Some(record),
            Err(error) => {
                self.mark_corrupt(format!("record under {key:?} does not decode: {error}"));
                None
            }
        }
    }

    /// Records that the state is corrupt: the block then fails with
    /// [`ChaincodeError::CorruptState`] and the node stops.
    fn mark_corrupt(&self, detail: String) {
        self.corruption.borrow_mut().get_or_insert(detail);
    }

    /// Parses a USCC read from a stored record. Records are written only from validated
    /// actions, so a bad one means the state is corrupt: that is recorded (the block fails and
    /// the node stops) and the transaction is refused meanwhile.
    pub fn stored_uscc(&self, field: &str, text: &str) -> Outcome<Uscc> {
        Uscc::parse(text).map_err(|error| {
            let detail = format!("stored {field} {text:?} is not a USCC: {error}");
            self.mark_corrupt(detail.clone());
            Rejection::new(ReasonCode::ReasonMalformed, detail)
        })
    }

    /// Whether a key holds a value.
    pub fn exists(&self, key: &[u8]) -> bool {
        self.state.get(key).is_some()
    }

    /// Reads raw bytes.
    pub fn get_raw(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.state.get(key)
    }

    /// Writes a record.
    pub fn put<M: Message>(&mut self, key: Vec<u8>, record: &M) {
        self.state.put(key, record.encode_to_vec());
    }

    /// Writes raw bytes.
    pub fn put_raw(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.state.put(key, value);
    }

    /// Deletes a key.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.state.delete(key);
    }

    /// Issues the next number of a chain-wide sequence (the first is 1).
    pub fn next_sequence(&mut self, name: &str) -> u64 {
        let key = keys::sequence(name);
        let last = match self.state.get(&key) {
            Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
                Ok(array) => u64::from_be_bytes(array),
                Err(_) => {
                    self.mark_corrupt(format!("sequence {name} is not 8 bytes"));
                    0
                }
            },
            None => 0,
        };
        let next = last.saturating_add(1);
        self.state.put(key, next.to_be_bytes().to_vec());
        next
    }

    /// Where and when the current transaction writes: the provenance of a record version.
    #[must_use]
    pub fn provenance(&self) -> v1::Provenance {
        v1::Provenance {
            height: self.block.height,
            tx_index: self.tx_index,
            tx_hash: self.tx_hash.to_vec(),
            block_time_ms: self.block.time_ms,
            signers: self.signers.iter().map(|s| s.public_key.to_vec()).collect(),
        }
    }

    /// The member record of an organisation.
    pub fn member(&mut self, uscc: &Uscc) -> Option<v1::MemberRecord> {
        self.get(&keys::member(uscc.as_str()))
    }

    /// The member record of an organisation, or `REASON_MEMBER_NOT_FOUND`.
    pub fn require_member(&mut self, uscc: &Uscc) -> Outcome<v1::MemberRecord> {
        self.member(uscc).ok_or_else(|| {
            Rejection::new(
                ReasonCode::ReasonMemberNotFound,
                format!("{uscc} is not a member"),
            )
        })
    }

    /// The organisation acting: that of the first signature, whose key must hold `role`.
    pub fn acting(&self, role: Role) -> Outcome<Uscc> {
        let first = self
            .signers
            .first()
            .ok_or_else(|| Rejection::new(ReasonCode::ReasonMissingSignature, "no signature"))?;
        match &first.member {
            Some(uscc) if first.roles.contains(&role) => Ok(uscc.clone()),
            Some(uscc) => Err(Rejection::new(
                ReasonCode::ReasonRoleNotPermitted,
                format!(
                    "the first signing key of {uscc} lacks the role {}",
                    role.as_str_name()
                ),
            )),
            None => Err(Rejection::new(
                ReasonCode::ReasonRoleNotPermitted,
                format!(
                    "the first signing key is not a member key with the role {}",
                    role.as_str_name()
                ),
            )),
        }
    }

    /// Requires that a key of organisation `uscc` holding `role` signed. Fails with
    /// `REASON_MISSING_SIGNATURE` when no key of that organisation signed, and with
    /// `REASON_ROLE_NOT_PERMITTED` when its keys that signed lack the role.
    pub fn require_signature(&self, uscc: &Uscc, role: Role) -> Outcome<()> {
        let mut signed = false;
        for signer in &self.signers {
            if signer.member.as_ref() == Some(uscc) {
                if signer.roles.contains(&role) {
                    return Ok(());
                }
                signed = true;
            }
        }
        if signed {
            Err(Rejection::new(
                ReasonCode::ReasonRoleNotPermitted,
                format!(
                    "no signing key of {uscc} holds the role {}",
                    role.as_str_name()
                ),
            ))
        } else {
            Err(Rejection::new(
                ReasonCode::ReasonMissingSignature,
                format!("{uscc} must sign with a {} key", role.as_str_name()),
            ))
        }
    }

    /// Whether some key of `uscc` holding `role` signed.
    #[must_use]
    pub fn signed_by(&self, uscc: &Uscc, role: Role) -> bool {
        self.require_signature(uscc, role).is_ok()
    }

    /// Ends the transaction: its writes and created id, or the corruption it found.
    pub(crate) fn finish(self) -> Result<(WriteSet, String), String> {
        match self.corruption.into_inner() {
            Some(corruption) => Err(corruption),
            None => Ok((self.state.into_writes(), self.created_id)),
        }
    }
}

/// The result of executing a block.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BlockOutcome {
    /// One receipt per transaction, in block order.
    pub receipts: Vec<v1::Receipt>,
    /// Every state change of the block, ordered by key.
    pub writes: WriteSet,
}

/// Most replay entries pruned per block: twice the most a block can add, so pruning keeps up.
const PRUNE_PER_BLOCK_MAX: usize = 2 * BLOCK_TRANSACTIONS_MAX;

fn corrupt(detail: String) -> ChaincodeError {
    ChaincodeError::CorruptState(detail)
}

/// Deletes the replay entries that expired before this block.
fn prune_expired(
    state: &dyn StateScan,
    block: &BlockContext,
    writes: &mut Overlay<'_, dyn StateRead + '_>,
) -> Result<(), ChaincodeError> {
    // Only the expired entries: keys below `x/e/<block time>` (an entry valid until the block
    // time itself is longer than that bound, so it sorts above it and is kept).
    let mut end = keys::APPLIED_BY_EXPIRY_PREFIX.to_vec();
    end.extend_from_slice(&block.time_ms.to_be_bytes());
    let start = keys::APPLIED_BY_EXPIRY_PREFIX;
    for (key, _) in state.scan_range(start, &end, PRUNE_PER_BLOCK_MAX) {
        let rest = &key[keys::APPLIED_BY_EXPIRY_PREFIX.len()..];
        if rest.len() != 8 + 32 {
            return Err(corrupt(format!(
                "replay expiry key {key:?} has the wrong length"
            )));
        }
        let mut until = [0u8; 8];
        until.copy_from_slice(&rest[..8]);
        if u64::from_be_bytes(until) >= block.time_ms {
            break;
        }
        writes.delete(key);
    }
    Ok(())
}

/// Resolves every signer against the member keys and the validator set in force.
fn resolve_signers(
    state: &dyn StateRead,
    validators: &[PublicKeyBytes],
    signer_keys: &[PublicKeyBytes],
) -> Result<Outcome<Vec<Signer>>, ChaincodeError> {
    let mut signers = Vec::with_capacity(signer_keys.len());
    for public_key in signer_keys {
        let validator = validators.contains(public_key);
        let (member, roles) = match state.get(&keys::member_key(public_key)) {
            Some(bytes) => {
                let record = v1::KeyRecord::decode(bytes.as_slice())
                    .map_err(|error| corrupt(format!("key record does not decode: {error}")))?;
                let uscc = Uscc::parse(&record.uscc)
                    .map_err(|error| corrupt(format!("key record holds a bad USCC: {error}")))?;
                let roles = record.roles().collect();
                (Some(uscc), roles)
            }
            None => (None, Vec::new()),
        };
        if member.is_none() && !validator {
            return Ok(Err(Rejection::new(
                ReasonCode::ReasonUnknownSigner,
                format!(
                    "key {} is neither a member key nor a validator",
                    hex_short(public_key)
                ),
            )));
        }
        signers.push(Signer {
            public_key: *public_key,
            member,
            roles,
            validator,
        });
    }
    Ok(Ok(signers))
}

/// The first bytes of a key or hash in hex, for messages.
#[must_use]
pub fn hex_short(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Checks what every transaction must satisfy before its rule runs.
fn admit(
    tx: &Transaction,
    hash: &Hash,
    block: &BlockContext,
    state: &dyn StateRead,
) -> Outcome<()> {
    if tx.chain_id != block.chain_id {
        return Err(Rejection::new(
            ReasonCode::ReasonWrongChainId,
            format!("transaction is for chain {:?}", tx.chain_id),
        ));
    }
    if tx.valid_until_ms < block.time_ms {
        return Err(Rejection::new(
            ReasonCode::ReasonExpired,
            format!(
                "valid until {} ms, block time is {} ms",
                tx.valid_until_ms, block.time_ms
            ),
        ));
    }
    if tx.valid_until_ms - block.time_ms > TRANSACTION_VALIDITY_MS_MAX {
        return Err(Rejection::new(
            ReasonCode::ReasonValidityTooLong,
            format!(
                "valid until is more than {TRANSACTION_VALIDITY_MS_MAX} ms after the block time"
            ),
        ));
    }
    // A replay has the same body, so the same `valid_until_ms` as well as the same hash.
    if state
        .get(&keys::applied_by_expiry(tx.valid_until_ms, hash))
        .is_some()
    {
        return Err(Rejection::new(
            ReasonCode::ReasonDuplicateTransaction,
            "this transaction was already applied",
        ));
    }
    Ok(())
}

fn dispatch(context: &mut TxContext<'_>, action: Action) -> Outcome<()> {
    match action {
        Action::RegisterMember { .. }
        | Action::AddMemberKey { .. }
        | Action::RevokeMemberKey { .. }
        | Action::AddValidator { .. }
        | Action::RemoveValidator { .. } => members::apply(context, action),
        Action::RecordCreditReport { .. }
        | Action::AmendCreditReport { .. }
        | Action::FileObjection { .. }
        | Action::ResolveObjection { .. }
        | Action::GrantAuthorization { .. }
        | Action::RevokeAuthorization { .. }
        | Action::RecordCreditQuery { .. } => credit::apply(context, action),
        Action::RegisterReceivable { .. }
        | Action::ConfirmReceivable { .. }
        | Action::TransferReceivable { .. }
        | Action::PledgeReceivable { .. }
        | Action::FactorReceivable { .. }
        | Action::ReleaseReceivableFinancing { .. }
        | Action::RecordReceivablePayment { .. }
        | Action::CancelReceivable { .. } => receivables::apply(context, action),
        Action::RegisterFund { .. }
        | Action::RegisterHolding { .. }
        | Action::TransferFundUnits { .. }
        | Action::PledgeFundUnits { .. }
        | Action::ReleaseFundPledge { .. }
        | Action::EnforceFundPledge { .. }
        | Action::FreezeFundUnits { .. }
        | Action::UnfreezeFundUnits { .. } => funds::apply(context, action),
    }
}

fn receipt(hash: &Hash, outcome: Outcome<String>) -> v1::Receipt {
    match outcome {
        Ok(created_id) => v1::Receipt {
            tx_hash: hash.to_vec(),
            accepted: true,
            reason: ReasonCode::ReasonNone as i32,
            detail: String::new(),
            created_id,
        },
        Err(rejection) => v1::Receipt {
            tx_hash: hash.to_vec(),
            accepted: false,
            reason: rejection.reason as i32,
            detail: rejection.detail,
            created_id: String::new(),
        },
    }
}

/// Executes a block of verified transactions over `state`.
///
/// The caller must have verified every envelope's signatures (see `yrd_proto::signing`);
/// everything else is checked here. Returns the receipts and the writes, which the caller
/// applies atomically with the block.
pub fn execute_block<S: StateScan>(
    state: &S,
    block: &BlockContext,
    transactions: &[VerifiedTransaction],
) -> Result<BlockOutcome, ChaincodeError> {
    if transactions.len() > BLOCK_TRANSACTIONS_MAX {
        return Err(ChaincodeError::TooManyTransactions {
            found: transactions.len(),
            max: BLOCK_TRANSACTIONS_MAX,
        });
    }
    let cached = ReadCache::new(state as &dyn StateRead);
    let mut block_overlay: Overlay<'_, dyn StateRead> = Overlay::new(&cached);
    members::begin_block(&mut block_overlay, block)?;
    prune_expired(state, block, &mut block_overlay)?;
    let validators = members::current_validator_keys(&block_overlay)?;
    let mut receipts = Vec::with_capacity(transactions.len());
    for (index, verified) in transactions.iter().enumerate() {
        let tx_index = u32::try_from(index).unwrap_or(u32::MAX);
        let outcome = execute_one(&block_overlay, block, &validators, verified, tx_index)?;
        let outcome = outcome.map(|(writes, created_id)| {
            block_overlay.absorb(writes);
            created_id
        });
        receipts.push(receipt(&verified.hash, outcome));
    }
    Ok(BlockOutcome {
        receipts,
        writes: block_overlay.into_writes(),
    })
}

/// Executes each transaction on its own as the first of a block over `state`, for admission:
/// one receipt per transaction, nothing written. The block's validator-set change runs once
/// for the lot. Its replay pruning does not: it only removes entries valid until before the
/// block time, and a transaction valid until then is refused as expired before its replay
/// entry is looked up, so the receipts are the same without the scan.
pub fn dry_run<S: StateScan>(
    state: &S,
    block: &BlockContext,
    transactions: &[VerifiedTransaction],
) -> Result<Vec<v1::Receipt>, ChaincodeError> {
    let cached = ReadCache::new(state as &dyn StateRead);
    let mut block_overlay: Overlay<'_, dyn StateRead> = Overlay::new(&cached);
    members::begin_block(&mut block_overlay, block)?;
    let validators = members::current_validator_keys(&block_overlay)?;
    transactions
        .iter()
        .map(|verified| {
            let outcome = execute_one(&block_overlay, block, &validators, verified, 0)?;
            Ok(receipt(
                &verified.hash,
                outcome.map(|(_, created_id)| created_id),
            ))
        })
        .collect()
}

/// Executes one transaction over the block's overlay; on success returns its writes, including
/// its replay entries.
fn execute_one(
    state: &dyn StateRead,
    block: &BlockContext,
    validators: &[PublicKeyBytes],
    verified: &VerifiedTransaction,
    tx_index: u32,
) -> Result<Outcome<(WriteSet, String)>, ChaincodeError> {
    let tx = match Transaction::try_from(verified.body.clone()) {
        Ok(tx) => tx,
        Err(error) => {
            return Ok(Err(Rejection::new(
                ReasonCode::ReasonMalformed,
                error.to_string(),
            )))
        }
    };
    if let Err(rejection) = admit(&tx, &verified.hash, block, state) {
        return Ok(Err(rejection));
    }
    let signers = match resolve_signers(state, validators, &verified.signers)? {
        Ok(signers) => signers,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let mut context = TxContext::new(state, block, verified.hash, tx_index, signers);
    let outcome = dispatch(&mut context, tx.action);
    let provenance = context.provenance();
    context.put_raw(
        keys::applied_by_expiry(tx.valid_until_ms, &verified.hash),
        Vec::new(),
    );
    let (mut writes, created_id) = context.finish().map_err(corrupt)?;
    if let Err(rejection) = outcome {
        return Ok(Err(rejection));
    }
    if let Err(rejection) = record_history(state, &provenance, &mut writes)? {
        return Ok(Err(rejection));
    }
    Ok(Ok((writes, created_id)))
}

/// How many versions `key` has in `state` (its `h/c/` count; 0 when it has none).
pub fn history_count(state: &dyn StateRead, key: &[u8]) -> Result<u32, ChaincodeError> {
    match state.get(&keys::history_count(key)) {
        None => Ok(0),
        Some(bytes) => {
            let bytes: [u8; 4] = bytes.as_slice().try_into().map_err(|_| {
                corrupt(format!(
                    "history count of {key:?} is {} bytes, not 4",
                    bytes.len()
                ))
            })?;
            Ok(u32::from_be_bytes(bytes))
        }
    }
}

/// Adds a history version (`h/c/`, `h/v/`) for every versioned key among a transaction's writes.
fn record_history(
    state: &dyn StateRead,
    provenance: &v1::Provenance,
    writes: &mut WriteSet,
) -> Result<Outcome<()>, ChaincodeError> {
    let versioned: Vec<(Vec<u8>, Option<Vec<u8>>)> = writes
        .iter()
        .filter(|(key, _)| keys::is_versioned(key))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    for (key, value) in versioned {
        let count = history_count(state, &key)?;
        let Some(next) = count.checked_add(1) else {
            return Ok(Err(Rejection::new(
                ReasonCode::ReasonArithmeticOverflow,
                format!("key {key:?} has the most versions a key can have"),
            )));
        };
        let entry = v1::HistoryEntry {
            index: count,
            provenance: Some(provenance.clone()),
            deleted: value.is_none(),
            value: value.unwrap_or_default(),
        };
        writes.insert(
            keys::history_entry(&key, count),
            Some(entry.encode_to_vec()),
        );
        writes.insert(keys::history_count(&key), Some(next.to_be_bytes().to_vec()));
    }
    Ok(Ok(()))
}
