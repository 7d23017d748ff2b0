//! `advance_with_commits`: what a node's own persistence makes ready comes
//! back from advancing, not in a second Ready.

mod support;

use bytes::Bytes;
use raft_core::{ConfState, Config, Index, MemoryStorage, MessageBody, NodeId, RawNode};

fn id(n: u64) -> NodeId {
    NodeId::new(n).expect("non-zero")
}

/// Persists a Ready into `s` and advances, returning the light part.
fn handle(n: &mut RawNode<MemoryStorage>, s: &MemoryStorage) -> raft_core::LightReady {
    let rd = n.ready().expect("ready");
    s.persist(&rd).expect("persist");
    n.advance_with_commits().expect("advance")
}

#[test]
fn single_node_commits_a_proposal_in_one_ready_cycle() {
    let s = MemoryStorage::with_conf_state(ConfState::with_voters([id(1)]));
    let mut n = RawNode::new(Config::new(id(1)), s.clone()).expect("node");
    n.campaign().expect("campaign");
    while n.has_ready() {
        handle(&mut n, &s);
    }
    n.propose(Bytes::from_static(b"x")).expect("propose");
    let light = handle(&mut n, &s);
    assert_eq!(light.committed_entries.len(), 1);
    assert_eq!(light.committed_entries[0].data, Bytes::from_static(b"x"));
    assert_eq!(light.commit, Some(Index(2)));
    assert!(!n.has_ready(), "nothing left for a second Ready");
    s.persist_light(&light);
    assert_eq!(s.hard_state().commit, Index(2));
    // The next advance records the entry applied.
    n.advance().expect("advance");
    assert_eq!(n.status().applied, Index(2));
}

#[test]
fn leader_light_ready_carries_the_entries_and_commit_updates_its_own_ack_unlocks() {
    // Two voters: an entry commits only with the leader's own (durable) ack.
    let mut c = support::Cluster::builder().voters(&[1, 2]).build();
    c.elect(1);
    c.propose(1, b"a");
    let rd = c.node(1).raw.ready().expect("ready");
    // The follower persists and acknowledges before the leader's own write
    // is durable.
    for m in rd.messages.iter().cloned() {
        c.deliver(m);
    }
    c.process_ready(2);
    let acks: Vec<_> = c.queue.drain(..).collect();
    for m in acks {
        c.deliver(m);
    }
    assert_eq!(
        c.commit(1),
        Index(1),
        "not committed without the leader's own ack"
    );
    let node = c.node(1);
    node.storage.persist(&rd).expect("persist");
    let light = node.raw.advance_with_commits().expect("advance");
    assert_eq!(light.commit, Some(Index(2)));
    assert_eq!(light.committed_entries.len(), 1);
    assert_eq!(light.committed_entries[0].data, Bytes::from_static(b"a"));
    let to_follower: Vec<_> = light
        .messages
        .iter()
        .filter_map(|m| match &m.body {
            MessageBody::Append(a) if m.to == id(2) => Some(a.commit),
            _ => None,
        })
        .collect();
    assert_eq!(
        to_follower,
        vec![Index(2)],
        "the follower learns the commit at once"
    );
}
