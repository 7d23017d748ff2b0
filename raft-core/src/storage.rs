//! The read side of a node's durable log, as Raft needs it, and an
//! in-memory implementation.
//!
//! Raft only *reads* through [`Storage`]; the application writes (it
//! persists each [`Ready`](crate::Ready)). The contract is etcd-raft's.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::bootstrap::{BootstrapError, FoundingLog};
use crate::types::{ConfState, Entry, HardState, Index, LogId, Snapshot, SnapshotMetadata, Term};

/// What a node starts from: its persisted [`HardState`] and membership.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct InitialState {
    /// The persisted term, vote and commit index.
    pub hard_state: HardState,
    /// The membership as of the latest applied configuration change.
    pub conf_state: ConfState,
}

/// Errors a [`Storage`] reports. Raft handles `Compacted`,
/// `Unavailable` and `SnapshotTemporarilyUnavailable` itself; anything else is
/// handed back to the caller of [`RawNode`](crate::RawNode).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The requested index is older than the first retained entry.
    #[error("requested index is unavailable due to compaction")]
    Compacted,
    /// The requested index is beyond the last entry.
    #[error("requested entry at index is unavailable")]
    Unavailable,
    /// A snapshot is being built; ask again later.
    #[error("snapshot is temporarily unavailable")]
    SnapshotTemporarilyUnavailable,
    /// A snapshot older than the current one was offered.
    #[error("requested snapshot is older than the existing snapshot")]
    SnapshotOutOfDate,
    /// Anything else: an I/O error, corruption, …
    #[error("storage failure: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// Read access to the persisted log.
///
/// The log is the range `[first_index, last_index]` plus the position just
/// before it (`first_index - 1`), whose term must still be answered so that
/// appends right after a compaction can be matched.
pub trait Storage {
    /// The persisted hard state and membership.
    ///
    /// # Errors
    /// Any [`StorageError`]; the node cannot start without it.
    fn initial_state(&self) -> Result<InitialState, StorageError>;

    /// Entries in `[lo, hi)`, stopping before the total
    /// [`Entry::size_bytes`] would exceed `max_bytes`, but always at least one
    /// entry when the range is not empty.
    ///
    /// # Errors
    /// [`StorageError::Compacted`] if `lo < first_index`,
    /// [`StorageError::Unavailable`] if `hi > last_index + 1`.
    fn entries(&self, lo: Index, hi: Index, max_bytes: u64) -> Result<Vec<Entry>, StorageError>;

    /// The term of the entry at `index`, for `index` in
    /// `[first_index - 1, last_index]`.
    ///
    /// # Errors
    /// [`StorageError::Compacted`] below that range,
    /// [`StorageError::Unavailable`] above it.
    fn term(&self, index: Index) -> Result<Term, StorageError>;

    /// The first index that [`Storage::entries`] may return.
    ///
    /// # Errors
    /// Only for storage failures.
    fn first_index(&self) -> Result<Index, StorageError>;

    /// The index of the last entry (`first_index - 1` when empty).
    ///
    /// # Errors
    /// Only for storage failures.
    fn last_index(&self) -> Result<Index, StorageError>;

    /// The most recent snapshot. `request_index` is the index the leader needs
    /// the snapshot to reach; a storage may build one lazily and answer
    /// [`StorageError::SnapshotTemporarilyUnavailable`] meanwhile.
    ///
    /// A follower refuses a snapshot whose `ConfState` does not include it,
    /// so the leader does not send such a snapshot (a member added after
    /// the snapshot was taken), nor one older than the compacted log:
    /// instead it asks the application for a newer one
    /// ([`Ready::snapshot_request`](crate::Ready)) and asks storage again
    /// at the follower's next heartbeat response.
    ///
    /// # Errors
    /// [`StorageError::SnapshotTemporarilyUnavailable`] or a failure.
    fn snapshot(&self, request_index: Index) -> Result<Snapshot, StorageError>;
}

impl<S: Storage + ?Sized> Storage for Arc<S> {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        (**self).initial_state()
    }
    fn entries(&self, lo: Index, hi: Index, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        (**self).entries(lo, hi, max_bytes)
    }
    fn term(&self, index: Index) -> Result<Term, StorageError> {
        (**self).term(index)
    }
    fn first_index(&self) -> Result<Index, StorageError> {
        (**self).first_index()
    }
    fn last_index(&self) -> Result<Index, StorageError> {
        (**self).last_index()
    }
    fn snapshot(&self, request_index: Index) -> Result<Snapshot, StorageError> {
        (**self).snapshot(request_index)
    }
}

/// Takes entries from the front of `entries` while their total size stays
/// within `max_bytes`, keeping at least one. Returns how many to keep.
pub(crate) fn limit_size(entries: &[Entry], max_bytes: u64) -> usize {
    let mut total = 0u64;
    for (i, e) in entries.iter().enumerate() {
        total = total.saturating_add(e.size_bytes());
        if i > 0 && total > max_bytes {
            return i;
        }
    }
    entries.len()
}

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
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let mut inner = self.inner.write();
        let offset = inner.offset.index;
        if first.index > inner.last_index().next() {
            return Err(StorageError::Unavailable);
        }
        let skip =
            (offset.next().get().saturating_sub(first.index.get()) as usize).min(entries.len());
        let entries = &entries[skip..];
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let keep = (first.index - offset.next()) as usize;
        inner.entries.truncate(keep);
        inner.entries.extend_from_slice(entries);
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
    /// [`StorageError::SnapshotOutOfDate`] if it is not newer than the
    /// current snapshot.
    pub fn apply_snapshot(&self, snapshot: Snapshot) -> Result<(), StorageError> {
        let mut inner = self.inner.write();
        let meta = &snapshot.metadata;
        if meta.index <= inner.snapshot.metadata.index
            && inner.snapshot.metadata.index > Index::ZERO
        {
            return Err(StorageError::SnapshotOutOfDate);
        }
        inner.hard_state.commit = inner.hard_state.commit.max(meta.index);
        inner.hard_state.term = inner.hard_state.term.max(meta.term);
        inner.conf_state = meta.conf_state.clone();
        inner.offset = meta.log_id();
        inner.entries.clear();
        inner.snapshot = snapshot;
        Ok(())
    }
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
        assert!(matches!(
            s.apply_snapshot(newer),
            Err(StorageError::SnapshotOutOfDate)
        ));
    }
}
