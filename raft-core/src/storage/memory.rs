//! [`MemoryStorage`]: the log in memory, written through
//! [`MemoryStorage::persist`].

use std::sync::Arc;

use parking_lot::RwLock;

use super::{InitialState, Storage, StorageError, limit_size};
use crate::bootstrap::{BootstrapError, FoundingLog};
use crate::raw_node::LightReady;
use crate::ready::{PersistBatch, Ready};
use crate::types::{ConfState, Entry, HardState, Index, LogId, Snapshot, SnapshotMetadata, Term};

#[derive(Debug, Default)]
struct MemoryInner {
    hard_state: HardState,
    /// The membership reported by `initial_state`.
    conf_state: ConfState,
    /// The latest snapshot; may be newer than the compaction point.
    snapshot: Snapshot,
    /// The position just before `entries`: the compaction point, whose term
    /// is still answered.
    offset: LogId,
    /// Invariant: `entries[i].index == offset.index + 1 + i`.
    entries: Vec<Entry>,
}

impl MemoryInner {
    /// Refuses a received snapshot older than the stored one. One at the
    /// same index replaces it: a follower that requested a snapshot
    /// (`RawNode::request_snapshot`) restores its state machine from one
    /// that may end where its own last snapshot does.
    fn check_snapshot(&self, snapshot: &Snapshot) -> Result<(), PersistError> {
        let (index, stored) = (snapshot.metadata.index, self.snapshot.metadata.index);
        if index < stored {
            return Err(PersistError::SnapshotOutOfDate { index, stored });
        }
        Ok(())
    }

    fn apply_snapshot(&mut self, snapshot: Snapshot) {
        debug_assert!(self.check_snapshot(&snapshot).is_ok(), "checked first");
        let meta = &snapshot.metadata;
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.conf_state = meta.conf_state.clone();
        self.offset = meta.log_id();
        self.entries.clear();
        self.snapshot = snapshot;
    }

    /// Refuses entries that would leave a gap after the last index.
    fn check_append(&self, entries: &[Entry]) -> Result<(), PersistError> {
        match entries.first() {
            Some(first) if first.index > self.last_index().next() => Err(PersistError::Gap {
                first: first.index,
                last: self.last_index(),
            }),
            _ => Ok(()),
        }
    }

    /// Appends consecutive entries, replacing a conflicting suffix and
    /// skipping those at or before the compaction point.
    fn append(&mut self, entries: &[Entry]) {
        debug_assert!(self.check_append(entries).is_ok(), "checked first");
        debug_assert!(
            entries.windows(2).all(|w| w[1].index == w[0].index.next()),
            "entries are consecutive"
        );
        let offset = self.offset.index;
        let skip = (offset
            .next()
            .get()
            .saturating_sub(entries.first().map_or(0, |e| e.index.get()))
            as usize)
            .min(entries.len());
        let entries = &entries[skip..];
        let Some(first) = entries.first() else {
            return;
        };
        let keep = (first.index - offset.next()) as usize;
        self.entries.truncate(keep);
        self.entries.extend_from_slice(entries);
    }

    fn last_index(&self) -> Index {
        self.offset.index + self.entries.len() as u64
    }

    fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.offset.index {
            return Some(self.offset.term);
        }
        if index < self.offset.index {
            return None;
        }
        self.entries
            .get((index - self.offset.index.next()) as usize)
            .map(|e| e.term)
    }
}

/// An in-memory [`Storage`] the application writes to as it handles each
/// `Ready`. Cloning shares the same log (it is an `Arc` inside), so one clone
/// can live in the `RawNode` while the application writes through another.
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    inner: Arc<RwLock<MemoryInner>>,
}

impl MemoryStorage {
    /// An empty log with no members.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    /// Storage for a founding member of a new cluster: its log holds the
    /// founders' membership ([`FoundingLog`]), so that a node that joins
    /// later learns it by replaying the log. Every founder bootstraps with
    /// the same `founders`; a node that joins later starts from
    /// [`MemoryStorage::new`].
    ///
    /// The node starts with no configuration; its first `Ready` hands out
    /// the founding entries to apply (with `RawNode::apply_conf_change`),
    /// after which it can campaign.
    ///
    /// # Errors
    /// A [`BootstrapError`] if `founders` has no voter or is joint.
    pub fn bootstrap(founders: &ConfState) -> Result<MemoryStorage, BootstrapError> {
        Ok(MemoryStorage::with_founding_log(
            &FoundingLog::from_conf_state(founders)?,
        ))
    }

    /// Storage whose log is `founding` (see [`MemoryStorage::bootstrap`]).
    pub fn with_founding_log(founding: &FoundingLog) -> MemoryStorage {
        let s = MemoryStorage::new();
        s.append(&founding.entries)
            .expect("founding entries start at index 1");
        s.set_hard_state(founding.hard_state);
        s
    }

    /// An empty log whose membership is `conf_state`, as if applied before
    /// index 1: for a cluster whose members all start from it and that
    /// never grows. The membership is not in the log, so a node that joins
    /// later cannot learn it there: replaying the log from index 1, it
    /// refuses every conf change
    /// ([`ApplyConfChangeError::NoFoundingMembership`](crate::ApplyConfChangeError))
    /// and never campaigns, until a snapshot brings it the membership. To
    /// found a cluster that may grow, use [`MemoryStorage::bootstrap`].
    pub fn with_conf_state(conf_state: ConfState) -> MemoryStorage {
        let s = MemoryStorage::new();
        s.set_conf_state(conf_state);
        s
    }

    /// Records the hard state.
    pub fn set_hard_state(&self, hs: HardState) {
        self.inner.write().hard_state = hs;
    }

    /// The stored hard state.
    pub fn hard_state(&self) -> HardState {
        self.inner.read().hard_state
    }

    /// Sets the membership reported by [`Storage::initial_state`] (call it
    /// with the result of `RawNode::apply_conf_change`).
    pub fn set_conf_state(&self, cs: ConfState) {
        self.inner.write().conf_state = cs;
    }

    /// Appends `entries`, which must be consecutive. An entry at an index
    /// already present replaces it and everything after it (Raft's conflict
    /// truncation, paper §5.3); entries before the compaction point are
    /// skipped.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] if the entries would leave a gap after
    /// the last index.
    pub fn append(&self, entries: &[Entry]) -> Result<(), StorageError> {
        let mut inner = self.inner.write();
        inner
            .check_append(entries)
            .map_err(|_| StorageError::Unavailable)?;
        inner.append(entries);
        Ok(())
    }

    /// Discards entries up to and including `index`.
    ///
    /// Safe for an `index` the state machine has applied from the
    /// `committed_entries` raft handed out, whose state survives a restart
    /// (a durable snapshot covers it) — and the restart passes at least
    /// `index` as `Config::applied`, which may be ahead of the persisted
    /// commit index. Raft never reads an entry at or below the applied index
    /// it knows of. Compacting past entries raft has not handed out yet
    /// makes `RawNode::ready` fail with
    /// [`ReadyError::CompactedBeyondApplied`](crate::ReadyError).
    ///
    /// # Errors
    /// [`StorageError::Compacted`] if `index` is at or before the current
    /// compaction point; [`StorageError::Unavailable`] if beyond the last
    /// index.
    pub fn compact(&self, index: Index) -> Result<(), StorageError> {
        let mut inner = self.inner.write();
        if index <= inner.offset.index {
            return Err(StorageError::Compacted);
        }
        if index > inner.last_index() {
            return Err(StorageError::Unavailable);
        }
        let term = inner.term_at(index).expect("index within the log");
        let drop = (index - inner.offset.index) as usize;
        inner.entries.drain(..drop);
        inner.offset = LogId::new(term, index);
        Ok(())
    }

    /// Records a snapshot of the state machine at `index` (which must be in
    /// the log) without discarding entries; call [`MemoryStorage::compact`]
    /// afterwards to free the log.
    ///
    /// # Errors
    /// [`StorageError::SnapshotOutOfDate`] if `index` is not newer than the
    /// current snapshot; [`StorageError::Compacted`] or
    /// [`StorageError::Unavailable`] if `index` is not in the log.
    pub fn create_snapshot(
        &self,
        index: Index,
        conf_state: ConfState,
        data: bytes::Bytes,
    ) -> Result<Snapshot, StorageError> {
        let mut inner = self.inner.write();
        if index <= inner.snapshot.metadata.index {
            return Err(StorageError::SnapshotOutOfDate);
        }
        if index > inner.last_index() {
            return Err(StorageError::Unavailable);
        }
        let term = inner.term_at(index).ok_or(StorageError::Compacted)?;
        inner.snapshot = Snapshot {
            metadata: SnapshotMetadata {
                index,
                term,
                conf_state,
            },
            data,
        };
        Ok(inner.snapshot.clone())
    }

    /// Replaces the whole log with `snapshot` (a follower installing a
    /// snapshot from its leader). The membership becomes the snapshot's;
    /// the hard state's commit and term are raised to it.
    ///
    /// # Errors
    /// [`StorageError::SnapshotOutOfDate`] if it is older than the current
    /// snapshot (one at the same index replaces it).
    pub fn apply_snapshot(&self, snapshot: Snapshot) -> Result<(), StorageError> {
        let mut inner = self.inner.write();
        inner
            .check_snapshot(&snapshot)
            .map_err(|_| StorageError::SnapshotOutOfDate)?;
        inner.apply_snapshot(snapshot);
        Ok(())
    }

    /// Step 2 of the [`Ready`] contract: writes `rd`'s snapshot (which
    /// replaces the log), then its entries (an entry at an index already
    /// present replaces it and everything after it), then its hard state.
    /// Memory needs no fsync, so `must_sync` changes nothing here.
    ///
    /// # Errors
    /// A [`PersistError`] when the snapshot is older than the stored one
    /// or the entries would leave a gap; nothing is written then.
    pub fn persist(&self, rd: &Ready) -> Result<(), PersistError> {
        self.persist_parts(rd.snapshot.as_ref(), &rd.entries, rd.hard_state)
    }

    /// [`MemoryStorage::persist`] for a batch taken out of a Ready
    /// ([`Ready::take_persist_batch`]), as an application with
    /// `async_storage_writes` persists it; then report `batch.number` to
    /// `RawNode::on_persisted`.
    ///
    /// # Errors
    /// As [`MemoryStorage::persist`].
    pub fn persist_batch(&self, batch: &PersistBatch) -> Result<(), PersistError> {
        self.persist_parts(batch.snapshot.as_ref(), &batch.entries, batch.hard_state)
    }

    /// Persists a [`LightReady`]'s commit index (with or before applying
    /// its entries), as [`MemoryStorage::persist`] does a Ready's hard
    /// state. A commit index never goes back.
    pub fn persist_light(&self, light: &LightReady) {
        if let Some(commit) = light.commit {
            let mut inner = self.inner.write();
            inner.hard_state.commit = inner.hard_state.commit.max(commit);
        }
    }

    /// Checks everything first, so a refused batch leaves no trace.
    fn persist_parts(
        &self,
        snapshot: Option<&Snapshot>,
        entries: &[Entry],
        hard_state: Option<HardState>,
    ) -> Result<(), PersistError> {
        let mut inner = self.inner.write();
        let last = match snapshot {
            Some(s) => {
                inner.check_snapshot(s)?;
                s.metadata.index
            }
            None => inner.last_index(),
        };
        if let Some(first) = entries.first()
            && first.index > last.next()
        {
            return Err(PersistError::Gap {
                first: first.index,
                last,
            });
        }
        if let Some(s) = snapshot {
            inner.apply_snapshot(s.clone());
        }
        inner.append(entries);
        if let Some(hs) = hard_state {
            inner.hard_state = hs;
        }
        Ok(())
    }
}

/// Why [`MemoryStorage::persist`] refused a Ready.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// The Ready's snapshot is older than the one stored.
    #[error("snapshot at index {index} is older than the stored snapshot at index {stored}")]
    SnapshotOutOfDate {
        /// The refused snapshot's index.
        index: Index,
        /// The stored snapshot's index.
        stored: Index,
    },
    /// The entries do not continue the log.
    #[error("entries starting at index {first} leave a gap after the last index {last}")]
    Gap {
        /// The first entry's index.
        first: Index,
        /// The log's last index.
        last: Index,
    },
}

impl Storage for MemoryStorage {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        let inner = self.inner.read();
        Ok(InitialState {
            hard_state: inner.hard_state,
            conf_state: inner.conf_state.clone(),
        })
    }

    fn entries(&self, lo: Index, hi: Index, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        let inner = self.inner.read();
        let offset = inner.offset.index;
        if lo <= offset {
            return Err(StorageError::Compacted);
        }
        if hi > inner.last_index().next() {
            return Err(StorageError::Unavailable);
        }
        if lo >= hi {
            return Ok(Vec::new());
        }
        let slice = &inner.entries[(lo - offset.next()) as usize..(hi - offset.next()) as usize];
        Ok(slice[..limit_size(slice, max_bytes)].to_vec())
    }

    fn term(&self, index: Index) -> Result<Term, StorageError> {
        let inner = self.inner.read();
        if index < inner.offset.index {
            return Err(StorageError::Compacted);
        }
        inner.term_at(index).ok_or(StorageError::Unavailable)
    }

    fn first_index(&self) -> Result<Index, StorageError> {
        Ok(self.inner.read().offset.index.next())
    }

    fn last_index(&self) -> Result<Index, StorageError> {
        Ok(self.inner.read().last_index())
    }

    fn snapshot(&self, _request_index: Index) -> Result<Snapshot, StorageError> {
        Ok(self.inner.read().snapshot.clone())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::types::NodeId;

    fn ents(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
        range
            .map(|i| Entry::new(Term(term), Index(i), Bytes::from_static(b"0123456789")))
            .collect()
    }

    fn storage_1_to_5() -> MemoryStorage {
        let s = MemoryStorage::new();
        s.append(&ents(1..=5, 1)).expect("append");
        s
    }

    #[test]
    fn append_truncates_a_conflicting_suffix() {
        let s = storage_1_to_5();
        s.append(&ents(3..=3, 2)).expect("append");
        assert_eq!(s.last_index().ok(), Some(Index(3)));
        assert_eq!(s.term(Index(3)).ok(), Some(Term(2)));
    }

    #[test]
    fn append_with_a_gap_is_refused() {
        let s = storage_1_to_5();
        assert!(matches!(
            s.append(&ents(7..=7, 1)),
            Err(StorageError::Unavailable)
        ));
    }

    #[test]
    fn entries_respect_bounds_and_size_limit() {
        let s = storage_1_to_5();
        assert_eq!(
            s.entries(Index(2), Index(5), u64::MAX).expect("ok").len(),
            3
        );
        let one = ents(1..=1, 1)[0].size_bytes();
        assert_eq!(s.entries(Index(2), Index(5), one * 2).expect("ok").len(), 2);
        assert_eq!(
            s.entries(Index(2), Index(5), 0).expect("ok").len(),
            1,
            "at least one"
        );
        assert!(matches!(
            s.entries(Index(2), Index(7), u64::MAX),
            Err(StorageError::Unavailable)
        ));
        s.compact(Index(3)).expect("compact");
        assert!(matches!(
            s.entries(Index(3), Index(5), u64::MAX),
            Err(StorageError::Compacted)
        ));
    }

    #[test]
    fn term_is_answered_at_the_compaction_point_but_not_before() {
        let s = storage_1_to_5();
        s.compact(Index(3)).expect("compact");
        assert_eq!(s.first_index().ok(), Some(Index(4)));
        assert_eq!(s.term(Index(3)).ok(), Some(Term(1)));
        assert!(matches!(s.term(Index(2)), Err(StorageError::Compacted)));
        assert!(matches!(s.term(Index(6)), Err(StorageError::Unavailable)));
        assert!(matches!(s.compact(Index(3)), Err(StorageError::Compacted)));
        assert!(matches!(
            s.compact(Index(9)),
            Err(StorageError::Unavailable)
        ));
    }

    #[test]
    fn snapshots_are_created_in_order_and_applied_over_the_log() {
        let s = storage_1_to_5();
        let cs = ConfState::with_voters([NodeId::new(1).expect("id")]);
        let snap = s
            .create_snapshot(Index(4), cs.clone(), Bytes::from_static(b"sm"))
            .expect("snap");
        assert_eq!(snap.metadata.term, Term(1));
        assert_eq!(
            s.last_index().ok(),
            Some(Index(5)),
            "creating a snapshot keeps the log"
        );
        assert!(matches!(
            s.create_snapshot(Index(3), cs.clone(), Bytes::new()),
            Err(StorageError::SnapshotOutOfDate)
        ));
        let newer = Snapshot {
            metadata: SnapshotMetadata {
                index: Index(9),
                term: Term(3),
                conf_state: cs.clone(),
            },
            data: Bytes::new(),
        };
        s.apply_snapshot(newer.clone()).expect("apply");
        assert_eq!(s.first_index().ok(), Some(Index(10)));
        assert_eq!(s.last_index().ok(), Some(Index(9)));
        assert_eq!(s.hard_state().commit, Index(9));
        let older = Snapshot {
            metadata: SnapshotMetadata {
                index: Index(8),
                ..newer.metadata.clone()
            },
            data: Bytes::new(),
        };
        assert!(matches!(
            s.apply_snapshot(older),
            Err(StorageError::SnapshotOutOfDate)
        ));
        // One at the same index replaces it (a follower that requested a
        // snapshot restores its state machine from it).
        let same = Snapshot {
            data: Bytes::from_static(b"repaired"),
            ..newer
        };
        s.apply_snapshot(same).expect("same index replaces");
        assert_eq!(
            s.snapshot(Index::ZERO).expect("snapshot").data,
            Bytes::from_static(b"repaired")
        );
    }

    fn snapshot_at(index: u64, term: u64) -> Snapshot {
        Snapshot {
            metadata: SnapshotMetadata {
                index: Index(index),
                term: Term(term),
                conf_state: ConfState::with_voters([NodeId::new(1).expect("id")]),
            },
            data: Bytes::from_static(b"sm"),
        }
    }

    fn hard_state(term: u64, commit: u64) -> HardState {
        HardState {
            term: Term(term),
            vote: None,
            commit: Index(commit),
        }
    }

    #[test]
    fn persist_writes_snapshot_then_entries_then_hard_state() {
        let s = storage_1_to_5();
        let batch = PersistBatch {
            number: crate::ReadyNumber::FIRST,
            snapshot: Some(snapshot_at(9, 3)),
            entries: ents(10..=11, 3),
            hard_state: Some(hard_state(3, 10)),
            must_sync: true,
        };
        s.persist_batch(&batch).expect("persist");
        assert_eq!(s.first_index().ok(), Some(Index(10)));
        assert_eq!(s.last_index().ok(), Some(Index(11)));
        assert_eq!(s.term(Index(9)).ok(), Some(Term(3)));
        assert_eq!(s.hard_state(), hard_state(3, 10));
        assert_eq!(
            s.initial_state().expect("state").conf_state,
            batch.snapshot.expect("snapshot").metadata.conf_state
        );
    }

    #[test]
    fn persist_truncates_a_conflicting_suffix() {
        let s = storage_1_to_5();
        let batch = PersistBatch {
            entries: ents(4..=4, 2),
            ..PersistBatch::new(crate::ReadyNumber::FIRST)
        };
        s.persist_batch(&batch).expect("persist");
        assert_eq!(s.last_index().ok(), Some(Index(4)));
        assert_eq!(s.term(Index(4)).ok(), Some(Term(2)));
    }

    #[test]
    fn a_refused_persist_leaves_no_trace() {
        let s = storage_1_to_5();
        let gap = PersistBatch {
            entries: ents(7..=8, 1),
            hard_state: Some(hard_state(9, 0)),
            ..PersistBatch::new(crate::ReadyNumber::FIRST)
        };
        assert_eq!(
            s.persist_batch(&gap),
            Err(PersistError::Gap {
                first: Index(7),
                last: Index(5)
            })
        );
        s.apply_snapshot(snapshot_at(4, 1)).expect("apply");
        let stale = PersistBatch {
            snapshot: Some(snapshot_at(3, 1)),
            entries: ents(4..=4, 1),
            hard_state: Some(hard_state(9, 0)),
            ..PersistBatch::new(crate::ReadyNumber::FIRST)
        };
        assert_eq!(
            s.persist_batch(&stale),
            Err(PersistError::SnapshotOutOfDate {
                index: Index(3),
                stored: Index(4)
            })
        );
        assert_eq!(s.hard_state(), hard_state(1, 4), "hard state untouched");
        assert_eq!(s.last_index().ok(), Some(Index(4)));
    }

    #[test]
    fn entries_after_a_snapshot_in_the_same_batch_may_not_leave_a_gap() {
        let s = storage_1_to_5();
        let batch = PersistBatch {
            snapshot: Some(snapshot_at(9, 3)),
            entries: ents(11..=11, 3),
            ..PersistBatch::new(crate::ReadyNumber::FIRST)
        };
        assert_eq!(
            s.persist_batch(&batch),
            Err(PersistError::Gap {
                first: Index(11),
                last: Index(9)
            })
        );
        assert_eq!(s.last_index().ok(), Some(Index(5)), "snapshot not applied");
    }
}
