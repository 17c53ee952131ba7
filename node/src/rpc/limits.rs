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
//!   `large_calls_max` may be ones whose answer can run to megabytes (`LARGE_METHODS`:
//!   `GetBlock`, the registry's record views and lists, history and headers), and at most
//!   `streams_max` block streams (`StreamBlocks`, which last as long as their client wants
//!   and buffer a few blocks each). A call beyond a bound is answered `RESOURCE_EXHAUSTED`
//!   before anything of it is read.
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

use crate::config::RpcConfig;

/// HTTP/2 connection-level receive window of the gRPC server, in bytes: the most request bytes
/// one connection can have sent that no call has read yet. Above the largest request
/// (`SubmitBatch`, 256 KiB), so that one request never waits for a window update.
pub const CONNECTION_WINDOW_BYTES: u32 = 512 * 1024;
/// HTTP/2 stream-level receive window, in bytes: the most unread bytes of one request.
pub const STREAM_WINDOW_BYTES: u32 = 320 * 1024;
/// Most calls in progress on one connection; also its HTTP/2 concurrent-stream setting.
pub const CALLS_PER_CONNECTION_MAX: u32 = 256;
/// Largest header block of one request (all its metadata), in bytes: hyper's default, set here
/// so that it stays so (the `h2` crate alone would allow 16 MiB).
pub const HEADER_LIST_BYTES_MAX: u32 = 16 * 1024;
/// Interval of HTTP/2 pings on an idle connection, so that a connection whose client is gone
/// (crashed, or dropped by a NAT) gives its place back.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a ping may go unanswered before the connection is closed.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Pause of accepts after an accept error (out of file descriptors, say).
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);
/// Most connections accepted (or refused) in one poll of [`LimitedIncoming`].
const ACCEPTS_PER_POLL_MAX: usize = 64;
/// Least time between two warnings about refused connections.
const REFUSAL_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Methods that wait for a commit: they count against `calls_max` only while their request is
/// received.
const WAITING_METHODS: [&str; 2] = [
    "/yrd.v1.Ledger/SubmitAndWait",
    "/yrd.v1.Ledger/WaitForCommit",
];
/// Methods whose answer can run to megabytes (a block, a record with all its versions or
/// units or holdings, a list of reports, a page of history or headers): they also count
/// against `large_calls_max`.
const LARGE_METHODS: [&str; 7] = [
    "/yrd.v1.Ledger/GetBlock",
    "/yrd.v1.Registry/GetCreditReport",
    "/yrd.v1.Registry/ListCreditReports",
    "/yrd.v1.Registry/GetReceivable",
    "/yrd.v1.Registry/GetFund",
    "/yrd.v1.Proofs/GetHistory",
    "/yrd.v1.Proofs/GetHeaders",
];
/// The block stream: long-lived, it counts against `streams_max` instead.
const STREAM_METHOD: &str = "/yrd.v1.Ledger/StreamBlocks";

/// The gRPC server builder with every bound of this module but the connections' (which
/// [`LimitedIncoming`] applies): per connection, calls, HTTP/2 windows, header size and
/// keepalive; across connections, the calls ([`CallLimitLayer`]).
#[must_use]
pub fn server(
    bounds: &RpcConfig,
) -> tonic::transport::Server<tower_layer::Stack<CallLimitLayer, tower_layer::Identity>> {
    server_with_keepalive(bounds, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT)
}

/// [`server`] with other keepalive timings, so that a test need not wait for the real ones.
fn server_with_keepalive(
    bounds: &RpcConfig,
    keepalive_interval: Duration,
    keepalive_timeout: Duration,
) -> tonic::transport::Server<tower_layer::Stack<CallLimitLayer, tower_layer::Identity>> {
    tonic::transport::Server::builder()
        .concurrency_limit_per_connection(CALLS_PER_CONNECTION_MAX as usize)
        .max_concurrent_streams(CALLS_PER_CONNECTION_MAX)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .http2_max_header_list_size(HEADER_LIST_BYTES_MAX)
        .http2_keepalive_interval(Some(keepalive_interval))
        .http2_keepalive_timeout(Some(keepalive_timeout))
        .layer(CallLimitLayer::new(bounds))
}

/// Counts one bound's refusals and warns about them at most every [`REFUSAL_WARN_INTERVAL`].
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
    connections: Bound,
    /// After an accept error, no accept until this passes.
    backoff: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl LimitedIncoming {
    /// Serves connections from `listener`, at most `max` of them open at once.
    #[must_use]
    pub fn new(listener: TcpListener, max: usize) -> Self {
        Self {
            listener,
            connections: Bound::new(max, "connection"),
            backoff: None,
        }
    }
}

impl Stream for LimitedIncoming {
    type Item = io::Result<LimitedStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(backoff) = &mut this.backoff {
            if backoff.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.backoff = None;
        }
        for _ in 0..ACCEPTS_PER_POLL_MAX {
            let (stream, peer) = match this.listener.poll_accept(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(accepted)) => accepted,
                Poll::Ready(Err(error))
                    if matches!(
                        error.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    // That one client is gone before it was accepted.
                    tracing::debug!(%error, "gRPC accept failed");
                    continue;
                }
                Poll::Ready(Err(error)) => {
                    // Out of file descriptors, say: retrying at once would only spin.
                    tracing::warn!(%error, "gRPC accept failed; pausing accepts");
                    let mut backoff = Box::pin(tokio::time::sleep(ACCEPT_ERROR_BACKOFF));
                    let _ = backoff.as_mut().poll(cx);
                    this.backoff = Some(backoff);
                    return Poll::Pending;
                }
            };
            let Some(permit) = this.connections.take() else {
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
        // A flood of connections to refuse: let the runtime's other tasks run, then go on.
        cx.waker().wake_by_ref();
        Poll::Pending
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

/// One bound: a number of permits shared by every clone, and the log of its refusals.
#[derive(Clone, Debug)]
struct Bound {
    permits: Arc<Semaphore>,
    max: usize,
    what: &'static str,
    refusals: Arc<RefusalLog>,
}

impl Bound {
    fn new(max: usize, what: &'static str) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
            what,
            refusals: Arc::default(),
        }
    }

    /// A permit, or `None` (counted and warned about) when every one is taken.
    fn take(&self) -> Option<OwnedSemaphorePermit> {
        let permit = self.permits.clone().try_acquire_owned().ok();
        if permit.is_none() {
            self.refusals.refused(self.what, self.max);
        }
        permit
    }

    /// A permit for a call, or the status that refuses it.
    fn take_for_call(&self) -> Result<OwnedSemaphorePermit, Status> {
        self.take().ok_or_else(|| {
            Status::resource_exhausted(format!(
                "the node is serving its most {}s at once ({}); retry later",
                self.what, self.max
            ))
        })
    }
}

/// Bounds the calls in progress across every connection; see the module doc.
#[derive(Clone, Debug)]
pub struct CallLimitLayer {
    calls: Bound,
    large: Bound,
    streams: Bound,
}

impl CallLimitLayer {
    /// At most `bounds.calls_max` calls in progress; of them at most `bounds.large_calls_max`
    /// whose answer can run to megabytes and `bounds.streams_max` block streams.
    #[must_use]
    pub fn new(bounds: &RpcConfig) -> Self {
        Self {
            calls: Bound::new(bounds.calls_max, "call"),
            large: Bound::new(bounds.large_calls_max, "large call"),
            streams: Bound::new(bounds.streams_max, "block stream"),
        }
    }

    /// The permits a call to `path` needs, or the status that refuses it. Permits taken before
    /// a refusal are given back as the refusal returns.
    fn admit(&self, path: &str) -> Result<Vec<OwnedSemaphorePermit>, Status> {
        let call = self.calls.take_for_call()?;
        if LARGE_METHODS.contains(&path) {
            return Ok(vec![call, self.large.take_for_call()?]);
        }
        if path == STREAM_METHOD {
            return Ok(vec![call, self.streams.take_for_call()?]);
        }
        Ok(vec![call])
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
        // A waiting call holds its permits while its request is received only; any other
        // until its response has been sent.
        let (request, response_permits) = if WAITING_METHODS.contains(&path) {
            let request =
                request.map(|body| tonic::body::Body::new(PermitBody::new(body, permits)));
            (request, Vec::new())
        } else {
            (request, permits)
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(|body| PermitBody::new(body, response_permits)))
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

    fn bounds(calls_max: usize, large_calls_max: usize, streams_max: usize) -> RpcConfig {
        RpcConfig {
            calls_max,
            large_calls_max,
            streams_max,
            ..RpcConfig::default()
        }
    }

    /// Every method the bounds name is a method of the services, so that a renamed method
    /// cannot silently fall into another class.
    #[test]
    fn the_classified_methods_exist() {
        use yrd_proto::v1::{ledger_server, proofs_server, registry_server};
        let services = [
            ledger_server::SERVICE_NAME,
            registry_server::SERVICE_NAME,
            proofs_server::SERVICE_NAME,
        ];
        let descriptors = yrd_proto::FILE_DESCRIPTOR_SET;
        for path in WAITING_METHODS
            .iter()
            .chain(LARGE_METHODS.iter())
            .chain([STREAM_METHOD].iter())
        {
            let (service, method) = path
                .strip_prefix('/')
                .and_then(|path| path.split_once('/'))
                .expect("/service/method");
            assert!(services.contains(&service), "{path}: no such service");
            let found = descriptors
                .windows(method.len())
                .any(|window| window == method.as_bytes());
            assert!(found, "{path}: no such method");
        }
    }

    #[test]
    fn calls_beyond_any_bound_are_refused_and_release_on_drop() {
        let limits = CallLimitLayer::new(&bounds(3, 1, 1));
        let large = limits.admit(LARGE_METHODS[0]).expect("a first large call");
        let refused = limits
            .admit(LARGE_METHODS[3])
            .expect_err("a second large call is one too many");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        let stream = limits.admit(STREAM_METHOD).expect("a first stream");
        let refused = limits
            .admit(STREAM_METHOD)
            .expect_err("a second stream is one too many");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        // The refused calls gave back their general permits: one is left.
        let other = limits
            .admit("/yrd.v1.Ledger/GetStatus")
            .expect("a third call");
        let refused = limits
            .admit("/yrd.v1.Ledger/GetStatus")
            .expect_err("a fourth call is one too many");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        drop((large, stream, other));
        assert_eq!(limits.calls.permits.available_permits(), 3);
        assert_eq!(limits.large.permits.available_permits(), 1);
        assert_eq!(limits.streams.permits.available_permits(), 1);
        limits.admit(LARGE_METHODS[6]).expect("room again");
    }

    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    /// A server of the health service alone, within these bounds, on a free port.
    async fn health_server(
        connections_max: usize,
        calls_max: usize,
    ) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        health_server_with_keepalive(connections_max, calls_max, KEEPALIVE_INTERVAL).await
    }

    /// [`health_server`] whose keepalive pings go out every `keepalive`, each to be answered
    /// within `keepalive` as well.
    async fn health_server_with_keepalive(
        connections_max: usize,
        calls_max: usize,
        keepalive: Duration,
    ) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (_reporter, health) = tonic_health::server::health_reporter();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(
            server_with_keepalive(
                &RpcConfig {
                    connections_max,
                    ..bounds(calls_max, 1, 1)
                },
                keepalive,
                keepalive,
            )
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
    async fn a_request_with_oversized_metadata_is_refused() {
        let (address, _stop) = health_server(16, 16).await;
        let mut client = client(address).await;
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: String::new(),
        });
        let big = "x".repeat(HEADER_LIST_BYTES_MAX as usize * 2);
        request
            .metadata_mut()
            .insert("x-big", big.parse().expect("ascii"));
        client.check(request).await.expect_err("too much metadata");
        check(&mut client)
            .await
            .expect("a normal call is still served");
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

    /// HTTP/2 frame types and flags this test client needs (RFC 9113, section 6).
    const FRAME_SETTINGS: u8 = 0x4;
    const FRAME_PING: u8 = 0x6;
    const FLAG_ACK: u8 = 0x1;

    /// Writes one HTTP/2 frame on stream 0.
    async fn write_frame(
        stream: &mut tokio::net::TcpStream,
        kind: u8,
        flags: u8,
        payload: &[u8],
    ) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        let length = u32::try_from(payload.len()).expect("a small payload");
        let mut frame = length.to_be_bytes()[1..].to_vec();
        frame.extend_from_slice(&[kind, flags, 0, 0, 0, 0]);
        frame.extend_from_slice(payload);
        stream.write_all(&frame).await
    }

    /// A raw HTTP/2 client: sends the preface and its settings, then reads the server's frames
    /// until the server closes the connection, answering its settings and (if `answer_pings`)
    /// its pings, or until it has seen `pings_max` pings. Returns the pings seen and whether
    /// the server closed the connection.
    async fn raw_client(
        address: std::net::SocketAddr,
        answer_pings: bool,
        pings_max: usize,
    ) -> (usize, bool) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .expect("preface");
        write_frame(&mut stream, FRAME_SETTINGS, 0, &[])
            .await
            .expect("settings");
        let mut pings = 0;
        loop {
            let mut header = [0_u8; 9];
            if stream.read_exact(&mut header).await.is_err() {
                return (pings, true);
            }
            let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            let mut payload = vec![0_u8; length];
            if stream.read_exact(&mut payload).await.is_err() {
                return (pings, true);
            }
            let (kind, flags) = (header[3], header[4]);
            if kind == FRAME_SETTINGS && flags & FLAG_ACK == 0 && answer_pings {
                let _ = write_frame(&mut stream, FRAME_SETTINGS, FLAG_ACK, &[]).await;
            }
            if kind == FRAME_PING && flags & FLAG_ACK == 0 {
                pings += 1;
                if pings >= pings_max {
                    return (pings, false);
                }
                if answer_pings {
                    let _ = write_frame(&mut stream, FRAME_PING, FLAG_ACK, &payload).await;
                }
            }
        }
    }

    #[tokio::test]
    async fn a_client_that_stops_answering_pings_is_closed_and_its_place_comes_back() {
        let keepalive = Duration::from_millis(300);
        let (address, _stop) = health_server_with_keepalive(2, 16, keepalive).await;
        let deadline = Duration::from_secs(20);
        // A client that answers every ping is still connected after five of them, well past
        // the time an unanswered ping is allowed.
        let answering = tokio::spawn(tokio::time::timeout(deadline, raw_client(address, true, 5)));
        // One that answers none is closed by the server after its first ping.
        let (pings, closed) = tokio::time::timeout(deadline, raw_client(address, false, 100))
            .await
            .expect("the server closes a silent client");
        assert!(closed, "closed by the server");
        assert!(
            pings >= 1,
            "closed after a ping went unanswered ({pings} pings)"
        );
        let (pings, closed) = answering
            .await
            .expect("answering client")
            .expect("five pings come within the deadline");
        assert_eq!((pings, closed), (5, false), "an answering client stays");
        // Both places are free again: the silent client's once the server closed it.
        succeeds_within_deadline(address).await;
    }
}
