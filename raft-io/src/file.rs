//! [`FileBackend`]: the real file system, on `std::fs`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::backend::{Backend, DirLock, FileHandle};

/// The real file system through `std::fs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileBackend;

impl FileBackend {
    /// The backend, as a shareable trait object.
    pub fn shared() -> Arc<dyn Backend> {
        Arc::new(FileBackend)
    }
}

#[derive(Debug)]
struct StdFile(File);

impl FileHandle for StdFile {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.0, data, offset)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let n = std::os::unix::fs::FileExt::read_at(
                &self.0,
                &mut buf[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    /// `posix_fadvise(POSIX_FADV_DONTNEED)`: on Linux it starts writeback of
    /// the range's dirty pages without waiting (the effect of
    /// `sync_file_range(SYNC_FILE_RANGE_WRITE)`, which nix does not wrap;
    /// PostgreSQL uses the same fallback) and drops pages that are already
    /// clean. Dirty data is never discarded.
    #[cfg(target_os = "linux")]
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
        let offset = i64::try_from(offset).map_err(io::Error::other)?;
        let len = i64::try_from(len).map_err(io::Error::other)?;
        posix_fadvise(
            &self.0,
            offset,
            len,
            PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        )
        .map_err(io::Error::from)
    }
}

impl Backend for FileBackend {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(StdFile(file)))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Box::new(StdFile(file)))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            // Names that are not UTF-8 cannot be ours; skip rather than fail.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn lock_dir(&self, dir: &Path) -> io::Result<DirLock> {
        // flock(2) on the directory itself: no lock file to clutter listings,
        // and the kernel drops it when the process dies.
        let file = File::open(dir)?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock::new(file)),
            Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("directory {} is locked by another process", dir.display()),
            )),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_backend_lock_excludes_a_second_opener() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let _lock = FileBackend.lock_dir(tmp.path()).expect("lock");
        let err = FileBackend.lock_dir(tmp.path()).expect_err("held");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(err.to_string().contains("another process"), "{err}");
    }
}
