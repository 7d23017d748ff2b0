//! The errors of each `RawNode` operation.

use crate::config::ConfigError;
use crate::message::InvalidMessage;
use crate::raft::RoleKind;
use crate::storage::StorageError;
use crate::types::{Index, NodeId, Term};

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
    /// The persisted term or commit index exceeds its `MAX`: storage is
    /// corrupt.
    #[error("persisted hard state {hard_state:?} is out of range")]
    HardStateOutOfRange {
        /// The hard state found.
        hard_state: crate::types::HardState,
    },
    /// `Config::applied` is beyond the persisted log: the state machine
    /// applied entries that storage lost.
    #[error("configured applied index {applied} is beyond the last log index {last}")]
    AppliedBeyondLog {
        /// `Config::applied`.
        applied: Index,
        /// The last index in storage.
        last: Index,
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
    /// Apply backpressure: the commit index is more than
    /// `Config::max_apply_gap` entries ahead of the applied index. Retry
    /// once the application has applied more (etcd's server refuses with
    /// "too many requests" the same way).
    #[error(
        "committed index {committed} is more than {max_gap} entries ahead of the applied index \
         {applied}; retry once more is applied"
    )]
    ApplyBacklog {
        /// The commit index of the node that refused.
        committed: Index,
        /// Its applied index.
        applied: Index,
        /// `Config::max_apply_gap`.
        max_gap: u64,
    },
    /// The entry's payload is larger than `Config::max_entry_bytes`
    /// (TiKV's `RaftEntryTooLarge`). Retrying will not help: split it.
    #[error("entry of {bytes} bytes exceeds the limit of {max} bytes")]
    EntryTooLarge {
        /// The payload's size.
        bytes: u64,
        /// `Config::max_entry_bytes`.
        max: u64,
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
    /// The message breaks a rule no correct peer breaks (see
    /// [`Message::validate`](crate::Message::validate)); nothing changed.
    #[error("invalid message from node {from}: {reason}")]
    InvalidMessage {
        /// The sender it claims.
        from: NodeId,
        /// The broken rule.
        reason: InvalidMessage,
    },
    /// The message's term is more than [`Term::MAX_JUMP`] ahead of this
    /// node's: adopting it could leave the cluster no terms to elect in.
    /// Nothing changed.
    #[error("term {term} from node {from} is too far ahead of this node's term {own}")]
    TermTooFarAhead {
        /// The sender it claims.
        from: NodeId,
        /// The message's term.
        term: Term,
        /// This node's term.
        own: Term,
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
    /// A witness never campaigns: its log holds no payloads.
    #[error("a witness never campaigns")]
    Witness,
    /// Already the leader.
    #[error("already the leader")]
    AlreadyLeader,
    /// The term is [`Term::MAX`]: no election can follow it.
    #[error("the term is the largest there is; no election can follow it")]
    TermsExhausted,
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
    /// A witness has no state machine to read from.
    #[error("a witness has no state machine to read from")]
    Witness,
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
    /// The target is a witness, which never leads.
    #[error("node {target} is a witness and cannot become leader")]
    Witness {
        /// The requested target.
        target: NodeId,
    },
    /// Only the leader can cancel a transfer.
    #[error("not the leader (leader: {leader:?}); only the leader cancels a transfer")]
    NotLeader {
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// This leader was removed or demoted and must hand leadership over; its
    /// transfer cannot be cancelled.
    #[error("this leader was removed or demoted and is handing leadership over")]
    SteppingDown,
    /// Storage failed.
    #[error("storage failure: {0}")]
    Storage(#[from] StorageError),
}

/// Why `RawNode::forget_leader` refused to forget the leader. Nothing
/// changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForgetLeaderError {
    /// Only a follower has a leader to forget: a leader does not forget
    /// itself, and a (pre-)candidate follows nobody (etcd-raft ignores the
    /// request in those roles too).
    #[error("only a follower can forget its leader; this node is a {role}")]
    NotFollower {
        /// This node's role.
        role: RoleKind,
    },
    /// Reads are served from the leader's lease
    /// ([`ReadOnlyOption::LeaseBased`](crate::ReadOnlyOption::LeaseBased)).
    /// The lease rests on every voter that acknowledged the leader refusing
    /// votes for an election timeout (thesis §6.4.1); a follower that forgot
    /// its leader would vote at once and let a second leader be elected
    /// while the first still answers reads from its lease (etcd-raft:
    /// "ignoring MsgForgetLeader due to ReadOnlyLeaseBased").
    #[error("forgetting the leader would break the leader lease that lease-based reads rely on")]
    LeaseBasedReads,
}

/// Why `RawNode::request_snapshot` did not ask the leader for a snapshot.
/// Nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestSnapshotError {
    /// Only a follower asks its leader; a leader's state machine is the
    /// source of snapshots, and a (pre-)candidate has nobody to ask.
    #[error("only a follower can request a snapshot; this node is a {role}")]
    NotFollower {
        /// This node's role.
        role: RoleKind,
    },
    /// No leader is known to ask (retry once one is).
    #[error("no leader is known")]
    NoLeader,
    /// A witness has no state machine to repair.
    #[error("a witness has no state machine to repair")]
    Witness,
    /// A request is outstanding already; it is repeated to the leader
    /// until a snapshot reaching `index` is installed.
    #[error("a snapshot reaching index {index} is requested already")]
    AlreadyPending {
        /// The index the requested snapshot must reach.
        index: Index,
    },
    /// A snapshot from the leader is being installed (it is in a `Ready`
    /// not yet persisted); it replaces the state machine anyway.
    #[error("a snapshot from the leader is being installed")]
    SnapshotInProgress,
    /// This follower's last entry is not of the current term: its tail may
    /// be entries the leader does not have and will overwrite, so no
    /// snapshot of the leader's need reach it. Retry once the leader's
    /// first append of the term arrived (raft-rs refuses alike).
    #[error("the last entry is of term {last_term}, not of the current term {term}")]
    LogBehindLeader {
        /// The term of this node's last entry.
        last_term: Term,
        /// The current term.
        term: Term,
    },
    /// Storage failed while reading the last entry.
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
    /// Storage was compacted past committed entries this node has not
    /// handed out for applying yet: the application compacted beyond the
    /// applied index it reports (`Config::applied` at start, then
    /// `advance` / `on_applied`). See `MemoryStorage::compact` for the
    /// index that is safe.
    #[error(
        "storage is compacted up to {first_index} (exclusive) but entries from {next} still \
         need applying; compact only up to the applied index reported to raft"
    )]
    CompactedBeyondApplied {
        /// The next committed index to hand out.
        next: Index,
        /// Storage's first index.
        first_index: Index,
    },
    /// Storage failed while reading entries to send or apply.
    #[error("storage failure: {0}")]
    Storage(#[from] StorageError),
}

/// Why `RawNode::apply_conf_change` did not change the membership.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyConfChangeError {
    /// The change is not valid from the current configuration.
    #[error("invalid conf change: {0}")]
    Invalid(#[from] crate::confchange::ConfChangeError),
    /// This node has no configuration yet (it joined with empty storage),
    /// and its log does not begin with the founders' membership (the
    /// cluster was founded with `MemoryStorage::with_conf_state`, outside
    /// the log). Replaying the log's changes from nothing would give a
    /// membership without the founders, one in which this node could elect
    /// itself while the real cluster commits other entries. The node stays
    /// without a configuration (it never campaigns) until a snapshot brings
    /// it the membership; found clusters that grow with
    /// `MemoryStorage::bootstrap` (or `FoundingLog`).
    #[error(
        "this node has no configuration and its log does not begin with the founders' \
         membership (the cluster was founded outside the log); it needs a snapshot"
    )]
    NoFoundingMembership,
    /// The change would make this node a witness though it runs with a
    /// state machine (`Config::witness` false): its leader would send it
    /// entries without payloads, which it would apply. Or it would make
    /// this node, which runs as a witness, a full voter that can lead with
    /// a log that holds no payloads. The membership is unchanged; the
    /// operator named the wrong node.
    #[error(
        "the change makes this node {}, but it runs {}",
        if *named_witness { "a witness" } else { "a full voter" },
        if *named_witness { "with a state machine" } else { "as a witness" }
    )]
    WitnessMismatch {
        /// True when the change names this node a witness.
        named_witness: bool,
    },
    /// Storage failed while reading the start of the log.
    #[error("storage failure: {0}")]
    Storage(#[from] StorageError),
}
