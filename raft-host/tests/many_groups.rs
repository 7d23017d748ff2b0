//! Many groups on a few threads: three hosts run 64 groups each on the
//! in-process network. The only test in its binary, so that the process's
//! thread count is this test's alone.

mod support;

use std::sync::Arc;
use std::time::Duration;

use raft_core::NodeId;
use raft_host::{
    GroupHandle, GroupId, GroupOptions, Host, HostOptions, LocalNetwork, Membership, NoRecorder,
    Peer,
};
use raft_storage::{DiskStorage, StorageOptions};
use support::{PATIENCE, Sum, add, addr, nid};

const GROUPS: u64 = 64;
const LOOP_THREADS: usize = 2;

/// Threads of this process whose name starts with `prefix` (but not the
/// WALs' own `raft-wal-*` threads), from the kernel's list.
fn threads(prefix: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix) && !name.starts_with("raft-wal"))
        .count()
}

fn options(group: GroupId, founders: &[Peer]) -> GroupOptions {
    let mut o = GroupOptions::new(group, Membership::Found(founders.to_vec()));
    o.tick_interval = Duration::from_millis(10);
    o.election_timeout_ticks = 20;
    o.request_timeout = Duration::from_secs(30);
    // One writer round serves every group with writes queued.
    o.async_storage_writes = true;
    o
}

/// Small WAL segments: 192 groups preallocating 64 MiB each would be
/// 12 GiB of disk.
fn storage_options() -> StorageOptions {
    StorageOptions::new().wal(raft_wal::WalOptions::new().segment_size_bytes(1 << 20))
}

struct Node {
    host: Host,
    handles: Vec<GroupHandle<Sum>>,
}

fn start(id: NodeId, net: &LocalNetwork, dir: &std::path::Path, founders: &[Peer]) -> Node {
    let opts = HostOptions::new().loop_threads(LOOP_THREADS);
    let host = Host::with_options(id, opts, Arc::new(NoRecorder));
    let transport = net.join(id, host.inbox());
    let handles = (1..=GROUPS)
        .map(|g| {
            let group_dir = dir.join(format!("g{g}"));
            let (storage, _) = DiskStorage::open(&group_dir, storage_options()).expect("open");
            let transport = Arc::clone(&transport) as Arc<dyn raft_host::Transport>;
            host.start_group(
                options(GroupId(g), founders),
                storage,
                Sum::default(),
                transport,
            )
            .expect("start")
        })
        .collect();
    Node { host, handles }
}

/// Proposes `n` to group `g` on whichever node leads it, retrying while
/// leadership moves.
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
        // Wait for any member's status of the group to change.
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
async fn three_hosts_run_sixty_four_groups_each_on_two_loop_threads_and_restart_them() {
    let net = LocalNetwork::new();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let founders: Vec<Peer> = (1..=3).map(|i| Peer::new(nid(i), addr(nid(i)))).collect();
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| start(nid(i as u64 + 1), &net, dirs[i].path(), &founders))
        .collect();
    // Per host: the loop threads, a timer, a storage writer and a
    // snapshot thread, however many groups it runs. (Each group's own WAL
    // still has a segment-preallocation thread; a shared log has one.)
    let per_host = LOOP_THREADS + 3;
    let host_threads = threads("raft-");
    assert!(
        host_threads <= 3 * per_host,
        "{host_threads} host threads for 3 hosts of {GROUPS} groups; at most {} expected",
        3 * per_host
    );

    for g in 0..GROUPS as usize {
        assert_eq!(propose(&nodes, g, g as u64 + 1).await, g as u64 + 1);
    }
    // Every member of every group applies its group's command, and only it.
    for node in &nodes {
        for (g, h) in node.handles.iter().enumerate() {
            let want = g as u64 + 1;
            tokio::time::timeout(PATIENCE, async {
                loop {
                    // Read before looking: an apply in between shows as a
                    // newer applied index, and the loop looks again.
                    let seen = h.status().applied;
                    if h.read_local(|s| s.total) == want {
                        return;
                    }
                    let _ = h.wait_for(move |s| s.applied > seen).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("group {g} applies its command on every member"));
        }
    }

    // A host restarts: every one of its groups recovers from its own log.
    let stopped = nodes.remove(0);
    net.leave(nid(1));
    stopped.host.shutdown();
    drop(stopped);
    nodes.insert(0, start(nid(1), &net, dirs[0].path(), &founders));
    for g in 0..GROUPS as usize {
        let sum = propose(&nodes, g, 100).await;
        assert_eq!(sum, g as u64 + 101, "group {g} kept its state");
    }
}
