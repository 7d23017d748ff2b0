//! The claims of the Raft paper, §5.1–§5.4, one test per claim.
//!
//! "In Search of an Understandable Consensus Algorithm" (Ongaro and
//! Ousterhout, 2014). Every test drives nodes through the public `RawNode`
//! API only, following the Ready contract (see `support`). Pre-vote and
//! CheckQuorum are off unless a test says otherwise, as in the paper.

mod support;

use std::collections::BTreeSet;

use bytes::Bytes;
use raft_core::{Heartbeat, Index, LogId, MessageBody, Proposal, RoleKind, Term, VoteResponse};
use support::{
    Cluster, append, as_append, as_append_response, id, is_kind, msg, vote_rejected, vote_req,
};

fn three() -> Cluster {
    Cluster::builder().voters(&[1, 2, 3]).build()
}

fn heartbeat(commit: u64) -> MessageBody {
    MessageBody::Heartbeat(Heartbeat {
        commit: Index(commit),
        read_round: None,
    })
}

fn append_response(index: u64) -> MessageBody {
    MessageBody::AppendResponse(raft_core::AppendResponse {
        index: Index(index),
        reject: None,
        commit: Index(0),
    })
}

/// Message bodies a node may receive from a peer at a higher term, each with
/// whether it reveals the sender as the leader of that term.
fn higher_term_bodies() -> Vec<(MessageBody, bool)> {
    vec![
        (append((0, 0), &[], 0), true),
        (heartbeat(0), true),
        (MessageBody::Vote(vote_req((0, 0), false)), false),
        (
            MessageBody::VoteResponse(VoteResponse { reject: true }),
            false,
        ),
        (append_response(0), false),
    ]
}

/// Steps each higher-term message into node 1 after `setup` and checks that
/// it adopts the term and becomes a follower (paper §5.1).
fn assert_higher_term_makes_follower(setup: impl Fn() -> Cluster, role_before: RoleKind) {
    for (body, from_leader) in higher_term_bodies() {
        let kind = body.kind_name();
        let mut c = setup();
        assert_eq!(c.role(1), role_before, "setup for {kind}");
        let before = c.term(1).get();
        let higher = before + 5;
        c.step(msg(2, 1, higher, body)).expect("step");
        assert_eq!(c.term(1), Term(higher), "{kind}: term adopted");
        assert_eq!(c.role(1), RoleKind::Follower, "{kind}: became follower");
        let expected_leader = from_leader.then_some(2);
        assert_eq!(c.leader_of(1), expected_leader, "{kind}: leader");
        let hs = c.handle_ready(1).expect("ready").hard_state;
        assert_eq!(
            hs.map(|h| h.term),
            Some(Term(higher)),
            "{kind}: new term persisted"
        );
    }
}

// ---------------------------------------------------------------- §5.1

#[test]
fn follower_adopts_a_higher_term_and_stays_follower() {
    assert_higher_term_makes_follower(
        || Cluster::builder().voters(&[1, 2, 3]).log(1, &[], 2).build(),
        RoleKind::Follower,
    );
}

#[test]
fn candidate_adopts_a_higher_term_and_becomes_follower() {
    assert_higher_term_makes_follower(
        || {
            let mut c = three();
            c.node(1).raw.campaign().expect("campaign");
            c.process_ready(1);
            c.clear_queue();
            c
        },
        RoleKind::Candidate,
    );
}

#[test]
fn leader_adopts_a_higher_term_and_becomes_follower() {
    assert_higher_term_makes_follower(
        || {
            let mut c = three();
            c.elect(1);
            c
        },
        RoleKind::Leader,
    );
}

#[test]
fn follower_ignores_messages_from_an_older_term() {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .log(1, &[1], 3)
        .build();
    c.step(msg(2, 1, 2, append((1, 1), &[(2, 2)], 2)))
        .expect("step");
    c.step(msg(2, 1, 2, heartbeat(1))).expect("step");
    c.step(msg(3, 1, 2, MessageBody::Vote(vote_req((2, 9), false))))
        .expect("step");
    let st = c.status(1);
    assert_eq!(st.hard_state.term, Term(3));
    assert_eq!(st.hard_state.vote, None, "no vote for a stale candidate");
    assert_eq!(st.hard_state.commit, Index(0), "stale commit not adopted");
    assert_eq!(st.last_index, Index(1), "stale entries not appended");
    assert_eq!(st.soft_state.leader, None, "stale leader not followed");
    // Paper §5.1: every stale sender is told the current term: the stale
    // leader by an append response per append or heartbeat, the stale
    // candidate by a rejection.
    let sent = c.process_ready(1);
    assert_eq!(sent.len(), 3, "{sent:?}");
    for m in &sent {
        assert_eq!(m.term, Term(3));
        match &m.body {
            MessageBody::AppendResponse(_) => assert_eq!(m.to.get(), 2),
            MessageBody::VoteResponse(r) => {
                assert_eq!(m.to.get(), 3);
                assert!(r.reject);
            }
            other => panic!("unexpected {}", other.kind_name()),
        }
    }
}

#[test]
fn candidate_and_leader_ignore_messages_from_an_older_term() {
    // A candidate at term 2 ignores a term-1 leader's append.
    let mut c = three();
    c.node(1).raw.campaign().expect("campaign");
    c.node(1).raw.campaign().expect("campaign again");
    assert_eq!(c.term(1), Term(2));
    c.step(msg(2, 1, 1, append((0, 0), &[(1, 1)], 0)))
        .expect("step");
    assert_eq!(c.role(1), RoleKind::Candidate);
    assert_eq!(c.status(1).last_index, Index(0));

    // A candidate at term 2 does not count grants from term 1.
    let mut c = three();
    c.node(1).raw.campaign().expect("campaign");
    c.node(1).raw.campaign().expect("campaign again");
    c.process_ready(1);
    for from in [2, 3] {
        let body = MessageBody::VoteResponse(VoteResponse { reject: false });
        c.step(msg(from, 1, 1, body)).expect("step");
    }
    assert_eq!(c.role(1), RoleKind::Candidate, "stale grants do not elect");

    // A leader at term 2 ignores a term-1 vote request and heartbeat.
    let mut c = Cluster::builder().voters(&[1, 2, 3]).log(1, &[], 1).build();
    c.elect(1);
    assert_eq!(c.term(1), Term(2));
    c.step(msg(3, 1, 1, MessageBody::Vote(vote_req((1, 9), false))))
        .expect("step");
    c.step(msg(3, 1, 1, heartbeat(5))).expect("step");
    assert_eq!(c.role(1), RoleKind::Leader);
    assert_eq!(c.term(1), Term(2));
    assert_eq!(c.vote(1), Some(1));
}

#[test]
fn stale_append_is_answered_with_the_current_term_under_check_quorum() {
    // With CheckQuorum (or PreVote) a deposed leader may never see a
    // higher-term vote request, so followers tell it the term.
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .check_quorum(true)
        .log(1, &[], 3)
        .build();
    c.step(msg(2, 1, 2, heartbeat(0))).expect("step");
    let out = c.process_ready(1);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(is_kind(&out[0], "AppendResponse"));
    assert_eq!(out[0].to, id(2));
    assert_eq!(out[0].term, Term(3));
    assert_eq!(c.term(1), Term(3));
}

// ---------------------------------------------------------------- §5.2

#[test]
fn nodes_start_as_followers_without_a_leader() {
    let c = Cluster::builder().voters(&[1, 2, 3, 4, 5]).build();
    for n in 1..=5 {
        let st = c.status(n);
        assert_eq!(st.soft_state.role, RoleKind::Follower, "node {n}");
        assert_eq!(st.soft_state.leader, None, "node {n}");
        assert_eq!(st.hard_state.term, Term(0), "node {n}");
        assert_eq!(st.hard_state.vote, None, "node {n}");
    }
}

#[test]
fn leader_sends_heartbeats_to_every_follower_each_heartbeat_interval() {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .heartbeat_ticks(3)
        .election_ticks(20)
        .build();
    c.elect(1);
    c.clear_queue();
    for round in 0..4 {
        c.tick(1, 2);
        let early = c.process_ready(1);
        assert!(
            !early.iter().any(|m| is_kind(m, "Heartbeat")),
            "round {round}: heartbeat before the interval: {early:?}"
        );
        c.tick(1, 1);
        let out = c.process_ready(1);
        let mut to: Vec<u64> = out
            .iter()
            .filter(|m| is_kind(m, "Heartbeat"))
            .map(|m| {
                assert_eq!(m.term, Term(1));
                m.to.get()
            })
            .collect();
        to.sort_unstable();
        assert_eq!(to, vec![2, 3], "round {round}: one heartbeat per follower");
        c.clear_queue();
    }
}

#[test]
fn follower_starts_an_election_after_its_election_timeout() {
    let et = 10;
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .election_ticks(et)
        .build();
    c.tick(1, et - 1);
    assert_eq!(c.role(1), RoleKind::Follower, "no election before timeout");
    let mut ticks = et - 1;
    while c.role(1) == RoleKind::Follower {
        c.tick(1, 1);
        ticks += 1;
        assert!(ticks < 2 * et, "no election within 2 * election timeout");
    }
    assert_eq!(c.role(1), RoleKind::Candidate);
    assert_eq!(c.term(1), Term(1), "term incremented");
    assert_eq!(c.vote(1), Some(1), "voted for itself");
    let rd = c.handle_ready(1).expect("ready");
    let hs = rd.hard_state.expect("term and vote to persist");
    assert_eq!((hs.term, hs.vote), (Term(1), Some(id(1))));
    let mut asked: Vec<u64> = Vec::new();
    // Vote requests leave once the new term and vote are durable (§3.8).
    assert!(rd.messages.is_empty());
    for m in &rd.persisted_messages {
        match &m.body {
            MessageBody::Vote(r) => {
                assert_eq!(m.term, Term(1));
                assert_eq!(r.last, LogId::ZERO);
                assert!(!r.transfer);
                asked.push(m.to.get());
            }
            other => panic!("unexpected {}", other.kind_name()),
        }
    }
    asked.sort_unstable();
    assert_eq!(asked, vec![2, 3], "RequestVote sent to every other voter");
}

#[test]
fn candidate_starts_a_new_election_when_its_election_times_out() {
    let et = 10;
    let mut c = three();
    c.node(1).raw.campaign().expect("campaign");
    c.process_ready(1);
    c.clear_queue(); // The votes are lost: the election can not finish.
    assert_eq!(c.term(1), Term(1));
    c.tick(1, et - 1);
    assert_eq!(c.term(1), Term(1), "no new election before the timeout");
    let mut ticks = et - 1;
    while c.term(1) == Term(1) {
        c.tick(1, 1);
        ticks += 1;
        assert!(
            ticks < 2 * et,
            "no new election within 2 * election timeout"
        );
    }
    assert_eq!(c.role(1), RoleKind::Candidate);
    assert_eq!(c.term(1), Term(2));
    assert_eq!(c.vote(1), Some(1));
    let votes: Vec<_> = c
        .process_ready(1)
        .into_iter()
        .filter(|m| is_kind(m, "Vote"))
        .collect();
    assert_eq!(votes.len(), 2);
    assert!(votes.iter().all(|m| m.term == Term(2)));
}

/// Runs one election round of node 1 in a cluster of `size` where `grant`
/// and `reject` answer, and returns node 1's role afterwards.
fn one_round(size: u64, grant: &[u64], reject: &[u64]) -> RoleKind {
    let voters: Vec<u64> = (1..=size).collect();
    let mut c = Cluster::builder().voters(&voters).build();
    c.node(1).raw.campaign().expect("campaign");
    // Persisting the Ready makes the self-vote count.
    c.process_ready(1);
    c.clear_queue();
    let answers = grant
        .iter()
        .map(|&f| (f, false))
        .chain(reject.iter().map(|&f| (f, true)));
    for (from, rejected) in answers {
        let body = MessageBody::VoteResponse(VoteResponse { reject: rejected });
        c.step(msg(from, 1, 1, body)).expect("step");
    }
    assert_eq!(c.term(1), Term(1), "one round, one term");
    c.role(1)
}

#[test]
fn candidate_wins_the_election_with_votes_from_a_majority() {
    let cases: &[(u64, &[u64], &[u64])] = &[
        (1, &[], &[]),
        (3, &[2], &[]),
        (3, &[2, 3], &[]),
        (3, &[2], &[3]),
        (5, &[2, 3], &[]),
        (5, &[2, 3], &[4, 5]),
        (5, &[2, 3, 4, 5], &[]),
    ];
    for &(size, grant, reject) in cases {
        assert_eq!(
            one_round(size, grant, reject),
            RoleKind::Leader,
            "size {size}, granted by {grant:?}, rejected by {reject:?}"
        );
    }
}

#[test]
fn candidate_loses_the_election_when_a_majority_rejects_it() {
    let cases: &[(u64, &[u64], &[u64])] = &[
        (3, &[], &[2, 3]),
        (5, &[], &[2, 3, 4]),
        (5, &[2], &[3, 4, 5]),
    ];
    for &(size, grant, reject) in cases {
        assert_eq!(
            one_round(size, grant, reject),
            RoleKind::Follower,
            "size {size}, granted by {grant:?}, rejected by {reject:?}"
        );
    }
}

#[test]
fn election_stays_undecided_without_a_majority_either_way() {
    let cases: &[(u64, &[u64], &[u64])] = &[
        (3, &[], &[]),
        (3, &[], &[2]),
        (5, &[], &[]),
        (5, &[2], &[]),
        (5, &[2], &[3, 4]),
        (5, &[], &[2, 3]),
    ];
    for &(size, grant, reject) in cases {
        assert_eq!(
            one_round(size, grant, reject),
            RoleKind::Candidate,
            "size {size}, granted by {grant:?}, rejected by {reject:?}"
        );
    }
}

#[test]
fn follower_votes_for_at_most_one_candidate_per_term_first_come_first_served() {
    let mut c = three();
    let vote =
        |from: u64, term: u64| msg(from, 1, term, MessageBody::Vote(vote_req((0, 0), false)));
    let answer = |c: &mut Cluster| -> bool {
        let out = c.process_ready(1);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(is_kind(&out[0], "VoteResponse"));
        vote_rejected(&out[0])
    };
    c.step(vote(2, 1)).expect("step");
    assert!(!answer(&mut c), "first candidate of term 1 gets the vote");
    c.step(vote(3, 1)).expect("step");
    assert!(answer(&mut c), "second candidate of term 1 is refused");
    c.step(vote(2, 1)).expect("step");
    assert!(
        !answer(&mut c),
        "a retransmitted request of the chosen one is granted again"
    );
    assert_eq!(c.vote(1), Some(2));
    assert_eq!(
        c.node(1).storage.hard_state().vote,
        Some(id(2)),
        "the vote is persisted"
    );
    c.step(vote(3, 2)).expect("step");
    assert!(!answer(&mut c), "a new term allows a new vote");
    assert_eq!(c.vote(1), Some(3));
}

#[test]
fn candidate_becomes_follower_on_an_append_from_a_leader_of_its_term_or_newer() {
    for leader_term in [2, 3] {
        let mut c = three();
        c.node(1).raw.campaign().expect("campaign");
        c.node(1).raw.campaign().expect("campaign again");
        assert_eq!(c.term(1), Term(2));
        c.step(msg(2, 1, leader_term, append((0, 0), &[], 0)))
            .expect("step");
        assert_eq!(c.role(1), RoleKind::Follower, "term {leader_term}");
        assert_eq!(c.term(1), Term(leader_term));
        assert_eq!(c.leader_of(1), Some(2));
    }
    // From an older term: not a legitimate leader, keep campaigning.
    let mut c = three();
    c.node(1).raw.campaign().expect("campaign");
    c.node(1).raw.campaign().expect("campaign again");
    c.step(msg(2, 1, 1, append((0, 0), &[], 0))).expect("step");
    assert_eq!(c.role(1), RoleKind::Candidate);
    assert_eq!(c.term(1), Term(2));
}

/// Ticks until node 1 (seeded with `seed`) leaves `role`, or its term moves
/// past `term`, and returns how many ticks it took.
fn timeout_of(c: &mut Cluster, until: impl Fn(&Cluster) -> bool) -> u32 {
    for ticks in 1..=1000 {
        c.tick(1, 1);
        if until(c) {
            return ticks;
        }
    }
    panic!("no timeout in 1000 ticks");
}

#[test]
fn election_timeouts_of_followers_are_randomized_over_the_whole_range() {
    let et = 10;
    let mut seen = BTreeSet::new();
    for seed in 0..300u64 {
        let mut c = Cluster::builder()
            .voters(&[1, 2, 3])
            .election_ticks(et)
            .configure(move |cfg| cfg.seed = seed)
            .build();
        seen.insert(timeout_of(&mut c, |c| c.role(1) != RoleKind::Follower));
    }
    assert_eq!(seen, (et..2 * et).collect::<BTreeSet<_>>());
}

#[test]
fn election_timeouts_of_candidates_are_randomized_over_the_whole_range() {
    let et = 10;
    let mut seen = BTreeSet::new();
    for seed in 0..300u64 {
        let mut c = Cluster::builder()
            .voters(&[1, 2, 3])
            .election_ticks(et)
            .configure(move |cfg| cfg.seed = seed)
            .build();
        c.node(1).raw.campaign().expect("campaign");
        assert_eq!(c.term(1), Term(1));
        seen.insert(timeout_of(&mut c, |c| c.term(1) == Term(2)));
    }
    assert_eq!(seen, (et..2 * et).collect::<BTreeSet<_>>());
}

#[test]
fn randomized_timeouts_make_split_elections_rare_in_a_five_node_cluster() {
    let trials = 1000u64;
    let mut conflicts = 0;
    for trial in 0..trials {
        let mut c = Cluster::builder()
            .voters(&[1, 2, 3, 4, 5])
            .configure(move |cfg| cfg.seed = trial * 64 + cfg.id.get())
            .build();
        // Tick every node in lockstep until someone times out; more than one
        // timing out on the same tick is a conflict (split vote risk).
        loop {
            for n in 1..=5 {
                c.tick(n, 1);
            }
            let candidates = (1..=5)
                .filter(|&n| c.role(n) == RoleKind::Candidate)
                .count();
            if candidates > 0 {
                if candidates > 1 {
                    conflicts += 1;
                }
                break;
            }
        }
    }
    let rate = conflicts as f64 / trials as f64;
    assert!(rate < 0.3, "conflict rate {rate}");
    assert!(conflicts > 0, "identical jitter would never conflict");
}

#[test]
fn randomized_timeouts_let_most_five_node_clusters_elect_a_leader_in_the_first_term() {
    let trials = 300u64;
    let mut later = 0;
    for trial in 0..trials {
        let mut c = Cluster::builder()
            .voters(&[1, 2, 3, 4, 5])
            .configure(move |cfg| cfg.seed = 7_000 + trial * 64 + cfg.id.get())
            .build();
        let mut ticks = 0;
        while c.leaders().is_empty() {
            c.tick_all(1);
            ticks += 1;
            assert!(ticks < 1000, "trial {trial}: no leader");
        }
        let leader = c.leaders()[0];
        if c.term(leader) > Term(1) {
            later += 1;
        }
    }
    let rate = later as f64 / trials as f64;
    assert!(rate < 0.3, "{later} of {trials} first elections failed");
}

// ---------------------------------------------------------------- §5.3

#[test]
fn leader_starts_replication_by_sending_the_new_entry_to_every_follower() {
    let mut c = three();
    c.elect(1);
    let p = c.propose(1, b"x");
    assert_eq!(
        p,
        Proposal::Appended {
            id: LogId::new(Term(1), Index(2))
        }
    );
    let rd = c.handle_ready(1).expect("ready");
    assert_eq!(rd.entries.len(), 1, "the leader appends to its own log");
    assert_eq!(rd.entries[0].log_id(), LogId::new(Term(1), Index(2)));
    let mut to = Vec::new();
    for m in rd.messages.iter().filter(|m| is_kind(m, "Append")) {
        let a = as_append(m);
        assert_eq!(m.term, Term(1));
        assert_eq!(a.prev, LogId::new(Term(1), Index(1)));
        assert_eq!(a.commit, Index(1));
        assert_eq!(a.entries.len(), 1);
        assert_eq!(a.entries[0].log_id(), LogId::new(Term(1), Index(2)));
        assert_eq!(a.entries[0].data, Bytes::from_static(b"x"));
        to.push(m.to.get());
    }
    to.sort_unstable();
    assert_eq!(to, vec![2, 3]);
}

#[test]
fn leader_commits_an_entry_once_a_majority_persisted_it_and_tells_followers() {
    let mut c = Cluster::builder().voters(&[1, 2, 3, 4, 5]).build();
    c.elect(1);
    c.propose(1, b"x");
    c.process_ready(1);
    let ack_from = |c: &mut Cluster, n: u64| {
        c.deliver_where(|m| m.to == id(n) && is_kind(m, "Append"));
        c.process_ready(n);
        c.deliver_where(|m| m.from == id(n) && is_kind(m, "AppendResponse"));
    };
    ack_from(&mut c, 2);
    assert_eq!(c.commit(1), Index(1), "leader + 1 of 5 is no majority");
    ack_from(&mut c, 3);
    assert_eq!(c.commit(1), Index(2), "leader + 2 of 5 is a majority");
    assert_eq!(c.commit(4), Index(1));

    // The next messages carry the new commit index to every follower.
    c.clear_queue();
    let out = c.process_ready(1);
    let mut told: Vec<u64> = out
        .iter()
        .filter(|m| match &m.body {
            MessageBody::Append(a) => a.commit == Index(2),
            MessageBody::Heartbeat(h) => h.commit == Index(2),
            _ => false,
        })
        .map(|m| m.to.get())
        .collect();
    told.sort_unstable();
    told.dedup();
    assert_eq!(told, vec![2, 3, 4, 5], "every follower is told the commit");
    // Followers 4 and 5 have not even received the entry yet; delivering
    // everything replicates and commits it there too.
    c.stabilize();
    for n in 1..=5 {
        assert_eq!(c.commit(n), Index(2), "node {n}");
        assert_eq!(c.applied_data(n), vec![Bytes::from_static(b"x")]);
    }
}

#[test]
fn leader_commits_entries_preceding_its_own_through_them() {
    let logs: &[&[u64]] = &[&[], &[2], &[1, 1], &[1, 2], &[1, 1, 2, 2]];
    for &log in logs {
        let mut c = Cluster::builder().voters(&[1, 2, 3]).log(1, log, 2).build();
        c.elect(1);
        assert_eq!(c.term(1), Term(3));
        c.propose(1, b"x");
        c.stabilize();
        let n = log.len() as u64;
        let applied: Vec<(u64, u64)> = c
            .node(1)
            .applied
            .iter()
            .map(|e| (e.term.get(), e.index.get()))
            .collect();
        let mut want: Vec<(u64, u64)> = log
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, i as u64 + 1))
            .collect();
        want.push((3, n + 1));
        want.push((3, n + 2));
        assert_eq!(applied, want, "leader log {log:?}");
        for f in [2, 3] {
            assert_eq!(c.log_terms(f), c.log_terms(1), "follower {f}, log {log:?}");
            assert_eq!(c.commit(f), Index(n + 2));
        }
    }
}

#[test]
fn follower_commits_up_to_the_leader_commit_within_what_it_holds() {
    let mut c = three();
    c.step(msg(1, 2, 1, append((0, 0), &[(1, 1), (1, 2)], 1)))
        .expect("step");
    assert_eq!(c.commit(2), Index(1));
    c.step(msg(1, 2, 1, append((1, 2), &[], 2))).expect("step");
    assert_eq!(c.commit(2), Index(2));
    // The leader's commit is beyond what this append proves: cap at it.
    c.step(msg(1, 2, 1, append((1, 2), &[(1, 3)], 7)))
        .expect("step");
    assert_eq!(c.commit(2), Index(3));
    c.process_ready(2);
    let applied: Vec<u64> = c.node(2).applied.iter().map(|e| e.index.get()).collect();
    assert_eq!(applied, vec![1, 2, 3]);
    // A heartbeat's commit is capped at the follower's log too.
    let mut c = three();
    c.step(msg(1, 2, 1, append((0, 0), &[(1, 1)], 0)))
        .expect("step");
    c.step(msg(1, 2, 1, heartbeat(5))).expect("step");
    assert_eq!(c.commit(2), Index(1));
}

#[test]
fn follower_rejects_an_append_whose_previous_entry_does_not_match() {
    // The follower holds terms [1, 2]; (prev, rejected?, hint).
    type Case = ((u64, u64), Option<(u64, u64)>);
    let cases: &[Case] = &[
        ((2, 2), None),
        ((1, 1), None),
        ((0, 0), None),
        // Term mismatch at index 2: its term-2 entry is skipped in the hint.
        ((1, 2), Some((1, 1))),
        ((3, 2), Some((2, 2))),
        // Beyond the follower's log: the hint is its last entry.
        ((2, 3), Some((2, 2))),
        ((3, 5), Some((2, 2))),
    ];
    for &(prev, hint) in cases {
        let mut c = Cluster::builder()
            .voters(&[1, 2, 3])
            .log(2, &[1, 2], 2)
            .build();
        c.step(msg(1, 2, 3, append(prev, &[], 0))).expect("step");
        let out = c.process_ready(2);
        let resp: Vec<_> = out
            .iter()
            .filter(|m| is_kind(m, "AppendResponse"))
            .collect();
        assert_eq!(resp.len(), 1, "prev {prev:?}");
        let r = as_append_response(resp[0]);
        match hint {
            None => {
                assert_eq!(r.reject, None, "prev {prev:?} matches");
                assert_eq!(r.index, Index(prev.1));
            }
            Some((t, i)) => {
                let h = r
                    .reject
                    .unwrap_or_else(|| panic!("prev {prev:?} must be rejected"));
                assert_eq!(r.index, Index(prev.1), "prev {prev:?}: rejected index");
                assert_eq!(
                    (h.term, h.index),
                    ((t > 0).then_some(Term(t)), Index(i)),
                    "prev {prev:?}: hint"
                );
            }
        }
        assert_eq!(c.log_terms(2), vec![1, 2], "prev {prev:?}: log untouched");
    }
}

#[test]
fn follower_deletes_conflicting_entries_and_appends_the_leaders() {
    // The follower holds terms [1, 2]; (prev, entries, resulting terms).
    type Case = ((u64, u64), &'static [(u64, u64)], &'static [u64]);
    let cases: &[Case] = &[
        ((2, 2), &[(3, 3)], &[1, 2, 3]),
        ((1, 1), &[(3, 2), (4, 3)], &[1, 3, 4]),
        ((0, 0), &[(1, 1)], &[1, 2]),
        ((0, 0), &[(3, 1)], &[3]),
        ((0, 0), &[(1, 1), (2, 2)], &[1, 2]),
    ];
    for &(prev, ents, want) in cases {
        let mut c = Cluster::builder()
            .voters(&[1, 2, 3])
            .log(2, &[1, 2], 2)
            .build();
        c.step(msg(1, 2, 4, append(prev, ents, 0))).expect("step");
        let out = c.process_ready(2);
        let r = as_append_response(&out[0]);
        assert_eq!(r.reject, None, "prev {prev:?}");
        assert_eq!(r.index, Index(prev.1 + ents.len() as u64));
        assert_eq!(c.log_terms(2), want, "prev {prev:?}, entries {ents:?}");
    }
}

/// The leader's log of Figure 7, at the start of term 8.
const FIGURE_7_LEADER: &[u64] = &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6];

/// Elects node 1 with the Figure 7 leader log at term 8 (node 3 has the same
/// log and votes for it), with node 2 holding `follower` at term
/// `follower_term`, and checks that replication makes node 2's log
/// identical to the leader's.
fn figure_7(follower: &[u64], follower_term: u64) {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .log(1, FIGURE_7_LEADER, 7)
        .log(2, follower, follower_term)
        .log(3, FIGURE_7_LEADER, 7)
        .build();
    c.elect(1);
    assert_eq!(c.term(1), Term(8));
    c.stabilize();
    let mut want = FIGURE_7_LEADER.to_vec();
    want.push(8);
    assert_eq!(c.log_terms(1), want);
    assert_eq!(c.log_terms(2), want, "follower {follower:?} repaired");
    assert_eq!(c.log_terms(3), want);
    assert_eq!(c.commit(2), Index(want.len() as u64));
    assert_eq!(c.term(2), Term(8));
}

#[test]
fn figure_7_follower_a_missing_one_entry_is_caught_up() {
    figure_7(&[1, 1, 1, 4, 4, 5, 5, 6, 6], 6);
}

#[test]
fn figure_7_follower_b_missing_many_entries_is_caught_up() {
    figure_7(&[1, 1, 1, 4], 4);
}

#[test]
fn figure_7_follower_c_with_an_extra_uncommitted_entry_is_repaired() {
    figure_7(&[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6], 6);
}

#[test]
fn figure_7_follower_d_with_extra_entries_of_a_later_term_is_repaired() {
    figure_7(&[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7], 7);
}

#[test]
fn figure_7_follower_e_missing_and_extra_entries_is_repaired() {
    figure_7(&[1, 1, 1, 4, 4, 4, 4], 4);
}

#[test]
fn figure_7_follower_f_with_many_conflicting_terms_is_repaired() {
    figure_7(&[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], 3);
}

// ---------------------------------------------------------------- §5.4.1

#[test]
fn vote_requests_carry_the_candidates_last_log_index_and_term() {
    for pre_vote in [false, true] {
        let mut c = Cluster::builder()
            .voters(&[1, 2, 3])
            .pre_vote(pre_vote)
            .log(1, &[1, 1, 2], 2)
            .build();
        c.node(1).raw.campaign().expect("campaign");
        let out = c.process_ready(1);
        assert_eq!(out.len(), 2, "pre_vote {pre_vote}: {out:?}");
        for m in &out {
            let r = match &m.body {
                MessageBody::Vote(r) if !pre_vote => r,
                MessageBody::PreVote(r) if pre_vote => r,
                other => panic!("unexpected {}", other.kind_name()),
            };
            assert_eq!(r.last, LogId::new(Term(2), Index(3)));
            assert_eq!(m.term, Term(3), "the term of the (pre-)election");
        }
        let own = if pre_vote { Term(2) } else { Term(3) };
        assert_eq!(c.term(1), own, "pre_vote {pre_vote}");
    }
}

/// Node 1 holds terms [1, 2] at term 2; node 2 asks for its vote at term 3
/// with last log position `last`. Returns whether node 1 granted it.
fn vote_for_candidate_with_last(last: (u64, u64)) -> bool {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .log(1, &[1, 2], 2)
        .build();
    c.step(msg(2, 1, 3, MessageBody::Vote(vote_req(last, false))))
        .expect("step");
    assert_eq!(c.term(1), Term(3), "the higher term is adopted either way");
    let out = c.process_ready(1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, id(2));
    let granted = !vote_rejected(&out[0]);
    assert_eq!(c.vote(1), granted.then_some(2));
    granted
}

#[test]
fn voter_rejects_a_candidate_whose_log_is_less_up_to_date() {
    // Older last term, even with a longer log.
    assert!(!vote_for_candidate_with_last((1, 3)));
    assert!(!vote_for_candidate_with_last((1, 1)));
    assert!(!vote_for_candidate_with_last((0, 0)));
    // Same last term, shorter log.
    assert!(!vote_for_candidate_with_last((2, 1)));
}

#[test]
fn voter_grants_a_candidate_whose_log_is_at_least_as_up_to_date() {
    // Same last term, same or longer log.
    assert!(vote_for_candidate_with_last((2, 2)));
    assert!(vote_for_candidate_with_last((2, 3)));
    // Newer last term, even with a shorter log.
    assert!(vote_for_candidate_with_last((3, 1)));
    assert!(vote_for_candidate_with_last((3, 3)));
}

// ---------------------------------------------------------------- §5.4.2

/// Elects node 1 at term `term + 1` without letting any append through, so
/// the leader knows nothing of its followers' logs yet.
fn elect_without_replication(c: &mut Cluster) {
    c.node(1).raw.campaign().expect("campaign");
    c.process_ready(1);
    c.deliver_where(|m| is_kind(m, "Vote"));
    let ids: Vec<u64> = c.nodes.keys().map(|i| i.get()).collect();
    for n in ids {
        if n != 1 {
            c.process_ready(n);
        }
    }
    c.deliver_where(|m| is_kind(m, "VoteResponse"));
    assert_eq!(c.role(1), RoleKind::Leader);
    c.clear_queue();
    c.process_ready(1); // Persists the no-op; its appends are dropped.
    c.clear_queue();
}

#[test]
fn leader_does_not_commit_an_entry_of_an_earlier_term_by_counting_replicas() {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .log(1, &[1, 2], 2)
        .log(2, &[1, 2], 2)
        .log(3, &[1, 2], 2)
        .build();
    elect_without_replication(&mut c);
    assert_eq!(c.term(1), Term(3));
    // Every node holds index 2 (term 2), and the leader learns so.
    c.step(msg(2, 1, 3, append_response(2))).expect("step");
    c.step(msg(3, 1, 3, append_response(2))).expect("step");
    assert_eq!(
        c.commit(1),
        Index(0),
        "term-2 entry is not committed by counting"
    );
    // Once the term-3 no-op is on a majority, both commit.
    c.step(msg(2, 1, 3, append_response(3))).expect("step");
    assert_eq!(c.commit(1), Index(3));
}

/// Figure 8 (c): S1 leads term 4 and its term-2 entry at index 2 is on
/// S1, S2 and S3; S5 holds a term-3 entry at index 2.
fn figure_8() -> Cluster {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3, 4, 5])
        .log(1, &[1, 2], 3)
        .log(2, &[1, 2], 3)
        .log(3, &[1, 2], 3)
        .log(4, &[1], 3)
        .log(5, &[1, 3], 4)
        .build();
    elect_without_replication(&mut c);
    assert_eq!(c.term(1), Term(4));
    c
}

#[test]
fn figure_8_an_old_term_entry_on_a_majority_is_not_committed_and_may_be_overwritten() {
    let mut c = figure_8();
    // S1 learns that S2 and S3 hold index 2: a majority, but of term 2.
    c.step(msg(2, 1, 4, append_response(2))).expect("step");
    c.step(msg(3, 1, 4, append_response(2))).expect("step");
    assert_eq!(c.commit(1), Index(0));
    c.clear_queue();
    // (d) S1 crashes; S5 wins term 5 with S2, S3, S4 and overwrites index 2.
    c.isolate(1);
    c.elect(5);
    assert_eq!(c.term(5), Term(5));
    for n in 2..=5 {
        assert_eq!(c.log_terms(n), vec![1, 3, 5], "node {n}");
    }
    // S1 comes back and follows: its uncommitted term-2 entry is gone.
    c.heal();
    c.tick_all(3);
    assert_eq!(c.role(1), RoleKind::Follower);
    assert_eq!(c.log_terms(1), vec![1, 3, 5]);
    for n in 1..=5 {
        assert!(
            !c.node(n)
                .applied
                .iter()
                .any(|e| e.log_id() == LogId::new(Term(2), Index(2))),
            "node {n} applied the overwritten entry"
        );
    }
}

#[test]
fn figure_8_an_old_term_entry_commits_with_the_leaders_own_entry_and_survives() {
    let mut c = figure_8();
    // (e) S1 replicates its term-4 no-op to S2 and S3 only.
    for n in [4, 5] {
        c.cut(1, n);
    }
    c.tick_all(1);
    assert_eq!(c.commit(1), Index(3));
    let applied: Vec<(u64, u64)> = c
        .node(1)
        .applied
        .iter()
        .map(|e| (e.term.get(), e.index.get()))
        .collect();
    assert_eq!(applied, vec![(1, 1), (2, 2), (4, 3)]);
    // S1 crashes; S5 can no longer win: S2 and S3 have a newer log.
    c.heal();
    c.isolate(1);
    c.campaign(5);
    assert_ne!(c.role(5), RoleKind::Leader);
    for n in [2, 3] {
        assert_eq!(c.log_terms(n), vec![1, 2, 4], "node {n} keeps the entry");
    }
}
