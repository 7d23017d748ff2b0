//! Crash consistency of `Snapshotter::save` on the simulated file system.
//!
//! Each run saves an "old" snapshot durably, then saves a "new" one with
//! operation number `step` of the save failing (EIO, ENOSPC or a short
//! write), then cuts the power: unsynced writes survive, vanish or tear at
//! random, and a random prefix of the unsynced directory changes survives.
//! After reopening, the newest loadable snapshot must be the old or the new
//! one, the new one if the save had returned success, and no torn file may
//! ever have been exposed under a final name (nothing is renamed `.broken`).
//!
//! The seeds derive from `RAFT_SNAP_CRASH_SEED` (default below); every
//! failure message prints the seed, the step and the fault.

use std::path::PathBuf;

use raft_core::{ConfState, Index, NodeId, Snapshot, SnapshotMetadata, Term};
use raft_io::{Backend, FaultKind, SimBackend};
use raft_snap::Snapshotter;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DEFAULT_SEED: u64 = 0x5eed_5a4a_0001;
const SEEDS_PER_STEP: u64 = 40;
const FAULTS: [FaultKind; 3] = [FaultKind::Eio, FaultKind::Enospc, FaultKind::ShortWrite];

fn base_seed() -> u64 {
    match std::env::var("RAFT_SNAP_CRASH_SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("RAFT_SNAP_CRASH_SEED={s:?} is not a u64")),
        Err(_) => DEFAULT_SEED,
    }
}

fn dir() -> PathBuf {
    PathBuf::from("/node/snap")
}

fn snapshot(term: u64, index: u64, data_len: usize, fill: u64) -> Snapshot {
    let mut rng = StdRng::seed_from_u64(fill);
    let data: Vec<u8> = (0..data_len).map(|_| rng.random()).collect();
    let voters = [1, 2, 3].map(|id| NodeId::new(id).expect("non-zero"));
    Snapshot {
        metadata: SnapshotMetadata {
            index: Index(index),
            term: Term(term),
            conf_state: ConfState::with_voters(voters),
        },
        data: data.into(),
    }
}

/// The number of backend operations one save of `snap` performs.
fn save_op_count(snap: &Snapshot) -> u64 {
    let sim = SimBackend::new();
    let snapshotter = Snapshotter::with_backend(sim.shared(), dir()).expect("open");
    let before = sim.op_count();
    snapshotter
        .save(&snap.metadata, &snap.data)
        .expect("fault-free save");
    sim.op_count() - before
}

struct Case<'a> {
    old: &'a Snapshot,
    new: &'a Snapshot,
    /// The operation of the second save that fails; `None` for no fault.
    fault: Option<(u64, FaultKind)>,
    seed: u64,
}

impl Case<'_> {
    fn describe(&self) -> String {
        format!(
            "seed={} fault={:?} (rerun with RAFT_SNAP_CRASH_SEED to vary the base seed)",
            self.seed, self.fault
        )
    }

    fn run(&self) {
        let sim = SimBackend::new();
        let snapshotter = Snapshotter::with_backend(sim.shared(), dir()).expect("open");
        snapshotter
            .save(&self.old.metadata, &self.old.data)
            .expect("the old snapshot saves without faults");
        if let Some((step, kind)) = self.fault {
            sim.inject_fault(sim.op_count() + step, kind);
        }
        let saved = snapshotter.save(&self.new.metadata, &self.new.data).is_ok();
        assert_eq!(saved, self.fault.is_none(), "{}", self.describe());
        sim.crash(self.seed);
        drop(snapshotter);

        let reopened = Snapshotter::with_backend(sim.shared(), dir())
            .unwrap_or_else(|e| panic!("reopen failed: {e}; {}", self.describe()));
        let loaded = reopened
            .load_newest()
            .unwrap_or_else(|e| panic!("no snapshot survived: {e}; {}", self.describe()));
        if saved {
            assert_eq!(
                &loaded,
                self.new,
                "acknowledged save lost; {}",
                self.describe()
            );
        } else {
            assert!(
                &loaded == self.old || &loaded == self.new,
                "loaded a snapshot that is neither old nor new; {}",
                self.describe()
            );
        }
        let names = sim.list_dir(&dir()).expect("list");
        assert!(
            names.iter().all(|n| n.ends_with(".snap")),
            "only snapshot files remain, none broken, none temporary: {names:?}; {}",
            self.describe()
        );
    }
}

/// Runs every (step, fault kind, seed) combination for saving `new` after
/// `old`, plus fault-free saves followed by a crash.
fn crash_at_every_step(old: &Snapshot, new: &Snapshot, seeds_per_step: u64) -> usize {
    let steps = save_op_count(new);
    assert!(
        steps >= 5,
        "a save is at least create, write, sync, rename, sync dir"
    );
    let base = base_seed();
    let mut runs = 0;
    for step in 0..=steps {
        for (k, &kind) in FAULTS.iter().enumerate() {
            for i in 0..seeds_per_step {
                let seed = base
                    .wrapping_add(step * 1_000_003)
                    .wrapping_add(k as u64 * 10_007)
                    .wrapping_add(i);
                let fault = (step < steps).then_some((step, kind));
                Case {
                    old,
                    new,
                    fault,
                    seed,
                }
                .run();
                runs += 1;
            }
        }
    }
    runs
}

#[test]
fn crash_at_each_step_of_save_leaves_the_old_or_the_new_snapshot_loadable() {
    let old = snapshot(1, 100, 700, 1);
    let new = snapshot(2, 200, 1500, 2);
    let runs = crash_at_every_step(&old, &new, SEEDS_PER_STEP);
    assert!(runs > 0);
}

#[test]
fn crash_while_replacing_a_snapshot_of_the_same_name_keeps_one_intact_version() {
    let old = snapshot(3, 300, 900, 3);
    let new = snapshot(3, 300, 1100, 4);
    crash_at_every_step(&old, &new, SEEDS_PER_STEP);
}

#[test]
fn crash_during_a_multi_write_save_never_exposes_a_torn_file() {
    // Larger than the 1 MiB write buffer, so the data reaches the file in
    // several writes, each of which a crash may tear.
    let old = snapshot(1, 10, 100, 5);
    let new = snapshot(1, 20, 2 * 1024 * 1024 + 333, 6);
    crash_at_every_step(&old, &new, 1);
}

#[test]
fn acknowledged_save_survives_any_crash() {
    let old = snapshot(1, 1, 10, 7);
    let new = snapshot(1, 2, 5000, 8);
    for i in 0..200 {
        Case {
            old: &old,
            new: &new,
            fault: None,
            seed: base_seed().wrapping_add(i),
        }
        .run();
    }
}

#[test]
fn crash_at_each_step_of_purge_keeps_the_newest_snapshot_loadable() {
    let snaps: Vec<Snapshot> = (1..=4).map(|i| snapshot(1, i * 10, 200, i)).collect();
    let purge_ops = {
        let sim = SimBackend::new();
        let snapshotter = Snapshotter::with_backend(sim.shared(), dir()).expect("open");
        for s in &snaps {
            snapshotter.save(&s.metadata, &s.data).expect("save");
        }
        let before = sim.op_count();
        assert_eq!(snapshotter.purge(1).expect("purge").len(), 3);
        sim.op_count() - before
    };
    let base = base_seed();
    for step in 0..=purge_ops {
        for i in 0..SEEDS_PER_STEP {
            let seed = base.wrapping_add(step * 1_000_003).wrapping_add(i);
            let sim = SimBackend::new();
            let snapshotter = Snapshotter::with_backend(sim.shared(), dir()).expect("open");
            for s in &snaps {
                snapshotter.save(&s.metadata, &s.data).expect("save");
            }
            if step < purge_ops {
                sim.inject_fault(sim.op_count() + step, FaultKind::Eio);
            }
            let purged = snapshotter.purge(1);
            assert_eq!(purged.is_ok(), step == purge_ops, "seed={seed} step={step}");
            sim.crash(seed);
            drop(snapshotter);
            let reopened = Snapshotter::with_backend(sim.shared(), dir()).expect("reopen");
            let loaded = reopened.load_newest().expect("newest survives");
            assert_eq!(
                &loaded,
                snaps.last().expect("four"),
                "seed={seed} step={step}"
            );
        }
    }
}

/// The process dies at any step of a save, restarts and loads the newest
/// snapshot, then the power goes: the snapshot loaded before the power cut
/// must still load after it, since the caller acts on it as durable (it
/// restores from it and may release its log behind it).
#[test]
fn what_a_restart_loads_survives_a_later_power_cut() {
    let old = snapshot(1, 10, 3000, 1);
    let new = snapshot(2, 20, 3000, 2);
    let steps = save_op_count(&new);
    for step in 0..steps {
        for seed in 0..8 {
            let sim = SimBackend::new();
            let snapshotter = Snapshotter::with_backend(sim.shared(), dir()).expect("open");
            snapshotter
                .save(&old.metadata, &old.data)
                .expect("the old snapshot saves without faults");
            sim.inject_fault(sim.op_count() + step, FAULTS[(step % 3) as usize]);
            let _ = snapshotter.save(&new.metadata, &new.data);
            sim.clear_fault();
            // The process dies: the page cache and unsynced names stay.
            drop(snapshotter);
            let restarted = Snapshotter::with_backend(sim.shared(), dir()).expect("restart");
            let loaded = restarted.load_newest().expect("a snapshot loads");
            drop(restarted);
            sim.crash(base_seed() ^ (step * 100 + seed));
            let after = Snapshotter::with_backend(sim.shared(), dir())
                .expect("reopen")
                .load_newest()
                .unwrap_or_else(|e| panic!("step={step} seed={seed}: nothing loads: {e}"));
            assert_eq!(
                after.metadata, loaded.metadata,
                "step={step} seed={seed}: the power cut took back what the restart loaded"
            );
        }
    }
}
