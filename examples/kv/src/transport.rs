//! Peer transport (to be implemented): protobuf message batches over HTTP.
//! INTERFACE CONTRACT — see the [kv] helper brief.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use raft_core::{Message, NodeId, SnapshotStatus};

use crate::metrics::Metrics;
use crate::peer_url::PeerUrl;

/// Where the transport hands what arrives from peers: implemented by the
/// raft loop. Every method must return quickly and never block.
pub trait RaftInbox: Send + Sync + 'static {
    /// A validated message from a known peer, for `RawNode::step`.
    fn deliver(&self, message: Message);
    /// Messages to `to` were dropped or failed: `RawNode::report_unreachable`.
    fn unreachable(&self, to: NodeId);
    /// A snapshot send to `to` finished: `RawNode::report_snapshot`.
    fn snapshot_status(&self, to: NodeId, status: SnapshotStatus);
}

/// How to start the transport.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// This node.
    pub id: NodeId,
    /// Sent in a header with every request; requests with another one are refused.
    pub cluster_id: u64,
    /// Where the peer server listens.
    pub listen: SocketAddr,
    /// Local address outgoing peer connections bind to (None: any).
    pub bind_outgoing: Option<IpAddr>,
    /// The other members and their URLs.
    pub peers: Vec<(NodeId, PeerUrl)>,
    /// Bounded queue length per peer, in messages.
    pub queue_messages: usize,
}

/// Why the transport did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The peer port could not be bound.
    #[error("cannot listen for peers on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// The running transport.
#[derive(Debug)]
pub struct Transport {}

impl Transport {
    /// Binds the peer listener and starts the per-peer senders on the
    /// current tokio runtime.
    ///
    /// # Errors
    /// [`TransportError::Bind`].
    pub async fn start(
        config: TransportConfig,
        inbox: Arc<dyn RaftInbox>,
        metrics: Arc<Metrics>,
    ) -> Result<Transport, TransportError> {
        let _ = (config, inbox, metrics);
        unimplemented!("transport")
    }

    /// Queues messages for their peers; never blocks (callable from a plain thread).
    pub fn send(&self, messages: Vec<Message>) {
        let _ = messages;
    }

    /// Adds or updates a peer.
    pub fn add_peer(&self, id: NodeId, url: PeerUrl) {
        let _ = (id, url);
    }

    /// Removes a peer; its requests are refused from now on.
    pub fn remove_peer(&self, id: NodeId) {
        let _ = id;
    }

    /// Stops the listener and the senders.
    pub async fn shutdown(&self) {}
}
