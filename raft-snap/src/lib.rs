//! Durable, verified Raft snapshot files.
//!
//! A [`Snapshotter`] owns a directory of snapshots named
//! `<term>-<index>.snap` (16 hex digits each). [`Snapshotter::save`] makes a
//! snapshot durable before it returns; [`Snapshotter::load_newest`] returns
//! the newest one that verifies, renaming any broken one to `*.broken` on
//! the way.
//!
//! ```
//! use raft_core::{ConfState, Index, NodeId, SnapshotMetadata, Term};
//! use raft_snap::Snapshotter;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let snapshotter = Snapshotter::new(dir.path().join("snap"))?;
//! let voters = [1, 2, 3].map(|id| NodeId::new(id).expect("non-zero"));
//! let metadata = SnapshotMetadata {
//!     index: Index(1000),
//!     term: Term(5),
//!     conf_state: ConfState::with_voters(voters),
//! };
//! snapshotter.save(&metadata, b"the state machine")?;
//!
//! let snapshot = snapshotter.load_newest()?;
//! assert_eq!(snapshot.metadata, metadata);
//! assert_eq!(snapshot.data, &b"the state machine"[..]);
//! # Ok(())
//! # }
//! ```
//!
//! # Streaming
//!
//! A state machine of several GiB never has to be in memory at once.
//! [`Snapshotter::writer`] returns a [`SnapshotWriter`] that takes the data
//! in chunks, and [`Snapshotter::open_newest`] a [`SnapshotReader`] that
//! hands it out in chunks; both compute the checksum incrementally. The same
//! encoding over any [`std::io::Write`] or [`std::io::Read`], a socket for
//! instance, is [`SnapshotEncoder`] and [`SnapshotDecoder`]. Data read from
//! a stream is unverified until the reader has reported the end.
//!
//! # Durability
//!
//! Saving writes a temporary file `<name>.<n>.tmp`, syncs it
//! (`fdatasync`), renames it to `<name>`, and syncs the directory. A crash
//! at any point leaves either the old set of snapshots or the new one, and
//! leftover temporary files are deleted when the directory is next opened.
//! Raft's ordering rule is the caller's: save the snapshot *before*
//! recording it in the WAL, and load with
//! [`Snapshotter::load_newest_matching`] so that only snapshots the WAL
//! knows about are used. All file-system calls go through
//! [`raft_io::Backend`], so the same code runs on the real file system
//! and on the crash-simulating `SimBackend` in tests.
//!
//! # File format
//!
//! All integers are little-endian. Version 2:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `89 52 53 4e 41 50 0d 0a` (`\x89RSNAP\r\n`) |
//! | 8 | 4 | format version, `2` |
//! | 12 | 4 | flags, `0` (reserved) |
//! | 16 | 8 | index: the last log index the snapshot covers |
//! | 24 | 8 | term of that index |
//! | 32 | 8 | `data_len`: length of the application data |
//! | 40 | 4 | `conf_len`: length of the membership encoding, at most 1 MiB |
//! | 44 | `conf_len` | membership (below) |
//! | 44 + `conf_len` | 4 | header CRC32 over bytes `0 .. 44 + conf_len` |
//! | `H` = 48 + `conf_len` | `data_len` | application data |
//! | `H` + `data_len` | 4 | CRC32 over bytes `0 .. H + data_len`: header and data |
//!
//! The membership (`ConfState`) is [`raft_io::codec`]'s one layout, the
//! same bytes the WAL's snapshot markers hold: four `u32` set sizes
//! (voters, learners, outgoing voters, next learners), a `u32` flags word
//! (bit 0: `auto_leave`; others zero), a reserved `u32` (zero), then every
//! node id as a `u64`, set by set, ascending. Readers accept only this
//! canonical form, which also requires `auto_leave` to be set only on a
//! joint configuration; a snapshot whose membership has none is refused
//! before anything is written.
//!
//! Version 1 had no reserved word in the membership (20 fixed bytes, not
//! 24). Version 2 took the WAL's layout so that one encoding, with one set
//! of canonical rules, serves both stores. This crate writes version 2 and
//! reads both, so snapshots written before the change still load; any
//! other version is [`Corruption::UnsupportedVersion`].
//!
//! The header has its own checksum so a reader can trust `data_len` and the
//! membership before reading any data; the file's length must then equal
//! `H + data_len + 4` exactly. The CRC is CRC-32 (IEEE, as `crc32fast`
//! computes it). Any single-bit flip or truncation of a file is detected;
//! the tests check every one for a small file.
//!
//! # Errors
//!
//! One error enum per operation, each naming the file or directory and the
//! cause: [`OpenDirError`] for [`Snapshotter::new`], [`SaveError`] for
//! saving (and [`SnapshotWriter`]), [`LoadError`] for the `open*` and
//! `load_newest*` methods (and [`SnapshotReader`]), [`ListError`] and
//! [`PurgeError`] for listing and purging, and [`EncodeError`] and
//! [`DecodeError`] for streams that are not files of this crate. Each I/O
//! failure is its own variant (create, write, sync, rename, ...), so
//! callers match on the step rather than on a string.
//! [`LoadError::NotFound`] means no usable snapshot: none in the
//! directory, none that verifies, or none the caller asked for. A
//! corruption names a [`Corruption`] reason.
#![deny(missing_docs)]

mod error;
mod format;
pub mod inspect;
mod snapshotter;
mod stream;

pub use error::{
    DecodeError, EncodeError, ListError, LoadError, OpenDirError, PurgeError, SaveError,
};
pub use format::{Corruption, MAGIC, VERSION};
pub use snapshotter::{SnapshotReader, SnapshotWriter, Snapshotter};
pub use stream::{DEFAULT_CHUNK_LEN, SnapshotDecoder, SnapshotEncoder};
