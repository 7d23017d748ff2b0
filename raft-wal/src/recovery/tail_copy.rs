//! Rewriting bytes of a segment in place without putting them at risk.
//!
//! `open` must make durable whatever it returns (see
//! `super::make_tail_durable`):
//! after a failed fsync the kernel marks the pages clean though they never
//! reached the disk, so the bytes after the last proven-durable offset are
//! written again, not just synced. But some of those bytes may already be
//! durable (a batch synced just before the process died carries no record
//! of it), and a power cut in the middle of writing them again may tear
//! them. So the rewrite goes through a copy, as a database's doublewrite
//! buffer does:
//!
//! 1. the bytes go to `tail-copy.tmp`, fsync, rename to `tail-copy`, fsync
//!    the directory;
//! 2. then in place into the segment, fsync;
//! 3. then `tail-copy` is deleted, fsync the directory.
//!
//! A named copy is whole and durable (the rename comes after its fsync), so
//! `open` finding one finishes the rewrite from it before reading the log:
//! a rewrite torn at step 2 loses nothing. A copy that does not verify is
//! refused ([`OpenError::CorruptTailCopy`]): nothing in this protocol leaves
//! one, so the disk is damaged, and the segment bytes it was protecting may
//! be too.
//!
//! Layout of the copy (little-endian): magic `RWALCOPY` (8), version u32,
//! reserved u32 (0), segment id u64, offset u64, length u64, CRC32 u32 of
//! the 40 bytes before it followed by the data, reserved u32 (0), then the
//! data.

use std::io;
use std::path::{Path, PathBuf};

use raft_io::codec::Field;
use raft_io::{Backend, FileHandle};

use crate::format::TEMP_SUFFIX;

/// The copy's file name in the WAL directory.
const TAIL_COPY_NAME: &str = "tail-copy";
const MAGIC: [u8; 8] = *b"RWALCOPY";
const VERSION: u32 = 1;

// The copy's header, field by field (the module docs' layout).
const COPY_MAGIC: Field = Field::first(MAGIC.len());
const COPY_VERSION: Field = COPY_MAGIC.then(size_of::<u32>());
const COPY_RESERVED_1: Field = COPY_VERSION.then(size_of::<u32>());
const COPY_SEGMENT_ID: Field = COPY_RESERVED_1.then(size_of::<u64>());
const COPY_OFFSET: Field = COPY_SEGMENT_ID.then(size_of::<u64>());
const COPY_LEN: Field = COPY_OFFSET.then(size_of::<u64>());
/// Covers the header bytes before it, then the data.
const COPY_CRC: Field = COPY_LEN.then(size_of::<u32>());
const COPY_RESERVED_2: Field = COPY_CRC.then(size_of::<u32>());
const HEADER_BYTES: usize = COPY_RESERVED_2.end();
const _: () = assert!(COPY_CRC.offset() == 40 && HEADER_BYTES == 48);

/// Bytes to be written at `offset` of segment `segment_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TailCopy {
    pub(crate) segment_id: u64,
    pub(crate) offset: u64,
    pub(crate) data: Vec<u8>,
}

impl TailCopy {
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_BYTES];
        out[COPY_MAGIC.range()].copy_from_slice(&MAGIC);
        COPY_VERSION.put_u32(&mut out, VERSION);
        COPY_SEGMENT_ID.put_u64(&mut out, self.segment_id);
        COPY_OFFSET.put_u64(&mut out, self.offset);
        COPY_LEN.put_u64(&mut out, self.data.len() as u64);
        let crc = crc(&out[..COPY_CRC.offset()], &self.data);
        COPY_CRC.put_u32(&mut out, crc);
        out.extend_from_slice(&self.data);
        out
    }

    /// Writes the copy into `segment`'s bytes, as the rewrite will.
    /// `super::read_leftover` checked that the offset lies within the segment.
    pub(crate) fn apply_to(&self, segment: &mut Vec<u8>) {
        let start = usize::try_from(self.offset).expect("checked against the segment's length");
        let end = start + self.data.len();
        if segment.len() < end {
            segment.resize(end, 0);
        }
        segment[start..end].copy_from_slice(&self.data);
    }

    /// `None` for anything but a whole copy that verifies.
    pub(super) fn decode(bytes: &[u8]) -> Option<TailCopy> {
        let header = bytes.get(..HEADER_BYTES)?;
        let u32_field = |f: Field| f.get_u32(header).ok();
        let u64_field = |f: Field| f.get_u64(header).ok();
        if header[COPY_MAGIC.range()] != MAGIC
            || u32_field(COPY_VERSION)? != VERSION
            || u32_field(COPY_RESERVED_1)? != 0
            || u32_field(COPY_RESERVED_2)? != 0
        {
            return None;
        }
        let len = usize::try_from(u64_field(COPY_LEN)?).ok()?;
        let data = &bytes[HEADER_BYTES..];
        if data.len() != len || u32_field(COPY_CRC)? != crc(&header[..COPY_CRC.offset()], data) {
            return None;
        }
        Some(TailCopy {
            segment_id: u64_field(COPY_SEGMENT_ID)?,
            offset: u64_field(COPY_OFFSET)?,
            data: data.to_vec(),
        })
    }
}

fn crc(header: &[u8], data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(header);
    h.update(data);
    h.finalize()
}

/// Where the copy lives in the WAL directory `dir`.
pub(super) fn copy_path(dir: &Path) -> PathBuf {
    dir.join(TAIL_COPY_NAME)
}

/// Writes `copy.data` at `copy.offset` of `segment` (a handle on segment
/// `copy.segment_id`) durably, through the copy file (see the module docs).
pub(crate) fn rewrite_in_place(
    backend: &dyn Backend,
    dir: &Path,
    segment: &dyn FileHandle,
    copy: &TailCopy,
) -> io::Result<()> {
    let path = copy_path(dir);
    let tmp = dir.join(format!("{TAIL_COPY_NAME}{TEMP_SUFFIX}"));
    {
        let f = backend.create(&tmp)?;
        f.write_at(0, &copy.encode())?;
        f.sync_data()?;
    }
    backend.rename(&tmp, &path)?;
    backend.sync_dir(dir)?;
    segment.write_at(copy.offset, &copy.data)?;
    segment.sync_data()?;
    backend.remove_file(&path)?;
    backend.sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy() -> TailCopy {
        TailCopy {
            segment_id: 7,
            offset: 4096,
            data: (0..300u32).map(|i| i as u8).collect(),
        }
    }

    #[test]
    fn a_copy_decodes_to_itself() {
        assert_eq!(TailCopy::decode(&copy().encode()), Some(copy()));
    }

    #[test]
    fn any_flipped_bit_or_cut_makes_a_copy_invalid() {
        let bytes = copy().encode();
        for bit in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(TailCopy::decode(&b), None, "bit {bit}");
        }
        for len in 0..bytes.len() {
            assert_eq!(TailCopy::decode(&bytes[..len]), None, "cut at {len}");
        }
    }
}
