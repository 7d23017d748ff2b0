//! [`SimBackend`]: an in-memory file system that simulates power cuts and
//! I/O faults (feature `sim`).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::backend::{Backend, DirLock, FileHandle};

/// The kind of failure [`SimBackend::inject_fault`] makes an operation return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultKind {
    /// A generic I/O error (EIO). A failed `sync_data` also drops the
    /// writes it should have persisted, as Linux does.
    Eio,
    /// No space left on the device (ENOSPC), as [`io::ErrorKind::StorageFull`].
    Enospc,
    /// On a write: only the first half of the data reaches the file, then
    /// the call fails with [`io::ErrorKind::WriteZero`]. On any other
    /// operation it behaves as [`FaultKind::Eio`].
    ShortWrite,
}

/// Counters of the operations a [`SimBackend`] has served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimStats {
    /// Successful [`FileHandle::sync_data`] calls.
    pub file_syncs: u64,
    /// Successful [`Backend::sync_dir`] calls.
    pub dir_syncs: u64,
    /// Successful [`FileHandle::write_at`] calls.
    pub writes: u64,
}

/// The sector size crashes tear writes at.
const SIM_SECTOR_BYTES: u64 = 512;

/// A simulated file system for crash and fault testing. Cloning it gives
/// another handle to the same file system, so a test can keep one while the
/// code under test owns another.
///
/// ```
/// use std::path::Path;
/// use raft_io::{Backend, SimBackend};
///
/// let sim = SimBackend::new();
/// sim.create_dir_all(Path::new("/d"))?;
/// let file = sim.create(Path::new("/d/a"))?;
/// file.write_at(0, b"hello")?;
/// file.sync_data()?; // the bytes are durable, the new name is not
/// sim.crash_losing_unsynced();
/// assert!(sim.read(Path::new("/d/a")).is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Simplifications, all on the side of "more durable than reality" only
/// where the stores built on this crate do not depend on them: directories themselves are durable
/// as soon as they are created, and crashes apply unsynced directory changes
/// as a prefix (a journaling file system commits metadata in order).
#[derive(Debug, Clone, Default)]
pub struct SimBackend {
    state: Arc<Mutex<SimState>>,
}

#[derive(Debug, Default)]
struct SimState {
    inodes: BTreeMap<u64, SimInode>,
    next_inode: u64,
    dirs: BTreeSet<PathBuf>,
    volatile_names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    pending_dir_ops: Vec<DirOp>,
    locks: BTreeSet<PathBuf>,
    /// Bumped by every crash; handles and locks from an older epoch are dead.
    epoch: u64,
    ops: u64,
    fault: Option<(u64, FaultKind)>,
    stats: SimStats,
}

#[derive(Debug, Default, Clone)]
struct SimInode {
    volatile: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<PendingWrite>,
}

#[derive(Debug, Clone)]
enum PendingWrite {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Clone)]
struct DirOp {
    dir: PathBuf,
    kind: DirOpKind,
}

#[derive(Debug, Clone)]
enum DirOpKind {
    Link { path: PathBuf, inode: u64 },
    Unlink { path: PathBuf },
}

fn apply_write(buf: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = usize::try_from(offset).expect("simulated file offset fits usize");
    let end = start + data.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[start..end].copy_from_slice(data);
}

fn apply_pending(buf: &mut Vec<u8>, op: &PendingWrite) {
    match op {
        PendingWrite::Write { offset, data } => apply_write(buf, *offset, data),
        PendingWrite::SetLen(len) => {
            buf.resize(
                usize::try_from(*len).expect("simulated length fits usize"),
                0,
            );
        }
    }
}

fn parent_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

fn fault_error(kind: FaultKind) -> io::Error {
    match kind {
        FaultKind::Enospc => io::Error::new(
            io::ErrorKind::StorageFull,
            "simulated ENOSPC: no space left on device",
        ),
        FaultKind::Eio => io::Error::other("simulated EIO: input/output error"),
        FaultKind::ShortWrite => io::Error::new(io::ErrorKind::WriteZero, "simulated short write"),
    }
}

impl SimState {
    /// Counts an operation and returns the fault to inject into it, if any.
    fn tick(&mut self) -> Option<FaultKind> {
        let n = self.ops;
        self.ops += 1;
        match self.fault {
            Some((at, kind)) if at == n => {
                self.fault = None;
                Some(kind)
            }
            _ => None,
        }
    }

    fn check_dir(&self, dir: &Path) -> io::Result<()> {
        if self.dirs.contains(dir) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such directory", dir.display()),
            ))
        }
    }

    fn inode(&mut self, id: u64) -> &mut SimInode {
        self.inodes
            .get_mut(&id)
            .expect("a live handle's inode exists until the next crash")
    }

    fn crash(&mut self, rng: Option<&mut StdRng>) {
        let mut rng = rng;
        // Directory changes: a random prefix of the unsynced ones survives.
        let ops = std::mem::take(&mut self.pending_dir_ops);
        let keep_ops = match rng.as_deref_mut() {
            Some(r) => r.random_range(0..=ops.len()),
            None => 0,
        };
        for op in &ops[..keep_ops] {
            match &op.kind {
                DirOpKind::Link { path, inode } => {
                    self.durable_names.insert(path.clone(), *inode);
                }
                DirOpKind::Unlink { path } => {
                    self.durable_names.remove(path);
                }
            }
        }
        // File contents: each unsynced write may survive, vanish or tear.
        for inode in self.inodes.values_mut() {
            let pending = std::mem::take(&mut inode.pending);
            if let Some(r) = rng.as_deref_mut() {
                for op in &pending {
                    crash_one_write(&mut inode.durable, op, r);
                }
            }
            inode.volatile = inode.durable.clone();
        }
        let live: BTreeSet<u64> = self.durable_names.values().copied().collect();
        self.inodes.retain(|id, _| live.contains(id));
        self.volatile_names = self.durable_names.clone();
        self.locks.clear();
        self.epoch += 1;
    }
}

/// Applies what a crash leaves of one unsynced operation to `durable`.
fn crash_one_write(durable: &mut Vec<u8>, op: &PendingWrite, rng: &mut StdRng) {
    match op {
        PendingWrite::SetLen(_) => {
            if rng.random_bool(0.5) {
                apply_pending(durable, op);
            }
        }
        PendingWrite::Write { offset, data } => match rng.random_range(0..4u8) {
            0 => {}
            1 => apply_write(durable, *offset, data),
            _ => tear_write(durable, *offset, data, rng),
        },
    }
}

/// Persists a random subset of the sectors `data` covers; each lost sector
/// keeps its old bytes, or becomes zeros, or becomes garbage.
fn tear_write(durable: &mut Vec<u8>, offset: u64, data: &[u8], rng: &mut StdRng) {
    let end = offset + data.len() as u64;
    let mut sector_start = offset - offset % SIM_SECTOR_BYTES;
    while sector_start < end {
        let lo = sector_start.max(offset);
        let hi = (sector_start + SIM_SECTOR_BYTES).min(end);
        let slice = &data[(lo - offset) as usize..(hi - offset) as usize];
        match rng.random_range(0..4u8) {
            0 => apply_write(durable, lo, slice),
            1 => apply_write(durable, lo, &vec![0; slice.len()]),
            2 => {
                let garbage: Vec<u8> = (0..slice.len()).map(|_| rng.random()).collect();
                apply_write(durable, lo, &garbage);
            }
            _ => {
                // Old bytes stay; a sector past the old end still extends
                // the file with zeros half the time (size updated first).
                if hi as usize > durable.len() && rng.random_bool(0.5) {
                    durable.resize(hi as usize, 0);
                }
            }
        }
        sector_start += SIM_SECTOR_BYTES;
    }
}

impl SimBackend {
    /// An empty file system with only the root directory `/`.
    pub fn new() -> SimBackend {
        let backend = SimBackend::default();
        backend.state.lock().dirs.insert(PathBuf::from("/"));
        backend
    }

    /// This file system as a shareable trait object (sharing state with
    /// `self`).
    pub fn shared(&self) -> Arc<dyn Backend> {
        Arc::new(self.clone())
    }

    /// Simulates a power cut. Every unsynced write independently survives,
    /// vanishes, or is torn at 512-byte sectors into a mix of new bytes, old
    /// bytes, zeros and garbage; a random prefix of the unsynced directory
    /// changes survives. Open handles and locks become invalid: their
    /// operations fail. The outcome is a function of `seed` and the history.
    pub fn crash(&self, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        self.state.lock().crash(Some(&mut rng));
    }

    /// Simulates a power cut that loses everything not synced, with no
    /// tearing: the deterministic worst case for lost data.
    pub fn crash_losing_unsynced(&self) {
        self.state.lock().crash(None);
    }

    /// Makes operation number `at_op` (counting every call to the backend and
    /// its handles from zero, see [`SimBackend::op_count`]) fail with `kind`.
    /// One-shot; replaces any earlier injected fault.
    pub fn inject_fault(&self, at_op: u64, kind: FaultKind) {
        self.state.lock().fault = Some((at_op, kind));
    }

    /// Cancels a fault injected with [`SimBackend::inject_fault`] that has
    /// not fired yet.
    pub fn clear_fault(&self) {
        self.state.lock().fault = None;
    }

    /// The number of operations served so far.
    pub fn op_count(&self) -> u64 {
        self.state.lock().ops
    }

    /// Counters of successful writes and syncs.
    pub fn stats(&self) -> SimStats {
        self.state.lock().stats
    }

    /// Paths of the files that would survive a crash right now, sorted.
    pub fn durable_files(&self) -> Vec<PathBuf> {
        self.state.lock().durable_names.keys().cloned().collect()
    }
}

#[derive(Debug)]
struct SimFile {
    state: Arc<Mutex<SimState>>,
    inode: u64,
    epoch: u64,
    path: PathBuf,
}

impl SimFile {
    fn live<'a>(&self, state: &'a mut SimState) -> io::Result<&'a mut SimState> {
        if state.epoch == self.epoch {
            Ok(state)
        } else {
            Err(io::Error::other(format!(
                "{}: handle outlived a simulated crash",
                self.path.display()
            )))
        }
    }
}

impl FileHandle for SimFile {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut guard = self.state.lock();
        let state = self.live(&mut guard)?;
        let fault = state.tick();
        let data = match fault {
            None => data,
            Some(FaultKind::ShortWrite) => &data[..data.len() / 2],
            Some(kind) => return Err(fault_error(kind)),
        };
        let inode = state.inode(self.inode);
        apply_write(&mut inode.volatile, offset, data);
        inode.pending.push(PendingWrite::Write {
            offset,
            data: data.to_vec(),
        });
        match fault {
            Some(kind) => Err(fault_error(kind)),
            None => {
                state.stats.writes += 1;
                Ok(())
            }
        }
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut guard = self.state.lock();
        let state = self.live(&mut guard)?;
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind));
        }
        let bytes = &state.inode(self.inode).volatile;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let n = buf.len().min(bytes.len() - start);
        buf[..n].copy_from_slice(&bytes[start..start + n]);
        Ok(n)
    }

    fn len(&self) -> io::Result<u64> {
        let mut guard = self.state.lock();
        let state = self.live(&mut guard)?;
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind));
        }
        Ok(state.inode(self.inode).volatile.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut guard = self.state.lock();
        let state = self.live(&mut guard)?;
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind));
        }
        let inode = state.inode(self.inode);
        let op = PendingWrite::SetLen(len);
        apply_pending(&mut inode.volatile, &op);
        inode.pending.push(op);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut guard = self.state.lock();
        let state = self.live(&mut guard)?;
        let fault = state.tick();
        let inode = state.inode(self.inode);
        let pending = std::mem::take(&mut inode.pending);
        if let Some(kind) = fault {
            // The kernel marks the pages clean anyway: these writes are gone
            // from durable storage for good, though reads still see them.
            return Err(fault_error(kind));
        }
        for op in &pending {
            apply_pending(&mut inode.durable, op);
        }
        state.stats.file_syncs += 1;
        Ok(())
    }
}

impl SimBackend {
    fn handle(&self, state: &SimState, inode: u64, path: &Path) -> Box<dyn FileHandle> {
        Box::new(SimFile {
            state: Arc::clone(&self.state),
            inode,
            epoch: state.epoch,
            path: path.to_path_buf(),
        })
    }
}

struct SimLock {
    state: Arc<Mutex<SimState>>,
    dir: PathBuf,
    epoch: u64,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut state = self.state.lock();
        if state.epoch == self.epoch {
            state.locks.remove(&self.dir);
        }
    }
}

impl Backend for SimBackend {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind));
        }
        for ancestor in path.ancestors() {
            if !ancestor.as_os_str().is_empty() {
                state.dirs.insert(ancestor.to_path_buf());
            }
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        let mut state = self.state.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind));
        }
        let dir = parent_of(path);
        state.check_dir(&dir)?;
        if let Some(&inode) = state.volatile_names.get(path) {
            let node = state.inode(inode);
            node.volatile.clear();
            node.pending.push(PendingWrite::SetLen(0));
            return Ok(self.handle(&state, inode, path));
        }
        let inode = state.next_inode;
        state.next_inode += 1;
        state.inodes.insert(inode, SimInode::default());
        state.volatile_names.insert(path.to_path_buf(), inode);
        state.pending_dir_ops.push(DirOp {
            dir,
            kind: DirOpKind::Link {
                path: path.to_path_buf(),
                inode,
            },
        });
        Ok(self.handle(&state, inode, path))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn FileHandle>> {
        let mut state = self.state.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind));
        }
        let inode = *state
            .volatile_names
            .get(path)
            .ok_or_else(|| not_found(path))?;
        Ok(self.handle(&state, inode, path))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut state = self.state.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind));
        }
        let inode = *state
            .volatile_names
            .get(path)
            .ok_or_else(|| not_found(path))?;
        Ok(state.inode(inode).volatile.clone())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind));
        }
        let dir = parent_of(from);
        if parent_of(to) != dir {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "simulated rename across directories",
            ));
        }
        let inode = state
            .volatile_names
            .remove(from)
            .ok_or_else(|| not_found(from))?;
        state.volatile_names.insert(to.to_path_buf(), inode);
        state.pending_dir_ops.push(DirOp {
            dir: dir.clone(),
            kind: DirOpKind::Unlink {
                path: from.to_path_buf(),
            },
        });
        state.pending_dir_ops.push(DirOp {
            dir,
            kind: DirOpKind::Link {
                path: to.to_path_buf(),
                inode,
            },
        });
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind));
        }
        state
            .volatile_names
            .remove(path)
            .ok_or_else(|| not_found(path))?;
        state.pending_dir_ops.push(DirOp {
            dir: parent_of(path),
            kind: DirOpKind::Unlink {
                path: path.to_path_buf(),
            },
        });
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut state = self.state.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind));
        }
        state.check_dir(dir)?;
        let files = state.volatile_names.keys();
        let subdirs = state.dirs.iter();
        let mut names: Vec<String> = files
            .chain(subdirs)
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn supports_background_io(&self) -> bool {
        false
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind));
        }
        state.check_dir(dir)?;
        let ops = std::mem::take(&mut state.pending_dir_ops);
        let (mine, others): (Vec<DirOp>, Vec<DirOp>) =
            ops.into_iter().partition(|op| op.dir == dir);
        state.pending_dir_ops = others;
        for op in mine {
            match op.kind {
                DirOpKind::Link { path, inode } => {
                    state.durable_names.insert(path, inode);
                }
                DirOpKind::Unlink { path } => {
                    state.durable_names.remove(&path);
                }
            }
        }
        state.stats.dir_syncs += 1;
        Ok(())
    }

    fn lock_dir(&self, dir: &Path) -> io::Result<DirLock> {
        let mut state = self.state.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind));
        }
        state.check_dir(dir)?;
        if !state.locks.insert(dir.to_path_buf()) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("directory {} is locked by another process", dir.display()),
            ));
        }
        Ok(DirLock::new(SimLock {
            state: Arc::clone(&self.state),
            dir: dir.to_path_buf(),
            epoch: state.epoch,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        PathBuf::from("/d")
    }

    fn setup() -> (SimBackend, Box<dyn FileHandle>) {
        let sim = SimBackend::new();
        sim.create_dir_all(&dir()).expect("mkdir");
        let f = sim.create(&dir().join("a")).expect("create");
        (sim, f)
    }

    #[test]
    fn unsynced_file_name_is_lost_by_a_crash_even_if_its_data_was_synced() {
        let (sim, f) = setup();
        f.write_at(0, b"hello").expect("write");
        f.sync_data().expect("sync");
        sim.crash_losing_unsynced();
        assert!(sim.read(&dir().join("a")).is_err());
    }

    #[test]
    fn synced_data_under_a_synced_name_survives_a_crash() {
        let (sim, f) = setup();
        f.write_at(0, b"hello").expect("write");
        f.sync_data().expect("sync");
        sim.sync_dir(&dir()).expect("sync dir");
        f.write_at(5, b" world").expect("write");
        sim.crash_losing_unsynced();
        assert_eq!(sim.read(&dir().join("a")).expect("read"), b"hello");
        assert!(f.write_at(0, b"x").is_err(), "handles die with the crash");
    }

    #[test]
    fn rename_without_directory_sync_is_lost() {
        let (sim, f) = setup();
        f.write_at(0, b"x").expect("write");
        f.sync_data().expect("sync");
        sim.sync_dir(&dir()).expect("sync dir");
        sim.rename(&dir().join("a"), &dir().join("b"))
            .expect("rename");
        sim.crash_losing_unsynced();
        assert_eq!(sim.list_dir(&dir()).expect("list"), vec!["a".to_owned()]);
    }

    #[test]
    fn failed_sync_loses_the_writes_for_good() {
        let (sim, f) = setup();
        sim.sync_dir(&dir()).expect("sync dir");
        f.write_at(0, b"data").expect("write");
        sim.inject_fault(sim.op_count(), FaultKind::Eio);
        assert!(f.sync_data().is_err());
        f.sync_data().expect("the retry lies and succeeds");
        sim.crash_losing_unsynced();
        assert_eq!(sim.read(&dir().join("a")).expect("read"), b"");
    }

    #[test]
    fn short_write_persists_half_and_fails() {
        let (sim, f) = setup();
        sim.inject_fault(sim.op_count(), FaultKind::ShortWrite);
        let err = f.write_at(0, b"abcd").expect_err("fault");
        assert_eq!(err.kind(), io::ErrorKind::WriteZero);
        assert_eq!(sim.read(&dir().join("a")).expect("read"), b"ab");
    }

    #[test]
    fn random_crash_keeps_synced_bytes_and_only_tears_unsynced_ones() {
        for seed in 0..200 {
            let (sim, f) = setup();
            sim.sync_dir(&dir()).expect("sync dir");
            f.write_at(0, &[7u8; 1000]).expect("write");
            f.sync_data().expect("sync");
            f.write_at(1000, &[9u8; 3000]).expect("write");
            sim.crash(seed);
            let bytes = sim.read(&dir().join("a")).expect("read");
            assert_eq!(&bytes[..1000], &[7u8; 1000][..], "seed {seed}");
        }
    }

    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() {
        let sim = SimBackend::new();
        sim.create_dir_all(&dir()).expect("mkdir");
        let lock = sim.lock_dir(&dir()).expect("lock");
        let err = sim.lock_dir(&dir()).expect_err("held");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(err.to_string().contains("another process"), "{err}");
        drop(lock);
        sim.lock_dir(&dir()).expect("free again");
    }
}
