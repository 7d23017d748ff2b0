//! What raft-storage's `DiskStorage` costs over the raw WAL it wraps:
//! `DiskStorage::persist` of a Ready's entries against `Wal::save` of the
//! same batch, and `DiskStorage::open` against `Wal::open` of the same log.
//!
//! `cargo bench -p benches --bench storage` runs the criterion groups;
//! `-- paired` prints the ratios, each the median (and range) of rounds
//! that alternate the two on the same disk, because this disk's speed
//! drifts more between runs than the difference being measured;
//! `-- recovery` times the recovery of a 1 GiB log
//! (`RAFT_STORAGE_RECOVERY_MIB` changes the size).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use raft_core::{Entry, Index, PersistBatch, Term};
use raft_storage::{DiskStorage, StorageOptions};
use raft_wal::{Wal, WalOptions};

/// (entry bytes, entries per batch) as the issue names them.
const SHAPES: [(usize, u64); 2] = [(128, 64), (4 << 10, 64)];
const ROUNDS: usize = 11;
/// Alternating recovery rounds (each side opens the 1 GiB log this often).
const RECOVERY_ROUNDS: u32 = 7;

fn batch(next: &mut u64, count: u64, data: &Bytes) -> Vec<Entry> {
    let batch = (*next..*next + count)
        .map(|i| Entry::new(Term(1), Index(i), data.clone()))
        .collect();
    *next += count;
    batch
}

/// Either side of a comparison: the raw WAL or the storage around it.
enum Target {
    Wal(Box<Wal>),
    Storage(Box<DiskStorage>),
}

/// The WAL options of both sides. Segments are zero-filled inline when
/// they rotate, not by a background thread: both sides rotate at the same
/// batch, so inline fills cost them alike, while a background fill of one
/// would slow the other at random.
fn wal_options() -> WalOptions {
    WalOptions::new().background_preallocation(false)
}

impl Target {
    fn open(dir: &Path, storage: bool) -> Target {
        if storage {
            let options = StorageOptions::new().wal(wal_options());
            let (s, _) = DiskStorage::open(dir, options).expect("open storage");
            Target::Storage(Box::new(s))
        } else {
            let (w, _) = Wal::open(dir, wal_options()).expect("open wal");
            Target::Wal(Box::new(w))
        }
    }

    fn write(&self, entries: Vec<Entry>, sync: bool) {
        match self {
            Target::Wal(w) => w.save(None, black_box(&entries), sync).expect("save"),
            Target::Storage(s) => {
                let b = PersistBatch {
                    entries,
                    must_sync: sync,
                    ..PersistBatch::new(raft_core::ReadyNumber::FIRST)
                };
                s.persist_batch(black_box(&b)).expect("persist");
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Target::Wal(_) => "wal_save",
            Target::Storage(_) => "disk_storage_persist",
        }
    }
}

fn persist(c: &mut Criterion) {
    for sync in [true, false] {
        let mut g = c.benchmark_group(if sync {
            "persist_synced"
        } else {
            "persist_unsynced"
        });
        g.sample_size(20);
        for (size, count) in SHAPES {
            let data = Bytes::from(vec![5u8; size]);
            g.throughput(Throughput::Elements(count));
            for storage in [false, true] {
                let dir = tempfile::tempdir().expect("tempdir");
                let target = Target::open(dir.path(), storage);
                let mut next = 1;
                let id = BenchmarkId::new(target.name(), format!("{size}B_batch{count}"));
                g.bench_function(id, |b| {
                    b.iter(|| target.write(batch(&mut next, count, &data), sync));
                });
            }
        }
        g.finish();
    }
}

criterion_group! {
    name = storage;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    targets = persist
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    match filter.as_deref() {
        Some("paired") => paired(),
        Some("recovery") => recovery(),
        _ => {
            storage();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}

fn median_and_range(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// Batches per round; the two sides alternate batch by batch, so that the
/// disk's drift within a round falls on both alike.
const BATCHES_PER_ROUND: u32 = 200;

/// `DiskStorage::persist` over `Wal::save`, `ROUNDS` rounds.
fn paired() {
    println!(
        "| fsync | entry | batch | Wal::save µs | DiskStorage::persist µs | \
         persist / save (median, range of {ROUNDS}) |"
    );
    println!("|---|---|---|---|---|---|");
    for sync in [true, false] {
        for (size, count) in SHAPES {
            paired_row(sync, size, count);
        }
    }
}

fn paired_row(sync: bool, size: usize, count: u64) {
    let data = Bytes::from(vec![5u8; size]);
    let dirs = [
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    ];
    let targets = [
        Target::open(dirs[0].path(), false),
        Target::open(dirs[1].path(), true),
    ];
    let mut next = [1, 1];
    let (mut w, mut s, mut ratios) = (vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        let mut secs = [0.0f64; 2];
        for i in 0..BATCHES_PER_ROUND {
            // Alternate who goes first, so neither always follows the other.
            let order = if (i + round as u32).is_multiple_of(2) {
                [0, 1]
            } else {
                [1, 0]
            };
            for t in order {
                let entries = batch(&mut next[t], count, &data);
                let start = Instant::now();
                targets[t].write(entries, sync);
                secs[t] += start.elapsed().as_secs_f64();
            }
        }
        let per_batch = |x: f64| x / f64::from(BATCHES_PER_ROUND) * 1e6;
        w.push(per_batch(secs[0]));
        s.push(per_batch(secs[1]));
        ratios.push(secs[1] / secs[0]);
    }
    let (r, lo, hi) = median_and_range(ratios);
    println!(
        "| {sync} | {size} B | {count} | {:.1} | {:.1} | {r:.3} ({lo:.3}–{hi:.3}) |",
        median_and_range(w).0,
        median_and_range(s).0
    );
}

/// `DiskStorage::open` against `Wal::open` of the same log, alternating.
fn recovery() {
    let mib: u64 = std::env::var("RAFT_STORAGE_RECOVERY_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let (entry_bytes, per_batch) = (4096u64, 1024u64);
    let total = mib * (1 << 20) / entry_bytes;
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let (s, _) = DiskStorage::open(tmp.path(), StorageOptions::new()).expect("open");
        let data = Bytes::from(vec![0x5Au8; entry_bytes as usize]);
        let mut next = 1;
        while next <= total {
            let b = PersistBatch {
                entries: batch(&mut next, per_batch, &data),
                ..PersistBatch::new(raft_core::ReadyNumber::FIRST)
            };
            s.persist_batch(&b).expect("persist");
        }
        s.sync().expect("sync");
    }
    let wal_dir = tmp.path().join(raft_storage::WAL_DIR);
    let (mut w, mut s, mut ratios) = (vec![], vec![], vec![]);
    for round in 0..RECOVERY_ROUNDS {
        let time_wal = || {
            let t = Instant::now();
            let (wal, rec) = Wal::open(&wal_dir, WalOptions::new()).expect("wal open");
            let secs = t.elapsed().as_secs_f64();
            assert!(rec.entries.len() as u64 >= total);
            drop((wal, rec));
            secs
        };
        let time_storage = || {
            let t = Instant::now();
            let (storage, rec) =
                DiskStorage::open(tmp.path(), StorageOptions::new()).expect("open");
            let secs = t.elapsed().as_secs_f64();
            assert!(rec.last_index.get() >= total);
            drop(storage);
            secs
        };
        let (a, b) = if round.is_multiple_of(2) {
            let a = time_wal();
            (a, time_storage())
        } else {
            let b = time_storage();
            (time_wal(), b)
        };
        w.push(a);
        s.push(b);
        ratios.push(b / a);
    }
    let (r, lo, hi) = median_and_range(ratios);
    let (wal_median, wal_min, _) = median_and_range(w);
    let (storage_median, storage_min, _) = median_and_range(s);
    println!(
        "recovery of {mib} MiB ({total} entries of {entry_bytes} B), {RECOVERY_ROUNDS} \
         alternating rounds: Wal::open median {wal_median:.2} s (fastest {wal_min:.2} s), \
         DiskStorage::open median {storage_median:.2} s (fastest {storage_min:.2} s); \
         ratio per round median {r:.3} (range {lo:.3}–{hi:.3}), fastest over fastest {:.3}",
        storage_min / wal_min
    );
}
