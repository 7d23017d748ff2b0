//! Election pacing: a host lets only `max_concurrent_elections` of its
//! groups campaign at once; the others wait in line, and every group
//! still elects a leader, even beside a group that can never win.

mod support;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use raft_core::NodeId;
use raft_host::{
    Counter, GroupHandle, GroupId, GroupOptions, Host, HostOptions, LocalNetwork, Membership, Peer,
    Recorder,
};
use raft_storage::{DiskStorage, StorageOptions};
use support::{PATIENCE, Sum, add, addr, nid};

const GROUPS: u64 = 24;
/// A group whose other two members never start: it cannot elect.
const HOPELESS: GroupId = GroupId(1000);

/// Counts elections held back.
#[derive(Debug, Default)]
struct HeldBack(AtomicU64);

impl Recorder for HeldBack {
    fn count(&self, _group: GroupId, counter: Counter, n: u64) {
        if counter == Counter::ElectionsHeldBack {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }
}

fn options(group: GroupId, founders: &[Peer]) -> GroupOptions {
    let mut o = GroupOptions::new(group, Membership::Found(founders.to_vec()));
    o.tick_interval = Duration::from_millis(10);
    o.election_timeout_ticks = 10;
    o.request_timeout = Duration::from_secs(30);
    o
}

fn storage_options() -> StorageOptions {
    StorageOptions::new().wal(raft_wal::WalOptions::new().segment_size_bytes(1 << 20))
}

struct Node {
    _host: Host,
    handles: Vec<GroupHandle<Sum>>,
    /// Host 1's hopeless group, kept running: its election keeps asking
    /// for the permit.
    _hopeless: Option<GroupHandle<Sum>>,
    held_back: Arc<HeldBack>,
}

/// A host allowed one election at a time, running groups 1..=GROUPS of
/// `founders`; host 1 also runs the hopeless group.
fn start(id: NodeId, net: &LocalNetwork, dir: &std::path::Path, founders: &[Peer]) -> Node {
    let held_back = Arc::new(HeldBack::default());
    let opts = HostOptions::new()
        .loop_threads(2)
        .max_concurrent_elections(NonZeroUsize::new(1));
    let host = Host::with_options(id, opts, Arc::clone(&held_back) as Arc<dyn Recorder>);
    let transport = net.join(id, host.inbox());
    let open = |group: GroupId, founders: &[Peer]| {
        let (storage, _) =
            DiskStorage::open(dir.join(format!("g{}", group.0)), storage_options()).expect("open");
        let transport = Arc::clone(&transport) as Arc<dyn raft_host::Transport>;
        host.start_group(options(group, founders), storage, Sum::default(), transport)
            .expect("start")
    };
    // Started first, so that it takes the host's one permit first.
    let hopeless = (id == nid(1)).then(|| {
        let absent: Vec<Peer> = [1, 4, 5].map(|i| Peer::new(nid(i), addr(nid(i)))).to_vec();
        open(HOPELESS, &absent)
    });
    let handles = (1..=GROUPS).map(|g| open(GroupId(g), founders)).collect();
    Node {
        _host: host,
        handles,
        _hopeless: hopeless,
        held_back,
    }
}

/// Proposes `n` to group `g` wherever it leads, waiting out elections.
async fn propose(nodes: &[Node], g: usize, n: u64) -> u64 {
    loop {
        for node in nodes {
            let h = &node.handles[g];
            if h.status().is_leader()
                && let Ok(out) = h.propose(add(n)).await
            {
                return out;
            }
        }
        let mut changed = tokio::task::JoinSet::new();
        for node in nodes {
            let h = node.handles[g].clone();
            let before = h.status();
            changed.spawn(async move {
                let _ = h.wait_for(move |s| *s != before).await;
            });
        }
        let _ = tokio::time::timeout(PATIENCE, changed.join_next()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_election_at_a_time_per_host_every_group_still_elects() {
    let net = LocalNetwork::new();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let founders: Vec<Peer> = (1..=3).map(|i| Peer::new(nid(i), addr(nid(i)))).collect();
    let nodes: Vec<Node> = (0..3)
        .map(|i| start(nid(i as u64 + 1), &net, dirs[i].path(), &founders))
        .collect();
    for g in 0..GROUPS as usize {
        let out = tokio::time::timeout(PATIENCE, propose(&nodes, g, g as u64 + 1))
            .await
            .unwrap_or_else(|_| panic!("group {} elects a leader and commits", g + 1));
        assert_eq!(out, g as u64 + 1);
    }
    let held: u64 = nodes
        .iter()
        .map(|n| n.held_back.0.load(Ordering::Relaxed))
        .sum();
    assert!(held > 0, "elections waited for a permit");
}

/// One host, one permit: a group that can never win (its other members
/// never start) campaigns first and often, and eight single-member groups
/// still elect themselves, because a permit is given back after one
/// election timeout whether the election was won or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_election_that_cannot_win_gives_its_permit_back() {
    let net = LocalNetwork::new();
    let dir = tempfile::tempdir().unwrap();
    let opts = HostOptions::new().max_concurrent_elections(NonZeroUsize::new(1));
    let host = Host::with_options(nid(1), opts, Arc::new(raft_host::NoRecorder));
    let transport = net.join(nid(1), host.inbox()) as Arc<dyn raft_host::Transport>;
    let open = |group: GroupId, founders: &[Peer], election_timeout_ticks: u32| {
        let (storage, _) =
            DiskStorage::open(dir.path().join(format!("g{}", group.0)), storage_options())
                .expect("open");
        let mut o = options(group, founders);
        o.election_timeout_ticks = election_timeout_ticks;
        o.heartbeat_interval_ticks = 1;
        host.start_group(o, storage, Sum::default(), Arc::clone(&transport))
            .expect("start")
    };
    let absent: Vec<Peer> = [1, 4, 5].map(|i| Peer::new(nid(i), addr(nid(i)))).to_vec();
    // Due after 3 to 5 ticks, long before the others, and again and again.
    let _hopeless = open(HOPELESS, &absent, 3);
    let alone = [Peer::new(nid(1), addr(nid(1)))];
    let singles: Vec<GroupHandle<Sum>> = (1..=8).map(|g| open(GroupId(g), &alone, 30)).collect();
    for (g, h) in singles.iter().enumerate() {
        tokio::time::timeout(PATIENCE, h.wait_for(|s| s.is_leader()))
            .await
            .unwrap_or_else(|_| panic!("single-member group {} elects itself", g + 1))
            .expect("running");
    }
}
