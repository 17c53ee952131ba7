//! The gRPC connection of the CLI to one node: the `Ledger`, `Registry` and `Proofs` clients
//! with a deadline on every call.
//!
//! Invariant: every unary call carries the `grpc-timeout` of `--timeout-secs` and is also cut
//! off locally shortly after it, so the CLI never hangs on a silent node; responses are bounded
//! by `MESSAGE_BYTES_MAX`. Only a block stream, once open, runs without a deadline.

use std::future::Future;
use std::time::{Duration, Instant};

use tonic::codec::Streaming;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;
use yrd_proto::limits::MESSAGE_BYTES_MAX;
use yrd_proto::signing::Hash;
use yrd_proto::v1::{
    self, ledger_client::LedgerClient, proofs_client::ProofsClient, registry_client::RegistryClient,
};

use crate::error::CliError;

/// Extra time the local deadline allows after the gRPC deadline, so the node's own
/// `DEADLINE_EXCEEDED` (with its message) usually arrives first.
const LOCAL_DEADLINE_GRACE: Duration = Duration::from_millis(500);

/// A connection to a node.
pub struct Node {
    ledger: LedgerClient<Channel>,
    registry: RegistryClient<Channel>,
    proofs: ProofsClient<Channel>,
    timeout: Duration,
}

impl Node {
    /// Connects to `endpoint` (e.g. `http://127.0.0.1:7100`) within `timeout`.
    pub async fn connect(endpoint: &str, timeout: Duration) -> Result<Self, CliError> {
        let target = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|error| CliError::Input(format!("--endpoint {endpoint:?}: {error}")))?
            .connect_timeout(timeout);
        let connect_error = |reason: String| CliError::Connect {
            endpoint: endpoint.to_owned(),
            reason,
        };
        let channel = tokio::time::timeout(timeout, target.connect())
            .await
            .map_err(|_| connect_error(format!("no connection within {} s", timeout.as_secs())))?
            .map_err(|error| connect_error(error_chain(&error)))?;
        Ok(Self {
            ledger: LedgerClient::new(channel.clone()).max_decoding_message_size(MESSAGE_BYTES_MAX),
            registry: RegistryClient::new(channel.clone())
                .max_decoding_message_size(MESSAGE_BYTES_MAX),
            proofs: ProofsClient::new(channel).max_decoding_message_size(MESSAGE_BYTES_MAX),
            timeout,
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    async fn deadline<T>(
        call: &'static str,
        timeout: Duration,
        future: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, CliError> {
        let started = Instant::now();
        let timed_out = CliError::Timeout {
            call,
            seconds: timeout.as_secs(),
        };
        match tokio::time::timeout(timeout + LOCAL_DEADLINE_GRACE, future).await {
            Err(_) => Err(timed_out),
            // A tonic server enforces `grpc-timeout` by answering CANCELLED; past the deadline
            // that is a deadline exceeded, not a cancellation by anyone.
            Ok(Err(status)) if status.code() == Code::Cancelled && started.elapsed() >= timeout => {
                Err(timed_out)
            }
            Ok(Err(status)) => Err(CliError::Status { call, status }),
            Ok(Ok(response)) => Ok(response.into_inner()),
        }
    }

    /// `Ledger.GetStatus`.
    pub async fn status(&mut self) -> Result<v1::StatusResponse, CliError> {
        let request = self.request(v1::StatusRequest {});
        Self::deadline("GetStatus", self.timeout, self.ledger.get_status(request)).await
    }

    /// `Ledger.Submit`: the transaction hash the node computed.
    pub async fn submit(
        &mut self,
        transaction: v1::SignedTransaction,
    ) -> Result<Vec<u8>, CliError> {
        let request = self.request(v1::SubmitRequest {
            transaction: Some(transaction),
        });
        let response = Self::deadline("Submit", self.timeout, self.ledger.submit(request)).await?;
        Ok(response.tx_hash)
    }

    /// `Ledger.SubmitAndWait`.
    pub async fn submit_and_wait(
        &mut self,
        transaction: v1::SignedTransaction,
    ) -> Result<v1::TransactionResult, CliError> {
        let request = self.request(v1::SubmitRequest {
            transaction: Some(transaction),
        });
        Self::deadline(
            "SubmitAndWait",
            self.timeout,
            self.ledger.submit_and_wait(request),
        )
        .await
    }

    /// `Ledger.WaitForCommit`.
    pub async fn wait_for_commit(
        &mut self,
        hash: &Hash,
    ) -> Result<v1::TransactionResult, CliError> {
        let request = self.request(v1::TransactionHash {
            tx_hash: hash.to_vec(),
        });
        Self::deadline(
            "WaitForCommit",
            self.timeout,
            self.ledger.wait_for_commit(request),
        )
        .await
    }

    /// `Ledger.GetTransaction`.
    pub async fn transaction(&mut self, hash: &Hash) -> Result<v1::TransactionResult, CliError> {
        let request = self.request(v1::TransactionHash {
            tx_hash: hash.to_vec(),
        });
        Self::deadline(
            "GetTransaction",
            self.timeout,
            self.ledger.get_transaction(request),
        )
        .await
    }

    /// `Ledger.GetBlock`.
    pub async fn block(
        &mut self,
        selector: v1::get_block_request::Selector,
    ) -> Result<v1::CommittedBlock, CliError> {
        let request = self.request(v1::GetBlockRequest {
            selector: Some(selector),
        });
        Self::deadline("GetBlock", self.timeout, self.ledger.get_block(request)).await
    }

    /// `Ledger.StreamBlocks`: opens the stream within the timeout; the stream itself has none.
    pub async fn stream_blocks(
        &mut self,
        from_height: u64,
    ) -> Result<Streaming<v1::CommittedBlock>, CliError> {
        let request = tonic::Request::new(v1::StreamBlocksRequest { from_height });
        Self::deadline(
            "StreamBlocks",
            self.timeout,
            self.ledger.stream_blocks(request),
        )
        .await
    }

    /// `Registry.GetMember`.
    pub async fn member(&mut self, uscc: &str) -> Result<v1::MemberRecord, CliError> {
        let request = self.request(v1::MemberQuery {
            uscc: uscc.to_owned(),
        });
        Self::deadline("GetMember", self.timeout, self.registry.get_member(request)).await
    }

    /// `Registry.GetCreditReport`.
    pub async fn report(
        &mut self,
        report_id: &str,
        query_tx: Option<&Hash>,
    ) -> Result<v1::CreditReportView, CliError> {
        let request = self.request(v1::CreditReportQuery {
            report_id: report_id.to_owned(),
            query_tx_hash: query_tx.map(|hash| hash.to_vec()).unwrap_or_default(),
        });
        Self::deadline(
            "GetCreditReport",
            self.timeout,
            self.registry.get_credit_report(request),
        )
        .await
    }

    /// `Registry.ListCreditReports`.
    pub async fn reports(&mut self, subject: &str) -> Result<v1::CreditReportList, CliError> {
        let request = self.request(v1::SubjectQuery {
            subject_uscc: subject.to_owned(),
        });
        Self::deadline(
            "ListCreditReports",
            self.timeout,
            self.registry.list_credit_reports(request),
        )
        .await
    }

    /// `Registry.GetReceivable`.
    pub async fn receivable(&mut self, id: &str) -> Result<v1::ReceivableView, CliError> {
        let request = self.request(v1::ReceivableQuery {
            receivable_id: id.to_owned(),
        });
        Self::deadline(
            "GetReceivable",
            self.timeout,
            self.registry.get_receivable(request),
        )
        .await
    }

    /// `Registry.GetFund`.
    pub async fn fund(&mut self, id: &str) -> Result<v1::FundView, CliError> {
        let request = self.request(v1::FundQuery {
            fund_id: id.to_owned(),
        });
        Self::deadline("GetFund", self.timeout, self.registry.get_fund(request)).await
    }

    /// `Proofs.GetStateProof`.
    pub async fn state_proof(
        &mut self,
        request: v1::StateProofRequest,
    ) -> Result<v1::StateProofResponse, CliError> {
        let request = self.request(request);
        Self::deadline(
            "GetStateProof",
            self.timeout,
            self.proofs.get_state_proof(request),
        )
        .await
    }

    /// `Proofs.GetHistory`.
    pub async fn history(
        &mut self,
        request: v1::HistoryRequest,
    ) -> Result<v1::HistoryResponse, CliError> {
        let request = self.request(request);
        Self::deadline("GetHistory", self.timeout, self.proofs.get_history(request)).await
    }

    /// `Proofs.GetHeaders`.
    pub async fn headers(
        &mut self,
        request: v1::HeadersRequest,
    ) -> Result<v1::HeadersResponse, CliError> {
        let request = self.request(request);
        Self::deadline("GetHeaders", self.timeout, self.proofs.get_headers(request)).await
    }

    /// `Proofs.GetValidatorSet`.
    pub async fn validator_set(
        &mut self,
        request: v1::ValidatorSetRequest,
    ) -> Result<v1::ValidatorSetResponse, CliError> {
        let request = self.request(request);
        Self::deadline(
            "GetValidatorSet",
            self.timeout,
            self.proofs.get_validator_set(request),
        )
        .await
    }
}

/// An error and its sources on one line (transport errors hide the useful part in a source).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Transport errors often repeat their cause in their own message.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
mod tests {
    use std::pin::Pin;

    use futures::Stream;
    use tonic::{Request, Response, Status};
    use yrd_proto::signing::verify_transaction;
    use yrd_proto::v1::ledger_server::{Ledger, LedgerServer};

    use super::*;
    use crate::error::{EXIT_DEADLINE_EXCEEDED, EXIT_NOT_FOUND};

    const CHAIN_ID: &str = "yrd-test";

    /// A ledger that verifies what it is sent, as the contract says, and answers from memory.
    struct MockLedger;

    type Answer<T> = Result<Response<T>, Status>;

    fn verified_hash(request: Request<v1::SubmitRequest>) -> Result<Vec<u8>, Status> {
        let envelope = request
            .into_inner()
            .transaction
            .ok_or_else(|| Status::invalid_argument("no transaction"))?;
        let verified = verify_transaction(envelope, CHAIN_ID)
            .map_err(|error| Status::invalid_argument(error.to_string()))?;
        Ok(verified.hash.to_vec())
    }

    fn block(height: u64) -> v1::CommittedBlock {
        v1::CommittedBlock {
            block: Some(v1::Block {
                header: Some(v1::BlockHeader {
                    chain_id: CHAIN_ID.into(),
                    height,
                    ..Default::default()
                }),
                transactions: vec![],
                transaction_refs: vec![],
            }),
            receipts: vec![],
            certificate: None,
        }
    }

    #[tonic::async_trait]
    impl Ledger for MockLedger {
        async fn submit(&self, request: Request<v1::SubmitRequest>) -> Answer<v1::SubmitResponse> {
            Ok(Response::new(v1::SubmitResponse {
                tx_hash: verified_hash(request)?,
            }))
        }

        async fn submit_batch(
            &self,
            _request: Request<v1::SubmitBatchRequest>,
        ) -> Answer<v1::SubmitBatchResponse> {
            Err(Status::unimplemented("the CLI does not submit batches"))
        }

        async fn submit_and_wait(
            &self,
            request: Request<v1::SubmitRequest>,
        ) -> Answer<v1::TransactionResult> {
            let tx_hash = verified_hash(request)?;
            Ok(Response::new(v1::TransactionResult {
                transaction: None,
                receipt: Some(v1::Receipt {
                    tx_hash,
                    accepted: false,
                    reason: v1::ReasonCode::ReasonReceivableNotFound as i32,
                    detail: "no receivable AR-1".into(),
                    created_id: String::new(),
                }),
                height: 8,
                tx_index: 0,
                block_hash: vec![8; 32],
            }))
        }

        async fn wait_for_commit(
            &self,
            _request: Request<v1::TransactionHash>,
        ) -> Answer<v1::TransactionResult> {
            // Never commits: the client's deadline must end the wait.
            tokio::time::sleep(Duration::from_secs(30)).await;
            Err(Status::internal("unreachable"))
        }

        async fn get_transaction(
            &self,
            _request: Request<v1::TransactionHash>,
        ) -> Answer<v1::TransactionResult> {
            Err(Status::not_found("no such transaction"))
        }

        async fn get_block(
            &self,
            _request: Request<v1::GetBlockRequest>,
        ) -> Answer<v1::CommittedBlock> {
            Err(Status::unimplemented("not in the mock"))
        }

        type StreamBlocksStream =
            Pin<Box<dyn Stream<Item = Result<v1::CommittedBlock, Status>> + Send + 'static>>;

        async fn stream_blocks(
            &self,
            request: Request<v1::StreamBlocksRequest>,
        ) -> Answer<Self::StreamBlocksStream> {
            let from = request.into_inner().from_height;
            let blocks = (from..from + 3).map(|height| Ok(block(height)));
            Ok(Response::new(Box::pin(futures::stream::iter(blocks))))
        }

        async fn get_status(
            &self,
            _request: Request<v1::StatusRequest>,
        ) -> Answer<v1::StatusResponse> {
            Ok(Response::new(v1::StatusResponse {
                chain_id: CHAIN_ID.into(),
                height: 7,
                ..Default::default()
            }))
        }
    }

    async fn serve() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(LedgerServer::new(MockLedger))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        format!("http://{address}")
    }

    fn signed(chain_id: &str) -> (v1::SignedTransaction, Hash) {
        let body = crate::transaction::build_body(
            v1::transaction_body::Action::ConfirmReceivable(v1::ConfirmReceivable {
                receivable_id: "AR-1".into(),
            }),
            chain_id,
            1,
            u64::MAX,
        )
        .unwrap();
        crate::transaction::sign(&body, &[yrd_node::keyfile::generate()]).unwrap()
    }

    #[tokio::test]
    async fn calls_follow_the_service_contract() {
        let endpoint = serve().await;
        let mut node = Node::connect(&endpoint, Duration::from_secs(1))
            .await
            .unwrap();
        let status = node.status().await.unwrap();
        assert_eq!((status.chain_id.as_str(), status.height), (CHAIN_ID, 7));

        let (envelope, hash) = signed(CHAIN_ID);
        assert_eq!(node.submit(envelope.clone()).await.unwrap(), hash.to_vec());
        let result = node.submit_and_wait(envelope).await.unwrap();
        let receipt = result.receipt.unwrap();
        assert_eq!(receipt.tx_hash, hash.to_vec());
        assert!(!receipt.accepted);

        let (wrong_chain, _) = signed("other-chain");
        let error = node.submit(wrong_chain).await.unwrap_err();
        assert_eq!(error.exit_code(), 3, "{error}");

        let error = node.transaction(&hash).await.unwrap_err();
        assert_eq!(error.exit_code(), EXIT_NOT_FOUND);
        assert!(error.to_string().contains("NOT_FOUND"), "{error}");

        let error = node.wait_for_commit(&hash).await.unwrap_err();
        assert_eq!(error.exit_code(), EXIT_DEADLINE_EXCEEDED, "{error}");

        let mut stream = node.stream_blocks(5).await.unwrap();
        let mut heights = Vec::new();
        while let Some(block) = stream.message().await.unwrap() {
            heights.push(block.block.unwrap().header.unwrap().height);
        }
        assert_eq!(heights, vec![5, 6, 7]);
    }

    #[tokio::test]
    async fn an_absent_node_is_reported() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let error = Node::connect(&endpoint, Duration::from_secs(1))
            .await
            .err()
            .unwrap();
        assert!(matches!(error, CliError::Connect { .. }), "{error}");
        assert!(Node::connect("not a url", Duration::from_secs(1))
            .await
            .is_err());
    }
}
