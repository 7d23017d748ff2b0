//! Property tests: decoding never panics, valid values round-trip, and the
//! decoder accepts exactly the messages `Message::validate` accepts.

mod common;

use bytes::Bytes;
use proptest::collection::{btree_set, vec};
use proptest::prelude::*;
use prost::Message as _;
use raft_core::{
    Append, AppendResponse, ConfChange, ConfChangeKind, ConfChangeSingle, ConfChangeTransition,
    ConfChangeV2, ConfState, Entry, EntryKind, HardState, Heartbeat, HeartbeatResponse, Index,
    LogId, Message, MessageBody, NodeId, Propose, Quiesce, ReadIndexRequest, ReadIndexResponse,
    ReadRound, RejectHint, RequestSnapshot, Snapshot, SnapshotMetadata, Term, TransferLeader,
    VoteRequest, VoteResponse,
};
use raft_proto::{DecodeError, MAX_TERM_OR_INDEX, wire};

// --- strategies for valid core values --------------------------------------

fn node_id() -> impl Strategy<Value = NodeId> {
    prop_oneof![
        1u64..=9,
        Just(u64::MAX),
        any::<u64>().prop_filter("non-zero", |v| *v != 0)
    ]
    .prop_map(common::id)
}

fn payload() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn entry_kind() -> impl Strategy<Value = EntryKind> {
    prop_oneof![
        Just(EntryKind::Normal),
        Just(EntryKind::ConfChange),
        Just(EntryKind::ConfChangeV2)
    ]
}

/// A term, mostly small, sometimes the largest accepted.
fn term_at_least_one() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 1u64..50, 1 => Just(MAX_TERM_OR_INDEX)]
}

/// A log position whose term is at most `max_term`: either the empty
/// position or a real one.
fn log_id(max_term: u64) -> impl Strategy<Value = LogId> {
    prop_oneof![
        Just(LogId::ZERO),
        (1..=max_term, 1u64..10_000).prop_map(|(t, i)| LogId::new(Term(t), Index(i))),
    ]
}

/// The entry at `term`/`index`, which becomes `last`.
fn after(last: &mut LogId, term: Term, index: Index, kind: EntryKind, data: Bytes) -> Entry {
    let e = Entry {
        term,
        index,
        kind,
        data,
    };
    *last = e.log_id();
    e
}

fn append(term: u64) -> impl Strategy<Value = MessageBody> {
    (
        log_id(term),
        vec((any::<bool>(), entry_kind(), payload()), 0..5),
        0u64..20_000,
    )
        .prop_map(move |(prev, raw, commit)| {
            let mut last = prev;
            let entries = raw
                .into_iter()
                .map(|(bump, kind, data)| {
                    // Terms never decrease, start at 1, and stay within the
                    // message term.
                    let t = if last.term == Term::ZERO || (bump && last.term.get() < term) {
                        last.term.next()
                    } else {
                        last.term
                    };
                    let index = last.index.next();
                    after(&mut last, t, index, kind, data)
                })
                .collect();
            MessageBody::Append(Append {
                prev,
                entries,
                commit: Index(commit),
            })
        })
}

fn append_response() -> impl Strategy<Value = MessageBody> {
    (
        0u64..1000,
        0u64..1000,
        proptest::option::of((0.0..=1.0f64, 0u64..50)),
    )
        .prop_map(|(index, commit, reject)| {
            MessageBody::AppendResponse(AppendResponse {
                index: Index(index),
                reject: reject.map(|(frac, term)| RejectHint {
                    // Anywhere between 0 and the rejected index.
                    index: Index((index as f64 * frac) as u64),
                    // 0 on the wire is no term.
                    term: (term > 0).then_some(Term(term)),
                }),
                commit: Index(commit),
            })
        })
}

fn conf_state() -> impl Strategy<Value = ConfState> {
    // Each of nodes 1..=7 takes one role that keeps the joint-consensus
    // invariants; auto_leave only when joint.
    (vec(0u8..6, 7), any::<bool>()).prop_map(|(roles, auto_leave)| {
        let mut cs = ConfState::default();
        for (n, role) in (1u64..).zip(roles) {
            let n = common::id(n);
            match role {
                1 => {
                    cs.voters.insert(n);
                }
                2 => {
                    cs.learners.insert(n);
                }
                3 => {
                    cs.voters.insert(n);
                    cs.voters_outgoing.insert(n);
                }
                4 => {
                    cs.voters_outgoing.insert(n);
                }
                5 => {
                    cs.voters_outgoing.insert(n);
                    cs.learners_next.insert(n);
                }
                _ => {}
            }
        }
        cs.auto_leave = auto_leave && cs.is_joint();
        cs
    })
}

fn snapshot(max_term: u64) -> impl Strategy<Value = Snapshot> {
    (1..=max_term, 1u64..1_000_000, conf_state(), payload()).prop_map(
        |(term, index, conf_state, data)| Snapshot {
            metadata: SnapshotMetadata {
                index: Index(index),
                term: Term(term),
                conf_state,
            },
            data,
        },
    )
}

fn vote(term: u64) -> impl Strategy<Value = VoteRequest> {
    (log_id(term), any::<bool>()).prop_map(|(last, transfer)| VoteRequest { last, transfer })
}

/// A body that needs a term, given the message's term.
fn termed_body(term: u64) -> impl Strategy<Value = MessageBody> {
    prop_oneof![
        append(term),
        append_response(),
        vote(term).prop_map(MessageBody::Vote),
        vote(term).prop_map(MessageBody::PreVote),
        any::<bool>().prop_map(|reject| MessageBody::VoteResponse(VoteResponse { reject })),
        any::<bool>().prop_map(|reject| MessageBody::PreVoteResponse(VoteResponse { reject })),
        (0u64..1000, any::<Option<u64>>()).prop_map(|(c, read_round)| MessageBody::Heartbeat(
            Heartbeat {
                commit: Index(c),
                read_round: read_round.map(ReadRound::new)
            }
        )),
        any::<Option<u64>>().prop_map(|read_round| {
            MessageBody::HeartbeatResponse(HeartbeatResponse {
                read_round: read_round.map(ReadRound::new),
            })
        }),
        snapshot(term).prop_map(MessageBody::Snapshot),
        (1u64..1000, payload()).prop_map(|(i, context)| {
            MessageBody::ReadIndexResponse(ReadIndexResponse {
                index: Index(i),
                context,
            })
        }),
        Just(MessageBody::TimeoutNow),
        Just(MessageBody::Wake),
        (1u64..1000)
            .prop_map(|i| MessageBody::RequestSnapshot(RequestSnapshot { index: Index(i) })),
        (1u64..1000).prop_map(move |i| MessageBody::Quiesce(Quiesce {
            last: LogId::new(Term(term), Index(i))
        })),
    ]
}

/// A body of the term-less forwarded requests.
fn termless_body() -> impl Strategy<Value = MessageBody> {
    prop_oneof![
        vec((0u64..5, 0u64..5, entry_kind(), payload()), 1..4).prop_map(|raw| {
            MessageBody::Propose(Propose {
                entries: raw
                    .into_iter()
                    .map(|(term, index, kind, data)| Entry {
                        term: Term(term),
                        index: Index(index),
                        kind,
                        data,
                    })
                    .collect(),
            })
        }),
        payload().prop_map(|context| MessageBody::ReadIndex(ReadIndexRequest { context })),
        node_id().prop_map(|target| MessageBody::TransferLeader(TransferLeader { target })),
    ]
}

fn valid_message() -> impl Strategy<Value = Message> {
    let body = prop_oneof![
        3 => term_at_least_one().prop_flat_map(|t| (Just(t), termed_body(t))),
        1 => termless_body().prop_map(|b| (0, b)),
        1 => Just((0, MessageBody::PreVoteResponse(VoteResponse { reject: true }))),
    ];
    (node_id(), node_id(), body)
        .prop_filter("distinct ends", |(from, to, _)| from != to)
        .prop_map(|(from, to, (term, body))| Message {
            from,
            to,
            term: Term(term),
            body,
        })
}

fn conf_change_kind() -> impl Strategy<Value = ConfChangeKind> {
    prop_oneof![
        Just(ConfChangeKind::AddNode),
        Just(ConfChangeKind::RemoveNode),
        Just(ConfChangeKind::AddLearnerNode),
        Just(ConfChangeKind::AddWitness)
    ]
}

fn conf_change_v2() -> impl Strategy<Value = ConfChangeV2> {
    (
        prop_oneof![
            Just(ConfChangeTransition::Auto),
            Just(ConfChangeTransition::JointImplicit),
            Just(ConfChangeTransition::JointExplicit)
        ],
        vec((conf_change_kind(), node_id()), 0..5),
        payload(),
    )
        .prop_map(|(transition, changes, context)| ConfChangeV2 {
            transition,
            changes: changes
                .into_iter()
                .map(|(kind, node_id)| ConfChangeSingle { kind, node_id })
                .collect(),
            context,
        })
}

// --- strategies for any core message, valid or not ---------------------------

/// A term or index: small, or at the bound, or just past it.
fn loose_counter() -> impl Strategy<Value = u64> {
    prop_oneof![16 => 0u64..6, 1 => Just(MAX_TERM_OR_INDEX), 1 => Just(MAX_TERM_OR_INDEX + 1)]
}

/// Any pair, including the ones no log can hold.
fn loose_log_id() -> impl Strategy<Value = LogId> {
    (loose_counter(), loose_counter()).prop_map(|(t, i)| LogId::new(Term(t), Index(i)))
}

/// The entries of an append after `prev`: each mostly one index and the
/// same or a higher term after the one before, sometimes not.
fn loose_append() -> impl Strategy<Value = MessageBody> {
    let index_step = prop_oneof![6 => Just(1u64), 1 => Just(0), 1 => Just(2)];
    let term_step = prop_oneof![4 => Just(0i64), 2 => Just(1), 1 => Just(-1)];
    (
        loose_log_id(),
        vec((index_step, term_step, entry_kind()), 0..4),
        loose_counter(),
    )
        .prop_map(|(prev, steps, commit)| {
            let mut last = prev;
            let entries = steps
                .into_iter()
                .map(|(di, dt, kind)| {
                    let term = Term(last.term.get().saturating_add_signed(dt));
                    let index = Index(last.index.get().saturating_add(di));
                    after(&mut last, term, index, kind, Bytes::new())
                })
                .collect();
            MessageBody::Append(Append {
                prev,
                entries,
                commit: Index(commit),
            })
        })
}

/// Forwarded entries: any term and index.
fn loose_entries() -> impl Strategy<Value = Vec<Entry>> {
    vec((loose_counter(), loose_counter(), entry_kind()), 0..4).prop_map(|raw| {
        raw.into_iter()
            .map(|(term, index, kind)| Entry {
                term: Term(term),
                index: Index(index),
                kind,
                data: Bytes::new(),
            })
            .collect()
    })
}

/// Any four sets of nodes 1..=4, so the membership rules can break.
fn loose_conf_state() -> impl Strategy<Value = ConfState> {
    let set = || btree_set((1u64..5).prop_map(common::id), 0..3);
    (set(), set(), set(), set(), any::<bool>(), set()).prop_map(
        |(voters, learners, voters_outgoing, learners_next, auto_leave, witnesses)| ConfState {
            voters,
            learners,
            voters_outgoing,
            learners_next,
            auto_leave,
            witnesses,
        },
    )
}

/// A body of any kind whose terms, indexes and positions are drawn
/// without regard to the rules.
fn loose_body() -> impl Strategy<Value = MessageBody> {
    let c = loose_counter;
    prop_oneof![
        4 => loose_append(),
        1 => (c(), proptest::option::of((c(), c())), c()).prop_map(|(index, hint, commit)| {
            MessageBody::AppendResponse(AppendResponse {
                index: Index(index),
                reject: hint.map(|(i, t)| RejectHint {
                    index: Index(i),
                    term: (t > 0).then_some(Term(t)),
                }),
                commit: Index(commit),
            })
        }),
        1 => (loose_log_id(), any::<bool>())
            .prop_map(|(last, transfer)| MessageBody::Vote(VoteRequest { last, transfer })),
        1 => (loose_log_id(), any::<bool>())
            .prop_map(|(last, transfer)| MessageBody::PreVote(VoteRequest { last, transfer })),
        1 => any::<bool>().prop_map(|reject| MessageBody::VoteResponse(VoteResponse { reject })),
        1 => any::<bool>().prop_map(|reject| MessageBody::PreVoteResponse(VoteResponse { reject })),
        1 => c().prop_map(|commit| MessageBody::Heartbeat(Heartbeat {
            commit: Index(commit),
            read_round: None
        })),
        2 => (loose_log_id(), loose_conf_state()).prop_map(|(at, conf_state)| {
            MessageBody::Snapshot(Snapshot {
                metadata: SnapshotMetadata {
                    index: at.index,
                    term: at.term,
                    conf_state,
                },
                data: Bytes::new(),
            })
        }),
        1 => loose_entries().prop_map(|entries| MessageBody::Propose(Propose { entries })),
        1 => c().prop_map(|index| MessageBody::ReadIndexResponse(ReadIndexResponse {
            index: Index(index),
            context: Bytes::new()
        })),
        1 => Just(MessageBody::ReadIndex(ReadIndexRequest {
            context: Bytes::new()
        })),
        1 => Just(MessageBody::TimeoutNow),
        1 => (1u64..4).prop_map(|t| MessageBody::TransferLeader(TransferLeader {
            target: common::id(t)
        })),
        1 => c().prop_map(|index| MessageBody::RequestSnapshot(RequestSnapshot {
            index: Index(index)
        })),
    ]
}

/// A message of any kind from one of nodes 1..=3 to another (sometimes
/// itself), mostly with a term where its kind has one (sometimes any
/// term), breaking any rule or none.
fn loose_message() -> impl Strategy<Value = Message> {
    (
        1u64..4,
        prop_oneof![5 => 1u64..3, 1 => Just(0)],
        proptest::option::weighted(0.2, loose_counter()),
        1u64..6,
        loose_body(),
    )
        .prop_map(|(from, offset, any_term, term, body)| {
            let forwarded = matches!(
                body,
                MessageBody::Propose(_)
                    | MessageBody::ReadIndex(_)
                    | MessageBody::TransferLeader(_)
            );
            let natural = if forwarded { 0 } else { term };
            Message {
                from: common::id(from),
                to: common::id((from - 1 + offset) % 3 + 1),
                term: Term(any_term.unwrap_or(natural)),
                body,
            }
        })
}

// --- mutation of wire messages -----------------------------------------------

/// One field of a wire message set to an arbitrary small value.
#[derive(Debug, Clone)]
enum Mutation {
    Type(i32),
    From(u64),
    To(u64),
    Term(u64),
    LogTerm(u64),
    Index(u64),
    Commit(u64),
    Reject(bool),
    HintIndex(u64),
    HintTerm(u64),
    Transfer(bool),
    ReadRound(Option<u64>),
    Context(Vec<u8>),
    Target(u64),
    DropSnapshot,
    DropEntry(usize),
    EntryTerm(usize, u64),
    EntryIndex(usize, u64),
    EntryType(usize, i32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let small = || prop_oneof![0u64..20, Just(MAX_TERM_OR_INDEX), Just(u64::MAX)];
    prop_oneof![
        (0i32..17).prop_map(Mutation::Type),
        small().prop_map(Mutation::From),
        small().prop_map(Mutation::To),
        small().prop_map(Mutation::Term),
        small().prop_map(Mutation::LogTerm),
        small().prop_map(Mutation::Index),
        small().prop_map(Mutation::Commit),
        any::<bool>().prop_map(Mutation::Reject),
        small().prop_map(Mutation::HintIndex),
        small().prop_map(Mutation::HintTerm),
        any::<bool>().prop_map(Mutation::Transfer),
        proptest::option::of(small()).prop_map(Mutation::ReadRound),
        vec(any::<u8>(), 0..3).prop_map(Mutation::Context),
        small().prop_map(Mutation::Target),
        Just(Mutation::DropSnapshot),
        (0usize..5).prop_map(Mutation::DropEntry),
        (0usize..5, small()).prop_map(|(i, v)| Mutation::EntryTerm(i, v)),
        (0usize..5, small()).prop_map(|(i, v)| Mutation::EntryIndex(i, v)),
        (0usize..5, 0i32..5).prop_map(|(i, v)| Mutation::EntryType(i, v)),
    ]
}

fn apply(w: &mut wire::Message, m: Mutation) {
    let n = w.entries.len();
    match m {
        Mutation::Type(v) => w.r#type = v,
        Mutation::From(v) => w.from = v,
        Mutation::To(v) => w.to = v,
        Mutation::Term(v) => w.term = v,
        Mutation::LogTerm(v) => w.log_term = v,
        Mutation::Index(v) => w.index = v,
        Mutation::Commit(v) => w.commit = v,
        Mutation::Reject(v) => w.reject = v,
        Mutation::HintIndex(v) => w.reject_hint_index = v,
        Mutation::HintTerm(v) => w.reject_hint_term = v,
        Mutation::Transfer(v) => w.transfer = v,
        Mutation::ReadRound(v) => w.read_round = v,
        Mutation::Context(v) => w.context = Bytes::from(v),
        Mutation::Target(v) => w.transfer_target = v,
        Mutation::DropSnapshot => w.snapshot = None,
        Mutation::DropEntry(i) if i < n => {
            w.entries.remove(i);
        }
        Mutation::EntryTerm(i, v) if i < n => w.entries[i].term = v,
        Mutation::EntryIndex(i, v) if i < n => w.entries[i].index = v,
        Mutation::EntryType(i, v) if i < n => w.entries[i].r#type = v,
        Mutation::DropEntry(_)
        | Mutation::EntryTerm(..)
        | Mutation::EntryIndex(..)
        | Mutation::EntryType(..) => {}
    }
}

/// Puts a wire message's membership lists in the order the encoder writes
/// them (sorted), the only freedom the decoder allows.
fn sort_lists(w: &mut wire::Message) {
    if let Some(cs) = w
        .snapshot
        .as_mut()
        .and_then(|s| s.metadata.as_mut())
        .and_then(|m| m.conf_state.as_mut())
    {
        for list in [
            &mut cs.voters,
            &mut cs.learners,
            &mut cs.voters_outgoing,
            &mut cs.learners_next,
        ] {
            list.sort_unstable();
        }
    }
}

/// A valid message's wire form with one or two fields changed.
fn mutated_wire_message() -> impl Strategy<Value = wire::Message> {
    (valid_message(), vec(mutation(), 1..3)).prop_map(|(message, mutations)| {
        let mut w = wire::Message::from(&message);
        for m in mutations {
            apply(&mut w, m);
        }
        w
    })
}

/// Mostly the field's default (what a kind that does not use it must
/// hold), sometimes a value from `s`.
fn mostly_default<T: Default + std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    prop_oneof![2 => Just(T::default()), 1 => s].boxed()
}

fn raw_entry() -> impl Strategy<Value = wire::Entry> {
    (0i32..4, loose_counter(), loose_counter()).prop_map(|(r#type, term, index)| wire::Entry {
        r#type,
        term,
        index,
        data: Bytes::new(),
    })
}

fn raw_snapshot() -> impl Strategy<Value = wire::Snapshot> {
    let ids = || vec(0u64..5, 0..3);
    (
        loose_counter(),
        loose_counter(),
        (ids(), ids(), ids(), ids(), any::<bool>(), ids()),
    )
        .prop_map(
            |(term, index, (voters, learners, outgoing, next, auto_leave, witnesses))| {
                wire::Snapshot {
                    metadata: Some(wire::SnapshotMetadata {
                        conf_state: Some(wire::ConfState {
                            voters,
                            learners,
                            voters_outgoing: outgoing,
                            learners_next: next,
                            auto_leave,
                            witnesses,
                        }),
                        index,
                        term,
                    }),
                    data: Bytes::new(),
                }
            },
        )
}

/// A wire message built field by field from a few values each, with no
/// regard to its kind.
fn raw_wire_message() -> impl Strategy<Value = wire::Message> {
    let c = || mostly_default(loose_counter());
    let envelope = (0i32..16, 0u64..4, 0u64..4, loose_counter());
    let position = (c(), c(), c(), mostly_default(any::<bool>()), c(), c());
    let rest = (
        mostly_default(vec(raw_entry(), 1..4)),
        mostly_default(any::<bool>()),
        mostly_default(proptest::option::of(0u64..3)),
        mostly_default(proptest::option::of(raw_snapshot())),
        mostly_default(vec(any::<u8>(), 1..3)),
        mostly_default(0u64..4),
    );
    (envelope, position, rest).prop_map(
        |(
            (r#type, from, to, term),
            (log_term, index, commit, reject, reject_hint_index, reject_hint_term),
            (entries, transfer, read_round, snapshot, context, transfer_target),
        )| wire::Message {
            r#type,
            from,
            to,
            term,
            log_term,
            index,
            entries,
            commit,
            reject,
            reject_hint_index,
            reject_hint_term,
            transfer,
            read_round,
            snapshot,
            context: Bytes::from(context),
            transfer_target,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoding_arbitrary_bytes_as_a_message_never_panics(bytes in vec(any::<u8>(), 0..512)) {
        let _ = raft_proto::decode_message(&bytes);
        let _ = raft_proto::decode_message_bytes(Bytes::from(bytes));
    }

    #[test]
    fn a_group_message_round_trips_and_no_plain_decoder_accepts_it(
        message in valid_message(),
        group in any::<u64>(),
    ) {
        let mut buf = bytes::BytesMut::new();
        raft_proto::encode_group_message_into(raft_core::GroupId(group), &message, &mut buf);
        let bytes = buf.freeze();
        let decoded = raft_proto::decode_group_message_bytes(bytes.clone());
        prop_assert_eq!(decoded, Ok((raft_core::GroupId(group), message.clone())));
        // A receiver that predates groups refuses it: never misroutes it.
        prop_assert!(raft_proto::decode_message_bytes(bytes).is_err());
        // And a plain message is no group message either.
        let plain = raft_proto::encode_message(&message);
        prop_assert!(raft_proto::decode_group_message_bytes(plain).is_err());
    }

    #[test]
    fn decoding_arbitrary_bytes_as_a_group_message_never_panics(bytes in vec(any::<u8>(), 0..512)) {
        let _ = raft_proto::decode_group_message_bytes(Bytes::from(bytes));
    }

    #[test]
    fn decoding_arbitrary_bytes_as_a_batch_never_panics(bytes in vec(any::<u8>(), 0..512)) {
        let _ = raft_proto::decode_batch(&bytes);
        let _ = raft_proto::decode_batch_bytes(Bytes::from(bytes));
    }

    #[test]
    fn decoding_arbitrary_bytes_as_any_record_never_panics(bytes in vec(any::<u8>(), 0..256)) {
        let _ = raft_proto::decode_entry(&bytes);
        let _ = raft_proto::decode_hard_state(&bytes);
        let _ = raft_proto::decode_conf_state(&bytes);
        let _ = raft_proto::decode_conf_change(&bytes);
        let _ = raft_proto::decode_conf_change_v2(&bytes);
        let _ = raft_proto::decode_snapshot_metadata(&bytes);
    }

    #[test]
    fn corrupting_a_valid_encoding_never_panics(
        message in valid_message(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = raft_proto::encode_message(&message).to_vec();
        for (at, value) in flips {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
        }
        let _ = raft_proto::decode_message(&bytes);
    }

    #[test]
    fn valid_messages_round_trip_through_bytes(message in valid_message()) {
        prop_assert_eq!(message.validate(), Ok(()));
        let bytes = raft_proto::encode_message(&message);
        prop_assert_eq!(raft_proto::decode_message(&bytes), Ok(message.clone()));
        prop_assert_eq!(raft_proto::decode_message_bytes(bytes), Ok(message));
    }

    #[test]
    fn valid_message_batches_round_trip_through_bytes(messages in vec(valid_message(), 0..6)) {
        let bytes = raft_proto::encode_batch(&messages);
        prop_assert_eq!(raft_proto::decode_batch_bytes(bytes), Ok(messages));
    }

    #[test]
    fn a_mutated_message_is_rejected_or_has_exactly_one_wire_form(
        mut w in mutated_wire_message(),
    ) {
        if let Ok(decoded) = raft_proto::decode_message(&w.encode_to_vec()) {
            let mut again = wire::Message::from(&decoded);
            sort_lists(&mut w);
            sort_lists(&mut again);
            prop_assert_eq!(again, w);
        }
    }

    #[test]
    fn a_message_the_decoder_accepts_is_one_validate_accepts(
        w in prop_oneof![
            mutated_wire_message(),
            loose_message().prop_map(|m| wire::Message::from(&m)),
            raw_wire_message(),
        ],
    ) {
        // The decoder never hands out a message `RawNode::step` refuses.
        if let Ok(m) = raft_proto::decode_message(&w.encode_to_vec()) {
            prop_assert_eq!(m.validate(), Ok(()));
        }
    }

    #[test]
    fn an_encoded_message_decodes_back_exactly_when_validate_accepts_it(
        message in prop_oneof![valid_message(), loose_message()],
    ) {
        let decoded = raft_proto::decode_message(&raft_proto::encode_message(&message));
        match message.validate() {
            Ok(()) => prop_assert_eq!(decoded, Ok(message)),
            Err(rule) => match decoded {
                // Past the wire checks, the verdict is validate's, unchanged.
                Err(DecodeError::Invalid(found)) => prop_assert_eq!(found, rule),
                // Out-of-range values and a broken snapshot are refused by
                // the wire checks first, which validate also refuses.
                Err(_) => {}
                Ok(m) => prop_assert!(false, "decoded {:?}, which breaks {:?}", m, rule),
            },
        }
    }

    #[test]
    fn valid_conf_changes_round_trip(kind in conf_change_kind(), node in node_id(), context in payload()) {
        let change = ConfChange { kind, node_id: node, context };
        let bytes = raft_proto::encode_conf_change(&change);
        prop_assert_eq!(raft_proto::decode_conf_change(&bytes), Ok(change));
    }

    #[test]
    fn valid_conf_changes_v2_round_trip(change in conf_change_v2()) {
        let bytes = raft_proto::encode_conf_change_v2(&change);
        prop_assert_eq!(raft_proto::decode_conf_change_v2(&bytes), Ok(change));
    }

    #[test]
    fn valid_snapshot_metadata_round_trips(snapshot in snapshot(MAX_TERM_OR_INDEX)) {
        let bytes = raft_proto::encode_snapshot_metadata(&snapshot.metadata);
        prop_assert_eq!(raft_proto::decode_snapshot_metadata(&bytes), Ok(snapshot.metadata));
    }

    #[test]
    fn valid_hard_states_round_trip(
        term in 1..=MAX_TERM_OR_INDEX,
        vote in proptest::option::of(node_id()),
        commit in 0..=MAX_TERM_OR_INDEX,
    ) {
        let state = HardState { term: Term(term), vote, commit: Index(commit) };
        let bytes = raft_proto::encode_hard_state(&state);
        prop_assert_eq!(raft_proto::decode_hard_state(&bytes), Ok(state));
    }

    #[test]
    fn wire_records_that_decode_re_encode_to_an_equal_record(bytes in vec(any::<u8>(), 0..64)) {
        // Any ConfState that passes validation encodes back to the same set
        // of ids (sorted), so decoding is a function of the meaning alone.
        if let Ok(cs) = raft_proto::decode_conf_state(&bytes) {
            let again = raft_proto::decode_conf_state(&raft_proto::encode_conf_state(&cs));
            prop_assert_eq!(again, Ok(cs));
        }
        if let Ok(w) = wire::Message::decode(bytes.as_slice())
            && let Ok(m) = Message::try_from(w)
        {
            prop_assert_eq!(raft_proto::decode_message(&raft_proto::encode_message(&m)), Ok(m));
        }
    }
}
