//! Encoding then decoding gives back the original value.

mod common;

use bytes::{Bytes, BytesMut};
use common::{append, entry, every_kind, id, joint_conf_state, message, snapshot};
use prost::Message as _;
use raft_core::{
    ConfChange, ConfChangeKind, ConfChangeSingle, ConfChangeTransition, ConfChangeV2, ConfState,
    EntryKind, HardState, Index, InvalidConfState, InvalidMessage, Message, MessageBody,
    SnapshotMetadata, Term,
};
use raft_proto::{DecodeError, wire};

/// core -> wire -> bytes -> wire -> core, through every decoding entry point.
fn assert_round_trips(original: &Message) {
    let wire_form = wire::Message::from(original);
    let bytes = wire_form.encode_to_vec();
    let wire_again = wire::Message::decode(bytes.as_slice()).expect("prost decodes its own output");
    assert_eq!(wire_again, wire_form);
    assert_eq!(Message::try_from(wire_again).as_ref(), Ok(original));

    assert_eq!(raft_proto::encode_message(original), bytes);
    assert_eq!(raft_proto::decode_message(&bytes).as_ref(), Ok(original));
    assert_eq!(
        raft_proto::decode_message_bytes(Bytes::from(bytes)).as_ref(),
        Ok(original)
    );
}

fn the_kind(name: &str) -> Message {
    every_kind()
        .into_iter()
        .find(|m| m.body.kind_name() == name)
        .expect("every_kind has one of each")
}

#[test]
fn sample_messages_cover_every_message_kind() {
    let mut names: Vec<_> = every_kind().iter().map(|m| m.body.kind_name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 17);
}

#[test]
fn append_round_trips() {
    assert_round_trips(&the_kind("Append"));
}

#[test]
fn append_probe_without_entries_from_the_start_of_the_log_round_trips() {
    assert_round_trips(&message(
        1,
        MessageBody::Append(raft_core::Append {
            prev: raft_core::LogId::ZERO,
            entries: Vec::new(),
            commit: Index(0),
        }),
    ));
}

#[test]
fn append_response_round_trips_both_when_accepting_and_rejecting() {
    let responses: Vec<_> = every_kind()
        .into_iter()
        .filter(|m| m.body.kind_name() == "AppendResponse")
        .collect();
    assert_eq!(responses.len(), 2);
    responses.iter().for_each(assert_round_trips);
}

#[test]
fn vote_round_trips() {
    assert_round_trips(&the_kind("Vote"));
}

#[test]
fn vote_response_round_trips() {
    assert_round_trips(&the_kind("VoteResponse"));
}

#[test]
fn pre_vote_round_trips() {
    assert_round_trips(&the_kind("PreVote"));
}

#[test]
fn pre_vote_response_round_trips() {
    assert_round_trips(&the_kind("PreVoteResponse"));
}

#[test]
fn heartbeat_round_trips_and_keeps_a_read_round_of_zero() {
    let heartbeat = the_kind("Heartbeat");
    assert!(matches!(
        heartbeat.body,
        MessageBody::Heartbeat(raft_core::Heartbeat {
            read_round: Some(r),
            ..
        }) if r.get() == 0
    ));
    assert_round_trips(&heartbeat);
}

#[test]
fn heartbeat_response_round_trips_with_and_without_read_round() {
    every_kind()
        .iter()
        .filter(|m| m.body.kind_name() == "HeartbeatResponse")
        .for_each(assert_round_trips);
}

#[test]
fn snapshot_round_trips() {
    assert_round_trips(&the_kind("Snapshot"));
}

#[test]
fn propose_round_trips() {
    assert_round_trips(&the_kind("Propose"));
}

#[test]
fn read_index_round_trips() {
    assert_round_trips(&the_kind("ReadIndex"));
}

#[test]
fn read_index_response_round_trips() {
    assert_round_trips(&the_kind("ReadIndexResponse"));
}

#[test]
fn timeout_now_round_trips() {
    assert_round_trips(&the_kind("TimeoutNow"));
}

#[test]
fn transfer_leader_round_trips() {
    assert_round_trips(&the_kind("TransferLeader"));
}

#[test]
fn request_snapshot_round_trips() {
    assert_round_trips(&the_kind("RequestSnapshot"));
}

#[test]
fn largest_node_ids_round_trip() {
    let mut m = append();
    m.from = id(u64::MAX);
    m.to = id(u64::MAX - 1);
    assert_round_trips(&m);
}

#[test]
fn batch_of_every_kind_round_trips_in_order() {
    let messages = every_kind();
    let bytes = raft_proto::encode_batch(&messages);
    assert_eq!(raft_proto::decode_batch(&bytes), Ok(messages.clone()));
    assert_eq!(raft_proto::decode_batch_bytes(bytes), Ok(messages));
}

#[test]
fn empty_batch_round_trips() {
    let bytes = raft_proto::encode_batch(&[]);
    assert!(bytes.is_empty());
    assert_eq!(raft_proto::decode_batch(&bytes), Ok(Vec::new()));
}

#[test]
fn encoding_into_a_buffer_appends_the_same_bytes() {
    let messages = every_kind();
    let mut buf = BytesMut::from(&b"header"[..]);
    raft_proto::encode_message_into(&messages[0], &mut buf);
    assert_eq!(&buf[..6], b"header");
    assert_eq!(&buf[6..], &raft_proto::encode_message(&messages[0])[..]);

    let mut buf = BytesMut::new();
    raft_proto::encode_batch_into(&messages, &mut buf);
    assert_eq!(buf.freeze(), raft_proto::encode_batch(&messages));
}

fn within(inner: &Bytes, outer: &Bytes) -> bool {
    let outer_range = outer.as_ptr() as usize..outer.as_ptr() as usize + outer.len();
    let start = inner.as_ptr() as usize;
    outer_range.contains(&start) && start + inner.len() <= outer_range.end
}

#[test]
fn decoding_from_bytes_shares_entry_payloads_with_the_input_buffer() {
    let input = raft_proto::encode_message(&append());
    let decoded = raft_proto::decode_message_bytes(input.clone()).expect("valid");
    let MessageBody::Append(a) = decoded.body else {
        panic!("decoded an append");
    };
    let payload = &a.entries[0].data;
    assert_eq!(&payload[..], b"a");
    assert!(within(payload, &input), "entry payload was copied");
}

#[test]
fn decoding_a_batch_from_bytes_shares_snapshot_data_with_the_input_buffer() {
    let input = raft_proto::encode_batch(&[message(6, MessageBody::Snapshot(snapshot()))]);
    let decoded = raft_proto::decode_batch_bytes(input.clone()).expect("valid");
    let MessageBody::Snapshot(s) = &decoded[0].body else {
        panic!("decoded a snapshot");
    };
    assert!(within(&s.data, &input), "snapshot data was copied");
}

#[test]
fn conf_change_round_trips() {
    for kind in [
        ConfChangeKind::AddNode,
        ConfChangeKind::RemoveNode,
        ConfChangeKind::AddLearnerNode,
        ConfChangeKind::AddWitness,
    ] {
        let change = ConfChange {
            kind,
            node_id: id(7),
            context: Bytes::from_static(b"http://n7"),
        };
        let bytes = raft_proto::encode_conf_change(&change);
        assert_eq!(raft_proto::decode_conf_change(&bytes), Ok(change));
    }
}

#[test]
fn conf_change_v2_round_trips_for_every_transition() {
    for transition in [
        ConfChangeTransition::Auto,
        ConfChangeTransition::JointImplicit,
        ConfChangeTransition::JointExplicit,
    ] {
        let change = ConfChangeV2 {
            transition,
            changes: vec![
                ConfChangeSingle {
                    kind: ConfChangeKind::AddNode,
                    node_id: id(4),
                },
                ConfChangeSingle {
                    kind: ConfChangeKind::AddLearnerNode,
                    node_id: id(3),
                },
            ],
            context: Bytes::from_static(b"ctx"),
        };
        let bytes = raft_proto::encode_conf_change_v2(&change);
        assert_eq!(raft_proto::decode_conf_change_v2(&bytes), Ok(change));
    }
}

#[test]
fn empty_conf_change_v2_that_leaves_a_joint_state_round_trips() {
    let leave = ConfChangeV2::default();
    let bytes = raft_proto::encode_conf_change_v2(&leave);
    assert!(
        !bytes.is_empty(),
        "the Auto transition is encoded explicitly"
    );
    assert_eq!(raft_proto::decode_conf_change_v2(&bytes), Ok(leave));
}

#[test]
fn snapshot_metadata_round_trips_including_the_empty_one() {
    for metadata in [SnapshotMetadata::default(), snapshot().metadata] {
        let bytes = raft_proto::encode_snapshot_metadata(&metadata);
        assert_eq!(raft_proto::decode_snapshot_metadata(&bytes), Ok(metadata));
    }
}

#[test]
fn entries_of_every_kind_round_trip() {
    for kind in [
        EntryKind::Normal,
        EntryKind::ConfChange,
        EntryKind::ConfChangeV2,
    ] {
        let mut e = entry(3, 9, b"payload");
        e.kind = kind;
        let bytes = raft_proto::encode_entry(&e);
        assert_eq!(raft_proto::decode_entry(&bytes), Ok(e.clone()));
        assert_eq!(raft_proto::decode_entry_bytes(bytes), Ok(e));
    }
}

#[test]
fn hard_state_round_trips_with_and_without_vote() {
    for state in [
        HardState::default(),
        HardState {
            term: Term(4),
            vote: Some(id(2)),
            commit: Index(17),
        },
        HardState {
            term: Term(4),
            vote: None,
            commit: Index(17),
        },
    ] {
        let bytes = raft_proto::encode_hard_state(&state);
        assert_eq!(raft_proto::decode_hard_state(&bytes), Ok(state));
    }
}

#[test]
fn conf_state_round_trips_simple_and_joint() {
    for state in [
        ConfState::default(),
        ConfState::with_voters([id(1), id(2), id(3)]),
        joint_conf_state(),
    ] {
        let bytes = raft_proto::encode_conf_state(&state);
        assert_eq!(raft_proto::decode_conf_state(&bytes), Ok(state));
    }
}

#[test]
fn decode_errors_describe_the_problem_in_words() {
    let err = DecodeError::ValueTooLarge {
        field: "Entry.index",
        value: u64::MAX,
    };
    assert_eq!(
        err.to_string(),
        "Entry.index = 18446744073709551615 exceeds the largest accepted term or index"
    );
}

#[test]
fn broken_raft_core_rules_are_described_in_raft_core_s_words() {
    let err = DecodeError::from(InvalidMessage::EntriesNotConsecutive {
        position: 1,
        expected: Index(12),
        found: Index(14),
    });
    assert_eq!(
        err.to_string(),
        "entry #1 of the append has index 14, expected 12"
    );
    let err = DecodeError::from(InvalidConfState::AutoLeaveWithoutJoint);
    assert_eq!(
        err.to_string(),
        "auto_leave is set but the configuration is not joint"
    );
}
