//! The node: a raft-core `RawNode` driven by one dedicated thread (the raft
//! loop), durable through raft-storage's `DiskStorage`, talking to peers through
//! the [`Transport`](crate::transport::Transport), and a [`Handle`] through
//! which the HTTP API submits requests.
//!
//! Requests cross into the loop over a bounded channel and come back on a
//! oneshot. The loop drains every queued request before building a Ready,
//! so all writes that arrive while the previous batch was being synced
//! share the next fsync and the next append message (batching in the Ready
//! loop, plus raft-wal's group commit).

mod apply;
pub mod durable;
pub mod identity;
mod raft_loop;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::{Sender, TrySendError};
use parking_lot::RwLock;
use raft_core::{ConfChange, Message, NodeId, SnapshotStatus};
use tokio::sync::oneshot;

use crate::metrics::Metrics;
use crate::peer_url::{PeerUrl, Scheme};
use crate::store::KvStore;
use crate::transport::RaftInbox;

pub use raft_loop::{LoopError, LoopExit, RaftLoop, ServerOptions, StartError};

/// Why a request was not carried out. Each maps to one HTTP status.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// No leader is known, or the proposal was dropped: retry later (503).
    #[error("{0}")]
    Unavailable(String),
    /// The request conflicts with the current membership (409).
    #[error("{0}")]
    Conflict(String),
    /// The member does not exist (404).
    #[error("{0}")]
    NotMember(String),
    /// The node is shutting down or was removed (503).
    #[error("this node is shutting down")]
    ShuttingDown,
    /// The request is still pending after the deadline; a write may or may
    /// not take effect (504).
    #[error("timed out; the outcome is unknown")]
    Timeout,
    /// The node stopped (shutdown or removal) while the request was
    /// pending: it may have been proposed and committed, so the outcome is
    /// unknown (504), unlike [`Refusal::ShuttingDown`].
    #[error("the node stopped before the request finished; the outcome is unknown")]
    Interrupted,
}

/// What the loop answers.
pub type Reply = oneshot::Sender<Result<(), Refusal>>;

/// A request from the HTTP API.
#[derive(Debug)]
pub enum Request {
    /// Write `value` under `key`.
    Put {
        /// The key.
        key: Bytes,
        /// The value.
        value: Bytes,
        /// Answered once applied.
        reply: Reply,
    },
    /// A linearizable read barrier: answered once this node has applied
    /// everything committed when the request arrived (ReadIndex).
    Read {
        /// Answered when the store may be read.
        reply: Reply,
    },
    /// A membership change.
    ConfChange {
        /// The change.
        change: ConfChange,
        /// Answered once applied.
        reply: Reply,
    },
    /// A status report.
    Status {
        /// The answer.
        reply: oneshot::Sender<StatusReport>,
    },
}

/// What `GET /status` shows.
#[derive(Debug, Clone)]
pub struct StatusReport {
    /// This node.
    pub id: NodeId,
    /// Current term.
    pub term: u64,
    /// The known leader.
    pub leader: Option<NodeId>,
    /// Role name.
    pub role: &'static str,
    /// Commit index.
    pub commit: u64,
    /// Applied index.
    pub applied: u64,
    /// Voters.
    pub voters: Vec<u64>,
    /// Learners.
    pub learners: Vec<u64>,
    /// Member URLs.
    pub urls: Vec<(u64, String)>,
    /// Ids of removed nodes, which are never members again.
    pub removed: Vec<u64>,
    /// Newest snapshot (index, term).
    pub last_snapshot: (u64, u64),
}

pub(crate) enum Event {
    Request(Request),
    Peer(Message),
    Unreachable(NodeId),
    SnapshotStatus(NodeId, SnapshotStatus),
    Shutdown,
}

/// The HTTP API's way into the node. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Handle {
    tx: Sender<Event>,
    store: Arc<RwLock<KvStore>>,
    metrics: Arc<Metrics>,
    request_timeout: Duration,
    peer_scheme: Scheme,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Request(r) => write!(f, "Request({r:?})"),
            Event::Peer(m) => write!(f, "Peer(from {})", m.from),
            Event::Unreachable(id) => write!(f, "Unreachable({id})"),
            Event::SnapshotStatus(id, s) => write!(f, "SnapshotStatus({id}, {s:?})"),
            Event::Shutdown => f.write_str("Shutdown"),
        }
    }
}

impl Handle {
    fn submit(&self, request: Request) -> Result<(), Refusal> {
        match self.tx.try_send(Event::Request(request)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                Err(Refusal::Unavailable("the node is overloaded; retry".into()))
            }
            Err(TrySendError::Disconnected(_)) => Err(Refusal::ShuttingDown),
        }
    }

    async fn round_trip(&self, make: impl FnOnce(Reply) -> Request) -> Result<(), Refusal> {
        let (reply, rx) = oneshot::channel();
        self.submit(make(reply))?;
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(r)) => r,
            // The loop stopped with the request pending (it may have been
            // proposed and committed): the outcome is unknown, as after a
            // timeout, not "nothing happened". Found by the fault test.
            Ok(Err(_)) => Err(Refusal::Interrupted),
            Err(_) => Err(Refusal::Timeout),
        }
    }

    /// Writes `key`; returns once the write is applied on this node.
    ///
    /// # Errors
    /// A [`Refusal`].
    pub async fn put(&self, key: Bytes, value: Bytes) -> Result<(), Refusal> {
        self.round_trip(|reply| Request::Put { key, value, reply })
            .await
    }

    /// A linearizable read of `key` (ReadIndex, thesis §6.4).
    ///
    /// # Errors
    /// A [`Refusal`].
    pub async fn get(&self, key: &[u8]) -> Result<Option<Bytes>, Refusal> {
        self.round_trip(|reply| Request::Read { reply }).await?;
        Ok(self.store.read().get(key))
    }

    /// A read of this node's state machine, which may be stale.
    pub fn get_serializable(&self, key: &[u8]) -> Option<Bytes> {
        self.store.read().get(key)
    }

    /// Proposes a membership change; returns once it is applied here.
    ///
    /// # Errors
    /// A [`Refusal`].
    pub async fn conf_change(&self, change: ConfChange) -> Result<(), Refusal> {
        self.round_trip(|reply| Request::ConfChange { change, reply })
            .await
    }

    /// The node's status.
    ///
    /// # Errors
    /// [`Refusal::ShuttingDown`] or [`Refusal::Timeout`].
    pub async fn status(&self) -> Result<StatusReport, Refusal> {
        let (reply, rx) = oneshot::channel();
        self.submit(Request::Status { reply })?;
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(Refusal::ShuttingDown),
            Err(_) => Err(Refusal::Timeout),
        }
    }

    /// The member other than `id` whose peer URL resolves to `addr`, as
    /// this node's state machine knows them.
    pub fn member_at(&self, addr: std::net::SocketAddr, id: NodeId) -> Option<u64> {
        let peers: Vec<(u64, String)> = self
            .store
            .read()
            .peers()
            .iter()
            .map(|(id, url)| (*id, url.clone()))
            .collect();
        // Resolved outside the lock: a URL may hold a host name.
        peers.into_iter().find_map(|(other, url)| {
            let same = other != id.get() && PeerUrl::parse(&url).is_ok_and(|u| u.addr() == addr);
            same.then_some(other)
        })
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The scheme of this cluster's peer URLs (`https` with mutual TLS).
    pub fn peer_scheme(&self) -> Scheme {
        self.peer_scheme
    }

    /// Asks the loop to finish its current Ready, sync and stop.
    pub fn shutdown(&self) {
        // A full queue still gets the message through: block briefly.
        let _ = self
            .tx
            .send_timeout(Event::Shutdown, Duration::from_secs(1));
    }
}

#[cfg(test)]
impl Handle {
    /// A handle with no loop behind it: requests that need the loop are
    /// refused (503); the metrics and the (empty) store work.
    pub(crate) fn detached() -> Handle {
        let (tx, _) = crossbeam_channel::bounded(1);
        Handle {
            tx,
            store: Arc::default(),
            metrics: Arc::default(),
            request_timeout: Duration::from_secs(1),
            peer_scheme: Scheme::Http,
        }
    }
}

/// The transport's way into the loop. Never blocks: when the queue is full
/// a peer message is dropped, which Raft tolerates (it is retried).
#[derive(Debug, Clone)]
pub struct Inbox {
    tx: Sender<Event>,
}

impl RaftInbox for Inbox {
    fn deliver(&self, message: Message) {
        let _ = self.tx.try_send(Event::Peer(message));
    }

    fn unreachable(&self, to: NodeId) {
        let _ = self.tx.try_send(Event::Unreachable(to));
    }

    fn snapshot_status(&self, to: NodeId, status: SnapshotStatus) {
        // Must not be lost, or the leader waits for the snapshot forever.
        let _ = self
            .tx
            .send_timeout(Event::SnapshotStatus(to, status), Duration::from_secs(1));
    }
}
