//! What the transport counts: plain atomics, written with one relaxed
//! increment on the hot path and read with getters, so an application
//! renders them in whatever exposition it uses, under its own names.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
    pub(crate) connections: Arc<ConnectionMetrics>,
}

impl TransportMetrics {
    /// Messages sent to peers (batched into fewer requests), snapshots
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

/// Adds one to a counter.
pub(crate) fn inc(counter: &AtomicU64) {
    add(counter, 1);
}

/// Raises a high-water-mark gauge to `n` if `n` is higher.
pub(crate) fn raise_to(gauge: &AtomicU64, n: u64) {
    gauge.fetch_max(n, Ordering::Relaxed);
}
