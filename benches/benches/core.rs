//! The "also measured" figures of the [bench] issue, for `raft-core`:
//!
//! - `ready_advance/K`: one `RawNode::ready` plus `advance` on a follower
//!   that has just stepped `K` appends of one 128-byte entry each, so the
//!   Ready holds `K` entries to persist, about `K` committed entries and `K`
//!   acknowledgements (timed: `ready` and `advance` only, not the persist).
//! - `quorum/committed_index/N`: `MajorityConfig::committed_index` for
//!   3 to 11 voters.
//! - `codec/{encode,decode}/…`: an append message through `raft-proto`
//!   (`encode_message`, `decode_message_bytes`), one entry of 0 B to 1 MiB
//!   and 64 entries of 128 B.
//! - scaling (printed, outside criterion): per-entry cost of the propose
//!   workload (`benches::drive`, B = 64) on a log already holding 10^4,
//!   10^6 and 10^7 entries, 1 and 3 nodes. Should be flat.
//! - memory (printed): peak resident memory (`VmHWM`) of a 1-node cluster
//!   after 10^6 proposals of 128 bytes, raft-core and raft-rs, each in a
//!   fresh child process so one does not inherit the other's heap.
//!
//! `cargo bench -p benches --bench core`; a criterion filter argument
//! skips the printed parts unless it contains `scaling` or `memory`.
//! Nothing about time or memory is asserted.

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::{
    Cluster, CoreCluster, CoreNode, PAYLOAD_BYTES, RaftRsCluster, drive, payload, proc_status_kib,
    reset_peak_rss,
};
use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use raft_core::quorum::MajorityConfig;
use raft_core::{Append, Entry, Index, LogId, Message, MessageBody, NodeId, Term};

const MEMORY_CHILD_ENV: &str = "BENCHES_CORE_MEMORY_CHILD";
const MEMORY_ENTRIES: u64 = 1_000_000;

fn id(n: u64) -> NodeId {
    NodeId::new(n).expect("non-zero")
}

// ---------------------------------------------------------------------------
// ready / advance

/// Messages from the leader to node 2 in a 3-node cluster: the election
/// prefix (delivered during the capture), then `k` appends of one entry
/// each that node 2 did not get to see, plus whatever the leader sent it
/// after committing them with node 3.
struct Replay {
    prefix: Vec<Message>,
    held: Vec<Message>,
}

fn capture(k: u64) -> Replay {
    let mut nodes: Vec<CoreNode> = (1..=3).map(|i| CoreNode::new(i, 3)).collect();
    let mut out = Vec::new();
    let mut prefix = Vec::new();
    let mut held = Vec::new();
    nodes[0].raw.campaign().expect("campaign");
    let mut round = |nodes: &mut Vec<CoreNode>, hold: bool, held: &mut Vec<Message>| -> bool {
        let mut any = false;
        for n in nodes.iter_mut() {
            any |= n.handle_ready(&mut out);
        }
        any |= !out.is_empty();
        for m in out.drain(..) {
            if m.to == id(2) {
                if hold {
                    held.push(m);
                    continue;
                }
                prefix.push(m.clone());
            }
            let to = (m.to.get() - 1) as usize;
            nodes[to].raw.step(m).expect("step");
        }
        any
    };
    while round(&mut nodes, false, &mut held) {}
    for seq in 0..k {
        nodes[0].raw.propose(payload(seq)).expect("leader accepts");
        round(&mut nodes, true, &mut held);
    }
    while round(&mut nodes, true, &mut held) {}
    Replay { prefix, held }
}

impl Replay {
    /// A fresh node 2 that has stepped every captured message, with the
    /// prefix already handled.
    fn follower(&self) -> CoreNode {
        let mut node = CoreNode::new(2, 3);
        let mut sink = Vec::new();
        for m in &self.prefix {
            node.raw.step(m.clone()).expect("step prefix");
        }
        node.handle_ready(&mut sink);
        for m in &self.held {
            node.raw.step(m.clone()).expect("step held");
        }
        node
    }
}

fn bench_ready_advance(c: &mut Criterion) {
    let mut group = c.benchmark_group("ready_advance");
    for k in [16u64, 256] {
        let replay = capture(k);
        let expected = {
            let mut node = replay.follower();
            let rd = node.raw.ready().expect("ready");
            println!(
                "ready_advance/{k}: follower Ready holds {} entries, {} committed entries, {} messages",
                rd.entries.len(),
                rd.committed_entries.len(),
                rd.messages.len() + rd.persisted_messages.len()
            );
            for e in &rd.committed_entries {
                node.applier.apply(2, &e.data);
            }
            node.applier.applied()
        };
        assert!(expected > 0, "the follower has entries to apply");
        group.throughput(Throughput::Elements(k));
        group.bench_with_input(BenchmarkId::from_parameter(k), &replay, |b, replay| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let mut node = replay.follower();
                    let t = Instant::now();
                    let rd = node.raw.ready().expect("ready");
                    timed += t.elapsed();
                    node.storage.persist(&rd).expect("persist");
                    for e in &rd.committed_entries {
                        node.applier.apply(2, &e.data);
                    }
                    let t = Instant::now();
                    node.raw.advance().expect("advance");
                    timed += t.elapsed();
                    assert_eq!(node.applier.applied(), expected, "applied in order");
                    black_box(rd);
                }
                timed
            });
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// quorum

fn bench_quorum(c: &mut Criterion) {
    let mut group = c.benchmark_group("quorum/committed_index");
    for n in [3u64, 5, 7, 9, 11] {
        let config = MajorityConfig::new((1..=n).map(id).collect());
        let acked: Vec<u64> = (0..n).map(|i| 1_000 + (i * 7_919) % 97).collect();
        let indexer = move |v: NodeId| acked.get((v.get() - 1) as usize).copied().map(Index);
        group.bench_with_input(BenchmarkId::from_parameter(n), &config, |b, config| {
            b.iter(|| config.committed_index(black_box(&indexer)));
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// codec

fn append(entries: usize, size: usize) -> Message {
    let data = Bytes::from(vec![0x42u8; size]);
    Message {
        from: id(1),
        to: id(2),
        term: Term(3),
        body: MessageBody::Append(Append {
            prev: LogId::new(Term(3), Index(1_000)),
            entries: (0..entries as u64)
                .map(|i| Entry::new(Term(3), Index(1_001 + i), data.clone()))
                .collect(),
            commit: Index(999),
        }),
    }
}

fn bench_codec(c: &mut Criterion) {
    let cases = [
        ("1x0B", append(1, 0)),
        ("1x128B", append(1, 128)),
        ("1x1KiB", append(1, 1024)),
        ("1x16KiB", append(1, 16 * 1024)),
        ("1x1MiB", append(1, 1 << 20)),
        ("64x128B", append(64, 128)),
    ];
    let mut group = c.benchmark_group("codec");
    for (name, message) in &cases {
        let encoded = raft_proto::encode_message(message);
        assert_eq!(
            &raft_proto::decode_message_bytes(encoded.clone()).expect("decodes"),
            message
        );
        group.throughput(Throughput::Bytes(encoded.len() as u64));
        group.bench_with_input(BenchmarkId::new("encode", name), message, |b, m| {
            b.iter(|| raft_proto::encode_message(black_box(m)));
        });
        group.bench_with_input(BenchmarkId::new("decode", name), &encoded, |b, buf| {
            b.iter(|| raft_proto::decode_message_bytes(black_box(buf.clone())).expect("decodes"));
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// scaling

fn scaling() {
    const PROPOSALS: u64 = 200_000;
    const REPS: usize = 3;
    const BATCH: u64 = 64;
    println!();
    println!(
        "scaling: ns per entry of the propose workload (B = {BATCH}, {PROPOSALS} entries, median of {REPS}) on a log of L entries"
    );
    println!("{:<7} {:>10} {:>12}", "nodes", "L", "ns/entry");
    for nodes in [1usize, 3] {
        for log in [10_000u64, 1_000_000, 10_000_000] {
            let mut ns: Vec<f64> = (0..REPS)
                .map(|_| {
                    let mut cluster = CoreCluster::with_log(nodes, log);
                    let d = drive(&mut cluster, PROPOSALS, BATCH);
                    d.as_nanos() as f64 / PROPOSALS as f64
                })
                .collect();
            ns.sort_by(f64::total_cmp);
            println!("{nodes:<7} {log:>10} {:>12.0}", ns[REPS / 2]);
        }
    }
}

// ---------------------------------------------------------------------------
// memory

fn memory_child(lib: &str) {
    let baseline = proc_status_kib("VmRSS").unwrap_or(0);
    let reset = reset_peak_rss();
    fn run<C: Cluster>(mut c: C) -> C {
        drive(&mut c, MEMORY_ENTRIES, 64);
        c
    }
    let (hwm, rss) = match lib {
        "raft-core" => {
            let c = run(CoreCluster::new(1));
            let r = (proc_status_kib("VmHWM"), proc_status_kib("VmRSS"));
            drop(black_box(c));
            r
        }
        _ => {
            let c = run(RaftRsCluster::new(1));
            let r = (proc_status_kib("VmHWM"), proc_status_kib("VmRSS"));
            drop(black_box(c));
            r
        }
    };
    println!(
        "{lib} {baseline} {} {} {reset}",
        hwm.unwrap_or(0),
        rss.unwrap_or(0)
    );
}

fn memory() {
    println!();
    println!(
        "memory: 1-node cluster after {MEMORY_ENTRIES} proposals of {PAYLOAD_BYTES} B (KiB; fresh child process each)"
    );
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>12}",
        "library", "before", "VmHWM", "VmRSS", "B/entry(peak)"
    );
    let Ok(exe) = std::env::current_exe() else {
        println!("(cannot find the bench executable)");
        return;
    };
    for lib in ["raft-core", "raft-rs"] {
        let out = std::process::Command::new(&exe)
            .env(MEMORY_CHILD_ENV, lib)
            .output();
        let Ok(out) = out else {
            println!("{lib}: child failed to start");
            continue;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let fields: Vec<u64> = text
            .split_whitespace()
            .skip(1)
            .take(3)
            .filter_map(|f| f.parse().ok())
            .collect();
        match fields.as_slice() {
            [before, hwm, rss] if *hwm > 0 => println!(
                "{lib:<10} {before:>10} {hwm:>10} {rss:>10} {:>12.0}",
                (hwm.saturating_sub(*before) * 1024) as f64 / MEMORY_ENTRIES as f64
            ),
            _ => println!("{lib}: no figures (not Linux?) {text}"),
        }
    }
}

// ---------------------------------------------------------------------------

fn main() {
    if let Ok(lib) = std::env::var(MEMORY_CHILD_ENV) {
        memory_child(&lib);
        return;
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| filters.is_empty() || filters.iter().any(|f| f.contains(name));
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
        .configure_from_args();
    bench_ready_advance(&mut c);
    bench_quorum(&mut c);
    bench_codec(&mut c);
    c.final_summary();
    if wants("memory") {
        memory();
    }
    if wants("scaling") {
        scaling();
    }
}
