//! Zero-filled files prepared ahead of rotation (etcd's `filePipeline`).
//!
//! With preallocation on, a new segment is filled with zeros up to the
//! segment size so that appends never change the file's size or block map.
//! Writing those zeros takes as long as writing a segment (about 90 ms for
//! 64 MiB on this project's disk); done at rotation, it stalls the save that
//! rotates. So the next segment's file is prepared while the current one
//! fills: created under a temporary name, zero-filled, synced. Rotation then
//! only writes the header and first batch into it, syncs, renames it into
//! place and syncs the directory, as before.
//!
//! A spare is an ordinary temporary file (its name ends in
//! [`TEMP_SUFFIX`]), so a crash leaves nothing that recovery does not
//! already delete. Preparing one never poisons the WAL: a failure is logged
//! and rotation falls back to creating the segment itself.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, MutexGuard};
use raft_io::{Backend, FileHandle};

use crate::format::TEMP_SUFFIX;

/// The chunk size for writing zeros.
pub(crate) const ZERO_CHUNK_BYTES: usize = 1 << 20;

/// Zeros a helper thread writes and syncs at a time.
const PACED_CHUNK_BYTES: usize = 256 << 10;

/// A zero-filled, synced file under a temporary name.
pub(crate) struct Spare {
    pub(crate) path: PathBuf,
    pub(crate) file: Box<dyn FileHandle>,
}

/// Prepares one spare at a time, on a helper thread or, for backends that
/// must replay exactly (the simulated one), on the caller's thread.
pub(crate) struct Spares {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    backend: Arc<dyn Backend>,
    dir: PathBuf,
    size_bytes: u64,
    state: Mutex<State>,
    changed: Condvar,
    /// Set on drop: the helper stops between chunks.
    stop: AtomicBool,
}

#[derive(Default)]
pub(crate) struct State {
    /// A spare was asked for and is not taken yet. Invariant: a `ready`
    /// spare was requested.
    requested: bool,
    ready: Option<Spare>,
    /// Spares prepared so far (names them).
    made: u64,
    stopped: bool,
}

impl fmt::Debug for Spares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.shared.state.lock();
        f.debug_struct("Spares")
            .field("background", &self.thread.is_some())
            .field("requested", &s.requested)
            .field("ready", &s.ready.is_some())
            .finish()
    }
}

impl Spares {
    /// Prepares spares of `size_bytes` in `dir` when asked to.
    pub(crate) fn start(
        backend: Arc<dyn Backend>,
        dir: &Path,
        size_bytes: u64,
        background: bool,
    ) -> Spares {
        let shared = Arc::new(Shared {
            backend,
            dir: dir.to_path_buf(),
            size_bytes,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let thread = background.then(|| {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("raft-wal-spare".into())
                .spawn(move || shared.run())
        });
        let thread = match thread {
            Some(Ok(handle)) => Some(handle),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "cannot start the segment preparer; preparing inline");
                None
            }
            None => None,
        };
        Spares { shared, thread }
    }

    /// Asks for the next spare (a no-op while one is requested or ready).
    pub(crate) fn request(&self) {
        let mut s = self.shared.state.lock();
        if s.requested {
            return;
        }
        s.requested = true;
        if self.thread.is_some() {
            self.shared.changed.notify_all();
            return;
        }
        drop(s);
        let made = self.shared.prepare_numbered(false);
        let mut s = self.shared.state.lock();
        s.ready = made;
    }

    /// The requested spare, waiting for the helper to finish it; `None` if
    /// preparing it failed (the caller creates the segment itself).
    pub(crate) fn take(&self) -> Option<Spare> {
        let mut s = self.wait_ready();
        s.requested = false;
        s.ready.take()
    }

    /// Waits until the helper has finished (or given up on) the requested
    /// spare; returns at once if nothing is being prepared.
    pub(crate) fn wait_ready(&self) -> MutexGuard<'_, State> {
        let mut s = self.shared.state.lock();
        if self.thread.is_some() {
            // The helper finishes or gives up on every request it sees.
            while s.requested && s.ready.is_none() && !s.stopped {
                self.shared.changed.wait(&mut s);
            }
        }
        s
    }
}

impl Shared {
    /// The helper thread: prepares a spare whenever one is requested and
    /// none is ready.
    fn run(&self) {
        loop {
            let mut s = self.state.lock();
            while !self.stop.load(Ordering::Acquire) && (!s.requested || s.ready.is_some()) {
                self.changed.wait(&mut s);
            }
            if self.stop.load(Ordering::Acquire) {
                s.stopped = true;
                self.changed.notify_all();
                return;
            }
            drop(s);
            let made = self.prepare_numbered(true);
            let mut s = self.state.lock();
            let failed = made.is_none();
            s.ready = made;
            if failed {
                // Nothing to wait for: `take` returns None and rotation
                // creates the segment itself; the next rotation asks again.
                s.requested = false;
            }
            self.changed.notify_all();
        }
    }

    fn prepare_numbered(&self, paced: bool) -> Option<Spare> {
        let n = {
            let mut s = self.state.lock();
            s.made += 1;
            s.made
        };
        let path = self.dir.join(format!("spare-{n}{TEMP_SUFFIX}"));
        match self.prepare(&path, paced) {
            Ok(file) => Some(Spare { path, file }),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot prepare a spare segment");
                let _ = self.backend.remove_file(&path);
                None
            }
        }
    }

    fn prepare(&self, path: &Path, paced: bool) -> io::Result<Box<dyn FileHandle>> {
        let file = self.backend.create(path)?;
        let zeros = vec![0u8; ZERO_CHUNK_BYTES];
        let mut at = 0;
        while at < self.size_bytes {
            if self.stop.load(Ordering::Acquire) {
                return Err(io::Error::other("the WAL is closing"));
            }
            let chunk = if paced {
                PACED_CHUNK_BYTES
            } else {
                ZERO_CHUNK_BYTES
            };
            let n = (self.size_bytes - at).min(chunk as u64);
            file.write_at(at, &zeros[..n as usize])?;
            if paced {
                // One chunk in the device queue at a time, so the WAL's own
                // fdatasync never waits behind a segment's worth of zeros.
                file.sync_data()?;
            } else if let Err(e) = file.start_writeback(at, n) {
                tracing::trace!(error = %e, "start_writeback failed (ignored)");
            }
            at += n;
        }
        file.sync_data()?;
        Ok(file)
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        {
            // Under the lock the helper checks `stop` with: set between its
            // check and its wait, the wakeup would be lost and the join
            // below would hang (found by the SIGKILL test, which opens and
            // drops a WAL many times in a row).
            let _state = self.shared.state.lock();
            self.shared.stop.store(true, Ordering::Release);
            self.shared.changed.notify_all();
        }
        if let Some(handle) = self.thread.take() {
            let _ = handle.join();
        }
        // An unused spare is deleted here or, after a crash, by recovery.
        if let Some(spare) = self.shared.state.lock().ready.take() {
            let _ = self.shared.backend.remove_file(&spare.path);
        }
    }
}
