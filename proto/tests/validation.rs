//! Every validation rule rejects the input that breaks it, with its own error.

mod common;

use bytes::Bytes;
use common::{append, every_kind, id, joint_conf_state, message, snapshot};
use prost::Message as _;
use raft_core::{
    AppendResponse, Index, InvalidConfState, InvalidMessage, LogId, Message, MessageBody,
    RejectHint, Term, VoteRequest, VoteResponse,
};
use raft_proto::{DecodeError, DecodeLimits, MAX_TERM_OR_INDEX, wire};

fn wire_of(m: &Message) -> wire::Message {
    wire::Message::from(m)
}

/// Decodes through the byte path, as a transport would.
fn decode(w: &wire::Message) -> Result<Message, DecodeError> {
    raft_proto::decode_message(&w.encode_to_vec())
}

fn wire_append() -> wire::Message {
    wire_of(&append())
}

fn wire_kind(name: &str) -> wire::Message {
    let m = every_kind()
        .into_iter()
        .find(|m| m.body.kind_name() == name)
        .expect("every_kind has one of each");
    wire_of(&m)
}

fn wire_conf_state() -> wire::ConfState {
    wire::ConfState::from(&joint_conf_state())
}

fn decode_conf_state(w: &wire::ConfState) -> Result<raft_core::ConfState, DecodeError> {
    raft_proto::decode_conf_state(&w.encode_to_vec())
}

/// The error of an append whose entry at `position` has index `found`
/// where `expected` was due.
fn not_consecutive(position: usize, expected: u64, found: u64) -> Result<Message, DecodeError> {
    Err(DecodeError::Invalid(
        InvalidMessage::EntriesNotConsecutive {
            position,
            expected: Index(expected),
            found: Index(found),
        },
    ))
}

// --- envelope -------------------------------------------------------------

#[test]
fn message_with_unspecified_type_is_rejected() {
    let mut w = wire_kind("TimeoutNow");
    w.r#type = 0;
    assert_eq!(
        decode(&w),
        Err(DecodeError::UnspecifiedEnum {
            field: "Message.type"
        })
    );
}

#[test]
fn message_with_unknown_type_is_rejected() {
    let mut w = wire_kind("TimeoutNow");
    w.r#type = 99;
    assert_eq!(
        decode(&w),
        Err(DecodeError::UnknownEnum {
            field: "Message.type",
            value: 99
        })
    );
}

#[test]
fn message_from_node_zero_is_rejected() {
    let mut w = wire_append();
    w.from = 0;
    assert_eq!(
        decode(&w),
        Err(DecodeError::ZeroNodeId {
            field: "Message.from"
        })
    );
}

#[test]
fn message_to_node_zero_is_rejected() {
    let mut w = wire_append();
    w.to = 0;
    assert_eq!(
        decode(&w),
        Err(DecodeError::ZeroNodeId {
            field: "Message.to"
        })
    );
}

#[test]
fn message_sent_to_its_own_sender_is_rejected() {
    let mut w = wire_append();
    w.to = w.from;
    assert_eq!(
        decode(&w),
        Err(DecodeError::Invalid(InvalidMessage::SelfAddressed {
            node: id(1)
        }))
    );
}

#[test]
fn the_accepted_maximum_is_raft_core_s_largest_term_and_index() {
    assert_eq!(MAX_TERM_OR_INDEX, Term::MAX.get());
    assert_eq!(MAX_TERM_OR_INDEX, Index::MAX.get());
    assert_eq!(MAX_TERM_OR_INDEX, i64::MAX as u64);
}

#[test]
fn message_term_beyond_the_accepted_maximum_is_rejected_with_its_wire_field() {
    let mut w = wire_kind("TimeoutNow");
    w.term = Term::MAX.get() + 1;
    assert_eq!(
        decode(&w),
        Err(DecodeError::ValueTooLarge {
            field: "Message.term",
            value: Term::MAX.get() + 1
        })
    );
}

#[test]
fn message_term_at_the_accepted_maximum_is_accepted() {
    let mut w = wire_kind("TimeoutNow");
    w.term = Term::MAX.get();
    assert_eq!(decode(&w).map(|m| m.term), Ok(Term::MAX));
}

#[test]
fn heartbeat_with_term_zero_is_rejected() {
    let mut w = wire_kind("Heartbeat");
    w.term = 0;
    assert_eq!(
        decode(&w),
        Err(DecodeError::Invalid(InvalidMessage::MissingTerm {
            kind: "Heartbeat"
        }))
    );
}

#[test]
fn refused_pre_vote_from_a_node_at_term_zero_is_accepted() {
    let refusal = message(
        0,
        MessageBody::PreVoteResponse(VoteResponse { reject: true }),
    );
    assert_eq!(decode(&wire_of(&refusal)), Ok(refusal));
}

#[test]
fn granted_pre_vote_with_term_zero_is_rejected() {
    let grant = message(
        0,
        MessageBody::PreVoteResponse(VoteResponse { reject: false }),
    );
    assert_eq!(
        decode(&wire_of(&grant)),
        Err(DecodeError::Invalid(InvalidMessage::MissingTerm {
            kind: "PreVoteResponse"
        }))
    );
}

#[test]
fn vote_response_with_term_zero_is_rejected() {
    let mut w = wire_kind("VoteResponse");
    w.term = 0;
    assert_eq!(
        decode(&w),
        Err(DecodeError::Invalid(InvalidMessage::MissingTerm {
            kind: "VoteResponse"
        }))
    );
}

#[test]
fn forwarded_proposal_that_carries_a_term_is_rejected() {
    let mut w = wire_kind("Propose");
    w.term = 3;
    assert_eq!(
        decode(&w),
        Err(DecodeError::Invalid(InvalidMessage::UnexpectedTerm {
            kind: "Propose",
            term: Term(3)
        }))
    );
}

#[test]
fn forwarded_read_index_and_transfer_requests_that_carry_a_term_are_rejected() {
    for kind in ["ReadIndex", "TransferLeader"] {
        let mut w = wire_kind(kind);
        w.term = 2;
        assert_eq!(
            decode(&w),
            Err(DecodeError::Invalid(InvalidMessage::UnexpectedTerm {
                kind,
                term: Term(2)
            }))
        );
    }
}

#[test]
fn a_wire_error_is_reported_before_a_broken_message_rule() {
    // Self-addressed (a message rule) with a commit out of range (a wire
    // rule): the message is validated only once it is well-formed.
    let mut w = wire_kind("Heartbeat");
    (w.to, w.commit) = (w.from, u64::MAX);
    let wire_rule = DecodeError::ValueTooLarge {
        field: "Message.commit",
        value: u64::MAX,
    };
    assert_eq!(decode(&w), Err(wire_rule));
}

// --- fields a kind does not use --------------------------------------------

#[test]
fn vote_carrying_entries_is_rejected() {
    let mut w = wire_kind("Vote");
    w.entries = wire_append().entries;
    assert_eq!(
        decode(&w),
        Err(DecodeError::UnexpectedField {
            kind: "Vote",
            field: "Message.entries"
        })
    );
}

#[test]
fn append_carrying_a_read_round_is_rejected() {
    let mut w = wire_append();
    w.read_round = Some(0);
    assert_eq!(
        decode(&w),
        Err(DecodeError::UnexpectedField {
            kind: "Append",
            field: "Message.read_round"
        })
    );
}

#[test]
fn vote_response_carrying_a_commit_index_is_rejected() {
    let mut w = wire_kind("VoteResponse");
    w.commit = 4;
    assert_eq!(
        decode(&w),
        Err(DecodeError::UnexpectedField {
            kind: "VoteResponse",
            field: "Message.commit"
        })
    );
}

#[test]
fn timeout_now_carrying_a_snapshot_is_rejected() {
    let mut w = wire_kind("TimeoutNow");
    w.snapshot = Some(wire::Snapshot::from(&snapshot()));
    assert_eq!(
        decode(&w),
        Err(DecodeError::UnexpectedField {
            kind: "TimeoutNow",
            field: "Message.snapshot"
        })
    );
}

#[test]
fn read_index_request_carrying_an_index_is_rejected() {
    let mut w = wire_kind("ReadIndex");
    w.index = 5;
    assert_eq!(
        decode(&w),
        Err(DecodeError::UnexpectedField {
            kind: "ReadIndex",
            field: "Message.index"
        })
    );
}

#[test]
fn accepting_append_response_with_a_reject_hint_is_rejected() {
    let mut w = wire_of(&message(
        5,
        MessageBody::AppendResponse(AppendResponse {
            index: Index(13),
            reject: None,
            commit: Index(9),
        }),
    ));
    w.reject_hint_term = 2;
    assert_eq!(
        decode(&w),
        Err(DecodeError::UnexpectedField {
            kind: "AppendResponse",
            field: "Message.reject_hint_term"
        })
    );
}

// --- append entries ---------------------------------------------------------

#[test]
fn append_with_gap_in_entry_indexes_is_rejected() {
    let mut w = wire_append();
    w.entries[2].index = 14;
    assert_eq!(decode(&w), not_consecutive(2, 13, 14));
}

#[test]
fn append_whose_first_entry_does_not_follow_prev_is_rejected() {
    let mut w = wire_append();
    w.index = 9;
    assert_eq!(decode(&w), not_consecutive(0, 10, 11));
}

#[test]
fn append_with_repeated_entry_index_is_rejected() {
    let mut w = wire_append();
    w.entries[1].index = 11;
    assert_eq!(decode(&w), not_consecutive(1, 12, 11));
}

#[test]
fn append_entry_with_index_zero_is_rejected() {
    let mut w = wire_append();
    w.entries[1].index = 0;
    assert_eq!(decode(&w), not_consecutive(1, 12, 0));
}

#[test]
fn append_with_decreasing_entry_terms_is_rejected() {
    let mut w = wire_append();
    w.entries[2].term = 4;
    w.entries[1].term = 5;
    assert_eq!(
        decode(&w),
        Err(DecodeError::Invalid(InvalidMessage::EntryTermDecreasing {
            index: Index(13),
            term: Term(4),
            previous: Term(5)
        }))
    );
}

#[test]
fn append_entry_with_term_below_prev_term_is_rejected() {
    let mut w = wire_append();
    w.entries[0].term = 3;
    assert_eq!(
        decode(&w),
        Err(DecodeError::Invalid(InvalidMessage::EntryTermDecreasing {
            index: Index(11),
            term: Term(3),
            previous: Term(4)
        }))
    );
}

#[test]
fn append_entry_with_term_above_message_term_is_rejected() {
    let mut w = wire_append();
    w.entries[2].term = 6;
    assert_eq!(
        decode(&w),
        Err(DecodeError::Invalid(InvalidMessage::TermAboveMessageTerm {
            field: "Append.entries",
            term: Term(6),
            message_term: Term(5)
        }))
    );
}

#[test]
fn append_entry_with_term_zero_is_rejected() {
    let mut w = wire_append();
    w.log_term = 0;
    w.index = 0;
    for (i, e) in w.entries.iter_mut().enumerate() {
        e.index = i as u64 + 1;
        e.term = 0;
    }
    assert_eq!(
        decode(&w),
        Err(DecodeError::Invalid(InvalidMessage::InvalidLogId {
            field: "Append.entries",
            id: LogId::new(Term::ZERO, Index(1))
        }))
    );
}

#[test]
fn append_entry_with_unspecified_type_is_rejected() {
    let mut w = wire_append();
    w.entries[1].r#type = 0;
    assert_eq!(
        decode(&w),
        Err(DecodeError::UnspecifiedEnum {
            field: "Entry.type"
        })
    );
}

#[test]
fn entry_with_unknown_type_is_rejected() {
    let w = wire::Entry {
        r#type: 7,
        term: 1,
        index: 1,
        data: Bytes::new(),
    };
    assert_eq!(
        raft_proto::decode_entry(&w.encode_to_vec()),
        Err(DecodeError::UnknownEnum {
            field: "Entry.type",
            value: 7
        })
    );
}

#[test]
fn entry_index_beyond_the_accepted_maximum_is_rejected() {
    let w = wire::Entry {
        r#type: wire::EntryType::Normal as i32,
        term: 1,
        index: u64::MAX,
        data: Bytes::new(),
    };
    assert_eq!(
        raft_proto::decode_entry(&w.encode_to_vec()),
        Err(DecodeError::ValueTooLarge {
            field: "Entry.index",
            value: u64::MAX
        })
    );
}

#[test]
fn append_ending_at_the_largest_accepted_index_is_accepted() {
    let mut w = wire_append();
    w.index = Index::MAX.get() - 3;
    for (i, e) in w.entries.iter_mut().enumerate() {
        e.index = Index::MAX.get() - 2 + i as u64;
    }
    assert!(decode(&w).is_ok());
}

#[test]
fn append_with_prev_term_but_no_prev_index_is_rejected() {
    let mut w = wire_kind("Append");
    w.entries.clear();
    w.index = 0;
    assert_eq!(
        decode(&w),
        Err(DecodeError::Invalid(InvalidMessage::InvalidLogId {
            field: "Append.prev",
            id: LogId::new(Term(4), Index::ZERO)
        }))
    );
}

#[test]
fn append_with_prev_term_above_message_term_is_rejected() {
    let mut w = wire_append();
    w.entries.clear();
    w.log_term = 6;
    assert_eq!(
        decode(&w),
        Err(DecodeError::Invalid(InvalidMessage::TermAboveMessageTerm {
            field: "Append.prev",
            term: Term(6),
            message_term: Term(5)
        }))
    );
}

#[test]
fn append_commit_beyond_the_accepted_maximum_is_rejected() {
    let mut w = wire_append();
    w.commit = u64::MAX;
    assert_eq!(
        decode(&w),
        Err(DecodeError::ValueTooLarge {
            field: "Message.commit",
            value: u64::MAX
        })
    );
}

// --- other kinds --------------------------------------------------------------

#[test]
fn vote_whose_last_log_term_is_above_its_term_is_rejected() {
    let w = wire_of(&message(
        3,
        MessageBody::Vote(VoteRequest {
            last: LogId::new(Term(4), Index(8)),
            transfer: false,
        }),
    ));
    assert_eq!(
        decode(&w),
        Err(DecodeError::Invalid(InvalidMessage::TermAboveMessageTerm {
            field: "Vote.last",
            term: Term(4),
            message_term: Term(3)
        }))
    );
}

#[test]
fn pre_vote_with_last_index_but_no_last_term_is_rejected() {
    let mut w = wire_kind("PreVote");
    w.index = 8;
    assert_eq!(
        decode(&w),
        Err(DecodeError::Invalid(InvalidMessage::InvalidLogId {
            field: "PreVote.last",
            id: LogId::new(Term::ZERO, Index(8))
        }))
    );
}

#[test]
fn append_response_with_reject_hint_beyond_rejected_index_is_rejected() {
    let w = wire_of(&message(
        5,
        MessageBody::AppendResponse(AppendResponse {
            index: Index(10),
            reject: Some(RejectHint {
                index: Index(11),
                term: Some(Term(5)),
            }),
            commit: Index(3),
        }),
    ));
    assert_eq!(
        decode(&w),
        Err(DecodeError::Invalid(
            InvalidMessage::RejectHintBeyondIndex {
                hint: Index(11),
                index: Index(10)
            }
        ))
    );
}

#[test]
fn read_index_response_with_index_zero_is_rejected() {
    let mut w = wire_kind("ReadIndexResponse");
    w.index = 0;
    assert_eq!(
        decode(&w),
        Err(DecodeError::Invalid(InvalidMessage::ZeroReadIndex))
    );
}

#[test]
fn request_snapshot_with_index_zero_is_rejected() {
    let mut w = wire_kind("RequestSnapshot");
    w.index = 0;
    assert_eq!(
        decode(&w),
        Err(DecodeError::Invalid(
            InvalidMessage::ZeroSnapshotRequestIndex
        ))
    );
}

#[test]
fn request_snapshot_with_a_commit_is_rejected() {
    let mut w = wire_kind("RequestSnapshot");
    w.commit = 3;
    assert!(matches!(
        decode(&w),
        Err(DecodeError::UnexpectedField {
            field: "Message.commit",
            ..
        })
    ));
}

#[test]
fn request_snapshot_without_a_term_is_rejected() {
    let mut w = wire_kind("RequestSnapshot");
    w.term = 0;
    assert!(matches!(
        decode(&w),
        Err(DecodeError::Invalid(InvalidMessage::MissingTerm { .. }))
    ));
}

#[test]
fn snapshot_message_without_snapshot_is_rejected() {
    let mut w = wire_kind("Snapshot");
    w.snapshot = None;
    assert_eq!(decode(&w), Err(DecodeError::MissingSnapshot));
}

#[test]
fn snapshot_message_with_empty_snapshot_is_rejected() {
    let mut w = wire_kind("Snapshot");
    w.snapshot = Some(wire::Snapshot::from(&raft_core::Snapshot::default()));
    assert_eq!(
        decode(&w),
        Err(DecodeError::Invalid(InvalidMessage::EmptySnapshot))
    );
}

#[test]
fn snapshot_newer_than_message_term_is_rejected() {
    let mut w = wire_kind("Snapshot");
    w.term = 5;
    assert_eq!(
        decode(&w),
        Err(DecodeError::Invalid(InvalidMessage::TermAboveMessageTerm {
            field: "Snapshot.metadata",
            term: Term(6),
            message_term: Term(5)
        }))
    );
}

#[test]
fn snapshot_without_metadata_is_rejected() {
    let mut w = wire_kind("Snapshot");
    if let Some(s) = w.snapshot.as_mut() {
        s.metadata = None;
    }
    assert_eq!(
        decode(&w),
        Err(DecodeError::MissingField {
            field: "Snapshot.metadata"
        })
    );
}

#[test]
fn snapshot_metadata_without_conf_state_is_rejected() {
    let mut w = wire::SnapshotMetadata::from(&snapshot().metadata);
    w.conf_state = None;
    assert_eq!(
        raft_proto::decode_snapshot_metadata(&w.encode_to_vec()),
        Err(DecodeError::MissingField {
            field: "SnapshotMetadata.conf_state"
        })
    );
}

#[test]
fn snapshot_metadata_with_index_but_no_term_is_rejected() {
    let mut w = wire::SnapshotMetadata::from(&snapshot().metadata);
    w.term = 0;
    assert_eq!(
        raft_proto::decode_snapshot_metadata(&w.encode_to_vec()),
        Err(DecodeError::InvalidSnapshotPosition {
            position: LogId::new(Term::ZERO, Index(100))
        })
    );
}

#[test]
fn snapshot_message_whose_metadata_is_not_a_log_position_is_rejected() {
    // Metadata is checked as a record of its own (it is also read from
    // snapshot files) before the message is validated.
    let mut w = wire_kind("Snapshot");
    if let Some(m) = w.snapshot.as_mut().and_then(|s| s.metadata.as_mut()) {
        m.term = 0;
    }
    assert_eq!(
        decode(&w),
        Err(DecodeError::InvalidSnapshotPosition {
            position: LogId::new(Term::ZERO, Index(100))
        })
    );
}

#[test]
fn proposal_without_entries_is_rejected() {
    let mut w = wire_kind("Propose");
    w.entries.clear();
    assert_eq!(
        decode(&w),
        Err(DecodeError::Invalid(InvalidMessage::EmptyProposal))
    );
}

#[test]
fn transfer_leader_to_node_zero_is_rejected() {
    let mut w = wire_kind("TransferLeader");
    w.transfer_target = 0;
    assert_eq!(
        decode(&w),
        Err(DecodeError::ZeroNodeId {
            field: "Message.transfer_target"
        })
    );
}

// --- membership -------------------------------------------------------------

#[test]
fn conf_state_listing_a_node_as_voter_and_learner_is_rejected() {
    let mut w = wire_conf_state();
    w.learners.push(4);
    assert_eq!(
        decode_conf_state(&w),
        Err(DecodeError::InvalidConfState(
            InvalidConfState::VoterAndLearner { node: id(4) }
        ))
    );
}

#[test]
fn conf_state_listing_an_outgoing_voter_as_learner_is_rejected() {
    let mut w = wire_conf_state();
    w.learners.push(3);
    assert_eq!(
        decode_conf_state(&w),
        Err(DecodeError::InvalidConfState(
            InvalidConfState::VoterAndLearner { node: id(3) }
        ))
    );
}

#[test]
fn conf_state_with_learner_next_that_is_not_an_outgoing_voter_is_rejected() {
    let mut w = wire_conf_state();
    w.learners_next.push(4);
    assert_eq!(
        decode_conf_state(&w),
        Err(DecodeError::InvalidConfState(
            InvalidConfState::LearnerNextNotOutgoingVoter { node: id(4) }
        ))
    );
}

#[test]
fn conf_state_with_auto_leave_outside_a_joint_configuration_is_rejected() {
    let w = wire::ConfState {
        voters: vec![1, 2, 3],
        auto_leave: true,
        ..wire::ConfState::default()
    };
    assert_eq!(
        decode_conf_state(&w),
        Err(DecodeError::InvalidConfState(
            InvalidConfState::AutoLeaveWithoutJoint
        ))
    );
}

#[test]
fn conf_state_with_duplicate_voter_is_rejected() {
    let mut w = wire_conf_state();
    w.voters.push(2);
    assert_eq!(
        decode_conf_state(&w),
        Err(DecodeError::DuplicateNode {
            field: "ConfState.voters",
            node: id(2)
        })
    );
}

#[test]
fn conf_state_with_node_zero_is_rejected() {
    let mut w = wire_conf_state();
    w.voters_outgoing.push(0);
    assert_eq!(
        decode_conf_state(&w),
        Err(DecodeError::ZeroNodeId {
            field: "ConfState.voters_outgoing"
        })
    );
}

#[test]
fn conf_state_with_unsorted_lists_is_accepted() {
    let mut w = wire_conf_state();
    w.voters.reverse();
    assert_eq!(decode_conf_state(&w), Ok(joint_conf_state()));
}

#[test]
fn invalid_conf_state_inside_a_snapshot_message_is_rejected() {
    let mut w = wire_kind("Snapshot");
    if let Some(cs) = w
        .snapshot
        .as_mut()
        .and_then(|s| s.metadata.as_mut())
        .and_then(|m| m.conf_state.as_mut())
    {
        cs.learners.push(1);
    }
    assert_eq!(
        decode(&w),
        Err(DecodeError::InvalidConfState(
            InvalidConfState::VoterAndLearner { node: id(1) }
        ))
    );
}

#[test]
fn conf_change_for_node_zero_is_rejected() {
    let w = wire::ConfChange {
        r#type: wire::ConfChangeType::AddNode as i32,
        node_id: 0,
        context: Bytes::new(),
    };
    assert_eq!(
        raft_proto::decode_conf_change(&w.encode_to_vec()),
        Err(DecodeError::ZeroNodeId {
            field: "ConfChange.node_id"
        })
    );
}

#[test]
fn conf_change_with_unspecified_type_is_rejected() {
    let w = wire::ConfChange {
        r#type: 0,
        node_id: 3,
        context: Bytes::new(),
    };
    assert_eq!(
        raft_proto::decode_conf_change(&w.encode_to_vec()),
        Err(DecodeError::UnspecifiedEnum {
            field: "ConfChange.type"
        })
    );
}

#[test]
fn conf_change_v2_with_unspecified_transition_is_rejected() {
    let w = wire::ConfChangeV2 {
        transition: 0,
        changes: Vec::new(),
        context: Bytes::new(),
    };
    assert_eq!(
        raft_proto::decode_conf_change_v2(&w.encode_to_vec()),
        Err(DecodeError::UnspecifiedEnum {
            field: "ConfChangeV2.transition"
        })
    );
}

#[test]
fn conf_change_v2_with_unknown_change_type_is_rejected() {
    let w = wire::ConfChangeV2 {
        transition: wire::ConfChangeTransition::Auto as i32,
        changes: vec![wire::ConfChangeSingle {
            r#type: 42,
            node_id: 3,
        }],
        context: Bytes::new(),
    };
    assert_eq!(
        raft_proto::decode_conf_change_v2(&w.encode_to_vec()),
        Err(DecodeError::UnknownEnum {
            field: "ConfChangeSingle.type",
            value: 42
        })
    );
}

#[test]
fn conf_change_v2_removing_node_zero_is_rejected() {
    let w = wire::ConfChangeV2 {
        transition: wire::ConfChangeTransition::JointExplicit as i32,
        changes: vec![wire::ConfChangeSingle {
            r#type: wire::ConfChangeType::RemoveNode as i32,
            node_id: 0,
        }],
        context: Bytes::new(),
    };
    assert_eq!(
        raft_proto::decode_conf_change_v2(&w.encode_to_vec()),
        Err(DecodeError::ZeroNodeId {
            field: "ConfChangeSingle.node_id"
        })
    );
}

// --- hard state -----------------------------------------------------------

#[test]
fn hard_state_voting_in_term_zero_is_rejected() {
    let w = wire::HardState {
        term: 0,
        vote: 2,
        commit: 0,
    };
    assert_eq!(
        raft_proto::decode_hard_state(&w.encode_to_vec()),
        Err(DecodeError::VoteInTermZero { vote: id(2) })
    );
}

#[test]
fn hard_state_vote_of_zero_decodes_as_no_vote() {
    let w = wire::HardState {
        term: 3,
        vote: 0,
        commit: 1,
    };
    assert_eq!(
        raft_proto::decode_hard_state(&w.encode_to_vec()).map(|hs| hs.vote),
        Ok(None)
    );
}

// --- bytes and limits -----------------------------------------------------

#[test]
fn truncated_bytes_are_reported_as_malformed_protobuf() {
    let bytes = raft_proto::encode_message(&append());
    let err = raft_proto::decode_message(&bytes[..bytes.len() - 1]).expect_err("truncated");
    assert!(matches!(err, DecodeError::Protobuf(_)), "{err:?}");
}

#[test]
fn message_over_the_size_limit_is_rejected_before_decoding() {
    let bytes = raft_proto::encode_message(&append());
    let limits = DecodeLimits::new().with_max_message_bytes(bytes.len() - 1);
    assert_eq!(
        limits.decode_message(&bytes),
        Err(DecodeError::MessageTooLarge {
            size: bytes.len(),
            limit: bytes.len() - 1
        })
    );
    let exact = DecodeLimits::new().with_max_message_bytes(bytes.len());
    assert_eq!(exact.decode_message_bytes(bytes), Ok(append()));
}

#[test]
fn batch_over_the_size_limit_is_rejected() {
    let bytes = raft_proto::encode_batch(&every_kind());
    let limits = DecodeLimits::new().with_max_batch_bytes(100);
    assert_eq!(
        limits.decode_batch(&bytes),
        Err(DecodeError::BatchTooLarge {
            size: bytes.len(),
            limit: 100
        })
    );
}

#[test]
fn message_inside_a_batch_over_the_message_limit_is_rejected() {
    let big = message(6, MessageBody::Snapshot(snapshot()));
    let big_size = raft_proto::encode_message(&big).len();
    let bytes = raft_proto::encode_batch(&[append(), big]);
    let limits = DecodeLimits::new().with_max_message_bytes(big_size - 1);
    assert_eq!(
        limits.decode_batch_bytes(bytes),
        Err(DecodeError::MessageTooLarge {
            size: big_size,
            limit: big_size - 1
        })
    );
}

#[test]
fn batch_with_one_invalid_message_is_rejected() {
    let mut batch = wire::MessageBatch {
        messages: every_kind().iter().map(wire::Message::from).collect(),
    };
    batch.messages[3].from = 0;
    assert_eq!(
        raft_proto::decode_batch(&batch.encode_to_vec()),
        Err(DecodeError::ZeroNodeId {
            field: "Message.from"
        })
    );
}

#[test]
fn unknown_fields_from_a_newer_schema_are_skipped() {
    let mut bytes = raft_proto::encode_message(&append()).to_vec();
    // Field 100, varint, value 1.
    bytes.extend_from_slice(&[0xa0, 0x06, 0x01]);
    assert_eq!(raft_proto::decode_message(&bytes), Ok(append()));
}

#[test]
fn a_group_message_without_its_message_is_refused() {
    let bytes = raft_proto::wire::GroupMessage {
        group: 2,
        message: None,
    }
    .encode_to_vec();
    assert_eq!(
        raft_proto::decode_group_message_bytes(bytes.into()),
        Err(raft_proto::DecodeError::MissingField {
            field: "GroupMessage.message"
        })
    );
}
