//! The ways the public API could let a careful application hurt itself:
//! split brain from a bootstrap outside the log, a member stuck behind
//! compaction, a transfer that cannot be cancelled, messages `step` cannot
//! handle, and an applied index ahead of the persisted commit. Each test
//! failed before its fix.

mod support;

use bytes::Bytes;
use raft_core::{
    Append, ConfChange, ConfChangeKind, Config, Entry, Heartbeat, Index, LogId, MemoryStorage,
    MessageBody, ProposeError, RawNode, RoleKind, Storage, Term, TransferError,
};
use support::{Cluster, append, id, msg};

fn add_node(node: u64) -> ConfChange {
    ConfChange {
        kind: ConfChangeKind::AddNode,
        node_id: id(node),
        context: Bytes::new(),
    }
}

/// Founders 1, 2, 3 whose membership lives only in their storage
/// (`MemoryStorage::with_conf_state`), with pre-vote and CheckQuorum on and
/// 1 leading.
fn founded_outside_the_log() -> Cluster {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .pre_vote(true)
        .check_quorum(true)
        .build();
    c.elect(1);
    c
}

/// Starts `node` with empty storage and has leader 1 add it.
fn join(c: &mut Cluster, node: u64) {
    c.add_joiner(node);
    c.node(1)
        .raw
        .propose_conf_change(add_node(node))
        .expect("propose");
    c.stabilize();
}

// -- 1. Split brain from a bootstrap outside the log ------------------------

#[test]
fn a_joiner_of_a_cluster_founded_outside_the_log_never_elects_itself() {
    let mut c = founded_outside_the_log();
    join(&mut c, 4);
    c.propose(1, b"on the real cluster");
    c.stabilize();
    assert_eq!(c.node(4).applied.len(), c.node(1).applied.len());

    // Node 4 loses the leader. Had it believed the log's only conf change
    // (`AddNode(4)`) made a one-node cluster, it would now elect itself and
    // commit alone.
    c.isolate(4);
    c.tick(4, 40);
    c.stabilize();
    assert_ne!(c.role(4), RoleKind::Leader, "node 4 elected itself alone");
    if c.node(4).raw.propose(&b"split brain"[..]).is_ok() {
        c.stabilize();
    }
    c.propose(1, b"majority");
    c.stabilize();
    c.assert_applied_logs_agree();
}

// -- 2. A member added behind compaction -----------------------------------

#[test]
fn a_member_added_behind_compaction_catches_up_without_the_application_guessing() {
    let mut c = founded_outside_the_log();
    for _ in 0..5 {
        c.propose(1, b"x");
    }
    c.stabilize();
    // Every member snapshots and compacts, long before node 4 exists.
    for n in 1..=3 {
        let applied = c.node(n).raw.status().applied.get();
        c.compact(n, applied);
    }
    // Node 4 gets the newest snapshot (which predates it) only if the
    // application takes a newer one, and the application is told when.
    join(&mut c, 4);
    c.tick_all(5);
    let leader_last = c.status(1).last_index;
    assert_eq!(
        c.status(4).last_index,
        leader_last,
        "node 4 never caught up"
    );
    assert_eq!(c.commit(4), c.commit(1));
}

// -- 3. Cancelling a leadership transfer -----------------------------------

#[test]
fn transfer_to_the_leader_itself_cancels_a_pending_transfer() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.elect(1);
    // Node 3 cannot catch up, so the transfer stays pending.
    c.isolate(3);
    c.propose(1, b"ahead of 3");
    c.stabilize();
    c.node(1).raw.transfer_leader(id(3)).expect("transfer");
    assert!(matches!(
        c.node(1).raw.propose(&b"refused"[..]),
        Err(ProposeError::TransferInProgress { .. })
    ));
    c.node(1).raw.transfer_leader(id(1)).expect("cancel");
    assert_eq!(c.status(1).transferee, None);
    c.node(1)
        .raw
        .propose(&b"accepted again"[..])
        .expect("proposals flow once the transfer is cancelled");
}

#[test]
fn abort_leader_transfer_returns_the_target_and_refuses_off_the_leader() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.elect(1);
    assert_eq!(
        c.node(1).raw.abort_leader_transfer().expect("nothing"),
        None
    );
    c.isolate(3);
    c.propose(1, b"ahead of 3");
    c.stabilize();
    c.node(1).raw.transfer_leader(id(3)).expect("transfer");
    assert_eq!(
        c.node(1).raw.abort_leader_transfer().expect("abort"),
        Some(id(3))
    );
    assert_eq!(c.status(1).transferee, None);
    assert!(matches!(
        c.node(2).raw.abort_leader_transfer(),
        Err(TransferError::NotLeader { leader: Some(l) }) if l == id(1)
    ));
}

#[test]
fn a_removed_leader_handing_over_cannot_cancel_its_transfer() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.elect(1);
    c.isolate(3);
    let remove = ConfChange {
        kind: ConfChangeKind::RemoveNode,
        node_id: id(1),
        context: Bytes::new(),
    };
    c.node(1).raw.propose_conf_change(remove).expect("propose");
    // Replicate one hop at a time until node 1 applied its removal and
    // started handing over to 2 (which does not know the commit yet).
    for _ in 0..10 {
        if c.status(1).transferee.is_some() {
            break;
        }
        c.process_all();
        c.deliver_all();
    }
    assert_eq!(c.status(1).transferee, Some(id(2)), "hand-over started");
    assert!(matches!(
        c.node(1).raw.abort_leader_transfer(),
        Err(TransferError::SteppingDown)
    ));
    assert!(matches!(
        c.node(1).raw.transfer_leader(id(1)),
        Err(TransferError::SteppingDown)
    ));
    // Node 3 is needed for a quorum of {2, 3}.
    c.heal();
    c.stabilize();
    assert_eq!(c.role(2), RoleKind::Leader, "the hand-over finishes");
}

// -- 4. Messages step() cannot handle --------------------------------------

/// A follower of a three-node cluster at term 1 with a committed log.
fn follower_2() -> Cluster {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.elect(1);
    c.propose(1, b"x");
    c.stabilize();
    c
}

/// Runs `f` on node 2 and checks that it changed neither term, vote,
/// commit, log nor role.
fn assert_unchanged(c: &mut Cluster, f: impl FnOnce(&mut Cluster)) {
    let before = c.status(2);
    let last = c.node(2).storage.last_index().expect("last");
    f(c);
    c.stabilize();
    let after = c.status(2);
    assert_eq!(after.hard_state, before.hard_state);
    assert_eq!(after.soft_state, before.soft_state);
    assert_eq!(after.last_index, last);
}

#[test]
fn a_message_from_the_node_itself_is_refused() {
    let mut c = follower_2();
    assert_unchanged(&mut c, |c| {
        let m = msg(2, 2, 1, MessageBody::Heartbeat(heartbeat(1)));
        assert!(c.step(m).is_err());
        let m = msg(2, 2, 9, append((1, 2), &[(9, 3)], 3));
        assert!(c.step(m).is_err());
    });
}

fn heartbeat(commit: u64) -> Heartbeat {
    Heartbeat {
        commit: Index(commit),
        read_round: None,
    }
}

#[test]
fn terms_and_indexes_at_the_edge_of_u64_are_refused_without_overflow() {
    let mut c = follower_2();
    assert_unchanged(&mut c, |c| {
        for term in [u64::MAX, u64::MAX - 1, i64::MAX as u64 + 1] {
            let m = msg(1, 2, term, MessageBody::Heartbeat(heartbeat(1)));
            assert!(c.step(m).is_err(), "term {term} accepted");
        }
        let m = msg(1, 2, 1, append((1, u64::MAX), &[], 1));
        assert!(c.step(m).is_err(), "prev index u64::MAX accepted");
        let m = msg(1, 2, 1, MessageBody::Heartbeat(heartbeat(u64::MAX)));
        assert!(c.step(m).is_err(), "commit u64::MAX accepted");
    });
}

#[test]
fn a_term_zero_append_is_refused_by_a_node_at_term_zero() {
    let storage = MemoryStorage::with_conf_state(raft_core::ConfState::with_voters([id(1), id(2)]));
    let mut node = RawNode::new(Config::new(id(2)), storage).expect("node");
    let forged = msg(
        1,
        2,
        0,
        MessageBody::Append(Append {
            prev: LogId::ZERO,
            entries: vec![Entry::new(Term(0), Index(1), Bytes::from_static(b"bad"))],
            commit: Index(1),
        }),
    );
    assert!(node.step(forged).is_err());
    assert_eq!(node.status().last_index, Index(0));
    assert_eq!(node.status().hard_state.commit, Index(0));
}

#[test]
fn an_append_whose_entries_leave_a_gap_or_overlap_is_refused() {
    let mut c = follower_2();
    assert_unchanged(&mut c, |c| {
        let gap = msg(1, 2, 1, append((1, 2), &[(1, 3), (1, 5)], 2));
        assert!(c.step(gap).is_err(), "gap accepted");
        let overlap = msg(1, 2, 1, append((1, 2), &[(1, 3), (1, 3)], 2));
        assert!(c.step(overlap).is_err(), "overlap accepted");
        let behind_prev = msg(1, 2, 1, append((1, 2), &[(1, 2)], 2));
        assert!(c.step(behind_prev).is_err(), "entry at prev accepted");
        let term_above = msg(1, 2, 1, append((1, 2), &[(2, 3)], 2));
        assert!(c.step(term_above).is_err(), "entry above message term");
    });
}

#[test]
fn a_forged_heartbeat_with_the_largest_wire_term_leaves_the_cluster_electing() {
    let mut c = founded_outside_the_log();
    let forged = msg(1, 2, i64::MAX as u64, MessageBody::Heartbeat(heartbeat(0)));
    assert!(c.step(forged).is_err(), "the forged term was adopted");
    c.stabilize();
    assert_eq!(c.term(2), Term(1));
    // The cluster still elects and commits: the leader goes away, and 2 and
    // 3 elect one of them.
    c.isolate(1);
    c.tick_all(40);
    let leader = *c
        .leaders()
        .iter()
        .find(|&&l| l != 1)
        .expect("2 and 3 elect a new leader");
    assert!(c.term(leader) > Term(1));
    c.propose(leader, b"after the attack");
    c.stabilize();
    for n in [2, 3] {
        assert_eq!(
            c.applied_data(n).last(),
            Some(&Bytes::from_static(b"after the attack"))
        );
    }
}

// -- 5. An applied index ahead of the persisted commit ---------------------

#[test]
fn compacting_past_what_raft_handed_out_is_a_typed_error() {
    let founders = raft_core::ConfState {
        voters: [id(1)].into(),
        learners: [id(2)].into(),
        ..raft_core::ConfState::default()
    };
    let storage = MemoryStorage::bootstrap(&founders).expect("founders");
    let mut cfg = Config::new(id(1));
    // One entry per Ready: committed entries wait their turn.
    cfg.max_committed_size_per_ready = 1;
    let mut node = RawNode::new(cfg, storage.clone()).expect("node");
    let rd = node.ready().expect("ready");
    let handed_out = rd.committed_entries.last().expect("one").index;
    for e in &rd.committed_entries {
        let cc = raft_core::AnyConfChange::from_entry(e)
            .expect("ok")
            .expect("change");
        storage.set_conf_state(node.apply_conf_change(&cc).expect("applies"));
    }
    node.advance().expect("advance");
    assert_eq!(handed_out, Index(1));
    // A careless application compacts what it was never handed.
    storage.compact(Index(2)).expect("compact");
    node.campaign().expect("campaign");
    let mut err = None;
    while node.has_ready() {
        match node.ready() {
            Ok(rd) => {
                storage.persist(&rd).expect("persist");
                node.advance().expect("advance");
            }
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    assert!(
        matches!(
            err,
            Some(raft_core::ReadyError::CompactedBeyondApplied { next: Index(2), .. })
        ),
        "{err:?}"
    );
}

#[test]
fn a_state_machine_ahead_of_the_persisted_commit_restarts_where_it_is() {
    let voters = raft_core::ConfState::with_voters([id(1)]);
    let storage = MemoryStorage::with_conf_state(voters);
    let mut cfg = Config::new(id(1));
    cfg.async_storage_writes = true;
    let mut node = RawNode::new(cfg.clone(), storage.clone()).expect("node");
    node.campaign().expect("campaign");
    let rd = node.ready().expect("ready");
    assert!(rd.hard_state.is_some(), "the vote");
    storage.persist(&rd).expect("persist");
    node.on_persisted(rd.number).expect("persisted");
    for _ in 0..3 {
        node.propose(&b"v"[..]).expect("propose");
    }
    let rd = node.ready().expect("ready");
    storage.persist(&rd).expect("persist");
    node.on_persisted(rd.number).expect("persisted");
    // The apply thread applies what committed and compacts behind it; the
    // writer crashes before the Ready carrying the new commit index is
    // durable.
    let rd = node.ready().expect("ready");
    let applied = rd.committed_entries.last().expect("committed").index;
    assert_eq!(applied, Index(4));
    assert!(storage.hard_state().commit < applied);
    storage
        .create_snapshot(
            applied,
            storage.initial_state().expect("state").conf_state,
            Bytes::new(),
        )
        .expect("snapshot");
    storage.compact(applied.prev()).expect("compact");
    drop(node);

    // The restart resumes at the state machine's applied index.
    cfg.applied = applied;
    let mut node = RawNode::new(cfg, storage.clone()).expect("restart at the applied index");
    assert_eq!(node.status().applied, applied);
    node.campaign().expect("campaign");
    while node.has_ready() {
        let rd = node.ready().expect("no ready fails after the restart");
        storage.persist(&rd).expect("persist");
        assert!(rd.committed_entries.iter().all(|e| e.index > applied));
        node.on_persisted(rd.number).expect("persisted");
    }
}
