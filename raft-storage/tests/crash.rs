//! Crash exploration at the storage layer.
//!
//! A seeded workload of persists (appends, conflicting suffixes, commit-only
//! hard states, conf-change entries), snapshots taken with
//! `snapshot_and_compact`, snapshots received from a leader (`persist` of a
//! Ready with a snapshot, some streamed in first with `install_snapshot`)
//! and clean restarts runs on the simulated file system with a fault
//! injected at backend operation N, for every N: the workload stops at its
//! first error (which must poison the storage), the power goes (seeded
//! tearing of unsynced writes), and recovery must produce one of the states
//! the workload could have left, from the last acknowledged one on:
//!
//! - the hard state never goes back and no entry reported persisted is lost
//!   (the state is at or after the last acknowledged one);
//! - nothing is invented (it is a state the workload passed through);
//! - the recovered log and snapshot agree: the log starts right after the
//!   snapshot and the membership is the snapshot's;
//! - a second recovery equals the first, and the storage takes writes.
//!
//! Each workload runs twice: on a storage with its own WAL, and on group 2
//! of a `SharedWal` beside a neighbour group 1 that gets the same
//! operations right after it (so the two groups' records interleave in
//! every batch sequence and segment, and a fault may hit either).
//!
//! CI runs `SEEDS` seeds; `cargo test -p raft-storage --release --test
//! crash -- --ignored` runs thousands (`RAFT_STORAGE_CRASH_SEEDS=n`). A
//! failure prints the seed, the operation cut and the replay command.

use bytes::Bytes;
use std::sync::Arc;

use raft_core::{
    ConfState, Entry, EntryKind, GroupId, HardState, Index, NodeId, PersistBatch, Snapshot,
    SnapshotMetadata, Storage, Term,
};
use raft_io::{FaultKind, SimBackend};
use raft_storage::{CompactionPolicy, DiskStorage, StorageOptions};
use raft_wal::{SharedWal, WalOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIR: &str = "/node";
const SEEDS: u64 = 6;
const STEPS: usize = 40;

#[derive(Debug, Clone)]
enum Op {
    Persist {
        snapshot: Option<Snapshot>,
        /// Stream the snapshot in with `install_snapshot` first.
        streamed: bool,
        entries: Vec<Entry>,
        hs: Option<HardState>,
        sync: bool,
    },
    Snapshot {
        index: Index,
        conf_state: ConfState,
        /// Through `snapshot_and_compact_from` (a reader) rather than bytes.
        streamed: bool,
    },
    Restart,
}

/// The logical state recovery must reproduce.
#[derive(Debug, Clone, PartialEq)]
struct State {
    hs: HardState,
    /// Every entry after the snapshot, in order.
    log: Vec<Entry>,
    snapshot: Option<SnapshotMetadata>,
}

impl State {
    fn new() -> State {
        State {
            hs: HardState::default(),
            log: Vec::new(),
            snapshot: None,
        }
    }

    fn snapshot_index(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.index.get())
    }

    fn last(&self) -> u64 {
        self.log
            .last()
            .map_or(self.snapshot_index(), |e| e.index.get())
    }

    fn term_at(&self, index: u64) -> Term {
        match self.log.iter().find(|e| e.index.get() == index) {
            Some(e) => e.term,
            None => self.snapshot.as_ref().map_or(Term::ZERO, |s| s.term),
        }
    }

    /// Records a snapshot: the log restarts after it if it is past the end.
    fn record_snapshot(&mut self, meta: &SnapshotMetadata) {
        if meta.index.get() > self.last() {
            self.log.clear();
        } else {
            self.log.retain(|e| e.index > meta.index);
        }
        self.snapshot = Some(meta.clone());
        self.hs.commit = self.hs.commit.max(meta.index);
    }

    fn append(&mut self, entries: &[Entry], hs: Option<HardState>) {
        if let Some(first) = entries.first() {
            self.log.retain(|e| e.index < first.index);
            self.log.extend(entries.iter().cloned());
        }
        if let Some(hs) = hs {
            self.hs = hs;
        }
    }

    /// The states `op` passes through, the last being its end state.
    fn after(&self, op: &Op) -> Vec<State> {
        let mut s = self.clone();
        let mut states = Vec::new();
        match op {
            Op::Persist {
                snapshot,
                entries,
                hs,
                ..
            } => {
                if let Some(snap) = snapshot {
                    s.record_snapshot(&snap.metadata);
                    states.push(s.clone());
                }
                s.append(entries, *hs);
            }
            Op::Snapshot {
                index, conf_state, ..
            } => {
                let meta = SnapshotMetadata {
                    index: *index,
                    term: s.term_at(index.get()),
                    conf_state: conf_state.clone(),
                };
                s.record_snapshot(&meta);
            }
            Op::Restart => {}
        }
        states.push(s);
        states
    }

    fn is_durable(op: &Op) -> bool {
        match op {
            Op::Persist { sync, .. } => *sync,
            Op::Snapshot { .. } => true,
            // Recovery makes what it read durable.
            Op::Restart => true,
        }
    }
}

fn nid(n: u64) -> NodeId {
    NodeId::new(n).expect("non-zero")
}

fn entry(term: u64, index: u64, rng: &mut StdRng) -> Entry {
    let len = [0, 8, 100, 700][rng.random_range(0..4)];
    let mut e = Entry::new(
        Term(term),
        Index(index),
        Bytes::from(vec![(index % 251) as u8; len]),
    );
    if rng.random_ratio(1, 8) {
        // A conf change adding a learner: its id as the payload.
        e.kind = EntryKind::ConfChange;
        e.data = Bytes::copy_from_slice(&(10 + index).to_le_bytes());
    }
    e
}

/// The membership as of `index` in `log`: voters 1–3 and a learner per
/// conf-change entry at or before it.
fn conf_at(base: &ConfState, log: &[Entry], index: u64) -> ConfState {
    let mut cs = base.clone();
    for e in log
        .iter()
        .filter(|e| e.index.get() <= index && e.kind == EntryKind::ConfChange)
    {
        let id = u64::from_le_bytes(e.data[..8].try_into().expect("8 bytes"));
        cs.learners.insert(nid(id));
    }
    cs
}

/// A seeded workload that keeps raft-core's rules: terms never go back, an
/// append never truncates committed entries, commit never passes the log,
/// snapshots only at committed indexes.
fn workload(seed: u64) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut s = State::new();
    let mut base = ConfState::with_voters([1, 2, 3].map(nid));
    let mut ops = Vec::new();
    for _ in 0..STEPS {
        let term = s.hs.term.get().max(1);
        let last = s.last();
        let commit = s.hs.commit.get();
        let roll = rng.random_range(0..100);
        let op = if roll < 45 || last == 0 {
            let n = rng.random_range(1..=4);
            let entries: Vec<Entry> = (last + 1..=last + n)
                .map(|i| entry(term, i, &mut rng))
                .collect();
            let new_commit = if rng.random_bool(0.5) {
                rng.random_range(commit..=last + n)
            } else {
                commit
            };
            Op::Persist {
                snapshot: None,
                streamed: false,
                entries,
                hs: Some(HardState {
                    term: Term(term),
                    vote: s.hs.vote.or(Some(nid(1))),
                    commit: Index(new_commit),
                }),
                sync: rng.random_ratio(4, 5),
            }
        } else if roll < 55 && last > commit {
            // A new leader replaces the uncommitted suffix.
            let from = rng.random_range(commit + 1..=last);
            let entries: Vec<Entry> = (from..=from + rng.random_range(0..3))
                .map(|i| entry(term + 1, i, &mut rng))
                .collect();
            Op::Persist {
                snapshot: None,
                streamed: false,
                entries,
                hs: Some(HardState {
                    term: Term(term + 1),
                    vote: Some(nid(2)),
                    commit: Index(commit),
                }),
                sync: true,
            }
        } else if roll < 68 && last > commit {
            let hs = HardState {
                commit: Index(rng.random_range(commit + 1..=last)),
                ..s.hs
            };
            Op::Persist {
                snapshot: None,
                streamed: false,
                entries: Vec::new(),
                hs: Some(hs),
                sync: false,
            }
        } else if roll < 82 && commit > s.snapshot_index() {
            let index = rng.random_range(s.snapshot_index() + 1..=commit);
            Op::Snapshot {
                index: Index(index),
                conf_state: conf_at(&base, &s.log, index),
                streamed: rng.random_bool(0.5),
            }
        } else if roll < 92 {
            // A leader's snapshot past the end of the log.
            let index = last + rng.random_range(1..30);
            base = ConfState::with_voters([1, 2, 3].map(nid));
            base.learners.insert(nid(100 + index));
            let meta = SnapshotMetadata {
                index: Index(index),
                term: Term(term + 1),
                conf_state: base.clone(),
            };
            let data = Bytes::from(vec![(index % 13) as u8; rng.random_range(0..3000)]);
            Op::Persist {
                snapshot: Some(Snapshot {
                    metadata: meta,
                    data,
                }),
                streamed: rng.random_bool(0.5),
                entries: Vec::new(),
                hs: Some(HardState {
                    term: Term(term + 1),
                    vote: None,
                    commit: Index(index),
                }),
                sync: true,
            }
        } else {
            Op::Restart
        };
        s = s.after(&op).pop().expect("an end state");
        ops.push(op);
    }
    ops
}

fn options(fs: &SimBackend) -> StorageOptions {
    StorageOptions::new()
        .backend(fs.shared())
        // No background preallocation: its thread would make the order of
        // file-system operations, and so the cuts, nondeterministic.
        .wal(
            WalOptions::new()
                .segment_size_bytes(4096)
                .background_preallocation(false),
        )
}

fn policy() -> CompactionPolicy {
    CompactionPolicy::new()
        .catch_up_entries(3)
        .snapshots_kept(2)
}

/// Where the storage under test keeps its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// A WAL of its own in `DIR/wal`.
    Own,
    /// Group [`TESTED`] of a shared WAL in `DIR/shared-wal`, beside group
    /// [`NEIGHBOUR`].
    Shared,
}

const TESTED: GroupId = GroupId(2);
const NEIGHBOUR: GroupId = GroupId(1);

/// The storage under test and, in a shared WAL, the neighbour group's.
struct Node {
    storage: DiskStorage,
    neighbour: Option<DiskStorage>,
}

/// Opens (recovers) the node's storages.
fn open(fs: &SimBackend, layout: Layout) -> Result<Node, String> {
    let options = options(fs);
    if layout == Layout::Own {
        let (storage, _) = DiskStorage::open(DIR, options).map_err(|e| e.to_string())?;
        return Ok(Node {
            storage,
            neighbour: None,
        });
    }
    let (wal, mut recovered) =
        SharedWal::open(format!("{DIR}/shared-wal"), options.shared_wal_options())
            .map_err(|e| e.to_string())?;
    let wal = Arc::new(wal);
    let mut open_group = |group: GroupId, name: &str| {
        let log = recovered.groups.remove(&group);
        let dir = format!("{DIR}/{name}");
        DiskStorage::open_in_shared(dir, options.clone(), Arc::clone(&wal), group, log)
            .map(|(storage, _)| storage)
            .map_err(|e| format!("group {group}: {e}"))
    };
    let neighbour = open_group(NEIGHBOUR, "neighbour")?;
    let storage = open_group(TESTED, "tested")?;
    Ok(Node {
        storage,
        neighbour: Some(neighbour),
    })
}

/// Why an op failed (the injected fault's error), and whether it failed in
/// the neighbour group, after the tested storage's part succeeded.
struct Failed {
    error: String,
    in_neighbour: bool,
}

/// Runs one op on the tested storage, then on the neighbour (a restart
/// reopens both).
fn run_op(node: &mut Option<Node>, fs: &SimBackend, layout: Layout, op: &Op) -> Result<(), Failed> {
    let failed = |in_neighbour| {
        move |error| Failed {
            error,
            in_neighbour,
        }
    };
    if let Op::Restart = op {
        // The old storages hold the directory locks: gone before reopening.
        drop(node.take());
        *node = Some(open(fs, layout).map_err(failed(false))?);
        return Ok(());
    }
    let node = node.as_ref().expect("open");
    apply(&node.storage, op).map_err(failed(false))?;
    if let Some(neighbour) = &node.neighbour {
        apply(neighbour, op).map_err(failed(true))?;
    }
    Ok(())
}

/// Runs a persist or a snapshot on `storage`.
fn apply(storage: &DiskStorage, op: &Op) -> Result<(), String> {
    match op {
        Op::Persist {
            snapshot,
            streamed,
            entries,
            hs,
            sync,
        } => {
            if let (Some(snap), true) = (snapshot, streamed) {
                let mut encoded = Vec::new();
                let mut enc = raft_snap::SnapshotEncoder::new(
                    &mut encoded,
                    &snap.metadata,
                    snap.data.len() as u64,
                )
                .expect("encoder");
                enc.write_chunk(&snap.data).expect("encode");
                enc.finish().expect("finish");
                storage
                    .install_snapshot(&encoded[..], u64::MAX)
                    .map_err(|e| e.to_string())?;
            }
            let batch = PersistBatch {
                snapshot: snapshot.clone(),
                entries: entries.clone(),
                hard_state: *hs,
                must_sync: *sync,
                ..PersistBatch::new(raft_core::ReadyNumber::FIRST)
            };
            storage.persist_batch(&batch).map_err(|e| e.to_string())
        }
        Op::Snapshot {
            index,
            conf_state,
            streamed,
        } => {
            let data = Bytes::from(vec![7u8; 500]);
            let cs = conf_state.clone();
            let taken = if *streamed {
                storage.snapshot_and_compact_from(*index, cs, 500, &data[..], policy())
            } else {
                storage.snapshot_and_compact(*index, cs, data, policy())
            };
            taken.map(|_| ()).map_err(|e| e.to_string())
        }
        Op::Restart => unreachable!("run_op reopens"),
    }
}

/// What a recovered storage holds.
fn observe(storage: &DiskStorage) -> State {
    let init = storage.initial_state().expect("initial state");
    let first = storage.first_index().expect("first");
    let last = storage.last_index().expect("last");
    let log = storage
        .entries(first, last.next(), u64::MAX)
        .expect("entries");
    let meta = storage.snapshot_metadata();
    let snapshot = (meta.index > Index::ZERO).then_some(meta);
    let snap_index = snapshot.as_ref().map_or(Index::ZERO, |s| s.index);
    assert_eq!(
        first,
        snap_index.next(),
        "the log starts right after the snapshot"
    );
    let want_conf = snapshot
        .as_ref()
        .map(|s| s.conf_state.clone())
        .unwrap_or_default();
    assert_eq!(
        init.conf_state, want_conf,
        "the membership is the snapshot's"
    );
    if let Some(s) = &snapshot {
        let full = storage.snapshot(Index::ZERO).expect("snapshot data loads");
        assert_eq!(&full.metadata, s);
    }
    State {
        hs: init.hard_state,
        log,
        snapshot,
    }
}

/// Runs the workload with `fault` at backend operation `at` (none if past
/// the end); returns the states recovery may produce.
fn run_until_fault(
    ops: &[Op],
    fs: &SimBackend,
    layout: Layout,
    at: u64,
    fault: FaultKind,
) -> Vec<State> {
    fs.inject_fault(at, fault);
    let mut state = State::new();
    let mut candidates = vec![state.clone()];
    let Ok(node) = open(fs, layout) else {
        return candidates;
    };
    let mut node = Some(node);
    for op in ops {
        let passes = state.after(op);
        candidates.extend(passes.iter().cloned());
        if let Err(failed) = run_op(&mut node, fs, layout, op) {
            let e = &failed.error;
            assert!(
                at != u64::MAX && e.contains("simulated"),
                "{op:?} failed without an injected fault: {e}"
            );
            // A failure in the neighbour's snapshot file poisons only the
            // neighbour; the tested storage's checks are for its own.
            if let (Some(node), false) = (&node, failed.in_neighbour) {
                check_poisoned(&node.storage, &state, e);
            }
            return candidates;
        }
        state = passes.last().expect("end state").clone();
        if State::is_durable(op) {
            candidates = vec![state.clone()];
        }
    }
    candidates
}

/// A storage whose write failed is poisoned and refuses the next.
fn check_poisoned(storage: &DiskStorage, state: &State, e: &str) {
    assert!(
        storage.is_poisoned(),
        "{e}: a failed write must poison the storage"
    );
    let refused = storage.persist_batch(&PersistBatch {
        hard_state: Some(HardState {
            commit: Index(0),
            ..state.hs
        }),
        ..PersistBatch::new(raft_core::ReadyNumber::FIRST)
    });
    assert!(
        matches!(refused, Err(raft_storage::PersistError::Poisoned)),
        "a poisoned storage refuses writes: {refused:?}"
    );
}

/// Cuts the workload of `seed` at every backend operation.
fn explore(seed: u64, layout: Layout) -> u64 {
    let ops = workload(seed);
    let fs = SimBackend::new();
    let total = {
        run_until_fault(&ops, &fs, layout, u64::MAX, FaultKind::Eio);
        fs.op_count()
    };
    let kinds = [FaultKind::Eio, FaultKind::Enospc, FaultKind::ShortWrite];
    for at in 0..total {
        let fs = SimBackend::new();
        let kind = kinds[(at % 3) as usize];
        let candidates = run_until_fault(&ops, &fs, layout, at, kind);
        fs.clear_fault();
        fs.crash(seed ^ at);
        check_recovery(&fs, layout, &candidates).unwrap_or_else(|e| {
            panic!(
                "seed {seed}, {layout:?} layout, {kind:?} at operation {at} of {total}: {e}\n\
                 replay: RAFT_STORAGE_CRASH_SEED={seed} cargo test -p raft-storage --test crash replay_one_seed -- --ignored"
            )
        });
    }
    total
}

fn check_recovery(fs: &SimBackend, layout: Layout, candidates: &[State]) -> Result<(), String> {
    let node = open(fs, layout).map_err(|e| format!("recovery failed: {e}"))?;
    let got = observe(&node.storage);
    if !candidates.contains(&got) {
        return Err(format!(
            "recovered a state the workload never left:\n  got {got:?}\n  candidates {candidates:#?}"
        ));
    }
    drop(node);
    let node = open(fs, layout).map_err(|e| format!("second recovery failed: {e}"))?;
    let again = observe(&node.storage);
    if again != got {
        return Err(format!(
            "a second recovery differs:\n  first {got:?}\n  second {again:?}"
        ));
    }
    let next = Entry::new(
        got.hs.term.max(Term(1)),
        Index(got.last() + 1),
        Bytes::from_static(b"after"),
    );
    node.storage
        .persist_batch(&PersistBatch {
            entries: vec![next.clone()],
            must_sync: true,
            ..PersistBatch::new(raft_core::ReadyNumber::FIRST)
        })
        .map_err(|e| format!("the recovered storage refused a write: {e}"))?;
    drop(node);
    let node = open(fs, layout).map_err(|e| format!("third recovery failed: {e}"))?;
    let last = node.storage.last_index().expect("last");
    if node
        .storage
        .entries(last, last.next(), u64::MAX)
        .expect("entries")
        != vec![next]
    {
        return Err("the write after recovery was lost".into());
    }
    Ok(())
}

#[test]
fn every_cut_of_the_storage_workload_recovers_a_state_it_passed_through() {
    let mut ops = 0;
    for seed in 0..SEEDS {
        ops += explore(seed, Layout::Own);
    }
    assert!(
        ops > 1000,
        "the workloads reach the file system: {ops} operations"
    );
}

#[test]
fn every_cut_of_the_workload_in_a_shared_wal_beside_another_group_recovers_a_state_it_passed_through()
 {
    let mut ops = 0;
    for seed in 0..SEEDS {
        ops += explore(seed, Layout::Shared);
    }
    assert!(
        ops > 2000,
        "both groups' workloads reach the file system: {ops} operations"
    );
}

#[test]
#[ignore = "soak: thousands of seeds (RAFT_STORAGE_CRASH_SEEDS)"]
fn soak_many_seeds() {
    let seeds: u64 = std::env::var("RAFT_STORAGE_CRASH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let mut cuts = 0;
    for seed in SEEDS..SEEDS + seeds {
        cuts += explore(seed, Layout::Own) + explore(seed, Layout::Shared);
    }
    eprintln!("{seeds} seeds in both layouts, {cuts} cuts recovered");
}

#[test]
#[ignore = "replays RAFT_STORAGE_CRASH_SEED"]
fn replay_one_seed() {
    let seed = std::env::var("RAFT_STORAGE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("set RAFT_STORAGE_CRASH_SEED to the seed to replay");
    explore(seed, Layout::Own);
    explore(seed, Layout::Shared);
}

#[test]
fn the_workloads_exercise_every_kind_of_operation() {
    let ops: Vec<Op> = (0..SEEDS).flat_map(workload).collect();
    let count = |f: fn(&Op) -> bool| ops.iter().filter(|o| f(o)).count();
    assert!(count(|o| matches!(o, Op::Snapshot { streamed: true, .. })) > 3);
    assert!(
        count(|o| matches!(
            o,
            Op::Snapshot {
                streamed: false,
                ..
            }
        )) > 3
    );
    assert!(
        count(|o| matches!(
            o,
            Op::Persist {
                snapshot: Some(_),
                streamed: true,
                ..
            }
        )) > 2
    );
    assert!(
        count(|o| matches!(
            o,
            Op::Persist {
                snapshot: Some(_),
                streamed: false,
                ..
            }
        )) > 2
    );
    assert!(count(|o| matches!(o, Op::Restart)) > 2);
    assert!(
        count(
            |o| matches!(o, Op::Persist { entries, .. } if entries.iter().any(|e| e.kind == EntryKind::ConfChange))
        ) > 2
    );
}
