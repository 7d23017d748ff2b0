//! What the WAL keeps under its lock, and its counters.

use raft_core::{HardState, Index};

use crate::format::{SegmentFile, SnapshotMarker};
use crate::group_commit::{SyncState, Synced};
use crate::rotation::SegmentFill;

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
    /// [`crate::WalOptions::background_preallocation`]).
    pub spares_used: u64,
}

/// The writer's state, under the lock of the WAL's group commit.
#[derive(Debug)]
pub(crate) struct WalState {
    /// The sync sequence and the current segment's offsets.
    pub(crate) sync: SyncState,
    /// The segments on disk, oldest first; the last is the current one.
    pub(crate) segments: Vec<SegmentFile>,
    /// How full the current segment is.
    pub(crate) fill: SegmentFill,
    pub(crate) last_index: Index,
    pub(crate) hard_state: HardState,
    pub(crate) newest_marker: Option<SnapshotMarker>,
    /// Counters, except the fsyncs of groups and seals, which the sync
    /// state counts.
    pub(crate) stats: WalStats,
}

impl Synced for WalState {
    fn sync(&mut self) -> &mut SyncState {
        &mut self.sync
    }
}

impl WalState {
    /// The segment batches go to.
    pub(crate) fn current(&self) -> &SegmentFile {
        self.segments
            .last()
            .expect("a WAL always has a current segment")
    }

    /// The newest snapshot marker's index, 0 without one.
    pub(crate) fn newest_marker_index(&self) -> Index {
        self.newest_marker.as_ref().map_or(Index::ZERO, |m| m.index)
    }

    /// The counters, the sync state's fsyncs included.
    pub(crate) fn stats(&self) -> WalStats {
        WalStats {
            fsyncs: self.stats.fsyncs + self.sync.fsyncs(),
            ..self.stats
        }
    }
}
