//! Crash-consistency exploration of the shared WAL, as `crash.rs` does for
//! the one-group log, with three groups interleaved in the same batches
//! and segments: a fault at backend operation N for every N, a seeded
//! crash, a recovery that fails at one of its own operations and crashes
//! again, then a recovery that must produce, for every group at once, a
//! state the workload could have left: no acknowledged save of any group
//! lost, nothing invented, no group's entries or hard state in another's
//! log, a dropped group gone only once its drop could have happened.

mod common;

use std::collections::BTreeMap;

use common::*;
use raft_core::{ConfState, Entry, GroupId, HardState, Index, LogId, NodeId, Term};
use raft_io::{FaultKind, SimBackend};
use raft_wal::{
    GroupWrite, OpenError, ReleaseError, SaveError, SharedRecovered, SharedWal, SnapshotMarker,
    WalOptions,
};

const A: GroupId = GroupId(1);
const B: GroupId = GroupId(2);
const C: GroupId = GroupId(3);

type Part = (GroupId, Option<HardState>, Vec<Entry>);

#[derive(Debug, Clone)]
enum Op {
    Save(Vec<Part>, bool),
    Marker(GroupId, LogId),
    Release(GroupId, u64),
    Drop(GroupId),
}

fn part(g: GroupId, hs: Option<HardState>, es: Vec<Entry>) -> Part {
    (g, hs, es)
}

/// Entry payloads name their group (term = 10 × group + term), so an entry
/// recovered into the wrong group never matches.
fn es(g: GroupId, range: std::ops::RangeInclusive<u64>, term: u64, len: usize) -> Vec<Entry> {
    entries(range, g.get() * 10 + term, len)
}

fn workload() -> Vec<Op> {
    use Op::*;
    vec![
        Save(
            vec![
                part(A, Some(hard_state(1, 1, 0)), es(A, 1..=3, 1, 40)),
                part(B, Some(hard_state(1, 2, 0)), es(B, 1..=2, 1, 60)),
            ],
            true,
        ),
        Save(vec![part(C, None, es(C, 1..=4, 1, 150))], false),
        Save(
            vec![
                part(A, Some(hard_state(1, 1, 3)), es(A, 4..=6, 1, 150)),
                part(C, Some(hard_state(2, 3, 2)), es(C, 5..=6, 2, 100)),
            ],
            true,
        ),
        // B's conflict: replace its suffix from 2 in the same batch as A.
        Save(
            vec![
                part(B, Some(hard_state(2, 2, 1)), es(B, 2..=5, 2, 120)),
                part(A, None, es(A, 7..=9, 1, 90)),
            ],
            true,
        ),
        Marker(A, LogId::new(Term(11), Index(6))),
        Release(A, 6),
        Save(vec![part(B, None, es(B, 6..=9, 2, 200))], false),
        Marker(C, LogId::new(Term(32), Index(5))),
        Drop(B),
        Save(
            vec![
                part(C, Some(hard_state(3, 3, 6)), es(C, 7..=9, 3, 80)),
                part(A, Some(hard_state(1, 1, 9)), es(A, 10..=12, 1, 100)),
            ],
            true,
        ),
        Release(C, 5),
        // A leader's snapshot past A's end: A's log restarts.
        Marker(A, LogId::new(Term(12), Index(100))),
        Save(
            vec![part(
                A,
                Some(hard_state(2, 1, 100)),
                es(A, 101..=103, 2, 100),
            )],
            true,
        ),
        Release(A, 100),
        Save(vec![part(B, None, es(B, 1..=2, 5, 70))], true),
        Save(vec![part(C, None, es(C, 10..=12, 3, 300))], true),
    ]
}

/// One group's logical state.
#[derive(Debug, Clone, PartialEq)]
struct State {
    hs: HardState,
    base: u64,
    log: Vec<Entry>,
}

impl Default for State {
    /// An empty log, which starts at index 1.
    fn default() -> State {
        State {
            hs: HardState::default(),
            base: 1,
            log: Vec::new(),
        }
    }
}

impl State {
    fn last(&self) -> u64 {
        self.base + self.log.len() as u64 - 1
    }

    fn entries_after(&self, snapshot: Option<LogId>) -> Vec<Entry> {
        let from = snapshot.map_or(0, |s| s.index.get());
        self.log
            .iter()
            .filter(|e| e.index.get() > from)
            .cloned()
            .collect()
    }
}

type World = BTreeMap<GroupId, State>;

fn apply(world: &mut World, op: &Op) {
    match op {
        Op::Save(parts, _) => {
            for (g, hs, entries) in parts {
                let s = world.entry(*g).or_default();
                if let Some(first) = entries.first() {
                    s.log.truncate((first.index.get() - s.base) as usize);
                    s.log.extend(entries.iter().cloned());
                }
                if let Some(hs) = hs {
                    s.hs = *hs;
                }
            }
        }
        Op::Marker(g, id) => {
            let s = world.entry(*g).or_default();
            if id.index.get() > s.last() {
                s.log.clear();
                s.base = id.index.get() + 1;
            }
        }
        Op::Release(..) => {}
        Op::Drop(g) => {
            world.remove(g);
        }
    }
}

fn marker(id: LogId) -> SnapshotMarker {
    SnapshotMarker {
        index: id.index,
        term: id.term,
        conf_state: ConfState::with_voters([NodeId::new(1).expect("non-zero")]),
    }
}

fn options(sim: &SimBackend, preallocate: bool) -> WalOptions {
    sim_options(sim).preallocate(preallocate)
}

fn run(wal: &SharedWal, op: &Op) -> Result<(), SaveError> {
    match op {
        Op::Save(parts, sync) => {
            let writes: Vec<GroupWrite<'_>> = parts
                .iter()
                .map(|(g, hs, entries)| GroupWrite {
                    group: *g,
                    hard_state: hs.as_ref(),
                    entries,
                })
                .collect();
            wal.save(&writes, *sync)
        }
        Op::Marker(g, id) => wal.save_snapshot_marker(*g, &marker(*id)),
        Op::Release(g, i) => wal.release(*g, Index(*i)).map(drop).map_err(|e| match e {
            ReleaseError::Io(io) => SaveError::Io(io),
            other => panic!("undeclared release error: {other}"),
        }),
        Op::Drop(g) => wal.drop_group(*g),
    }
}

/// Runs the workload until its first error. Returns the worlds recovery
/// may produce (from the last acknowledged one on) and each group's newest
/// acknowledged marker.
fn run_until_error(sim: &SimBackend, preallocate: bool) -> (Vec<World>, BTreeMap<GroupId, LogId>) {
    let mut world = World::new();
    let mut candidates = vec![world.clone()];
    let mut acked = BTreeMap::new();
    let wal = match SharedWal::open(DIR, options(sim, preallocate)) {
        Ok((wal, _)) => wal,
        Err(OpenError::Io { .. }) => return (candidates, acked),
        Err(e) => panic!("undeclared open error: {e}"),
    };
    for op in workload() {
        let result = run(&wal, &op);
        apply(&mut world, &op);
        candidates.push(world.clone());
        match result {
            Ok(()) => {
                let acknowledged = match &op {
                    Op::Save(_, sync) => *sync,
                    Op::Marker(g, id) => {
                        acked.insert(*g, *id);
                        true
                    }
                    Op::Drop(g) => {
                        acked.remove(g);
                        true
                    }
                    Op::Release(..) => false,
                };
                if acknowledged {
                    candidates.drain(..candidates.len() - 1);
                }
            }
            Err(SaveError::Io(_)) => {
                assert!(wal.is_poisoned());
                return (candidates, acked);
            }
            Err(e) => panic!("undeclared save error: {e}"),
        }
    }
    (candidates, acked)
}

/// Each group's recovered hard state and entries after the snapshot a
/// caller would restore: its acknowledged marker, or a newer one an
/// unacknowledged save left.
type Seen = BTreeMap<GroupId, (HardState, Option<LogId>, Vec<Entry>)>;

fn seen(r: &SharedRecovered, acked: &BTreeMap<GroupId, LogId>, ctx: &str) -> Seen {
    r.groups
        .iter()
        .map(|(&g, rec)| {
            let wanted = acked.get(&g).copied();
            let (snapshot, entries) = match rec.clone().entries_after(wanted) {
                Ok((_, entries)) => (wanted, entries),
                Err(OpenError::SnapshotMismatch { .. }) => {
                    let newer = rec.snapshot_markers().last().copied();
                    let (_, entries) = rec
                        .clone()
                        .entries_after(newer)
                        .unwrap_or_else(|e| panic!("{ctx}: group {g} from {newer:?}: {e}"));
                    (newer, entries)
                }
                Err(e) => panic!("{ctx}: group {g}: {e}"),
            };
            (g, (rec.hard_state(), snapshot, entries))
        })
        .collect()
}

fn matches(world: &World, seen: &Seen) -> bool {
    world.len() == seen.len()
        && world.iter().all(|(g, s)| {
            seen.get(g)
                .is_some_and(|(hs, snap, es)| *hs == s.hs && *es == s.entries_after(*snap))
        })
}

const RECOVERY_OPS: u64 = 24;

fn explore(preallocate: bool, seeds: u64) {
    let total_ops = {
        let sim = SimBackend::new();
        let (candidates, _) = run_until_error(&sim, preallocate);
        assert_eq!(candidates.len(), 1, "the fault-free run completes");
        sim.op_count()
    };
    assert!(
        total_ops > 40,
        "the workload exercises the backend: {total_ops} ops"
    );
    let kinds = [FaultKind::Eio, FaultKind::Enospc, FaultKind::ShortWrite];
    for n in 0..=total_ops {
        for seed in 0..seeds {
            let sim = SimBackend::new();
            sim.inject_fault(n, kinds[(n % 3) as usize]);
            let (candidates, acked) = run_until_error(&sim, preallocate);
            sim.clear_fault();
            let crash_seed = n * 1000 + seed;
            sim.crash(crash_seed);
            let ctx = format!(
                "preallocate={preallocate} fault_at={n} crash_seed={crash_seed} \
                 (cargo test -p raft-wal --test shared_crash)"
            );
            // Recovery itself fails at one of its operations; power goes.
            sim.inject_fault(
                sim.op_count() + seed % RECOVERY_OPS,
                kinds[((n + seed) % 3) as usize],
            );
            match SharedWal::open(DIR, options(&sim, preallocate)) {
                Ok(_) | Err(OpenError::Io { .. }) => {}
                Err(e) => panic!("{ctx}: undeclared error from a failing recovery: {e}"),
            }
            sim.clear_fault();
            sim.crash((n + seed) ^ 0x00de_ad00);
            let (wal, r) = SharedWal::open(DIR, options(&sim, preallocate))
                .unwrap_or_else(|e| panic!("{ctx}: recovery refused a crash state: {e}"));
            let got = seen(&r, &acked, &ctx);
            assert!(
                candidates.iter().any(|w| matches(w, &got)),
                "{ctx}: recovered {got:#?} matches no candidate {candidates:#?}"
            );
            // Writable, and keeps what it writes, for every group.
            let next: Vec<(GroupId, Entry)> = r
                .groups
                .iter()
                .map(|(&g, rec)| (g, entry(rec.last_index().get() + 1, 99, 33)))
                .collect();
            let writes: Vec<GroupWrite<'_>> = next
                .iter()
                .map(|(g, e)| GroupWrite {
                    group: *g,
                    hard_state: None,
                    entries: std::slice::from_ref(e),
                })
                .collect();
            wal.save(&writes, true)
                .unwrap_or_else(|e| panic!("{ctx}: append after recovery: {e}"));
            drop(wal);
            sim.crash(crash_seed + 1);
            let (_, again) = SharedWal::open(DIR, options(&sim, preallocate))
                .unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
            let again = seen(&again, &acked, &ctx);
            for (g, e) in &next {
                let mut want = got[g].2.clone();
                want.push(e.clone());
                assert_eq!(again[g].2, want, "{ctx}: group {g}");
            }
        }
    }
}

#[test]
fn every_crash_point_recovers_every_groups_acknowledged_prefix_with_preallocation() {
    explore(true, 8);
}

#[test]
fn every_crash_point_recovers_every_groups_acknowledged_prefix_without_preallocation() {
    explore(false, 8);
}

#[test]
#[ignore = "soak: run with --ignored"]
fn every_crash_point_with_many_crash_seeds() {
    let seeds = std::env::var("RAFT_WAL_CRASH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    explore(true, seeds);
    explore(false, seeds);
}
