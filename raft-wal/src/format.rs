//! The on-disk format: segment headers, frames and their payloads.
//!
//! Everything is little-endian. The crate documentation has the byte layout;
//! the field constants below are its single source of truth: each offset is
//! derived from the field before it ([`Field::then`]), and compile-time
//! checks tie the sizes to the documented tables.
//!
//! Decoding never panics on any input: every malformation is a
//! [`DamageKind`].
//!
//! Public only with the `testing` feature (for tests and fuzzing); a normal
//! build keeps it internal, where its `pub` items are reachable only
//! through the re-exports at the crate root.
#![cfg_attr(not(feature = "testing"), allow(unreachable_pub))]

use std::path::PathBuf;

use bytes::Bytes;
use raft_core::{ConfState, Entry, EntryKind, GroupId, HardState, Index, LogId, NodeId, Term};
use raft_io::codec::{self, CodecError, Field, Reader, Writer};

/// The first 8 bytes of every segment, modelled on PNG's: a non-ASCII byte,
/// the name, and a CR-LF / Ctrl-Z sequence that text-mode transfers mangle.
pub const SEGMENT_MAGIC: [u8; 8] = *b"\x89RWAL\r\n\x1a";
/// The format version of a one-group log ([`crate::Wal`]).
pub const FORMAT_VERSION: u32 = 1;
/// The format version of a log shared by many groups
/// ([`crate::SharedWal`]): the same frames plus group frames. A one-group
/// reader refuses its segments at the header, so it never mistakes group
/// frames for a torn tail.
pub const SHARED_FORMAT_VERSION: u32 = 2;

/// Which of the two logs a segment belongs to, by its header's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// One group's log, format version 1.
    Single,
    /// Many groups' log, format version 2.
    Shared,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Single => "a one-group log (raft_wal::Wal)",
            Layout::Shared => "a log shared by many groups (raft_wal::SharedWal)",
        })
    }
}

impl Layout {
    /// The header version this layout writes.
    pub const fn version(self) -> u32 {
        match self {
            Layout::Single => FORMAT_VERSION,
            Layout::Shared => SHARED_FORMAT_VERSION,
        }
    }

    /// The other layout.
    pub const fn other(self) -> Layout {
        match self {
            Layout::Single => Layout::Shared,
            Layout::Shared => Layout::Single,
        }
    }
}

// The segment header, field by field (the crate docs' first table).
const HEADER_MAGIC: Field = Field::first(SEGMENT_MAGIC.len());
const HEADER_VERSION: Field = HEADER_MAGIC.then(size_of::<u32>());
const HEADER_RESERVED_1: Field = HEADER_VERSION.then(size_of::<u32>());
const HEADER_SEGMENT_ID: Field = HEADER_RESERVED_1.then(size_of::<u64>());
const HEADER_FIRST_INDEX: Field = HEADER_SEGMENT_ID.then(size_of::<u64>());
/// The header's CRC covers every byte before it.
const HEADER_CRC: Field = HEADER_FIRST_INDEX.then(size_of::<u32>());
const HEADER_RESERVED_2: Field = HEADER_CRC.then(size_of::<u32>());
/// The length of the segment header; frames start right after it.
pub const SEGMENT_HEADER_BYTES: usize = HEADER_RESERVED_2.end();

// The frame header (the crate docs' second table).
const FRAME_LEN: Field = Field::first(size_of::<u32>());
const FRAME_TYPE: Field = FRAME_LEN.then(size_of::<u8>());
const FRAME_RESERVED_1: Field = FRAME_TYPE.then(3);
/// The frame CRC covers the header bytes before it (and the payload).
const FRAME_CRC: Field = FRAME_RESERVED_1.then(size_of::<u32>());
const FRAME_RESERVED_2: Field = FRAME_CRC.then(size_of::<u32>());
/// The length of a frame header.
pub const FRAME_HEADER_BYTES: usize = FRAME_RESERVED_2.end();
/// Frames start at multiples of this, so no frame header spans two sectors.
pub const FRAME_ALIGN_BYTES: usize = 8;
/// The default and the largest allowed [`crate::WalOptions::max_record_bytes`].
pub const MAX_RECORD_BYTES_LIMIT: u32 = 1 << 30;

// The fixed part of an entry payload; the entry's data follows it.
const ENTRY_INDEX: Field = Field::first(size_of::<u64>());
const ENTRY_TERM: Field = ENTRY_INDEX.then(size_of::<u64>());
const ENTRY_KIND: Field = ENTRY_TERM.then(size_of::<u8>());
const ENTRY_RESERVED: Field = ENTRY_KIND.then(7);
const ENTRY_FIXED_BYTES: usize = ENTRY_RESERVED.end();
// A commit payload.
const COMMIT_BATCH_START: Field = Field::first(size_of::<u64>());
const COMMIT_SYNCED_THROUGH: Field = COMMIT_BATCH_START.then(size_of::<u64>());
const COMMIT_FRAME_COUNT: Field = COMMIT_SYNCED_THROUGH.then(size_of::<u32>());
const COMMIT_RESERVED: Field = COMMIT_FRAME_COUNT.then(size_of::<u32>());
/// The payload length of a [`FrameType::Commit`] frame.
pub const COMMIT_BYTES: usize = COMMIT_RESERVED.end();

// The sizes the crate docs' tables give.
const _: () = assert!(SEGMENT_HEADER_BYTES == 40);
const _: () = assert!(HEADER_CRC.offset() == 32);
const _: () = assert!(FRAME_HEADER_BYTES == 16);
const _: () = assert!(FRAME_CRC.offset() == 8);
const _: () = assert!(ENTRY_FIXED_BYTES == 24);
const _: () = assert!(COMMIT_BYTES == 24);
// Alignment: headers and fixed parts keep what follows them aligned.
const _: () = assert!(SEGMENT_HEADER_BYTES.is_multiple_of(FRAME_ALIGN_BYTES));
const _: () = assert!(FRAME_HEADER_BYTES.is_multiple_of(FRAME_ALIGN_BYTES));
const _: () = assert!(ENTRY_FIXED_BYTES.is_multiple_of(FRAME_ALIGN_BYTES));
const _: () = assert!(COMMIT_BYTES.is_multiple_of(FRAME_ALIGN_BYTES));
const _: () = assert!(codec::CONF_STATE_FIXED_BYTES.is_multiple_of(FRAME_ALIGN_BYTES));

/// What a frame holds. Zero is deliberately not a type: never-written,
/// zeroed space can never decode as a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// A log entry.
    Entry = 1,
    /// A [`HardState`].
    HardState = 2,
    /// A [`SnapshotMarker`].
    SnapshotMarker = 3,
    /// The end of a batch: what makes the frames before it count.
    Commit = 4,
    /// Shared logs only: the group the frames after it (up to the next
    /// group frame or the batch's end) belong to.
    Group = 5,
    /// Shared logs only: the group was dropped; its state so far is gone.
    DropGroup = 6,
}

impl FrameType {
    fn from_byte(b: u8) -> Option<FrameType> {
        match b {
            1 => Some(FrameType::Entry),
            2 => Some(FrameType::HardState),
            3 => Some(FrameType::SnapshotMarker),
            4 => Some(FrameType::Commit),
            5 => Some(FrameType::Group),
            6 => Some(FrameType::DropGroup),
            _ => None,
        }
    }
}

/// Where a snapshot ends and what membership it holds, recorded in the log so
/// recovery knows where the log restarts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotMarker {
    /// The last index the snapshot covers.
    pub index: Index,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The membership as of `index`.
    pub conf_state: ConfState,
}

impl SnapshotMarker {
    /// The position of the last entry the snapshot covers.
    pub fn log_id(&self) -> LogId {
        LogId::new(self.term, self.index)
    }
}

/// The trailer of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// The offset of the batch's first frame.
    pub batch_start: u64,
    /// The offset up to which this segment was known durable (fsynced) when
    /// the batch was written. Recovery uses it to tell a torn, unsynced tail
    /// from corruption of data that had been synced.
    pub synced_through: u64,
    /// The number of frames in the batch, this one excluded.
    pub frame_count: u32,
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Record {
    /// A log entry.
    Entry(Entry),
    /// A hard state.
    HardState(HardState),
    /// A snapshot marker.
    SnapshotMarker(SnapshotMarker),
    /// A batch trailer.
    Commit(Commit),
    /// Shared logs: the group of the frames that follow in the batch.
    Group(GroupId),
    /// Shared logs: a group was dropped.
    DropGroup(GroupId),
}

/// The fields of a segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The segment's id; ids are consecutive and never reused.
    pub segment_id: u64,
    /// The index the log continues at in this segment.
    pub first_index: Index,
}

/// Why bytes failed to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DamageKind {
    /// The segment header is short, has the wrong magic or version, or
    /// fails its CRC.
    #[error("bad segment header")]
    BadHeader,
    /// The frame header is all zeros but non-zero bytes follow.
    #[error("zeroed frame header followed by data")]
    Hole,
    /// The frame header or its payload runs past the end of the file.
    #[error("frame runs past the end of the file")]
    Truncated,
    /// The frame type byte is not a known type.
    #[error("unknown frame type {0}")]
    UnknownType(u8),
    /// The length field is larger than the maximum record size.
    #[error("frame length {0} exceeds the maximum record size")]
    TooLarge(u32),
    /// The CRC does not match.
    #[error("checksum mismatch")]
    Checksum,
    /// The CRC matches but the payload does not decode.
    #[error("malformed payload")]
    BadPayload,
    /// A commit frame that does not close the batch it follows.
    #[error("commit frame does not match its batch")]
    BadCommit,
    /// Frames without the commit frame that ends their batch.
    #[error("batch without its commit frame")]
    IncompleteBatch,
}

/// Rounds `n` up to the frame alignment.
pub const fn align_up(n: usize) -> usize {
    n.div_ceil(FRAME_ALIGN_BYTES) * FRAME_ALIGN_BYTES
}

/// The file name of a segment.
pub fn segment_file_name(segment_id: u64, first_index: Index) -> String {
    format!("{segment_id:016x}-{:016x}.wal", first_index.get())
}

/// A segment file of the directory: what its name says, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentFile {
    pub(crate) id: u64,
    pub(crate) first_index: Index,
    pub(crate) path: PathBuf,
}

/// The suffix of temporary files; recovery deletes them.
pub const TEMP_SUFFIX: &str = ".tmp";

/// Parses a segment file name into `(segment id, first index)`.
pub fn parse_segment_file_name(name: &str) -> Option<(u64, Index)> {
    let stem = name.strip_suffix(".wal")?;
    let (id, first) = stem.split_once('-')?;
    if id.len() != 16 || first.len() != 16 {
        return None;
    }
    let id = u64::from_str_radix(id, 16).ok()?;
    let first = u64::from_str_radix(first, 16).ok()?;
    Some((id, Index(first)))
}

/// Encodes a one-group segment header.
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub fn encode_segment_header(header: SegmentHeader) -> [u8; SEGMENT_HEADER_BYTES] {
    encode_segment_header_for(Layout::Single, header)
}

/// Decodes a one-group segment header from the start of `bytes`.
///
/// # Errors
/// [`DamageKind::BadHeader`] unless the magic, version, CRC and reserved
/// bytes all check.
pub fn decode_segment_header(bytes: &[u8]) -> Result<SegmentHeader, DamageKind> {
    decode_segment_header_for(Layout::Single, bytes)
}

/// Encodes a segment header of `layout`.
pub fn encode_segment_header_for(
    layout: Layout,
    header: SegmentHeader,
) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut b = [0u8; SEGMENT_HEADER_BYTES];
    b[HEADER_MAGIC.range()].copy_from_slice(&SEGMENT_MAGIC);
    HEADER_VERSION.put_u32(&mut b, layout.version());
    HEADER_SEGMENT_ID.put_u64(&mut b, header.segment_id);
    HEADER_FIRST_INDEX.put_u64(&mut b, header.first_index.get());
    let crc = crc32fast::hash(&b[..HEADER_CRC.offset()]);
    HEADER_CRC.put_u32(&mut b, crc);
    b
}

/// Decodes a segment header of `layout` from the start of `bytes`.
///
/// # Errors
/// [`DamageKind::BadHeader`] unless the magic, version (that of `layout`),
/// CRC and reserved bytes all check.
pub fn decode_segment_header_for(
    layout: Layout,
    bytes: &[u8],
) -> Result<SegmentHeader, DamageKind> {
    let b = bytes
        .get(..SEGMENT_HEADER_BYTES)
        .ok_or(DamageKind::BadHeader)?;
    let crc = crc32fast::hash(&b[..HEADER_CRC.offset()]);
    let field = |f: Field| f.get_u32(b);
    let reserved_zero = field(HEADER_RESERVED_1) == Ok(0) && field(HEADER_RESERVED_2) == Ok(0);
    if b[HEADER_MAGIC.range()] != SEGMENT_MAGIC
        || field(HEADER_VERSION) != Ok(layout.version())
        || field(HEADER_CRC) != Ok(crc)
        || !reserved_zero
    {
        return Err(DamageKind::BadHeader);
    }
    let u64_field = |f: Field| f.get_u64(b).map_err(|_| DamageKind::BadHeader);
    Ok(SegmentHeader {
        segment_id: u64_field(HEADER_SEGMENT_ID)?,
        first_index: Index(u64_field(HEADER_FIRST_INDEX)?),
    })
}

/// The CRC of a frame: salted with the segment id, so a frame copied from
/// (or left over by) another segment never verifies, and covering the
/// length and type bytes and the payload.
fn frame_crc(segment_id: u64, head: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&segment_id.to_le_bytes());
    h.update(head);
    h.update(payload);
    h.finalize()
}

/// Appends one frame to `buf`, which must end at an aligned offset.
/// `write_payload` appends the payload; the frame is then padded with zeros.
/// The header is written last, once the payload's length and CRC are known.
fn put_frame(
    buf: &mut Vec<u8>,
    segment_id: u64,
    ty: FrameType,
    write_payload: impl FnOnce(&mut Writer<'_>),
) {
    debug_assert_eq!(buf.len() % FRAME_ALIGN_BYTES, 0);
    let start = buf.len();
    buf.resize(start + FRAME_HEADER_BYTES, 0);
    write_payload(&mut Writer::new(buf));
    let payload_len = buf.len() - start - FRAME_HEADER_BYTES;
    let len = u32::try_from(payload_len).expect("callers bound the payload by max_record_bytes");
    let (head, payload) = buf[start..].split_at_mut(FRAME_HEADER_BYTES);
    FRAME_LEN.put_u32(head, len);
    FRAME_TYPE.put_u8(head, ty as u8);
    let crc = frame_crc(segment_id, &head[..FRAME_CRC.offset()], payload);
    FRAME_CRC.put_u32(head, crc);
    buf.resize(start + FRAME_HEADER_BYTES + align_up(payload_len), 0);
}

/// The on-disk payload length of an entry frame.
pub fn entry_payload_bytes(entry: &Entry) -> usize {
    ENTRY_FIXED_BYTES + entry.data.len()
}

/// The byte an entry kind is stored as, or `None` for kinds this format
/// version cannot store.
fn kind_byte(kind: EntryKind) -> Option<u8> {
    // The wildcard is unreachable while `EntryKind` has three variants but
    // keeps this compiling if raft-core adds one (or marks it non-exhaustive).
    #[allow(unreachable_patterns)]
    match kind {
        EntryKind::Normal => Some(0),
        EntryKind::ConfChange => Some(1),
        EntryKind::ConfChangeV2 => Some(2),
        _ => None,
    }
}

/// True when this format version can store `kind`.
pub fn kind_is_storable(kind: EntryKind) -> bool {
    kind_byte(kind).is_some()
}

/// Appends an entry frame.
///
/// # Panics
/// If the entry kind is not storable (check [`kind_is_storable`] first) or
/// the payload exceeds `u32::MAX` bytes.
pub fn put_entry(buf: &mut Vec<u8>, segment_id: u64, entry: &Entry) {
    let kind = kind_byte(entry.kind).expect("callers check kind_is_storable");
    put_frame(buf, segment_id, FrameType::Entry, |w| {
        w.put_u64(entry.index.get());
        w.put_u64(entry.term.get());
        w.put_u8(kind);
        w.put_zeros(ENTRY_RESERVED.size());
        debug_assert_eq!(w.written(), ENTRY_FIXED_BYTES);
        w.put_bytes(&entry.data);
    });
}

/// Appends a hard-state frame.
pub fn put_hard_state(buf: &mut Vec<u8>, segment_id: u64, hs: &HardState) {
    put_frame(buf, segment_id, FrameType::HardState, |w| {
        w.put_u64(hs.term.get());
        w.put_u64(hs.vote.map_or(0, NodeId::get));
        w.put_u64(hs.commit.get());
    });
}

/// Appends a snapshot-marker frame: index, term, then the membership in
/// raft-io's one `ConfState` layout.
///
/// # Panics
/// If the membership has no canonical encoding: callers check it with
/// [`codec::check_conf_state`] before the marker reaches a frame.
pub fn put_snapshot_marker(buf: &mut Vec<u8>, segment_id: u64, marker: &SnapshotMarker) {
    put_frame(buf, segment_id, FrameType::SnapshotMarker, |w| {
        w.put_u64(marker.index.get());
        w.put_u64(marker.term.get());
        codec::encode_conf_state(&marker.conf_state, w)
            .expect("markers are checked canonical before they are encoded");
    });
}

/// Appends a group frame (shared logs): the frames after it in the batch
/// belong to `group`.
pub fn put_group(buf: &mut Vec<u8>, segment_id: u64, group: GroupId) {
    put_frame(buf, segment_id, FrameType::Group, |w| {
        w.put_u64(group.get())
    });
}

/// Appends a drop-group frame (shared logs).
pub fn put_drop_group(buf: &mut Vec<u8>, segment_id: u64, group: GroupId) {
    put_frame(buf, segment_id, FrameType::DropGroup, |w| {
        w.put_u64(group.get());
    });
}

/// Appends a commit frame.
pub fn put_commit(buf: &mut Vec<u8>, segment_id: u64, commit: Commit) {
    put_frame(buf, segment_id, FrameType::Commit, |w| {
        w.put_u64(commit.batch_start);
        w.put_u64(commit.synced_through);
        w.put_u32(commit.frame_count);
        w.put_zeros(COMMIT_RESERVED.size());
    });
}

/// Decodes the frame at `offset` of a segment's bytes. Returns the record
/// and the offset of the next frame. Entry payloads share `segment`'s
/// buffer (no copy).
///
/// # Errors
/// [`DamageKind`] for anything but a whole, verified frame; an all-zero
/// frame header yields [`DamageKind::Hole`] so callers can tell unwritten
/// space (check that the rest is zero) from damage.
pub fn decode_frame(
    segment: &Bytes,
    segment_id: u64,
    offset: usize,
    max_record_bytes: u32,
) -> Result<(Record, usize), DamageKind> {
    let end_of_header = offset
        .checked_add(FRAME_HEADER_BYTES)
        .ok_or(DamageKind::Truncated)?;
    let head = segment
        .get(offset..end_of_header)
        .ok_or(DamageKind::Truncated)?;
    if head.iter().all(|&b| b == 0) {
        return Err(DamageKind::Hole);
    }
    // `head` is a whole header, so these reads cannot run short.
    let len = FRAME_LEN.get_u32(head).map_err(|_| DamageKind::Truncated)?;
    let ty_byte = FRAME_TYPE.get_u8(head).map_err(|_| DamageKind::Truncated)?;
    let ty = FrameType::from_byte(ty_byte).ok_or(DamageKind::UnknownType(ty_byte))?;
    if len > max_record_bytes {
        return Err(DamageKind::TooLarge(len));
    }
    // Checked against the remaining file length before anything is read.
    let padded = align_up(len as usize);
    if padded > segment.len() - end_of_header {
        return Err(DamageKind::Truncated);
    }
    let payload = &segment[end_of_header..end_of_header + len as usize];
    let stored_crc = FRAME_CRC.get_u32(head).map_err(|_| DamageKind::Truncated)?;
    if frame_crc(segment_id, &head[..FRAME_CRC.offset()], payload) != stored_crc {
        return Err(DamageKind::Checksum);
    }
    let padding = &segment[end_of_header + len as usize..end_of_header + padded];
    let zero = |f: Field| head[f.range()].iter().all(|&b| b == 0);
    if !zero(FRAME_RESERVED_1) || !zero(FRAME_RESERVED_2) || padding.iter().any(|&b| b != 0) {
        return Err(DamageKind::BadPayload);
    }
    let record = decode_payload(ty, segment, end_of_header, len as usize)?;
    Ok((record, end_of_header + padded))
}

/// Decodes a verified payload of type `ty` at `start..start + len` of the
/// segment. Whatever does not decode exactly is [`DamageKind::BadPayload`].
fn decode_payload(
    ty: FrameType,
    segment: &Bytes,
    start: usize,
    len: usize,
) -> Result<Record, DamageKind> {
    let bad = |_: CodecError| DamageKind::BadPayload;
    let mut r = Reader::new(&segment[start..start + len]);
    let record = match ty {
        FrameType::Entry => return decode_entry(&mut r, segment, start).map(Record::Entry),
        FrameType::HardState => Record::HardState(decode_hard_state(&mut r).map_err(bad)?),
        FrameType::SnapshotMarker => Record::SnapshotMarker(decode_marker(&mut r).map_err(bad)?),
        FrameType::Commit => Record::Commit(decode_commit(&mut r).map_err(bad)?),
        FrameType::Group => Record::Group(GroupId(r.get_u64().map_err(bad)?)),
        FrameType::DropGroup => Record::DropGroup(GroupId(r.get_u64().map_err(bad)?)),
    };
    r.finish().map_err(bad)?;
    Ok(record)
}

/// The entry's data is the rest of the payload, shared with `segment`'s
/// buffer (no copy).
fn decode_entry(r: &mut Reader<'_>, segment: &Bytes, start: usize) -> Result<Entry, DamageKind> {
    let bad = |_: CodecError| DamageKind::BadPayload;
    let index = Index(r.get_u64().map_err(bad)?);
    let term = Term(r.get_u64().map_err(bad)?);
    let kind = match r.get_u8().map_err(bad)? {
        0 => EntryKind::Normal,
        1 => EntryKind::ConfChange,
        2 => EntryKind::ConfChangeV2,
        _ => return Err(DamageKind::BadPayload),
    };
    r.reserved(ENTRY_RESERVED.size()).map_err(bad)?;
    debug_assert_eq!(r.position(), ENTRY_FIXED_BYTES);
    let data_start = start + r.position();
    let data_end = data_start + r.remaining();
    Ok(Entry {
        index,
        term,
        kind,
        data: segment.slice(data_start..data_end),
    })
}

fn decode_hard_state(r: &mut Reader<'_>) -> Result<HardState, CodecError> {
    Ok(HardState {
        term: Term(r.get_u64()?),
        vote: NodeId::new(r.get_u64()?),
        commit: Index(r.get_u64()?),
    })
}

fn decode_marker(r: &mut Reader<'_>) -> Result<SnapshotMarker, CodecError> {
    Ok(SnapshotMarker {
        index: Index(r.get_u64()?),
        term: Term(r.get_u64()?),
        conf_state: codec::decode_conf_state(r)?,
    })
}

fn decode_commit(r: &mut Reader<'_>) -> Result<Commit, CodecError> {
    let commit = Commit {
        batch_start: r.get_u64()?,
        synced_through: r.get_u64()?,
        frame_count: r.get_u32()?,
    };
    r.reserved(COMMIT_RESERVED.size())?;
    Ok(commit)
}

/// Finds whether any valid commit frame at an aligned offset after `from`
/// records a durable frontier beyond `frontier`: proof that the bytes at
/// `frontier` had been synced, so damage there is corruption, not a torn
/// write. Scans only commit-shaped headers, so it is linear in the length.
pub fn later_commit_proves_durable(
    segment: &Bytes,
    segment_id: u64,
    from: usize,
    frontier: u64,
) -> Option<usize> {
    let mut at = align_up(from + 1);
    while at + FRAME_HEADER_BYTES + COMMIT_BYTES <= segment.len() {
        let head = &segment[at..at + FRAME_HEADER_BYTES];
        let commit_shaped = FRAME_TYPE.get_u8(head) == Ok(FrameType::Commit as u8)
            && FRAME_LEN.get_u32(head) == Ok(COMMIT_BYTES as u32);
        if commit_shaped
            && let Ok((Record::Commit(c), _)) =
                decode_frame(segment, segment_id, at, COMMIT_BYTES as u32)
            && c.synced_through > frontier
        {
            return Some(at);
        }
        at += FRAME_ALIGN_BYTES;
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn marker() -> SnapshotMarker {
        let n = |v| NodeId::new(v).expect("non-zero");
        SnapshotMarker {
            index: Index(7),
            term: Term(3),
            conf_state: ConfState {
                voters: [n(1), n(2), n(3)].into_iter().collect(),
                learners: [n(4)].into_iter().collect(),
                voters_outgoing: [n(1), n(5)].into_iter().collect(),
                learners_next: BTreeSet::new(),
                auto_leave: true,
                witnesses: [n(5)].into_iter().collect(),
            },
        }
    }

    #[test]
    fn every_record_kind_round_trips() {
        let entry = Entry {
            term: Term(2),
            index: Index(9),
            kind: EntryKind::ConfChangeV2,
            data: Bytes::from_static(b"hello, raft"),
        };
        let hs = HardState {
            term: Term(4),
            vote: NodeId::new(2),
            commit: Index(8),
        };
        let commit = Commit {
            batch_start: 40,
            synced_through: 40,
            frame_count: 3,
        };
        let mut buf = Vec::new();
        put_entry(&mut buf, 5, &entry);
        put_hard_state(&mut buf, 5, &hs);
        put_snapshot_marker(&mut buf, 5, &marker());
        put_group(&mut buf, 5, GroupId(77));
        put_drop_group(&mut buf, 5, GroupId(u64::MAX));
        put_commit(&mut buf, 5, commit);
        let bytes = Bytes::from(buf);
        let mut at = 0;
        let mut got = Vec::new();
        while at < bytes.len() {
            let (r, next) = decode_frame(&bytes, 5, at, 1 << 20).expect("valid frame");
            assert_eq!(next % FRAME_ALIGN_BYTES, 0);
            got.push(r);
            at = next;
        }
        assert_eq!(
            got,
            vec![
                Record::Entry(entry),
                Record::HardState(hs),
                Record::SnapshotMarker(marker()),
                Record::Group(GroupId(77)),
                Record::DropGroup(GroupId(u64::MAX)),
                Record::Commit(commit)
            ]
        );
    }

    #[test]
    fn a_header_of_one_layout_never_decodes_as_the_other() {
        let header = SegmentHeader {
            segment_id: 3,
            first_index: Index(0),
        };
        for layout in [Layout::Single, Layout::Shared] {
            let b = encode_segment_header_for(layout, header);
            assert_eq!(decode_segment_header_for(layout, &b), Ok(header));
            assert_eq!(
                decode_segment_header_for(layout.other(), &b),
                Err(DamageKind::BadHeader)
            );
        }
    }

    #[test]
    fn a_marker_payload_keeps_the_version_1_layout() {
        // raft-io's ConfState layout (flags u32, witness count u32) is,
        // for a membership without witnesses, byte for byte the
        // "auto-leave u8, 7 zero bytes" this format always wrote; the
        // witnesses' count takes the last four of those zeros.
        let mut old = marker();
        old.conf_state.witnesses.clear();
        let mut buf = Vec::new();
        put_snapshot_marker(&mut buf, 5, &old);
        let p = &buf[FRAME_HEADER_BYTES..];
        assert_eq!(p[0..8], 7u64.to_le_bytes(), "index");
        assert_eq!(p[8..16], 3u64.to_le_bytes(), "term");
        assert_eq!(p[16..32], [3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(p[32..40], [1, 0, 0, 0, 0, 0, 0, 0], "auto-leave, zeros");
        assert_eq!(p[40..48], 1u64.to_le_bytes(), "the first voter");
        assert_eq!(p.len(), 40 + 6 * 8, "six ids, no padding needed");
        let mut buf = Vec::new();
        put_snapshot_marker(&mut buf, 5, &marker());
        let p = &buf[FRAME_HEADER_BYTES..];
        assert_eq!(
            p[32..40],
            [1, 0, 0, 0, 1, 0, 0, 0],
            "auto-leave, one witness"
        );
        assert_eq!(p[88..96], 5u64.to_le_bytes(), "the witness, last");
    }

    #[test]
    fn a_marker_with_unsorted_ids_does_not_decode() {
        let mut buf = Vec::new();
        put_snapshot_marker(&mut buf, 5, &marker());
        // Swap the first two voters and fix the CRC: a frame that verifies
        // but is not the canonical encoding.
        let (a, b) = (FRAME_HEADER_BYTES + 40, FRAME_HEADER_BYTES + 48);
        let first: [u8; 8] = buf[a..b].try_into().expect("8 bytes");
        buf.copy_within(b..b + 8, a);
        buf[b..b + 8].copy_from_slice(&first);
        let len = FRAME_LEN.get_u32(&buf).expect("header") as usize;
        let (head, payload) = buf.split_at_mut(FRAME_HEADER_BYTES);
        let crc = frame_crc(5, &head[..FRAME_CRC.offset()], &payload[..len]);
        FRAME_CRC.put_u32(head, crc);
        let bytes = Bytes::from(buf);
        assert_eq!(
            decode_frame(&bytes, 5, 0, 1 << 20),
            Err(DamageKind::BadPayload)
        );
    }

    #[test]
    fn a_frame_never_verifies_under_another_segment_id() {
        let mut buf = Vec::new();
        put_hard_state(&mut buf, 1, &HardState::default());
        let bytes = Bytes::from(buf);
        assert_eq!(
            decode_frame(&bytes, 2, 0, 1 << 20),
            Err(DamageKind::Checksum)
        );
    }

    #[test]
    fn header_round_trips_and_rejects_any_flipped_bit() {
        let h = SegmentHeader {
            segment_id: 12,
            first_index: Index(3456),
        };
        let enc = encode_segment_header(h);
        assert_eq!(decode_segment_header(&enc), Ok(h));
        for bit in 0..SEGMENT_HEADER_BYTES * 8 {
            let mut bad = enc;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                decode_segment_header(&bad),
                Err(DamageKind::BadHeader),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn length_beyond_the_file_is_truncation_not_a_huge_read() {
        let mut buf = Vec::new();
        put_hard_state(&mut buf, 1, &HardState::default());
        buf[0..4].copy_from_slice(&1000u32.to_le_bytes());
        let bytes = Bytes::from(buf);
        assert_eq!(
            decode_frame(&bytes, 1, 0, 1 << 20),
            Err(DamageKind::Truncated)
        );
        assert_eq!(
            decode_frame(&bytes, 1, 0, 100),
            Err(DamageKind::TooLarge(1000))
        );
    }

    #[test]
    fn segment_names_round_trip() {
        let name = segment_file_name(3, Index(77));
        assert_eq!(name, "0000000000000003-000000000000004d.wal");
        assert_eq!(parse_segment_file_name(&name), Some((3, Index(77))));
        assert_eq!(parse_segment_file_name("3-4d.wal"), None);
        assert_eq!(parse_segment_file_name(&format!("{name}.tmp")), None);
    }
}
