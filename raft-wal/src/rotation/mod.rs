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
    self, Commit, SEGMENT_HEADER_BYTES, SegmentFile, SegmentHeader, SnapshotMarker, TEMP_SUFFIX,
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

/// What a new segment starts with.
struct NewSegment<'a> {
    id: u64,
    first_index: Index,
    hard_state: &'a HardState,
    marker: Option<&'a SnapshotMarker>,
    entries: &'a [Entry],
    /// Fill the segment with zeros up to the segment size.
    preallocate: bool,
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
        self.create_segment(
            NewSegment {
                id: 1,
                first_index: Index(1),
                hard_state: &HardState::default(),
                marker: None,
                entries: &[],
                preallocate: self.preallocate,
            },
            None,
        )
    }

    /// Counts a batch of `len` bytes toward the current segment; returns
    /// true when the caller should ask for the next segment's spare (see
    /// [`Rotation::after_save`]).
    #[must_use]
    pub(crate) fn note_batch(&self, g: &mut WalState, len: u64) -> bool {
        g.segment_batches += 1;
        g.segment_bytes += len;
        // A quarter of the way through a segment, ask for the next one's
        // zero-filled file: early enough to be ready at rotation even when
        // appends keep the disk busy, late enough that a short-lived WAL (a
        // restart, a test) writes no zeros it never uses.
        let due = !g.spare_requested && g.sync.offset() >= self.segment_size_bytes / 4;
        g.spare_requested |= due;
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
        let big_batches = g.segment_batches > 0
            && g.segment_bytes / g.segment_batches >= PREALLOCATE_MAX_AVG_BATCH_BYTES;
        let new = NewSegment {
            preallocate: self.preallocate && !big_batches,
            id,
            first_index,
            hard_state,
            marker: g.newest_marker.as_ref(),
            entries,
        };
        let spare = match &self.spares {
            Some(spares) if new.preallocate => spares.take(),
            _ => None,
        };
        let used_spare = spare.is_some();
        let created = self.create_segment(new, spare)?;
        g.spare_requested = false;
        if used_spare {
            g.stats.spares_used += 1;
        }
        g.sync.start_segment(created.file, created.end);
        g.segment_batches = 0;
        g.segment_bytes = 0;
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
        new: NewSegment<'_>,
        spare: Option<Spare>,
    ) -> io::Result<CreatedSegment> {
        let name = format::segment_file_name(new.id, new.first_index);
        let path = self.dir.join(&name);
        let buf = first_batch(&new);
        let end = buf.len() as u64;
        let (temp, file, zeroed) = match spare {
            Some(spare) if new.preallocate => (spare.path, spare.file, true),
            _ => {
                let temp = self.dir.join(format!("{name}{TEMP_SUFFIX}"));
                let file = self.backend.create(&temp)?;
                (temp, file, false)
            }
        };
        write_streaming(file.as_ref(), 0, &buf)?;
        if new.preallocate && !zeroed {
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

/// The header and first batch of a new segment: the carried hard state,
/// the newest marker and `entries`, closed by its commit frame.
fn first_batch(new: &NewSegment<'_>) -> Vec<u8> {
    let id = new.id;
    let header = SegmentHeader {
        segment_id: id,
        first_index: new.first_index,
    };
    let mut buf = format::encode_segment_header(header).to_vec();
    format::put_hard_state(&mut buf, id, new.hard_state);
    if let Some(m) = new.marker {
        format::put_snapshot_marker(&mut buf, id, m);
    }
    for e in new.entries {
        format::put_entry(&mut buf, id, e);
    }
    let frames = 1 + u32::from(new.marker.is_some()) + new.entries.len() as u32;
    let commit = Commit {
        batch_start: SEGMENT_HEADER_BYTES as u64,
        synced_through: SEGMENT_HEADER_BYTES as u64,
        frame_count: frames,
    };
    format::put_commit(&mut buf, id, commit);
    buf
}
