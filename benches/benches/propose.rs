//! The headline benchmark: propose throughput of `raft-core` against tikv's
//! raft-rs 0.7, same workload, same run.
//!
//! `cargo bench -p benches --bench propose`. The workload is described in
//! the `benches` crate docs (`benches/src/lib.rs`): one thread, in-memory
//! storage, no ticks; per round `B` proposals of 128 bytes on the leader,
//! every node handles its Readys, every message is delivered; done when
//! every node applied all entries, in order (checked: a mismatch panics).
//!
//! Variants: 1 and 3 nodes, `B` = 1, 64, 256. Criterion times one
//! iteration as one proposal (`iter_custom`: a fresh cluster per sample,
//! set up untimed, then `iters` proposals through the timed workload), so
//! its throughput is proposals per second. After the criterion groups the
//! bench prints a table: median ops/s over the samples of each library and
//! the ratio raft-core / raft-rs per variant. Nothing about time is
//! asserted.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use benches::{Cluster, CoreCluster, RaftRsCluster, drive, ops_per_sec};
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
            group.finish();
        }
    }
    c.final_summary();
    print_table();
}
