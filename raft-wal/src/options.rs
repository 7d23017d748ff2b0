//! How to open a WAL: [`WalOptions`] and its defaults.

use std::sync::Arc;

use raft_core::LogId;
use raft_io::{Backend, FileBackend};

use crate::error::OpenError;
use crate::format::{COMMIT_BYTES, MAX_RECORD_BYTES_LIMIT, SEGMENT_HEADER_BYTES};

/// Default [`WalOptions::segment_size_bytes`]: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 64 << 20;
/// Default [`WalOptions::max_record_bytes`]: 16 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: u32 = 16 << 20;

/// How to open a WAL. Build with [`WalOptions::new`] and the setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WalOptions {
    /// The file system. Default: [`FileBackend`].
    pub backend: Arc<dyn Backend>,
    /// The size at which the writer moves to a new segment. A batch that
    /// starts before this size is written whole, so a segment can exceed it
    /// by one batch. Default: [`DEFAULT_SEGMENT_SIZE_BYTES`] (64 MiB).
    pub segment_size_bytes: u64,
    /// Whether new segments are filled with zeros up to
    /// `segment_size_bytes` before use, so appends never change the file's
    /// size or block map and `fdatasync` flushes data only. It costs
    /// writing each segment twice, so bulk loads are faster without it; a
    /// segment that follows one whose batches averaged 1 MiB or more is
    /// not filled either, as such batches gain little from it.
    /// Default: on (the README's performance section has the measurement).
    pub preallocate: bool,
    /// With [`WalOptions::preallocate`], fill the next segment with zeros on
    /// a helper thread while the current one fills, so that rotation does
    /// not stall a save for the time it takes to write a segment of zeros
    /// (about 90 ms for 64 MiB on this project's disk). Off, or with a
    /// backend whose [`Backend::supports_background_io`] is false (the
    /// simulated one, so that runs replay exactly), the same preparation
    /// runs on the saving thread right after each rotation. Default: on.
    pub background_preallocation: bool,
    /// The largest payload of one frame (an entry's data plus 24 bytes);
    /// recovery treats a longer length field as damage. Default:
    /// [`DEFAULT_MAX_RECORD_BYTES`] (16 MiB).
    pub max_record_bytes: u32,
    /// The snapshot the caller restored, whose marker the log must hold;
    /// recovery returns the entries after it. `None`: the caller has no
    /// snapshot, so the log must start at index 1. Default: `None`.
    pub snapshot: Option<LogId>,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            backend: FileBackend::shared(),
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            preallocate: true,
            background_preallocation: true,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            snapshot: None,
        }
    }
}

impl WalOptions {
    /// The defaults.
    pub fn new() -> WalOptions {
        WalOptions::default()
    }

    /// Sets [`WalOptions::backend`].
    #[must_use]
    pub fn backend(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backend = backend;
        self
    }

    /// Sets [`WalOptions::segment_size_bytes`].
    #[must_use]
    pub fn segment_size_bytes(mut self, bytes: u64) -> Self {
        self.segment_size_bytes = bytes;
        self
    }

    /// Sets [`WalOptions::preallocate`].
    #[must_use]
    pub fn preallocate(mut self, on: bool) -> Self {
        self.preallocate = on;
        self
    }

    /// Sets [`WalOptions::background_preallocation`].
    #[must_use]
    pub fn background_preallocation(mut self, on: bool) -> Self {
        self.background_preallocation = on;
        self
    }

    /// Sets [`WalOptions::max_record_bytes`].
    #[must_use]
    pub fn max_record_bytes(mut self, bytes: u32) -> Self {
        self.max_record_bytes = bytes;
        self
    }

    /// Sets [`WalOptions::snapshot`].
    #[must_use]
    pub fn snapshot(mut self, snapshot: Option<LogId>) -> Self {
        self.snapshot = snapshot;
        self
    }

    /// Refuses options the format cannot honour.
    pub(crate) fn validate(&self) -> Result<(), OpenError> {
        if self.segment_size_bytes < SEGMENT_HEADER_BYTES as u64 {
            return Err(OpenError::InvalidOption(
                "segment_size_bytes below the header size",
            ));
        }
        if self.max_record_bytes < COMMIT_BYTES as u32
            || self.max_record_bytes > MAX_RECORD_BYTES_LIMIT
        {
            return Err(OpenError::InvalidOption("max_record_bytes out of range"));
        }
        Ok(())
    }
}
