//! Sending snapshot messages: streamed on a connection of their own, so a
//! large snapshot never holds up a lane, paced by the transport's
//! [`RateLimiter`] if it has one and capped in number. Receiving them is
//! [`super::receive`].
//!
//! Body: `u32` little-endian envelope length, the envelope (the message
//! encoded with empty snapshot data), then the snapshot in `raft-snap`'s
//! stream format.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame};
use raft_core::{GroupId, Message, MessageBody, Snapshot, SnapshotStatus};
use raft_snap::SnapshotEncoder;
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::receive::GROUP_ENVELOPE_BIT;
use super::sender::{SendError, check_response, connect, request};
use super::{SNAPSHOT_PATH, Shared};
use crate::frame::PLAIN_GROUP;
use crate::limiter::RateLimiter;
use crate::metrics::inc;
use crate::peer_url::PeerUrl;

/// Data bytes per body chunk.
const CHUNK_BYTES: usize = 256 << 10;
/// Chunks buffered between the encoder and the connection.
const CHUNKS_IN_FLIGHT: usize = 4;
/// The largest envelope accepted (it holds only ids, terms and membership).
pub(super) const MAX_ENVELOPE_BYTES: usize = 1 << 20;
/// Time allowed for any snapshot, plus [`SECONDS_PER_MIB`] per MiB of data.
const SNAPSHOT_TIMEOUT_BASE: Duration = Duration::from_secs(30);
/// Extra time allowed per MiB of snapshot data.
const SECONDS_PER_MIB: u64 = 1;

/// How long sending, or receiving, a snapshot of `data_len` bytes may take.
pub(super) fn time_allowed(data_len: u64) -> Duration {
    SNAPSHOT_TIMEOUT_BASE + Duration::from_secs(SECONDS_PER_MIB * (data_len >> 20))
}

/// A request body fed chunk by chunk through a channel. An `Err` item
/// aborts the request.
pub(super) struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, io::Error>>,
}

impl ChannelBody {
    /// A body made of what arrives on `rx`, until it is closed.
    pub(super) fn new(rx: mpsc::Receiver<Result<Bytes, io::Error>>) -> ChannelBody {
        ChannelBody { rx }
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }
}

/// A [`Write`] into a shared buffer the producer drains after each chunk.
#[derive(Clone, Default)]
struct SharedBuf(Arc<parking_lot::Mutex<BytesMut>>);

impl SharedBuf {
    fn take(&self) -> Bytes {
        self.0.lock().split().freeze()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sends one snapshot message and reports how it went. Over
/// [`SnapshotSendConfig::max_concurrent`](crate::SnapshotSendConfig::max_concurrent)
/// sends at once it fails at once (see there why).
pub(super) async fn send(shared: Arc<Shared>, url: PeerUrl, group: GroupId, message: Message) {
    let to = message.to;
    let MessageBody::Snapshot(snapshot) = &message.body else {
        return;
    };
    let index = snapshot.metadata.index;
    let bytes = snapshot.data.len();
    let Ok(slot) = Arc::clone(&shared.snapshot_sends).try_acquire_owned() else {
        let cap = shared.max_concurrent_sends;
        tracing::warn!(peer = %to, index = %index, bytes, cap, "snapshot sends at their cap; this one fails");
        inc(&shared.metrics.snapshot_sends_refused);
        shared.dropped_in(group, to, 1);
        shared.snapshot_done(group, to, SnapshotStatus::Failed);
        return;
    };
    // A paced send is allowed the time its pace takes on top.
    let paced = shared
        .snapshot_limiter
        .as_ref()
        .map_or(Duration::ZERO, |l| {
            Duration::from_secs_f64(bytes as f64 / l.rate() as f64)
        });
    let limit = time_allowed(bytes as u64) + paced;
    tracing::info!(peer = %to, index = %index, bytes, "sending snapshot");
    let outcome = match timeout(limit, stream(&shared, &url, group, &message)).await {
        Ok(r) => r,
        Err(_) => Err(SendError::Timeout(limit)),
    };
    // Free before the report, so a send Raft makes on hearing it fits.
    drop(slot);
    match outcome {
        Ok(()) => {
            tracing::info!(peer = %to, index = %index, bytes, "snapshot sent");
            inc(&shared.metrics.snapshots_sent);
            shared.sent(1);
            shared.snapshot_done(group, to, SnapshotStatus::Finished);
        }
        Err(e) => {
            tracing::warn!(peer = %to, group = %group, url = %url, index = %index, error = %e, "sending snapshot failed");
            shared.dropped_in(group, to, 1);
            shared.snapshot_done(group, to, SnapshotStatus::Failed);
        }
    }
}

async fn stream(
    shared: &Shared,
    url: &PeerUrl,
    group: GroupId,
    message: &Message,
) -> Result<(), SendError> {
    let to = message.to;
    let MessageBody::Snapshot(snapshot) = &message.body else {
        return Ok(());
    };
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let mut sender = connect::<ChannelBody>(shared, to, url).await?;
    let req = request(shared, to, url, SNAPSHOT_PATH, ChannelBody::new(rx))?;
    let exchange = async {
        sender.ready().await.map_err(SendError::Http)?;
        let response = sender.send_request(req).await.map_err(SendError::Http)?;
        check_response(response).await
    };
    let limiter = shared.snapshot_limiter.as_deref();
    let (exchanged, produced) =
        tokio::join!(exchange, produce(group, message, snapshot, limiter, tx));
    // The exchange's error says more: a producer error is usually only the
    // body being dropped because the request failed.
    exchanged?;
    produced
}

/// Feeds the body: envelope, then the encoded snapshot chunk by chunk.
/// With a `limiter`, each piece waits for its bytes first.
async fn produce(
    group: GroupId,
    message: &Message,
    snapshot: &Snapshot,
    limiter: Option<&RateLimiter>,
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
) -> Result<(), SendError> {
    let closed = || SendError::Response("the request body was dropped".to_string());
    let send = |piece: Bytes| async {
        if let Some(limiter) = limiter {
            limiter.acquire(piece.len() as u64).await;
        }
        tx.send(Ok(piece)).await.map_err(|_| closed())
    };
    let envelope = Message {
        body: MessageBody::Snapshot(Snapshot {
            metadata: snapshot.metadata.clone(),
            data: Bytes::new(),
        }),
        ..message.clone()
    };
    // The length word first, patched once the envelope is encoded; its top
    // bit marks a `GroupMessage` envelope (see `receive::read_envelope`).
    let mut head = BytesMut::with_capacity(256);
    head.extend_from_slice(&[0; 4]);
    let flag = if group == PLAIN_GROUP {
        raft_proto::encode_message_into(&envelope, &mut head);
        0
    } else {
        raft_proto::encode_group_message_into(group, &envelope, &mut head);
        GROUP_ENVELOPE_BIT
    };
    // An envelope too long for the word is refused by every receiver.
    let len = u32::try_from(head.len() - 4).unwrap_or(u32::MAX) & !GROUP_ENVELOPE_BIT;
    head[..4].copy_from_slice(&(len | flag).to_le_bytes());
    send(head.freeze()).await?;

    let buf = SharedBuf::default();
    let result: Result<(), SendError> = async {
        let mut encoder =
            SnapshotEncoder::new(buf.clone(), &snapshot.metadata, snapshot.data.len() as u64)
                .map_err(SendError::Encode)?;
        for chunk in snapshot.data.chunks(CHUNK_BYTES) {
            encoder.write_chunk(chunk).map_err(SendError::Encode)?;
            send(buf.take()).await?;
        }
        encoder.finish().map_err(SendError::Encode)?;
        send(buf.take()).await?;
        Ok(())
    }
    .await;
    if let Err(e) = &result {
        // Abort the request rather than end the body cleanly.
        let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
    }
    result
}
