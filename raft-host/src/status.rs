//! What a group reports about itself.

use std::collections::{BTreeMap, BTreeSet};

use raft_core::{Index, LogId, NodeId, RoleKind, Term};

/// A group member's view of the group, updated after every Ready
/// ([`GroupHandle::status`](crate::GroupHandle::status),
/// [`GroupHandle::wait_for`](crate::GroupHandle::wait_for)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupStatus {
    /// This member.
    pub id: NodeId,
    /// The current term.
    pub term: Term,
    /// The leader this member knows of.
    pub leader: Option<NodeId>,
    /// This member's role.
    pub role: RoleKind,
    /// The commit index.
    pub commit: Index,
    /// The applied index. Invariant: `applied <= commit`.
    pub applied: Index,
    /// Voters, as of the applied index.
    pub voters: BTreeSet<NodeId>,
    /// Learners, as of the applied index.
    pub learners: BTreeSet<NodeId>,
    /// Learners to be promoted once caught up.
    pub promoting: BTreeSet<NodeId>,
    /// Peer addresses of the members.
    pub addrs: BTreeMap<NodeId, String>,
    /// Ids removed from the group (never members again).
    pub removed: BTreeSet<NodeId>,
    /// On the leader, its view of every other member; empty elsewhere.
    pub followers: BTreeMap<NodeId, FollowerStatus>,
    /// The newest snapshot this member has.
    pub snapshot: LogId,
    /// Whether the loop still runs.
    pub running: bool,
    /// The group is quiesced on this member
    /// ([`GroupOptions::quiesce_after_ticks`](crate::GroupOptions)).
    pub quiesced: bool,
}

impl GroupStatus {
    pub(crate) fn new(id: NodeId) -> GroupStatus {
        GroupStatus {
            id,
            term: Term::ZERO,
            leader: None,
            role: RoleKind::Follower,
            commit: Index::ZERO,
            applied: Index::ZERO,
            voters: BTreeSet::new(),
            learners: BTreeSet::new(),
            promoting: BTreeSet::new(),
            addrs: BTreeMap::new(),
            removed: BTreeSet::new(),
            followers: BTreeMap::new(),
            snapshot: LogId::default(),
            running: true,
            quiesced: false,
        }
    }

    /// True if this member leads.
    pub fn is_leader(&self) -> bool {
        self.role == RoleKind::Leader
    }
}

/// The leader's view of one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FollowerStatus {
    /// The last index known to match the leader's log.
    pub matched: Index,
    /// Heard from within the last election timeout (CheckQuorum's
    /// activity, thesis §6.2): what the strict reconfiguration check
    /// counts as healthy.
    pub active: bool,
    /// A learner.
    pub learner: bool,
}
