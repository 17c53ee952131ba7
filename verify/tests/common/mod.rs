//! A test chain: chaincode execution (`yrd_chaincode::testkit`), a Jellyfish Merkle Tree of the
//! state with one version per height, headers certified by the validators' precommits, and the
//! answers a node would serve, built from all of it.
#![allow(dead_code, clippy::unwrap_used)]

use ed25519_dalek::{Signer, SigningKey};
use jmt::mock::MockTreeStore;
use jmt::{KeyHash, Sha256Jmt};
use prost::Message;
use yrd_chaincode::keys::{is_authenticated, is_proven_by_history, is_tree_key};
use yrd_chaincode::testkit::{Harness, CHAIN_ID};
use yrd_chaincode::BlockOutcome;
use yrd_consensus::{
    vote_signing_message, BlockHash, Height, PublicKey, Round, ValidatorSet, Vote, VoteKind,
};
use yrd_proto::block::{audit_path, merkle_root};
use yrd_proto::signing::{signing_digest, transaction_hash, Domain, Hash};
use yrd_proto::v1;
use yrd_verify::keys::history_entry;
use yrd_verify::{state_proof_from_jmt, Trust};

pub fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash::with::<sha2::Sha256>(key)
}

pub fn set_of(keys: &[SigningKey]) -> ValidatorSet {
    ValidatorSet::new(
        keys.iter()
            .map(|k| PublicKey(k.verifying_key().to_bytes()))
            .collect(),
    )
    .expect("validator set")
}

pub fn genesis_of(keys: &[SigningKey]) -> v1::Genesis {
    v1::Genesis {
        chain_id: CHAIN_ID.to_owned(),
        genesis_time_ms: 0,
        validators: keys
            .iter()
            .map(|k| v1::ValidatorRecord {
                public_key: k.verifying_key().to_bytes().to_vec(),
                operator_uscc: String::new(),
            })
            .collect(),
        members: vec![],
    }
}

/// Precommit signatures of `signers` (validator index, key) over a block hash.
pub fn certificate(
    height: u64,
    round: u32,
    block_hash: Hash,
    signers: &[(u16, &SigningKey)],
) -> v1::CommitCertificate {
    let signatures = signers
        .iter()
        .map(|(index, key)| {
            let vote = Vote {
                kind: VoteKind::Precommit,
                height: Height(height),
                round: Round(round),
                block_hash: Some(BlockHash(block_hash)),
                validator: *index,
            };
            v1::CommitSignature {
                validator_index: u32::from(*index),
                signature: key
                    .sign(&vote_signing_message(CHAIN_ID, &vote))
                    .to_bytes()
                    .to_vec(),
            }
        })
        .collect();
    v1::CommitCertificate {
        height,
        round,
        block_hash: block_hash.to_vec(),
        signatures,
    }
}

/// A header certified by the first quorum of `keys`.
pub fn certify(header: &v1::BlockHeader, keys: &[SigningKey]) -> v1::CertifiedHeader {
    let quorum = 2 * keys.len() / 3 + 1;
    let signers: Vec<(u16, &SigningKey)> = keys
        .iter()
        .take(quorum)
        .enumerate()
        .map(|(i, k)| (i as u16, k))
        .collect();
    certify_by(header, &signers)
}

pub fn certify_by(header: &v1::BlockHeader, signers: &[(u16, &SigningKey)]) -> v1::CertifiedHeader {
    let bytes = header.encode_to_vec();
    let hash = signing_digest(Domain::BlockHeader, CHAIN_ID, &bytes).expect("hash");
    v1::CertifiedHeader {
        header: bytes,
        certificate: Some(certificate(header.height, 0, hash, signers)),
    }
}

pub fn validator_keys(prefix: &str, count: usize) -> Vec<SigningKey> {
    (0..count)
        .map(|i| yrd_chaincode::testkit::test_key(&format!("{prefix}-{i}")))
        .collect()
}

/// A chain whose state is committed into a JMT, one version per height.
pub struct Chain {
    pub harness: Harness,
    pub store: MockTreeStore,
    pub genesis: v1::Genesis,
    /// Keys of the set deciding the next block.
    pub validators: Vec<SigningKey>,
    /// The set to take over after the next block, if any.
    pub next_validators: Option<Vec<SigningKey>>,
    /// Certified headers, index `height - 1`.
    pub headers: Vec<v1::CertifiedHeader>,
    /// Block hashes, index `height - 1`.
    pub block_hashes: Vec<Hash>,
    /// Transactions, index `height - 1`.
    pub transactions: Vec<Vec<v1::SignedTransaction>>,
    pub changes: Vec<v1::ValidatorSetChange>,
}

impl Chain {
    /// Genesis of the testkit chain, its state at version 0. The consensus keys are the
    /// testkit's validator keys.
    pub fn new() -> Self {
        let harness = Harness::new();
        let validators = harness.validators.clone();
        let store = MockTreeStore::new(false);
        let writes: Vec<(KeyHash, Option<Vec<u8>>)> = harness
            .state
            .iter()
            .filter(|(k, _)| is_authenticated(k))
            .map(|(k, v)| (key_hash(k), Some(v.clone())))
            .collect();
        let (_, batch) = Sha256Jmt::new(&store)
            .put_value_set(writes, 0)
            .expect("genesis version");
        store.write_tree_update_batch(batch).expect("write");
        Self {
            genesis: genesis_of(&validators),
            harness,
            store,
            validators,
            next_validators: None,
            headers: vec![],
            block_hashes: vec![],
            transactions: vec![],
            changes: vec![],
        }
    }

    pub fn trust(&self) -> Trust {
        Trust::from_genesis(&self.genesis).expect("trust")
    }

    pub fn height(&self) -> u64 {
        self.harness.height
    }

    pub fn root(&self, height: u64) -> Hash {
        Sha256Jmt::new(&self.store)
            .get_root_hash(height)
            .expect("root")
            .0
    }

    /// Signs `action` with `keys` as one transaction (not yet committed).
    pub fn sign(
        &mut self,
        action: v1::transaction_body::Action,
        keys: &[&SigningKey],
    ) -> v1::SignedTransaction {
        let body = self.harness.body(action);
        Harness::sign(&body, keys)
    }

    /// Executes a block, commits its writes as the JMT version of its height, and certifies its
    /// header by the set in force.
    pub fn commit(&mut self, envelopes: Vec<v1::SignedTransaction>) -> BlockOutcome {
        let time_ms = self.harness.time_ms;
        let outcome = self.harness.execute(envelopes.clone());
        let height = self.harness.height;
        let writes: Vec<(KeyHash, Option<Vec<u8>>)> = outcome
            .writes
            .iter()
            .filter(|(k, _)| is_tree_key(k))
            .map(|(k, v)| (key_hash(k), v.clone()))
            .collect();
        let (root, batch) = Sha256Jmt::new(&self.store)
            .put_value_set(writes, height)
            .expect("version");
        self.store.write_tree_update_batch(batch).expect("write");
        let hashes: Vec<Hash> = envelopes
            .iter()
            .map(|e| transaction_hash(CHAIN_ID, &e.body).expect("hash"))
            .collect();
        let current = set_of(&self.validators);
        let next = self.next_validators.as_ref().map(|keys| set_of(keys));
        let header = v1::BlockHeader {
            chain_id: CHAIN_ID.to_owned(),
            height,
            parent_hash: self
                .block_hashes
                .last()
                .copied()
                .unwrap_or([0; 32])
                .to_vec(),
            time_ms,
            proposer: self.validators[0].verifying_key().to_bytes().to_vec(),
            transactions_root: merkle_root(&hashes).to_vec(),
            receipts_root: yrd_proto::block::receipts_root(&outcome.receipts).to_vec(),
            state_root: root.0.to_vec(),
            validator_set_hash: current.hash().to_vec(),
            next_validator_set_hash: next.as_ref().unwrap_or(&current).hash().to_vec(),
            transaction_count: envelopes.len() as u32,
        };
        let certified = certify(&header, &self.validators);
        self.block_hashes
            .push(signing_digest(Domain::BlockHeader, CHAIN_ID, &certified.header).expect("hash"));
        if let Some(keys) = self.next_validators.take() {
            self.changes.push(v1::ValidatorSetChange {
                header: Some(certified.clone()),
                validators: keys
                    .iter()
                    .map(|k| k.verifying_key().to_bytes().to_vec())
                    .collect(),
            });
            self.validators = keys;
        }
        self.headers.push(certified);
        self.transactions.push(envelopes);
        outcome
    }

    /// Every change below `height`.
    pub fn changes_below(&self, height: u64) -> Option<v1::ValidatorSetProof> {
        Some(v1::ValidatorSetProof {
            changes: self
                .changes
                .iter()
                .filter(|change| {
                    let header = v1::BlockHeader::decode(
                        change.header.as_ref().expect("header").header.as_slice(),
                    )
                    .expect("decode");
                    header.height < height
                })
                .cloned()
                .collect(),
        })
    }

    pub fn header(&self, height: u64) -> v1::CertifiedHeader {
        self.headers[(height - 1) as usize].clone()
    }

    /// The value of `key` at `height` and its wire proof.
    pub fn prove(&self, key: &[u8], height: u64) -> (Option<Vec<u8>>, v1::StateProof) {
        let (value, proof) = Sha256Jmt::new(&self.store)
            .get_with_proof(key_hash(key), height)
            .expect("proof");
        (value, state_proof_from_jmt(&proof).expect("wire proof"))
    }

    /// The number of versions of `key` at `height` (the first index without an entry) and the
    /// absence proof of that entry.
    pub fn count(&self, key: &[u8], height: u64) -> (u32, v1::StateProof) {
        let mut count = 0;
        loop {
            let (entry, proof) = self.prove(&history_entry(key, count), height);
            if entry.is_none() {
                return (count, proof);
            }
            count += 1;
        }
    }

    /// The value an encoded history entry holds.
    pub fn entry_value(entry: &[u8]) -> Option<Vec<u8>> {
        let decoded = v1::HistoryEntry::decode(entry).expect("entry");
        (!decoded.deleted).then_some(decoded.value)
    }

    /// The state answer for `key` at `height`, as a node serves it: a versioned record with
    /// versions by its count and latest entry, any other key by its own leaf.
    pub fn state_response(&self, key: &[u8], height: u64) -> v1::StateProofResponse {
        let mut response = v1::StateProofResponse {
            key: key.to_vec(),
            height,
            header: Some(self.header(height)),
            validator_changes: self.changes_below(height),
            ..v1::StateProofResponse::default()
        };
        let (count, count_proof) = self.count(key, height);
        let value = if is_proven_by_history(key) && count > 0 {
            let (entry, proof) = self.prove(&history_entry(key, count - 1), height);
            let entry = entry.expect("latest entry");
            let value = Self::entry_value(&entry);
            response.last_entry = entry;
            response.last_entry_proof = Some(proof);
            value
        } else {
            let (value, proof) = self.prove(key, height);
            response.proof = Some(proof);
            value
        };
        if is_proven_by_history(key) {
            response.version_count = count;
            response.count_proof = Some(count_proof);
        }
        response.exists = value.is_some();
        response.value = value.unwrap_or_default();
        response
    }

    /// Versions `from ..` of `key` at `height`, as a node serves them.
    pub fn history_response(&self, key: &[u8], height: u64, from: u32) -> v1::HistoryResponse {
        // The count: the first index without an entry; its absence proof proves it.
        let (count, count_proof) = self.count(key, height);
        let versions = (from..count)
            .map(|index| {
                let (entry, entry_proof) = self.prove(&history_entry(key, index), height);
                let entry = entry.expect("entry exists");
                let decoded = v1::HistoryEntry::decode(entry.as_slice()).expect("entry");
                let provenance = decoded.provenance.expect("provenance");
                let block = (provenance.height - 1) as usize;
                let hashes: Vec<Hash> = self.transactions[block]
                    .iter()
                    .map(|e| transaction_hash(CHAIN_ID, &e.body).expect("hash"))
                    .collect();
                v1::RecordVersion {
                    entry,
                    entry_proof: Some(entry_proof),
                    transaction: Some(
                        self.transactions[block][provenance.tx_index as usize].clone(),
                    ),
                    block: Some(self.headers[block].clone()),
                    inclusion_path: audit_path(&hashes, provenance.tx_index as usize)
                        .expect("path")
                        .iter()
                        .map(|h| h.to_vec())
                        .collect(),
                }
            })
            .collect();
        // A versioned record with versions: its latest version holds the value.
        let (value, value_proof) = if is_proven_by_history(key) && count > 0 {
            let (entry, _) = self.prove(&history_entry(key, count - 1), height);
            (Self::entry_value(&entry.expect("latest entry")), None)
        } else {
            let (value, proof) = self.prove(key, height);
            (value, Some(proof))
        };
        v1::HistoryResponse {
            key: key.to_vec(),
            height,
            header: Some(self.header(height)),
            version_count: count,
            count_proof: Some(count_proof),
            versions,
            exists: value.is_some(),
            value: value.unwrap_or_default(),
            value_proof,
            validator_changes: self.changes_below(height),
            last_entry: Vec::new(),
            last_entry_proof: None,
        }
    }

    /// `response` with its last version taken out, and the proof of that version's entry moved
    /// to `last_entry`, as a node serves a page that stops before the latest version.
    pub fn without_latest(&self, mut response: v1::HistoryResponse) -> v1::HistoryResponse {
        let last = response.versions.pop().expect("a version");
        response.last_entry = last.entry;
        response.last_entry_proof = last.entry_proof;
        response
    }
}
