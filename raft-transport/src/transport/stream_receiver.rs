//! Inbound lanes: the upgrade of a stream request whose headers checked
//! out, and the frames that follow it.
//!
//! Every frame is checked before anything reaches Raft: its size, that it
//! decodes and validates, that its message is from the stream's sender,
//! for this node, and of the stream's lane. A frame that fails closes the
//! stream (logged at `warn`, counted in
//! [`TransportMetrics::stream_frames_refused`](crate::TransportMetrics::stream_frames_refused)
//! and the lane's [`bad_frames_received`](crate::LaneMetrics::bad_frames_received));
//! what came before it was delivered, nothing of it or after it is. So
//! does a frame that starts and then stalls for
//! [`ConnectionLimits::body_timeout`](crate::ConnectionLimits::body_timeout).
//! A stream that sends nothing at all for
//! [`ConnectionLimits::idle_timeout`](crate::ConnectionLimits::idle_timeout)
//! is closed quietly (senders ping every second).
//!
//! One stream per peer and lane: a newer one replaces the older, and
//! removing the peer closes both of its lanes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue, UPGRADE};
use hyper::upgrade::Upgraded;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use raft_core::NodeId;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout_at};

use super::server::{Refusal, check_sender};
use super::{InboundStream, MAX_FRAME_BYTES, STREAM_PROTOCOL, Shared};
use crate::frame::{self, Frame, FrameError, KIND_PONG};
use crate::lane::Lane;
use crate::metrics::{LaneMetrics, inc};

/// Bytes a stream's read buffer grows by at a time.
const READ_CHUNK: usize = 64 << 10;

/// Why a stream's frame was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(super) enum StreamRefusal {
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("{kind} message from node {claimed} on the stream of node {sender}")]
    WrongFrom {
        kind: &'static str,
        claimed: NodeId,
        sender: NodeId,
    },
    #[error("{kind} message for node {to} reached node {this}")]
    WrongTo {
        kind: &'static str,
        to: NodeId,
        this: NodeId,
    },
    #[error("{kind} message on the {lane} lane")]
    WrongLane { kind: &'static str, lane: Lane },
    #[error("a pong from the sending side")]
    UnexpectedPong,
    #[error("a frame stalled: incomplete after {0:?}")]
    Stalled(Duration),
}

/// How a stream ended without a bad frame.
#[derive(Debug)]
enum End {
    /// The sender closed it, or the connection broke.
    Disconnected,
    /// Replaced by a newer stream, its peer removed, or shutdown.
    Closed,
    /// Nothing arrived for the idle timeout.
    Idle,
}

/// Accepts the stream request of `from` on `lane` (its headers already
/// checked): registers it, replacing an older one, and answers `101`; the
/// frames are read by a task of their own once hyper hands the connection
/// over.
pub(super) fn accept(
    shared: &Arc<Shared>,
    from: NodeId,
    lane: Lane,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Refusal> {
    let upgrade = req.headers().get(UPGRADE).and_then(|v| v.to_str().ok());
    if !upgrade.is_some_and(|u| u.eq_ignore_ascii_case(STREAM_PROTOCOL)) {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("a stream request needs the header upgrade: {STREAM_PROTOCOL}"),
        ));
    }
    let generation = shared.stream_generation.fetch_add(1, Ordering::Relaxed);
    let (close_tx, close) = oneshot::channel();
    let stream = InboundStream {
        generation,
        _close: close_tx,
    };
    if let Some(older) = shared.streams.lock().insert((from, lane), stream) {
        tracing::info!(from = %from, lane = %lane, older = older.generation, "a newer stream replaces the open one");
    }
    // The peer may have been removed since its headers were checked; the
    // removal closed the streams registered before, so close this one too.
    if let Err(refusal) = check_sender(shared, from) {
        unregister(shared, from, lane, generation);
        return Err(refusal);
    }
    let task_shared = Arc::clone(shared);
    let task = async move {
        match hyper::upgrade::on(req).await {
            Ok(io) => serve(&task_shared, from, lane, io, close).await,
            Err(e) => {
                tracing::debug!(from = %from, lane = %lane, error = %e, "stream upgrade failed")
            }
        }
        unregister(&task_shared, from, lane, generation);
    };
    if !shared.spawn(task) {
        return Err(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the transport is shutting down",
        ));
    }
    let mut reply = Response::new(Full::new(Bytes::new()));
    *reply.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = reply.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static(STREAM_PROTOCOL));
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    Ok(reply)
}

/// Removes the registry entry of this stream, if it is still this one's.
fn unregister(shared: &Shared, from: NodeId, lane: Lane, generation: u64) {
    let mut streams = shared.streams.lock();
    if streams
        .get(&(from, lane))
        .is_some_and(|s| s.generation == generation)
    {
        streams.remove(&(from, lane));
    }
}

/// Reads one stream until it ends, and logs and counts how.
async fn serve(
    shared: &Shared,
    from: NodeId,
    lane: Lane,
    io: Upgraded,
    close: oneshot::Receiver<()>,
) {
    tracing::debug!(from = %from, lane = %lane, "inbound stream open");
    let (reader, writer) = tokio::io::split(TokioIo::new(io));
    let mut stream = Inbound {
        shared,
        from,
        lane,
        metrics: shared.metrics.lane_entry(from, lane),
        writer,
        delivered: 0,
    };
    match stream.run(reader, close).await {
        Ok(end) => {
            tracing::debug!(from = %from, lane = %lane, end = ?end, delivered = stream.delivered, "inbound stream ended")
        }
        Err(refusal) => {
            tracing::warn!(from = %from, lane = %lane, reason = %refusal, delivered = stream.delivered, "bad frame; stream closed");
            inc(&shared.metrics.stream_frames_refused);
            inc(&stream.metrics.bad_frames_received);
        }
    }
}

/// An inbound stream being read.
struct Inbound<'a> {
    shared: &'a Shared,
    from: NodeId,
    lane: Lane,
    metrics: Arc<LaneMetrics>,
    /// Where pongs go.
    writer: WriteHalf<TokioIo<Upgraded>>,
    delivered: u64,
}

impl Inbound<'_> {
    /// Reads and handles frames until the stream ends or one is refused.
    async fn run(
        &mut self,
        mut reader: ReadHalf<TokioIo<Upgraded>>,
        mut close: oneshot::Receiver<()>,
    ) -> Result<End, StreamRefusal> {
        let limits = self.shared.limits;
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        // When the incomplete frame at the front of `buf` started arriving.
        let mut partial_since: Option<Instant> = None;
        loop {
            let mut decoded = false;
            while let Some(frame) = frame::decode_frame(&mut buf, MAX_FRAME_BYTES)? {
                decoded = true;
                if let Some(end) = self.handle(frame).await? {
                    return Ok(end);
                }
            }
            partial_since = match (frame::is_partial(&buf), decoded) {
                (false, _) => None,
                (true, true) => Some(Instant::now()),
                (true, false) => partial_since.or_else(|| Some(Instant::now())),
            };
            let deadline = match partial_since {
                Some(since) => since + limits.body_timeout,
                None => Instant::now() + limits.idle_timeout,
            };
            if buf.capacity() - buf.len() < READ_CHUNK / 4 {
                buf.reserve(READ_CHUNK);
            }
            let read = tokio::select! {
                _ = &mut close => return Ok(End::Closed),
                read = timeout_at(deadline, reader.read_buf(&mut buf)) => read,
            };
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => return Ok(End::Disconnected),
                Ok(Ok(_)) => {}
                Err(_) if partial_since.is_some() => {
                    return Err(StreamRefusal::Stalled(limits.body_timeout));
                }
                Err(_) => return Ok(End::Idle),
            }
        }
    }

    /// One frame: a message is checked and delivered, a ping answered;
    /// `Some` if the stream ends there.
    async fn handle(&mut self, frame: Frame) -> Result<Option<End>, StreamRefusal> {
        match frame {
            Frame::Message(payload) => self.message(false, payload).map(|()| None),
            Frame::GroupMessage(payload) => self.message(true, payload).map(|()| None),
            Frame::Ping(nonce) => {
                let mut pong = BytesMut::with_capacity(frame::HEADER_BYTES + 8);
                frame::encode_control(KIND_PONG, nonce, &mut pong);
                // A sender that does not read its pongs loses its stream
                // (not a bad frame), rather than hold this task in a write.
                let write = async {
                    self.writer.write_all(&pong).await?;
                    self.writer.flush().await
                };
                match tokio::time::timeout(self.shared.limits.body_timeout, write).await {
                    Ok(Ok(())) => Ok(None),
                    _ => Ok(Some(End::Disconnected)),
                }
            }
            Frame::Pong(_) => Err(StreamRefusal::UnexpectedPong),
        }
    }

    /// A message frame (`grouped`: of a group other than the plain one):
    /// decoded, checked against the stream's sender, receiver and lane, and
    /// delivered to its group.
    fn message(&mut self, grouped: bool, payload: Bytes) -> Result<(), StreamRefusal> {
        let (group, message) = frame::decode_message(grouped, payload, MAX_FRAME_BYTES)?;
        let kind = message.body.kind_name();
        if message.from != self.from {
            let (claimed, sender) = (message.from, self.from);
            return Err(StreamRefusal::WrongFrom {
                kind,
                claimed,
                sender,
            });
        }
        if message.to != self.shared.id {
            let (to, this) = (message.to, self.shared.id);
            return Err(StreamRefusal::WrongTo { kind, to, this });
        }
        if Lane::of(&message.body) != Some(self.lane) {
            let lane = self.lane;
            return Err(StreamRefusal::WrongLane { kind, lane });
        }
        self.shared.deliver(group, message);
        self.delivered += 1;
        Ok(())
    }
}
