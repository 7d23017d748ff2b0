//! A replicated counter on three members (three hosts in one process,
//! over raft-host's in-process network; each member has its own durable
//! storage). It counts, loses a member, counts on, and brings it back.
use std::io::Read;

use raft_core::NodeId;
use raft_host::{
    Command, GroupHandle, GroupId, GroupOptions, Host, LocalNetwork, Membership, Peer, StateMachine,
};
use raft_storage::{DiskStorage, StorageOptions};

/// The replicated state: a number. A command adds to it.
#[derive(Default)]
struct Counter(u64);

impl StateMachine for Counter {
    type Output = u64;
    type Image = Vec<u8>;
    fn apply(&mut self, commands: &[Command], outputs: &mut Vec<u64>) {
        for c in commands {
            self.0 += c.data.iter().map(|b| u64::from(*b)).sum::<u64>();
            outputs.push(self.0);
        }
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.to_le_bytes().to_vec()
    }
    fn restore(&mut self, data: &mut dyn Read) -> std::io::Result<()> {
        let mut b = [0u8; 8];
        data.read_exact(&mut b)?;
        self.0 = u64::from_le_bytes(b);
        Ok(())
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Starts member `id` of the group from its directory (founding it on the
/// first start, recovering it after).
fn start(
    id: NodeId,
    dir: &std::path::Path,
    net: &LocalNetwork,
) -> Result<(Host, GroupHandle<Counter>)> {
    let founders =
        (1..=3).map(|n| Peer::new(NodeId::new(n).expect("non-zero"), format!("node-{n}")));
    let mut opts = GroupOptions::new(GroupId(1), Membership::Found(founders.collect()));
    opts.tick_interval = std::time::Duration::from_millis(20);
    let (storage, _recovery) = DiskStorage::open(dir, StorageOptions::new())?;
    let host = Host::new(id);
    let transport = net.join(id, host.inbox());
    let group = host.start_group(opts, storage, Counter::default(), transport)?;
    Ok((host, group))
}

/// Adds `n` through whichever member leads.
async fn add(members: &[(Host, GroupHandle<Counter>)], n: u8) -> Result<u64> {
    loop {
        let group = &members[0].1;
        let leader = group
            .wait_for(|s| s.leader.is_some())
            .await?
            .leader
            .expect("known");
        if let Some((_, handle)) = members.iter().find(|(h, _)| h.id() == leader) {
            match handle.propose(vec![n]).await {
                Ok(total) => return Ok(total),
                Err(raft_host::ProposeError::NotLeader { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // That leader is gone or deposed: wait for news of another.
        group.wait_for(|s| s.leader != Some(leader)).await?;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let net = LocalNetwork::new();
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir())
        .collect::<std::io::Result<_>>()?;
    let id = |i: usize| NodeId::new(i as u64 + 1).expect("non-zero");
    let mut members = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        members.push(start(id(i), dir.path(), &net)?);
    }
    for _ in 0..10 {
        add(&members, 1).await?;
    }
    // Stop member 3; the other two are a majority and count on.
    let (host, _) = members.pop().expect("three members");
    net.leave(host.id());
    host.shutdown();
    let total = add(&members, 5).await?;
    println!("two of three members: total {total}");
    // Member 3 restarts from its disk and catches up.
    members.push(start(id(2), dirs[2].path(), &net)?);
    let seen = members[2].1.read(|c| c.0).await?;
    println!("member 3 after its restart reads {seen}");
    assert_eq!((total, seen), (15, 15));
    for (host, _) in &members {
        host.shutdown();
    }
    Ok(())
}
