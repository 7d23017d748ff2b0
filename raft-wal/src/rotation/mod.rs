//! Moving to a new segment: when the current one is full, or when a save
//! replaces entries below its first index; creating segment files; and the
//! zero-filled spare files that keep rotation from stalling a save
//! ([`spare`]).

pub(crate) mod spare;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::MutexGuard;
use raft_core::{Entry, HardState, Index};
use raft_io::{Backend, FileHandle};

use self::spare::{Spare, Spares, ZERO_CHUNK_BYTES};
use crate::error::SaveError;
use crate::format::{
    self, Commit, Layout, SEGMENT_HEADER_BYTES, SegmentFile, SegmentHeader, TEMP_SUFFIX,
};
use crate::group_commit::{GroupCommit, write_streaming};
use crate::options::WalOptions;
use crate::state::WalState;

/// With [`WalOptions::preallocate`], a new segment is still not filled with
/// zeros when the batches of the segment before it averaged at least this
/// much: for such batches the fdatasync's metadata update that
/// preallocation saves is small next to the data, while the zeros would
/// double the bytes written.
const PREALLOCATE_MAX_AVG_BATCH_BYTES: u64 = 1 << 20;

/// How full the current segment is: decides when the next one's spare is
/// asked for and whether it is preallocated.
#[derive(Debug, Default)]
pub(crate) struct SegmentFill {
    /// Batches queued in the current segment since it was created.
    batches: u64,
    /// Their bytes.
    bytes: u64,
    /// The spare for the segment after the current one was asked for.
    spare_requested: bool,
}

/// What a new segment is: its header and whether it is zero-filled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewSegment {
    pub(crate) id: u64,
    pub(crate) first_index: Index,
    pub(crate) layout: Layout,
}

/// A segment [`Rotation::create_segment`] made durable under its name.
pub(crate) struct CreatedSegment {
    pub(crate) segment: SegmentFile,
    pub(crate) file: Arc<dyn FileHandle>,
    /// The end of its first batch: where the next one goes.
    pub(crate) end: u64,
}

/// Rotates the WAL of one directory.
#[derive(Debug)]
pub(crate) struct Rotation {
    backend: Arc<dyn Backend>,
    dir: PathBuf,
    segment_size_bytes: u64,
    preallocate: bool,
    /// Zero-filled files for the next segments; `None` without
    /// preallocation. Used under the WAL's lock by rotation, and without it
    /// by `wait_for_preallocation`.
    spares: Option<Spares>,
}

impl Rotation {
    /// Rotation for the WAL in `dir`; starts preparing spares if the
    /// options preallocate.
    pub(crate) fn new(dir: &Path, options: &WalOptions) -> Rotation {
        let backend = Arc::clone(&options.backend);
        let spares = options.preallocate.then(|| {
            let background = options.background_preallocation && backend.supports_background_io();
            Spares::start(
                Arc::clone(&backend),
                dir,
                options.segment_size_bytes,
                background,
            )
        });
        Rotation {
            backend,
            dir: dir.to_path_buf(),
            segment_size_bytes: options.segment_size_bytes,
            preallocate: options.preallocate,
            spares,
        }
    }

    /// Creates the first segment of a new directory.
    ///
    /// # Errors
    /// The failed step's I/O error.
    pub(crate) fn create_first(&self) -> io::Result<CreatedSegment> {
        let new = NewSegment {
            id: 1,
            first_index: Index(1),
            layout: Layout::Single,
        };
        let buf = first_batch(new, |buf, id| {
            format::put_hard_state(buf, id, &HardState::default());
            1
        });
        self.create_segment(new, buf, self.preallocate, None)
    }

    /// Starts a log's first segment, or its next one, holding the first
    /// batch `body` encodes (it returns its frame count): written and
    /// synced under a temporary name, renamed, the directory synced, from a
    /// spare when one is ready and the batches so far were not large.
    /// Resets `fill` for the new segment. Returns it and whether a spare
    /// was used. The caller has sealed the segment before.
    ///
    /// # Errors
    /// The failed step's I/O error.
    pub(crate) fn start_segment(
        &self,
        new: NewSegment,
        fill: &mut SegmentFill,
        body: impl FnOnce(&mut Vec<u8>, u64) -> u32,
    ) -> io::Result<(CreatedSegment, bool)> {
        let big_batches =
            fill.batches > 0 && fill.bytes / fill.batches >= PREALLOCATE_MAX_AVG_BATCH_BYTES;
        let preallocate = self.preallocate && !big_batches;
        let spare = match &self.spares {
            Some(spares) if preallocate => spares.take(),
            _ => None,
        };
        let used_spare = spare.is_some();
        let created = self.create_segment(new, first_batch(new, body), preallocate, spare)?;
        *fill = SegmentFill::default();
        Ok((created, used_spare))
    }

    /// Counts a batch of `len` bytes toward the current segment; returns
    /// true when the caller should ask for the next segment's spare (see
    /// [`Rotation::after_save`]).
    #[must_use]
    pub(crate) fn note_batch(&self, fill: &mut SegmentFill, offset: u64, len: u64) -> bool {
        fill.batches += 1;
        fill.bytes += len;
        // A quarter of the way through a segment, ask for the next one's
        // zero-filled file: early enough to be ready at rotation even when
        // appends keep the disk busy, late enough that a short-lived WAL (a
        // restart, a test) writes no zeros it never uses.
        let due = !fill.spare_requested && offset >= self.segment_size_bytes / 4;
        fill.spare_requested |= due;
        due
    }

    /// Asks for the next segment's spare if a save found it due. Called
    /// after the save's own I/O, so that inline preparation (simulated
    /// backends) never comes between a batch and its fsync.
    pub(crate) fn after_save(&self, spare_due: bool, saved: bool) {
        if spare_due
            && saved
            && let Some(spares) = &self.spares
        {
            spares.request();
        }
    }

    /// Waits until the spare being prepared, if any, is ready.
    pub(crate) fn wait_for_preallocation(&self) {
        if let Some(spares) = &self.spares {
            drop(spares.wait_ready());
        }
    }

    /// Rotates to a new segment when the current one is full. A save whose
    /// entries start below the current segment's first index also rotates,
    /// and its batch goes into the new segment's first batch: every segment
    /// then holds only indexes at or above its first index, which is what
    /// lets `release_to` drop whole segments by their first indexes. Returns
    /// true if the entries were written that way.
    ///
    /// # Errors
    /// [`SaveError::Io`] (which poisons) or [`SaveError::Poisoned`].
    pub(crate) fn maybe_rotate(
        &self,
        gc: &GroupCommit<WalState>,
        g: &mut MutexGuard<'_, WalState>,
        hard_state: Option<&HardState>,
        entries: &[Entry],
    ) -> Result<bool, SaveError> {
        let full = g.sync.offset() >= self.segment_size_bytes;
        // The first index a new segment would get without these entries.
        let boundary = if full {
            g.last_index.next()
        } else {
            g.current().first_index
        };
        let truncating = entries.first().is_some_and(|e| e.index < boundary);
        if !truncating && !full {
            return Ok(false);
        }
        gc.quiesce(g)?;
        let result = if truncating {
            let hs = hard_state.copied().unwrap_or(g.hard_state);
            self.rotate(gc, g, entries[0].index, &hs, entries)
        } else {
            let (hs, next) = (g.hard_state, g.last_index.next());
            self.rotate(gc, g, next, &hs, &[])
        };
        if result.is_err() {
            g.sync.poison();
        }
        gc.release_all(&mut g.sync);
        result.map_err(SaveError::Io)?;
        Ok(truncating)
    }

    /// Seals the current segment (fsync) and switches to a new one whose
    /// first batch carries the hard state and newest snapshot marker, so
    /// older segments can be released without losing either.
    fn rotate(
        &self,
        gc: &GroupCommit<WalState>,
        g: &mut MutexGuard<'_, WalState>,
        first_index: Index,
        hard_state: &HardState,
        entries: &[Entry],
    ) -> io::Result<()> {
        // Sealing: no byte of the old segment may be lost once a newer
        // segment exists, or recovery would find damage before the last
        // segment and refuse.
        gc.seal(&mut g.sync)?;
        let id = g.current().id + 1;
        let new = NewSegment {
            id,
            first_index,
            layout: Layout::Single,
        };
        let g = &mut **g;
        let marker = g.newest_marker.as_ref();
        let (created, used_spare) = self.start_segment(new, &mut g.fill, |buf, id| {
            format::put_hard_state(buf, id, hard_state);
            if let Some(m) = marker {
                format::put_snapshot_marker(buf, id, m);
            }
            for e in entries {
                format::put_entry(buf, id, e);
            }
            1 + u32::from(marker.is_some()) + entries.len() as u32
        })?;
        if used_spare {
            g.stats.spares_used += 1;
        }
        g.sync.start_segment(created.file, created.end);
        g.segments.push(created.segment);
        g.stats.rotations += 1;
        g.stats.fsyncs += 1;
        g.stats.bytes_written += created.end;
        tracing::debug!(segment = id, first_index = %first_index, "rotated to a new segment");
        Ok(())
    }

    /// Writes a new segment under a temporary name (header, then one batch
    /// with the carried hard state, marker and any `entries`, then optional
    /// zeros), fsyncs it, renames it into place and fsyncs the directory.
    /// The rename is the commit point: the segment exists whole or not at
    /// all. A `spare` (already zero-filled and synced under its own
    /// temporary name) is used in place of a new file when preallocating.
    fn create_segment(
        &self,
        new: NewSegment,
        buf: Vec<u8>,
        preallocate: bool,
        spare: Option<Spare>,
    ) -> io::Result<CreatedSegment> {
        let name = format::segment_file_name(new.id, new.first_index);
        let path = self.dir.join(&name);
        let end = buf.len() as u64;
        let (temp, file, zeroed) = match spare {
            Some(spare) if preallocate => (spare.path, spare.file, true),
            _ => {
                let temp = self.dir.join(format!("{name}{TEMP_SUFFIX}"));
                let file = self.backend.create(&temp)?;
                (temp, file, false)
            }
        };
        write_streaming(file.as_ref(), 0, &buf)?;
        if preallocate && !zeroed {
            self.fill_with_zeros(file.as_ref(), end)?;
        }
        file.sync_data()?;
        self.backend.rename(&temp, &path)?;
        self.backend.sync_dir(&self.dir)?;
        Ok(CreatedSegment {
            segment: SegmentFile {
                id: new.id,
                first_index: new.first_index,
                path,
            },
            file: Arc::from(file),
            end,
        })
    }

    /// Writes zeros from `from` to the segment size, in chunks aligned to
    /// file offsets, each written back at once.
    fn fill_with_zeros(&self, file: &dyn FileHandle, from: u64) -> io::Result<()> {
        let zeros = vec![0u8; ZERO_CHUNK_BYTES];
        let chunk = ZERO_CHUNK_BYTES as u64;
        let mut at = from;
        while at < self.segment_size_bytes {
            let n = (self.segment_size_bytes - at).min(chunk - at % chunk);
            file.write_at(at, &zeros[..n as usize])?;
            if let Err(e) = file.start_writeback(at, n) {
                tracing::trace!(error = %e, "start_writeback failed (ignored)");
            }
            at += n;
        }
        Ok(())
    }
}

/// The header and first batch of a new segment: the frames `body`
/// encodes (it returns their count), closed by the commit frame.
fn first_batch(new: NewSegment, body: impl FnOnce(&mut Vec<u8>, u64) -> u32) -> Vec<u8> {
    let id = new.id;
    let header = SegmentHeader {
        segment_id: id,
        first_index: new.first_index,
    };
    let mut buf = format::encode_segment_header_for(new.layout, header).to_vec();
    let frames = body(&mut buf, id);
    let commit = Commit {
        batch_start: SEGMENT_HEADER_BYTES as u64,
        synced_through: SEGMENT_HEADER_BYTES as u64,
        frame_count: frames,
    };
    format::put_commit(&mut buf, id, commit);
    buf
}
