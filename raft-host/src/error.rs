//! One error enum per operation of a [`GroupHandle`](crate::GroupHandle)
//! and of the [`Host`](crate::Host).

use raft_core::{Index, NodeId};

use raft_core::GroupId;
use raft_io::is_disk_full;

use crate::members::HeaderError;

/// Why a proposal did not produce an output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProposeError {
    /// Only the leader accepts proposals; this node knows who leads, or
    /// an election is running (`None`). Nothing was proposed: send it to
    /// the leader, or retry.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// raft-core refused the proposal (a leadership transfer, a full
    /// uncommitted tail, ...). Nothing was proposed.
    #[error("proposal dropped: {0}")]
    Dropped(#[source] raft_core::ProposeError),
    /// The entry was appended, but a new leader replaced it at `index`
    /// before it committed (paper §5.3): it will never be applied. Safe to
    /// retry.
    #[error("the proposal at index {index} was replaced by a new leader's entry")]
    Superseded {
        /// Where it had been appended.
        index: Index,
    },
    /// A snapshot from the leader replaced this member's log past the
    /// entry before it was applied here: it may or may not have been
    /// committed.
    #[error("a snapshot replaced the log past index {index}; the outcome is unknown")]
    OutcomeUnknown {
        /// Where it had been appended.
        index: Index,
    },
    /// An empty command: empty entries are the leader's no-ops (paper
    /// §8), never handed to the state machine. Nothing was proposed.
    #[error("a command must not be empty")]
    EmptyCommand,
    /// The group's request queue is full. Nothing was proposed.
    #[error("the group is overloaded; retry")]
    Overloaded,
    /// No answer within the request timeout: the command may or may not
    /// be applied later.
    #[error("timed out; the outcome is unknown")]
    Timeout,
    /// The group stopped while the proposal was pending: the outcome is
    /// unknown.
    #[error("the group stopped before the proposal finished; the outcome is unknown")]
    Interrupted,
    /// The group is not running (stopped, removed, or shutting down).
    /// Nothing was proposed.
    #[error("the group is not running")]
    Stopped,
}

/// Why a linearizable read was not confirmed. A read has no effect, so
/// every case may be retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No leader is known (an election is running).
    #[error("no leader is known")]
    NoLeader,
    /// raft-core refused the ReadIndex request.
    #[error("read refused: {0}")]
    Refused(String),
    /// The group's request queue is full.
    #[error("the group is overloaded; retry")]
    Overloaded,
    /// Not confirmed within the request timeout.
    #[error("timed out")]
    Timeout,
    /// The group is not running.
    #[error("the group is not running")]
    Stopped,
}

/// Why a membership change was not made (or its outcome is unknown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// Membership changes are made by the leader.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// The node already has the requested role.
    #[error("node {0} is already a {1}")]
    AlreadyMember(NodeId, &'static str),
    /// The node is not a member (or not a learner, for a promotion).
    #[error("node {0} is not a {1}")]
    NotMember(NodeId, &'static str),
    /// The id was removed before; a removed id is never reused (its old
    /// process, log and votes may still be around).
    #[error("node {0} was removed from this group, and a removed id is never reused")]
    RemovedId(NodeId),
    /// The change would leave fewer healthy voters than a quorum of the
    /// new configuration (etcd's `--strict-reconfig-check`).
    #[error(
        "refused: after the change {healthy} healthy voter(s) would remain, and a quorum of the new configuration needs {needed}"
    )]
    Unsafe {
        /// Voters that would remain and are reachable.
        healthy: usize,
        /// The quorum of the new configuration.
        needed: usize,
    },
    /// A learner is too far behind the leader to be promoted yet.
    #[error("node {id} is not caught up (matched {matched}, leader's last index {last})")]
    NotCaughtUp {
        /// The learner.
        id: NodeId,
        /// The last index it is known to hold.
        matched: Index,
        /// The leader's last index.
        last: Index,
    },
    /// The change was appended, but a new leader replaced it before it
    /// committed: it will never be applied. Safe to retry.
    #[error("the change was replaced by a new leader's entry; retry")]
    Superseded,
    /// A snapshot replaced this member's log past the change before it was
    /// applied here: it may or may not have been made.
    #[error("a snapshot replaced the log past the change; the outcome is unknown")]
    OutcomeUnknown,
    /// Another membership change is not applied yet (thesis §4.1: one at
    /// a time). Retry once it is.
    #[error("another membership change is pending; retry")]
    Pending,
    /// raft-core refused the change, at proposal or when applying it.
    #[error("membership change refused: {0}")]
    Refused(String),
    /// The group's request queue is full.
    #[error("the group is overloaded; retry")]
    Overloaded,
    /// No answer within the timeout: the change may or may not happen.
    #[error("timed out; the outcome is unknown")]
    Timeout,
    /// The group stopped while the change was pending: outcome unknown.
    #[error("the group stopped before the change finished; the outcome is unknown")]
    Interrupted,
    /// The group is not running.
    #[error("the group is not running")]
    Stopped,
}

/// Why a leadership transfer did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// Only the leader transfers leadership.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// raft-core refused (the target is not a voter, or is this node).
    #[error("transfer refused: {0}")]
    Refused(String),
    /// The transfer ended without the target leading (thesis §3.10: it is
    /// aborted after an election timeout). `leader` is who leads now.
    #[error("the transfer did not complete (leader now: {leader:?})")]
    Failed {
        /// The leader afterwards, if known.
        leader: Option<NodeId>,
    },
    /// The group's request queue is full.
    #[error("the group is overloaded; retry")]
    Overloaded,
    /// No answer within the timeout.
    #[error("timed out")]
    Timeout,
    /// The group is not running.
    #[error("the group is not running")]
    Stopped,
}

/// Why [`GroupHandle::forget_leader`](crate::GroupHandle::forget_leader)
/// did nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForgetLeaderError {
    /// raft-core refused: this member is not a follower, or reads are
    /// lease-based (whose safety rests on followers keeping their leader).
    #[error("not forgotten: {0}")]
    Refused(#[source] raft_core::ForgetLeaderError),
    /// The group's request queue is full.
    #[error("the group is overloaded; retry")]
    Overloaded,
    /// No answer within the timeout.
    #[error("timed out")]
    Timeout,
    /// The group is not running.
    #[error("the group is not running")]
    Stopped,
}

/// Why [`GroupHandle::request_snapshot`](crate::GroupHandle::request_snapshot)
/// requested nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestSnapshotError {
    /// raft-core refused: not a follower, no leader known, a request
    /// already outstanding, or a log not yet of the current term (retry).
    #[error("no snapshot requested: {0}")]
    Refused(#[source] raft_core::RequestSnapshotError),
    /// The group's request queue is full.
    #[error("the group is overloaded; retry")]
    Overloaded,
    /// No answer within the timeout.
    #[error("timed out")]
    Timeout,
    /// The group is not running.
    #[error("the group is not running")]
    Stopped,
}

/// Why a group could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A group with this id already runs on the host.
    #[error("group {0} is already running on this host")]
    AlreadyRunning(GroupId),
    /// Group 0 carries messages between hosts and is never a Raft group
    /// ([`HOST_GROUP`](crate::HOST_GROUP)).
    #[error("group {0} is reserved for messages between hosts; give the group another id")]
    ReservedGroup(GroupId),
    /// The founding members do not found a cluster.
    #[error("cannot found group: {0}")]
    Founding(#[from] raft_core::BootstrapError),
    /// Writing the founding log failed.
    #[error("cannot write the founding log: {0}")]
    Bootstrap(#[source] raft_storage::PersistError),
    /// The newest snapshot could not be opened.
    #[error("cannot open the snapshot: {0}")]
    OpenSnapshot(#[from] raft_storage::LoadError),
    /// The snapshot's host header does not decode.
    #[error("cannot read the snapshot: {0}")]
    Header(#[from] HeaderError),
    /// The state machine refused the snapshot's data.
    #[error("the state machine cannot restore the snapshot: {0}")]
    Restore(#[source] std::io::Error),
    /// raft-core refused the recovered state.
    #[error("cannot start raft: {0}")]
    Raft(#[from] raft_core::NewError),
    /// A thread could not be spawned.
    #[error("cannot spawn the group's threads: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Why a group's loop stopped on its own: a failure it cannot continue
/// after (storage, mostly; after a failed fsync the storage is poisoned
/// until reopened, so a restart recovers from the WAL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("group {group} stopped: {what}: {reason}")]
pub struct FatalError {
    /// The group.
    pub group: GroupId,
    /// What the loop was doing.
    pub what: &'static str,
    /// The error, as text (the source is logged where it happened).
    pub reason: String,
    /// The error came from a full disk or quota (`ENOSPC`, `EDQUOT`):
    /// freeing space and restarting recovers.
    pub disk_full: bool,
}

impl FatalError {
    pub(crate) fn new(
        group: GroupId,
        what: &'static str,
        e: &(dyn std::error::Error + 'static),
    ) -> FatalError {
        FatalError {
            group,
            what,
            reason: e.to_string(),
            disk_full: is_disk_full(e),
        }
    }
}
