//! A node under a small file descriptor limit and a flood of idle
//! connections (issue #19, item 6): the connections over its caps are
//! refused and counted, and the node keeps serving and taking snapshots,
//! which need descriptors of their own.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use raftkv_harness::client::Connection;
use support::{Process, eventually, eventually_mut, free_port};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// The node's `ulimit -n`.
const LIMIT: u64 = 100;
/// Idle connections opened to each of its ports: twice its limit.
const FLOOD: usize = 200;

/// Opens `n` connections to `port` that send nothing; counts those the
/// server answers with `503` (refused over its cap) in `refused`. The
/// others stay open until the set is dropped.
async fn flood(port: u16, n: usize, refused: &Arc<AtomicUsize>, set: &mut JoinSet<()>) {
    for _ in 0..n {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let refused = Arc::clone(refused);
        set.spawn(async move {
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer).await;
            if answer.starts_with(b"HTTP/1.1 503") {
                refused.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// The value of counter `name` in a `/metrics` text.
fn metric(text: &str, name: &str) -> u64 {
    support::metric_in(text, name).unwrap_or_else(|| panic!("no {name} in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_100_descriptors_refuses_a_flood_of_idle_connections_and_keeps_snapshotting() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (peer, client) = (free_port(), free_port());
    let data = tmp.path().join("node-1");
    let args = [
        "--id".to_string(),
        "1".into(),
        "--cluster".into(),
        format!("http://127.0.0.1:{peer}"),
        "--port".into(),
        client.to_string(),
        "--data-dir".into(),
        data.display().to_string(),
        "--snapshot-count".into(),
        "20".into(),
        "--wal-segment-size".into(),
        "1MiB".into(),
    ];
    let mut node = Process::spawn_with_descriptor_limit(LIMIT, args, tmp.path().join("node-1.err"));
    let caps = raft_transport::ConnectionCaps::for_limit(LIMIT, None).expect("caps");

    // The test's own connection, opened before the flood and kept.
    let endpoint = format!("http://127.0.0.1:{client}");
    let mut conn = Connection::new(&endpoint, Duration::from_secs(10)).expect("endpoint");
    eventually_mut("the node takes a first write", async || {
        assert!(node.try_exit().is_none(), "{}", node.stderr());
        conn.put(b"first", Bytes::from_static(b"1")).await.ok()
    })
    .await;

    let mut idle = JoinSet::new();
    let refused_client = Arc::new(AtomicUsize::new(0));
    let refused_peer = Arc::new(AtomicUsize::new(0));
    flood(client, FLOOD, &refused_client, &mut idle).await;
    flood(peer, FLOOD, &refused_peer, &mut idle).await;

    // Five snapshots' worth of writes, while the flood holds its
    // connections.
    for i in 0..100 {
        let key = format!("k{i}");
        if let Err(e) = conn.put(key.as_bytes(), Bytes::from_static(b"v")).await {
            panic!(
                "write {i}: {e}; node exit: {:?}; {}",
                node.try_exit(),
                node.stderr()
            );
        }
    }
    let over_client = FLOOD - caps.client;
    let over_peer = FLOOD - caps.peer;
    eventually("the connections over the caps are refused with 503", || {
        let (c, p) = (
            refused_client.load(Ordering::Relaxed),
            refused_peer.load(Ordering::Relaxed),
        );
        async move { (c >= over_client && p >= over_peer).then_some(()) }
    })
    .await;
    let resp = conn
        .request(hyper::Method::GET, "/metrics", Bytes::new())
        .await
        .expect("metrics");
    let text = String::from_utf8_lossy(&resp.body);
    assert!(
        metric(&text, "raftkv_snapshots_created_total") >= 4,
        "{text}"
    );
    let counted = metric(&text, "raftkv_client_connections_refused_total");
    assert!(counted >= over_client as u64, "{counted}");
    let counted = metric(&text, "raftkv_peer_connections_refused_total");
    assert!(counted >= over_peer as u64, "{counted}");
    assert!(node.try_exit().is_none(), "{}", node.stderr());
    drop(idle);
    assert!(node.terminate().await.success(), "{}", node.stderr());
}
