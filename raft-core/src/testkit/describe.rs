//! Deterministic, human-readable one-line descriptions of Raft values, for
//! transcripts and test failure messages.
//!
//! Nothing here uses `Debug`: the formats are stable and meant to be read in
//! reviewed diffs.
//!
//! ```
//! use raft_core::testkit::describe;
//! use raft_core::{Append, Entry, Index, LogId, Message, MessageBody, NodeId, Term};
//!
//! let m = Message {
//!     from: NodeId::new(1).unwrap(),
//!     to: NodeId::new(2).unwrap(),
//!     term: Term(2),
//!     body: MessageBody::Append(Append {
//!         prev: LogId::new(Term(1), Index(5)),
//!         entries: vec![Entry::new(Term(2), Index(6), "x".into())],
//!         commit: Index(5),
//!     }),
//! };
//! assert_eq!(
//!     describe::message(&m),
//!     r#"1->2 Append term=2 prev=1/5 entries=[2/6 "x"] commit=5"#
//! );
//! ```

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::{
    AnyConfChange, ConfChangeKind, ConfChangeTransition, ConfState, Entry, EntryKind, HardState,
    Message, MessageBody, NodeId, ProgressState, ReadState, Ready, RoleKind, Snapshot, SoftState,
    Status,
};

/// `"text"` with non-printable bytes escaped as `\xNN`.
pub fn bytes(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len() + 2);
    s.push('"');
    for &b in data {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s.push('"');
    s
}

/// `(1,2,3)`.
pub fn id_set(ids: &BTreeSet<NodeId>) -> String {
    let inner: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    format!("({})", inner.join(","))
}

/// `Follower`, `PreCandidate`, `Candidate` or `Leader`.
pub fn role(r: RoleKind) -> &'static str {
    match r {
        RoleKind::Follower => "Follower",
        RoleKind::PreCandidate => "PreCandidate",
        RoleKind::Candidate => "Candidate",
        RoleKind::Leader => "Leader",
    }
}

/// A membership: `voters=(1,2,3) learners=(4)`, plus the outgoing half of a
/// joint configuration (`outgoing=(1,2)`), `learners_next=(..)` and
/// `autoleave` when set.
pub fn conf_state(cs: &ConfState) -> String {
    let mut s = format!(
        "voters={} learners={}",
        id_set(&cs.voters),
        id_set(&cs.learners)
    );
    if !cs.voters_outgoing.is_empty() {
        let _ = write!(s, " outgoing={}", id_set(&cs.voters_outgoing));
    }
    if !cs.learners_next.is_empty() {
        let _ = write!(s, " learners_next={}", id_set(&cs.learners_next));
    }
    if cs.auto_leave {
        s.push_str(" autoleave");
    }
    if !cs.witnesses.is_empty() {
        let _ = write!(s, " witnesses={}", id_set(&cs.witnesses));
    }
    s
}

/// A membership change in the transcript's input syntax: `v4` adds voter 4,
/// `l4` adds (or demotes to) learner 4, `w4` adds witness 4, `r4` removes 4. A V2 change that is
/// not `auto` gets ` transition=implicit|explicit`; the empty V2 change
/// (leave joint) is `leave-joint`.
pub fn conf_change(cc: &AnyConfChange) -> String {
    let single = |kind: ConfChangeKind, id: NodeId| -> String {
        let k = match kind {
            ConfChangeKind::AddNode => 'v',
            ConfChangeKind::AddLearnerNode => 'l',
            ConfChangeKind::RemoveNode => 'r',
            ConfChangeKind::AddWitness => 'w',
        };
        format!("{k}{id}")
    };
    match cc {
        AnyConfChange::V1(c) => single(c.kind, c.node_id),
        AnyConfChange::V2(c) => {
            if c.changes.is_empty() {
                return "leave-joint".to_string();
            }
            let mut parts: Vec<String> = c
                .changes
                .iter()
                .map(|ch| single(ch.kind, ch.node_id))
                .collect();
            match c.transition {
                ConfChangeTransition::Auto => {}
                ConfChangeTransition::JointImplicit => parts.push("transition=implicit".into()),
                ConfChangeTransition::JointExplicit => parts.push("transition=explicit".into()),
            }
            parts.join(" ")
        }
    }
}

fn payload(e: &Entry) -> String {
    match AnyConfChange::from_entry(e) {
        Ok(Some(cc)) => conf_change(&cc),
        Ok(None) => bytes(&e.data),
        Err(err) => format!("<undecodable: {err}>"),
    }
}

/// An entry in full: `1/3 EntryNormal "foo"`, `1/4 EntryConfChangeV2 v4 v5`.
pub fn entry(e: &Entry) -> String {
    let kind = match e.kind {
        EntryKind::Normal => "EntryNormal",
        EntryKind::ConfChange => "EntryConfChange",
        EntryKind::ConfChangeV2 => "EntryConfChangeV2",
    };
    format!("{} {kind} {}", e.log_id(), payload(e))
}

/// An entry inside a message: `2/6` (empty normal entry), `2/7 "foo"`,
/// `2/8 cc:v4`, `2/9 ccv2:v4 v5`.
pub fn entry_short(e: &Entry) -> String {
    match e.kind {
        EntryKind::Normal if e.data.is_empty() => e.log_id().to_string(),
        EntryKind::Normal => format!("{} {}", e.log_id(), bytes(&e.data)),
        EntryKind::ConfChange => format!("{} cc:{}", e.log_id(), payload(e)),
        EntryKind::ConfChangeV2 => format!("{} ccv2:{}", e.log_id(), payload(e)),
    }
}

/// `[1/3, 1/4 "foo"]`.
pub fn entries_short(es: &[Entry]) -> String {
    let inner: Vec<String> = es.iter().map(entry_short).collect();
    format!("[{}]", inner.join(", "))
}

/// `Term:1 Vote:1 Commit:2` (`Vote:0` for none).
pub fn hard_state(hs: &HardState) -> String {
    format!(
        "Term:{} Vote:{} Commit:{}",
        hs.term,
        hs.vote.map_or(0, NodeId::get),
        hs.commit
    )
}

/// `Lead:1 State:Leader` (`Lead:0` for none).
pub fn soft_state(ss: &SoftState) -> String {
    format!(
        "Lead:{} State:{}",
        ss.leader.map_or(0, NodeId::get),
        role(ss.role)
    )
}

/// `Index:11 Term:1 voters=(1,2,3) learners=()` plus the data when not
/// empty.
pub fn snapshot(s: &Snapshot) -> String {
    let mut out = format!(
        "Index:{} Term:{} {}",
        s.metadata.index,
        s.metadata.term,
        conf_state(&s.metadata.conf_state)
    );
    if !s.data.is_empty() {
        let _ = write!(out, " data={}", bytes(&s.data));
    }
    out
}

/// A read state: `index=5 ctx="x"`.
pub fn read_state(rs: &ReadState) -> String {
    format!("index={} ctx={}", rs.index, bytes(&rs.context))
}

/// A message on one line: `1->2 Append term=2 prev=1/5 entries=[2/6] commit=5`.
///
/// The term-less forwarded requests (`Propose`, `ReadIndex`,
/// `TransferLeader`) print no term.
pub fn message(m: &Message) -> String {
    let head = format!("{}->{} {}", m.from, m.to, m.body.kind_name());
    let term = m.term;
    match &m.body {
        MessageBody::Append(a) => format!(
            "{head} term={term} prev={} entries={} commit={}",
            a.prev,
            entries_short(&a.entries),
            a.commit
        ),
        MessageBody::AppendResponse(r) => {
            let mut s = format!("{head} term={term} index={} commit={}", r.index, r.commit);
            if let Some(h) = r.reject {
                // Printed as before the term became optional (0 for none),
                // so the transcripts keep their text.
                let term = h.term.unwrap_or(crate::types::Term::ZERO);
                let _ = write!(s, " rejected hint={}/{}", term, h.index);
            }
            s
        }
        MessageBody::Vote(v) | MessageBody::PreVote(v) => {
            let mut s = format!("{head} term={term} last={}", v.last);
            if v.transfer {
                s.push_str(" transfer");
            }
            s
        }
        MessageBody::VoteResponse(r) | MessageBody::PreVoteResponse(r) => {
            let verdict = if r.reject { "rejected" } else { "granted" };
            format!("{head} term={term} {verdict}")
        }
        MessageBody::Heartbeat(h) => {
            let mut s = format!("{head} term={term} commit={}", h.commit);
            if let Some(r) = h.read_round {
                let _ = write!(s, " round={r}");
            }
            s
        }
        MessageBody::HeartbeatResponse(h) => {
            let mut s = format!("{head} term={term}");
            if let Some(r) = h.read_round {
                let _ = write!(s, " round={r}");
            }
            s
        }
        MessageBody::Snapshot(snap) => {
            format!("{head} term={term} snapshot=[{}]", snapshot(snap))
        }
        MessageBody::Propose(p) => format!("{head} entries={}", entries_short(&p.entries)),
        MessageBody::ReadIndex(r) => format!("{head} ctx={}", bytes(&r.context)),
        MessageBody::ReadIndexResponse(r) => format!(
            "{head} term={term} index={} ctx={}",
            r.index,
            bytes(&r.context)
        ),
        MessageBody::TimeoutNow => format!("{head} term={term}"),
        MessageBody::TransferLeader(t) => format!("{head} target={}", t.target),
        MessageBody::RequestSnapshot(r) => format!("{head} term={term} index={}", r.index),
        MessageBody::Quiesce(q) => format!("{head} term={term} last={}", q.last),
        MessageBody::Wake => format!("{head} term={term}"),
    }
}

/// A Ready, one item per line (no trailing newline):
///
/// ```text
/// Ready MustSync=true:
/// Lead:1 State:Leader
/// HardState Term:1 Vote:1 Commit:2
/// Entries:
/// 1/3 EntryNormal "foo"
/// CommittedEntries:
/// 1/2 EntryNormal ""
/// Messages:
/// 1->2 Append term=1 prev=1/2 entries=[1/3 "foo"] commit=2
/// PersistedMessages:
/// ReadStates:
/// ```
///
/// Empty sections are left out; an empty Ready is `<empty Ready>`.
pub fn ready(rd: &Ready) -> String {
    if rd.is_empty() {
        return "<empty Ready>".to_string();
    }
    let mut lines = vec![format!("Ready MustSync={}:", rd.must_sync)];
    if let Some(ss) = &rd.soft_state {
        lines.push(soft_state(ss));
    }
    if let Some(hs) = &rd.hard_state {
        lines.push(format!("HardState {}", hard_state(hs)));
    }
    if let Some(s) = &rd.snapshot {
        lines.push(format!("Snapshot {}", snapshot(s)));
    }
    let mut section = |title: &str, items: Vec<String>| {
        if !items.is_empty() {
            lines.push(format!("{title}:"));
            lines.extend(items);
        }
    };
    section("Entries", rd.entries.iter().map(entry).collect());
    section(
        "CommittedEntries",
        rd.committed_entries.iter().map(entry).collect(),
    );
    section("Messages", rd.messages.iter().map(message).collect());
    section(
        "PersistedMessages",
        rd.persisted_messages.iter().map(message).collect(),
    );
    section(
        "ReadStates",
        rd.read_states.iter().map(read_state).collect(),
    );
    if let Some(r) = &rd.snapshot_request {
        lines.push(format!(
            "SnapshotRequest MinIndex:{} To:{}",
            r.min_index, r.to
        ));
    }
    lines.join("\n")
}

/// A progress state: `Probe`, `Replicate`, `Snapshot pending=11`.
pub fn progress_state(s: ProgressState) -> String {
    match s {
        ProgressState::Probe => "Probe".into(),
        ProgressState::Replicate => "Replicate".into(),
        ProgressState::Snapshot { pending } => format!("Snapshot pending={pending}"),
    }
}

/// A node's status: its hard and soft state, then on a leader one line per
/// member, `2: Replicate match=11 next=12 inflight=1`, with `learner` and
/// `inactive` (not heard from in this CheckQuorum round) when they apply.
pub fn status(st: &Status) -> String {
    let mut lines = vec![format!(
        "{}: {} {} Applied:{} LastIndex:{}",
        st.id,
        soft_state(&st.soft_state),
        hard_state(&st.hard_state),
        st.applied,
        st.last_index
    )];
    if let Some(t) = st.transferee {
        lines.push(format!("transferring leadership to {t}"));
    }
    if let Some(i) = st.pending_snapshot_request {
        lines.push(format!("waiting for a requested snapshot reaching {i}"));
    }
    match &st.progress {
        None => lines.push("no progress (not the leader)".into()),
        Some(progress) => {
            for (id, p) in progress {
                let mut s = format!(
                    "{id}: {} match={} next={}",
                    progress_state(p.state),
                    p.matched,
                    p.next
                );
                if p.is_learner {
                    s.push_str(" learner");
                }
                if p.inflight_msgs > 0 {
                    let _ = write!(s, " inflight={}", p.inflight_msgs);
                }
                if !p.recent_active && *id != st.id {
                    s.push_str(" inactive");
                }
                if let Some(i) = p.follower_snapshot_request {
                    let _ = write!(s, " wants-snapshot={i}");
                }
                lines.push(s);
            }
        }
    }
    lines.join("\n")
}
