//! The transport's counters in the Prometheus text format, beside
//! raft-host's ([`raft_host::PrometheusRecorder`]).

use raft_host::PrometheusText;

use crate::metrics::{ConnectionMetrics, LaneMetrics, TransportMetrics};

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
            (
                "snapshot_sends_refused_total",
                "Snapshot sends refused: too many at once.",
                self.snapshot_sends_refused(),
            ),
            (
                "stream_frames_refused_total",
                "Inbound stream frames refused; each closed its stream.",
                self.stream_frames_refused(),
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
        self.render_lanes(&name, out);
    }

    /// The per-peer, per-lane families, labelled `peer` and `lane`.
    fn render_lanes(&self, name: &impl Fn(&str) -> String, out: &mut PrometheusText) {
        type Get = fn(&LaneMetrics) -> u64;
        let lanes = self.lanes();
        let samples = |get: Get| {
            lanes
                .iter()
                .map(move |(peer, lane, m)| (format!("peer=\"{peer}\",lane=\"{lane}\""), get(m)))
        };
        let counters: [(&str, &str, Get); 5] = [
            (
                "lane_bytes_sent_total",
                "Frame bytes written to a peer's stream.",
                LaneMetrics::bytes_sent,
            ),
            (
                "lane_messages_sent_total",
                "Messages written to a peer's stream.",
                LaneMetrics::messages_sent,
            ),
            (
                "lane_drops_total",
                "Messages for a peer's lane dropped.",
                LaneMetrics::drops,
            ),
            (
                "lane_reconnects_total",
                "Streams to a peer opened again.",
                LaneMetrics::reconnects,
            ),
            (
                "lane_bad_frames_received_total",
                "Frames from a peer refused; each closed its stream.",
                LaneMetrics::bad_frames_received,
            ),
        ];
        for (n, help, get) in counters {
            out.labeled_counters(&name(n), help, samples(get));
        }
        let gauges: [(&str, &str, Get); 3] = [
            (
                "lane_queue_depth",
                "Messages queued for a peer's lane.",
                LaneMetrics::queue_depth,
            ),
            (
                "lane_rtt_last_microseconds",
                "Latest stream round trip to a peer (0: not measured).",
                |m| micros(m.rtt_last()),
            ),
            (
                "lane_rtt_ewma_microseconds",
                "Moving average of stream round trips to a peer (0: not measured).",
                |m| micros(m.rtt_ewma()),
            ),
        ];
        for (n, help, get) in gauges {
            out.labeled_gauges(&name(n), help, samples(get));
        }
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

/// A round trip in whole microseconds; 0 when not measured.
fn micros(rtt: Option<std::time::Duration>) -> u64 {
    rtt.map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
