use bytes::Bytes;
use proptest::prelude::*;

use super::*;

fn id(n: u64) -> NodeId {
    NodeId::new(n).expect("non-zero")
}

fn ids(raw: &[u64]) -> BTreeSet<NodeId> {
    raw.iter().map(|&n| id(n)).collect()
}

fn voters(raw: &[u64]) -> ConfState {
    ConfState::with_voters(raw.iter().map(|&n| id(n)))
}

fn change(kind: ConfChangeKind, n: u64) -> ConfChangeSingle {
    ConfChangeSingle {
        kind,
        node_id: id(n),
    }
}

fn v2(transition: ConfChangeTransition, changes: Vec<ConfChangeSingle>) -> AnyConfChange {
    AnyConfChange::V2(ConfChangeV2 {
        transition,
        changes,
        context: Bytes::new(),
    })
}

fn leave() -> AnyConfChange {
    AnyConfChange::V2(ConfChangeV2::default())
}

#[test]
fn a_witness_is_added_as_a_voter_and_can_only_be_removed() {
    let start = voters(&[1, 2]);
    let with = apply(&start, &v1(ConfChangeKind::AddWitness, 3)).expect("add witness");
    assert_eq!(with.voters, ids(&[1, 2, 3]));
    assert_eq!(with.witnesses, ids(&[3]));
    for kind in [ConfChangeKind::AddNode, ConfChangeKind::AddLearnerNode] {
        assert_eq!(
            apply(&with, &v1(kind, 3)),
            Err(ConfChangeError::WitnessKindFixed { node: id(3) })
        );
    }
    assert_eq!(
        apply(&with, &v1(ConfChangeKind::AddWitness, 3)),
        Ok(with.clone()),
        "adding a witness again changes nothing"
    );
    let without = apply(&with, &v1(ConfChangeKind::RemoveNode, 3)).expect("remove");
    assert_eq!(without, start);
}

#[test]
fn a_change_that_leaves_only_witnesses_is_refused() {
    let mut start = voters(&[1, 2]);
    start.witnesses.insert(id(2));
    assert_eq!(
        apply(&start, &v1(ConfChangeKind::RemoveNode, 1)),
        Err(ConfChangeError::OnlyWitnesses)
    );
}

#[test]
fn a_full_member_cannot_become_a_witness() {
    let mut start = voters(&[1, 2, 3]);
    start.learners.insert(id(4));
    for n in [1, 4] {
        assert_eq!(
            apply(&start, &v1(ConfChangeKind::AddWitness, n)),
            Err(ConfChangeError::MemberCannotBecomeWitness { node: id(n) })
        );
    }
}

#[test]
fn a_witness_removed_in_a_joint_change_stays_one_in_the_outgoing_half() {
    let mut start = voters(&[1, 2, 3]);
    start.witnesses.insert(id(3));
    let joint = apply(
        &start,
        &v2(
            ConfChangeTransition::JointExplicit,
            vec![
                change(ConfChangeKind::RemoveNode, 3),
                change(ConfChangeKind::AddWitness, 4),
            ],
        ),
    )
    .expect("enter joint");
    assert_eq!(joint.voters, ids(&[1, 2, 4]));
    assert_eq!(joint.voters_outgoing, ids(&[1, 2, 3]));
    assert_eq!(joint.witnesses, ids(&[3, 4]));
    assert_eq!(joint.validate(), Ok(()));
    let left = apply(&joint, &leave()).expect("leave");
    assert_eq!(left.witnesses, ids(&[4]));
}

fn v1(kind: ConfChangeKind, n: u64) -> AnyConfChange {
    AnyConfChange::V1(ConfChange {
        kind,
        node_id: id(n),
        context: Bytes::new(),
    })
}

#[test]
fn single_step_adds_one_voter() {
    let cc = AnyConfChange::V1(ConfChange {
        kind: ConfChangeKind::AddNode,
        node_id: id(4),
        context: Bytes::new(),
    });
    let next = apply(&voters(&[1, 2, 3]), &cc).expect("allowed");
    assert_eq!(next.voters, ids(&[1, 2, 3, 4]));
    assert!(!next.is_joint());
}

#[test]
fn single_step_refuses_two_voter_changes() {
    let cc = v2(
        ConfChangeTransition::Auto,
        vec![
            change(ConfChangeKind::AddNode, 4),
            change(ConfChangeKind::AddNode, 5),
        ],
    );
    // Auto with two changes goes joint instead; a forced simple path refuses.
    assert!(apply(&voters(&[1, 2, 3]), &cc).expect("joint").is_joint());
    let err = simple(
        &voters(&[1, 2, 3]),
        &[
            change(ConfChangeKind::AddNode, 4),
            change(ConfChangeKind::RemoveNode, 1),
        ],
    )
    .expect_err("two voters changed");
    assert_eq!(err, ConfChangeError::MoreThanOneVoterChanged { changed: 2 });
}

#[test]
fn promoting_a_learner_changes_one_voter() {
    let mut cs = voters(&[1, 2, 3]);
    cs.learners = ids(&[4]);
    let next = simple(&cs, &[change(ConfChangeKind::AddNode, 4)]).expect("allowed");
    assert_eq!(next.voters, ids(&[1, 2, 3, 4]));
    assert!(next.learners.is_empty());
}

#[test]
fn removing_the_last_voter_is_refused() {
    let err =
        simple(&voters(&[1]), &[change(ConfChangeKind::RemoveNode, 1)]).expect_err("no voters");
    assert_eq!(err, ConfChangeError::NoVoters);
}

#[test]
fn joint_change_keeps_the_old_voters_as_outgoing_until_left() {
    let cc = v2(
        ConfChangeTransition::JointExplicit,
        vec![
            change(ConfChangeKind::AddNode, 4),
            change(ConfChangeKind::RemoveNode, 1),
        ],
    );
    let joint = apply(&voters(&[1, 2, 3]), &cc).expect("enter joint");
    assert_eq!(joint.voters, ids(&[2, 3, 4]));
    assert_eq!(joint.voters_outgoing, ids(&[1, 2, 3]));
    assert!(!joint.auto_leave);
    let left = apply(&joint, &leave()).expect("leave joint");
    assert_eq!(left.voters, ids(&[2, 3, 4]));
    assert!(left.voters_outgoing.is_empty());
}

#[test]
fn demoted_voter_waits_in_learners_next_until_the_joint_state_ends() {
    let cc = v2(
        ConfChangeTransition::JointImplicit,
        vec![change(ConfChangeKind::AddLearnerNode, 3)],
    );
    let joint = apply(&voters(&[1, 2, 3]), &cc).expect("enter joint");
    assert!(joint.auto_leave);
    assert_eq!(joint.learners_next, ids(&[3]));
    assert!(
        joint.learners.is_empty(),
        "still votes in the outgoing half"
    );
    let left = apply(&joint, &leave()).expect("leave");
    assert_eq!(left.learners, ids(&[3]));
    assert!(left.learners_next.is_empty());
}

#[test]
fn entering_joint_twice_or_leaving_when_not_joint_is_refused() {
    let cc = v2(
        ConfChangeTransition::JointExplicit,
        vec![change(ConfChangeKind::AddNode, 4)],
    );
    let joint = apply(&voters(&[1, 2, 3]), &cc).expect("enter");
    assert_eq!(apply(&joint, &cc), Err(ConfChangeError::AlreadyJoint));
    assert_eq!(
        apply(&voters(&[1]), &leave()),
        Err(ConfChangeError::NotJoint)
    );
    let single = v2(
        ConfChangeTransition::Auto,
        vec![change(ConfChangeKind::AddNode, 5)],
    );
    assert_eq!(apply(&joint, &single), Err(ConfChangeError::AlreadyJoint));
}

#[test]
fn v1_and_v2_encodings_round_trip() {
    let v1 = ConfChange {
        kind: ConfChangeKind::AddLearnerNode,
        node_id: id(300),
        context: Bytes::from_static(b"http://peer"),
    };
    assert_eq!(ConfChange::decode(&v1.encode()), Ok(v1));
    let v2 = ConfChangeV2 {
        transition: ConfChangeTransition::JointExplicit,
        changes: vec![
            change(ConfChangeKind::AddNode, 7),
            change(ConfChangeKind::RemoveNode, u64::MAX),
        ],
        context: Bytes::from_static(b"ctx"),
    };
    assert_eq!(ConfChangeV2::decode(&v2.encode()), Ok(v2));
    assert_eq!(
        ConfChangeV2::decode(&ConfChangeV2::default().encode()),
        Ok(ConfChangeV2::default())
    );
}

#[test]
fn malformed_conf_change_bytes_are_typed_errors() {
    assert_eq!(
        ConfChange::decode(&Bytes::new()),
        Err(ConfChangeDecodeError::UnknownType(0))
    );
    assert_eq!(
        ConfChange::decode(&Bytes::from_static(&[0x08])),
        Err(ConfChangeDecodeError::Truncated)
    );
    assert_eq!(
        ConfChange::decode(&Bytes::from_static(&[0x08, 0x01, 0x10, 0x00])),
        Err(ConfChangeDecodeError::ZeroNodeId)
    );
    assert_eq!(
        ConfChangeV2::decode(&Bytes::from_static(&[0x0f])),
        Err(ConfChangeDecodeError::BadWireType(7))
    );
}

fn arb_change() -> impl Strategy<Value = ConfChangeSingle> {
    (0u8..4, 1u64..8).prop_map(|(k, n)| {
        let kind = match k {
            0 => ConfChangeKind::AddNode,
            1 => ConfChangeKind::RemoveNode,
            2 => ConfChangeKind::AddWitness,
            _ => ConfChangeKind::AddLearnerNode,
        };
        change(kind, n)
    })
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let b = Bytes::from(data);
        let _ = ConfChange::decode(&b);
        let _ = ConfChangeV2::decode(&b);
    }

    /// Applying changes one at a time (each a valid single-step change) ends
    /// where entering and leaving one joint configuration ends (etcd's
    /// TestConfChangeQuick).
    #[test]
    fn joint_change_equals_the_same_changes_applied_one_by_one(
        changes in proptest::collection::vec(arb_change(), 1..8),
    ) {
        let start = voters(&[1, 2, 3]);
        let mut stepwise = start.clone();
        let mut applied = Vec::new();
        for c in &changes {
            if let Ok(next) = simple(&stepwise, std::slice::from_ref(c)) {
                stepwise = next;
                applied.push(*c);
            }
        }
        prop_assume!(!applied.is_empty());
        // Refused only when a voter of the outgoing half would become a
        // witness of the incoming one: a member's kind is fixed while it is
        // a member of either half.
        let joint = match enter_joint(&start, false, &applied) {
            Err(ConfChangeError::MemberCannotBecomeWitness { node }) => {
                prop_assert!(start.voters.contains(&node));
                return Ok(());
            }
            r => r.expect("enter"),
        };
        prop_assert_eq!(joint.validate(), Ok(()));
        let left = leave_joint(&joint).expect("leave");
        prop_assert_eq!(left.validate(), Ok(()));
        prop_assert_eq!(left.voters, stepwise.voters);
        prop_assert_eq!(left.learners, stepwise.learners);
        prop_assert_eq!(left.witnesses, stepwise.witnesses);
    }

    /// Whatever changes are asked for, a configuration that results is
    /// valid, and no member ever changes kind between witness and full.
    #[test]
    fn no_change_turns_a_witness_into_a_full_member_or_back(
        changes in proptest::collection::vec(arb_change(), 1..12),
    ) {
        let mut cs = voters(&[1, 2, 3]);
        cs.voters.insert(id(4));
        cs.witnesses.insert(id(4));
        for c in &changes {
            let Ok(next) = apply(&cs, &AnyConfChange::V1(ConfChange {
                kind: c.kind,
                node_id: c.node_id,
                context: Bytes::new(),
            })) else { continue };
            prop_assert_eq!(next.validate(), Ok(()));
            for n in next.voters.iter().chain(&next.learners) {
                if cs.contains(*n) {
                    prop_assert_eq!(cs.is_witness(*n), next.is_witness(*n));
                }
            }
            cs = next;
        }
    }
}
