//! A lane's sender: one long-lived stream to one peer, pipelined.
//!
//! The task takes what its bounded queue holds, encodes it into one
//! buffer (up to [`MAX_BATCH_SEND_BYTES`]) and writes it with one flush
//! per wake-up, without waiting for any acknowledgement: raft-core's
//! inflight window, not the transport, limits the appends in flight. A
//! reader task on the same stream takes the receiver's pongs (round
//! trips, liveness) and notices when the receiver closes it.
//!
//! A failed connect or write drops what was taken and reports the peer
//! unreachable; the next attempt waits for the [`Backoff`]. A stream the
//! receiver closes, or that answers no ping for [`SILENT_AFTER`], is
//! reported unreachable too (what it had taken may be lost) and opened
//! again for the next message. A peer of the previous version, which
//! answers the stream request `404`, gets batches instead
//! ([`super::fallback`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::Empty;
use hyper::StatusCode;
use hyper::header::{CONNECTION, HeaderValue, UPGRADE};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use raft_core::{GroupId, Message, NodeId};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior, timeout};

use super::fallback::{self, BatchFallback};
use super::sender::{SendError, check_response, connect, request};
use super::{MAX_BATCH_SEND_BYTES, STREAM_PROTOCOL, Shared};
use crate::frame::{self, Frame, KIND_PING, PLAIN_GROUP};
use crate::lane::Lane;
use crate::metrics::{LaneMetrics, add, dec, inc};
use crate::peer_url::PeerUrl;

/// The first reconnect delay after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
/// The longest reconnect delay.
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How often an open stream is pinged (round trip, liveness).
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// A stream that answers no ping for this long is given up.
const SILENT_AFTER: Duration = Duration::from_secs(10);
/// How long the upgrade's answer may take, after the connect.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest frame the receiver sends (pongs are 13 bytes).
const MAX_INBOUND_FRAME: usize = 64;

/// The queue of one peer's lane, and what its sender shares.
pub(super) struct LaneQueue {
    pub(super) queue: mpsc::Sender<(GroupId, Message)>,
    pub(super) state: Arc<LaneState>,
}

/// What a lane's queue and its sender task share.
pub(super) struct LaneState {
    pub(super) lane: Lane,
    /// Set when the queue overflowed, cleared by the sender on success:
    /// one warning per overflow episode rather than one per message.
    pub(super) overflowing: AtomicBool,
    pub(super) metrics: Arc<LaneMetrics>,
}

impl LaneQueue {
    /// Queues `message`; false (counted, warned about once per episode) if
    /// the queue is full or its sender gone.
    pub(super) fn enqueue(&self, shared: &Shared, group: GroupId, message: Message) -> bool {
        let metrics = &self.state.metrics;
        // Raised before the send so the sender's decrement never comes first.
        inc(&metrics.queue_depth);
        match self.queue.try_send((group, message)) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Full((_, m))) => {
                if !self.state.overflowing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        to = %m.to,
                        lane = %self.state.lane,
                        capacity = shared.queue_messages,
                        kind = m.body.kind_name(),
                        "peer queue full; dropping messages",
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
        dec(&metrics.queue_depth);
        inc(&metrics.drops);
        false
    }
}

/// Exponential backoff of connection attempts.
#[derive(Debug)]
pub(super) struct Backoff {
    delay: Duration,
    next_attempt: Option<Instant>,
}

impl Backoff {
    pub(super) fn new() -> Backoff {
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

/// An open stream, as its writer holds it. Dropping it stops the reader
/// task and so closes the connection.
struct Stream {
    writer: WriteHalf<TokioIo<Upgraded>>,
    /// Fires (or is dropped) when the reader task ends: the receiver
    /// closed the stream or sent something it must not.
    closed: oneshot::Receiver<()>,
    _stop_reader: oneshot::Sender<()>,
    opened: Instant,
    /// Microseconds after `opened` that the last pong (or the open) came.
    heard: Arc<AtomicU64>,
}

/// What woke the sender. A stack temporary of one `select!`, never
/// stored or queued: its size (a `Message` holds a snapshot's metadata
/// inline) costs one move.
#[allow(
    clippy::large_enum_variant,
    reason = "a transient select result; boxing would allocate per message"
)]
enum Wake {
    Message(Option<(GroupId, Message)>),
    Ping,
    Closed,
}

/// True if `e` is a peer answering that this node was removed (`410`).
fn is_removed_answer(e: &SendError) -> bool {
    matches!(e, SendError::Refused { status, .. } if *status == StatusCode::GONE)
}

/// Runs the sender of `state.lane` to peer `to` until its queue is closed.
pub(super) async fn run(
    shared: Arc<Shared>,
    to: NodeId,
    url: PeerUrl,
    queue: mpsc::Receiver<(GroupId, Message)>,
    state: Arc<LaneState>,
) {
    let mut sender = LaneSender {
        shared,
        to,
        url,
        queue,
        state,
        backoff: Backoff::new(),
        stream: None,
        healthy: true,
        opened_before: false,
        buf: BytesMut::new(),
        pending: Vec::new(),
        fallback: None,
    };
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let wake = match &mut sender.stream {
            Some(stream) => tokio::select! {
                m = sender.queue.recv() => Wake::Message(m),
                _ = ping.tick() => Wake::Ping,
                _ = &mut stream.closed => Wake::Closed,
            },
            None => Wake::Message(sender.queue.recv().await),
        };
        match wake {
            Wake::Message(None) => break,
            Wake::Message(Some(first)) => sender.send(first).await,
            Wake::Ping => sender.ping().await,
            Wake::Closed => sender.lost(SendError::Closed, 0),
        }
    }
    tracing::debug!(peer = %sender.to, lane = %sender.state.lane, "lane sender stopped");
}

struct LaneSender {
    shared: Arc<Shared>,
    to: NodeId,
    url: PeerUrl,
    queue: mpsc::Receiver<(GroupId, Message)>,
    state: Arc<LaneState>,
    backoff: Backoff,
    stream: Option<Stream>,
    /// Whether the peer is believed reachable, so changes are logged once.
    healthy: bool,
    /// Whether a stream was ever opened: later ones are reconnects.
    opened_before: bool,
    /// Frames being written; reused.
    buf: BytesMut,
    /// The messages of `buf`, for the fallback; reused.
    pending: Vec<(GroupId, Message)>,
    /// Set while the peer is of the previous version, without streams.
    fallback: Option<BatchFallback>,
}

impl LaneSender {
    /// Writes `first` and whatever else is queued, in one flush.
    async fn send(&mut self, first: (GroupId, Message)) {
        let (count, bytes) = self.encode(first);
        if count == 0 {
            return;
        }
        if self.falling_back() {
            return self.post(count, bytes).await;
        }
        if self.stream.is_none() && !self.open().await {
            if self.falling_back() {
                return self.post(count, bytes).await;
            }
            self.shared.dropped(self.to, count);
            add(&self.state.metrics.drops, count as u64);
            return;
        }
        match self.write().await {
            Ok(()) => self.delivered(count, bytes),
            Err(e) => self.lost(e, count),
        }
    }

    /// `count` messages of `bytes` went out.
    fn delivered(&self, count: usize, bytes: usize) {
        let metrics = &self.state.metrics;
        add(&metrics.messages_sent, count as u64);
        add(&metrics.bytes_sent, bytes as u64);
        self.shared.sent(count);
        self.shared.clear_overflow(self.to, &self.state);
    }

    /// Whether messages go as batches to an older peer; ends the fallback
    /// once it is time to try a stream again.
    fn falling_back(&mut self) -> bool {
        if self
            .fallback
            .as_ref()
            .is_some_and(|f| !f.active(Instant::now()))
        {
            self.fallback = None;
        }
        self.fallback.is_some()
    }

    /// Posts the pending messages as one batch (the fallback).
    async fn post(&mut self, count: usize, bytes: usize) {
        let Some(fallback) = self.fallback.as_mut() else {
            return;
        };
        // An older peer runs one group and decodes plain messages only:
        // another group's messages are dropped, never sent as its own.
        let mut batch = Vec::with_capacity(self.pending.len());
        for (group, message) in self.pending.drain(..) {
            if group == PLAIN_GROUP {
                batch.push(message);
            } else {
                self.shared.dropped_in(group, self.to, 1);
            }
        }
        debug_assert!(batch.len() <= count);
        let count = batch.len();
        if count == 0 {
            return;
        }
        let posted = fallback
            .post(&self.shared, self.to, &self.url, &batch)
            .await;
        match posted {
            Ok(()) => {
                self.healthy = true;
                self.delivered(count, bytes);
            }
            Err(e) => {
                self.unhealthy(&e, count);
                self.fallback = None;
                self.backoff.failed(Instant::now());
                add(&self.state.metrics.drops, count as u64);
                self.shared.dropped(self.to, count);
            }
        }
    }

    /// Encodes `first` and what is queued behind it (up to about
    /// [`MAX_BATCH_SEND_BYTES`]) into the buffer: how many messages, and
    /// their frame bytes. A message too large for any receiver is dropped.
    fn encode(&mut self, first: (GroupId, Message)) -> (usize, usize) {
        self.buf.clear();
        self.pending.clear();
        let mut count = 0;
        let mut next = Some(first);
        while let Some((group, message)) = next.take() {
            dec(&self.state.metrics.queue_depth);
            let start = self.buf.len();
            let len = frame::encode_message(group, &message, &mut self.buf);
            if len - frame::HEADER_BYTES > super::MAX_FRAME_BYTES {
                self.buf.truncate(start);
                tracing::warn!(peer = %self.to, group = %group, kind = message.body.kind_name(), bytes = len, "message too large for a frame; dropped");
                self.shared.dropped_in(group, self.to, 1);
                inc(&self.state.metrics.drops);
            } else {
                count += 1;
                self.pending.push((group, message));
            }
            if self.buf.len() < MAX_BATCH_SEND_BYTES {
                next = self.queue.try_recv().ok();
            }
        }
        (count, self.buf.len())
    }

    /// Writes the buffer. A receiver that stops reading (a wedged peer)
    /// fills the socket; after [`SILENT_AFTER`] the write is given up
    /// rather than hold the lane.
    async fn write(&mut self) -> Result<(), SendError> {
        let Some(stream) = self.stream.as_mut() else {
            return Err(SendError::Closed);
        };
        let write = async {
            stream.writer.write_all(&self.buf).await?;
            stream.writer.flush().await
        };
        match timeout(SILENT_AFTER, write).await {
            Ok(written) => written.map_err(SendError::Write),
            Err(_) => Err(SendError::Timeout(SILENT_AFTER)),
        }
    }

    /// Pings an open stream, or gives it up if it has been silent too long.
    async fn ping(&mut self) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        let now = stream.opened.elapsed();
        let heard = Duration::from_micros(stream.heard.load(Ordering::Relaxed));
        if now.saturating_sub(heard) > SILENT_AFTER {
            return self.lost(SendError::Silent(SILENT_AFTER), 0);
        }
        self.buf.clear();
        let nonce = u64::try_from(now.as_micros()).unwrap_or(u64::MAX);
        frame::encode_control(KIND_PING, nonce, &mut self.buf);
        if let Err(e) = self.write().await {
            self.lost(e, 0);
        }
    }

    /// Opens the stream; false (logged, backoff advanced) if it cannot be.
    async fn open(&mut self) -> bool {
        if !self.backoff.may_try(Instant::now()) {
            tracing::trace!(peer = %self.to, lane = %self.state.lane, "peer down; messages dropped");
            return false;
        }
        let started = Instant::now();
        match open_stream(&self.shared, self.to, &self.url, self.state.lane).await {
            Ok(io) => {
                self.state.metrics.observe_rtt(started.elapsed());
                if std::mem::replace(&mut self.opened_before, true) {
                    inc(&self.state.metrics.reconnects);
                }
                if !self.healthy {
                    tracing::info!(peer = %self.to, lane = %self.state.lane, url = %self.url, "peer reachable again");
                    self.healthy = true;
                }
                self.backoff.succeeded();
                self.stream = Some(self.start_reader(io));
                true
            }
            Err(e) if fallback::is_older_peer(&e) => {
                tracing::info!(peer = %self.to, lane = %self.state.lane, url = %self.url, "peer serves no streams (an older version); posting batches");
                self.fallback = Some(BatchFallback::new(Instant::now()));
                false
            }
            Err(e) => {
                if is_removed_answer(&e) {
                    // The peer applied this node's removal (410, ids are
                    // never reused): the removal's commit may never reach
                    // this node otherwise, as the leader stops sending
                    // once it applies it (etcd stops a member on the same
                    // answer).
                    self.shared.inbox.removed_by(self.to);
                }
                self.unhealthy(&e, 0);
                self.backoff.failed(Instant::now());
                false
            }
        }
    }

    /// Gives up the stream after `e`, reporting `count` messages dropped
    /// (and the peer unreachable even if none were: the stream may have
    /// swallowed some).
    fn lost(&mut self, e: SendError, count: usize) {
        self.unhealthy(&e, count);
        self.stream = None;
        self.backoff.failed(Instant::now());
        add(&self.state.metrics.drops, count as u64);
        self.shared.dropped(self.to, count);
    }

    fn unhealthy(&mut self, e: &SendError, count: usize) {
        let (to, lane, url) = (self.to, self.state.lane, &self.url);
        if std::mem::replace(&mut self.healthy, false) {
            tracing::warn!(peer = %to, lane = %lane, url = %url, error = %e, messages = count, "peer stream failed");
        } else {
            tracing::debug!(peer = %to, lane = %lane, url = %url, error = %e, "peer stream failed again");
        }
    }

    /// Splits `io` and spawns the task that reads its pongs.
    fn start_reader(&self, io: Upgraded) -> Stream {
        let (reader, writer) = tokio::io::split(TokioIo::new(io));
        let (closed_tx, closed) = oneshot::channel();
        let (stop_reader, stop) = oneshot::channel();
        let opened = Instant::now();
        let heard = Arc::new(AtomicU64::new(0));
        let task = read_pongs(
            reader,
            opened,
            Arc::clone(&heard),
            Arc::clone(&self.state),
            closed_tx,
            stop,
        );
        // After shutdown the reader is not spawned: `closed` fires at once.
        self.shared.spawn(task);
        Stream {
            writer,
            closed,
            _stop_reader: stop_reader,
            opened,
            heard,
        }
    }
}

/// Reads the receiver's frames until the stream ends or `stop` fires;
/// only pongs are expected. Signals `closed` when it ends on its own.
async fn read_pongs(
    mut reader: ReadHalf<TokioIo<Upgraded>>,
    opened: Instant,
    heard: Arc<AtomicU64>,
    state: Arc<LaneState>,
    closed: oneshot::Sender<()>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut buf = BytesMut::with_capacity(256);
    loop {
        loop {
            match frame::decode_frame(&mut buf, MAX_INBOUND_FRAME) {
                Ok(None) => break,
                Ok(Some(Frame::Pong(nonce))) => {
                    let now = opened.elapsed();
                    state
                        .metrics
                        .observe_rtt(now.saturating_sub(Duration::from_micros(nonce)));
                    let micros = u64::try_from(now.as_micros()).unwrap_or(u64::MAX);
                    heard.store(micros, Ordering::Relaxed);
                }
                Ok(Some(other)) => {
                    tracing::warn!(lane = %state.lane, frame = ?other, "unexpected frame from the receiver; closing");
                    let _ = closed.send(());
                    return;
                }
                Err(e) => {
                    tracing::warn!(lane = %state.lane, error = %e, "bad frame from the receiver; closing");
                    let _ = closed.send(());
                    return;
                }
            }
        }
        let read = tokio::select! {
            _ = &mut stop => return,
            read = reader.read_buf(&mut buf) => read,
        };
        if !matches!(read, Ok(n) if n > 0) {
            let _ = closed.send(());
            return;
        }
    }
}

/// Opens `lane`'s stream to peer `to`: a connection, the upgrade request,
/// its `101`. A refusal comes back with its status and reason.
async fn open_stream(
    shared: &Shared,
    to: NodeId,
    url: &PeerUrl,
    lane: Lane,
) -> Result<Upgraded, SendError> {
    let mut sender = connect::<Empty<Bytes>>(shared, to, url).await?;
    let mut req = request(shared, to, url, lane.path(), Empty::new())?;
    let headers = req.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static(STREAM_PROTOCOL));
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    let exchange = async {
        sender.ready().await.map_err(SendError::Http)?;
        let response = sender.send_request(req).await.map_err(SendError::Http)?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            let status = response.status();
            check_response(response).await?;
            return Err(SendError::NotUpgraded(status));
        }
        hyper::upgrade::on(response).await.map_err(SendError::Http)
    };
    // The connect had its own timeout.
    timeout(UPGRADE_TIMEOUT, exchange)
        .await
        .map_err(|_| SendError::Timeout(UPGRADE_TIMEOUT))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_to_its_ceiling_and_a_success_resets_it() {
        let now = Instant::now();
        let mut backoff = Backoff::new();
        assert!(backoff.may_try(now));
        backoff.failed(now);
        assert!(!backoff.may_try(now));
        assert!(backoff.may_try(now + BACKOFF_MIN));
        for _ in 0..10 {
            backoff.failed(now);
        }
        assert!(!backoff.may_try(now + BACKOFF_MAX - Duration::from_millis(1)));
        assert!(backoff.may_try(now + BACKOFF_MAX));
        backoff.succeeded();
        assert!(backoff.may_try(now));
        backoff.failed(now);
        assert!(backoff.may_try(now + BACKOFF_MIN));
    }
}
