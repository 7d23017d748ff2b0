//! A cluster of hosts over the in-process network, each member's storage
//! in a temporary directory of its own, running a counter.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use raft_core::NodeId;
use raft_host::{
    Command, Counter, GroupHandle, GroupId, GroupOptions, GroupStatus, Host, LocalNetwork,
    Membership, Peer, Recorder, StateMachine,
};
use raft_storage::{DiskStorage, StorageOptions};

/// Sums the numbers it is given; the output of a command is the new sum.
#[derive(Debug, Default)]
pub struct Sum {
    pub total: u64,
    pub commands: u64,
}

impl StateMachine for Sum {
    type Output = u64;
    type Image = Vec<u8>;

    fn apply(&mut self, commands: &[Command], outputs: &mut Vec<u64>) {
        for c in commands {
            let mut b = [0u8; 8];
            b.copy_from_slice(&c.data[..8]);
            self.total += u64::from_le_bytes(b);
            self.commands += 1;
            outputs.push(self.total);
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut v = self.total.to_le_bytes().to_vec();
        v.extend_from_slice(&self.commands.to_le_bytes());
        v
    }

    fn restore(&mut self, data: &mut dyn Read) -> std::io::Result<()> {
        let mut b = [0u8; 16];
        data.read_exact(&mut b)?;
        self.total = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        self.commands = u64::from_le_bytes(b[8..].try_into().expect("8 bytes"));
        Ok(())
    }
}

pub fn add(n: u64) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

pub fn nid(n: u64) -> NodeId {
    NodeId::new(n).expect("non-zero")
}

pub fn addr(id: NodeId) -> String {
    format!("local:{id}")
}

/// Counts snapshot restores and promotions, per host.
#[derive(Debug, Default)]
pub struct Counts {
    pub restored: AtomicU64,
    pub taken: AtomicU64,
}

impl Recorder for Counts {
    fn count(&self, _group: GroupId, counter: Counter, n: u64) {
        match counter {
            Counter::SnapshotsRestored => self.restored.fetch_add(n, Ordering::Relaxed),
            Counter::SnapshotsTaken => self.taken.fetch_add(n, Ordering::Relaxed),
            _ => 0,
        };
    }
}

pub const GROUP: GroupId = GroupId(7);

/// Bounds every wait of a test, so a bug shows as a failure, not a hang.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct Member {
    pub host: Host,
    pub handle: GroupHandle<Sum>,
    pub counts: Arc<Counts>,
}

pub struct Cluster {
    pub net: LocalNetwork,
    dirs: BTreeMap<NodeId, tempfile::TempDir>,
    pub members: BTreeMap<NodeId, Member>,
    founders: Vec<Peer>,
    tune: fn(&mut GroupOptions),
}

impl Cluster {
    /// `n` founders, started.
    pub fn founded(n: u64) -> Cluster {
        Cluster::founded_with(n, |_| {})
    }

    pub fn founded_with(n: u64, tune: fn(&mut GroupOptions)) -> Cluster {
        // Logs go to the test's captured output: shown when it fails.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_test_writer()
            .try_init();
        let founders: Vec<Peer> = (1..=n).map(|i| Peer::new(nid(i), addr(nid(i)))).collect();
        let mut c = Cluster {
            net: LocalNetwork::new(),
            dirs: BTreeMap::new(),
            members: BTreeMap::new(),
            founders,
            tune,
        };
        for i in 1..=n {
            c.start(nid(i));
        }
        c
    }

    fn options(&self, membership: Membership) -> GroupOptions {
        let mut o = GroupOptions::new(GROUP, membership);
        o.tick_interval = Duration::from_millis(10);
        o.election_timeout_ticks = 20;
        o.request_timeout = Duration::from_secs(30);
        o.membership_timeout = Duration::from_secs(30);
        // The whole suite can run with asynchronous writes too.
        if std::env::var_os("RAFT_HOST_ASYNC_WRITES").is_some() {
            o.async_storage_writes = true;
        }
        (self.tune)(&mut o);
        o
    }

    /// Starts (or restarts, from its directory) a founder.
    pub fn start(&mut self, id: NodeId) {
        let membership = Membership::Found(self.founders.clone());
        self.start_as(id, membership);
    }

    /// Starts a member that joins with empty storage.
    pub fn start_joiner(&mut self, id: NodeId) {
        let membership = Membership::Join(self.founders.clone());
        self.start_as(id, membership);
    }

    fn start_as(&mut self, id: NodeId, membership: Membership) {
        let dir = self
            .dirs
            .entry(id)
            .or_insert_with(|| tempfile::tempdir().expect("temp dir"));
        let (storage, _) = DiskStorage::open(dir.path(), StorageOptions::new()).expect("open");
        let counts = Arc::new(Counts::default());
        let host = Host::with_recorder(id, counts.clone());
        let transport = self.net.join(id, host.inbox());
        let opts = self.options(membership);
        let handle = host
            .start_group(opts, storage, Sum::default(), transport)
            .expect("start");
        self.members.insert(
            id,
            Member {
                host,
                handle,
                counts,
            },
        );
    }

    /// Stops a member gracefully (its host syncs and ends).
    pub fn stop(&mut self, id: NodeId) {
        let m = self.members.remove(&id).expect("running");
        self.net.leave(id);
        m.host.shutdown();
    }

    /// Stops a member abruptly: cut off first, so it can hand nothing
    /// over, then ended.
    pub fn kill(&mut self, id: NodeId) {
        self.net.isolate(id);
        self.stop(id);
        self.net.heal();
    }

    pub fn handle(&self, id: NodeId) -> &GroupHandle<Sum> {
        &self.members[&id].handle
    }

    /// Waits for a leader that every running member agrees on.
    pub async fn leader(&self) -> NodeId {
        loop {
            let mut leaders = Vec::new();
            for m in self.members.values() {
                let st = m.handle.status();
                // A joiner knows nothing until the leader contacts it.
                if !st.voters.is_empty() {
                    leaders.push(st.leader);
                }
            }
            if let Some(Some(l)) = leaders.first().copied()
                && leaders.iter().all(|x| *x == Some(l))
                && self.members.contains_key(&l)
                && self.members[&l].handle.status().is_leader()
            {
                return l;
            }
            self.any_change().await;
        }
    }

    /// Waits until some member's status changes.
    pub async fn any_change(&self) {
        let mut changed = tokio::task::JoinSet::new();
        for m in self.members.values() {
            let h = m.handle.clone();
            let before = h.status();
            changed.spawn(async move {
                let _ = h.wait_for(move |s| *s != before).await;
            });
        }
        tokio::time::timeout(PATIENCE, changed.join_next())
            .await
            .expect("some member's status changes within the test's patience");
    }

    /// Waits until `id`'s status satisfies `condition`.
    pub async fn wait(
        &self,
        id: NodeId,
        condition: impl FnMut(&GroupStatus) -> bool,
    ) -> GroupStatus {
        tokio::time::timeout(PATIENCE, self.handle(id).wait_for(condition))
            .await
            .expect("condition within the test's patience")
            .expect("the group runs")
    }

    /// Proposes on the leader, retrying refusals caused by a leader change.
    pub async fn propose(&self, n: u64) -> u64 {
        loop {
            let leader = self.leader().await;
            match self.handle(leader).propose(add(n)).await {
                Ok(out) => return out,
                Err(raft_host::ProposeError::NotLeader { .. }) => continue,
                Err(e) => panic!("propose on {leader}: {e}"),
            }
        }
    }
}
