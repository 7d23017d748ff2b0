//! The snapshot side of a [`DiskStorage`](crate::DiskStorage): files,
//! received streams, the newest snapshot's data in memory.

use std::io::Read;

use bytes::Bytes;
use parking_lot::Mutex;
use raft_core::{Index, LogId, Snapshot, SnapshotMetadata, StorageError};
use raft_snap::{LoadError, PurgeError, SaveError, SnapshotDecoder, SnapshotReader, Snapshotter};

use crate::error::{InstallError, SnapshotError};

/// The read size of [`SnapshotFiles::write_from`].
const CHUNK_BYTES: usize = 1 << 20;

/// The snapshot files of one storage.
#[derive(Debug)]
pub(crate) struct SnapshotFiles {
    snapshotter: Snapshotter,
    /// The newest snapshot's data, when in memory: kept from the last
    /// snapshot taken or received, loaded from its file otherwise.
    cached: Mutex<Option<Snapshot>>,
    /// A received snapshot whose file [`SnapshotFiles::install`] wrote and
    /// no Ready has recorded yet.
    installed: Mutex<Option<LogId>>,
}

fn id_of(meta: &SnapshotMetadata) -> LogId {
    LogId::new(meta.term, meta.index)
}

impl SnapshotFiles {
    pub(crate) fn new(snapshotter: Snapshotter) -> SnapshotFiles {
        SnapshotFiles {
            snapshotter,
            cached: Mutex::new(None),
            installed: Mutex::new(None),
        }
    }

    /// Makes `snapshot` durable as a file (unless [`SnapshotFiles::install`]
    /// already did) and keeps its data in memory.
    pub(crate) fn save(&self, snapshot: &Snapshot) -> Result<(), SaveError> {
        let id = id_of(&snapshot.metadata);
        if self.installed.lock().take() != Some(id) {
            self.snapshotter.save(&snapshot.metadata, &snapshot.data)?;
        }
        *self.cached.lock() = Some(snapshot.clone());
        Ok(())
    }

    /// Writes a snapshot received as a raft-snap stream to a file, in
    /// bounded memory; it is recorded later by the Ready that carries it.
    pub(crate) fn install(
        &self,
        stream: impl Read,
        max_bytes: u64,
        current: Index,
    ) -> Result<SnapshotMetadata, InstallError> {
        let mut decoder = SnapshotDecoder::new(stream).map_err(InstallError::Decode)?;
        let meta = decoder.metadata().clone();
        let data_len = decoder.data_len();
        if data_len > max_bytes {
            return Err(InstallError::TooLarge {
                data_len,
                max_bytes,
            });
        }
        // At the stored index it replaces the stored one (see
        // `record_received_snapshot`).
        if meta.index < current {
            return Err(InstallError::OutOfDate {
                index: meta.index,
                current,
            });
        }
        let mut writer = self
            .snapshotter
            .writer(&meta, data_len)
            .map_err(InstallError::File)?;
        // Dropping the writer on an error deletes its temporary file.
        while let Some(chunk) = decoder.next_chunk().map_err(InstallError::Decode)? {
            writer.write_chunk(chunk).map_err(InstallError::File)?;
        }
        writer.commit().map_err(InstallError::File)?;
        *self.installed.lock() = Some(id_of(&meta));
        Ok(meta)
    }

    /// The snapshot `meta` with its data, from memory or its file.
    pub(crate) fn load(&self, meta: &SnapshotMetadata) -> Result<Snapshot, StorageError> {
        let mut cached = self.cached.lock();
        if let Some(s) = cached.as_ref().filter(|s| s.metadata == *meta) {
            return Ok(s.clone());
        }
        let snapshot = self
            .snapshotter
            .open(id_of(meta))
            .and_then(SnapshotReader::read_to_snapshot)
            .map_err(|e| StorageError::Other(Box::new(e)))?;
        *cached = Some(snapshot.clone());
        Ok(snapshot)
    }

    /// Keeps `data` as the newest snapshot's data in memory.
    pub(crate) fn cache(&self, metadata: SnapshotMetadata, data: Bytes) {
        *self.cached.lock() = Some(Snapshot { metadata, data });
    }

    /// Streams the file of `meta`.
    pub(crate) fn open(&self, meta: &SnapshotMetadata) -> Result<SnapshotReader, LoadError> {
        self.snapshotter.open(id_of(meta))
    }

    /// Writes `data` as the file of `meta`, durably.
    pub(crate) fn write(&self, meta: &SnapshotMetadata, data: &[u8]) -> Result<(), SaveError> {
        self.snapshotter.save(meta, data).map(|_| ())
    }

    /// Writes `data_len` bytes read from `data` as the file of `meta`,
    /// durably, in chunks of bounded size.
    pub(crate) fn write_from(
        &self,
        meta: &SnapshotMetadata,
        data_len: u64,
        mut data: impl Read,
    ) -> Result<(), SnapshotError> {
        let mut writer = self
            .snapshotter
            .writer(meta, data_len)
            .map_err(SnapshotError::File)?;
        let mut buf = vec![0u8; CHUNK_BYTES];
        let mut left = data_len;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match data.read(&mut buf[..want]) {
                Ok(0) => {
                    let e = std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("the data ended {left} bytes short of {data_len}"),
                    );
                    return Err(SnapshotError::Source(e));
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SnapshotError::Source(e)),
            };
            writer.write_chunk(&buf[..n]).map_err(SnapshotError::File)?;
            left -= n as u64;
        }
        writer.commit().map_err(SnapshotError::File)?;
        Ok(())
    }

    /// Removes all but the `kept` newest snapshots at or below `newest`
    /// (files above it are received ones no Ready recorded yet, and stay);
    /// returns the oldest kept, the point the WAL must still reach back to.
    pub(crate) fn purge(&self, newest: Index, kept: usize) -> Result<LogId, PurgeError> {
        let listed = self.snapshotter.list()?;
        let pending = listed.iter().take_while(|id| id.index > newest).count();
        self.snapshotter.purge(pending + kept.max(1))?;
        let remaining = self.snapshotter.list()?;
        let oldest = remaining
            .iter()
            .rev()
            .find(|id| id.index <= newest)
            .copied()
            .unwrap_or(LogId::new(raft_core::Term::ZERO, newest));
        debug_assert!(
            oldest.index <= newest,
            "the WAL keeps what the oldest kept needs"
        );
        Ok(oldest)
    }
}
