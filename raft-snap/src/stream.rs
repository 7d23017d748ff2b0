//! Encoding and decoding a snapshot in bounded memory, over any
//! [`Write`] or [`Read`].
//!
//! The checksum is computed incrementally as chunks pass, so neither side
//! ever holds more than one chunk of data. The files of
//! [`Snapshotter`](crate::Snapshotter) are written and read with these same
//! types; a socket works just as well.

use std::io::{self, Read, Write};

use raft_core::{Snapshot, SnapshotMetadata};

use crate::error::{DecodeError, EncodeError};
use crate::format::{self, Corruption, FIXED_HEADER_LEN, Header, TRAILER_LEN};

/// The chunk size of a [`SnapshotDecoder`] unless told otherwise: 1 MiB.
pub const DEFAULT_CHUNK_LEN: usize = 1 << 20;

/// Writes one snapshot to a [`Write`]: the header at creation, the data in
/// chunks of any size, the checksum at [`finish`](Self::finish).
///
/// The data length is declared up front because the header carries it: a
/// reader then knows the file's exact length before reading any data, and
/// a receiver knows it from the sender's [`SnapshotDecoder::data_len`].
#[derive(Debug)]
pub struct SnapshotEncoder<W> {
    inner: W,
    crc: crc32fast::Hasher,
    declared_len: u64,
    written_len: u64,
}

impl<W: Write> SnapshotEncoder<W> {
    /// Writes the header of a snapshot with `data_len` bytes of data.
    ///
    /// # Errors
    ///
    /// [`EncodeError::InvalidConfState`] if the membership has no canonical
    /// encoding (nothing is written then); [`EncodeError::Io`] if `inner`
    /// fails.
    pub fn new(
        mut inner: W,
        metadata: &SnapshotMetadata,
        data_len: u64,
    ) -> Result<Self, EncodeError> {
        let header =
            format::encode_header(metadata, data_len).map_err(EncodeError::InvalidConfState)?;
        inner.write_all(&header).map_err(EncodeError::Io)?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        Ok(SnapshotEncoder {
            inner,
            crc,
            declared_len: data_len,
            written_len: 0,
        })
    }

    /// Appends a chunk of data.
    ///
    /// # Errors
    ///
    /// [`EncodeError::DataLength`] if the chunk would exceed the declared
    /// length; nothing is written then. [`EncodeError::Io`] if `inner`
    /// fails.
    pub fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), EncodeError> {
        let after = self.written_len + chunk.len() as u64;
        if after > self.declared_len {
            return Err(EncodeError::DataLength {
                declared: self.declared_len,
                actual: after,
            });
        }
        self.inner.write_all(chunk).map_err(EncodeError::Io)?;
        self.crc.update(chunk);
        self.written_len = after;
        Ok(())
    }

    /// How many bytes of data are still expected.
    pub fn remaining(&self) -> u64 {
        self.declared_len - self.written_len
    }

    /// Writes the checksum, flushes, and returns the inner writer.
    ///
    /// # Errors
    ///
    /// [`EncodeError::DataLength`] if less data was written than declared;
    /// [`EncodeError::Io`] if `inner` fails.
    pub fn finish(mut self) -> Result<W, EncodeError> {
        if self.written_len != self.declared_len {
            return Err(EncodeError::DataLength {
                declared: self.declared_len,
                actual: self.written_len,
            });
        }
        let crc = self.crc.clone().finalize();
        self.inner
            .write_all(&crc.to_le_bytes())
            .and_then(|()| self.inner.flush())
            .map_err(EncodeError::Io)?;
        Ok(self.inner)
    }
}

/// Lets [`io::copy`] feed an encoder. Errors of this crate are wrapped in an
/// [`io::Error`] of kind [`io::ErrorKind::Other`].
impl<W: Write> Write for SnapshotEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_chunk(buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads one snapshot from a [`Read`]: the header is read and verified at
/// creation, the data is handed out in chunks, and the checksum over header
/// and data is verified as the last chunk is read.
///
/// Data handed out is unverified until the decoder has returned its last
/// chunk: a consumer must not act on a snapshot (apply it, acknowledge it)
/// before [`next_chunk`](Self::next_chunk) has returned `Ok(None)`.
#[derive(Debug)]
pub struct SnapshotDecoder<R> {
    inner: R,
    header: Header,
    crc: crc32fast::Hasher,
    remaining_len: u64,
    /// The most data [`next_chunk`](Self::next_chunk) hands out at once.
    chunk_len: usize,
    /// The chunk buffer; allocated on the first `next_chunk`.
    buf: Vec<u8>,
    /// True once the caller has checked `data_len` against the real length
    /// of the source, so allocating `data_len` bytes up front is safe.
    len_verified: bool,
    state: DecodeState,
}

impl<R: Read> SnapshotDecoder<R> {
    /// Reads and verifies the header, with chunks of [`DEFAULT_CHUNK_LEN`].
    ///
    /// # Errors
    ///
    /// [`DecodeError::Corrupt`] if the header is damaged or truncated;
    /// [`DecodeError::Io`] if `inner` fails.
    pub fn new(inner: R) -> Result<Self, DecodeError> {
        Self::with_chunk_len(inner, DEFAULT_CHUNK_LEN)
    }

    /// Like [`new`](Self::new), with chunks of at most `chunk_len` bytes.
    ///
    /// # Panics
    ///
    /// If `chunk_len` is zero.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_chunk_len(mut inner: R, chunk_len: usize) -> Result<Self, DecodeError> {
        assert!(chunk_len > 0, "chunk length must be positive");
        let mut fixed_bytes = [0u8; FIXED_HEADER_LEN];
        let got = read_full(&mut inner, &mut fixed_bytes).map_err(DecodeError::Io)?;
        if got < FIXED_HEADER_LEN {
            let len = got as u64;
            return Err(DecodeError::Corrupt(Corruption::ShortHeader { len }));
        }
        let fixed = format::decode_fixed_header(&fixed_bytes).map_err(DecodeError::Corrupt)?;
        let mut rest = vec![0u8; fixed.header_len() as usize - FIXED_HEADER_LEN];
        let got = read_full(&mut inner, &mut rest).map_err(DecodeError::Io)?;
        if got < rest.len() {
            let missing = (rest.len() - got) as u64 + fixed.data_len + TRAILER_LEN as u64;
            return Err(DecodeError::Corrupt(Corruption::Truncated { missing }));
        }
        let header = format::decode_header_rest(&fixed_bytes, &fixed, &rest)
            .map_err(DecodeError::Corrupt)?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&fixed_bytes);
        crc.update(&rest);
        Ok(SnapshotDecoder {
            inner,
            remaining_len: header.data_len,
            header,
            crc,
            chunk_len,
            buf: Vec::new(),
            len_verified: false,
            state: DecodeState::Data,
        })
    }

    /// What the snapshot covers. Verified by the header checksum.
    pub fn metadata(&self) -> &SnapshotMetadata {
        &self.header.metadata
    }

    /// The length of the data.
    pub fn data_len(&self) -> u64 {
        self.header.data_len
    }

    /// The length of the whole encoding: header, data and checksum.
    pub fn encoded_len(&self) -> u64 {
        self.header.file_len()
    }

    /// How many bytes of data have not been handed out yet.
    pub fn remaining(&self) -> u64 {
        self.remaining_len
    }

    /// The next chunk of data, or `None` once all data has been handed out
    /// and verified. The last chunk is only returned after the checksum
    /// over header and data has been verified.
    ///
    /// # Errors
    ///
    /// A corruption error if the stream ends early or the checksum does not
    /// match; an I/O error of the source. After an error the decoder is
    /// spent and every further call fails too, so a caller that loops
    /// until `None` can never mistake a failed snapshot for a verified one.
    pub fn next_chunk(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        if self.check_usable()? == DecodeState::Done {
            return Ok(None);
        }
        if self.remaining_len == 0 {
            // Only reached for a snapshot without data.
            self.verify_trailer()?;
            return Ok(None);
        }
        let len = self.next_read_len();
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        let mut buf = std::mem::take(&mut self.buf);
        let result = self.read_data(&mut buf[..len]);
        self.buf = buf;
        result?;
        Ok(Some(&self.buf[..len]))
    }

    /// Reads all remaining data into memory and returns the snapshot.
    /// Reads straight into the result, without the chunk buffer.
    ///
    /// # Errors
    ///
    /// As [`next_chunk`](Self::next_chunk).
    pub fn read_to_snapshot(mut self) -> Result<Snapshot, DecodeError> {
        let mut data = Vec::new();
        if self.check_usable()? == DecodeState::Data {
            // A stream's header may announce any length; grow as data
            // actually arrives rather than trusting it with an allocation.
            let announced = usize::try_from(self.remaining_len).unwrap_or(usize::MAX);
            let cap = if self.len_verified {
                announced
            } else {
                announced.min(self.chunk_len)
            };
            data.reserve_exact(cap);
            if self.remaining_len == 0 {
                self.verify_trailer()?;
            }
            while self.remaining_len > 0 {
                let start = data.len();
                data.resize(start + self.next_read_len(), 0);
                self.read_data(&mut data[start..])?;
            }
        }
        debug_assert_eq!(self.state, DecodeState::Done);
        Ok(Snapshot {
            metadata: self.header.metadata,
            data: data.into(),
        })
    }

    /// Records that the caller checked the announced length against the
    /// source, e.g. a file's size.
    pub(crate) fn set_len_verified(&mut self) {
        self.len_verified = true;
    }

    /// `Data` or `Done`; an error if an earlier call failed.
    fn check_usable(&self) -> Result<DecodeState, DecodeError> {
        match self.state {
            DecodeState::Failed => Err(DecodeError::Spent),
            state => Ok(state),
        }
    }

    fn next_read_len(&self) -> usize {
        usize::try_from(self.remaining_len).map_or(self.chunk_len, |n| n.min(self.chunk_len))
    }

    /// Fills `buf` (at most the remaining length) with data, folds it into
    /// the checksum, and verifies the trailer after the last byte.
    fn read_data(&mut self, buf: &mut [u8]) -> Result<(), DecodeError> {
        debug_assert_eq!(self.state, DecodeState::Data);
        debug_assert!(buf.len() as u64 <= self.remaining_len);
        let got = match read_full(&mut self.inner, buf) {
            Ok(got) => got,
            Err(e) => return Err(self.fail(DecodeError::Io(e))),
        };
        if got < buf.len() {
            let missing = self.remaining_len - got as u64 + TRAILER_LEN as u64;
            return Err(self.fail(DecodeError::Corrupt(Corruption::Truncated { missing })));
        }
        self.crc.update(buf);
        self.remaining_len -= buf.len() as u64;
        if self.remaining_len == 0 {
            self.verify_trailer()?;
        }
        Ok(())
    }

    fn fail(&mut self, e: DecodeError) -> DecodeError {
        self.state = DecodeState::Failed;
        e
    }

    /// Reads the trailer and checks it; moves to `Done` or `Failed`.
    fn verify_trailer(&mut self) -> Result<(), DecodeError> {
        debug_assert_eq!(self.remaining_len, 0);
        let mut trailer = [0u8; TRAILER_LEN];
        let got = match read_full(&mut self.inner, &mut trailer) {
            Ok(got) => got,
            Err(e) => return Err(self.fail(DecodeError::Io(e))),
        };
        if got < TRAILER_LEN {
            let missing = (TRAILER_LEN - got) as u64;
            return Err(self.fail(DecodeError::Corrupt(Corruption::Truncated { missing })));
        }
        let stored = u32::from_le_bytes(trailer);
        let computed = self.crc.clone().finalize();
        if stored != computed {
            let reason = Corruption::DataChecksum { stored, computed };
            return Err(self.fail(DecodeError::Corrupt(reason)));
        }
        self.state = DecodeState::Done;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecodeState {
    /// Data (or, for empty data, the trailer) is still to be read.
    Data,
    /// Everything was read and the checksum matched.
    Done,
    /// An error was returned; the decoder refuses to go on.
    Failed,
}

/// Reads until `buf` is full or the source ends; returns the bytes read.
/// Unlike [`Read::read_exact`] it reports how much was there, which the
/// corruption messages need.
fn read_full(inner: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match inner.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use raft_core::{ConfState, Index, NodeId, Term};

    use super::*;

    fn metadata() -> SnapshotMetadata {
        let ids = |raw: &[u64]| -> BTreeSet<NodeId> {
            raw.iter()
                .map(|&r| NodeId::new(r).expect("non-zero"))
                .collect()
        };
        SnapshotMetadata {
            index: Index(1234),
            term: Term(7),
            conf_state: ConfState {
                voters: ids(&[1, 2, 3]),
                learners: ids(&[5]),
                voters_outgoing: ids(&[1, 2, 4]),
                learners_next: ids(&[4]),
                auto_leave: false,
                witnesses: ids(&[3]),
            },
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn encode(metadata: &SnapshotMetadata, data: &[u8], chunk_len: usize) -> Vec<u8> {
        let mut enc = SnapshotEncoder::new(Vec::new(), metadata, data.len() as u64)
            .expect("writing to a Vec cannot fail");
        for chunk in data.chunks(chunk_len) {
            enc.write_chunk(chunk).expect("within the declared length");
        }
        enc.finish().expect("all data written")
    }

    fn decode(bytes: &[u8], chunk_len: usize) -> Result<Snapshot, DecodeError> {
        SnapshotDecoder::with_chunk_len(bytes, chunk_len)?.read_to_snapshot()
    }

    #[test]
    fn round_trip_preserves_metadata_and_data_for_any_chunking() {
        let data = data(10_000);
        for write_chunk in [1, 7, 4096, 10_000, 20_000] {
            let bytes = encode(&metadata(), &data, write_chunk);
            for read_chunk in [1, 13, 4096, 1 << 20] {
                let snap = decode(&bytes, read_chunk).expect("fresh encoding decodes");
                assert_eq!(snap.metadata, metadata());
                assert_eq!(snap.data, data);
            }
        }
    }

    #[test]
    fn empty_data_round_trips_and_is_verified() {
        let bytes = encode(&SnapshotMetadata::default(), &[], 1);
        let snap = decode(&bytes, 8).expect("fresh encoding decodes");
        assert!(snap.data.is_empty());
        let mut flipped = bytes.clone();
        *flipped.last_mut().expect("non-empty") ^= 1;
        let err = decode(&flipped, 8).expect_err("checksum flip is detected");
        assert!(matches!(
            err.corruption(),
            Some(Corruption::DataChecksum { .. })
        ));
    }

    #[test]
    fn chunks_never_exceed_the_chunk_length_and_cover_the_data_exactly() {
        let data = data(1000);
        let bytes = encode(&metadata(), &data, 1000);
        let mut dec = SnapshotDecoder::with_chunk_len(&bytes[..], 300).expect("header is valid");
        assert_eq!(dec.data_len(), 1000);
        assert_eq!(dec.encoded_len(), bytes.len() as u64);
        let mut lens = Vec::new();
        while let Some(chunk) = dec.next_chunk().expect("valid") {
            lens.push(chunk.len());
        }
        assert_eq!(lens, [300, 300, 300, 100]);
        assert_eq!(dec.next_chunk().expect("still done"), None);
    }

    #[test]
    fn writing_more_than_declared_is_refused_without_writing() {
        let mut enc = SnapshotEncoder::new(Vec::new(), &metadata(), 4).expect("header written");
        enc.write_chunk(b"abc").expect("within bounds");
        let err = enc
            .write_chunk(b"de")
            .expect_err("beyond the declared length");
        assert!(matches!(
            err,
            EncodeError::DataLength {
                declared: 4,
                actual: 5
            }
        ));
        enc.write_chunk(b"d").expect("exactly the declared length");
        let bytes = enc.finish().expect("complete");
        assert_eq!(decode(&bytes, 2).expect("valid").data, &b"abcd"[..]);
    }

    #[test]
    fn finishing_with_less_than_declared_is_refused() {
        let mut enc = SnapshotEncoder::new(Vec::new(), &metadata(), 4).expect("header written");
        enc.write_chunk(b"ab").expect("within bounds");
        assert_eq!(enc.remaining(), 2);
        let err = enc.finish().expect_err("two bytes short");
        assert!(matches!(
            err,
            EncodeError::DataLength {
                declared: 4,
                actual: 2
            }
        ));
    }

    #[test]
    fn every_truncation_of_a_small_encoding_is_detected() {
        let bytes = encode(&metadata(), &data(100), 100);
        for len in 0..bytes.len() {
            let err = decode(&bytes[..len], 16).expect_err("truncated encoding must fail");
            assert!(err.is_corrupt(), "truncation to {len} bytes gave {err}");
        }
    }

    #[test]
    fn bit_flip_anywhere_in_a_small_encoding_is_detected() {
        let bytes = encode(&metadata(), &data(100), 100);
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let err = decode(&flipped, 16).expect_err("flipped encoding must fail");
            assert!(err.is_corrupt(), "flip of bit {bit} gave {err}");
        }
    }

    #[test]
    fn a_failed_decoder_keeps_failing_instead_of_reporting_the_end() {
        let mut bytes = encode(&metadata(), &data(100), 100);
        let last = bytes.len() - 1;
        bytes[last] ^= 0x80;
        let mut dec = SnapshotDecoder::with_chunk_len(&bytes[..], 64).expect("header is intact");
        assert!(
            dec.next_chunk()
                .expect("first chunk is not yet checked")
                .is_some()
        );
        assert!(
            dec.next_chunk().expect_err("last chunk").is_corrupt(),
            "last chunk fails the checksum"
        );
        assert!(
            matches!(dec.next_chunk(), Err(DecodeError::Spent)),
            "and so does every later call"
        );
        assert!(matches!(dec.next_chunk(), Err(DecodeError::Spent)));
    }

    #[test]
    fn stream_announcing_a_huge_length_fails_as_truncated_without_allocating_it() {
        let mut bytes = format::encode_header(&metadata(), 1 << 50).expect("canonical");
        bytes.extend_from_slice(&data(10));
        let err = decode(&bytes, 1 << 20).expect_err("ends after ten bytes");
        let missing = (1u64 << 50) - 10 + TRAILER_LEN as u64;
        assert_eq!(err.corruption(), Some(&Corruption::Truncated { missing }));
    }

    #[test]
    fn io_copy_feeds_an_encoder() {
        let data = data(5000);
        let enc = SnapshotEncoder::new(Vec::new(), &metadata(), 5000).expect("header written");
        let mut enc = enc;
        io::copy(&mut &data[..], &mut enc).expect("copy within bounds");
        let bytes = enc.finish().expect("complete");
        assert_eq!(decode(&bytes, 999).expect("valid").data, data);
    }
}
