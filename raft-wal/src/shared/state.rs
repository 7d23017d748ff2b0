//! What the shared log's writer keeps under its lock: each group's end of
//! log, and which groups hold entries in which segment.

use std::collections::BTreeMap;

use raft_core::{GroupId, HardState, Index};

use crate::checks::LogTip;
use crate::format::{SegmentFile, SnapshotMarker};
use crate::group_commit::{SyncState, Synced};
use crate::rotation::SegmentFill;
use crate::state::WalStats;

/// One group's log, as the writer knows it.
#[derive(Debug, Clone, Default)]
pub(crate) struct GroupLog {
    /// The last index (or the newest marker's, if later).
    pub(crate) last_index: Index,
    pub(crate) hard_state: HardState,
    pub(crate) newest_marker: Option<SnapshotMarker>,
    /// The group needs no entry at or below this index any more.
    ///
    /// Invariant: `released <= ` the newest marker's index.
    pub(crate) released: Index,
}

impl GroupLog {
    pub(crate) fn newest_marker_index(&self) -> Index {
        self.newest_marker.as_ref().map_or(Index::ZERO, |m| m.index)
    }

    pub(crate) fn tip(&self) -> LogTip {
        LogTip {
            last_index: self.last_index,
            commit: self.hard_state.commit,
            snapshot: self.newest_marker_index(),
        }
    }
}

/// A segment on disk and the groups that still may need it.
#[derive(Debug)]
pub(crate) struct SharedSegment {
    pub(crate) file: SegmentFile,
    /// The highest entry index each group wrote to this segment (dropped
    /// groups removed).
    pub(crate) holds: BTreeMap<GroupId, Index>,
}

impl SharedSegment {
    /// The first group (by id) that still needs an entry of this segment,
    /// and through which index.
    pub(crate) fn holder(&self, groups: &BTreeMap<GroupId, GroupLog>) -> Option<(GroupId, Index)> {
        self.holds.iter().find_map(|(&g, &held)| {
            let released = groups.get(&g).map_or(Index(u64::MAX), |l| l.released);
            (held > released).then_some((g, held))
        })
    }
}

/// The writer's state, under the lock of the group commit.
#[derive(Debug)]
pub(crate) struct SharedState {
    pub(crate) sync: SyncState,
    /// Oldest first; the last is the current one.
    ///
    /// Invariant: never empty.
    pub(crate) segments: Vec<SharedSegment>,
    pub(crate) fill: SegmentFill,
    pub(crate) groups: BTreeMap<GroupId, GroupLog>,
    pub(crate) stats: WalStats,
}

impl Synced for SharedState {
    fn sync(&mut self) -> &mut SyncState {
        &mut self.sync
    }
}

impl SharedState {
    pub(crate) fn current_id(&self) -> u64 {
        self.segments
            .last()
            .expect("a shared WAL always has a current segment")
            .file
            .id
    }

    /// Notes that `group` wrote entries up to `last` to the current segment.
    pub(crate) fn hold(&mut self, group: GroupId, last: Index) {
        let current = self.segments.last_mut().expect("never empty");
        let held = current.holds.entry(group).or_default();
        *held = (*held).max(last);
    }

    /// The counters, the sync state's fsyncs included.
    pub(crate) fn stats(&self) -> WalStats {
        WalStats {
            fsyncs: self.stats.fsyncs + self.sync.fsyncs(),
            ..self.stats
        }
    }
}
