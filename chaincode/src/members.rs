//! The member registry, roles and governance: genesis, admission of members and keys, and
//! validator-set changes approved by more than two thirds of the current validators.
//!
//! Invariants kept here:
//! - a key belongs to exactly one member and holds only roles its member's kind allows;
//! - a governance transaction applies only with signatures of more than two thirds of the
//!   validators in force;
//! - the validator set never has fewer than `VALIDATORS_MIN` or more than `VALIDATORS_MAX`
//!   members; a change committed at height h takes effect at h + `VALIDATOR_CHANGE_DELAY_HEIGHTS`.

use prost::Message;
use yrd_proto::limits::{
    KEYS_PER_MEMBER_MAX, VALIDATORS_MAX, VALIDATORS_MIN, VALIDATOR_CHANGE_DELAY_HEIGHTS,
};
use yrd_proto::signing::{parse_public_key, PublicKeyBytes};
use yrd_proto::v1::{self, ReasonCode};

use crate::exec::{hex_short, BlockContext, ChaincodeError, Outcome, Rejection, TxContext};
use crate::keys;
use crate::state::{MemoryState, Overlay, StateRead, WriteSet};
use crate::transaction::{Action, MalformedError, MemberKeySpec, MemberKind, Role};
use crate::uscc::Uscc;

/// The roles a key of a member of `kind` may hold.
#[must_use]
pub fn allowed_roles(kind: MemberKind) -> &'static [Role] {
    match kind {
        MemberKind::Bank => &[
            Role::CreditReporter,
            Role::CreditQuerier,
            Role::Financier,
            Role::Enterprise,
        ],
        MemberKind::Bureau => &[Role::CreditReporter, Role::CreditQuerier],
        MemberKind::EquityMarket => &[Role::Registrar],
        MemberKind::Enterprise => &[Role::Enterprise],
        MemberKind::Regulator => &[Role::Supervisor],
        MemberKind::Unspecified => &[],
    }
}

fn check_roles(kind: MemberKind, key: &MemberKeySpec) -> Outcome<()> {
    let allowed = allowed_roles(kind);
    match key.roles.iter().find(|role| !allowed.contains(role)) {
        Some(role) => Err(Rejection::new(
            ReasonCode::ReasonRoleNotAllowedForKind,
            format!(
                "a {} member may not hold the role {}",
                kind.as_str_name(),
                role.as_str_name()
            ),
        )),
        None => Ok(()),
    }
}

/// Decodes the validator set in force from a state.
pub fn current_validators(
    state: &dyn StateRead,
) -> Result<Vec<v1::ValidatorRecord>, ChaincodeError> {
    match state.get(keys::VALIDATORS_CURRENT) {
        Some(bytes) => v1::ValidatorSetRecord::decode(bytes.as_slice())
            .map(|set| set.validators)
            .map_err(|error| {
                ChaincodeError::CorruptState(format!("validator set does not decode: {error}"))
            }),
        None => Ok(Vec::new()),
    }
}

/// The public keys of the validator set in force.
pub fn current_validator_keys(
    state: &dyn StateRead,
) -> Result<Vec<PublicKeyBytes>, ChaincodeError> {
    current_validators(state)?
        .iter()
        .map(|validator| {
            validator.public_key.as_slice().try_into().map_err(|_| {
                ChaincodeError::CorruptState("a validator key is not 32 bytes".to_owned())
            })
        })
        .collect()
}

fn pending_validators(
    state: &dyn StateRead,
) -> Result<Option<v1::PendingValidatorSet>, ChaincodeError> {
    state
        .get(keys::VALIDATORS_PENDING)
        .map(|bytes| {
            v1::PendingValidatorSet::decode(bytes.as_slice()).map_err(|error| {
                ChaincodeError::CorruptState(format!(
                    "pending validator set does not decode: {error}"
                ))
            })
        })
        .transpose()
}

/// The validator set that decides block `height`, read from the state after block `height - 1`.
pub fn validator_set_for_height(
    state: &dyn StateRead,
    height: u64,
) -> Result<Vec<v1::ValidatorRecord>, ChaincodeError> {
    match pending_validators(state)? {
        Some(pending) if pending.effective_height <= height => Ok(pending
            .validators
            .map(|set| set.validators)
            .unwrap_or_default()),
        _ => current_validators(state),
    }
}

/// Puts a pending validator-set change in force when its height comes.
pub(crate) fn begin_block(
    overlay: &mut Overlay<'_, dyn StateRead + '_>,
    block: &BlockContext,
) -> Result<(), ChaincodeError> {
    if let Some(pending) = pending_validators(overlay)? {
        if pending.effective_height <= block.height {
            let set = pending.validators.unwrap_or_default();
            overlay.put(keys::VALIDATORS_CURRENT.to_vec(), set.encode_to_vec());
            overlay.delete(keys::VALIDATORS_PENDING.to_vec());
        }
    }
    Ok(())
}

/// Requires signatures of more than two thirds of the validators in force.
fn require_validator_quorum(context: &TxContext<'_>) -> Outcome<()> {
    let validators = current_validator_keys_of(context);
    let approvals = context
        .signers
        .iter()
        .filter(|signer| signer.validator)
        .count();
    let needed = validators * 2 / 3 + 1;
    if approvals < needed {
        return Err(Rejection::new(
            ReasonCode::ReasonInsufficientApprovals,
            format!("{approvals} of {validators} validators approved, {needed} needed"),
        ));
    }
    Ok(())
}

fn current_validator_keys_of(context: &TxContext<'_>) -> usize {
    // The signers were resolved against the set in force; its size is what counts.
    let set: Option<v1::ValidatorSetRecord> = context
        .get_raw(keys::VALIDATORS_CURRENT)
        .and_then(|bytes| v1::ValidatorSetRecord::decode(bytes.as_slice()).ok());
    set.map_or(0, |set| set.validators.len())
}

/// The validator set a change starts from: the pending one if any, else the one in force.
fn latest_validator_set(context: &mut TxContext<'_>) -> v1::ValidatorSetRecord {
    if let Some(pending) = context.get::<v1::PendingValidatorSet>(keys::VALIDATORS_PENDING) {
        return pending.validators.unwrap_or_default();
    }
    context.get(keys::VALIDATORS_CURRENT).unwrap_or_default()
}

fn schedule_validator_set(context: &mut TxContext<'_>, validators: Vec<v1::ValidatorRecord>) {
    let effective_height = context.block.height + VALIDATOR_CHANGE_DELAY_HEIGHTS;
    context.put(
        keys::VALIDATORS_PENDING.to_vec(),
        &v1::PendingValidatorSet {
            effective_height,
            validators: Some(v1::ValidatorSetRecord { validators }),
        },
    );
    context.created_id = format!("effective-height:{effective_height}");
}

fn key_record(uscc: &Uscc, key: &MemberKeySpec) -> v1::KeyRecord {
    v1::KeyRecord {
        public_key: key.public_key.to_vec(),
        uscc: uscc.as_str().to_owned(),
        roles: key.roles.iter().map(|role| *role as i32).collect(),
    }
}

/// Applies a governance action.
pub(crate) fn apply(context: &mut TxContext<'_>, action: Action) -> Outcome<()> {
    require_validator_quorum(context)?;
    match action {
        Action::RegisterMember {
            uscc,
            name,
            kind,
            keys: member_keys,
        } => register_member(context, uscc, name, kind, &member_keys),
        Action::AddMemberKey { uscc, key } => {
            let mut member = context.require_member(&uscc)?;
            check_roles(member.kind(), &key)?;
            if context.exists(&keys::member_key(&key.public_key)) {
                return Err(Rejection::new(
                    ReasonCode::ReasonKeyExists,
                    format!("key {} is already registered", hex_short(&key.public_key)),
                ));
            }
            if member.keys.len() >= KEYS_PER_MEMBER_MAX {
                return Err(Rejection::new(
                    ReasonCode::ReasonTooManyKeys,
                    format!("{uscc} already has {KEYS_PER_MEMBER_MAX} keys"),
                ));
            }
            context.put(keys::member_key(&key.public_key), &key_record(&uscc, &key));
            member.keys.push(key.public_key.to_vec());
            context.put(keys::member(uscc.as_str()), &member);
            Ok(())
        }
        Action::RevokeMemberKey { public_key } => {
            let record: v1::KeyRecord =
                context.get(&keys::member_key(&public_key)).ok_or_else(|| {
                    Rejection::new(
                        ReasonCode::ReasonKeyNotFound,
                        format!("key {} is not registered", hex_short(&public_key)),
                    )
                })?;
            let key = keys::member(&record.uscc);
            if let Some(mut member) = context.get::<v1::MemberRecord>(&key) {
                member
                    .keys
                    .retain(|k| k.as_slice() != public_key.as_slice());
                context.put(key, &member);
            }
            context.delete(keys::member_key(&public_key));
            Ok(())
        }
        Action::AddValidator {
            public_key,
            operator,
        } => {
            context.require_member(&operator)?;
            let mut set = latest_validator_set(context);
            if set
                .validators
                .iter()
                .any(|v| v.public_key.as_slice() == public_key.as_slice())
            {
                return Err(Rejection::new(
                    ReasonCode::ReasonValidatorExists,
                    format!("{} is already a validator", hex_short(&public_key)),
                ));
            }
            if set.validators.len() >= VALIDATORS_MAX {
                return Err(Rejection::new(
                    ReasonCode::ReasonTooManyValidators,
                    format!("the chain already has {VALIDATORS_MAX} validators"),
                ));
            }
            set.validators.push(v1::ValidatorRecord {
                public_key: public_key.to_vec(),
                operator_uscc: operator.as_str().to_owned(),
            });
            schedule_validator_set(context, set.validators);
            Ok(())
        }
        Action::RemoveValidator { public_key } => {
            let mut set = latest_validator_set(context);
            let before = set.validators.len();
            set.validators
                .retain(|v| v.public_key.as_slice() != public_key.as_slice());
            if set.validators.len() == before {
                return Err(Rejection::new(
                    ReasonCode::ReasonValidatorNotFound,
                    format!("{} is not a validator", hex_short(&public_key)),
                ));
            }
            if set.validators.len() < VALIDATORS_MIN {
                return Err(Rejection::new(
                    ReasonCode::ReasonTooFewValidators,
                    format!(
                        "removal would leave {} validators, at least {VALIDATORS_MIN} are needed",
                        set.validators.len()
                    ),
                ));
            }
            schedule_validator_set(context, set.validators);
            Ok(())
        }
        _ => unreachable!("members::apply is only given governance actions"),
    }
}

/// Why a genesis document is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// The chain id is empty or too long.
    #[error("chain id: {0}")]
    ChainId(String),
    /// Wrong number of validators.
    #[error("genesis has {found} validators; {min} to {max} are needed")]
    ValidatorCount {
        /// Validators found.
        found: usize,
        /// Fewest allowed.
        min: usize,
        /// Most allowed.
        max: usize,
    },
    /// A validator entry is malformed.
    #[error("validator {index}: {problem}")]
    Validator {
        /// Index of the validator.
        index: usize,
        /// What is wrong.
        problem: String,
    },
    /// A member entry is malformed or conflicts with another.
    #[error("member {index}: {problem}")]
    Member {
        /// Index of the member.
        index: usize,
        /// What is wrong.
        problem: String,
    },
}

/// Validates a genesis document and returns the initial state it defines.
pub fn genesis_writes(genesis: &v1::Genesis) -> Result<WriteSet, GenesisError> {
    yrd_proto::signing::check_chain_id(&genesis.chain_id)
        .map_err(|e| GenesisError::ChainId(e.to_string()))?;
    let count = genesis.validators.len();
    if !(VALIDATORS_MIN..=VALIDATORS_MAX).contains(&count) {
        return Err(GenesisError::ValidatorCount {
            found: count,
            min: VALIDATORS_MIN,
            max: VALIDATORS_MAX,
        });
    }
    let empty = MemoryState::new();
    let mut overlay: Overlay<'_, dyn StateRead> = Overlay::new(&empty);
    let block = BlockContext {
        chain_id: genesis.chain_id.clone(),
        height: 0,
        time_ms: genesis.genesis_time_ms,
    };
    // Members first, through the same rule as governance, with every validator approving.
    for (index, member) in genesis.members.iter().enumerate() {
        let member_error = |problem: String| GenesisError::Member { index, problem };
        let action = Action::try_from(v1::transaction_body::Action::RegisterMember(member.clone()))
            .map_err(|e: MalformedError| member_error(e.to_string()))?;
        let Action::RegisterMember {
            uscc,
            name,
            kind,
            keys: member_keys,
        } = action
        else {
            return Err(member_error("not a member registration".to_owned()));
        };
        // Genesis is agreed out of band by every founder: no quorum check here.
        let writes = {
            let mut context = TxContext::new(&overlay, &block, [0u8; 32], 0, Vec::new());
            register_member(&mut context, uscc, name, kind, &member_keys)
                .map_err(|r| member_error(r.detail))?;
            context.finish().map_err(member_error)?.0
        };
        overlay.absorb(writes);
    }
    let mut validators = Vec::with_capacity(count);
    for (index, validator) in genesis.validators.iter().enumerate() {
        let validator_error = |problem: &str| GenesisError::Validator {
            index,
            problem: problem.to_owned(),
        };
        let key = parse_public_key(&validator.public_key)
            .ok_or_else(|| validator_error("public key is malformed or weak"))?;
        let operator =
            Uscc::parse(&validator.operator_uscc).map_err(|e| validator_error(&e.to_string()))?;
        if overlay.get(&keys::member(operator.as_str())).is_none() {
            return Err(validator_error("operator is not a genesis member"));
        }
        if validators
            .iter()
            .any(|v: &v1::ValidatorRecord| v.public_key == key.to_bytes())
        {
            return Err(validator_error("validator listed twice"));
        }
        validators.push(v1::ValidatorRecord {
            public_key: key.to_bytes().to_vec(),
            operator_uscc: operator.as_str().to_owned(),
        });
    }
    overlay.put(
        keys::VALIDATORS_CURRENT.to_vec(),
        v1::ValidatorSetRecord { validators }.encode_to_vec(),
    );
    Ok(overlay.into_writes())
}

/// Admits a member and its keys; shared by governance and genesis.
fn register_member(
    context: &mut TxContext<'_>,
    uscc: Uscc,
    name: String,
    kind: MemberKind,
    member_keys: &[MemberKeySpec],
) -> Outcome<()> {
    if context.exists(&keys::member(uscc.as_str())) {
        return Err(Rejection::new(
            ReasonCode::ReasonMemberExists,
            format!("{uscc} is already a member"),
        ));
    }
    for key in member_keys {
        check_roles(kind, key)?;
        if context.exists(&keys::member_key(&key.public_key)) {
            return Err(Rejection::new(
                ReasonCode::ReasonKeyExists,
                format!("key {} is already registered", hex_short(&key.public_key)),
            ));
        }
    }
    for key in member_keys {
        context.put(keys::member_key(&key.public_key), &key_record(&uscc, key));
    }
    let record = v1::MemberRecord {
        uscc: uscc.as_str().to_owned(),
        name,
        kind: kind as i32,
        keys: member_keys
            .iter()
            .map(|key| key.public_key.to_vec())
            .collect(),
        registered: Some(context.provenance()),
    };
    context.put(keys::member(uscc.as_str()), &record);
    Ok(())
}
