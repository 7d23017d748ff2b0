//! How a transport is configured: [`TransportConfig`] and the limits of
//! snapshots both ways.

use std::net::IpAddr;
use std::sync::Arc;

use raft_core::NodeId;
use raft_host::GroupId;

use super::{MAX_CONCURRENT_SNAPSHOT_RECEIVES, MAX_SNAPSHOT_BYTES};
use crate::conn::ConnectionLimits;
use crate::metrics::TransportMetrics;
use crate::peer_url::PeerUrl;
use crate::tls::PeerTls;

/// How to start the transport. [`TransportConfig::new`] gives the
/// defaults.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TransportConfig {
    /// This node.
    pub id: NodeId,
    /// Sent in a header with every request; requests with another one are
    /// refused. `None` for a node joining a cluster whose id it does not
    /// know yet: it adopts the id of the first request from a known peer
    /// (see [`HttpTransport::cluster_id`](crate::HttpTransport::cluster_id),
    /// which the caller persists).
    pub cluster_id: Option<u64>,
    /// Local address outgoing peer connections bind to (`None`: any).
    pub bind_outgoing: Option<IpAddr>,
    /// Peers known at start, each with a group that names it, before
    /// raft-host adds the members it knows
    /// ([`raft_host::Transport::add_peer`]).
    pub peers: Vec<(GroupId, NodeId, PeerUrl)>,
    /// Bounded queue length per peer and lane, in messages
    /// ([`DEFAULT_QUEUE_MESSAGES`]): a message that does not fit is
    /// dropped and its peer reported unreachable.
    pub queue_messages: usize,
    /// Limits of incoming snapshots.
    pub snapshot_receive: SnapshotReceiveConfig,
    /// Limits of outgoing snapshots: pace and concurrency.
    pub snapshot_send: SnapshotSendConfig,
    /// The peer server's connection cap and timeouts (by default
    /// [`ConnectionLimits::peer`] of [`DEFAULT_MAX_CONNECTIONS`]).
    pub limits: ConnectionLimits,
    /// Mutual TLS of the peer port; `None` for plain, unauthenticated HTTP.
    pub tls: Option<PeerTls>,
    /// Where the transport counts what it does.
    pub metrics: Arc<TransportMetrics>,
}

/// The default [`TransportConfig::queue_messages`].
pub const DEFAULT_QUEUE_MESSAGES: usize = 4096;
/// The default [`SnapshotSendConfig::max_concurrent`].
pub const MAX_CONCURRENT_SNAPSHOT_SENDS: usize = 2;
/// The default cap of peer connections ([`TransportConfig::limits`]).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

impl TransportConfig {
    /// Node `id`'s transport (of every group its host runs), receiving snapshots into
    /// `snapshot_dir` ([`SnapshotReceiveConfig::new`]), with no cluster id
    /// yet, no TLS, and the default queue and connection limits.
    pub fn new(id: NodeId, snapshot_dir: impl Into<std::path::PathBuf>) -> TransportConfig {
        TransportConfig {
            id,
            cluster_id: None,
            bind_outgoing: None,
            peers: Vec::new(),
            queue_messages: DEFAULT_QUEUE_MESSAGES,
            snapshot_receive: SnapshotReceiveConfig::new(snapshot_dir),
            snapshot_send: SnapshotSendConfig::new(),
            limits: ConnectionLimits::peer(DEFAULT_MAX_CONNECTIONS),
            tls: None,
            metrics: Arc::default(),
        }
    }
}

/// How the peer server receives snapshots: streamed into a file of `dir`
/// (unlinked at once, so nothing is left behind) and verified as they
/// arrive; only a complete, verified snapshot is read into memory and
/// handed to raft.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SnapshotReceiveConfig {
    /// Where snapshots being received are spilled.
    pub dir: std::path::PathBuf,
    /// The largest snapshot data accepted, in bytes.
    pub max_bytes: u64,
    /// How many snapshots are received at once; a further upload gets
    /// `503 Service Unavailable`.
    pub max_concurrent: usize,
}

impl SnapshotReceiveConfig {
    /// Spilling into `dir`, with [`MAX_SNAPSHOT_BYTES`] and
    /// [`MAX_CONCURRENT_SNAPSHOT_RECEIVES`].
    pub fn new(dir: impl Into<std::path::PathBuf>) -> SnapshotReceiveConfig {
        SnapshotReceiveConfig {
            dir: dir.into(),
            max_bytes: MAX_SNAPSHOT_BYTES,
            max_concurrent: MAX_CONCURRENT_SNAPSHOT_RECEIVES,
        }
    }
}

/// How snapshots are sent: each on a connection of its own, at most
/// [`max_concurrent`](Self::max_concurrent) at once, all of them together
/// paced to [`max_bytes_per_sec`](Self::max_bytes_per_sec), so catching
/// up a follower cannot take the leader's bandwidth from its appends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotSendConfig {
    /// The most snapshot bytes per second this node sends, over all its
    /// snapshot sends together (a token bucket with a burst of a tenth of
    /// a second, at most 256 KiB). `None` (the default): unlimited.
    ///
    /// A receiver allows 30 s plus 1 s per MiB for a snapshot, so a limit
    /// below 1 MiB/s suits only snapshots that fit in that time.
    pub max_bytes_per_sec: Option<u64>,
    /// How many snapshots are sent at once
    /// ([`MAX_CONCURRENT_SNAPSHOT_SENDS`]). A send over the cap fails at
    /// once with [`SnapshotStatus::Failed`](raft_core::SnapshotStatus::Failed)
    /// rather than wait: a waiting send would pin its snapshot's data in
    /// memory for as long as the others take, while Raft simply asks again
    /// once it has probed the follower. Counted in
    /// [`TransportMetrics::snapshot_sends_refused`].
    pub max_concurrent: usize,
}

impl SnapshotSendConfig {
    /// Unpaced, [`MAX_CONCURRENT_SNAPSHOT_SENDS`] at once.
    pub const fn new() -> SnapshotSendConfig {
        SnapshotSendConfig {
            max_bytes_per_sec: None,
            max_concurrent: MAX_CONCURRENT_SNAPSHOT_SENDS,
        }
    }
}

impl Default for SnapshotSendConfig {
    fn default() -> SnapshotSendConfig {
        SnapshotSendConfig::new()
    }
}
