//! What the transport counts: plain atomics, written with one relaxed
//! increment on the hot path and read with getters, so an application
//! renders them in whatever exposition it uses, under its own names.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use raft_core::NodeId;

use crate::lane::Lane;

/// What an [`HttpTransport`](crate::HttpTransport) counts. Share it with
/// [`TransportConfig::metrics`](crate::TransportConfig::metrics) to render
/// it; a fresh one counts from zero.
#[derive(Debug, Default)]
pub struct TransportMetrics {
    pub(crate) messages_sent: AtomicU64,
    pub(crate) send_failures: AtomicU64,
    pub(crate) requests_rejected: AtomicU64,
    pub(crate) tls_handshakes_refused: AtomicU64,
    pub(crate) snapshots_sent: AtomicU64,
    pub(crate) snapshot_receives_refused: AtomicU64,
    pub(crate) snapshot_receives_in_progress: AtomicU64,
    pub(crate) snapshot_bytes_buffered_peak: AtomicU64,
    pub(crate) stream_frames_refused: AtomicU64,
    pub(crate) snapshot_sends_refused: AtomicU64,
    pub(crate) connections: Arc<ConnectionMetrics>,
    /// Per peer and lane, created when a peer's lane is first used.
    lanes: RwLock<BTreeMap<(NodeId, Lane), Arc<LaneMetrics>>>,
}

impl TransportMetrics {
    /// Messages sent to peers (written to their streams), snapshots
    /// included.
    pub fn messages_sent(&self) -> u64 {
        get(&self.messages_sent)
    }

    /// Messages dropped or failed on the way to a peer: a full queue, an
    /// unknown peer, a peer down or refusing.
    pub fn send_failures(&self) -> u64 {
        get(&self.send_failures)
    }

    /// Peer requests refused: a wrong cluster id, an unknown or removed
    /// sender, a message not for this node, a body that does not decode
    /// or is too large, a snapshot beyond the receive limits.
    pub fn requests_rejected(&self) -> u64 {
        get(&self.requests_rejected)
    }

    /// Peer connections refused at the TLS handshake (no certificate, one
    /// not signed by the CA, expired, naming no node, or no TLS at all).
    pub fn tls_handshakes_refused(&self) -> u64 {
        get(&self.tls_handshakes_refused)
    }

    /// Snapshots sent to peers.
    pub fn snapshots_sent(&self) -> u64 {
        get(&self.snapshots_sent)
    }

    /// Snapshot uploads refused because the most allowed at once were
    /// already being received (also in [`requests_rejected`](Self::requests_rejected)).
    pub fn snapshot_receives_refused(&self) -> u64 {
        get(&self.snapshot_receives_refused)
    }

    /// Gauge: snapshot uploads being received now.
    pub fn snapshot_receives_in_progress(&self) -> u64 {
        get(&self.snapshot_receives_in_progress)
    }

    /// Gauge: the most bytes of snapshot request bodies held in memory at
    /// once since the start (a high-water mark; bodies stream to disk).
    pub fn snapshot_bytes_buffered_peak(&self) -> u64 {
        get(&self.snapshot_bytes_buffered_peak)
    }

    /// The peer port's connections: refused at the cap, open now.
    pub fn connections(&self) -> &ConnectionMetrics {
        &self.connections
    }

    /// Inbound stream frames refused (too large, undecodable, from or to
    /// the wrong node, on the wrong lane, stalled), over all peers; each
    /// closed its stream. Per peer in [`LaneMetrics::bad_frames_received`].
    pub fn stream_frames_refused(&self) -> u64 {
        get(&self.stream_frames_refused)
    }

    /// Snapshot sends refused because
    /// [`SnapshotSendConfig::max_concurrent`](crate::SnapshotSendConfig::max_concurrent)
    /// were in flight (reported [`Failed`](raft_core::SnapshotStatus::Failed)).
    pub fn snapshot_sends_refused(&self) -> u64 {
        get(&self.snapshot_sends_refused)
    }

    /// The metrics of `peer`'s `lane`, once it has been used (sent to or
    /// received from).
    pub fn lane(&self, peer: NodeId, lane: Lane) -> Option<Arc<LaneMetrics>> {
        self.lanes.read().get(&(peer, lane)).cloned()
    }

    /// Every peer lane used so far, in peer then lane order.
    pub fn lanes(&self) -> Vec<(NodeId, Lane, Arc<LaneMetrics>)> {
        let lanes = self.lanes.read();
        lanes
            .iter()
            .map(|((peer, lane), m)| (*peer, *lane, Arc::clone(m)))
            .collect()
    }

    /// The metrics of `peer`'s `lane`, created on first use.
    pub(crate) fn lane_entry(&self, peer: NodeId, lane: Lane) -> Arc<LaneMetrics> {
        if let Some(m) = self.lanes.read().get(&(peer, lane)) {
            return Arc::clone(m);
        }
        Arc::clone(self.lanes.write().entry((peer, lane)).or_default())
    }
}

/// What one lane to or from one peer counts. Counters of what is sent
/// are the sender's; [`bad_frames_received`](Self::bad_frames_received)
/// is the receiving side's.
#[derive(Debug, Default)]
pub struct LaneMetrics {
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) queue_depth: AtomicU64,
    pub(crate) drops: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    /// Microseconds; zero until measured.
    pub(crate) rtt_last_micros: AtomicU64,
    /// Microseconds; zero until measured.
    pub(crate) rtt_ewma_micros: AtomicU64,
    pub(crate) bad_frames_received: AtomicU64,
}

impl LaneMetrics {
    /// Frame bytes written to the peer's stream (headers included).
    pub fn bytes_sent(&self) -> u64 {
        get(&self.bytes_sent)
    }

    /// Messages written to the peer's stream.
    pub fn messages_sent(&self) -> u64 {
        get(&self.messages_sent)
    }

    /// Gauge: messages queued for the lane, not yet written.
    pub fn queue_depth(&self) -> u64 {
        get(&self.queue_depth)
    }

    /// Messages dropped: queue full, peer down, a write that failed.
    pub fn drops(&self) -> u64 {
        get(&self.drops)
    }

    /// Streams opened after the first (after a failure or a close).
    pub fn reconnects(&self) -> u64 {
        get(&self.reconnects)
    }

    /// The latest round trip measured on the stream: a ping's pong, or
    /// the upgrade's request and `101` answer. `None` until one is.
    pub fn rtt_last(&self) -> Option<Duration> {
        micros(get(&self.rtt_last_micros))
    }

    /// The moving average (weight 1/8, as TCP's SRTT) of the round trips.
    pub fn rtt_ewma(&self) -> Option<Duration> {
        micros(get(&self.rtt_ewma_micros))
    }

    /// Frames from this peer on this lane that were refused (each closed
    /// its stream).
    pub fn bad_frames_received(&self) -> u64 {
        get(&self.bad_frames_received)
    }

    /// Records a round trip.
    pub(crate) fn observe_rtt(&self, rtt: Duration) {
        let sample = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX).max(1);
        self.rtt_last_micros.store(sample, Ordering::Relaxed);
        let old = get(&self.rtt_ewma_micros);
        let new = if old == 0 {
            sample
        } else {
            // old + (sample - old) / 8, in integers that cannot overflow.
            (old - old / 8).saturating_add(sample / 8).max(1)
        };
        self.rtt_ewma_micros.store(new, Ordering::Relaxed);
    }
}

fn micros(n: u64) -> Option<Duration> {
    (n != 0).then(|| Duration::from_micros(n))
}

/// The connections of one listening port, as an
/// [`Admission`](crate::Admission) counts them.
#[derive(Debug, Default)]
pub struct ConnectionMetrics {
    refused: AtomicU64,
    open: AtomicU64,
    tls_refused: AtomicU64,
}

impl ConnectionMetrics {
    /// Connections refused because the port was at its cap.
    pub fn refused(&self) -> u64 {
        get(&self.refused)
    }

    /// Gauge: connections open now.
    pub fn open(&self) -> u64 {
        get(&self.open)
    }

    /// Connections refused at the TLS handshake (served by
    /// [`HttpServer`](crate::HttpServer); the peer port counts its own in
    /// [`TransportMetrics::tls_handshakes_refused`]).
    pub fn tls_refused(&self) -> u64 {
        get(&self.tls_refused)
    }

    pub(crate) fn tls_refused_one(&self) {
        inc(&self.tls_refused);
    }

    pub(crate) fn refused_one(&self) {
        inc(&self.refused);
    }

    pub(crate) fn opened(&self) {
        inc(&self.open);
    }

    pub(crate) fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

fn get(metric: &AtomicU64) -> u64 {
    metric.load(Ordering::Relaxed)
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Takes one from a gauge.
pub(crate) fn dec(gauge: &AtomicU64) {
    gauge.fetch_sub(1, Ordering::Relaxed);
}

/// Adds one to a counter.
pub(crate) fn inc(counter: &AtomicU64) {
    add(counter, 1);
}

/// Raises a high-water-mark gauge to `n` if `n` is higher.
pub(crate) fn raise_to(gauge: &AtomicU64, n: u64) {
    gauge.fetch_max(n, Ordering::Relaxed);
}
