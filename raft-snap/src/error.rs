//! One error enum per operation: opening the directory, saving, loading,
//! listing, purging, and encoding or decoding a stream. Each variant of
//! the file operations names the file (or directory) and the cause.

use std::io;
use std::path::PathBuf;

use raft_io::codec::CodecError;

use crate::format::Corruption;

/// Why [`Snapshotter::new`](crate::Snapshotter::new) or
/// [`Snapshotter::with_backend`](crate::Snapshotter::with_backend) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenDirError {
    /// The directory could not be created.
    #[error("cannot create snapshot directory {}: {source}", dir.display())]
    Create {
        /// The snapshot directory.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Another [`Snapshotter`](crate::Snapshotter), in this process or
    /// another, has the directory open.
    #[error("snapshot directory {} is locked: another process has it open", dir.display())]
    Locked {
        /// The snapshot directory.
        dir: PathBuf,
    },
    /// Taking the directory lock failed for another reason.
    #[error("cannot lock snapshot directory {}: {source}", dir.display())]
    Lock {
        /// The snapshot directory.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The directory could not be listed.
    #[error("cannot list snapshot directory {}: {source}", dir.display())]
    List {
        /// The snapshot directory.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A temporary file left by an interrupted save could not be removed.
    #[error("cannot remove leftover temporary snapshot {}: {source}", path.display())]
    RemoveTemp {
        /// The temporary file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Syncing the directory, or its parent, failed.
    #[error("cannot sync directory {}: {source}", dir.display())]
    SyncDir {
        /// The directory synced.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Why [`Snapshotter::save`](crate::Snapshotter::save),
/// [`Snapshotter::writer`](crate::Snapshotter::writer) or a
/// [`SnapshotWriter`](crate::SnapshotWriter) failed. After an error the
/// snapshot may or may not exist, now or after a crash: the caller must
/// not record it in its log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaveError {
    /// The membership has no canonical encoding (`auto_leave` outside a
    /// joint configuration); nothing was written.
    #[error("snapshot {} not written: its membership cannot be stored: {source}", path.display())]
    InvalidConfState {
        /// The snapshot file that would have been written.
        path: PathBuf,
        /// What is wrong with the membership.
        #[source]
        source: CodecError,
    },
    /// The temporary file could not be created.
    #[error("cannot create temporary snapshot {}: {source}", path.display())]
    Create {
        /// The temporary file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Writing the temporary file failed.
    #[error("cannot write temporary snapshot {}: {source}", path.display())]
    Write {
        /// The temporary file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// `fdatasync` of the temporary file failed. Not retried: after a
    /// failed sync the kernel may have dropped the data while reporting
    /// later syncs as successful.
    #[error("cannot sync temporary snapshot {}: {source}", path.display())]
    Sync {
        /// The temporary file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Renaming the temporary file to its final name failed.
    #[error("cannot rename {} to {}: {source}", from.display(), to.display())]
    Rename {
        /// The temporary file.
        from: PathBuf,
        /// The final name.
        to: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Syncing the directory after the rename failed.
    #[error("cannot sync directory {}: {source}", dir.display())]
    SyncDir {
        /// The snapshot directory.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The writer received a different amount of data than was declared
    /// when it was created.
    #[error(
        "snapshot {} data length mismatch: declared {declared} bytes, got {actual}",
        path.display()
    )]
    DataLength {
        /// The temporary file.
        path: PathBuf,
        /// The length given when the writer was created.
        declared: u64,
        /// The length written so far, or that would have been reached.
        actual: u64,
    },
}

/// Why loading or reading a snapshot file failed: the `open*` and
/// `load_newest*` methods of [`Snapshotter`](crate::Snapshotter) and
/// [`SnapshotReader`](crate::SnapshotReader).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// No snapshot qualified: the directory holds none, none verifies, or
    /// none matches what the caller asked for.
    #[error("no usable snapshot in {}", dir.display())]
    NotFound {
        /// The snapshot directory.
        dir: PathBuf,
    },
    /// The directory could not be listed.
    #[error("cannot list snapshot directory {}: {source}", dir.display())]
    List {
        /// The snapshot directory.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file exists but could not be opened.
    #[error("cannot open snapshot {}: {source}", path.display())]
    Open {
        /// The snapshot file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file's length could not be read.
    #[error("cannot read the length of snapshot {}: {source}", path.display())]
    Stat {
        /// The snapshot file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Reading the file failed. An I/O error is not proof of corruption,
    /// so the file is left alone.
    #[error("cannot read snapshot {}: {source}", path.display())]
    Read {
        /// The snapshot file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file failed verification.
    #[error("snapshot {} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The snapshot file.
        path: PathBuf,
        /// Why it was rejected.
        reason: Corruption,
    },
    /// An earlier read of this reader failed; it refuses to go on, so a
    /// caller that loops until the end can never mistake a failed
    /// snapshot for a verified one.
    #[error("an earlier read of snapshot {} failed", path.display())]
    Spent {
        /// The snapshot file.
        path: PathBuf,
    },
}

impl LoadError {
    /// True for [`LoadError::Corrupt`].
    pub fn is_corrupt(&self) -> bool {
        matches!(self, LoadError::Corrupt { .. })
    }

    /// The corruption reason, if this is a corruption error.
    pub fn corruption(&self) -> Option<&Corruption> {
        match self {
            LoadError::Corrupt { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The error of decoding the file at `path`.
    pub(crate) fn decoding(path: &std::path::Path, e: DecodeError) -> LoadError {
        let path = path.to_path_buf();
        match e {
            DecodeError::Io(source) => LoadError::Read { path, source },
            DecodeError::Corrupt(reason) => LoadError::Corrupt { path, reason },
            DecodeError::Spent => LoadError::Spent { path },
        }
    }
}

/// Why [`Snapshotter::list`](crate::Snapshotter::list) failed: the
/// directory could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("cannot list snapshot directory {}: {source}", dir.display())]
#[non_exhaustive]
pub struct ListError {
    /// The snapshot directory.
    pub dir: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

impl From<ListError> for LoadError {
    fn from(e: ListError) -> LoadError {
        LoadError::List {
            dir: e.dir,
            source: e.source,
        }
    }
}

/// Why [`Snapshotter::purge`](crate::Snapshotter::purge) failed. Snapshots
/// removed before the failure stay removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PurgeError {
    /// The directory could not be listed.
    #[error("cannot list snapshot directory {}: {source}", dir.display())]
    List {
        /// The snapshot directory.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A snapshot could not be removed.
    #[error("cannot remove snapshot {}: {source}", path.display())]
    Remove {
        /// The snapshot file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Syncing the directory after the removals failed.
    #[error("cannot sync directory {}: {source}", dir.display())]
    SyncDir {
        /// The snapshot directory.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl From<ListError> for PurgeError {
    fn from(e: ListError) -> PurgeError {
        PurgeError::List {
            dir: e.dir,
            source: e.source,
        }
    }
}

/// Why a [`SnapshotEncoder`](crate::SnapshotEncoder) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The membership has no canonical encoding (`auto_leave` outside a
    /// joint configuration); nothing was written.
    #[error("snapshot membership cannot be stored: {0}")]
    InvalidConfState(#[source] CodecError),
    /// Writing to the stream failed.
    #[error("snapshot stream write failed: {0}")]
    Io(#[source] io::Error),
    /// The encoder received a different amount of data than was declared
    /// when it was created.
    #[error("snapshot data length mismatch: declared {declared} bytes, got {actual}")]
    DataLength {
        /// The length given when the encoder was created.
        declared: u64,
        /// The length written so far, or that would have been reached.
        actual: u64,
    },
}

/// Why a [`SnapshotDecoder`](crate::SnapshotDecoder) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Reading from the stream failed.
    #[error("snapshot stream read failed: {0}")]
    Io(#[source] io::Error),
    /// The stream failed verification.
    #[error("snapshot stream is corrupt: {0}")]
    Corrupt(Corruption),
    /// An earlier call failed; the decoder refuses to go on, so a caller
    /// that loops until the end can never mistake a failed snapshot for a
    /// verified one.
    #[error("an earlier read of this snapshot stream failed")]
    Spent,
}

impl DecodeError {
    /// True for [`DecodeError::Corrupt`].
    pub fn is_corrupt(&self) -> bool {
        matches!(self, DecodeError::Corrupt(_))
    }

    /// The corruption reason, if this is a corruption error.
    pub fn corruption(&self) -> Option<&Corruption> {
        match self {
            DecodeError::Corrupt(reason) => Some(reason),
            _ => None,
        }
    }
}
