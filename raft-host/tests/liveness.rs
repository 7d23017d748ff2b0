//! Host liveness over the in-process network: hosts ping one another once
//! per host pair (group 0), and a silent peer host is reported down.

mod support;

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use raft_host::{
    Counter, GroupId, GroupOptions, HOST_GROUP, Host, HostOptions, LocalNetwork, Membership, Peer,
    Recorder, StartError,
};
use raft_storage::{DiskStorage, StorageOptions};
use support::{PATIENCE, Sum, addr, nid};

/// Sends the group of every `PeerHostsDown` it counts.
struct DownEvents(Sender<GroupId>);

impl Recorder for DownEvents {
    fn count(&self, group: GroupId, counter: Counter, _n: u64) {
        if counter == Counter::PeerHostsDown {
            let _ = self.0.send(group);
        }
    }
}

fn group_options(group: u64, founders: &[Peer]) -> GroupOptions {
    let mut o = GroupOptions::new(GroupId(group), Membership::Found(founders.to_vec()));
    o.tick_interval = Duration::from_millis(10);
    o.election_timeout_ticks = 20;
    o
}

#[test]
fn hosts_cut_off_from_each_other_report_each_other_down() {
    let net = LocalNetwork::new();
    let founders: Vec<Peer> = (1..=2).map(|i| Peer::new(nid(i), addr(nid(i)))).collect();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let (down_tx, down) = crossbeam_channel::unbounded();
    let options =
        HostOptions::new().liveness(Duration::from_millis(10), Duration::from_millis(200));
    let hosts: Vec<Host> = (0..2)
        .map(|i| {
            let recorder = Arc::new(DownEvents(down_tx.clone()));
            Host::with_options(nid(i as u64 + 1), options.clone(), recorder)
        })
        .collect();
    for (i, host) in hosts.iter().enumerate() {
        let transport = net.join(host.id(), host.inbox());
        // Two groups over the same pair of hosts: still one ping per pair.
        for g in [1, 2] {
            let dir = dirs[i].path().join(format!("g{g}"));
            let (storage, _) = DiskStorage::open(&dir, StorageOptions::new()).unwrap();
            let t = Arc::clone(&transport) as Arc<dyn raft_host::Transport>;
            host.start_group(group_options(g, &founders), storage, Sum::default(), t)
                .unwrap();
        }
    }
    net.isolate(nid(2));
    let first = down
        .recv_timeout(PATIENCE)
        .expect("a silent host is reported down");
    let second = down
        .recv_timeout(PATIENCE)
        .expect("by both sides of the cut");
    assert_eq!((first, second), (HOST_GROUP, HOST_GROUP));
}

#[test]
fn group_zero_is_reserved_for_the_hosts() {
    let net = LocalNetwork::new();
    let host = Host::new(nid(1));
    let transport = net.join(host.id(), host.inbox());
    let dir = tempfile::tempdir().unwrap();
    let (storage, _) = DiskStorage::open(dir.path(), StorageOptions::new()).unwrap();
    let founders = [Peer::new(nid(1), addr(nid(1)))];
    let refused = host.start_group(
        group_options(0, &founders),
        storage,
        Sum::default(),
        transport,
    );
    assert!(matches!(refused, Err(StartError::ReservedGroup(g)) if g == HOST_GROUP));
}
