//! Shared workload drivers for the criterion benchmarks.
//!
//! The headline benchmark (`cargo bench -p benches --bench propose`)
//! measures propose throughput of `raft-core` against tikv's raft-rs
//! (crate `raft` 0.7) with one workload, identical for both libraries:
//!
//! - one process, one thread, in-memory storage, no fsync, no ticks;
//! - setup (untimed): node 1 campaigns, then rounds run until idle;
//! - each round: the leader gets `B` proposals of [`PAYLOAD_BYTES`] bytes
//!   whose first 8 bytes are the little-endian sequence number; every node,
//!   in id order, handles its Readys as its library documents (persist to
//!   the in-memory storage, apply committed entries, collect messages,
//!   advance); then every collected message is delivered with `step`, in
//!   order;
//! - the run ends when every node has applied all `N` entries.
//!
//! "Applying" an entry checks that its sequence number is the next one
//! expected on that node and panics otherwise, and [`drive`] checks at the
//! end that every node applied exactly `N` entries: a fast wrong result
//! cannot pass.
//!
//! [`CoreCluster`] drives `raft-core`, [`RaftRsCluster`] drives raft-rs
//! (with `batch_append` on; [`RaftRsDefaultCluster`] with its default, off);
//! all implement [`Cluster`], and [`drive`] runs the timed part.
#![deny(missing_docs)]

use std::time::{Duration, Instant};

use raft::Storage as _;
use raft_core::{ConfState, Entry, EntryKind, MemoryStorage, Message, NodeId, RawNode};

/// Size of every proposal's payload.
pub const PAYLOAD_BYTES: usize = 128;

/// `max_size_per_msg` of both libraries: 1 MiB.
pub const MAX_SIZE_PER_MSG: u64 = 1024 * 1024;

/// `max_inflight_msgs` of both libraries.
pub const MAX_INFLIGHT_MSGS: usize = 256;

/// The payload of proposal `seq`: [`PAYLOAD_BYTES`] bytes, the first 8 the
/// little-endian sequence number, the rest filler.
pub fn payload(seq: u64) -> Vec<u8> {
    let mut p = vec![0xa5; PAYLOAD_BYTES];
    p[..8].copy_from_slice(&seq.to_le_bytes());
    p
}

/// The sequence number in a payload made by [`payload`].
///
/// # Panics
/// If the payload is not [`PAYLOAD_BYTES`] long.
pub fn seq_of(data: &[u8]) -> u64 {
    assert_eq!(data.len(), PAYLOAD_BYTES, "payload of unexpected size");
    let mut b = [0u8; 8];
    b.copy_from_slice(&data[..8]);
    u64::from_le_bytes(b)
}

/// The state machine of one node: it checks that the applied payloads carry
/// the sequence numbers 0, 1, 2, … in order.
#[derive(Debug, Default, Clone)]
pub struct Applier {
    next: u64,
}

impl Applier {
    /// Applies one normal entry's payload. Empty payloads (a new leader's
    /// no-op) are skipped.
    ///
    /// # Panics
    /// If the payload is not the next one in sequence.
    #[inline]
    pub fn apply(&mut self, node: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let seq = seq_of(data);
        assert_eq!(
            seq, self.next,
            "node {node} applied payload {seq}, expected {}",
            self.next
        );
        self.next += 1;
    }

    /// How many payloads were applied.
    pub fn applied(&self) -> u64 {
        self.next
    }
}

/// One cluster driven by the benchmark workload.
pub trait Cluster {
    /// The library's name, for reports.
    const NAME: &'static str;

    /// How many nodes.
    fn len(&self) -> usize;

    /// True when there are no nodes (never, for a built cluster).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Proposes `data` on the leader (node 1).
    ///
    /// # Panics
    /// If the leader refuses the proposal.
    fn propose(&mut self, data: Vec<u8>);

    /// One round: every node, in id order, handles its Readys until it has
    /// none; then every collected message is delivered in order. Returns
    /// false when nothing at all happened.
    ///
    /// # Panics
    /// If a library call fails or an entry is applied out of order.
    fn round(&mut self) -> bool;

    /// How many payloads node `i` (0-based) has applied.
    fn applied(&self, i: usize) -> u64;

    /// Runs rounds until one does nothing (the untimed setup).
    ///
    /// # Panics
    /// If it does not settle within 1000 rounds.
    fn settle(&mut self) {
        for _ in 0..1000 {
            if !self.round() {
                return;
            }
        }
        panic!("{}: cluster did not settle", Self::NAME);
    }
}

/// Runs the timed part of the workload: `n` proposals, `batch` per round,
/// until every node applied all of them. Returns the elapsed time.
///
/// # Panics
/// If any node applied anything other than payloads `0..n` in order, or the
/// cluster stops making progress.
pub fn drive<C: Cluster>(cluster: &mut C, n: u64, batch: u64) -> Duration {
    assert!(batch > 0, "batch must be positive");
    let start = Instant::now();
    let mut proposed = 0;
    let mut idle = 0;
    loop {
        let k = batch.min(n - proposed);
        for _ in 0..k {
            cluster.propose(payload(proposed));
            proposed += 1;
        }
        let progressed = cluster.round();
        if proposed == n && (0..cluster.len()).all(|i| cluster.applied(i) >= n) {
            break;
        }
        if !progressed && k == 0 {
            idle += 1;
            assert!(idle < 3, "{}: no progress before all applied", C::NAME);
        } else {
            idle = 0;
        }
    }
    let elapsed = start.elapsed();
    for i in 0..cluster.len() {
        assert_eq!(
            cluster.applied(i),
            n,
            "{}: node {} applied {} entries, expected {n}",
            C::NAME,
            i + 1,
            cluster.applied(i)
        );
    }
    elapsed
}

/// Proposals per second of one run.
pub fn ops_per_sec(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

// ---------------------------------------------------------------------------
// raft-core

fn node_id(id: u64) -> NodeId {
    NodeId::new(id).expect("node ids start at 1")
}

/// The `raft-core` configuration of the workload: pre-vote and CheckQuorum
/// off (raft-rs's defaults), 1 MiB messages, 256 in flight.
pub fn core_config(id: u64) -> raft_core::Config {
    let mut c = raft_core::Config::new(node_id(id));
    c.pre_vote = false;
    c.check_quorum = false;
    c.max_size_per_msg = MAX_SIZE_PER_MSG;
    c.max_inflight_msgs = MAX_INFLIGHT_MSGS;
    c
}

/// One `raft-core` node with its in-memory storage and state machine.
pub struct CoreNode {
    /// The protocol.
    pub raw: RawNode<MemoryStorage>,
    /// The storage the application writes (shared with `raw`).
    pub storage: MemoryStorage,
    /// The state machine.
    pub applier: Applier,
    id: u64,
}

impl CoreNode {
    /// A fresh node `id` of a cluster of voters `1..=nodes`.
    ///
    /// # Panics
    /// If the node cannot be built.
    pub fn new(id: u64, nodes: u64) -> CoreNode {
        let storage =
            MemoryStorage::with_conf_state(ConfState::with_voters((1..=nodes).map(node_id)));
        CoreNode::with_storage(core_config(id), storage)
    }

    /// A node on an existing storage.
    ///
    /// # Panics
    /// If the node cannot be built.
    pub fn with_storage(config: raft_core::Config, storage: MemoryStorage) -> CoreNode {
        let id = config.id.get();
        let raw = RawNode::new(config, storage.clone()).expect("valid raft-core node");
        CoreNode {
            id,
            raw,
            storage,
            applier: Applier::default(),
        }
    }

    /// Handles Readys until there are none, as the `raft-core` crate docs
    /// say: send `messages`, persist snapshot / entries / hard state, send
    /// `persisted_messages`, apply `committed_entries`, then
    /// `advance_with_commits` and handle its `LightReady` (persist the
    /// commit index, send its messages, apply its entries). Messages
    /// are appended to `out`. Returns whether there was any Ready.
    ///
    /// # Panics
    /// If a call fails or an entry is applied out of order.
    pub fn handle_ready(&mut self, out: &mut Vec<Message>) -> bool {
        let id = self.id;
        let mut any = false;
        while self.raw.has_ready() {
            any = true;
            let mut rd = self.raw.ready().expect("ready");
            out.append(&mut rd.messages);
            self.storage.persist(&rd).expect("persist");
            out.append(&mut rd.persisted_messages);
            for e in &rd.committed_entries {
                apply_core_entry(&mut self.applier, id, e);
            }
            // What our own persistence committed comes back here rather
            // than in a second Ready (raft-core's LightReady).
            let mut light = self.raw.advance_with_commits().expect("advance");
            self.storage.persist_light(&light);
            out.append(&mut light.messages);
            for e in &light.committed_entries {
                apply_core_entry(&mut self.applier, id, e);
            }
        }
        any
    }
}

#[inline]
fn apply_core_entry(applier: &mut Applier, node: u64, e: &Entry) {
    assert_eq!(e.kind, EntryKind::Normal, "unexpected entry kind");
    applier.apply(node, &e.data);
}

/// A `raft-core` cluster of voters `1..=n`, node 1 the leader.
pub struct CoreCluster {
    nodes: Vec<CoreNode>,
    mailbox: Vec<Message>,
}

impl CoreCluster {
    /// Builds `n` nodes, lets node 1 campaign and settles (untimed setup).
    ///
    /// # Panics
    /// If node 1 does not become leader.
    pub fn new(n: usize) -> CoreCluster {
        let nodes = (1..=n as u64)
            .map(|id| CoreNode::new(id, n as u64))
            .collect();
        CoreCluster::elect(nodes)
    }

    /// Like [`CoreCluster::new`], but every node's storage already holds a
    /// committed and applied log of `entries` entries (term 1, a shared
    /// static payload), to measure how propose cost scales with log length.
    ///
    /// # Panics
    /// If node 1 does not become leader.
    pub fn with_log(n: usize, entries: u64) -> CoreCluster {
        static FILLER: [u8; PAYLOAD_BYTES] = [0x5a; PAYLOAD_BYTES];
        let log: Vec<Entry> = (1..=entries)
            .map(|i| {
                Entry::new(
                    raft_core::Term(1),
                    raft_core::Index(i),
                    bytes::Bytes::from_static(&FILLER),
                )
            })
            .collect();
        let nodes = (1..=n as u64)
            .map(|id| {
                let storage = MemoryStorage::with_conf_state(ConfState::with_voters(
                    (1..=n as u64).map(node_id),
                ));
                storage.append(&log).expect("prefill");
                storage.set_hard_state(raft_core::HardState {
                    term: raft_core::Term(1),
                    vote: Some(node_id(1)),
                    commit: raft_core::Index(entries),
                });
                let mut config = core_config(id);
                config.applied = raft_core::Index(entries);
                CoreNode::with_storage(config, storage)
            })
            .collect();
        CoreCluster::elect(nodes)
    }

    fn elect(nodes: Vec<CoreNode>) -> CoreCluster {
        let mut c = CoreCluster {
            nodes,
            mailbox: Vec::new(),
        };
        c.nodes[0].raw.campaign().expect("campaign");
        c.settle();
        let leader = c.nodes[0].raw.status().soft_state.leader;
        assert_eq!(leader, Some(node_id(1)), "node 1 must lead");
        c
    }

    /// Node `i` (0-based).
    pub fn node_mut(&mut self, i: usize) -> &mut CoreNode {
        &mut self.nodes[i]
    }
}

impl Cluster for CoreCluster {
    const NAME: &'static str = "raft-core";

    fn len(&self) -> usize {
        self.nodes.len()
    }

    #[inline]
    fn propose(&mut self, data: Vec<u8>) {
        self.nodes[0].raw.propose(data).expect("leader accepts");
    }

    fn round(&mut self) -> bool {
        let mut any = false;
        for node in &mut self.nodes {
            any |= node.handle_ready(&mut self.mailbox);
        }
        any |= !self.mailbox.is_empty();
        for m in self.mailbox.drain(..) {
            let to = (m.to.get() - 1) as usize;
            self.nodes[to].raw.step(m).expect("step");
        }
        any
    }

    fn applied(&self, i: usize) -> u64 {
        self.nodes[i].applier.applied()
    }
}

// ---------------------------------------------------------------------------
// raft-rs

/// The raft-rs configuration of the workload: `batch_append` on, 1 MiB
/// messages, 256 in flight; pre-vote and CheckQuorum off (its defaults).
pub fn raft_rs_config(id: u64) -> raft::Config {
    raft_rs_config_with(id, true)
}

/// [`raft_rs_config`] with `batch_append` as given: `false` is raft-rs's
/// default, the configuration a user who changes nothing runs.
pub fn raft_rs_config_with(id: u64, batch_append: bool) -> raft::Config {
    raft::Config {
        id,
        batch_append,
        max_size_per_msg: MAX_SIZE_PER_MSG,
        max_inflight_msgs: MAX_INFLIGHT_MSGS,
        pre_vote: false,
        check_quorum: false,
        ..raft::Config::default()
    }
}

/// One raft-rs node with its in-memory storage and state machine.
pub struct RaftRsNode {
    /// The protocol.
    pub raw: raft::RawNode<raft::storage::MemStorage>,
    /// The state machine.
    pub applier: Applier,
}

impl RaftRsNode {
    /// A fresh node `id` of a cluster of voters `1..=nodes`.
    ///
    /// # Panics
    /// If the node cannot be built.
    pub fn new(id: u64, nodes: u64) -> RaftRsNode {
        RaftRsNode::with_config(raft_rs_config(id), nodes)
    }

    /// A fresh node of a cluster of voters `1..=nodes` with `config`.
    ///
    /// # Panics
    /// If the node cannot be built.
    pub fn with_config(config: raft::Config, nodes: u64) -> RaftRsNode {
        let storage =
            raft::storage::MemStorage::new_with_conf_state((Vec::from_iter(1..=nodes), vec![]));
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = raft::RawNode::new(&config, storage, &logger).expect("valid raft-rs node");
        RaftRsNode {
            raw,
            applier: Applier::default(),
        }
    }

    fn apply(&mut self, entries: Vec<raft::eraftpb::Entry>) {
        let id = self.raw.raft.id;
        for e in entries {
            assert_eq!(
                e.get_entry_type(),
                raft::eraftpb::EntryType::EntryNormal,
                "unexpected entry kind"
            );
            self.applier.apply(id, &e.data);
        }
    }

    /// Handles Readys until there are none, as raft-rs's crate docs say:
    /// send `messages`, apply the snapshot, apply `committed_entries`,
    /// append `entries`, persist the hard state, send `persisted_messages`,
    /// `advance`, then handle the `LightReady` (commit index, messages,
    /// committed entries) and `advance_apply`. Messages are appended to
    /// `out`. Returns whether there was any Ready.
    ///
    /// # Panics
    /// If a call fails or an entry is applied out of order.
    pub fn handle_ready(&mut self, out: &mut Vec<raft::eraftpb::Message>) -> bool {
        let mut any = false;
        while self.raw.has_ready() {
            any = true;
            let mut rd = self.raw.ready();
            out.append(&mut rd.take_messages());
            if !rd.snapshot().is_empty() {
                let s = rd.snapshot().clone();
                self.raw
                    .mut_store()
                    .wl()
                    .apply_snapshot(s)
                    .expect("snapshot");
            }
            self.apply(rd.take_committed_entries());
            if !rd.entries().is_empty() {
                self.raw
                    .mut_store()
                    .wl()
                    .append(rd.entries())
                    .expect("append");
            }
            if let Some(hs) = rd.hs() {
                self.raw.mut_store().wl().set_hardstate(hs.clone());
            }
            out.append(&mut rd.take_persisted_messages());
            let mut light = self.raw.advance(rd);
            if let Some(commit) = light.commit_index() {
                self.raw.mut_store().wl().mut_hard_state().commit = commit;
            }
            out.append(&mut light.take_messages());
            self.apply(light.take_committed_entries());
            self.raw.advance_apply();
        }
        any
    }
}

/// A raft-rs cluster of voters `1..=n`, node 1 the leader.
pub struct RaftRsCluster {
    nodes: Vec<RaftRsNode>,
    mailbox: Vec<raft::eraftpb::Message>,
}

impl RaftRsCluster {
    /// Builds `n` nodes, lets node 1 campaign and settles (untimed setup).
    ///
    /// # Panics
    /// If node 1 does not become leader.
    pub fn new(n: usize) -> RaftRsCluster {
        RaftRsCluster::with_batch_append(n, true)
    }

    /// [`RaftRsCluster::new`] with `batch_append` as given.
    ///
    /// # Panics
    /// If node 1 does not become leader.
    pub fn with_batch_append(n: usize, batch_append: bool) -> RaftRsCluster {
        let mut c = RaftRsCluster {
            nodes: (1..=n as u64)
                .map(|id| RaftRsNode::with_config(raft_rs_config_with(id, batch_append), n as u64))
                .collect(),
            mailbox: Vec::new(),
        };
        c.nodes[0].raw.campaign().expect("campaign");
        c.settle();
        assert_eq!(c.nodes[0].raw.raft.state, raft::StateRole::Leader);
        let last = c.nodes[0].raw.store().last_index().expect("last index");
        assert!(last >= 1, "the leader's no-op is in the log");
        c
    }
}

impl Cluster for RaftRsCluster {
    const NAME: &'static str = "raft-rs";

    fn len(&self) -> usize {
        self.nodes.len()
    }

    #[inline]
    fn propose(&mut self, data: Vec<u8>) {
        self.nodes[0]
            .raw
            .propose(Vec::new(), data)
            .expect("leader accepts");
    }

    fn round(&mut self) -> bool {
        let mut any = false;
        for node in &mut self.nodes {
            any |= node.handle_ready(&mut self.mailbox);
        }
        any |= !self.mailbox.is_empty();
        for m in self.mailbox.drain(..) {
            let to = (m.to - 1) as usize;
            self.nodes[to].raw.step(m).expect("step");
        }
        any
    }

    fn applied(&self, i: usize) -> u64 {
        self.nodes[i].applier.applied()
    }
}

/// raft-rs as a user who changes nothing configures it: `batch_append`
/// off (its default), everything else as in [`RaftRsCluster`].
pub struct RaftRsDefaultCluster(RaftRsCluster);

impl RaftRsDefaultCluster {
    /// Builds `n` nodes, lets node 1 campaign and settles (untimed setup).
    ///
    /// # Panics
    /// If node 1 does not become leader.
    pub fn new(n: usize) -> RaftRsDefaultCluster {
        RaftRsDefaultCluster(RaftRsCluster::with_batch_append(n, false))
    }
}

impl Cluster for RaftRsDefaultCluster {
    const NAME: &'static str = "raft-rs default";

    fn len(&self) -> usize {
        self.0.len()
    }

    #[inline]
    fn propose(&mut self, data: Vec<u8>) {
        self.0.propose(data);
    }

    fn round(&mut self) -> bool {
        self.0.round()
    }

    fn applied(&self, i: usize) -> u64 {
        self.0.applied(i)
    }
}

// ---------------------------------------------------------------------------
// Memory

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`, …), or `None`
/// where it is not available (not Linux).
pub fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// Resets the peak resident set size (`VmHWM`) to the current one (Linux
/// `clear_refs` value 5). Returns false where that is not possible.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<C: Cluster>(mut c: C, n: u64, batch: u64) {
        drive(&mut c, n, batch);
        for i in 0..c.len() {
            assert_eq!(c.applied(i), n);
        }
    }

    #[test]
    fn payload_round_trips() {
        assert_eq!(seq_of(&payload(0x0102_0304_0506)), 0x0102_0304_0506);
    }

    #[test]
    #[should_panic(expected = "expected 0")]
    fn applier_rejects_out_of_order() {
        Applier::default().apply(1, &payload(1));
    }

    #[test]
    fn raft_core_workload_applies_everything_in_order() {
        for nodes in [1, 3] {
            for batch in [1, 7, 64] {
                check(CoreCluster::new(nodes), 200, batch);
            }
        }
    }

    #[test]
    fn raft_rs_workload_applies_everything_in_order() {
        for nodes in [1, 3] {
            for batch in [1, 7, 64] {
                check(RaftRsCluster::new(nodes), 200, batch);
                check(RaftRsDefaultCluster::new(nodes), 200, batch);
            }
        }
    }

    #[test]
    fn raft_core_workload_on_a_prefilled_log() {
        for nodes in [1, 3] {
            check(CoreCluster::with_log(nodes, 1000), 100, 16);
        }
    }

    #[test]
    fn proc_status_reads_rss() {
        if cfg!(target_os = "linux") {
            assert!(proc_status_kib("VmRSS").is_some_and(|k| k > 0));
        }
    }
}
