//! The error of turning untrusted bytes into `raft-core` values.

use raft_core::NodeId;

/// Why bytes or a wire value could not be turned into a `raft-core` value.
///
/// Every rule the decoder enforces has its own variant, so a caller (or a
/// test) can tell exactly what was wrong with the input. Field names are
/// spelled `Record.field`, as in `raft.proto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not a valid protobuf encoding of the expected record.
    #[error("malformed protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),

    /// A single message, or one message inside a batch, is larger than the
    /// configured limit.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// The encoded size of the message.
        size: usize,
        /// The configured limit.
        limit: usize,
    },

    /// A batch is larger than the configured limit.
    #[error("batch of {size} bytes exceeds the limit of {limit} bytes")]
    BatchTooLarge {
        /// The encoded size of the batch.
        size: usize,
        /// The configured limit.
        limit: usize,
    },

    /// An enum field was left at its zero value, which means "not set".
    #[error("{field} is not set")]
    UnspecifiedEnum {
        /// The field, e.g. `Message.type`.
        field: &'static str,
    },

    /// An enum field holds a value this version does not know.
    #[error("{field} has unknown value {value}")]
    UnknownEnum {
        /// The field, e.g. `Message.type`.
        field: &'static str,
        /// The value found.
        value: i32,
    },

    /// A node id field that must name a node is zero.
    #[error("{field} must not be zero")]
    ZeroNodeId {
        /// The field, e.g. `Message.from`.
        field: &'static str,
    },

    /// A message is addressed from a node to itself; Raft never sends those
    /// over a transport.
    #[error("message is sent from {node} to itself")]
    SelfAddressed {
        /// The node named as both sender and receiver.
        node: NodeId,
    },

    /// A term or index is so large that the protocol's arithmetic on it
    /// could overflow; see [`MAX_TERM_OR_INDEX`](crate::MAX_TERM_OR_INDEX).
    #[error("{field} = {value} exceeds the largest accepted term or index")]
    ValueTooLarge {
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
    },

    /// A message that must carry its sender's term has term 0. Only the
    /// forwarded requests carry none, and a refused `PreVoteResponse` may
    /// come from a node still at term 0; any other message comes from a
    /// node that has seen an election (its own or a leader's) and so holds
    /// a term of at least 1.
    #[error("{kind} message has term 0")]
    MissingTerm {
        /// The message kind.
        kind: &'static str,
    },

    /// A forwarded request (`Propose`, `ReadIndex`, `TransferLeader`),
    /// which carries no term, has one.
    #[error("{kind} message must not carry a term, found {term}")]
    UnexpectedTerm {
        /// The message kind.
        kind: &'static str,
        /// The term found.
        term: u64,
    },

    /// A field that the message kind does not use holds a value.
    #[error("{kind} message must not set {field}")]
    UnexpectedField {
        /// The message kind.
        kind: &'static str,
        /// The field that is set.
        field: &'static str,
    },

    /// A log position pairs index 0 with a non-zero term, or a non-zero
    /// index with term 0: only the position before the first entry has
    /// term 0.
    #[error("{field} is not a valid log position: term {term} at index {index}")]
    InvalidLogId {
        /// The position, e.g. `Append.prev`.
        field: &'static str,
        /// Its term.
        term: u64,
        /// Its index.
        index: u64,
    },

    /// A term inside a message is newer than the sender's own term, which
    /// no correct sender can produce.
    #[error("{field} has term {term}, above the message term {message_term}")]
    TermAboveMessageTerm {
        /// What carries the term, e.g. `Append.prev`.
        field: &'static str,
        /// The term found.
        term: u64,
        /// The message's term.
        message_term: u64,
    },

    /// An appended entry has index 0, which is never a real entry.
    #[error("entry #{position} of the append has index 0")]
    EntryIndexZero {
        /// The entry's position in the message, from 0.
        position: usize,
    },

    /// The entries of an append do not follow `prev` one by one.
    #[error("entry #{position} of the append has index {found}, expected {expected}")]
    EntriesNotConsecutive {
        /// The entry's position in the message, from 0.
        position: usize,
        /// The index it should have.
        expected: u64,
        /// The index it has.
        found: u64,
    },

    /// An appended entry's term is lower than the term before it (the
    /// previous entry's, or `prev`'s for the first entry).
    #[error("entry at index {index} has term {term}, below the preceding term {previous}")]
    EntryTermDecreasing {
        /// The entry's index.
        index: u64,
        /// The entry's term.
        term: u64,
        /// The term before it.
        previous: u64,
    },

    /// A `Propose` message carries no entries.
    #[error("Propose message carries no entries")]
    EmptyProposal,

    /// A rejecting append response hints at an index beyond the index it
    /// rejected.
    #[error("reject hint index {hint} is beyond the rejected index {index}")]
    RejectHintBeyondIndex {
        /// The hinted index.
        hint: u64,
        /// The rejected index.
        index: u64,
    },

    /// A `ReadIndexResponse` names index 0: a leader answers reads only once
    /// it has committed an entry of its term, so the index is at least 1.
    #[error("ReadIndexResponse message has read index 0")]
    ZeroReadIndex,

    /// A `Snapshot` message has no snapshot, or an empty one (index 0).
    #[error("Snapshot message carries no snapshot")]
    MissingSnapshot,

    /// A required sub-record is absent.
    #[error("{field} is missing")]
    MissingField {
        /// The field, e.g. `Snapshot.metadata`.
        field: &'static str,
    },

    /// A hard state names a vote in term 0, before any election.
    #[error("hard state votes for {vote} in term 0")]
    VoteInTermZero {
        /// The node voted for.
        vote: NodeId,
    },

    /// A node appears twice in the same membership list.
    #[error("node {node} appears twice in {field}")]
    DuplicateNode {
        /// The list, e.g. `ConfState.voters`.
        field: &'static str,
        /// The repeated node.
        node: NodeId,
    },

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

    /// `auto_leave` is set on a configuration that is not joint.
    #[error("auto_leave is set but the configuration is not joint")]
    AutoLeaveWithoutJoint,
}
