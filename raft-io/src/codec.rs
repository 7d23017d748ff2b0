//! Little-endian encoding shared by the on-disk formats: a cursor-style
//! [`Reader`] that fails with a typed [`CodecError`] on short input instead
//! of panicking, a [`Writer`] that appends to a `Vec<u8>`, [`Field`] for
//! fixed layouts whose offsets are derived from each other, and the one
//! binary layout of a [`ConfState`].
//!
//! ```
//! use raft_core::{ConfState, NodeId};
//! use raft_io::codec::{self, Reader, Writer};
//!
//! let cs = ConfState::with_voters([1, 2, 3].map(|id| NodeId::new(id).expect("non-zero")));
//! let mut buf = Vec::new();
//! let mut w = Writer::new(&mut buf);
//! w.put_u64(42);
//! codec::encode_conf_state(&cs, &mut w)?;
//! assert_eq!(buf.len(), 8 + codec::conf_state_len(&cs));
//!
//! let mut r = Reader::new(&buf);
//! assert_eq!(r.get_u64()?, 42);
//! assert_eq!(codec::decode_conf_state(&mut r)?, cs);
//! r.finish()?; // nothing may follow
//! # Ok::<(), raft_io::codec::CodecError>(())
//! ```
//!
//! # The `ConfState` layout
//!
//! All integers little-endian; offsets relative to the start of the
//! membership:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | number of voters `a` |
//! | 4 | 4 | number of learners `b` |
//! | 8 | 4 | number of outgoing voters `c` |
//! | 12 | 4 | number of next learners `d` |
//! | 16 | 4 | flags: bit 0 `auto_leave`, all others zero |
//! | 20 | 4 | number of witnesses `e` (a reserved zero word before witnesses existed: older files read as having none) |
//! | 24 | 8 × (`a`+`b`+`c`+`d`+`e`) | the node ids as `u64`: voters, learners, outgoing voters, next learners, witnesses |
//!
//! Only the canonical form decodes: within each set the ids are non-zero
//! and strictly ascending (so no duplicates), no unknown flag is set,
//! `auto_leave` is set only on a joint configuration (one with outgoing
//! voters), and every witness is a voter of either half. [`encode_conf_state`] refuses
//! a `ConfState` whose `auto_leave` breaks that rule rather than write
//! bytes no reader accepts. The ids start 8-byte aligned relative to the
//! membership's start.

use std::collections::BTreeSet;
use std::ops::Range;

use raft_core::{ConfState, NodeId};

/// Why bytes failed to decode, or a value could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ends before a field does.
    #[error("input ends early: {needed} bytes needed at offset {offset}, {available} left")]
    Short {
        /// Where the field starts.
        offset: usize,
        /// How many bytes it needs.
        needed: u64,
        /// How many bytes were left.
        available: usize,
    },
    /// Bytes follow where the encoding should end.
    #[error("{left} unexpected bytes after offset {offset}")]
    TrailingBytes {
        /// Where the encoding ends.
        offset: usize,
        /// How many bytes follow.
        left: usize,
    },
    /// Bytes that must be zero are not.
    #[error("reserved bytes at offset {offset} are not zero")]
    NonZeroReserved {
        /// Where the reserved bytes start.
        offset: usize,
    },
    /// A flags word has a bit set that no version of the format defines.
    #[error("unknown flags {flags:#x} at offset {offset}")]
    UnknownFlags {
        /// Where the flags word is.
        offset: usize,
        /// Its value.
        flags: u32,
    },
    /// A node id is zero, which no node has.
    #[error("node id 0 at offset {offset}")]
    ZeroNodeId {
        /// Where the id is.
        offset: usize,
    },
    /// The ids of a membership set are not strictly ascending (which
    /// includes a duplicate).
    #[error("node ids not strictly ascending at offset {offset}")]
    IdsNotAscending {
        /// Where the out-of-order id is.
        offset: usize,
    },
    /// `auto_leave` is set on a configuration that is not joint.
    #[error("auto_leave is set but the configuration is not joint")]
    AutoLeaveWithoutJoint,
    /// A witness is not a voter of either half.
    #[error("node {node} is a witness but not a voter")]
    WitnessNotVoter {
        /// The node.
        node: NodeId,
    },
    /// A membership set too large for its `u32` count.
    #[error("a membership set of {len} nodes does not fit a u32 count")]
    TooManyNodes {
        /// The set's size.
        len: usize,
    },
}

/// A field of a fixed layout: where it starts and how long it is. Each
/// field of a layout is built from the one before it
/// ([`Field::then`]), so no offset is typed by hand and moving a field
/// moves every field after it.
///
/// ```
/// use raft_io::codec::Field;
///
/// const MAGIC: Field = Field::first(8);
/// const VERSION: Field = MAGIC.then(4);
/// const LEN: Field = VERSION.then(8);
/// const HEADER_BYTES: usize = LEN.end();
/// const _: () = assert!(HEADER_BYTES == 20);
///
/// let mut header = [0u8; HEADER_BYTES];
/// VERSION.put_u32(&mut header, 2);
/// assert_eq!(VERSION.get_u32(&header), Ok(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    offset: usize,
    size: usize,
}

impl Field {
    /// The first field of a layout, `size` bytes at offset 0.
    pub const fn first(size: usize) -> Field {
        Field { offset: 0, size }
    }

    /// The field of `size` bytes right after this one.
    pub const fn then(self, size: usize) -> Field {
        Field {
            offset: self.end(),
            size,
        }
    }

    /// Where the field starts.
    pub const fn offset(self) -> usize {
        self.offset
    }

    /// The field's length in bytes.
    pub const fn size(self) -> usize {
        self.size
    }

    /// Where the next field starts.
    pub const fn end(self) -> usize {
        self.offset + self.size
    }

    /// The byte range of the field.
    pub const fn range(self) -> Range<usize> {
        self.offset..self.end()
    }

    /// The field's bytes in `bytes`.
    ///
    /// # Errors
    /// [`CodecError::Short`] if `bytes` ends before the field does.
    pub fn slice(self, bytes: &[u8]) -> Result<&[u8], CodecError> {
        bytes.get(self.range()).ok_or(CodecError::Short {
            offset: self.offset,
            needed: self.size as u64,
            available: bytes.len().saturating_sub(self.offset),
        })
    }

    /// Reads the field as a `u8`.
    ///
    /// # Errors
    /// [`CodecError::Short`] if `bytes` ends before the field does.
    ///
    /// # Panics
    /// If the field is not 1 byte long (a bug in the layout).
    pub fn get_u8(self, bytes: &[u8]) -> Result<u8, CodecError> {
        Ok(self.array::<1>(bytes)?[0])
    }

    /// Reads the field as a little-endian `u32`.
    ///
    /// # Errors
    /// [`CodecError::Short`] if `bytes` ends before the field does.
    ///
    /// # Panics
    /// If the field is not 4 bytes long (a bug in the layout).
    pub fn get_u32(self, bytes: &[u8]) -> Result<u32, CodecError> {
        self.array(bytes).map(u32::from_le_bytes)
    }

    /// Reads the field as a little-endian `u64`.
    ///
    /// # Errors
    /// [`CodecError::Short`] if `bytes` ends before the field does.
    ///
    /// # Panics
    /// If the field is not 8 bytes long (a bug in the layout).
    pub fn get_u64(self, bytes: &[u8]) -> Result<u64, CodecError> {
        self.array(bytes).map(u64::from_le_bytes)
    }

    /// Writes `value` into the field.
    ///
    /// # Panics
    /// If the field is not 1 byte long or `buf` ends before it does: the
    /// caller sized its own buffer.
    pub fn put_u8(self, buf: &mut [u8], value: u8) {
        self.put(buf, &[value]);
    }

    /// Writes `value` into the field, little-endian.
    ///
    /// # Panics
    /// As [`Field::put_u8`], for a 4-byte field.
    pub fn put_u32(self, buf: &mut [u8], value: u32) {
        self.put(buf, &value.to_le_bytes());
    }

    /// Writes `value` into the field, little-endian.
    ///
    /// # Panics
    /// As [`Field::put_u8`], for an 8-byte field.
    pub fn put_u64(self, buf: &mut [u8], value: u64) {
        self.put(buf, &value.to_le_bytes());
    }

    fn array<const N: usize>(self, bytes: &[u8]) -> Result<[u8; N], CodecError> {
        assert_eq!(self.size, N, "field of {} bytes read as {N}", self.size);
        let mut out = [0u8; N];
        out.copy_from_slice(self.slice(bytes)?);
        Ok(out)
    }

    fn put(self, buf: &mut [u8], value: &[u8]) {
        assert_eq!(self.size, value.len(), "field of {} bytes", self.size);
        buf[self.range()].copy_from_slice(value);
    }
}

/// Reads little-endian values from the front of a byte slice, advancing as
/// it goes. Every read checks the length first and returns
/// [`CodecError::Short`] rather than panicking, so decoding untrusted bytes
/// needs no length arithmetic of its own. Offsets in errors are relative to
/// the slice the reader was made from.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    /// How many bytes have been read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The next `n` bytes.
    ///
    /// # Errors
    /// [`CodecError::Short`] if fewer are left; nothing is consumed then.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        self.ensure(n as u64)?;
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// The next `N` bytes as an array.
    ///
    /// # Errors
    /// [`CodecError::Short`] if fewer are left.
    pub fn get_array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// The next byte.
    ///
    /// # Errors
    /// [`CodecError::Short`] at the end of the input.
    pub fn get_u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.get_array::<1>()?[0])
    }

    /// The next little-endian `u32`.
    ///
    /// # Errors
    /// [`CodecError::Short`] if fewer than 4 bytes are left.
    pub fn get_u32(&mut self) -> Result<u32, CodecError> {
        self.get_array().map(u32::from_le_bytes)
    }

    /// The next little-endian `u64`.
    ///
    /// # Errors
    /// [`CodecError::Short`] if fewer than 8 bytes are left.
    pub fn get_u64(&mut self) -> Result<u64, CodecError> {
        self.get_array().map(u64::from_le_bytes)
    }

    /// Skips `n` reserved bytes, which must be zero.
    ///
    /// # Errors
    /// [`CodecError::Short`] if fewer are left, [`CodecError::NonZeroReserved`]
    /// if any is not zero.
    pub fn reserved(&mut self, n: usize) -> Result<(), CodecError> {
        let offset = self.pos;
        if self.take(n)?.iter().any(|&b| b != 0) {
            return Err(CodecError::NonZeroReserved { offset });
        }
        Ok(())
    }

    /// Checks that at least `n` more bytes are left, without reading them:
    /// lets a decoder refuse a count before looping over it.
    ///
    /// # Errors
    /// [`CodecError::Short`] if fewer are left.
    pub fn ensure(&self, n: u64) -> Result<(), CodecError> {
        if n > self.remaining() as u64 {
            return Err(CodecError::Short {
                offset: self.pos,
                needed: n,
                available: self.remaining(),
            });
        }
        Ok(())
    }

    /// Checks that the input is used up.
    ///
    /// # Errors
    /// [`CodecError::TrailingBytes`] if anything is left.
    pub fn finish(&self) -> Result<(), CodecError> {
        match self.remaining() {
            0 => Ok(()),
            left => Err(CodecError::TrailingBytes {
                offset: self.pos,
                left,
            }),
        }
    }
}

/// Appends little-endian values to a `Vec<u8>`.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> Writer<'a> {
    /// A writer appending to `buf` (whatever it holds stays in front).
    pub fn new(buf: &'a mut Vec<u8>) -> Writer<'a> {
        let start = buf.len();
        Writer { buf, start }
    }

    /// How many bytes this writer has appended.
    pub fn written(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Appends a byte.
    pub fn put_u8(&mut self, value: u8) {
        self.buf.push(value);
    }

    /// Appends a `u32`, little-endian.
    pub fn put_u32(&mut self, value: u32) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    /// Appends a `u64`, little-endian.
    pub fn put_u64(&mut self, value: u64) {
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    /// Appends `bytes` as they are.
    pub fn put_bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Appends `n` zero bytes (reserved space or padding).
    pub fn put_zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }
}

/// The four set counts of the membership layout.
const CONF_COUNTS: Field = Field::first(4 * size_of::<u32>());
/// The flags word.
const CONF_FLAGS: Field = CONF_COUNTS.then(size_of::<u32>());
/// The witness count: the word after the flags (reserved and zero before
/// witnesses, so older files decode with none), which also keeps the ids
/// 8-byte aligned.
const CONF_WITNESSES: Field = CONF_FLAGS.then(size_of::<u32>());
/// The length of the fixed part of the membership layout; the ids follow.
pub const CONF_STATE_FIXED_BYTES: usize = CONF_WITNESSES.end();
/// Flag bit: `ConfState::auto_leave`.
const CONF_FLAG_AUTO_LEAVE: u32 = 1;

const _: () = assert!(CONF_STATE_FIXED_BYTES == 24);
const _: () = assert!(CONF_STATE_FIXED_BYTES.is_multiple_of(size_of::<u64>()));

fn conf_sets(cs: &ConfState) -> [&BTreeSet<NodeId>; 5] {
    [
        &cs.voters,
        &cs.learners,
        &cs.voters_outgoing,
        &cs.learners_next,
        &cs.witnesses,
    ]
}

/// The number of bytes [`encode_conf_state`] writes for `cs`.
pub fn conf_state_len(cs: &ConfState) -> usize {
    let ids: usize = conf_sets(cs).iter().map(|set| set.len()).sum();
    CONF_STATE_FIXED_BYTES + ids * size_of::<u64>()
}

/// Checks that `cs` has a canonical encoding: `auto_leave` only on a joint
/// configuration, every set countable in a `u32`. (Ids are ascending and
/// distinct by construction: the sets are `BTreeSet`s.)
///
/// # Errors
/// [`CodecError::AutoLeaveWithoutJoint`] or [`CodecError::TooManyNodes`].
pub fn check_conf_state(cs: &ConfState) -> Result<(), CodecError> {
    if cs.auto_leave && !cs.is_joint() {
        return Err(CodecError::AutoLeaveWithoutJoint);
    }
    check_witnesses(cs)?;
    for set in conf_sets(cs) {
        if u32::try_from(set.len()).is_err() {
            return Err(CodecError::TooManyNodes { len: set.len() });
        }
    }
    Ok(())
}

/// Appends the membership layout of `cs` (see the module docs).
///
/// # Errors
/// As [`check_conf_state`]; nothing is written then.
pub fn encode_conf_state(cs: &ConfState, w: &mut Writer<'_>) -> Result<(), CodecError> {
    check_conf_state(cs)?;
    let before = w.written();
    let sets = conf_sets(cs);
    let count = |set: &BTreeSet<NodeId>| u32::try_from(set.len()).expect("checked above");
    for set in &sets[..4] {
        w.put_u32(count(set));
    }
    w.put_u32(if cs.auto_leave {
        CONF_FLAG_AUTO_LEAVE
    } else {
        0
    });
    w.put_u32(count(&cs.witnesses));
    for id in sets.into_iter().flatten() {
        w.put_u64(id.get());
    }
    debug_assert_eq!(w.written() - before, conf_state_len(cs));
    Ok(())
}

/// Reads a membership in the canonical layout (see the module docs) from
/// `r`, leaving it just after the last id. Bytes after it are the caller's
/// to check (with [`Reader::finish`] if nothing may follow).
///
/// # Errors
/// [`CodecError::Short`] if the input ends early (checked against the
/// counts before any id is read); otherwise the [`CodecError`] naming the
/// first departure from the canonical form.
pub fn decode_conf_state(r: &mut Reader<'_>) -> Result<ConfState, CodecError> {
    let mut counts = [0u32; 5];
    for count in &mut counts[..4] {
        *count = r.get_u32()?;
    }
    let flags_at = r.position();
    let flags = r.get_u32()?;
    if flags & !CONF_FLAG_AUTO_LEAVE != 0 {
        return Err(CodecError::UnknownFlags {
            offset: flags_at,
            flags,
        });
    }
    counts[4] = r.get_u32()?;
    let ids: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    r.ensure(ids * size_of::<u64>() as u64)?;
    let mut sets: [BTreeSet<NodeId>; 5] = Default::default();
    for (set, count) in sets.iter_mut().zip(counts) {
        decode_id_set(r, count, set)?;
    }
    let [voters, learners, voters_outgoing, learners_next, witnesses] = sets;
    let cs = ConfState {
        voters,
        learners,
        voters_outgoing,
        learners_next,
        auto_leave: flags & CONF_FLAG_AUTO_LEAVE != 0,
        witnesses,
    };
    if cs.auto_leave && !cs.is_joint() {
        return Err(CodecError::AutoLeaveWithoutJoint);
    }
    check_witnesses(&cs)?;
    Ok(cs)
}

/// Every witness is a voter of either half.
fn check_witnesses(cs: &ConfState) -> Result<(), CodecError> {
    match cs
        .witnesses
        .iter()
        .find(|w| !cs.voters.contains(w) && !cs.voters_outgoing.contains(w))
    {
        Some(&node) => Err(CodecError::WitnessNotVoter { node }),
        None => Ok(()),
    }
}

/// Reads `count` ids into `set`, requiring each to be non-zero and above
/// the one before.
fn decode_id_set(
    r: &mut Reader<'_>,
    count: u32,
    set: &mut BTreeSet<NodeId>,
) -> Result<(), CodecError> {
    let mut previous = 0u64;
    for _ in 0..count {
        let offset = r.position();
        let raw = r.get_u64()?;
        let id = NodeId::new(raw).ok_or(CodecError::ZeroNodeId { offset })?;
        if raw <= previous {
            return Err(CodecError::IdsNotAscending { offset });
        }
        previous = raw;
        set.insert(id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn id(raw: u64) -> NodeId {
        NodeId::new(raw).expect("test ids are non-zero")
    }

    fn joint() -> ConfState {
        ConfState {
            voters: [1, 2, 3].map(id).into(),
            learners: [7].map(id).into(),
            voters_outgoing: [1, 2, 4].map(id).into(),
            learners_next: [4].map(id).into(),
            auto_leave: true,
            witnesses: [3].map(id).into(),
        }
    }

    fn encode(cs: &ConfState) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_conf_state(cs, &mut Writer::new(&mut buf)).expect("canonical");
        buf
    }

    fn decode(bytes: &[u8]) -> Result<ConfState, CodecError> {
        let mut r = Reader::new(bytes);
        let cs = decode_conf_state(&mut r)?;
        r.finish()?;
        Ok(cs)
    }

    #[test]
    fn memberships_round_trip() {
        for cs in [
            ConfState::default(),
            ConfState::with_voters([id(9)]),
            joint(),
        ] {
            let bytes = encode(&cs);
            assert_eq!(bytes.len(), conf_state_len(&cs));
            assert_eq!(decode(&bytes), Ok(cs));
        }
    }

    #[test]
    fn fields_sit_at_their_documented_offsets() {
        let bytes = encode(&joint());
        assert_eq!(
            bytes[0..16],
            [3, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(bytes[16..20], [1, 0, 0, 0], "auto_leave");
        assert_eq!(bytes[20..24], [1, 0, 0, 0], "witnesses");
        let ids: Vec<u64> = bytes[24..]
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        assert_eq!(ids, [1, 2, 3, 7, 1, 2, 4, 4, 3]);
    }

    #[test]
    fn unsorted_duplicate_and_zero_ids_are_rejected() {
        let bytes = encode(&ConfState::with_voters([id(1), id(2)]));
        let first = CONF_STATE_FIXED_BYTES;
        let second = first + 8;
        let mut swapped = bytes.clone();
        swapped[first..second].copy_from_slice(&2u64.to_le_bytes());
        swapped[second..].copy_from_slice(&1u64.to_le_bytes());
        assert_eq!(
            decode(&swapped),
            Err(CodecError::IdsNotAscending { offset: second })
        );
        let mut duplicate = bytes.clone();
        duplicate[first..second].copy_from_slice(&2u64.to_le_bytes());
        assert_eq!(
            decode(&duplicate),
            Err(CodecError::IdsNotAscending { offset: second })
        );
        let mut zero = bytes;
        zero[first..second].copy_from_slice(&0u64.to_le_bytes());
        assert_eq!(decode(&zero), Err(CodecError::ZeroNodeId { offset: first }));
    }

    #[test]
    fn ids_may_repeat_across_sets_but_not_within_one() {
        // A voter of both halves of a joint configuration is normal.
        let cs = joint();
        assert!(cs.voters.contains(&id(1)) && cs.voters_outgoing.contains(&id(1)));
        assert_eq!(decode(&encode(&cs)), Ok(cs));
    }

    #[test]
    fn auto_leave_outside_a_joint_configuration_is_refused_both_ways() {
        let cs = ConfState {
            auto_leave: true,
            ..ConfState::with_voters([id(1)])
        };
        let mut buf = Vec::new();
        assert_eq!(
            encode_conf_state(&cs, &mut Writer::new(&mut buf)),
            Err(CodecError::AutoLeaveWithoutJoint)
        );
        assert!(buf.is_empty(), "nothing written");
        let mut bytes = encode(&ConfState::with_voters([id(1)]));
        CONF_FLAGS.put_u32(&mut bytes, CONF_FLAG_AUTO_LEAVE);
        assert_eq!(decode(&bytes), Err(CodecError::AutoLeaveWithoutJoint));
    }

    #[test]
    fn a_membership_written_before_witnesses_reads_as_having_none() {
        // The witness count was a reserved zero word: old bytes are new
        // bytes without witnesses.
        let cs = ConfState::with_voters([id(1), id(2)]);
        let bytes = encode(&cs);
        assert_eq!(bytes[20..24], [0; 4]);
        assert_eq!(decode(&bytes), Ok(cs));
    }

    #[test]
    fn a_witness_that_is_not_a_voter_is_refused_both_ways() {
        let cs = ConfState {
            witnesses: [id(5)].into(),
            ..ConfState::with_voters([id(1)])
        };
        let mut buf = Vec::new();
        assert_eq!(
            encode_conf_state(&cs, &mut Writer::new(&mut buf)),
            Err(CodecError::WitnessNotVoter { node: id(5) })
        );
        let good = ConfState {
            witnesses: [id(1)].into(),
            ..ConfState::with_voters([id(1), id(5)])
        };
        let mut bytes = encode(&good);
        // Rewrite the witness id to 5, a voter too: fine; then to 6: no.
        let last = bytes.len() - 8;
        bytes[last..].copy_from_slice(&6u64.to_le_bytes());
        assert_eq!(
            decode(&bytes),
            Err(CodecError::WitnessNotVoter { node: id(6) })
        );
    }

    #[test]
    fn unknown_flags_are_rejected() {
        let bytes = encode(&ConfState::default());
        let mut flags = bytes.clone();
        CONF_FLAGS.put_u32(&mut flags, 2);
        assert_eq!(
            decode(&flags),
            Err(CodecError::UnknownFlags {
                offset: CONF_FLAGS.offset(),
                flags: 2
            })
        );
    }

    #[test]
    fn counts_beyond_the_input_fail_before_any_id_is_read() {
        let mut bytes = encode(&ConfState::default());
        let voters_count = Field::first(size_of::<u32>());
        voters_count.put_u32(&mut bytes, u32::MAX);
        assert_eq!(
            decode(&bytes),
            Err(CodecError::Short {
                offset: CONF_STATE_FIXED_BYTES,
                needed: u64::from(u32::MAX) * 8,
                available: 0
            })
        );
    }

    #[test]
    fn every_truncation_and_trailing_byte_is_detected() {
        let bytes = encode(&joint());
        for len in 0..bytes.len() {
            assert!(
                matches!(decode(&bytes[..len]), Err(CodecError::Short { .. })),
                "cut at {len}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode(&longer),
            Err(CodecError::TrailingBytes {
                offset: bytes.len(),
                left: 1
            })
        );
    }

    #[test]
    fn reader_reports_short_input_without_consuming() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(
            r.get_u32(),
            Err(CodecError::Short {
                offset: 0,
                needed: 4,
                available: 3
            })
        );
        assert_eq!(r.position(), 0);
        assert_eq!(r.get_u8(), Ok(1));
        assert_eq!(
            r.reserved(2),
            Err(CodecError::NonZeroReserved { offset: 1 })
        );
    }

    fn arb_ids() -> impl Strategy<Value = BTreeSet<NodeId>> {
        prop::collection::btree_set(1..=u64::MAX, 0..5)
            .prop_map(|raw| raw.into_iter().map(id).collect())
    }

    fn arb_conf_state() -> impl Strategy<Value = ConfState> {
        (
            arb_ids(),
            arb_ids(),
            arb_ids(),
            arb_ids(),
            any::<bool>(),
            arb_ids(),
        )
            .prop_map(
                |(voters, learners, voters_outgoing, learners_next, auto_leave, w)| {
                    let auto_leave = auto_leave && !voters_outgoing.is_empty();
                    let witnesses = w
                        .into_iter()
                        .filter(|n| voters.contains(n) || voters_outgoing.contains(n))
                        .collect();
                    ConfState {
                        voters,
                        learners,
                        voters_outgoing,
                        learners_next,
                        auto_leave,
                        witnesses,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn any_canonical_membership_round_trips(cs in arb_conf_state()) {
            let bytes = encode(&cs);
            prop_assert_eq!(bytes.len(), conf_state_len(&cs));
            prop_assert_eq!(decode(&bytes), Ok(cs));
        }

        #[test]
        fn damaged_bytes_fail_or_are_the_canonical_encoding_of_what_they_decode_to(
            cs in arb_conf_state(),
            damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = encode(&cs);
            for (at, value) in damage {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            if let Ok(decoded) = decode(&bytes) {
                prop_assert_eq!(encode(&decoded), bytes);
            }
        }
    }

    #[test]
    fn fields_chain_and_read_what_the_writer_wrote() {
        const A: Field = Field::first(8);
        const B: Field = A.then(4);
        const C: Field = B.then(1);
        assert_eq!((B.offset(), C.offset(), C.end()), (8, 12, 13));
        let mut buf = Vec::new();
        let mut w = Writer::new(&mut buf);
        w.put_u64(0x0102_0304_0506_0708);
        w.put_u32(9);
        w.put_u8(5);
        assert_eq!(w.written(), C.end());
        assert_eq!(A.get_u64(&buf), Ok(0x0102_0304_0506_0708));
        assert_eq!(B.get_u32(&buf), Ok(9));
        assert_eq!(C.get_u8(&buf), Ok(5));
        assert_eq!(
            C.get_u8(&buf[..12]),
            Err(CodecError::Short {
                offset: 12,
                needed: 1,
                available: 0
            })
        );
        B.put_u32(&mut buf, 10);
        assert_eq!(Reader::new(&buf[B.range()]).get_u32(), Ok(10));
    }
}
