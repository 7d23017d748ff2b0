//! A conformance suite for [`Storage`] implementations.
//!
//! raft-core relies on the contract documented on [`Storage`]: entry ranges
//! with size limits, the term of the entry just before the first one,
//! `Compacted` / `Unavailable` at the right boundaries, snapshots, hard state
//! round trips. Implement [`TestableStorage`] (the write side the suite
//! needs) for your storage and call [`check_storage`] from a test:
//!
//! ```
//! use raft_core::MemoryStorage;
//! use raft_core::testkit::conformance::check_storage;
//!
//! check_storage(MemoryStorage::new).expect("MemoryStorage keeps the contract");
//! ```

use bytes::Bytes;

use crate::ready::PersistBatch;
use crate::storage::{MemoryStorage, PersistError, Storage, StorageError};
use crate::types::{ConfState, Entry, HardState, Index, NodeId, Snapshot, SnapshotMetadata, Term};

/// The write operations the suite needs to set up each case. A storage
/// implements [`TestableStorage::persist`] (step 2 of the Ready contract),
/// so the suite writes through the same path a node does.
pub trait TestableStorage: Storage {
    /// Persists one Ready's snapshot, entries and hard state, in that
    /// order.
    ///
    /// # Errors
    /// Whatever the storage reports.
    fn persist(&self, batch: &PersistBatch) -> Result<(), StorageError>;
    /// Sets the membership reported by `initial_state`.
    ///
    /// # Errors
    /// Whatever the storage reports.
    fn save_conf_state(&self, cs: ConfState) -> Result<(), StorageError>;
    /// Records a snapshot at `index` (in the log) and discards the entries
    /// it covers.
    ///
    /// # Errors
    /// Whatever the storage reports.
    fn snapshot_and_compact(
        &self,
        index: Index,
        cs: ConfState,
        data: Bytes,
    ) -> Result<(), StorageError>;

    /// Appends entries through [`TestableStorage::persist`].
    ///
    /// # Errors
    /// Whatever the storage reports.
    fn append_entries(&self, entries: &[Entry]) -> Result<(), StorageError> {
        self.persist(&PersistBatch {
            entries: entries.to_vec(),
            must_sync: true,
            ..PersistBatch::new(crate::ReadyNumber::FIRST)
        })
    }
    /// Persists the hard state through [`TestableStorage::persist`].
    ///
    /// # Errors
    /// Whatever the storage reports.
    fn save_hard_state(&self, hs: HardState) -> Result<(), StorageError> {
        self.persist(&PersistBatch {
            hard_state: Some(hs),
            must_sync: true,
            ..PersistBatch::new(crate::ReadyNumber::FIRST)
        })
    }
    /// Replaces the whole log with a snapshot received from a leader,
    /// through [`TestableStorage::persist`].
    ///
    /// # Errors
    /// Whatever the storage reports.
    fn install_snapshot(&self, snapshot: Snapshot) -> Result<(), StorageError> {
        self.persist(&PersistBatch {
            snapshot: Some(snapshot),
            must_sync: true,
            ..PersistBatch::new(crate::ReadyNumber::FIRST)
        })
    }
}

impl TestableStorage for MemoryStorage {
    fn persist(&self, batch: &PersistBatch) -> Result<(), StorageError> {
        self.persist_batch(batch).map_err(|e| match e {
            PersistError::SnapshotOutOfDate { .. } => StorageError::SnapshotOutOfDate,
            PersistError::Gap { .. } => StorageError::Unavailable,
        })
    }
    fn save_conf_state(&self, cs: ConfState) -> Result<(), StorageError> {
        self.set_conf_state(cs);
        Ok(())
    }
    fn snapshot_and_compact(
        &self,
        index: Index,
        cs: ConfState,
        data: Bytes,
    ) -> Result<(), StorageError> {
        self.create_snapshot(index, cs, data)?;
        self.compact(index)
    }
}

/// A broken rule of the storage contract.
#[derive(Debug, thiserror::Error)]
#[error("storage conformance case `{case}` failed: {detail}")]
pub struct ConformanceError {
    /// The case that failed.
    pub case: &'static str,
    /// What was expected and what happened.
    pub detail: String,
}

type CaseResult = Result<(), String>;

/// A named case of the suite.
type Case<S> = (&'static str, fn(&S) -> CaseResult);

fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> CaseResult {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn expect_err<T: std::fmt::Debug>(
    what: &str,
    got: Result<T, StorageError>,
    want: fn(&StorageError) -> bool,
    name: &str,
) -> CaseResult {
    match got {
        Err(e) if want(&e) => Ok(()),
        other => Err(format!("{what}: got {other:?}, want Err({name})")),
    }
}

fn ok<T>(what: &str, r: Result<T, StorageError>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: unexpected error {e}"))
}

/// Ten entries, index `i` at term `(i + 2) / 3`, payload `i` repeated.
fn ten_entries() -> Vec<Entry> {
    (1..=10u64)
        .map(|i| {
            Entry::new(
                Term(i.div_ceil(3)),
                Index(i),
                Bytes::from(vec![i as u8; i as usize]),
            )
        })
        .collect()
}

fn conf() -> ConfState {
    ConfState::with_voters([NodeId::new(1).expect("id"), NodeId::new(2).expect("id")])
}

fn is_compacted(e: &StorageError) -> bool {
    matches!(e, StorageError::Compacted)
}

fn is_unavailable(e: &StorageError) -> bool {
    matches!(e, StorageError::Unavailable)
}

fn empty_log<S: Storage>(s: &S) -> CaseResult {
    expect_eq("first_index", ok("first_index", s.first_index())?, Index(1))?;
    expect_eq("last_index", ok("last_index", s.last_index())?, Index(0))?;
    expect_eq("term(0)", ok("term(0)", s.term(Index(0)))?, Term(0))?;
    expect_eq(
        "entries(1, 1)",
        ok("entries", s.entries(Index(1), Index(1), u64::MAX))?,
        vec![],
    )?;
    expect_err("term(1)", s.term(Index(1)), is_unavailable, "Unavailable")?;
    expect_eq(
        "hard state",
        ok("initial_state", s.initial_state())?.hard_state,
        HardState::default(),
    )
}

fn entry_ranges<S: TestableStorage>(s: &S) -> CaseResult {
    let all = ten_entries();
    ok("append", s.append_entries(&all))?;
    expect_eq("last_index", ok("last_index", s.last_index())?, Index(10))?;
    expect_eq(
        "entries(3, 7)",
        ok("entries", s.entries(Index(3), Index(7), u64::MAX))?,
        all[2..6].to_vec(),
    )?;
    expect_eq(
        "entries(1, 11)",
        ok("entries", s.entries(Index(1), Index(11), u64::MAX))?,
        all.clone(),
    )?;
    expect_err(
        "entries(5, 12)",
        s.entries(Index(5), Index(12), u64::MAX),
        is_unavailable,
        "Unavailable",
    )?;
    for (i, e) in all.iter().enumerate() {
        expect_eq("term", ok("term", s.term(Index(i as u64 + 1)))?, e.term)?;
    }
    expect_err("term(11)", s.term(Index(11)), is_unavailable, "Unavailable")
}

fn size_limits<S: TestableStorage>(s: &S) -> CaseResult {
    let all = ten_entries();
    ok("append", s.append_entries(&all))?;
    let two = all[2].size_bytes() + all[3].size_bytes();
    expect_eq(
        "limited to two",
        ok("entries", s.entries(Index(3), Index(10), two))?,
        all[2..4].to_vec(),
    )?;
    expect_eq(
        "limit just below two",
        ok("entries", s.entries(Index(3), Index(10), two - 1))?,
        all[2..3].to_vec(),
    )?;
    expect_eq(
        "at least one",
        ok("entries", s.entries(Index(3), Index(10), 0))?,
        all[2..3].to_vec(),
    )
}

fn conflicting_append_truncates<S: TestableStorage>(s: &S) -> CaseResult {
    ok("append", s.append_entries(&ten_entries()))?;
    let replacement = vec![
        Entry::new(Term(7), Index(5), Bytes::from_static(b"x")),
        Entry::new(Term(7), Index(6), Bytes::from_static(b"y")),
    ];
    ok("append conflicting", s.append_entries(&replacement))?;
    expect_eq("last_index", ok("last_index", s.last_index())?, Index(6))?;
    expect_eq("term(5)", ok("term", s.term(Index(5)))?, Term(7))?;
    expect_eq("term(4)", ok("term", s.term(Index(4)))?, Term(2))?;
    expect_eq(
        "entries(5, 7)",
        ok("entries", s.entries(Index(5), Index(7), u64::MAX))?,
        replacement,
    )
}

fn compaction_boundaries<S: TestableStorage>(s: &S) -> CaseResult {
    let all = ten_entries();
    ok("append", s.append_entries(&all))?;
    ok(
        "snapshot_and_compact",
        s.snapshot_and_compact(Index(5), conf(), Bytes::from_static(b"sm")),
    )?;
    expect_eq("first_index", ok("first_index", s.first_index())?, Index(6))?;
    expect_eq("last_index", ok("last_index", s.last_index())?, Index(10))?;
    expect_eq(
        "term at the compaction point",
        ok("term", s.term(Index(5)))?,
        all[4].term,
    )?;
    expect_err("term(4)", s.term(Index(4)), is_compacted, "Compacted")?;
    expect_err(
        "entries(5, 7)",
        s.entries(Index(5), Index(7), u64::MAX),
        is_compacted,
        "Compacted",
    )?;
    expect_eq(
        "entries(6, 8)",
        ok("entries", s.entries(Index(6), Index(8), u64::MAX))?,
        all[5..7].to_vec(),
    )?;
    let snap = ok("snapshot", s.snapshot(Index(0)))?;
    expect_eq("snapshot index", snap.metadata.index, Index(5))?;
    expect_eq("snapshot term", snap.metadata.term, all[4].term)?;
    expect_eq("snapshot conf", snap.metadata.conf_state, conf())?;
    expect_eq("snapshot data", snap.data, Bytes::from_static(b"sm"))
}

fn installed_snapshot_replaces_the_log<S: TestableStorage>(s: &S) -> CaseResult {
    ok("append", s.append_entries(&ten_entries()))?;
    let snap = Snapshot {
        metadata: SnapshotMetadata {
            index: Index(20),
            term: Term(9),
            conf_state: conf(),
        },
        data: Bytes::from_static(b"state"),
    };
    ok("install_snapshot", s.install_snapshot(snap.clone()))?;
    expect_eq(
        "first_index",
        ok("first_index", s.first_index())?,
        Index(21),
    )?;
    expect_eq("last_index", ok("last_index", s.last_index())?, Index(20))?;
    expect_eq("term(20)", ok("term", s.term(Index(20)))?, Term(9))?;
    expect_eq("snapshot", ok("snapshot", s.snapshot(Index(0)))?, snap)?;
    expect_eq(
        "conf state",
        ok("initial_state", s.initial_state())?.conf_state,
        conf(),
    )?;
    let next = vec![Entry::new(Term(9), Index(21), Bytes::from_static(b"z"))];
    ok("append after snapshot", s.append_entries(&next))?;
    expect_eq(
        "entries(21, 22)",
        ok("entries", s.entries(Index(21), Index(22), u64::MAX))?,
        next,
    )
}

fn hard_and_conf_state_round_trip<S: TestableStorage>(s: &S) -> CaseResult {
    ok("append", s.append_entries(&ten_entries()))?;
    let hs = HardState {
        term: Term(4),
        vote: NodeId::new(2),
        commit: Index(7),
    };
    ok("save_hard_state", s.save_hard_state(hs))?;
    ok("save_conf_state", s.save_conf_state(conf()))?;
    let init = ok("initial_state", s.initial_state())?;
    expect_eq("hard state", init.hard_state, hs)?;
    expect_eq("conf state", init.conf_state, conf())
}

/// Runs every case, each on a fresh storage from `fresh`.
///
/// # Errors
/// The first case that fails, with what was expected.
pub fn check_storage<S: TestableStorage>(
    mut fresh: impl FnMut() -> S,
) -> Result<(), ConformanceError> {
    let cases: [Case<S>; 7] = [
        ("empty_log", empty_log::<S>),
        ("entry_ranges", entry_ranges::<S>),
        ("size_limits", size_limits::<S>),
        (
            "conflicting_append_truncates",
            conflicting_append_truncates::<S>,
        ),
        ("compaction_boundaries", compaction_boundaries::<S>),
        (
            "installed_snapshot_replaces_the_log",
            installed_snapshot_replaces_the_log::<S>,
        ),
        (
            "hard_and_conf_state_round_trip",
            hard_and_conf_state_round_trip::<S>,
        ),
    ];
    for (case, run) in cases {
        run(&fresh()).map_err(|detail| ConformanceError { case, detail })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A storage that forgets to answer the term at the compaction point.
    struct ForgetfulCompaction(MemoryStorage);

    impl Storage for ForgetfulCompaction {
        fn initial_state(&self) -> Result<crate::InitialState, StorageError> {
            self.0.initial_state()
        }
        fn entries(&self, lo: Index, hi: Index, max: u64) -> Result<Vec<Entry>, StorageError> {
            self.0.entries(lo, hi, max)
        }
        fn term(&self, index: Index) -> Result<Term, StorageError> {
            if index < self.0.first_index()? {
                return Err(StorageError::Compacted);
            }
            self.0.term(index)
        }
        fn first_index(&self) -> Result<Index, StorageError> {
            self.0.first_index()
        }
        fn last_index(&self) -> Result<Index, StorageError> {
            self.0.last_index()
        }
        fn snapshot(&self, i: Index) -> Result<Snapshot, StorageError> {
            self.0.snapshot(i)
        }
    }

    impl TestableStorage for ForgetfulCompaction {
        fn persist(&self, batch: &PersistBatch) -> Result<(), StorageError> {
            TestableStorage::persist(&self.0, batch)
        }
        fn save_conf_state(&self, cs: ConfState) -> Result<(), StorageError> {
            self.0.save_conf_state(cs)
        }
        fn snapshot_and_compact(
            &self,
            i: Index,
            cs: ConfState,
            d: Bytes,
        ) -> Result<(), StorageError> {
            self.0.snapshot_and_compact(i, cs, d)
        }
    }

    #[test]
    fn memory_storage_passes_the_suite() {
        check_storage(MemoryStorage::new).expect("conforms");
    }

    #[test]
    fn a_storage_that_drops_the_compaction_point_term_fails_the_suite() {
        let err = check_storage(|| ForgetfulCompaction(MemoryStorage::new())).expect_err("broken");
        // Index 0 is the compaction point of an empty log.
        assert_eq!(err.case, "empty_log");
        assert!(err.detail.contains("term(0)"), "{err}");
    }
}
