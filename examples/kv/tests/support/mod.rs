//! A cluster of real `raftkv` processes on loopback, for the end-to-end
//! tests. Nothing here sleeps to wait for a condition: every wait polls
//! with a deadline and fails with what it saw.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use raftkv_harness::certs::CertPaths;
use raftkv_harness::client::{Client, ClientError};

/// How long any single condition may take to become true.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// Between two polls of a condition.
const POLL: Duration = Duration::from_millis(20);

/// A port nobody listens on right now, and never handed out before by this
/// process: the kernel may give the same free port to two binds in a row
/// once the first listener is closed, and a cluster given one port twice
/// refuses to start (found in CI: "--cluster lists ... twice").
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<BTreeSet<u16>> = std::sync::Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// Polls `f` until it returns `Some`, or panics after [`DEADLINE`] with
/// `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually`] for a condition that needs `&mut` state (an async
/// closure may borrow it).
pub async fn eventually_mut<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Options for a test cluster.
#[derive(Clone, Debug)]
pub struct ClusterBuilder {
    nodes: u64,
    snapshot_count: u64,
    catch_up_entries: u64,
    tick_ms: u64,
    tls: bool,
    groups: u64,
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        ClusterBuilder {
            nodes: 3,
            snapshot_count: 10_000,
            catch_up_entries: 5000,
            tick_ms: 20,
            tls: false,
            groups: 1,
        }
    }
}

/// Node ids `raftkv certs` writes certificates for in a TLS test cluster,
/// so that nodes added later have one.
const TLS_NODES: u64 = 7;

/// Runs `raftkv certs` for nodes 1 to 7 on 127.0.0.1 into `dir`.
pub fn write_certs(dir: &std::path::Path) -> CertPaths {
    let out = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args(["certs", "--nodes", &TLS_NODES.to_string(), "--out"])
        .arg(dir)
        .output()
        .expect("run raftkv certs");
    assert!(
        out.status.success(),
        "raftkv certs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    CertPaths::new(dir)
}

impl ClusterBuilder {
    /// Founding members.
    pub fn nodes(mut self, n: u64) -> Self {
        self.nodes = n;
        self
    }

    /// `--snapshot-count`.
    pub fn snapshot_count(mut self, n: u64) -> Self {
        self.snapshot_count = n;
        self
    }

    /// `--catch-up-entries`.
    pub fn catch_up_entries(mut self, n: u64) -> Self {
        self.catch_up_entries = n;
        self
    }

    /// `--groups`: keys sharded over this many Raft groups.
    pub fn groups(mut self, n: u64) -> Self {
        self.groups = n;
        self
    }

    /// Mutual TLS on the peer port, with certificates from `raftkv certs`.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Starts the founders and waits for a leader.
    pub async fn start(self) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let certs = self.tls.then(|| write_certs(&dir.path().join("certs")));
        let mut c = Cluster {
            dir,
            certs,
            opts: self,
            peer_ports: BTreeMap::new(),
            client_ports: BTreeMap::new(),
            children: BTreeMap::new(),
            client: Client::with_timeout(Duration::from_secs(10)),
        };
        for id in 1..=c.opts.nodes {
            c.peer_ports.insert(id, free_port());
            c.client_ports.insert(id, free_port());
        }
        for id in 1..=c.opts.nodes {
            c.spawn(id, false);
        }
        c.wait_leader().await;
        c
    }
}

/// A running cluster. Dropping it kills every process.
pub struct Cluster {
    dir: tempfile::TempDir,
    /// With mutual TLS: the certificate files.
    pub certs: Option<CertPaths>,
    opts: ClusterBuilder,
    peer_ports: BTreeMap<u64, u16>,
    client_ports: BTreeMap<u64, u16>,
    children: BTreeMap<u64, Child>,
    /// An HTTP client.
    pub client: Client,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            for id in self.peer_ports.keys() {
                let log = std::fs::read_to_string(self.log_path(*id)).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("---- node {id} log (last 40 lines) ----");
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

impl Cluster {
    /// Peer URL of node `id`.
    pub fn peer_url(&self, id: u64) -> String {
        let scheme = if self.certs.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.peer_ports[&id])
    }

    /// What node `id` has logged so far.
    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.log_path(id)).unwrap_or_default()
    }

    /// Client URL of node `id`.
    pub fn endpoint(&self, id: u64) -> String {
        format!("http://127.0.0.1:{}", self.client_ports[&id])
    }

    /// Peer port of node `id`.
    pub fn peer_port(&self, id: u64) -> u16 {
        self.peer_ports[&id]
    }

    fn log_path(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node-{id}.log"))
    }

    /// Data directory of node `id`.
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    /// Ids of running processes.
    pub fn running(&self) -> Vec<u64> {
        self.children.keys().copied().collect()
    }

    fn cluster_flag(&self) -> String {
        let urls: Vec<String> = self
            .peer_ports
            .keys()
            .map(|id| self.peer_url(*id))
            .collect();
        urls.join(",")
    }

    /// Starts (or restarts) node `id`.
    pub fn spawn(&mut self, id: u64, join: bool) {
        assert!(
            !self.children.contains_key(&id),
            "node {id} is already running"
        );
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_raftkv"));
        cmd.arg("--id")
            .arg(id.to_string())
            .arg("--cluster")
            .arg(self.cluster_flag())
            .arg("--port")
            .arg(self.client_ports[&id].to_string())
            .arg("--data-dir")
            .arg(self.data_dir(id))
            .arg("--snapshot-count")
            .arg(self.opts.snapshot_count.to_string())
            .arg("--catch-up-entries")
            .arg(self.opts.catch_up_entries.to_string())
            .arg("--tick-ms")
            .arg(self.opts.tick_ms.to_string())
            .arg("--log")
            .arg("info,raftkv=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        if join {
            cmd.arg("--join");
        }
        if self.opts.groups > 1 {
            cmd.arg("--groups").arg(self.opts.groups.to_string());
        }
        if let Some(certs) = &self.certs {
            cmd.args(certs.peer_flags(id));
        }
        let child = cmd.spawn().expect("spawn raftkv");
        self.children.insert(id, child);
    }

    /// Allocates ports for a new node `id` (so `--cluster` includes it).
    pub fn reserve(&mut self, id: u64) {
        self.peer_ports.insert(id, free_port());
        self.client_ports.insert(id, free_port());
    }

    /// SIGKILLs node `id`.
    pub fn kill(&mut self, id: u64) {
        let mut child = self.children.remove(&id).expect("node is running");
        child.kill().expect("kill");
        child.wait().expect("wait");
    }

    /// SIGTERMs node `id` and returns its exit status.
    pub async fn terminate(&mut self, id: u64) -> ExitStatus {
        let child = self.children.get(&id).expect("node is running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        self.wait_exit(id).await
    }

    /// Waits for node `id` to exit on its own and returns its status.
    pub async fn wait_exit(&mut self, id: u64) -> ExitStatus {
        let status = {
            let child = self.children.get_mut(&id).expect("node is running");
            eventually(&format!("node {id} exits"), || {
                let r = child.try_wait().expect("try_wait");
                async move { r }
            })
            .await
        };
        self.children.remove(&id);
        status
    }

    /// The `/status` JSON of node `id`, if it answers.
    pub async fn status(&self, id: u64) -> Option<serde_json::Value> {
        self.client.status(&self.endpoint(id)).await.ok()
    }

    /// Waits until every running node names the same leader, which is
    /// running, and returns it.
    pub async fn wait_leader(&self) -> u64 {
        eventually("every running node agrees on a running leader", || async {
            let mut leader = None;
            for id in self.running() {
                let l = self.status(id).await?["leader"].as_u64()?;
                if leader.is_some_and(|x| x != l) || !self.children.contains_key(&l) {
                    return None;
                }
                leader = Some(l);
            }
            leader
        })
        .await
    }

    /// Writes through node `via`, retrying while there is no leader.
    pub async fn put(&self, via: u64, key: &str, value: &str) {
        let endpoint = self.endpoint(via);
        let value = Bytes::copy_from_slice(value.as_bytes());
        eventually(&format!("PUT {key} via node {via}"), || {
            let (endpoint, value) = (endpoint.clone(), value.clone());
            async move {
                match self.client.put(&endpoint, key.as_bytes(), value).await {
                    Ok(()) => Some(()),
                    Err(e) if e.is_retryable() || e.outcome_unknown() => None,
                    Err(e) => panic!("PUT {key} via node {via}: {e}"),
                }
            }
        })
        .await;
    }

    /// A linearizable read through node `via`, retrying while there is no
    /// leader.
    pub async fn get(&self, via: u64, key: &str) -> Option<String> {
        let endpoint = self.endpoint(via);
        eventually(&format!("GET {key} via node {via}"), || {
            let endpoint = endpoint.clone();
            async move {
                match self.client.get(&endpoint, key.as_bytes(), false).await {
                    Ok(v) => Some(v.map(|b| String::from_utf8(b.to_vec()).expect("utf-8"))),
                    Err(e) if e.is_retryable() || e.outcome_unknown() => None,
                    Err(e) => panic!("GET {key} via node {via}: {e}"),
                }
            }
        })
        .await
    }

    /// A compare-and-swap through node `via`: whether it wrote. Retried
    /// only while it certainly had no effect (a retry after an unknown
    /// outcome could see its own write as a mismatch).
    pub async fn cas(&self, via: u64, key: &str, expected: &str, value: &str) -> bool {
        let endpoint = self.endpoint(via);
        let value = Bytes::copy_from_slice(value.as_bytes());
        eventually(&format!("CAS {key} via node {via}"), || {
            let (endpoint, value) = (endpoint.clone(), value.clone());
            let expected = expected.as_bytes();
            async move {
                match self
                    .client
                    .cas(&endpoint, key.as_bytes(), expected, value)
                    .await
                {
                    Ok(written) => Some(written),
                    Err(e) if e.is_retryable() && !e.outcome_unknown() => None,
                    Err(e) => panic!("CAS {key} via node {via}: {e}"),
                }
            }
        })
        .await
    }

    /// Deletes `key` through node `via`, retrying while there is no leader.
    pub async fn delete(&self, via: u64, key: &str) {
        let endpoint = self.endpoint(via);
        eventually(&format!("DELETE {key} via node {via}"), || {
            let endpoint = endpoint.clone();
            async move {
                match self.client.delete(&endpoint, key.as_bytes()).await {
                    Ok(()) => Some(()),
                    Err(e) if e.is_retryable() || e.outcome_unknown() => None,
                    Err(e) => panic!("DELETE {key} via node {via}: {e}"),
                }
            }
        })
        .await;
    }

    /// Waits until node `id`'s own state (a serializable read) has `key`
    /// = `value`.
    pub async fn wait_local_value(&self, id: u64, key: &str, value: &str) {
        let endpoint = self.endpoint(id);
        eventually(&format!("node {id} applies {key}={value}"), || {
            let endpoint = endpoint.clone();
            async move {
                let v = self
                    .client
                    .get(&endpoint, key.as_bytes(), true)
                    .await
                    .ok()??;
                (v == value.as_bytes()).then_some(())
            }
        })
        .await;
    }

    /// A counter from node `id`'s `/metrics`.
    pub async fn metric(&self, id: u64, name: &str) -> Option<u64> {
        let resp = self
            .client
            .request(
                hyper::Method::GET,
                &self.endpoint(id),
                "/metrics",
                Bytes::new(),
            )
            .await
            .ok()?;
        let text = String::from_utf8(resp.body.to_vec()).ok()?;
        metric_in(&text, name)
    }
}

impl Cluster {
    /// Writes `k0..k<keys>` through node 1, adds node `id` through the
    /// leader, starts it with `--join`, and waits until it has applied
    /// every key having caught up by snapshot (asserted).
    pub async fn add_node_behind_a_snapshot(&mut self, keys: u64, id: u64) {
        for i in 0..keys {
            self.put(1, &format!("k{i}"), &i.to_string()).await;
        }
        let leader = self.wait_leader().await;
        self.reserve(id);
        self.client
            .add_node(&self.endpoint(leader), id, &self.peer_url(id))
            .await
            .expect("add the node");
        self.spawn(id, true);
        let last = keys - 1;
        self.wait_local_value(id, &format!("k{last}"), &last.to_string())
            .await;
        let restored = self.metric(id, "raftkv_snapshots_restored_total").await;
        assert!(
            restored >= Some(1),
            "node {id} caught up by snapshot: {restored:?}"
        );
    }
}

/// True for a client error after which a write may or may not have
/// happened.
pub fn unknown(e: &ClientError) -> bool {
    e.outcome_unknown()
}

/// A lone `raftkv` node process started with `args`, its stderr kept in
/// `stderr_path`. Dropping it kills the process.
pub struct Process {
    child: Child,
    stderr_path: PathBuf,
}

impl Process {
    /// Starts `raftkv <args>`.
    pub fn spawn<I, S>(args: I, stderr_path: PathBuf) -> Process
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let stderr = File::create(&stderr_path).expect("stderr file");
        let child = Command::new(env!("CARGO_BIN_EXE_raftkv"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn raftkv");
        Process { child, stderr_path }
    }

    /// Starts `raftkv <args>` with at most `limit` open file descriptors
    /// (`ulimit -n`, soft and hard).
    pub fn spawn_with_descriptor_limit<I, S>(limit: u64, args: I, stderr_path: PathBuf) -> Process
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let stderr = File::create(&stderr_path).expect("stderr file");
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_raftkv"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn sh");
        Process { child, stderr_path }
    }

    /// Its exit status, if it exits within [`DEADLINE`]; `None` if it is
    /// still running then.
    pub async fn exit_within_deadline(&mut self) -> Option<ExitStatus> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Its exit status if it has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// SIGTERMs it and waits for it to exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        self.exit_within_deadline()
            .await
            .expect("exits after SIGTERM")
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The sum of `name`'s samples in a Prometheus text exposition, over
/// every label set (raft-host labels its samples by group); `None` when
/// there is none.
pub fn metric_in(text: &str, name: &str) -> Option<u64> {
    let values = text.lines().filter_map(|l| {
        let rest = l.strip_prefix(name)?;
        let value = match rest.strip_prefix('{') {
            Some(labelled) => labelled.split_once("} ")?.1,
            None => rest.strip_prefix(' ')?,
        };
        value.trim().parse::<u64>().ok()
    });
    values.reduce(|a, b| a + b)
}
