//! What reaches a group's loop: peer events from the transport, and
//! requests from its handles.

use bytes::Bytes;
use raft_core::{Index, NodeId};

use crate::error::{
    ForgetLeaderError, MembershipError, ProposeError, ReadError, RequestSnapshotError,
    TransferError,
};
use crate::reply::Reply;
use crate::state_machine::StateMachine;
use crate::transport::PeerEvent;

/// A membership change, as asked of
/// [`GroupHandle::change_membership`](crate::GroupHandle::change_membership).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MembershipChange {
    /// Adds a learner: it receives the log but does not vote.
    AddLearner {
        /// The new member.
        id: NodeId,
        /// Where its peers reach it.
        addr: String,
    },
    /// Adds a voter the safe way: as a learner first, promoted by the
    /// leader once its log is within `promote_lag_entries` of the
    /// leader's (so a new, empty member never counts toward a quorum it
    /// cannot help). Answered once promoted.
    AddVoter {
        /// The new member.
        id: NodeId,
        /// Where its peers reach it.
        addr: String,
    },
    /// As [`MembershipChange::AddVoter`], but answered as soon as the
    /// learner is added: the leader promotes it later, once it caught up
    /// (for a member that is started after it is added, as etcd's and
    /// raftexample's `member add` expect).
    AddLearnerToPromote {
        /// The new member.
        id: NodeId,
        /// Where its peers reach it.
        addr: String,
    },
    /// Promotes a caught-up learner to voter.
    Promote {
        /// The learner.
        id: NodeId,
    },
    /// Removes a member (voter or learner). A removed id is never reused.
    Remove {
        /// The member.
        id: NodeId,
    },
}

/// One event for the loop.
pub(crate) enum Event<S: StateMachine> {
    Peer(PeerEvent),
    Propose {
        data: Bytes,
        reply: Reply<Result<S::Output, ProposeError>>,
    },
    Read {
        reply: Reply<Result<(), ReadError>>,
    },
    Membership {
        change: MembershipChange,
        reply: Reply<Result<(), MembershipError>>,
    },
    Transfer {
        to: NodeId,
        reply: Reply<Result<(), TransferError>>,
    },
    ForgetLeader {
        reply: Reply<Result<(), ForgetLeaderError>>,
    },
    RequestSnapshot {
        reply: Reply<Result<Index, RequestSnapshotError>>,
    },
    Shutdown,
}

impl<S: StateMachine> Event<S> {
    /// Answers a request the loop never saw: nothing happened.
    pub(crate) fn refuse_stopped(self) {
        match self {
            Event::Propose { reply, .. } => reply.send(Err(ProposeError::Stopped)),
            Event::Read { reply } => reply.send(Err(ReadError::Stopped)),
            Event::Membership { reply, .. } => reply.send(Err(MembershipError::Stopped)),
            Event::Transfer { reply, .. } => reply.send(Err(TransferError::Stopped)),
            Event::ForgetLeader { reply } => reply.send(Err(ForgetLeaderError::Stopped)),
            Event::RequestSnapshot { reply } => reply.send(Err(RequestSnapshotError::Stopped)),
            Event::Peer(_) | Event::Shutdown => {}
        }
    }
}
