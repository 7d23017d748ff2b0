//! `raftkv faults`: a Jepsen-style fault test of a real `raftkv` cluster,
//! checked for linearizability.
//!
//! [`main`] moves the process into a private network namespace (see
//! [`net`]), starts a 3- or 5-node cluster there, one process per node on
//! its own loopback address, and runs, for `--duration`:
//!
//! - a [`workload`]: concurrent clients issuing PUTs of unique values and
//!   linearizable GETs on a few keys, to random members, every operation
//!   recorded in a [`history`];
//! - a [`nemesis`]: one fault at a time, each healed and followed by a
//!   recovery period: SIGKILL of a random node or the leader and restart,
//!   SIGSTOP/SIGCONT, a node or the leader cut off from the majority,
//!   one-way partitions, packet loss on a link, removal of a member and
//!   addition of a fresh one.
//!
//! Then it heals everything, waits for every member to apply the same
//! log, reads every key through every member, and [`checker`] checks the
//! history: linearizable per key, no value read that was never written, no
//! acknowledged write lost. As a check of the checker, it also verifies
//! that the same history with one injected stale read is rejected.
//!
//! On failure it keeps the run directory: `history.txt` (one operation per
//! line: `client op key value invoke_ns return_ns outcome`),
//! `errors.txt` (each failed operation with the error the client saw),
//! `schedule.txt`, and every node's log, and prints their paths, the
//! nemesis schedule and the seed to replay the fault schedule with.
//!
//! Exit codes: 0 the run passed, 1 it found an anomaly or the cluster
//! failed to recover, 2 bad arguments, [`EXIT_UNSUPPORTED`] this machine
//! cannot run it (not root, no `ip` or `nft`).

mod certs;
pub mod checker;
pub mod cluster;
pub mod delay;
pub mod history;
pub mod nemesis;
pub mod net;
pub mod power;
pub mod workload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use self::checker::{CheckOptions, CheckReport};
use self::cluster::{Cluster, ClusterError, NodeSettings, endpoint};
use self::history::{Op, OpKind, Outcome, Recorder};
use self::nemesis::{FaultKind, Nemesis, Schedule};
use crate::client::Client;

/// Exit code of `raftkv faults` on a machine that cannot run it.
pub const EXIT_UNSUPPORTED: u8 = 77;

/// Command-line arguments of `raftkv faults`.
#[derive(clap::Args, Debug, Clone)]
pub struct FaultsArgs {
    /// Founding members: 3 or 5.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// How long the nemesis injects faults, e.g. 90s, 10m, 1h.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Seed of the fault schedule and the clients' choices [default:
    /// random, printed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 12)]
    pub clients: u32,
    /// Keys the clients use.
    #[arg(long, default_value_t = 8)]
    pub keys: usize,
    /// Share of operations that are linearizable reads.
    #[arg(long, default_value_t = 0.5)]
    pub read_ratio: f64,
    /// Share of the reads that are serializable (`?serializable`, served by
    /// the member from its own state): checked for values never written
    /// and for a member going back in time, not for linearizability.
    #[arg(long, default_value_t = 0.2)]
    pub serializable_ratio: f64,
    /// Share of the writes that are compare-and-swaps (from the value the
    /// client last saw for the key; a put when it has seen none).
    #[arg(long, default_value_t = 0.25)]
    pub cas_ratio: f64,
    /// Share of the writes that are deletes.
    #[arg(long, default_value_t = 0.1)]
    pub delete_ratio: f64,
    /// Fault kinds to inject, comma-separated [default: all, the disk
    /// kinds only with --power-loss-fs]: kill-random, kill-leader, pause,
    /// partition-one, partition-leader, one-way, packet-loss, delay, membership,
    /// kill-all, partition-kill, membership-kill, power-loss,
    /// power-loss-all, disk-full, fsync-error, slow-disk.
    #[arg(long, value_delimiter = ',', value_parser = parse_kind)]
    pub faults: Vec<FaultKind>,
    /// Directory for the run's data, logs and history [default: a new
    /// directory under the system's temp dir]. Kept on failure, removed
    /// after a passing run unless --keep.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the run directory even when the run passes.
    #[arg(long)]
    pub keep: bool,
    /// The raftkv executable the nodes run [default: this one].
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// `--snapshot-count` of the nodes: small, so snapshots, compaction and
    /// catch-up by snapshot happen during the run.
    #[arg(long, default_value_t = 300)]
    pub snapshot_count: u64,
    /// `--log` filter of the nodes.
    #[arg(long, default_value = "info")]
    pub log: String,
    /// Mutual TLS on the peer ports, with certificates made for the run.
    #[arg(long)]
    pub tls: bool,
    /// `--read-mode` of the nodes: `lease` serves the clients'
    /// linearizable reads from the leader's lease (list `pause` more than
    /// once in --faults to weight leader pauses up).
    #[arg(long, value_enum, default_value_t = ReadMode::Index)]
    pub read_mode: ReadMode,
    /// Node 1 ticks every this many milliseconds instead of every 25: its
    /// clock runs slower, as a throttled machine's would. With
    /// `--read-mode lease` it checks the lease's drift bound (raftkv's
    /// `--max-clock-drift`, 10% by default: up to 27 ms stays within it).
    #[arg(long)]
    pub slow_tick_ms: Option<u64>,
    /// The `powerloss-fs` executable (`cargo build -p powerloss-fs`): each
    /// node's data directory becomes a mount of it, and the power-loss
    /// faults drop whatever a node did not fsync. Needs /dev/fuse.
    #[arg(long)]
    pub power_loss_fs: Option<PathBuf>,
}

/// How the nodes confirm linearizable reads: `--read-mode`, passed on to
/// each node as its own `--read-mode index` or `--read-mode lease`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadMode {
    /// ReadIndex: a heartbeat round with a quorum per batch of reads.
    Index,
    /// The leader's lease: no round trip.
    Lease,
}

fn parse_kind(s: &str) -> Result<FaultKind, String> {
    FaultKind::ALL
        .into_iter()
        .find(|k| k.name() == s)
        .ok_or_else(|| {
            let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown fault {s:?}; one of {}", names.join(", "))
        })
}

/// Parses `90s`, `10m`, `1h`, `500ms` or a number of seconds.
///
/// # Errors
/// A message saying what is wrong.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 10m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "ms" => return Ok(Duration::from_millis(n)),
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    Ok(Duration::from_secs(secs))
}

/// Why a fault run could not be carried out or did not pass.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FaultsError {
    /// The arguments cannot work.
    #[error("invalid arguments: {0}")]
    Args(String),
    /// This machine cannot run the test.
    #[error("cannot run the fault test here: {0}")]
    Unsupported(String),
    /// Setting up the run failed.
    #[error("setting up the run: {0}")]
    Setup(String),
    /// The cluster misbehaved: a node died, or it did not recover.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The nemesis failed.
    #[error(transparent)]
    Nemesis(#[from] nemesis::NemesisError),
}

/// What a finished run measured.
#[derive(Debug)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// Every operation.
    pub ops: Vec<Op>,
    /// What the nemesis did.
    pub schedule: Schedule,
    /// The checker's findings.
    pub check: CheckReport,
    /// Whether the checker rejected the history with an injected stale read
    /// (`None`: no place to inject one).
    pub stale_read_rejected: Option<bool>,
    /// How long the run took.
    pub elapsed: Duration,
    /// Disagreements between members in the final reads.
    pub divergence: Vec<String>,
}

impl RunReport {
    /// Whether the run found nothing wrong.
    pub fn passed(&self) -> bool {
        self.check.is_valid()
            && self.divergence.is_empty()
            && self.stale_read_rejected != Some(false)
    }

    /// A human-readable summary: operations by kind and outcome, faults by
    /// kind, anomalies.
    pub fn summary(&self) -> String {
        let mut by: BTreeMap<(String, String), u64> = BTreeMap::new();
        for op in &self.ops {
            *by.entry((op.kind.to_string(), op.outcome.to_string()))
                .or_default() += 1;
        }
        let mut s = format!(
            "seed {}: {} operations in {:.1}s (",
            self.seed,
            self.ops.len(),
            self.elapsed.as_secs_f64()
        );
        let parts: Vec<String> = by
            .iter()
            .map(|((k, o), n)| format!("{k} {o}: {n}"))
            .collect();
        s.push_str(&parts.join(", "));
        s.push_str(&format!(
            ")\nlinearizability: {} keys, {} operations checked, {} search steps\nfaults:",
            self.check.keys, self.check.checked, self.check.steps
        ));
        let total: u64 = self.schedule.counts.values().sum();
        for (k, n) in &self.schedule.counts {
            s.push_str(&format!(" {k} {n},"));
        }
        s.push_str(&format!(" total {total}\n"));
        match self.stale_read_rejected {
            Some(true) => {
                s.push_str("self-check: the history with one injected stale read is rejected\n")
            }
            Some(false) => s.push_str(
                "self-check FAILED: the history with an injected stale read was accepted\n",
            ),
            None => s.push_str("self-check: no place to inject a stale read\n"),
        }
        if self.check.anomalies.is_empty() && self.divergence.is_empty() {
            s.push_str("anomalies: none\n");
        } else {
            s.push_str(&format!(
                "anomalies: {}\n",
                self.check.anomalies.len() + self.divergence.len()
            ));
            for a in &self.check.anomalies {
                s.push_str(&format!("  {a}\n"));
            }
            for d in &self.divergence {
                s.push_str(&format!("  {d}\n"));
            }
        }
        s
    }
}

/// Entry point of `raftkv faults`: enters a private network namespace,
/// runs, prints the report, and returns the exit code (see the module
/// docs).
pub fn main(args: FaultsArgs) -> ExitCode {
    if let Err(e) = validate(&args) {
        eprintln!("raftkv faults: {e}");
        return ExitCode::from(2);
    }
    // Before any thread exists: the namespace is per thread.
    if let Err(e) = net::enter_private_netns() {
        eprintln!("raftkv faults: {e}");
        return match e {
            net::NetError::Unsupported(_) => ExitCode::from(EXIT_UNSUPPORTED),
            _ => ExitCode::FAILURE,
        };
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("raftkv faults: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run_and_report(args))
}

fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Fold the clock and the pid; a seed only needs to differ between runs.
    (nanos as u64 ^ (nanos >> 64) as u64 ^ u64::from(std::process::id()).rotate_left(32))
        % 1_000_000_000
}

fn validate(args: &FaultsArgs) -> Result<(), FaultsError> {
    if args.nodes != 3 && args.nodes != 5 {
        return Err(FaultsError::Args("--nodes must be 3 or 5".into()));
    }
    if args.slow_tick_ms == Some(0) {
        return Err(FaultsError::Args(
            "--slow-tick-ms must be at least 1".into(),
        ));
    }
    if args.clients == 0 || args.keys == 0 {
        return Err(FaultsError::Args(
            "--clients and --keys must be at least 1".into(),
        ));
    }
    if !(0.0..=1.0).contains(&args.read_ratio) || !(0.0..=1.0).contains(&args.serializable_ratio) {
        return Err(FaultsError::Args(
            "--read-ratio and --serializable-ratio must be in [0, 1]".into(),
        ));
    }
    let writes = [args.cas_ratio, args.delete_ratio];
    if !writes.iter().all(|r| (0.0..=1.0).contains(r)) || writes.iter().sum::<f64>() > 1.0 {
        return Err(FaultsError::Args(
            "--cas-ratio and --delete-ratio must be in [0, 1], and together at most 1".into(),
        ));
    }
    if args.power_loss_fs.is_none()
        && let Some(k) = args.faults.iter().find(|k| k.cuts_power())
    {
        return Err(FaultsError::Args(format!(
            "{k} needs --power-loss-fs (cargo build -p powerloss-fs)"
        )));
    }
    if let Some(fs) = &args.power_loss_fs
        && !fs.is_file()
    {
        return Err(FaultsError::Args(format!(
            "--power-loss-fs {}: no such file (cargo build -p powerloss-fs)",
            fs.display()
        )));
    }
    Ok(())
}

async fn run_and_report(args: FaultsArgs) -> ExitCode {
    let seed = args.seed.unwrap_or_else(random_seed);
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("raftkv-faults-{seed}-{}", std::process::id()))
    });
    // The flags that shape the run beyond the counts, for the replay line.
    let mut flags = if args.tls { " --tls" } else { "" }.to_string();
    if !args.faults.is_empty() {
        let names: Vec<&str> = args.faults.iter().map(|k| k.name()).collect();
        flags.push_str(&format!(" --faults {}", names.join(",")));
    }
    if let Some(fs) = &args.power_loss_fs {
        flags.push_str(&format!(" --power-loss-fs {}", fs.display()));
    }
    if args.read_mode == ReadMode::Lease {
        flags.push_str(" --read-mode lease");
    }
    if let Some(ms) = args.slow_tick_ms {
        flags.push_str(&format!(" --slow-tick-ms {ms}"));
    }
    println!(
        "raftkv faults: {} nodes{flags}, {} clients, {} keys, {:?} of faults, seed {seed}; run directory {}",
        args.nodes,
        args.clients,
        args.keys,
        args.duration,
        dir.display()
    );
    println!(
        "replay the fault schedule: raftkv faults --nodes {} --clients {} --keys {} --duration {}s{flags} --seed {seed}",
        args.nodes,
        args.clients,
        args.keys,
        args.duration.as_secs()
    );
    let (report, error) = run(&args, seed, dir.clone()).await;
    if let Some(r) = &report {
        print!("{}", r.summary());
        let _ = std::fs::write(dir.join("schedule.txt"), r.schedule.to_string());
    }
    if let Some(e) = &error {
        eprintln!("raftkv faults: FAILED: {e}");
    }
    let passed = error.is_none() && report.as_ref().is_some_and(RunReport::passed);
    if passed {
        if args.keep {
            println!(
                "PASSED (seed {seed}); run directory kept: {}",
                dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&dir);
            println!("PASSED (seed {seed})");
        }
        return ExitCode::SUCCESS;
    }
    if let Some(r) = &report {
        eprintln!("nemesis schedule (seed {seed}):\n{}", r.schedule);
    }
    eprintln!(
        "FAILED (seed {seed}): history in {}, client errors in {}, schedule in {}, node logs in {}",
        dir.join("history.txt").display(),
        dir.join("errors.txt").display(),
        dir.join("schedule.txt").display(),
        dir.display()
    );
    ExitCode::FAILURE
}

/// Runs one fault test with `seed` in `dir` (which it creates). Returns
/// the report if the run got as far as checking, and the error that cut
/// it short, if any; the history is written to `dir/history.txt` either
/// way.
pub async fn run(
    args: &FaultsArgs,
    seed: u64,
    dir: PathBuf,
) -> (Option<RunReport>, Option<FaultsError>) {
    match run_inner(args, seed, dir).await {
        Ok((report, err)) => (Some(report), err),
        Err(e) => (None, Some(e)),
    }
}

async fn run_inner(
    args: &FaultsArgs,
    seed: u64,
    dir: PathBuf,
) -> Result<(RunReport, Option<FaultsError>), FaultsError> {
    let started = Instant::now();
    let mut cluster = start_cluster(args, &dir).await?;
    let recorder = Recorder::new();
    let targets = Arc::new(RwLock::new(cluster.members().to_vec()));
    let stop = Arc::new(AtomicBool::new(false));
    let workload = workload::Workload {
        clients: args.clients,
        keys: args.keys,
        read_ratio: args.read_ratio,
        serializable_ratio: args.serializable_ratio,
        cas_ratio: args.cas_ratio,
        delete_ratio: args.delete_ratio,
        timeout: Duration::from_secs(3),
        seed,
    };
    let clients = tokio::spawn(workload::run(
        workload,
        Arc::clone(&targets),
        recorder.clone(),
        Arc::clone(&stop),
    ));
    let kinds = if args.faults.is_empty() {
        let power = args.power_loss_fs.is_some();
        FaultKind::ALL
            .into_iter()
            .filter(|k| power || !k.cuts_power())
            .collect()
    } else {
        args.faults.clone()
    };
    let mut nemesis = Nemesis::new(&mut cluster, targets, seed, recorder.start(), kinds);
    let nemesis_result = nemesis.run(args.duration).await;
    let schedule = nemesis.schedule.clone();
    drop(nemesis);

    // Heal everything while the clients still run, then stop them.
    let mut error: Option<FaultsError> = nemesis_result.err().map(FaultsError::from);
    if let Err(e) = net::heal() {
        error.get_or_insert(FaultsError::Setup(format!("healing the network: {e}")));
    }
    if let Err(e) = cluster.revive_all() {
        error.get_or_insert(e.into());
    }
    stop.store(true, Ordering::Relaxed);
    let _ = clients.await;

    // Converge, then read every key through every member.
    let mut divergence = Vec::new();
    let mut final_values = BTreeMap::new();
    match cluster.wait_healthy(nemesis::RECOVERY_DEADLINE, true).await {
        Ok(_) => {
            let (values, diffs) = final_reads(&cluster, &recorder, args).await;
            final_values = values;
            divergence = diffs;
        }
        Err(e) => {
            error.get_or_insert(e.into());
        }
    }
    let starts = process_starts(&cluster, &recorder);
    drop(cluster);
    let ops = recorder.snapshot();
    write_run_files(&dir, &ops, &recorder);
    let opts = CheckOptions {
        final_values,
        starts,
        ..CheckOptions::default()
    };
    let (check, stale_read_rejected) = check_history(&ops, &opts);
    Ok((
        RunReport {
            seed,
            ops,
            schedule,
            check,
            stale_read_rejected,
            elapsed: started.elapsed(),
            divergence,
        },
        error,
    ))
}

/// Starts the founding members from `dir` and waits until they serve.
async fn start_cluster(args: &FaultsArgs, dir: &Path) -> Result<Cluster, FaultsError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| FaultsError::Setup(format!("creating {}: {e}", dir.display())))?;
    let bin = match &args.bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()
            .map_err(|e| FaultsError::Setup(format!("cannot find this executable: {e}")))?,
    };
    let settings = NodeSettings {
        snapshot_count: args.snapshot_count,
        node_1_tick_ms: args.slow_tick_ms,
        log: args.log.clone(),
        tls: args.tls,
        power_loss_fs: args.power_loss_fs.clone(),
        read_mode: match args.read_mode {
            ReadMode::Index => "index".into(),
            ReadMode::Lease => "lease".into(),
        },
        ..NodeSettings::default()
    };
    let cluster = Cluster::start(bin, dir.to_path_buf(), args.nodes, settings)?;
    cluster
        .wait_healthy(nemesis::RECOVERY_DEADLINE, false)
        .await?;
    Ok(cluster)
}

/// Writes history.txt (every operation) and errors.txt (why each failed
/// one failed) into the run directory; a failure to write is reported and
/// does not stop the run.
fn write_run_files(dir: &Path, ops: &[Op], recorder: &Recorder) {
    let history_path = dir.join("history.txt");
    if let Err(e) = history::write_history(&history_path, ops) {
        eprintln!("cannot write {}: {e}", history_path.display());
    }
    let errors_path = dir.join("errors.txt");
    let errors: String = recorder
        .errors()
        .iter()
        .map(|(op, e)| format!("{op} # {e}\n"))
        .collect();
    if let Err(e) = std::fs::write(&errors_path, errors) {
        eprintln!("cannot write {}: {e}", errors_path.display());
    }
}

/// When each node process started, in the history's clock (nanoseconds
/// since the recorder started).
fn process_starts(cluster: &Cluster, recorder: &Recorder) -> BTreeMap<u64, Vec<u64>> {
    let mut starts: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for &(id, at) in cluster.starts() {
        let ns = at.saturating_duration_since(recorder.start()).as_nanos();
        starts
            .entry(id)
            .or_default()
            .push(u64::try_from(ns).unwrap_or(u64::MAX));
    }
    starts
}

/// Checks the history (with the members' final values), and, if it passes,
/// that the same history with one injected stale read is rejected: a
/// checker that accepts everything would fail here.
fn check_history(ops: &[Op], opts: &CheckOptions) -> (CheckReport, Option<bool>) {
    let check = checker::check_with(ops, opts);
    let stale_read_rejected = if check.is_valid() {
        let mut stale = ops.to_vec();
        checker::inject_stale_read(&mut stale).map(|_| !checker::check(&stale).is_valid())
    } else {
        None
    };
    (check, stale_read_rejected)
}

/// Reads every key linearizably through every member (recorded as client
/// `u32::MAX - member` operations) and serializably from each member's
/// state; returns the final value of each key and every disagreement.
async fn final_reads(
    cluster: &Cluster,
    recorder: &Recorder,
    args: &FaultsArgs,
) -> (BTreeMap<String, Option<String>>, Vec<String>) {
    let client = Client::with_timeout(Duration::from_secs(5));
    let mut finals = BTreeMap::new();
    let mut diffs = Vec::new();
    for k in 0..args.keys {
        let key = workload::key_name(k);
        let mut seen: BTreeMap<u64, Option<String>> = BTreeMap::new();
        for &m in cluster.members() {
            let ep = endpoint(m);
            let deadline = Instant::now() + nemesis::RECOVERY_DEADLINE;
            loop {
                let invoke_ns = recorder.now_ns();
                let r = client.get(&ep, key.as_bytes(), false).await;
                let return_ns = recorder.now_ns();
                let value = match r {
                    Ok(v) => Some(v.map(|b| String::from_utf8_lossy(&b).into_owned())),
                    Err(_) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    Err(e) => {
                        diffs.push(format!("final read of {key} via node {m} failed: {e}"));
                        None
                    }
                };
                if let Some(v) = value {
                    recorder.record(Op {
                        client: u32::MAX - u32::try_from(m).unwrap_or(0),
                        kind: OpKind::Get,
                        key: key.clone(),
                        value: v.clone(),
                        invoke_ns,
                        return_ns,
                        outcome: Outcome::Ok,
                    });
                    seen.insert(m, v);
                }
                break;
            }
            // Every member has applied everything: its local state agrees.
            if let Ok(local) = client.get(&ep, key.as_bytes(), true).await {
                let local = local.map(|b| String::from_utf8_lossy(&b).into_owned());
                if let Some(lin) = seen.get(&m)
                    && *lin != local
                {
                    diffs.push(format!(
                        "node {m}: local {key} = {local:?} but a linearizable read gave {lin:?}"
                    ));
                }
            }
        }
        let distinct: std::collections::BTreeSet<&Option<String>> = seen.values().collect();
        if distinct.len() > 1 {
            diffs.push(format!("members disagree on {key}: {seen:?}"));
        }
        if let Some(v) = seen.values().next() {
            finals.insert(key, v.clone());
        }
    }
    (finals, diffs)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: FaultsArgs,
    }

    fn args(extra: &[&str]) -> FaultsArgs {
        Cli::try_parse_from(std::iter::once("faults").chain(extra.iter().copied()))
            .expect("valid flags")
            .args
    }

    #[test]
    fn a_slow_node_ticks_at_its_own_rate_and_never_at_zero() {
        let a = args(&["--slow-tick-ms", "27", "--read-mode", "lease"]);
        validate(&a).expect("a slower node");
        assert_eq!(a.slow_tick_ms, Some(27));
        let err = validate(&args(&["--slow-tick-ms", "0"])).unwrap_err();
        assert!(err.to_string().contains("--slow-tick-ms"), "{err}");
        validate(&args(&[])).expect("the defaults");
    }
}
