//! The errors of each `RawNode` operation.

use crate::config::ConfigError;
use crate::storage::StorageError;
use crate::types::{Index, NodeId};

/// Why `RawNode::new` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NewError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// Storage could not be read.
    #[error("cannot read storage: {0}")]
    Storage(#[from] StorageError),
    /// The persisted commit index lies beyond the persisted log: the storage
    /// lost entries it had acknowledged.
    #[error("persisted commit index {commit} is beyond the last log index {last}")]
    CommitBeyondLog {
        /// The persisted commit index.
        commit: Index,
        /// The last index in storage.
        last: Index,
    },
    /// `Config::applied` is beyond the persisted commit index.
    #[error("configured applied index {applied} is beyond the commit index {commit}")]
    AppliedBeyondCommit {
        /// `Config::applied`.
        applied: Index,
        /// The persisted commit index.
        commit: Index,
    },
}

/// Why a proposal was not accepted. The proposal had no effect; the caller
/// may retry (usually after a leader is known).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProposeError {
    /// No leader is known to forward to (an election is running).
    #[error("no leader is known")]
    NoLeader,
    /// This node is a follower and `Config::disable_proposal_forwarding` is set.
    #[error("not the leader (leader is {leader}) and proposal forwarding is disabled")]
    ForwardingDisabled {
        /// The current leader.
        leader: NodeId,
    },
    /// The leader is handing leadership to another node.
    #[error("leadership transfer to {target} in progress")]
    TransferInProgress {
        /// The node taking over.
        target: NodeId,
    },
    /// The leader's uncommitted tail is at `Config::max_uncommitted_entries_size`.
    #[error("uncommitted log tail ({uncommitted} bytes) would exceed the limit ({limit} bytes)")]
    UncommittedSizeExceeded {
        /// Payload bytes not yet committed.
        uncommitted: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A membership change is proposed and not yet applied; only one may
    /// be pending at a time (thesis §4.1). Retry once it is applied.
    #[error("conf change at index {pending} is not applied yet (applied: {applied})")]
    ConfChangePending {
        /// The index of the pending change.
        pending: Index,
        /// The leader's applied index.
        applied: Index,
    },
    /// The membership change is not valid from the current configuration.
    #[error("invalid conf change: {0}")]
    InvalidConfChange(#[from] crate::confchange::ConfChangeError),
    /// This leader was removed from the cluster.
    #[error("this node is no longer a member of the cluster")]
    NotAMember,
    /// Storage failed while appending.
    #[error("storage failure: {0}")]
    Storage(#[from] StorageError),
}

/// Why `RawNode::step` refused a message. Messages that are merely stale
/// (an old term, a duplicate) are not errors: they are ignored and logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// The message is addressed to another node.
    #[error("message for node {to} delivered to node {me}")]
    WrongRecipient {
        /// The addressee.
        to: NodeId,
        /// This node.
        me: NodeId,
    },
    /// A message that only members send came from a node outside the
    /// configuration.
    #[error("{kind} from node {from}, which is not a member")]
    UnknownPeer {
        /// The sender.
        from: NodeId,
        /// The message kind.
        kind: &'static str,
    },
    /// A forwarded proposal was refused.
    #[error("forwarded proposal dropped: {0}")]
    ProposalDropped(#[source] ProposeError),
    /// Storage failed while handling the message.
    #[error("storage failure: {0}")]
    Storage(#[from] StorageError),
}

impl From<ProposeError> for StepError {
    fn from(e: ProposeError) -> StepError {
        match e {
            ProposeError::Storage(s) => StepError::Storage(s),
            other => StepError::ProposalDropped(other),
        }
    }
}

/// Why `RawNode::campaign` did not start an election.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CampaignError {
    /// Only voters campaign; this node is a learner or not a member.
    #[error("only voters can campaign")]
    NotVoter,
    /// Already the leader.
    #[error("already the leader")]
    AlreadyLeader,
    /// Storage failed.
    #[error("storage failure: {0}")]
    Storage(#[from] StorageError),
}

/// Why `RawNode::read_index` could not start a read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadIndexError {
    /// No leader is known to ask.
    #[error("no leader is known")]
    NoLeader,
    /// Storage failed.
    #[error("storage failure: {0}")]
    Storage(#[from] StorageError),
}

/// Why `RawNode::transfer_leader` did not start a transfer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// No leader is known to ask.
    #[error("no leader is known")]
    NoLeader,
    /// The target cannot lead: it is a learner or not a member.
    #[error("node {target} is not a voter and cannot become leader")]
    NotVoter {
        /// The requested target.
        target: NodeId,
    },
    /// Storage failed.
    #[error("storage failure: {0}")]
    Storage(#[from] StorageError),
}

/// Why `RawNode::tick` failed (only a storage failure while campaigning).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TickError {
    /// Storage failed.
    #[error("storage failure: {0}")]
    Storage(#[from] StorageError),
}

/// Why `RawNode::ready` could not build a `Ready`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadyError {
    /// Storage failed while reading entries to send or apply.
    #[error("storage failure: {0}")]
    Storage(#[from] StorageError),
}
