//! The clusters of `raftkv bench-vs`: their command lines, processes,
//! readiness, and one measured run; and etcd's installation.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::stats::{self, Counters};
use super::table::RunResult;
use super::{Placement, STOP_GRACE, VersusArgs, VersusError, bench_args};
use crate::bench::{self, Target};
use crate::certs::CertPaths;
use crate::client::{Client, Connection};
use crate::launcher::{self, ClusterArgs};

/// Members of every cluster.
pub(crate) const MEMBERS: u16 = 3;
/// Between two members' ports.
const PORT_STEP: u16 = 10_000;

/// What a system is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SystemKind {
    /// raftkv nodes: node i peers on base + (i-1)*10000, serves clients on
    /// the next port (as `raftkv cluster`).
    Raftkv {
        /// Peer port of node 1.
        base_port: u16,
    },
    /// etcd members: member i serves clients on base + (i-1)*10000, peers
    /// on the next port.
    Etcd {
        /// Client port of member 1.
        base_port: u16,
    },
}

/// One system of the comparison, before it starts.
#[derive(Clone, Debug)]
pub(crate) struct SystemSpec {
    /// How the report names it.
    pub(crate) label: String,
    /// What it is.
    pub(crate) kind: SystemKind,
    /// Extra server flags.
    pub(crate) flags: Vec<String>,
    /// Mutual TLS on the peer ports, with certificates written into the
    /// system's work directory (`tls/`) at every start.
    pub(crate) peer_tls: bool,
}

/// raftkv flags `bench-vs` sets itself.
const RAFTKV_OWN_FLAGS: [&str; 5] = ["--id", "--cluster", "--port", "--data-dir", "--join"];
/// raftkv flags `bench-vs --peer-tls` sets itself.
const RAFTKV_TLS_FLAGS: [&str; 3] = ["--peer-cert", "--peer-key", "--peer-ca"];
/// etcd flags `bench-vs --peer-tls` sets itself.
const ETCD_TLS_FLAGS: [&str; 4] = [
    "--peer-cert-file",
    "--peer-key-file",
    "--peer-trusted-ca-file",
    "--peer-client-cert-auth",
];
/// etcd flags `bench-vs` sets itself.
const ETCD_OWN_FLAGS: [&str; 9] = [
    "--name",
    "--data-dir",
    "--listen-client-urls",
    "--advertise-client-urls",
    "--listen-peer-urls",
    "--initial-advertise-peer-urls",
    "--initial-cluster",
    "--initial-cluster-state",
    "--initial-cluster-token",
];

impl SystemSpec {
    /// The generator's target.
    pub(crate) fn target(&self) -> Target {
        match self.kind {
            SystemKind::Raftkv { .. } => Target::Raftkv,
            SystemKind::Etcd { .. } => Target::Etcd,
        }
    }

    /// Refuses extra flags that set what `bench-vs` sets itself.
    pub(crate) fn check_flags(&self) -> Result<(), String> {
        let (own, tls): (&[&str], &[&str]) = match self.kind {
            SystemKind::Raftkv { .. } => (&RAFTKV_OWN_FLAGS, &RAFTKV_TLS_FLAGS),
            SystemKind::Etcd { .. } => (&ETCD_OWN_FLAGS, &ETCD_TLS_FLAGS),
        };
        let tls = if self.peer_tls { tls } else { &[] };
        for flag in &self.flags {
            // etcd also takes -flag; both take --flag=value.
            let name = flag.split('=').next().unwrap_or(flag);
            let name = format!("--{}", name.trim_start_matches('-'));
            if own.contains(&name.as_str()) || tls.contains(&name.as_str()) {
                return Err(format!(
                    "{name} is set by bench-vs for every {}; leave it out of the extra flags",
                    self.target()
                ));
            }
        }
        Ok(())
    }

    /// Every port the system listens on, member by member.
    pub(crate) fn ports(&self) -> Result<Vec<u16>, String> {
        let base = match self.kind {
            SystemKind::Raftkv { base_port } | SystemKind::Etcd { base_port } => base_port,
        };
        if base == 0 {
            return Err(format!("{}: a base port must be at least 1", self.label));
        }
        let mut ports = Vec::new();
        for i in 0..MEMBERS {
            let first = u32::from(base) + u32::from(i) * u32::from(PORT_STEP);
            for port in [first, first + 1] {
                ports.push(u16::try_from(port).map_err(|_| {
                    format!(
                        "{} member {} would need port {port}, beyond 65535: use a lower base port",
                        self.label,
                        i + 1
                    )
                })?);
            }
        }
        Ok(ports)
    }

    /// One line saying what the system runs.
    pub(crate) fn describe(&self) -> String {
        let flags = if self.flags.is_empty() {
            "default flags".to_string()
        } else {
            format!("extra flags: {}", self.flags.join(" "))
        };
        let clients = self.client_urls().map_or_else(|e| e, |urls| urls.join(","));
        let peers = if self.peer_tls {
            "peers over mutual TLS"
        } else {
            "plain peers"
        };
        format!("{}: {flags}; {peers}; clients at {clients}", self.label)
    }

    /// The members' client URLs.
    pub(crate) fn client_urls(&self) -> Result<Vec<String>, String> {
        let ports = self.ports()?;
        let client = |i: usize| match self.kind {
            SystemKind::Raftkv { .. } => ports[2 * i + 1],
            SystemKind::Etcd { .. } => ports[2 * i],
        };
        Ok((0..usize::from(MEMBERS))
            .map(|i| format!("http://127.0.0.1:{}", client(i)))
            .collect())
    }

    /// Each member's name and command-line arguments, its data directory
    /// under `dir`.
    pub(crate) fn command_lines(&self, dir: &Path) -> Result<Vec<(String, Vec<OsString>)>, String> {
        let ports = self.ports()?;
        match self.kind {
            SystemKind::Raftkv { base_port } => self.raftkv_command_lines(dir, base_port),
            SystemKind::Etcd { .. } => Ok(self.etcd_command_lines(dir, &ports)),
        }
    }

    /// raftkv nodes' command lines, planned as `raftkv cluster` plans them.
    fn raftkv_command_lines(
        &self,
        dir: &Path,
        base_port: u16,
    ) -> Result<Vec<(String, Vec<OsString>)>, String> {
        let args = ClusterArgs {
            nodes: u64::from(MEMBERS),
            base_port,
            data_dir: dir.to_path_buf(),
            log: "info".into(),
            fresh: false,
            tls: self.peer_tls,
            // Given in the system's flags (`--compare-raftkv "--groups 16" ""`).
            groups: 1,
        };
        let nodes = launcher::plan(&args).map_err(|e| e.to_string())?;
        let cluster = launcher::cluster_arg(&nodes);
        Ok(nodes
            .iter()
            .map(|n| {
                let mut argv = n.server_args(&cluster, &args.log);
                argv.extend(self.flags.iter().map(OsString::from));
                (format!("node-{}", n.id), argv)
            })
            .collect())
    }

    /// etcd members' command lines: client and peer ports from `ports`.
    fn etcd_command_lines(&self, dir: &Path, ports: &[u16]) -> Vec<(String, Vec<OsString>)> {
        let scheme = if self.peer_tls { "https" } else { "http" };
        let peer = |i: usize| format!("{scheme}://127.0.0.1:{}", ports[2 * i + 1]);
        let certs = CertPaths::new(dir.join("tls"));
        let initial: Vec<String> = (0..usize::from(MEMBERS))
            .map(|i| format!("m{}={}", i + 1, peer(i)))
            .collect();
        let initial = initial.join(",");
        (0..usize::from(MEMBERS))
            .map(|i| {
                let name = format!("m{}", i + 1);
                let client = format!("http://127.0.0.1:{}", ports[2 * i]);
                let mut argv: Vec<OsString> = vec![
                    "--name".into(),
                    name.clone().into(),
                    "--data-dir".into(),
                    dir.join(&name).into_os_string(),
                    "--listen-client-urls".into(),
                    client.clone().into(),
                    "--advertise-client-urls".into(),
                    client.into(),
                    "--listen-peer-urls".into(),
                    peer(i).into(),
                    "--initial-advertise-peer-urls".into(),
                    peer(i).into(),
                    "--initial-cluster".into(),
                    initial.clone().into(),
                    "--initial-cluster-state".into(),
                    "new".into(),
                    "--initial-cluster-token".into(),
                    "raftkv-bench-vs".into(),
                ];
                if self.peer_tls {
                    // The node certificates serve both ends of a
                    // peer connection (server and client EKU).
                    let id = i as u64 + 1;
                    argv.extend([
                        "--peer-cert-file".into(),
                        certs.node_cert(id).into_os_string(),
                        "--peer-key-file".into(),
                        certs.node_key(id).into_os_string(),
                        "--peer-trusted-ca-file".into(),
                        certs.ca().into_os_string(),
                        "--peer-client-cert-auth".into(),
                    ]);
                }
                argv.extend(self.flags.iter().map(OsString::from));
                (name, argv)
            })
            .collect()
    }

    /// The directory of its data and logs under the work directory.
    fn dir_name(&self) -> String {
        self.label.replace(' ', "-")
    }
}

/// Environment variables that would change a server's settings behind
/// its flags: etcd reads `ETCD_*`, the Go runtime `GO*`, raftkv `RUST_LOG`
/// nowhere but it is cleared for symmetry.
fn settings_from_env(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with("ETCD_")
        || matches!(
            name.as_ref(),
            "GOGC" | "GOMAXPROCS" | "GODEBUG" | "GOMEMLIMIT" | "RUST_LOG"
        )
}

/// One running server process.
struct Member {
    /// `raftkv node-1`, `etcd m2`.
    what: String,
    child: Child,
    pid: Pid,
    log: PathBuf,
}

/// A running cluster of the comparison; its processes are stopped when
/// it is dropped.
pub(crate) struct System {
    spec: SystemSpec,
    endpoints: Vec<String>,
    members: Vec<Member>,
    client: Client,
}

impl System {
    /// Starts the members of `spec` from `bin`, data and logs under
    /// `work/<label>`; each in its own process group (a terminal's Ctrl-C
    /// reaches only `bench-vs`, which stops them), its output in
    /// `<name>.log`.
    pub(crate) fn start(spec: &SystemSpec, bin: &Path, work: &Path) -> Result<System, VersusError> {
        let dir = work.join(spec.dir_name());
        std::fs::create_dir_all(&dir).map_err(|source| VersusError::WorkDir {
            path: dir.clone(),
            source,
        })?;
        if spec.peer_tls {
            launcher::write_certs(&dir, u64::from(MEMBERS)).map_err(|source| {
                VersusError::Certs {
                    system: spec.label.clone(),
                    source,
                }
            })?;
        }
        let lines = spec.command_lines(&dir).map_err(VersusError::InvalidArgs)?;
        let endpoints = spec.client_urls().map_err(VersusError::InvalidArgs)?;
        let mut system = System {
            spec: spec.clone(),
            endpoints,
            members: Vec::new(),
            client: Client::with_timeout(Duration::from_secs(2)),
        };
        for (name, argv) in lines {
            let what = format!("{} {name}", spec.target());
            let log = dir.join(format!("{name}.log"));
            let spawn_error = |source| VersusError::Spawn {
                what: what.clone(),
                source,
            };
            let out = File::create(&log).map_err(spawn_error)?;
            let err = out.try_clone().map_err(spawn_error)?;
            let mut command = Command::new(bin);
            command.args(&argv);
            for (key, _) in std::env::vars_os() {
                if settings_from_env(&key) {
                    command.env_remove(key);
                }
            }
            let child = command
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .process_group(0)
                .spawn()
                .map_err(spawn_error)?;
            let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
            system.members.push(Member {
                what,
                child,
                pid,
                log,
            });
        }
        Ok(system)
    }

    /// How the report names it.
    pub(crate) fn label(&self) -> &str {
        &self.spec.label
    }

    /// An error if a member has exited, with the end of its log.
    fn check_alive(&mut self) -> Result<(), VersusError> {
        for m in &mut self.members {
            if let Ok(Some(status)) = m.child.try_wait() {
                return Err(VersusError::Exited {
                    what: m.what.clone(),
                    status: status.to_string(),
                    log: m.log.clone(),
                    tail: log_tail(&m.log, 12),
                });
            }
        }
        Ok(())
    }

    /// Waits until a member says it leads and a write through every
    /// member succeeds.
    pub(crate) async fn wait_ready(&mut self, within: Duration) -> Result<(), VersusError> {
        let deadline = Instant::now() + within;
        let target = self.spec.target();
        let mut ready = vec![false; self.endpoints.len()];
        loop {
            self.check_alive()?;
            let detail =
                match bench::find_leader(target, &self.endpoints, Duration::from_secs(2)).await {
                    Err(e) => e.to_string(),
                    Ok(_) => {
                        let mut detail = None;
                        for (ep, done) in self.endpoints.iter().zip(&mut ready) {
                            if *done {
                                continue;
                            }
                            match ready_write(target, ep).await {
                                Ok(()) => *done = true,
                                Err(e) => detail = Some(format!("a write through {ep}: {e}")),
                            }
                        }
                        match detail {
                            None => return Ok(()),
                            Some(d) => d,
                        }
                    }
                };
            if Instant::now() >= deadline {
                return Err(VersusError::NotReady {
                    system: self.spec.label.clone(),
                    after: within,
                    detail,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The server CPU time of every member so far, in clock ticks.
    fn cpu_ticks(&self) -> Result<u64, VersusError> {
        let mut sum = 0;
        for m in &self.members {
            sum +=
                stats::process_cpu_ticks(&format!("/proc/{}/stat", m.pid)).map_err(|detail| {
                    VersusError::Cpu {
                        what: m.what.clone(),
                        detail,
                    }
                })?;
        }
        Ok(sum)
    }

    /// The snapshot and WAL fsync counters, summed over the members.
    async fn counters(&self) -> Counters {
        let mut texts = Vec::new();
        for ep in &self.endpoints {
            let resp = self
                .client
                .request(hyper::Method::GET, ep, "/metrics", bytes::Bytes::new())
                .await;
            texts.push(match resp {
                Ok(r) if r.status.is_success() => {
                    Some(String::from_utf8_lossy(&r.body).into_owned())
                }
                _ => None,
            });
        }
        Counters::from_metrics(self.spec.target(), &texts)
    }

    /// One run of `connections` clients placed by `placement`, for
    /// `duration`, with the server CPU and counters around it.
    pub(crate) async fn measure(
        &mut self,
        args: &VersusArgs,
        connections: usize,
        placement: Placement,
        duration: Duration,
    ) -> Result<RunResult, VersusError> {
        self.check_alive()?;
        let target = self.spec.target();
        let bench_error = |source| VersusError::Bench {
            system: self.spec.label.clone(),
            source,
        };
        let endpoints = match placement {
            Placement::Leader => vec![
                bench::find_leader(target, &self.endpoints, args.timeout)
                    .await
                    .map_err(bench_error)?,
            ],
            Placement::Spread => self.endpoints.clone(),
        };
        let counters_before = self.counters().await;
        let generator_before = stats::process_cpu_ticks("/proc/self/stat").unwrap_or(0);
        let cpu_before = self.cpu_ticks()?;
        let report = bench::run(bench_args(args, target, endpoints, connections, duration))
            .await
            .map_err(bench_error)?;
        let cpu_after = self.cpu_ticks()?;
        let generator_after = stats::process_cpu_ticks("/proc/self/stat").unwrap_or(0);
        let counters_after = self.counters().await;
        self.check_alive()?;
        let tick = stats::clock_ticks_per_sec() as f64;
        Ok(RunResult {
            label: self.spec.label.clone(),
            report,
            server_cpu_secs: cpu_after.saturating_sub(cpu_before) as f64 / tick,
            generator_cpu_secs: generator_after.saturating_sub(generator_before) as f64 / tick,
            counters: counters_after.since(&counters_before),
        })
    }

    /// SIGTERM to every member, SIGKILL to those still running after
    /// [`STOP_GRACE`], and waits for them all.
    fn stop(&mut self) {
        for m in &self.members {
            let _ = kill(m.pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            let mut running = 0;
            for m in &mut self.members {
                running += usize::from(matches!(m.child.try_wait(), Ok(None)));
            }
            if running == 0 || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for m in &mut self.members {
            if matches!(m.child.try_wait(), Ok(None)) {
                let _ = kill(m.pid, Signal::SIGKILL);
            }
            let _ = m.child.wait();
        }
        self.members.clear();
    }
}

impl Drop for System {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A write of `bench-vs-ready` through `endpoint`.
async fn ready_write(target: Target, endpoint: &str) -> Result<(), crate::client::ClientError> {
    let mut conn = Connection::new(endpoint, Duration::from_secs(2))?;
    match target {
        Target::Raftkv => {
            conn.put(b"bench-vs-ready", bytes::Bytes::from_static(b"1"))
                .await
        }
        Target::Etcd => crate::etcd::put(&mut conn, b"bench-vs-ready", b"1").await,
    }
}

/// The last `lines` lines of the file at `path` (at most its last 16 KiB).
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let read = || -> std::io::Result<String> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    match read() {
        Ok(text) => tail_lines(&text, lines),
        Err(e) => format!("(cannot read it: {e})"),
    }
}

/// The last `n` lines of `text`, each indented.
fn tail_lines(text: &str, n: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The etcd executable: `bin` if it names a file, else `bin` looked up in
/// `PATH`; when missing and `no_install` is off, installs Debian's
/// `etcd-server` with `apt-get` (after an `apt-get update` if the first
/// attempt fails), its output on stderr.
pub(crate) fn ensure_etcd(bin: &Path, no_install: bool) -> Result<PathBuf, VersusError> {
    if let Some(found) = find_executable(bin) {
        return Ok(found);
    }
    let missing = format!("{} not found", bin.display());
    if no_install {
        return Err(VersusError::Etcd(format!(
            "{missing}; install it (`apt-get install etcd-server`) or name it with --etcd-bin"
        )));
    }
    if bin.components().count() > 1 {
        return Err(VersusError::Etcd(format!(
            "{missing}; --etcd-bin names a path, so bench-vs does not install etcd there"
        )));
    }
    eprintln!("bench-vs: {missing}; installing Debian's etcd-server");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(std::io::stderr())
            .status()
            .map(|s| s.success())
    };
    let install = ["install", "-y", "etcd-server"];
    let installed = match apt(&install) {
        Ok(true) => true,
        Ok(false) => apt(&["update"]).is_ok_and(|ok| ok) && apt(&install).is_ok_and(|ok| ok),
        Err(e) => {
            return Err(VersusError::Etcd(format!(
                "{missing}, and apt-get cannot run ({e}): install etcd-server (etcd 3.4) by hand"
            )));
        }
    };
    if !installed {
        return Err(VersusError::Etcd(format!(
            "{missing}, and `apt-get install -y etcd-server` failed (its output is above; it \
             needs root and Debian's package lists)"
        )));
    }
    find_executable(bin).ok_or_else(|| {
        VersusError::Etcd(format!(
            "etcd-server is installed but {} is still not found in PATH",
            bin.display()
        ))
    })
}

/// `bin` if it is a path to a file, else the first `PATH` entry holding
/// it.
fn find_executable(bin: &Path) -> Option<PathBuf> {
    if bin.components().count() > 1 {
        return bin.is_file().then(|| bin.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(bin))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: SystemKind, flags: &[&str]) -> SystemSpec {
        SystemSpec {
            label: match kind {
                SystemKind::Raftkv { .. } => "raftkv".into(),
                SystemKind::Etcd { .. } => "etcd".into(),
            },
            kind,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            peer_tls: false,
        }
    }

    fn strings(argv: &[OsString]) -> Vec<String> {
        argv.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn raftkv_nodes_get_the_launcher_s_command_line_and_the_extra_flags() {
        let s = spec(
            SystemKind::Raftkv { base_port: 12379 },
            &["--snapshot-count", "10"],
        );
        let lines = s.command_lines(Path::new("/w/raftkv")).unwrap();
        assert_eq!(lines.len(), 3);
        let (name, argv) = &lines[1];
        assert_eq!(name, "node-2");
        assert_eq!(
            strings(argv),
            [
                "--id",
                "2",
                "--cluster",
                "http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379",
                "--port",
                "22380",
                "--data-dir",
                "/w/raftkv/node-2",
                "--log",
                "info",
                "--snapshot-count",
                "10"
            ]
        );
        assert_eq!(
            s.client_urls().unwrap(),
            [
                "http://127.0.0.1:12380",
                "http://127.0.0.1:22380",
                "http://127.0.0.1:32380"
            ]
        );
    }

    #[test]
    fn etcd_members_form_one_new_cluster_on_loopback() {
        let s = spec(SystemKind::Etcd { base_port: 14379 }, &[]);
        let lines = s.command_lines(Path::new("/w/etcd")).unwrap();
        let (name, argv) = &lines[2];
        assert_eq!(name, "m3");
        assert_eq!(
            strings(argv),
            [
                "--name",
                "m3",
                "--data-dir",
                "/w/etcd/m3",
                "--listen-client-urls",
                "http://127.0.0.1:34379",
                "--advertise-client-urls",
                "http://127.0.0.1:34379",
                "--listen-peer-urls",
                "http://127.0.0.1:34380",
                "--initial-advertise-peer-urls",
                "http://127.0.0.1:34380",
                "--initial-cluster",
                "m1=http://127.0.0.1:14380,m2=http://127.0.0.1:24380,m3=http://127.0.0.1:34380",
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "raftkv-bench-vs"
            ]
        );
        assert_eq!(s.client_urls().unwrap()[0], "http://127.0.0.1:14379");
        assert!(
            s.describe().starts_with(
                "etcd: default flags; plain peers; clients at http://127.0.0.1:14379,"
            )
        );
    }

    #[test]
    fn flags_bench_vs_sets_itself_are_refused_in_any_spelling() {
        let e = spec(SystemKind::Etcd { base_port: 1 }, &["-name", "x"]);
        assert!(
            e.check_flags()
                .unwrap_err()
                .contains("--name is set by bench-vs for every etcd")
        );
        let e = spec(
            SystemKind::Etcd { base_port: 1 },
            &["--initial-cluster-state=existing"],
        );
        assert!(e.check_flags().is_err());
        let ok = spec(
            SystemKind::Etcd { base_port: 1 },
            &[
                "--snapshot-count",
                "1000",
                "--quota-backend-bytes=8589934592",
            ],
        );
        ok.check_flags().unwrap();
        let r = spec(SystemKind::Raftkv { base_port: 1 }, &["--join"]);
        assert!(r.check_flags().unwrap_err().contains("--join"));
        // raftkv's --id is not etcd's business, and the other way round.
        spec(SystemKind::Raftkv { base_port: 1 }, &["--name", "x"])
            .check_flags()
            .unwrap();
        spec(SystemKind::Etcd { base_port: 1 }, &["--id", "1"])
            .check_flags()
            .unwrap();
    }

    #[test]
    fn the_environment_cannot_change_server_settings() {
        for name in [
            "ETCD_UNSAFE_NO_FSYNC",
            "ETCD_SNAPSHOT_COUNT",
            "GOMAXPROCS",
            "GOGC",
            "RUST_LOG",
        ] {
            assert!(settings_from_env(name.as_ref()), "{name}");
        }
        for name in ["PATH", "HOME", "GOPATH_NOT", "TMPDIR"] {
            assert!(!settings_from_env(name.as_ref()), "{name}");
        }
    }

    #[test]
    fn a_log_tail_is_its_last_lines_indented() {
        assert_eq!(tail_lines("a\nb\nc\n", 2), "  b\n  c");
        assert_eq!(tail_lines("only", 5), "  only");
        assert_eq!(tail_lines("", 5), "");
        let dir = std::env::temp_dir().join(format!("bench-vs-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("x.log");
        let text: String = (0..5000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&log, text).unwrap();
        assert_eq!(log_tail(&log, 2), "  line 4998\n  line 4999");
        assert!(log_tail(&dir.join("missing.log"), 2).contains("cannot read it"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn executables_are_found_by_path_or_in_path() {
        assert_eq!(
            find_executable(Path::new("sh")).map(|p| p.is_file()),
            Some(true)
        );
        assert_eq!(
            find_executable(Path::new("/bin/sh")),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(find_executable(Path::new("/nonexistent/etcd")), None);
        assert_eq!(
            find_executable(Path::new("surely-no-such-program-here")),
            None
        );
        let e = ensure_etcd(Path::new("surely-no-such-program-here"), true).unwrap_err();
        assert!(e.to_string().contains("--etcd-bin"), "{e}");
        let e = ensure_etcd(Path::new("/nonexistent/etcd"), false).unwrap_err();
        assert!(e.to_string().contains("does not install"), "{e}");
    }
}
