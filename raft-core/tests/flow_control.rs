//! Flow control and the limits of `Config`, proposal refusals, fast
//! backtracking of a divergent follower, and misdirected messages.

mod support;

use bytes::Bytes;
use raft_core::{
    Entry, Index, MessageBody, ProgressState, ProposeError, RoleKind, StepError, Term,
};
use support::{Cluster, as_append, as_append_response, id, is_kind, msg};

/// A payload of 10 bytes, so an entry weighs 26 bytes in `size_bytes`.
const DATA: &[u8] = b"0123456789";

fn entry_size() -> u64 {
    Entry::new(Term(1), Index(1), Bytes::from_static(DATA)).size_bytes()
}

/// The Appends to `to` that were just queued, removed from the queue.
fn appends_to(c: &mut Cluster, to: u64) -> Vec<raft_core::Message> {
    c.take_where(|m| m.to == id(to) && is_kind(m, "Append"))
}

/// Elects node 1 of three with `f` applied to every config; every follower
/// ends in replicate state with nothing in flight.
fn three_with(f: impl Fn(&mut raft_core::Config) + 'static) -> Cluster {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).configure(f).build();
    c.elect(1);
    c
}

fn propose_n(c: &mut Cluster, n: usize) {
    for _ in 0..n {
        c.propose(1, DATA);
    }
}

#[test]
fn max_size_per_msg_limits_the_entries_in_one_append() {
    let limit = 2 * entry_size();
    let mut c = three_with(move |cfg| cfg.max_size_per_msg = limit);
    propose_n(&mut c, 7);
    c.process_ready(1);
    let appends = appends_to(&mut c, 2);
    let sizes: Vec<usize> = appends.iter().map(|m| as_append(m).entries.len()).collect();
    assert_eq!(sizes, vec![2, 2, 2, 1], "7 entries, at most 2 per message");
    let mut next = 2;
    for m in &appends {
        let a = as_append(m);
        let bytes: u64 = a.entries.iter().map(Entry::size_bytes).sum();
        assert!(bytes <= limit);
        assert_eq!(a.prev.index, Index(next - 1), "consecutive appends");
        next += a.entries.len() as u64;
    }
    c.stabilize();
    assert_eq!(c.commit(2), Index(8));
}

#[test]
fn max_size_per_msg_still_sends_one_oversized_entry() {
    let mut c = three_with(|cfg| cfg.max_size_per_msg = 1);
    propose_n(&mut c, 3);
    c.process_ready(1);
    let sizes: Vec<usize> = appends_to(&mut c, 2)
        .iter()
        .map(|m| as_append(m).entries.len())
        .collect();
    assert_eq!(sizes, vec![1, 1, 1]);
}

/// Proposes 10 entries of one per append, with a window of 3 messages to
/// each follower, and checks replication pauses at 3 and resumes as acks
/// for node 2 arrive one by one.
fn assert_window_of_three(c: &mut Cluster) {
    propose_n(c, 10);
    c.process_ready(1);
    let mut window = appends_to(c, 2);
    assert_eq!(window.len(), 3, "the window is full after 3 appends");
    assert_eq!(
        c.status(1).progress.expect("leader")[&id(2)].inflight_msgs,
        3
    );
    assert_eq!(
        c.status(1).progress.expect("leader")[&id(2)].state,
        ProgressState::Replicate
    );
    // Ticks (heartbeats) do not push more appends through a full window.
    c.tick(1, 1);
    c.process_ready(1);
    assert!(
        appends_to(c, 2).is_empty(),
        "paused while the window is full"
    );
    let mut sent: Vec<u64> = Vec::new();
    let record = |sent: &mut Vec<u64>, ms: &[raft_core::Message]| {
        for m in ms {
            sent.extend(as_append(m).entries.iter().map(|e| e.index.get()));
        }
    };
    record(&mut sent, &window);
    while !window.is_empty() {
        let m = window.remove(0);
        c.deliver(m);
        c.process_ready(2);
        c.deliver_where(|m| m.from == id(2) && is_kind(m, "AppendResponse"));
        c.process_ready(1);
        // Empty appends only carry the commit index; they take no slot.
        let more: Vec<_> = appends_to(c, 2)
            .into_iter()
            .filter(|m| !as_append(m).entries.is_empty())
            .collect();
        assert!(more.len() <= 1, "one ack frees one slot: {}", more.len());
        record(&mut sent, &more);
        window.extend(more);
        assert!(window.len() <= 3);
    }
    assert_eq!(
        sent,
        (2..=11).collect::<Vec<u64>>(),
        "each entry sent once, in order"
    );
    assert_eq!(c.status(2).last_index, Index(11));
    c.stabilize();
    assert_eq!(c.commit(3), Index(11));
}

#[test]
fn max_inflight_msgs_pauses_replication_until_acks_arrive() {
    let mut c = three_with(|cfg| {
        cfg.max_size_per_msg = 1;
        cfg.max_inflight_msgs = 3;
    });
    assert_window_of_three(&mut c);
}

#[test]
fn max_inflight_bytes_pauses_replication_until_acks_arrive() {
    let size = entry_size();
    let mut c = three_with(move |cfg| {
        cfg.max_size_per_msg = size;
        cfg.max_inflight_bytes = 3 * size;
    });
    assert_window_of_three(&mut c);
}

#[test]
fn max_uncommitted_entries_size_refuses_proposals_until_entries_commit() {
    let mut c = three_with(|cfg| cfg.max_uncommitted_entries_size = 20);
    c.propose(1, DATA);
    c.propose(1, DATA);
    match c.node(1).raw.propose(Bytes::from_static(DATA)) {
        Err(ProposeError::UncommittedSizeExceeded { uncommitted, limit }) => {
            assert_eq!((uncommitted, limit), (20, 20));
        }
        other => panic!("expected UncommittedSizeExceeded, got {other:?}"),
    }
    // Empty proposals carry no payload and are always accepted.
    c.propose(1, b"");
    c.stabilize();
    assert_eq!(c.commit(1), Index(4));
    c.propose(1, DATA);
    c.propose(1, DATA);
    c.stabilize();
    assert_eq!(c.applied_data(2).len(), 4);
}

#[test]
fn max_uncommitted_entries_size_accepts_one_large_proposal_when_nothing_is_pending() {
    let mut c = three_with(|cfg| cfg.max_uncommitted_entries_size = 5);
    c.propose(1, DATA); // 10 bytes > 5, but nothing is uncommitted.
    assert!(matches!(
        c.node(1).raw.propose(Bytes::from_static(b"x")),
        Err(ProposeError::UncommittedSizeExceeded { .. })
    ));
}

#[test]
fn max_committed_size_per_ready_paginates_committed_entries() {
    let limit = 2 * entry_size();
    let mut c = Cluster::builder()
        .voters(&[1])
        .configure(move |cfg| cfg.max_committed_size_per_ready = limit)
        .build();
    c.elect(1);
    propose_n(&mut c, 7);
    let mut pages = Vec::new();
    while let Some(rd) = c.handle_ready(1) {
        let bytes: u64 = rd.committed_entries.iter().map(Entry::size_bytes).sum();
        assert!(bytes <= limit || rd.committed_entries.len() == 1);
        if !rd.committed_entries.is_empty() {
            pages.push(rd.committed_entries.len());
        }
    }
    assert_eq!(pages, vec![2, 2, 2, 1]);
    assert_eq!(c.applied_data(1).len(), 7);
    assert_eq!(c.status(1).applied, Index(8));
}

#[test]
fn follower_refuses_proposals_when_forwarding_is_disabled() {
    let mut c = three_with(|cfg| cfg.disable_proposal_forwarding = true);
    match c.node(2).raw.propose(Bytes::from_static(b"x")) {
        Err(ProposeError::ForwardingDisabled { leader }) => assert_eq!(leader, id(1)),
        other => panic!("expected ForwardingDisabled, got {other:?}"),
    }
    assert!(c.process_ready(2).is_empty(), "nothing forwarded");
    c.propose(1, b"on-leader");
    c.stabilize();
    assert_eq!(c.applied_data(2), vec![Bytes::from_static(b"on-leader")]);
}

#[test]
fn node_without_a_leader_refuses_proposals() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    assert!(matches!(
        c.node(2).raw.propose(Bytes::from_static(b"x")),
        Err(ProposeError::NoLeader)
    ));
    c.node(2).raw.campaign().expect("campaign");
    assert_eq!(c.role(2), RoleKind::Candidate);
    assert!(matches!(
        c.node(2).raw.propose(Bytes::from_static(b"x")),
        Err(ProposeError::NoLeader)
    ));
    // A forwarded proposal reaching a leaderless node is refused too.
    let fwd = msg(
        3,
        1,
        0,
        MessageBody::Propose(raft_core::Propose {
            entries: vec![Entry::new(Term(0), Index(0), Bytes::from_static(b"x"))],
        }),
    );
    assert!(matches!(
        c.step(fwd),
        Err(StepError::ProposalDropped(ProposeError::NoLeader))
    ));
}

/// Elects node 1 over a follower (node 2) holding `follower` at term
/// `follower_term`, and returns how many appends node 2 rejected before its
/// log equalled the leader's.
fn rejections_to_repair(
    leader: &[u64],
    leader_term: u64,
    follower: &[u64],
    follower_term: u64,
) -> usize {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .log(1, leader, leader_term)
        .log(2, follower, follower_term)
        .log(3, leader, leader_term)
        .build();
    c.elect(1);
    c.stabilize();
    assert_eq!(c.log_terms(2), c.log_terms(1), "follower repaired");
    c.count_delivered(|m| {
        m.from == id(2) && is_kind(m, "AppendResponse") && as_append_response(m).reject.is_some()
    })
}

#[test]
fn fast_backtracking_skips_a_long_divergent_tail_of_an_older_term() {
    let mut leader = vec![1];
    leader.extend(std::iter::repeat_n(3, 50));
    let mut follower = vec![1];
    follower.extend(std::iter::repeat_n(2, 100));
    let n = rejections_to_repair(&leader, 3, &follower, 2);
    assert!(n <= 2, "{n} rejections for 100 divergent entries");
}

#[test]
fn fast_backtracking_skips_a_long_divergent_tail_of_a_newer_term() {
    let mut leader = vec![1];
    leader.extend(std::iter::repeat_n(3, 50));
    let mut follower = vec![1];
    follower.extend(std::iter::repeat_n(5, 100));
    let n = rejections_to_repair(&leader, 6, &follower, 5);
    assert!(n <= 2, "{n} rejections for 100 divergent entries");
}

#[test]
fn fast_backtracking_jumps_to_the_end_of_a_short_follower_log() {
    let leader = vec![1; 100];
    let n = rejections_to_repair(&leader, 1, &[1], 1);
    assert!(n <= 1, "{n} rejections for 99 missing entries");
}

#[test]
fn fast_backtracking_skips_whole_terms_of_a_figure_7_like_log() {
    // Many short terms on the follower that the leader never saw.
    let leader = vec![1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    let follower = vec![1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3];
    let n = rejections_to_repair(&leader, 7, &follower, 3);
    assert!(n <= 2, "{n} rejections");
}

#[test]
fn leader_refuses_a_response_from_an_unknown_peer() {
    let mut c = three_with(|_| {});
    let resp = MessageBody::AppendResponse(raft_core::AppendResponse {
        index: Index(1),
        reject: None,
        commit: Index(0),
    });
    match c.step(msg(9, 1, 1, resp)) {
        Err(StepError::UnknownPeer { from, kind }) => {
            assert_eq!(from, id(9));
            assert_eq!(kind, "AppendResponse");
        }
        other => panic!("expected UnknownPeer, got {other:?}"),
    }
    let hb = MessageBody::HeartbeatResponse(raft_core::HeartbeatResponse { read_round: None });
    assert!(matches!(
        c.step(msg(9, 1, 1, hb)),
        Err(StepError::UnknownPeer { .. })
    ));
    assert_eq!(c.role(1), RoleKind::Leader);
}

#[test]
fn node_refuses_a_message_addressed_to_another_node() {
    let mut c = three_with(|_| {});
    let m = msg(
        1,
        3,
        1,
        MessageBody::Heartbeat(raft_core::Heartbeat {
            commit: Index(1),
            read_round: None,
        }),
    );
    match c.node(2).raw.step(m) {
        Err(StepError::WrongRecipient { to, me }) => {
            assert_eq!((to, me), (id(3), id(2)));
        }
        other => panic!("expected WrongRecipient, got {other:?}"),
    }
    assert!(c.process_ready(2).is_empty(), "no effect");
}
