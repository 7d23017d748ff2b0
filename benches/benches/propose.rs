//! The headline benchmark: propose throughput of `raft-core` against tikv's
//! raft-rs 0.7, same workload, same run.
//!
//! `cargo bench -p benches --bench propose`. The workload is described in
//! the `benches` crate docs (`benches/src/lib.rs`): one thread, in-memory
//! storage, no ticks; per round `B` proposals of 128 bytes on the leader,
//! every node handles its Readys, every message is delivered; done when
//! every node applied all entries, in order (checked: a mismatch panics).
//!
//! Two baselines: raft-rs with `batch_append = true` (the configuration
//! that batches appends as raft-core does) and raft-rs as a user who
//! changes nothing runs it (`batch_append = false`, its default).
//!
//! Variants: 1 and 3 nodes, `B` = 1, 64, 256. Criterion times one
//! iteration as one proposal (`iter_custom`: a fresh cluster per sample,
//! set up untimed, then `iters` proposals through the timed workload), so
//! its throughput is proposals per second. After the criterion groups the
//! bench prints two tables: median ops/s over the criterion samples of each
//! library, and the headline one, from paired rounds: per variant,
//! [`PAIRED_ROUNDS`] rounds that each run every library back to back on a
//! fresh cluster with the same number of proposals (the order rotating per
//! round), each ratio taken within each round and the median ratio
//! reported with its range. On a shared machine the speed available to the bench
//! drifts over seconds; criterion runs all samples of one library before
//! the other, so drift lands in its ratio, while a paired round sees the
//! same conditions on both sides. Nothing about time is asserted.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use benches::{Cluster, CoreCluster, RaftRsCluster, RaftRsDefaultCluster, drive, ops_per_sec};
use criterion::{Criterion, Throughput};

const NODES: [usize; 2] = [1, 3];
const BATCHES: [u64; 3] = [1, 64, 256];
/// Samples with fewer proposals than this are not used for the table
/// (criterion's first warm-up calls run a handful of iterations).
const MIN_TABLE_ITERS: u64 = 2_000;

type Key = (usize, u64, &'static str);

/// Per (nodes, batch, library): ops/s of every timed call.
static SAMPLES: Mutex<BTreeMap<Key, Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(key: Key, iters: u64, elapsed: Duration) {
    if iters >= MIN_TABLE_ITERS {
        SAMPLES
            .lock()
            .expect("not poisoned")
            .entry(key)
            .or_default()
            .push(ops_per_sec(iters, elapsed));
    }
}

fn bench_one<C: Cluster>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    nodes: usize,
    batch: u64,
    build: fn(usize) -> C,
) {
    group.bench_function(C::NAME, |b| {
        b.iter_custom(|iters| {
            let mut cluster = build(nodes);
            let elapsed = drive(&mut cluster, iters, batch);
            record((nodes, batch, C::NAME), iters, elapsed);
            elapsed
        });
    });
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

fn print_table() {
    let mut samples = SAMPLES.lock().expect("not poisoned");
    println!();
    println!(
        "propose throughput, median over samples (ops/s = entries applied on every node per second)"
    );
    println!(
        "{:<7} {:>5} {:>14} {:>14} {:>8}  samples (ours/theirs)",
        "nodes", "B", "raft-core", "raft-rs", "ratio"
    );
    for nodes in NODES {
        for batch in BATCHES {
            let mut ours = samples
                .remove(&(nodes, batch, CoreCluster::NAME))
                .unwrap_or_default();
            let mut theirs = samples
                .remove(&(nodes, batch, RaftRsCluster::NAME))
                .unwrap_or_default();
            let (n_ours, n_theirs) = (ours.len(), theirs.len());
            let (a, b) = (median(&mut ours), median(&mut theirs));
            let fmt = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.0}"));
            let ratio = match (a, b) {
                (Some(a), Some(b)) => format!("{:.2}x", a / b),
                _ => "-".to_string(),
            };
            println!(
                "{nodes:<7} {batch:>5} {:>14} {:>14} {ratio:>8}  {n_ours}/{n_theirs}",
                fmt(a),
                fmt(b)
            );
        }
    }
}

/// Rounds per variant in the paired table.
const PAIRED_ROUNDS: usize = 21;

/// Proposals per library per paired round: each run lasts some tens of
/// milliseconds, long against timer noise, short against drift.
fn paired_proposals(nodes: usize, batch: u64) -> u64 {
    match (nodes, batch) {
        (3, 1) => 40_000,
        (1, 1) => 100_000,
        _ => 200_000,
    }
}

fn run_once<C: Cluster>(build: fn(usize) -> C, nodes: usize, n: u64, batch: u64) -> f64 {
    let mut cluster = build(nodes);
    ops_per_sec(n, drive(&mut cluster, n, batch))
}

/// The libraries of the paired table: raft-core, raft-rs with
/// `batch_append = true`, raft-rs as configured by default.
const PAIRED_LIBS: usize = 3;

fn run_lib(lib: usize, nodes: usize, n: u64, batch: u64) -> f64 {
    match lib {
        0 => run_once(CoreCluster::new, nodes, n, batch),
        1 => run_once(RaftRsCluster::new, nodes, n, batch),
        _ => run_once(RaftRsDefaultCluster::new, nodes, n, batch),
    }
}

/// `PAIRED_ROUNDS` rounds of every library, the order rotating per round;
/// per library, its ops/s of each round.
fn paired_rounds(nodes: usize, batch: u64) -> [Vec<f64>; PAIRED_LIBS] {
    let n = paired_proposals(nodes, batch);
    for lib in 0..PAIRED_LIBS {
        run_lib(lib, nodes, n / 4, batch); // one untimed warm-up of each
    }
    let mut ops: [Vec<f64>; PAIRED_LIBS] = Default::default();
    for round in 0..PAIRED_ROUNDS {
        for k in 0..PAIRED_LIBS {
            let lib = (round + k) % PAIRED_LIBS;
            ops[lib].push(run_lib(lib, nodes, n, batch));
        }
    }
    ops
}

/// The median and range of raft-core's ops/s over `theirs`, round by round.
fn ratio_cells(ours: &[f64], theirs: &[f64]) -> (String, String) {
    let mut ratios: Vec<f64> = ours.iter().zip(theirs).map(|(a, b)| a / b).collect();
    let (lo, hi) = ratios
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    let median = median(&mut ratios).map_or("-".to_string(), |r| format!("{r:.2}x"));
    (median, format!("{lo:.2}-{hi:.2}x"))
}

fn print_paired_table() {
    println!();
    println!(
        "propose throughput, paired rounds ({PAIRED_ROUNDS} per variant; ratio = raft-core / raft-rs within a round; \
         raft-rs with batch_append = true, and raft-rs default = batch_append false)"
    );
    println!(
        "{:<7} {:>5} {:>12} {:>12} {:>16} {:>8} {:>12} {:>12} {:>12}",
        "nodes",
        "B",
        "raft-core",
        "raft-rs",
        "raft-rs default",
        "ratio",
        "range",
        "vs default",
        "range"
    );
    for nodes in NODES {
        for batch in BATCHES {
            let mut ops = paired_rounds(nodes, batch);
            let (ratio, range) = ratio_cells(&ops[0], &ops[1]);
            let (ratio_d, range_d) = ratio_cells(&ops[0], &ops[2]);
            let [core, rs, rs_default] = &mut ops;
            let fmt = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.0}"));
            println!(
                "{nodes:<7} {batch:>5} {:>12} {:>12} {:>16} {ratio:>8} {range:>12} {ratio_d:>12} {range_d:>12}",
                fmt(median(core)),
                fmt(median(rs)),
                fmt(median(rs_default)),
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        .configure_from_args();
    for nodes in NODES {
        for batch in BATCHES {
            let mut group = c.benchmark_group(format!("propose/{nodes}-node/B={batch}"));
            group.throughput(Throughput::Elements(1));
            bench_one(&mut group, nodes, batch, CoreCluster::new);
            bench_one(&mut group, nodes, batch, RaftRsCluster::new);
            bench_one(&mut group, nodes, batch, RaftRsDefaultCluster::new);
            group.finish();
        }
    }
    c.final_summary();
    print_table();
    print_paired_table();
}
