//! The file-system seam of the raft storage crates: every byte `raft-wal`
//! and `raft-snap` read or write goes through a [`Backend`] and the
//! [`FileHandle`]s it opens, so the same code runs on the real file system
//! ([`FileBackend`]) and, in tests, on a simulated one that loses what a
//! power cut would lose (`SimBackend`, feature `sim`). Its [`codec`]
//! module holds what the stores' byte formats share: little-endian readers
//! and writers, and the one binary layout of a `ConfState`.
//!
//! Replacing a file durably, the way both stores write theirs: write a
//! temporary file, sync it, rename it into place, sync the directory.
//!
//! ```
//! use raft_io::{Backend, FileBackend};
//!
//! let dir = tempfile::tempdir()?;
//! let backend = FileBackend::shared();
//! let tmp = dir.path().join("state.tmp");
//! let file = backend.create(&tmp)?;
//! file.write_at(0, b"term 7")?;
//! file.sync_data()?; // the bytes are durable, the name is not yet
//! backend.rename(&tmp, &dir.path().join("state"))?;
//! backend.sync_dir(dir.path())?; // now the name is too
//! assert_eq!(backend.read(&dir.path().join("state"))?, b"term 7");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Durability model
//!
//! POSIX's, taken literally (see the ALICE study, OSDI '14):
//!
//! - [`FileHandle::write_at`] changes only what a running process sees.
//! - [`FileHandle::sync_data`] makes that file's contents durable, and
//!   nothing else: a new file's *name* is durable only after
//!   [`Backend::sync_dir`] on its directory, and so are renames and
//!   removals.
//! - A failed `sync_data` loses the writes it was meant to persist even
//!   though they stay visible to reads, and a later `sync_data` does not
//!   bring them back ("fsyncgate", ATC '20). Callers must treat a failed
//!   sync as fatal.
//!
//! # The simulator (feature `sim`)
//!
//! `SimBackend` keeps, for every file and every directory, what a crash
//! would preserve (the *durable* state) apart from what a running process
//! sees (the *volatile* state). `SimBackend::crash` throws the volatile
//! state away the way a power cut can: it keeps a random subset of the
//! unsynced writes, tears some of them at 512-byte sectors into zeros or
//! garbage, and forgets directory changes (creates, renames, unlinks) whose
//! directory was not synced. `SimBackend::inject_fault` makes the N-th
//! operation fail with EIO, ENOSPC or a short write (`FaultKind`).
//!
//! The simulator is test code: production builds leave the feature off, so
//! it is not compiled into them. Enable it in `[dev-dependencies]`:
//!
//! ```toml
//! [dev-dependencies]
//! raft-io = { version = "0.1", features = ["sim"] }
//! ```
#![deny(missing_docs)]

mod backend;
pub mod codec;
mod disk_full;
mod file;
#[cfg(feature = "sim")]
mod sim;

pub use backend::{Backend, DirLock, FileHandle};
pub use disk_full::is_disk_full;
pub use file::FileBackend;
#[cfg(feature = "sim")]
pub use sim::{FaultKind, SimBackend, SimStats};
