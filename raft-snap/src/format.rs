//! The byte format of a snapshot: header, membership, data, checksum.
//!
//! Everything is little-endian regardless of the host. The layout is
//! documented byte by byte in the crate docs; the offsets here are derived
//! from each other ([`Field::then`]) and checked at compile time, so moving
//! a field forces the docs, the constants and the tests to move together.
//! The membership is raft-io's one `ConfState` layout, the same bytes the
//! WAL's snapshot markers hold.

use std::fmt;

use raft_core::{ConfState, Index, SnapshotMetadata, Term};
use raft_io::codec::{self, CodecError, Field, Reader, Writer};

/// The first eight bytes of every snapshot file. Modelled on PNG's: a
/// non-ASCII first byte catches 7-bit transfers, `\r\n` catches newline
/// conversion, and the name tells a human what the file is.
pub const MAGIC: [u8; 8] = *b"\x89RSNAP\r\n";

/// The format version this crate writes. Version 2 stores the membership
/// in raft-io's `ConfState` layout, whose fixed part has a reserved word
/// after the flags; version 1 had none, and is still read, so that an
/// upgrade never turns the snapshots on disk into "damaged" ones.
pub const VERSION: u32 = 2;

/// The older version this crate still reads.
const VERSION_1: u32 = 1;
/// A version 1 membership's fixed part: raft-io's without the reserved
/// word that ends it.
const V1_CONF_FIXED_BYTES: usize = codec::CONF_STATE_FIXED_BYTES - size_of::<u32>();

// The fixed header, field by field (the crate docs' table).
const MAGIC_FIELD: Field = Field::first(MAGIC.len());
const VERSION_FIELD: Field = MAGIC_FIELD.then(size_of::<u32>());
/// Reserved flags, a `u32` that must be zero.
const FLAGS_FIELD: Field = VERSION_FIELD.then(size_of::<u32>());
/// The snapshot's last index.
const INDEX_FIELD: Field = FLAGS_FIELD.then(size_of::<u64>());
/// The term of that index.
const TERM_FIELD: Field = INDEX_FIELD.then(size_of::<u64>());
/// The length of the application data.
const DATA_LEN_FIELD: Field = TERM_FIELD.then(size_of::<u64>());
/// The length of the encoded membership.
const CONF_LEN_FIELD: Field = DATA_LEN_FIELD.then(size_of::<u32>());
/// Length of the fixed part of the header; the membership follows it.
pub(crate) const FIXED_HEADER_LEN: usize = CONF_LEN_FIELD.end();

/// Length of the header checksum that ends the header.
pub(crate) const HEADER_CRC_LEN: usize = size_of::<u32>();
/// Length of the checksum that ends the file.
pub(crate) const TRAILER_LEN: usize = size_of::<u32>();

/// Upper bound on the encoded membership. It bounds the allocation a reader
/// makes before the header checksum has been verified. 1 MiB holds about
/// 130,000 node ids, far more than any Raft group has.
pub(crate) const CONF_LEN_MAX: u32 = 1 << 20;

// The offsets the crate docs' table gives.
const _: () = assert!(VERSION_FIELD.offset() == 8);
const _: () = assert!(FLAGS_FIELD.offset() == 12);
const _: () = assert!(INDEX_FIELD.offset() == 16);
const _: () = assert!(TERM_FIELD.offset() == 24);
const _: () = assert!(DATA_LEN_FIELD.offset() == 32);
const _: () = assert!(CONF_LEN_FIELD.offset() == 40);
const _: () = assert!(FIXED_HEADER_LEN == 44);
// The u64 fields are naturally aligned within the header.
const _: () = assert!(INDEX_FIELD.offset().is_multiple_of(8));
const _: () = assert!(TERM_FIELD.offset().is_multiple_of(8));
const _: () = assert!(DATA_LEN_FIELD.offset().is_multiple_of(8));
const _: () = assert!(CONF_LEN_MAX as usize >= codec::CONF_STATE_FIXED_BYTES);

/// Why a snapshot's bytes were rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// The stream ended before the fixed header was complete.
    ShortHeader {
        /// How many header bytes were present.
        len: u64,
    },
    /// The first eight bytes are not [`MAGIC`].
    BadMagic {
        /// The bytes found instead.
        found: [u8; 8],
    },
    /// The version field names a format this crate cannot read.
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// Reserved flag bits are set.
    UnknownFlags {
        /// The flags found.
        found: u32,
    },
    /// The membership length is out of bounds or inconsistent with the set
    /// sizes it announces.
    BadConfLen {
        /// The length found.
        found: u32,
    },
    /// The membership is not in raft-io's canonical `ConfState` layout.
    BadConfState {
        /// What is wrong with it.
        reason: CodecError,
    },
    /// The header checksum does not match the header bytes.
    HeaderChecksum {
        /// The checksum stored in the file.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// The file length differs from what the header announces.
    LengthMismatch {
        /// Header + data + trailer, as announced by the header.
        expected: u64,
        /// The actual length.
        actual: u64,
    },
    /// The stream ended inside the data or the trailer.
    Truncated {
        /// How many more bytes were expected.
        missing: u64,
    },
    /// The checksum over header and data does not match.
    DataChecksum {
        /// The checksum stored in the file.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// The index or term in the header differs from the file name.
    NameMismatch {
        /// The (term, index) the file name announces.
        name: (Term, Index),
        /// The (term, index) the header holds.
        header: (Term, Index),
    },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::ShortHeader { len } => write!(
                f,
                "header truncated: {len} bytes present, {FIXED_HEADER_LEN} needed"
            ),
            Corruption::BadMagic { found } => write!(f, "bad magic {found:02x?}"),
            Corruption::UnsupportedVersion { found } => {
                write!(
                    f,
                    "unsupported format version {found} (this build reads {VERSION})"
                )
            }
            Corruption::UnknownFlags { found } => write!(f, "unknown header flags {found:#x}"),
            Corruption::BadConfLen { found } => write!(f, "invalid membership length {found}"),
            Corruption::BadConfState { reason } => write!(f, "invalid membership: {reason}"),
            Corruption::HeaderChecksum { stored, computed } => write!(
                f,
                "header checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            Corruption::LengthMismatch { expected, actual } => write!(
                f,
                "file is {actual} bytes but its header announces {expected}"
            ),
            Corruption::Truncated { missing } => {
                write!(f, "truncated: {missing} more bytes expected")
            }
            Corruption::DataChecksum { stored, computed } => write!(
                f,
                "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            Corruption::NameMismatch { name, header } => write!(
                f,
                "file name says term {} index {} but header says term {} index {}",
                name.0, name.1, header.0, header.1
            ),
        }
    }
}

/// A decoded and verified header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// What the snapshot covers.
    pub(crate) metadata: SnapshotMetadata,
    /// The length of the application data that follows the header.
    pub(crate) data_len: u64,
    /// The length of the encoded header, checksum included.
    pub(crate) header_len: u64,
}

impl Header {
    /// The length of the whole file: header, data and trailer.
    pub(crate) fn file_len(&self) -> u64 {
        self.header_len + self.data_len + TRAILER_LEN as u64
    }
}

/// Decodes a membership block of exactly `bytes.len()` bytes.
fn decode_conf_state(bytes: &[u8]) -> Result<ConfState, Corruption> {
    let bad = |reason| Corruption::BadConfState { reason };
    let mut r = Reader::new(bytes);
    let cs = codec::decode_conf_state(&mut r).map_err(bad)?;
    r.finish().map_err(bad)?;
    Ok(cs)
}

/// Encodes the header for a snapshot of `data_len` bytes: the fixed part,
/// the membership, and the CRC32 of both.
///
/// # Errors
///
/// The [`CodecError`] of a membership without a canonical encoding.
///
/// # Panics
///
/// If the membership encodes to more than [`CONF_LEN_MAX`] bytes, which
/// would take over 130,000 members.
pub(crate) fn encode_header(
    metadata: &SnapshotMetadata,
    data_len: u64,
) -> Result<Vec<u8>, CodecError> {
    codec::check_conf_state(&metadata.conf_state)?;
    let conf_len = codec::conf_state_len(&metadata.conf_state);
    assert!(
        conf_len <= CONF_LEN_MAX as usize,
        "membership of {conf_len} bytes exceeds {CONF_LEN_MAX}"
    );
    let mut out = Vec::with_capacity(FIXED_HEADER_LEN + conf_len + HEADER_CRC_LEN);
    let mut w = Writer::new(&mut out);
    w.put_bytes(&MAGIC);
    w.put_u32(VERSION);
    w.put_u32(0);
    w.put_u64(metadata.index.get());
    w.put_u64(metadata.term.get());
    w.put_u64(data_len);
    w.put_u32(u32::try_from(conf_len).expect("bounded by CONF_LEN_MAX"));
    debug_assert_eq!(w.written(), FIXED_HEADER_LEN);
    codec::encode_conf_state(&metadata.conf_state, &mut w)?;
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(out.len(), FIXED_HEADER_LEN + conf_len + HEADER_CRC_LEN);
    Ok(out)
}

/// The fields of the fixed header that decide how much more to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FixedHeader {
    /// The format version: [`VERSION`] or version 1.
    pub(crate) version: u32,
    /// The snapshot's last index.
    pub(crate) index: Index,
    /// The term of that index.
    pub(crate) term: Term,
    /// The length of the application data.
    pub(crate) data_len: u64,
    /// The length of the membership encoding that follows.
    pub(crate) conf_len: u32,
}

impl FixedHeader {
    /// The length of the whole header, checksum included.
    pub(crate) fn header_len(&self) -> u64 {
        (FIXED_HEADER_LEN + self.conf_len as usize + HEADER_CRC_LEN) as u64
    }
}

/// Decodes the fixed part of a header. Checks what can be checked before the
/// header checksum is known: magic, version, flags, and the membership
/// length bound.
pub(crate) fn decode_fixed_header(
    bytes: &[u8; FIXED_HEADER_LEN],
) -> Result<FixedHeader, Corruption> {
    // `bytes` is a whole fixed header, so no field read can run short.
    let u32_field = |f: Field| f.get_u32(bytes).expect("within the fixed header");
    let u64_field = |f: Field| f.get_u64(bytes).expect("within the fixed header");
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&bytes[MAGIC_FIELD.range()]);
    if magic != MAGIC {
        return Err(Corruption::BadMagic { found: magic });
    }
    let version = u32_field(VERSION_FIELD);
    let conf_fixed = match version {
        VERSION => codec::CONF_STATE_FIXED_BYTES,
        VERSION_1 => V1_CONF_FIXED_BYTES,
        found => return Err(Corruption::UnsupportedVersion { found }),
    };
    let flags = u32_field(FLAGS_FIELD);
    if flags != 0 {
        return Err(Corruption::UnknownFlags { found: flags });
    }
    let conf_len = u32_field(CONF_LEN_FIELD);
    let ids_len = (conf_len as usize).wrapping_sub(conf_fixed);
    if conf_len > CONF_LEN_MAX
        || (conf_len as usize) < conf_fixed
        || !ids_len.is_multiple_of(size_of::<u64>())
    {
        return Err(Corruption::BadConfLen { found: conf_len });
    }
    Ok(FixedHeader {
        version,
        index: Index(u64_field(INDEX_FIELD)),
        term: Term(u64_field(TERM_FIELD)),
        data_len: u64_field(DATA_LEN_FIELD),
        conf_len,
    })
}

/// Verifies the header checksum and decodes the membership. `fixed` and
/// `rest` are the bytes of the whole header: the fixed part, then the
/// membership followed by the stored checksum.
pub(crate) fn decode_header_rest(
    fixed_bytes: &[u8; FIXED_HEADER_LEN],
    fixed: &FixedHeader,
    rest: &[u8],
) -> Result<Header, Corruption> {
    assert_eq!(
        rest.len(),
        fixed.conf_len as usize + HEADER_CRC_LEN,
        "caller must pass exactly the membership and the header checksum"
    );
    let (conf_bytes, crc_bytes) = rest.split_at(fixed.conf_len as usize);
    let stored = Field::first(HEADER_CRC_LEN)
        .get_u32(crc_bytes)
        .expect("the caller passes the checksum whole");
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(fixed_bytes);
    hasher.update(conf_bytes);
    let computed = hasher.finalize();
    if stored != computed {
        return Err(Corruption::HeaderChecksum { stored, computed });
    }
    let conf_state = if fixed.version == VERSION_1 {
        // The same layout but for the reserved word: insert it.
        let mut v2 = Vec::with_capacity(conf_bytes.len() + size_of::<u32>());
        v2.extend_from_slice(&conf_bytes[..V1_CONF_FIXED_BYTES]);
        v2.extend_from_slice(&[0; size_of::<u32>()]);
        v2.extend_from_slice(&conf_bytes[V1_CONF_FIXED_BYTES..]);
        decode_conf_state(&v2)?
    } else {
        decode_conf_state(conf_bytes)?
    };
    Ok(Header {
        metadata: SnapshotMetadata {
            index: fixed.index,
            term: fixed.term,
            conf_state,
        },
        data_len: fixed.data_len,
        header_len: fixed.header_len(),
    })
}

/// Decodes a whole header held in memory: the convenience form of
/// [`decode_fixed_header`] followed by [`decode_header_rest`].
#[cfg(test)]
pub(crate) fn decode_header(bytes: &[u8]) -> Result<Header, Corruption> {
    let Some(fixed_bytes) = bytes.first_chunk::<FIXED_HEADER_LEN>() else {
        return Err(Corruption::ShortHeader {
            len: bytes.len() as u64,
        });
    };
    let fixed = decode_fixed_header(fixed_bytes)?;
    let header_len = fixed.header_len() as usize;
    if bytes.len() < header_len {
        return Err(Corruption::Truncated {
            missing: (header_len - bytes.len()) as u64,
        });
    }
    decode_header_rest(fixed_bytes, &fixed, &bytes[FIXED_HEADER_LEN..header_len])
}

/// The file name of a snapshot: `<term>-<index>.snap`, both as 16 lowercase
/// hex digits so that names sort like (term, index).
pub(crate) fn file_name(term: Term, index: Index) -> String {
    format!("{:016x}-{:016x}{SNAP_SUFFIX}", term.get(), index.get())
}

/// The suffix of a snapshot file.
pub(crate) const SNAP_SUFFIX: &str = ".snap";

/// Parses a name produced by [`file_name`]; `None` for anything else.
pub(crate) fn parse_file_name(name: &str) -> Option<(Term, Index)> {
    let stem = name.strip_suffix(SNAP_SUFFIX)?;
    let (term, index) = stem.split_once('-')?;
    let hex16 = |s: &str| {
        let canonical = s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        canonical.then(|| u64::from_str_radix(s, 16).ok()).flatten()
    };
    Some((Term(hex16(term)?), Index(hex16(index)?)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;
    use raft_core::NodeId;

    use super::*;

    fn id(raw: u64) -> NodeId {
        NodeId::new(raw).expect("test ids are non-zero")
    }

    fn joint_conf() -> ConfState {
        ConfState {
            voters: [1, 2, 3].map(id).into(),
            learners: [7].map(id).into(),
            voters_outgoing: [1, 2, 4].map(id).into(),
            learners_next: [4].map(id).into(),
            auto_leave: true,
            witnesses: [3].map(id).into(),
        }
    }

    fn header(metadata: &SnapshotMetadata, data_len: u64) -> Vec<u8> {
        encode_header(metadata, data_len).expect("canonical membership")
    }

    fn conf_bytes(cs: &ConfState) -> Vec<u8> {
        let mut out = Vec::new();
        codec::encode_conf_state(cs, &mut Writer::new(&mut out)).expect("canonical");
        out
    }

    fn is_bad_conf(result: Result<ConfState, Corruption>) -> bool {
        matches!(result, Err(Corruption::BadConfState { .. }))
    }

    #[test]
    fn header_round_trips_with_a_joint_membership() {
        let metadata = SnapshotMetadata {
            index: Index(u64::MAX - 1),
            term: Term(42),
            conf_state: joint_conf(),
        };
        let bytes = header(&metadata, 1 << 40);
        let header = decode_header(&bytes).expect("fresh header decodes");
        assert_eq!(header.metadata, metadata);
        assert_eq!(header.data_len, 1 << 40);
        assert_eq!(header.header_len, bytes.len() as u64);
    }

    #[test]
    fn header_fields_sit_at_their_documented_offsets() {
        let metadata = SnapshotMetadata {
            index: Index(0x0102_0304_0506_0708),
            term: Term(0x1112_1314_1516_1718),
            conf_state: ConfState::with_voters([id(9)]),
        };
        let bytes = header(&metadata, 0x2122_2324_2526_2728);
        assert_eq!(&bytes[..8], b"\x89RSNAP\r\n");
        assert_eq!(bytes[VERSION_FIELD.range()], [2, 0, 0, 0]);
        assert_eq!(bytes[FLAGS_FIELD.range()], [0, 0, 0, 0]);
        assert_eq!(bytes[INDEX_FIELD.range()], [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(
            bytes[TERM_FIELD.range()],
            [0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11]
        );
        assert_eq!(
            bytes[DATA_LEN_FIELD.range()],
            [0x28, 0x27, 0x26, 0x25, 0x24, 0x23, 0x22, 0x21]
        );
        assert_eq!(bytes[CONF_LEN_FIELD.range()], [32, 0, 0, 0]);
        let conf = &bytes[FIXED_HEADER_LEN..FIXED_HEADER_LEN + 32];
        assert_eq!(conf[..4], [1, 0, 0, 0], "one voter");
        assert_eq!(conf[4..24], [0; 20], "no other members, no flags, reserved");
        assert_eq!(conf[24..], [9, 0, 0, 0, 0, 0, 0, 0]);
        let crc = crc32fast::hash(&bytes[..FIXED_HEADER_LEN + 32]);
        assert_eq!(bytes[FIXED_HEADER_LEN + 32..], crc.to_le_bytes());
    }

    #[test]
    fn empty_membership_round_trips() {
        let out = conf_bytes(&ConfState::default());
        assert_eq!(out.len(), codec::CONF_STATE_FIXED_BYTES);
        assert_eq!(decode_conf_state(&out), Ok(ConfState::default()));
    }

    #[test]
    fn membership_with_unsorted_or_duplicate_ids_is_rejected() {
        let out = conf_bytes(&ConfState::with_voters([id(1), id(2)]));
        let first = codec::CONF_STATE_FIXED_BYTES;
        let mut swapped = out.clone();
        swapped[first..first + 8].copy_from_slice(&2u64.to_le_bytes());
        swapped[first + 8..].copy_from_slice(&1u64.to_le_bytes());
        assert!(is_bad_conf(decode_conf_state(&swapped)));
        let mut duplicate = out.clone();
        duplicate[first..first + 8].copy_from_slice(&2u64.to_le_bytes());
        assert!(is_bad_conf(decode_conf_state(&duplicate)));
    }

    #[test]
    fn membership_with_a_zero_id_unknown_flag_or_lone_auto_leave_is_rejected() {
        let out = conf_bytes(&ConfState::with_voters([id(5)]));
        let mut zero = out.clone();
        zero[codec::CONF_STATE_FIXED_BYTES..].copy_from_slice(&0u64.to_le_bytes());
        assert!(is_bad_conf(decode_conf_state(&zero)));
        let mut flags = out.clone();
        flags[16] = 2;
        assert!(is_bad_conf(decode_conf_state(&flags)));
        let mut auto_leave = out.clone();
        auto_leave[16] = 1;
        assert!(is_bad_conf(decode_conf_state(&auto_leave)));
    }

    #[test]
    fn a_membership_without_canonical_encoding_is_not_encoded() {
        let metadata = SnapshotMetadata {
            conf_state: ConfState {
                auto_leave: true,
                ..ConfState::with_voters([id(1)])
            },
            ..SnapshotMetadata::default()
        };
        assert_eq!(
            encode_header(&metadata, 0),
            Err(CodecError::AutoLeaveWithoutJoint)
        );
    }

    #[test]
    fn oversized_membership_length_is_rejected_before_allocating() {
        let mut bytes = header(&SnapshotMetadata::default(), 0);
        CONF_LEN_FIELD.put_u32(&mut bytes, u32::MAX);
        assert_eq!(
            decode_header(&bytes),
            Err(Corruption::BadConfLen { found: u32::MAX })
        );
    }

    /// The header version 1 wrote for `metadata`: no reserved word in the
    /// membership.
    pub(crate) fn version_1_header(metadata: &SnapshotMetadata, data_len: u64) -> Vec<u8> {
        let v2 = header(metadata, data_len);
        let conf_len = CONF_LEN_FIELD.get_u32(&v2).expect("fixed") as usize;
        let conf = &v2[FIXED_HEADER_LEN..FIXED_HEADER_LEN + conf_len];
        assert_eq!(
            conf[V1_CONF_FIXED_BYTES..codec::CONF_STATE_FIXED_BYTES],
            [0; 4]
        );
        let mut v1 = v2[..FIXED_HEADER_LEN].to_vec();
        VERSION_FIELD.put_u32(&mut v1, 1);
        CONF_LEN_FIELD.put_u32(&mut v1, (conf_len - 4) as u32);
        v1.extend_from_slice(&conf[..V1_CONF_FIXED_BYTES]);
        v1.extend_from_slice(&conf[codec::CONF_STATE_FIXED_BYTES..]);
        let crc = crc32fast::hash(&v1);
        v1.extend_from_slice(&crc.to_le_bytes());
        v1
    }

    #[test]
    fn a_version_1_header_still_decodes() {
        // Version 1 predates witnesses (the word that counts them was not
        // there at all).
        let metadata = SnapshotMetadata {
            index: Index(9),
            term: Term(2),
            conf_state: ConfState {
                witnesses: Default::default(),
                ..joint_conf()
            },
        };
        let v1 = version_1_header(&metadata, 5);
        let decoded = decode_header(&v1).expect("version 1 is read");
        assert_eq!(decoded.metadata, metadata);
        assert_eq!(decoded.header_len, v1.len() as u64);
    }

    #[test]
    fn an_unknown_version_is_refused_as_unsupported() {
        let mut bytes = header(&SnapshotMetadata::default(), 0);
        VERSION_FIELD.put_u32(&mut bytes, 3);
        assert_eq!(
            decode_header(&bytes),
            Err(Corruption::UnsupportedVersion { found: 3 })
        );
    }

    fn arb_ids() -> impl Strategy<Value = BTreeSet<NodeId>> {
        prop::collection::btree_set(1..=u64::MAX, 0..6)
            .prop_map(|raw| raw.into_iter().map(id).collect())
    }

    fn arb_metadata() -> impl Strategy<Value = SnapshotMetadata> {
        let sets = (arb_ids(), arb_ids(), arb_ids(), arb_ids(), any::<bool>());
        (any::<u64>(), any::<u64>(), sets).prop_map(|(index, term, sets)| {
            let (voters, learners, voters_outgoing, learners_next, auto_leave) = sets;
            // The canonical form: auto_leave only on a joint configuration.
            let auto_leave = auto_leave && !voters_outgoing.is_empty();
            SnapshotMetadata {
                index: Index(index),
                term: Term(term),
                conf_state: ConfState {
                    voters,
                    learners,
                    voters_outgoing,
                    learners_next,
                    auto_leave,
                    witnesses: Default::default(),
                },
            }
        })
    }

    proptest! {
        #[test]
        fn any_metadata_round_trips_through_the_header(
            metadata in arb_metadata(),
            data_len in any::<u64>(),
        ) {
            let bytes = header(&metadata, data_len);
            let header = decode_header(&bytes).expect("fresh header decodes");
            prop_assert_eq!(header.metadata, metadata);
            prop_assert_eq!(header.data_len, data_len);
            prop_assert_eq!(header.header_len, bytes.len() as u64);
        }

        #[test]
        fn damaged_header_either_fails_or_is_the_canonical_encoding_of_what_it_decodes_to(
            metadata in arb_metadata(),
            damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = header(&metadata, 77);
            for (at, value) in damage {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            if let Ok(decoded) = decode_header(&bytes) {
                let again = header(&decoded.metadata, decoded.data_len);
                prop_assert_eq!(&again[..], &bytes[..again.len()]);
            }
        }
    }

    #[test]
    fn file_names_sort_like_term_then_index_and_parse_back() {
        let a = file_name(Term(1), Index(0xffff));
        let b = file_name(Term(2), Index(1));
        assert_eq!(a, "0000000000000001-000000000000ffff.snap");
        assert!(a < b);
        assert_eq!(parse_file_name(&a), Some((Term(1), Index(0xffff))));
        assert_eq!(
            parse_file_name("0000000000000001-000000000000FFFF.snap"),
            None
        );
        assert_eq!(parse_file_name("1-2.snap"), None);
        assert_eq!(parse_file_name(&format!("{a}.broken")), None);
    }
}
