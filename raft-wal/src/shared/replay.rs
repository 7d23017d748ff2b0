//! Reading a shared log back: each group's log rebuilt from the batches
//! of every segment, and which groups hold entries in which segment.

use std::collections::BTreeMap;
use std::path::PathBuf;

use raft_core::{Entry, GroupId, HardState, Index, LogId};

use crate::error::OpenError;
use crate::format::{Layout, Record, SegmentHeader, SnapshotMarker};
use crate::recovery::TailTruncation;
use crate::recovery::scan::{self, Replay, Replayed};

/// What [`crate::SharedWal::open`] read: every group's log.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SharedRecovered {
    /// The groups with a log in the WAL, by id (dropped groups are gone).
    pub groups: BTreeMap<GroupId, GroupRecovered>,
    /// The torn tail recovery truncated, if any.
    pub truncated_tail: Option<TailTruncation>,
    /// Leftover temporary files recovery deleted.
    pub removed_temp_files: Vec<PathBuf>,
}

/// One group's log as a shared WAL recovered it. The caller picks the
/// snapshot it restored with [`GroupRecovered::entries_after`].
#[derive(Debug, Clone)]
pub struct GroupRecovered {
    log: Replayed,
}

impl GroupRecovered {
    /// The newest hard state (the default if none was saved).
    pub fn hard_state(&self) -> HardState {
        self.log.hard_state
    }

    /// The positions of the snapshot markers in the retained log, oldest
    /// first.
    pub fn snapshot_markers(&self) -> Vec<LogId> {
        self.log
            .markers
            .iter()
            .map(SnapshotMarker::log_id)
            .collect()
    }

    /// The newest snapshot marker.
    pub fn newest_marker(&self) -> Option<&SnapshotMarker> {
        self.log.newest_marker()
    }

    /// The first index the retained log holds entries from.
    pub fn first_index(&self) -> Index {
        self.log.base
    }

    /// The last index (or the newest marker's, if later).
    pub fn last_index(&self) -> Index {
        self.log.last_index()
    }

    /// The marker of `snapshot` (the one the caller restored; `None`: no
    /// snapshot, the log must start at index 1) and the entries after it,
    /// taken out of `self`. After a refusal `self` is unchanged, so the
    /// caller may try an older snapshot.
    ///
    /// # Errors
    /// [`OpenError::SnapshotMismatch`] when no marker matches or the log
    /// does not continue from it.
    pub fn entries_after(
        &mut self,
        snapshot: Option<LogId>,
    ) -> Result<(Option<SnapshotMarker>, Vec<Entry>), OpenError> {
        scan::entries_after(&mut self.log, snapshot)
    }
}

/// One group's log being replayed.
#[derive(Debug)]
struct GroupReplay {
    log: Replayed,
    /// The segment where the log last restarted after a gap, if it did.
    restarted_in: Option<u64>,
}

/// The shared log's [`Replay`]: batches are split by their group frames.
#[derive(Debug, Default)]
pub(crate) struct SharedReplay {
    groups: BTreeMap<GroupId, GroupReplay>,
    /// The group of the current batch's frames.
    current: Option<GroupId>,
    /// Per segment, oldest first: the highest entry index each group wrote
    /// to it.
    pub(crate) holds: Vec<BTreeMap<GroupId, Index>>,
}

impl SharedReplay {
    /// The groups' recovered logs, and the holds per segment.
    pub(crate) fn into_parts(
        self,
    ) -> (
        BTreeMap<GroupId, GroupRecovered>,
        Vec<BTreeMap<GroupId, Index>>,
    ) {
        let groups = self
            .groups
            .into_iter()
            .map(|(g, r)| (g, GroupRecovered { log: r.log }))
            .collect();
        (groups, self.holds)
    }

    fn apply(&mut self, segment: u64, record: Record) -> Result<(), OpenError> {
        let group = match record {
            Record::Group(g) => {
                self.current = Some(g);
                return Ok(());
            }
            Record::DropGroup(g) => {
                self.groups.remove(&g);
                for holds in &mut self.holds {
                    holds.remove(&g);
                }
                return Ok(());
            }
            _ => self.current.ok_or(OpenError::UngroupedFrame { segment })?,
        };
        let replay = self.groups.entry(group).or_insert_with(|| GroupReplay {
            log: Replayed::new(),
            restarted_in: None,
        });
        if let Record::Entry(e) = &record {
            let log = &mut replay.log;
            // Segments released before this one held the entries below:
            // the group's log restarts here, and `finish` checks that a
            // snapshot marker covers the gap.
            let gap = e.index > log.last_index().next() || e.index < log.base;
            if gap && e.index > newest_marker_index(log) {
                log.entries.clear();
                log.base = e.index;
                replay.restarted_in = Some(segment);
            }
            let holds = self.holds.last_mut().expect("start_segment ran first");
            let held = holds.entry(group).or_default();
            *held = (*held).max(e.index);
        }
        replay
            .log
            .apply(segment, record)
            .map_err(|source| in_group(group, source))
    }
}

fn newest_marker_index(log: &Replayed) -> Index {
    log.newest_marker().map_or(Index::ZERO, |m| m.index)
}

fn in_group(group: GroupId, source: OpenError) -> OpenError {
    OpenError::InGroup {
        group,
        source: Box::new(source),
    }
}

impl Replay for SharedReplay {
    const LAYOUT: Layout = Layout::Shared;

    fn start_segment(&mut self, _header: SegmentHeader, _first: bool) -> Result<(), OpenError> {
        self.holds.push(BTreeMap::new());
        Ok(())
    }

    fn apply_batch(&mut self, segment: u64, batch: Vec<Record>) -> Result<(), OpenError> {
        self.current = None;
        batch.into_iter().try_for_each(|r| self.apply(segment, r))
    }

    /// Every group's log continues from its newest marker (from index 1
    /// without one) and commits nothing it lacks.
    fn finish(&mut self) -> Result<(), OpenError> {
        for (&group, replay) in &self.groups {
            let log = &replay.log;
            let expected = newest_marker_index(log).next();
            if log.base > expected {
                let gap = OpenError::IndexGap {
                    segment: replay.restarted_in.unwrap_or_default(),
                    expected,
                    found: log.base,
                };
                return Err(in_group(group, gap));
            }
            log.check_commit().map_err(|e| in_group(group, e))?;
        }
        Ok(())
    }

    fn last_good_index(&self) -> Index {
        // No one index describes many logs; errors name the segment.
        Index::ZERO
    }
}
