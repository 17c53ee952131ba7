//! The gRPC services members use: `Ledger` (submit, wait, read transactions and blocks, stream
//! blocks, status), `Registry` (queries of each registry) and `Proofs` (verifiable answers, in
//! `proofs`), plus gRPC health and server reflection so standard tools work.
//!
//! Invariants: request sizes are bounded by the server's decoding limit before any handler
//! runs; every error maps to a documented status code (INVALID_ARGUMENT, PERMISSION_DENIED,
//! NOT_FOUND, ALREADY_EXISTS, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, INTERNAL); nothing a
//! client sends is trusted before `admission` has verified it.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::Stream;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use yrd_chaincode::credit::Viewer;
use yrd_chaincode::{credit, funds, keys, receivables, StateRead, Uscc};
use yrd_proto::signing::Hash;
use yrd_proto::v1::{self, ledger_server::Ledger, registry_server::Registry};

use crate::admission::AdmissionError;
use crate::config::RpcConfig;
use crate::driver::Shared;
use crate::proofs::ProofService;

pub mod limits;

/// Largest request accepted by `Registry` and `Proofs`, in bytes: one transaction and its
/// framing.
pub const REQUEST_BYTES_MAX: usize = yrd_proto::limits::TRANSACTION_BYTES_MAX + 4 * 1024;
/// Largest request accepted by `Ledger`, in bytes: one `SubmitBatch`.
pub const LEDGER_REQUEST_BYTES_MAX: usize = yrd_proto::limits::SUBMIT_BATCH_BYTES_MAX;
/// Largest response sent, in bytes: one block.
pub const RESPONSE_BYTES_MAX: usize = yrd_proto::limits::MESSAGE_BYTES_MAX;
/// Longest a client may wait for a commit, ms; also the default when it names no deadline.
pub const WAIT_MS_MAX: u64 = 60_000;
/// Blocks buffered per block stream.
const STREAM_BUFFER_BLOCKS: usize = 16;
/// Transactions gossiped in one batch, at most.
const GOSSIP_BATCH_MAX: usize = 512;
/// Longest a transaction waits for others to share its gossip batch, ms.
const GOSSIP_LINGER_MS: u64 = 25;
/// Transactions waiting to be gossiped, at most.
const GOSSIP_QUEUE: usize = 16_384;

/// The services' state.
#[derive(Clone)]
pub struct Services {
    shared: Shared,
}

fn admission_status(error: AdmissionError) -> Status {
    match error {
        AdmissionError::Invalid(m) => Status::invalid_argument(m),
        AdmissionError::PermissionDenied(m) => Status::permission_denied(m),
        AdmissionError::AlreadyCommitted { .. } => Status::already_exists(error.to_string()),
        AdmissionError::Overloaded(m) => Status::resource_exhausted(m),
        AdmissionError::Storage(m) => Status::internal(m),
    }
}

fn internal(error: impl std::fmt::Display) -> Status {
    Status::internal(error.to_string())
}

fn hash_of(bytes: &[u8]) -> Result<Hash, Status> {
    bytes
        .try_into()
        .map_err(|_| Status::invalid_argument(format!("a hash is 32 bytes, found {}", bytes.len())))
}

/// The deadline the client asked for (`grpc-timeout`), capped at [`WAIT_MS_MAX`].
fn wait_limit<T>(request: &Request<T>) -> Duration {
    let asked = request
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(|text| {
            let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
            let value: u64 = digits.parse().ok()?;
            Some(match unit {
                "H" => value.saturating_mul(3_600_000),
                "M" => value.saturating_mul(60_000),
                "S" => value.saturating_mul(1_000),
                "m" => value,
                "u" => value / 1_000,
                "n" => value / 1_000_000,
                _ => return None,
            })
        });
    Duration::from_millis(asked.unwrap_or(WAIT_MS_MAX).min(WAIT_MS_MAX))
}

impl Services {
    /// The services over the node's shared state.
    #[must_use]
    pub fn new(shared: Shared) -> Self {
        Self { shared }
    }

    async fn submit_one(&self, transaction: Option<v1::SignedTransaction>) -> Result<Hash, Status> {
        let transaction =
            transaction.ok_or_else(|| Status::invalid_argument("transaction is missing"))?;
        self.shared
            .admission
            .submit(&self.shared.mempool, transaction)
            .await
            .map_err(admission_status)
    }

    /// Waits until `hash` is committed or `limit` passes.
    async fn wait_for(&self, hash: Hash, limit: Duration) -> Result<v1::TransactionResult, Status> {
        let mut commits = self.shared.commits.subscribe();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // Answered once the block is durable here, as the commit notices are.
            if let Some(result) = self.transaction_result(&hash)? {
                if result.height <= self.shared.store.durable_height() {
                    return Ok(result);
                }
            }
            match tokio::time::timeout_at(deadline, commits.recv()).await {
                Err(_) => {
                    return Err(Status::deadline_exceeded(format!(
                        "transaction {} not committed within {} ms",
                        hex::encode(hash),
                        limit.as_millis()
                    )))
                }
                Ok(Ok(_) | Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    return Err(Status::unavailable("node is stopping"))
                }
            }
        }
    }

    fn transaction_result(&self, hash: &Hash) -> Result<Option<v1::TransactionResult>, Status> {
        let Some(location) = self
            .shared
            .store
            .transaction_location(hash)
            .map_err(internal)?
        else {
            return Ok(None);
        };
        let committed = self
            .shared
            .store
            .block(location.height)
            .map_err(internal)?
            .ok_or_else(|| Status::internal("indexed block missing"))?;
        let block = committed.block.unwrap_or_default();
        let index = location.index as usize;
        let block_hash = block
            .header
            .as_ref()
            .and_then(|h| yrd_proto::block::block_hash(h).ok())
            .map(|h| h.to_vec())
            .unwrap_or_default();
        Ok(Some(v1::TransactionResult {
            transaction: block.transactions.get(index).cloned(),
            receipt: committed.receipts.get(index).cloned(),
            height: location.height,
            tx_index: location.index,
            block_hash,
        }))
    }
}

/// The gossip queue of admitted client transactions, and the task that gathers them into
/// batches and gossips them.
#[must_use]
pub fn start_gossip(network: crate::network::NetworkHandle) -> mpsc::Sender<v1::SignedTransaction> {
    let (gossip, queue) = mpsc::channel(GOSSIP_QUEUE);
    tokio::spawn(gossip_batches(network, queue));
    gossip
}

/// Gathers submitted transactions into batches and gossips them.
async fn gossip_batches(
    network: crate::network::NetworkHandle,
    mut queue: mpsc::Receiver<v1::SignedTransaction>,
) {
    while let Some(first) = queue.recv().await {
        // Linger briefly so that a busy node sends a few large batches rather than many small
        // ones: each gossip message costs a signature, an id and a queue slot per peer.
        let mut transactions = vec![first];
        let deadline = tokio::time::Instant::now() + Duration::from_millis(GOSSIP_LINGER_MS);
        while transactions.len() < GOSSIP_BATCH_MAX {
            match tokio::time::timeout_at(deadline, queue.recv()).await {
                Ok(Some(next)) => transactions.push(next),
                Ok(None) | Err(_) => break,
            }
        }
        let batch = prost::Message::encode_to_vec(&v1::TransactionBatch { transactions });
        if let Err(error) = network.broadcast_transactions(batch) {
            tracing::debug!(%error, "transaction batch not gossiped");
        }
    }
}

type BlockStream = Pin<Box<dyn Stream<Item = Result<v1::CommittedBlock, Status>> + Send>>;

#[tonic::async_trait]
impl Ledger for Services {
    async fn submit(
        &self,
        request: Request<v1::SubmitRequest>,
    ) -> Result<Response<v1::SubmitResponse>, Status> {
        let hash = self.submit_one(request.into_inner().transaction).await?;
        Ok(Response::new(v1::SubmitResponse {
            tx_hash: hash.to_vec(),
        }))
    }

    async fn submit_batch(
        &self,
        request: Request<v1::SubmitBatchRequest>,
    ) -> Result<Response<v1::SubmitBatchResponse>, Status> {
        // Its bytes are bounded by the decoding limit, before this runs.
        let transactions = request.into_inner().transactions;
        let most = yrd_proto::limits::SUBMIT_BATCH_TRANSACTIONS_MAX;
        if transactions.len() > most {
            return Err(Status::invalid_argument(format!(
                "a batch holds at most {most} transactions, found {}",
                transactions.len()
            )));
        }
        let outcomes = self
            .shared
            .admission
            .submit_batch(&self.shared.mempool, transactions)
            .await
            .map_err(admission_status)?
            .into_iter()
            .map(|result| match result {
                Ok(hash) => v1::SubmitOutcome {
                    code: tonic::Code::Ok as i32,
                    tx_hash: hash.to_vec(),
                    message: String::new(),
                },
                Err(error) => {
                    let status = admission_status(error);
                    v1::SubmitOutcome {
                        code: status.code() as i32,
                        tx_hash: Vec::new(),
                        message: status.message().to_owned(),
                    }
                }
            })
            .collect();
        Ok(Response::new(v1::SubmitBatchResponse { outcomes }))
    }

    async fn submit_and_wait(
        &self,
        request: Request<v1::SubmitRequest>,
    ) -> Result<Response<v1::TransactionResult>, Status> {
        let limit = wait_limit(&request);
        let hash = self.submit_one(request.into_inner().transaction).await?;
        Ok(Response::new(self.wait_for(hash, limit).await?))
    }

    async fn wait_for_commit(
        &self,
        request: Request<v1::TransactionHash>,
    ) -> Result<Response<v1::TransactionResult>, Status> {
        let limit = wait_limit(&request);
        let hash = hash_of(&request.into_inner().tx_hash)?;
        Ok(Response::new(self.wait_for(hash, limit).await?))
    }

    async fn get_transaction(
        &self,
        request: Request<v1::TransactionHash>,
    ) -> Result<Response<v1::TransactionResult>, Status> {
        let hash = hash_of(&request.into_inner().tx_hash)?;
        self.transaction_result(&hash)?
            .map(Response::new)
            .ok_or_else(|| {
                Status::not_found(format!("no committed transaction {}", hex::encode(hash)))
            })
    }

    async fn get_block(
        &self,
        request: Request<v1::GetBlockRequest>,
    ) -> Result<Response<v1::CommittedBlock>, Status> {
        let height = match request.into_inner().selector {
            Some(v1::get_block_request::Selector::Height(height)) => height,
            Some(v1::get_block_request::Selector::BlockHash(hash)) => {
                let hash = hash_of(&hash)?;
                self.shared
                    .store
                    .height_of_block(&hash)
                    .map_err(internal)?
                    .ok_or_else(|| Status::not_found("no block with that hash"))?
            }
            None => return Err(Status::invalid_argument("give a height or a block hash")),
        };
        self.shared
            .store
            .block(height)
            .map_err(internal)?
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("no block at height {height}")))
    }

    type StreamBlocksStream = BlockStream;

    async fn stream_blocks(
        &self,
        request: Request<v1::StreamBlocksRequest>,
    ) -> Result<Response<Self::StreamBlocksStream>, Status> {
        let mut next = request.into_inner().from_height.max(1);
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER_BLOCKS);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let mut commits = shared.commits.subscribe();
            loop {
                // Blocks are streamed once durable here (see `wal_sync`).
                while next <= shared.store.durable_height() {
                    let item = shared
                        .store
                        .block(next)
                        .map_err(internal)
                        .and_then(|b| b.ok_or_else(|| Status::internal("block missing")));
                    let failed = item.is_err();
                    if sender.send(item).await.is_err() || failed {
                        return;
                    }
                    next += 1;
                }
                match commits.recv().await {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn get_status(
        &self,
        _request: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusResponse>, Status> {
        let tip = self.shared.store.tip();
        Ok(Response::new(v1::StatusResponse {
            chain_id: self.shared.chain_id.clone(),
            height: tip.height,
            last_block_hash: tip.block_hash.to_vec(),
            state_root: tip.state_root.to_vec(),
            validator: self.shared.is_validator.load(Ordering::Relaxed),
            peers: u32::try_from(self.shared.network.connected_peers()).unwrap_or(u32::MAX),
            node_public_key: self.shared.node_public_key.to_vec(),
            mempool_transactions: u32::try_from(self.shared.mempool.len()).unwrap_or(u32::MAX),
        }))
    }
}

fn uscc(text: &str) -> Result<Uscc, Status> {
    Uscc::parse(text).map_err(|e| Status::invalid_argument(e.to_string()))
}

#[tonic::async_trait]
impl Registry for Services {
    async fn get_member(
        &self,
        request: Request<v1::MemberQuery>,
    ) -> Result<Response<v1::MemberRecord>, Status> {
        let code = uscc(&request.into_inner().uscc)?;
        let state = self.shared.store.state();
        let bytes = state
            .get(&keys::member(code.as_str()))
            .ok_or_else(|| Status::not_found(format!("{code} is not a member")))?;
        prost::Message::decode(bytes.as_slice())
            .map(Response::new)
            .map_err(internal)
    }

    async fn get_credit_report(
        &self,
        request: Request<v1::CreditReportQuery>,
    ) -> Result<Response<v1::CreditReportView>, Status> {
        let query = request.into_inner();
        let state = self.shared.store.state();
        let viewer = if query.query_tx_hash.is_empty() {
            Viewer::Public
        } else {
            let tx_hash = hash_of(&query.query_tx_hash)?;
            let log: v1::QueryLogRecord = state
                .get(&keys::query_log(&tx_hash))
                .and_then(|b| prost::Message::decode(b.as_slice()).ok())
                .ok_or_else(|| {
                    Status::permission_denied("no recorded query with that transaction hash")
                })?;
            Viewer::Querier {
                uscc: uscc(&log.querier_uscc)?,
                query_tx_hash: tx_hash,
            }
        };
        credit::report_view(
            &state,
            &query.report_id,
            &viewer,
            self.shared.store.tip().time_ms,
        )
        .map(Response::new)
        .ok_or_else(|| Status::not_found(format!("no credit report {}", query.report_id)))
    }

    async fn list_credit_reports(
        &self,
        request: Request<v1::SubjectQuery>,
    ) -> Result<Response<v1::CreditReportList>, Status> {
        let subject = uscc(&request.into_inner().subject_uscc)?;
        let state = self.shared.store.state();
        Ok(Response::new(v1::CreditReportList {
            reports: credit::reports_of_subject(&state, subject.as_str()),
        }))
    }

    async fn get_receivable(
        &self,
        request: Request<v1::ReceivableQuery>,
    ) -> Result<Response<v1::ReceivableView>, Status> {
        let id = request.into_inner().receivable_id;
        let state = self.shared.store.state();
        receivables::receivable_view(&state, &id, self.shared.store.tip().time_ms)
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("no receivable {id}")))
    }

    async fn get_fund(
        &self,
        request: Request<v1::FundQuery>,
    ) -> Result<Response<v1::FundView>, Status> {
        let id = request.into_inner().fund_id;
        let state = self.shared.store.state();
        funds::fund_view(&state, &id)
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("no fund {id}")))
    }
}

/// Binds the gRPC listen address, so that a node whose port is taken stops at start with that
/// error instead of running without its gRPC server.
pub async fn bind(address: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| anyhow::anyhow!("gRPC listen address {address}: {error}"))
}

/// Serves the gRPC services (with health and reflection) on `listener` until `shutdown`, within
/// the bounds of `bounds` (`limits`).
pub async fn serve(
    services: Services,
    listener: tokio::net::TcpListener,
    bounds: RpcConfig,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let incoming = limits::LimitedIncoming::new(listener, bounds.connections_max);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<v1::ledger_server::LedgerServer<Services>>()
        .await;
    health_reporter
        .set_serving::<v1::registry_server::RegistryServer<Services>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(yrd_proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let ledger = v1::ledger_server::LedgerServer::new(services.clone())
        .max_decoding_message_size(LEDGER_REQUEST_BYTES_MAX)
        .max_encoding_message_size(RESPONSE_BYTES_MAX);
    health_reporter
        .set_serving::<v1::proofs_server::ProofsServer<ProofService>>()
        .await;
    let proofs =
        v1::proofs_server::ProofsServer::new(ProofService::new(services.shared.store.clone()))
            .max_decoding_message_size(REQUEST_BYTES_MAX)
            .max_encoding_message_size(RESPONSE_BYTES_MAX);
    let registry = v1::registry_server::RegistryServer::new(services)
        .max_decoding_message_size(REQUEST_BYTES_MAX)
        .max_encoding_message_size(RESPONSE_BYTES_MAX);
    limits::server(&bounds)
        .add_service(health)
        .add_service(reflection)
        .add_service(ledger)
        .add_service(registry)
        .add_service(proofs)
        .serve_with_incoming_shutdown(incoming, async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        })
        .await?;
    Ok(())
}
