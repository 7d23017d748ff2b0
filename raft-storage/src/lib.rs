//! Durable storage for [raft-core](raft_core): a write-ahead log, snapshot
//! files and an in-memory index behind one call per Ready.
//!
//! [`DiskStorage`] implements [`raft_core::Storage`] over
//! [`raft_wal`] and [`raft_snap`]. An application opens it, starts its
//! `RawNode` from what [`DiskStorage::open`] recovered, and for each Ready
//! calls [`DiskStorage::persist`]: the received snapshot (file, then WAL
//! marker), the entries and the hard state, fsynced iff the Ready's
//! `must_sync`. [`DiskStorage::snapshot_and_compact`] takes a snapshot
//! with the ordering rules a crash needs (file before marker, marker
//! before compaction, release only what the oldest kept snapshot does not
//! need), and [`PersistWriter`] persists on a thread of its own for
//! `async_storage_writes`.
//!
//! ```
//! use std::sync::Arc;
//! use raft_core::{Config, ConfState, FoundingLog, NodeId, RawNode};
//! use raft_storage::{DiskStorage, StorageOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let id = NodeId::new(1).expect("non-zero");
//! let (storage, recovery) = DiskStorage::open(dir.path(), StorageOptions::new())?;
//! let storage = Arc::new(storage);
//! if recovery.fresh {
//!     storage.bootstrap(&FoundingLog::from_conf_state(&ConfState::with_voters([id]))?)?;
//! }
//! let mut config = Config::new(id);
//! config.applied = recovery.applied();
//! let mut node = RawNode::new(config, Arc::clone(&storage))?;
//!
//! let mut handle = |node: &mut RawNode<Arc<DiskStorage>>| -> Result<(), Box<dyn std::error::Error>> {
//!     while node.has_ready() {
//!         let rd = node.ready()?;
//!         // (send rd.messages)
//!         storage.persist(&rd)?; // durable when it returns, if rd.must_sync
//!         // (send rd.persisted_messages)
//!         for e in &rd.committed_entries {
//!             if let Some(cc) = raft_core::AnyConfChange::from_entry(e)? {
//!                 storage.set_conf_state(node.apply_conf_change(&cc)?);
//!             } // else apply e to the state machine
//!         }
//!         node.advance()?;
//!     }
//!     Ok(())
//! };
//! handle(&mut node)?; // applies the founding membership
//! node.campaign()?;
//! handle(&mut node)?;
//! assert_eq!(node.status().hard_state.commit.get(), 2, "the founding entry and the no-op");
//! drop(node);
//! drop(storage);
//!
//! // A restart finds the log where it was.
//! let (_storage, recovery) = DiskStorage::open(dir.path(), StorageOptions::new())?;
//! assert!(!recovery.fresh);
//! assert_eq!(recovery.last_index.get(), 2);
//! # Ok(())
//! # }
//! ```
//!
//! # Layout and recovery
//!
//! A storage directory holds `wal/` (raft-wal segments) and `snap/`
//! (raft-snap files). [`DiskStorage::open`] loads the newest snapshot that
//! verifies and that the WAL has a marker for, and the log after it:
//!
//! | found on open | action |
//! |---|---|
//! | newest snapshot file without a WAL marker (stopped between the two) | deleted; the newest one with a marker is used ([`SkippedSnapshot::Unrecorded`]) |
//! | newest snapshot file damaged | renamed `*.broken`; the next older one with a marker is used ([`SkippedSnapshot::Damaged`]) |
//! | no intact snapshot the WAL continues from, some damaged | refused: [`OpenError::DamagedSnapshot`] names the files and the recovery |
//! | the WAL starts after a snapshot no file matches | refused: [`OpenError::MissingSnapshot`] |
//! | WAL damage | as raft-wal's recovery rules ([`OpenError::Wal`]) |
//!
//! The fallback to an older snapshot works because
//! [`DiskStorage::snapshot_and_compact`] releases WAL segments only up to
//! the oldest snapshot it keeps ([`CompactionPolicy::snapshots_kept`], 2
//! by default).
//!
//! # Durability
//!
//! What [`DiskStorage::persist`] returned from with `must_sync` is durable;
//! so is every snapshot `snapshot_and_compact` returned. Any failed write
//! or fsync poisons the storage until it is reopened. The crash explorer
//! in `tests/crash.rs` cuts a workload of persists, conf changes,
//! snapshots, received snapshots and restarts at every file-system
//! operation and checks recovery.
#![deny(missing_docs)]

mod disk;
mod error;
mod log;
mod open;
mod options;
mod snapshots;
mod writer;

pub use disk::DiskStorage;
pub use error::{InstallError, OpenError, PersistError, SnapshotError};
pub use open::{Recovery, SNAP_DIR, SkippedSnapshot, WAL_DIR};
pub use options::{CompactionPolicy, StorageOptions};
/// What [`DiskStorage::open_snapshot`] returns, and why it may fail.
pub use raft_snap::{LoadError, SnapshotReader};
pub use writer::{PersistWriter, WriterStopped};
