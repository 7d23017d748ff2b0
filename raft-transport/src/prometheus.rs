//! The transport's counters in the Prometheus text format, beside
//! raft-host's ([`raft_host::PrometheusRecorder`]).

use raft_host::PrometheusText;

use crate::metrics::{ConnectionMetrics, TransportMetrics};

impl TransportMetrics {
    /// Writes every counter and gauge as `<prefix>_peer_...` (and
    /// `<prefix>_snapshots_sent_total` is raft-host's, not written here).
    pub fn render(&self, prefix: &str, out: &mut PrometheusText) {
        let name = |n: &str| format!("{prefix}_peer_{n}");
        let counters = [
            (
                "messages_sent_total",
                "Raft messages sent to peers.",
                self.messages_sent(),
            ),
            (
                "send_failures_total",
                "Raft messages dropped or failed on the way to a peer.",
                self.send_failures(),
            ),
            (
                "requests_rejected_total",
                "Peer requests refused.",
                self.requests_rejected(),
            ),
            (
                "tls_handshakes_refused_total",
                "Peer connections refused at the TLS handshake.",
                self.tls_handshakes_refused(),
            ),
            (
                "snapshot_receives_refused_total",
                "Snapshot uploads refused: too many at once.",
                self.snapshot_receives_refused(),
            ),
        ];
        for (n, help, value) in counters {
            out.counter(&name(n), help, value);
        }
        let gauges = [
            (
                "snapshot_receives_in_progress",
                "Snapshot uploads being received.",
                self.snapshot_receives_in_progress(),
            ),
            (
                "snapshot_bytes_buffered_peak",
                "Most snapshot body bytes held in memory at once.",
                self.snapshot_bytes_buffered_peak(),
            ),
        ];
        for (n, help, value) in gauges {
            out.gauge(&name(n), help, value);
        }
        self.connections().render(&format!("{prefix}_peer"), out);
    }
}

impl ConnectionMetrics {
    /// Writes `<prefix>_connections` (open now) and
    /// `<prefix>_connections_refused_total` (at the cap).
    pub fn render(&self, prefix: &str, out: &mut PrometheusText) {
        let open = format!("{prefix}_connections");
        out.gauge(&open, "Connections open.", self.open());
        let refused = format!("{prefix}_connections_refused_total");
        out.counter(
            &refused,
            "Connections refused at the connection cap.",
            self.refused(),
        );
    }
}
