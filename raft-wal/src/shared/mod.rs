//! [`SharedWal`]: one write-ahead log for many Raft groups, so that the
//! groups of a host share fsyncs instead of paying one each.
//!
//! Its layout and rules are documented on the type.

mod replay;
mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::MutexGuard;
use raft_core::{Entry, GroupId, HardState, Index};
use raft_io::{DirLock, codec};

use self::replay::SharedReplay;
pub use self::replay::{GroupRecovered, SharedRecovered};
use self::state::{GroupLog, SharedSegment, SharedState};
use crate::checks;
use crate::error::{OpenError, ReleaseError, SaveError, open_io};
use crate::format::{self, Layout, SnapshotMarker};
use crate::group_commit::{GroupCommit, SyncState};
use crate::options::WalOptions;
use crate::recovery;
use crate::rotation::{NewSegment, Rotation, SegmentFill};
use crate::state::WalStats;

/// One group's part of a [`SharedWal::save`].
#[derive(Debug, Clone, Copy)]
pub struct GroupWrite<'a> {
    /// The group.
    pub group: GroupId,
    /// Its hard state, written if given and changed.
    pub hard_state: Option<&'a HardState>,
    /// Its entries: they continue the group's log or replace a suffix of
    /// it, as [`crate::Wal::save`]'s do.
    pub entries: &'a [Entry],
}

/// The group that keeps the oldest segment from being released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentHolder {
    /// The oldest segment's id.
    pub segment: u64,
    /// A group with entries in it that it has not released.
    pub group: GroupId,
    /// The group must release through this index (its highest entry in the
    /// segment) to let the segment go: a snapshot at or past it does.
    pub through: Index,
}

/// A write-ahead log shared by many Raft groups: group-tagged frames in
/// one segmented stream, one fdatasync per batch for every group in it.
///
/// The frames, batches, commit records, rotation, tail repair and recovery
/// rules are the one-group log's (see the crate docs); what differs:
///
/// - Segment headers carry format version 2 and first index 0 (names `{id:016x}-0000000000000000.wal`). Each kind
///   of log refuses the other's segments ([`OpenError::WrongLayout`]), so a
///   one-group reader never takes group frames for a torn tail.
/// - In a batch, a **group frame** (type 5, payload: group id u64) names the
///   group of the frames after it, up to the next group frame; a frame
///   before the first is refused ([`OpenError::UngroupedFrame`]). A
///   **drop-group frame** (type 6, payload: group id u64) forgets a group.
///   One [`SharedWal::save`] is one batch however many groups it carries:
///   one fdatasync for all of them.
/// - Every segment starts with a batch carrying each group's hard state and
///   newest snapshot marker, so releasing older segments loses neither.
/// - An entry replaces its group's suffix from its index (Raft's conflict
///   truncation) where it stands; no segment starts because of it.
/// - A segment is deleted once no group needs an entry in it: for every
///   group that wrote entries to it, the highest one is at or below what the
///   group released ([`SharedWal::release`]), which cannot pass its newest
///   marker. Oldest first; the current segment stays.
///   [`SharedWal::oldest_holder`] names the group that keeps the oldest one.
/// - On open, a group whose entries skip ahead (their predecessors were in
///   released segments) restarts its log there; the log must then continue
///   from its newest marker, or open refuses ([`OpenError::InGroup`] with an
///   [`OpenError::IndexGap`]).
///
/// `SharedWal` is `Send + Sync`; concurrent saves share fsyncs as
/// [`crate::Wal`]'s do, and any failed write or fsync poisons it until it
/// is reopened.
#[derive(Debug)]
pub struct SharedWal {
    dir: PathBuf,
    options: WalOptions,
    gc: GroupCommit<SharedState>,
    rotation: Rotation,
    _lock: DirLock,
}

impl SharedWal {
    /// Opens (creating if needed) the shared WAL in `dir` and recovers every
    /// group's log, by the crate docs' recovery rules.
    ///
    /// # Errors
    /// As [`crate::Wal::open`]; [`OpenError::WrongLayout`] for a one-group
    /// log; [`OpenError::InGroup`] naming a group whose log does not
    /// recover; [`OpenError::InvalidOption`] if [`WalOptions::snapshot`] is
    /// set (each group picks its snapshot with
    /// [`GroupRecovered::entries_after`]).
    pub fn open(
        dir: impl AsRef<Path>,
        options: WalOptions,
    ) -> Result<(SharedWal, SharedRecovered), OpenError> {
        options.validate()?;
        if options.snapshot.is_some() {
            return Err(OpenError::InvalidOption(
                "snapshot: a shared WAL's groups pick theirs with GroupRecovered::entries_after",
            ));
        }
        let dir = dir.as_ref().to_path_buf();
        let backend = Arc::clone(&options.backend);
        let lock = recovery::lock_dir(backend.as_ref(), &dir)?;
        let mut replayed = SharedReplay::default();
        let (opened, ()) = recovery::open_dir(
            backend.as_ref(),
            &dir,
            options.max_record_bytes,
            options.preallocate,
            &mut replayed,
            |_| Ok(()),
        )?;
        let (recovered_groups, holds) = replayed.into_parts();
        let rotation = Rotation::new(&dir, &options);
        let mut fill = SegmentFill::default();
        let segments = opened
            .segments
            .into_iter()
            .zip(holds)
            .map(|(file, holds)| SharedSegment { file, holds })
            .collect();
        let (segments, file, offset) =
            continue_or_start(&rotation, &dir, &mut fill, segments, opened.tail)?;
        let groups = recovered_groups
            .iter()
            .map(|(&g, r)| (g, writer_view(r)))
            .collect();
        let state = SharedState {
            sync: SyncState::new(file, offset),
            segments,
            fill,
            groups,
            stats: WalStats::default(),
        };
        let wal = SharedWal {
            dir,
            options,
            gc: GroupCommit::new(state),
            rotation,
            _lock: lock,
        };
        let recovered = SharedRecovered {
            groups: recovered_groups,
            truncated_tail: opened.truncated_tail,
            removed_temp_files: opened.removed_temp_files,
        };
        Ok((wal, recovered))
    }

    /// The directory this WAL lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The groups with a log here, by id.
    pub fn groups(&self) -> Vec<GroupId> {
        self.gc.lock().groups.keys().copied().collect()
    }

    /// `group`'s last index (or its newest marker's, if later); `None` for
    /// a group with nothing saved.
    pub fn last_index(&self, group: GroupId) -> Option<Index> {
        self.gc.lock().groups.get(&group).map(|l| l.last_index)
    }

    /// `group`'s last saved hard state.
    pub fn hard_state(&self, group: GroupId) -> Option<HardState> {
        self.gc.lock().groups.get(&group).map(|l| l.hard_state)
    }

    /// Counters since open.
    pub fn stats(&self) -> WalStats {
        self.gc.lock().stats()
    }

    /// The ids of the segments on disk, oldest first.
    pub fn segment_ids(&self) -> Vec<u64> {
        self.gc.lock().segments.iter().map(|s| s.file.id).collect()
    }

    /// True once an I/O error has poisoned the WAL.
    pub fn is_poisoned(&self) -> bool {
        self.gc.lock().sync.is_poisoned()
    }

    /// Waits for the next segment's zero-filled spare, as
    /// [`crate::Wal::wait_for_preallocation`].
    pub fn wait_for_preallocation(&self) {
        self.rotation.wait_for_preallocation();
    }

    /// Appends every group's entries and changed hard state as **one**
    /// batch: with `sync`, durable when this returns, at the cost of one
    /// fdatasync shared with concurrent callers. A group's part follows the
    /// rules of [`crate::Wal::save`]; a group saved for the first time is
    /// created.
    ///
    /// # Errors
    /// [`SaveError::InGroup`] (with the one-group reason) or
    /// [`SaveError::DuplicateGroup`] before anything is written;
    /// [`SaveError::Io`] (which poisons) or [`SaveError::Poisoned`].
    pub fn save(&self, writes: &[GroupWrite<'_>], sync: bool) -> Result<(), SaveError> {
        let mut g = self.gc.lock();
        if g.sync.is_poisoned() {
            return Err(SaveError::Poisoned);
        }
        // Rotation may wait for the lock; the checks come after it, so
        // they see what a concurrent save changed meanwhile.
        self.maybe_rotate(&mut g)?;
        let planned = self.check_writes(&g, writes)?;
        if planned.is_empty() {
            return if sync { self.gc.wait_synced(g) } else { Ok(()) };
        }
        let spare_due = self.enqueue_batch(&mut g, |buf, id| {
            let mut frames = 0;
            for (w, _, hs) in &planned {
                format::put_group(buf, id, w.group);
                frames += 1;
                if let Some(hs) = hs {
                    format::put_hard_state(buf, id, hs);
                    frames += 1;
                }
                for e in w.entries {
                    format::put_entry(buf, id, e);
                    frames += 1;
                }
            }
            frames
        });
        for (w, new_last, hs) in &planned {
            let log = g.groups.entry(w.group).or_default();
            log.last_index = *new_last;
            if let Some(hs) = hs {
                log.hard_state = **hs;
            }
            if let Some(last) = w.entries.last() {
                g.hold(w.group, last.index);
            }
        }
        let result = if sync {
            self.gc.wait_synced(g)
        } else if g.sync.is_syncing() {
            Ok(()) // the sync leader in flight, or the next, writes them
        } else {
            g.sync.flush()
        };
        self.rotation.after_save(spare_due, result.is_ok());
        result
    }

    /// Validates every part of a save. Returns the parts that write
    /// anything, each with its group's new last index and its hard state
    /// if changed.
    #[allow(clippy::type_complexity)]
    fn check_writes<'w, 'a>(
        &self,
        g: &SharedState,
        writes: &'w [GroupWrite<'a>],
    ) -> Result<Vec<(&'w GroupWrite<'a>, Index, Option<&'a HardState>)>, SaveError> {
        let mut seen = BTreeSet::new();
        let mut planned = Vec::with_capacity(writes.len());
        for w in writes {
            if !seen.insert(w.group) {
                return Err(SaveError::DuplicateGroup { group: w.group });
            }
            let log = g.groups.get(&w.group);
            let tip = log.map(GroupLog::tip).unwrap_or_default();
            let new_last =
                checks::check_save(tip, w.hard_state, w.entries, self.options.max_record_bytes)
                    .map_err(|source| SaveError::InGroup {
                        group: w.group,
                        source: Box::new(source),
                    })?;
            // A group's first hard state is written even if it is the
            // default one: that save creates the group.
            let hs = w
                .hard_state
                .filter(|hs| log.is_none_or(|l| l.hard_state != **hs));
            if hs.is_some() || !w.entries.is_empty() {
                planned.push((w, new_last, hs));
            }
        }
        Ok(planned)
    }

    /// Records `group`'s snapshot marker and syncs; the snapshot itself
    /// must be durable first. As [`crate::Wal::save_snapshot_marker`].
    ///
    /// # Errors
    /// As [`crate::Wal::save_snapshot_marker`], the refusals wrapped in
    /// [`SaveError::InGroup`].
    pub fn save_snapshot_marker(
        &self,
        group: GroupId,
        marker: &SnapshotMarker,
    ) -> Result<(), SaveError> {
        let mut g = self.gc.lock();
        if g.sync.is_poisoned() {
            return Err(SaveError::Poisoned);
        }
        self.maybe_rotate(&mut g)?;
        let refuse = |source| SaveError::InGroup {
            group,
            source: Box::new(source),
        };
        codec::check_conf_state(&marker.conf_state)
            .map_err(|e| refuse(SaveError::InvalidConfState(e)))?;
        let newest = g
            .groups
            .get(&group)
            .map_or(Index::ZERO, GroupLog::newest_marker_index);
        if marker.index < newest {
            return Err(refuse(SaveError::MarkerRegressed {
                newest,
                found: marker.index,
            }));
        }
        let spare_due = self.enqueue_batch(&mut g, |buf, id| {
            format::put_group(buf, id, group);
            format::put_snapshot_marker(buf, id, marker);
            2
        });
        let log = g.groups.entry(group).or_default();
        log.last_index = log.last_index.max(marker.index);
        log.newest_marker = Some(marker.clone());
        let result = self.gc.wait_synced(g);
        self.rotation.after_save(spare_due, result.is_ok());
        result
    }

    /// Forgets `group` (a group removed from this host): its log no longer
    /// holds any segment, and a later open does not return it. Durable when
    /// this returns. Dropping an unknown group does nothing.
    ///
    /// # Errors
    /// [`SaveError::Io`] (which poisons) or [`SaveError::Poisoned`].
    pub fn drop_group(&self, group: GroupId) -> Result<(), SaveError> {
        let mut g = self.gc.lock();
        if g.sync.is_poisoned() {
            return Err(SaveError::Poisoned);
        }
        self.maybe_rotate(&mut g)?;
        if !g.groups.contains_key(&group) {
            return Ok(());
        }
        let spare_due = self.enqueue_batch(&mut g, |buf, id| {
            format::put_drop_group(buf, id, group);
            1
        });
        g.groups.remove(&group);
        for seg in &mut g.segments {
            seg.holds.remove(&group);
        }
        let result = self.gc.wait_synced(g);
        self.rotation.after_save(spare_due, result.is_ok());
        result?;
        // The drop may have freed the oldest segments.
        self.release_segments().map(drop).map_err(|e| match e {
            ReleaseError::Io(e) => SaveError::Io(e),
            _ => SaveError::Poisoned,
        })
    }

    /// Makes every batch written so far durable.
    ///
    /// # Errors
    /// [`SaveError::Io`] (which poisons) or [`SaveError::Poisoned`].
    pub fn sync(&self) -> Result<(), SaveError> {
        let g = self.gc.lock();
        if g.sync.is_poisoned() {
            return Err(SaveError::Poisoned);
        }
        self.gc.wait_synced(g)
    }

    /// Notes that `group` needs no entry at or below `index` (which must
    /// not pass its newest marker), then deletes the oldest segments no
    /// group needs. Returns how many were deleted.
    ///
    /// # Errors
    /// [`ReleaseError::InGroup`] with [`ReleaseError::BeyondSnapshot`];
    /// [`ReleaseError::Io`] (which poisons) or [`ReleaseError::Poisoned`].
    pub fn release(&self, group: GroupId, index: Index) -> Result<usize, ReleaseError> {
        {
            let mut g = self.gc.lock();
            if g.sync.is_poisoned() {
                return Err(ReleaseError::Poisoned);
            }
            let log = g.groups.entry(group).or_default();
            let snapshot = log.newest_marker_index();
            if index > snapshot {
                return Err(ReleaseError::InGroup {
                    group,
                    source: Box::new(ReleaseError::BeyondSnapshot {
                        requested: index,
                        snapshot,
                    }),
                });
            }
            log.released = log.released.max(index);
        }
        self.release_segments()
    }

    /// The group keeping the oldest segment on disk, if a segment older than
    /// the current one exists: the one to snapshot and release when the
    /// log grows.
    pub fn oldest_holder(&self) -> Option<SegmentHolder> {
        let g = self.gc.lock();
        let (oldest, older) = g.segments.split_first()?;
        if older.is_empty() {
            return None;
        }
        let (group, through) = oldest.holder(&g.groups)?;
        Some(SegmentHolder {
            segment: oldest.file.id,
            group,
            through,
        })
    }

    /// Deletes, oldest first, the segments before the current one that no
    /// group holds, then syncs the directory.
    fn release_segments(&self) -> Result<usize, ReleaseError> {
        let mut g = self.gc.lock();
        if g.sync.is_poisoned() {
            return Err(ReleaseError::Poisoned);
        }
        let state = &mut *g;
        let older = state.segments.len() - 1;
        let count = state.segments[..older]
            .iter()
            .take_while(|s| s.holder(&state.groups).is_none())
            .count();
        if count == 0 {
            return Ok(0);
        }
        let backend = self.options.backend.as_ref();
        let removed = state.segments[..count]
            .iter()
            .try_for_each(|seg| backend.remove_file(&seg.file.path))
            .and_then(|()| backend.sync_dir(&self.dir));
        if let Err(e) = removed {
            state.sync.poison();
            return Err(ReleaseError::Io(e));
        }
        state.segments.drain(..count);
        tracing::debug!(count, "released shared segments");
        Ok(count)
    }

    /// Rotates when the current segment is full: seals it and starts the
    /// next with every group's hard state and newest marker.
    fn maybe_rotate(&self, g: &mut MutexGuard<'_, SharedState>) -> Result<(), SaveError> {
        if g.sync.offset() < self.options.segment_size_bytes {
            return Ok(());
        }
        self.gc.quiesce(g)?;
        let result = self.rotate(g);
        if result.is_err() {
            g.sync.poison();
        }
        self.gc.release_all(&mut g.sync);
        result.map_err(SaveError::Io)
    }

    fn rotate(&self, g: &mut MutexGuard<'_, SharedState>) -> std::io::Result<()> {
        self.gc.seal(&mut g.sync)?;
        let state = &mut **g;
        let new = NewSegment {
            id: state.current_id() + 1,
            first_index: Index::ZERO,
            layout: Layout::Shared,
        };
        let groups = &state.groups;
        let (created, used_spare) =
            self.rotation
                .start_segment(new, &mut state.fill, |buf, id| {
                    let mut frames = 0;
                    for (&group, log) in groups {
                        format::put_group(buf, id, group);
                        format::put_hard_state(buf, id, &log.hard_state);
                        frames += 2;
                        if let Some(m) = &log.newest_marker {
                            format::put_snapshot_marker(buf, id, m);
                            frames += 1;
                        }
                    }
                    frames
                })?;
        state.stats.spares_used += u64::from(used_spare);
        state.stats.rotations += 1;
        state.stats.fsyncs += 1;
        state.stats.bytes_written += created.end;
        state.sync.start_segment(created.file, created.end);
        state.segments.push(SharedSegment {
            file: created.segment,
            holds: BTreeMap::new(),
        });
        tracing::debug!(
            segment = new.id,
            groups = groups.len(),
            "rotated the shared WAL"
        );
        Ok(())
    }

    /// Queues a batch (the frames `encode` appends, then the commit frame)
    /// in the current segment. Returns true when the next segment's spare
    /// is due.
    #[must_use]
    fn enqueue_batch(
        &self,
        g: &mut SharedState,
        encode: impl FnOnce(&mut Vec<u8>, u64) -> u32,
    ) -> bool {
        let id = g.current_id();
        let len = g.sync.queue_batch(id, encode);
        g.stats.batches += 1;
        g.stats.bytes_written += len;
        self.rotation.note_batch(&mut g.fill, g.sync.offset(), len)
    }
}

/// Where writing continues: the recovered tail, or a first segment for a
/// new directory.
#[allow(clippy::type_complexity)]
fn continue_or_start(
    rotation: &Rotation,
    dir: &Path,
    fill: &mut SegmentFill,
    mut segments: Vec<SharedSegment>,
    tail: Option<(Arc<dyn raft_io::FileHandle>, u64)>,
) -> Result<(Vec<SharedSegment>, Arc<dyn raft_io::FileHandle>, u64), OpenError> {
    if let Some((file, offset)) = tail {
        return Ok((segments, file, offset));
    }
    let new = NewSegment {
        id: 1,
        first_index: Index::ZERO,
        layout: Layout::Shared,
    };
    let (created, _) = rotation
        .start_segment(new, fill, |_, _| 0)
        .map_err(open_io(dir))?;
    segments.push(SharedSegment {
        file: created.segment,
        holds: BTreeMap::new(),
    });
    Ok((segments, created.file, created.end))
}

/// The writer's view of a recovered group. Entries below the retained log
/// are in no segment recovery read them from, so they count as released.
fn writer_view(r: &GroupRecovered) -> GroupLog {
    GroupLog {
        last_index: r.last_index(),
        hard_state: r.hard_state(),
        newest_marker: r.newest_marker().cloned(),
        released: r.first_index().prev(),
    }
}
