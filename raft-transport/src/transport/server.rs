//! The peer server: checks who is talking, decodes, hands messages to raft.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use raft_core::{GroupId, Message, NodeId};
use raft_proto::DecodeLimits;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use super::{
    BATCH_PATH, HEADER_CLUSTER_ID, HEADER_FROM, HEADER_TO, MAX_BATCH_RECEIVE_BYTES, PeerStatus,
    SNAPSHOT_PATH, Shared, receive, stream_receiver,
};
use crate::conn::{Admission, Admitted};
use crate::frame::PLAIN_GROUP;
use crate::lane::Lane;
use crate::metrics::inc;

type Reply = Response<Full<Bytes>>;

/// Accepts peer connections until the task is aborted, at most
/// [`ConnectionLimits::max_connections`](crate::ConnectionLimits::max_connections)
/// at once (see [`Admission`]).
/// With TLS, each connection's handshake runs in its own task; one that
/// fails is logged and counted, and never reaches HTTP.
pub(super) async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let limits = shared.limits;
    let mut admission = Admission::new(
        "peer",
        limits.max_connections,
        Arc::clone(&shared.metrics.connections),
        shared.tls.is_some(),
    );
    loop {
        let Admitted {
            stream,
            remote,
            slot,
        } = admission.accept(&listener).await;
        let _ = stream.set_nodelay(true);
        let conn_shared = Arc::clone(&shared);
        let connection = async move {
            let _slot = slot;
            let Some(tls) = conn_shared.tls.clone() else {
                return serve_connection(conn_shared, remote, None, stream).await;
            };
            match tls.accept(stream).await {
                Ok((stream, peer)) => {
                    serve_connection(conn_shared, remote, Some(peer), stream).await
                }
                Err(e) => {
                    inc(&conn_shared.metrics.tls_handshakes_refused);
                    tracing::warn!(remote = %remote, reason = %e, "peer handshake refused");
                }
            }
        };
        if !shared.spawn(connection) {
            return;
        }
    }
}

/// Serves HTTP/1.1 on one connection; `peer` is the node its TLS
/// certificate names (`None` without TLS).
async fn serve_connection<IO>(shared: Arc<Shared>, remote: SocketAddr, peer: Option<NodeId>, io: IO)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let idle_timeout = shared.limits.idle_timeout;
    let service = service_fn(move |req| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(handle(&shared, remote, peer, req).await) }
    });
    if let Err(e) = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        // Starts when hyper waits for a request's headers: on a new
        // connection and on a kept-alive one after each response, so it
        // closes idle connections too.
        .header_read_timeout(idle_timeout)
        .serve_connection(TokioIo::new(io), service)
        // A lane's stream request takes the connection over.
        .with_upgrades()
        .await
    {
        tracing::debug!(remote = %remote, error = %e, "peer connection ended with an error");
    }
}

/// A refused request: logged, counted, answered with a plain-text reason.
pub(super) struct Refusal {
    status: StatusCode,
    reason: String,
}

impl Refusal {
    pub(super) fn new(status: StatusCode, reason: impl Into<String>) -> Refusal {
        Refusal {
            status,
            reason: reason.into(),
        }
    }
}

/// Who sent a request, once its headers checked out.
#[derive(Clone, Copy, Debug)]
struct Sender {
    from: NodeId,
}

async fn handle(
    shared: &Arc<Shared>,
    remote: SocketAddr,
    peer: Option<NodeId>,
    req: Request<Incoming>,
) -> Reply {
    let path = req.uri().path().to_string();
    let from_header = header_str(req.headers(), HEADER_FROM).map(str::to_string);
    let outcome = route(shared, peer, req).await;
    match outcome {
        Ok(Handled::Upgraded(reply)) => {
            tracing::debug!(remote = %remote, path = %path, "peer stream accepted");
            reply
        }
        Ok(Handled::Delivered(delivered)) => {
            tracing::trace!(remote = %remote, path = %path, delivered, "peer request handled");
            let mut reply = Response::new(Full::new(Bytes::new()));
            *reply.status_mut() = StatusCode::NO_CONTENT;
            reply
        }
        Err(refusal) => {
            tracing::warn!(
                remote = %remote,
                path = %path,
                from = from_header.as_deref().unwrap_or("-"),
                status = refusal.status.as_u16(),
                reason = %refusal.reason,
                "peer request refused",
            );
            shared.rejected();
            let mut reply = Response::new(Full::new(Bytes::from(refusal.reason + "\n")));
            *reply.status_mut() = refusal.status;
            reply.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            reply
        }
    }
}

/// What a request that was not refused came to.
enum Handled {
    /// A batch or snapshot: how many messages were delivered.
    Delivered(usize),
    /// A stream: the `101` answer.
    Upgraded(Reply),
}

/// Dispatches on method and path.
async fn route(
    shared: &Arc<Shared>,
    peer: Option<NodeId>,
    req: Request<Incoming>,
) -> Result<Handled, Refusal> {
    let path = req.uri().path();
    let is_batch = path == BATCH_PATH;
    let is_snapshot = path == SNAPSHOT_PATH;
    let lane = Lane::from_path(path);
    if !is_batch && !is_snapshot && lane.is_none() {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            format!("no such path {path:?}"),
        ));
    }
    if req.method() != Method::POST {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} is not allowed; use POST", req.method()),
        ));
    }
    let sender = check_headers(shared, peer, req.headers())?;
    if let Some(lane) = lane {
        return stream_receiver::accept(shared, sender.from, lane, req).map(Handled::Upgraded);
    }
    let messages: Vec<(GroupId, Message)> = if is_batch {
        // Batches are the older version's format: plain messages, of one group.
        let body = read_body(req, MAX_BATCH_RECEIVE_BYTES, shared.limits.body_timeout).await?;
        DecodeLimits::new()
            .with_max_batch_bytes(MAX_BATCH_RECEIVE_BYTES)
            .decode_batch_bytes(body)
            .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, format!("undecodable batch: {e}")))?
            .into_iter()
            .map(|m| (PLAIN_GROUP, m))
            .collect()
    } else {
        vec![receive_snapshot(shared, sender, req).await?]
    };
    check_messages(shared, sender, &messages)?;
    // The sender may have been removed while the body was read.
    check_sender(shared, sender.from)?;
    let count = messages.len();
    for (group, message) in messages {
        shared.deliver(group, message);
    }
    Ok(Handled::Delivered(count))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn header_node_id(headers: &HeaderMap, name: &str) -> Option<NodeId> {
    header_str(headers, name)
        .and_then(|s| s.trim().parse::<u64>().ok())
        .and_then(NodeId::new)
}

/// One snapshot message, streamed in bounded memory (see `receive.rs`),
/// holding one of the receive slots while it arrives.
async fn receive_snapshot(
    shared: &Arc<Shared>,
    sender: Sender,
    req: Request<Incoming>,
) -> Result<(GroupId, Message), Refusal> {
    let refused = |e: receive::ReceiveError| Refusal::new(e.status(), e.to_string());
    let declared = declared_length(req.headers())?;
    receive::check_declared(&shared.snapshot_receive, declared).map_err(refused)?;
    let _slot = receive::take_slot(shared).map_err(refused)?;
    receive::receive(shared, sender.from, req.into_body())
        .await
        .map_err(refused)
}

/// The `content-length` header, if any.
fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, Refusal> {
    match header_str(headers, CONTENT_LENGTH.as_str()) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| Refusal::new(StatusCode::BAD_REQUEST, "malformed content-length")),
    }
}

/// Cluster id, sender and receiver. With TLS, the sender must be the node
/// the connection's certificate names (`peer`): a node's certificate
/// cannot speak for another node. That is checked first, so a request
/// that fails it cannot make a joining node adopt a cluster id either.
fn check_headers(
    shared: &Shared,
    peer: Option<NodeId>,
    headers: &HeaderMap,
) -> Result<Sender, Refusal> {
    let cluster =
        header_str(headers, HEADER_CLUSTER_ID).and_then(|s| u64::from_str_radix(s.trim(), 16).ok());
    let from = header_node_id(headers, HEADER_FROM);
    if let (Some(peer), Some(from)) = (peer, from)
        && peer != from
    {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            format!("the certificate of node {peer} cannot speak for node {from}"),
        ));
    }
    let known = shared.cluster_id.load(Ordering::Acquire);
    let ours = match (cluster, from) {
        // A joining node adopts the cluster id of the first known peer
        // that contacts it (the leader, normally).
        (Some(id), Some(from)) if known == 0 && check_sender(shared, from).is_ok() => {
            shared.cluster_id_or_adopt(id)
        }
        _ => known,
    };
    match cluster {
        Some(id) if id == ours => {}
        Some(id) => {
            // Never the right id: the refusal goes to whoever asked, and the
            // id must not be a password anyone can read off a 403.
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                format!("cluster id mismatch: {id:016x} is not this node's cluster"),
            ));
        }
        None => {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                format!("missing or malformed {HEADER_CLUSTER_ID} header"),
            ));
        }
    }
    let Some(from) = from else {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            format!("missing or malformed {HEADER_FROM} header"),
        ));
    };
    check_sender(shared, from)?;
    match header_node_id(headers, HEADER_TO) {
        Some(to) if to == shared.id => Ok(Sender { from }),
        Some(to) => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            format!("request for node {to} reached node {}", shared.id),
        )),
        None => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            format!("missing or malformed {HEADER_TO} header"),
        )),
    }
}

pub(super) fn check_sender(shared: &Shared, from: NodeId) -> Result<(), Refusal> {
    match shared.peer_status(from) {
        PeerStatus::Known => Ok(()),
        PeerStatus::Removed => Err(Refusal::new(
            StatusCode::GONE,
            format!("node {from} was removed from the cluster"),
        )),
        PeerStatus::Unknown => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            format!("node {from} is not a known peer of node {}", shared.id),
        )),
    }
}

/// Every message must come from the sender and be addressed to this node.
fn check_messages(
    shared: &Shared,
    sender: Sender,
    messages: &[(GroupId, Message)],
) -> Result<(), Refusal> {
    for (_, m) in messages {
        if m.from != sender.from {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                format!(
                    "{} message from node {} in a request from node {}",
                    m.body.kind_name(),
                    m.from,
                    sender.from
                ),
            ));
        }
        if m.to != shared.id {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                format!(
                    "{} message for node {} reached node {}",
                    m.body.kind_name(),
                    m.to,
                    shared.id
                ),
            ));
        }
    }
    Ok(())
}

/// The whole body, refused early when it is declared or turns out too large.
async fn read_body(
    req: Request<Incoming>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, Refusal> {
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {limit} bytes"),
        )
    };
    if declared_length(req.headers())?.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let body = Limited::new(req.into_body(), limit).collect();
    match tokio::time::timeout(timeout, body).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("reading the body failed: {e}"),
        )),
        Err(_) => Err(Refusal::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the body did not arrive within {timeout:?}"),
        )),
    }
}
