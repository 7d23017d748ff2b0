//! `raftkv bench-vs`: raftkv side by side with etcd (or with another
//! raftkv configuration), on this machine, driven by one load generator.
//!
//! It installs Debian's `etcd-server` when `etcd` is missing (`apt-get`,
//! as root), starts a fresh 3-member etcd cluster and a fresh 3-node
//! raftkv cluster on loopback (data directories side by side in one work
//! directory, so on one disk; fsync on in both, every other setting the
//! default), waits until each has a leader and takes a write through
//! every member, warms each up, then for every connection count, every
//! placement (all connections on the leader, or spread over the members)
//! and every round runs system A then system B for the same duration
//! with [`crate::bench`]: writes only, the same value size, keys drawn
//! from the same key space, one connection per simulated client.
//!
//! Around each run it reads the CPU time (utime + stime in
//! `/proc/<pid>/stat`) of the measured system's server processes, so the
//! report gives server CPU per write; and the system's own counters of
//! snapshots and WAL fsyncs (`/metrics`), so a comparison of snapshot
//! settings shows how many snapshots each run took. One line is printed
//! per run as it ends; the [`Summary`] (all rounds of a connection count
//! and placement merged: writes/s, p50, p99, p99.9, CPU µs per write, and
//! the ratios A/B) is returned for the caller to print.
//!
//! ```text
//! raftkv bench-vs                                   # raftkv against etcd
//! raftkv bench-vs --connections 64 --rounds 5 --duration 30s
//! raftkv bench-vs --compare-raftkv "--snapshot-count 10000" "--snapshot-count 1000000"
//! ```
//!
//! Every process it started is stopped when it ends, fails, or receives
//! SIGINT, SIGTERM or SIGHUP (SIGTERM, then SIGKILL after
//! [`STOP_GRACE`]). The work directory is removed after a successful or
//! interrupted run unless `--keep`, and kept, with the servers' logs,
//! after a failure.

mod cluster;
mod stats;
mod table;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use self::cluster::{System, SystemKind, SystemSpec};
pub use self::stats::{
    Counters, clock_ticks_per_sec, cpu_model, parse_stat_cpu_ticks, parse_version, sum_metric,
};
pub use self::table::{GroupKey, RunResult, Summary, SystemTotals};
use crate::bench::{BenchArgs, BenchError, MAX_VALUE_SIZE, Target, parse_duration};

/// How long stopping servers get between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// One of the two systems of a comparison.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// System A (raftkv, or the first configuration of --compare-raftkv).
    A,
    /// System B (etcd, or the second configuration).
    B,
}

/// Where the clients of a run connect.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Placement {
    /// Every connection to the leader (found before each run).
    Leader,
    /// Connections round-robin over the three members; followers forward
    /// the writes to the leader.
    Spread,
}

impl Placement {
    /// `leader` or `spread`.
    pub fn name(self) -> &'static str {
        match self {
            Placement::Leader => "leader",
            Placement::Spread => "spread",
        }
    }

    /// How the report describes it.
    pub fn describe(self) -> &'static str {
        match self {
            Placement::Leader => "all on the leader",
            Placement::Spread => "spread over the members",
        }
    }
}

/// Command-line arguments of `raftkv bench-vs`.
#[derive(clap::Args, Debug, Clone)]
pub struct VersusArgs {
    /// Connection counts to measure, comma-separated; each connection is
    /// one client with one request outstanding.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    pub connections: Vec<usize>,
    /// Placements to measure, comma-separated: `leader` (every connection
    /// to the leader) and/or `spread` (round-robin over the members).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "leader,spread"
    )]
    pub placement: Vec<Placement>,
    /// Rounds per connection count and placement; each round runs system
    /// A, then system B.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Length of each run: 20s, 1m, 500ms.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unmeasured load on each system after it starts (64 connections,
    /// spread); 0s for none.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Idle time before each run, so the previous run's work settles.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub pause: Duration,
    /// Size in bytes of each written value.
    #[arg(long, default_value_t = 128)]
    pub value_size: usize,
    /// Number of distinct keys the writes are spread over (uniformly).
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// Per-request timeout.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Compare two raftkv configurations instead of raftkv and etcd: the
    /// extra server flags of A and of B, one argument each, split at
    /// whitespace ("" for the defaults), e.g. "--snapshot-count 10000"
    /// "--snapshot-count 1000000".
    #[arg(
        long,
        num_args = 2,
        value_names = ["FLAGS_A", "FLAGS_B"],
        allow_hyphen_values = true
    )]
    pub compare_raftkv: Option<Vec<String>>,
    /// Extra flags for every raftkv node (against etcd), split at
    /// whitespace, e.g. "--snapshot-count 100000".
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub raftkv_flags: String,
    /// Extra flags for every etcd member, split at whitespace.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub etcd_flags: String,
    /// The raftkv executable the nodes run [default: this one].
    #[arg(long)]
    pub raftkv_bin: Option<PathBuf>,
    /// With --compare-raftkv: the executable B's nodes run instead (an
    /// older build, say, to compare two versions in one run).
    #[arg(long, requires = "compare_raftkv")]
    pub raftkv_bin_b: Option<PathBuf>,
    /// Mutual TLS on the peer ports of these systems, comma-separated:
    /// `a`, `b` or both (against etcd, A is raftkv and B is etcd, whose
    /// members then use `--peer-cert-file` and `--peer-client-cert-auth`).
    /// Certificates are written fresh into each system's work directory.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub peer_tls: Vec<Side>,
    /// The etcd executable: a path, or a name looked up in PATH.
    #[arg(long, default_value = "etcd")]
    pub etcd_bin: PathBuf,
    /// Do not install Debian's etcd-server when etcd is missing.
    #[arg(long)]
    pub no_install: bool,
    /// Where the work directory (data and logs of both clusters) is made
    /// [default: the system's temporary directory].
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Keep the work directory after a successful run.
    #[arg(long)]
    pub keep: bool,
    /// Peer port of raftkv node 1; node i uses base + (i-1)*10000 and the
    /// next port for clients. With --compare-raftkv, B uses base + 1000.
    #[arg(long, default_value_t = 12379)]
    pub raftkv_base_port: u16,
    /// Client port of etcd member 1; member i uses base + (i-1)*10000 and
    /// the next port for peers (not etcd's usual 2379, where a packaged
    /// etcd service may listen).
    #[arg(long, default_value_t = 14379)]
    pub etcd_base_port: u16,
}

/// Why `raftkv bench-vs` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VersusError {
    /// The arguments are invalid.
    #[error("invalid arguments: {0}")]
    InvalidArgs(String),
    /// A debug build would measure the generator's and raftkv's debug code.
    #[error(
        "this is a debug build, whose load generator and raftkv nodes are far slower than a \
         release build: run `cargo run --release -p raftkv -- bench-vs`"
    )]
    DebugBuild,
    /// etcd is missing and could not be installed.
    #[error("etcd: {0}")]
    Etcd(String),
    /// The work directory could not be made or used.
    #[error("work directory {}: {source}", path.display())]
    WorkDir {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The certificates of `--peer-tls` could not be written.
    #[error("{system}: peer certificates: {source}")]
    Certs {
        /// The system's label.
        system: String,
        /// The underlying error.
        #[source]
        source: crate::launcher::LauncherError,
    },
    /// A server process could not be started.
    #[error("cannot start {what}: {source}")]
    Spawn {
        /// Which process (`etcd m2`, `raftkv node 1`).
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A system did not become ready.
    #[error("{system} not ready after {after:?}: {detail}")]
    NotReady {
        /// The system's label.
        system: String,
        /// How long it was given.
        after: Duration,
        /// The last problem seen.
        detail: String,
    },
    /// A server process exited while it was needed.
    #[error("{what} exited ({status}); its log {} ends:\n{tail}", log.display())]
    Exited {
        /// Which process.
        what: String,
        /// Its exit status.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// CPU time could not be read.
    #[error("cannot read the CPU time of {what}: {detail}")]
    Cpu {
        /// Which process.
        what: String,
        /// What went wrong.
        detail: String,
    },
    /// A run could not be made.
    #[error("{system}: {source}")]
    Bench {
        /// The system's label.
        system: String,
        /// The underlying error.
        #[source]
        source: BenchError,
    },
    /// Signal handling could not be set up.
    #[error("cannot handle signals: {0}")]
    Signals(#[source] std::io::Error),
    /// A signal ended the run.
    #[error("{0} received: servers stopped")]
    Interrupted(&'static str),
}

/// The two systems of a comparison, A first.
fn specs(args: &VersusArgs) -> Vec<SystemSpec> {
    let flags = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    match &args.compare_raftkv {
        Some(pair) => [Side::A, Side::B]
            .into_iter()
            .zip(pair)
            .enumerate()
            .map(|(i, (side, f))| SystemSpec {
                label: format!("raftkv {side:?}"),
                kind: SystemKind::Raftkv {
                    base_port: args.raftkv_base_port.saturating_add(1000 * i as u16),
                },
                flags: flags(f),
                peer_tls: args.peer_tls.contains(&side),
            })
            .collect(),
        None => vec![
            SystemSpec {
                label: "raftkv".into(),
                kind: SystemKind::Raftkv {
                    base_port: args.raftkv_base_port,
                },
                flags: flags(&args.raftkv_flags),
                peer_tls: args.peer_tls.contains(&Side::A),
            },
            SystemSpec {
                label: "etcd".into(),
                kind: SystemKind::Etcd {
                    base_port: args.etcd_base_port,
                },
                flags: flags(&args.etcd_flags),
                peer_tls: args.peer_tls.contains(&Side::B),
            },
        ],
    }
}

impl VersusArgs {
    /// Checks the arguments: connection counts from 1, rounds from 1,
    /// non-zero duration and timeout, a value size the servers accept, at
    /// least one key, extra flags that do not set what `bench-vs` sets
    /// itself, and ports that fit and do not overlap.
    ///
    /// # Errors
    /// [`VersusError::InvalidArgs`] saying what is wrong.
    pub fn validate(&self) -> Result<(), VersusError> {
        let invalid = |msg: String| Err(VersusError::InvalidArgs(msg));
        if self.connections.is_empty() || self.connections.contains(&0) {
            return invalid("--connections needs counts of at least 1, like 1,16,64,256".into());
        }
        if self.placement.is_empty() {
            return invalid("--placement needs leader, spread or both".into());
        }
        if self.rounds == 0 {
            return invalid("--rounds must be at least 1".into());
        }
        if self.duration.is_zero() {
            return invalid("--duration must be more than 0".into());
        }
        if self.timeout.is_zero() {
            return invalid("--timeout must be more than 0".into());
        }
        if self.keys == 0 {
            return invalid("--keys must be at least 1".into());
        }
        if self.value_size > MAX_VALUE_SIZE {
            return invalid(format!(
                "--value-size {} exceeds raftkv's limit of {MAX_VALUE_SIZE} bytes",
                self.value_size
            ));
        }
        if self.compare_raftkv.is_some()
            && (!self.raftkv_flags.trim().is_empty() || !self.etcd_flags.trim().is_empty())
        {
            return invalid(
                "--compare-raftkv takes each configuration's flags; --raftkv-flags and \
                 --etcd-flags are for the comparison with etcd"
                    .into(),
            );
        }
        let mut taken: Vec<(u16, String)> = Vec::new();
        for spec in specs(self) {
            spec.check_flags().map_err(VersusError::InvalidArgs)?;
            for port in spec.ports().map_err(VersusError::InvalidArgs)? {
                if let Some((_, other)) = taken.iter().find(|(p, _)| *p == port) {
                    return invalid(format!(
                        "port {port} would be used by both {other} and {}: change \
                         --raftkv-base-port or --etcd-base-port",
                        spec.label
                    ));
                }
                taken.push((port, spec.label.clone()));
            }
        }
        Ok(())
    }

    fn needs_etcd(&self) -> bool {
        self.compare_raftkv.is_none()
    }
}

/// The work directory: made fresh, removed on drop unless kept.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    fn create(parent: Option<&Path>) -> Result<WorkDir, VersusError> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let path = parent.join(format!("raftkv-bench-vs-{stamp}-{}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|source| VersusError::WorkDir {
            path: path.clone(),
            source,
        })?;
        Ok(WorkDir { path, keep: false })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Runs the comparison `args` describes: prints a header and one line per
/// run to stdout (setup notes to stderr) and returns the [`Summary`],
/// which the caller prints. Blocks on child processes while stopping
/// them; run it on a multi-threaded runtime.
///
/// # Errors
/// See [`VersusError`]. On SIGINT, SIGTERM or SIGHUP it stops the servers
/// and returns [`VersusError::Interrupted`].
pub async fn run(args: VersusArgs) -> Result<Summary, VersusError> {
    args.validate()?;
    if cfg!(debug_assertions) {
        return Err(VersusError::DebugBuild);
    }
    let mut signals = Signals::new()?;
    let mut work = WorkDir::create(args.work_dir.as_deref())?;
    work.keep = args.keep;
    let result = tokio::select! {
        r = run_in(&args, &work.path) => r,
        name = signals.recv() => Err(VersusError::Interrupted(name)),
    };
    // The systems are dropped, their processes stopped, by now.
    match &result {
        Err(VersusError::Interrupted(_)) | Ok(_) if !args.keep => {}
        Err(_) => {
            work.keep = true;
            eprintln!(
                "bench-vs: kept the data and logs in {}",
                work.path.display()
            );
        }
        Ok(_) => eprintln!("bench-vs: data and logs kept in {}", work.path.display()),
    }
    result
}

/// SIGINT, SIGTERM and SIGHUP.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals, VersusError> {
        use tokio::signal::unix::{SignalKind, signal};
        let make = |kind| signal(kind).map_err(VersusError::Signals);
        Ok(Signals {
            int: make(SignalKind::interrupt())?,
            term: make(SignalKind::terminate())?,
            hup: make(SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

async fn run_in(args: &VersusArgs, work: &Path) -> Result<Summary, VersusError> {
    let raftkv_bin = match &args.raftkv_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|e| VersusError::Spawn {
            what: "raftkv (the path of this executable is unknown)".into(),
            source: e,
        })?,
    };
    let etcd_bin = if args.needs_etcd() {
        Some(cluster::ensure_etcd(&args.etcd_bin, args.no_install)?)
    } else {
        None
    };
    let specs = specs(args);
    print_header(args, &specs, &raftkv_bin, etcd_bin.as_deref(), work);

    let mut systems = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let bin = match spec.kind {
            SystemKind::Raftkv { .. } if i == 1 => {
                args.raftkv_bin_b.as_deref().unwrap_or(raftkv_bin.as_path())
            }
            SystemKind::Raftkv { .. } => raftkv_bin.as_path(),
            SystemKind::Etcd { .. } => etcd_bin.as_deref().unwrap_or(Path::new("etcd")),
        };
        let system = System::start(spec, bin, work)?;
        systems.push(system);
    }
    for system in &mut systems {
        system.wait_ready(Duration::from_secs(30)).await?;
        if !args.warmup.is_zero() {
            let r = system
                .measure(args, 64, Placement::Spread, args.warmup)
                .await?;
            eprintln!(
                "bench-vs: warmed up {} for {:?}: {:.0} writes/s, {} errors",
                system.label(),
                args.warmup,
                r.report.writes_per_sec(),
                r.report.total_errors()
            );
        }
    }
    println!();

    let labels: Vec<String> = systems.iter().map(|s| s.label().to_string()).collect();
    let mut summary = Summary::new(labels, args.rounds, args.duration);
    for &connections in &args.connections {
        for &placement in &args.placement {
            for round in 1..=args.rounds {
                for (index, system) in systems.iter_mut().enumerate() {
                    tokio::time::sleep(args.pause).await;
                    let result = system
                        .measure(args, connections, placement, args.duration)
                        .await?;
                    println!(
                        "{}",
                        result.line(
                            &GroupKey {
                                connections,
                                placement
                            },
                            round,
                            args.rounds
                        )
                    );
                    summary.add(
                        GroupKey {
                            connections,
                            placement,
                        },
                        index,
                        result,
                    );
                }
            }
        }
    }
    println!();
    Ok(summary)
}

/// Prints what is compared, on what, and how.
fn print_header(
    args: &VersusArgs,
    specs: &[SystemSpec],
    raftkv_bin: &Path,
    etcd_bin: Option<&Path>,
    work: &Path,
) {
    let what = match &args.compare_raftkv {
        Some(_) => "two raftkv configurations",
        None => "raftkv against etcd",
    };
    println!("bench-vs: {what}, 3 members each on loopback, fsync on, otherwise default settings");
    println!("machine: {}", stats::machine_summary());
    println!(
        "raftkv: {} ({})",
        stats::version_of(raftkv_bin, Target::Raftkv),
        raftkv_bin.display()
    );
    if let Some(b) = &args.raftkv_bin_b {
        println!(
            "raftkv B: {} ({})",
            stats::version_of(b, Target::Raftkv),
            b.display()
        );
    }
    if let Some(etcd) = etcd_bin {
        println!(
            "etcd: {} ({}), driven through its v3 JSON gateway",
            stats::version_of(etcd, Target::Etcd),
            etcd.display()
        );
    }
    for spec in specs {
        println!("{}", spec.describe());
    }
    let groups = args.connections.len() * args.placement.len();
    let runs = groups as u32 * args.rounds * specs.len() as u32;
    let total = (args.duration + args.pause) * runs + args.warmup * specs.len() as u32;
    let counts: Vec<String> = args.connections.iter().map(usize::to_string).collect();
    let placements: Vec<&str> = args.placement.iter().map(|p| p.name()).collect();
    println!(
        "load: writes of {}-byte values over {} keys; connections {}; placement {}; \
         {} round(s) of {:?} per system, A then B; warm-up {:?} each; about {} min",
        args.value_size,
        args.keys,
        counts.join(","),
        placements.join(","),
        args.rounds,
        args.duration,
        args.warmup,
        total.as_secs().div_ceil(60),
    );
    println!("data: {} (one filesystem for both)", work.display());
    if let Some(others) = stats::other_servers() {
        println!("note: other server processes share this machine (not measured): {others}");
    }
}

/// The arguments of one run of the generator.
fn bench_args(
    args: &VersusArgs,
    target: Target,
    endpoints: Vec<String>,
    connections: usize,
    duration: Duration,
) -> BenchArgs {
    BenchArgs {
        endpoints,
        target,
        leader: false,
        clients: connections,
        duration,
        value_size: args.value_size,
        reads: 0.0,
        keys: args.keys,
        timeout: args.timeout,
        quiet: true,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: VersusArgs,
    }

    fn parse(args: &[&str]) -> Result<VersusArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench-vs").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn defaults_are_the_issue_s_comparison() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.connections, [1, 16, 64, 256]);
        assert_eq!(a.placement, [Placement::Leader, Placement::Spread]);
        assert_eq!(a.rounds, 3);
        assert_eq!(a.duration, Duration::from_secs(20));
        assert_eq!(a.warmup, Duration::from_secs(5));
        assert_eq!((a.value_size, a.keys), (128, 10_000));
        assert!(a.compare_raftkv.is_none());
        assert_eq!(a.etcd_bin, PathBuf::from("etcd"));
        a.validate().unwrap();
        let s = specs(&a);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].label.as_str(), s[1].label.as_str()),
            ("raftkv", "etcd")
        );
        assert!(s.iter().all(|s| s.flags.is_empty()));
        assert_eq!(
            s[0].ports().unwrap(),
            [12379, 12380, 22379, 22380, 32379, 32380]
        );
        assert_eq!(
            s[1].ports().unwrap(),
            [14379, 14380, 24379, 24380, 34379, 34380]
        );
    }

    #[test]
    fn two_raftkv_configurations_get_their_flags_and_ports() {
        let a = parse(&[
            "--compare-raftkv",
            "--snapshot-count 10000",
            "--snapshot-count   1000000 --tick-ms 100",
            "--connections=16,64",
            "--placement",
            "leader",
            "--rounds=1",
            "--duration=3s",
        ])
        .unwrap();
        a.validate().unwrap();
        assert_eq!(a.connections, [16, 64]);
        assert_eq!(a.placement, [Placement::Leader]);
        let s = specs(&a);
        assert_eq!(
            (s[0].label.as_str(), s[1].label.as_str()),
            ("raftkv A", "raftkv B")
        );
        assert_eq!(s[0].flags, ["--snapshot-count", "10000"]);
        assert_eq!(
            s[1].flags,
            ["--snapshot-count", "1000000", "--tick-ms", "100"]
        );
        assert_eq!(s[1].ports().unwrap()[0], 13379);
        assert!(!a.needs_etcd());
        let d = parse(&["--compare-raftkv", "", ""]).unwrap();
        d.validate().unwrap();
        assert!(specs(&d).iter().all(|s| s.flags.is_empty()));
        assert!(parse(&["--compare-raftkv", "--snapshot-count 1"]).is_err());
        let a = parse(&[
            "--raftkv-flags=--snapshot-count 100000",
            "--etcd-flags",
            "--snapshot-count 10000",
        ])
        .unwrap();
        a.validate().unwrap();
        assert_eq!(specs(&a)[1].flags, ["--snapshot-count", "10000"]);
    }

    #[test]
    fn peer_tls_gives_the_named_systems_https_peers_and_their_certificates() {
        let a = parse(&["--peer-tls", "a,b"]).unwrap();
        a.validate().unwrap();
        let s = specs(&a);
        assert!(s[0].peer_tls && s[1].peer_tls);
        let dir = Path::new("/w");
        let line = |spec: &SystemSpec| -> Vec<String> {
            let (_, argv) = spec.command_lines(dir).unwrap().remove(1);
            argv.iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let raftkv = line(&s[0]);
        let at = raftkv.iter().position(|a| a == "--peer-cert").unwrap();
        assert_eq!(raftkv[at + 1], "/w/tls/node-2.pem");
        assert!(raftkv.iter().any(|a| a.contains("https://127.0.0.1:22379")));
        let etcd = line(&s[1]);
        assert!(etcd.contains(&"--peer-client-cert-auth".to_string()));
        assert!(etcd.contains(&"https://127.0.0.1:24380".to_string()));
        let at = etcd.iter().position(|a| a == "--peer-key-file").unwrap();
        assert_eq!(etcd[at + 1], "/w/tls/node-2-key.pem");

        let b = parse(&["--compare-raftkv", "", "", "--peer-tls", "b"]).unwrap();
        let s = specs(&b);
        assert!(!s[0].peer_tls && s[1].peer_tls);
        assert!(!line(&s[0]).iter().any(|a| a.starts_with("--peer-")));
        assert!(s[1].describe().contains("mutual TLS"));
        let c = parse(&["--peer-tls", "a", "--raftkv-flags", "--peer-ca /x"]).unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("--peer-ca"));
        assert!(parse(&["--peer-tls", "c"]).is_err());
    }

    #[test]
    fn invalid_arguments_are_explained() {
        for (args, needle) in [
            (&["--connections", "0"][..], "--connections"),
            (&["--rounds", "0"], "--rounds"),
            (&["--duration", "0s"], "--duration"),
            (&["--timeout", "0s"], "--timeout"),
            (&["--keys", "0"], "--keys"),
            (&["--value-size", "1048577"], "--value-size"),
            (
                &["--compare-raftkv", "", "", "--etcd-flags", "-x"],
                "--compare-raftkv",
            ),
            (&["--raftkv-flags", "--port 1"], "--port is set by bench-vs"),
            (
                &["--raftkv-flags", "--data-dir=/x"],
                "--data-dir is set by bench-vs",
            ),
            (
                &["--etcd-flags", "--listen-client-urls http://x:1"],
                "--listen-client-urls",
            ),
            (&["--etcd-flags", "--name=x"], "--name"),
            (
                &["--etcd-base-port", "22379"],
                "port 22379 would be used by both raftkv and etcd",
            ),
            (&["--etcd-base-port", "50000"], "beyond 65535"),
            (
                &["--compare-raftkv", "", "", "--raftkv-base-port", "60000"],
                "beyond 65535",
            ),
        ] {
            let e = match parse(args) {
                Ok(a) => a.validate().unwrap_err().to_string(),
                Err(e) => panic!("{args:?}: {e}"),
            };
            assert!(
                e.contains(needle),
                "{args:?}: {e:?} should mention {needle:?}"
            );
        }
        assert!(parse(&["--placement", "nearest"]).is_err());
        assert!(parse(&["--connections", "x"]).is_err());
    }

    #[test]
    fn a_work_directory_goes_away_unless_kept() {
        let parent = std::env::temp_dir();
        let w = WorkDir::create(Some(&parent)).unwrap();
        let path = w.path.clone();
        assert!(path.is_dir());
        drop(w);
        assert!(!path.exists());
        let mut w = WorkDir::create(Some(&parent)).unwrap();
        w.keep = true;
        let path = w.path.clone();
        drop(w);
        assert!(path.is_dir());
        std::fs::remove_dir_all(path).unwrap();
    }
}
