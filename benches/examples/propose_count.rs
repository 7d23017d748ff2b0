//! The propose workload once, at a fixed size, for instruction counting:
//!
//! ```sh
//! cargo build --release -p benches --example propose_count
//! valgrind --tool=callgrind --toggle-collect='propose_count::run*' \
//!     target/release/examples/propose_count core 1 1 100000
//! ```
//!
//! Arguments: library (`core`, `rs` for raft-rs with `batch_append = true`,
//! `rs-default` for raft-rs as configured by default), nodes, proposals per
//! round, proposals, and optionally `warm`: run the same workload once,
//! untimed, on another cluster first, so the timed run finds a warm heap
//! (without it, the timed run is the process's first: a cold heap). Only
//! `run` (the timed part of the bench) is counted with `--toggle-collect`;
//! setup is not. `benches/propose-rounds.sh` runs one process per
//! measurement and reports each ratio as a range over rounds.

use benches::{Cluster, CoreCluster, RaftRsCluster, RaftRsDefaultCluster, drive};

/// Nanoseconds this process has spent on a CPU (`/proc/self/schedstat`):
/// unlike wall-clock time, it does not count time spent preempted by other
/// processes of a loaded machine.
fn on_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// With `warm`, the workload once untimed (and outside `run`, so not
/// counted by `--toggle-collect='propose_count::run*'`), then `run`.
fn measure<C: Cluster>(build: fn(usize) -> C, nodes: usize, n: u64, batch: u64, warm: bool) {
    if warm {
        drive(&mut build(nodes), n, batch);
    }
    run(build(nodes), n, batch);
}

#[inline(never)]
fn run<C: Cluster>(mut c: C, n: u64, batch: u64) {
    let cpu = on_cpu_ns();
    let elapsed = drive(&mut c, n, batch);
    let cpu = on_cpu_ns().zip(cpu).map(|(b, a)| b - a);
    eprintln!(
        "{}: {n} proposals in {elapsed:?} (on CPU: {} us)",
        C::NAME,
        cpu.map_or("?".to_string(), |ns| (ns / 1000).to_string())
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: u64| {
        args.get(i)
            .map_or(default, |s| s.parse().expect("a number"))
    };
    let lib = args.get(1).map_or("core", String::as_str);
    let (nodes, batch, n) = (arg(2, 1) as usize, arg(3, 1), arg(4, 100_000));
    let warm = match args.get(5).map(String::as_str) {
        None | Some("cold") => false,
        Some("warm") => true,
        Some(other) => panic!("unknown heap state {other}: warm or cold"),
    };
    match lib {
        "core" => measure(CoreCluster::new, nodes, n, batch, warm),
        "rs" => measure(RaftRsCluster::new, nodes, n, batch, warm),
        "rs-default" => measure(RaftRsDefaultCluster::new, nodes, n, batch, warm),
        other => panic!("unknown library {other}: core, rs or rs-default"),
    }
}
