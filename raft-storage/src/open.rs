//! Recovery: pick the newest snapshot the log continues from, open the WAL
//! after it, and index what it holds in memory.
//!
//! A snapshot file is durable before its WAL marker is written, so after a
//! crash the newest file may be unknown to the WAL; a file may also fail
//! verification. Either way recovery falls back to the newest intact
//! snapshot the WAL has a marker for (etcd's `LoadNewestAvailable`), which
//! works because [`DiskStorage::snapshot_and_compact`](crate::DiskStorage::snapshot_and_compact)
//! releases the WAL only up to the oldest snapshot it keeps.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use raft_core::{ConfState, Entry, GroupId, HardState, Index, LogId, SnapshotMetadata};
use raft_snap::{LoadError, SnapshotReader, Snapshotter};
use raft_wal::{GroupRecovered, SharedWal, TailTruncation, Wal};

use crate::error::OpenError;
use crate::log::Log;
use crate::options::StorageOptions;

/// The WAL's subdirectory of a storage directory.
pub const WAL_DIR: &str = "wal";
/// The snapshots' subdirectory of a storage directory.
pub const SNAP_DIR: &str = "snap";

/// What [`DiskStorage::open`](crate::DiskStorage::open) found: what
/// raft-core and the state machine start from.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Recovery {
    /// The persisted term, vote and commit (the commit raised to the
    /// snapshot's index, which only committed entries reach).
    pub hard_state: HardState,
    /// The membership as of the snapshot (empty without one); conf-change
    /// entries after it are handed out again and re-applied.
    pub conf_state: ConfState,
    /// The snapshot the log continues from: restore the state machine from
    /// it ([`DiskStorage::open_snapshot`](crate::DiskStorage::open_snapshot)).
    pub snapshot: Option<SnapshotMetadata>,
    /// The last index in the log.
    pub last_index: Index,
    /// True when the directory held nothing: no log, hard state or
    /// snapshot (a first start, see
    /// [`DiskStorage::bootstrap`](crate::DiskStorage::bootstrap)).
    pub fresh: bool,
    /// Newer snapshot files recovery did not use, and why.
    pub skipped_snapshots: Vec<SkippedSnapshot>,
    /// The torn WAL tail recovery cut off, if any.
    pub truncated_tail: Option<TailTruncation>,
}

impl Recovery {
    /// The index the state machine is at once restored from
    /// [`Recovery::snapshot`]: pass it as raft-core's `Config::applied`.
    pub fn applied(&self) -> Index {
        self.snapshot.as_ref().map_or(Index::ZERO, |s| s.index)
    }
}

/// A snapshot file newer than the one recovery used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkippedSnapshot {
    /// The file verifies but the WAL has no marker for it: the process
    /// stopped between writing it and recording it. It was deleted.
    Unrecorded(LogId),
    /// The file failed verification and was renamed to `path`.
    Damaged {
        /// The snapshot its name gave.
        id: LogId,
        /// Where it is now.
        path: PathBuf,
    },
}

/// What recovery hands to [`DiskStorage`](crate::DiskStorage).
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) log: Log,
    /// The newest persisted hard state.
    pub(crate) hard_state: HardState,
    /// The entries after [`Opened::snapshot`].
    pub(crate) entries: Vec<Entry>,
    /// The torn tail the storage's own WAL cut (a shared WAL reports its
    /// own when it is opened).
    pub(crate) truncated_tail: Option<TailTruncation>,
    pub(crate) snapshotter: Snapshotter,
    pub(crate) snapshot: Option<SnapshotMetadata>,
    pub(crate) skipped: Vec<SkippedSnapshot>,
}

/// Opens the snapshots and the WAL of `dir`.
pub(crate) fn open_dirs(dir: &Path, options: &StorageOptions) -> Result<Opened, OpenError> {
    let (snapshotter, listed) = open_snapshots(dir, options, true)?;
    let wal_dir = dir.join(WAL_DIR);
    let ((wal, recovered), snapshot) = choose_snapshot(&snapshotter, &listed, &wal_dir, |want| {
        Wal::open(&wal_dir, options.wal_options(want))
    })?;
    let want = snapshot.as_ref().map(log_id);
    let skipped = skipped(&snapshotter, &listed, want)?;
    Ok(Opened {
        log: Log::Own(Box::new(wal)),
        hard_state: recovered.hard_state,
        entries: recovered.entries,
        truncated_tail: recovered.truncated_tail,
        snapshotter,
        snapshot,
        skipped,
    })
}

/// Opens the snapshots of `dir` and `group`'s log in the shared `wal`, as
/// `wal` recovered it (`None`: the group has no log there yet).
pub(crate) fn open_in_shared(
    dir: &Path,
    options: &StorageOptions,
    wal: Arc<SharedWal>,
    group: GroupId,
    recovered: Option<GroupRecovered>,
) -> Result<Opened, OpenError> {
    let (snapshotter, listed) = open_snapshots(dir, options, false)?;
    let hard_state = recovered
        .as_ref()
        .map_or_else(HardState::default, GroupRecovered::hard_state);
    let mut recovered = recovered;
    let ((_, entries), snapshot) = choose_snapshot(&snapshotter, &listed, wal.dir(), |want| {
        match recovered.as_mut() {
            Some(log) => log.entries_after(want),
            // No log: as an empty one, which has no marker.
            None if want.is_none() => Ok((None, Vec::new())),
            None => Err(raft_wal::OpenError::SnapshotMismatch {
                requested: want,
                available: Vec::new(),
                log_start: Index::ZERO,
            }),
        }
    })
    .map_err(|e| in_group(e, group))?;
    let want = snapshot.as_ref().map(log_id);
    let skipped = skipped(&snapshotter, &listed, want)?;
    Ok(Opened {
        log: Log::Shared { wal, group },
        hard_state,
        entries,
        truncated_tail: None,
        snapshotter,
        snapshot,
        skipped,
    })
}

/// A shared log's refusal, naming the group.
fn in_group(e: OpenError, group: GroupId) -> OpenError {
    match e {
        OpenError::Wal { dir, source } => OpenError::Wal {
            dir,
            source: raft_wal::OpenError::InGroup {
                group,
                source: Box::new(source),
            },
        },
        e => e,
    }
}

/// Creates `dir` and opens its snapshot directory; lists the files.
/// `locked`: the snapshot directory takes a lock of its own (one file
/// descriptor); a group of a shared WAL does not, the WAL's lock keeps
/// other processes out of every group of it.
fn open_snapshots(
    dir: &Path,
    options: &StorageOptions,
    locked: bool,
) -> Result<(Snapshotter, Vec<LogId>), OpenError> {
    let backend = &options.backend;
    backend
        .create_dir_all(dir)
        .map_err(|source| OpenError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    let snap_dir = dir.join(SNAP_DIR);
    let snapshotter = if locked {
        Snapshotter::with_backend(Arc::clone(backend), snap_dir)?
    } else {
        Snapshotter::with_backend_unlocked(Arc::clone(backend), snap_dir)?
    };
    let listed = snapshotter.list().map_err(LoadError::from)?;
    Ok((snapshotter, listed))
}

/// Opens the log (`open_log`, given the snapshot it must continue from)
/// after the newest intact snapshot; when the log does not continue from
/// it, falls back to the newest intact one the log has a marker for.
fn choose_snapshot<T>(
    snapshotter: &Snapshotter,
    listed: &[LogId],
    wal_dir: &Path,
    mut open_log: impl FnMut(Option<LogId>) -> Result<T, raft_wal::OpenError>,
) -> Result<(T, Option<SnapshotMetadata>), OpenError> {
    let mut chosen = newest_intact(snapshotter, None)?;
    loop {
        let want = chosen.as_ref().map(|r| log_id(r.metadata()));
        match open_log(want) {
            Ok(log) => return Ok((log, chosen.map(|r| r.metadata().clone()))),
            Err(raft_wal::OpenError::SnapshotMismatch {
                available,
                log_start,
                ..
            }) => {
                let next = if available.is_empty() {
                    None
                } else {
                    newest_intact(snapshotter, Some(&available))?
                };
                let next_id = next.as_ref().map(|r| log_id(r.metadata()));
                if next_id == want || (next.is_none() && !available.is_empty()) {
                    return Err(no_usable_snapshot(
                        snapshotter,
                        listed,
                        available,
                        log_start,
                    )?);
                }
                tracing::warn!(skipped = ?want, using = ?next_id, "the WAL does not continue from the newest snapshot; falling back");
                chosen = next;
            }
            Err(source) => {
                return Err(OpenError::Wal {
                    dir: wal_dir.to_path_buf(),
                    source,
                });
            }
        }
    }
}

fn log_id(meta: &SnapshotMetadata) -> LogId {
    LogId::new(meta.term, meta.index)
}

/// The newest snapshot that verifies (among `known` if given), read through
/// once to check it; damaged files are renamed `*.broken` on the way.
fn newest_intact(
    snapshotter: &Snapshotter,
    known: Option<&[LogId]>,
) -> Result<Option<SnapshotReader>, LoadError> {
    let found = match known {
        None => snapshotter.open_newest(),
        Some(known) => {
            let known: Vec<_> = known.iter().map(|l| (l.index, l.term)).collect();
            snapshotter.open_newest_matching(&known)
        }
    };
    match found {
        Ok(reader) => Ok(Some(reader)),
        Err(LoadError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The files newer than `used` that recovery passed over. Intact ones have
/// no WAL marker: they are deleted, so that purging by count never keeps
/// them in place of snapshots the log needs.
fn skipped(
    snapshotter: &Snapshotter,
    listed: &[LogId],
    used: Option<LogId>,
) -> Result<Vec<SkippedSnapshot>, OpenError> {
    let remaining = snapshotter.list().map_err(LoadError::from)?;
    let newer = |id: &&LogId| used.is_none_or(|u| (id.index, id.term) > (u.index, u.term));
    let mut skipped = Vec::new();
    for &id in listed.iter().filter(newer) {
        if remaining.contains(&id) {
            snapshotter.remove(id)?;
            tracing::warn!(snapshot = %id, "deleted a snapshot file the WAL has no marker for");
            skipped.push(SkippedSnapshot::Unrecorded(id));
        } else {
            let path = broken_path(&snapshotter.path_of(id));
            tracing::error!(snapshot = %id, path = %path.display(), "skipped a damaged snapshot file");
            skipped.push(SkippedSnapshot::Damaged { id, path });
        }
    }
    Ok(skipped)
}

fn broken_path(path: &Path) -> PathBuf {
    let mut broken = path.as_os_str().to_owned();
    broken.push(".broken");
    PathBuf::from(broken)
}

/// The typed refusal when no intact snapshot the WAL continues from is
/// left: damaged files named if there are any.
fn no_usable_snapshot(
    snapshotter: &Snapshotter,
    listed: &[LogId],
    available: Vec<LogId>,
    log_start: Index,
) -> Result<OpenError, OpenError> {
    let remaining = snapshotter.list().map_err(LoadError::from)?;
    let damaged: Vec<PathBuf> = listed
        .iter()
        .filter(|id| !remaining.contains(id))
        .map(|&id| broken_path(&snapshotter.path_of(id)))
        .collect();
    Ok(if damaged.is_empty() {
        OpenError::MissingSnapshot {
            dir: snapshotter.dir().to_path_buf(),
            available,
            log_start,
        }
    } else {
        OpenError::DamagedSnapshot {
            needed: available,
            damaged,
        }
    })
}
