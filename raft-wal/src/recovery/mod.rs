//! Opening a WAL directory: lock it, finish an interrupted tail rewrite,
//! scan and replay the segments, repair a torn tail, and make what was
//! read durable before anyone acts on it.
//!
//! The steps live in three places, imported one way only:
//!
//! - [`scan`] reads the directory and decides what the damage means, and
//!   writes nothing;
//! - [`tail_copy`] is the copy that protects a rewrite of the last
//!   segment's tail (the doublewrite buffer);
//! - this module runs the steps in order and applies what `scan` planned.

pub(crate) mod scan;
mod tail_copy;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use raft_core::{HardState, Index, LogId};
use raft_io::{Backend, DirLock, FileHandle};

use self::scan::{Replay, Scanned, TailRepair};
use self::tail_copy::TailCopy;
use crate::error::{OpenError, open_io};
use crate::format::{DamageKind, SEGMENT_HEADER_BYTES, SegmentFile, SnapshotMarker};
use crate::rotation::spare::ZERO_CHUNK_BYTES;

/// A torn tail that recovery cut off the last segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailTruncation {
    /// The segment's id.
    pub segment: u64,
    /// Where the damage was found.
    pub damage_offset: u64,
    /// What the damage was.
    pub kind: DamageKind,
    /// The new end of the log in that segment; everything after it was
    /// zeroed and synced.
    pub truncated_at: u64,
}

/// What recovery read.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    /// The newest hard state (the default if none was ever saved).
    pub hard_state: HardState,
    /// The marker matching [`crate::WalOptions::snapshot`], if one was
    /// given.
    pub snapshot: Option<SnapshotMarker>,
    /// The entries after the snapshot (from index 1 without one), in order.
    pub entries: Vec<raft_core::Entry>,
    /// The positions of all snapshot markers in the retained log, oldest
    /// first.
    pub snapshot_markers: Vec<LogId>,
    /// The torn tail recovery truncated, if any.
    pub truncated_tail: Option<TailTruncation>,
    /// Leftover temporary files recovery deleted.
    pub removed_temp_files: Vec<PathBuf>,
}

/// What the writer continues from after [`recover`].
#[derive(Debug)]
pub(crate) struct Opened {
    /// What the caller gets.
    pub(crate) recovered: Recovered,
    /// The segments on disk, oldest first; empty for a new directory.
    pub(crate) segments: Vec<SegmentFile>,
    /// The last segment, open for writing, and where writing continues in
    /// it; everything before that offset is durable. `None` without
    /// segments.
    pub(crate) tail: Option<(Arc<dyn FileHandle>, u64)>,
    /// The last index of the log (or of the newest marker, if later).
    pub(crate) last_index: Index,
    /// The newest snapshot marker.
    pub(crate) newest_marker: Option<SnapshotMarker>,
}

/// Creates `dir` if needed, makes its entry durable and takes its lock.
///
/// # Errors
/// [`OpenError::Locked`] if someone else holds the lock; [`OpenError::Io`].
pub(crate) fn lock_dir(backend: &dyn Backend, dir: &Path) -> Result<DirLock, OpenError> {
    backend.create_dir_all(dir).map_err(open_io(dir))?;
    // The directory's own entry must survive a power cut too.
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    backend.sync_dir(&parent).map_err(open_io(&parent))?;
    backend.lock_dir(dir).map_err(|source| {
        if source.kind() == io::ErrorKind::WouldBlock {
            OpenError::Locked {
                dir: dir.to_path_buf(),
            }
        } else {
            OpenError::Io {
                path: dir.to_path_buf(),
                source,
            }
        }
    })
}

/// Recovers the locked directory `dir` by the crate docs' recovery rules:
/// accepts, repairs a torn tail, or refuses. Whatever it returns is
/// durable when it returns.
///
/// # Errors
/// A refusal variant of [`OpenError`], or [`OpenError::Io`].
pub(crate) fn recover(
    backend: &dyn Backend,
    dir: &Path,
    max_record_bytes: u32,
    snapshot: Option<LogId>,
    preallocate: bool,
) -> Result<Opened, OpenError> {
    let mut replayed = scan::Replayed::new();
    let (dir_state, (snapshot, entries, last_index)) = open_dir(
        backend,
        dir,
        max_record_bytes,
        preallocate,
        &mut replayed,
        |replayed| {
            // Taken before the entries move out of the replay.
            let last_index = replayed.last_index();
            let (snapshot, entries) = scan::entries_after(replayed, snapshot)?;
            Ok((snapshot, entries, last_index))
        },
    )?;
    let recovered = Recovered {
        hard_state: replayed.hard_state,
        snapshot,
        entries,
        snapshot_markers: replayed
            .markers
            .iter()
            .map(SnapshotMarker::log_id)
            .collect(),
        truncated_tail: dir_state.truncated_tail,
        removed_temp_files: dir_state.removed_temp_files,
    };
    Ok(Opened {
        recovered,
        newest_marker: replayed.newest_marker().cloned(),
        segments: dir_state.segments,
        tail: dir_state.tail,
        last_index,
    })
}

/// What [`open_dir`] leaves the writer, whichever log it replayed.
#[derive(Debug)]
pub(crate) struct OpenedDir {
    /// The segments on disk, oldest first; empty for a new directory.
    pub(crate) segments: Vec<SegmentFile>,
    /// The last segment, open for writing, and where writing continues in
    /// it; everything before that offset is durable. `None` without
    /// segments.
    pub(crate) tail: Option<(Arc<dyn FileHandle>, u64)>,
    /// The torn tail cut off, if any.
    pub(crate) truncated_tail: Option<TailTruncation>,
    /// Leftover temporary files deleted.
    pub(crate) removed_temp_files: Vec<PathBuf>,
}

/// The steps of recovery every log shares: finish an interrupted tail
/// rewrite, scan and replay into `replayed`, run the caller's `check`
/// (which may still refuse: nothing is repaired before it passes), repair a
/// torn tail, delete temporary files and make the tail durable.
///
/// # Errors
/// A refusal variant of [`OpenError`], or [`OpenError::Io`].
pub(crate) fn open_dir<R: Replay, T>(
    backend: &dyn Backend,
    dir: &Path,
    max_record_bytes: u32,
    preallocate: bool,
    replayed: &mut R,
    check: impl FnOnce(&mut R) -> Result<T, OpenError>,
) -> Result<(OpenedDir, T), OpenError> {
    finish_interrupted_rewrite(backend, dir)?;
    let scanned = scan::scan_dir(backend, dir, max_record_bytes, None, replayed)?;
    let checked = check(replayed)?;
    let truncated_tail = apply_repairs(backend, dir, &scanned, preallocate)?;
    let tail = match scanned.segments.last() {
        Some(last) => Some(open_tail(backend, dir, last, &scanned)?),
        None => None,
    };
    let opened = OpenedDir {
        removed_temp_files: scanned.temp_files,
        segments: scanned.segments,
        tail,
        truncated_tail,
    };
    Ok((opened, checked))
}

/// Opens the last segment for writing and makes its bytes up to where
/// writing continues durable.
fn open_tail(
    backend: &dyn Backend,
    dir: &Path,
    last: &SegmentFile,
    scanned: &Scanned,
) -> Result<(Arc<dyn FileHandle>, u64), OpenError> {
    let offset = scanned.write_offset;
    let file: Arc<dyn FileHandle> =
        Arc::from(backend.open(&last.path).map_err(open_io(&last.path))?);
    make_tail_durable(
        backend,
        dir,
        last,
        file.as_ref(),
        scanned.tail_synced_through,
        offset,
    )?;
    Ok((file, offset))
}

/// Reads a leftover tail-rewrite copy, if the directory has one, with the
/// segment it belongs to.
///
/// # Errors
/// [`OpenError::CorruptTailCopy`] if it does not verify or its segment does
/// not exist; [`OpenError::Io`]; a refusal from listing the segments.
pub(crate) fn read_leftover(
    backend: &dyn Backend,
    dir: &Path,
) -> Result<Option<(TailCopy, SegmentFile)>, OpenError> {
    let path = tail_copy::copy_path(dir);
    let bytes = match backend.read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(OpenError::Io { path, source }),
    };
    let Some(copy) = TailCopy::decode(&bytes) else {
        return Err(OpenError::CorruptTailCopy { path });
    };
    let (segments, _) = scan::list_segments(backend, dir)?;
    let Some(segment) = segments.into_iter().find(|s| s.id == copy.segment_id) else {
        return Err(OpenError::CorruptTailCopy { path });
    };
    // The copy starts at an offset a commit frame proved durable, so the
    // segment reaches it even after a power cut; the data itself may lie
    // past the end (a segment that was growing). This bounds what a forged
    // copy could make `open` allocate or write.
    let len = backend
        .open(&segment.path)
        .and_then(|f| f.len())
        .map_err(open_io(&segment.path))?;
    if copy.offset < SEGMENT_HEADER_BYTES as u64 || copy.offset > len {
        return Err(OpenError::CorruptTailCopy { path });
    }
    Ok(Some((copy, segment)))
}

/// Finishes a tail rewrite that a crash interrupted, from its copy, before
/// anything reads the log (see [`tail_copy`]).
fn finish_interrupted_rewrite(backend: &dyn Backend, dir: &Path) -> Result<(), OpenError> {
    let Some((copy, segment)) = read_leftover(backend, dir)? else {
        return Ok(());
    };
    let file = backend
        .open(&segment.path)
        .map_err(open_io(&segment.path))?;
    tail_copy::rewrite_in_place(backend, dir, file.as_ref(), &copy)
        .map_err(open_io(&segment.path))?;
    tracing::warn!(
        segment = copy.segment_id,
        offset = copy.offset,
        bytes = copy.data.len(),
        "finished a tail rewrite that a crash interrupted"
    );
    Ok(())
}

/// Makes the last segment's bytes up to `end` durable, so that nothing
/// `open` returns can be taken back by a later power cut. The bytes after
/// `synced_through` (the last offset a commit frame proves durable) may be
/// dirty pages of a process that died before its fsync, which an fsync
/// writes, or pages a failed fsync marked clean without writing them, which
/// only a new write puts on the disk (PostgreSQL fsyncs its data directory
/// after a crash for the first reason). They are written again, through the
/// copy that protects whatever of them is already durable ([`tail_copy`]),
/// and the directory is synced. Earlier segments were made durable before
/// the next one was created.
fn make_tail_durable(
    backend: &dyn Backend,
    dir: &Path,
    segment: &SegmentFile,
    file: &dyn FileHandle,
    synced_through: u64,
    end: u64,
) -> Result<(), OpenError> {
    if synced_through >= end {
        file.sync_data().map_err(open_io(&segment.path))?;
        return backend.sync_dir(dir).map_err(open_io(dir));
    }
    let mut data = vec![0u8; (end - synced_through) as usize];
    let n = file
        .read_at(synced_through, &mut data)
        .map_err(open_io(&segment.path))?;
    data.truncate(n);
    let copy = TailCopy {
        segment_id: segment.id,
        offset: synced_through,
        data,
    };
    tail_copy::rewrite_in_place(backend, dir, file, &copy).map_err(open_io(&segment.path))
}

/// Deletes leftover temporary files and cuts a torn tail, as planned by the
/// scan. Returns the truncation, for the caller to report.
fn apply_repairs(
    backend: &dyn Backend,
    dir: &Path,
    scanned: &Scanned,
    preallocate: bool,
) -> Result<Option<TailTruncation>, OpenError> {
    for temp in &scanned.temp_files {
        backend.remove_file(temp).map_err(open_io(temp))?;
    }
    if !scanned.temp_files.is_empty() {
        backend.sync_dir(dir).map_err(open_io(dir))?;
        tracing::info!(
            count = scanned.temp_files.len(),
            "removed leftover temporary files"
        );
    }
    let Some(repair) = &scanned.tail_repair else {
        return Ok(None);
    };
    repair_tail(backend, repair, preallocate)?;
    tracing::warn!(
        segment = repair.segment,
        offset = repair.damage_offset,
        kind = %repair.kind,
        truncated_at = repair.good_end,
        "truncated a torn tail"
    );
    Ok(Some(TailTruncation {
        segment: repair.segment,
        damage_offset: repair.damage_offset,
        kind: repair.kind,
        truncated_at: repair.good_end,
    }))
}

/// Zeroes a torn tail from the last good batch and syncs it. Without
/// preallocation the file is cut there as well, so it ends where the log
/// does; with it, the zeros are the preallocated space.
fn repair_tail(
    backend: &dyn Backend,
    repair: &TailRepair,
    preallocate: bool,
) -> Result<(), OpenError> {
    let file = backend.open(&repair.path).map_err(open_io(&repair.path))?;
    let result = (|| {
        let zeros = vec![0u8; ZERO_CHUNK_BYTES];
        let mut at = repair.good_end;
        while at < repair.dirty_end {
            let n = (repair.dirty_end - at).min(ZERO_CHUNK_BYTES as u64) as usize;
            file.write_at(at, &zeros[..n])?;
            at += n as u64;
        }
        if !preallocate {
            file.set_len(repair.good_end)?;
        }
        file.sync_data()
    })();
    result.map_err(open_io(&repair.path))
}
