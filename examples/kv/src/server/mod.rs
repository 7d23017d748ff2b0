//! The node: raft-host runs the Raft group (the Ready loop, durability
//! through raft-storage's `DiskStorage`, snapshots off the write path,
//! membership), with the key-value [`KvStore`] as its state machine and
//! raft-transport's [`HttpTransport`](raft_transport::HttpTransport) as
//! its peer transport; [`Handle`] is how the HTTP API reaches it.

mod node;

use std::sync::Arc;

use bytes::Bytes;
use raft_core::NodeId;
use raft_host::{
    GroupHandle, GroupStatus, MembershipChange, MembershipError, ProposeError, ReadError,
};

use crate::metrics::Metrics;
use raft_transport::{PeerUrl, Scheme};

use crate::store::{KvStore, Put};

pub use node::{LoopError, LoopExit, Node, NodeConfig, StartError};

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

/// The HTTP API's way into the node. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Handle {
    group: GroupHandle<KvStore>,
    metrics: Arc<Metrics>,
    peer_scheme: Scheme,
}

impl Handle {
    fn new(group: GroupHandle<KvStore>, metrics: Arc<Metrics>, peer_scheme: Scheme) -> Handle {
        Handle {
            group,
            metrics,
            peer_scheme,
        }
    }

    /// Writes `key`; returns once the write is applied on this node.
    ///
    /// # Errors
    /// A [`Refusal`].
    pub async fn put(&self, key: Bytes, value: Bytes) -> Result<(), Refusal> {
        let command = Put { key, value }.encode();
        match self.group.propose(command).await {
            Ok(_) => Ok(()),
            Err(e) => Err(propose_refusal(e)),
        }
    }

    /// A linearizable read of `key` (ReadIndex, thesis §6.4).
    ///
    /// # Errors
    /// A [`Refusal`].
    pub async fn get(&self, key: &[u8]) -> Result<Option<Bytes>, Refusal> {
        self.group.read(|s| s.get(key)).await.map_err(read_refusal)
    }

    /// A read of this node's state machine, which may be stale.
    pub fn get_serializable(&self, key: &[u8]) -> Option<Bytes> {
        self.group.read_local(|s| s.get(key))
    }

    /// Adds node `id` at `url`: as a learner that the leader promotes to
    /// voter once it has caught up; returns once the learner is added.
    ///
    /// # Errors
    /// A [`Refusal`].
    pub async fn add_member(&self, id: NodeId, url: &PeerUrl) -> Result<(), Refusal> {
        let addr = url.as_str().to_string();
        let change = MembershipChange::AddLearnerToPromote { id, addr };
        self.group
            .change_membership(change)
            .await
            .map_err(membership_refusal)
    }

    /// Removes node `id`; returns once the removal is applied here.
    ///
    /// # Errors
    /// A [`Refusal`].
    pub async fn remove_member(&self, id: NodeId) -> Result<(), Refusal> {
        self.group
            .change_membership(MembershipChange::Remove { id })
            .await
            .map_err(membership_refusal)
    }

    /// The node's status.
    ///
    /// # Errors
    /// [`Refusal::ShuttingDown`] once the node stopped.
    pub fn status(&self) -> Result<GroupStatus, Refusal> {
        let st = self.group.status();
        if !st.running {
            return Err(Refusal::ShuttingDown);
        }
        Ok(st)
    }

    /// The member other than `id` whose peer URL resolves to `addr`, as
    /// this node knows the members.
    pub fn member_at(&self, addr: std::net::SocketAddr, id: NodeId) -> Option<u64> {
        let members = self.group.status().addrs;
        // Resolved without holding anything: a URL may hold a host name.
        members.into_iter().find_map(|(other, url)| {
            let same = other != id && PeerUrl::parse(&url).is_ok_and(|u| u.addr() == addr);
            same.then_some(other.get())
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

    /// Asks the node to finish its current Ready, sync and stop.
    pub fn shutdown(&self) {
        self.group.shutdown();
    }
}

#[cfg(test)]
impl Handle {
    /// A handle with no node behind it: requests that need the node are
    /// refused (503); the metrics and the (empty) store work.
    pub(crate) fn detached() -> Handle {
        Handle {
            group: GroupHandle::detached(raft_host::GroupId(1), KvStore::new()),
            metrics: Arc::default(),
            peer_scheme: Scheme::Http,
        }
    }
}

fn propose_refusal(e: ProposeError) -> Refusal {
    match e {
        ProposeError::Timeout => Refusal::Timeout,
        ProposeError::Interrupted | ProposeError::OutcomeUnknown { .. } => Refusal::Interrupted,
        ProposeError::Stopped => Refusal::ShuttingDown,
        ProposeError::NotLeader { leader: None } => {
            Refusal::Unavailable("no leader is known".into())
        }
        other => Refusal::Unavailable(format!("proposal dropped: {other}")),
    }
}

fn read_refusal(e: ReadError) -> Refusal {
    match e {
        ReadError::Timeout => Refusal::Timeout,
        ReadError::Stopped => Refusal::ShuttingDown,
        other => Refusal::Unavailable(format!("read refused: {other}")),
    }
}

fn membership_refusal(e: MembershipError) -> Refusal {
    match e {
        MembershipError::NotLeader { leader: Some(l) } => Refusal::Unavailable(format!(
            "node {l} leads: membership changes are made by the leader, send it there"
        )),
        MembershipError::NotMember(..) => Refusal::NotMember(e.to_string()),
        MembershipError::RemovedId(id) => Refusal::Conflict(removed_id_refusal(id)),
        MembershipError::AlreadyMember(..)
        | MembershipError::Unsafe { .. }
        | MembershipError::NotCaughtUp { .. }
        | MembershipError::Refused(_) => Refusal::Conflict(e.to_string()),
        MembershipError::Timeout | MembershipError::OutcomeUnknown => Refusal::Timeout,
        MembershipError::Interrupted => Refusal::Interrupted,
        MembershipError::Stopped => Refusal::ShuttingDown,
        other => Refusal::Unavailable(other.to_string()),
    }
}

/// Why node `id` cannot be added: it was removed before, and ids are
/// never reused.
fn removed_id_refusal(id: NodeId) -> String {
    format!(
        "node {id} was removed from this cluster, and a removed node id is never reused (its old \
         process, log and votes may still be around): add the machine under a new id, with an \
         empty --data-dir"
    )
}
