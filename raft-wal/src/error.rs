//! One error enum per operation.

use std::io;
use std::path::{Path, PathBuf};

use raft_core::{GroupId, Index, LogId};
use raft_io::codec::CodecError;

use crate::format::{DamageKind, Layout};

/// Why [`crate::Wal::open`] refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// An I/O error while reading or repairing the directory.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Another process (or another `Wal` in this one) has the directory open.
    #[error("WAL directory {dir} is locked: another process has it open")]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// Damage that recovery must not repair: a bad frame that data proven
    /// durable follows, or any damage in a segment other than the last.
    #[error(
        "WAL corrupt in segment {segment} at offset {offset} ({kind}); \
         the last good entry is {last_good_index}; this needs an operator \
         (see `raft-wal verify`)"
    )]
    Corrupt {
        /// The id of the damaged segment.
        segment: u64,
        /// The byte offset of the damage within the segment.
        offset: u64,
        /// The last entry index recovered before the damage.
        last_good_index: Index,
        /// What was wrong.
        kind: DamageKind,
    },
    /// Segment ids are not consecutive: a segment in the middle is missing.
    #[error("segment {missing} is missing (segments {before} and {after} exist)")]
    MissingSegment {
        /// The first missing id.
        missing: u64,
        /// The id before the gap.
        before: u64,
        /// The id after the gap.
        after: u64,
    },
    /// Two segment files claim the same id.
    #[error("two segment files have id {segment}")]
    DuplicateSegment {
        /// The duplicated id.
        segment: u64,
    },
    /// A segment's header disagrees with its file name.
    #[error("segment file {path} has a header that does not match its name")]
    MisnamedSegment {
        /// The file.
        path: PathBuf,
    },
    /// A leftover copy of an interrupted tail rewrite (see the crate docs)
    /// does not verify or names a segment that does not exist. Nothing the
    /// WAL does leaves such a copy, so the disk is damaged, and so may be
    /// the segment bytes the copy was protecting.
    #[error(
        "the tail-rewrite copy {path} is damaged or names a missing segment: \
         the last segment's tail may be damaged too; inspect with `raft-wal verify`"
    )]
    CorruptTailCopy {
        /// The copy file.
        path: PathBuf,
    },
    /// The log skips indexes: between segments, or entries that do not
    /// follow the log they append to.
    #[error("index gap in segment {segment}: expected at most {expected}, found {found}")]
    IndexGap {
        /// The segment where the gap shows.
        segment: u64,
        /// The highest index that could follow.
        expected: Index,
        /// The index found.
        found: Index,
    },
    /// An entry rewrites an index a snapshot marker already covers.
    #[error("segment {segment} rewrites index {index}, covered by snapshot {snapshot}")]
    RewritesSnapshot {
        /// The segment.
        segment: u64,
        /// The entry's index.
        index: Index,
        /// The newest snapshot index.
        snapshot: Index,
    },
    /// Snapshot markers go backwards.
    #[error("segment {segment} holds snapshot marker {found} after marker {newest}")]
    MarkerRegressed {
        /// The segment.
        segment: u64,
        /// The newest marker seen before.
        newest: Index,
        /// The marker found.
        found: Index,
    },
    /// The hard state commits entries the log does not hold.
    #[error("hard state commit {commit} is beyond the last index {last_index}")]
    CommitBeyondLog {
        /// The persisted commit index.
        commit: Index,
        /// The last index in the log.
        last_index: Index,
    },
    /// The caller's snapshot matches no marker in the log, or the log does
    /// not continue from it.
    #[error(
        "the log does not continue from snapshot {requested:?}; \
         markers in the log: {available:?}, entries start at {log_start}"
    )]
    SnapshotMismatch {
        /// The caller's snapshot (`None`: no snapshot).
        requested: Option<LogId>,
        /// The snapshot markers the retained log holds.
        available: Vec<LogId>,
        /// The first index the retained log holds entries from.
        log_start: Index,
    },
    /// An option is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(&'static str),
    /// The directory holds the other kind of log: [`crate::Wal`] opened a
    /// log shared by many groups, or [`crate::SharedWal`] a one-group log.
    #[error("segment {path} belongs to {found}; open it with the matching type")]
    WrongLayout {
        /// The first segment of the other layout.
        path: PathBuf,
        /// The layout it has.
        found: Layout,
    },
    /// A verified group frame in a one-group log: no one-group writer
    /// writes one, so the segment was written by something else.
    #[error("segment {segment} of a one-group log holds a group frame")]
    UnexpectedGroupFrame {
        /// The segment.
        segment: u64,
    },
    /// A shared log's batch holds a frame before any group frame, so the
    /// frame belongs to no group.
    #[error("segment {segment} holds a frame that names no group")]
    UngroupedFrame {
        /// The segment.
        segment: u64,
    },
    /// One group's log in a shared log does not recover.
    #[error("group {group}: {source}")]
    InGroup {
        /// The group.
        group: GroupId,
        /// What is wrong with its log.
        source: Box<OpenError>,
    },
}

/// Why [`crate::Wal::save`], [`crate::Wal::save_snapshot_marker`] or
/// [`crate::Wal::sync`] failed. Variants other than `Io` and `Poisoned`
/// reject the call before anything is written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaveError {
    /// A write or fsync failed; the WAL is now poisoned.
    #[error("WAL write failed, reopen the WAL to recover: {0}")]
    Io(#[source] io::Error),
    /// An earlier write or fsync failed. Whether it reached the disk is
    /// unknown, so nothing more is written until the WAL is reopened.
    #[error("WAL is poisoned by an earlier I/O error; reopen it to recover")]
    Poisoned,
    /// The first entry leaves a hole after the last index.
    #[error("entries must continue the log: expected index at most {expected}, got {found}")]
    Gap {
        /// The highest index that may come next.
        expected: Index,
        /// The first entry's index.
        found: Index,
    },
    /// The entries of one call are not consecutive.
    #[error("entries are not consecutive: {found} follows {previous}")]
    NotContiguous {
        /// The index before.
        previous: Index,
        /// The index that should have been `previous + 1`.
        found: Index,
    },
    /// The entries would replace committed ones (Raft never does that).
    #[error("entry {index} would replace committed entries (commit {commit})")]
    TruncatesCommitted {
        /// The first entry's index.
        index: Index,
        /// The persisted commit index.
        commit: Index,
    },
    /// The entries would replace ones a snapshot covers.
    #[error("entry {index} is covered by snapshot {snapshot}")]
    BelowSnapshot {
        /// The first entry's index.
        index: Index,
        /// The newest snapshot marker's index.
        snapshot: Index,
    },
    /// The hard state commits entries the log would not hold.
    #[error("hard state commit {commit} is beyond the last index {last_index}")]
    CommitBeyondLog {
        /// The commit index.
        commit: Index,
        /// The last index after this save.
        last_index: Index,
    },
    /// One record is larger than `max_record_bytes`.
    #[error("record of {bytes} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// The record's payload size.
        bytes: u64,
        /// The configured maximum.
        max: u32,
    },
    /// The entry kind is newer than this format version.
    #[error("entry {index} has a kind this WAL format cannot store")]
    UnsupportedEntryKind {
        /// The entry's index.
        index: Index,
    },
    /// The snapshot marker's membership has no canonical encoding
    /// (`auto_leave` outside a joint configuration), so no reader would
    /// accept the marker.
    #[error("snapshot marker membership cannot be stored: {0}")]
    InvalidConfState(#[source] CodecError),
    /// A snapshot marker older than one already saved.
    #[error("snapshot marker {found} is older than the saved marker {newest}")]
    MarkerRegressed {
        /// The newest saved marker.
        newest: Index,
        /// The rejected marker.
        found: Index,
    },
    /// [`crate::SharedWal`]: one group's part of a save was refused, so
    /// nothing of the save was written.
    #[error("group {group}: {source}")]
    InGroup {
        /// The group.
        group: GroupId,
        /// Why its part was refused.
        source: Box<SaveError>,
    },
    /// [`crate::SharedWal::save`]: one save names a group twice.
    #[error("group {group} appears twice in one save")]
    DuplicateGroup {
        /// The group.
        group: GroupId,
    },
}

/// Why [`crate::Wal::release_to`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// Removing a segment or syncing the directory failed; the WAL is now
    /// poisoned.
    #[error("releasing segments failed, reopen the WAL to recover: {0}")]
    Io(#[source] io::Error),
    /// An earlier I/O error poisoned the WAL.
    #[error("WAL is poisoned by an earlier I/O error; reopen it to recover")]
    Poisoned,
    /// Releasing past the newest saved snapshot marker would lose entries
    /// that no snapshot covers.
    #[error("cannot release to {requested}: the newest snapshot marker is {snapshot}")]
    BeyondSnapshot {
        /// The requested index.
        requested: Index,
        /// The newest snapshot marker's index (0: none).
        snapshot: Index,
    },
    /// [`crate::SharedWal::release`]: the group's part was refused.
    #[error("group {group}: {source}")]
    InGroup {
        /// The group.
        group: GroupId,
        /// Why.
        source: Box<ReleaseError>,
    },
}

/// Wraps an I/O error on `path` as [`OpenError::Io`].
pub(crate) fn open_io(path: &Path) -> impl FnOnce(io::Error) -> OpenError + '_ {
    move |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    }
}
