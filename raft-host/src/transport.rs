//! The host's view of the network: a [`Transport`] sends, an [`Inbox`]
//! receives. A user brings gRPC, QUIC or anything else by implementing
//! [`Transport`] and delivering what arrives to the host's [`Inbox`];
//! [`LocalNetwork`](crate::LocalNetwork) is an in-process one for tests.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::RwLock;
use raft_core::{Message, NodeId, SnapshotStatus};

use crate::liveness::{HOST_GROUP, Liveness};
use raft_core::GroupId;

/// Sends a group's messages to its peers. Every method must return at
/// once: the group's loop calls them between fsyncs. A message that cannot
/// be sent is dropped (Raft retries) and reported with
/// [`Inbox::unreachable`]; the result of sending a snapshot message is
/// reported with [`Inbox::snapshot_status`], or the leader waits for it.
pub trait Transport: Send + Sync + 'static {
    /// Queues `messages` of `group`, in order per destination.
    fn send(&self, group: GroupId, messages: Vec<Message>);
    /// `id` is a peer of `group` at `addr` (a member was added, or its
    /// address is known at start). Called again when an address changes.
    fn add_peer(&self, group: GroupId, id: NodeId, addr: &str);
    /// `id` is no longer a peer of `group`.
    fn remove_peer(&self, group: GroupId, id: NodeId);
}

/// What a transport hands to a group's loop.
#[derive(Debug)]
pub(crate) enum PeerEvent {
    Message(Message),
    Unreachable(NodeId),
    SnapshotStatus(NodeId, SnapshotStatus),
    /// The host of `NodeId` went silent (see `crate::liveness`).
    HostDown(NodeId),
    /// Peer `NodeId` answered that it removed this node.
    RemovedBy(NodeId),
}

/// Where the inbox puts one group's events: its loop's queue.
pub(crate) trait PeerSink: Send + Sync {
    /// False when the queue is full or closed (the event is dropped).
    fn push(&self, event: PeerEvent) -> bool;
}

/// The host's receiving side: a transport delivers every message that
/// arrives for this host here, and reports send failures. Cheap to clone;
/// never blocks: when a group's queue is full a message is dropped, which
/// Raft tolerates (the sender retries).
#[derive(Clone, Default)]
pub struct Inbox {
    groups: Arc<RwLock<HashMap<GroupId, Arc<dyn PeerSink>>>>,
    /// Where pings of [`HOST_GROUP`] go; weak, since the liveness table
    /// holds this inbox.
    liveness: Arc<OnceLock<Weak<Liveness>>>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let groups: Vec<GroupId> = self.groups.read().keys().copied().collect();
        f.debug_struct("Inbox").field("groups", &groups).finish()
    }
}

impl Inbox {
    /// Delivers a message that arrived for `group`. Returns false when the
    /// group is not running here or its queue is full (the message is
    /// dropped): a transport may count those.
    pub fn deliver(&self, group: GroupId, message: Message) -> bool {
        // Any message proves its sender's host alive, not only a ping: a
        // host busy with thousands of groups may send its pings late, or
        // have them dropped from a full queue, and must not be reported
        // down (waking every group) while its messages arrive.
        let liveness = self.liveness.get().and_then(Weak::upgrade);
        if let Some(l) = &liveness {
            l.heard(message.from);
        }
        if group == HOST_GROUP {
            return liveness.is_some();
        }
        self.push(group, PeerEvent::Message(message))
    }

    /// Reports that messages of `group` to `to` could not be sent, so the
    /// leader probes that follower again instead of streaming to it.
    pub fn unreachable(&self, group: GroupId, to: NodeId) {
        self.push(group, PeerEvent::Unreachable(to));
    }

    /// Reports how sending a snapshot message of `group` to `to` ended.
    pub fn snapshot_status(&self, group: GroupId, to: NodeId, status: SnapshotStatus) {
        self.push(group, PeerEvent::SnapshotStatus(to, status));
    }

    /// Reports that peer `by` refused this node as removed (a transport
    /// saw `410 Gone`): every group that has `by` as a member stops as
    /// removed, as if it had applied its own removal, since the leader
    /// stops sending to a member once it applies the member's removal and
    /// the commit may never reach it. Node ids are never reused, so the
    /// answer is final.
    pub fn removed_by(&self, by: NodeId) {
        self.broadcast(|| PeerEvent::RemovedBy(by));
    }

    /// True if `group` runs on this host (and for [`HOST_GROUP`] once the
    /// host runs any group).
    pub fn has_group(&self, group: GroupId) -> bool {
        if group == HOST_GROUP {
            return self.liveness.get().is_some();
        }
        self.groups.read().contains_key(&group)
    }

    fn push(&self, group: GroupId, event: PeerEvent) -> bool {
        let sink = self.groups.read().get(&group).cloned();
        sink.is_some_and(|s| s.push(event))
    }

    /// Gives every group an event (dropped where a queue is full).
    pub(crate) fn broadcast(&self, event: impl Fn() -> PeerEvent) {
        let sinks: Vec<Arc<dyn PeerSink>> = self.groups.read().values().cloned().collect();
        for sink in sinks {
            sink.push(event());
        }
    }

    pub(crate) fn set_liveness(&self, liveness: &Arc<Liveness>) {
        let _ = self.liveness.set(Arc::downgrade(liveness));
    }

    pub(crate) fn register(&self, group: GroupId, sink: Arc<dyn PeerSink>) {
        self.groups.write().insert(group, sink);
    }

    pub(crate) fn unregister(&self, group: GroupId) {
        self.groups.write().remove(&group);
    }
}
