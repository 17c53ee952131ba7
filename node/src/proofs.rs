//! The `Proofs` gRPC service: answers a client can check offline against the genesis alone
//! (with `yrd-verify`): the value of a state key at a height, every version of a key, certified
//! headers, and the validator set of a height. Each answer carries the certified headers and
//! validator-set changes its proofs rest on.
//!
//! Invariants: every request is bounded (key length, versions and headers per answer) and
//! refers only to committed heights; a proof the store cannot build from its own data is an
//! INTERNAL error, never a partial answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use tonic::{Request, Response, Status};
use yrd_proto::block::audit_path;
use yrd_proto::signing::Hash;
use yrd_proto::v1::{self, proofs_server::Proofs};

use crate::storage::{Store, StoreError};

/// Longest state key a request may name, in bytes.
pub const KEY_BYTES_MAX: usize = 1024;
/// Most versions in one history answer.
pub const HISTORY_VERSIONS_MAX: u32 = 256;
/// Most headers in one headers answer.
pub const HEADERS_MAX: u32 = 1024;

/// The proofs service over the node's store.
#[derive(Clone, Debug)]
pub struct ProofService {
    store: Arc<Store>,
}

fn status(error: StoreError) -> Status {
    match error {
        StoreError::NotCommitted { .. } => Status::not_found(error.to_string()),
        other => Status::internal(other.to_string()),
    }
}

impl ProofService {
    /// The service over `store`.
    #[must_use]
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    /// The committed height an answer is about: `asked`, or the tip for 0. Height 0 (the
    /// genesis) has no certified header, so answers start at height 1.
    fn answer_height(&self, asked: u64) -> Result<u64, Status> {
        let tip = self.store.tip().height;
        let height = if asked == 0 { tip } else { asked };
        if height == 0 {
            return Err(Status::failed_precondition(
                "no block is committed yet; proofs start at height 1",
            ));
        }
        if height > tip {
            return Err(Status::not_found(format!(
                "height {height} is not committed; the tip is {tip}"
            )));
        }
        Ok(height)
    }

    /// The validator-set changes below `height`, as the wire proof.
    fn validator_changes(&self, height: u64) -> Result<v1::ValidatorSetProof, Status> {
        let changes = self
            .store
            .validator_changes_below(height)
            .map_err(status)?
            .into_iter()
            .map(|(at, keys)| {
                Ok(v1::ValidatorSetChange {
                    header: Some(self.store.certified_header(at).map_err(status)?),
                    validators: keys.iter().map(|key| key.to_vec()).collect(),
                })
            })
            .collect::<Result<Vec<_>, Status>>()?;
        Ok(v1::ValidatorSetProof { changes })
    }

    /// How many versions `key` has at `height`. The count under `h/c/` is the latest one (it is
    /// outside the state tree, which keeps no past values of it); history entries are never
    /// changed or removed and their heights do not decrease, so the versions at `height` are
    /// those before the first entry written above it, found by binary search.
    fn history_count(&self, key: &[u8], height: u64) -> Result<u32, Status> {
        use yrd_chaincode::state::StateRead as _;
        let state = self.store.state();
        let latest = yrd_chaincode::exec::history_count(&state, key)
            .map_err(|error| Status::internal(error.to_string()))?;
        let entry_height = |index: u32| -> Result<u64, Status> {
            let bytes = state
                .get(&yrd_chaincode::keys::history_entry(key, index))
                .ok_or_else(|| {
                    Status::internal(format!(
                        "version {index} is counted but its history entry is missing"
                    ))
                })?;
            let entry = <v1::HistoryEntry as prost::Message>::decode(bytes.as_slice())
                .map_err(|error| Status::internal(format!("history entry {index}: {error}")))?;
            entry
                .provenance
                .map(|p| p.height)
                .ok_or_else(|| Status::internal(format!("history entry {index} has no provenance")))
        };
        let (mut low, mut high) = (0u32, latest);
        while low < high {
            let middle = low + (high - low) / 2;
            if entry_height(middle)? <= height {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        state.check().map_err(status)?;
        Ok(low)
    }

    /// The number of versions of `key` at `height`, with the proof that the entry of that
    /// number is absent. Versions are numbered without gaps: entry `n` absent proves a count
    /// of `n`, with entry `n - 1` present.
    fn count_with_proof(&self, key: &[u8], height: u64) -> Result<(u32, v1::StateProof), Status> {
        let version_count = self.history_count(key, height)?;
        let (past_end, count_proof) = self
            .store
            .state_proof(
                &yrd_chaincode::keys::history_entry(key, version_count),
                height,
            )
            .map_err(status)?;
        if past_end.is_some() {
            return Err(Status::internal(format!(
                "the history count says {version_count} versions at height {height}, but \
                 version {version_count} exists"
            )));
        }
        Ok((version_count, count_proof))
    }

    /// The history entry of version `index` of `key`, counted at `height`, with its proof
    /// against that height's state root.
    fn entry_proof(
        &self,
        key: &[u8],
        index: u32,
        height: u64,
    ) -> Result<(Vec<u8>, v1::StateProof), Status> {
        let entry_key = yrd_chaincode::keys::history_entry(key, index);
        let (entry, proof) = self.store.state_proof(&entry_key, height).map_err(status)?;
        let entry = entry.ok_or_else(|| {
            Status::internal(format!(
                "version {index} is counted but its history entry is missing at height {height}"
            ))
        })?;
        Ok((entry, proof))
    }

    /// The version `index` of `key` at `height`, with its proofs; `blocks` caches blocks by
    /// height across one answer.
    fn version(
        &self,
        key: &[u8],
        index: u32,
        height: u64,
        blocks: &mut BTreeMap<u64, (v1::CommittedBlock, v1::CertifiedHeader)>,
    ) -> Result<v1::RecordVersion, Status> {
        let (entry, entry_proof) = self.entry_proof(key, index, height)?;
        let decoded = <v1::HistoryEntry as prost::Message>::decode(entry.as_slice())
            .map_err(|error| Status::internal(format!("history entry {index}: {error}")))?;
        let provenance = decoded
            .provenance
            .ok_or_else(|| Status::internal(format!("history entry {index} has no provenance")))?;
        let at = provenance.height;
        let (block, header) = match blocks.entry(at) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let block = self
                    .store
                    .block(at)
                    .map_err(status)?
                    .ok_or_else(|| Status::internal(format!("block {at} is missing")))?;
                let header = self.store.certified_header(at).map_err(status)?;
                entry.insert((block, header))
            }
        };
        let position = provenance.tx_index as usize;
        let transaction = block
            .block
            .as_ref()
            .and_then(|b| b.transactions.get(position))
            .cloned()
            .ok_or_else(|| Status::internal(format!("block {at} has no transaction {position}")))?;
        let hashes: Vec<Hash> = block
            .receipts
            .iter()
            .map(|receipt| receipt.tx_hash.as_slice().try_into())
            .collect::<Result<_, _>>()
            .map_err(|_| Status::internal(format!("block {at} has a malformed receipt")))?;
        let path = audit_path(&hashes, position)
            .ok_or_else(|| Status::internal(format!("block {at} has no transaction {position}")))?;
        Ok(v1::RecordVersion {
            entry,
            entry_proof: Some(entry_proof),
            transaction: Some(transaction),
            block: Some(header.clone()),
            inclusion_path: path.iter().map(|hash| hash.to_vec()).collect(),
        })
    }
}

/// The value a stored history entry of version `index` holds: `None` when it records a
/// deletion.
fn entry_value(entry: &[u8], index: u32) -> Result<Option<Vec<u8>>, Status> {
    let decoded = <v1::HistoryEntry as prost::Message>::decode(entry)
        .map_err(|error| Status::internal(format!("history entry {index}: {error}")))?;
    Ok((!decoded.deleted).then_some(decoded.value))
}

fn checked_key(key: &[u8]) -> Result<(), Status> {
    if key.is_empty() || key.len() > KEY_BYTES_MAX {
        return Err(Status::invalid_argument(format!(
            "a state key is 1 to {KEY_BYTES_MAX} bytes, found {}",
            key.len()
        )));
    }
    if !yrd_chaincode::keys::is_authenticated(key) {
        return Err(Status::invalid_argument(
            "keys under x/ (the replay-protection index) and h/c/ (history counts) are not in the \
             authenticated state; a history answer proves a key's version count",
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl Proofs for ProofService {
    async fn get_state_proof(
        &self,
        request: Request<v1::StateProofRequest>,
    ) -> Result<Response<v1::StateProofResponse>, Status> {
        let request = request.into_inner();
        checked_key(&request.key)?;
        let height = self.answer_height(request.height)?;
        let mut response = v1::StateProofResponse {
            header: Some(self.store.certified_header(height).map_err(status)?),
            validator_changes: Some(self.validator_changes(height)?),
            ..v1::StateProofResponse::default()
        };
        let latest = if yrd_chaincode::keys::is_proven_by_history(&request.key) {
            let (version_count, count_proof) = self.count_with_proof(&request.key, height)?;
            response.version_count = version_count;
            response.count_proof = Some(count_proof);
            match version_count.checked_sub(1) {
                Some(last) => {
                    let (entry, proof) = self.entry_proof(&request.key, last, height)?;
                    let value = entry_value(&entry, last)?;
                    response.last_entry = entry;
                    response.last_entry_proof = Some(proof);
                    Some(value)
                }
                // No version yet: the genesis value, if any, by the key's own leaf.
                None => None,
            }
        } else {
            None
        };
        let value = match latest {
            Some(value) => value,
            None => {
                let (value, proof) = self
                    .store
                    .state_proof(&request.key, height)
                    .map_err(status)?;
                response.proof = Some(proof);
                value
            }
        };
        response.exists = value.is_some();
        response.value = value.unwrap_or_default();
        response.key = request.key;
        response.height = height;
        Ok(Response::new(response))
    }

    async fn get_history(
        &self,
        request: Request<v1::HistoryRequest>,
    ) -> Result<Response<v1::HistoryResponse>, Status> {
        let request = request.into_inner();
        checked_key(&request.key)?;
        let height = self.answer_height(request.height)?;
        let (version_count, count_proof) = self.count_with_proof(&request.key, height)?;
        if request.from_version > version_count {
            return Err(Status::invalid_argument(format!(
                "from_version {} is past the {version_count} versions",
                request.from_version
            )));
        }
        let limit = match request.limit {
            0 => HISTORY_VERSIONS_MAX,
            limit => limit.min(HISTORY_VERSIONS_MAX),
        };
        let end = version_count.min(request.from_version.saturating_add(limit));
        let mut blocks = BTreeMap::new();
        let versions = (request.from_version..end)
            .map(|index| self.version(&request.key, index, height, &mut blocks))
            .collect::<Result<Vec<_>, Status>>()?;
        let (last_entry, last_entry_proof) = match version_count.checked_sub(1) {
            // The latest version proves itself when the page holds it; else it comes apart.
            Some(last) if !(request.from_version..end).contains(&last) => {
                let (entry, proof) = self.entry_proof(&request.key, last, height)?;
                (entry, Some(proof))
            }
            _ => (Vec::new(), None),
        };
        let latest = match version_count.checked_sub(1) {
            Some(last) if yrd_chaincode::keys::is_proven_by_history(&request.key) => {
                let entry = match versions.last() {
                    Some(version) if last_entry_proof.is_none() => &version.entry,
                    _ => &last_entry,
                };
                Some(entry_value(entry, last)?)
            }
            _ => None,
        };
        let (value, value_proof) = match latest {
            // The latest version holds the value, and the answer proves that version already.
            Some(value) => (value, None),
            None => {
                let (value, proof) = self
                    .store
                    .state_proof(&request.key, height)
                    .map_err(status)?;
                (value, Some(proof))
            }
        };
        Ok(Response::new(v1::HistoryResponse {
            key: request.key,
            height,
            header: Some(self.store.certified_header(height).map_err(status)?),
            version_count,
            count_proof: Some(count_proof),
            versions,
            exists: value.is_some(),
            value: value.unwrap_or_default(),
            value_proof,
            validator_changes: Some(self.validator_changes(height)?),
            last_entry,
            last_entry_proof,
        }))
    }

    async fn get_headers(
        &self,
        request: Request<v1::HeadersRequest>,
    ) -> Result<Response<v1::HeadersResponse>, Status> {
        let request = request.into_inner();
        let tip = self.store.tip().height;
        if request.from_height == 0 || request.from_height > tip {
            return Err(Status::not_found(format!(
                "headers start at height 1 and end at the tip {tip}; asked from {}",
                request.from_height
            )));
        }
        let limit = match request.limit {
            0 => HEADERS_MAX,
            limit => limit.min(HEADERS_MAX),
        };
        let last = tip.min(request.from_height.saturating_add(u64::from(limit)) - 1);
        let headers = (request.from_height..=last)
            .map(|height| self.store.certified_header(height).map_err(status))
            .collect::<Result<Vec<_>, Status>>()?;
        Ok(Response::new(v1::HeadersResponse {
            headers,
            validator_changes: Some(self.validator_changes(last)?),
        }))
    }

    async fn get_validator_set(
        &self,
        request: Request<v1::ValidatorSetRequest>,
    ) -> Result<Response<v1::ValidatorSetResponse>, Status> {
        let tip = self.store.tip().height;
        let height = match request.into_inner().height {
            0 => tip + 1,
            height => height,
        };
        if height > tip + 1 {
            return Err(Status::not_found(format!(
                "the validator set of height {height} is not known yet; the tip is {tip}"
            )));
        }
        let genesis = self
            .store
            .genesis()
            .map_err(status)?
            .ok_or_else(|| Status::failed_precondition("the node has no genesis"))?;
        let changes = self.validator_changes(height)?;
        let validators = match changes.changes.last() {
            Some(change) => change.validators.clone(),
            None => genesis
                .validators
                .iter()
                .map(|record| record.public_key.clone())
                .collect(),
        };
        let previous_header = if height > 1 {
            Some(self.store.certified_header(height - 1).map_err(status)?)
        } else {
            None
        };
        Ok(Response::new(v1::ValidatorSetResponse {
            height,
            validators,
            validator_changes: Some(changes),
            previous_header,
        }))
    }
}
