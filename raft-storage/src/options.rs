//! How a [`DiskStorage`](crate::DiskStorage) is opened and compacted.

use std::sync::Arc;

use raft_io::{Backend, FileBackend};
use raft_wal::WalOptions;

/// Options of [`DiskStorage::open`](crate::DiskStorage::open).
#[derive(Debug, Clone)]
pub struct StorageOptions {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) wal: WalOptions,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            backend: FileBackend::shared(),
            wal: WalOptions::new(),
        }
    }
}

impl StorageOptions {
    /// The real file system and the WAL's defaults.
    pub fn new() -> StorageOptions {
        StorageOptions::default()
    }

    /// The file system both the WAL and the snapshots use (a `SimBackend`
    /// in crash tests). Overrides the backend of [`StorageOptions::wal`].
    pub fn backend(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backend = backend;
        self
    }

    /// The WAL's options (segment size, preallocation, record limit). Its
    /// backend is replaced by [`StorageOptions::backend`] and its snapshot
    /// by the one recovery picks.
    pub fn wal(mut self, wal: WalOptions) -> Self {
        self.wal = wal;
        self
    }

    /// The options to open a [`raft_wal::SharedWal`] with for
    /// [`DiskStorage::open_in_shared`](crate::DiskStorage::open_in_shared):
    /// [`StorageOptions::wal`] over [`StorageOptions::backend`].
    pub fn shared_wal_options(&self) -> WalOptions {
        self.wal.clone().backend(Arc::clone(&self.backend))
    }

    pub(crate) fn wal_options(&self, snapshot: Option<raft_core::LogId>) -> WalOptions {
        self.wal
            .clone()
            .backend(Arc::clone(&self.backend))
            .snapshot(snapshot)
    }
}

/// What [`DiskStorage::snapshot_and_compact`](crate::DiskStorage::snapshot_and_compact)
/// keeps behind a new snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionPolicy {
    /// Entries kept in memory behind the snapshot, so that a follower that
    /// lags a little catches up from the log rather than by a snapshot
    /// (etcd's `SnapshotCatchUpEntries`, 5,000).
    pub catch_up_entries: u64,
    /// Snapshot files kept, the new one included (at least 1). The WAL
    /// keeps what the oldest of them needs, so that a damaged newest file
    /// leaves an older one to start from.
    pub snapshots_kept: usize,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            catch_up_entries: 5_000,
            snapshots_kept: 2,
        }
    }
}

impl CompactionPolicy {
    /// The defaults: 5,000 catch-up entries, 2 snapshots kept.
    pub fn new() -> CompactionPolicy {
        CompactionPolicy::default()
    }

    /// Sets [`CompactionPolicy::catch_up_entries`].
    pub fn catch_up_entries(mut self, entries: u64) -> Self {
        self.catch_up_entries = entries;
        self
    }

    /// Sets [`CompactionPolicy::snapshots_kept`] (raised to 1).
    pub fn snapshots_kept(mut self, kept: usize) -> Self {
        self.snapshots_kept = kept.max(1);
        self
    }
}
