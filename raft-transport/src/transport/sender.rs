//! Outgoing connections to peers: TCP (bound to `bind_outgoing`), mutual
//! TLS when the node has it, the transport's request headers, and reading
//! a peer's answer. Lanes ([`super::stream_sender`]) and snapshots
//! ([`super::snapshot`]) open their connections here.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use raft_core::NodeId;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpSocket;
use tokio::time::timeout;

use super::{HEADER_CLUSTER_ID, HEADER_FROM, HEADER_TO, Shared};
use crate::peer_url::PeerUrl;

/// How long a TCP connect and TLS handshake may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The most of a response body a sender reads (refusal reasons are short).
const MAX_RESPONSE_BYTES: usize = 64 << 10;

/// A connection to a peer, plain or TLS.
pub(super) trait PeerIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> PeerIo for T {}

/// Why a request to a peer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    #[error("the peer answered {0} instead of switching to a stream")]
    NotUpgraded(StatusCode),
    #[error("writing to the stream: {0}")]
    Write(#[source] std::io::Error),
    #[error("no pong for {0:?}")]
    Silent(Duration),
    #[error("the stream was closed")]
    Closed,
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
/// set), over mutual TLS if this node has it.
pub(super) async fn open_io(
    shared: &Shared,
    to: NodeId,
    url: &PeerUrl,
) -> Result<Box<dyn PeerIo>, SendError> {
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
        let io: Box<dyn PeerIo> = match &shared.tls {
            None => Box::new(stream),
            Some(tls) => Box::new(tls.connect(stream, url, to).await.map_err(SendError::Tls)?),
        };
        Ok(io)
    };
    timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| SendError::ConnectTimeout(CONNECT_TIMEOUT))?
}

/// Opens a connection to peer `to` at `url` ([`open_io`]) and spawns its
/// HTTP/1.1 driver.
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
    let io = open_io(shared, to, url).await?;
    let (sender, connection) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(SendError::Http)?;
    // Upgrades are allowed so a lane's stream can take the connection over.
    let driver = async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(peer = %to, error = %e, "peer connection ended");
        }
    };
    // After shutdown the driver is not spawned and the sender fails at once.
    shared.spawn(driver);
    Ok(sender)
}
