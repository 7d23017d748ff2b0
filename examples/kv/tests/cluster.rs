//! End-to-end tests of `raftkv`: real processes on loopback.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use parking_lot::Mutex;
use support::{Cluster, ClusterBuilder, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_any_node_are_readable_on_all_nodes() {
    let c = ClusterBuilder::default().start().await;
    for i in 0..30u64 {
        c.put(i % 3 + 1, &format!("k{i}"), &format!("v{i}")).await;
    }
    for id in 1..=3 {
        for i in 0..30 {
            assert_eq!(
                c.get(id, &format!("k{i}")).await,
                Some(format!("v{i}")),
                "node {id}"
            );
        }
        assert_eq!(c.get(id, "never-written").await, None);
    }
}

/// Node `id`'s leader of each group, from `/status`'s `groups`.
async fn group_leaders(c: &Cluster, id: u64) -> Option<Vec<u64>> {
    let status = c.status(id).await?;
    let groups = status["groups"].as_array()?;
    groups.iter().map(|g| g["leader"].as_u64()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_cluster_spreads_group_leaders_and_survives_a_killed_node() {
    let mut c = ClusterBuilder::default().groups(4).start().await;
    // Group g prefers node (g - 1) % 3 + 1: every node leads a group.
    eventually(
        "every node agrees on leaders spread over all three",
        || async {
            let first = group_leaders(&c, 1).await?;
            for id in 2..=3 {
                if group_leaders(&c, id).await? != first {
                    return None;
                }
            }
            (first == [1, 2, 3, 1]).then_some(())
        },
    )
    .await;
    for i in 0..40u64 {
        c.put(i % 3 + 1, &format!("k{i}"), &format!("v{i}")).await;
    }
    for id in 1..=3 {
        for i in 0..40 {
            let got = c.get(id, &format!("k{i}")).await;
            assert_eq!(got, Some(format!("v{i}")), "node {id}");
        }
    }
    // Node 2 leads group 2; without it, every group still serves.
    c.kill(2);
    for i in 40..60u64 {
        c.put([1, 3][i as usize % 2], &format!("k{i}"), &format!("v{i}"))
            .await;
    }
    c.spawn(2, false);
    for i in 0..60 {
        c.wait_local_value(2, &format!("k{i}"), &format!("v{i}"))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_and_compare_and_swaps_reach_every_node_and_a_snapshot() {
    let mut c = ClusterBuilder::default()
        .snapshot_count(20)
        .catch_up_entries(5)
        .start()
        .await;
    c.put(1, "3", "three").await;
    c.put(2, "swap", "a").await;
    assert!(!c.cas(3, "swap", "b", "c").await, "swap holds a, not b");
    assert!(c.cas(3, "swap", "a", "b").await);
    assert!(
        !c.cas(1, "missing", "", "x").await,
        "a missing key holds no value"
    );
    // The key named 3, not node 3.
    c.delete(2, "3").await;
    c.delete(2, "never-written").await;
    for id in 1..=3 {
        assert_eq!(c.get(id, "swap").await.as_deref(), Some("b"), "node {id}");
        assert_eq!(c.get(id, "3").await, None, "node {id}");
        assert_eq!(c.get(id, "missing").await, None, "node {id}");
    }
    let leader = c.wait_leader().await;
    let voters = &c.status(leader).await.expect("status")["members"]["voters"];
    assert_eq!(*voters, serde_json::json!([1, 2, 3]));
    // A node that catches up by snapshot gets the map after the deletes.
    c.add_node_behind_a_snapshot(40, 4).await;
    assert_eq!(c.get(4, "swap").await.as_deref(), Some("b"));
    assert_eq!(c.get(4, "3").await, None);
    c.delete(4, "k7").await;
    assert_eq!(c.get(1, "k7").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_and_catches_up_after_restart() {
    let mut c = ClusterBuilder::default().snapshot_count(40).start().await;
    let old = c.wait_leader().await;
    for i in 0..20 {
        c.put(old, &format!("before{i}"), "1").await;
    }
    c.kill(old);
    let new = c.wait_leader().await;
    assert_ne!(new, old);
    for i in 0..100 {
        c.put(new, &format!("after{i}"), "2").await;
    }
    c.spawn(old, false);
    c.wait_local_value(old, "after99", "2").await;
    for i in 0..20 {
        assert_eq!(
            c.get(old, &format!("before{i}")).await.as_deref(),
            Some("1")
        );
    }
    for i in 0..100 {
        assert_eq!(c.get(old, &format!("after{i}")).await.as_deref(), Some("2"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_killing_every_node() {
    let mut c = ClusterBuilder::default().snapshot_count(100).start().await;
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8u64 {
        let client = c.client.clone();
        let endpoint = c.endpoint(w % 3 + 1);
        let (acked, stop) = (Arc::clone(&acked), Arc::clone(&stop));
        writers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (key, value) = (format!("w{w}-{i}"), format!("{w}:{i}"));
                i += 1;
                let v = Bytes::from(value.clone().into_bytes());
                if client.put(&endpoint, key.as_bytes(), v).await.is_ok() {
                    acked.lock().insert(key, value);
                }
            }
        }));
    }
    eventually("300 writes acknowledged", || {
        let n = acked.lock().len();
        async move { (n >= 300).then_some(()) }
    })
    .await;
    for id in 1..=3 {
        c.kill(id);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.expect("writer task");
    }
    let acked = acked.lock().clone();
    for id in 1..=3 {
        c.spawn(id, false);
    }
    c.wait_leader().await;
    for (key, value) in &acked {
        assert_eq!(
            c.get(1, key).await.as_ref(),
            Some(value),
            "acknowledged {key} lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_added_after_compaction_catches_up_by_snapshot() {
    let mut c = ClusterBuilder::default()
        .snapshot_count(50)
        .catch_up_entries(10)
        .start()
        .await;
    c.add_node_behind_a_snapshot(200, 4).await;
    let leader = c.wait_leader().await;
    let snap = c.status(leader).await.expect("status")["last_snapshot"]["index"]
        .as_u64()
        .expect("index");
    assert!(snap > 0, "the leader has compacted its log");
    for i in 0..200 {
        assert_eq!(c.get(4, &format!("k{i}")).await, Some(i.to_string()));
    }
    let status = c.status(4).await.expect("status");
    assert_eq!(status["members"]["voters"], serde_json::json!([1, 2, 3, 4]));
    c.put(4, "from-4", "x").await;
    assert_eq!(c.get(1, "from-4").await.as_deref(), Some("x"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_leader_stops_and_the_rest_keep_serving() {
    let mut c = ClusterBuilder::default().start().await;
    c.put(1, "a", "1").await;
    let leader = c.wait_leader().await;
    c.client
        .remove_node(&c.endpoint(leader), leader)
        .await
        .expect("remove the leader");
    let status = c.wait_exit(leader).await;
    assert!(status.success(), "a removed node exits cleanly: {status}");
    let new = c.wait_leader().await;
    assert_ne!(new, leader);
    c.put(new, "b", "2").await;
    for id in c.running() {
        assert_eq!(c.get(id, "a").await.as_deref(), Some("1"));
        assert_eq!(c.get(id, "b").await.as_deref(), Some("2"));
        let voters = c.status(id).await.expect("status")["members"]["voters"].clone();
        assert_eq!(
            voters.as_array().map(Vec::len),
            Some(2),
            "node {id}: {voters}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_node_id_is_refused_when_added_again_and_the_cluster_keeps_its_quorum() {
    let mut c = ClusterBuilder::default().start().await;
    let leader = c.wait_leader().await;
    let removed = (1..=3).find(|id| *id != leader).expect("a follower");
    c.client
        .remove_node(&c.endpoint(leader), removed)
        .await
        .expect("remove a follower");
    assert!(c.wait_exit(removed).await.success());
    let resp = c
        .client
        .request(
            Method::POST,
            &c.endpoint(leader),
            &format!("/{removed}"),
            Bytes::from(c.peer_url(removed)),
        )
        .await
        .expect("request");
    let body = String::from_utf8_lossy(&resp.body).into_owned();
    assert_eq!(resp.status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("never reused"), "{body}");
    let status = c.status(leader).await.expect("status");
    assert_eq!(
        status["members"]["voters"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(status["members"]["removed"], serde_json::json!([removed]));
    c.put(leader, "after", "1").await;
    for id in c.running() {
        assert_eq!(c.get(id, "after").await.as_deref(), Some("1"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_node_cleanly_and_it_restarts() {
    let mut c = ClusterBuilder::default().start().await;
    c.put(2, "k", "v").await;
    let status = c.terminate(2).await;
    assert!(status.success(), "exit status after SIGTERM: {status}");
    c.spawn(2, false);
    c.wait_local_value(2, "k", "v").await;
}

async fn raw(c: &Cluster, method: Method, path: &str, body: impl Into<Bytes>) -> StatusCode {
    c.client
        .request(method, &c.endpoint(1), path, body.into())
        .await
        .expect("request")
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_errors_and_the_cluster_keeps_serving() {
    let c = ClusterBuilder::default().start().await;
    assert_eq!(
        raw(&c, Method::PUT, "/", "v").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        raw(&c, Method::PUT, "/bad%zz", "v").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        raw(&c, Method::GET, "/missing", "").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        raw(&c, Method::POST, "/abc", "http://127.0.0.1:1").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        raw(&c, Method::POST, "/9", "not a url").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        raw(&c, Method::POST, "/1", "http://127.0.0.1:1").await,
        StatusCode::CONFLICT
    );
    // Node 2's address, written another way.
    let node_2 = format!("http://127.1:{}", c.peer_port(2));
    assert_eq!(
        raw(&c, Method::POST, "/9", node_2).await,
        StatusCode::CONFLICT
    );
    assert_eq!(
        raw(&c, Method::POST, "/9", "http://127.0.0.1:0").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        raw(&c, Method::DELETE, "/9", "").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        raw(&c, Method::PATCH, "/k", "").await,
        StatusCode::METHOD_NOT_ALLOWED
    );
    // Reserved names are decided after percent-decoding.
    assert_eq!(
        raw(&c, Method::PUT, "/st%61tus", "v").await,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(raw(&c, Method::GET, "/st%61tus", "").await, StatusCode::OK);
    let long_key = format!("/{}", "k".repeat(2000));
    assert_eq!(
        raw(&c, Method::PUT, &long_key, "v").await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let big = vec![b'x'; (1 << 20) + 1];
    assert_eq!(
        raw(&c, Method::PUT, "/big", big).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    // The peer port: a request without the cluster header, a garbage body
    // with it, and bytes that are not HTTP at all.
    let peer = format!("http://127.0.0.1:{}", c.peer_port(1));
    let resp = c
        .client
        .request(
            Method::POST,
            &peer,
            "/raft/batch",
            Bytes::from_static(b"\x00\xffgarbage"),
        )
        .await
        .expect("peer request");
    assert!(
        resp.status.is_client_error(),
        "garbage on the peer port: {}",
        resp.status
    );
    {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", c.peer_port(2)))
            .await
            .expect("connect");
        let _ = s
            .write_all(b"\x16\x03\x01 definitely not http\r\n\r\n")
            .await;
    }
    let rejected = c.metric(1, "raftkv_peer_requests_rejected_total").await;
    assert!(rejected >= Some(1), "rejections are counted: {rejected:?}");

    c.put(1, "still", "serving").await;
    for id in 1..=3 {
        assert_eq!(c.get(id, "still").await.as_deref(), Some("serving"));
    }
}

#[test]
fn bad_flags_exit_with_code_2_and_one_line() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--id",
                "4",
                "--cluster",
                "http://127.0.0.1:1,http://127.0.0.1:2",
            ],
            "--id 4",
        ),
        (&["--id", "1", "--cluster", "127.0.0.1:1"], "--cluster"),
        (&["--id", "1"], "--cluster"),
        (&["--cluster", "http://127.0.0.1:1"], "--id"),
        (
            &[
                "--id",
                "1",
                "--cluster",
                "http://127.0.0.1:1",
                "--tick-ms",
                "0",
            ],
            "--tick-ms",
        ),
        (&["--id", "x"], "--id"),
        (
            &[
                "--id",
                "1",
                "--cluster",
                "http://127.0.0.1:1",
                "--log",
                "[[[",
            ],
            "--log",
        ),
    ];
    for (args, needle) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_raftkv"))
            .args(*args)
            .output()
            .expect("run raftkv");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(["--id", "1", "--cluster", "http://127.0.0.1:1", "--data-dir"])
        .arg(file.path())
        .output()
        .expect("run raftkv");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not a directory"), "{stderr}");
}

#[test]
fn a_client_port_in_use_is_a_clear_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("dir");
    let peer = support::free_port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args([
            "--id",
            "1",
            "--cluster",
            &format!("http://127.0.0.1:{peer}"),
        ])
        .args(["--port", &port.to_string(), "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run raftkv");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--port"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_port_of_0_is_logged_as_the_port_the_node_serves_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cluster = format!("http://127.0.0.1:{}", support::free_port());
    let data = dir.path().join("node-1");
    let args = [
        "--id",
        "1",
        "--cluster",
        &cluster,
        "--port",
        "0",
        "--data-dir",
    ];
    let node = support::Process::spawn(
        args.iter()
            .map(std::ffi::OsStr::new)
            .chain([data.as_os_str()]),
        dir.path().join("node-1.err"),
    );
    let addr: std::net::SocketAddr = eventually("the node logs where it serves", || {
        let log = support::strip_ansi(&node.stderr());
        async move {
            let line = log.lines().find(|l| l.contains(" serving "))?;
            let addr = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("client="))?;
            addr.parse().ok()
        }
    })
    .await;
    assert_ne!(addr.port(), 0, "{}", node.stderr());
    let status = raftkv_harness::client::Client::new()
        .status(&format!("http://{addr}"))
        .await
        .expect("the node serves on the port it logged");
    assert_eq!(status["id"], 1);
}
