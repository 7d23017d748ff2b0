//! Group commit: concurrent synced saves share fsyncs, counted exactly.
//!
//! A backend wrapper holds the first fsync at a gate, so the test decides
//! which saves are queued behind it; no timing is involved.

mod common;

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use common::*;
use parking_lot::{Condvar, Mutex};
use raft_io::{Backend, DirLock, FaultKind, FileHandle, SimBackend};
use raft_wal::{SaveError, Wal};

#[derive(Debug, Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    armed: bool,
    waiting: usize,
    open: bool,
}

impl Gate {
    /// Called inside `sync_data`: blocks while armed and closed.
    fn pass(&self) {
        let mut s = self.state.lock();
        if !s.armed {
            return;
        }
        s.armed = false;
        s.waiting += 1;
        self.changed.notify_all();
        while !s.open {
            self.changed.wait(&mut s);
        }
    }

    fn wait_for_holder(&self) {
        let mut s = self.state.lock();
        while s.waiting == 0 {
            self.changed.wait(&mut s);
        }
    }

    fn open(&self) {
        self.state.lock().open = true;
        self.changed.notify_all();
    }
}

#[derive(Debug)]
struct GatedBackend {
    inner: SimBackend,
    gate: Arc<Gate>,
}

#[derive(Debug)]
struct GatedFile {
    inner: Box<dyn FileHandle>,
    gate: Arc<Gate>,
}

impl FileHandle for GatedFile {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.inner.write_at(offset, data)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_at(offset, buf)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.gate.pass();
        self.inner.sync_data()
    }
}

impl GatedBackend {
    fn wrap(&self, f: Box<dyn FileHandle>) -> Box<dyn FileHandle> {
        Box::new(GatedFile {
            inner: f,
            gate: Arc::clone(&self.gate),
        })
    }
}

impl Backend for GatedBackend {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        self.inner.create(path).map(|f| self.wrap(f))
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        self.inner.open(path).map(|f| self.wrap(f))
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn lock_dir(&self, dir: &Path) -> io::Result<DirLock> {
        self.inner.lock_dir(dir)
    }
    fn supports_background_io(&self) -> bool {
        self.inner.supports_background_io()
    }
}

/// Spins (yielding) until `cond` holds: the wait is on another thread's
/// progress, never on a clock.
fn wait_until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        thread::yield_now();
    }
}

/// A WAL over a simulated disk whose next fsync waits at the (armed) gate.
fn gated_wal() -> (SimBackend, Arc<Gate>, Arc<Wal>) {
    let sim = SimBackend::new();
    let gate = Arc::new(Gate::default());
    let backend = Arc::new(GatedBackend {
        inner: sim.clone(),
        gate: Arc::clone(&gate),
    });
    let opts = sim_options(&sim)
        .backend(backend)
        .segment_size_bytes(1 << 20);
    let (wal, _) = Wal::open(DIR, opts).expect("open");
    gate.state.lock().armed = true;
    (sim, gate, Arc::new(wal))
}

/// Starts a synced save of entry 1 and returns once its fsync waits at the
/// gate.
fn first_save_held_at_the_gate(wal: &Arc<Wal>, gate: &Gate) -> JoinHandle<Result<(), SaveError>> {
    let leader = {
        let wal = Arc::clone(wal);
        thread::spawn(move || wal.save(None, &entries(1..=1, 1, 8), true))
    };
    gate.wait_for_holder();
    leader
}

#[test]
fn saves_queued_behind_a_running_fsync_share_the_next_one() {
    let (_, gate, wal) = gated_wal();
    let leader = first_save_held_at_the_gate(&wal, &gate);
    // Two more writers arrive while the first fsync is in flight.
    let mut followers = Vec::new();
    for i in 2..=3u64 {
        let w = Arc::clone(&wal);
        followers.push(thread::spawn(move || {
            w.save(None, &entries(i..=i, 1, 8), true)
        }));
        wait_until(|| wal.stats().batches == i);
    }
    gate.open();
    leader.join().expect("join").expect("leader save");
    for f in followers {
        f.join().expect("join").expect("follower save");
    }
    let stats = wal.stats();
    assert_eq!(stats.batches, 3);
    assert_eq!(
        stats.fsyncs, 2,
        "one for the first save, one shared by the other two"
    );
}

#[test]
fn an_unsynced_save_during_a_running_fsync_is_written_when_that_fsync_ends() {
    let (sim, gate, wal) = gated_wal();
    let leader = first_save_held_at_the_gate(&wal, &gate);
    let writes = sim.stats().writes;
    wal.save(None, &entries(2..=2, 1, 8), false)
        .expect("unsynced save");
    assert_eq!(
        sim.stats().writes,
        writes,
        "left for the running group commit rather than written under the lock"
    );
    gate.open();
    leader.join().expect("join").expect("leader save");
    assert_eq!(wal.stats().fsyncs, 1, "nobody asked for a second fsync");
    // No crash: whatever reached the file is read back.
    drop(wal);
    let (_, r) = common::open(&sim);
    assert_eq!(r.entries, entries(1..=2, 1, 8));
}

#[test]
fn many_concurrent_writers_never_need_more_fsyncs_than_saves() {
    let sim = SimBackend::new();
    let opts = sim_options(&sim).segment_size_bytes(1 << 22);
    let (wal, _) = Wal::open(DIR, opts).expect("open");
    let wal = Arc::new(wal);
    let next = Arc::new(Mutex::new(1u64));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let wal = Arc::clone(&wal);
            let next = Arc::clone(&next);
            thread::spawn(move || {
                for _ in 0..50 {
                    // Indexes are handed out and written under one lock so
                    // they reach the WAL in order; the fsync is outside it.
                    let mut n = next.lock();
                    wal.save(None, &entries(*n..=*n, 1, 32), false)
                        .expect("write");
                    *n += 1;
                    drop(n);
                    wal.sync().expect("sync");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("join");
    }
    let stats = wal.stats();
    assert_eq!(stats.batches, 200);
    assert!(stats.fsyncs <= 200, "{stats:?}");
    assert_eq!(
        sim.stats().file_syncs - 1,
        stats.fsyncs,
        "open's segment creation aside"
    );
    drop(wal);
    let (_, r) = common::open(&sim);
    assert_eq!(r.entries, entries(1..=200, 1, 32));
}

#[test]
fn concurrent_writers_across_rotations_lose_no_acknowledged_entry() {
    let sim = SimBackend::new();
    let (wal, _) = Wal::open(DIR, sim_options(&sim)).expect("open");
    let wal = Arc::new(wal);
    let next = Arc::new(Mutex::new(1u64));
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let wal = Arc::clone(&wal);
            let next = Arc::clone(&next);
            thread::spawn(move || {
                let mut acked = 0;
                for k in 0..40u64 {
                    let mut n = next.lock();
                    let index = *n;
                    wal.save(None, &entries(index..=index, 1, 100), false)
                        .expect("write");
                    *n += 1;
                    drop(n);
                    // Some saves are left unsynced, so both the queued and
                    // the direct write paths meet rotations.
                    if (t + k) % 3 != 0 {
                        wal.sync().expect("sync");
                        acked = index;
                    }
                }
                acked
            })
        })
        .collect();
    let acked = handles
        .into_iter()
        .map(|h| h.join().expect("join"))
        .max()
        .expect("threads");
    assert!(wal.stats().rotations > 5, "{:?}", wal.stats());
    drop(wal);
    sim.crash_losing_unsynced();
    let (_, r) = common::open(&sim);
    let last = r.entries.len() as u64;
    assert!(last >= acked, "acknowledged {acked}, recovered {last}");
    assert_eq!(r.entries, entries(1..=last, 1, 100));
}

/// A fault anywhere under concurrent writers and rotations: every thread
/// returns (no waiter of any group is left asleep), acknowledged entries
/// survive a crash, and the WAL stays poisoned.
#[test]
fn a_fault_under_concurrent_writers_wakes_every_waiter() {
    for (round, at) in (0..120u64).step_by(7).enumerate() {
        let sim = SimBackend::new();
        let opts = sim_options(&sim).segment_size_bytes(1 << 12);
        let (wal, _) = Wal::open(DIR, opts).expect("open");
        let wal = Arc::new(wal);
        let kind = [FaultKind::Eio, FaultKind::ShortWrite][round % 2];
        sim.inject_fault(sim.op_count() + at, kind);
        let next = Arc::new(Mutex::new(1u64));
        let handles: Vec<_> = (0..6u64)
            .map(|t| {
                let wal = Arc::clone(&wal);
                let next = Arc::clone(&next);
                thread::spawn(move || {
                    let mut acked = 0;
                    for k in 0..30u64 {
                        let mut n = next.lock();
                        let index = *n;
                        let sync = (t + k) % 4 == 0;
                        if wal
                            .save(None, &entries(index..=index, 1, 100), sync)
                            .is_err()
                        {
                            return acked;
                        }
                        *n += 1;
                        drop(n);
                        if sync {
                            acked = acked.max(index);
                        } else if wal.sync().is_err() {
                            return acked;
                        } else {
                            acked = acked.max(index);
                        }
                    }
                    acked
                })
            })
            .collect();
        let acked = handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .max()
            .expect("threads");
        if wal.is_poisoned() {
            assert!(wal.sync().is_err(), "fault at op {at}");
        }
        drop(wal);
        sim.crash_losing_unsynced();
        let (_, r) = common::open(&sim);
        let last = r.entries.len() as u64;
        assert!(
            last >= acked,
            "fault at op {at}: acknowledged {acked}, recovered {last}"
        );
        assert_eq!(r.entries, entries(1..=last, 1, 100), "fault at op {at}");
    }
}
