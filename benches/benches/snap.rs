//! Snapshot save and load throughput against the machine's raw sequential
//! file bandwidth, measured the same way.
//!
//! `cargo bench -p benches --bench snap`. Every case moves the same bytes:
//!
//! - `raw_write`: create, write in 1 MiB chunks, `fdatasync`: the floor a
//!   durable save cannot beat on this device.
//! - `save`: `Snapshotter::save`: the above plus header, CRC, rename and a
//!   directory `fsync`.
//! - `raw_read`: `std::fs::read` of a snapshot file (page cache warm).
//! - `load`: `Snapshotter::load_newest` into memory, verifying the CRC.
//! - `stream`: `Snapshotter::open` and `next_chunk` to the end, verifying
//!   the CRC in bounded memory.

use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use raft_core::{ConfState, Index, LogId, NodeId, SnapshotMetadata, Term};
use raft_snap::Snapshotter;

const SIZES: [(&str, usize); 2] = [("1MiB", 1 << 20), ("256MiB", 256 << 20)];
const CHUNK_BYTES: usize = 1 << 20;

fn metadata() -> SnapshotMetadata {
    SnapshotMetadata {
        index: Index(1000),
        term: Term(3),
        conf_state: ConfState::with_voters([1, 2, 3].map(|id| NodeId::new(id).expect("non-zero"))),
    }
}

fn data(len: usize) -> Vec<u8> {
    // Incompressible-looking bytes; the content does not affect the cost.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn raw_write(path: &Path, data: &[u8]) {
    let mut file = File::create(path).expect("create");
    for chunk in data.chunks(CHUNK_BYTES) {
        file.write_all(chunk).expect("write");
    }
    file.sync_data().expect("fdatasync");
}

fn bench_snap(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let snapshotter = Snapshotter::new(tmp.path().join("snap")).expect("open");
    let id = LogId::new(metadata().term, metadata().index);
    let mut group = c.benchmark_group("snap");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (name, len) in SIZES {
        let data = data(len);
        group.throughput(Throughput::Bytes(len as u64));
        let raw_path = tmp.path().join("raw");
        group.bench_function(BenchmarkId::new("raw_write", name), |b| {
            b.iter(|| raw_write(&raw_path, &data));
        });
        group.bench_function(BenchmarkId::new("save", name), |b| {
            b.iter(|| snapshotter.save(&metadata(), &data).expect("save"));
        });
        let snap_path = snapshotter.path_of(id);
        group.bench_function(BenchmarkId::new("raw_read", name), |b| {
            b.iter(|| black_box(std::fs::read(&snap_path).expect("read")));
        });
        group.bench_function(BenchmarkId::new("load", name), |b| {
            b.iter(|| black_box(snapshotter.load_newest().expect("load")));
        });
        group.bench_function(BenchmarkId::new("stream", name), |b| {
            b.iter(|| {
                let mut reader = snapshotter.open(id).expect("open");
                let mut total = 0usize;
                while let Some(chunk) = reader.next_chunk().expect("chunk") {
                    total += chunk.len();
                }
                assert_eq!(total, len);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_snap);
criterion_main!(benches);
