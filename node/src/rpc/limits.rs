//! Bounds on what clients can make the gRPC server hold, whoever they are: open connections,
//! and calls in progress across all connections.
//!
//! - **Connections** ([`LimitedIncoming`]): at most `connections_max` are open at once. A
//!   connection beyond that is closed as soon as it is accepted, so the client sees an error at
//!   once instead of hanging in the listen backlog. Each open connection holds at most its
//!   HTTP/2 receive window of unread request bytes ([`CONNECTION_WINDOW_BYTES`]).
//! - **Calls** ([`CallLimitLayer`]): at most `calls_max` calls are in progress at once, counted
//!   from the moment the call arrives until its response has been sent (or the client went
//!   away), so the request bytes being received and decoded and the responses being sent are
//!   bounded together. A call that waits for a commit (`SubmitAndWait`, `WaitForCommit`)
//!   counts only until its request has been received: waiting holds no more than a small
//!   future, and a closed-loop client may have many waiting. Of these calls, at most
//!   `large_calls_max` may be ones that return blocks (`GetBlock`, `StreamBlocks`), the
//!   largest responses. A call beyond either bound is answered `RESOURCE_EXHAUSTED` before
//!   anything of it is read.
//!
//! Invariant: every permit is released when the connection, the request body or the response
//! body that holds it is dropped, whatever way the call ends.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::Stream;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::Status;

/// HTTP/2 connection-level receive window of the gRPC server, in bytes: the most request bytes
/// one connection can have sent that no call has read yet. Above the largest request
/// (`SubmitBatch`, 256 KiB), so that one request never waits for a window update.
pub const CONNECTION_WINDOW_BYTES: u32 = 512 * 1024;
/// HTTP/2 stream-level receive window, in bytes: the most unread bytes of one request.
pub const STREAM_WINDOW_BYTES: u32 = 320 * 1024;
/// Most calls in progress on one connection; also its HTTP/2 concurrent-stream setting.
pub const CALLS_PER_CONNECTION_MAX: u32 = 256;
/// Least time between two warnings about refused connections.
const REFUSAL_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Methods that wait for a commit: they count against `calls_max` only while their request is
/// received.
const WAITING_METHODS: [&str; 2] = [
    "/yrd.v1.Ledger/SubmitAndWait",
    "/yrd.v1.Ledger/WaitForCommit",
];
/// Methods that return blocks: they also count against `large_calls_max`.
const LARGE_METHODS: [&str; 2] = ["/yrd.v1.Ledger/GetBlock", "/yrd.v1.Ledger/StreamBlocks"];

/// Counts refusals and warns about them at most every [`REFUSAL_WARN_INTERVAL`].
#[derive(Debug, Default)]
struct RefusalLog {
    state: Mutex<(Option<Instant>, u64)>,
}

impl RefusalLog {
    fn refused(&self, what: &str, max: usize) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.1 += 1;
        let due = state
            .0
            .is_none_or(|last| last.elapsed() >= REFUSAL_WARN_INTERVAL);
        if due {
            tracing::warn!(
                refused = state.1,
                max,
                "gRPC {what} refused: the bound is reached (count since the last warning)"
            );
            *state = (Some(Instant::now()), 0);
        }
    }
}

/// A client connection that holds one of the `connections_max` permits while it is open.
#[derive(Debug)]
pub struct LimitedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl Connected for LimitedStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The server's accepted connections, at most `connections_max` open at once; a connection
/// beyond that is closed at once. Accept errors (a client that reset before it was accepted,
/// a momentary lack of file descriptors) are logged and skipped, so they never end the server.
pub struct LimitedIncoming {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    max: usize,
    refusals: RefusalLog,
}

impl LimitedIncoming {
    /// Serves connections from `listener`, at most `max` of them open at once.
    #[must_use]
    pub fn new(listener: TcpListener, max: usize) -> Self {
        Self {
            listener,
            permits: Arc::new(Semaphore::new(max)),
            max,
            refusals: RefusalLog::default(),
        }
    }
}

impl Stream for LimitedIncoming {
    type Item = io::Result<LimitedStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let (stream, peer) = match this.listener.poll_accept(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(accepted)) => accepted,
                Poll::Ready(Err(error)) => {
                    tracing::debug!(%error, "gRPC accept failed");
                    continue;
                }
            };
            let Ok(permit) = this.permits.clone().try_acquire_owned() else {
                this.refusals.refused("connection", this.max);
                tracing::debug!(%peer, "gRPC connection closed: too many open");
                drop(stream);
                continue;
            };
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%peer, %error, "could not set TCP_NODELAY");
            }
            return Poll::Ready(Some(Ok(LimitedStream {
                stream,
                _permit: permit,
            })));
        }
    }
}

/// A body that holds permits until it ends or is dropped.
#[derive(Debug)]
pub struct PermitBody<B> {
    inner: B,
    permits: Vec<OwnedSemaphorePermit>,
}

impl<B> PermitBody<B> {
    fn new(inner: B, permits: Vec<OwnedSemaphorePermit>) -> Self {
        Self { inner, permits }
    }
}

impl<B: Body + Unpin> Body for PermitBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) || self.inner.is_end_stream() {
            self.permits.clear();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Bounds the calls in progress across every connection; see the module doc.
#[derive(Clone, Debug)]
pub struct CallLimitLayer {
    calls: Arc<Semaphore>,
    calls_max: usize,
    large: Arc<Semaphore>,
    large_max: usize,
    refusals: Arc<RefusalLog>,
}

impl CallLimitLayer {
    /// At most `calls_max` calls in progress, of them at most `large_calls_max` that return
    /// blocks.
    #[must_use]
    pub fn new(calls_max: usize, large_calls_max: usize) -> Self {
        Self {
            calls: Arc::new(Semaphore::new(calls_max)),
            calls_max,
            large: Arc::new(Semaphore::new(large_calls_max)),
            large_max: large_calls_max,
            refusals: Arc::default(),
        }
    }

    /// The permits a call to `path` needs, or the status that refuses it.
    fn admit(&self, path: &str) -> Result<Vec<OwnedSemaphorePermit>, Status> {
        let Ok(call) = self.calls.clone().try_acquire_owned() else {
            self.refusals.refused("call", self.calls_max);
            return Err(Status::resource_exhausted(format!(
                "the node is serving its most calls at once ({}); retry later",
                self.calls_max
            )));
        };
        if !LARGE_METHODS.contains(&path) {
            return Ok(vec![call]);
        }
        let Ok(large) = self.large.clone().try_acquire_owned() else {
            self.refusals.refused("block call", self.large_max);
            return Err(Status::resource_exhausted(format!(
                "the node is serving its most block calls at once ({}); retry later",
                self.large_max
            )));
        };
        Ok(vec![call, large])
    }
}

impl<S> tower_layer::Layer<S> for CallLimitLayer {
    type Service = CallLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallLimit {
            inner,
            limits: self.clone(),
        }
    }
}

/// The service [`CallLimitLayer`] wraps around the server's routes.
#[derive(Clone, Debug)]
pub struct CallLimit<S> {
    inner: S,
    limits: CallLimitLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ResBody> tower_service::Service<http::Request<tonic::body::Body>> for CallLimit<S>
where
    S: tower_service::Service<http::Request<tonic::body::Body>, Response = http::Response<ResBody>>
        + Send
        + 'static,
    S::Future: Send + 'static,
    ResBody: Body<Data = Bytes> + Default + Unpin + Send + 'static,
{
    type Response = http::Response<PermitBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let path = request.uri().path();
        let permits = match self.limits.admit(path) {
            Ok(permits) => permits,
            Err(status) => {
                let response = status.into_http::<ResBody>();
                return Box::pin(async move {
                    Ok(response.map(|body| PermitBody::new(body, Vec::new())))
                });
            }
        };
        if WAITING_METHODS.contains(&path) {
            // Held while the request is received only.
            let request =
                request.map(|body| tonic::body::Body::new(PermitBody::new(body, permits)));
            let future = self.inner.call(request);
            return Box::pin(async move {
                let response = future.await?;
                Ok(response.map(|body| PermitBody::new(body, Vec::new())))
            });
        }
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(|body| PermitBody::new(body, permits)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body of one frame, then its end.
    #[derive(Default)]
    struct OneFrame(Option<Bytes>);

    impl Body for OneFrame {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.take().map(|bytes| Ok(Frame::data(bytes))))
        }
    }

    /// Polls `body` once: `Some(true)` for a frame, `Some(false)` for its end, `None` if
    /// pending.
    fn poll_once<B: Body + Unpin>(body: &mut B) -> Option<bool> {
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        match Pin::new(body).poll_frame(&mut cx) {
            Poll::Ready(frame) => Some(frame.is_some()),
            Poll::Pending => None,
        }
    }

    #[test]
    fn a_body_holds_its_permits_until_its_end() {
        let semaphore = Arc::new(Semaphore::new(1));
        let permit = semaphore.clone().try_acquire_owned().expect("one permit");
        let mut body = PermitBody::new(OneFrame(Some(Bytes::from_static(b"x"))), vec![permit]);
        assert_eq!(semaphore.available_permits(), 0);
        assert_eq!(poll_once(&mut body), Some(true));
        assert_eq!(semaphore.available_permits(), 0, "released before the end");
        assert_eq!(poll_once(&mut body), Some(false));
        assert_eq!(semaphore.available_permits(), 1, "kept after the end");
    }

    #[test]
    fn a_dropped_body_releases_its_permits() {
        let semaphore = Arc::new(Semaphore::new(1));
        let permit = semaphore.clone().try_acquire_owned().expect("one permit");
        let body = PermitBody::new(OneFrame(Some(Bytes::from_static(b"x"))), vec![permit]);
        drop(body);
        assert_eq!(semaphore.available_permits(), 1);
    }

    #[test]
    fn calls_beyond_either_bound_are_refused_and_release_on_drop() {
        let limits = CallLimitLayer::new(2, 1);
        let block = limits.admit(LARGE_METHODS[0]).expect("a first block call");
        let refused = limits
            .admit(LARGE_METHODS[1])
            .expect_err("a second block call is one too many");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        // The refused block call gave back its general permit: one is left.
        let other = limits
            .admit("/yrd.v1.Ledger/GetStatus")
            .expect("a second call");
        let refused = limits
            .admit("/yrd.v1.Ledger/GetStatus")
            .expect_err("a third call is one too many");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        drop(block);
        drop(other);
        assert_eq!(limits.calls.available_permits(), 2);
        assert_eq!(limits.large.available_permits(), 1);
        limits.admit(LARGE_METHODS[1]).expect("room again");
    }

    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    /// A server of the health service alone, within these bounds, on a free port.
    async fn health_server(
        connections_max: usize,
        calls_max: usize,
    ) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (_reporter, health) = tonic_health::server::health_reporter();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(
            tonic::transport::Server::builder()
                .layer(CallLimitLayer::new(calls_max, 1))
                .add_service(health)
                .serve_with_incoming_shutdown(
                    LimitedIncoming::new(listener, connections_max),
                    async move {
                        let _ = stopped.await;
                    },
                ),
        );
        (address, stop)
    }

    async fn client(address: std::net::SocketAddr) -> HealthClient<tonic::transport::Channel> {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .expect("endpoint")
            .connect_lazy();
        HealthClient::new(channel)
    }

    async fn check(client: &mut HealthClient<tonic::transport::Channel>) -> Result<(), Status> {
        client
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map(drop)
    }

    /// Retries `check` until it succeeds, for at most 10 s: the server frees a permit only once
    /// it has seen the connection or stream that held it go.
    async fn succeeds_within_deadline(address: std::net::SocketAddr) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut fresh = client(address).await;
            match check(&mut fresh).await {
                Ok(()) => return,
                Err(status) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(%status, "not yet");
                    tokio::task::yield_now().await;
                }
                Err(status) => panic!("still refused after the holder left: {status}"),
            }
        }
    }

    #[tokio::test]
    async fn a_connection_beyond_the_bound_is_closed_and_its_place_comes_back() {
        let (address, _stop) = health_server(1, 16).await;
        let mut first = client(address).await;
        check(&mut first)
            .await
            .expect("the first connection is served");
        let mut second = client(address).await;
        check(&mut second)
            .await
            .expect_err("a second connection is one too many");
        // Still served on the first.
        check(&mut first).await.expect("the first is still served");
        drop(first);
        drop(second);
        succeeds_within_deadline(address).await;
    }

    #[tokio::test]
    async fn a_call_beyond_the_bound_is_refused_until_the_holder_ends() {
        let (address, _stop) = health_server(16, 1).await;
        let mut holder = client(address).await;
        // A watch stream is a call in progress for as long as it is open.
        let mut watch = holder
            .watch(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("watch")
            .into_inner();
        watch.message().await.expect("first status").expect("one");
        let mut other = client(address).await;
        let refused = check(&mut other).await.expect_err("one call too many");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused}");
        drop(watch);
        succeeds_within_deadline(address).await;
    }
}
