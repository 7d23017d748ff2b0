//! Read-only inspection for tools: what recovery would do, without doing it.

use std::path::Path;

use raft_core::{HardState, Index, LogId};
use raft_io::Backend;

use crate::error::OpenError;
use crate::recovery;

/// What [`verify`] found in a directory it could recover.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The segment ids, oldest first.
    pub segments: Vec<u64>,
    /// The newest hard state.
    pub hard_state: HardState,
    /// The first index the retained log holds (the next index if empty).
    pub first_index: Index,
    /// The last index.
    pub last_index: Index,
    /// The snapshot markers in the retained log.
    pub snapshot_markers: Vec<LogId>,
    /// A torn tail that opening would truncate: (segment, damage offset,
    /// truncation offset).
    pub torn_tail: Option<(u64, u64, u64)>,
    /// Leftover temporary files opening would delete.
    pub temp_files: usize,
    /// A copy of an interrupted tail rewrite that opening would finish
    /// first: (segment, offset, length). The rest of the report reads the
    /// segment as if it were finished.
    pub tail_copy: Option<(u64, u64, u64)>,
}

/// Runs recovery's checks on `dir` without changing anything or taking the
/// lock.
///
/// # Errors
/// The [`OpenError`] that [`crate::Wal::open`] would return.
pub fn verify(
    backend: &dyn Backend,
    dir: &Path,
    max_record_bytes: u32,
) -> Result<VerifyReport, OpenError> {
    let copy = recovery::read_leftover(backend, dir)?.map(|(copy, _)| copy);
    let scanned = recovery::scan::scan_dir(backend, dir, max_record_bytes, copy.as_ref())?;
    let r = &scanned.replayed;
    Ok(VerifyReport {
        segments: scanned.segments.iter().map(|s| s.id).collect(),
        hard_state: r.hard_state,
        first_index: r.base,
        last_index: r.last_index(),
        snapshot_markers: r
            .markers
            .iter()
            .map(crate::SnapshotMarker::log_id)
            .collect(),
        torn_tail: scanned
            .tail_repair
            .as_ref()
            .map(|t| (t.segment, t.damage_offset, t.good_end)),
        temp_files: scanned.temp_files.len(),
        tail_copy: copy.map(|c| (c.segment_id, c.offset, c.data.len() as u64)),
    })
}
