//! The API: `Wal::open`, `save`, `save_snapshot_marker`, `sync`,
//! `release_to`. Recovery, group commit and rotation live in their own
//! modules; this one validates calls, encodes batches and hands them on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::MutexGuard;
use raft_core::{Entry, HardState, Index};
use raft_io::{DirLock, codec};

use crate::checks::{self, LogTip};
use crate::error::{OpenError, ReleaseError, SaveError, open_io};
use crate::format::{self, SnapshotMarker};
use crate::group_commit::{GroupCommit, SyncState};
use crate::options::WalOptions;
use crate::recovery::{self, Recovered};
use crate::rotation::{Rotation, SegmentFill};
use crate::state::{WalState, WalStats};

/// A write-ahead log for one Raft node. See the crate docs.
///
/// `Wal` is `Send + Sync`: concurrent `save` calls from several threads share
/// fsyncs (group commit).
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    options: WalOptions,
    /// The writer's state, behind the lock the group commit waits on.
    gc: GroupCommit<WalState>,
    rotation: Rotation,
    _lock: DirLock,
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir` and recovers it: the
    /// recovery rules of the crate docs decide between accepting, repairing
    /// a torn tail and refusing.
    ///
    /// # Errors
    /// [`OpenError::Locked`] if another process has it open; a refusal
    /// variant for damage recovery must not repair; [`OpenError::Io`].
    pub fn open(dir: impl AsRef<Path>, options: WalOptions) -> Result<(Wal, Recovered), OpenError> {
        options.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let backend = Arc::clone(&options.backend);
        let lock = recovery::lock_dir(backend.as_ref(), &dir)?;
        let opened = recovery::recover(
            backend.as_ref(),
            &dir,
            options.max_record_bytes,
            options.snapshot,
            options.preallocate,
        )?;
        let rotation = Rotation::new(&dir, &options);
        let mut segments = opened.segments;
        let (file, offset) = match opened.tail {
            Some(tail) => tail,
            None => {
                let created = rotation.create_first().map_err(open_io(&dir))?;
                segments.push(created.segment);
                (created.file, created.end)
            }
        };
        let state = WalState {
            sync: SyncState::new(file, offset),
            segments,
            fill: SegmentFill::default(),
            last_index: opened.last_index,
            hard_state: opened.recovered.hard_state,
            newest_marker: opened.newest_marker,
            stats: WalStats::default(),
        };
        let wal = Wal {
            dir,
            options,
            gc: GroupCommit::new(state),
            rotation,
            _lock: lock,
        };
        Ok((wal, opened.recovered))
    }

    /// Waits until the zero-filled spare for the next segment (see
    /// [`WalOptions::background_preallocation`]) is ready, if one is being
    /// prepared. Nothing needs it; it lets a benchmark keep the helper's
    /// I/O out of its measurements, or a caller choose when that I/O
    /// happens.
    pub fn wait_for_preallocation(&self) {
        self.rotation.wait_for_preallocation();
    }

    /// The directory this WAL lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last index in the log (or of the newest snapshot marker, if that
    /// is later).
    pub fn last_index(&self) -> Index {
        self.gc.lock().last_index
    }

    /// The hard state last saved.
    pub fn hard_state(&self) -> HardState {
        self.gc.lock().hard_state
    }

    /// Counters since open.
    pub fn stats(&self) -> WalStats {
        self.gc.lock().stats()
    }

    /// The ids of the segments on disk, oldest first.
    pub fn segment_ids(&self) -> Vec<u64> {
        self.gc.lock().segments.iter().map(|s| s.id).collect()
    }

    /// True once an I/O error has poisoned the WAL.
    pub fn is_poisoned(&self) -> bool {
        self.gc.lock().sync.is_poisoned()
    }

    /// Appends `entries` and, if given and changed, `hard_state`, as one
    /// batch. An entry at or below the last index replaces the log from it
    /// on (Raft's conflict truncation). With `sync`, returns once the batch
    /// is durable, sharing one `fdatasync` with concurrent callers. Without,
    /// the batch is written to the file at once or, while another caller's
    /// `fdatasync` is in flight, by the end of that group commit, and may
    /// be lost in a crash (follow `Ready::must_sync`).
    ///
    /// # Errors
    /// A validation variant of [`SaveError`] before anything is written;
    /// [`SaveError::Io`] (which poisons the WAL) or [`SaveError::Poisoned`].
    pub fn save(
        &self,
        hard_state: Option<&HardState>,
        entries: &[Entry],
        sync: bool,
    ) -> Result<(), SaveError> {
        let mut g = self.gc.lock();
        if g.sync.is_poisoned() {
            return Err(SaveError::Poisoned);
        }
        let new_last = self.check_save(&g, hard_state, entries)?;
        let hard_state = hard_state.filter(|hs| **hs != g.hard_state);
        if hard_state.is_none() && entries.is_empty() {
            return if sync { self.gc.wait_synced(g) } else { Ok(()) };
        }
        if self
            .rotation
            .maybe_rotate(&self.gc, &mut g, hard_state, entries)?
        {
            // Written and synced as the new segment's first batch.
            record_save(&mut g, new_last, hard_state);
            return Ok(());
        }
        let spare_due = self.enqueue_batch(&mut g, |buf, id| {
            let mut frames = 0;
            if let Some(hs) = hard_state {
                format::put_hard_state(buf, id, hs);
                frames += 1;
            }
            for e in entries {
                format::put_entry(buf, id, e);
                frames += 1;
            }
            frames
        });
        record_save(&mut g, new_last, hard_state);
        let result = self.finish_save(g, sync);
        self.rotation.after_save(spare_due, result.is_ok());
        result
    }

    /// Makes a queued batch durable (`sync`) or hands it to the OS.
    fn finish_save(&self, mut g: MutexGuard<'_, WalState>, sync: bool) -> Result<(), SaveError> {
        if sync {
            self.gc.wait_synced(g)
        } else if g.sync.is_syncing() {
            // The sync leader in flight, or the one after it, writes these
            // bytes: one write for every batch queued meanwhile, instead of
            // one each under the lock that concurrent writers queue on.
            Ok(())
        } else {
            // Hand the bytes to the OS now, as a caller skipping the fsync
            // still expects a process crash not to lose them.
            g.sync.flush()
        }
    }

    /// Validates a save; returns the last index after it.
    fn check_save(
        &self,
        g: &WalState,
        hard_state: Option<&HardState>,
        entries: &[Entry],
    ) -> Result<Index, SaveError> {
        let tip = LogTip {
            last_index: g.last_index,
            commit: g.hard_state.commit,
            snapshot: g.newest_marker_index(),
        };
        checks::check_save(tip, hard_state, entries, self.options.max_record_bytes)
    }

    /// Records a snapshot marker and syncs: the caller must have made the
    /// snapshot itself durable first. A marker past the last index restarts
    /// the log after it (installing a leader's snapshot). A marker at or
    /// below the last index keeps the entries after it, even if the
    /// snapshot's term at its index differs from the log's: those entries
    /// are then uncommitted leftovers that the next `save` from
    /// `marker.index + 1` replaces, and that Raft's consistency check tells
    /// apart if the node restarts first (the WAL does not keep every
    /// entry's term to compare).
    ///
    /// # Errors
    /// [`SaveError::MarkerRegressed`] for a marker older than the newest;
    /// [`SaveError::InvalidConfState`] for a membership without a canonical
    /// encoding; [`SaveError::Io`] or [`SaveError::Poisoned`].
    pub fn save_snapshot_marker(&self, marker: &SnapshotMarker) -> Result<(), SaveError> {
        let mut g = self.gc.lock();
        if g.sync.is_poisoned() {
            return Err(SaveError::Poisoned);
        }
        // Checked before anything is queued: no reader would accept it.
        codec::check_conf_state(&marker.conf_state).map_err(SaveError::InvalidConfState)?;
        let newest = g.newest_marker_index();
        if marker.index < newest {
            return Err(SaveError::MarkerRegressed {
                newest,
                found: marker.index,
            });
        }
        self.rotation.maybe_rotate(&self.gc, &mut g, None, &[])?;
        let spare_due = self.enqueue_batch(&mut g, |buf, id| {
            format::put_snapshot_marker(buf, id, marker);
            1
        });
        if marker.index > g.last_index {
            g.last_index = marker.index;
        }
        g.newest_marker = Some(marker.clone());
        let result = self.gc.wait_synced(g);
        self.rotation.after_save(spare_due, result.is_ok());
        result
    }

    /// Makes every batch written so far durable.
    ///
    /// # Errors
    /// [`SaveError::Io`] (which poisons the WAL) or [`SaveError::Poisoned`].
    pub fn sync(&self) -> Result<(), SaveError> {
        let g = self.gc.lock();
        if g.sync.is_poisoned() {
            return Err(SaveError::Poisoned);
        }
        self.gc.wait_synced(g)
    }

    /// Deletes the oldest segments whose entries are all at or below
    /// `index`, which must not exceed the newest snapshot marker. Returns how
    /// many segments were deleted. The current segment is never deleted.
    ///
    /// # Errors
    /// [`ReleaseError::BeyondSnapshot`]; [`ReleaseError::Io`] (which poisons
    /// the WAL) or [`ReleaseError::Poisoned`].
    pub fn release_to(&self, index: Index) -> Result<usize, ReleaseError> {
        let mut g = self.gc.lock();
        if g.sync.is_poisoned() {
            return Err(ReleaseError::Poisoned);
        }
        let snapshot = g.newest_marker_index();
        if index > snapshot {
            return Err(ReleaseError::BeyondSnapshot {
                requested: index,
                snapshot,
            });
        }
        // Segment k only holds entries below the next segment's first index.
        let count = g
            .segments
            .windows(2)
            .take_while(|pair| pair[1].first_index <= index.next())
            .count();
        if count == 0 {
            return Ok(0);
        }
        // Oldest first, so a crash midway leaves consecutive segment ids.
        let backend = self.options.backend.as_ref();
        let removed = g.segments[..count]
            .iter()
            .try_for_each(|seg| backend.remove_file(&seg.path))
            .and_then(|()| backend.sync_dir(&self.dir));
        if let Err(e) = removed {
            g.sync.poison();
            return Err(ReleaseError::Io(e));
        }
        g.segments.drain(..count);
        tracing::debug!(count, up_to = %index, "released segments");
        Ok(count)
    }

    /// Encodes a batch (the frames `encode` appends, then the commit frame)
    /// at the end of the pending bytes. Nothing is written yet. Returns
    /// true when the caller should ask for the next segment's spare.
    #[must_use]
    fn enqueue_batch(
        &self,
        g: &mut WalState,
        encode: impl FnOnce(&mut Vec<u8>, u64) -> u32,
    ) -> bool {
        let id = g.current().id;
        let len = g.sync.queue_batch(id, encode);
        g.stats.batches += 1;
        g.stats.bytes_written += len;
        self.rotation.note_batch(&mut g.fill, g.sync.offset(), len)
    }
}

/// What a save changes in the writer's view of the log once its batch is
/// queued (or written by a rotation).
fn record_save(g: &mut WalState, new_last: Index, hard_state: Option<&HardState>) {
    g.last_index = new_last;
    if let Some(hs) = hard_state {
        g.hard_state = *hs;
    }
}
