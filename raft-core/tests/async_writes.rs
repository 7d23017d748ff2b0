//! Asynchronous storage writes: persistence and apply run elsewhere and are
//! acknowledged by Ready number and by index.

use bytes::Bytes;
use raft_core::{
    Append, ConfState, Config, Entry, Index, LogId, MemoryStorage, Message, MessageBody, NodeId,
    RawNode, RoleKind, Term,
};

fn id(n: u64) -> NodeId {
    NodeId::new(n).expect("non-zero")
}

fn node(me: u64, voters: &[u64]) -> (RawNode<MemoryStorage>, MemoryStorage) {
    let storage =
        MemoryStorage::with_conf_state(ConfState::with_voters(voters.iter().map(|&v| id(v))));
    let mut cfg = Config::new(id(me));
    cfg.async_storage_writes = true;
    cfg.pre_vote = false;
    (RawNode::new(cfg, storage.clone()).expect("node"), storage)
}

#[test]
fn candidate_counts_its_own_vote_only_once_persisted() {
    let (mut n, s) = node(1, &[1]);
    n.campaign().expect("campaign");
    let rd = n.ready().expect("ready");
    assert_eq!(n.status().soft_state.role, RoleKind::Candidate);
    s.persist(&rd).expect("persist");
    n.on_persisted(rd.number).expect("persisted");
    assert_eq!(n.status().soft_state.role, RoleKind::Leader);
}

#[test]
fn leader_entries_commit_only_after_local_persistence() {
    let (mut n, s) = node(1, &[1]);
    n.campaign().expect("campaign");
    let rd = n.ready().expect("ready");
    s.persist(&rd).expect("persist");
    n.on_persisted(rd.number).expect("persisted");
    n.propose(&b"a"[..]).expect("propose");
    let rd1 = n.ready().expect("ready 1");
    assert_eq!(rd1.entries.len(), 2, "no-op and the proposal");
    // Pipelining: more work before the first write is durable.
    n.propose(&b"b"[..]).expect("propose");
    let rd2 = n.ready().expect("ready 2");
    assert_eq!(
        rd2.entries
            .iter()
            .map(|e| e.index.get())
            .collect::<Vec<_>>(),
        vec![3]
    );
    assert_eq!(
        n.status().hard_state.commit,
        Index(0),
        "nothing durable yet"
    );
    s.persist(&rd1).expect("persist");
    n.on_persisted(rd1.number).expect("persisted 1");
    assert_eq!(n.status().hard_state.commit, Index(2));
    let rd3 = n.ready().expect("ready 3");
    let applied: Vec<u64> = rd3
        .committed_entries
        .iter()
        .map(|e| e.index.get())
        .collect();
    assert_eq!(applied, vec![1, 2], "entry 3 is not durable yet");
    s.persist(&rd2).expect("persist");
    n.on_persisted(rd2.number).expect("persisted 2");
    n.on_applied(Index(2)).expect("applied");
    let rd4 = n.ready().expect("ready 4");
    assert_eq!(
        rd4.committed_entries
            .iter()
            .map(|e| e.index.get())
            .collect::<Vec<_>>(),
        vec![3]
    );
    assert_eq!(n.status().applied, Index(2));
}

#[test]
fn follower_applies_committed_entries_only_once_they_are_durable_locally() {
    let (mut n, s) = node(2, &[1, 2]);
    let entries = vec![Entry::new(Term(1), Index(1), Bytes::from_static(b"x"))];
    let m = Message {
        from: id(1),
        to: id(2),
        term: Term(1),
        body: MessageBody::Append(Append {
            prev: LogId::ZERO,
            entries,
            commit: Index(1),
        }),
    };
    n.step(m).expect("append");
    let rd = n.ready().expect("ready");
    assert_eq!(rd.entries.len(), 1);
    assert!(
        rd.committed_entries.is_empty(),
        "known committed, not yet durable here"
    );
    assert_eq!(
        rd.persisted_messages.len(),
        1,
        "the ack waits for persistence"
    );
    s.persist(&rd).expect("persist");
    n.on_persisted(rd.number).expect("persisted");
    let rd = n.ready().expect("ready");
    assert_eq!(rd.committed_entries.len(), 1);
}

#[test]
fn persistence_acknowledgements_apply_in_order_and_ignore_repeats() {
    let (mut n, s) = node(1, &[1]);
    n.campaign().expect("campaign");
    let rd = n.ready().expect("ready");
    s.persist(&rd).expect("persist");
    n.on_persisted(rd.number).expect("persisted");
    n.on_persisted(rd.number).expect("repeat is harmless");
    n.on_persisted(raft_core::ReadyNumber::FIRST)
        .expect("an old number is harmless");
    assert_eq!(n.status().soft_state.role, RoleKind::Leader);
}
