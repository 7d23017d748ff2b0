//! The read side of a node's durable log, as Raft needs it, and an
//! in-memory implementation.
//!
//! Raft only *reads* through [`Storage`]; the application writes (it
//! persists each [`Ready`](crate::Ready)). The contract is etcd-raft's.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::types::{ConfState, Entry, HardState, Index, Snapshot, SnapshotMetadata, Term};

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
    snapshot: Snapshot,
    /// Entries after the snapshot.
    /// Invariant: `entries[i].index == snapshot.metadata.index + 1 + i`.
    entries: Vec<Entry>,
}

impl MemoryInner {
    /// The index of the last entry the snapshot covers: the log's "offset".
    fn offset(&self) -> Index {
        self.snapshot.metadata.index
    }

    fn last_index(&self) -> Index {
        self.offset() + self.entries.len() as u64
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

    /// An empty log whose initial membership is `conf_state`: the usual way
    /// to bootstrap a new cluster (every founding node uses the same one).
    pub fn with_conf_state(conf_state: ConfState) -> MemoryStorage {
        let s = MemoryStorage::new();
        s.inner.write().snapshot.metadata.conf_state = conf_state;
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

    /// Sets the membership reported by [`Storage::initial_state`].
    pub fn set_conf_state(&self, cs: ConfState) {
        self.inner.write().snapshot.metadata.conf_state = cs;
    }

    /// Appends `entries`, which must be consecutive. An entry at an index
    /// already present replaces it and everything after it (Raft's conflict
    /// truncation, paper §5.3); entries the snapshot covers are skipped.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] if the entries would leave a gap after
    /// the last index.
    pub fn append(&self, entries: &[Entry]) -> Result<(), StorageError> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let mut inner = self.inner.write();
        let offset = inner.offset();
        if first.index > inner.last_index().next() {
            return Err(StorageError::Unavailable);
        }
        // Skip what the snapshot already covers.
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

    /// Discards entries up to and including `index` (it must be applied
    /// and covered by a snapshot the application keeps elsewhere, or by
    /// [`MemoryStorage::create_snapshot`]).
    ///
    /// # Errors
    /// [`StorageError::Compacted`] if `index` is at or before the current
    /// offset; [`StorageError::Unavailable`] if beyond the last index.
    pub fn compact(&self, index: Index) -> Result<(), StorageError> {
        let mut inner = self.inner.write();
        let offset = inner.offset();
        if index <= offset {
            return Err(StorageError::Compacted);
        }
        if index > inner.last_index() {
            return Err(StorageError::Unavailable);
        }
        let term = inner.entries[(index - offset.next()) as usize].term;
        let drop = (index - offset) as usize;
        inner.entries.drain(..drop);
        inner.snapshot.metadata.index = index;
        inner.snapshot.metadata.term = term;
        // The data of a compaction-only marker is stale; a real snapshot
        // comes from `create_snapshot`.
        inner.snapshot.data = bytes::Bytes::new();
        Ok(())
    }

    /// Records a snapshot of the state machine at `index` (which must be in
    /// the log) without discarding any entries; call [`MemoryStorage::compact`]
    /// afterwards to free the log.
    ///
    /// # Errors
    /// [`StorageError::SnapshotOutOfDate`] if `index` is not newer than the
    /// current snapshot; [`StorageError::Unavailable`] if beyond the log.
    pub fn create_snapshot(
        &self,
        index: Index,
        conf_state: ConfState,
        data: bytes::Bytes,
    ) -> Result<Snapshot, StorageError> {
        let mut inner = self.inner.write();
        let offset = inner.offset();
        if index <= offset {
            return Err(StorageError::SnapshotOutOfDate);
        }
        if index > inner.last_index() {
            return Err(StorageError::Unavailable);
        }
        let term = inner.entries[(index - offset.next()) as usize].term;
        let drop = (index - offset) as usize;
        inner.entries.drain(..drop);
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
    /// snapshot from its leader). The hard state's commit is raised to the
    /// snapshot index.
    ///
    /// # Errors
    /// [`StorageError::SnapshotOutOfDate`] if it is not newer than the
    /// current snapshot.
    pub fn apply_snapshot(&self, snapshot: Snapshot) -> Result<(), StorageError> {
        let mut inner = self.inner.write();
        if snapshot.metadata.index <= inner.offset() && inner.offset() > Index::ZERO {
            return Err(StorageError::SnapshotOutOfDate);
        }
        inner.hard_state.commit = inner.hard_state.commit.max(snapshot.metadata.index);
        inner.hard_state.term = inner.hard_state.term.max(snapshot.metadata.term);
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
            conf_state: inner.snapshot.metadata.conf_state.clone(),
        })
    }

    fn entries(&self, lo: Index, hi: Index, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        let inner = self.inner.read();
        let offset = inner.offset();
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
        let offset = inner.offset();
        if index < offset {
            return Err(StorageError::Compacted);
        }
        if index == offset {
            return Ok(inner.snapshot.metadata.term);
        }
        inner
            .entries
            .get((index - offset.next()) as usize)
            .map(|e| e.term)
            .ok_or(StorageError::Unavailable)
    }

    fn first_index(&self) -> Result<Index, StorageError> {
        Ok(self.inner.read().offset().next())
    }

    fn last_index(&self) -> Result<Index, StorageError> {
        Ok(self.inner.read().last_index())
    }

    fn snapshot(&self, _request_index: Index) -> Result<Snapshot, StorageError> {
        Ok(self.inner.read().snapshot.clone())
    }
}
