//! The threaded `Node` driver: a three-node cluster of Nodes elects a
//! leader, commits proposals everywhere, and stops cleanly.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::Select;
use raft_core::node::{Node, NodeError};
use raft_core::{ConfState, Config, EntryKind, MemoryStorage, NodeId, Proposal, RoleKind};

/// A safety net against a hung test, not a timing assertion.
const DEADLINE: Duration = Duration::from_secs(30);

fn id(n: u64) -> NodeId {
    NodeId::new(n).expect("non-zero")
}

struct App {
    node: Node,
    storage: MemoryStorage,
    applied: Vec<Bytes>,
}

fn cluster() -> BTreeMap<u64, App> {
    let conf = ConfState::with_voters([id(1), id(2), id(3)]);
    (1..=3)
        .map(|n| {
            let storage = MemoryStorage::with_conf_state(conf.clone());
            let node = Node::start(Config::new(id(n)), storage.clone()).expect("start");
            (
                n,
                App {
                    node,
                    storage,
                    applied: Vec::new(),
                },
            )
        })
        .collect()
}

/// Persists, applies and advances one Ready of node `n`, and delivers its
/// messages.
fn handle(apps: &mut BTreeMap<u64, App>, n: u64, rd: raft_core::Ready) {
    let app = apps.get_mut(&n).expect("app");
    app.storage.persist(&rd).expect("persist");
    for e in &rd.committed_entries {
        if e.kind == EntryKind::Normal && !e.data.is_empty() {
            app.applied.push(e.data.clone());
        }
    }
    app.node.advance().expect("advance");
    for m in rd.messages.into_iter().chain(rd.persisted_messages) {
        let _ = apps[&m.to.get()].node.step(m);
    }
}

/// Handles Readys as they come until `done` holds.
fn run_until(apps: &mut BTreeMap<u64, App>, done: impl Fn(&BTreeMap<u64, App>) -> bool) {
    while !done(apps) {
        let ids: Vec<u64> = apps.keys().copied().collect();
        let mut sel = Select::new();
        for n in &ids {
            sel.recv(apps[n].node.ready());
        }
        let op = sel
            .select_timeout(DEADLINE)
            .expect("a Ready within the deadline");
        let n = ids[op.index()];
        let rd = op.recv(apps[&n].node.ready()).expect("node running");
        handle(apps, n, rd);
    }
}

/// Handles every Ready already handed out, without waiting for more.
fn drain_available(apps: &mut BTreeMap<u64, App>) {
    loop {
        let ids: Vec<u64> = apps.keys().copied().collect();
        let ready: Vec<(u64, raft_core::Ready)> = ids
            .iter()
            .filter_map(|&n| apps[&n].node.ready().try_recv().ok().map(|rd| (n, rd)))
            .collect();
        if ready.is_empty() {
            return;
        }
        for (n, rd) in ready {
            handle(apps, n, rd);
        }
    }
}

/// Node 1 campaigns; returns once every node knows it leads.
fn elect_node_1(apps: &mut BTreeMap<u64, App>) {
    apps[&1].node.campaign().expect("campaign");
    run_until(apps, |a| {
        a.values().all(|app| {
            app.node
                .status()
                .is_ok_and(|s| s.soft_state.leader == Some(id(1)))
        })
    });
}

#[test]
fn three_nodes_elect_a_leader_and_commit_proposals_everywhere() {
    let mut apps = cluster();
    elect_node_1(&mut apps);
    let p = apps[&1].node.propose(&b"one"[..]).expect("accepted");
    assert!(matches!(p, Proposal::Appended { .. }));
    let p = apps[&2].node.propose(&b"two"[..]).expect("forwarded");
    assert!(matches!(p, Proposal::Forwarded { to } if to == id(1)));
    run_until(&mut apps, |a| a.values().all(|app| app.applied.len() == 2));
    for app in apps.values() {
        assert_eq!(
            app.applied,
            vec![Bytes::from_static(b"one"), Bytes::from_static(b"two")]
        );
    }
}

#[test]
fn ticks_alone_elect_a_leader() {
    let mut apps = cluster();
    for _ in 0..1_000 {
        for app in apps.values() {
            app.node.tick().expect("tick");
            // Two round trips: the tick is processed and any Ready it caused
            // is in the channel.
            app.node.status().expect("status");
            app.node.status().expect("status");
        }
        drain_available(&mut apps);
        let leaders = apps
            .values()
            .filter(|a| {
                a.node
                    .status()
                    .is_ok_and(|s| s.soft_state.role == RoleKind::Leader)
            })
            .count();
        if leaders == 1 {
            return;
        }
    }
    panic!("no leader after 1000 ticks");
}

#[test]
fn a_stopped_node_answers_every_call_with_stopped() {
    let storage = MemoryStorage::with_conf_state(ConfState::with_voters([id(1)]));
    let mut node = Node::start(Config::new(id(1)), storage).expect("start");
    node.stop().expect("clean stop");
    assert!(matches!(node.propose(&b"x"[..]), Err(NodeError::Stopped)));
    assert!(matches!(node.tick(), Err(NodeError::Stopped)));
    assert!(matches!(node.status(), Err(NodeError::Stopped)));
    assert!(
        node.ready().recv().is_err(),
        "the Ready channel disconnects"
    );
    node.stop().expect("stopping twice is harmless");
}

#[test]
fn proposal_without_a_leader_returns_the_reason() {
    let storage = MemoryStorage::with_conf_state(ConfState::with_voters([id(1), id(2), id(3)]));
    let node = Node::start(Config::new(id(1)), storage).expect("start");
    let err = node.propose(&b"x"[..]).expect_err("no leader");
    assert!(
        matches!(err, NodeError::Propose(raft_core::ProposeError::NoLeader)),
        "{err}"
    );
}

#[test]
fn a_threaded_follower_forgets_its_leader_and_asks_it_for_a_snapshot() {
    let mut apps = cluster();
    elect_node_1(&mut apps);
    run_until(&mut apps, |a| {
        a.values()
            .all(|app| app.node.status().is_ok_and(|s| s.applied.get() >= 1))
    });
    let err = apps[&1]
        .node
        .forget_leader()
        .expect_err("the leader refuses");
    assert!(
        matches!(
            err,
            NodeError::ForgetLeader(raft_core::ForgetLeaderError::NotFollower {
                role: RoleKind::Leader
            })
        ),
        "{err}"
    );
    let index = apps[&2].node.request_snapshot().expect("a follower asks");
    assert_eq!(index.get(), 1, "the snapshot must reach the last index");
    let again = apps[&2].node.request_snapshot().expect_err("one at a time");
    assert!(
        matches!(
            again,
            NodeError::RequestSnapshot(raft_core::RequestSnapshotError::AlreadyPending { .. })
        ),
        "{again}"
    );
    apps[&3].node.forget_leader().expect("a follower forgets");
    let status = apps[&3].node.status().expect("status");
    assert_eq!(status.soft_state.leader, None);
}
