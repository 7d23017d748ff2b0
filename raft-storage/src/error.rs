//! One error enum per operation of [`DiskStorage`](crate::DiskStorage).

use std::path::PathBuf;

use raft_core::{Index, LogId};

/// Why [`DiskStorage::open`](crate::DiskStorage::open) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The directory or one of its subdirectories could not be created.
    #[error("cannot create storage directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The snapshot directory could not be opened (created, locked,
    /// cleaned of temporary files).
    #[error(transparent)]
    SnapshotDir(#[from] raft_snap::OpenDirError),
    /// Snapshots could not be listed or read (an I/O error, not damage:
    /// a damaged file is renamed and skipped).
    #[error(transparent)]
    LoadSnapshot(#[from] raft_snap::LoadError),
    /// A snapshot file the WAL never recorded could not be removed.
    #[error(transparent)]
    RemoveSnapshot(#[from] raft_snap::PurgeError),
    /// The write-ahead log refused to open (damaged, locked by another
    /// process, ...).
    #[error("write-ahead log in {}: {source}", dir.display())]
    Wal {
        /// The WAL directory.
        dir: PathBuf,
        /// The cause.
        source: raft_wal::OpenError,
    },
    /// The log continues only from snapshots whose files failed
    /// verification (renamed `*.broken`), and no older snapshot the log
    /// continues from is intact. Recovery: copy an intact snapshot for one
    /// of `needed` from another member into the snapshot directory, or
    /// remove this member and add it back with an empty directory.
    #[error(
        "the log continues only from snapshot(s) {needed:?}, whose file(s) are damaged: {}; \
         restore one from another member, or remove this member and re-add it empty",
        damaged.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    DamagedSnapshot {
        /// The snapshots the log has markers for.
        needed: Vec<LogId>,
        /// The files found damaged (now renamed `*.broken`).
        damaged: Vec<PathBuf>,
    },
    /// The log starts after a snapshot, but the snapshot directory holds no
    /// snapshot the log has a marker for.
    #[error(
        "the log starts at index {log_start} but no snapshot in {} matches its markers {available:?}",
        dir.display()
    )]
    MissingSnapshot {
        /// The snapshot directory.
        dir: PathBuf,
        /// The snapshot markers in the log.
        available: Vec<LogId>,
        /// The first index the log holds.
        log_start: Index,
    },
    /// The recovered log could not be indexed in memory (a broken
    /// invariant of the WAL's recovery).
    #[error("recovered log: {0}")]
    Index(#[from] raft_core::PersistError),
}

/// Why [`DiskStorage::persist`](crate::DiskStorage::persist) (or
/// [`DiskStorage::bootstrap`](crate::DiskStorage::bootstrap)) failed.
/// After [`PersistError::Wal`] or [`PersistError::SnapshotFile`] the
/// storage is poisoned: reopen it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// An earlier write or fsync failed; whether it reached the disk is
    /// unknown, so nothing more is written until the storage is reopened.
    #[error("storage is poisoned by an earlier I/O error; reopen it to recover")]
    Poisoned,
    /// The Ready does not fit the stored log (stale snapshot, gap); nothing
    /// was written.
    #[error("refused before writing: {0}")]
    Refused(#[from] raft_core::PersistError),
    /// The WAL failed or refused the write.
    #[error("write-ahead log: {0}")]
    Wal(#[source] raft_wal::SaveError),
    /// The received snapshot's file could not be written.
    #[error("snapshot file: {0}")]
    SnapshotFile(#[source] raft_snap::SaveError),
    /// [`DiskStorage::bootstrap`](crate::DiskStorage::bootstrap) on a
    /// storage that holds state already.
    #[error("cannot bootstrap: the storage already holds a log, a hard state or a snapshot")]
    NotEmpty,
}

/// Why [`DiskStorage::snapshot_and_compact`](crate::DiskStorage::snapshot_and_compact)
/// failed. Nothing was compacted or released; after
/// [`SnapshotError::Wal`], [`SnapshotError::File`] or
/// [`SnapshotError::Release`] the storage is poisoned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// An earlier write or fsync failed.
    #[error("storage is poisoned by an earlier I/O error; reopen it to recover")]
    Poisoned,
    /// The index is not newer than the current snapshot.
    #[error("snapshot at {index} is not newer than the current snapshot at {current}")]
    OutOfDate {
        /// The requested index.
        index: Index,
        /// The current snapshot's index.
        current: Index,
    },
    /// The index is not in the log, so its term is unknown.
    #[error("index {index} is outside the log [{first}, {last}]")]
    NotInLog {
        /// The requested index.
        index: Index,
        /// The first index held.
        first: Index,
        /// The last index held.
        last: Index,
    },
    /// The state machine's data could not be read (or ended early); the
    /// storage is not poisoned.
    #[error("reading the snapshot data: {0}")]
    Source(#[source] std::io::Error),
    /// The snapshot file could not be written.
    #[error("snapshot file: {0}")]
    File(#[source] raft_snap::SaveError),
    /// The WAL marker could not be written.
    #[error("write-ahead log marker: {0}")]
    Wal(#[source] raft_wal::SaveError),
    /// Old WAL segments could not be released.
    #[error("releasing write-ahead log segments: {0}")]
    Release(#[source] raft_wal::ReleaseError),
    /// Old snapshot files could not be removed.
    #[error("purging old snapshots: {0}")]
    Purge(#[source] raft_snap::PurgeError),
}

/// Why [`DiskStorage::install_snapshot`](crate::DiskStorage::install_snapshot)
/// failed. Nothing is recorded in the log; a partly written file is
/// deleted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// An earlier write or fsync failed.
    #[error("storage is poisoned by an earlier I/O error; reopen it to recover")]
    Poisoned,
    /// The stream is not a valid snapshot encoding, or it broke off.
    #[error("received snapshot: {0}")]
    Decode(#[source] raft_snap::DecodeError),
    /// The snapshot is larger than the limit given.
    #[error("received snapshot of {data_len} bytes exceeds the limit of {max_bytes}")]
    TooLarge {
        /// The declared data length.
        data_len: u64,
        /// The limit.
        max_bytes: u64,
    },
    /// The snapshot is not newer than the current one.
    #[error("received snapshot at {index} is not newer than the current snapshot at {current}")]
    OutOfDate {
        /// The received snapshot's index.
        index: Index,
        /// The current snapshot's index.
        current: Index,
    },
    /// The file could not be written.
    #[error("snapshot file: {0}")]
    File(#[source] raft_snap::SaveError),
}
