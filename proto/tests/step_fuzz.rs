//! Arbitrary messages that pass the wire boundary never make raft-core
//! panic, whatever role the receiving node is in, and `step` never finds
//! one of them invalid: the decoder applied the same rules.

use bytes::Bytes;
use proptest::prelude::*;
use raft_core::{
    Append, AppendResponse, ConfState, Config, Entry, EntryKind, Heartbeat, HeartbeatResponse,
    Index, LogId, MemoryStorage, Message, MessageBody, NodeId, Propose, RawNode, ReadIndexRequest,
    ReadIndexResponse, ReadRound, RejectHint, RequestSnapshot, Snapshot, SnapshotMetadata,
    StepError, Term, TransferLeader, VoteRequest, VoteResponse,
};

fn id(n: u64) -> NodeId {
    NodeId::new(n).expect("non-zero")
}

fn log_id() -> impl Strategy<Value = LogId> {
    (0u64..6, 0u64..12).prop_map(|(t, i)| {
        if t == 0 || i == 0 {
            LogId::ZERO
        } else {
            LogId::new(Term(t), Index(i))
        }
    })
}

fn body() -> impl Strategy<Value = MessageBody> {
    let entries = (log_id(), 0usize..4, 0u64..3).prop_map(|(prev, n, bump)| {
        let mut term = prev.term.get().max(1);
        let entries = (0..n as u64)
            .map(|k| {
                if k == 1 {
                    term += bump;
                }
                Entry::new(Term(term), prev.index + (k + 1), Bytes::from_static(b"e"))
            })
            .collect::<Vec<_>>();
        (prev, entries)
    });
    prop_oneof![
        (entries, 0u64..14).prop_map(|((prev, entries), c)| MessageBody::Append(Append {
            prev,
            entries,
            commit: Index(c)
        })),
        (0u64..14, any::<bool>(), log_id(), 0u64..14).prop_map(|(i, rej, h, c)| {
            let reject = rej.then(|| RejectHint {
                index: h.index.min(Index(i)),
                term: (h.term > Term::ZERO).then_some(h.term),
            });
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
        (0u64..14, proptest::option::of(0u64..4)).prop_map(|(c, r)| MessageBody::Heartbeat(
            Heartbeat {
                commit: Index(c),
                read_round: r.map(ReadRound::new)
            }
        )),
        proptest::option::of(0u64..4).prop_map(|r| MessageBody::HeartbeatResponse(
            HeartbeatResponse {
                read_round: r.map(ReadRound::new)
            }
        )),
        (
            1u64..6,
            1u64..14,
            proptest::collection::btree_set(1u64..5, 1..4)
        )
            .prop_map(|(t, i, v)| {
                MessageBody::Snapshot(Snapshot {
                    metadata: SnapshotMetadata {
                        index: Index(i),
                        term: Term(t),
                        conf_state: ConfState::with_voters(v.into_iter().map(id)),
                    },
                    data: Bytes::from_static(b"snap"),
                })
            }),
        Just(MessageBody::Propose(Propose {
            entries: vec![Entry {
                kind: EntryKind::Normal,
                ..Entry::default()
            }]
        })),
        Just(MessageBody::ReadIndex(ReadIndexRequest {
            context: Bytes::from_static(b"r")
        })),
        (1u64..14).prop_map(|i| MessageBody::ReadIndexResponse(ReadIndexResponse {
            index: Index(i),
            context: Bytes::new()
        })),
        Just(MessageBody::TimeoutNow),
        (1u64..5).prop_map(|t| MessageBody::TransferLeader(TransferLeader { target: id(t) })),
        (0u64..14).prop_map(|i| MessageBody::RequestSnapshot(RequestSnapshot { index: Index(i) })),
    ]
}

/// A message to `to`, as it would arrive after passing the wire decoder;
/// `None` when the decoder refuses it.
fn arrive(from: u64, to: u64, term: u64, body: MessageBody) -> Option<Message> {
    let termless = matches!(
        body,
        MessageBody::Propose(_) | MessageBody::ReadIndex(_) | MessageBody::TransferLeader(_)
    );
    let term = if termless { Term::ZERO } else { Term(term) };
    let m = Message {
        from: id(from),
        to: id(to),
        term,
        body,
    };
    raft_proto::decode_message(&raft_proto::encode_message(&m)).ok()
}

/// Handles every Ready of `node`, as an application would.
fn drain(node: &mut RawNode<MemoryStorage>, storage: &MemoryStorage) {
    while node.has_ready() {
        let rd = node.ready().expect("ready");
        storage.persist(&rd).expect("persist");
        node.advance().expect("advance");
    }
}

/// Node 1 of {1, 2, 3} in a given role: 0 follower, 1 candidate, 2 leader.
fn node_in_role(role: u8) -> (RawNode<MemoryStorage>, MemoryStorage) {
    let storage = MemoryStorage::with_conf_state(ConfState::with_voters([id(1), id(2), id(3)]));
    let mut cfg = Config::new(id(1));
    cfg.pre_vote = role == 0;
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn stepping_decoded_messages_never_panics_and_never_finds_one_invalid(
        role in 0u8..3,
        msgs in proptest::collection::vec((2u64..5, 0u64..6, body(), 0u8..3), 1..24),
    ) {
        let (mut node, storage) = node_in_role(role);
        for (from, term, body, ticks) in msgs {
            if let Some(m) = arrive(from, 1, term, body) {
                // Other refusals are typed errors; the point is that nothing
                // panics.
                let stepped = node.step(m);
                prop_assert!(
                    !matches!(stepped, Err(StepError::InvalidMessage { .. })),
                    "step refused a decoded message: {:?}",
                    stepped
                );
            }
            for _ in 0..ticks {
                let _ = node.tick();
            }
            drain(&mut node, &storage);
        }
    }
}
