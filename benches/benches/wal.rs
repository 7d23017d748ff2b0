//! WAL append throughput and latency with fsync, against this disk's own
//! limits measured by the same harness: the `fdatasync` rate and the
//! sequential write bandwidth.
//!
//! `cargo bench -p benches --bench wal`. Each group's throughput line gives
//! entries/s (or bytes/s for the baselines); the README of raft-wal turns
//! them into ratios.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group};
use raft_core::{Entry, Index, Term};
use raft_wal::{Wal, WalOptions};

const ENTRY_SIZES: [usize; 3] = [128, 4 << 10, 64 << 10];
const BATCH_SIZES: [u64; 3] = [1, 64, 1024];
const SEQ_FILE_BYTES: usize = 64 << 20;
const SEQ_CHUNK_BYTES: usize = 1 << 20;

/// The disk's own limits: one 4 KiB write + `fdatasync`, overwriting
/// (no metadata change) and appending (the file grows each time).
fn fdatasync_baseline(c: &mut Criterion) {
    let mut g = c.benchmark_group("disk_fdatasync");
    g.throughput(Throughput::Elements(1));
    let dir = tempfile::tempdir().expect("tempdir");
    let block = vec![7u8; 4096];
    let over = File::create(dir.path().join("overwrite")).expect("create");
    over.write_all_at(&vec![0u8; 1 << 20], 0).expect("fill");
    over.sync_all().expect("sync");
    let mut at = 0;
    g.bench_function("overwrite_4KiB", |b| {
        b.iter(|| {
            // The next block of an allocated file, as a preallocated WAL.
            over.write_all_at(&block, at).expect("write");
            over.sync_data().expect("fdatasync");
            at = (at + 4096) % (1 << 20);
        });
    });
    let app = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("append"))
        .expect("create");
    g.bench_function("append_4KiB", |b| {
        b.iter(|| {
            std::io::Write::write_all(&mut &app, &block).expect("write");
            app.sync_data().expect("fdatasync");
        });
    });
    g.finish();
}

/// Sequential bandwidth: a new 64 MiB file in 1 MiB writes, then one
/// `fdatasync`.
fn sequential_baseline(c: &mut Criterion) {
    let mut g = c.benchmark_group("disk_sequential_write");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(SEQ_FILE_BYTES as u64));
    let dir = tempfile::tempdir().expect("tempdir");
    let chunk = vec![3u8; SEQ_CHUNK_BYTES];
    let path = dir.path().join("seq");
    g.bench_function("64MiB_in_1MiB_writes", |b| {
        b.iter(|| {
            let f = File::create(&path).expect("create");
            for i in 0..SEQ_FILE_BYTES / SEQ_CHUNK_BYTES {
                f.write_all_at(&chunk, (i * SEQ_CHUNK_BYTES) as u64)
                    .expect("write");
            }
            f.sync_data().expect("fdatasync");
        });
    });
    // The same bytes at the granularity of a 4 MiB WAL batch: append and
    // fdatasync each time, as one writer with `sync` must.
    let chunk = vec![3u8; 4 << 20];
    g.sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Bytes(chunk.len() as u64));
    let app = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("batches"))
        .expect("create");
    g.bench_function("4MiB_appends_each_fdatasync", |b| {
        b.iter(|| {
            std::io::Write::write_all(&mut &app, &chunk).expect("write");
            app.sync_data().expect("fdatasync");
        });
    });
    g.finish();
}

fn batch(next: &mut u64, count: u64, data: &Bytes) -> Vec<Entry> {
    let batch = (*next..*next + count)
        .map(|i| Entry::new(Term(1), Index(i), data.clone()))
        .collect();
    *next += count;
    batch
}

/// One synced `save` of `batch` entries per iteration.
fn append(c: &mut Criterion, preallocate: bool) {
    let name = if preallocate {
        "wal_append_preallocated"
    } else {
        "wal_append"
    };
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    // Flat: the same iteration count per sample, so a 64 MiB batch runs
    // ten times, not fifty-five.
    g.sampling_mode(SamplingMode::Flat);
    for size in ENTRY_SIZES {
        for count in BATCH_SIZES {
            let dir = tempfile::tempdir().expect("tempdir");
            let opts = WalOptions::new().preallocate(preallocate);
            let (wal, _) = Wal::open(dir.path(), opts).expect("open");
            let data = Bytes::from(vec![5u8; size]);
            let mut next = 1;
            g.throughput(Throughput::Elements(count));
            let id = BenchmarkId::new(format!("{size}B"), format!("batch{count}"));
            g.bench_function(id, |b| {
                b.iter(|| {
                    let entries = batch(&mut next, count, &data);
                    wal.save(None, black_box(&entries), true).expect("save");
                });
            });
            let stats = wal.stats();
            assert!(
                stats.fsyncs <= stats.batches + 2 * stats.rotations,
                "{stats:?}"
            );
        }
    }
    g.finish();
}

fn append_plain(c: &mut Criterion) {
    append(c, false);
}

fn append_preallocated(c: &mut Criterion) {
    append(c, true);
}

/// `writers` threads each doing synced single-entry saves: group commit.
fn concurrent_writers(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_writers");
    g.sample_size(10);
    for writers in [1u64, 4, 16, 64] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal, _) = Wal::open(dir.path(), WalOptions::new()).expect("open");
        let wal = Arc::new(wal);
        let next = Arc::new(ordered::Counter::default());
        let data = Bytes::from(vec![9u8; 128]);
        g.throughput(Throughput::Elements(writers));
        g.bench_function(BenchmarkId::new("128B", format!("writers{writers}")), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let handles: Vec<_> = (0..writers)
                    .map(|_| {
                        let wal = Arc::clone(&wal);
                        let next = Arc::clone(&next);
                        let data = data.clone();
                        thread::spawn(move || {
                            for _ in 0..iters {
                                next.append(&wal, &data);
                                wal.sync().expect("sync");
                            }
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().expect("join");
                }
                start.elapsed()
            });
        });
        let stats = wal.stats();
        eprintln!(
            "writers={writers}: {} saves, {} fsyncs ({:.1} saves per fsync)",
            stats.batches,
            stats.fsyncs,
            stats.batches as f64 / stats.fsyncs.max(1) as f64
        );
    }
    g.finish();
}

/// Hands out indexes and writes under one lock so entries reach the WAL in
/// order; the fsync (`Wal::sync`) happens outside it and is shared.
mod ordered {
    use parking_lot::Mutex;

    use bytes::Bytes;
    use raft_core::{Entry, Index, Term};
    use raft_wal::Wal;

    #[derive(Default)]
    pub(crate) struct Counter(Mutex<u64>);

    impl Counter {
        pub(crate) fn append(&self, wal: &Wal, data: &Bytes) {
            let mut n = self.0.lock();
            *n += 1;
            let e = Entry::new(Term(1), Index(*n), data.clone());
            wal.save(None, std::slice::from_ref(&e), false)
                .expect("write");
        }
    }
}

criterion_group! {
    name = baselines;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    targets = fdatasync_baseline, sequential_baseline
}
criterion_group! {
    name = wal;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    targets = append_plain, append_preallocated, concurrent_writers
}

fn main() {
    // `cargo bench --bench wal -- paired` runs only the paired tables,
    // `paired:writers` only the two writers tables; any other
    // filter skips them.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.as_deref() == Some("paired:writers") {
        paired::run_writers();
        return;
    }
    if filter.as_deref().is_none_or(|f| f == "paired") {
        paired::run();
    }
    if filter.as_deref() != Some("paired") {
        baselines();
        wal();
        Criterion::default().configure_from_args().final_summary();
    }
}

/// The disk's speed drifts by an order of magnitude on a shared machine, so
/// ratios are taken between a baseline and a WAL measurement made back to
/// back, five times, and the median ratio is reported.
mod paired {
    use std::fs::File;
    use std::os::unix::fs::FileExt;
    use std::path::Path;
    use std::sync::{Arc, Barrier};
    use std::thread;
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use raft_wal::{Wal, WalOptions};

    use super::{BATCH_SIZES, ENTRY_SIZES, batch, ordered};

    const ROUNDS: usize = 5;
    const SEQ_BYTES: usize = 32 << 20;

    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    /// fdatasyncs per second: a 4 KiB write at the next offset of an
    /// allocated file (as a preallocated WAL writes) + fdatasync, 30 times.
    fn fdatasync_rate(f: &File) -> f64 {
        let block = [7u8; 4096];
        let start = Instant::now();
        for i in 0..30u64 {
            f.write_all_at(&block, i * 4096).expect("write");
            f.sync_data().expect("fdatasync");
        }
        30.0 / start.elapsed().as_secs_f64()
    }

    /// Bytes per second: a new 32 MiB file in 1 MiB writes, one fdatasync.
    fn sequential_bandwidth(dir: &Path) -> f64 {
        let chunk = vec![3u8; 1 << 20];
        let start = Instant::now();
        let f = File::create(dir.join("seq")).expect("create");
        for i in 0..SEQ_BYTES / chunk.len() {
            f.write_all_at(&chunk, (i * chunk.len()) as u64)
                .expect("write");
        }
        f.sync_data().expect("fdatasync");
        SEQ_BYTES as f64 / start.elapsed().as_secs_f64()
    }

    /// Entries per second of synced saves of `count` entries, for at least
    /// 200 ms and 3 saves.
    fn wal_rate(wal: &Wal, next: &mut u64, size: usize, count: u64) -> f64 {
        let data = Bytes::from(vec![5u8; size]);
        let start = Instant::now();
        let mut saves = 0;
        while saves < 3 || start.elapsed() < Duration::from_millis(200) {
            let entries = batch(next, count, &data);
            wal.save(None, &entries, true).expect("save");
            saves += 1;
        }
        (saves * count) as f64 / start.elapsed().as_secs_f64()
    }

    /// Entries per second of `writers` threads each doing `per_writer`
    /// synced single-entry saves; timed from when all threads are ready.
    fn writers_rate(
        wal: &Arc<Wal>,
        next: &Arc<ordered::Counter>,
        writers: u64,
        per_writer: u64,
    ) -> f64 {
        let data = Bytes::from(vec![9u8; 128]);
        let ready = Arc::new(Barrier::new(writers as usize + 1));
        let handles: Vec<_> = (0..writers)
            .map(|_| {
                let (wal, next, data) = (Arc::clone(wal), Arc::clone(next), data.clone());
                let ready = Arc::clone(&ready);
                thread::spawn(move || {
                    ready.wait();
                    for _ in 0..per_writer {
                        next.append(&wal, &data);
                        wal.sync().expect("sync");
                    }
                })
            })
            .collect();
        ready.wait();
        let start = Instant::now();
        for h in handles {
            h.join().expect("join");
        }
        (writers * per_writer) as f64 / start.elapsed().as_secs_f64()
    }

    pub(super) fn run() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let fsync_file = fsync_file(tmp.path());
        println!("paired: median of {ROUNDS} back-to-back rounds");
        println!(
            "| preallocate | entry | batch | fdatasync/s | seq MiB/s | WAL entries/s | \
             vs batch x fdatasync | vs seq bandwidth | vs the binding limit | \
             vs fsync + transfer |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        for preallocate in [true, false] {
            for size in ENTRY_SIZES {
                for count in BATCH_SIZES {
                    batch_row(tmp.path(), &fsync_file, preallocate, size, count);
                }
            }
        }
        println!();
        real_writers(tmp.path(), &fsync_file);
        emulated_writers(tmp.path());
        rotation_latency(tmp.path());
    }

    /// Only the two writers tables.
    pub(super) fn run_writers() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let fsync_file = fsync_file(tmp.path());
        real_writers(tmp.path(), &fsync_file);
        emulated_writers(tmp.path());
    }

    /// A 1 MiB allocated and synced file for `fdatasync_rate`.
    fn fsync_file(tmp: &Path) -> File {
        let f = File::create(tmp.join("fsync")).expect("create");
        f.write_all_at(&vec![0u8; 1 << 20], 0).expect("fill");
        f.sync_all().expect("sync");
        f
    }

    /// One row of the batch table: `count` entries of `size` bytes per
    /// synced save, against the disk's limits measured in the same rounds.
    fn batch_row(tmp: &Path, fsync_file: &File, preallocate: bool, size: usize, count: u64) {
        let dir = tmp.join(format!("wal-{preallocate}-{size}-{count}"));
        let opts = WalOptions::new().preallocate(preallocate);
        let (wal, _) = Wal::open(&dir, opts).expect("open");
        let mut next = 1;
        let (mut fs, mut bws, mut eps) = (vec![], vec![], vec![]);
        let (mut r_f, mut r_bw, mut r_lim, mut r_sum) = (vec![], vec![], vec![], vec![]);
        for _ in 0..ROUNDS {
            // The spare segment's zero fill, if running, would slow the
            // baselines down and flatter the ratios.
            wal.wait_for_preallocation();
            let f = fdatasync_rate(fsync_file);
            let bw = sequential_bandwidth(tmp);
            let e = wal_rate(&wal, &mut next, size, count);
            let by_fsync = count as f64 * f;
            let by_bw = bw / size as f64;
            r_f.push(e / by_fsync);
            r_bw.push(e * size as f64 / bw);
            r_lim.push(e / by_fsync.min(by_bw));
            // One synchronous writer cannot overlap a batch's transfer with
            // its own fdatasync round trip.
            let batch_secs = 1.0 / f + (count as usize * size) as f64 / bw;
            r_sum.push(e / (count as f64 / batch_secs));
            fs.push(f);
            bws.push(bw);
            eps.push(e);
        }
        drop(wal);
        let _ = std::fs::remove_dir_all(&dir);
        println!(
            "| {preallocate} | {size} B | {count} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            median(fs),
            median(bws) / (1 << 20) as f64,
            median(eps),
            median(r_f),
            median(r_bw),
            median(r_lim),
            median(r_sum)
        );
    }

    /// Concurrent writers on the real disk, one 128 B entry per save. The
    /// last columns tell whether the run was bound by the CPU rather than
    /// the disk: with many more writers than cores, every save costs a
    /// park and an unpark, and the cores fill before the fsyncs do.
    fn real_writers(tmp: &Path, fsync_file: &File) {
        println!(
            "| writers (128 B, 1 entry each) | fdatasync/s | WAL entries/s | saves per fsync | \
             vs writers x fdatasync | CPU µs per save | cores busy |"
        );
        println!("|---|---|---|---|---|---|---|");
        for writers in [1u64, 4, 16, 64] {
            let dir = tmp.join(format!("writers-{writers}"));
            let (wal, _) = Wal::open(&dir, WalOptions::new()).expect("open");
            let wal = Arc::new(wal);
            let next = Arc::new(ordered::Counter::default());
            let (mut fs, mut eps, mut ratios, mut cpu, mut busy) =
                (vec![], vec![], vec![], vec![], vec![]);
            for _ in 0..ROUNDS {
                wal.wait_for_preallocation();
                let f = fdatasync_rate(fsync_file);
                let (cpu0, wall0) = (process_cpu(), Instant::now());
                // 12,800 saves in all, so that every run is long enough for
                // the CPU time's 10 ms clock ticks.
                let e = writers_rate(&wal, &next, writers, 12_800 / writers);
                let (cpu_secs, wall_secs) = (process_cpu() - cpu0, wall0.elapsed().as_secs_f64());
                fs.push(f);
                eps.push(e);
                ratios.push(e / (writers as f64 * f));
                cpu.push(cpu_secs * 1e6 / (e * wall_secs));
                busy.push(cpu_secs / wall_secs);
            }
            let stats = wal.stats();
            println!(
                "| {writers} | {:.0} | {:.0} | {:.1} | {:.2} | {:.1} | {:.2} |",
                median(fs),
                median(eps),
                stats.batches as f64 / stats.fsyncs.max(1) as f64,
                median(ratios),
                median(cpu),
                median(busy),
            );
        }
        println!();
    }

    /// CPU seconds (user + system) this process has used, from
    /// `/proc/self/stat`, which counts exited threads too; in clock ticks
    /// (10 ms), so only meaningful over runs of a good fraction of a second.
    fn process_cpu() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
        // The fields after the parenthesised command name, which may hold
        // spaces; utime and stime are the 14th and 15th fields.
        let rest = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks: u64 =
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        ticks as f64 / 100.0
    }

    /// Latency of synced saves (64 entries of 128 B) across three rotations
    /// of preallocated 64 MiB segments, with the next segment zero-filled
    /// by the background helper or inline by a save (as before the helper).
    fn rotation_latency(tmp: &Path) {
        println!("| zero fill of the next segment | saves | p50 | p99 | p99.9 | max |");
        println!("|---|---|---|---|---|---|");
        for background in [true, false] {
            let dir = tmp.join(format!("rotation-{background}"));
            let opts = WalOptions::new().background_preallocation(background);
            let (wal, _) = Wal::open(&dir, opts).expect("open");
            let data = Bytes::from(vec![5u8; 128]);
            let mut next = 1;
            let mut latencies = Vec::new();
            while wal.stats().rotations < 3 {
                let entries = batch(&mut next, 64, &data);
                let start = Instant::now();
                wal.save(None, &entries, true).expect("save");
                latencies.push(start.elapsed());
            }
            latencies.sort();
            let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
            println!(
                "| {} | {} | {:.2?} | {:.2?} | {:.2?} | {:.2?} |",
                if background {
                    "background helper"
                } else {
                    "inline, by a save"
                },
                latencies.len(),
                at(0.5),
                at(0.99),
                at(0.999),
                latencies[latencies.len() - 1]
            );
            drop(wal);
            let _ = std::fs::remove_dir_all(&dir);
        }
        println!();
    }

    /// Group commit against a disk with a fixed fsync latency (a backend
    /// whose `fdatasync` sleeps instead of syncing): what the grouping
    /// logic achieves, free of this disk's drifting fdatasync rate. Not a
    /// durability test; the real-disk table above is that.
    fn emulated_writers(tmp: &Path) {
        println!(
            "| writers (128 B, 1 entry each) | emulated fsync | measured fsync | WAL entries/s | \
             saves per fsync | vs writers x nominal rate | vs writers x measured rate |"
        );
        println!("|---|---|---|---|---|---|---|");
        for latency in [Duration::from_millis(3), Duration::from_millis(1)] {
            for writers in [1u64, 4, 16, 64] {
                let dir = tmp.join(format!("emulated-{writers}-{}", latency.as_micros()));
                let backend = Arc::new(super::slow::SlowSyncBackend::new(latency));
                let opts = WalOptions::new()
                    .backend(Arc::clone(&backend) as _)
                    .preallocate(false);
                let (wal, _) = Wal::open(&dir, opts).expect("open");
                let wal = Arc::new(wal);
                let next = Arc::new(ordered::Counter::default());
                let (mut rates, mut syncs) = (vec![], vec![]);
                for _ in 0..ROUNDS {
                    let (count0, time0) = backend.synced();
                    rates.push(writers_rate(&wal, &next, writers, 200));
                    let (count1, time1) = backend.synced();
                    syncs.push((time1 - time0).as_secs_f64() / (count1 - count0).max(1) as f64);
                }
                let ratio = |i: usize, sync_secs: f64| rates[i] * sync_secs / writers as f64;
                let nominal = median(
                    (0..ROUNDS)
                        .map(|i| ratio(i, latency.as_secs_f64()))
                        .collect(),
                );
                let measured = median((0..ROUNDS).map(|i| ratio(i, syncs[i])).collect());
                let stats = wal.stats();
                println!(
                    "| {writers} | {} ms | {:.2} ms | {:.0} | {:.1} | {nominal:.2} | {measured:.2} |",
                    latency.as_millis(),
                    median(syncs) * 1e3,
                    median(rates),
                    stats.batches as f64 / stats.fsyncs.max(1) as f64,
                );
                drop(wal);
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        println!();
    }
}

/// A file backend whose syncs sleep for a fixed time instead of syncing,
/// and which records how long its file syncs actually took: a sleep
/// overshoots, so that, not the nominal latency, is this emulated disk's
/// fdatasync rate.
mod slow {
    use std::io;
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::thread;
    use std::time::{Duration, Instant};

    use raft_io::{Backend, DirLock, FileBackend, FileHandle};

    #[derive(Debug)]
    pub(crate) struct SlowSyncBackend {
        latency: Duration,
        synced: Arc<SyncTime>,
    }

    /// File syncs so far and their total duration.
    #[derive(Debug, Default)]
    struct SyncTime {
        count: AtomicU64,
        nanos: AtomicU64,
    }

    impl SlowSyncBackend {
        pub(crate) fn new(latency: Duration) -> SlowSyncBackend {
            SlowSyncBackend {
                latency,
                synced: Arc::default(),
            }
        }

        /// (file syncs, their total duration) so far.
        pub(crate) fn synced(&self) -> (u64, Duration) {
            (
                self.synced.count.load(Ordering::Relaxed),
                Duration::from_nanos(self.synced.nanos.load(Ordering::Relaxed)),
            )
        }

        fn wrap(&self, file: Box<dyn FileHandle>) -> Box<dyn FileHandle> {
            Box::new(SlowSyncFile {
                file,
                latency: self.latency,
                synced: Arc::clone(&self.synced),
            })
        }
    }

    #[derive(Debug)]
    struct SlowSyncFile {
        file: Box<dyn FileHandle>,
        latency: Duration,
        synced: Arc<SyncTime>,
    }

    impl FileHandle for SlowSyncFile {
        fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
            self.file.write_at(offset, data)
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
            self.file.read_at(offset, buf)
        }
        fn len(&self) -> io::Result<u64> {
            self.file.len()
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.file.set_len(len)
        }
        fn sync_data(&self) -> io::Result<()> {
            let start = Instant::now();
            thread::sleep(self.latency);
            let nanos = start.elapsed().as_nanos() as u64;
            self.synced.count.fetch_add(1, Ordering::Relaxed);
            self.synced.nanos.fetch_add(nanos, Ordering::Relaxed);
            Ok(())
        }
    }

    impl Backend for SlowSyncBackend {
        fn create_dir_all(&self, path: &Path) -> io::Result<()> {
            FileBackend.create_dir_all(path)
        }
        fn create(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
            Ok(self.wrap(FileBackend.create(path)?))
        }
        fn open(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
            Ok(self.wrap(FileBackend.open(path)?))
        }
        fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
            FileBackend.read(path)
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            FileBackend.rename(from, to)
        }
        fn remove_file(&self, path: &Path) -> io::Result<()> {
            FileBackend.remove_file(path)
        }
        fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
            FileBackend.list_dir(dir)
        }
        fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
            thread::sleep(self.latency);
            Ok(())
        }
        fn lock_dir(&self, dir: &Path) -> io::Result<DirLock> {
            FileBackend.lock_dir(dir)
        }
    }
}
