//! A data directory belongs to one node: started under another `--id` it
//! refuses, with one line (issue #15, item 5).

mod support;

use std::path::Path;

use raftkv_harness::client::Client;
use support::{Process, eventually, free_port};

/// `--id <id> --cluster <cluster> --port <free> --data-dir <dir>`, and
/// the client URL that port gives.
fn node_args(id: u64, cluster: &str, dir: &Path) -> (Vec<String>, String) {
    let port = free_port();
    let args = vec![
        "--id".into(),
        id.to_string(),
        "--cluster".into(),
        cluster.into(),
        "--port".into(),
        port.to_string(),
        "--data-dir".into(),
        dir.display().to_string(),
    ];
    (args, format!("http://127.0.0.1:{port}"))
}

/// Starts node `id` on `dir` and waits until it answers `/status` (it
/// does without a quorum).
async fn serving_node(id: u64, cluster: &str, dir: &Path, stderr: &Path) -> Process {
    serving_node_with(id, cluster, dir, stderr, &[]).await
}

/// [`serving_node`] with `extra` flags; panics if the node exits.
async fn serving_node_with(
    id: u64,
    cluster: &str,
    dir: &Path,
    stderr: &Path,
    extra: &[&str],
) -> Process {
    let (mut args, endpoint) = node_args(id, cluster, dir);
    args.extend(extra.iter().map(|a| a.to_string()));
    let mut node = Process::spawn(&args, stderr.to_path_buf());
    let client = Client::new();
    eventually(&format!("node {id} serves on {endpoint}"), || {
        if let Some(status) = node.try_exit() {
            panic!("node {id} exited ({status}): {}", node.stderr());
        }
        let (client, endpoint) = (client.clone(), endpoint.clone());
        async move { client.status(&endpoint).await.ok() }
    })
    .await;
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_started_under_another_node_id_exits_2_with_one_line() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let cluster = format!(
        "http://127.0.0.1:{},http://127.0.0.1:{}",
        free_port(),
        free_port()
    );
    let data = tmp.path().join("node-1");
    let mut node1 = serving_node(1, &cluster, &data, &tmp.path().join("node-1.err")).await;
    assert!(node1.terminate().await.success(), "{}", node1.stderr());

    let (args, _) = node_args(2, &cluster, &data);
    let mut impostor = Process::spawn(&args, tmp.path().join("impostor.err"));
    let status = impostor.exit_within_deadline().await;
    let stderr = impostor.stderr();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(2),
        "node 1's directory started as node 2: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("belongs to node 1"), "{stderr}");
    assert!(stderr.contains("not node 2"), "{stderr}");

    // The rightful owner still starts on it.
    serving_node(1, &cluster, &data, &tmp.path().join("node-1-again.err")).await;
}

#[test]
fn a_peer_port_in_use_exits_2_with_one_line_before_touching_the_data_directory() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let peer = busy.local_addr().expect("addr").port();
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("node-1");
    let (args, _) = node_args(1, &format!("http://127.0.0.1:{peer}"), &data);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(&args)
        .output()
        .expect("run raftkv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot listen for peers"), "{stderr}");
    assert!(!data.exists(), "the data directory was created: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_segment_size_sets_the_size_of_the_wal_segments() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let cluster = format!("http://127.0.0.1:{}", free_port());
    let data = tmp.path().join("node-1");
    let stderr = tmp.path().join("node-1.err");
    let flags = ["--wal-segment-size", "1MiB"];
    let mut node = serving_node_with(1, &cluster, &data, &stderr, &flags).await;
    assert!(node.terminate().await.success(), "{}", node.stderr());
    let sizes: Vec<u64> = std::fs::read_dir(data.join("wal"))
        .expect("wal directory")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .filter(|len| *len > 0)
        .collect();
    assert!(!sizes.is_empty(), "no WAL segment");
    assert!(
        sizes.iter().all(|len| *len <= 1 << 20),
        "segments of 1 MiB: {sizes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_logging_to_a_file_writes_no_colour_codes() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let cluster = format!("http://127.0.0.1:{}", free_port());
    let stderr = tmp.path().join("node-1.err");
    let mut node = serving_node(1, &cluster, &tmp.path().join("node-1"), &stderr).await;
    assert!(node.terminate().await.success(), "{}", node.stderr());
    let log = node.stderr();
    assert!(log.contains("serving"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a log file: {log:?}"
    );
}
