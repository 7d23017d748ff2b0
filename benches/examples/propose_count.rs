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

#[inline(never)]
fn run<C: Cluster>(mut c: C, n: u64, batch: u64) {
    let elapsed = drive(&mut c, n, batch);
    eprintln!("{}: {n} proposals in {elapsed:?}", C::NAME);
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
