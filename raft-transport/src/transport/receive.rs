//! Receiving a snapshot in bounded memory.
//!
//! The request body streams through a small bounded channel into a
//! blocking task that verifies it with raft-snap's [`SnapshotDecoder`] as
//! it arrives and writes the data to a spill file (unlinked at creation, so
//! a crash or a refusal leaves nothing behind). Only once the whole stream
//! has verified (header, data length, CRC, nothing after it) is the data
//! read back into memory, because raft-core's `Snapshot` carries its data
//! as `Bytes`. So a garbage or oversized upload costs a few frames of
//! memory, never its size, and a verified one costs its size once, as it
//! must to reach raft.
//!
//! At most [`SnapshotReceiveConfig::max_concurrent`] receives run at once;
//! a further upload is refused with `503` and counted in
//! [`TransportMetrics::snapshot_receives_refused`](crate::TransportMetrics::snapshot_receives_refused).

use std::io::{self, BufWriter, Read, Seek, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use hyper::StatusCode;
use hyper::body::Incoming;
use raft_core::{GroupId, Message, MessageBody, NodeId, Snapshot};
use raft_proto::DecodeLimits;
use raft_snap::{DecodeError, SnapshotDecoder};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::{Instant, timeout_at};

use super::snapshot::{MAX_ENVELOPE_BYTES, time_allowed};
use super::{Shared, SnapshotReceiveConfig};
use crate::metrics::{inc, raise_to};

/// Body frames queued between the connection and the verifying task.
const FRAMES_IN_FLIGHT: usize = 4;
/// Data bytes the decoder hands out (and the spill file takes) at once.
const CHUNK_BYTES: usize = 256 << 10;
/// The longest wait for the next piece of a body.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The most a stream header can take beyond the data: the fixed header,
/// at most 1 MiB of membership, and the two checksums (raft-snap's format).
const MAX_STREAM_OVERHEAD: u64 = 56 + (1 << 20);

/// Why a snapshot upload was refused.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReceiveError {
    #[error("{0} snapshot receives are already in progress; retry later")]
    Busy(usize),
    #[error("body declares {declared} bytes; the largest snapshot accepted is {limit} bytes")]
    DeclaredTooLarge { declared: u64, limit: u64 },
    #[error("snapshot of {data_len} bytes; the largest accepted is {limit} bytes")]
    TooLarge { data_len: u64, limit: u64 },
    #[error("bad snapshot: {0}")]
    Body(#[from] SnapshotBodyError),
    #[error("{kind} message from node {from} to node {to} in a request from node {sender}")]
    NotAddressed {
        kind: &'static str,
        from: NodeId,
        to: NodeId,
        sender: NodeId,
    },
    #[error("reading the body failed: {0}")]
    Read(#[source] hyper::Error),
    #[error("the body stalled or took longer than allowed")]
    Timeout,
    #[error("cannot spill the snapshot to disk: {0}")]
    Spill(#[source] io::Error),
    #[error("the receiving task failed: {0}")]
    Worker(#[source] tokio::task::JoinError),
}

impl ReceiveError {
    /// The status the peer is answered with.
    pub(super) fn status(&self) -> StatusCode {
        match self {
            ReceiveError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ReceiveError::DeclaredTooLarge { .. } | ReceiveError::TooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ReceiveError::Body(_) | ReceiveError::Read(_) => StatusCode::BAD_REQUEST,
            ReceiveError::NotAddressed { .. } => StatusCode::FORBIDDEN,
            ReceiveError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ReceiveError::Spill(_) | ReceiveError::Worker(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Why a snapshot stream does not verify.
#[derive(Debug, thiserror::Error)]
pub(super) enum SnapshotBodyError {
    #[error("body too short for the envelope")]
    ShortEnvelope,
    #[error("envelope of {0} bytes; at most {MAX_ENVELOPE_BYTES} are accepted")]
    LongEnvelope(usize),
    #[error("envelope: {0}")]
    Envelope(#[source] raft_proto::DecodeError),
    #[error("envelope is a {0} message, not a snapshot")]
    NotSnapshot(&'static str),
    #[error("snapshot stream: {0}")]
    Stream(#[source] DecodeError),
    #[error("bytes after the end of the snapshot stream")]
    Trailing,
    #[error("snapshot stream metadata differs from the envelope's")]
    MetadataMismatch,
}

/// A held receive slot; gives it back, and updates the gauge, on drop.
pub(super) struct ReceiveSlot {
    _permit: OwnedSemaphorePermit,
    gauge: Arc<crate::metrics::TransportMetrics>,
}

impl Drop for ReceiveSlot {
    fn drop(&mut self) {
        self.gauge
            .snapshot_receives_in_progress
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Takes a receive slot, or refuses (and counts) the upload.
pub(super) fn take_slot(shared: &Shared) -> Result<ReceiveSlot, ReceiveError> {
    match Arc::clone(&shared.snapshot_slots).try_acquire_owned() {
        Ok(permit) => {
            inc(&shared.metrics.snapshot_receives_in_progress);
            Ok(ReceiveSlot {
                _permit: permit,
                gauge: Arc::clone(&shared.metrics),
            })
        }
        Err(_) => {
            inc(&shared.metrics.snapshot_receives_refused);
            Err(ReceiveError::Busy(shared.snapshot_receive.max_concurrent))
        }
    }
}

/// Refuses a body whose declared length cannot hold an acceptable snapshot.
pub(super) fn check_declared(
    config: &SnapshotReceiveConfig,
    declared: Option<u64>,
) -> Result<(), ReceiveError> {
    let limit = config.max_bytes;
    let most = limit + MAX_STREAM_OVERHEAD + 4 + MAX_ENVELOPE_BYTES as u64;
    match declared {
        Some(declared) if declared > most => {
            Err(ReceiveError::DeclaredTooLarge { declared, limit })
        }
        _ => Ok(()),
    }
}

/// Receives the snapshot message of a request from `sender`, verified.
pub(super) async fn receive(
    shared: &Arc<Shared>,
    sender: NodeId,
    body: Incoming,
) -> Result<(GroupId, Message), ReceiveError> {
    let (tx, rx) = mpsc::channel(FRAMES_IN_FLIGHT);
    let announced = Arc::new(AtomicU64::new(0));
    let reader = ChannelReader {
        rx,
        current: Bytes::new(),
        current_len: 0,
        shared: Arc::clone(shared),
    };
    let expect = Parties {
        from: sender,
        to: shared.id,
    };
    let config = shared.snapshot_receive.clone();
    let data_len = Arc::clone(&announced);
    let worker = tokio::task::spawn_blocking(move || {
        decode_stream(reader, expect, &config, |len| {
            data_len.store(len, Ordering::Relaxed);
        })
    });
    let mut worker = worker;
    let pump = pump(shared, body, tx, &announced);
    tokio::pin!(pump);
    // A task that stops early (a bad header, a snapshot too large) ends
    // the pump too: the rest of the body is not read.
    let (pumped, decoded) = tokio::select! {
        decoded = &mut worker => (Ok(()), decoded),
        pumped = &mut pump => (pumped, worker.await),
    };
    match decoded.map_err(ReceiveError::Worker)? {
        Ok(message) => Ok(message),
        // A stalled or broken connection looks truncated to the decoder;
        // the pump knows why.
        Err(e) => Err(pumped.err().unwrap_or(e)),
    }
}

/// Forwards the body's frames to the verifying task until the body ends,
/// the task stops reading (it has failed or finished), or time runs out.
async fn pump(
    shared: &Shared,
    mut body: Incoming,
    tx: mpsc::Sender<Bytes>,
    announced: &AtomicU64,
) -> Result<(), ReceiveError> {
    let started = Instant::now();
    loop {
        let overall = started + time_allowed(announced.load(Ordering::Relaxed));
        let deadline = overall.min(Instant::now() + IDLE_TIMEOUT);
        let frame = match timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(ReceiveError::Timeout),
            Ok(None) => return Ok(()),
            Ok(Some(Err(e))) => return Err(ReceiveError::Read(e)),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if data.is_empty() {
            continue;
        }
        let len = data.len() as u64;
        let now = shared.snapshot_buffered.fetch_add(len, Ordering::Relaxed) + len;
        raise_to(&shared.metrics.snapshot_bytes_buffered_peak, now);
        if tx.send(data).await.is_err() {
            shared.snapshot_buffered.fetch_sub(len, Ordering::Relaxed);
            return Ok(());
        }
    }
}

/// The blocking side of the channel, as a [`Read`]. Each frame counts as
/// buffered until it has been read through.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    /// What is left of the frame being read.
    current: Bytes,
    /// The whole length of that frame, released once it is read through.
    current_len: usize,
    shared: Arc<Shared>,
}

impl ChannelReader {
    fn release(&self, len: usize) {
        self.shared
            .snapshot_buffered
            .fetch_sub(len as u64, Ordering::Relaxed);
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(frame) => {
                    self.current_len = frame.len();
                    self.current = frame;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        if self.current.is_empty() {
            let len = std::mem::take(&mut self.current_len);
            self.release(len);
        }
        Ok(n)
    }
}

impl Drop for ChannelReader {
    fn drop(&mut self) {
        self.rx.close();
        let mut left = self.current_len;
        while let Ok(frame) = self.rx.try_recv() {
            left += frame.len();
        }
        self.release(left);
    }
}

/// Who a snapshot message must be from and to.
#[derive(Clone, Copy, Debug)]
pub(super) struct Parties {
    pub(super) from: NodeId,
    pub(super) to: NodeId,
}

/// Reads a snapshot body (envelope length, envelope, raft-snap stream)
/// from `body`, verifying it as it goes and spilling the data to a file in
/// `config.dir`; calls `announced` with the data length once the header
/// has verified; returns the message with its data read back from the
/// file. Blocking: runs on a blocking thread.
pub(super) fn decode_stream(
    mut body: impl Read,
    expect: Parties,
    config: &SnapshotReceiveConfig,
    announced: impl FnOnce(u64),
) -> Result<(GroupId, Message), ReceiveError> {
    let (group, message) = read_envelope(&mut body)?;
    let MessageBody::Snapshot(envelope) = &message.body else {
        let kind = message.body.kind_name();
        return Err(SnapshotBodyError::NotSnapshot(kind).into());
    };
    if message.from != expect.from || message.to != expect.to {
        return Err(ReceiveError::NotAddressed {
            kind: message.body.kind_name(),
            from: message.from,
            to: message.to,
            sender: expect.from,
        });
    }
    let mut decoder = SnapshotDecoder::with_chunk_len(&mut body, CHUNK_BYTES)
        .map_err(SnapshotBodyError::Stream)?;
    if decoder.metadata() != &envelope.metadata {
        return Err(SnapshotBodyError::MetadataMismatch.into());
    }
    let data_len = decoder.data_len();
    if data_len > config.max_bytes {
        let limit = config.max_bytes;
        return Err(ReceiveError::TooLarge { data_len, limit });
    }
    announced(data_len);
    let mut spill =
        BufWriter::new(tempfile::tempfile_in(&config.dir).map_err(ReceiveError::Spill)?);
    while let Some(chunk) = decoder.next_chunk().map_err(SnapshotBodyError::Stream)? {
        spill.write_all(chunk).map_err(ReceiveError::Spill)?;
    }
    drop(decoder);
    if body.read(&mut [0u8; 1]).map_err(ReceiveError::Spill)? != 0 {
        return Err(SnapshotBodyError::Trailing.into());
    }
    // Verified: only now is the data worth its memory.
    let data = read_back(spill, data_len).map_err(ReceiveError::Spill)?;
    let snapshot = Snapshot {
        metadata: envelope.metadata.clone(),
        data,
    };
    let message = Message {
        body: MessageBody::Snapshot(snapshot),
        ..message
    };
    Ok((group, message))
}

/// The envelope: a `u32` little-endian length, then the message encoded
/// with empty snapshot data: a plain `Message` of
/// [`PLAIN_GROUP`](crate::frame::PLAIN_GROUP), or, with
/// [`GROUP_ENVELOPE_BIT`] set in the length word, a `GroupMessage`. A
/// receiver that knows no groups takes that bit for a length over its
/// limit and refuses the snapshot: it never installs another group's.
fn read_envelope(body: &mut impl Read) -> Result<(GroupId, Message), SnapshotBodyError> {
    let short = |_| SnapshotBodyError::ShortEnvelope;
    let mut word = [0u8; 4];
    body.read_exact(&mut word).map_err(short)?;
    let word = u32::from_le_bytes(word);
    let grouped = word & GROUP_ENVELOPE_BIT != 0;
    let len = (word & !GROUP_ENVELOPE_BIT) as usize;
    if len > MAX_ENVELOPE_BYTES {
        return Err(SnapshotBodyError::LongEnvelope(len));
    }
    let mut envelope = vec![0u8; len];
    body.read_exact(&mut envelope).map_err(short)?;
    let limits = DecodeLimits::new().with_max_message_bytes(MAX_ENVELOPE_BYTES);
    let envelope = Bytes::from(envelope);
    let decoded = if grouped {
        limits.decode_group_message_bytes(envelope)
    } else {
        let plain = limits.decode_message_bytes(envelope);
        plain.map(|m| (crate::frame::PLAIN_GROUP, m))
    };
    decoded.map_err(SnapshotBodyError::Envelope)
}

/// Set in a snapshot envelope's length word when the envelope is a
/// `GroupMessage` (see `read_envelope`).
pub(super) const GROUP_ENVELOPE_BIT: u32 = 1 << 31;

/// The `len` bytes written to `spill`, read back into memory.
fn read_back(spill: BufWriter<std::fs::File>, len: u64) -> io::Result<Bytes> {
    let mut file = spill.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.rewind()?;
    let mut data = Vec::with_capacity(usize::try_from(len).map_err(io::Error::other)?);
    file.take(len).read_to_end(&mut data)?;
    if data.len() as u64 != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the spill file is shorter than the verified snapshot",
        ));
    }
    Ok(data.into())
}
