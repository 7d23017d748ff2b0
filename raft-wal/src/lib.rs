//! A crash-safe write-ahead log for one Raft node: entries, the hard state
//! and snapshot markers, in checksummed, segmented files.
//!
//! [`Wal::open`] recovers a directory and returns what it read
//! ([`Recovered`]: hard state, the entries after the caller's snapshot);
//! [`Wal::save`] appends a batch (an entry at or below the last index
//! replaces the log from there, as Raft's conflict truncation requires);
//! [`Wal::save_snapshot_marker`] records where a snapshot ends;
//! [`Wal::release_to`] deletes segments a snapshot made unnecessary. All
//! file I/O goes through [`raft_io::Backend`], so tests run the same code
//! on raft-io's `SimBackend` (feature `sim`), which simulates crashes and
//! I/O faults.
//!
//! ```
//! use bytes::Bytes;
//! use raft_core::{Entry, HardState, Index, Term};
//! use raft_io::SimBackend;
//! use raft_wal::{Wal, WalOptions};
//!
//! let fs = SimBackend::new();
//! let options = WalOptions::new().backend(fs.shared()).segment_size_bytes(4096);
//! let (wal, recovered) = Wal::open("/wal", options.clone())?;
//! assert!(recovered.entries.is_empty());
//!
//! let hs = HardState { term: Term(1), vote: None, commit: Index(0) };
//! let e = Entry::new(Term(1), Index(1), Bytes::from_static(b"x"));
//! wal.save(Some(&hs), &[e.clone()], true)?; // durable when this returns
//! drop(wal);
//!
//! fs.crash(7); // a power cut: unsynced data may go, synced data stays
//! let (_wal, recovered) = Wal::open("/wal", options)?;
//! assert_eq!(recovered.entries, vec![e]);
//! assert_eq!(recovered.hard_state, hs);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Many groups, one log
//!
//! [`SharedWal`] is the same log for a host running many Raft groups: one
//! [`SharedWal::save`] writes several groups' entries and hard states as
//! one batch, so they share one fdatasync, and concurrent saves share them
//! too. Each group keeps its own hard state, snapshot markers and release
//! point; a segment goes once no group needs it, and
//! [`SharedWal::oldest_holder`] names the group that keeps the oldest one.
//! Its layout and rules are in [`SharedWal`]'s docs.
//!
//! ```
//! use bytes::Bytes;
//! use raft_core::{Entry, GroupId, HardState, Index, Term};
//! use raft_io::SimBackend;
//! use raft_wal::{GroupWrite, SharedWal, WalOptions};
//!
//! let fs = SimBackend::new();
//! let options = WalOptions::new().backend(fs.shared());
//! let (wal, _) = SharedWal::open("/wal", options.clone())?;
//! let hs = HardState { term: Term(1), vote: None, commit: Index(0) };
//! let e = [Entry::new(Term(1), Index(1), Bytes::from_static(b"x"))];
//! let writes = [GroupWrite { group: GroupId(1), hard_state: Some(&hs), entries: &e },
//!               GroupWrite { group: GroupId(2), hard_state: None, entries: &e }];
//! wal.save(&writes, true)?; // one batch, one fdatasync, both groups durable
//! drop(wal);
//!
//! fs.crash(7);
//! let (_wal, recovered) = SharedWal::open("/wal", options)?;
//! let (_, entries) = recovered.groups[&GroupId(2)].clone().entries_after(None)?;
//! assert_eq!(entries, e);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Durability contract
//!
//! - `save(.., sync = true)` returns after an `fdatasync` that covers the
//!   batch. Concurrent callers share one `fdatasync` (group commit); a batch
//!   of any size costs one. `sync = false` writes without waiting, for
//!   `Ready`s whose `must_sync` is false.
//! - A new segment is written under a temporary name, fsynced, renamed and
//!   the directory fsynced before any batch goes into it; the segment it
//!   replaces is fsynced first, unless every batch in it already was. `release_to` deletes and then fsyncs the
//!   directory.
//! - Any failed write or fsync **poisons** the WAL: every later call returns
//!   `Poisoned` until it is reopened, because after a failed fsync the page
//!   cache may claim data is clean that never reached the disk.
//! - An exclusive `flock` on the directory: a second opener gets
//!   [`OpenError::Locked`].
//! - Powersafe overwrite is assumed (a torn write leaves the bytes outside
//!   its sectors intact); sector atomicity is not.
//!
//! # Byte layout
//!
//! All integers are little-endian. A directory holds segment files named
//! `{segment_id:016x}-{first_index:016x}.wal`; ids are consecutive and never
//! reused. Temporary files end in `.tmp`. A file named `tail-copy` exists
//! only while `open` rewrites the last segment's tail (see the end of
//! [Recovery rules](#recovery-rules)).
//!
//! Segment header, 40 bytes:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `89 52 57 41 4c 0d 0a 1a` (`\x89RWAL\r\n\x1a`) |
//! | 8 | 4 | format version, 1 |
//! | 12 | 4 | reserved, 0 |
//! | 16 | 8 | segment id |
//! | 24 | 8 | first index: the index the log continues at |
//! | 32 | 4 | CRC32 of bytes 0..32 |
//! | 36 | 4 | reserved, 0 |
//!
//! Then frames, each starting at a multiple of 8 (so a frame header never
//! spans two sectors):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | payload length `len` (≤ `max_record_bytes` and ≤ what is left of the file) |
//! | 4 | 1 | type: 1 entry, 2 hard state, 3 snapshot marker, 4 commit; **0 is invalid** so zeroed space never decodes |
//! | 5 | 3 | reserved, 0 |
//! | 8 | 4 | CRC32 of (segment id as 8 bytes, bytes 0..8 of this header, payload) |
//! | 12 | 4 | reserved, 0 |
//! | 16 | `len` | payload, then zeros up to a multiple of 8 |
//!
//! The CRC is salted with the segment id, so a stale frame from another
//! segment never verifies. Payloads:
//!
//! - **entry**: index u64, term u64, kind u8 (0 normal, 1 conf change,
//!   2 conf change v2), 7 zero bytes, data.
//! - **hard state**: term u64, vote u64 (0 = none), commit u64.
//! - **snapshot marker**: index u64, term u64, then the membership in
//!   [`raft_io::codec`]'s one `ConfState` layout (the one snapshot files
//!   use too): four u32 counts (voters, learners, outgoing voters, next
//!   learners), flags u32 (bit 0: auto-leave), reserved u32 (0), then the
//!   node ids as u64 in that order, each set ascending. Only that canonical
//!   form decodes (ids non-zero, strictly ascending within a set,
//!   auto-leave only on a joint configuration); a marker whose membership
//!   has none is refused ([`SaveError::InvalidConfState`]). These are the
//!   bytes version 1 always wrote ("auto-leave u8, 7 zero bytes"), so the
//!   format version stays 1; what changed is that the reader now rejects
//!   unsorted ids and a lone auto-leave, which no writer produced.
//! - **commit**: batch start offset u64, synced-through offset u64, frame
//!   count u32, 4 zero bytes. It ends every batch; frames of a batch without
//!   its commit frame do not count. *Synced-through* is the offset up to
//!   which the segment was known durable when the batch was written.
//!
//! Each `save` is one batch: an optional hard-state frame, the entry frames,
//! a commit frame. Every segment starts with a batch carrying the current
//! hard state and newest snapshot marker, so releasing older segments never
//! loses either. A marker past the last index restarts the log after it.
//!
//! A segment holds only indexes at or above its first index. An entry below
//! the last index replaces the suffix in place when it stays within the
//! current segment; a replacement reaching below the current segment's
//! first index starts a new segment with that first index (the batch is the
//! new segment's first batch, made durable by its rename). Recovery applies
//! each segment's first index as a truncation point, and `release_to` can
//! then drop whole segments by looking only at the next segment's first
//! index.
//!
//! # Recovery rules
//!
//! | damage found on open | action |
//! |---|---|
//! | zeroed (preallocated) space after the last frame | fine |
//! | last segment: torn or incomplete final batch(es), nothing proven durable after | truncate to the last complete batch, zero the rest, fsync, report in [`Recovered::truncated_tail`] |
//! | a bad frame followed by a valid commit frame whose synced-through offset lies past the damage, or damage in any earlier segment (rotation fsynced it) | refuse: [`OpenError::Corrupt`] with segment, offset and last good index |
//! | index gap, missing or duplicate segment, misnamed segment | refuse |
//! | hard state corrupt, or commit beyond the last index | refuse |
//! | leftover temporary files | delete |
//! | leftover `tail-copy` (an interrupted tail rewrite) | finish the rewrite from it, fsync, delete it; refuse with [`OpenError::CorruptTailCopy`] if it does not verify or names a missing segment |
//!
//! "Valid later frame" is narrowed to a commit frame that *proves* the
//! damaged bytes had been synced, because a power cut can persist the
//! sectors of an unsynced group of writes in any order: a valid frame after
//! a torn one is normal for an unsynced tail and says nothing about
//! durability. Damage in data that a later batch records as synced is
//! corruption and is never repaired automatically.
//!
//! Whatever [`Wal::open`] returns is durable when it returns. A process
//! that died between a write and its fsync leaves the batch in the page
//! cache, where recovery reads it; since the caller acts on it as durable
//! (raft grants a recovered vote again without another fsync), open
//! rewrites the last segment's bytes after its last batch's synced-through
//! offset, fsyncs them and fsyncs the directory. An fsync alone would not
//! do: after a failed fsync the pages are clean but were never written.
//!
//! Some of those bytes may already be durable (the last batch was synced,
//! but only a later batch could have recorded it), and a power cut during
//! the rewrite may tear them. So the rewrite goes through a copy, like a
//! database's doublewrite buffer: the bytes are written to `tail-copy.tmp`,
//! fsynced, renamed to `tail-copy`, the directory fsynced; then written in
//! place and fsynced; then the copy is deleted and the directory fsynced.
//! An `open` that finds the copy finishes the rewrite from it before
//! reading the log. The copy's layout: magic `RWALCOPY` (8 bytes), version
//! u32 (1), reserved u32 (0), segment id u64, offset u64, length u64, CRC32
//! u32 of the 40 bytes before it and the data, reserved u32 (0), the data.
//!
//! Known gap (shared with hashicorp/raft-wal): losing the whole last segment
//! file is not detected.
//!
//! # Cargo features
//!
//! - `testing`: makes the frame codec public as `raft_wal::format`
//!   (segment headers, frames, commit records, the damage kinds), for tests
//!   that build or take apart segment files byte by byte, and for fuzzing.
//!   It is not a stable API. This crate's own integration tests turn it on
//!   through a dev-dependency on the crate itself; a normal build leaves it
//!   off. [`inspect`] is public either way, for the `raft-wal` tool.
#![deny(missing_docs)]

mod checks;
mod error;
// The frame codec is internal: its layout is documented above, and only
// tests and the fuzz target need to build frames by hand (feature
// `testing`, below).
#[cfg(not(feature = "testing"))]
mod format;
#[cfg(feature = "testing")]
pub mod format;
mod group_commit;
pub mod inspect;
mod options;
mod recovery;
mod rotation;
mod shared;
mod state;
mod wal;

/// The file-system seam, [`raft_io`], re-exported for callers that name it
/// through this crate.
pub use raft_io as io;

pub use error::{OpenError, ReleaseError, SaveError};
pub use format::{DamageKind, Layout, SnapshotMarker};
pub use options::{DEFAULT_MAX_RECORD_BYTES, DEFAULT_SEGMENT_SIZE_BYTES, WalOptions};
pub use recovery::{Recovered, TailTruncation};
pub use shared::{GroupRecovered, GroupWrite, SegmentHolder, SharedRecovered, SharedWal};
pub use state::WalStats;
pub use wal::Wal;
