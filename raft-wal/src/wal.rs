//! The writer: `Wal::open`, `save`, `save_snapshot_marker`, `release_to`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};
use raft_core::{Entry, HardState, Index, LogId};
use raft_io::codec;
use raft_io::{Backend, DirLock, FileBackend, FileHandle};

use crate::error::{OpenError, ReleaseError, SaveError};
use crate::format::{
    self, Commit, DamageKind, MAX_RECORD_BYTES_LIMIT, SEGMENT_HEADER_BYTES, SegmentHeader,
    SnapshotMarker, TEMP_SUFFIX,
};
use crate::recovery::{self, Scanned, SegmentFile};
use crate::rewrite;
use crate::spare::{Spare, Spares, ZERO_CHUNK_BYTES};

/// Default [`WalOptions::segment_size_bytes`]: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 64 << 20;
/// Default [`WalOptions::max_record_bytes`]: 16 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: u32 = 16 << 20;
/// The longest a sync leader waits for the writers of the previous group to
/// queue again (see `Wal::wait_synced`); below it, the last group's own
/// write + fsync time is the bound.
const GROUP_FILL_WAIT_MAX: Duration = Duration::from_millis(2);
/// Writes longer than this go out in chunks of this size (at file offsets
/// aligned to it), each handed to [`FileHandle::start_writeback`] once
/// written: the device then works while later chunks are copied, and the
/// `fdatasync` that follows waits for the last chunk rather than the whole
/// write (RocksDB's `bytes_per_sync`).
const WRITEBACK_CHUNK_BYTES: u64 = 1 << 20;
/// With [`WalOptions::preallocate`], a new segment is still not filled with
/// zeros when the batches of the segment before it averaged at least this
/// much: for such batches the fdatasync's metadata update that
/// preallocation saves is small next to the data, while the zeros would
/// double the bytes written.
const PREALLOCATE_MAX_AVG_BATCH_BYTES: u64 = 1 << 20;

/// How to open a WAL. Build with [`WalOptions::new`] and the setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WalOptions {
    /// The file system. Default: [`FileBackend`].
    pub backend: Arc<dyn Backend>,
    /// The size at which the writer moves to a new segment. A batch that
    /// starts before this size is written whole, so a segment can exceed it
    /// by one batch. Default: [`DEFAULT_SEGMENT_SIZE_BYTES`] (64 MiB).
    pub segment_size_bytes: u64,
    /// Whether new segments are filled with zeros up to
    /// `segment_size_bytes` before use, so appends never change the file's
    /// size or block map and `fdatasync` flushes data only. It costs
    /// writing each segment twice, so bulk loads are faster without it; a
    /// segment that follows one whose batches averaged 1 MiB or more is
    /// not filled either, as such batches gain little from it.
    /// Default: on (the README's performance section has the measurement).
    pub preallocate: bool,
    /// With [`WalOptions::preallocate`], fill the next segment with zeros on
    /// a helper thread while the current one fills, so that rotation does
    /// not stall a save for the time it takes to write a segment of zeros
    /// (about 90 ms for 64 MiB on this project's disk). Off, or with a
    /// backend whose [`Backend::supports_background_io`] is false (the
    /// simulated one, so that runs replay exactly), the same preparation
    /// runs on the saving thread right after each rotation. Default: on.
    pub background_preallocation: bool,
    /// The largest payload of one frame (an entry's data plus 24 bytes);
    /// recovery treats a longer length field as damage. Default:
    /// [`DEFAULT_MAX_RECORD_BYTES`] (16 MiB).
    pub max_record_bytes: u32,
    /// The snapshot the caller restored, whose marker the log must hold;
    /// recovery returns the entries after it. `None`: the caller has no
    /// snapshot, so the log must start at index 1. Default: `None`.
    pub snapshot: Option<LogId>,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            backend: FileBackend::shared(),
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            preallocate: true,
            background_preallocation: true,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            snapshot: None,
        }
    }
}

impl WalOptions {
    /// The defaults.
    pub fn new() -> WalOptions {
        WalOptions::default()
    }

    /// Sets [`WalOptions::backend`].
    #[must_use]
    pub fn backend(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backend = backend;
        self
    }

    /// Sets [`WalOptions::segment_size_bytes`].
    #[must_use]
    pub fn segment_size_bytes(mut self, bytes: u64) -> Self {
        self.segment_size_bytes = bytes;
        self
    }

    /// Sets [`WalOptions::preallocate`].
    #[must_use]
    pub fn preallocate(mut self, on: bool) -> Self {
        self.preallocate = on;
        self
    }

    /// Sets [`WalOptions::background_preallocation`].
    #[must_use]
    pub fn background_preallocation(mut self, on: bool) -> Self {
        self.background_preallocation = on;
        self
    }

    /// Sets [`WalOptions::max_record_bytes`].
    #[must_use]
    pub fn max_record_bytes(mut self, bytes: u32) -> Self {
        self.max_record_bytes = bytes;
        self
    }

    /// Sets [`WalOptions::snapshot`].
    #[must_use]
    pub fn snapshot(mut self, snapshot: Option<LogId>) -> Self {
        self.snapshot = snapshot;
        self
    }

    fn validate(&self) -> Result<(), OpenError> {
        if self.segment_size_bytes < SEGMENT_HEADER_BYTES as u64 {
            return Err(OpenError::InvalidOption(
                "segment_size_bytes below the header size",
            ));
        }
        if self.max_record_bytes < format::COMMIT_BYTES as u32
            || self.max_record_bytes > MAX_RECORD_BYTES_LIMIT
        {
            return Err(OpenError::InvalidOption("max_record_bytes out of range"));
        }
        Ok(())
    }
}

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
    /// The marker matching [`WalOptions::snapshot`], if one was given.
    pub snapshot: Option<SnapshotMarker>,
    /// The entries after the snapshot (from index 1 without one), in order.
    pub entries: Vec<Entry>,
    /// The positions of all snapshot markers in the retained log, oldest
    /// first.
    pub snapshot_markers: Vec<LogId>,
    /// The torn tail recovery truncated, if any.
    pub truncated_tail: Option<TailTruncation>,
    /// Leftover temporary files recovery deleted.
    pub removed_temp_files: Vec<PathBuf>,
}

/// Counters since open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WalStats {
    /// Batches written (one per `save` or marker that wrote anything).
    pub batches: u64,
    /// `fdatasync` calls on segment files, rotations included.
    pub fsyncs: u64,
    /// Bytes written to segments (frames only, not preallocation).
    pub bytes_written: u64,
    /// New segments created.
    pub rotations: u64,
    /// Rotations that took a spare file zero-filled ahead of time (see
    /// [`WalOptions::background_preallocation`]).
    pub spares_used: u64,
}

/// A write-ahead log for one Raft node. See the crate docs.
///
/// `Wal` is `Send + Sync`: concurrent `save` calls from several threads share
/// fsyncs (group commit).
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    options: WalOptions,
    inner: Mutex<Inner>,
    /// Zero-filled files for the next segments; `None` without
    /// preallocation. Used under the `inner` lock by rotation, and without
    /// it by `wait_for_preallocation`.
    spares: Option<Spares>,
    /// A copy of `Inner::synced_seq`, stored under the lock and read
    /// without it: a woken waiter whose batch is durable returns without
    /// taking the lock again.
    synced_seq: AtomicU64,
    /// A thread waiting for the sync leader to finish (`quiesce`) sleeps
    /// on `group_done[n % 2]` for group `n`; save waiters park instead (see
    /// `Inner::parked`).
    group_done: [Condvar; 2],
    /// A leader filling its group sleeps here until enough waiters queued.
    group_filled: Condvar,
    /// Threads of a completed group still to be unparked. The leader and
    /// every thread it wakes take turns unparking them (see
    /// `complete_group`). Locked alone, never with `inner`.
    to_wake: Mutex<Vec<Thread>>,
    _lock: DirLock,
}

#[derive(Debug)]
struct Inner {
    poisoned: bool,
    segments: Vec<SegmentFile>,
    file: Arc<dyn FileHandle>,
    /// Batches and bytes queued in the current segment since it was
    /// created (decides whether the next one is preallocated).
    segment_batches: u64,
    segment_bytes: u64,
    /// Where the next batch goes in the current segment. The bytes before
    /// it are in the file, in flight with a sync leader, or in `pending`
    /// (which ends here).
    offset: u64,
    /// Encoded batches of synced saves, not yet written: the next sync
    /// leader writes them all with one call before its `fdatasync`.
    pending: Vec<u8>,
    /// Invariant: `synced_offset <= offset`; all bytes of the current
    /// segment before it are durable.
    synced_offset: u64,
    /// Batches written since open; `synced_seq <= written_seq`.
    written_seq: u64,
    synced_seq: u64,
    /// The last batch a sync leader took (`synced_seq <= taken_seq <=
    /// written_seq`).
    taken_seq: u64,
    /// Groups taken since open: the one in flight (while `syncing` and not
    /// `filling`) is number `groups`, the next is `groups + 1`.
    groups: u64,
    /// The threads of group `n` (see `groups`) parked until it completes,
    /// in `parked[n % 2]`. Completing a group unparks exactly its own
    /// waiters, all at once, plus one waiter of the next group to lead it.
    /// A condition variable would requeue them onto the mutex and wake
    /// them one at a time, each wakeup waiting for the previous thread to
    /// run: with 64 writers that chain took about 1 ms per group.
    parked: [Vec<Thread>; 2],
    /// Threads waiting for the group in flight.
    in_flight_waiters: u64,
    /// Threads waiting for the next group (target beyond `taken_seq`).
    next_waiters: u64,
    /// How many waiters the leader of the next group waits for: all the
    /// threads that waited when the last group completed, as writers
    /// acknowledged by a group usually come straight back.
    fill_target: u64,
    /// How long the last group's write + fsync took: the bound on waiting
    /// for a group to fill (waiting longer would cost more than the
    /// fsync it shares).
    last_sync: Duration,
    /// A sync leader holds the lead: filling its group or writing and
    /// syncing, with the lock released.
    syncing: bool,
    /// The leader is still waiting for its group to fill.
    filling: bool,
    last_index: Index,
    hard_state: HardState,
    newest_marker: Option<SnapshotMarker>,
    stats: WalStats,
    /// The spare for the segment after the current one was asked for.
    spare_requested: bool,
}

impl Inner {
    fn current(&self) -> &SegmentFile {
        self.segments
            .last()
            .expect("a WAL always has a current segment")
    }

    fn newest_marker_index(&self) -> Index {
        self.newest_marker.as_ref().map_or(Index::ZERO, |m| m.index)
    }
}

fn map_io(path: &Path) -> impl FnOnce(std::io::Error) -> OpenError + '_ {
    move |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    }
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
        backend.create_dir_all(&dir).map_err(map_io(&dir))?;
        // The directory's own entry must survive a power cut too.
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        backend.sync_dir(&parent).map_err(map_io(&parent))?;
        let lock = backend.lock_dir(&dir).map_err(|source| {
            if source.kind() == std::io::ErrorKind::WouldBlock {
                OpenError::Locked { dir: dir.clone() }
            } else {
                OpenError::Io {
                    path: dir.clone(),
                    source,
                }
            }
        })?;
        finish_interrupted_rewrite(backend.as_ref(), &dir)?;
        let mut scanned =
            recovery::scan_dir(backend.as_ref(), &dir, options.max_record_bytes, None)?;
        // Taken before the entries move out of the replay.
        let last_index = scanned.replayed.last_index();
        let (snapshot, entries) = recovery::entries_after(&mut scanned.replayed, options.snapshot)?;
        let recovered = Recovered {
            hard_state: scanned.replayed.hard_state,
            snapshot,
            entries,
            snapshot_markers: scanned
                .replayed
                .markers
                .iter()
                .map(SnapshotMarker::log_id)
                .collect(),
            truncated_tail: apply_repairs(backend.as_ref(), &dir, &scanned, options.preallocate)?,
            removed_temp_files: scanned.temp_files.clone(),
        };
        let inner = Wal::writer_state(backend.as_ref(), &dir, &options, scanned, last_index)?;
        let spares = options.preallocate.then(|| {
            let background = options.background_preallocation && backend.supports_background_io();
            Spares::start(
                Arc::clone(&backend),
                &dir,
                options.segment_size_bytes,
                background,
            )
        });
        let wal = Wal {
            dir,
            options,
            inner: Mutex::new(inner),
            spares,
            synced_seq: AtomicU64::new(0),
            group_done: [Condvar::new(), Condvar::new()],
            group_filled: Condvar::new(),
            to_wake: Mutex::new(Vec::new()),
            _lock: lock,
        };
        Ok((wal, recovered))
    }

    fn writer_state(
        backend: &dyn Backend,
        dir: &Path,
        options: &WalOptions,
        scanned: Scanned,
        last_index: Index,
    ) -> Result<Inner, OpenError> {
        let replayed = scanned.replayed;
        let mut segments = scanned.segments;
        let offset;
        let file: Arc<dyn FileHandle> = match segments.last() {
            Some(last) => {
                offset = scanned.write_offset;
                let file: Arc<dyn FileHandle> =
                    Arc::from(backend.open(&last.path).map_err(map_io(&last.path))?);
                make_tail_durable(
                    backend,
                    dir,
                    last,
                    file.as_ref(),
                    scanned.tail_synced_through,
                    offset,
                )?;
                file
            }
            None => {
                let first = NewSegment {
                    id: 1,
                    first_index: Index(1),
                    hard_state: &HardState::default(),
                    marker: None,
                    entries: &[],
                    preallocate: options.preallocate,
                };
                let created =
                    create_segment(backend, dir, options, first, None).map_err(map_io(dir))?;
                offset = created.end;
                segments.push(created.segment);
                created.file
            }
        };
        Ok(Inner {
            poisoned: false,
            segments,
            file,
            offset,
            segment_batches: 0,
            segment_bytes: 0,
            synced_offset: offset,
            written_seq: 0,
            synced_seq: 0,
            taken_seq: 0,
            groups: 0,
            parked: [Vec::new(), Vec::new()],
            in_flight_waiters: 0,
            next_waiters: 0,
            fill_target: 0,
            last_sync: Duration::ZERO,
            syncing: false,
            filling: false,
            last_index,
            hard_state: replayed.hard_state,
            newest_marker: replayed.newest_marker().cloned(),
            stats: WalStats::default(),
            pending: Vec::new(),
            spare_requested: false,
        })
    }

    /// Waits until the zero-filled spare for the next segment (see
    /// [`WalOptions::background_preallocation`]) is ready, if one is being
    /// prepared. Nothing needs it; it lets a benchmark keep the helper's
    /// I/O out of its measurements, or a caller choose when that I/O
    /// happens.
    pub fn wait_for_preallocation(&self) {
        if let Some(spares) = &self.spares {
            drop(spares.wait_ready());
        }
    }

    /// The directory this WAL lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last index in the log (or of the newest snapshot marker, if that
    /// is later).
    pub fn last_index(&self) -> Index {
        self.inner.lock().last_index
    }

    /// The hard state last saved.
    pub fn hard_state(&self) -> HardState {
        self.inner.lock().hard_state
    }

    /// Counters since open.
    pub fn stats(&self) -> WalStats {
        self.inner.lock().stats
    }

    /// The ids of the segments on disk, oldest first.
    pub fn segment_ids(&self) -> Vec<u64> {
        self.inner.lock().segments.iter().map(|s| s.id).collect()
    }

    /// True once an I/O error has poisoned the WAL.
    pub fn is_poisoned(&self) -> bool {
        self.inner.lock().poisoned
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
        let mut g = self.inner.lock();
        if g.poisoned {
            return Err(SaveError::Poisoned);
        }
        let new_last = self.check_save(&g, hard_state, entries)?;
        let hard_state = hard_state.filter(|hs| **hs != g.hard_state);
        if hard_state.is_none() && entries.is_empty() {
            return if sync { self.wait_synced(g) } else { Ok(()) };
        }
        if self.maybe_rotate(&mut g, hard_state, entries)? {
            // Written and synced as the new segment's first batch.
            g.last_index = new_last;
            if let Some(hs) = hard_state {
                g.hard_state = *hs;
            }
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
        g.last_index = new_last;
        if let Some(hs) = hard_state {
            g.hard_state = *hs;
        }
        let result = if sync {
            self.wait_synced(g)
        } else if g.syncing {
            // The sync leader in flight, or the one after it, writes these
            // bytes (see `lead_group`): one write for every batch queued
            // meanwhile, instead of one each under the lock that
            // concurrent writers queue on.
            drop(g);
            Ok(())
        } else {
            // Hand the bytes to the OS now, as a caller skipping the fsync
            // still expects a process crash not to lose them.
            let result = self.flush_pending(&mut g);
            drop(g);
            result
        };
        self.after_save(spare_due, &result);
        result
    }

    /// Validates a save; returns the last index after it.
    fn check_save(
        &self,
        g: &Inner,
        hard_state: Option<&HardState>,
        entries: &[Entry],
    ) -> Result<Index, SaveError> {
        let mut new_last = g.last_index;
        if let Some(first) = entries.first() {
            let expected = g.last_index.next();
            if first.index > expected {
                return Err(SaveError::Gap {
                    expected,
                    found: first.index,
                });
            }
            let snapshot = g.newest_marker_index();
            if first.index <= snapshot {
                return Err(SaveError::BelowSnapshot {
                    index: first.index,
                    snapshot,
                });
            }
            if first.index <= g.hard_state.commit {
                return Err(SaveError::TruncatesCommitted {
                    index: first.index,
                    commit: g.hard_state.commit,
                });
            }
            for pair in entries.windows(2) {
                if pair[1].index != pair[0].index.next() {
                    return Err(SaveError::NotContiguous {
                        previous: pair[0].index,
                        found: pair[1].index,
                    });
                }
            }
            for e in entries {
                if !format::kind_is_storable(e.kind) {
                    return Err(SaveError::UnsupportedEntryKind { index: e.index });
                }
                let bytes = format::entry_payload_bytes(e) as u64;
                if bytes > u64::from(self.options.max_record_bytes) {
                    return Err(SaveError::RecordTooLarge {
                        bytes,
                        max: self.options.max_record_bytes,
                    });
                }
            }
            new_last = entries[entries.len() - 1].index;
        }
        if let Some(hs) = hard_state
            && hs.commit > new_last
        {
            return Err(SaveError::CommitBeyondLog {
                commit: hs.commit,
                last_index: new_last,
            });
        }
        Ok(new_last)
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
        let mut g = self.inner.lock();
        if g.poisoned {
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
        self.maybe_rotate(&mut g, None, &[])?;
        let spare_due = self.enqueue_batch(&mut g, |buf, id| {
            format::put_snapshot_marker(buf, id, marker);
            1
        });
        if marker.index > g.last_index {
            g.last_index = marker.index;
        }
        g.newest_marker = Some(marker.clone());
        let result = self.wait_synced(g);
        self.after_save(spare_due, &result);
        result
    }

    /// Asks for the next segment's spare if a save found it due. Called
    /// after the save's own I/O, so that inline preparation (simulated
    /// backends) never comes between a batch and its fsync.
    fn after_save(&self, spare_due: bool, result: &Result<(), SaveError>) {
        if spare_due
            && result.is_ok()
            && let Some(spares) = &self.spares
        {
            spares.request();
        }
    }

    /// Makes every batch written so far durable.
    ///
    /// # Errors
    /// [`SaveError::Io`] (which poisons the WAL) or [`SaveError::Poisoned`].
    pub fn sync(&self) -> Result<(), SaveError> {
        let g = self.inner.lock();
        if g.poisoned {
            return Err(SaveError::Poisoned);
        }
        self.wait_synced(g)
    }

    /// Deletes the oldest segments whose entries are all at or below
    /// `index`, which must not exceed the newest snapshot marker. Returns how
    /// many segments were deleted. The current segment is never deleted.
    ///
    /// # Errors
    /// [`ReleaseError::BeyondSnapshot`]; [`ReleaseError::Io`] (which poisons
    /// the WAL) or [`ReleaseError::Poisoned`].
    pub fn release_to(&self, index: Index) -> Result<usize, ReleaseError> {
        let mut g = self.inner.lock();
        if g.poisoned {
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
        for seg in &g.segments[..count] {
            if let Err(e) = self.options.backend.remove_file(&seg.path) {
                g.poisoned = true;
                return Err(ReleaseError::Io(e));
            }
        }
        if let Err(e) = self.options.backend.sync_dir(&self.dir) {
            g.poisoned = true;
            return Err(ReleaseError::Io(e));
        }
        g.segments.drain(..count);
        tracing::debug!(count, up_to = %index, "released segments");
        Ok(count)
    }

    /// Encodes a batch (the frames `encode` appends, then the commit frame)
    /// at the end of `pending`. Nothing is written yet. Returns true when
    /// the caller should ask for the next segment's spare.
    #[must_use]
    fn enqueue_batch(
        &self,
        g: &mut MutexGuard<'_, Inner>,
        encode: impl FnOnce(&mut Vec<u8>, u64) -> u32,
    ) -> bool {
        let id = g.current().id;
        let commit_start = g.offset;
        let synced_through = g.synced_offset;
        let before = g.pending.len();
        let frames = encode(&mut g.pending, id);
        let commit = Commit {
            batch_start: commit_start,
            synced_through,
            frame_count: frames,
        };
        format::put_commit(&mut g.pending, id, commit);
        let len = (g.pending.len() - before) as u64;
        g.offset += len;
        g.segment_batches += 1;
        g.segment_bytes += len;
        g.written_seq += 1;
        g.stats.batches += 1;
        g.stats.bytes_written += len;
        // A quarter of the way through a segment, ask for the next one's
        // zero-filled file: early enough to be ready at rotation even when
        // appends keep the disk busy, late enough that a short-lived WAL (a
        // restart, a test) writes no zeros it never uses.
        let due = !g.spare_requested && g.offset >= self.options.segment_size_bytes / 4;
        g.spare_requested |= due;
        due
    }

    /// Writes `pending` to the file under the lock (no fsync).
    fn flush_pending(&self, g: &mut MutexGuard<'_, Inner>) -> Result<(), SaveError> {
        if g.pending.is_empty() {
            return Ok(());
        }
        let at = g.offset - g.pending.len() as u64;
        let result = write_streaming(g.file.as_ref(), at, &g.pending);
        g.pending.clear();
        result.map_err(|e| {
            g.poisoned = true;
            SaveError::Io(e)
        })
    }

    /// Waits until no sync leader is in flight and writes `pending`, so the
    /// file holds every batch: what rotation needs.
    fn quiesce(&self, g: &mut MutexGuard<'_, Inner>) -> Result<(), SaveError> {
        while g.syncing {
            // A filling leader stops waiting for its group.
            g.fill_target = 0;
            self.group_filled.notify_one();
            let group = if g.filling { g.groups + 1 } else { g.groups };
            self.group_done[(group % 2) as usize].wait(g);
        }
        if g.poisoned {
            return Err(SaveError::Poisoned);
        }
        self.flush_pending(g)
    }

    /// Wakes every waiter: after a failure or a rotation's own sync, which
    /// may satisfy or fail the waiters of any group.
    fn wake_all(&self, g: &mut Inner) {
        for cv in &self.group_done {
            cv.notify_all();
        }
        self.group_filled.notify_all();
        for list in &mut g.parked {
            for t in list.drain(..) {
                t.unpark();
            }
        }
    }

    /// Records that every batch up to `seq` is durable.
    fn mark_synced(&self, g: &mut Inner, seq: u64) {
        g.synced_seq = g.synced_seq.max(seq);
        self.synced_seq.store(g.synced_seq, Ordering::Release);
    }

    /// Waits until everything written so far is durable, leading the fsync
    /// if no other thread is.
    ///
    /// Group commit: the leader takes every batch queued so far, writes and
    /// fsyncs them with the lock released, and wakes exactly its group's
    /// waiters plus one waiter of the next group, which leads next. Before
    /// taking, a leader waits (bounded by the last group's sync time) until
    /// as many threads wait for its group as waited when the last group
    /// completed: writers acknowledged by a group usually come straight
    /// back, and taking before they do splits the writers into two
    /// alternating half-size groups.
    fn wait_synced<'a>(&'a self, mut g: MutexGuard<'a, Inner>) -> Result<(), SaveError> {
        let target = g.written_seq;
        let mut registered = false;
        loop {
            if g.poisoned {
                // Whoever sees the poison first passes it on: waiters of
                // the next group are not woken by anything else.
                self.wake_all(&mut g);
                return Err(SaveError::Poisoned);
            }
            if g.synced_seq >= target {
                return Ok(());
            }
            let next_group = target > g.taken_seq;
            if !registered {
                registered = true;
                self.register_waiter(&mut g, next_group);
            }
            if g.syncing {
                let group = if next_group { g.groups + 1 } else { g.groups };
                g.parked[(group % 2) as usize].push(thread::current());
                drop(g);
                // An unpark that came before this park is not lost (the
                // token stays), and a spurious return just checks again.
                thread::park();
                if self.synced_seq.load(Ordering::Acquire) >= target {
                    self.help_wake();
                    return Ok(());
                }
                g = self.inner.lock();
                continue;
            }
            g.syncing = true;
            self.fill_group(&mut g);
            if g.poisoned {
                g.syncing = false;
                self.wake_all(&mut g);
                return Err(SaveError::Poisoned);
            }
            if let Err(e) = self.lead_group(&mut g) {
                g.poisoned = true;
                self.wake_all(&mut g);
                return Err(SaveError::Io(e));
            }
        }
    }

    /// Counts a new waiter in the group it waits for, and tells a filling
    /// leader when its group is as large as it waits for.
    fn register_waiter(&self, g: &mut Inner, next_group: bool) {
        if next_group {
            g.next_waiters += 1;
            if g.filling && g.next_waiters >= g.fill_target {
                self.group_filled.notify_one();
            }
        } else {
            g.in_flight_waiters += 1;
        }
    }

    /// A new leader waits (at most the last group's sync time, and
    /// [`GROUP_FILL_WAIT_MAX`]) until as many waiters queued as the last
    /// group had.
    fn fill_group(&self, g: &mut MutexGuard<'_, Inner>) {
        if g.next_waiters >= g.fill_target {
            return;
        }
        g.filling = true;
        let deadline = Instant::now() + g.last_sync.min(GROUP_FILL_WAIT_MAX);
        while g.next_waiters < g.fill_target && !g.poisoned {
            if self.group_filled.wait_until(g, deadline).timed_out() {
                break;
            }
        }
        g.filling = false;
    }

    /// Leads a group: writes every queued batch with one call and fsyncs,
    /// without the lock, so other writers queue the next group meanwhile;
    /// then completes the group. An error is the write's or the fsync's.
    fn lead_group(&self, g: &mut MutexGuard<'_, Inner>) -> std::io::Result<()> {
        let mut data = std::mem::take(&mut g.pending);
        let at = g.offset - data.len() as u64;
        let covers_seq = g.written_seq;
        g.taken_seq = covers_seq;
        g.groups += 1;
        g.in_flight_waiters = std::mem::take(&mut g.next_waiters);
        let covers_offset = g.offset;
        let segment = g.current().id;
        let file = Arc::clone(&g.file);
        let started = Instant::now();
        let result = MutexGuard::unlocked(g, || {
            if !data.is_empty() {
                write_streaming(file.as_ref(), at, &data)?;
            }
            file.sync_data()
        });
        g.syncing = false;
        if g.pending.is_empty() {
            // Keep the allocation for the next group.
            data.clear();
            g.pending = data;
        }
        result?;
        g.last_sync = started.elapsed();
        g.fill_target = g.in_flight_waiters + g.next_waiters;
        g.stats.fsyncs += 1;
        self.mark_synced(g, covers_seq);
        if g.current().id == segment {
            g.synced_offset = g.synced_offset.max(covers_offset);
        }
        self.complete_group(g);
        if !g.syncing && g.next_waiters == 0 && !g.pending.is_empty() {
            // Unsynced saves made during this sync left their bytes for it,
            // and no next group will take them.
            if let Err(e) = self.flush_pending(g) {
                tracing::error!(error = %e, "writing unsynced batches failed; the WAL is poisoned");
                self.wake_all(g);
            }
        }
        Ok(())
    }

    /// Wakes the waiters of the group just synced, and one waiter of the
    /// next group to lead it.
    ///
    /// Waking a thread costs a few microseconds of system time (6 µs each
    /// on the 2-vCPU machine the benchmarks ran on), so one thread waking
    /// 64 writers would hold the next group back by ~0.4 ms. Instead every
    /// woken thread helps (`help_wake`) until the list is empty: the wakes
    /// run on every core at once.
    fn complete_group(&self, g: &mut MutexGuard<'_, Inner>) {
        let slot = (g.groups % 2) as usize;
        self.group_done[slot].notify_all();
        let next_leader = g.parked[1 - slot].pop();
        {
            let mut to_wake = self.to_wake.lock();
            to_wake.append(&mut g.parked[slot]);
            // Popped first: the next group's leader starts before the
            // members of this one come back to join it.
            to_wake.extend(next_leader);
        }
        // Unparked without the lock, so the woken threads do not run into
        // it while this thread still holds it.
        MutexGuard::unlocked(g, || self.help_wake());
    }

    /// Unparks the threads in `to_wake` until none is left.
    fn help_wake(&self) {
        loop {
            let Some(t) = self.to_wake.lock().pop() else {
                return;
            };
            t.unpark();
        }
    }

    /// Rotates to a new segment when the current one is full. A save whose
    /// entries start below the current segment's first index also rotates,
    /// and its batch goes into the new segment's first batch: every segment
    /// then holds only indexes at or above its first index, which is what
    /// lets `release_to` drop whole segments by their first indexes. Returns
    /// true if the entries were written that way.
    fn maybe_rotate(
        &self,
        g: &mut MutexGuard<'_, Inner>,
        hard_state: Option<&HardState>,
        entries: &[Entry],
    ) -> Result<bool, SaveError> {
        let full = g.offset >= self.options.segment_size_bytes;
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
        self.quiesce(g)?;
        let result = if truncating {
            let hs = hard_state.copied().unwrap_or(g.hard_state);
            self.rotate(g, entries[0].index, &hs, entries)
        } else {
            let hs = g.hard_state;
            self.rotate(g, g.last_index.next(), &hs, &[])
        };
        if result.is_err() {
            g.poisoned = true;
        }
        // The rotation's sync satisfied (or its failure poisoned) every
        // waiter, whichever group it was queued for.
        g.next_waiters = 0;
        g.in_flight_waiters = 0;
        self.wake_all(g);
        result.map_err(SaveError::Io)?;
        Ok(truncating)
    }

    /// Seals the current segment (fsync) and switches to a new one whose
    /// first batch carries the hard state and newest snapshot marker, so
    /// older segments can be released without losing either.
    fn rotate(
        &self,
        g: &mut MutexGuard<'_, Inner>,
        first_index: Index,
        hard_state: &HardState,
        entries: &[Entry],
    ) -> std::io::Result<()> {
        // Sealing: no byte of the old segment may be lost once a newer
        // segment exists, or recovery would find damage before the last
        // segment and refuse. Nothing to do when every batch is durable,
        // the usual case (a Raft node syncs every save with entries).
        if g.synced_seq < g.written_seq {
            g.file.sync_data()?;
            g.stats.fsyncs += 1;
        }
        let written = g.written_seq;
        self.mark_synced(g, written);
        g.taken_seq = g.written_seq;
        let id = g.current().id + 1;
        let big_batches = g.segment_batches > 0
            && g.segment_bytes / g.segment_batches >= PREALLOCATE_MAX_AVG_BATCH_BYTES;
        let new = NewSegment {
            preallocate: self.options.preallocate && !big_batches,
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
        let created = create_segment(
            self.options.backend.as_ref(),
            &self.dir,
            &self.options,
            new,
            spare,
        )?;
        g.spare_requested = false;
        if used_spare {
            g.stats.spares_used += 1;
        }
        g.file = created.file;
        g.offset = created.end;
        g.segment_batches = 0;
        g.segment_bytes = 0;
        g.synced_offset = created.end;
        g.segments.push(created.segment);
        g.stats.rotations += 1;
        g.stats.fsyncs += 1;
        g.stats.bytes_written += created.end;
        tracing::debug!(segment = id, first_index = %first_index, "rotated to a new segment");
        Ok(())
    }
}

/// Writes `data` at `at`; a long write goes out in chunks ending at
/// multiples of [`WRITEBACK_CHUNK_BYTES`], and writeback of each chunk but
/// the last is started as soon as it is written. Only a hint to the OS:
/// durability still comes from the `fdatasync` the caller issues, so the
/// hint's own errors are ignored.
fn write_streaming(file: &dyn FileHandle, at: u64, data: &[u8]) -> std::io::Result<()> {
    let end = at + data.len() as u64;
    let mut from = at;
    loop {
        let to = ((from / WRITEBACK_CHUNK_BYTES + 1) * WRITEBACK_CHUNK_BYTES).min(end);
        let chunk = &data[(from - at) as usize..(to - at) as usize];
        file.write_at(from, chunk)?;
        if to == end {
            return Ok(());
        }
        if let Err(e) = file.start_writeback(from, to - from) {
            tracing::trace!(error = %e, "start_writeback failed (ignored)");
        }
        from = to;
    }
}

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

struct CreatedSegment {
    segment: SegmentFile,
    file: Arc<dyn FileHandle>,
    end: u64,
}

/// Writes a new segment under a temporary name (header, then one batch with
/// the carried hard state, marker and any `entries`, then optional zeros),
/// fsyncs it, renames it into place and fsyncs the directory. The rename is
/// the commit point: the segment exists whole or not at all. A `spare`
/// (already zero-filled and synced under its own temporary name) is used
/// in place of a new file when preallocating.
fn create_segment(
    backend: &dyn Backend,
    dir: &Path,
    options: &WalOptions,
    new: NewSegment<'_>,
    spare: Option<Spare>,
) -> std::io::Result<CreatedSegment> {
    let NewSegment {
        preallocate,
        id,
        first_index,
        hard_state,
        marker,
        entries,
    } = new;
    let name = format::segment_file_name(id, first_index);
    let path = dir.join(&name);
    let temp = dir.join(format!("{name}{TEMP_SUFFIX}"));
    let header = SegmentHeader {
        segment_id: id,
        first_index,
    };
    let mut buf = format::encode_segment_header(header).to_vec();
    format::put_hard_state(&mut buf, id, hard_state);
    if let Some(m) = marker {
        format::put_snapshot_marker(&mut buf, id, m);
    }
    for e in entries {
        format::put_entry(&mut buf, id, e);
    }
    let frames = 1 + u32::from(marker.is_some()) + entries.len() as u32;
    let commit = Commit {
        batch_start: SEGMENT_HEADER_BYTES as u64,
        synced_through: SEGMENT_HEADER_BYTES as u64,
        frame_count: frames,
    };
    format::put_commit(&mut buf, id, commit);
    let end = buf.len() as u64;
    let (temp, file, zeroed) = match spare {
        Some(spare) if preallocate => (spare.path, spare.file, true),
        _ => {
            let file = backend.create(&temp)?;
            (temp, file, false)
        }
    };
    write_streaming(file.as_ref(), 0, &buf)?;
    if preallocate && !zeroed {
        let zeros = vec![0u8; ZERO_CHUNK_BYTES];
        let mut at = end;
        while at < options.segment_size_bytes {
            // Chunks aligned to file offsets, each written back at once.
            let chunk = ZERO_CHUNK_BYTES as u64;
            let n = (options.segment_size_bytes - at).min(chunk - at % chunk);
            file.write_at(at, &zeros[..n as usize])?;
            if let Err(e) = file.start_writeback(at, n) {
                tracing::trace!(error = %e, "start_writeback failed (ignored)");
            }
            at += n;
        }
    }
    file.sync_data()?;
    backend.rename(&temp, &path)?;
    backend.sync_dir(dir)?;
    Ok(CreatedSegment {
        segment: SegmentFile {
            id,
            first_index,
            path,
        },
        file: Arc::from(file),
        end,
    })
}

/// Makes the last segment's bytes up to `end` durable, so that nothing
/// `open` returns can be taken back by a later power cut. The bytes after
/// `synced_through` (the last offset a commit frame proves durable) may be
/// dirty pages of a process that died before its fsync, which an fsync
/// writes, or pages a failed fsync marked clean without writing them, which
/// only a new write puts on the disk (PostgreSQL fsyncs its data directory
/// after a crash for the first reason). They are written again, through the
/// copy that protects whatever of them is already durable (`rewrite`), and
/// the directory is synced. Earlier segments were made durable before the
/// next one was created.
fn make_tail_durable(
    backend: &dyn Backend,
    dir: &Path,
    segment: &SegmentFile,
    file: &dyn FileHandle,
    synced_through: u64,
    end: u64,
) -> Result<(), OpenError> {
    if synced_through >= end {
        file.sync_data().map_err(map_io(&segment.path))?;
        return backend.sync_dir(dir).map_err(map_io(dir));
    }
    let mut data = vec![0u8; (end - synced_through) as usize];
    let n = file
        .read_at(synced_through, &mut data)
        .map_err(map_io(&segment.path))?;
    data.truncate(n);
    let copy = rewrite::TailCopy {
        segment_id: segment.id,
        offset: synced_through,
        data,
    };
    rewrite::rewrite_in_place(backend, dir, file, &copy).map_err(map_io(&segment.path))
}

/// Finishes a tail rewrite that a crash interrupted, from its copy, before
/// anything reads the log (see `rewrite`).
fn finish_interrupted_rewrite(backend: &dyn Backend, dir: &Path) -> Result<(), OpenError> {
    let Some((copy, segment)) = rewrite::read_leftover(backend, dir)? else {
        return Ok(());
    };
    let file = backend.open(&segment.path).map_err(map_io(&segment.path))?;
    rewrite::rewrite_in_place(backend, dir, file.as_ref(), &copy).map_err(map_io(&segment.path))?;
    tracing::warn!(
        segment = copy.segment_id,
        offset = copy.offset,
        bytes = copy.data.len(),
        "finished a tail rewrite that a crash interrupted"
    );
    Ok(())
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
        backend.remove_file(temp).map_err(map_io(temp))?;
    }
    if !scanned.temp_files.is_empty() {
        backend.sync_dir(dir).map_err(map_io(dir))?;
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

/// Zeroes a torn tail from the last good batch and syncs it.
fn repair_tail(
    backend: &dyn Backend,
    repair: &recovery::TailRepair,
    preallocate: bool,
) -> Result<(), OpenError> {
    let file = backend.open(&repair.path).map_err(map_io(&repair.path))?;
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
    result.map_err(map_io(&repair.path))
}
