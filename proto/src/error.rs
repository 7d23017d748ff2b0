//! The error of turning untrusted bytes into `raft-core` values.

use raft_core::{InvalidConfState, InvalidMessage, LogId, NodeId};

/// Why bytes or a wire value could not be turned into a `raft-core` value.
///
/// The wire-level rules (protobuf, enums, node ids, the range of every
/// term and index, fields a kind must not set, missing sub-records,
/// repeated ids) each have their own variant. The semantic rules are
/// `raft-core`'s, stated once: a broken message rule is
/// [`DecodeError::Invalid`] and a broken membership rule
/// [`DecodeError::InvalidConfState`], each wrapping `raft-core`'s error.
/// So a caller (or a test) can tell exactly what was wrong with the input.
/// Field names are spelled `Record.field`, as in `raft.proto`.
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

    /// A term or index is above [`Term::MAX`](raft_core::Term::MAX) /
    /// [`Index::MAX`](raft_core::Index::MAX)
    /// (`2^63 - 1`), the largest value `raft-core` can hold. Checked on the
    /// wire, field by field, because standalone records (a WAL's entries
    /// and hard state, a snapshot file's metadata) are decoded too, not only
    /// messages.
    #[error("{field} = {value} exceeds the largest accepted term or index")]
    ValueTooLarge {
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
    },

    /// A field that the message kind does not use holds a value.
    #[error("{kind} message must not set {field}")]
    UnexpectedField {
        /// The message kind.
        kind: &'static str,
        /// The field that is set.
        field: &'static str,
    },

    /// A `Snapshot` message has no `snapshot` field. (One that carries the
    /// empty snapshot is [`InvalidMessage::EmptySnapshot`].)
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

    /// Snapshot metadata (decoded alone, or inside a snapshot) names a
    /// position no log can have: index 0 with a non-zero term, or a
    /// non-zero index with term 0 ([`LogId::is_valid`]).
    #[error("SnapshotMetadata is not a valid log position: {position}")]
    InvalidSnapshotPosition {
        /// The position found.
        position: LogId,
    },

    /// A membership configuration breaks an invariant of
    /// [`ConfState::validate`](raft_core::ConfState::validate).
    #[error(transparent)]
    InvalidConfState(#[from] InvalidConfState),

    /// The message is well-formed on the wire but breaks a rule no correct
    /// peer breaks, as [`Message::validate`](raft_core::Message::validate)
    /// checks it (the check [`RawNode::step`](raft_core::RawNode::step)
    /// makes first).
    #[error(transparent)]
    Invalid(#[from] InvalidMessage),
}
