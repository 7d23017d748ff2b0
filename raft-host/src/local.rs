//! An in-process network of hosts, for tests and simulations: messages
//! move between the hosts' inboxes directly, and links can be cut.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use raft_core::{Message, MessageBody, NodeId, SnapshotStatus};

use crate::transport::{Inbox, Transport};
use raft_core::GroupId;

/// Hosts in one process that reach each other through their inboxes.
///
/// Each host gets its [`LocalTransport`] from [`LocalNetwork::join`].
/// Delivery is immediate and in order per pair; a message over a cut link,
/// or to a host that left, is dropped and reported unreachable (a
/// snapshot message as failed), as a real transport would.
#[derive(Clone, Debug, Default)]
pub struct LocalNetwork {
    state: Arc<Mutex<NetState>>,
}

#[derive(Debug, Default)]
struct NetState {
    inboxes: HashMap<NodeId, Inbox>,
    /// Directed links that drop everything: (from, to).
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Addresses each node's groups were told, by (node, group).
    peers: BTreeMap<(NodeId, GroupId), BTreeMap<NodeId, String>>,
}

impl LocalNetwork {
    /// An empty network.
    pub fn new() -> LocalNetwork {
        LocalNetwork::default()
    }

    /// Attaches host `id`, which receives on `inbox`, and returns its
    /// transport. A host that joins again under the same id (a restart)
    /// replaces the old one.
    pub fn join(&self, id: NodeId, inbox: Inbox) -> Arc<LocalTransport> {
        self.state.lock().inboxes.insert(id, inbox);
        Arc::new(LocalTransport {
            id,
            net: self.clone(),
        })
    }

    /// Detaches host `id` (it stopped, or crashed): messages to it are
    /// dropped until it joins again.
    pub fn leave(&self, id: NodeId) {
        self.state.lock().inboxes.remove(&id);
    }

    /// Cuts every link to and from `id`.
    pub fn isolate(&self, id: NodeId) {
        let mut st = self.state.lock();
        let others: Vec<NodeId> = st.inboxes.keys().copied().filter(|o| *o != id).collect();
        for other in others {
            st.cut.insert((id, other));
            st.cut.insert((other, id));
        }
    }

    /// Cuts the link from `from` to `to` (one direction).
    pub fn cut(&self, from: NodeId, to: NodeId) {
        self.state.lock().cut.insert((from, to));
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.state.lock().cut.clear();
    }

    /// The peer addresses node `id`'s member of `group` was given.
    pub fn peers_of(&self, id: NodeId, group: GroupId) -> BTreeMap<NodeId, String> {
        let st = self.state.lock();
        st.peers.get(&(id, group)).cloned().unwrap_or_default()
    }

    /// The inbox of `to` if `from` can reach it.
    fn route(&self, from: NodeId, to: NodeId) -> Option<Inbox> {
        let st = self.state.lock();
        if st.cut.contains(&(from, to)) {
            return None;
        }
        st.inboxes.get(&to).cloned()
    }

    fn inbox(&self, id: NodeId) -> Option<Inbox> {
        self.state.lock().inboxes.get(&id).cloned()
    }
}

/// One host's side of a [`LocalNetwork`].
#[derive(Debug)]
pub struct LocalTransport {
    id: NodeId,
    net: LocalNetwork,
}

impl Transport for LocalTransport {
    fn send(&self, group: GroupId, messages: Vec<Message>) {
        let own = self.net.inbox(self.id);
        for m in messages {
            let to = m.to;
            let is_snapshot = matches!(m.body, MessageBody::Snapshot(_));
            let delivered = self
                .net
                .route(self.id, to)
                .is_some_and(|inbox| inbox.deliver(group, m));
            let Some(own) = &own else { continue };
            if !delivered {
                own.unreachable(group, to);
            }
            if is_snapshot {
                let status = if delivered {
                    SnapshotStatus::Finished
                } else {
                    SnapshotStatus::Failed
                };
                own.snapshot_status(group, to, status);
            }
        }
    }

    fn add_peer(&self, group: GroupId, id: NodeId, addr: &str) {
        let mut st = self.net.state.lock();
        let peers = st.peers.entry((self.id, group)).or_default();
        peers.insert(id, addr.to_string());
    }

    fn remove_peer(&self, group: GroupId, id: NodeId) {
        let mut st = self.net.state.lock();
        if let Some(peers) = st.peers.get_mut(&(self.id, group)) {
            peers.remove(&id);
        }
    }
}
