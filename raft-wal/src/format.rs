//! The on-disk format: segment headers, frames and their payloads.
//!
//! Everything is little-endian. The crate documentation has the byte layout;
//! the constants below are its single source of truth, and the offsets in the
//! code are derived from them.
//!
//! Decoding never panics on any input: every malformation is a
//! [`DamageKind`].

use std::collections::BTreeSet;

use bytes::Bytes;
use raft_core::{ConfState, Entry, EntryKind, HardState, Index, LogId, NodeId, Term};

/// The first 8 bytes of every segment, modelled on PNG's: a non-ASCII byte,
/// the name, and a CR-LF / Ctrl-Z sequence that text-mode transfers mangle.
pub const SEGMENT_MAGIC: [u8; 8] = *b"\x89RWAL\r\n\x1a";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The length of the segment header; frames start right after it.
pub const SEGMENT_HEADER_BYTES: usize = 40;
/// The bytes of the segment header its CRC covers (everything before it).
const SEGMENT_HEADER_CRC_OFFSET: usize = 32;
/// The length of a frame header.
pub const FRAME_HEADER_BYTES: usize = 16;
/// Frames start at multiples of this, so no frame header spans two sectors.
pub const FRAME_ALIGN_BYTES: usize = 8;
/// The default and the largest allowed [`crate::WalOptions::max_record_bytes`].
pub const MAX_RECORD_BYTES_LIMIT: u32 = 1 << 30;

const ENTRY_FIXED_BYTES: usize = 24;
const HARD_STATE_BYTES: usize = 24;
const MARKER_FIXED_BYTES: usize = 40;
/// The payload length of a [`FrameType::Commit`] frame.
pub const COMMIT_BYTES: usize = 24;

const _: () = assert!(SEGMENT_HEADER_BYTES.is_multiple_of(FRAME_ALIGN_BYTES));
const _: () = assert!(FRAME_HEADER_BYTES.is_multiple_of(FRAME_ALIGN_BYTES));
const _: () = assert!(ENTRY_FIXED_BYTES.is_multiple_of(FRAME_ALIGN_BYTES));
const _: () = assert!(COMMIT_BYTES.is_multiple_of(FRAME_ALIGN_BYTES));
const _: () = assert!(SEGMENT_HEADER_CRC_OFFSET + 4 <= SEGMENT_HEADER_BYTES);

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
}

impl FrameType {
    fn from_byte(b: u8) -> Option<FrameType> {
        match b {
            1 => Some(FrameType::Entry),
            2 => Some(FrameType::HardState),
            3 => Some(FrameType::SnapshotMarker),
            4 => Some(FrameType::Commit),
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

/// Encodes a segment header.
pub fn encode_segment_header(header: SegmentHeader) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut b = [0u8; SEGMENT_HEADER_BYTES];
    b[0..8].copy_from_slice(&SEGMENT_MAGIC);
    b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    b[16..24].copy_from_slice(&header.segment_id.to_le_bytes());
    b[24..32].copy_from_slice(&header.first_index.get().to_le_bytes());
    let crc = crc32fast::hash(&b[..SEGMENT_HEADER_CRC_OFFSET]);
    b[SEGMENT_HEADER_CRC_OFFSET..SEGMENT_HEADER_CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes a segment header from the start of `bytes`.
///
/// # Errors
/// [`DamageKind::BadHeader`] unless the magic, version and CRC all check.
pub fn decode_segment_header(bytes: &[u8]) -> Result<SegmentHeader, DamageKind> {
    let b = bytes
        .get(..SEGMENT_HEADER_BYTES)
        .ok_or(DamageKind::BadHeader)?;
    let crc = crc32fast::hash(&b[..SEGMENT_HEADER_CRC_OFFSET]);
    let stored = u32_at(b, SEGMENT_HEADER_CRC_OFFSET);
    let reserved_zero = u32_at(b, 12) == 0 && u32_at(b, 36) == 0;
    if b[0..8] != SEGMENT_MAGIC || u32_at(b, 8) != FORMAT_VERSION || crc != stored || !reserved_zero
    {
        return Err(DamageKind::BadHeader);
    }
    Ok(SegmentHeader {
        segment_id: u64_at(b, 16),
        first_index: Index(u64_at(b, 24)),
    })
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
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
fn put_frame(
    buf: &mut Vec<u8>,
    segment_id: u64,
    ty: FrameType,
    write_payload: impl FnOnce(&mut Vec<u8>),
) {
    debug_assert_eq!(buf.len() % FRAME_ALIGN_BYTES, 0);
    let start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
    write_payload(buf);
    let payload_len = buf.len() - start - FRAME_HEADER_BYTES;
    let len = u32::try_from(payload_len).expect("callers bound the payload by max_record_bytes");
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4] = ty as u8;
    let (head, payload) = buf[start..].split_at(FRAME_HEADER_BYTES);
    let crc = frame_crc(segment_id, &head[..8], payload);
    buf[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
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
    put_frame(buf, segment_id, FrameType::Entry, |b| {
        b.extend_from_slice(&entry.index.get().to_le_bytes());
        b.extend_from_slice(&entry.term.get().to_le_bytes());
        b.push(kind);
        b.extend_from_slice(&[0u8; 7]);
        b.extend_from_slice(&entry.data);
    });
}

/// Appends a hard-state frame.
pub fn put_hard_state(buf: &mut Vec<u8>, segment_id: u64, hs: &HardState) {
    put_frame(buf, segment_id, FrameType::HardState, |b| {
        b.extend_from_slice(&hs.term.get().to_le_bytes());
        b.extend_from_slice(&hs.vote.map_or(0, NodeId::get).to_le_bytes());
        b.extend_from_slice(&hs.commit.get().to_le_bytes());
    });
}

/// Appends a snapshot-marker frame.
pub fn put_snapshot_marker(buf: &mut Vec<u8>, segment_id: u64, marker: &SnapshotMarker) {
    let cs = &marker.conf_state;
    let sets = [
        &cs.voters,
        &cs.learners,
        &cs.voters_outgoing,
        &cs.learners_next,
    ];
    put_frame(buf, segment_id, FrameType::SnapshotMarker, |b| {
        b.extend_from_slice(&marker.index.get().to_le_bytes());
        b.extend_from_slice(&marker.term.get().to_le_bytes());
        for set in sets {
            let n = u32::try_from(set.len()).expect("a membership has fewer than 2^32 nodes");
            b.extend_from_slice(&n.to_le_bytes());
        }
        b.push(u8::from(cs.auto_leave));
        b.extend_from_slice(&[0u8; 7]);
        for set in sets {
            for id in set {
                b.extend_from_slice(&id.get().to_le_bytes());
            }
        }
    });
}

/// Appends a commit frame.
pub fn put_commit(buf: &mut Vec<u8>, segment_id: u64, commit: Commit) {
    put_frame(buf, segment_id, FrameType::Commit, |b| {
        b.extend_from_slice(&commit.batch_start.to_le_bytes());
        b.extend_from_slice(&commit.synced_through.to_le_bytes());
        b.extend_from_slice(&commit.frame_count.to_le_bytes());
        b.extend_from_slice(&[0u8; 4]);
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
    let len = u32_at(head, 0);
    let ty = FrameType::from_byte(head[4]).ok_or(DamageKind::UnknownType(head[4]))?;
    if len > max_record_bytes {
        return Err(DamageKind::TooLarge(len));
    }
    // Checked against the remaining file length before anything is read.
    let padded = align_up(len as usize);
    if padded > segment.len() - end_of_header {
        return Err(DamageKind::Truncated);
    }
    let payload = &segment[end_of_header..end_of_header + len as usize];
    if frame_crc(segment_id, &head[..8], payload) != u32_at(head, 8) {
        return Err(DamageKind::Checksum);
    }
    let padding = &segment[end_of_header + len as usize..end_of_header + padded];
    if head[5..8] != [0, 0, 0] || head[12..16] != [0, 0, 0, 0] || padding.iter().any(|&b| b != 0) {
        return Err(DamageKind::BadPayload);
    }
    let record = match ty {
        FrameType::Entry => Record::Entry(decode_entry(segment, end_of_header, len as usize)?),
        FrameType::HardState => Record::HardState(decode_hard_state(payload)?),
        FrameType::SnapshotMarker => Record::SnapshotMarker(decode_marker(payload)?),
        FrameType::Commit => Record::Commit(decode_commit(payload)?),
    };
    Ok((record, end_of_header + padded))
}

fn decode_entry(segment: &Bytes, start: usize, len: usize) -> Result<Entry, DamageKind> {
    if len < ENTRY_FIXED_BYTES {
        return Err(DamageKind::BadPayload);
    }
    let p = &segment[start..start + len];
    let kind = match p[16] {
        0 => EntryKind::Normal,
        1 => EntryKind::ConfChange,
        2 => EntryKind::ConfChangeV2,
        _ => return Err(DamageKind::BadPayload),
    };
    if p[17..24].iter().any(|&b| b != 0) {
        return Err(DamageKind::BadPayload);
    }
    Ok(Entry {
        index: Index(u64_at(p, 0)),
        term: Term(u64_at(p, 8)),
        kind,
        data: segment.slice(start + ENTRY_FIXED_BYTES..start + len),
    })
}

fn decode_hard_state(p: &[u8]) -> Result<HardState, DamageKind> {
    if p.len() != HARD_STATE_BYTES {
        return Err(DamageKind::BadPayload);
    }
    Ok(HardState {
        term: Term(u64_at(p, 0)),
        vote: NodeId::new(u64_at(p, 8)),
        commit: Index(u64_at(p, 16)),
    })
}

fn decode_marker(p: &[u8]) -> Result<SnapshotMarker, DamageKind> {
    if p.len() < MARKER_FIXED_BYTES {
        return Err(DamageKind::BadPayload);
    }
    let counts = [u32_at(p, 16), u32_at(p, 20), u32_at(p, 24), u32_at(p, 28)];
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    if p.len() as u64 != MARKER_FIXED_BYTES as u64 + 8 * total {
        return Err(DamageKind::BadPayload);
    }
    let auto_leave = match p[32] {
        0 => false,
        1 => true,
        _ => return Err(DamageKind::BadPayload),
    };
    let mut at = MARKER_FIXED_BYTES;
    let mut sets: [BTreeSet<NodeId>; 4] = Default::default();
    for (set, count) in sets.iter_mut().zip(counts) {
        for _ in 0..count {
            let id = NodeId::new(u64_at(p, at)).ok_or(DamageKind::BadPayload)?;
            at += 8;
            if !set.insert(id) {
                return Err(DamageKind::BadPayload);
            }
        }
    }
    let [voters, learners, voters_outgoing, learners_next] = sets;
    Ok(SnapshotMarker {
        index: Index(u64_at(p, 0)),
        term: Term(u64_at(p, 8)),
        conf_state: ConfState {
            voters,
            learners,
            voters_outgoing,
            learners_next,
            auto_leave,
        },
    })
}

fn decode_commit(p: &[u8]) -> Result<Commit, DamageKind> {
    if p.len() != COMMIT_BYTES || u32_at(p, 20) != 0 {
        return Err(DamageKind::BadPayload);
    }
    Ok(Commit {
        batch_start: u64_at(p, 0),
        synced_through: u64_at(p, 8),
        frame_count: u32_at(p, 16),
    })
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
        let commit_shaped =
            head[4] == FrameType::Commit as u8 && u32_at(head, 0) as usize == COMMIT_BYTES;
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
                Record::Commit(commit)
            ]
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
