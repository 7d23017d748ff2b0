//! Domain newtypes and the plain data records of the protocol.
//!
//! Nothing here knows about elections or replication; these are the values the
//! protocol talks about and the records the application persists.

use std::collections::BTreeSet;
use std::fmt;
use std::num::NonZeroU64;

use bytes::Bytes;

/// The identity of a Raft node. Never zero: zero is the "nobody" sentinel in
/// the etcd wire format, and here "nobody" is spelled `Option<NodeId>::None`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(NonZeroU64);

impl NodeId {
    /// Returns the id for `raw`, or `None` when `raw` is zero.
    pub const fn new(raw: u64) -> Option<NodeId> {
        match NonZeroU64::new(raw) {
            Some(v) => Some(NodeId(v)),
            None => None,
        }
    }

    /// The raw, non-zero value.
    pub const fn get(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// The error of converting zero into a [`NodeId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("node id must not be zero")]
pub struct ZeroNodeId;

impl TryFrom<u64> for NodeId {
    type Error = ZeroNodeId;
    fn try_from(raw: u64) -> Result<Self, Self::Error> {
        NodeId::new(raw).ok_or(ZeroNodeId)
    }
}

/// Names one Raft group. A process may host many groups and a node may be
/// a member of several; every message between hosts is routed by
/// (group, node). The protocol itself never looks at it: a `RawNode` is
/// one group's replica, and the group id is the host's, the storage's and
/// the wire's business.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GroupId(pub u64);

impl GroupId {
    /// The raw number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "g{}", self.0)
    }
}

macro_rules! counter_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);

        impl $name {
            /// The zero value.
            pub const ZERO: $name = $name(0);

            /// The largest value, 2^63 − 1: every value fits a signed
            /// 64-bit integer (as other Raft wire formats store it), and
            /// the protocol's `+ 1` on a valid value never overflows a
            /// `u64`. `raft-proto` refuses larger values on the wire and
            /// [`Message::validate`](crate::Message::validate) refuses
            /// them in a message.
            pub const MAX: $name = $name(i64::MAX as u64);

            /// The raw value.
            pub const fn get(self) -> u64 {
                self.0
            }

            /// The next value. Callers keep values at most `MAX`, so this
            /// never overflows (values past `MAX` are refused where they
            /// enter: the wire, `Message::validate`, `RawNode::new`).
            #[must_use]
            pub const fn next(self) -> $name {
                $name(self.0 + 1)
            }

            /// The next value, or `None` past [`Self::MAX`].
            #[must_use]
            pub const fn checked_next(self) -> Option<$name> {
                if self.0 < Self::MAX.0 {
                    Some($name(self.0 + 1))
                } else {
                    None
                }
            }

            /// The previous value, saturating at zero.
            #[must_use]
            pub const fn prev(self) -> $name {
                $name(self.0.saturating_sub(1))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl From<u64> for $name {
            fn from(v: u64) -> $name {
                $name(v)
            }
        }
    };
}

counter_newtype!(
    /// A Raft term (paper §5.1). Term 0 is the term before any election.
    Term
);
counter_newtype!(
    /// A log index (paper §5.3). Index 0 is the position before the first entry.
    Index
);

impl Term {
    /// How far ahead of a node's own term a peer's message may be. A
    /// message further ahead is refused
    /// ([`StepError::TermTooFarAhead`](crate::StepError::TermTooFarAhead)):
    /// adopting it could leave the cluster too few terms to elect in (a
    /// single forged heartbeat at [`Term::MAX`] would otherwise stop every
    /// election for good). A correct node falls behind only by the
    /// elections held while it was away: with pre-vote (the default) a
    /// partitioned node does not raise its term, and 2^32 elections, one a
    /// second, take 136 years. An attacker needs 2^31 forged messages, one
    /// after another, to exhaust the terms; authenticate peers to stop it
    /// altogether.
    pub const MAX_JUMP: u64 = 1 << 32;
}

// The bound leaves every accepted term room to grow.
const _: () = assert!(Term::MAX_JUMP < Term::MAX.0);

impl std::ops::Add<u64> for Index {
    type Output = Index;
    fn add(self, rhs: u64) -> Index {
        Index(self.0 + rhs)
    }
}

impl std::ops::Sub<Index> for Index {
    type Output = u64;
    /// The distance between two indexes. Panics (debug) if `rhs > self`.
    fn sub(self, rhs: Index) -> u64 {
        debug_assert!(rhs.0 <= self.0, "index underflow: {} - {}", self.0, rhs.0);
        self.0 - rhs.0
    }
}

/// The position of an entry: its index and the term it was created in. Two
/// logs that hold an entry with the same `LogId` are identical up to it
/// (Log Matching Property, paper §5.3).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LogId {
    /// The term of the entry. Compared first, so `Ord` is the §5.4.1
    /// "more up-to-date" order.
    pub term: Term,
    /// The index of the entry.
    pub index: Index,
}

impl LogId {
    /// The position before the first entry of an empty log.
    pub const ZERO: LogId = LogId {
        term: Term(0),
        index: Index(0),
    };

    /// Builds a log id.
    pub const fn new(term: Term, index: Index) -> LogId {
        LogId { term, index }
    }

    /// True when this can be a position in a log: term 0 goes with index 0
    /// and only with it (only the position before the first entry has term
    /// 0), and neither exceeds its `MAX`.
    pub const fn is_valid(self) -> bool {
        (self.term.0 == 0) == (self.index.0 == 0)
            && self.term.0 <= Term::MAX.0
            && self.index.0 <= Index::MAX.0
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.term, self.index)
    }
}

impl fmt::Debug for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What an entry's payload means.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub enum EntryKind {
    /// Application data (or empty: a new leader's no-op entry).
    #[default]
    Normal,
    /// An encoded single-step [`ConfChange`].
    ConfChange,
    /// An encoded [`ConfChangeV2`].
    ConfChangeV2,
}

/// One log entry.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Entry {
    /// The term in which a leader created the entry.
    pub term: Term,
    /// The entry's position in the log.
    pub index: Index,
    /// How to interpret `data`.
    pub kind: EntryKind,
    /// The payload. Cloning is a reference-count increment, never a copy.
    pub data: Bytes,
}

impl Entry {
    /// A normal entry.
    pub fn new(term: Term, index: Index, data: Bytes) -> Entry {
        Entry {
            term,
            index,
            kind: EntryKind::Normal,
            data,
        }
    }

    /// The entry's position.
    pub fn log_id(&self) -> LogId {
        LogId::new(self.term, self.index)
    }

    /// The size that counts against byte limits (`max_size_per_msg`,
    /// `max_inflight_bytes`, `max_committed_size_per_ready`): the payload
    /// length plus a fixed overhead for the header, as etcd counts.
    pub fn size_bytes(&self) -> u64 {
        self.data.len() as u64 + ENTRY_OVERHEAD_BYTES
    }

    /// The payload bytes alone, what `max_uncommitted_entries_size` limits.
    pub fn payload_bytes(&self) -> u64 {
        self.data.len() as u64
    }
}

/// The fixed per-entry overhead counted by [`Entry::size_bytes`]: term, index
/// and kind as they roughly cost on the wire.
pub const ENTRY_OVERHEAD_BYTES: u64 = 16;

/// The state a node must persist before it answers any message (paper
/// Figure 2, "Persistent state on all servers").
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// Who this node voted for in `term`, if anyone.
    pub vote: Option<NodeId>,
    /// The highest index known to be committed. Persisted so a restart does
    /// not need a leader to re-learn it; never decreases.
    pub commit: Index,
}

impl HardState {
    /// True when this is the state of a node that never did anything.
    pub fn is_empty(&self) -> bool {
        *self == HardState::default()
    }
}

/// Cluster membership: who votes and who only learns (thesis §4).
///
/// During a joint configuration (thesis §4.3) both `voters` (incoming) and
/// `voters_outgoing` are non-empty and decisions need a majority of each.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ConfState {
    /// The voters of the incoming (or only) configuration.
    pub voters: BTreeSet<NodeId>,
    /// Non-voting members that receive the log.
    pub learners: BTreeSet<NodeId>,
    /// The voters of the outgoing configuration; empty unless joint.
    pub voters_outgoing: BTreeSet<NodeId>,
    /// Voters of the outgoing configuration that become learners when the
    /// joint configuration is left.
    pub learners_next: BTreeSet<NodeId>,
    /// Whether the leader leaves the joint configuration on its own once the
    /// entering change is applied.
    pub auto_leave: bool,
    /// The voters (of either half) that are witnesses: they vote and keep
    /// the log's metadata (index, term, conf changes) but no entry
    /// payloads and no state machine, and never lead. Invariant: a subset
    /// of `voters ∪ voters_outgoing`.
    pub witnesses: BTreeSet<NodeId>,
}

impl ConfState {
    /// A configuration made only of the given voters.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> ConfState {
        ConfState {
            voters: voters.into_iter().collect(),
            ..ConfState::default()
        }
    }

    /// True when `id` is a voter or learner of either half.
    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
            || self.learners.contains(&id)
            || self.voters_outgoing.contains(&id)
            || self.learners_next.contains(&id)
    }

    /// True when `id` is a voter (of either half) that is a witness.
    pub fn is_witness(&self, id: NodeId) -> bool {
        self.witnesses.contains(&id)
    }

    /// True when this describes a joint configuration.
    pub fn is_joint(&self) -> bool {
        !self.voters_outgoing.is_empty()
    }

    /// True when nobody is a member: a node that has not joined any
    /// cluster yet (it learns the configuration from the log or a
    /// snapshot).
    pub fn is_empty(&self) -> bool {
        self.voters.is_empty()
            && self.learners.is_empty()
            && self.voters_outgoing.is_empty()
            && self.learners_next.is_empty()
    }

    /// Checks the invariants of a (joint) configuration (thesis §4.3, as
    /// etcd checks them): no node is both a voter of either half and a
    /// learner, `learners_next` holds only outgoing voters, and
    /// `auto_leave` is set only on a joint configuration.
    ///
    /// # Errors
    /// The first [`InvalidConfState`] found.
    pub fn validate(&self) -> Result<(), InvalidConfState> {
        if let Some(&node) = self
            .learners
            .iter()
            .find(|id| self.voters.contains(id) || self.voters_outgoing.contains(id))
        {
            return Err(InvalidConfState::VoterAndLearner { node });
        }
        if let Some(&node) = self
            .learners_next
            .iter()
            .find(|id| !self.voters_outgoing.contains(id))
        {
            return Err(InvalidConfState::LearnerNextNotOutgoingVoter { node });
        }
        // Leaving the joint state would make it both (etcd-raft keeps
        // learners_next disjoint from the incoming voters the same way).
        if let Some(&node) = self
            .learners_next
            .iter()
            .find(|id| self.voters.contains(id))
        {
            return Err(InvalidConfState::LearnerNextIsIncomingVoter { node });
        }
        if self.auto_leave && !self.is_joint() {
            return Err(InvalidConfState::AutoLeaveWithoutJoint);
        }
        if let Some(&node) = self
            .witnesses
            .iter()
            .find(|id| !self.voters.contains(id) && !self.voters_outgoing.contains(id))
        {
            return Err(InvalidConfState::WitnessNotVoter { node });
        }
        Ok(())
    }
}

/// Why a [`ConfState`] is not a configuration (see [`ConfState::validate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidConfState {
    /// A node is both a voter (of either half) and a learner.
    #[error("node {node} is both a voter and a learner")]
    VoterAndLearner {
        /// The node.
        node: NodeId,
    },
    /// A node in `learners_next` is not an outgoing voter.
    #[error("node {node} is in learners_next but is not an outgoing voter")]
    LearnerNextNotOutgoingVoter {
        /// The node.
        node: NodeId,
    },
    /// A node in `learners_next` is also a voter of the incoming half: it
    /// would be both once the joint configuration is left.
    #[error("node {node} is in learners_next but is an incoming voter")]
    LearnerNextIsIncomingVoter {
        /// The node.
        node: NodeId,
    },
    /// `auto_leave` is set on a configuration that is not joint.
    #[error("auto_leave is set but the configuration is not joint")]
    AutoLeaveWithoutJoint,
    /// A witness is not a voter of either half (a learner or no member).
    #[error("node {node} is a witness but not a voter")]
    WitnessNotVoter {
        /// The node.
        node: NodeId,
    },
}

/// What a snapshot covers: everything up to and including `index`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SnapshotMetadata {
    /// The last index the snapshot contains.
    pub index: Index,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The membership as of `index`.
    pub conf_state: ConfState,
}

impl SnapshotMetadata {
    /// The position of the last entry the snapshot covers.
    pub fn log_id(&self) -> LogId {
        LogId::new(self.term, self.index)
    }
}

/// A state-machine snapshot: metadata plus the application's opaque bytes.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Snapshot {
    /// What the snapshot covers.
    pub metadata: SnapshotMetadata,
    /// The serialized state machine.
    pub data: Bytes,
}

impl Snapshot {
    /// True for the "no snapshot" value (index 0).
    pub fn is_empty(&self) -> bool {
        self.metadata.index == Index::ZERO
    }
}

/// The kind of a single membership change.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ConfChangeKind {
    /// Add a voter, or promote a learner to voter.
    AddNode,
    /// Remove a voter or learner.
    RemoveNode,
    /// Add a learner, or demote a voter to learner.
    AddLearnerNode,
    /// Add a witness: a voter that keeps only the log's metadata and never
    /// leads. A member's kind (full voter or learner, or witness) is fixed
    /// while it is a member: a witness can only be removed, and a full
    /// member cannot become a witness.
    AddWitness,
}

/// A single-step membership change (thesis §4.1), carried in an
/// [`EntryKind::ConfChange`] entry.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConfChange {
    /// What to do.
    pub kind: ConfChangeKind,
    /// To whom.
    pub node_id: NodeId,
    /// Opaque application data (raftexample puts the peer URL here).
    pub context: Bytes,
}

/// One change inside a [`ConfChangeV2`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct ConfChangeSingle {
    /// What to do.
    pub kind: ConfChangeKind,
    /// To whom.
    pub node_id: NodeId,
}

/// How a [`ConfChangeV2`] moves through joint consensus.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub enum ConfChangeTransition {
    /// Single-step if the change allows it, otherwise joint with auto-leave.
    #[default]
    Auto,
    /// Always joint; the leader leaves the joint state on its own.
    JointImplicit,
    /// Always joint; the application proposes an empty V2 change to leave.
    JointExplicit,
}

/// A membership change of several nodes at once (thesis §4.3), carried in an
/// [`EntryKind::ConfChangeV2`] entry. An empty `changes` leaves a joint state.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ConfChangeV2 {
    /// How to transition.
    pub transition: ConfChangeTransition,
    /// The changes, applied in order.
    pub changes: Vec<ConfChangeSingle>,
    /// Opaque application data.
    pub context: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_learner_next_that_is_also_an_incoming_voter_is_refused() {
        // Found by step_arbitrary: leaving this joint state made n1 both a
        // voter and a learner, which broke confchange's invariants.
        let n1 = NodeId::new(1).expect("non-zero");
        let cs = ConfState {
            voters: [n1].into(),
            voters_outgoing: [n1].into(),
            learners_next: [n1].into(),
            auto_leave: true,
            ..ConfState::default()
        };
        assert_eq!(
            cs.validate(),
            Err(InvalidConfState::LearnerNextIsIncomingVoter { node: n1 })
        );
    }
}
