//! Peer transport: protobuf message batches over HTTP/1.1.
//!
//! Every node runs a peer server on its peer port and one sender per peer.
//!
//! # Wire format
//!
//! * `POST /raft/batch` ([`BATCH_PATH`]): the body is one `MessageBatch`
//!   ([`raft_proto::encode_batch`]) of messages, in sending order. A sender
//!   keeps one persistent connection per peer and sends one request at a
//!   time; whatever queued up while a request was in flight goes into the
//!   next one, up to [`MAX_BATCH_SEND_BYTES`].
//! * `POST /raft/snapshot` ([`SNAPSHOT_PATH`]): one snapshot message,
//!   streamed in chunks on a connection of its own: a 4-byte little-endian
//!   length, the message envelope ([`raft_proto::encode_message`] of the
//!   message with empty snapshot data), then the snapshot in `raft-snap`'s
//!   CRC-checked stream format ([`raft_snap::SnapshotEncoder`]).
//!
//! Every request carries the headers [`HEADER_CLUSTER_ID`] (16 lowercase
//! hex digits), [`HEADER_FROM`] and [`HEADER_TO`] (decimal node ids).
//!
//! With [`TransportConfig::tls`] every connection, both ways, is mutual TLS
//! ([`PeerTls`]): the server refuses at the handshake a client
//! without a certificate of the CA naming a node (counted in
//! [`Metrics::peer_tls_handshakes_refused`]) and answers `403` to a
//! request whose [`HEADER_FROM`] is not the node its certificate names; a
//! sender sends nothing to a server whose certificate is not valid for the
//! URL's host or names another node than the one it meant. Without TLS the
//! port is plain HTTP and [`Transport::start`] warns once that it is
//! unauthenticated.
//!
//! Answers: `204 No Content` once every message has been handed to the
//! [`RaftInbox`]; `403 Forbidden` for a wrong or missing cluster id, an
//! unknown sender, or a message not addressed to this node (or whose `from`
//! is not the sender); `410 Gone` for a sender that was removed from the
//! cluster; `400 Bad Request` for a body that does not decode; `413 Payload
//! Too Large` beyond [`MAX_BATCH_RECEIVE_BYTES`] or
//! [`SnapshotReceiveConfig::max_bytes`]; `503 Service Unavailable` for a
//! snapshot while [`SnapshotReceiveConfig::max_concurrent`] are being
//! received; `408` for a body that stalls (a batch's within
//! [`ConnectionLimits::body_timeout`]); `404` / `405` for other paths and
//! methods. A connection over [`ConnectionLimits::max_connections`] is
//! closed at once (after a `503` without TLS) and counted in
//! [`Metrics::peer_connections`]; one that sends no request
//! headers for [`ConnectionLimits::idle_timeout`] is closed.
//!
//! Snapshot bodies stream to a spill file, verified as they arrive, and
//! only a complete, verified snapshot is read into memory (see
//! `receive.rs`): a garbage or oversized upload never costs its size. Refusals carry a plain-text
//! reason, are logged at `warn` and counted in
//! [`Metrics::peer_requests_rejected`]; a refused request delivers nothing.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use raft_core::{Message, MessageBody, NodeId, SnapshotStatus};
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use raft_transport::{ConnectionLimits, PeerTls, PeerUrl, Scheme};

use crate::metrics::{Metrics, add, inc};

mod receive;
mod sender;
mod server;
mod snapshot;
#[cfg(test)]
mod tests;

/// The path message batches are posted to.
pub const BATCH_PATH: &str = "/raft/batch";
/// The path snapshot messages are posted to.
pub const SNAPSHOT_PATH: &str = "/raft/snapshot";
/// Header with the cluster id, as 16 lowercase hex digits.
pub const HEADER_CLUSTER_ID: &str = "x-raftkv-cluster-id";
/// Header with the sender's node id, in decimal.
pub const HEADER_FROM: &str = "x-raftkv-from";
/// Header with the receiver's node id, in decimal.
pub const HEADER_TO: &str = "x-raftkv-to";
/// A sender stops adding messages to a batch once it holds about this many
/// bytes (a single larger message still goes alone).
pub const MAX_BATCH_SEND_BYTES: usize = 4 << 20;
/// The largest batch body the server accepts.
pub const MAX_BATCH_RECEIVE_BYTES: usize = 64 << 20;
/// The largest snapshot (its data) the server accepts by default.
pub const MAX_SNAPSHOT_BYTES: u64 = 1 << 30;
/// How many snapshots the server receives at once by default.
pub const MAX_CONCURRENT_SNAPSHOT_RECEIVES: usize = 2;

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
    /// Sent in a header with every request; requests with another one are
    /// refused. `None` for a node joining a cluster whose id it does not
    /// know yet: it adopts the id of the first request from a known peer
    /// (see [`Transport::cluster_id`], which the caller persists).
    pub cluster_id: Option<u64>,
    /// Where the peer server listens.
    pub listen: SocketAddr,
    /// Local address outgoing peer connections bind to (None: any).
    pub bind_outgoing: Option<IpAddr>,
    /// The other members and their URLs.
    pub peers: Vec<(NodeId, PeerUrl)>,
    /// Bounded queue length per peer, in messages.
    pub queue_messages: usize,
    /// Limits of incoming snapshots.
    pub snapshot_receive: SnapshotReceiveConfig,
    /// The peer server's connection cap and timeouts.
    pub limits: ConnectionLimits,
    /// Mutual TLS of the peer port; `None` for plain, unauthenticated HTTP.
    pub tls: Option<PeerTls>,
}

/// How the peer server receives snapshots: streamed into a file of `dir`
/// (unlinked at once, so nothing is left behind) and verified as they
/// arrive; only a complete, verified snapshot is read into memory and
/// handed to raft.
#[derive(Clone, Debug)]
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

/// The peer port, bound: [`Transport::start_on`] serves it.
#[derive(Debug)]
pub struct PeerListener {
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl PeerListener {
    /// Binds `addr`.
    ///
    /// # Errors
    /// [`TransportError::Bind`].
    pub async fn bind(addr: SocketAddr) -> Result<PeerListener, TransportError> {
        let bind_err = |source| TransportError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        Ok(PeerListener {
            listener,
            local_addr,
        })
    }

    /// The address it listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// The running transport.
///
/// Dropping it without [`shutdown`](Self::shutdown) aborts its tasks too,
/// but does not wait for them.
pub struct Transport {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("id", &self.shared.id)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

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
        let listener = PeerListener::bind(config.listen).await?;
        Transport::start_on(listener, config, inbox, metrics)
    }

    /// Starts the transport on a listener bound before (so a node can
    /// find its peer port taken before it touches its data directory);
    /// [`TransportConfig::listen`] is ignored.
    pub fn start_on(
        listener: PeerListener,
        config: TransportConfig,
        inbox: Arc<dyn RaftInbox>,
        metrics: Arc<Metrics>,
    ) -> Result<Transport, TransportError> {
        let PeerListener {
            listener,
            local_addr,
        } = listener;
        let shared = Arc::new(Shared {
            id: config.id,
            cluster_id: AtomicU64::new(config.cluster_id.map_or(0, |id| id.max(1))),
            bind_outgoing: config.bind_outgoing,
            queue_messages: config.queue_messages.max(1),
            inbox,
            metrics,
            runtime: Handle::current(),
            stopped: AtomicBool::new(false),
            peers: RwLock::new(Peers::default()),
            tasks: Mutex::new(Tasks::default()),
            snapshot_slots: Arc::new(tokio::sync::Semaphore::new(
                config.snapshot_receive.max_concurrent.max(1),
            )),
            snapshot_receive: config.snapshot_receive,
            limits: config.limits,
            snapshot_buffered: AtomicU64::new(0),
            tls: config.tls,
        });
        shared.spawn(server::serve(Arc::clone(&shared), listener));
        let transport = Transport { shared, local_addr };
        for (id, url) in config.peers {
            transport.add_peer(id, url);
        }
        if transport.shared.tls.is_none() {
            tracing::warn!(
                listen = %local_addr,
                "the peer port is unauthenticated plain HTTP: anyone who can reach it can send \
                 raft messages as any member; use https:// peer URLs with --peer-cert, \
                 --peer-key and --peer-ca (`raftkv certs` writes them)"
            );
        }
        tracing::info!(
            id = %config.id,
            listen = %local_addr,
            tls = transport.shared.tls.is_some(),
            max_connections = config.limits.max_connections,
            "peer transport started"
        );
        Ok(transport)
    }

    /// The cluster id, once known (always, unless this node is joining and
    /// no peer has contacted it yet).
    pub fn cluster_id(&self) -> Option<u64> {
        match self.shared.cluster_id.load(Ordering::Acquire) {
            0 => None,
            id => Some(id),
        }
    }

    /// The address the peer server listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Queues messages for their peers; never blocks (callable from a plain thread).
    ///
    /// A message that cannot be queued (queue full, unknown peer) is dropped,
    /// counted in [`Metrics::peer_send_failures`] and reported with
    /// [`RaftInbox::unreachable`] (and, for a snapshot,
    /// [`RaftInbox::snapshot_status`] with [`SnapshotStatus::Failed`]).
    /// Snapshot messages are sent by a task of their own.
    pub fn send(&self, messages: Vec<Message>) {
        let shared = &self.shared;
        if shared.stopped.load(Ordering::Acquire) {
            tracing::debug!(
                count = messages.len(),
                "transport stopped; messages dropped"
            );
            return;
        }
        // Failures are reported after the lock is released.
        let mut failed: Vec<(NodeId, bool)> = Vec::new();
        {
            let peers = shared.peers.read();
            for message in messages {
                let to = message.to;
                if to == shared.id {
                    tracing::warn!(to = %to, kind = message.body.kind_name(), "message to self dropped");
                    continue;
                }
                let is_snapshot = matches!(message.body, MessageBody::Snapshot(_));
                let Some(peer) = peers.active.get(&to) else {
                    tracing::debug!(to = %to, kind = message.body.kind_name(), "message to unknown peer dropped");
                    failed.push((to, is_snapshot));
                    continue;
                };
                if is_snapshot {
                    let task = snapshot::send(Arc::clone(shared), peer.url.clone(), message);
                    if !shared.spawn(task) {
                        failed.push((to, true));
                    }
                    continue;
                }
                match peer.queue.try_send(message) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(m)) => {
                        if !peer.overflowing.swap(true, Ordering::Relaxed) {
                            tracing::warn!(
                                to = %to,
                                capacity = shared.queue_messages,
                                kind = m.body.kind_name(),
                                "peer queue full; dropping messages",
                            );
                        }
                        failed.push((to, false));
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => failed.push((to, false)),
                }
            }
        }
        for (to, is_snapshot) in failed {
            shared.dropped(to, 1);
            if is_snapshot {
                shared.inbox.snapshot_status(to, SnapshotStatus::Failed);
            }
        }
    }

    /// Adds or updates a peer.
    ///
    /// Adding a removed id makes it known again. Adding this node's own id
    /// does nothing.
    pub fn add_peer(&self, id: NodeId, url: PeerUrl) {
        let shared = &self.shared;
        if id == shared.id || shared.stopped.load(Ordering::Acquire) {
            return;
        }
        let mut peers = shared.peers.write();
        peers.removed.remove(&id);
        if peers.active.get(&id).is_some_and(|p| p.url == url) {
            return;
        }
        // The scheme a member URL was recorded with never decides the
        // security of the link, so an http:// URL can never downgrade a TLS
        // node (a cluster moved to TLS keeps its recorded http:// URLs).
        let tls = shared.tls.is_some();
        if (url.scheme() == Scheme::Https) != tls {
            tracing::warn!(
                peer = %id,
                url = %url,
                tls,
                "peer URL scheme differs from this node's peer port; using this node's"
            );
        }
        let (queue, rx) = mpsc::channel(shared.queue_messages);
        let overflowing = Arc::new(AtomicBool::new(false));
        let task = sender::run(
            Arc::clone(shared),
            id,
            url.clone(),
            rx,
            Arc::clone(&overflowing),
        );
        if !shared.spawn(task) {
            return;
        }
        tracing::info!(peer = %id, url = %url, "peer added");
        // Replacing an entry drops the old queue, which stops its sender.
        peers.active.insert(
            id,
            PeerEntry {
                url,
                queue,
                overflowing,
            },
        );
    }

    /// Removes a peer; its requests are refused from now on.
    pub fn remove_peer(&self, id: NodeId) {
        let mut peers = self.shared.peers.write();
        let was_active = peers.active.remove(&id).is_some();
        peers.removed.insert(id);
        tracing::info!(peer = %id, was_active, "peer removed");
    }

    /// Stops the listener and the senders, and waits for their tasks to end.
    pub async fn shutdown(&self) {
        let mut tasks = self.shared.close();
        tasks.shutdown().await;
        tracing::info!(id = %self.shared.id, "peer transport stopped");
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        // Dropping the set aborts every task (they hold `Arc<Shared>`, so
        // they would otherwise outlive the transport).
        drop(self.shared.close());
    }
}

/// What the transport's tasks share.
struct Shared {
    id: NodeId,
    /// Zero until known (a joining node adopts the first one it sees).
    cluster_id: AtomicU64,
    bind_outgoing: Option<IpAddr>,
    queue_messages: usize,
    inbox: Arc<dyn RaftInbox>,
    metrics: Arc<Metrics>,
    runtime: Handle,
    stopped: AtomicBool,
    peers: RwLock<Peers>,
    tasks: Mutex<Tasks>,
    snapshot_receive: SnapshotReceiveConfig,
    limits: ConnectionLimits,
    /// One permit per snapshot that may be received at once.
    snapshot_slots: Arc<tokio::sync::Semaphore>,
    /// Bytes of snapshot bodies in memory now, over all receives.
    snapshot_buffered: AtomicU64,
    tls: Option<PeerTls>,
}

/// The known and the removed peers.
#[derive(Default)]
struct Peers {
    active: HashMap<NodeId, PeerEntry>,
    removed: HashSet<NodeId>,
}

struct PeerEntry {
    url: PeerUrl,
    queue: mpsc::Sender<Message>,
    /// Set when the queue overflowed, cleared by the sender on success:
    /// one warning per overflow episode rather than one per message.
    overflowing: Arc<AtomicBool>,
}

/// Every task of the transport, so shutdown can stop and await them.
#[derive(Default)]
struct Tasks {
    set: JoinSet<()>,
    closed: bool,
}

/// Whether a node may send to this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PeerStatus {
    Known,
    Removed,
    Unknown,
}

impl Shared {
    /// Spawns a task on the transport's runtime; false after shutdown.
    fn spawn<F>(&self, task: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut tasks = self.tasks.lock();
        if tasks.closed {
            return false;
        }
        // Reap finished tasks so the set does not grow without bound.
        while let Some(done) = tasks.set.try_join_next() {
            if let Err(e) = done
                && e.is_panic()
            {
                tracing::error!(error = %e, "a transport task panicked");
            }
        }
        tasks.set.spawn_on(task, &self.runtime);
        true
    }

    /// Marks the transport stopped and hands out its tasks.
    fn close(&self) -> JoinSet<()> {
        self.stopped.store(true, Ordering::Release);
        // Dropping the queues lets senders end on their own too.
        let active = std::mem::take(&mut self.peers.write().active);
        drop(active);
        let mut tasks = self.tasks.lock();
        tasks.closed = true;
        std::mem::take(&mut tasks.set)
    }

    fn peer_status(&self, id: NodeId) -> PeerStatus {
        let peers = self.peers.read();
        if peers.active.contains_key(&id) {
            PeerStatus::Known
        } else if peers.removed.contains(&id) {
            PeerStatus::Removed
        } else {
            PeerStatus::Unknown
        }
    }

    /// Clears the overflow flag of `id`'s queue after a successful send.
    fn clear_overflow(&self, id: NodeId, flag: &AtomicBool) {
        if flag.swap(false, Ordering::Relaxed) {
            tracing::info!(peer = %id, "peer queue drains again");
        }
    }

    /// `count` messages to `to` were dropped or failed.
    fn dropped(&self, to: NodeId, count: usize) {
        add(&self.metrics.peer_send_failures, count as u64);
        self.inbox.unreachable(to);
    }

    fn sent(&self, count: usize) {
        add(&self.metrics.peer_messages_sent, count as u64);
    }

    fn rejected(&self) {
        inc(&self.metrics.peer_requests_rejected);
    }

    fn cluster_header(&self) -> String {
        format!("{:016x}", self.cluster_id.load(Ordering::Acquire))
    }

    /// The cluster id, adopting `offered` if none is known yet.
    fn cluster_id_or_adopt(&self, offered: u64) -> u64 {
        match self
            .cluster_id
            .compare_exchange(0, offered, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                tracing::info!(cluster_id = %format!("{offered:016x}"), "joined cluster");
                offered
            }
            Err(known) => known,
        }
    }
}
