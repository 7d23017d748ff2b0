//! Basic end-to-end behaviour of a small cluster.

mod support;

use raft_core::{Index, Proposal, RoleKind, Term};
use support::Cluster;

#[test]
fn single_node_elects_itself_and_commits_proposals() {
    let mut c = Cluster::builder().voters(&[1]).build();
    c.elect(1);
    assert_eq!(c.term(1), Term(1));
    let p = c.propose(1, b"hello");
    assert!(matches!(p, Proposal::Appended { id } if id.index == Index(2)));
    c.stabilize();
    assert_eq!(c.commit(1), Index(2));
    assert_eq!(c.applied_data(1), vec![bytes::Bytes::from_static(b"hello")]);
}

#[test]
fn three_nodes_replicate_and_apply_in_order_everywhere() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.elect(1);
    for p in [&b"a"[..], b"b", b"c"] {
        c.node(1)
            .raw
            .propose(bytes::Bytes::from_static(p))
            .expect("accepted");
    }
    c.stabilize();
    for n in 1..=3 {
        assert_eq!(c.commit(n), Index(4), "node {n}");
        assert_eq!(c.applied_data(n).len(), 3, "node {n}");
        assert_eq!(
            c.role(n),
            if n == 1 {
                RoleKind::Leader
            } else {
                RoleKind::Follower
            }
        );
    }
}

#[test]
fn follower_forwards_proposals_to_the_leader() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.elect(1);
    let p = c.propose(2, b"via-follower");
    assert!(matches!(p, Proposal::Forwarded { to } if to.get() == 1));
    c.stabilize();
    assert_eq!(
        c.applied_data(3),
        vec![bytes::Bytes::from_static(b"via-follower")]
    );
}

#[test]
fn election_with_pre_vote_and_check_quorum_succeeds() {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .pre_vote(true)
        .check_quorum(true)
        .build();
    c.elect(1);
    assert_eq!(
        c.term(1),
        Term(1),
        "pre-vote does not bump the term by itself"
    );
    c.propose(1, b"x");
    c.stabilize();
    assert_eq!(c.applied_data(2).len(), 1);
}
