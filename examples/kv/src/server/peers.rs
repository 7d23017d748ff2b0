//! The hyper transport behind raft-host's `Transport` trait, and
//! raft-host's inbox behind the transport's `RaftInbox`.

use std::sync::Arc;

use raft_core::{Message, NodeId, SnapshotStatus};
use raft_host::{GroupId, Inbox};

use crate::transport::{RaftInbox, Transport};
use raft_transport::PeerUrl;

/// raftkv runs one group.
pub(super) const GROUP: GroupId = GroupId(1);

/// The peer transport as raft-host sees it.
#[derive(Debug)]
pub(super) struct PeerTransport(pub(super) Arc<Transport>);

impl raft_host::Transport for PeerTransport {
    fn send(&self, _group: GroupId, messages: Vec<Message>) {
        self.0.send(messages);
    }

    fn add_peer(&self, _group: GroupId, id: NodeId, addr: &str) {
        match PeerUrl::parse(addr) {
            Ok(url) => self.0.add_peer(id, url),
            Err(e) => tracing::warn!(peer = id.get(), error = %e, "unusable peer URL"),
        }
    }

    fn remove_peer(&self, _group: GroupId, id: NodeId) {
        self.0.remove_peer(id);
    }
}

/// Where the transport hands what arrives: the host's inbox.
#[derive(Debug, Clone)]
pub(super) struct HostInbox(pub(super) Inbox);

impl RaftInbox for HostInbox {
    fn deliver(&self, message: Message) {
        self.0.deliver(GROUP, message);
    }

    fn unreachable(&self, to: NodeId) {
        self.0.unreachable(GROUP, to);
    }

    fn snapshot_status(&self, to: NodeId, status: SnapshotStatus) {
        self.0.snapshot_status(GROUP, to, status);
    }
}
