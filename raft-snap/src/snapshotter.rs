//! The snapshot directory: atomic save, verified load, purge.

use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use raft_core::{Index, LogId, Snapshot, SnapshotMetadata, Term};
use raft_io::{Backend, DirLock, FileBackend, FileHandle};

use crate::error::{EncodeError, ListError, LoadError, OpenDirError, PurgeError, SaveError};
use crate::format::{self, Corruption};
use crate::stream::{DEFAULT_CHUNK_LEN, SnapshotDecoder, SnapshotEncoder};

/// The suffix of a file being written; such files are deleted on open.
pub(crate) const TMP_SUFFIX: &str = ".tmp";
/// The suffix added to a snapshot that failed verification.
pub(crate) const BROKEN_SUFFIX: &str = ".broken";
/// The write buffer of a [`SnapshotWriter`]: chunks smaller than this are
/// gathered into one write, larger ones pass through.
const WRITE_BUFFER_LEN: usize = 1 << 20;

/// The owner of a snapshot directory.
///
/// It holds an exclusive lock on the directory for its lifetime, because
/// opening deletes leftover temporary files, which would destroy a
/// concurrent writer's work. Give it a directory of its own. (A caller
/// that excludes other owners itself, and cannot spare a descriptor per
/// directory, opens it with [`Snapshotter::with_backend_unlocked`].)
#[derive(Debug)]
pub struct Snapshotter {
    backend: Arc<dyn Backend>,
    dir: PathBuf,
    /// Makes temporary names unique among the writers of this snapshotter.
    tmp_seq: AtomicU64,
    /// `None` when the caller excludes other owners
    /// ([`Snapshotter::with_backend_unlocked`]).
    _lock: Option<DirLock>,
}

impl Snapshotter {
    /// Opens (creating if needed) the snapshot directory `dir` on the real
    /// file system. See [`with_backend`](Self::with_backend).
    ///
    /// # Errors
    ///
    /// As [`with_backend`](Self::with_backend).
    pub fn new(dir: impl Into<PathBuf>) -> Result<Snapshotter, OpenDirError> {
        Snapshotter::with_backend(FileBackend::shared(), dir)
    }

    /// Opens (creating if needed) the snapshot directory `dir` on `backend`:
    /// takes the directory lock, deletes temporary files left by an
    /// interrupted save, and syncs the directory, so that every snapshot it
    /// can load is durable under its name.
    ///
    /// # Errors
    ///
    /// [`OpenDirError::Locked`] if someone else holds the directory; the
    /// [`OpenDirError`] of the step that failed otherwise (create, lock,
    /// list, remove a temporary file, sync).
    pub fn with_backend(
        backend: Arc<dyn Backend>,
        dir: impl Into<PathBuf>,
    ) -> Result<Snapshotter, OpenDirError> {
        Snapshotter::open_dir(backend, dir.into(), true)
    }

    /// As [`with_backend`](Self::with_backend), but takes no lock on `dir`
    /// (and so holds no file descriptor): for a caller that guarantees
    /// that nobody else owns `dir` while it is open — no other process
    /// and no other `Snapshotter` of this one. raft-storage opens the
    /// snapshot directories of the groups of a shared WAL so: the WAL's
    /// own directory lock keeps other processes out of all of them, and a
    /// host of 100,000 groups would otherwise need 100,000 descriptors.
    ///
    /// # Errors
    ///
    /// As [`with_backend`](Self::with_backend), except that it is never
    /// [`OpenDirError::Locked`].
    pub fn with_backend_unlocked(
        backend: Arc<dyn Backend>,
        dir: impl Into<PathBuf>,
    ) -> Result<Snapshotter, OpenDirError> {
        Snapshotter::open_dir(backend, dir.into(), false)
    }

    fn open_dir(
        backend: Arc<dyn Backend>,
        dir: PathBuf,
        lock: bool,
    ) -> Result<Snapshotter, OpenDirError> {
        backend
            .create_dir_all(&dir)
            .map_err(|source| OpenDirError::Create {
                dir: dir.clone(),
                source,
            })?;
        // A directory entry is durable only once its parent is synced; a
        // snapshot saved into a directory that vanishes on power loss would
        // be lost with it.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            backend
                .sync_dir(parent)
                .map_err(|source| OpenDirError::SyncDir {
                    dir: parent.to_path_buf(),
                    source,
                })?;
        }
        let lock = match lock {
            false => None,
            true => Some(backend.lock_dir(&dir).map_err(|source| {
                let dir = dir.clone();
                if source.kind() == io::ErrorKind::WouldBlock {
                    OpenDirError::Locked { dir }
                } else {
                    OpenDirError::Lock { dir, source }
                }
            })?),
        };
        let snapshotter = Snapshotter {
            backend,
            dir,
            tmp_seq: AtomicU64::new(0),
            _lock: lock,
        };
        snapshotter.remove_tmp_files()?;
        Ok(snapshotter)
    }

    /// The snapshot directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn remove_tmp_files(&self) -> Result<(), OpenDirError> {
        let names = self.list_names().map_err(|e| OpenDirError::List {
            dir: e.dir,
            source: e.source,
        })?;
        for name in names {
            if name.ends_with(TMP_SUFFIX) {
                let path = self.dir.join(&name);
                tracing::info!(path = %path.display(), "removing leftover temporary snapshot");
                self.backend
                    .remove_file(&path)
                    .map_err(|source| OpenDirError::RemoveTemp { path, source })?;
            }
        }
        // A snapshot renamed into place by a save that died before its
        // directory sync is visible now, so `load_newest` would return it
        // and the caller would act on it (restore, release its log behind
        // it), yet a power cut could still take its name back: sync the
        // directory before anything is read. This also makes the removals
        // above durable.
        self.backend
            .sync_dir(&self.dir)
            .map_err(|source| OpenDirError::SyncDir {
                dir: self.dir.clone(),
                source,
            })
    }

    fn list_names(&self) -> Result<Vec<String>, ListError> {
        self.backend
            .list_dir(&self.dir)
            .map_err(|source| ListError {
                dir: self.dir.clone(),
                source,
            })
    }

    /// The snapshots in the directory, by file name, newest (highest index,
    /// then highest term) first. Files are not opened, so some of them may
    /// fail verification later.
    ///
    /// # Errors
    ///
    /// [`ListError`] if the directory cannot be listed.
    pub fn list(&self) -> Result<Vec<LogId>, ListError> {
        let mut ids: Vec<LogId> = self
            .list_names()?
            .iter()
            .filter_map(|name| format::parse_file_name(name))
            .map(|(term, index)| LogId::new(term, index))
            .collect();
        ids.sort_by_key(|id| std::cmp::Reverse((id.index, id.term)));
        Ok(ids)
    }

    /// The path of the snapshot file for `id`.
    pub fn path_of(&self, id: LogId) -> PathBuf {
        self.dir.join(format::file_name(id.term, id.index))
    }

    /// Saves a snapshot held in memory; returns its path. The file is
    /// durable when this returns: written to a temporary file, synced,
    /// renamed into place, and the directory synced.
    ///
    /// # Errors
    ///
    /// As [`writer`](Self::writer) and [`SnapshotWriter::commit`]. After an
    /// error the snapshot may or may not exist, now or after a crash: the
    /// caller must not record it in its log.
    pub fn save(&self, metadata: &SnapshotMetadata, data: &[u8]) -> Result<PathBuf, SaveError> {
        let mut writer = self.writer(metadata, data.len() as u64)?;
        writer.write_chunk(data)?;
        writer.commit()
    }

    /// Starts a snapshot of `data_len` bytes, to be fed in chunks of any
    /// size and made durable by [`SnapshotWriter::commit`]. Memory use is
    /// bounded by the write buffer (1 MiB), whatever `data_len` is.
    ///
    /// # Errors
    ///
    /// [`SaveError::InvalidConfState`] if the membership has no canonical
    /// encoding (before any file exists); [`SaveError::Create`] or
    /// [`SaveError::Write`] if the temporary file cannot be created or its
    /// header written.
    pub fn writer(
        &self,
        metadata: &SnapshotMetadata,
        data_len: u64,
    ) -> Result<SnapshotWriter, SaveError> {
        let final_name = format::file_name(metadata.term, metadata.index);
        let final_path = self.dir.join(&final_name);
        // Refused before a temporary file exists, not after.
        raft_io::codec::check_conf_state(&metadata.conf_state).map_err(|source| {
            SaveError::InvalidConfState {
                path: final_path.clone(),
                source,
            }
        })?;
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp_path = self.dir.join(format!("{final_name}.{seq}{TMP_SUFFIX}"));
        let file = self
            .backend
            .create(&tmp_path)
            .map_err(|source| SaveError::Create {
                path: tmp_path.clone(),
                source,
            })?;
        let sink = BufWriter::with_capacity(WRITE_BUFFER_LEN, HandleWriter { file, offset: 0 });
        // Created before the encoder so that a failed header write still
        // removes the temporary file, through the guard's Drop.
        let tmp = TmpGuard {
            backend: Arc::clone(&self.backend),
            path: Some(tmp_path.clone()),
        };
        let encoder = SnapshotEncoder::new(sink, metadata, data_len)
            .map_err(|e| SaveError::encoding(&tmp_path, e))?;
        Ok(SnapshotWriter {
            encoder,
            final_path,
            tmp_path,
            dir: self.dir.clone(),
            tmp,
        })
    }

    /// Opens the snapshot `id` for streaming. The header is verified now;
    /// the data is verified as it is read (see [`SnapshotReader`]).
    ///
    /// # Errors
    ///
    /// [`LoadError::NotFound`] if there is no such file,
    /// [`LoadError::Corrupt`] if its header or length is wrong, the
    /// [`LoadError`] of the failed I/O otherwise.
    pub fn open(&self, id: LogId) -> Result<SnapshotReader, LoadError> {
        self.open_with_chunk_len(id, DEFAULT_CHUNK_LEN)
    }

    /// Like [`open`](Self::open), handing out chunks of at most `chunk_len`
    /// bytes.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    ///
    /// # Panics
    ///
    /// If `chunk_len` is zero.
    pub fn open_with_chunk_len(
        &self,
        id: LogId,
        chunk_len: usize,
    ) -> Result<SnapshotReader, LoadError> {
        let path = self.path_of(id);
        open_reader(&*self.backend, path, id, chunk_len).map_err(|e| match e {
            LoadError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                LoadError::NotFound {
                    dir: self.dir.clone(),
                }
            }
            other => other,
        })
    }

    /// Loads the newest snapshot that verifies into memory. A snapshot that
    /// fails verification is renamed to `<name>.broken`, logged, and the
    /// next older one is tried.
    ///
    /// # Errors
    ///
    /// [`LoadError::NotFound`] if no snapshot verifies; the I/O variant of
    /// [`LoadError`] if the directory cannot be listed or a file cannot be
    /// read (an I/O error is not proof of corruption, so the file is left
    /// alone and the error returned).
    pub fn load_newest(&self) -> Result<Snapshot, LoadError> {
        self.load_newest_where(|_| true)
    }

    /// Like [`load_newest`](Self::load_newest), considering only snapshots
    /// whose (index, term) is in `known`: those the WAL holds a snapshot
    /// record for. Snapshots not in `known` are skipped, not renamed.
    ///
    /// # Errors
    ///
    /// As [`load_newest`](Self::load_newest).
    pub fn load_newest_matching(&self, known: &[(Index, Term)]) -> Result<Snapshot, LoadError> {
        self.load_newest_where(|id| known.contains(&(id.index, id.term)))
    }

    fn load_newest_where(&self, wanted: impl Fn(LogId) -> bool) -> Result<Snapshot, LoadError> {
        self.newest_verified(wanted, |reader| reader.read_to_snapshot())
    }

    /// Opens the newest snapshot that verifies, for streaming in bounded
    /// memory. The file is read twice: once here to verify it (renaming
    /// broken ones as [`load_newest`](Self::load_newest) does), and once by
    /// the caller through the returned reader, which verifies again.
    ///
    /// # Errors
    ///
    /// As [`load_newest`](Self::load_newest).
    pub fn open_newest(&self) -> Result<SnapshotReader, LoadError> {
        self.open_newest_where(|_| true)
    }

    /// Like [`open_newest`](Self::open_newest), restricted to `known` as in
    /// [`load_newest_matching`](Self::load_newest_matching).
    ///
    /// # Errors
    ///
    /// As [`load_newest`](Self::load_newest).
    pub fn open_newest_matching(
        &self,
        known: &[(Index, Term)],
    ) -> Result<SnapshotReader, LoadError> {
        self.open_newest_where(|id| known.contains(&(id.index, id.term)))
    }

    fn open_newest_where(
        &self,
        wanted: impl Fn(LogId) -> bool,
    ) -> Result<SnapshotReader, LoadError> {
        let id = self.newest_verified(wanted, |mut reader| {
            while reader.next_chunk()?.is_some() {}
            Ok(LogId::new(reader.metadata().term, reader.metadata().index))
        })?;
        self.open(id)
    }

    /// Runs `consume` on the newest wanted snapshot; on corruption renames
    /// the file and moves to the next older one.
    fn newest_verified<T>(
        &self,
        wanted: impl Fn(LogId) -> bool,
        consume: impl Fn(SnapshotReader) -> Result<T, LoadError>,
    ) -> Result<T, LoadError> {
        for id in self.list()?.into_iter().filter(|&id| wanted(id)) {
            match self.open(id).and_then(&consume) {
                Ok(value) => return Ok(value),
                Err(LoadError::Corrupt { path, reason }) => self.quarantine(&path, &reason),
                // Removed since it was listed (a concurrent purge, say).
                Err(LoadError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(LoadError::NotFound {
            dir: self.dir.clone(),
        })
    }

    /// Renames a corrupt snapshot out of the way, keeping it for forensics.
    fn quarantine(&self, path: &Path, reason: &Corruption) {
        let mut broken = path.as_os_str().to_owned();
        broken.push(BROKEN_SUFFIX);
        let broken = PathBuf::from(broken);
        // No directory sync: if the rename is lost, the next load finds the
        // same damage and renames again.
        match self.backend.rename(path, &broken) {
            Ok(()) => tracing::warn!(
                path = %path.display(),
                %reason,
                "snapshot failed verification; renamed to .broken"
            ),
            Err(error) => tracing::error!(
                path = %path.display(),
                %reason,
                %error,
                "snapshot failed verification and could not be renamed; skipping it"
            ),
        }
    }

    /// Removes the snapshot `id` (say one the WAL has no marker for) and
    /// syncs the directory. Removing one that does not exist is not an
    /// error.
    ///
    /// # Errors
    ///
    /// [`PurgeError::Remove`] or [`PurgeError::SyncDir`].
    pub fn remove(&self, id: LogId) -> Result<(), PurgeError> {
        let path = self.path_of(id);
        match self.backend.remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(PurgeError::Remove { path, source }),
        }
        self.backend
            .sync_dir(&self.dir)
            .map_err(|source| PurgeError::SyncDir {
                dir: self.dir.clone(),
                source,
            })
    }

    /// Removes all but the `keep_n` newest snapshots (by file name, see
    /// [`list`](Self::list)); returns the ids removed. `keep_n == 0` removes
    /// every snapshot. Files renamed `.broken` are left for an operator.
    ///
    /// # Errors
    ///
    /// The [`PurgeError`] of the step that failed: listing, removing a
    /// file, or syncing the directory.
    pub fn purge(&self, keep_n: usize) -> Result<Vec<LogId>, PurgeError> {
        let doomed: Vec<LogId> = self.list()?.into_iter().skip(keep_n).collect();
        for &id in &doomed {
            let path = self.path_of(id);
            self.backend
                .remove_file(&path)
                .map_err(|source| PurgeError::Remove {
                    path: path.clone(),
                    source,
                })?;
            tracing::debug!(path = %path.display(), "purged snapshot");
        }
        if !doomed.is_empty() {
            self.backend
                .sync_dir(&self.dir)
                .map_err(|source| PurgeError::SyncDir {
                    dir: self.dir.clone(),
                    source,
                })?;
        }
        Ok(doomed)
    }
}

/// A snapshot being written to a temporary file of a [`Snapshotter`]'s
/// directory. Feed it exactly the declared number of bytes, then
/// [`commit`](Self::commit). Dropping it without committing deletes the
/// temporary file.
#[derive(Debug)]
pub struct SnapshotWriter {
    encoder: SnapshotEncoder<BufWriter<HandleWriter>>,
    final_path: PathBuf,
    /// The temporary file, named in errors (the guard disarms its copy).
    tmp_path: PathBuf,
    dir: PathBuf,
    tmp: TmpGuard,
}

impl SnapshotWriter {
    /// Appends a chunk of data; incremental, so memory stays bounded.
    ///
    /// # Errors
    ///
    /// [`SaveError::DataLength`] if the chunk would exceed the declared
    /// length; [`SaveError::Write`] if the write fails.
    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), SaveError> {
        self.encoder
            .write_chunk(chunk)
            .map_err(|e| SaveError::encoding(&self.tmp_path, e))
    }

    /// How many bytes of data are still expected.
    pub fn remaining(&self) -> u64 {
        self.encoder.remaining()
    }

    /// Makes the snapshot durable under its final name
    /// `<term>-<index>.snap`, replacing any file of that name; returns the
    /// path. The steps are: write the checksum, `fdatasync` the temporary
    /// file, rename it, `fsync` the directory.
    ///
    /// # Errors
    ///
    /// [`SaveError::DataLength`] if fewer bytes were written than declared;
    /// the [`SaveError`] of the step that failed otherwise. A failed sync
    /// is not retried (after a failed `fsync` the kernel may have dropped
    /// the data while reporting later syncs as successful).
    pub fn commit(self) -> Result<PathBuf, SaveError> {
        let SnapshotWriter {
            encoder,
            final_path,
            tmp_path,
            dir,
            mut tmp,
        } = self;
        let sink = encoder
            .finish()
            .map_err(|e| SaveError::encoding(&tmp_path, e))?;
        let writer = sink.into_inner().map_err(|e| SaveError::Write {
            path: tmp_path.clone(),
            source: e.into_error(),
        })?;
        writer.file.sync_data().map_err(|source| SaveError::Sync {
            path: tmp_path.clone(),
            source,
        })?;
        drop(writer);
        tmp.backend
            .rename(&tmp_path, &final_path)
            .map_err(|source| SaveError::Rename {
                from: tmp_path.clone(),
                to: final_path.clone(),
                source,
            })?;
        // The temporary name is gone; disarm the guard.
        tmp.path = None;
        tmp.backend
            .sync_dir(&dir)
            .map_err(|source| SaveError::SyncDir { dir, source })?;
        Ok(final_path)
    }
}

impl SaveError {
    /// The error of encoding into the temporary file at `path`.
    fn encoding(path: &Path, e: EncodeError) -> SaveError {
        let path = path.to_path_buf();
        match e {
            EncodeError::InvalidConfState(source) => SaveError::InvalidConfState { path, source },
            EncodeError::Io(source) => SaveError::Write { path, source },
            EncodeError::DataLength { declared, actual } => SaveError::DataLength {
                path,
                declared,
                actual,
            },
        }
    }
}

/// Deletes a temporary file when dropped, unless disarmed.
#[derive(Debug)]
struct TmpGuard {
    backend: Arc<dyn Backend>,
    path: Option<PathBuf>,
}

impl Drop for TmpGuard {
    fn drop(&mut self) {
        let Some(path) = self.path.take() else {
            return;
        };
        if let Err(error) = self.backend.remove_file(&path) {
            // Harmless: the next open deletes it.
            tracing::debug!(path = %path.display(), %error, "could not remove temp snapshot");
        }
    }
}

/// Opens the snapshot file at `path`, named for `id`, as a reader whose
/// header (and its match with the name) and length are verified: the one
/// way a file is opened, by [`Snapshotter::open`] and by the read-only
/// [`inspect_dir`](crate::inspect::inspect_dir).
pub(crate) fn open_reader(
    backend: &dyn Backend,
    path: PathBuf,
    id: LogId,
    chunk_len: usize,
) -> Result<SnapshotReader, LoadError> {
    let file = match backend.open(&path) {
        Ok(file) => file,
        Err(source) => return Err(LoadError::Open { path, source }),
    };
    let file_len = file.len().map_err(|source| LoadError::Stat {
        path: path.clone(),
        source,
    })?;
    let source = HandleReader { file, offset: 0 };
    let mut decoder = SnapshotDecoder::with_chunk_len(source, chunk_len)
        .map_err(|e| LoadError::decoding(&path, e))?;
    let corrupt = |reason| LoadError::Corrupt {
        path: path.clone(),
        reason,
    };
    let header = (decoder.metadata().term, decoder.metadata().index);
    if header != (id.term, id.index) {
        let name = (id.term, id.index);
        return Err(corrupt(Corruption::NameMismatch { name, header }));
    }
    if decoder.encoded_len() != file_len {
        let reason = Corruption::LengthMismatch {
            expected: decoder.encoded_len(),
            actual: file_len,
        };
        return Err(corrupt(reason));
    }
    decoder.set_len_verified();
    Ok(SnapshotReader { decoder, path })
}

/// A snapshot file being read in chunks, from [`Snapshotter::open`] or
/// [`Snapshotter::open_newest`].
///
/// The header was verified when the reader was created. The data is
/// verified as it is read: a chunk is not trustworthy until
/// [`next_chunk`](Self::next_chunk) has returned `Ok(None)`, which it does
/// only after the checksum over header and data matched.
#[derive(Debug)]
pub struct SnapshotReader {
    decoder: SnapshotDecoder<HandleReader>,
    path: PathBuf,
}

impl SnapshotReader {
    /// What the snapshot covers.
    pub fn metadata(&self) -> &SnapshotMetadata {
        self.decoder.metadata()
    }

    /// The length of the data.
    pub fn data_len(&self) -> u64 {
        self.decoder.data_len()
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next chunk of data, or `None` after the last chunk, once the
    /// checksum has been verified.
    ///
    /// # Errors
    ///
    /// [`LoadError::Corrupt`] if the file is damaged, [`LoadError::Read`]
    /// if a read fails. After an error every further call fails too
    /// ([`LoadError::Spent`]).
    pub fn next_chunk(&mut self) -> Result<Option<&[u8]>, LoadError> {
        let path = &self.path;
        self.decoder
            .next_chunk()
            .map_err(|e| LoadError::decoding(path, e))
    }

    /// Reads the rest of the data into memory.
    ///
    /// # Errors
    ///
    /// As [`next_chunk`](Self::next_chunk).
    pub fn read_to_snapshot(self) -> Result<Snapshot, LoadError> {
        let path = self.path;
        self.decoder
            .read_to_snapshot()
            .map_err(|e| LoadError::decoding(&path, e))
    }
}

/// [`Write`] over a positional [`FileHandle`].
#[derive(Debug)]
struct HandleWriter {
    file: Box<dyn FileHandle>,
    offset: u64,
}

impl Write for HandleWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_at(self.offset, buf)?;
        self.offset += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// [`Read`] over a positional [`FileHandle`].
#[derive(Debug)]
struct HandleReader {
    file: Box<dyn FileHandle>,
    offset: u64,
}

impl Read for HandleReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(self.offset, buf)?;
        self.offset += n as u64;
        Ok(n)
    }
}
