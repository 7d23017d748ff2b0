//! The errors of this crate.

use std::io;
use std::path::PathBuf;

use raft_io::codec::CodecError;

use crate::format::Corruption;

/// What can go wrong saving, loading, streaming or purging snapshots.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapError {
    /// An operating-system call failed.
    #[error("snapshot I/O error: {op} {}: {source}", path.display())]
    Io {
        /// What was being done: "create", "write", "sync", "rename", ...
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An I/O error on a stream that is not a file of this crate, such as a
    /// socket given to [`SnapshotEncoder`](crate::SnapshotEncoder).
    #[error("snapshot stream I/O error: {0}")]
    StreamIo(#[source] io::Error),
    /// A snapshot file failed verification.
    #[error("snapshot {} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why it was rejected.
        reason: Corruption,
    },
    /// A snapshot stream failed verification.
    #[error("snapshot stream is corrupt: {reason}")]
    CorruptStream {
        /// Why it was rejected.
        reason: Corruption,
    },
    /// The snapshot's membership has no canonical encoding (`auto_leave`
    /// outside a joint configuration); nothing was written.
    #[error("snapshot membership cannot be stored: {0}")]
    InvalidConfState(#[source] CodecError),
    /// No snapshot qualified: the directory holds none, none verifies, or
    /// none matches what the caller asked for.
    #[error("no usable snapshot in {}", dir.display())]
    NotFound {
        /// The snapshot directory.
        dir: PathBuf,
    },
    /// A writer received a different amount of data than was declared when
    /// it was created.
    #[error("snapshot data length mismatch: declared {declared} bytes, got {actual}")]
    DataLength {
        /// The length given when the writer was created.
        declared: u64,
        /// The length written so far, or that would have been reached.
        actual: u64,
    },
}

impl SnapError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> SnapError {
        SnapError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// True for [`SnapError::Corrupt`] and [`SnapError::CorruptStream`].
    pub fn is_corrupt(&self) -> bool {
        matches!(
            self,
            SnapError::Corrupt { .. } | SnapError::CorruptStream { .. }
        )
    }

    /// The corruption reason, if this is a corruption error.
    pub fn corruption(&self) -> Option<&Corruption> {
        match self {
            SnapError::Corrupt { reason, .. } | SnapError::CorruptStream { reason } => Some(reason),
            _ => None,
        }
    }
}
