//! Linearizable reads (thesis §6.4) and leadership transfer (thesis §3.10).

mod support;

use bytes::Bytes;
use raft_core::{Index, ProposeError, ReadIndexError, ReadOnlyOption, RoleKind, TransferError};
use support::{Cluster, id};

fn three_nodes() -> Cluster {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .pre_vote(true)
        .check_quorum(true)
        .build();
    c.elect(1);
    c
}

#[test]
fn read_index_on_leader_is_answered_after_a_quorum_heartbeat_round() {
    let mut c = three_nodes();
    c.propose(1, b"w1");
    c.stabilize();
    c.node(1).raw.read_index(&b"r1"[..]).expect("read accepted");
    c.process_ready(1);
    assert!(
        c.node(1).read_states.is_empty(),
        "not answered before the round completes"
    );
    c.stabilize();
    let rs = c.node(1).read_states.clone();
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].context, Bytes::from_static(b"r1"));
    assert_eq!(rs[0].index, c.commit(1));
}

#[test]
fn an_echo_of_a_round_the_leader_never_sent_confirms_no_read() {
    let mut c = three_nodes();
    c.isolate(1);
    c.node(1).raw.read_index(&b"r"[..]).expect("read accepted");
    c.stabilize();
    // Round 1 is out; a confused or forged answer names round 99, which
    // this leader never sent. Before, it counted as an acknowledgement of
    // every round up to 99, and with the leader's own that made a quorum
    // for round 1.
    let forged = raft_core::Message {
        from: id(2),
        to: id(1),
        term: c.term(1),
        body: raft_core::MessageBody::HeartbeatResponse(raft_core::HeartbeatResponse {
            read_round: Some(raft_core::ReadRound::new(99)),
        }),
    };
    c.step(forged).expect("stepped");
    c.process_ready(1);
    assert!(
        c.node(1).read_states.is_empty(),
        "no read is confirmed by a round that was never sent"
    );
    c.heal();
    // The next heartbeat carries the pending round again.
    c.tick(1, 1);
    c.stabilize();
    assert_eq!(c.node(1).read_states.len(), 1, "the real round confirms it");
}

#[test]
fn read_index_is_not_answered_when_the_leader_is_partitioned() {
    let mut c = three_nodes();
    c.isolate(1);
    c.node(1).raw.read_index(&b"r"[..]).expect("read accepted");
    c.stabilize();
    assert!(
        c.node(1).read_states.is_empty(),
        "a minority leader must not confirm reads"
    );
}

#[test]
fn read_index_from_a_follower_is_forwarded_and_answered() {
    let mut c = three_nodes();
    c.propose(1, b"w1");
    c.stabilize();
    c.node(2).raw.read_index(&b"f"[..]).expect("read accepted");
    c.stabilize();
    let rs = c.node(2).read_states.clone();
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].index, c.commit(1));
    assert_eq!(rs[0].context, Bytes::from_static(b"f"));
}

#[test]
fn read_index_waits_for_the_first_commit_of_the_new_term() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.elect(1);
    // Node 2 becomes leader; before its no-op commits, a read arrives.
    c.node(2).raw.campaign().expect("campaign");
    // Deliver only what is needed for the election, not the no-op acks.
    for _ in 0..6 {
        c.process_all();
        c.deliver_all();
        if c.role(2) == RoleKind::Leader {
            break;
        }
    }
    assert_eq!(c.role(2), RoleKind::Leader);
    let commit_before = c.commit(2);
    c.node(2)
        .raw
        .read_index(&b"early"[..])
        .expect("read accepted");
    c.process_ready(2);
    assert!(c.node(2).read_states.is_empty());
    c.stabilize();
    let rs = c.node(2).read_states.clone();
    assert_eq!(rs.len(), 1);
    assert!(
        rs[0].index > commit_before,
        "the answer covers the new term's no-op"
    );
}

#[test]
fn repeated_read_contexts_get_their_own_rounds() {
    let mut c = three_nodes();
    c.node(1).raw.read_index(&b"same"[..]).expect("read");
    c.stabilize();
    c.propose(1, b"w");
    c.stabilize();
    c.node(1).raw.read_index(&b"same"[..]).expect("read");
    c.stabilize();
    let rs = c.node(1).read_states.clone();
    assert_eq!(rs.len(), 2);
    assert!(
        rs[1].index > rs[0].index,
        "a retried context is never answered with a stale index"
    );
}

/// Three voters with lease reads (and the CheckQuorum they need).
fn lease_cluster() -> Cluster {
    Cluster::builder()
        .voters(&[1, 2, 3])
        .check_quorum(true)
        .election_ticks(10)
        .configure(|cfg| cfg.read_only_option = ReadOnlyOption::LeaseBased)
        .build()
}

#[test]
fn lease_reads_are_answered_without_a_round_trip_until_the_lease_runs_out() {
    let mut c = lease_cluster();
    // Nodes that just started refuse votes for an election timeout, so the
    // first leader comes from the election timers.
    c.tick_all(40);
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1, "{leaders:?}");
    let leader = leaders[0];
    c.isolate(leader);
    c.node(leader)
        .raw
        .read_index(&b"in lease"[..])
        .expect("read");
    c.process_ready(leader);
    assert_eq!(
        c.node(leader).read_states.len(),
        1,
        "answered from the lease"
    );
    // An election timeout after the last acknowledged heartbeat was sent,
    // the lease is over: no answer without a quorum (or no leader at all).
    c.tick(leader, 10);
    let _ = c.node(leader).raw.read_index(&b"expired"[..]);
    c.process_ready(leader);
    assert_eq!(
        c.node(leader).read_states.len(),
        1,
        "answered after the lease ran out"
    );
}

#[test]
fn a_node_ignores_vote_requests_for_an_election_timeout_after_it_starts_with_lease_reads() {
    let mut c = lease_cluster();
    c.campaign(1);
    assert_eq!(c.role(1), RoleKind::Candidate, "votes ignored at start");
    assert_eq!(c.vote(2), None);
    assert_eq!(c.vote(3), None);
}

#[test]
fn read_index_without_a_leader_is_refused() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    let err = c.node(2).raw.read_index(&b"x"[..]).expect_err("no leader");
    assert!(matches!(err, ReadIndexError::NoLeader));
}

#[test]
fn transfer_to_an_up_to_date_follower_makes_it_leader() {
    let mut c = three_nodes();
    c.node(1).raw.transfer_leader(id(2)).expect("transfer");
    c.stabilize();
    assert_eq!(c.role(2), RoleKind::Leader);
    assert_eq!(c.role(1), RoleKind::Follower);
}

#[test]
fn transfer_to_a_lagging_follower_catches_it_up_first() {
    let mut c = three_nodes();
    c.isolate(3);
    for _ in 0..5 {
        c.propose(1, b"w");
    }
    c.stabilize();
    c.heal();
    c.node(1).raw.transfer_leader(id(3)).expect("transfer");
    c.stabilize();
    assert_eq!(c.role(3), RoleKind::Leader);
    assert_eq!(c.log_terms(3), c.log_terms(1));
}

#[test]
fn proposals_during_a_transfer_are_refused() {
    let mut c = three_nodes();
    c.isolate(3);
    c.node(1).raw.transfer_leader(id(3)).expect("transfer");
    let err = c
        .node(1)
        .raw
        .propose(Bytes::from_static(b"x"))
        .expect_err("refused");
    assert!(matches!(err, ProposeError::TransferInProgress { target } if target == id(3)));
}

#[test]
fn transfer_is_aborted_after_an_election_timeout() {
    let mut c = three_nodes();
    c.isolate(3);
    c.node(1).raw.transfer_leader(id(3)).expect("transfer");
    c.tick(1, 10);
    assert_eq!(c.status(1).transferee, None);
    assert_eq!(
        c.role(1),
        RoleKind::Leader,
        "node 2 still acks, so node 1 keeps leading"
    );
    c.node(1)
        .raw
        .propose(Bytes::from_static(b"x"))
        .expect("proposals flow again");
}

#[test]
fn transfer_to_a_learner_is_refused() {
    let mut c = Cluster::builder().voters(&[1, 2]).learners(&[3]).build();
    c.elect(1);
    let err = c.node(1).raw.transfer_leader(id(3)).expect_err("learner");
    assert!(matches!(err, TransferError::NotVoter { .. }));
}

#[test]
fn transfer_target_wins_even_inside_the_vote_lease() {
    // With CheckQuorum every follower is inside its leader lease; the
    // transfer's vote requests must still be granted.
    let mut c = three_nodes();
    c.propose(1, b"w");
    c.stabilize();
    c.node(1).raw.transfer_leader(id(3)).expect("transfer");
    c.stabilize();
    assert_eq!(c.role(3), RoleKind::Leader);
    assert!(c.commit(3) >= Index(2));
}

#[test]
fn follower_forwards_a_transfer_request_to_the_leader() {
    let mut c = three_nodes();
    c.node(2).raw.transfer_leader(id(3)).expect("forwarded");
    c.stabilize();
    assert_eq!(c.role(3), RoleKind::Leader);
}

#[test]
fn read_index_under_leader_change_never_returns_a_stale_index() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.elect(1);
    c.propose(1, b"w0");
    c.stabilize();
    // The old leader is cut off with a read in flight.
    c.isolate(1);
    c.node(1)
        .raw
        .read_index(&b"stale?"[..])
        .expect("read accepted");
    c.stabilize();
    // A new leader commits a write the old one never saw.
    c.elect(2);
    c.propose(2, b"w1");
    c.stabilize();
    let acknowledged = c.commit(2);
    c.heal();
    c.tick_all(3);
    c.stabilize();
    for rs in &c.node(1).read_states {
        assert!(
            rs.index >= acknowledged,
            "read answered at {} < {}",
            rs.index,
            acknowledged
        );
    }
    // A read retried on the new leader sees the write.
    c.node(2).raw.read_index(&b"retry"[..]).expect("read");
    c.stabilize();
    let rs = c.node(2).read_states.clone();
    assert!(
        rs.iter()
            .any(|r| r.context == Bytes::from_static(b"retry") && r.index >= acknowledged)
    );
}
