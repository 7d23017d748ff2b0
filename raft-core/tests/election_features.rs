//! Pre-vote (thesis §9.6) and CheckQuorum (thesis §6.2, §4.2.3), each on
//! and off: what they prevent and what happens without them.

mod support;

use bytes::Bytes;
use raft_core::{MessageBody, RoleKind, Term};
use support::{Cluster, is_kind, msg, vote_rejected, vote_req};

// ------------------------------------------------------------ pre-vote

/// Nodes 1 and 2 hold three entries of term 1; node 3 only the first.
fn lagging_node_cluster(pre_vote: bool) -> Cluster {
    Cluster::builder()
        .voters(&[1, 2, 3])
        .pre_vote(pre_vote)
        .log(1, &[1, 1, 1], 1)
        .log(2, &[1, 1, 1], 1)
        .log(3, &[1], 1)
        .build()
}

#[test]
fn pre_vote_a_node_with_a_shorter_log_cannot_win_and_no_term_moves() {
    let mut c = lagging_node_cluster(true);
    c.campaign(3);
    assert_eq!(c.role(3), RoleKind::Follower, "pre-election lost");
    for n in 1..=3 {
        assert_eq!(c.term(n), Term(1), "node {n}: term untouched");
        assert_eq!(c.vote(n), None, "node {n}: no vote cast");
    }
    assert_eq!(c.count_delivered(|m| is_kind(m, "Vote")), 0);
    let refusals: Vec<bool> = c
        .delivered
        .iter()
        .filter(|m| is_kind(m, "PreVoteResponse"))
        .map(vote_rejected)
        .collect();
    assert_eq!(refusals, vec![true, true]);
    // An up-to-date node still wins, pre-vote then vote.
    c.elect(1);
    assert_eq!(c.term(1), Term(2));
}

#[test]
fn without_pre_vote_a_node_with_a_shorter_log_bumps_every_term_and_still_loses() {
    let mut c = lagging_node_cluster(false);
    c.campaign(3);
    assert_eq!(c.role(3), RoleKind::Follower, "election lost");
    assert!(c.leaders().is_empty());
    for n in 1..=3 {
        assert_eq!(c.term(n), Term(2), "node {n}: disrupted into term 2");
    }
}

#[test]
fn pre_candidate_does_not_persist_anything_before_winning_the_pre_vote() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).pre_vote(true).build();
    c.node(1).raw.campaign().expect("campaign");
    assert_eq!(c.role(1), RoleKind::PreCandidate);
    let rd = c.handle_ready(1).expect("ready");
    assert_eq!(rd.hard_state, None, "term and vote unchanged");
    assert!(!rd.must_sync);
    assert!(rd.messages.iter().all(|m| is_kind(m, "PreVote")));
    assert!(rd.messages.iter().all(|m| m.term == Term(1)));
    assert_eq!(c.term(1), Term(0));
}

/// Elects node 1, partitions node 3 for 100 ticks while the others commit
/// an entry, heals, and returns the cluster after 30 more ticks (with the
/// delivery log cleared at the partition).
fn partition_and_rejoin(pre_vote: bool, check_quorum: bool) -> Cluster {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .pre_vote(pre_vote)
        .check_quorum(check_quorum)
        .build();
    c.elect(1);
    c.delivered.clear();
    c.isolate(3);
    c.propose(1, b"while-partitioned");
    c.stabilize();
    c.tick_all(100);
    c.heal();
    c.tick_all(30);
    c
}

#[test]
fn pre_vote_a_partitioned_node_does_not_disrupt_the_cluster_when_it_rejoins() {
    for check_quorum in [false, true] {
        let c = partition_and_rejoin(true, check_quorum);
        assert_eq!(c.leaders(), vec![1], "check_quorum {check_quorum}");
        for n in 1..=3 {
            assert_eq!(c.term(n), Term(1), "check_quorum {check_quorum}, node {n}");
        }
        assert_eq!(
            c.count_delivered(|m| is_kind(m, "Vote")),
            0,
            "no real election ever started"
        );
        assert_eq!(
            c.applied_data(3),
            vec![Bytes::from_static(b"while-partitioned")],
            "the rejoined node caught up"
        );
    }
}

#[test]
fn without_pre_vote_a_partitioned_node_disrupts_the_leader_when_it_rejoins() {
    for check_quorum in [false, true] {
        let mut c = partition_and_rejoin(false, check_quorum);
        assert!(
            c.term(1) > Term(1),
            "check_quorum {check_quorum}: the rejoining node's inflated term deposes the leader"
        );
        // The cluster recovers, under a new leader: never the lagging node.
        let mut ticks = 0;
        while c.leaders().len() != 1 {
            c.tick_all(1);
            ticks += 1;
            assert!(ticks < 500, "check_quorum {check_quorum}: no leader");
        }
        assert_ne!(c.leaders(), vec![3], "the lagging node cannot win");
    }
}

// -------------------------------------------------------- check quorum

#[test]
fn check_quorum_leader_steps_down_without_hearing_from_a_quorum() {
    let et = 10;
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .check_quorum(true)
        .election_ticks(et)
        .build();
    c.elect(1);
    c.isolate(1);
    c.tick(1, et);
    assert_eq!(
        c.role(1),
        RoleKind::Leader,
        "it heard from a quorum in the first round"
    );
    c.tick(1, et);
    assert_eq!(
        c.role(1),
        RoleKind::Follower,
        "no quorum in the second round"
    );
    assert_eq!(c.term(1), Term(1), "stepping down does not bump the term");
    assert_eq!(c.leader_of(1), None);
    assert!(matches!(
        c.node(1).raw.propose(Bytes::from_static(b"x")),
        Err(raft_core::ProposeError::NoLeader)
    ));
}

#[test]
fn without_check_quorum_an_isolated_leader_keeps_leading() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.elect(1);
    c.isolate(1);
    c.tick(1, 200);
    assert_eq!(c.role(1), RoleKind::Leader);
}

#[test]
fn check_quorum_leader_with_a_live_quorum_keeps_leading() {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3, 4, 5])
        .check_quorum(true)
        .pre_vote(true)
        .build();
    c.elect(1);
    c.isolate(5);
    c.isolate(4);
    c.tick_all(100);
    assert_eq!(c.role(1), RoleKind::Leader, "1, 2, 3 are a quorum of 5");
    assert_eq!(c.term(1), Term(1));
}

/// Elects node 1 (term 1) and asks node 2 for a vote in term 5 from node 3.
fn vote_request_to_follower_of_live_leader(
    check_quorum: bool,
    pre: bool,
    transfer: bool,
) -> Cluster {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .check_quorum(check_quorum)
        .build();
    c.elect(1);
    c.clear_queue();
    let req = vote_req((1, 1), transfer);
    let body = if pre {
        MessageBody::PreVote(req)
    } else {
        MessageBody::Vote(req)
    };
    c.step(msg(3, 2, 5, body)).expect("step");
    c
}

#[test]
fn check_quorum_follower_with_a_live_leader_ignores_higher_term_vote_requests() {
    for pre in [false, true] {
        let mut c = vote_request_to_follower_of_live_leader(true, pre, false);
        assert_eq!(c.term(2), Term(1), "pre {pre}: term not adopted");
        assert_eq!(c.vote(2), Some(1));
        assert_eq!(c.leader_of(2), Some(1), "pre {pre}: still follows");
        assert!(c.process_ready(2).is_empty(), "pre {pre}: no answer");
    }
}

#[test]
fn check_quorum_follower_grants_a_leadership_transfer_vote_despite_a_live_leader() {
    let mut c = vote_request_to_follower_of_live_leader(true, false, true);
    assert_eq!(c.term(2), Term(5));
    assert_eq!(c.vote(2), Some(3));
    let out = c.process_ready(2);
    assert_eq!(out.len(), 1);
    assert!(!vote_rejected(&out[0]));
}

#[test]
fn without_check_quorum_a_follower_with_a_live_leader_grants_higher_term_votes() {
    let mut c = vote_request_to_follower_of_live_leader(false, false, false);
    assert_eq!(c.term(2), Term(5));
    assert_eq!(c.vote(2), Some(3));
    let out = c.process_ready(2);
    assert_eq!(out.len(), 1);
    assert!(!vote_rejected(&out[0]));
}

#[test]
fn check_quorum_follower_grants_votes_once_the_leader_lease_expired() {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .check_quorum(true)
        .pre_vote(true)
        .build();
    c.elect(1);
    c.isolate(1);
    c.tick(2, 10);
    c.clear_queue();
    c.step(msg(3, 2, 5, MessageBody::Vote(vote_req((1, 1), false))))
        .expect("step");
    assert_eq!(c.term(2), Term(5));
    assert_eq!(c.vote(2), Some(3));
}

/// Five nodes; node 1 leads, is partitioned, accepts a proposal it can never
/// commit; the others elect a new leader and commit their own; after healing
/// the old leader's entry is gone everywhere.
fn old_leader_cannot_commit(check_quorum: bool) {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3, 4, 5])
        .check_quorum(check_quorum)
        .build();
    c.elect(1);
    c.propose(1, b"before");
    c.stabilize();
    let committed = c.commit(1);
    c.isolate(1);
    c.propose(1, b"stale");
    c.stabilize();
    assert!(log_data(&c, 1).contains(&Bytes::from_static(b"stale")));
    let mut rounds = 0;
    while !c.leaders().iter().any(|&l| l != 1) {
        c.tick_all(1);
        assert_eq!(c.commit(1), committed, "the old leader never commits");
        rounds += 1;
        assert!(rounds < 200, "no new leader elected");
    }
    let new = c
        .leaders()
        .into_iter()
        .find(|&l| l != 1)
        .expect("new leader");
    c.propose(new, b"fresh");
    c.stabilize();
    c.tick_all(30);
    assert_eq!(c.commit(1), committed, "the old leader never commits");
    let old_role = c.role(1);
    if check_quorum {
        assert_ne!(old_role, RoleKind::Leader, "it stepped down");
    } else {
        assert_eq!(old_role, RoleKind::Leader, "it cannot know it was deposed");
    }
    // The stale proposal stays uncommitted however long the partition.
    c.heal();
    c.tick_all(30);
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1, "{leaders:?}");
    let leader = leaders[0];
    assert_ne!(leader, 1, "the old leader's log is behind");
    let want = vec![Bytes::from_static(b"before"), Bytes::from_static(b"fresh")];
    for n in 1..=5 {
        assert_eq!(
            c.applied_data(n),
            want,
            "check_quorum {check_quorum}, node {n}"
        );
        assert_eq!(c.log_terms(n), c.log_terms(leader), "node {n}");
        assert!(
            !log_data(&c, n).contains(&Bytes::from_static(b"stale")),
            "node {n}: the old leader's entry was overwritten"
        );
    }
}

/// The payloads of `raw`'s stored log.
fn log_data(c: &Cluster, raw: u64) -> Vec<Bytes> {
    use raft_core::Storage;
    let s = &c.nodes[&support::id(raw)].storage;
    let (first, last) = (
        s.first_index().expect("first"),
        s.last_index().expect("last"),
    );
    s.entries(first, last.next(), u64::MAX)
        .expect("entries")
        .into_iter()
        .map(|e| e.data)
        .collect()
}

#[test]
fn check_quorum_partitioned_old_leader_cannot_commit_new_proposals() {
    old_leader_cannot_commit(true);
}

#[test]
fn without_check_quorum_partitioned_old_leader_cannot_commit_new_proposals() {
    old_leader_cannot_commit(false);
}

// ------------------------------------------------------ election pacing

#[test]
fn election_due_names_the_tick_that_starts_an_election_and_never_holds_on_a_leader() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).pre_vote(true).build();
    let mut ticks = 0;
    while !c.node(1).raw.election_due() {
        c.node(1).raw.tick().expect("tick");
        assert_eq!(
            c.role(1),
            RoleKind::Follower,
            "no election before it is due"
        );
        ticks += 1;
        assert!(ticks < 100, "an election falls due within two timeouts");
    }
    c.node(1).raw.tick().expect("tick");
    assert_eq!(c.role(1), RoleKind::PreCandidate, "the due tick campaigns");
    assert!(!c.node(1).raw.election_due(), "the timer starts over");
    c.stabilize();
    assert_eq!(c.role(1), RoleKind::Leader);
    for _ in 0..100 {
        assert!(!c.node(1).raw.election_due(), "a leader never campaigns");
        c.node(1).raw.tick().expect("tick");
    }
}
