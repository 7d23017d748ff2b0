//! # raft-core
//!
//! The Raft consensus protocol as a pure, deterministic state machine, in
//! the style of etcd-raft: no I/O, no clock, no threads, no global random
//! number generator. Your application owns the network, the disk and the
//! timer; a [`RawNode`] owns the protocol.
//!
//! - Time is [`RawNode::tick`]; timeouts in [`Config`] are counted in ticks.
//! - Input is [`RawNode::step`] (messages from peers), [`RawNode::propose`]
//!   and [`RawNode::campaign`].
//! - Output is a [`Ready`]: state to persist, messages to send, committed
//!   entries to apply. After handling it, call [`RawNode::advance`].
//! - Persisted state is read through the [`Storage`] trait;
//!   [`MemoryStorage`] is an in-memory implementation.
//!
//! Everything the node does is a function of its inputs and
//! [`Config::seed`]: the same inputs replay the same run.
//!
//! ## The Ready loop
//!
//! This founds a one-node cluster and runs it to a committed proposal. A
//! real application does the same, but sends messages over its network
//! and fsyncs its log.
//!
//! ```
//! use raft_core::{AnyConfChange, Config, ConfState, MemoryStorage, NodeId, RawNode, Ready};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let id = NodeId::new(1).expect("non-zero id");
//! // The founders' membership is the first entries of the log: every
//! // founder bootstraps with the same one (see "Founding a cluster").
//! let storage = MemoryStorage::bootstrap(&ConfState::with_voters([id]))?;
//! let mut node = RawNode::new(Config::new(id), storage.clone())?;
//!
//! let mut applied = Vec::new();
//! let mut handle = |node: &mut RawNode<MemoryStorage>| -> Result<(), Box<dyn std::error::Error>> {
//!     while node.has_ready() {
//!         let rd: Ready = node.ready()?;
//!         // 1. Messages that need nothing durable may leave now:
//!         //    `for m in rd.messages { transport.send(m) }` (none here: one node).
//!         assert!(rd.messages.is_empty());
//!         // 2. Persist the snapshot, entries and hard state, in that
//!         //    order (a durable storage such as raft-storage's
//!         //    `DiskStorage` fsyncs iff `rd.must_sync`).
//!         storage.persist(&rd)?;
//!         // 3. Now votes and append acknowledgements may leave:
//!         //    `for m in rd.persisted_messages { transport.send(m) }`.
//!         // 4. Apply committed entries, in order. Membership changes take
//!         //    effect here (the founding entries first of all).
//!         for entry in &rd.committed_entries {
//!             match AnyConfChange::from_entry(entry)? {
//!                 Some(cc) => storage.set_conf_state(node.apply_conf_change(&cc)?),
//!                 None if !entry.data.is_empty() => applied.push(entry.data.clone()),
//!                 None => {} // a new leader's empty entry
//!             }
//!         }
//!         // 5. A leader may ask for a fresh snapshot (a new member behind
//!         //    the compacted log): take one at the applied index.
//!         assert!(rd.snapshot_request.is_none());
//!         // 6. Tell the node it is all done. (`advance_with_commits` also
//!         //    returns at once what our own persistence just committed:
//!         //    one Ready cycle instead of two; see `LightReady`.)
//!         node.advance()?;
//!     }
//!     Ok(())
//! };
//!
//! handle(&mut node)?; // applies the founding membership
//! // Normally the election timer (`tick`) starts an election.
//! node.campaign()?;
//! handle(&mut node)?;
//! assert_eq!(node.status().soft_state.leader, Some(id));
//!
//! node.propose(&b"x = 1"[..])?;
//! handle(&mut node)?;
//! assert_eq!(applied, vec![raft_core::Bytes::from_static(b"x = 1")]);
//! # Ok(())
//! # }
//! ```
//!
//! ## Founding a cluster, and joining it
//!
//! Founders write the same [`FoundingLog`] (one `AddNode` entry per
//! founder, committed at term 1) before their first start:
//! [`MemoryStorage::bootstrap`] does it for the in-memory storage; another
//! storage appends [`FoundingLog::entries`] and stores
//! [`FoundingLog::hard_state`]. A node that joins later starts with
//! **empty** storage and no configuration: it does not campaign, and it
//! learns the membership by replaying the log (or from a snapshot) once a
//! member proposes its `AddNode`. Because the membership is in the log, the
//! joiner's configuration is the cluster's.
//!
//! A cluster founded with [`MemoryStorage::with_conf_state`] has its
//! membership outside the log: a joiner replaying it would see only the
//! changes after the founding, and could count itself a cluster of one.
//! Such a joiner refuses to apply conf changes
//! ([`ApplyConfChangeError::NoFoundingMembership`]) and never campaigns
//! until a snapshot brings it the membership.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::error::Error;
//! use raft_core::{
//!     AnyConfChange, Bytes, ConfChange, ConfChangeKind, ConfState, Config, MemoryStorage,
//!     Message, NodeId, RawNode, Storage,
//! };
//!
//! struct Node {
//!     raw: RawNode<MemoryStorage>,
//!     storage: MemoryStorage,
//! }
//!
//! impl Node {
//!     fn start(id: NodeId, storage: MemoryStorage) -> Result<Node, Box<dyn Error>> {
//!         Ok(Node { raw: RawNode::new(Config::new(id), storage.clone())?, storage })
//!     }
//!
//!     /// Handles every Ready; returns the messages to send.
//!     fn handle(&mut self) -> Result<Vec<Message>, Box<dyn Error>> {
//!         let mut out = Vec::new();
//!         while self.raw.has_ready() {
//!             let mut rd = self.raw.ready()?;
//!             out.append(&mut rd.messages);
//!             self.storage.persist(&rd)?;
//!             out.extend(rd.persisted_messages);
//!             for entry in &rd.committed_entries {
//!                 if let Some(cc) = AnyConfChange::from_entry(entry)? {
//!                     let cs = self.raw.apply_conf_change(&cc)?;
//!                     self.storage.set_conf_state(cs);
//!                 }
//!             }
//!             self.raw.advance()?;
//!         }
//!         Ok(out)
//!     }
//! }
//!
//! /// Delivers messages until the cluster is quiet.
//! fn run(nodes: &mut BTreeMap<NodeId, Node>) -> Result<(), Box<dyn Error>> {
//!     loop {
//!         let mut sent = Vec::new();
//!         for node in nodes.values_mut() {
//!             sent.extend(node.handle()?);
//!         }
//!         if sent.is_empty() {
//!             return Ok(());
//!         }
//!         for m in sent {
//!             if let Some(node) = nodes.get_mut(&m.to) {
//!                 node.raw.step(m)?;
//!             }
//!         }
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn Error>> {
//! let id = |n| NodeId::new(n).expect("non-zero");
//! let founders = ConfState::with_voters([id(1), id(2), id(3)]);
//! let mut nodes = BTreeMap::new();
//! for n in 1..=3 {
//!     nodes.insert(id(n), Node::start(id(n), MemoryStorage::bootstrap(&founders)?)?);
//! }
//! run(&mut nodes)?; // every founder applies the founding membership
//! nodes.get_mut(&id(1)).expect("founder").raw.campaign()?;
//! run(&mut nodes)?;
//!
//! // Node 4 starts empty, then a member adds it.
//! nodes.insert(id(4), Node::start(id(4), MemoryStorage::new())?);
//! let add = ConfChange { kind: ConfChangeKind::AddNode, node_id: id(4), context: Bytes::new() };
//! nodes.get_mut(&id(1)).expect("leader").raw.propose_conf_change(add)?;
//! run(&mut nodes)?;
//!
//! let joined = nodes[&id(4)].storage.initial_state()?.conf_state;
//! assert_eq!(joined.voters, [id(1), id(2), id(3), id(4)].into());
//! assert_eq!(nodes[&id(4)].raw.status().hard_state.commit, nodes[&id(1)].raw.status().hard_state.commit);
//! # Ok(())
//! # }
//! ```
//!
//! ## Compaction
//!
//! The application snapshots its state machine and compacts the log behind
//! it. The safe index is one the state machine applied from
//! `committed_entries` and that survives a restart: the snapshot covers it,
//! and the restarted node is given at least that index as
//! [`Config::applied`] (which may be ahead of the persisted commit index,
//! as it can be after a crash with asynchronous writes). Raft never reads
//! an entry at or below the applied index it knows; compacting past
//! entries not yet handed out makes `ready` fail with
//! [`ReadyError::CompactedBeyondApplied`].
//!
//! ```
//! # use raft_core::{ConfState, Config, MemoryStorage, NodeId, RawNode, Storage};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let id = NodeId::new(1).expect("non-zero");
//! # let storage = MemoryStorage::bootstrap(&ConfState::with_voters([id]))?;
//! # let mut node = RawNode::new(Config::new(id), storage.clone())?;
//! # let rd = node.ready()?;
//! # storage.persist(&rd)?;
//! # for e in &rd.committed_entries {
//! #     let cc = raft_core::AnyConfChange::from_entry(e)?.expect("founding change");
//! #     storage.set_conf_state(node.apply_conf_change(&cc)?);
//! # }
//! # node.advance()?;
//! // The state machine applied everything handed out so far.
//! let applied = node.status().applied;
//! let conf_state = storage.initial_state()?.conf_state;
//! storage.create_snapshot(applied, conf_state, raft_core::Bytes::from_static(b"state"))?;
//! storage.compact(applied)?;
//!
//! // After a restart, the state machine is restored from the snapshot and
//! // the node is told where it is.
//! drop(node);
//! let mut config = Config::new(id);
//! config.applied = applied;
//! let node = RawNode::new(config, storage.clone())?;
//! assert_eq!(node.status().applied, applied);
//! # Ok(())
//! # }
//! ```
//!
//! ## Asynchronous storage writes
//!
//! With [`Config::async_storage_writes`], persisting and applying may run on
//! other threads. `ready` can be called again before earlier Readys are
//! durable; report durability by Ready number with
//! [`RawNode::on_persisted`] (only then may that Ready's
//! `persisted_messages` leave) and application progress with
//! [`RawNode::on_applied`]. A leader's own append and a candidate's own vote
//! count only once persisted, and committed entries are handed out only
//! once durable locally.
//!
//! ```
//! use raft_core::{Config, ConfState, MemoryStorage, NodeId, RawNode, RoleKind};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let id = NodeId::new(1).expect("non-zero id");
//! let storage = MemoryStorage::with_conf_state(ConfState::with_voters([id]));
//! let mut config = Config::new(id);
//! config.async_storage_writes = true;
//! let mut node = RawNode::new(config, storage.clone())?;
//!
//! node.campaign()?;
//! let mut rd = node.ready()?; // the pre-vote and the new term with our vote
//! // Hand the durable part to the writer thread; meanwhile the node keeps
//! // going.
//! let batch = rd.take_persist_batch();
//! assert_ne!(node.status().soft_state.role, RoleKind::Leader);
//! // The writer reports back once the batch is durable:
//! storage.persist_batch(&batch)?;
//! node.on_persisted(batch.number)?;
//! assert_eq!(node.status().soft_state.role, RoleKind::Leader);
//!
//! node.propose(&b"v"[..])?;
//! let rd = node.ready()?; // the leader's no-op and the proposal
//! storage.persist(&rd)?;
//! node.on_persisted(rd.number)?; // now the leader's own ack counts
//! let rd = node.ready()?;
//! assert_eq!(rd.committed_entries.len(), 2);
//! // The applier thread reports progress by index.
//! node.on_applied(rd.committed_entries.last().expect("entries").index)?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Witnesses
//!
//! A witness is a voter without a state machine: its leader sends it
//! entries without their payloads (conf changes keep theirs) and snapshots
//! without data, it votes and counts in every quorum, and it never
//! campaigns. Two full voters and a witness survive the loss of any one of
//! the three without losing a committed entry, at the storage and network
//! cost of about two replicas: the leader sends a witness only what the
//! full followers that keep up already hold, so a surviving full voter is
//! always electable (the argument is in the crate's `raft/witness.rs`).
//!
//! Start the node with [`Config::witness`] and name it a witness in the
//! membership (`ConfState::witnesses`, or [`ConfChangeKind::AddWitness`]
//! in a running cluster). Its application persists every `Ready` as
//! usual, applies the conf changes among the committed entries and skips
//! the rest (their data is empty), persists snapshots without restoring
//! anything from them, and may compact its log at its applied index. A
//! member's kind is fixed while it is a member: to turn a witness into a
//! full voter, remove it, wipe its storage and add it again.
//!
//! ```
//! use raft_core::{CampaignError, ConfState, Config, MemoryStorage, NodeId, RawNode};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let id = |n| NodeId::new(n).expect("non-zero");
//! let mut members = ConfState::with_voters([id(1), id(2), id(3)]);
//! members.witnesses.insert(id(3));
//! let mut cfg = Config::new(id(3));
//! cfg.witness = true; // this process keeps no state machine
//! let mut witness = RawNode::new(cfg, MemoryStorage::with_conf_state(members))?;
//! assert!(matches!(witness.campaign(), Err(CampaignError::Witness)));
//! assert!(witness.status().witness);
//! # Ok(())
//! # }
//! ```
//!
//! ## What is implemented
//!
//! | Feature | Knob (default) | Reference |
//! |---|---|---|
//! | Leader election, randomized timeout in `[et, 2et)` | `election_timeout_ticks` (10) | paper §5.2 |
//! | Heartbeats carrying a safe commit index | `heartbeat_interval_ticks` (1) | paper §5.2 |
//! | Up-to-date vote check, vote durable before answering | — | paper §5.4.1, thesis §3.8 |
//! | Pre-vote | `pre_vote` (true) | thesis §9.6 |
//! | CheckQuorum and leader lease for votes | `check_quorum` (true) | thesis §6.2, §4.2.3 |
//! | Log replication, conflict truncation, fast backtracking | — | paper §5.3 |
//! | Commit only by counting current-term entries | — | paper §5.4.2, Figure 8 |
//! | Flow control: probe / replicate, inflight window | `max_inflight_msgs` (256), `max_inflight_bytes` (no limit), `max_size_per_msg` (1 MiB) | etcd-raft |
//! | Uncommitted tail cap | `max_uncommitted_entries_size` (no limit) | etcd-raft |
//! | Apply backpressure: proposals refused while the commit index runs too far ahead of the applied one ([`ProposeError::ApplyBacklog`]) | `max_apply_gap` (no limit; etcd's server uses 5,000) | etcd server |
//! | Entry size cap ([`ProposeError::EntryTooLarge`]) | `max_entry_bytes` (no limit) | TiKV `RaftEntryTooLarge` |
//! | Apply pagination | `max_committed_size_per_ready` (no limit) | etcd-raft |
//! | Proposal forwarding | `disable_proposal_forwarding` (false) | — |
//! | Leader appends to peers before its own fsync | — | thesis §10.2.1 |
//! | Snapshot send and install when a follower needs compacted entries | `RawNode::report_snapshot` | paper §7, thesis Figure 13 |
//! | Asking the application for a newer snapshot when none can serve a follower | `Ready::snapshot_request` | paper §7 |
//! | Founding membership in the log; joining with empty storage | [`FoundingLog`], [`MemoryStorage::bootstrap`] | thesis §4.1 |
//! | Membership change: single-step, joint consensus, learners, one pending change | `step_down_on_removal` (true) | thesis §4.1, §4.3 |
//! | Leadership transfer, and cancelling it | `RawNode::transfer_leader`, `RawNode::abort_leader_transfer` | thesis §3.10 |
//! | Forgetting the leader, so a follower votes at once under CheckQuorum ([`ForgetLeaderError`]) | `RawNode::forget_leader` | etcd-raft 3.6, thesis §4.2.3 |
//! | A follower asking the leader for a snapshot (damaged state machine) ([`RequestSnapshotError`]) | `RawNode::request_snapshot` | raft-rs |
//! | Every stepped message checked first; terms bounded (`Term::MAX`, `Term::MAX_JUMP`) | [`Message::validate`] | paper §5.1 |
//! | Linearizable reads: ReadIndex, lease | `read_only_option` (Safe) | thesis §6.4 |
//! | Asynchronous storage writes | `async_storage_writes` (false) | thesis §10.2.1 |
//! | Witnesses: voters sent entries without payloads (and snapshots without data) that never lead; a leader sends them only what the full voters that keep up hold, so any minority can fail from a healthy cluster and a full member holding every committed entry is still elected | `witness` (false), [`ConfChangeKind::AddWitness`] | dragonboat; TiKV's witness RFC; paper §5.4.1 |
//!
//! Quorum arithmetic ([`quorum`]) is a public, pure module. Follower
//! tracking is internal: the leader's per-follower progress is observable
//! through [`Status`] ([`ProgressStatus`], [`ProgressState`]).
//!
//! ## Differences from etcd-raft
//!
//! - `pre_vote` and `check_quorum` are on by default.
//! - Errors are values: a dropped proposal says why ([`ProposeError`]),
//!   storage failures are returned ([`StorageError`]), never panics.
//! - A leader batches the appends of all proposals made between two
//!   `Ready`s into one message per follower.
//! - Messages are a typed enum ([`MessageBody`]); node ids are non-zero by
//!   construction ([`NodeId`]). [`RawNode::step`] refuses a message that no
//!   correct peer sends ([`StepError::InvalidMessage`]) or whose term is
//!   absurdly far ahead ([`StepError::TermTooFarAhead`]), and changes
//!   nothing; etcd-raft trusts its input.
//! - A leader that cannot serve a follower from storage's snapshot says so
//!   ([`Ready::snapshot_request`]) instead of waiting silently.
//! - A node without a configuration refuses conf changes that would give it
//!   one without the founders ([`ApplyConfChangeError::NoFoundingMembership`]).
//! - [`RawNode::forget_leader`] refuses with a typed error where etcd-raft
//!   silently ignores the request (on leaders, candidates, and with lease
//!   reads).
#![deny(missing_docs)]

mod bootstrap;
pub mod confchange;
mod config;
mod error;
mod log;
mod message;
#[cfg(feature = "node")]
pub mod node;
pub mod quorum;
mod raft;
mod raw_node;
mod ready;
mod status;
mod storage;
#[cfg(feature = "testkit")]
pub mod testkit;
mod tracker;
mod types;

/// The payload type of entries, proposals and snapshots (the `bytes`
/// crate's), re-exported so that an application needs no dependency of
/// its own on `bytes`.
pub use bytes::Bytes;

pub use bootstrap::{BootstrapError, FoundingLog};
pub use confchange::{AnyConfChange, ConfChangeDecodeError, ConfChangeError};
pub use config::{ClockDrift, Config, ConfigError, NO_LIMIT, ReadOnlyOption};
pub use error::{
    ApplyConfChangeError, CampaignError, ForgetLeaderError, NewError, ProposeError, ReadIndexError,
    ReadyError, RequestSnapshotError, StepError, TickError, TransferError,
};
pub use message::{
    Append, AppendResponse, Heartbeat, HeartbeatResponse, InvalidMessage, Message, MessageBody,
    Propose, Quiesce, ReadIndexRequest, ReadIndexResponse, ReadRound, RejectHint, RequestSnapshot,
    TransferLeader, VoteRequest, VoteResponse,
};
pub use raft::{Proposal, ReadState, RoleKind};
pub use raw_node::{AdvanceError, LightReady, RawNode, SnapshotStatus};
pub use ready::{PersistBatch, Ready, ReadyNumber, SnapshotRequest, SoftState};
pub use status::{ProgressStatus, Status};
pub use storage::{InitialState, MemoryStorage, PersistError, Storage, StorageError};
pub use tracker::ProgressState;
pub use types::{
    ConfChange, ConfChangeKind, ConfChangeSingle, ConfChangeTransition, ConfChangeV2, ConfState,
    ENTRY_OVERHEAD_BYTES, Entry, EntryKind, GroupId, HardState, Index, InvalidConfState, LogId,
    NodeId, Snapshot, SnapshotMetadata, Term, ZeroNodeId,
};
