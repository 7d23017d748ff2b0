//! Conversions between the generated wire records and `raft-core` values.
//!
//! Encoding (`From<&core> for wire`) cannot fail. Decoding
//! (`TryFrom<wire> for core`) checks what only the wire can get wrong
//! (unknown enums, zero node ids, out-of-range terms and indexes, fields a
//! kind does not use, missing sub-records, repeated ids), builds the value,
//! and then asks `raft-core` whether the value is valid
//! ([`Message::validate`], [`ConfState::validate`]): the semantic rules are
//! stated once, in `raft-core`, and shared with `RawNode::step`. A value
//! that comes out of decoding upholds every invariant `raft-core` documents
//! for its type.

use std::collections::BTreeSet;

use raft_core::{
    Append, AppendResponse, ConfChange, ConfChangeKind, ConfChangeSingle, ConfChangeTransition,
    ConfChangeV2, ConfState, Entry, EntryKind, HardState, Heartbeat, HeartbeatResponse, Index,
    LogId, Message, MessageBody, NodeId, Propose, Quiesce, ReadIndexRequest, ReadIndexResponse,
    ReadRound, RejectHint, RequestSnapshot, Snapshot, SnapshotMetadata, Term, TransferLeader,
    VoteRequest, VoteResponse,
};

use crate::error::DecodeError;
use crate::wire;

/// The largest term or index a decoder accepts (`2^63 - 1`): `raft-core`'s
/// [`Term::MAX`] and [`Index::MAX`], as the raw `u64` the wire fields hold.
///
/// An alias, not a second rule: the bound is `raft-core`'s (values above it
/// would overflow the protocol's arithmetic), and the decoder refuses any
/// term or index field above it with [`DecodeError::ValueTooLarge`].
pub const MAX_TERM_OR_INDEX: u64 = Term::MAX.get();

// One bound for both, so the alias can name either.
const _: () = assert!(Term::MAX.get() == Index::MAX.get());

// ---------------------------------------------------------------------------
// Field helpers.

fn node_id(field: &'static str, raw: u64) -> Result<NodeId, DecodeError> {
    NodeId::new(raw).ok_or(DecodeError::ZeroNodeId { field })
}

/// `raw` if it is at most `max`. Terms and indexes are range-checked here,
/// with the wire field's name, and not only by `Message::validate`, because
/// the standalone records (entries, hard states, snapshot metadata) have no
/// message to validate them.
fn at_most(field: &'static str, raw: u64, max: u64) -> Result<u64, DecodeError> {
    if raw > max {
        Err(DecodeError::ValueTooLarge { field, value: raw })
    } else {
        Ok(raw)
    }
}

fn term(field: &'static str, raw: u64) -> Result<Term, DecodeError> {
    at_most(field, raw, Term::MAX.get()).map(Term)
}

fn index(field: &'static str, raw: u64) -> Result<Index, DecodeError> {
    at_most(field, raw, Index::MAX.get()).map(Index)
}

/// A log position from a term field and an index field, each in range.
/// Whether the pair can exist in a log is `LogId::is_valid`'s to say.
fn log_id(
    (term_field, raw_term): (&'static str, u64),
    (index_field, raw_index): (&'static str, u64),
) -> Result<LogId, DecodeError> {
    Ok(LogId::new(
        term(term_field, raw_term)?,
        index(index_field, raw_index)?,
    ))
}

/// The position a message carries in `log_term` and `index`.
fn message_log_id(w: &wire::Message) -> Result<LogId, DecodeError> {
    log_id(("Message.log_term", w.log_term), ("Message.index", w.index))
}

// ---------------------------------------------------------------------------
// Enums.

fn entry_kind(raw: i32) -> Result<EntryKind, DecodeError> {
    const FIELD: &str = "Entry.type";
    match wire::EntryType::try_from(raw) {
        Ok(wire::EntryType::Normal) => Ok(EntryKind::Normal),
        Ok(wire::EntryType::ConfChange) => Ok(EntryKind::ConfChange),
        Ok(wire::EntryType::ConfChangeV2) => Ok(EntryKind::ConfChangeV2),
        Ok(wire::EntryType::Unspecified) => Err(DecodeError::UnspecifiedEnum { field: FIELD }),
        Err(_) => Err(DecodeError::UnknownEnum {
            field: FIELD,
            value: raw,
        }),
    }
}

fn entry_type(kind: EntryKind) -> wire::EntryType {
    match kind {
        EntryKind::Normal => wire::EntryType::Normal,
        EntryKind::ConfChange => wire::EntryType::ConfChange,
        EntryKind::ConfChangeV2 => wire::EntryType::ConfChangeV2,
    }
}

fn conf_change_kind(field: &'static str, raw: i32) -> Result<ConfChangeKind, DecodeError> {
    match wire::ConfChangeType::try_from(raw) {
        Ok(wire::ConfChangeType::AddNode) => Ok(ConfChangeKind::AddNode),
        Ok(wire::ConfChangeType::RemoveNode) => Ok(ConfChangeKind::RemoveNode),
        Ok(wire::ConfChangeType::AddLearnerNode) => Ok(ConfChangeKind::AddLearnerNode),
        Ok(wire::ConfChangeType::AddWitness) => Ok(ConfChangeKind::AddWitness),
        Ok(wire::ConfChangeType::Unspecified) => Err(DecodeError::UnspecifiedEnum { field }),
        Err(_) => Err(DecodeError::UnknownEnum { field, value: raw }),
    }
}

fn conf_change_type(kind: ConfChangeKind) -> wire::ConfChangeType {
    match kind {
        ConfChangeKind::AddNode => wire::ConfChangeType::AddNode,
        ConfChangeKind::RemoveNode => wire::ConfChangeType::RemoveNode,
        ConfChangeKind::AddLearnerNode => wire::ConfChangeType::AddLearnerNode,
        ConfChangeKind::AddWitness => wire::ConfChangeType::AddWitness,
    }
}

fn transition(raw: i32) -> Result<ConfChangeTransition, DecodeError> {
    const FIELD: &str = "ConfChangeV2.transition";
    match wire::ConfChangeTransition::try_from(raw) {
        Ok(wire::ConfChangeTransition::Auto) => Ok(ConfChangeTransition::Auto),
        Ok(wire::ConfChangeTransition::JointImplicit) => Ok(ConfChangeTransition::JointImplicit),
        Ok(wire::ConfChangeTransition::JointExplicit) => Ok(ConfChangeTransition::JointExplicit),
        Ok(wire::ConfChangeTransition::Unspecified) => {
            Err(DecodeError::UnspecifiedEnum { field: FIELD })
        }
        Err(_) => Err(DecodeError::UnknownEnum {
            field: FIELD,
            value: raw,
        }),
    }
}

fn wire_transition(t: ConfChangeTransition) -> wire::ConfChangeTransition {
    match t {
        ConfChangeTransition::Auto => wire::ConfChangeTransition::Auto,
        ConfChangeTransition::JointImplicit => wire::ConfChangeTransition::JointImplicit,
        ConfChangeTransition::JointExplicit => wire::ConfChangeTransition::JointExplicit,
    }
}

fn message_type(raw: i32) -> Result<wire::MessageType, DecodeError> {
    const FIELD: &str = "Message.type";
    match wire::MessageType::try_from(raw) {
        Ok(wire::MessageType::Unspecified) => Err(DecodeError::UnspecifiedEnum { field: FIELD }),
        Ok(t) => Ok(t),
        Err(_) => Err(DecodeError::UnknownEnum {
            field: FIELD,
            value: raw,
        }),
    }
}

/// The name `raft-core` gives the kind (`MessageBody::kind_name`).
fn kind_name(t: wire::MessageType) -> &'static str {
    use wire::MessageType as T;
    match t {
        T::Unspecified => "Unspecified",
        T::Append => "Append",
        T::AppendResponse => "AppendResponse",
        T::Vote => "Vote",
        T::VoteResponse => "VoteResponse",
        T::PreVote => "PreVote",
        T::PreVoteResponse => "PreVoteResponse",
        T::Heartbeat => "Heartbeat",
        T::HeartbeatResponse => "HeartbeatResponse",
        T::Snapshot => "Snapshot",
        T::Propose => "Propose",
        T::ReadIndex => "ReadIndex",
        T::ReadIndexResponse => "ReadIndexResponse",
        T::TimeoutNow => "TimeoutNow",
        T::TransferLeader => "TransferLeader",
        T::RequestSnapshot => "RequestSnapshot",
        T::Quiesce => "Quiesce",
        T::Wake => "Wake",
    }
}

// ---------------------------------------------------------------------------
// Entry, HardState.

impl From<&Entry> for wire::Entry {
    fn from(e: &Entry) -> wire::Entry {
        wire::Entry {
            r#type: entry_type(e.kind) as i32,
            term: e.term.get(),
            index: e.index.get(),
            data: e.data.clone(),
        }
    }
}

/// Checks the kind and the range of term and index. Where the entry sits in
/// a log is for the message that carries it (`Message::validate`):
/// forwarded proposals legitimately have index and term 0.
impl TryFrom<wire::Entry> for Entry {
    type Error = DecodeError;

    fn try_from(w: wire::Entry) -> Result<Entry, DecodeError> {
        Ok(Entry {
            kind: entry_kind(w.r#type)?,
            term: term("Entry.term", w.term)?,
            index: index("Entry.index", w.index)?,
            data: w.data,
        })
    }
}

impl From<&HardState> for wire::HardState {
    fn from(h: &HardState) -> wire::HardState {
        wire::HardState {
            term: h.term.get(),
            vote: h.vote.map_or(0, NodeId::get),
            commit: h.commit.get(),
        }
    }
}

/// A `vote` of 0 is "no vote".
impl TryFrom<wire::HardState> for HardState {
    type Error = DecodeError;

    fn try_from(w: wire::HardState) -> Result<HardState, DecodeError> {
        let hs = HardState {
            term: term("HardState.term", w.term)?,
            vote: NodeId::new(w.vote),
            commit: index("HardState.commit", w.commit)?,
        };
        match hs.vote {
            Some(vote) if hs.term == Term::ZERO => Err(DecodeError::VoteInTermZero { vote }),
            _ => Ok(hs),
        }
    }
}

// ---------------------------------------------------------------------------
// Membership.

fn wire_ids(set: &BTreeSet<NodeId>) -> Vec<u64> {
    set.iter().map(|id| id.get()).collect()
}

fn node_set(field: &'static str, raw: Vec<u64>) -> Result<BTreeSet<NodeId>, DecodeError> {
    let mut set = BTreeSet::new();
    for r in raw {
        let id = node_id(field, r)?;
        if !set.insert(id) {
            return Err(DecodeError::DuplicateNode { field, node: id });
        }
    }
    Ok(set)
}

impl From<&ConfState> for wire::ConfState {
    fn from(c: &ConfState) -> wire::ConfState {
        wire::ConfState {
            voters: wire_ids(&c.voters),
            learners: wire_ids(&c.learners),
            voters_outgoing: wire_ids(&c.voters_outgoing),
            learners_next: wire_ids(&c.learners_next),
            auto_leave: c.auto_leave,
            witnesses: wire_ids(&c.witnesses),
        }
    }
}

/// Refuses zero and repeated ids (a `BTreeSet` cannot hold a repeat, so
/// only the wire can), then the invariants of a joint configuration, as
/// [`ConfState::validate`] states them.
impl TryFrom<wire::ConfState> for ConfState {
    type Error = DecodeError;

    fn try_from(w: wire::ConfState) -> Result<ConfState, DecodeError> {
        let cs = ConfState {
            voters: node_set("ConfState.voters", w.voters)?,
            learners: node_set("ConfState.learners", w.learners)?,
            voters_outgoing: node_set("ConfState.voters_outgoing", w.voters_outgoing)?,
            learners_next: node_set("ConfState.learners_next", w.learners_next)?,
            auto_leave: w.auto_leave,
            witnesses: node_set("ConfState.witnesses", w.witnesses)?,
        };
        cs.validate()?;
        Ok(cs)
    }
}

impl From<&ConfChange> for wire::ConfChange {
    fn from(c: &ConfChange) -> wire::ConfChange {
        wire::ConfChange {
            r#type: conf_change_type(c.kind) as i32,
            node_id: c.node_id.get(),
            context: c.context.clone(),
        }
    }
}

impl TryFrom<wire::ConfChange> for ConfChange {
    type Error = DecodeError;

    fn try_from(w: wire::ConfChange) -> Result<ConfChange, DecodeError> {
        Ok(ConfChange {
            kind: conf_change_kind("ConfChange.type", w.r#type)?,
            node_id: node_id("ConfChange.node_id", w.node_id)?,
            context: w.context,
        })
    }
}

impl From<&ConfChangeSingle> for wire::ConfChangeSingle {
    fn from(c: &ConfChangeSingle) -> wire::ConfChangeSingle {
        wire::ConfChangeSingle {
            r#type: conf_change_type(c.kind) as i32,
            node_id: c.node_id.get(),
        }
    }
}

impl TryFrom<wire::ConfChangeSingle> for ConfChangeSingle {
    type Error = DecodeError;

    fn try_from(w: wire::ConfChangeSingle) -> Result<ConfChangeSingle, DecodeError> {
        Ok(ConfChangeSingle {
            kind: conf_change_kind("ConfChangeSingle.type", w.r#type)?,
            node_id: node_id("ConfChangeSingle.node_id", w.node_id)?,
        })
    }
}

impl From<&ConfChangeV2> for wire::ConfChangeV2 {
    fn from(c: &ConfChangeV2) -> wire::ConfChangeV2 {
        wire::ConfChangeV2 {
            transition: wire_transition(c.transition) as i32,
            changes: c.changes.iter().map(wire::ConfChangeSingle::from).collect(),
            context: c.context.clone(),
        }
    }
}

impl TryFrom<wire::ConfChangeV2> for ConfChangeV2 {
    type Error = DecodeError;

    fn try_from(w: wire::ConfChangeV2) -> Result<ConfChangeV2, DecodeError> {
        Ok(ConfChangeV2 {
            transition: transition(w.transition)?,
            changes: w
                .changes
                .into_iter()
                .map(ConfChangeSingle::try_from)
                .collect::<Result<_, _>>()?,
            context: w.context,
        })
    }
}

// ---------------------------------------------------------------------------
// Snapshots.

impl From<&SnapshotMetadata> for wire::SnapshotMetadata {
    fn from(m: &SnapshotMetadata) -> wire::SnapshotMetadata {
        wire::SnapshotMetadata {
            conf_state: Some(wire::ConfState::from(&m.conf_state)),
            index: m.index.get(),
            term: m.term.get(),
        }
    }
}

/// Requires `conf_state` and a valid position ([`LogId::is_valid`]). This is
/// checked here, not left to `Message::validate`, because metadata is also
/// decoded alone, from a snapshot file. The empty metadata, index 0 and
/// term 0, is accepted here; a `Snapshot` message carrying it is refused by
/// `Message::validate` (`InvalidMessage::EmptySnapshot`).
impl TryFrom<wire::SnapshotMetadata> for SnapshotMetadata {
    type Error = DecodeError;

    fn try_from(w: wire::SnapshotMetadata) -> Result<SnapshotMetadata, DecodeError> {
        let at = log_id(
            ("SnapshotMetadata.term", w.term),
            ("SnapshotMetadata.index", w.index),
        )?;
        if !at.is_valid() {
            return Err(DecodeError::InvalidSnapshotPosition { position: at });
        }
        let conf_state = w.conf_state.ok_or(DecodeError::MissingField {
            field: "SnapshotMetadata.conf_state",
        })?;
        Ok(SnapshotMetadata {
            index: at.index,
            term: at.term,
            conf_state: ConfState::try_from(conf_state)?,
        })
    }
}

impl From<&Snapshot> for wire::Snapshot {
    fn from(s: &Snapshot) -> wire::Snapshot {
        wire::Snapshot {
            data: s.data.clone(),
            metadata: Some(wire::SnapshotMetadata::from(&s.metadata)),
        }
    }
}

impl TryFrom<wire::Snapshot> for Snapshot {
    type Error = DecodeError;

    fn try_from(w: wire::Snapshot) -> Result<Snapshot, DecodeError> {
        let metadata = w.metadata.ok_or(DecodeError::MissingField {
            field: "Snapshot.metadata",
        })?;
        Ok(Snapshot {
            metadata: SnapshotMetadata::try_from(metadata)?,
            data: w.data,
        })
    }
}

// ---------------------------------------------------------------------------
// Messages.

/// The optional fields of `wire::Message`, as bits, to say which ones a
/// message kind uses.
mod field {
    pub(super) const LOG_TERM: u16 = 1 << 0;
    pub(super) const INDEX: u16 = 1 << 1;
    pub(super) const ENTRIES: u16 = 1 << 2;
    pub(super) const COMMIT: u16 = 1 << 3;
    pub(super) const REJECT: u16 = 1 << 4;
    pub(super) const REJECT_HINT: u16 = 1 << 5;
    pub(super) const TRANSFER: u16 = 1 << 6;
    pub(super) const READ_ROUND: u16 = 1 << 7;
    pub(super) const SNAPSHOT: u16 = 1 << 8;
    pub(super) const CONTEXT: u16 = 1 << 9;
    pub(super) const TRANSFER_TARGET: u16 = 1 << 10;
}

/// The fields a message of kind `t` may set. The reject hint belongs to an
/// append response only when it rejects.
fn fields_used(t: wire::MessageType, reject: bool) -> u16 {
    use field::*;
    use wire::MessageType as T;
    match t {
        T::Unspecified | T::TimeoutNow | T::Wake => 0,
        T::Append => LOG_TERM | INDEX | ENTRIES | COMMIT,
        T::AppendResponse if reject => INDEX | COMMIT | REJECT | REJECT_HINT,
        T::AppendResponse => INDEX | COMMIT | REJECT,
        T::Vote | T::PreVote => LOG_TERM | INDEX | TRANSFER,
        T::VoteResponse | T::PreVoteResponse => REJECT,
        T::Heartbeat => COMMIT | READ_ROUND,
        T::HeartbeatResponse => READ_ROUND,
        T::Snapshot => SNAPSHOT,
        T::Propose => ENTRIES,
        T::ReadIndex => CONTEXT,
        T::ReadIndexResponse => INDEX | CONTEXT,
        T::TransferLeader => TRANSFER_TARGET,
        T::RequestSnapshot => INDEX,
        T::Quiesce => LOG_TERM | INDEX,
    }
}

/// Rejects a message that sets a field its kind does not use, so a decoded
/// message never silently drops data, and each `raft-core` message has
/// exactly one wire form.
fn check_unused_fields(
    w: &wire::Message,
    kind: &'static str,
    used: u16,
) -> Result<(), DecodeError> {
    let set = [
        (field::LOG_TERM, "Message.log_term", w.log_term != 0),
        (field::INDEX, "Message.index", w.index != 0),
        (field::ENTRIES, "Message.entries", !w.entries.is_empty()),
        (field::COMMIT, "Message.commit", w.commit != 0),
        (field::REJECT, "Message.reject", w.reject),
        (
            field::REJECT_HINT,
            "Message.reject_hint_index",
            w.reject_hint_index != 0,
        ),
        (
            field::REJECT_HINT,
            "Message.reject_hint_term",
            w.reject_hint_term != 0,
        ),
        (field::TRANSFER, "Message.transfer", w.transfer),
        (
            field::READ_ROUND,
            "Message.read_round",
            w.read_round.is_some(),
        ),
        (field::SNAPSHOT, "Message.snapshot", w.snapshot.is_some()),
        (field::CONTEXT, "Message.context", !w.context.is_empty()),
        (
            field::TRANSFER_TARGET,
            "Message.transfer_target",
            w.transfer_target != 0,
        ),
    ];
    match set
        .iter()
        .find(|(bit, _, is_set)| *is_set && used & bit == 0)
    {
        Some(&(_, field, _)) => Err(DecodeError::UnexpectedField { kind, field }),
        None => Ok(()),
    }
}

fn entries(raw: Vec<wire::Entry>) -> Result<Vec<Entry>, DecodeError> {
    // `collect` reuses the wire vector's buffer (both entry types have the
    // same size and alignment): one allocation fewer per append than a
    // `Vec::with_capacity` loop, as measured with callgrind.
    raw.into_iter().map(Entry::try_from).collect()
}

fn decode_body(t: wire::MessageType, w: wire::Message) -> Result<MessageBody, DecodeError> {
    use wire::MessageType as T;
    Ok(match t {
        T::Unspecified => {
            return Err(DecodeError::UnspecifiedEnum {
                field: "Message.type",
            });
        }
        T::Append => MessageBody::Append(Append {
            prev: message_log_id(&w)?,
            commit: index("Message.commit", w.commit)?,
            entries: entries(w.entries)?,
        }),
        T::AppendResponse => MessageBody::AppendResponse(decode_append_response(&w)?),
        T::Vote => MessageBody::Vote(vote_request(&w)?),
        T::PreVote => MessageBody::PreVote(vote_request(&w)?),
        T::VoteResponse => MessageBody::VoteResponse(VoteResponse { reject: w.reject }),
        T::PreVoteResponse => MessageBody::PreVoteResponse(VoteResponse { reject: w.reject }),
        T::Heartbeat => MessageBody::Heartbeat(Heartbeat {
            commit: index("Message.commit", w.commit)?,
            read_round: w.read_round.map(ReadRound::new),
        }),
        T::HeartbeatResponse => MessageBody::HeartbeatResponse(HeartbeatResponse {
            read_round: w.read_round.map(ReadRound::new),
        }),
        T::Snapshot => MessageBody::Snapshot(Snapshot::try_from(
            w.snapshot.ok_or(DecodeError::MissingSnapshot)?,
        )?),
        T::Propose => MessageBody::Propose(Propose {
            entries: entries(w.entries)?,
        }),
        T::ReadIndex => MessageBody::ReadIndex(ReadIndexRequest { context: w.context }),
        T::ReadIndexResponse => MessageBody::ReadIndexResponse(ReadIndexResponse {
            index: index("Message.index", w.index)?,
            context: w.context,
        }),
        T::TimeoutNow => MessageBody::TimeoutNow,
        T::Wake => MessageBody::Wake,
        T::TransferLeader => MessageBody::TransferLeader(TransferLeader {
            target: node_id("Message.transfer_target", w.transfer_target)?,
        }),
        T::RequestSnapshot => MessageBody::RequestSnapshot(RequestSnapshot {
            index: index("Message.index", w.index)?,
        }),
        T::Quiesce => MessageBody::Quiesce(Quiesce {
            last: message_log_id(&w)?,
        }),
    })
}

fn vote_request(w: &wire::Message) -> Result<VoteRequest, DecodeError> {
    Ok(VoteRequest {
        last: message_log_id(w)?,
        transfer: w.transfer,
    })
}

/// An append response; the reject hint is read only when it rejects (an
/// accepting response must not set it, see `check_unused_fields`).
fn decode_append_response(w: &wire::Message) -> Result<AppendResponse, DecodeError> {
    let at = index("Message.index", w.index)?;
    let reject = if w.reject {
        Some(RejectHint {
            index: index("Message.reject_hint_index", w.reject_hint_index)?,
            // 0 on the wire: no term (see `RejectHint::term`).
            term: match w.reject_hint_term {
                0 => None,
                t => Some(term("Message.reject_hint_term", t)?),
            },
        })
    } else {
        None
    };
    Ok(AppendResponse {
        index: at,
        reject,
        commit: index("Message.commit", w.commit)?,
    })
}

/// An untrusted message: first the wire (a known kind, non-zero sender and
/// receiver, every term and index in range, no field the kind does not
/// use, the sub-records it needs), then [`Message::validate`], the rules
/// [`RawNode::step`](raft_core::RawNode::step) checks too. A message this
/// returns is one `step` accepts as valid.
impl TryFrom<wire::Message> for Message {
    type Error = DecodeError;

    fn try_from(w: wire::Message) -> Result<Message, DecodeError> {
        let t = message_type(w.r#type)?;
        let from = node_id("Message.from", w.from)?;
        let to = node_id("Message.to", w.to)?;
        let term = term("Message.term", w.term)?;
        check_unused_fields(&w, kind_name(t), fields_used(t, w.reject))?;
        let message = Message {
            from,
            to,
            term,
            body: decode_body(t, w)?,
        };
        message.validate()?;
        Ok(message)
    }
}

/// The wire type of a message body.
fn wire_type(body: &MessageBody) -> wire::MessageType {
    use wire::MessageType as T;
    match body {
        MessageBody::Append(_) => T::Append,
        MessageBody::AppendResponse(_) => T::AppendResponse,
        MessageBody::Vote(_) => T::Vote,
        MessageBody::PreVote(_) => T::PreVote,
        MessageBody::VoteResponse(_) => T::VoteResponse,
        MessageBody::PreVoteResponse(_) => T::PreVoteResponse,
        MessageBody::Heartbeat(_) => T::Heartbeat,
        MessageBody::HeartbeatResponse(_) => T::HeartbeatResponse,
        MessageBody::Snapshot(_) => T::Snapshot,
        MessageBody::Propose(_) => T::Propose,
        MessageBody::ReadIndex(_) => T::ReadIndex,
        MessageBody::ReadIndexResponse(_) => T::ReadIndexResponse,
        MessageBody::TimeoutNow => T::TimeoutNow,
        MessageBody::TransferLeader(_) => T::TransferLeader,
        MessageBody::RequestSnapshot(_) => T::RequestSnapshot,
        MessageBody::Quiesce(_) => T::Quiesce,
        MessageBody::Wake => T::Wake,
    }
}

impl From<&Message> for wire::Message {
    fn from(m: &Message) -> wire::Message {
        let mut w = wire::Message {
            r#type: wire_type(&m.body) as i32,
            from: m.from.get(),
            to: m.to.get(),
            term: m.term.get(),
            ..wire::Message::default()
        };
        match &m.body {
            MessageBody::Append(a) => {
                w.log_term = a.prev.term.get();
                w.index = a.prev.index.get();
                w.entries = a.entries.iter().map(wire::Entry::from).collect();
                w.commit = a.commit.get();
            }
            MessageBody::AppendResponse(r) => {
                w.index = r.index.get();
                w.commit = r.commit.get();
                if let Some(hint) = r.reject {
                    w.reject = true;
                    w.reject_hint_index = hint.index.get();
                    w.reject_hint_term = hint.term.map_or(0, Term::get);
                }
            }
            MessageBody::Vote(v) | MessageBody::PreVote(v) => {
                w.log_term = v.last.term.get();
                w.index = v.last.index.get();
                w.transfer = v.transfer;
            }
            MessageBody::VoteResponse(r) | MessageBody::PreVoteResponse(r) => w.reject = r.reject,
            MessageBody::Heartbeat(h) => {
                w.commit = h.commit.get();
                w.read_round = h.read_round.map(ReadRound::get);
            }
            MessageBody::HeartbeatResponse(h) => w.read_round = h.read_round.map(ReadRound::get),
            MessageBody::Snapshot(s) => w.snapshot = Some(wire::Snapshot::from(s)),
            MessageBody::Propose(p) => {
                w.entries = p.entries.iter().map(wire::Entry::from).collect();
            }
            MessageBody::ReadIndex(r) => w.context = r.context.clone(),
            MessageBody::ReadIndexResponse(r) => {
                w.index = r.index.get();
                w.context = r.context.clone();
            }
            MessageBody::TimeoutNow | MessageBody::Wake => {}
            MessageBody::TransferLeader(tl) => w.transfer_target = tl.target.get(),
            MessageBody::RequestSnapshot(r) => w.index = r.index.get(),
            MessageBody::Quiesce(q) => {
                w.log_term = q.last.term.get();
                w.index = q.last.index.get();
            }
        }
        w
    }
}
