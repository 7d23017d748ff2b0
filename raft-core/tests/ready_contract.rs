//! The Ready contract: what may be sent before persisting, what must wait,
//! when an fsync is required, and that a node's own durable state counts
//! only after `advance`.

mod support;

use bytes::Bytes;
use raft_core::{Index, MessageBody, RoleKind, Term};
use support::{Cluster, append, id, is_kind, msg, vote_req};

fn kinds(ms: &[raft_core::Message]) -> Vec<&'static str> {
    ms.iter().map(|m| m.body.kind_name()).collect()
}

#[test]
fn vote_responses_wait_for_persistence_in_persisted_messages() {
    for pre in [false, true] {
        let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
        let req = vote_req((0, 0), false);
        let body = if pre {
            MessageBody::PreVote(req)
        } else {
            MessageBody::Vote(req)
        };
        c.step(msg(2, 1, 1, body)).expect("step");
        let rd = c.handle_ready(1).expect("ready");
        assert!(
            rd.messages.is_empty(),
            "pre {pre}: {:?}",
            kinds(&rd.messages)
        );
        let want = if pre {
            "PreVoteResponse"
        } else {
            "VoteResponse"
        };
        assert_eq!(kinds(&rd.persisted_messages), vec![want]);
        if !pre {
            let hs = rd.hard_state.expect("vote to persist");
            assert_eq!((hs.term, hs.vote), (Term(1), Some(id(2))));
            assert!(rd.must_sync, "the vote must be durable before it is sent");
        }
    }
}

#[test]
fn append_responses_wait_for_persistence_in_persisted_messages() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.step(msg(1, 2, 1, append((0, 0), &[(1, 1)], 0)))
        .expect("step");
    let rd = c.handle_ready(2).expect("ready");
    assert!(rd.messages.is_empty(), "{:?}", kinds(&rd.messages));
    assert_eq!(kinds(&rd.persisted_messages), vec!["AppendResponse"]);
    assert_eq!(rd.entries.len(), 1);
    assert!(rd.must_sync);
    // A rejection vouches for the log too.
    c.step(msg(1, 2, 1, append((1, 5), &[], 0))).expect("step");
    let rd = c.handle_ready(2).expect("ready");
    assert!(rd.messages.is_empty());
    assert_eq!(kinds(&rd.persisted_messages), vec!["AppendResponse"]);
}

#[test]
fn leader_appends_and_heartbeats_are_sent_without_waiting_for_persistence() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.elect(1);
    c.propose(1, b"x");
    let rd = c.handle_ready(1).expect("ready");
    assert_eq!(kinds(&rd.messages), vec!["Append", "Append"]);
    assert!(rd.persisted_messages.is_empty());
    assert_eq!(rd.entries.len(), 1, "written in parallel with the sends");
    assert!(rd.must_sync);
    c.tick(1, 1);
    let rd = c.handle_ready(1).expect("ready");
    assert_eq!(kinds(&rd.messages), vec!["Heartbeat", "Heartbeat"]);
    assert!(rd.persisted_messages.is_empty());
    assert!(!rd.must_sync);
}

#[test]
fn candidate_vote_requests_wait_until_the_new_term_is_durable() {
    // Thesis §3.8: otherwise a candidate that crashed before persisting
    // could restart in the old term and be elected twice in the new one.
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.node(1).raw.campaign().expect("campaign");
    let rd = c.handle_ready(1).expect("ready");
    assert!(rd.messages.is_empty());
    assert_eq!(kinds(&rd.persisted_messages), vec!["Vote", "Vote"]);
    assert!(rd.must_sync, "term and vote changed");
}

#[test]
fn pre_vote_requests_are_sent_without_waiting_for_persistence() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).pre_vote(true).build();
    c.node(1).raw.campaign().expect("campaign");
    let rd = c.handle_ready(1).expect("ready");
    assert_eq!(kinds(&rd.messages), vec!["PreVote", "PreVote"]);
}

#[test]
fn must_sync_is_false_for_a_commit_only_change() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.elect(1);
    c.propose(1, b"x");
    c.process_ready(1);
    c.deliver_where(|m| m.to == id(2) && is_kind(m, "Append"));
    let rd = c.handle_ready(2).expect("ready");
    assert!(rd.must_sync, "new entry");
    c.clear_queue();
    // The follower learns the commit index only.
    c.step(msg(
        1,
        2,
        1,
        MessageBody::Heartbeat(raft_core::Heartbeat {
            commit: Index(2),
            read_round: None,
        }),
    ))
    .expect("step");
    let rd = c.handle_ready(2).expect("ready");
    let hs = rd.hard_state.expect("commit changed");
    assert_eq!(hs.commit, Index(2));
    assert!(rd.entries.is_empty());
    assert_eq!(rd.committed_entries.len(), 1);
    assert!(!rd.must_sync, "a commit-only change needs no fsync");
}

#[test]
fn must_sync_is_true_for_a_term_only_change() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.step(msg(
        2,
        1,
        4,
        MessageBody::Heartbeat(raft_core::Heartbeat {
            commit: Index(0),
            read_round: None,
        }),
    ))
    .expect("step");
    let rd = c.handle_ready(1).expect("ready");
    assert_eq!(rd.hard_state.map(|h| h.term), Some(Term(4)));
    assert!(rd.entries.is_empty());
    assert!(rd.must_sync);
}

#[test]
fn single_node_becomes_leader_only_after_its_self_vote_is_persisted() {
    for pre_vote in [false, true] {
        let mut c = Cluster::builder().voters(&[1]).pre_vote(pre_vote).build();
        c.node(1).raw.campaign().expect("campaign");
        assert_eq!(c.role(1), RoleKind::Candidate, "pre_vote {pre_vote}");
        let rd = c.node(1).raw.ready().expect("ready");
        let hs = rd.hard_state.expect("term and vote");
        assert_eq!((hs.term, hs.vote), (Term(1), Some(id(1))));
        assert!(rd.must_sync);
        assert_eq!(
            c.role(1),
            RoleKind::Candidate,
            "not leader before the vote is durable"
        );
        c.node(1).storage.persist(&rd).expect("persist");
        c.node(1).raw.advance().expect("advance");
        assert_eq!(c.role(1), RoleKind::Leader, "pre_vote {pre_vote}");
        c.stabilize();
        assert_eq!(c.commit(1), Index(1), "its no-op commits");
    }
}

#[test]
fn leader_counts_its_own_entry_toward_commit_only_after_persisting_it() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.elect(1);
    c.propose(1, b"x");
    // Take the Ready but do not persist it yet.
    let rd = c.node(1).raw.ready().expect("ready");
    assert_eq!(rd.entries.len(), 1);
    for m in rd.messages.iter().filter(|m| m.to == id(2)) {
        c.deliver(m.clone());
    }
    c.process_ready(2);
    c.deliver_where(|m| m.from == id(2) && is_kind(m, "AppendResponse"));
    assert_eq!(
        c.commit(1),
        Index(1),
        "follower + unpersisted leader is no quorum"
    );
    c.node(1).storage.persist(&rd).expect("persist");
    c.node(1).raw.advance().expect("advance");
    assert_eq!(c.commit(1), Index(2), "leader + follower is a quorum");
    c.stabilize();
    assert_eq!(c.applied_data(1), vec![Bytes::from_static(b"x")]);
}

#[test]
fn no_durable_response_is_ever_in_messages_during_a_turbulent_run() {
    // `handle_ready` asserts the split for every Ready; drive elections,
    // partitions and proposals through it and check the run did something.
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3, 4, 5])
        .pre_vote(true)
        .check_quorum(true)
        .build();
    c.elect(1);
    for round in 0..6u64 {
        let victim = round % 5 + 1;
        c.isolate(victim);
        c.tick_all(25);
        if let Some(&l) = c.leaders().first() {
            let _ = c.node(l).raw.propose(Bytes::from(format!("r{round}")));
        }
        c.heal();
        c.tick_all(25);
    }
    assert!(c.count_delivered(|m| is_kind(m, "VoteResponse")) > 4);
    assert!(c.count_delivered(|m| is_kind(m, "AppendResponse")) > 10);
    let leaders = c.leaders();
    assert_eq!(leaders.len(), 1);
    let applied = c.applied_data(leaders[0]);
    assert!(!applied.is_empty());
    for n in 1..=5 {
        assert_eq!(c.applied_data(n), applied, "node {n}");
    }
}
