//! Micro-benchmarks of `raft-core` internals (filled below).

fn main() {}
