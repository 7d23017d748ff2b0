//! The file system as a crash sees it: for every file and directory, what a
//! running process sees (*volatile*) apart from what survives a power cut
//! (*durable*). POSIX's rules, taken literally (as raft-io's `SimBackend`
//! and the ALICE study do): `fsync` of a file makes its contents durable
//! and nothing else; a name (create, rename, unlink) is durable only once
//! its directory is fsynced; a failed fsync loses the writes it was meant
//! to persist ("fsyncgate").

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::ops::Range;

/// Inode numbers; the root is 1 (FUSE's).
pub type Ino = u64;
/// The root directory.
pub const ROOT: Ino = 1;

/// Why an operation failed, as the errno FUSE returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// ENOENT.
    #[error("no such file or directory")]
    NotFound,
    /// EEXIST.
    #[error("file exists")]
    Exists,
    /// ENOTDIR.
    #[error("not a directory")]
    NotDir,
    /// EISDIR.
    #[error("is a directory")]
    IsDir,
    /// ENOTEMPTY.
    #[error("directory not empty")]
    NotEmpty,
    /// ENOSPC: the configured capacity is reached.
    #[error("no space left on device")]
    NoSpace,
    /// EIO: an injected fsync failure.
    #[error("input/output error")]
    Io,
}

/// A regular file.
#[derive(Debug, Default, Clone)]
pub struct File {
    volatile: Vec<u8>,
    durable: Vec<u8>,
    /// Volatile ranges not yet durable (coalesced when many).
    dirty: Vec<Range<u64>>,
}

/// More dirty ranges than this are merged into one covering range.
const MAX_DIRTY_RANGES: usize = 64;

impl File {
    fn mark_dirty(&mut self, range: Range<u64>) {
        self.dirty.push(range);
        if self.dirty.len() > MAX_DIRTY_RANGES {
            let start = self.dirty.iter().map(|r| r.start).min().unwrap_or(0);
            let end = self.dirty.iter().map(|r| r.end).max().unwrap_or(0);
            self.dirty.clear();
            self.dirty.push(start..end);
        }
    }

    /// The file's contents now.
    pub fn contents(&self) -> &[u8] {
        &self.volatile
    }

    fn sync(&mut self) {
        let len = self.volatile.len();
        if self.durable.len() < len {
            self.durable.resize(len, 0);
        }
        for r in self.dirty.drain(..) {
            let start = (r.start as usize).min(len);
            let end = (r.end as usize).min(len);
            self.durable[start..end].copy_from_slice(&self.volatile[start..end]);
        }
        self.durable.truncate(len);
        // Equal to `volatile` unless a failed fsync lost some writes.
        debug_assert_eq!(self.durable.len(), len, "a synced file has its length");
    }

    /// A failed fsync: the dirty writes stay visible but will never be
    /// made durable by a later fsync (Linux marks the pages clean).
    fn fail_sync(&mut self) {
        self.dirty.clear();
    }
}

/// A directory: names to inodes.
#[derive(Debug, Default, Clone)]
pub struct Dir {
    volatile: BTreeMap<OsString, Ino>,
    durable: BTreeMap<OsString, Ino>,
}

/// A file or a directory.
#[derive(Debug, Clone)]
pub enum Node {
    /// A regular file.
    File(File),
    /// A directory.
    Dir(Dir),
}

/// Injected faults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Every fsync fails with EIO (and loses what it should have made
    /// durable).
    pub fail_fsync: bool,
    /// Writes that would take the volatile total past this fail with
    /// ENOSPC.
    pub capacity_bytes: Option<u64>,
}

/// The whole file system.
#[derive(Debug)]
pub struct Model {
    nodes: HashMap<Ino, Node>,
    next_ino: Ino,
    /// Invariant: the sum of all files' volatile lengths.
    used_bytes: u64,
    /// What is injected now.
    pub faults: Faults,
    /// Power cuts so far.
    pub power_losses: u64,
}

impl Default for Model {
    fn default() -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node::Dir(Dir::default()));
        Model {
            nodes,
            next_ino: ROOT + 1,
            used_bytes: 0,
            faults: Faults::default(),
            power_losses: 0,
        }
    }
}

impl Model {
    /// An empty file system.
    pub fn new() -> Model {
        Model::default()
    }

    /// The node `ino`.
    pub fn node(&self, ino: Ino) -> Result<&Node, FsError> {
        self.nodes.get(&ino).ok_or(FsError::NotFound)
    }

    fn dir(&self, ino: Ino) -> Result<&Dir, FsError> {
        match self.node(ino)? {
            Node::Dir(d) => Ok(d),
            Node::File(_) => Err(FsError::NotDir),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut Dir, FsError> {
        match self.nodes.get_mut(&ino).ok_or(FsError::NotFound)? {
            Node::Dir(d) => Ok(d),
            Node::File(_) => Err(FsError::NotDir),
        }
    }

    fn file_mut(&mut self, ino: Ino) -> Result<&mut File, FsError> {
        match self.nodes.get_mut(&ino).ok_or(FsError::NotFound)? {
            Node::File(f) => Ok(f),
            Node::Dir(_) => Err(FsError::IsDir),
        }
    }

    /// The inode `name` in `parent` names now.
    pub fn lookup(&self, parent: Ino, name: &OsStr) -> Result<Ino, FsError> {
        self.dir(parent)?
            .volatile
            .get(name)
            .copied()
            .ok_or(FsError::NotFound)
    }

    /// The entries of directory `ino`, by name.
    pub fn entries(&self, ino: Ino) -> Result<Vec<(OsString, Ino)>, FsError> {
        Ok(self
            .dir(ino)?
            .volatile
            .iter()
            .map(|(n, i)| (n.clone(), *i))
            .collect())
    }

    /// Creates `name` in `parent`: a file, or a directory if `dir`.
    pub fn create(&mut self, parent: Ino, name: &OsStr, dir: bool) -> Result<Ino, FsError> {
        if self.dir(parent)?.volatile.contains_key(name) {
            return Err(FsError::Exists);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let node = if dir {
            Node::Dir(Dir::default())
        } else {
            Node::File(File::default())
        };
        self.nodes.insert(ino, node);
        self.dir_mut(parent)?.volatile.insert(name.to_owned(), ino);
        Ok(ino)
    }

    /// Removes `name` from `parent` (a directory only if empty).
    pub fn remove(&mut self, parent: Ino, name: &OsStr, dir: bool) -> Result<(), FsError> {
        let ino = self.lookup(parent, name)?;
        match (self.node(ino)?, dir) {
            (Node::Dir(d), true) if !d.volatile.is_empty() => return Err(FsError::NotEmpty),
            (Node::Dir(_), false) => return Err(FsError::IsDir),
            (Node::File(_), true) => return Err(FsError::NotDir),
            _ => {}
        }
        self.dir_mut(parent)?.volatile.remove(name);
        Ok(())
    }

    /// Renames, replacing whatever `to` named.
    pub fn rename(
        &mut self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
    ) -> Result<(), FsError> {
        let ino = self.lookup(parent, name)?;
        self.dir(new_parent)?;
        self.dir_mut(parent)?.volatile.remove(name);
        self.dir_mut(new_parent)?
            .volatile
            .insert(new_name.to_owned(), ino);
        Ok(())
    }

    /// Bytes of `ino` from `offset`, at most `len`.
    pub fn read(&self, ino: Ino, offset: u64, len: usize) -> Result<&[u8], FsError> {
        let Node::File(f) = self.node(ino)? else {
            return Err(FsError::IsDir);
        };
        let start = (offset as usize).min(f.volatile.len());
        let end = start.saturating_add(len).min(f.volatile.len());
        Ok(&f.volatile[start..end])
    }

    /// Writes `data` at `offset`.
    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<(), FsError> {
        let end = offset + data.len() as u64;
        let old_len = self.file_mut(ino)?.volatile.len() as u64;
        self.reserve(end.saturating_sub(old_len))?;
        let f = self.file_mut(ino)?;
        if f.volatile.len() < end as usize {
            f.volatile.resize(end as usize, 0);
        }
        f.volatile[offset as usize..end as usize].copy_from_slice(data);
        f.mark_dirty(offset.min(old_len)..end);
        Ok(())
    }

    /// Sets the length of `ino`.
    pub fn set_len(&mut self, ino: Ino, len: u64) -> Result<(), FsError> {
        let old_len = self.file_mut(ino)?.volatile.len() as u64;
        self.reserve(len.saturating_sub(old_len))?;
        self.used_bytes -= old_len.saturating_sub(len);
        let f = self.file_mut(ino)?;
        f.volatile.resize(len as usize, 0);
        f.mark_dirty(len.min(old_len)..len.max(old_len));
        Ok(())
    }

    fn reserve(&mut self, more: u64) -> Result<(), FsError> {
        if let Some(cap) = self.faults.capacity_bytes
            && more > 0
            && self.used_bytes + more > cap
        {
            return Err(FsError::NoSpace);
        }
        self.used_bytes += more;
        Ok(())
    }

    /// The bytes in use and the capacity, for `statfs`.
    pub fn usage(&self) -> (u64, Option<u64>) {
        (self.used_bytes, self.faults.capacity_bytes)
    }

    /// `fsync` of a file (its contents) or a directory (its names).
    pub fn sync(&mut self, ino: Ino) -> Result<(), FsError> {
        let fail = self.faults.fail_fsync;
        match self.nodes.get_mut(&ino).ok_or(FsError::NotFound)? {
            Node::File(f) if fail => {
                f.fail_sync();
                Err(FsError::Io)
            }
            Node::File(f) => {
                f.sync();
                Ok(())
            }
            Node::Dir(_) if fail => Err(FsError::Io),
            Node::Dir(d) => {
                d.durable = d.volatile.clone();
                Ok(())
            }
        }
    }

    /// A power cut: everything not durable is gone. Files and directories
    /// no durable name reaches are freed.
    pub fn power_loss(&mut self) {
        for node in self.nodes.values_mut() {
            match node {
                Node::File(f) => {
                    f.volatile = f.durable.clone();
                    f.dirty.clear();
                }
                Node::Dir(d) => d.volatile = d.durable.clone(),
            }
        }
        let mut reachable = vec![ROOT];
        let mut seen = std::collections::HashSet::from([ROOT]);
        while let Some(ino) = reachable.pop() {
            if let Some(Node::Dir(d)) = self.nodes.get(&ino) {
                for &child in d.durable.values() {
                    if seen.insert(child) {
                        reachable.push(child);
                    }
                }
            }
        }
        self.nodes.retain(|ino, _| seen.contains(ino));
        self.used_bytes = self
            .nodes
            .values()
            .map(|n| match n {
                Node::File(f) => f.volatile.len() as u64,
                Node::Dir(_) => 0,
            })
            .sum();
        self.power_losses += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    #[test]
    fn unsynced_writes_are_lost_and_synced_ones_kept() {
        let mut m = Model::new();
        let f = m.create(ROOT, name("f"), false).unwrap();
        m.sync(ROOT).unwrap();
        m.write(f, 0, b"durable").unwrap();
        m.sync(f).unwrap();
        m.write(f, 7, b" and not").unwrap();
        m.power_loss();
        assert_eq!(m.read(f, 0, 100).unwrap(), b"durable");
    }

    #[test]
    fn a_name_is_durable_only_once_its_directory_is_synced() {
        let mut m = Model::new();
        let f = m.create(ROOT, name("new"), false).unwrap();
        m.write(f, 0, b"x").unwrap();
        m.sync(f).unwrap();
        m.power_loss();
        assert_eq!(m.lookup(ROOT, name("new")), Err(FsError::NotFound));

        let g = m.create(ROOT, name("tmp"), false).unwrap();
        m.sync(ROOT).unwrap();
        m.rename(ROOT, name("tmp"), ROOT, name("final")).unwrap();
        m.power_loss();
        assert_eq!(m.lookup(ROOT, name("tmp")), Ok(g), "the rename is lost");
        assert_eq!(m.lookup(ROOT, name("final")), Err(FsError::NotFound));
    }

    #[test]
    fn a_failed_fsync_loses_its_writes_even_after_a_later_fsync() {
        let mut m = Model::new();
        let f = m.create(ROOT, name("f"), false).unwrap();
        m.sync(ROOT).unwrap();
        m.write(f, 0, b"lost").unwrap();
        m.faults.fail_fsync = true;
        assert_eq!(m.sync(f), Err(FsError::Io));
        m.faults.fail_fsync = false;
        assert_eq!(m.read(f, 0, 10).unwrap(), b"lost", "still visible");
        m.sync(f).unwrap();
        m.power_loss();
        assert_eq!(m.read(f, 0, 10).unwrap(), [0u8; 4], "never made durable");
    }

    #[test]
    fn writes_past_the_capacity_fail_with_no_space_until_space_returns() {
        let mut m = Model::new();
        m.faults.capacity_bytes = Some(10);
        let f = m.create(ROOT, name("f"), false).unwrap();
        m.write(f, 0, &[1; 8]).unwrap();
        assert_eq!(m.write(f, 8, &[1; 8]), Err(FsError::NoSpace));
        m.write(f, 0, &[2; 8]).unwrap();
        m.set_len(f, 2).unwrap();
        m.write(f, 2, &[3; 8]).unwrap();
        assert_eq!(m.usage().0, 10);
    }

    #[test]
    fn many_small_writes_sync_exactly() {
        let mut m = Model::new();
        let f = m.create(ROOT, name("f"), false).unwrap();
        m.sync(ROOT).unwrap();
        for i in 0..500u64 {
            m.write(f, i * 3, &[i as u8; 3]).unwrap();
        }
        m.set_len(f, 1000).unwrap();
        m.sync(f).unwrap();
        let before = m.read(f, 0, 2000).unwrap().to_vec();
        m.power_loss();
        assert_eq!(m.read(f, 0, 2000).unwrap(), &before[..]);
    }

    #[test]
    fn files_no_durable_name_reaches_are_freed() {
        let mut m = Model::new();
        let d = m.create(ROOT, name("d"), true).unwrap();
        let f = m.create(d, name("f"), false).unwrap();
        m.write(f, 0, b"abc").unwrap();
        m.sync(f).unwrap();
        m.sync(d).unwrap();
        m.power_loss();
        assert_eq!(m.node(d).err(), Some(FsError::NotFound));
        assert_eq!(m.usage().0, 0);
    }
}
