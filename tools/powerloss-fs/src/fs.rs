//! The FUSE face of the [`Model`]. Every reply carries a zero TTL and every
//! file is opened with `FOPEN_DIRECT_IO`, so the kernel caches neither names
//! nor pages: after a power cut, what a process reads is what the model
//! kept.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use parking_lot::Mutex;

use crate::model::{FsError, Ino, Model, Node};

/// Nothing is cached by the kernel.
const TTL: Duration = Duration::ZERO;
const BLOCK_BYTES: u64 = 4096;

/// The state the file system and its control socket share.
#[derive(Debug, Default)]
pub struct Shared {
    /// The files.
    pub model: Mutex<Model>,
    /// Added to every fsync (a slow disk).
    pub fsync_delay: Mutex<Duration>,
}

/// The FUSE file system.
#[derive(Debug)]
pub struct PowerLossFs {
    shared: Arc<Shared>,
}

impl PowerLossFs {
    /// A file system over `shared`.
    pub fn new(shared: Arc<Shared>) -> PowerLossFs {
        PowerLossFs { shared }
    }
}

fn errno(e: FsError) -> Errno {
    match e {
        FsError::NotFound => Errno::ENOENT,
        FsError::Exists => Errno::EEXIST,
        FsError::NotDir => Errno::ENOTDIR,
        FsError::IsDir => Errno::EISDIR,
        FsError::NotEmpty => Errno::ENOTEMPTY,
        FsError::NoSpace => Errno::ENOSPC,
        _ => Errno::EIO,
    }
}

fn attr(model: &Model, ino: Ino) -> Result<FileAttr, FsError> {
    let (kind, size, perm, nlink) = match model.node(ino)? {
        Node::File(f) => (FileType::RegularFile, f.contents().len() as u64, 0o644, 1),
        Node::Dir(_) => (FileType::Directory, 0, 0o755, 2),
    };
    let now = SystemTime::now();
    Ok(FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: now,
        mtime: now,
        ctime: now,
        crtime: now,
        kind,
        perm,
        nlink,
        uid: 0,
        gid: 0,
        rdev: 0,
        flags: 0,
        blksize: BLOCK_BYTES as u32,
    })
}

impl PowerLossFs {
    fn entry(&self, reply: ReplyEntry, f: impl FnOnce(&mut Model) -> Result<Ino, FsError>) {
        let mut m = self.shared.model.lock();
        match f(&mut m).and_then(|ino| attr(&m, ino)) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn empty(&self, reply: ReplyEmpty, f: impl FnOnce(&mut Model) -> Result<(), FsError>) {
        match f(&mut self.shared.model.lock()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn sync(&self, ino: INodeNo, reply: ReplyEmpty) {
        let delay = *self.shared.fsync_delay.lock();
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        self.empty(reply, |m| m.sync(ino.0));
    }
}

impl Filesystem for PowerLossFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.entry(reply, |m| m.lookup(parent.0, name));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match attr(&self.shared.model.lock(), ino.0) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut m = self.shared.model.lock();
        let result = match size {
            Some(len) => m.set_len(ino.0, len),
            None => Ok(()),
        };
        match result.and_then(|()| attr(&m, ino.0)) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        self.entry(reply, |m| m.create(parent.0, name, false));
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        self.entry(reply, |m| m.create(parent.0, name, true));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.empty(reply, |m| m.remove(parent.0, name, false));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.empty(reply, |m| m.remove(parent.0, name, true));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        self.empty(reply, |m| m.rename(parent.0, name, newparent.0, newname));
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.shared.model.lock().node(ino.0) {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.shared.model.lock().read(ino.0, offset, size as usize) {
            Ok(data) => reply.data(data),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.shared.model.lock().write(ino.0, offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.sync(ino, reply);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let m = self.shared.model.lock();
        let entries = match m.entries(ino.0) {
            Ok(e) => e,
            Err(e) => return reply.error(errno(e)),
        };
        let dots = [
            (
                INodeNo(ino.0),
                FileType::Directory,
                OsStr::new(".").to_owned(),
            ),
            (
                INodeNo(ino.0),
                FileType::Directory,
                OsStr::new("..").to_owned(),
            ),
        ];
        let listed = entries.into_iter().map(|(name, child)| {
            let kind = match m.node(child) {
                Ok(Node::Dir(_)) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            (INodeNo(child), kind, name)
        });
        for (i, (child, kind, name)) in dots
            .into_iter()
            .chain(listed)
            .enumerate()
            .skip(offset as usize)
        {
            if reply.add(child, i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.sync(ino, reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let (used, cap) = self.shared.model.lock().usage();
        let total = cap.unwrap_or(1 << 40) / BLOCK_BYTES;
        let free = total.saturating_sub(used.div_ceil(BLOCK_BYTES));
        reply.statfs(
            total,
            free,
            free,
            1 << 20,
            1 << 20,
            BLOCK_BYTES as u32,
            255,
            BLOCK_BYTES as u32,
        );
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut m = self.shared.model.lock();
        match m
            .create(parent.0, name, false)
            .and_then(|ino| attr(&m, ino))
        {
            Ok(a) => reply.created(
                &TTL,
                &a,
                Generation(0),
                FileHandle(0),
                FopenFlags::FOPEN_DIRECT_IO,
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        if mode != 0 {
            return reply.error(Errno::EOPNOTSUPP);
        }
        self.empty(reply, |m| {
            let len = match m.node(ino.0)? {
                Node::File(f) => f.contents().len() as u64,
                Node::Dir(_) => return Err(FsError::IsDir),
            };
            if offset + length > len {
                m.set_len(ino.0, offset + length)?;
            }
            Ok(())
        });
    }
}
