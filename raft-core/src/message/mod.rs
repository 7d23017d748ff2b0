//! The messages Raft nodes exchange.
//!
//! A [`Message`] is an envelope (`from`, `to`, `term`) around a
//! [`MessageBody`]; each body variant carries exactly the fields its kind
//! needs, so a vote can never carry entries and an append can never lack a
//! previous position. Untrusted bytes are turned into these values by the
//! `raft-proto` crate, which validates them at the boundary with the same
//! rules [`RawNode::step`](crate::RawNode::step) checks first
//! ([`Message::validate`]).

mod validate;

use bytes::Bytes;

use crate::types::{Entry, Index, LogId, NodeId, Snapshot, Term};

pub use validate::InvalidMessage;

/// One message between two nodes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The sender's term. For a [`MessageBody::PreVote`] it is the term the
    /// sender *would* campaign in (thesis §9.6). Zero for the
    /// term-less forwarded requests ([`MessageBody::Propose`],
    /// [`MessageBody::ReadIndex`], [`MessageBody::TransferLeader`]).
    pub term: Term,
    /// What the message says.
    pub body: MessageBody,
}

impl Message {
    /// A request a follower forwards to its leader (a proposal, a read, a
    /// transfer). It carries no term: it is not part of the protocol's
    /// term ordering, and a leader of any term may serve it.
    pub(crate) fn forwarded(from: NodeId, to: NodeId, body: MessageBody) -> Message {
        let m = Message {
            from,
            to,
            term: Term::ZERO,
            body,
        };
        debug_assert!(
            m.is_forwarded_request(),
            "{} is not forwarded",
            m.body.kind_name()
        );
        m
    }
}

/// The kind of a message and its payload.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum MessageBody {
    /// AppendEntries request (paper §5.3, Figure 2). An empty `entries`
    /// is a probe (or carries only `commit`).
    Append(Append),
    /// AppendEntries response.
    AppendResponse(AppendResponse),
    /// RequestVote (paper §5.2).
    Vote(VoteRequest),
    /// RequestVote response.
    VoteResponse(VoteResponse),
    /// Pre-vote request (thesis §9.6).
    PreVote(VoteRequest),
    /// Pre-vote response. Its `term` echoes the request's term when granted.
    PreVoteResponse(VoteResponse),
    /// Leader heartbeat (paper §5.2): asserts leadership, carries the commit
    /// index the follower may safely adopt.
    Heartbeat(Heartbeat),
    /// Heartbeat response.
    HeartbeatResponse(HeartbeatResponse),
    /// InstallSnapshot (paper §7): the follower replaces its state.
    Snapshot(Snapshot),
    /// Entries a follower forwards to its leader for proposal.
    Propose(Propose),
    /// A linearizable read request forwarded to the leader (thesis §6.4).
    ReadIndex(ReadIndexRequest),
    /// The leader's answer to a forwarded read: the index to wait for.
    ReadIndexResponse(ReadIndexResponse),
    /// Tells the transfer target to campaign now (thesis §3.10).
    TimeoutNow,
    /// A leadership-transfer request forwarded to the leader.
    TransferLeader(TransferLeader),
    /// A follower whose application found its state machine damaged asks
    /// its leader for a snapshot (raft-rs's `request_snapshot`; see
    /// [`RawNode::request_snapshot`](crate::RawNode::request_snapshot)).
    RequestSnapshot(RequestSnapshot),
    /// The leader found the group idle and stops its heartbeats; a
    /// follower whose log ends at `last` stops its election timer until
    /// something wakes it (see [`Config::quiesce_after_ticks`](crate::Config)).
    Quiesce(Quiesce),
    /// A quiesced follower woke on its own (a request, or its host
    /// suspects a peer is down) and asks its leader to wake and resume
    /// heartbeats, so that it does not time out against a live leader.
    Wake,
}

/// Fields of [`MessageBody::Append`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Append {
    /// The position just before `entries` (prevLogIndex/prevLogTerm).
    pub prev: LogId,
    /// Consecutive entries starting at `prev.index + 1`.
    /// Invariant (checked at the wire boundary): indexes increase by one,
    /// terms never decrease and none is below `prev.term`.
    pub entries: Vec<Entry>,
    /// The leader's commit index (leaderCommit).
    pub commit: Index,
}

/// Why a follower rejected an append, and where the leader should look next
/// (fast backtracking, thesis §5.3 / etcd's `RejectHint`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RejectHint {
    /// The follower's best guess of the last index that may match:
    /// the largest index `<= prev.index` whose term is `<= prev.term`, or the
    /// follower's last index if its log is shorter.
    pub index: Index,
    /// The term of the entry at `hint.index` in the follower's log; `None`
    /// when the follower knows none to search by (the index is compacted,
    /// or precedes its first entry): the leader probes at `index` as is.
    pub term: Option<Term>,
}

/// Fields of [`MessageBody::AppendResponse`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AppendResponse {
    /// On success, the index of the last entry the follower now matches.
    /// On rejection, the `prev.index` of the append that failed.
    pub index: Index,
    /// `Some` when the append was rejected.
    pub reject: Option<RejectHint>,
    /// The follower's commit index, so the leader can tell whether the
    /// follower still needs a commit update.
    pub commit: Index,
}

/// Fields of [`MessageBody::Vote`] and [`MessageBody::PreVote`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VoteRequest {
    /// The candidate's last log position (paper §5.4.1).
    pub last: LogId,
    /// Set when the campaign was started by a leadership transfer: voters
    /// grant it even while they still hear from a leader (thesis §3.10).
    pub transfer: bool,
}

/// Fields of [`MessageBody::VoteResponse`] and [`MessageBody::PreVoteResponse`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VoteResponse {
    /// True when the vote was refused.
    pub reject: bool,
}

/// Names one of a leader's read-confirmation rounds: a heartbeat that
/// carries it, answered by a quorum, confirms the leadership that the
/// reads waiting on it need (thesis §6.4, step 3). The leader numbers its
/// rounds from 1, one more per round, within its term; followers echo the
/// number. Any value is well-formed on the wire: one the leader never
/// handed out matches nothing.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReadRound(u64);

impl ReadRound {
    /// A leader's first round of its term.
    pub const FIRST: ReadRound = ReadRound(1);

    /// The round with number `raw` (as the wire carries it).
    pub const fn new(raw: u64) -> ReadRound {
        ReadRound(raw)
    }

    /// The raw number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The round after this one.
    #[must_use]
    pub(crate) const fn next(self) -> ReadRound {
        ReadRound(self.0.saturating_add(1))
    }
}

impl std::fmt::Display for ReadRound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::fmt::Debug for ReadRound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "round#{}", self.0)
    }
}

/// Fields of [`MessageBody::Heartbeat`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Heartbeat {
    /// `min(follower's match, leader's commit)`: never beyond what the
    /// follower is known to hold.
    pub commit: Index,
    /// A leader-generated read-index round, echoed in the response.
    pub read_round: Option<ReadRound>,
}

/// Fields of [`MessageBody::HeartbeatResponse`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HeartbeatResponse {
    /// The round of the heartbeat being answered.
    pub read_round: Option<ReadRound>,
}

/// Fields of [`MessageBody::Propose`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Propose {
    /// The entries to append; index and term are assigned by the leader.
    pub entries: Vec<Entry>,
}

/// Fields of [`MessageBody::ReadIndex`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ReadIndexRequest {
    /// The application's request context, returned with the read state.
    pub context: Bytes,
}

/// Fields of [`MessageBody::ReadIndexResponse`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ReadIndexResponse {
    /// The read may be served once the state machine has applied `index`.
    pub index: Index,
    /// The request's context.
    pub context: Bytes,
}

/// Fields of [`MessageBody::TransferLeader`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TransferLeader {
    /// The node that should become leader.
    pub target: NodeId,
}

/// Fields of [`MessageBody::RequestSnapshot`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RequestSnapshot {
    /// The follower's last index, an entry of the current term: the
    /// snapshot must reach at least it. The follower's log matches the
    /// leader's up to it (Log Matching, paper §5.3) and is durable (the
    /// request waits for the follower's Ready to be persisted), so it also
    /// acknowledges the entries up to it. Never 0.
    pub index: Index,
}

/// Fields of [`MessageBody::Quiesce`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Quiesce {
    /// The leader's last entry, an entry of its term. Every member holds it
    /// (the leader quiesces only then) and it is committed: a follower
    /// whose last entry is this one holds exactly the leader's log (Log
    /// Matching, paper §5.3) and may commit all of it.
    pub last: LogId,
}

impl MessageBody {
    /// A short, stable name of the message kind, for logs and transcripts.
    pub fn kind_name(&self) -> &'static str {
        match self {
            MessageBody::Append(_) => "Append",
            MessageBody::AppendResponse(_) => "AppendResponse",
            MessageBody::Vote(_) => "Vote",
            MessageBody::VoteResponse(_) => "VoteResponse",
            MessageBody::PreVote(_) => "PreVote",
            MessageBody::PreVoteResponse(_) => "PreVoteResponse",
            MessageBody::Heartbeat(_) => "Heartbeat",
            MessageBody::HeartbeatResponse(_) => "HeartbeatResponse",
            MessageBody::Snapshot(_) => "Snapshot",
            MessageBody::Propose(_) => "Propose",
            MessageBody::ReadIndex(_) => "ReadIndex",
            MessageBody::ReadIndexResponse(_) => "ReadIndexResponse",
            MessageBody::TimeoutNow => "TimeoutNow",
            MessageBody::TransferLeader(_) => "TransferLeader",
            MessageBody::RequestSnapshot(_) => "RequestSnapshot",
            MessageBody::Quiesce(_) => "Quiesce",
            MessageBody::Wake => "Wake",
        }
    }

    /// True for the messages that vouch for the sender's durable state and
    /// therefore may only be sent once the sender's Ready is persisted
    /// (paper Figure 2, thesis §3.8): votes and append responses, and vote
    /// requests. A candidate whose new term is not yet durable must not ask
    /// for votes: after a crash it would restart in the old term, campaign
    /// for the same term again, be re-elected by voters that already voted
    /// for it, and lead one term twice with two different logs (found by
    /// the simulator with asynchronous writes). A snapshot request
    /// acknowledges the follower's log up to its index.
    pub fn needs_durable_state(&self) -> bool {
        matches!(
            self,
            MessageBody::AppendResponse(_)
                | MessageBody::VoteResponse(_)
                | MessageBody::PreVoteResponse(_)
                | MessageBody::Vote(_)
                | MessageBody::RequestSnapshot(_)
        )
    }
}
