//! Valid sample values shared by the test files.
#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use raft_core::{
    Append, AppendResponse, ConfState, Entry, EntryKind, Heartbeat, HeartbeatResponse, Index,
    LogId, Message, MessageBody, NodeId, Propose, Quiesce, ReadIndexRequest, ReadIndexResponse,
    ReadRound, RejectHint, RequestSnapshot, Snapshot, SnapshotMetadata, Term, TransferLeader,
    VoteRequest, VoteResponse,
};

pub fn id(raw: u64) -> NodeId {
    NodeId::new(raw).expect("test ids are not zero")
}

pub fn ids(raw: &[u64]) -> std::collections::BTreeSet<NodeId> {
    raw.iter().copied().map(id).collect()
}

/// A message from node 1 to node 2.
pub fn message(term: u64, body: MessageBody) -> Message {
    Message {
        from: id(1),
        to: id(2),
        term: Term(term),
        body,
    }
}

pub fn entry(term: u64, index: u64, data: &'static [u8]) -> Entry {
    Entry::new(Term(term), Index(index), Bytes::from_static(data))
}

/// An append at term 5 after 4/10 with entries 11..=13.
pub fn append() -> Message {
    let mut conf = entry(5, 12, b"conf");
    conf.kind = EntryKind::ConfChange;
    message(
        5,
        MessageBody::Append(Append {
            prev: LogId::new(Term(4), Index(10)),
            entries: vec![entry(4, 11, b"a"), conf, entry(5, 13, b"")],
            commit: Index(9),
        }),
    )
}

pub fn joint_conf_state() -> ConfState {
    ConfState {
        voters: ids(&[1, 2, 4]),
        learners: ids(&[5]),
        voters_outgoing: ids(&[1, 2, 3]),
        learners_next: ids(&[3]),
        auto_leave: true,
        witnesses: ids(&[2]),
    }
}

pub fn snapshot() -> Snapshot {
    Snapshot {
        metadata: SnapshotMetadata {
            index: Index(100),
            term: Term(6),
            conf_state: joint_conf_state(),
        },
        data: Bytes::from_static(b"state machine"),
    }
}

/// One valid message of every kind.
pub fn every_kind() -> Vec<Message> {
    vec![
        append(),
        message(
            5,
            MessageBody::AppendResponse(AppendResponse {
                index: Index(13),
                reject: None,
                commit: Index(9),
            }),
        ),
        message(
            5,
            MessageBody::AppendResponse(AppendResponse {
                index: Index(10),
                reject: Some(RejectHint {
                    index: Index(8),
                    term: Some(Term(3)),
                }),
                commit: Index(7),
            }),
        ),
        message(
            7,
            MessageBody::Vote(VoteRequest {
                last: LogId::new(Term(6), Index(42)),
                transfer: true,
            }),
        ),
        message(7, MessageBody::VoteResponse(VoteResponse { reject: true })),
        message(
            8,
            MessageBody::PreVote(VoteRequest {
                last: LogId::ZERO,
                transfer: false,
            }),
        ),
        message(
            8,
            MessageBody::PreVoteResponse(VoteResponse { reject: false }),
        ),
        message(
            5,
            MessageBody::Heartbeat(Heartbeat {
                commit: Index(9),
                read_round: Some(ReadRound::new(0)),
            }),
        ),
        message(
            5,
            MessageBody::HeartbeatResponse(HeartbeatResponse {
                read_round: Some(ReadRound::new(17)),
            }),
        ),
        message(
            6,
            MessageBody::HeartbeatResponse(HeartbeatResponse { read_round: None }),
        ),
        message(6, MessageBody::Snapshot(snapshot())),
        message(
            0,
            MessageBody::Propose(Propose {
                entries: vec![entry(0, 0, b"set x=1"), entry(0, 0, b"")],
            }),
        ),
        message(
            0,
            MessageBody::ReadIndex(ReadIndexRequest {
                context: Bytes::from_static(b"read #1"),
            }),
        ),
        message(
            5,
            MessageBody::ReadIndexResponse(ReadIndexResponse {
                index: Index(12),
                context: Bytes::from_static(b"read #1"),
            }),
        ),
        message(9, MessageBody::TimeoutNow),
        message(9, MessageBody::Wake),
        message(
            0,
            MessageBody::TransferLeader(TransferLeader { target: id(3) }),
        ),
        message(
            4,
            MessageBody::RequestSnapshot(RequestSnapshot { index: Index(21) }),
        ),
        message(
            6,
            MessageBody::Quiesce(Quiesce {
                last: LogId::new(Term(6), Index(30)),
            }),
        ),
    ]
}
