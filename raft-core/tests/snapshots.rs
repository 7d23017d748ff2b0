//! Snapshots and log compaction (paper §7, thesis §5 and Figure 13).

mod support;

use bytes::Bytes;
use raft_core::{
    ConfState, Config, Index, LogId, MemoryStorage, Message, MessageBody, ProgressState, RawNode,
    Snapshot, SnapshotMetadata, SnapshotStatus, Storage, StorageError, Term,
};
use support::{Cluster, id};

fn lagging_cluster() -> Cluster {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.elect(1);
    c.isolate(3);
    for _ in 0..10 {
        c.propose(1, b"w");
    }
    c.stabilize();
    // Everything up to the last applied index goes into a snapshot.
    let applied = c.status(1).applied.get();
    c.compact(1, applied);
    c
}

/// Runs the cluster until the leader sends a snapshot, and takes it off
/// the network.
fn intercept_snapshot(c: &mut Cluster) -> Vec<Message> {
    for _ in 0..10 {
        c.process_all();
        let snaps = c.take_sent(1, "Snapshot");
        if !snaps.is_empty() {
            return snaps;
        }
        c.deliver_all();
    }
    panic!("no snapshot was sent");
}

#[test]
fn lagging_follower_catches_up_by_snapshot_after_compaction() {
    let mut c = lagging_cluster();
    c.heal();
    c.tick_all(1);
    c.stabilize();
    let sent: Vec<_> = c
        .delivered
        .iter()
        .filter(|m| matches!(m.body, MessageBody::Snapshot(_)))
        .collect();
    assert_eq!(sent.len(), 1, "exactly one snapshot sent");
    // The harness reports nothing: the follower's append response after
    // restoring reconnects it (etcd #10308).
    let st = c.status(1).progress.expect("leader");
    assert_eq!(st[&id(3)].state, ProgressState::Replicate);
    assert_eq!(st[&id(3)].matched, c.status(1).last_index);
    c.propose(1, b"after");
    c.stabilize();
    assert_eq!(c.commit(3), c.commit(1));
    assert_eq!(
        c.nodes[&id(3)]
            .storage
            .snapshot(Index(0))
            .expect("snap")
            .metadata
            .index,
        Index(11)
    );
}

#[test]
fn snapshot_is_not_sent_to_a_follower_that_is_not_recently_active() {
    let mut c = Cluster::builder()
        .voters(&[1, 2, 3])
        .check_quorum(true)
        .build();
    c.elect(1);
    c.isolate(3);
    for _ in 0..5 {
        c.propose(1, b"w");
    }
    c.stabilize();
    c.tick_all(10); // a CheckQuorum round marks node 3 inactive
    c.compact(1, c.status(1).applied.get());
    c.propose(1, b"w");
    c.stabilize();
    assert!(
        !c.delivered
            .iter()
            .any(|m| matches!(m.body, MessageBody::Snapshot(_)))
    );
}

#[test]
fn failed_snapshot_report_returns_the_follower_to_probing() {
    let mut c = lagging_cluster();
    c.heal();
    c.tick(1, 1);
    let snaps = intercept_snapshot(&mut c);
    assert_eq!(snaps.len(), 1, "the snapshot is lost in transit");
    assert!(matches!(
        c.status(1).progress.expect("leader")[&id(3)].state,
        ProgressState::Snapshot { .. }
    ));
    c.node(1).raw.report_snapshot(id(3), SnapshotStatus::Failed);
    assert_eq!(
        c.status(1).progress.expect("leader")[&id(3)].state,
        ProgressState::Probe
    );
    // The next heartbeat round retries.
    c.tick_all(2);
    assert_eq!(c.commit(3), c.commit(1));
}

#[test]
fn a_snapshot_older_than_the_pending_one_still_reconnects_the_follower() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.elect(1);
    c.isolate(3);
    for _ in 0..10 {
        c.propose(1, b"w");
    }
    c.stabilize();
    // The leader snapshots at 11 but keeps its log from 6 on.
    {
        let node = c.node(1);
        let cs = node.storage.initial_state().expect("state").conf_state;
        node.storage
            .create_snapshot(Index(11), cs, Bytes::new())
            .expect("snapshot");
        node.storage.compact(Index(5)).expect("compact");
    }
    c.heal();
    c.tick(1, 1);
    let snaps = intercept_snapshot(&mut c);
    let MessageBody::Snapshot(s) = &snaps[0].body else {
        unreachable!()
    };
    assert_eq!(s.metadata.index, Index(11));
    // An older snapshot (index 6, say from an earlier attempt) reaches node 3
    // instead. Its answer, index 6, is behind the pending snapshot but
    // connects to the leader's log, so replication resumes (etcd-raft #110).
    let term6 = c.nodes[&id(1)].storage.term(Index(6)).expect("term");
    let older = Snapshot {
        metadata: SnapshotMetadata {
            index: Index(6),
            term: term6,
            conf_state: s.metadata.conf_state.clone(),
        },
        data: Bytes::new(),
    };
    c.deliver(Message {
        from: id(1),
        to: id(3),
        term: c.term(1),
        body: MessageBody::Snapshot(older),
    });
    c.stabilize();
    assert_eq!(
        c.status(1).progress.expect("leader")[&id(3)].state,
        ProgressState::Replicate
    );
    assert_eq!(c.commit(3), c.commit(1));
}

#[test]
fn follower_fast_forwards_when_its_log_already_contains_the_snapshot_index() {
    let storage = MemoryStorage::with_conf_state(ConfState::with_voters([id(1), id(2)]));
    let ents: Vec<_> = (1..=5)
        .map(|i| raft_core::Entry::new(Term(1), Index(i), Bytes::new()))
        .collect();
    storage.append(&ents).expect("append");
    storage.set_hard_state(raft_core::HardState {
        term: Term(1),
        vote: None,
        commit: Index(1),
    });
    let mut node = RawNode::new(Config::new(id(2)), storage.clone()).expect("node");
    let snap = Snapshot {
        metadata: SnapshotMetadata {
            index: Index(3),
            term: Term(1),
            conf_state: ConfState::with_voters([id(1), id(2)]),
        },
        data: Bytes::new(),
    };
    node.step(Message {
        from: id(1),
        to: id(2),
        term: Term(1),
        body: MessageBody::Snapshot(snap),
    })
    .expect("step");
    let rd = node.ready().expect("ready");
    assert!(rd.snapshot.is_none(), "the log is kept; only commit moves");
    assert_eq!(rd.hard_state.expect("commit changed").commit, Index(3));
    assert_eq!(node.status().last_index, Index(5));
}

#[test]
fn follower_refuses_a_snapshot_whose_configuration_excludes_it() {
    let storage = MemoryStorage::with_conf_state(ConfState::with_voters([id(1), id(2)]));
    let mut node = RawNode::new(Config::new(id(2)), storage).expect("node");
    let snap = Snapshot {
        metadata: SnapshotMetadata {
            index: Index(7),
            term: Term(2),
            conf_state: ConfState::with_voters([id(1)]),
        },
        data: Bytes::new(),
    };
    node.step(Message {
        from: id(1),
        to: id(2),
        term: Term(2),
        body: MessageBody::Snapshot(snap),
    })
    .expect("step");
    let rd = node.ready().expect("ready");
    assert!(rd.snapshot.is_none());
    assert!(
        rd.persisted_messages.is_empty(),
        "no acknowledgement of a refused snapshot"
    );
}

#[test]
fn follower_ignores_a_stale_snapshot() {
    let mut c = Cluster::builder().voters(&[1, 2]).build();
    c.elect(1);
    c.propose(1, b"a");
    c.stabilize();
    let stale = Snapshot {
        metadata: SnapshotMetadata {
            index: Index(1),
            term: Term(1),
            conf_state: ConfState::with_voters([id(1), id(2)]),
        },
        data: Bytes::new(),
    };
    c.deliver(Message {
        from: id(1),
        to: id(2),
        term: c.term(1),
        body: MessageBody::Snapshot(stale),
    });
    let rd = c.process_ready(2);
    assert!(
        rd.iter()
            .all(|m| !matches!(m.body, MessageBody::Snapshot(_)))
    );
    assert_eq!(c.status(2).last_index, Index(2));
}

#[test]
fn restarted_node_does_not_reapply_entries_below_config_applied() {
    let mut c = Cluster::builder().voters(&[1]).build();
    c.elect(1);
    c.propose(1, b"a");
    c.propose(1, b"b");
    c.stabilize();
    let storage = c.nodes[&id(1)].storage.clone();
    let mut cfg = Config::new(id(1));
    cfg.applied = Index(2);
    let mut node = RawNode::new(cfg, storage).expect("restart");
    let rd = node.ready().expect("ready");
    let idx: Vec<u64> = rd.committed_entries.iter().map(|e| e.index.get()).collect();
    assert_eq!(
        idx,
        vec![3],
        "entries up to applied are not handed out again"
    );
}

#[test]
fn restart_with_commit_beyond_the_log_is_a_typed_error() {
    let storage = MemoryStorage::with_conf_state(ConfState::with_voters([id(1)]));
    storage.set_hard_state(raft_core::HardState {
        term: Term(1),
        vote: None,
        commit: Index(5),
    });
    let err = RawNode::new(Config::new(id(1)), storage).expect_err("inconsistent");
    assert!(
        matches!(err, raft_core::NewError::CommitBeyondLog { .. }),
        "{err}"
    );
}

#[test]
fn snapshot_temporarily_unavailable_is_retried_later() {
    /// A storage whose snapshot is not ready the first `n` times.
    struct Slow {
        inner: MemoryStorage,
        refusals: std::cell::Cell<u32>,
    }
    impl Storage for Slow {
        fn initial_state(&self) -> Result<raft_core::InitialState, StorageError> {
            self.inner.initial_state()
        }
        fn entries(
            &self,
            lo: Index,
            hi: Index,
            max: u64,
        ) -> Result<Vec<raft_core::Entry>, StorageError> {
            self.inner.entries(lo, hi, max)
        }
        fn term(&self, i: Index) -> Result<Term, StorageError> {
            self.inner.term(i)
        }
        fn first_index(&self) -> Result<Index, StorageError> {
            self.inner.first_index()
        }
        fn last_index(&self) -> Result<Index, StorageError> {
            self.inner.last_index()
        }
        fn snapshot(&self, i: Index) -> Result<Snapshot, StorageError> {
            if self.refusals.get() > 0 {
                self.refusals.set(self.refusals.get() - 1);
                return Err(StorageError::SnapshotTemporarilyUnavailable);
            }
            self.inner.snapshot(i)
        }
    }
    let mem = MemoryStorage::with_conf_state(ConfState::with_voters([id(1), id(2)]));
    let ents: Vec<_> = (1..=4)
        .map(|i| raft_core::Entry::new(Term(1), Index(i), Bytes::new()))
        .collect();
    mem.append(&ents).expect("append");
    mem.set_hard_state(raft_core::HardState {
        term: Term(1),
        vote: None,
        commit: Index(4),
    });
    mem.create_snapshot(
        Index(4),
        ConfState::with_voters([id(1), id(2)]),
        Bytes::new(),
    )
    .expect("snap");
    mem.compact(Index(4)).expect("compact");
    let mut cfg = Config::new(id(1));
    cfg.pre_vote = false;
    cfg.applied = Index(4);
    let slow = Slow {
        inner: mem.clone(),
        refusals: std::cell::Cell::new(1),
    };
    let mut node = RawNode::new(cfg, slow).expect("node");
    node.campaign().expect("campaign");
    let rd = node.ready().expect("ready");
    assert!(rd.hard_state.is_some(), "the vote");
    mem.persist(&rd).expect("persist");
    node.advance().expect("advance");
    node.step(Message {
        from: id(2),
        to: id(1),
        term: Term(2),
        body: MessageBody::VoteResponse(raft_core::VoteResponse { reject: false }),
    })
    .expect("vote");
    // Node 2's log is empty: the probe at 5 is rejected, the leader needs a
    // snapshot, storage refuses once, and the next probe succeeds.
    let reject = |idx: u64| Message {
        from: id(2),
        to: id(1),
        term: Term(2),
        body: MessageBody::AppendResponse(raft_core::AppendResponse {
            index: Index(idx),
            reject: Some(raft_core::RejectHint {
                index: Index(0),
                term: None,
            }),
            commit: Index(0),
        }),
    };
    let rd = node.ready().expect("ready");
    mem.persist(&rd).expect("persist");
    node.advance().expect("advance");
    node.step(reject(4)).expect("reject");
    let rd = node.ready().expect("ready");
    assert!(
        rd.messages
            .iter()
            .all(|m| !matches!(m.body, MessageBody::Snapshot(_))),
        "refused once"
    );
    node.advance().expect("advance");
    node.step(Message {
        from: id(2),
        to: id(1),
        term: Term(2),
        body: MessageBody::HeartbeatResponse(raft_core::HeartbeatResponse { read_round: None }),
    })
    .expect("heartbeat response");
    let rd = node.ready().expect("ready");
    assert!(
        rd.messages
            .iter()
            .any(|m| matches!(m.body, MessageBody::Snapshot(_))),
        "retried"
    );
    let _ = LogId::ZERO;
}
