//! The read side of a node's durable log, as Raft needs it, and an
//! in-memory implementation.
//!
//! Raft only *reads* through [`Storage`]; the application writes (it
//! persists each [`Ready`](crate::Ready)). The contract is etcd-raft's.

use std::sync::Arc;

use crate::types::{ConfState, Entry, HardState, Index, Snapshot, Term};

mod memory;

pub use memory::{MemoryStorage, PersistError};

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
