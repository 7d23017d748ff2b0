//! Reading a WAL directory back: scan every segment, replay the batches,
//! and decide what the damage found means. Nothing here writes; the parent
//! module applies the repair this one plans.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use raft_core::{Entry, HardState, Index, LogId};
use raft_io::Backend;

use super::tail_copy::TailCopy;
use crate::error::{OpenError, open_io};
use crate::format::{
    self, DamageKind, Layout, Record, SEGMENT_HEADER_BYTES, SegmentFile, SegmentHeader,
    SnapshotMarker, TEMP_SUFFIX,
};

/// What rebuilds a log from a directory's batches: one group's
/// ([`Replayed`]) or many groups' (the shared log's). The scan checks
/// frames, batches, names and damage the same way for both.
pub(crate) trait Replay {
    /// The layout whose segment headers this replay reads.
    const LAYOUT: Layout;

    /// Called with each segment's (checked) header before its batches;
    /// `first` for the oldest segment on disk.
    ///
    /// # Errors
    /// A refusal when the segment does not continue the log.
    fn start_segment(&mut self, header: SegmentHeader, first: bool) -> Result<(), OpenError>;

    /// Applies one complete batch of segment `segment` (commit frame
    /// stripped).
    ///
    /// # Errors
    /// A refusal when the batch does not fit the log.
    fn apply_batch(&mut self, segment: u64, batch: Vec<Record>) -> Result<(), OpenError>;

    /// Checks that hold once every segment is replayed.
    ///
    /// # Errors
    /// A refusal.
    fn finish(&mut self) -> Result<(), OpenError>;

    /// The last index recovered so far, for error messages.
    fn last_good_index(&self) -> Index;
}

/// A torn tail recovery will cut off the last segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TailRepair {
    pub(crate) segment: u64,
    pub(crate) path: PathBuf,
    /// Where the damage was found.
    pub(crate) damage_offset: u64,
    pub(crate) kind: DamageKind,
    /// The end of the last complete batch: the new end of the log.
    pub(crate) good_end: u64,
    /// One past the last non-zero byte: what must be zeroed from `good_end`.
    pub(crate) dirty_end: u64,
}

/// The log as the batches replay it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Replayed {
    pub(crate) hard_state: HardState,
    pub(crate) markers: Vec<SnapshotMarker>,
    /// The index of `entries[0]` (or where the next entry goes if empty).
    pub(crate) base: Index,
    pub(crate) entries: Vec<Entry>,
}

impl Replayed {
    /// An empty log, which starts at index 1.
    pub(crate) fn new() -> Replayed {
        Replayed {
            base: Index(1),
            ..Replayed::default()
        }
    }

    pub(crate) fn last_index(&self) -> Index {
        Index(self.base.get() + self.entries.len() as u64).prev()
    }

    pub(crate) fn newest_marker(&self) -> Option<&SnapshotMarker> {
        self.markers.last()
    }

    fn newest_marker_index(&self) -> Index {
        self.newest_marker().map_or(Index::ZERO, |m| m.index)
    }

    /// Applies a hard state, marker or entry of this log. Group frames are
    /// the caller's to handle (a one-group log refuses them).
    pub(crate) fn apply(&mut self, segment: u64, record: Record) -> Result<(), OpenError> {
        match record {
            Record::HardState(hs) => self.hard_state = hs,
            Record::SnapshotMarker(m) => self.apply_marker(segment, m)?,
            Record::Entry(e) => self.apply_entry(segment, e)?,
            Record::Group(_) | Record::DropGroup(_) => {
                return Err(OpenError::UnexpectedGroupFrame { segment });
            }
            Record::Commit(_) => unreachable!("scan_segment strips commit frames"),
        }
        Ok(())
    }

    /// Checks that the hard state commits nothing the log lacks.
    pub(crate) fn check_commit(&self) -> Result<(), OpenError> {
        let last_index = self.last_index();
        if self.hard_state.commit > last_index {
            return Err(OpenError::CommitBeyondLog {
                commit: self.hard_state.commit,
                last_index,
            });
        }
        Ok(())
    }

    /// A marker past the end of the log restarts the log after it (a
    /// follower installing a leader's snapshot); otherwise the log goes on.
    fn apply_marker(&mut self, segment: u64, m: SnapshotMarker) -> Result<(), OpenError> {
        let newest = self.newest_marker_index();
        if m.index < newest {
            return Err(OpenError::MarkerRegressed {
                segment,
                newest,
                found: m.index,
            });
        }
        if m.index > self.last_index() {
            self.entries.clear();
            self.base = m.index.next();
        }
        self.markers.push(m);
        Ok(())
    }

    /// A segment's first index is where the log continues: the last index
    /// plus one, or lower when the segment was started by a suffix
    /// replacement, which then takes effect. Below the retained base it
    /// means segments before it were released.
    fn start_segment(&mut self, segment: u64, first: Index) -> Result<(), OpenError> {
        let expected = self.last_index().next();
        if first > expected {
            return Err(OpenError::IndexGap {
                segment,
                expected,
                found: first,
            });
        }
        let snapshot = self.newest_marker_index();
        if first <= snapshot {
            return Err(OpenError::RewritesSnapshot {
                segment,
                index: first,
                snapshot,
            });
        }
        if first < self.base {
            // The replaced prefix lived in released segments: the retained
            // log restarts here (a later snapshot marker covers the rest).
            self.entries.clear();
            self.base = first;
        } else {
            self.entries.truncate((first - self.base) as usize);
        }
        Ok(())
    }

    /// An entry at or below the last index replaces the suffix from it.
    fn apply_entry(&mut self, segment: u64, e: Entry) -> Result<(), OpenError> {
        let expected = self.last_index().next();
        if e.index > expected || e.index < self.base {
            return Err(OpenError::IndexGap {
                segment,
                expected,
                found: e.index,
            });
        }
        let snapshot = self.newest_marker_index();
        if e.index <= snapshot {
            return Err(OpenError::RewritesSnapshot {
                segment,
                index: e.index,
                snapshot,
            });
        }
        self.entries.truncate((e.index - self.base) as usize);
        self.entries.push(e);
        Ok(())
    }
}

impl Replay for Replayed {
    const LAYOUT: Layout = Layout::Single;

    /// The first segment's first index is the log's base; a later one's is
    /// where the log continues.
    fn start_segment(&mut self, header: SegmentHeader, first: bool) -> Result<(), OpenError> {
        if first {
            self.base = header.first_index;
            Ok(())
        } else {
            Replayed::start_segment(self, header.segment_id, header.first_index)
        }
    }

    fn apply_batch(&mut self, segment: u64, batch: Vec<Record>) -> Result<(), OpenError> {
        batch.into_iter().try_for_each(|r| self.apply(segment, r))
    }

    fn finish(&mut self) -> Result<(), OpenError> {
        self.check_commit()
    }

    fn last_good_index(&self) -> Index {
        self.last_index()
    }
}

/// Everything a scan of the directory found (the log itself is in the
/// [`Replay`] the scan fed).
#[derive(Debug, Default)]
pub(crate) struct Scanned {
    pub(crate) segments: Vec<SegmentFile>,
    pub(crate) temp_files: Vec<PathBuf>,
    pub(crate) tail_repair: Option<TailRepair>,
    /// Where writing continues in the last segment.
    pub(crate) write_offset: u64,
    /// In the last segment, the offset up to which its last batch found
    /// the segment durable: the bytes from here to `write_offset` may exist
    /// only in the page cache (a write whose fsync never ran, or failed).
    pub(crate) tail_synced_through: u64,
}

/// The frames of one segment, grouped into complete batches.
#[derive(Debug)]
pub(crate) struct SegmentScan {
    pub(crate) batches: Vec<Vec<Record>>,
    /// The end of the last complete batch.
    pub(crate) good_end: usize,
    /// The first damage after `good_end`, if any.
    pub(crate) damage: Option<(usize, DamageKind)>,
    /// The last complete batch's synced-through offset (the header's end
    /// if there is no batch).
    pub(crate) synced_through: usize,
}

/// Splits a segment's frames into batches, stopping at the first damage.
/// Commit frames are checked and dropped.
pub(crate) fn scan_segment(bytes: &Bytes, segment_id: u64, max_record_bytes: u32) -> SegmentScan {
    let mut pos = SEGMENT_HEADER_BYTES;
    let mut batch_start = pos;
    let mut current = Vec::new();
    let mut batches = Vec::new();
    let mut synced_through = SEGMENT_HEADER_BYTES;
    let incomplete = |current: &Vec<Record>, batch_start| {
        (!current.is_empty()).then_some((batch_start, DamageKind::IncompleteBatch))
    };
    let damage = loop {
        if pos >= bytes.len() {
            break incomplete(&current, batch_start);
        }
        match format::decode_frame(bytes, segment_id, pos, max_record_bytes) {
            Ok((Record::Commit(c), next)) => {
                let closes_batch = c.batch_start == batch_start as u64
                    && c.frame_count as usize == current.len()
                    && c.synced_through <= batch_start as u64;
                if !closes_batch {
                    break Some((pos, DamageKind::BadCommit));
                }
                batches.push(std::mem::take(&mut current));
                // Checked above: at most the batch's own start.
                synced_through = c.synced_through as usize;
                batch_start = next;
                pos = next;
            }
            Ok((record, next)) => {
                current.push(record);
                pos = next;
            }
            Err(kind @ (DamageKind::Hole | DamageKind::Truncated)) => {
                if bytes[pos..].iter().all(|&b| b == 0) {
                    // Preallocated or never-written space: the clean end.
                    break incomplete(&current, batch_start);
                }
                break Some((pos, kind));
            }
            Err(kind) => break Some((pos, kind)),
        }
    };
    SegmentScan {
        batches,
        good_end: batch_start,
        damage,
        synced_through,
    }
}

/// Lists the directory: segment files sorted by id (checked for duplicates
/// and gaps) and leftover temporary files.
pub(crate) fn list_segments(
    backend: &dyn Backend,
    dir: &Path,
) -> Result<(Vec<SegmentFile>, Vec<PathBuf>), OpenError> {
    let names = backend.list_dir(dir).map_err(open_io(dir))?;
    let mut segments = Vec::new();
    let mut temps = Vec::new();
    for name in names {
        if name.ends_with(TEMP_SUFFIX) {
            temps.push(dir.join(&name));
        } else if let Some((id, first_index)) = format::parse_segment_file_name(&name) {
            segments.push(SegmentFile {
                id,
                first_index,
                path: dir.join(&name),
            });
        }
    }
    segments.sort_by_key(|s| s.id);
    for pair in segments.windows(2) {
        let (a, b) = (pair[0].id, pair[1].id);
        if a == b {
            return Err(OpenError::DuplicateSegment { segment: a });
        }
        if b != a + 1 {
            return Err(OpenError::MissingSegment {
                missing: a + 1,
                before: a,
                after: b,
            });
        }
    }
    Ok((segments, temps))
}

/// A segment's bytes, with `overlay` written in if it is this segment's.
fn read_segment(
    backend: &dyn Backend,
    seg: &SegmentFile,
    overlay: Option<&TailCopy>,
) -> Result<Bytes, OpenError> {
    let mut bytes = backend.read(&seg.path).map_err(open_io(&seg.path))?;
    if let Some(copy) = overlay.filter(|c| c.segment_id == seg.id) {
        copy.apply_to(&mut bytes);
    }
    Ok(Bytes::from(bytes))
}

/// Reads and checks the whole directory without changing it.
///
/// `overlay`, a leftover tail-rewrite copy, is read as if already written
/// into its segment: what `open` does before scanning.
pub(crate) fn scan_dir<R: Replay>(
    backend: &dyn Backend,
    dir: &Path,
    max_record_bytes: u32,
    overlay: Option<&TailCopy>,
    replayed: &mut R,
) -> Result<Scanned, OpenError> {
    let (segments, temp_files) = list_segments(backend, dir)?;
    let mut tail_repair = None;
    let mut write_offset = SEGMENT_HEADER_BYTES as u64;
    let mut tail_synced_through = SEGMENT_HEADER_BYTES as u64;
    for (i, seg) in segments.iter().enumerate() {
        let bytes = read_segment(backend, seg, overlay)?;
        let scan = replay_segment(replayed, seg, &bytes, i == 0, max_record_bytes)?;
        write_offset = scan.good_end as u64;
        tail_synced_through = scan.synced_through as u64;
        let is_last = i + 1 == segments.len();
        tail_repair = plan_tail_repair(seg, &bytes, &scan, is_last, replayed)?;
    }
    replayed.finish()?;
    Ok(Scanned {
        segments,
        temp_files,
        tail_repair,
        write_offset,
        tail_synced_through,
    })
}

/// The refusal for damage at `offset` of `seg`.
fn corrupt<R: Replay>(
    seg: &SegmentFile,
    offset: usize,
    kind: DamageKind,
    replayed: &R,
) -> OpenError {
    OpenError::Corrupt {
        segment: seg.id,
        offset: offset as u64,
        last_good_index: replayed.last_good_index(),
        kind,
    }
}

/// Checks a segment's header against its name and layout, hands it to the
/// replay and replays its complete batches. Returns the scan, batches
/// consumed.
fn replay_segment<R: Replay>(
    replayed: &mut R,
    seg: &SegmentFile,
    bytes: &Bytes,
    first: bool,
    max_record_bytes: u32,
) -> Result<SegmentScan, OpenError> {
    let header = format::decode_segment_header_for(R::LAYOUT, bytes).map_err(|k| {
        if format::decode_segment_header_for(R::LAYOUT.other(), bytes).is_ok() {
            OpenError::WrongLayout {
                path: seg.path.clone(),
                found: R::LAYOUT.other(),
            }
        } else {
            corrupt(seg, 0, k, replayed)
        }
    })?;
    if header.segment_id != seg.id || header.first_index != seg.first_index {
        return Err(OpenError::MisnamedSegment {
            path: seg.path.clone(),
        });
    }
    replayed.start_segment(header, first)?;
    let mut scan = scan_segment(bytes, seg.id, max_record_bytes);
    for batch in std::mem::take(&mut scan.batches) {
        replayed.apply_batch(seg.id, batch)?;
    }
    Ok(scan)
}

/// What the damage a scan found means: nothing without damage; a torn tail
/// to cut in the last segment when nothing after the damage proves it was
/// synced; otherwise a refusal.
fn plan_tail_repair<R: Replay>(
    seg: &SegmentFile,
    bytes: &Bytes,
    scan: &SegmentScan,
    is_last: bool,
    replayed: &R,
) -> Result<Option<TailRepair>, OpenError> {
    let Some((offset, kind)) = scan.damage else {
        return Ok(None);
    };
    let proven = format::later_commit_proves_durable(bytes, seg.id, offset, scan.good_end as u64);
    if !is_last || proven.is_some() {
        return Err(corrupt(seg, offset, kind, replayed));
    }
    let dirty_end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    Ok(Some(TailRepair {
        segment: seg.id,
        path: seg.path.clone(),
        damage_offset: offset as u64,
        kind,
        good_end: scan.good_end as u64,
        dirty_end: dirty_end.max(scan.good_end) as u64,
    }))
}

/// Checks that the log continues from the caller's snapshot and returns the
/// matching marker and the entries after it.
pub(crate) fn entries_after(
    replayed: &mut Replayed,
    requested: Option<LogId>,
) -> Result<(Option<SnapshotMarker>, Vec<Entry>), OpenError> {
    let requested = requested.filter(|s| *s != LogId::ZERO);
    let marker = match requested {
        None => None,
        Some(s) => replayed
            .markers
            .iter()
            .rev()
            .find(|m| m.log_id() == s)
            .cloned(),
    };
    let start = marker.as_ref().map_or(Index::ZERO, |m| m.index);
    let continues = requested.is_none() || marker.is_some();
    if !continues || start.next() < replayed.base {
        return Err(OpenError::SnapshotMismatch {
            requested,
            available: replayed
                .markers
                .iter()
                .map(SnapshotMarker::log_id)
                .collect(),
            log_start: replayed.base,
        });
    }
    let skip = ((start.next() - replayed.base) as usize).min(replayed.entries.len());
    let entries = replayed.entries.split_off(skip);
    Ok((marker, entries))
}
