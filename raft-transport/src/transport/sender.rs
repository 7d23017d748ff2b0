//! The per-peer append pipeline: one persistent HTTP/1.1 connection, one
//! request at a time, everything queued meanwhile batched into the next.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use raft_core::{Message, MessageBody, NodeId};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpSocket;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

use super::{BATCH_PATH, HEADER_CLUSTER_ID, HEADER_FROM, HEADER_TO, MAX_BATCH_SEND_BYTES, Shared};
use crate::peer_url::PeerUrl;

/// The first reconnect delay after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
/// The longest reconnect delay.
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long a TCP connect and HTTP handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one batch request may take, response included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a response body a sender reads (refusal reasons are short).
const MAX_RESPONSE_BYTES: usize = 64 << 10;

/// Why a request to a peer failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum SendError {
    #[error("connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("connect: timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error("{0}")]
    Tls(#[source] crate::tls::HandshakeError),
    #[error("http: {0}")]
    Http(#[source] hyper::Error),
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    #[error("refused with {status}: {reason}")]
    Refused { status: StatusCode, reason: String },
    #[error("reading the response: {0}")]
    Response(String),
    #[error("building the request: {0}")]
    Request(#[source] hyper::http::Error),
    #[error("encoding the snapshot: {0}")]
    Encode(#[source] raft_snap::EncodeError),
}

/// Exponential backoff of connection attempts.
#[derive(Debug)]
struct Backoff {
    delay: Duration,
    next_attempt: Option<Instant>,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            delay: BACKOFF_MIN,
            next_attempt: None,
        }
    }

    fn may_try(&self, now: Instant) -> bool {
        self.next_attempt.is_none_or(|t| now >= t)
    }

    fn failed(&mut self, now: Instant) {
        self.next_attempt = Some(now + self.delay);
        self.delay = (self.delay * 2).min(BACKOFF_MAX);
    }

    fn succeeded(&mut self) {
        self.delay = BACKOFF_MIN;
        self.next_attempt = None;
    }
}

/// Runs the sender of peer `to` until its queue is closed.
pub(super) async fn run(
    shared: Arc<Shared>,
    to: NodeId,
    url: PeerUrl,
    mut queue: mpsc::Receiver<Message>,
    overflowing: Arc<AtomicBool>,
) {
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    let mut backoff = Backoff::new();
    let mut carry: Option<Message> = None;
    // Whether the peer is believed reachable, so state changes are logged
    // once rather than per batch.
    let mut healthy = true;
    loop {
        let first = match carry.take() {
            Some(m) => m,
            None => match queue.recv().await {
                Some(m) => m,
                None => break,
            },
        };
        let batch = fill_batch(first, &mut queue, &mut carry);
        if conn.as_ref().is_some_and(SendRequest::is_closed) {
            conn = None;
        }
        if conn.is_none() {
            if !backoff.may_try(Instant::now()) {
                tracing::trace!(peer = %to, dropped = batch.len(), "peer down; messages dropped");
                shared.dropped(to, batch.len());
                continue;
            }
            match connect(&shared, to, &url).await {
                Ok(sender) => conn = Some(sender),
                Err(e) => {
                    if healthy {
                        tracing::warn!(peer = %to, url = %url, error = %e, "peer unreachable");
                        healthy = false;
                    } else {
                        tracing::debug!(peer = %to, url = %url, error = %e, "peer still unreachable");
                    }
                    backoff.failed(Instant::now());
                    shared.dropped(to, batch.len());
                    continue;
                }
            }
        }
        let Some(sender) = conn.as_mut() else {
            continue;
        };
        match send_batch(&shared, to, &url, sender, &batch).await {
            Ok(()) => {
                if !healthy {
                    tracing::info!(peer = %to, url = %url, "peer reachable again");
                    healthy = true;
                }
                backoff.succeeded();
                shared.sent(batch.len());
                shared.clear_overflow(to, &overflowing);
            }
            Err(e) => {
                if healthy {
                    tracing::warn!(peer = %to, url = %url, error = %e, messages = batch.len(), "sending to peer failed");
                    healthy = false;
                } else {
                    tracing::debug!(peer = %to, url = %url, error = %e, "sending to peer failed again");
                }
                conn = None;
                backoff.failed(Instant::now());
                shared.dropped(to, batch.len());
            }
        }
    }
    tracing::debug!(peer = %to, "peer sender stopped");
}

/// A rough upper bound of a message's encoded size, for capping batches.
fn size_hint(message: &Message) -> usize {
    const OVERHEAD: usize = 64;
    const ENTRY_OVERHEAD: usize = 32;
    let entries = |es: &[raft_core::Entry]| -> usize {
        es.iter().map(|e| e.data.len() + ENTRY_OVERHEAD).sum()
    };
    OVERHEAD
        + match &message.body {
            MessageBody::Append(a) => entries(&a.entries),
            MessageBody::Propose(p) => entries(&p.entries),
            MessageBody::ReadIndex(r) => r.context.len(),
            MessageBody::ReadIndexResponse(r) => r.context.len(),
            MessageBody::Snapshot(s) => s.data.len(),
            _ => 0,
        }
}

/// `first` and whatever else is queued, up to [`MAX_BATCH_SEND_BYTES`]; a
/// message that would overflow the batch is left in `carry`.
fn fill_batch(
    first: Message,
    queue: &mut mpsc::Receiver<Message>,
    carry: &mut Option<Message>,
) -> Vec<Message> {
    let mut size = size_hint(&first);
    let mut batch = vec![first];
    while size < MAX_BATCH_SEND_BYTES {
        let Ok(next) = queue.try_recv() else { break };
        let next_size = size_hint(&next);
        if size + next_size > MAX_BATCH_SEND_BYTES {
            *carry = Some(next);
            break;
        }
        size += next_size;
        batch.push(next);
    }
    batch
}

async fn send_batch(
    shared: &Shared,
    to: NodeId,
    url: &PeerUrl,
    sender: &mut SendRequest<Full<Bytes>>,
    batch: &[Message],
) -> Result<(), SendError> {
    let body = Full::new(raft_proto::encode_batch(batch));
    let request = request(shared, to, url, BATCH_PATH, body)?;
    let exchange = async {
        sender.ready().await.map_err(SendError::Http)?;
        let response = sender
            .send_request(request)
            .await
            .map_err(SendError::Http)?;
        check_response(response).await
    };
    timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| SendError::Timeout(REQUEST_TIMEOUT))?
}

/// A request to `path` of peer `to` with the transport's headers.
pub(super) fn request<B>(
    shared: &Shared,
    to: NodeId,
    url: &PeerUrl,
    path: &str,
    body: B,
) -> Result<Request<B>, SendError> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(HOST, url.authority())
        .header(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        )
        .header(HEADER_CLUSTER_ID, shared.cluster_header())
        .header(HEADER_FROM, shared.id.get())
        .header(HEADER_TO, to.get())
        .body(body)
        .map_err(SendError::Request)
}

/// Reads the response; an error unless it is a success.
pub(super) async fn check_response(response: Response<Incoming>) -> Result<(), SendError> {
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| SendError::Response(e.to_string()))?
        .to_bytes();
    if status.is_success() {
        Ok(())
    } else {
        Err(SendError::Refused {
            status,
            reason: String::from_utf8_lossy(&body).trim().to_string(),
        })
    }
}

/// Opens a connection to peer `to` at `url` (bound to `bind_outgoing` if
/// set), over mutual TLS if this node has it, and spawns its driver task.
pub(super) async fn connect<B>(
    shared: &Shared,
    to: NodeId,
    url: &PeerUrl,
) -> Result<SendRequest<B>, SendError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let attempt = async {
        let addr = url.addr();
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(SendError::Connect)?;
        if let Some(ip) = shared.bind_outgoing {
            socket
                .bind(SocketAddr::new(ip, 0))
                .map_err(SendError::Connect)?;
        }
        let stream = socket.connect(addr).await.map_err(SendError::Connect)?;
        stream.set_nodelay(true).map_err(SendError::Connect)?;
        match &shared.tls {
            None => http_handshake(shared, to, stream).await,
            Some(tls) => {
                let stream = tls.connect(stream, url, to).await.map_err(SendError::Tls)?;
                http_handshake(shared, to, stream).await
            }
        }
    };
    timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| SendError::ConnectTimeout(CONNECT_TIMEOUT))?
}

/// The HTTP/1.1 handshake on `io`; spawns the connection's driver.
async fn http_handshake<IO, B>(
    shared: &Shared,
    to: NodeId,
    io: IO,
) -> Result<SendRequest<B>, SendError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (sender, connection) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(SendError::Http)?;
    let driver = async move {
        if let Err(e) = connection.await {
            tracing::debug!(peer = %to, error = %e, "peer connection ended");
        }
    };
    // After shutdown the driver is not spawned and the sender fails at once.
    shared.spawn(driver);
    Ok(sender)
}
