//! # raft-host
//!
//! Runs [raft-core](raft_core) groups for real, so that an application
//! writes its state machine and nothing else: the Ready loop, durable
//! storage through [raft-storage](raft_storage)'s `DiskStorage`, proposal
//! and read waiters, snapshots written off the loop, safe membership
//! changes and leadership transfer, behind a [`Transport`] of your choice.
//!
//! A process creates one [`Host`] and starts its groups on it. Each group
//! gets a [`StateMachine`] (apply committed commands, take a point-in-time
//! image, restore from one), a `DiskStorage` and a transport, and gives
//! back a [`GroupHandle`] with async and blocking calls:
//! [`propose`](GroupHandle::propose) (the command's output once applied),
//! [`read`](GroupHandle::read) (linearizable, ReadIndex rounds shared by
//! concurrent reads), [`add_voter`](GroupHandle::add_voter) (learner
//! first, promoted once caught up), [`remove`](GroupHandle::remove)
//! (refused when it would leave no healthy quorum),
//! [`transfer_leader`](GroupHandle::transfer_leader),
//! [`status`](GroupHandle::status) and [`shutdown`](GroupHandle::shutdown).
//!
//! A one-member counter, on the in-process [`LocalNetwork`]:
//!
//! ```
//! use std::io::{Read, Write};
//! use std::sync::Arc;
//! use raft_core::NodeId;
//! use raft_host::{Command, GroupId, GroupOptions, Host, LocalNetwork, Membership, Peer, StateMachine};
//! use raft_storage::{DiskStorage, StorageOptions};
//!
//! #[derive(Default)]
//! struct Counter(u64);
//!
//! impl StateMachine for Counter {
//!     type Output = u64;
//!     type Image = Vec<u8>;
//!     fn apply(&mut self, commands: &[Command], outputs: &mut Vec<u64>) {
//!         for c in commands {
//!             self.0 += u64::from(c.data[0]);
//!             outputs.push(self.0);
//!         }
//!     }
//!     fn snapshot(&self) -> Vec<u8> {
//!         self.0.to_le_bytes().to_vec()
//!     }
//!     fn restore(&mut self, data: &mut dyn Read) -> std::io::Result<()> {
//!         let mut b = [0u8; 8];
//!         data.read_exact(&mut b)?;
//!         self.0 = u64::from_le_bytes(b);
//!         Ok(())
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let id = NodeId::new(1).expect("non-zero");
//! let host = Host::new(id);
//! let network = LocalNetwork::new();
//! let transport = network.join(id, host.inbox());
//! let (storage, _recovery) = DiskStorage::open(dir.path(), StorageOptions::new())?;
//! let founders = Membership::Found(vec![Peer::new(id, "local:1")]);
//! let group = host.start_group(GroupOptions::new(GroupId(1), founders), storage, Counter::default(), transport)?;
//!
//! let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
//! rt.block_on(async {
//!     group.wait_for(|s| s.is_leader()).await?;
//!     assert_eq!(group.propose(vec![2u8]).await?, 2);
//!     assert_eq!(group.propose(vec![3u8]).await?, 5);
//!     assert_eq!(group.read(|c| c.0).await?, 5);
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! host.shutdown();
//! # Ok(())
//! # }
//! ```
//!
//! ## The loop
//!
//! Each Ready is handled in the order raft-core's contract asks: a
//! leader's appends leave before its own fsync (thesis §10.2.1), the
//! Ready is persisted (fsynced iff it must be), the messages that vouch
//! for it leave, committed entries are applied in order and their
//! proposers answered, confirmed reads are served, and the node advances.
//! Every request queued meanwhile is drained before the next Ready, so
//! the writes that arrive during one fsync share the next one.
//!
//! ## Many groups, few threads
//!
//! A [`Host`] drives all its groups on a small fixed pool of threads
//! ([`HostOptions::loop_threads`]): a group's loop runs in *turns* (drain
//! what is queued, tick if a tick is due, handle one Ready), on one
//! thread at a time, and only when something woke it: a request, a
//! message from a peer, a write or snapshot that finished, or its next
//! tick. A group that has more to do goes to the back of the run queue,
//! so one busy group does not starve the others. With
//! [`GroupOptions::async_storage_writes`], one storage writer thread
//! takes every group's queued writes in a round and syncs each storage
//! once; snapshots of every group share one pool
//! ([`HostOptions::snapshot_threads`]).
//!
//! Hosts also ping each other, once per pair of hosts and
//! [`HostOptions::liveness_interval`] however many groups they share, as
//! messages of the reserved group 0 ([`HOST_GROUP`]); a peer host silent
//! for [`HostOptions::liveness_timeout`] is reported down to every group
//! here ([`Counter::PeerHostsDown`]), so that a quiet group whose leader
//! lived there does not wait for a heartbeat that will never come.
//! Any message from a peer host counts as a sign of life too, so a host
//! too busy to ping on time is not reported down.
//!
//! A host paces its groups' elections: at most
//! [`HostOptions::max_concurrent_elections`] campaign at once; a group
//! whose election falls due beyond that holds back the tick that would
//! start it and waits in line, asleep, until a permit frees up
//! ([`Counter::ElectionsHeldBack`]). Without it, a host starting 100,000
//! groups sends 100,000 elections' messages within one election timeout,
//! its peers' queues overflow, and no election gets through.
//!
//! ## Snapshots never stall writes
//!
//! Every [`GroupOptions::snapshot_interval_entries`] applied entries the
//! loop takes a point-in-time [`StateMachine::snapshot`] image (cheap, on
//! the loop) and hands it to the snapshot pool, which serializes it
//! ([`SnapshotImage::write_to`]), writes and fsyncs the file, records it
//! in the WAL, compacts the log and releases old files, while the loop
//! keeps committing. The address book (members, their addresses, removed
//! ids) travels in the snapshot ahead of the state machine's data.
//!
//! ## Membership
//!
//! [`MembershipChange::AddVoter`] adds the node as a learner and the
//! leader promotes it once its log is within
//! [`GroupOptions::promote_lag_entries`] of the leader's (the intent is
//! replicated with the learner, so a new leader carries it on). With
//! [`GroupOptions::strict_reconfig`], a removal or promotion that would
//! leave fewer healthy voters than the new configuration's quorum is
//! refused ([`MembershipError::Unsafe`]). A removed id is never reused.
//!
//! ## The data directory
//!
//! [`DataDir::open`] opens a node's directory and its storage safely: an
//! [`Identity`] record (node id, cluster id) written before the first log
//! entry and checked on every start, so a directory is never started as
//! another node or in another cluster.
#![deny(missing_docs)]

mod background;
mod data_dir;
mod elections;
mod error;
mod group;
mod group_set;
mod handle;
mod host;
mod liveness;
mod local;
mod members;
mod metrics;
mod options;
mod reply;
mod scheduler;
mod state_machine;
mod status;
mod transport;

pub use data_dir::{
    DataDir, DataDirError, GROUPS_DIR, IDENTITY_FILE, Identity, IdentityError, SHARED_WAL_DIR,
    cluster_id,
};
pub use error::{
    FatalError, ForgetLeaderError, MembershipError, ProposeError, ReadError, RequestSnapshotError,
    StartError, TransferError,
};
pub use group::{MembershipChange, StopReason};
pub use group_set::{EmptyGroupSet, GroupSet};
pub use handle::{GroupHandle, GroupStopped};
pub use host::Host;
pub use liveness::HOST_GROUP;
pub use local::{LocalNetwork, LocalTransport};
pub use members::HeaderError;
pub use metrics::{Counter, Histogram, NoRecorder, PrometheusRecorder, PrometheusText, Recorder};
pub use options::{DEFAULT_MAX_CONCURRENT_ELECTIONS, GroupOptions, HostOptions, Membership, Peer};
/// Re-exported from raft-core, where every layer (wire, storage, host) finds it.
pub use raft_core::GroupId;
pub use state_machine::{Command, SnapshotImage, StateMachine};
pub use status::{FollowerStatus, GroupStatus};
pub use transport::{Inbox, Transport};
