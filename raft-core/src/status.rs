//! A snapshot of a node's state, for monitoring and tests.

use std::collections::BTreeMap;

use crate::ready::SoftState;
use crate::tracker::ProgressState;
use crate::types::{HardState, Index, NodeId};

/// The leader's view of one member.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct ProgressStatus {
    /// Highest index known replicated there.
    pub matched: Index,
    /// Next index to send.
    pub next: Index,
    /// Probe, replicate or snapshot.
    pub state: ProgressState,
    /// Heard from within the current CheckQuorum round.
    pub recent_active: bool,
    /// A non-voting member.
    pub is_learner: bool,
    /// A witness: sent entries without payloads, never leads.
    pub is_witness: bool,
    /// Appends in flight.
    pub inflight_msgs: usize,
    /// Set while the follower waits for a snapshot the application was
    /// asked to take ([`Ready::snapshot_request`](crate::Ready)): its
    /// `min_index`.
    pub snapshot_requested: Option<Index>,
    /// Set while the follower waits for the snapshot it requested
    /// ([`RawNode::request_snapshot`](crate::RawNode::request_snapshot)):
    /// the index it must reach.
    pub follower_snapshot_request: Option<Index>,
}

/// Everything observable about a node.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Term, vote and commit index.
    pub hard_state: HardState,
    /// Leader and role.
    pub soft_state: SoftState,
    /// Highest index applied by the application.
    pub applied: Index,
    /// Last index in the log.
    pub last_index: Index,
    /// The target of a leadership transfer in progress (leader only).
    pub transferee: Option<NodeId>,
    /// The index of the snapshot this follower requested and waits for
    /// ([`RawNode::request_snapshot`](crate::RawNode::request_snapshot)).
    pub pending_snapshot_request: Option<Index>,
    /// The node is quiesced ([`RawNode::is_quiesced`](crate::RawNode::is_quiesced)).
    pub quiesced: bool,
    /// The node runs as a witness (`Config::witness`).
    pub witness: bool,
    /// Per-member progress; only on a leader.
    pub progress: Option<BTreeMap<NodeId, ProgressStatus>>,
}
