//! Arbitrary messages, valid or not, stepped into a node in every role:
//! nothing panics (debug builds check every assertion, release builds every
//! overflow through the invariants below; CI runs both), a refused message
//! changes nothing, and what is accepted keeps the node's invariants. A
//! message `Message::validate` refuses can therefore never make a node
//! diverge from its leader. (A well-formed message forged under a member's
//! id is another matter: Raft trusts its peers, so authenticate them.)

use bytes::Bytes;
use proptest::prelude::*;
use raft_core::{
    Append, AppendResponse, ConfState, Config, Entry, EntryKind, Heartbeat, HeartbeatResponse,
    Index, LogId, MemoryStorage, Message, MessageBody, NodeId, Propose, Quiesce, RawNode,
    ReadIndexRequest, ReadIndexResponse, ReadRound, RejectHint, RequestSnapshot, Snapshot,
    SnapshotMetadata, Status, StepError, Term, TransferLeader, VoteRequest, VoteResponse,
};

fn id(n: u64) -> NodeId {
    NodeId::new(n).expect("non-zero")
}

/// Values where arithmetic goes wrong, and small ones where the protocol
/// does something.
fn number() -> impl Strategy<Value = u64> {
    let max = Term::MAX.get();
    let jump = Term::MAX_JUMP;
    prop_oneof![
        8 => 0u64..8,
        1 => prop_oneof![
            Just(u64::MAX),
            Just(u64::MAX - 1),
            Just(max),
            Just(max - 1),
            Just(max + 1),
            Just(jump),
            Just(jump + 1),
            Just(jump + 2),
            any::<u64>(),
        ],
    ]
}

fn log_id() -> impl Strategy<Value = LogId> {
    (number(), number()).prop_map(|(t, i)| LogId::new(Term(t), Index(i)))
}

fn entry() -> impl Strategy<Value = Entry> {
    let kind = prop_oneof![
        Just(EntryKind::Normal),
        Just(EntryKind::ConfChange),
        Just(EntryKind::ConfChangeV2)
    ];
    (
        number(),
        number(),
        kind,
        proptest::collection::vec(any::<u8>(), 0..6),
    )
        .prop_map(|(t, i, kind, data)| Entry {
            term: Term(t),
            index: Index(i),
            kind,
            data: Bytes::from(data),
        })
}

/// Entries that follow `prev` one by one (so appends get past validation
/// often), with a term that may or may not stay valid.
fn consecutive(prev: LogId, n: usize, bump: u64) -> Vec<Entry> {
    (0..n as u64)
        .map(|k| {
            let term = prev
                .term
                .get()
                .max(1)
                .saturating_add(if k == 1 { bump } else { 0 });
            Entry::new(
                Term(term),
                Index(prev.index.get().wrapping_add(k + 1)),
                Bytes::new(),
            )
        })
        .collect()
}

fn entries() -> impl Strategy<Value = (LogId, Vec<Entry>)> {
    prop_oneof![
        (log_id(), proptest::collection::vec(entry(), 0..4)),
        (log_id(), 0usize..4, 0u64..3)
            .prop_map(|(prev, n, bump)| (prev, consecutive(prev, n, bump))),
    ]
}

fn ids() -> impl Strategy<Value = std::collections::BTreeSet<NodeId>> {
    proptest::collection::btree_set((1u64..6).prop_map(id), 0..4)
}

fn conf_state() -> impl Strategy<Value = ConfState> {
    (ids(), ids(), ids(), ids(), any::<bool>(), ids()).prop_map(|(v, l, vo, ln, auto_leave, w)| {
        ConfState {
            voters: v,
            learners: l,
            voters_outgoing: vo,
            learners_next: ln,
            auto_leave,
            witnesses: w,
        }
    })
}

fn body() -> impl Strategy<Value = MessageBody> {
    let hint = proptest::option::of(log_id().prop_map(|h| RejectHint {
        index: h.index,
        term: Some(h.term),
    }));
    prop_oneof![
        (entries(), number()).prop_map(|((prev, entries), c)| MessageBody::Append(Append {
            prev,
            entries,
            commit: Index(c)
        })),
        (number(), hint, number()).prop_map(|(i, reject, c)| {
            MessageBody::AppendResponse(AppendResponse {
                index: Index(i),
                reject,
                commit: Index(c),
            })
        }),
        (log_id(), any::<bool>())
            .prop_map(|(last, transfer)| MessageBody::Vote(VoteRequest { last, transfer })),
        (log_id(), any::<bool>())
            .prop_map(|(last, transfer)| MessageBody::PreVote(VoteRequest { last, transfer })),
        any::<bool>().prop_map(|reject| MessageBody::VoteResponse(VoteResponse { reject })),
        any::<bool>().prop_map(|reject| MessageBody::PreVoteResponse(VoteResponse { reject })),
        (number(), proptest::option::of(number())).prop_map(|(c, r)| MessageBody::Heartbeat(
            Heartbeat {
                commit: Index(c),
                read_round: r.map(ReadRound::new)
            }
        )),
        proptest::option::of(number()).prop_map(|r| MessageBody::HeartbeatResponse(
            HeartbeatResponse {
                read_round: r.map(ReadRound::new)
            }
        )),
        (log_id(), conf_state()).prop_map(|(at, conf_state)| {
            MessageBody::Snapshot(Snapshot {
                metadata: SnapshotMetadata {
                    index: at.index,
                    term: at.term,
                    conf_state,
                },
                data: Bytes::from_static(b"snap"),
            })
        }),
        proptest::collection::vec(entry(), 0..3)
            .prop_map(|entries| MessageBody::Propose(Propose { entries })),
        Just(MessageBody::ReadIndex(ReadIndexRequest {
            context: Bytes::from_static(b"r")
        })),
        number().prop_map(|i| MessageBody::ReadIndexResponse(ReadIndexResponse {
            index: Index(i),
            context: Bytes::new()
        })),
        Just(MessageBody::TimeoutNow),
        Just(MessageBody::Wake),
        (1u64..6).prop_map(|t| MessageBody::TransferLeader(TransferLeader { target: id(t) })),
        number().prop_map(|i| MessageBody::RequestSnapshot(RequestSnapshot { index: Index(i) })),
        log_id().prop_map(|last| MessageBody::Quiesce(Quiesce { last })),
    ]
}

/// Handles every Ready of `node`, as an application would.
fn drain(node: &mut RawNode<MemoryStorage>, storage: &MemoryStorage) {
    while node.has_ready() {
        let rd = node.ready().expect("ready");
        storage.persist(&rd).expect("persist");
        for e in &rd.committed_entries {
            if let Ok(Some(cc)) = raft_core::AnyConfChange::from_entry(e)
                && let Ok(cs) = node.apply_conf_change(&cc)
            {
                storage.set_conf_state(cs);
            }
        }
        node.advance().expect("advance");
    }
}

/// Node 1 of {1, 2, 3} as a follower (0), candidate (1) or leader (2).
fn node_in_role(role: u8, pre_vote: bool) -> (RawNode<MemoryStorage>, MemoryStorage) {
    let storage = MemoryStorage::with_conf_state(ConfState::with_voters([id(1), id(2), id(3)]));
    let mut cfg = Config::new(id(1));
    cfg.pre_vote = pre_vote && role == 0;
    let mut node = RawNode::new(cfg, storage.clone()).expect("node");
    if role >= 1 {
        node.campaign().expect("campaign");
        drain(&mut node, &storage);
    }
    if role == 2 {
        let grant = Message {
            from: id(2),
            to: id(1),
            term: node.status().hard_state.term,
            body: MessageBody::VoteResponse(VoteResponse { reject: false }),
        };
        node.step(grant).expect("vote");
        drain(&mut node, &storage);
        node.propose(&b"x"[..]).expect("propose");
        drain(&mut node, &storage);
    }
    (node, storage)
}

/// What must hold after any input.
fn assert_invariants(before: &Status, after: &Status) {
    let (b, a) = (&before.hard_state, &after.hard_state);
    assert!(a.term >= b.term, "term went back: {b:?} -> {a:?}");
    assert!(a.term <= Term::MAX, "term out of range: {a:?}");
    assert!(a.commit >= b.commit, "commit went back: {b:?} -> {a:?}");
    assert!(
        a.commit <= after.last_index,
        "commit beyond the log: {after:?}"
    );
    assert!(
        after.last_index <= Index::MAX,
        "index out of range: {after:?}"
    );
    assert!(
        after.applied <= a.commit,
        "applied beyond commit: {after:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_messages_never_panic_and_refused_ones_change_nothing(
        role in 0u8..3,
        pre_vote in any::<bool>(),
        msgs in proptest::collection::vec((1u64..6, 1u64..3, number(), body(), 0u8..3), 1..24),
    ) {
        let (mut node, storage) = node_in_role(role, pre_vote);
        for (from, to, term, body, ticks) in msgs {
            let m = Message { from: id(from), to: id(to), term: Term(term), body };
            let invalid = m.validate().is_err();
            let before = node.status();
            let had_ready = node.has_ready();
            let r = node.step(m);
            let after = node.status();
            if invalid {
                prop_assert!(
                    matches!(r, Err(StepError::InvalidMessage { .. } | StepError::WrongRecipient { .. })),
                    "an invalid message was not refused: {r:?}"
                );
            }
            if matches!(
                r,
                Err(StepError::InvalidMessage { .. }
                    | StepError::TermTooFarAhead { .. }
                    | StepError::WrongRecipient { .. })
            ) {
                prop_assert_eq!(&before, &after, "a refused message changed the node");
                prop_assert_eq!(had_ready, node.has_ready(), "a refused message made work");
            }
            assert_invariants(&before, &after);
            for _ in 0..ticks {
                let before = node.status();
                let _ = node.tick();
                assert_invariants(&before, &node.status());
            }
            drain(&mut node, &storage);
        }
    }
}
