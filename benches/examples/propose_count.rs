//! The propose workload once, at a fixed size, for instruction counting:
//!
//! ```sh
//! cargo build --release -p benches --example propose_count
//! valgrind --tool=callgrind --toggle-collect='propose_count::run*' \
//!     target/release/examples/propose_count core 1 1 100000
//! ```
//!
//! Arguments: library (`core` or `rs`), nodes, proposals per round,
//! proposals. Only `run` (the timed part of the bench) is counted with
//! `--toggle-collect`; setup is not.

use benches::{Cluster, CoreCluster, RaftRsCluster, drive};

/// Nanoseconds this process has spent on a CPU (`/proc/self/schedstat`):
/// unlike wall-clock time, it does not count time spent preempted by other
/// processes of a loaded machine.
fn on_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
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
    match lib {
        "core" => run(CoreCluster::new(nodes), n, batch),
        "rs" => run(RaftRsCluster::new(nodes), n, batch),
        other => panic!("unknown library {other}: core or rs"),
    }
}
