//! The write-ahead log behind a [`DiskStorage`](crate::DiskStorage): a
//! one-group [`Wal`] of its own, or one group's share of a [`SharedWal`]
//! that many groups' storages write into (their saves then share
//! fdatasyncs).

use std::sync::Arc;

use raft_core::{Entry, GroupId, HardState, Index};
use raft_wal::{GroupWrite, ReleaseError, SaveError, SharedWal, SnapshotMarker, Wal, WalStats};

/// One group's write-ahead log.
#[derive(Debug)]
pub(crate) enum Log {
    /// The storage's own log (boxed: a `Wal` is much larger than the
    /// shared variant).
    Own(Box<Wal>),
    /// `group`'s records in a log shared with other groups.
    Shared {
        /// The host's shared log.
        wal: Arc<SharedWal>,
        /// The group this storage writes as.
        group: GroupId,
    },
}

impl Log {
    /// Appends `entries` and `hard_state` as one batch (see
    /// [`Wal::save`]); durable when it returns iff `sync`.
    pub(crate) fn save(
        &self,
        hard_state: Option<&HardState>,
        entries: &[Entry],
        sync: bool,
    ) -> Result<(), SaveError> {
        match self {
            Log::Own(wal) => wal.save(hard_state, entries, sync),
            Log::Shared { wal, group } => wal.save(
                &[GroupWrite {
                    group: *group,
                    hard_state,
                    entries,
                }],
                sync,
            ),
        }
    }

    /// Records a snapshot marker, synced.
    pub(crate) fn save_snapshot_marker(&self, marker: &SnapshotMarker) -> Result<(), SaveError> {
        match self {
            Log::Own(wal) => wal.save_snapshot_marker(marker),
            Log::Shared { wal, group } => wal.save_snapshot_marker(*group, marker),
        }
    }

    /// Gives up the entries at or below `index`; the segments nothing
    /// needs any more are deleted.
    pub(crate) fn release_to(&self, index: Index) -> Result<usize, ReleaseError> {
        match self {
            Log::Own(wal) => wal.release_to(index),
            Log::Shared { wal, group } => wal.release(*group, index),
        }
    }

    /// Makes every write so far durable (of every group, when shared).
    pub(crate) fn sync(&self) -> Result<(), SaveError> {
        match self {
            Log::Own(wal) => wal.sync(),
            Log::Shared { wal, .. } => wal.sync(),
        }
    }

    /// The log's counters (of the whole log, when shared).
    pub(crate) fn stats(&self) -> WalStats {
        match self {
            Log::Own(wal) => wal.stats(),
            Log::Shared { wal, .. } => wal.stats(),
        }
    }

    /// True once a write or fsync failed (of any group, when shared).
    pub(crate) fn is_poisoned(&self) -> bool {
        match self {
            Log::Own(wal) => wal.is_poisoned(),
            Log::Shared { wal, .. } => wal.is_poisoned(),
        }
    }
}
