//! `HttpNode`: three nodes on loopback replicate, stop and recover from
//! their data directories; a node that cannot start leaves nothing behind.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use raft_core::NodeId;
use raft_host::{Command, GroupId, GroupOptions, Membership, Peer, StateMachine, StopReason};
use raft_transport::{
    HttpNode, HttpNodeConfig, HttpNodeError, HttpNodeRunError, PeerListener, TlsFiles,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Sums the numbers it is given; a command's output is the new sum.
#[derive(Debug, Default)]
struct Sum(u64);

impl StateMachine for Sum {
    type Output = u64;
    type Image = Vec<u8>;

    fn apply(&mut self, commands: &[Command], outputs: &mut Vec<u64>) {
        for c in commands {
            self.0 += u64::from(c.data[0]);
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

fn nid(n: u64) -> NodeId {
    NodeId::new(n).expect("non-zero")
}

/// Node `id` of the group founded by `addrs` (node i at the i-th).
fn config(id: u64, addrs: &[SocketAddr], root: &Path) -> HttpNodeConfig {
    let peers = (1..)
        .zip(addrs)
        .map(|(i, a)| Peer::new(nid(i), format!("http://{a}")))
        .collect();
    let mut group = GroupOptions::new(GroupId(1), Membership::Found(peers));
    group.tick_interval = Duration::from_millis(10);
    HttpNodeConfig::new(nid(id), root.join(format!("node-{id}")), group)
}

/// A running node: its handle, and what stops it.
struct Running {
    group: raft_host::GroupHandle<Sum>,
    stop: oneshot::Sender<()>,
    run: JoinHandle<Result<StopReason, HttpNodeRunError>>,
}

fn run(node: HttpNode<Sum>) -> Running {
    let (stop, stopped) = oneshot::channel();
    let group = node.group().clone();
    let run = tokio::spawn(node.run(async move {
        let _ = stopped.await;
    }));
    Running { group, stop, run }
}

async fn stop_all(nodes: Vec<Running>) {
    for n in nodes {
        let _ = n.stop.send(());
        let exit = n.run.await.expect("run did not panic");
        assert_eq!(exit.expect("a clean stop"), StopReason::Shutdown);
    }
}

/// Waits until node `n` knows a leader, then sums through it.
async fn propose_through(n: &Running, value: u8) -> u64 {
    n.group
        .wait_for(|s| s.leader.is_some())
        .await
        .expect("the group runs");
    n.group.propose(vec![value]).await.expect("committed")
}

/// Three peer ports on loopback, and their addresses.
async fn three_listeners() -> (Vec<PeerListener>, Vec<SocketAddr>) {
    let mut listeners = Vec::new();
    for _ in 0..3 {
        let addr = "127.0.0.1:0".parse().unwrap();
        listeners.push(PeerListener::bind(addr).await.unwrap());
    }
    let addrs = listeners.iter().map(PeerListener::local_addr).collect();
    (listeners, addrs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_and_recover_from_their_directories() {
    let root = tempfile::tempdir().unwrap();
    let (listeners, addrs) = three_listeners().await;
    let mut nodes = Vec::new();
    for (id, listener) in (1..).zip(listeners) {
        let cfg = config(id, &addrs, root.path());
        let node = HttpNode::start_on(listener, cfg, |_| Sum::default())
            .await
            .unwrap();
        assert_eq!(node.peer_url().addr(), addrs[id as usize - 1]);
        nodes.push(run(node));
    }
    assert_eq!(propose_through(&nodes[0], 2).await, 2);
    assert_eq!(propose_through(&nodes[2], 3).await, 5);
    for n in &nodes {
        assert_eq!(n.group.read(|s| s.0).await.unwrap(), 5);
    }
    stop_all(nodes).await;

    // The same addresses, bound by the nodes themselves this time: every
    // node recovers its log, and the group goes on where it stopped.
    let mut nodes = Vec::new();
    for id in 1..=3 {
        let cfg = config(id, &addrs, root.path());
        nodes.push(run(HttpNode::start(cfg, |_| Sum::default()).await.unwrap()));
    }
    assert_eq!(propose_through(&nodes[1], 1).await, 6);
    for n in &nodes {
        assert_eq!(n.group.read(|s| s.0).await.unwrap(), 6);
    }
    stop_all(nodes).await;
}

/// Node `id` of [`config`] running groups 1, 2 and 3, group `g`
/// preferring node `g` as its leader.
fn three_group_config(id: u64, addrs: &[SocketAddr], root: &Path) -> HttpNodeConfig {
    let mut cfg = config(id, addrs, root);
    cfg.group.preferred_leader = Some(nid(1));
    cfg.extra_groups = (2..=3)
        .map(|g| {
            let mut o = cfg.group.clone();
            o.group = GroupId(g);
            o.preferred_leader = Some(nid(g));
            o
        })
        .collect();
    cfg
}

/// What node `n`'s replica of each group has summed, in group order.
async fn sums(n: &HttpNode<Sum>) -> Vec<u64> {
    let mut sums = Vec::new();
    for g in n.groups().groups() {
        g.wait_for(|s| s.leader.is_some()).await.expect("runs");
        sums.push(g.read(|s| s.0).await.expect("a linearizable read"));
    }
    sums
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_run_three_groups_over_one_transport_and_keep_them_apart() {
    let root = tempfile::tempdir().unwrap();
    let (listeners, addrs) = three_listeners().await;
    let mut nodes = Vec::new();
    for (id, listener) in (1..).zip(listeners) {
        let cfg = three_group_config(id, &addrs, root.path());
        let node = HttpNode::start_on(listener, cfg, |_| Sum::default())
            .await
            .unwrap();
        nodes.push(node);
    }
    // Group g is given g, through node g, its preferred leader (once it
    // leads: a proposal that reaches a leader while it hands over is
    // dropped): each sum is its own group's.
    for (g, node) in (1u8..).zip(&nodes) {
        let group = &node.groups().groups()[usize::from(g) - 1];
        assert_eq!(group.group(), GroupId(u64::from(g)));
        let preferred = Some(nid(u64::from(g)));
        group
            .wait_for(|s| s.leader == preferred)
            .await
            .expect("runs");
        assert_eq!(
            group.propose(vec![g]).await.expect("committed"),
            u64::from(g)
        );
    }
    for node in &nodes {
        assert_eq!(sums(node).await, vec![1, 2, 3]);
    }
    let running: Vec<Running> = nodes.into_iter().map(run).collect();
    stop_all(running).await;

    // Each group recovers from its own directory.
    let mut nodes = Vec::new();
    for id in 1..=3 {
        let cfg = three_group_config(id, &addrs, root.path());
        nodes.push(HttpNode::start(cfg, |_| Sum::default()).await.unwrap());
    }
    let third = &nodes[2].groups().groups()[2];
    third
        .wait_for(|s| s.leader == Some(nid(3)))
        .await
        .expect("runs");
    assert_eq!(third.propose(vec![10]).await.expect("committed"), 13);
    for node in &nodes {
        assert_eq!(sums(node).await, vec![1, 2, 13]);
    }
    let running: Vec<Running> = nodes.into_iter().map(run).collect();
    stop_all(running).await;
}

#[tokio::test]
async fn a_node_whose_port_is_taken_leaves_no_data_directory() {
    let root = tempfile::tempdir().unwrap();
    let taken = PeerListener::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let cfg = config(1, &[taken.local_addr()], root.path());
    let err = HttpNode::start(cfg, |_| Sum::default()).await.unwrap_err();
    assert!(matches!(err, HttpNodeError::Bind(_)), "{err}");
    assert!(!root.path().join("node-1").exists());
}

#[tokio::test]
async fn a_node_whose_certificates_do_not_load_leaves_no_data_directory() {
    let root = tempfile::tempdir().unwrap();
    let addr = "127.0.0.1:9".parse().unwrap();
    let mut cfg = config(1, &[addr], root.path());
    let https = Peer::new(nid(1), format!("https://{addr}"));
    cfg.group.membership = Membership::Found(vec![https]);
    cfg.tls = Some(TlsFiles {
        cert: root.path().join("cert.pem"),
        key: root.path().join("key.pem"),
        ca: Some(root.path().join("ca.pem")),
    });
    let err = HttpNode::start(cfg, |_| Sum::default()).await.unwrap_err();
    assert!(matches!(err, HttpNodeError::Tls(_)), "{err}");
    assert!(!root.path().join("node-1").exists());
}

#[tokio::test]
async fn a_node_its_membership_does_not_name_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let addr = "127.0.0.1:9".parse().unwrap();
    let mut cfg = config(1, &[addr], root.path());
    cfg.id = nid(2);
    let err = HttpNode::start(cfg, |_| Sum::default()).await.unwrap_err();
    assert!(
        matches!(err, HttpNodeError::NotAPeer(id) if id == nid(2)),
        "{err}"
    );
    let mut cfg = config(1, &[addr], root.path());
    cfg.group.membership = Membership::Found(vec![Peer::new(nid(1), "localhost:1")]);
    let err = HttpNode::start(cfg, |_| Sum::default()).await.unwrap_err();
    assert!(matches!(err, HttpNodeError::PeerUrl { .. }), "{err}");
    // https:// peers need certificates, certificates need https:// peers.
    let cfg = config(1, &[addr], root.path());
    let mut tls = cfg.clone();
    tls.tls = Some(TlsFiles {
        cert: "c.pem".into(),
        key: "k.pem".into(),
        ca: Some("ca.pem".into()),
    });
    let err = HttpNode::start(tls, |_| Sum::default()).await.unwrap_err();
    assert!(matches!(err, HttpNodeError::SchemeMismatch { .. }), "{err}");
    let mut https = cfg;
    https.group.membership = Membership::Found(vec![Peer::new(nid(1), format!("https://{addr}"))]);
    let err = HttpNode::start(https, |_| Sum::default())
        .await
        .unwrap_err();
    assert!(matches!(err, HttpNodeError::SchemeMismatch { .. }), "{err}");
    assert!(!root.path().join("node-1").exists());
}
