//! What a node is, and the state that exists only in that role.

use std::collections::BTreeMap;

use super::read::ReadQueue;
use crate::ready::SnapshotRequest;
use crate::tracker::ProgressMap;
use crate::types::{Index, NodeId};

/// Votes received in an election: `true` granted, `false` rejected.
pub(crate) type Votes = BTreeMap<NodeId, bool>;

/// The role of a node, with the state only that role has: only a leader
/// tracks follower progress, only (pre-)candidates count votes.
#[derive(Debug)]
pub(crate) enum Role {
    /// Follows `leader`, if one is known.
    Follower {
        /// The leader of the current term, once heard from.
        leader: Option<NodeId>,
    },
    /// Asking whether an election could be won, without bumping the term.
    PreCandidate(Votes),
    /// Running an election in the current term.
    Candidate(Votes),
    /// Leading the current term.
    Leader(Box<LeaderState>),
}

/// State only a leader has.
#[derive(Debug)]
pub(crate) struct LeaderState {
    /// Every member's progress, including the leader's own.
    pub(super) progress: ProgressMap,
    /// Payload bytes appended in this term and not yet committed.
    pub(super) uncommitted_size: u64,
    /// Appends or commit updates wait to be broadcast (batched until the
    /// next `Ready`).
    pub(super) broadcast_pending: bool,
    /// Index of the latest conf change in the log when this leader took over
    /// or proposed one; no other may be proposed until it is applied.
    pub(super) pending_conf_index: Index,
    /// Reads waiting for leadership to be confirmed.
    pub(super) reads: ReadQueue,
    /// The node leadership is being handed to; proposals are refused
    /// meanwhile.
    pub(super) transferee: Option<NodeId>,
    /// This leader was removed or demoted and is handing leadership over.
    pub(super) stepping_down: bool,
    /// A snapshot request waiting to be handed out in the next `Ready`
    /// (each follower's outstanding request is in its progress).
    pub(super) snapshot_request: Option<SnapshotRequest>,
    /// Ticks in a row the group was idle (`quiesce.rs`).
    pub(super) quiet_ticks: u32,
    /// The node's tick when it became leader (`witness.rs`).
    pub(super) term_start_tick: u64,
}

/// The role without its state.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[non_exhaustive]
pub enum RoleKind {
    /// Follows a leader (or waits for one).
    Follower,
    /// Running a pre-vote round.
    PreCandidate,
    /// Running an election.
    Candidate,
    /// Leads the cluster.
    Leader,
}

impl Role {
    pub(crate) fn kind(&self) -> RoleKind {
        match self {
            Role::Follower { .. } => RoleKind::Follower,
            Role::PreCandidate(_) => RoleKind::PreCandidate,
            Role::Candidate(_) => RoleKind::Candidate,
            Role::Leader(_) => RoleKind::Leader,
        }
    }

    /// The leader's state, if this role leads (read only: handlers that
    /// change it run on a `Leader`, see `Raft::lead`).
    pub(crate) fn leader_state(&self) -> Option<&LeaderState> {
        match self {
            Role::Leader(l) => Some(l),
            _ => None,
        }
    }
}

/// The role in lower case: `follower`, `pre-candidate`, `candidate`,
/// `leader`.
impl std::fmt::Display for RoleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RoleKind::Follower => "follower",
            RoleKind::PreCandidate => "pre-candidate",
            RoleKind::Candidate => "candidate",
            RoleKind::Leader => "leader",
        })
    }
}
