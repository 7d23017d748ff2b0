//! `raftkv cluster`: runs a local cluster, one `raftkv` process per node.
//!
//! Node `i` (1-based) listens for peers on
//! `http://127.0.0.1:{base_port + (i - 1) * 10000}` and for clients on the
//! next port, so the default three nodes use 12379/12380, 22379/22380 and
//! 32379/32380 like etcd's raftexample, and keep their data in
//! `<data-dir>/node-<i>`. Every line a node writes is shown prefixed with
//! its name (`node-2 | ...`). With `--tls` the peer ports use mutual TLS
//! (`https://` peer URLs), with a CA and node certificates written afresh
//! into `<data-dir>/tls` at every start (see [`crate::certs`]).
//!
//! [`run`] is synchronous: it blocks until the cluster stops. On Ctrl-C,
//! SIGTERM or SIGHUP it sends SIGTERM to every node, waits up to
//! [`GRACE_PERIOD`] for them to exit (a second signal cuts that short),
//! kills the stragglers and returns `Ok`. A node that exits on its own
//! (removed with `DELETE /<id>`, or refusing to start) is reported and the
//! others keep running; one killed by a signal (`kill -9`) is started
//! again on its data directory after [`RESTART_DELAY`] (doubling while it
//! keeps dying early). If no node is left, [`run`] returns
//! [`LauncherError::AllNodesExited`]. A cluster stopped this way starts
//! again on its data with the same command (without `--fresh`); a removed
//! node exits again at once, as its log says it was removed.
//!
//! Nodes run in their own process group so that a terminal's Ctrl-C reaches
//! only the launcher, which stops them in order; a launcher killed with
//! SIGKILL leaves them running.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::certs::{CertPaths, Validity, write_cluster};

/// How long stopping nodes get between SIGTERM and SIGKILL.
pub const GRACE_PERIOD: Duration = Duration::from_secs(5);

/// The most nodes `raftkv cluster` starts.
pub const MAX_NODES: u64 = 7;

/// Command-line arguments of `raftkv cluster`.
#[derive(clap::Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Number of nodes, 1 to 7.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Peer port of node 1; node i uses base-port + (i-1)*10000 for peers
    /// and the port after it for clients.
    #[arg(long, default_value_t = 12379)]
    pub base_port: u16,
    /// Directory holding each node's data, in node-1, node-2, ... below it.
    #[arg(long, default_value = "./raftkv-data")]
    pub data_dir: PathBuf,
    /// Log filter passed to every node (e.g. info, raftkv=debug).
    #[arg(long, default_value = "info")]
    pub log: String,
    /// Remove the data directory first, starting a brand-new cluster.
    #[arg(long)]
    pub fresh: bool,
    /// Mutual TLS on the peer ports, with certificates generated into
    /// DATA_DIR/tls.
    #[arg(long)]
    pub tls: bool,
    /// Raft groups every node splits the keys over (`raftkv --groups`).
    #[arg(long, default_value_t = 1)]
    pub groups: u64,
}

/// The hosts the certificates of `raftkv cluster --tls` are valid for.
const TLS_HOSTS: [&str; 2] = ["127.0.0.1", "localhost"];
/// Days they are valid (they are written afresh at every start).
const TLS_DAYS: u32 = 365;

/// Why the launcher failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LauncherError {
    /// The arguments are invalid.
    #[error("invalid arguments: {0}")]
    InvalidArgs(String),
    /// The data directory could not be removed or created.
    #[error("data directory {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `--fresh` found something in the data directory that the launcher
    /// did not create, and left it alone.
    #[error(
        "refusing to remove {}: it holds {entry:?}, which `raftkv cluster` did not create",
        path.display()
    )]
    NotOurDataDir {
        /// The directory.
        path: PathBuf,
        /// The unexpected entry's name.
        entry: String,
    },
    /// The path of the running executable is unknown.
    #[error("cannot find the raftkv executable: {0}")]
    CurrentExe(#[source] std::io::Error),
    /// The certificates of `--tls` could not be written.
    #[error("--tls: {0}")]
    Certs(#[from] crate::certs::CertError),
    /// Signal handling could not be set up.
    #[error("cannot handle signals: {0}")]
    Signals(#[source] std::io::Error),
    /// A node's process could not be started.
    #[error("cannot start node {id}: {source}")]
    Spawn {
        /// The node id.
        id: u64,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Every node exited on its own (none was killed by a signal, which
    /// would have been restarted).
    #[error("every node has exited; their errors are above")]
    AllNodesExited,
}

/// One node of the local cluster: its id, ports and data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// The node id, from 1.
    pub id: u64,
    /// The port peers reach it on.
    pub peer_port: u16,
    /// The port clients reach it on (`peer_port + 1`).
    pub client_port: u16,
    /// Its data directory, `<data-dir>/node-<id>`.
    pub data_dir: PathBuf,
    /// With mutual TLS on the peer port: the certificate files.
    pub certs: Option<CertPaths>,
    /// Groups the node splits the keys over (`--groups`, passed when > 1).
    pub groups: u64,
}

impl NodeSpec {
    /// `http://127.0.0.1:<peer port>`, or `https://` with TLS.
    pub fn peer_url(&self) -> String {
        let scheme = if self.certs.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.peer_port)
    }

    /// `http://127.0.0.1:<client port>`.
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The server's command-line arguments for this node: `--id <id>
    /// --cluster <cluster> --port <client port> --data-dir <dir> --log
    /// <log>`, then the `--peer-*` certificate flags with TLS.
    pub fn server_args(&self, cluster: &str, log: &str) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--id".into(),
            self.id.to_string().into(),
            "--cluster".into(),
            cluster.into(),
            "--port".into(),
            self.client_port.to_string().into(),
            "--data-dir".into(),
            self.data_dir.clone().into_os_string(),
            "--log".into(),
            log.into(),
        ];
        if let Some(certs) = &self.certs {
            args.extend(certs.peer_flags(self.id));
        }
        if self.groups > 1 {
            args.extend(["--groups".into(), self.groups.to_string().into()]);
        }
        args
    }
}

/// The nodes `args` describes, after checking that there are 1 to
/// [`MAX_NODES`] and that every port fits in 16 bits.
///
/// # Errors
/// [`LauncherError::InvalidArgs`] saying what is wrong.
pub fn plan(args: &ClusterArgs) -> Result<Vec<NodeSpec>, LauncherError> {
    if !(1..=MAX_NODES).contains(&args.nodes) {
        return Err(LauncherError::InvalidArgs(format!(
            "--nodes must be between 1 and {MAX_NODES}, not {}",
            args.nodes
        )));
    }
    if args.base_port == 0 {
        return Err(LauncherError::InvalidArgs(
            "--base-port must be a port number from 1".into(),
        ));
    }
    if args.log.trim().is_empty() {
        return Err(LauncherError::InvalidArgs("--log must not be empty".into()));
    }
    (1..=args.nodes)
        .map(|id| {
            let peer = u64::from(args.base_port) + (id - 1) * 10_000;
            let client = peer + 1;
            let (Ok(peer_port), Ok(client_port)) = (u16::try_from(peer), u16::try_from(client))
            else {
                return Err(LauncherError::InvalidArgs(format!(
                    "node {id} would need ports {peer} and {client}, beyond 65535: \
                     use fewer --nodes or a lower --base-port (each node adds 10000)"
                )));
            };
            Ok(NodeSpec {
                id,
                peer_port,
                client_port,
                data_dir: args.data_dir.join(format!("node-{id}")),
                certs: args.tls.then(|| CertPaths::new(tls_dir(&args.data_dir))),
                groups: args.groups,
            })
        })
        .collect()
}

/// Where `--tls` writes the certificates.
fn tls_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tls")
}

/// Writes fresh certificates for nodes 1 to `nodes` into `data_dir/tls`,
/// where [`plan`] with `tls` points the nodes (`raftkv cluster --tls`, and
/// `bench-vs --peer-tls`). Returns that directory.
///
/// # Errors
/// [`LauncherError::Certs`] when they cannot be made or written.
pub fn write_certs(data_dir: &Path, nodes: u64) -> Result<PathBuf, LauncherError> {
    let hosts: Vec<String> = TLS_HOSTS.iter().map(|h| h.to_string()).collect();
    let validity = Validity::days_from_now(TLS_DAYS);
    let dir = tls_dir(data_dir);
    write_cluster(&dir, nodes, &hosts, validity)?;
    Ok(dir)
}

/// The `--cluster` argument: every node's peer URL, comma-separated, in id
/// order.
pub fn cluster_arg(nodes: &[NodeSpec]) -> String {
    nodes
        .iter()
        .map(NodeSpec::peer_url)
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs the cluster `args` describes until a signal stops it (then `Ok`) or
/// every node has exited (then [`LauncherError::AllNodesExited`]). Blocks the
/// calling thread; call it outside async code (or in `spawn_blocking`).
/// Prints each node's URLs and sample `curl` commands to stdout.
///
/// # Errors
/// See [`LauncherError`].
pub fn run(args: ClusterArgs) -> Result<(), LauncherError> {
    let nodes = plan(&args)?;
    if args.fresh {
        remove_data_dir(&args.data_dir)?;
    }
    std::fs::create_dir_all(&args.data_dir).map_err(|source| LauncherError::DataDir {
        path: args.data_dir.clone(),
        source,
    })?;
    if args.tls {
        write_certs(&args.data_dir, args.nodes)?;
    }
    let exe = std::env::current_exe().map_err(LauncherError::CurrentExe)?;
    let (tx, rx) = crossbeam_channel::unbounded();
    forward_signals(tx.clone())?;
    let cluster = Cluster::start(&exe, &[], &nodes, &args.log, tx)?;

    let mut out = std::io::stdout().lock();
    for n in &nodes {
        let _ = writeln!(
            out,
            "node {}: client {}  peer {}  data {}",
            n.id,
            n.client_url(),
            n.peer_url(),
            n.data_dir.display()
        );
    }
    if args.tls {
        let _ = writeln!(
            out,
            "peer ports: mutual TLS, certificates in {} (CA ca.pem)",
            tls_dir(&args.data_dir).display()
        );
    }
    let first = nodes[0].client_url();
    let _ = writeln!(
        out,
        "\ntry:\n  curl -L {first}/my-key -XPUT -d hello\n  curl -L {first}/my-key\n  \
         curl {first}/status\nCtrl-C stops the cluster."
    );
    let _ = out.flush();
    drop(out);

    cluster.supervise(&rx, GRACE_PERIOD)
}

/// Removes `dir` after checking it holds only `node-*` entries and the
/// `tls` directory of `--tls`.
fn remove_data_dir(dir: &Path) -> Result<(), LauncherError> {
    let io_err = |source| LauncherError::DataDir {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(e)),
    };
    for entry in entries {
        let name = entry.map_err(io_err)?.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with("node-") && name != "tls" {
            return Err(LauncherError::NotOurDataDir {
                path: dir.to_path_buf(),
                entry: name.into_owned(),
            });
        }
    }
    std::fs::remove_dir_all(dir).map_err(io_err)
}

/// What the supervisor hears about.
#[derive(Debug)]
enum Event {
    /// The launcher received a signal (its name).
    Signal(&'static str),
    /// A node's process exited.
    Exited { id: u64, status: ExitStatus },
}

/// Sends an [`Event::Signal`] for every SIGINT, SIGTERM and SIGHUP, from a
/// thread of its own running a small Tokio runtime. Returns once the
/// handlers are installed.
fn forward_signals(tx: Sender<Event>) -> Result<(), LauncherError> {
    let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("raftkv-signals".into())
        .spawn(move || {
            use tokio::signal::unix::{SignalKind, signal};
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                let streams = (|| {
                    Ok::<_, std::io::Error>((
                        signal(SignalKind::interrupt())?,
                        signal(SignalKind::terminate())?,
                        signal(SignalKind::hangup())?,
                    ))
                })();
                let (mut int, mut term, mut hup) = match streams {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                loop {
                    let name = tokio::select! {
                        _ = int.recv() => "SIGINT",
                        _ = term.recv() => "SIGTERM",
                        _ = hup.recv() => "SIGHUP",
                    };
                    if tx.send(Event::Signal(name)).is_err() {
                        return;
                    }
                }
            });
        })
        .map_err(LauncherError::Signals)?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(LauncherError::Signals(e)),
        Err(_) => Err(LauncherError::Signals(std::io::Error::other(
            "the signal thread stopped",
        ))),
    }
}

/// How long the launcher waits before it restarts a node killed by a
/// signal; doubled (up to [`MAX_RESTART_DELAY`]) while it keeps dying
/// within 10 s of its start.
pub const RESTART_DELAY: Duration = Duration::from_secs(1);
/// The longest wait before a restart.
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);
/// A node that ran this long before dying is restarted after
/// [`RESTART_DELAY`] again.
const STABLE_RUN: Duration = Duration::from_secs(10);

/// Where the launcher's own messages go (stderr, or a test's channel).
type Report = Box<dyn FnMut(String) + Send>;

/// The running nodes.
struct Cluster {
    exe: PathBuf,
    prefix_args: Vec<OsString>,
    /// The `--cluster` argument.
    cluster: String,
    log: String,
    events: Sender<Event>,
    /// Every node, by id.
    nodes: BTreeMap<u64, NodeSpec>,
    /// Pids of nodes not yet seen to exit, by node id.
    running: BTreeMap<u64, Pid>,
    /// When each node last started, and the delay before its next restart.
    starts: BTreeMap<u64, (Instant, Duration)>,
    /// Nodes killed by a signal, and when to start them again.
    restarts: BTreeMap<u64, Instant>,
    /// Threads waiting for a node or copying its output.
    threads: Vec<JoinHandle<()>>,
    report: Report,
    restart_delay: Duration,
    /// Ask the nodes for a coloured log (they write to a pipe, so they
    /// would not colour it on their own).
    color: bool,
}

impl Cluster {
    /// Starts `exe <prefix args> <server args>` for every node, each child
    /// waited for by a thread that reports its exit on `events`. If one
    /// cannot be started, stops those already running.
    fn start(
        exe: &Path,
        prefix_args: &[OsString],
        nodes: &[NodeSpec],
        log: &str,
        events: Sender<Event>,
    ) -> Result<Cluster, LauncherError> {
        let report: Report = Box::new(|line| eprintln!("{line}"));
        let color = std::io::IsTerminal::is_terminal(&std::io::stderr());
        Cluster::start_reporting(exe, prefix_args, nodes, log, events, report, color)
    }

    fn start_reporting(
        exe: &Path,
        prefix_args: &[OsString],
        nodes: &[NodeSpec],
        log: &str,
        events: Sender<Event>,
        report: Report,
        color: bool,
    ) -> Result<Cluster, LauncherError> {
        let mut started = Cluster {
            exe: exe.to_path_buf(),
            prefix_args: prefix_args.to_vec(),
            cluster: cluster_arg(nodes),
            log: log.to_string(),
            events,
            nodes: nodes.iter().map(|n| (n.id, n.clone())).collect(),
            running: BTreeMap::new(),
            starts: BTreeMap::new(),
            restarts: BTreeMap::new(),
            threads: Vec::new(),
            report,
            restart_delay: RESTART_DELAY,
            color,
        };
        for node in nodes {
            if let Err(e) = started.spawn(node.id) {
                started.kill_all();
                return Err(e);
            }
        }
        Ok(started)
    }

    /// Starts node `id`'s process (again, on its data directory).
    fn spawn(&mut self, id: u64) -> Result<(), LauncherError> {
        let node = &self.nodes[&id];
        let mut command = Command::new(&self.exe);
        command
            .args(&self.prefix_args)
            .args(node.server_args(&self.cluster, &self.log));
        if self.color {
            command.args(["--log-color", "always"]);
        }
        let spawned = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn();
        let mut child = spawned.map_err(|source| LauncherError::Spawn { id, source })?;
        let prefix = format!("node-{id} | ");
        if let Some(out) = child.stdout.take() {
            self.threads
                .push(copy_lines(out, prefix.clone(), std::io::stdout));
        }
        if let Some(err) = child.stderr.take() {
            self.threads.push(copy_lines(err, prefix, std::io::stderr));
        }
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        self.running.insert(id, pid);
        let delay = self.starts.get(&id).map_or(self.restart_delay, |s| s.1);
        self.starts.insert(id, (Instant::now(), delay));
        let tx = self.events.clone();
        self.threads.push(std::thread::spawn(move || {
            let status = child
                .wait()
                .unwrap_or_else(|_| ExitStatus::from_raw(-1 << 8));
            let _ = tx.send(Event::Exited { id, status });
        }));
        Ok(())
    }

    /// Runs until a signal (then stops every node and returns `Ok`) or
    /// until no node is left (then [`LauncherError::AllNodesExited`]). A
    /// node that exits on its own is reported and the others keep
    /// running; one killed by a signal (`kill -9`, the OOM killer) is
    /// started again on its data directory after a delay.
    fn supervise(mut self, events: &Receiver<Event>, grace: Duration) -> Result<(), LauncherError> {
        loop {
            let next_restart = self.restarts.values().min().copied();
            let event = match next_restart {
                Some(at) => events.recv_deadline(at),
                None => events.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match event {
                Ok(Event::Signal(name)) => {
                    let running = ids(self.running.keys());
                    (self.report)(format!(
                        "raftkv cluster: {name} received, stopping {running}"
                    ));
                    self.stop(events, grace);
                    return Ok(());
                }
                Ok(Event::Exited { id, status }) => self.on_exit(id, status),
                Err(RecvTimeoutError::Timeout) => self.restart_due(),
                // Every sender is gone: no node left and no signal thread.
                Err(RecvTimeoutError::Disconnected) => {
                    self.stop(events, grace);
                    return Ok(());
                }
            }
            if self.running.is_empty() && self.restarts.is_empty() {
                (self.report)("raftkv cluster: every node has exited".into());
                self.stop(events, grace);
                return Err(LauncherError::AllNodesExited);
            }
        }
    }

    /// A node exited while the cluster runs: report it, and schedule a
    /// restart if a signal killed it.
    fn on_exit(&mut self, id: u64, status: ExitStatus) {
        self.running.remove(&id);
        let others = if self.running.is_empty() {
            "no other node is running".to_string()
        } else {
            let verb = if self.running.len() == 1 {
                "keeps"
            } else {
                "keep"
            };
            format!("{} {verb} running", ids(self.running.keys()))
        };
        let what = match (status.signal(), status.code()) {
            (Some(signal), _) => {
                let (started, delay) = self
                    .starts
                    .get(&id)
                    .copied()
                    .unwrap_or((Instant::now(), self.restart_delay));
                let delay = if started.elapsed() < STABLE_RUN {
                    delay
                } else {
                    self.restart_delay
                };
                self.restarts.insert(id, Instant::now() + delay);
                self.starts
                    .insert(id, (started, (delay * 2).min(MAX_RESTART_DELAY)));
                format!("was killed by signal {signal}; restarting it on its data in {delay:?}")
            }
            (None, Some(0)) => "exited 0 (it was removed from the cluster, or stopped)".into(),
            (None, Some(2)) => "refused to start (exit 2, its error is above)".into(),
            (None, _) => format!("stopped ({status}, its error is above)"),
        };
        (self.report)(format!("raftkv cluster: node {id} {what}; {others}"));
    }

    /// Starts the nodes whose restart is due.
    fn restart_due(&mut self) {
        let now = Instant::now();
        let due: Vec<u64> = self
            .restarts
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.restarts.remove(&id);
            match self.spawn(id) {
                Ok(()) => (self.report)(format!("raftkv cluster: node {id} restarted")),
                Err(e) => (self.report)(format!("raftkv cluster: {e}")),
            }
        }
    }

    /// Sends SIGTERM to every running node and waits up to `grace` for
    /// them to exit (less if another signal arrives), then SIGKILLs the
    /// rest and waits for them.
    fn stop(&mut self, events: &Receiver<Event>, grace: Duration) {
        self.restarts.clear();
        for pid in self.running.values() {
            let _ = kill(*pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while !self.running.is_empty() {
            match events.recv_deadline(deadline) {
                Ok(Event::Exited { id, status }) => self.note_exit(id, status),
                Ok(Event::Signal(name)) => {
                    (self.report)(format!(
                        "raftkv cluster: {name} received again, killing the nodes"
                    ));
                    break;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let ids = ids(self.running.keys());
                    (self.report)(format!(
                        "raftkv cluster: {ids} still running after {grace:?}, killing"
                    ));
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        for pid in self.running.values() {
            let _ = kill(*pid, Signal::SIGKILL);
        }
        while !self.running.is_empty() {
            match events.recv() {
                Ok(Event::Exited { id, status }) => self.note_exit(id, status),
                Ok(Event::Signal(_)) => {}
                Err(_) => break,
            }
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// SIGKILLs every node and waits for the threads watching them (used
    /// when the cluster could not be started completely).
    fn kill_all(&mut self) {
        for pid in std::mem::take(&mut self.running).values() {
            let _ = kill(*pid, Signal::SIGKILL);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    fn note_exit(&mut self, id: u64, status: ExitStatus) {
        self.running.remove(&id);
        if !status.success() {
            (self.report)(format!("raftkv cluster: node {id} stopped ({status})"));
        }
    }
}

/// `node 1` or `nodes 1, 3`.
fn ids<'a>(ids: impl Iterator<Item = &'a u64>) -> String {
    let ids: Vec<String> = ids.map(u64::to_string).collect();
    let noun = if ids.len() == 1 { "node" } else { "nodes" };
    format!("{noun} {}", ids.join(", "))
}

/// Copies `from` line by line to `to()`, each line prefixed, until EOF.
fn copy_lines<R, W>(from: R, prefix: String, to: fn() -> W) -> JoinHandle<()>
where
    R: Read + Send + 'static,
    W: Write + 'static,
{
    std::thread::spawn(move || {
        let mut from = BufReader::new(from);
        let mut line = Vec::new();
        loop {
            line.clear();
            line.extend_from_slice(prefix.as_bytes());
            match from.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if !line.ends_with(b"\n") {
                        line.push(b'\n');
                    }
                    // One write per line, so lines of different nodes do
                    // not interleave.
                    let mut w = to();
                    let _ = w.write_all(&line);
                    let _ = w.flush();
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        cluster: ClusterArgs,
    }

    fn parse(args: &[&str]) -> Result<ClusterArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("cluster").chain(args.iter().copied()))
            .map(|c| c.cluster)
    }

    #[test]
    fn three_default_nodes_use_raftexample_ports() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.nodes, 3);
        assert_eq!(args.data_dir, PathBuf::from("./raftkv-data"));
        assert_eq!(args.log, "info");
        assert!(!args.fresh);
        let nodes = plan(&args).unwrap();
        let ports: Vec<(u16, u16)> = nodes.iter().map(|n| (n.peer_port, n.client_port)).collect();
        assert_eq!(ports, [(12379, 12380), (22379, 22380), (32379, 32380)]);
        assert_eq!(nodes[2].client_url(), "http://127.0.0.1:32380");
        assert_eq!(nodes[1].data_dir, Path::new("./raftkv-data/node-2"));
        assert_eq!(
            cluster_arg(&nodes),
            "http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379"
        );
    }

    /// Node `index`'s command line in the cluster `args` plan.
    fn command_line(args: &ClusterArgs, index: usize) -> (String, Vec<String>) {
        let nodes = plan(args).unwrap();
        let cluster = cluster_arg(&nodes);
        let argv = nodes[index]
            .server_args(&cluster, &args.log)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        (cluster, argv)
    }

    #[test]
    fn each_node_gets_the_server_command_line() {
        let args = parse(&["--nodes", "2", "--data-dir", "/d", "--log", "debug"]).unwrap();
        let (_, got) = command_line(&args, 1);
        assert_eq!(
            got,
            [
                "--id",
                "2",
                "--cluster",
                "http://127.0.0.1:12379,http://127.0.0.1:22379",
                "--port",
                "22380",
                "--data-dir",
                "/d/node-2",
                "--log",
                "debug"
            ]
        );
    }

    #[test]
    fn with_tls_nodes_get_https_urls_and_their_certificates() {
        let args = parse(&["--nodes", "2", "--data-dir", "/d", "--tls"]).unwrap();
        let (cluster, got) = command_line(&args, 1);
        assert_eq!(cluster, "https://127.0.0.1:12379,https://127.0.0.1:22379");
        assert_eq!(
            got[10..],
            [
                "--peer-cert",
                "/d/tls/node-2.pem",
                "--peer-key",
                "/d/tls/node-2-key.pem",
                "--peer-ca",
                "/d/tls/ca.pem"
            ]
        );
    }

    #[test]
    fn node_counts_and_ports_out_of_range_are_refused() {
        for n in 1..=5 {
            plan(&parse(&["--nodes", &n.to_string()]).unwrap()).unwrap();
        }
        for bad in ["0", "8"] {
            let e = plan(&parse(&["--nodes", bad]).unwrap()).unwrap_err();
            assert!(e.to_string().contains("between 1 and 7"), "{e}");
        }
        let e = plan(&parse(&["--nodes", "7"]).unwrap()).unwrap_err();
        assert!(
            e.to_string().contains("node 7 would need ports 72379"),
            "{e}"
        );
        let e = plan(&parse(&["--base-port", "65535", "--nodes", "1"]).unwrap()).unwrap_err();
        assert!(e.to_string().contains("65536"), "{e}");
        assert!(plan(&parse(&["--base-port", "0"]).unwrap()).is_err());
        assert!(parse(&["--base-port", "70000"]).is_err());
        let seven = plan(&parse(&["--nodes", "7", "--base-port", "1000"]).unwrap()).unwrap();
        assert_eq!(seven[6].client_port, 61001);
    }

    #[test]
    fn fresh_removes_only_a_directory_of_node_data() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        remove_data_dir(&data).unwrap(); // missing: nothing to do
        std::fs::create_dir_all(data.join("node-1/wal")).unwrap();
        std::fs::create_dir_all(data.join("node-2")).unwrap();
        std::fs::create_dir_all(data.join("tls")).unwrap();
        remove_data_dir(&data).unwrap();
        assert!(!data.exists());

        std::fs::create_dir_all(data.join("node-1")).unwrap();
        std::fs::write(data.join("important.txt"), b"x").unwrap();
        let e = remove_data_dir(&data).unwrap_err();
        assert!(
            matches!(&e, LauncherError::NotOurDataDir { entry, .. } if entry == "important.txt"),
            "{e}"
        );
        assert!(data.join("node-1").exists());
    }

    #[test]
    fn the_procfile_starts_the_default_cluster() {
        let procfile = include_str!("../../../examples/kv/Procfile");
        let mut args = parse(&[]).unwrap();
        args.data_dir = PathBuf::from("raftkv-data");
        let commands: Vec<&str> = procfile
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .collect();
        assert_eq!(commands.len() as u64, args.nodes);
        for (index, line) in commands.iter().enumerate() {
            let (_, argv) = command_line(&args, index);
            assert_eq!(
                *line,
                format!("raftkv{}: raftkv {}", index + 1, argv.join(" "))
            );
        }
    }

    /// Writes an executable shell script standing in for `raftkv`. It gets
    /// the server arguments, so `$2` is the node id.
    fn fake_raftkv(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("fake-raftkv");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn three_nodes(dir: &Path) -> Vec<NodeSpec> {
        let mut args = parse(&[]).unwrap();
        args.data_dir = dir.to_path_buf();
        plan(&args).unwrap()
    }

    /// A cluster of `exe` whose launcher messages arrive on the returned
    /// receiver, supervised on a thread of its own; send it signals on
    /// the returned sender.
    fn supervised(
        exe: &Path,
        dir: &Path,
    ) -> (
        Sender<Event>,
        Receiver<String>,
        JoinHandle<Result<(), LauncherError>>,
    ) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (lines_tx, lines) = crossbeam_channel::unbounded();
        let report: Report = Box::new(move |line| {
            let _ = lines_tx.send(line);
        });
        let mut cluster = Cluster::start_reporting(
            exe,
            &[],
            &three_nodes(dir),
            "info",
            tx.clone(),
            report,
            false,
        )
        .unwrap();
        cluster.restart_delay = Duration::from_millis(10);
        let supervisor =
            std::thread::spawn(move || cluster.supervise(&rx, Duration::from_secs(30)));
        (tx, lines, supervisor)
    }

    /// The next launcher message that contains `needle`.
    fn wait_line(lines: &Receiver<String>, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match lines.recv_deadline(deadline) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no launcher message with {needle:?}: {e}"),
            }
        }
    }

    #[test]
    fn a_node_exiting_on_its_own_is_reported_and_the_others_keep_running() {
        let tmp = tempfile::tempdir().unwrap();
        let exe = fake_raftkv(
            tmp.path(),
            r#"if [ "$2" = 2 ]; then exit 0; fi; exec sleep 600"#,
        );
        let (tx, lines, supervisor) = supervised(&exe, tmp.path());
        let line = wait_line(&lines, "node 2");
        assert!(line.contains("removed from the cluster"), "{line}");
        assert!(line.contains("nodes 1, 3 keep running"), "{line}");
        tx.send(Event::Signal("SIGTERM")).unwrap();
        let line = wait_line(&lines, "received");
        assert!(line.contains("stopping nodes 1, 3"), "{line}");
        supervisor.join().unwrap().unwrap();
    }

    #[test]
    fn a_node_killed_by_a_signal_is_restarted_on_its_data() {
        let tmp = tempfile::tempdir().unwrap();
        // The first start of node 2 kills itself; its data directory ($8)
        // remembers that it did.
        let exe = fake_raftkv(
            tmp.path(),
            r#"if [ "$2" = 2 ] && mkdir -p "$8" && [ ! -e "$8/killed" ]; then
                 touch "$8/killed"; kill -9 $$
               fi
               exec sleep 600"#,
        );
        let (tx, lines, supervisor) = supervised(&exe, tmp.path());
        let line = wait_line(&lines, "node 2");
        assert!(line.contains("killed by signal 9"), "{line}");
        assert!(line.contains("restarting it on its data"), "{line}");
        wait_line(&lines, "node 2 restarted");
        tx.send(Event::Signal("SIGTERM")).unwrap();
        let line = wait_line(&lines, "received");
        assert!(line.contains("stopping nodes 1, 2, 3"), "{line}");
        supervisor.join().unwrap().unwrap();
    }

    #[test]
    fn when_every_node_has_exited_the_launcher_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let exe = fake_raftkv(tmp.path(), "exit 2");
        let (_tx, lines, supervisor) = supervised(&exe, tmp.path());
        let line = wait_line(&lines, "refused to start");
        assert!(line.contains("exit 2"), "{line}");
        wait_line(&lines, "every node has exited");
        assert!(matches!(
            supervisor.join().unwrap(),
            Err(LauncherError::AllNodesExited)
        ));
    }

    #[test]
    fn a_signal_stops_every_node_and_stragglers_are_killed_after_the_grace_period() {
        let tmp = tempfile::tempdir().unwrap();
        // Node 3 ignores SIGTERM; the others stop on it.
        let exe = fake_raftkv(
            tmp.path(),
            r#"if [ "$2" = 3 ]; then trap '' TERM; fi; exec sleep 600"#,
        );
        let (tx, rx) = crossbeam_channel::unbounded();
        let cluster =
            Cluster::start(&exe, &[], &three_nodes(tmp.path()), "info", tx.clone()).unwrap();
        let pids: Vec<Pid> = cluster.running.values().copied().collect();
        tx.send(Event::Signal("SIGTERM")).unwrap();
        cluster.supervise(&rx, Duration::from_millis(300)).unwrap();
        for pid in pids {
            // Reaped: the pid no longer names our child.
            assert!(
                nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)).is_err()
            );
        }
    }

    #[test]
    fn a_node_that_cannot_start_is_reported_by_id() {
        let tmp = tempfile::tempdir().unwrap();
        let (tx, _rx) = crossbeam_channel::unbounded();
        let e = match Cluster::start(
            &tmp.path().join("missing"),
            &[],
            &three_nodes(tmp.path()),
            "info",
            tx,
        ) {
            Ok(_) => panic!("started a missing executable"),
            Err(e) => e,
        };
        assert!(matches!(e, LauncherError::Spawn { id: 1, .. }), "{e}");
    }
}
