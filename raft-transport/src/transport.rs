//! The transport itself: [`HttpTransport`], what it shares with its
//! tasks, and its queues. The wire format is in the crate's documentation.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use raft_core::{Message, NodeId, SnapshotStatus};
use raft_host::{GroupId, Inbox};
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;

use crate::conn::ConnectionLimits;
use crate::lane::Lane;
use crate::limiter::RateLimiter;
use crate::metrics::{TransportMetrics, add, inc};
use crate::peer_url::{PeerUrl, Scheme};
use crate::tls::PeerTls;

mod config;
mod fallback;
mod receive;
mod sender;
mod server;
mod snapshot;
mod stream_receiver;
mod stream_sender;

use stream_sender::{LaneQueue, LaneState};
#[cfg(test)]
mod tests;

pub use config::{
    DEFAULT_MAX_CONNECTIONS, DEFAULT_QUEUE_MESSAGES, MAX_CONCURRENT_SNAPSHOT_SENDS,
    SnapshotReceiveConfig, SnapshotSendConfig, TransportConfig,
};

/// The path message batches are posted to (accepted from older senders;
/// this one sends on streams).
pub const BATCH_PATH: &str = "/raft/batch";
/// The path the [`Lane::Message`] stream is opened with.
pub const STREAM_MESSAGE_PATH: &str = "/raft/stream/message";
/// The path the [`Lane::Append`] stream is opened with.
pub const STREAM_APPEND_PATH: &str = "/raft/stream/append";
/// The `upgrade` token of a stream request and its `101` answer.
pub const STREAM_PROTOCOL: &str = "raft-stream/1";
/// The largest stream frame payload (one encoded message) accepted.
pub const MAX_FRAME_BYTES: usize = MAX_BATCH_RECEIVE_BYTES;
/// The path snapshot messages are posted to.
pub const SNAPSHOT_PATH: &str = "/raft/snapshot";
/// Header with the cluster id, as 16 lowercase hex digits.
pub const HEADER_CLUSTER_ID: &str = "x-raftkv-cluster-id";
/// Header with the sender's node id, in decimal.
pub const HEADER_FROM: &str = "x-raftkv-from";
/// Header with the receiver's node id, in decimal.
pub const HEADER_TO: &str = "x-raftkv-to";
/// A lane's sender stops adding frames to one write once it holds about
/// this many bytes (a single larger message still goes alone).
pub const MAX_BATCH_SEND_BYTES: usize = 4 << 20;
/// The largest batch body the server accepts.
pub const MAX_BATCH_RECEIVE_BYTES: usize = 64 << 20;
/// The largest snapshot (its data) the server accepts by default.
pub const MAX_SNAPSHOT_BYTES: u64 = 1 << 30;
/// How many snapshots the server receives at once by default.
pub const MAX_CONCURRENT_SNAPSHOT_RECEIVES: usize = 2;

/// Where the transport hands what arrives: raft-host's [`Inbox`] (a test
/// puts a channel here). Every method returns at once.
pub(crate) trait Inbound: Send + Sync + 'static {
    /// A validated message from a known peer.
    fn deliver(&self, group: GroupId, message: Message);
    /// Messages to `to` were dropped or failed.
    fn unreachable(&self, group: GroupId, to: NodeId);
    /// A snapshot send to `to` finished.
    fn snapshot_status(&self, group: GroupId, to: NodeId, status: SnapshotStatus);
    /// Peer `by` answered that it removed this node (`410 Gone`).
    fn removed_by(&self, by: NodeId);
}

impl Inbound for Inbox {
    fn deliver(&self, group: GroupId, message: Message) {
        // A message for a group that is not running (yet) is dropped, as
        // any lost message: the sender retries.
        Inbox::deliver(self, group, message);
    }

    fn unreachable(&self, group: GroupId, to: NodeId) {
        Inbox::unreachable(self, group, to);
    }

    fn snapshot_status(&self, group: GroupId, to: NodeId, status: SnapshotStatus) {
        Inbox::snapshot_status(self, group, to, status);
    }

    fn removed_by(&self, by: NodeId) {
        Inbox::removed_by(self, by);
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

/// The peer port, bound: [`HttpTransport::start`] serves it. Binding it
/// first lets a node find its port taken before it touches its data.
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

/// The running transport: a peer server on its listener and one sender
/// per peer, on the tokio runtime it was started on. Hand it to
/// raft-host as the group's [`raft_host::Transport`].
///
/// Dropping it without [`shutdown`](Self::shutdown) aborts its tasks too,
/// but does not wait for them.
pub struct HttpTransport {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("id", &self.shared.id)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    /// Serves the peer port on `listener` and starts the senders of
    /// [`TransportConfig::peers`], on the current tokio runtime; what
    /// arrives goes to `inbox` (the host's, [`raft_host::Host::inbox`]),
    /// for the group it names: one transport carries every group of the
    /// host, over one stream per peer node and lane.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(listener: PeerListener, config: TransportConfig, inbox: Inbox) -> HttpTransport {
        HttpTransport::start_with(listener, config, Arc::new(inbox))
    }

    pub(crate) fn start_with(
        listener: PeerListener,
        config: TransportConfig,
        inbox: Arc<dyn Inbound>,
    ) -> HttpTransport {
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
            metrics: config.metrics,
            runtime: Handle::current(),
            stopped: AtomicBool::new(false),
            peers: RwLock::new(Peers::default()),
            tasks: Mutex::new(Tasks::default()),
            snapshot_slots: Arc::new(Semaphore::new(
                config.snapshot_receive.max_concurrent.max(1),
            )),
            snapshot_receive: config.snapshot_receive,
            snapshot_sends: Arc::new(Semaphore::new(config.snapshot_send.max_concurrent.max(1))),
            snapshot_limiter: config
                .snapshot_send
                .max_bytes_per_sec
                .map(|rate| Arc::new(RateLimiter::new(rate))),
            max_concurrent_sends: config.snapshot_send.max_concurrent.max(1),
            streams: Mutex::new(HashMap::new()),
            stream_generation: AtomicU64::new(0),
            limits: config.limits,
            snapshot_buffered: AtomicU64::new(0),
            tls: config.tls,
        });
        shared.spawn(server::serve(Arc::clone(&shared), listener));
        let transport = HttpTransport { shared, local_addr };
        for (group, id, url) in config.peers {
            transport.add_group_peer(group, id, url);
        }
        if transport.shared.tls.is_none() {
            tracing::warn!(
                listen = %local_addr,
                "the peer port is unauthenticated plain HTTP: anyone who can reach it can send \
                 raft messages as any member; give every node mutual TLS (https:// peer URLs \
                 and a certificate naming the node)"
            );
        }
        tracing::info!(
            id = %config.id,
            listen = %local_addr,
            tls = transport.shared.tls.is_some(),
            max_connections = config.limits.max_connections,
            "peer transport started"
        );
        transport
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

    /// What the transport counts ([`TransportConfig::metrics`]).
    pub fn metrics(&self) -> &Arc<TransportMetrics> {
        &self.shared.metrics
    }

    /// Queues messages for their peers; never blocks (callable from a plain thread).
    ///
    /// A message that cannot be queued (queue full, unknown peer) is dropped,
    /// counted in [`TransportMetrics::send_failures`] and reported with
    /// [`Inbox::unreachable`] (and, for a snapshot,
    /// [`Inbox::snapshot_status`] with [`SnapshotStatus::Failed`]).
    /// Snapshot messages are sent by a task of their own.
    fn send_all(&self, group: GroupId, messages: Vec<Message>) {
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
                let lane = Lane::of(&message.body);
                let Some(peer) = peers.active.get(&to) else {
                    tracing::debug!(to = %to, kind = message.body.kind_name(), "message to unknown peer dropped");
                    failed.push((to, lane.is_none()));
                    continue;
                };
                let Some(lane) = lane else {
                    let url = peer.url.clone();
                    let task = snapshot::send(Arc::clone(shared), url, group, message);
                    if !shared.spawn(task) {
                        failed.push((to, true));
                    }
                    continue;
                };
                if !peer.lanes[lane.index()].enqueue(shared, group, message) {
                    failed.push((to, false));
                }
            }
        }
        for (to, is_snapshot) in failed {
            shared.dropped_in(group, to, 1);
            if is_snapshot {
                shared.snapshot_done(group, to, SnapshotStatus::Failed);
            }
        }
    }

    /// `id`, at `url`, is a peer of `group`: the node's senders start with
    /// its first group, and follow its URL.
    fn add_group_peer(&self, group: GroupId, id: NodeId, url: PeerUrl) {
        if id == self.shared.id {
            return;
        }
        self.shared
            .peers
            .write()
            .groups
            .entry(id)
            .or_default()
            .insert(group);
        self.insert_peer(id, url);
    }

    /// `id` is no longer a peer of `group`; once it is a peer of no group,
    /// it is removed.
    fn remove_group_peer(&self, group: GroupId, id: NodeId) {
        let last = {
            let mut peers = self.shared.peers.write();
            match peers.groups.get_mut(&id) {
                Some(groups) => {
                    groups.remove(&group);
                    groups.is_empty()
                }
                None => true,
            }
        };
        if last {
            self.forget_peer(id);
        }
    }

    /// Adds or updates a peer: one sender task per lane.
    ///
    /// Adding a removed id makes it known again. Adding this node's own id
    /// does nothing.
    fn insert_peer(&self, id: NodeId, url: PeerUrl) {
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
        let lanes = Lane::ALL.map(|lane| {
            let (queue, rx) = mpsc::channel(shared.queue_messages);
            let state = Arc::new(LaneState {
                lane,
                overflowing: AtomicBool::new(false),
                metrics: shared.metrics.lane_entry(id, lane),
            });
            let task =
                stream_sender::run(Arc::clone(shared), id, url.clone(), rx, Arc::clone(&state));
            (LaneQueue { queue, state }, shared.spawn(task))
        });
        if lanes.iter().any(|(_, spawned)| !spawned) {
            return;
        }
        tracing::info!(peer = %id, url = %url, "peer added");
        // Replacing an entry drops the old queues, which stops their senders.
        let lanes = lanes.map(|(queue, _)| queue);
        peers.active.insert(id, PeerEntry { url, lanes });
    }

    /// Removes a peer: its requests are refused from now on, and its open
    /// inbound streams are closed.
    fn forget_peer(&self, id: NodeId) {
        let was_active = {
            let mut peers = self.shared.peers.write();
            peers.removed.insert(id);
            peers.groups.remove(&id);
            peers.active.remove(&id).is_some()
        };
        let closed = self.shared.close_streams_of(id);
        tracing::info!(peer = %id, was_active, streams_closed = closed, "peer removed");
    }

    /// Stops the listener and the senders, and waits for their tasks to end.
    pub async fn shutdown(&self) {
        let mut tasks = self.shared.close();
        tasks.shutdown().await;
        tracing::info!(id = %self.shared.id, "peer transport stopped");
    }
}

/// raft-host's view: every group of the host, and its liveness pings
/// (group 0), share the node's streams; a peer node is known while any
/// group names it.
impl raft_host::Transport for HttpTransport {
    fn send(&self, group: GroupId, messages: Vec<Message>) {
        self.send_all(group, messages);
    }

    fn add_peer(&self, group: GroupId, id: NodeId, addr: &str) {
        match PeerUrl::parse(addr) {
            Ok(url) => self.add_group_peer(group, id, url),
            Err(e) => {
                tracing::warn!(peer = id.get(), group = %group, error = %e, "unusable peer URL")
            }
        }
    }

    fn remove_peer(&self, group: GroupId, id: NodeId) {
        self.remove_group_peer(group, id);
    }
}

impl Drop for HttpTransport {
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
    inbox: Arc<dyn Inbound>,
    metrics: Arc<TransportMetrics>,
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
    /// One permit per snapshot that may be sent at once.
    snapshot_sends: Arc<Semaphore>,
    max_concurrent_sends: usize,
    /// Paces every snapshot send together; `None`: unpaced.
    snapshot_limiter: Option<Arc<RateLimiter>>,
    /// The open inbound stream of each peer and lane; a newer one replaces
    /// (and so closes) the older.
    streams: Mutex<HashMap<(NodeId, Lane), InboundStream>>,
    /// Tells inbound streams apart, so an ending one unregisters only itself.
    stream_generation: AtomicU64,
    tls: Option<PeerTls>,
}

/// An open inbound stream, as the registry holds it.
struct InboundStream {
    generation: u64,
    /// Dropping it closes the stream.
    _close: oneshot::Sender<()>,
}

/// The known and the removed peers.
#[derive(Default)]
struct Peers {
    active: HashMap<NodeId, PeerEntry>,
    removed: HashSet<NodeId>,
    /// The groups that name each peer. Invariant: a node of `active` has
    /// an entry here (added by `add_group_peer`), and none in `removed`.
    groups: HashMap<NodeId, BTreeSet<GroupId>>,
}

struct PeerEntry {
    url: PeerUrl,
    /// Indexed by [`Lane::index`].
    lanes: [LaneQueue; 2],
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
        // Dropping the queues lets senders end on their own too, and
        // dropping the registry closes the inbound streams.
        let active = std::mem::take(&mut self.peers.write().active);
        drop(active);
        drop(std::mem::take(&mut *self.streams.lock()));
        let mut tasks = self.tasks.lock();
        tasks.closed = true;
        std::mem::take(&mut tasks.set)
    }

    /// Closes the inbound streams of `id`; how many were open.
    fn close_streams_of(&self, id: NodeId) -> usize {
        let mut streams = self.streams.lock();
        let before = streams.len();
        streams.retain(|(from, _), _| *from != id);
        before - streams.len()
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

    /// Clears the overflow flag of `id`'s lane after a successful send.
    fn clear_overflow(&self, id: NodeId, state: &LaneState) {
        if state.overflowing.swap(false, Ordering::Relaxed) {
            tracing::info!(peer = %id, lane = %state.lane, "peer queue drains again");
        }
    }

    /// A validated message from a peer, for `group`.
    fn deliver(&self, group: GroupId, message: Message) {
        self.inbox.deliver(group, message);
    }

    /// How sending a snapshot of `group` to `to` ended.
    fn snapshot_done(&self, group: GroupId, to: NodeId, status: SnapshotStatus) {
        self.inbox.snapshot_status(group, to, status);
    }

    /// `count` messages of `group` to `to` were dropped or failed.
    fn dropped_in(&self, group: GroupId, to: NodeId, count: usize) {
        add(&self.metrics.send_failures, count as u64);
        self.inbox.unreachable(group, to);
    }

    /// `count` messages to `to` were lost with its stream, of any of the
    /// groups that name it: each of them probes `to` again.
    fn dropped(&self, to: NodeId, count: usize) {
        add(&self.metrics.send_failures, count as u64);
        let groups: Vec<GroupId> = self
            .peers
            .read()
            .groups
            .get(&to)
            .map(|g| g.iter().copied().collect())
            .unwrap_or_default();
        for group in groups {
            self.inbox.unreachable(group, to);
        }
    }

    fn sent(&self, count: usize) {
        add(&self.metrics.messages_sent, count as u64);
    }

    fn rejected(&self) {
        inc(&self.metrics.requests_rejected);
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
