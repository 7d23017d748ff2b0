//! Read-only inspection for tools (the `raft-wal` command): what recovery
//! would do, without doing it ([`verify`]), and every frame of every
//! segment, with where and why decoding stops ([`dump`]).

use std::io::{self, Write};
use std::path::Path;

use bytes::Bytes;
use raft_core::{HardState, Index, LogId};
use raft_io::Backend;

use crate::error::OpenError;
use crate::format::{self, DamageKind, Record};
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
    let mut replayed = recovery::scan::Replayed::new();
    let scanned =
        recovery::scan::scan_dir(backend, dir, max_record_bytes, copy.as_ref(), &mut replayed)?;
    let r = &replayed;
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

/// What [`dump`] prints.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DumpOptions {
    /// Only this segment; `None`: every segment.
    pub segment: Option<u64>,
    /// Print each entry's data too (lossily as UTF-8).
    pub data: bool,
    /// The largest frame payload to accept, as
    /// [`crate::WalOptions::max_record_bytes`].
    pub max_record_bytes: u32,
}

impl Default for DumpOptions {
    fn default() -> Self {
        DumpOptions {
            segment: None,
            data: false,
            max_record_bytes: crate::DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

/// Prints every frame of every segment of `dir` (or of the one
/// `options.segment` names) to `out`, and where and why decoding stops:
/// the end of the file, zeroed space, or damage, with whether a later
/// commit frame proves the damaged bytes had been synced. Changes nothing.
///
/// # Errors
/// An I/O error listing or reading the directory, or writing to `out`.
pub fn dump(
    backend: &dyn Backend,
    dir: &Path,
    options: &DumpOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut names = backend.list_dir(dir)?;
    names.retain(|n| format::parse_segment_file_name(n).is_some());
    for name in names {
        let (id, _) = format::parse_segment_file_name(&name).expect("filtered above");
        if options.segment.is_some_and(|s| s != id) {
            continue;
        }
        let bytes = Bytes::from(backend.read(&dir.join(&name))?);
        writeln!(
            out,
            "== {} ({} bytes)",
            dir.join(&name).display(),
            bytes.len()
        )?;
        dump_segment(out, &bytes, id, options)?;
    }
    Ok(())
}

fn dump_segment(
    out: &mut dyn Write,
    bytes: &Bytes,
    id: u64,
    options: &DumpOptions,
) -> io::Result<()> {
    match format::decode_segment_header(bytes) {
        Ok(h) => writeln!(
            out,
            "header: segment {} first index {}",
            h.segment_id, h.first_index
        )?,
        Err(e) => return writeln!(out, "header: {e}"),
    }
    let mut at = format::SEGMENT_HEADER_BYTES;
    while at < bytes.len() {
        match format::decode_frame(bytes, id, at, options.max_record_bytes) {
            Ok((record, next)) => {
                write!(out, "{at:>10} ")?;
                describe(out, &record, options.data)?;
                at = next;
            }
            Err(DamageKind::Hole | DamageKind::Truncated)
                if bytes[at..].iter().all(|&b| b == 0) =>
            {
                return writeln!(out, "{at:>10} end: {} zero bytes follow", bytes.len() - at);
            }
            Err(kind) => return describe_damage(out, bytes, id, at, kind),
        }
    }
    writeln!(out, "{at:>10} end of file")
}

/// Damage at `at`, and whether a later commit frame proves it corruption.
fn describe_damage(
    out: &mut dyn Write,
    bytes: &Bytes,
    id: u64,
    at: usize,
    kind: DamageKind,
) -> io::Result<()> {
    writeln!(out, "{at:>10} DAMAGE: {kind}")?;
    match format::later_commit_proves_durable(bytes, id, at, at as u64) {
        Some(p) => writeln!(
            out,
            "           a valid commit frame at {p} records bytes past {at} as synced: corruption"
        ),
        None => writeln!(
            out,
            "           nothing after it proves it was synced: a torn tail if this is the last segment"
        ),
    }
}

fn describe(out: &mut dyn Write, record: &Record, data: bool) -> io::Result<()> {
    match record {
        Record::Entry(e) => {
            write!(
                out,
                "entry     index {} term {} kind {:?} {} bytes",
                e.index,
                e.term,
                e.kind,
                e.data.len()
            )?;
            if data {
                write!(out, " {:?}", String::from_utf8_lossy(&e.data))?;
            }
            writeln!(out)
        }
        Record::HardState(hs) => writeln!(
            out,
            "hardstate term {} vote {:?} commit {}",
            hs.term, hs.vote, hs.commit
        ),
        Record::SnapshotMarker(m) => writeln!(
            out,
            "snapshot  index {} term {} voters {:?} learners {:?}",
            m.index, m.term, m.conf_state.voters, m.conf_state.learners
        ),
        Record::Commit(c) => writeln!(
            out,
            "commit    batch at {} of {} frame(s), synced through {}",
            c.batch_start, c.frame_count, c.synced_through
        ),
        Record::Group(g) => writeln!(out, "group     {g}"),
        Record::DropGroup(g) => writeln!(out, "dropgroup {g}"),
    }
}
