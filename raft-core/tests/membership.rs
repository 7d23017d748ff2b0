//! Membership changes: single-step and joint consensus, learners, one
//! change at a time (thesis §4).

mod support;

use bytes::Bytes;
use raft_core::{
    AnyConfChange, ConfChange, ConfChangeKind, ConfChangeSingle, ConfChangeTransition,
    ConfChangeV2, Index, ProposeError, RoleKind,
};
use support::{Cluster, id};

fn v1(kind: ConfChangeKind, node: u64) -> AnyConfChange {
    AnyConfChange::V1(ConfChange {
        kind,
        node_id: id(node),
        context: Bytes::new(),
    })
}

fn v2(transition: ConfChangeTransition, changes: &[(ConfChangeKind, u64)]) -> AnyConfChange {
    AnyConfChange::V2(ConfChangeV2 {
        transition,
        changes: changes
            .iter()
            .map(|&(kind, n)| ConfChangeSingle {
                kind,
                node_id: id(n),
            })
            .collect(),
        context: Bytes::new(),
    })
}

/// The membership node `n` stored when it last applied a change.
fn conf(c: &Cluster, n: u64) -> raft_core::ConfState {
    use raft_core::Storage;
    c.nodes[&id(n)]
        .storage
        .initial_state()
        .expect("state")
        .conf_state
}

fn voters(c: &Cluster, n: u64) -> Vec<u64> {
    conf(c, n).voters.iter().map(|v| v.get()).collect()
}

#[test]
fn adding_a_learner_replicates_the_log_to_it_without_counting_its_vote() {
    // Node 4 exists (as a learner in its own view) but is not in the leader's config yet.
    let mut c = Cluster::builder().voters(&[1, 2, 3]).learners(&[4]).build();
    c.elect(1);
    c.propose(1, b"before");
    c.stabilize();
    assert_eq!(c.applied_data(4), vec![Bytes::from_static(b"before")]);
    let st = c.status(1).progress.expect("leader");
    assert!(st[&id(4)].is_learner);
}

#[test]
fn learner_is_promoted_to_voter_by_a_single_step_change() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).learners(&[4]).build();
    c.elect(1);
    c.node(1)
        .raw
        .propose_conf_change(v1(ConfChangeKind::AddNode, 4))
        .expect("proposed");
    c.stabilize();
    assert_eq!(voters(&c, 1), vec![1, 2, 3, 4]);
    assert_eq!(voters(&c, 4), vec![1, 2, 3, 4]);
    assert!(!c.status(1).progress.expect("leader")[&id(4)].is_learner);
}

#[test]
fn a_second_conf_change_is_rejected_while_one_is_pending() {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .learners(&[4, 5])
        .build();
    c.elect(1);
    c.node(1)
        .raw
        .propose_conf_change(v1(ConfChangeKind::AddNode, 4))
        .expect("first");
    let err = c
        .node(1)
        .raw
        .propose_conf_change(v1(ConfChangeKind::AddNode, 5))
        .expect_err("second");
    assert!(
        matches!(err, ProposeError::ConfChangePending { .. }),
        "{err}"
    );
    c.stabilize();
    c.node(1)
        .raw
        .propose_conf_change(v1(ConfChangeKind::AddNode, 5))
        .expect("after apply");
}

#[test]
fn invalid_conf_change_is_rejected_at_proposal() {
    let mut c = Cluster::builder().voters(&[1]).build();
    c.elect(1);
    let err = c
        .node(1)
        .raw
        .propose_conf_change(v1(ConfChangeKind::RemoveNode, 1))
        .expect_err("no voters");
    assert!(matches!(err, ProposeError::InvalidConfChange(_)), "{err}");
    let leave = AnyConfChange::V2(ConfChangeV2::default());
    let err = c
        .node(1)
        .raw
        .propose_conf_change(leave)
        .expect_err("not joint");
    assert!(matches!(err, ProposeError::InvalidConfChange(_)), "{err}");
}

#[test]
fn joint_change_adding_two_voters_leaves_the_joint_state_automatically() {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .learners(&[4, 5])
        .build();
    c.elect(1);
    let cc = v2(
        ConfChangeTransition::Auto,
        &[(ConfChangeKind::AddNode, 4), (ConfChangeKind::AddNode, 5)],
    );
    c.node(1).raw.propose_conf_change(cc).expect("proposed");
    c.stabilize();
    for n in 1..=5 {
        assert_eq!(voters(&c, n), vec![1, 2, 3, 4, 5], "node {n}");
    }
    let cs = conf(&c, 1);
    assert!(!cs.is_joint(), "auto-leave completed");
}

#[test]
fn explicit_joint_change_waits_for_the_application_to_leave() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).learners(&[4]).build();
    c.elect(1);
    let cc = v2(
        ConfChangeTransition::JointExplicit,
        &[
            (ConfChangeKind::AddNode, 4),
            (ConfChangeKind::RemoveNode, 3),
        ],
    );
    c.node(1).raw.propose_conf_change(cc).expect("proposed");
    c.stabilize();
    let cs = conf(&c, 1);
    assert!(cs.is_joint());
    c.node(1)
        .raw
        .propose_conf_change(AnyConfChange::V2(ConfChangeV2::default()))
        .expect("leave");
    c.stabilize();
    assert_eq!(voters(&c, 1), vec![1, 2, 4]);
}

#[test]
fn removed_leader_steps_down_by_default() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.elect(1);
    c.node(1)
        .raw
        .propose_conf_change(v1(ConfChangeKind::RemoveNode, 1))
        .expect("proposed");
    c.stabilize();
    assert_eq!(c.role(1), RoleKind::Follower);
    assert_eq!(voters(&c, 2), vec![2, 3]);
    // The survivors elect a leader among themselves.
    c.tick_all(25);
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1);
    assert!(leaders[0] == 2 || leaders[0] == 3);
    let l = leaders[0];
    c.propose(l, b"after");
    c.stabilize();
    assert_eq!(c.applied_data(5 - l), vec![Bytes::from_static(b"after")]);
}

#[test]
fn removed_leader_keeps_leading_when_step_down_is_disabled() {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .configure(|cfg| cfg.step_down_on_removal = false)
        .build();
    c.elect(1);
    c.node(1)
        .raw
        .propose_conf_change(v1(ConfChangeKind::RemoveNode, 1))
        .expect("proposed");
    c.stabilize();
    assert_eq!(c.role(1), RoleKind::Leader);
    let err = c
        .node(1)
        .raw
        .propose(Bytes::from_static(b"x"))
        .expect_err("not a member");
    assert!(matches!(err, ProposeError::NotAMember));
}

#[test]
fn replacing_the_leader_with_a_joint_change_then_transferring() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).learners(&[4]).build();
    c.elect(1);
    let cc = v2(
        ConfChangeTransition::JointExplicit,
        &[
            (ConfChangeKind::AddNode, 4),
            (ConfChangeKind::RemoveNode, 1),
        ],
    );
    c.node(1).raw.propose_conf_change(cc).expect("proposed");
    c.stabilize();
    assert_eq!(
        c.role(1),
        RoleKind::Leader,
        "an outgoing voter leads until the joint state ends"
    );
    c.node(1).raw.transfer_leader(id(4)).expect("transfer");
    c.stabilize();
    assert_eq!(c.role(4), RoleKind::Leader);
    c.node(4)
        .raw
        .propose_conf_change(AnyConfChange::V2(ConfChangeV2::default()))
        .expect("leave");
    c.stabilize();
    assert_eq!(voters(&c, 4), vec![2, 3, 4]);
}

#[test]
fn a_node_does_not_campaign_while_a_committed_conf_change_is_unapplied() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).learners(&[4]).build();
    c.elect(1);
    c.node(1)
        .raw
        .propose_conf_change(v1(ConfChangeKind::AddNode, 4))
        .expect("proposed");
    // Replicate and commit on node 2 but do not let it apply: deliver, then
    // let node 2 persist without applying (its Ready carries the commit).
    c.process_ready(1);
    c.deliver_all();
    c.process_ready(2);
    c.deliver_all();
    c.process_ready(1);
    c.deliver_all();
    // Node 2 now knows the commit index but has not handled that Ready.
    assert!(c.node(2).raw.has_ready());
    assert!(c.commit(2) >= Index(2));
    let before = c.term(2);
    c.node(2).raw.campaign().expect("campaign call accepted");
    assert_eq!(
        c.term(2),
        before,
        "campaign ignored until the change is applied"
    );
}

#[test]
fn replacing_the_leader_with_an_auto_joint_change_steps_it_down_on_leaving() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).learners(&[4]).build();
    c.elect(1);
    let cc = v2(
        ConfChangeTransition::Auto,
        &[
            (ConfChangeKind::AddNode, 4),
            (ConfChangeKind::RemoveNode, 1),
        ],
    );
    c.node(1).raw.propose_conf_change(cc).expect("proposed");
    c.stabilize();
    assert_eq!(voters(&c, 2), vec![2, 3, 4]);
    assert_eq!(
        c.role(1),
        RoleKind::Follower,
        "left the joint state without itself"
    );
    c.tick_all(25);
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1);
    assert_ne!(leaders[0], 1);
}

#[test]
fn replaced_leader_without_step_down_keeps_leading_but_refuses_proposals() {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .learners(&[4])
        .configure(|cfg| cfg.step_down_on_removal = false)
        .build();
    c.elect(1);
    let cc = v2(
        ConfChangeTransition::Auto,
        &[
            (ConfChangeKind::AddNode, 4),
            (ConfChangeKind::RemoveNode, 1),
        ],
    );
    c.node(1).raw.propose_conf_change(cc).expect("proposed");
    c.stabilize();
    assert_eq!(voters(&c, 4), vec![2, 3, 4]);
    assert_eq!(c.role(1), RoleKind::Leader);
    let err = c
        .node(1)
        .raw
        .propose(Bytes::from_static(b"x"))
        .expect_err("not a member");
    assert!(matches!(err, ProposeError::NotAMember));
}
