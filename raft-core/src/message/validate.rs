//! What makes a [`Message`] one a correct peer could have sent. Checked by
//! [`RawNode::step`](crate::RawNode::step) before anything else, and by
//! `raft-proto`'s decoder, so the rules live here once.

use super::{Append, AppendResponse, Message, MessageBody, VoteRequest};
use crate::types::{Index, InvalidConfState, LogId, NodeId, Snapshot, Term};

/// Why a [`Message`] breaks a rule that no correct peer breaks. Such a
/// message is refused as a whole; the node's state is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidMessage {
    /// A message from a node to itself; Raft never sends one.
    #[error("message is sent from {node} to itself")]
    SelfAddressed {
        /// The node named as both sender and receiver.
        node: NodeId,
    },
    /// A term above [`Term::MAX`].
    #[error("{field} = {term} exceeds the largest term")]
    TermTooLarge {
        /// Where the term is, e.g. `Message.term`.
        field: &'static str,
        /// The term found.
        term: Term,
    },
    /// An index above [`Index::MAX`].
    #[error("{field} = {index} exceeds the largest index")]
    IndexTooLarge {
        /// Where the index is, e.g. `Heartbeat.commit`.
        field: &'static str,
        /// The index found.
        index: Index,
    },
    /// A message that must carry its sender's term has term 0. Only the
    /// forwarded requests carry none, and a refused pre-vote may come from
    /// a node still at term 0; any other message comes from a node that
    /// has seen an election and so holds a term of at least 1.
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
        term: Term,
    },
    /// A log position pairs index 0 with a non-zero term, or a non-zero
    /// index with term 0.
    #[error("{field} is not a valid log position: {id}")]
    InvalidLogId {
        /// The position, e.g. `Append.prev`.
        field: &'static str,
        /// The position found.
        id: LogId,
    },
    /// A term inside a message is newer than the sender's own term, which
    /// no correct sender can produce.
    #[error("{field} has term {term}, above the message term {message_term}")]
    TermAboveMessageTerm {
        /// What carries the term, e.g. `Append.prev`.
        field: &'static str,
        /// The term found.
        term: Term,
        /// The message's term.
        message_term: Term,
    },
    /// The entries of an append do not follow `prev` one by one.
    #[error("entry #{position} of the append has index {found}, expected {expected}")]
    EntriesNotConsecutive {
        /// The entry's position in the message, from 0.
        position: usize,
        /// The index it should have.
        expected: Index,
        /// The index it has.
        found: Index,
    },
    /// An appended entry's term is lower than the term before it (the
    /// previous entry's, or `prev`'s for the first entry).
    #[error("entry at index {index} has term {term}, below the preceding term {previous}")]
    EntryTermDecreasing {
        /// The entry's index.
        index: Index,
        /// The entry's term.
        term: Term,
        /// The term before it.
        previous: Term,
    },
    /// A `Propose` message carries no entries.
    #[error("Propose message carries no entries")]
    EmptyProposal,
    /// A rejecting append response hints at an index beyond the index it
    /// rejected.
    #[error("reject hint index {hint} is beyond the rejected index {index}")]
    RejectHintBeyondIndex {
        /// The hinted index.
        hint: Index,
        /// The rejected index.
        index: Index,
    },
    /// A `ReadIndexResponse` names index 0: a leader answers reads only once
    /// it has committed an entry of its term, so the index is at least 1.
    #[error("ReadIndexResponse message has read index 0")]
    ZeroReadIndex,
    /// A `RequestSnapshot` message names index 0: a follower asks only once
    /// it holds an entry of the current term, at index 1 or later.
    #[error("RequestSnapshot message has index 0")]
    ZeroSnapshotRequestIndex,
    /// A `Quiesce` message names a last entry that is not of the leader's
    /// term: a leader's log always ends with an entry of its own term (the
    /// empty entry it appends on election, paper §5.4.2 and §8).
    #[error("Quiesce message names last entry {last}, not of the message term {term}")]
    QuiesceNotAtTerm {
        /// The last entry named.
        last: LogId,
        /// The message's term.
        term: Term,
    },
    /// A `Snapshot` message carries the empty snapshot (index 0).
    #[error("Snapshot message carries the empty snapshot")]
    EmptySnapshot,
    /// A snapshot's configuration breaks a membership invariant.
    #[error("snapshot configuration: {0}")]
    InvalidConfState(#[from] InvalidConfState),
}

impl Message {
    /// Checks every rule a correct peer's message follows: distinct sender
    /// and receiver; a term exactly where the kind needs one; terms and
    /// indexes at most their `MAX`; log positions that can exist; no term
    /// inside the message newer than the message; an append's entries
    /// consecutive after `prev`, of non-decreasing terms of at least 1; a
    /// non-empty snapshot with a coherent configuration. It costs one pass
    /// over an append's entries.
    ///
    /// [`RawNode::step`](crate::RawNode::step) calls it first; `raft-proto`
    /// calls it on every decoded message.
    ///
    /// # Errors
    /// The first broken rule.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        if self.from == self.to {
            return Err(InvalidMessage::SelfAddressed { node: self.from });
        }
        term_in_range("Message.term", self.term)?;
        self.validate_term_presence()?;
        let term = self.term;
        match &self.body {
            MessageBody::Append(a) => validate_append(a, term),
            MessageBody::AppendResponse(r) => validate_append_response(r),
            MessageBody::Vote(v) => validate_vote("Vote.last", v, term),
            MessageBody::PreVote(v) => validate_vote("PreVote.last", v, term),
            MessageBody::Heartbeat(h) => index_in_range("Heartbeat.commit", h.commit),
            MessageBody::Snapshot(s) => validate_snapshot(s, term),
            MessageBody::Propose(p) => {
                if p.entries.is_empty() {
                    return Err(InvalidMessage::EmptyProposal);
                }
                p.entries.iter().try_for_each(|e| {
                    term_in_range("Propose.entries", e.term)?;
                    index_in_range("Propose.entries", e.index)
                })
            }
            MessageBody::ReadIndexResponse(r) => {
                if r.index == Index::ZERO {
                    return Err(InvalidMessage::ZeroReadIndex);
                }
                index_in_range("ReadIndexResponse.index", r.index)
            }
            MessageBody::RequestSnapshot(r) => {
                if r.index == Index::ZERO {
                    return Err(InvalidMessage::ZeroSnapshotRequestIndex);
                }
                index_in_range("RequestSnapshot.index", r.index)
            }
            MessageBody::Quiesce(q) => {
                valid_position("Quiesce.last", q.last, term)?;
                if q.last.term != term {
                    return Err(InvalidMessage::QuiesceNotAtTerm { last: q.last, term });
                }
                Ok(())
            }
            MessageBody::VoteResponse(_)
            | MessageBody::PreVoteResponse(_)
            | MessageBody::HeartbeatResponse(_)
            | MessageBody::ReadIndex(_)
            | MessageBody::TimeoutNow
            | MessageBody::Wake
            | MessageBody::TransferLeader(_) => Ok(()),
        }
    }

    /// True for the requests a follower forwards to its leader: they carry
    /// no term and stand outside the protocol's term ordering.
    pub(crate) fn is_forwarded_request(&self) -> bool {
        matches!(
            self.body,
            MessageBody::Propose(_) | MessageBody::ReadIndex(_) | MessageBody::TransferLeader(_)
        )
    }

    fn validate_term_presence(&self) -> Result<(), InvalidMessage> {
        let kind = self.body.kind_name();
        if self.is_forwarded_request() {
            if self.term != Term::ZERO {
                return Err(InvalidMessage::UnexpectedTerm {
                    kind,
                    term: self.term,
                });
            }
            return Ok(());
        }
        // A node that never saw an election is at term 0 and refuses a
        // pre-vote at its own term: the one answer that may carry term 0.
        let may_lack_term = matches!(
            self.body,
            MessageBody::PreVoteResponse(super::VoteResponse { reject: true })
        );
        if self.term == Term::ZERO && !may_lack_term {
            return Err(InvalidMessage::MissingTerm { kind });
        }
        Ok(())
    }
}

fn term_in_range(field: &'static str, term: Term) -> Result<(), InvalidMessage> {
    if term > Term::MAX {
        return Err(InvalidMessage::TermTooLarge { field, term });
    }
    Ok(())
}

fn index_in_range(field: &'static str, index: Index) -> Result<(), InvalidMessage> {
    if index > Index::MAX {
        return Err(InvalidMessage::IndexTooLarge { field, index });
    }
    Ok(())
}

/// A position that can exist in a log and is no newer than the message.
fn valid_position(
    field: &'static str,
    id: LogId,
    message_term: Term,
) -> Result<(), InvalidMessage> {
    term_in_range(field, id.term)?;
    index_in_range(field, id.index)?;
    if !id.is_valid() {
        return Err(InvalidMessage::InvalidLogId { field, id });
    }
    not_above_message_term(field, id.term, message_term)
}

fn not_above_message_term(
    field: &'static str,
    term: Term,
    message_term: Term,
) -> Result<(), InvalidMessage> {
    if term > message_term {
        return Err(InvalidMessage::TermAboveMessageTerm {
            field,
            term,
            message_term,
        });
    }
    Ok(())
}

/// Paper §5.3: the entries follow `prev` one by one; a leader creates
/// entries only in its own term, so terms never decrease along the log and
/// none is above the message's term.
fn validate_append(a: &Append, message_term: Term) -> Result<(), InvalidMessage> {
    valid_position("Append.prev", a.prev, message_term)?;
    index_in_range("Append.commit", a.commit)?;
    let mut last = a.prev;
    for (position, e) in a.entries.iter().enumerate() {
        // `last.index` is at most `Index::MAX`: `next` cannot overflow.
        let expected = last.index.next();
        if e.index != expected {
            return Err(InvalidMessage::EntriesNotConsecutive {
                position,
                expected,
                found: e.index,
            });
        }
        valid_position("Append.entries", e.log_id(), message_term)?;
        if e.term < last.term {
            return Err(InvalidMessage::EntryTermDecreasing {
                index: e.index,
                term: e.term,
                previous: last.term,
            });
        }
        last = e.log_id();
    }
    Ok(())
}

fn validate_append_response(r: &AppendResponse) -> Result<(), InvalidMessage> {
    index_in_range("AppendResponse.index", r.index)?;
    index_in_range("AppendResponse.commit", r.commit)?;
    if let Some(hint) = r.reject {
        index_in_range("AppendResponse.reject.index", hint.index)?;
        if let Some(term) = hint.term {
            term_in_range("AppendResponse.reject.term", term)?;
        }
        if hint.index > r.index {
            return Err(InvalidMessage::RejectHintBeyondIndex {
                hint: hint.index,
                index: r.index,
            });
        }
    }
    Ok(())
}

fn validate_vote(field: &'static str, v: &VoteRequest, term: Term) -> Result<(), InvalidMessage> {
    valid_position(field, v.last, term)
}

fn validate_snapshot(s: &Snapshot, message_term: Term) -> Result<(), InvalidMessage> {
    if s.is_empty() {
        return Err(InvalidMessage::EmptySnapshot);
    }
    valid_position("Snapshot.metadata", s.metadata.log_id(), message_term)?;
    s.metadata.conf_state.validate()?;
    Ok(())
}
