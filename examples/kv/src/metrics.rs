//! Process-wide counters, exported in the Prometheus text format by
//! `GET /metrics`. Plain atomics: every writer is a single increment on a
//! hot path, and readers only need a consistent-enough snapshot.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use raft_transport::{ConnectionMetrics, TransportMetrics};

/// Upper bounds, in seconds, of the fsync latency histogram buckets.
const FSYNC_BUCKETS_SECONDS: [f64; 12] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// A cumulative histogram with fixed buckets (Prometheus semantics).
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per-bucket counts (not cumulative); the last slot is `+Inf`.
    buckets: [AtomicU64; FSYNC_BUCKETS_SECONDS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let slot = FSYNC_BUCKETS_SECONDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(FSYNC_BUCKETS_SECONDS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in FSYNC_BUCKETS_SECONDS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.buckets[FSYNC_BUCKETS_SECONDS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {}", self.count());
    }
}

/// Every metric `raftkv` exports. Shared as `Arc<Metrics>`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Proposals handed to raft-core (writes and conf changes).
    pub proposals: AtomicU64,
    /// Proposals raft-core refused (no leader, transfer, ...).
    pub proposals_dropped: AtomicU64,
    /// Entries this node learned committed.
    pub commits: AtomicU64,
    /// Entries applied to the state machine.
    pub applies: AtomicU64,
    /// Times the known leader changed.
    pub leader_changes: AtomicU64,
    /// Snapshots this node created.
    pub snapshots_created: AtomicU64,
    /// Snapshots received from a leader and restored.
    pub snapshots_restored: AtomicU64,
    /// Peer messages raft-core refused as no correct peer sends them
    /// (`StepError::InvalidMessage`); nothing changed.
    pub peer_messages_invalid: AtomicU64,
    /// Peer messages raft-core refused because their term was more than
    /// `Term::MAX_JUMP` ahead of this node's (`StepError::TermTooFarAhead`),
    /// e.g. a forged heartbeat meant to exhaust the terms; nothing changed.
    pub peer_messages_term_too_far_ahead: AtomicU64,
    /// Client API connections refused at the TLS handshake.
    pub client_tls_handshakes_refused: AtomicU64,
    /// Client API connections: refused at the cap, open now.
    pub client_connections: Arc<ConnectionMetrics>,
    /// What the peer transport counts: messages and snapshots sent, send
    /// failures, refused requests and handshakes, snapshot receives, peer
    /// connections.
    pub transport: Arc<TransportMetrics>,
    /// Duration of each WAL save that synced.
    pub fsync_seconds: Histogram,
}

/// What raft-host measures, into the same registry. Snapshots sent are
/// counted by the transport ([`TransportMetrics::snapshots_sent`]), which
/// sees them succeed: raft-host's count of the same reports would count
/// each one twice.
impl raft_host::Recorder for Metrics {
    fn count(&self, _group: raft_host::GroupId, counter: raft_host::Counter, n: u64) {
        use raft_host::Counter as C;
        let target = match counter {
            C::Proposals => &self.proposals,
            C::ProposalsRefused => &self.proposals_dropped,
            C::EntriesApplied => {
                add(&self.commits, n);
                &self.applies
            }
            C::LeaderChanges => &self.leader_changes,
            C::SnapshotsTaken => &self.snapshots_created,
            C::SnapshotsRestored => &self.snapshots_restored,
            C::PeerMessagesInvalid => &self.peer_messages_invalid,
            C::PeerMessagesTermTooFarAhead => &self.peer_messages_term_too_far_ahead,
            _ => return,
        };
        add(target, n);
    }

    fn observe(
        &self,
        _group: raft_host::GroupId,
        histogram: raft_host::Histogram,
        value: Duration,
    ) {
        if histogram == raft_host::Histogram::Persist {
            self.fsync_seconds.observe(value);
        }
    }
}

/// Adds one to a counter.
pub fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// The current value of a counter or gauge.
pub fn get(metric: &AtomicU64) -> u64 {
    metric.load(Ordering::Relaxed)
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let counters = self.counters();
        let gauges = self.gauges();
        let typed = counters
            .iter()
            .map(|c| (c, "counter"))
            .chain(gauges.iter().map(|g| (g, "gauge")));
        for ((name, help, value), kind) in typed {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        }
        self.fsync_seconds.render(
            &mut out,
            "raftkv_wal_fsync_seconds",
            "Duration of WAL saves that fsynced.",
        );
        out
    }

    /// Every counter: name, help, value.
    fn counters(&self) -> [(&'static str, &'static str, u64); 18] {
        let t = &self.transport;
        [
            (
                "raftkv_proposals_total",
                "Proposals handed to raft.",
                get(&self.proposals),
            ),
            (
                "raftkv_proposals_dropped_total",
                "Proposals raft refused.",
                get(&self.proposals_dropped),
            ),
            (
                "raftkv_commits_total",
                "Entries learned committed.",
                get(&self.commits),
            ),
            (
                "raftkv_applies_total",
                "Entries applied to the state machine.",
                get(&self.applies),
            ),
            (
                "raftkv_leader_changes_total",
                "Changes of the known leader.",
                get(&self.leader_changes),
            ),
            (
                "raftkv_snapshots_created_total",
                "Snapshots created.",
                get(&self.snapshots_created),
            ),
            (
                "raftkv_snapshots_restored_total",
                "Snapshots received and restored.",
                get(&self.snapshots_restored),
            ),
            (
                "raftkv_snapshots_sent_total",
                "Snapshots sent to followers.",
                t.snapshots_sent(),
            ),
            (
                "raftkv_peer_messages_sent_total",
                "Raft messages sent to peers.",
                t.messages_sent(),
            ),
            (
                "raftkv_peer_send_failures_total",
                "Raft messages dropped or failed on the way to a peer.",
                t.send_failures(),
            ),
            (
                "raftkv_peer_requests_rejected_total",
                "Peer requests refused.",
                t.requests_rejected(),
            ),
            (
                "raftkv_peer_messages_invalid_total",
                "Peer messages refused by raft-core as invalid.",
                get(&self.peer_messages_invalid),
            ),
            (
                "raftkv_peer_messages_term_too_far_ahead_total",
                "Peer messages refused: term too far ahead of this node's.",
                get(&self.peer_messages_term_too_far_ahead),
            ),
            (
                "raftkv_peer_tls_handshakes_refused_total",
                "Peer connections refused at the TLS handshake.",
                t.tls_handshakes_refused(),
            ),
            (
                "raftkv_client_tls_handshakes_refused_total",
                "Client connections refused at the TLS handshake.",
                get(&self.client_tls_handshakes_refused),
            ),
            (
                "raftkv_peer_snapshot_receives_refused_total",
                "Snapshot uploads refused: too many at once.",
                t.snapshot_receives_refused(),
            ),
            (
                "raftkv_client_connections_refused_total",
                "Client API connections refused at the connection cap.",
                self.client_connections.refused(),
            ),
            (
                "raftkv_peer_connections_refused_total",
                "Peer connections refused at the connection cap.",
                t.connections().refused(),
            ),
        ]
    }

    /// Every gauge: name, help, value.
    fn gauges(&self) -> [(&'static str, &'static str, u64); 4] {
        let t = &self.transport;
        [
            (
                "raftkv_client_connections",
                "Client API connections open.",
                self.client_connections.open(),
            ),
            (
                "raftkv_peer_connections",
                "Peer connections accepted and open.",
                t.connections().open(),
            ),
            (
                "raftkv_peer_snapshot_receives_in_progress",
                "Snapshot uploads being received.",
                t.snapshot_receives_in_progress(),
            ),
            (
                "raftkv_peer_snapshot_bytes_buffered_peak",
                "Most snapshot body bytes held in memory at once.",
                t.snapshot_bytes_buffered_peak(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.fsync_seconds.observe(Duration::from_micros(50));
        m.fsync_seconds.observe(Duration::from_millis(3));
        m.fsync_seconds.observe(Duration::from_secs(5));
        let text = m.render();
        assert!(
            text.contains("raftkv_wal_fsync_seconds_bucket{le=\"0.0001\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("raftkv_wal_fsync_seconds_bucket{le=\"0.005\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("raftkv_wal_fsync_seconds_bucket{le=\"+Inf\"} 3"),
            "{text}"
        );
        assert!(text.contains("raftkv_wal_fsync_seconds_count 3"), "{text}");
    }

    #[test]
    fn counters_render_their_values_and_the_transport_its_own_under_raftkv_names() {
        let m = Metrics::default();
        add(&m.proposals, 7);
        inc(&m.client_tls_handshakes_refused);
        let text = m.render();
        assert!(text.contains("raftkv_proposals_total 7"), "{text}");
        let name = "raftkv_client_tls_handshakes_refused_total";
        assert!(text.contains(&format!("{name} 1")), "{text}");
        for (name, kind) in [
            ("raftkv_snapshots_sent_total", "counter"),
            ("raftkv_peer_messages_sent_total", "counter"),
            ("raftkv_peer_send_failures_total", "counter"),
            ("raftkv_peer_requests_rejected_total", "counter"),
            ("raftkv_peer_tls_handshakes_refused_total", "counter"),
            ("raftkv_peer_snapshot_receives_refused_total", "counter"),
            ("raftkv_peer_connections_refused_total", "counter"),
            ("raftkv_peer_connections", "gauge"),
            ("raftkv_peer_snapshot_receives_in_progress", "gauge"),
            ("raftkv_peer_snapshot_bytes_buffered_peak", "gauge"),
        ] {
            let rendered = format!("# TYPE {name} {kind}\n{name} 0\n");
            assert!(text.contains(&rendered), "{name}: {text}");
        }
    }
}
