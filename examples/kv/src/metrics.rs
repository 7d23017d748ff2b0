//! What `GET /metrics` exports, in the Prometheus text format: raft-host's
//! counters and histograms (per group, [`PrometheusRecorder`]), the peer
//! transport's and the client API's.

use std::sync::Arc;

use raft_host::{PrometheusRecorder, PrometheusText};
use raft_transport::{ConnectionMetrics, TransportMetrics};

/// Every metric `raftkv` exports. Shared as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    /// What raft-host measures (the node's [`raft_host::Recorder`]).
    pub raft: Arc<PrometheusRecorder>,
    /// Client API connections: refused at the cap, open now.
    pub client_connections: Arc<ConnectionMetrics>,
    /// What the peer transport counts.
    pub transport: Arc<TransportMetrics>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            raft: Arc::new(PrometheusRecorder::new("raftkv")),
            client_connections: Arc::default(),
            transport: Arc::default(),
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = PrometheusText::new();
        self.raft.render(&mut out);
        self.transport.render("raftkv", &mut out);
        self.client_connections.render("raftkv_client", &mut out);
        out.counter(
            "raftkv_client_tls_handshakes_refused_total",
            "Client connections refused at the TLS handshake.",
            self.client_connections.tls_refused(),
        );
        out.finish()
    }
}
