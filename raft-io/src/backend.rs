//! The traits every store does its I/O through, and the directory lock.

use std::fmt;
use std::io;
use std::path::Path;

/// A file system: directories, names and whole-file operations.
///
/// Implementations must be safe to share between threads: a store calls
/// them from whichever thread saves.
pub trait Backend: Send + Sync + fmt::Debug {
    /// Creates `path` and any missing parents. Succeeds if it already exists.
    ///
    /// # Errors
    /// Any I/O error of the underlying file system.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Creates the file at `path` for reading and writing, truncating it if it
    /// exists. The new name is durable only after [`Backend::sync_dir`] on the
    /// parent directory.
    ///
    /// # Errors
    /// Any I/O error, e.g. a missing parent directory.
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileHandle>>;

    /// Opens the existing file at `path` for reading and writing.
    ///
    /// # Errors
    /// [`io::ErrorKind::NotFound`] if there is no such file, or any I/O error.
    fn open(&self, path: &Path) -> io::Result<Box<dyn FileHandle>>;

    /// Reads the whole file at `path`.
    ///
    /// # Errors
    /// [`io::ErrorKind::NotFound`] if there is no such file, or any I/O error.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;

    /// Renames `from` to `to`, replacing `to` if it exists. Both must be in
    /// the same directory; the rename is durable after [`Backend::sync_dir`].
    ///
    /// # Errors
    /// Any I/O error, e.g. a missing source.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes the file at `path`; durable after [`Backend::sync_dir`].
    ///
    /// # Errors
    /// [`io::ErrorKind::NotFound`] if there is no such file, or any I/O error.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// The names (not paths) of the entries of `dir`, files and
    /// subdirectories alike, sorted.
    ///
    /// # Errors
    /// Any I/O error, e.g. a missing directory.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// Makes the creates, renames and removals inside `dir` durable.
    ///
    /// # Errors
    /// Any I/O error. After a failure the directory's state is unknown.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Takes an exclusive, advisory lock on `dir`, held until the returned
    /// guard is dropped. The lock excludes other processes and other callers
    /// in this process alike.
    ///
    /// # Errors
    /// [`io::ErrorKind::WouldBlock`] if someone else holds the lock, or any
    /// I/O error.
    fn lock_dir(&self, dir: &Path) -> io::Result<DirLock>;

    /// Whether a store may do I/O on a helper thread (raft-wal prepares
    /// its next segment file on one). A simulated backend says no, so that
    /// its operations happen in the same order on every run and a fault
    /// injected at the N-th operation replays. Default: true.
    fn supports_background_io(&self) -> bool {
        true
    }
}

/// An open file. All offsets are absolute; there is no cursor, so a handle
/// can be shared between threads (`pwrite`/`pread` semantics).
pub trait FileHandle: Send + Sync + fmt::Debug {
    /// Writes all of `data` at `offset`, extending the file if needed.
    ///
    /// # Errors
    /// Any I/O error. A failed write may have written any prefix of `data`.
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;

    /// Reads into `buf` from `offset`; returns the number of bytes read,
    /// which is smaller than `buf.len()` only at the end of the file.
    ///
    /// # Errors
    /// Any I/O error.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;

    /// The current length of the file in bytes.
    ///
    /// # Errors
    /// Any I/O error.
    fn len(&self) -> io::Result<u64>;

    /// True when the file is empty.
    ///
    /// # Errors
    /// Any I/O error.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Truncates or extends (with zeros) the file to `len` bytes.
    ///
    /// # Errors
    /// Any I/O error.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// Makes the file's contents (and length) durable: `fdatasync`.
    ///
    /// # Errors
    /// Any I/O error. After a failure the unsynced writes may be lost even if
    /// a later call succeeds; the caller must not retry and carry on.
    fn sync_data(&self) -> io::Result<()>;

    /// A hint: start writing the given range back to the device now,
    /// without waiting for it, so a later [`FileHandle::sync_data`] has less
    /// left to do. It makes nothing durable and is never needed for
    /// correctness; callers may ignore its errors. Default: does nothing
    /// (what the simulated backend does).
    ///
    /// # Errors
    /// Any I/O error of the hint itself.
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }

    /// Appends `data` at the current end of the file; returns the offset it
    /// was written at. Not atomic with respect to other writers.
    ///
    /// # Errors
    /// Any I/O error, as [`FileHandle::write_at`].
    fn append(&self, data: &[u8]) -> io::Result<u64> {
        let offset = self.len()?;
        self.write_at(offset, data)?;
        Ok(offset)
    }
}

/// A held directory lock; dropping it releases the lock.
pub struct DirLock {
    _guard: Box<dyn Send + Sync>,
}

impl DirLock {
    /// Wraps whatever value releases the lock when dropped: how a
    /// [`Backend`] implementation builds the guard it returns from
    /// [`Backend::lock_dir`].
    pub fn new(guard: impl Send + Sync + 'static) -> DirLock {
        DirLock {
            _guard: Box::new(guard),
        }
    }
}

impl fmt::Debug for DirLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DirLock")
    }
}
