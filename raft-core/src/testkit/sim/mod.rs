//! A deterministic cluster simulator: one `u64` seed drives the network
//! (drops, duplicates, delays and reordering, partitions), crashes and
//! restarts, synchronous or asynchronous storage writes, and the workload
//! (proposals, membership changes, leadership transfers, compaction, safe
//! reads). Nodes tick independently, which is unbounded clock drift, so
//! lease reads, correct only under bounded drift, run in modes of their
//! own: all nodes tick together ([`SimOptions::with_lease_reads`]), or
//! each at its own rate and phase within a drift
//! ([`SimOptions::with_lease_drift`]).
//! The [`SafetyChecker`] runs after every
//! step; after the faults heal, a liveness phase checks that the cluster
//! commits again.
//!
//! ```
//! use raft_core::testkit::sim::{Simulation, SimOptions};
//!
//! let report = Simulation::new(7, SimOptions::randomized(7).with_steps(300))
//!     .run()
//!     .unwrap_or_else(|v| panic!("{v}"));
//! assert!(report.committed > 0);
//! ```
//!
//! A failure prints the seed, the step, the violated property, the last
//! events, and the command that replays it exactly.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::check::{Finding, SafetyChecker, ViolationKind, digest};
use crate::confchange::AnyConfChange;
use crate::config::Config;
use crate::message::Message;
use crate::raft::RoleKind;
use crate::raw_node::RawNode;
use crate::ready::Ready;
use crate::storage::{MemoryStorage, Storage};
mod multi;
mod options;
mod report;

pub use multi::MultiSimulation;
pub use options::{
    BEYOND_DRIFT_PER_MILLE, DRIFT_TICK_STEPS, LEASE_DRIFT_PER_MILLE, LOCKSTEP_TICK_STEPS,
    SimOptions,
};
pub use report::{SimReport, Violation};

use crate::types::{
    ConfChange, ConfChangeKind, ConfChangeSingle, ConfChangeTransition, ConfChangeV2, ConfState,
    Entry, EntryKind, Index, NodeId, Term,
};

/// One simulated node: a RawNode (absent while crashed) over storage that
/// survives crashes, and a state machine persisted with its applied index.
struct SimNode {
    raw: Option<RawNode<MemoryStorage>>,
    storage: MemoryStorage,
    /// Durable state-machine position: restarts resume after it.
    applied: Index,
    last_role: Option<(RoleKind, Term)>,
    /// Asynchronous writes: Readys handed out and not yet durable, oldest
    /// first. Lost in a crash.
    pending: VecDeque<Ready>,
    /// A leader asked for a snapshot at an applied index of at least this
    /// (`Ready::snapshot_request`), not taken yet.
    snapshot_wanted: Option<Index>,
    /// Quiesced when last observed.
    quiesced: bool,
}

impl SimNode {
    /// Records a snapshot of the state machine (its applied index is all
    /// the simulated state there is) in storage, with the membership.
    fn snapshot_at_applied(&self) -> Result<crate::types::Snapshot, crate::storage::StorageError> {
        let cs = self
            .storage
            .initial_state()
            .expect("memory storage")
            .conf_state;
        let data = Bytes::from(self.applied.get().to_le_bytes().to_vec());
        self.storage.create_snapshot(self.applied, cs, data)
    }
}

/// A node's clock in the drift modes: it gains `rate` a step and ticks
/// each time it has gained [`SimOptions::lease_tick_steps`] × nodes × 1000.
struct DriftClock {
    rate: u64,
    gained: u64,
}

struct InFlight {
    deliver_at: u64,
    msg: Message,
}

/// A seeded simulation of one cluster.
pub struct Simulation {
    seed: u64,
    opts: SimOptions,
    rng: StdRng,
    nodes: BTreeMap<NodeId, SimNode>,
    network: Vec<InFlight>,
    /// Directed links that drop everything.
    cut: BTreeSet<(NodeId, NodeId)>,
    checker: SafetyChecker,
    step: u64,
    next_value: u64,
    next_read: u64,
    report: SimReport,
    recent: VecDeque<String>,
    /// False in the liveness phase: no more crashes.
    faults: bool,
    /// Print every event as it happens (`RAFT_SIM_TRACE=1`).
    trace: bool,
    /// Drift modes only: each node's clock (empty: lockstep or random ticks).
    clocks: BTreeMap<NodeId, DriftClock>,
    /// Draws the drift clocks' rates, apart from `rng` so that the other
    /// modes' runs stay as they were.
    clock_rng: StdRng,
    /// A group of a [`MultiSimulation`]: what this group asks of its host,
    /// which the multi-group run carries out. `None` when run alone.
    host: Option<HostRequests>,
}

/// What a group asks of the host it shares with other groups: the faults it
/// drew that are the host's (they hit every group at once), and the nodes
/// whose writes it queued, oldest first, for the host's shared log to make
/// durable. Drained after every step of the group.
#[derive(Debug, Default)]
struct HostRequests {
    faults: Vec<HostFault>,
    queued: Vec<NodeId>,
}

/// A fault one group drew that happens to the whole host.
#[derive(Clone, Copy, Debug)]
enum HostFault {
    /// The node crashed (every group on it, and its unsynced log tail).
    Crash(NodeId),
    /// A crashed node restarts.
    Restart,
    /// The network splits or heals.
    Repartition,
}

const RECENT_EVENTS: usize = 48;

/// Runs `opts` from `seed`: one group as a [`Simulation`], more
/// ([`SimOptions::groups`]) as a [`MultiSimulation`].
///
/// # Errors
/// The first [`Violation`] found.
pub fn simulate(seed: u64, opts: SimOptions) -> Result<SimReport, Violation> {
    if opts.groups > 1 {
        MultiSimulation::new(seed, opts).run()
    } else {
        Simulation::new(seed, opts).run()
    }
}

fn id(n: u64) -> NodeId {
    NodeId::new(n).expect("simulated ids start at 1")
}

impl Simulation {
    /// A cluster of `opts.nodes` voters running one group (whatever
    /// [`SimOptions::groups`] says: [`simulate`] runs more); nothing runs
    /// until [`Simulation::run`].
    pub fn new(seed: u64, opts: SimOptions) -> Simulation {
        let founders = opts.nodes - opts.joiners;
        let mut voters = ConfState::with_voters((1..=founders).map(id));
        voters.witnesses = (1..=founders)
            .filter(|&n| opts.is_witness(n))
            .map(id)
            .collect();
        let mut sim = Simulation {
            seed,
            rng: StdRng::seed_from_u64(seed),
            nodes: BTreeMap::new(),
            network: Vec::new(),
            cut: BTreeSet::new(),
            checker: SafetyChecker::new(),
            step: 0,
            next_value: 0,
            next_read: 0,
            report: SimReport::default(),
            recent: VecDeque::with_capacity(RECENT_EVENTS),
            faults: true,
            trace: std::env::var_os("RAFT_SIM_TRACE").is_some(),
            clocks: BTreeMap::new(),
            clock_rng: StdRng::seed_from_u64(seed ^ 0x00d2_1f7c_10c4),
            host: None,
            opts,
        };
        sim.clocks = sim.drift_clocks();
        for n in 1..=sim.opts.nodes {
            let storage = if n > founders {
                MemoryStorage::new()
            } else if sim.opts.joiners > 0 {
                MemoryStorage::bootstrap(&voters).expect("founders include a voter")
            } else {
                MemoryStorage::with_conf_state(voters.clone())
            };
            let node = SimNode {
                raw: None,
                storage,
                applied: Index::ZERO,
                last_role: None,
                pending: VecDeque::new(),
                snapshot_wanted: None,
                quiesced: false,
            };
            sim.nodes.insert(id(n), node);
            sim.start(id(n));
        }
        sim
    }

    /// The clocks of the drift modes, each at its own phase and rate
    /// ([`Simulation::draw_rate`]).
    fn drift_clocks(&mut self) -> BTreeMap<NodeId, DriftClock> {
        if !self.opts.lease_reads || self.opts.tick_drift_per_mille.is_none() {
            return BTreeMap::new();
        }
        let period = self.tick_period();
        (1..=self.opts.nodes)
            .map(|n| {
                let rate = self.draw_rate();
                let gained = self.clock_rng.random_range(0..period);
                (id(n), DriftClock { rate, gained })
            })
            .collect()
    }

    /// The fastest rate of the drift clocks; the slowest is 1000.
    fn top_rate(&self) -> u64 {
        1000 + u64::from(self.opts.tick_drift_per_mille.unwrap_or(0))
    }

    /// A clock rate: the slowest, the fastest, or one in between (a third
    /// each), so that runs often hold both extremes of the spread.
    fn draw_rate(&mut self) -> u64 {
        let top = self.top_rate();
        match self.clock_rng.random_range(0..3) {
            0 => 1000,
            1 => top,
            _ => self.clock_rng.random_range(1000..=top),
        }
    }

    /// Drift modes: a new leader's clock changes rate, as an adversary
    /// would have it: three times in four the leader's clock becomes the
    /// slowest and every other the fastest (the leader overestimates its
    /// lease the most against the voters' timers, thesis §6.4.1); else
    /// every rate is drawn again. Phases carry on.
    fn drift_on_new_leader(&mut self, leader: NodeId) {
        if self.clocks.is_empty() {
            return;
        }
        let adversary = self.clock_rng.random_bool(0.75);
        let top = self.top_rate();
        let ids: Vec<NodeId> = self.clocks.keys().copied().collect();
        for n in ids {
            let rate = match (adversary, n == leader) {
                (true, true) => 1000,
                (true, false) => top,
                (false, _) => self.draw_rate(),
            };
            self.clocks.get_mut(&n).expect("clock").rate = rate;
        }
    }

    /// What a drift clock gains between two ticks.
    fn tick_period(&self) -> u64 {
        self.opts.lease_tick_steps * self.opts.nodes * 1000
    }

    /// The ticks of the lease modes, before each step: every node at once
    /// every [`SimOptions::lease_tick_steps`] steps per node, or each node
    /// on its own drift clock.
    fn tick_lease_clocks(&mut self, ids: &[NodeId]) -> Result<(), Finding> {
        if self.clocks.is_empty() {
            if self
                .step
                .is_multiple_of(self.opts.lease_tick_steps * self.opts.nodes)
            {
                for &n in ids {
                    self.tick(n)?;
                }
            }
            return Ok(());
        }
        let period = self.tick_period();
        for &n in ids {
            let c = self.clocks.get_mut(&n).expect("a clock per node");
            c.gained += c.rate;
            if c.gained >= period {
                c.gained -= period;
                self.tick(n)?;
            }
        }
        Ok(())
    }

    fn config(&self, n: NodeId, applied: Index) -> Config {
        let mut cfg = Config::new(n);
        cfg.pre_vote = self.opts.pre_vote;
        cfg.check_quorum = self.opts.check_quorum;
        if self.opts.lease_reads {
            cfg.read_only_option = crate::config::ReadOnlyOption::LeaseBased;
        }
        cfg.max_clock_drift = self.opts.max_clock_drift;
        cfg.async_storage_writes = self.opts.async_writes;
        cfg.election_timeout_ticks = 10;
        cfg.heartbeat_interval_ticks = 2;
        cfg.max_size_per_msg = 4096;
        cfg.max_inflight_msgs = 8;
        cfg.max_apply_gap = self.opts.max_apply_gap;
        cfg.applied = applied;
        cfg.quiesce_after_ticks = self.opts.quiesce_after_ticks;
        cfg.witness = self.opts.is_witness(n.get());
        // Each incarnation draws its own jitter, still from the run's seed.
        cfg.seed = self.seed ^ (n.get() << 32) ^ self.step;
        cfg
    }

    fn start(&mut self, n: NodeId) {
        let node = &self.nodes[&n];
        if node.applied > node.storage.hard_state().commit {
            self.report.restarts_applied_ahead += 1;
        }
        let cfg = self.config(n, node.applied);
        let raw = RawNode::new(cfg, node.storage.clone()).expect("restart from consistent storage");
        let node = self.nodes.get_mut(&n).expect("node");
        node.raw = Some(raw);
        node.last_role = None;
        node.quiesced = false;
    }

    fn event(&mut self, e: impl FnOnce() -> String) {
        if self.recent.len() == RECENT_EVENTS {
            self.recent.pop_front();
        }
        let line = format!("[{}] {}", self.step, e());
        if self.trace {
            eprintln!("{line}");
        }
        self.recent.push_back(line);
    }

    fn violation(&self, finding: Finding) -> Violation {
        Violation {
            seed: self.seed,
            step: self.step,
            finding,
            recent: self.recent.iter().cloned().collect(),
            mode: self.opts.mode(),
            group: None,
        }
    }

    /// Runs the fault phase, then the liveness phase.
    ///
    /// # Errors
    /// The first [`Violation`] found.
    pub fn run(mut self) -> Result<SimReport, Violation> {
        for _ in 0..self.opts.steps {
            self.step += 1;
            self.fault_step().map_err(|f| self.violation(f))?;
        }
        self.liveness().map_err(|f| self.violation(f))?;
        Ok(self.finish())
    }

    /// The report once the run ended.
    fn finish(mut self) -> SimReport {
        self.report.steps = self.step;
        self.report.committed = self.checker.max_applied().get();
        self.report.groups = 1;
        self.report
    }

    fn fault_step(&mut self) -> Result<(), Finding> {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        let lockstep = self.opts.lease_reads;
        if lockstep {
            self.tick_lease_clocks(&ids)?;
        }
        let n = ids[self.rng.random_range(0..ids.len())];
        let roll: f64 = self.rng.random();
        let o = self.opts.clone();
        let mut acc = 0.0;
        let mut hit = |p: f64| {
            acc += p;
            roll < acc
        };
        if hit(o.crash_probability) {
            self.crash(n);
        } else if hit(o.restart_probability) {
            self.restart_one();
        } else if hit(o.partition_probability) {
            self.repartition();
        } else if hit(o.propose_probability) {
            self.propose(n)?;
        } else if hit(o.conf_change_probability) {
            self.propose_conf_change(n)?;
        } else if hit(o.transfer_probability) {
            self.transfer(n)?;
        } else if hit(o.compact_probability) {
            self.compact(n);
        } else if hit(o.read_probability) {
            self.read(n)?;
        } else if hit(o.forget_leader_probability) {
            self.forget_leader(n);
        } else if hit(o.request_snapshot_probability) {
            self.request_snapshot(n);
        } else {
            match self.rng.random_range(0..4) {
                0 if !lockstep => self.tick(n)?,
                0 => {}
                1 => {
                    self.process_ready(n)?;
                    // A group of a multi-group run leaves it to the host's
                    // shared log (the draw stays, so seeds replay alike).
                    if self.rng.random_bool(0.5) && self.host.is_none() {
                        self.persist_pending(n)?;
                    }
                }
                _ => self.deliver_one()?,
            }
        }
        self.observe_roles()
    }

    fn crash(&mut self, n: NodeId) {
        if let Some(host) = &mut self.host {
            host.faults.push(HostFault::Crash(n));
            return;
        }
        self.crash_now(n);
    }

    /// `n` crashes: its volatile state and unsynced writes are lost.
    fn crash_now(&mut self, n: NodeId) {
        let node = self.nodes.get_mut(&n).expect("node");
        node.pending.clear();
        node.snapshot_wanted = None;
        if node.raw.take().is_some() {
            self.report.crashes += 1;
            self.event(|| format!("crash {n}"));
            self.wake_some();
        }
    }

    /// A node came or went, or the network changed. The hosts' failure
    /// detectors are imperfect: with quiescence each live node is woken
    /// with probability 1/2 (a leader may sleep on while the others elect
    /// another: the case a lease kept through quiescence gets wrong).
    /// Without quiescence waking does nothing, and no randomness is drawn,
    /// so those seeds replay unchanged.
    fn wake_some(&mut self) {
        if self.opts.quiesce_after_ticks.is_none() {
            return;
        }
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for n in ids {
            if self.rng.random_bool(0.5)
                && let Some(raw) = self.raw(n)
            {
                raw.wake();
            }
        }
    }

    /// Every live node is woken (the liveness phase: everything healed).
    fn wake_all(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(raw) = node.raw.as_mut() {
                raw.wake();
            }
        }
    }

    fn restart_one(&mut self) {
        if let Some(host) = &mut self.host {
            host.faults.push(HostFault::Restart);
            return;
        }
        let down: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, s)| s.raw.is_none())
            .map(|(i, _)| *i)
            .collect();
        if down.is_empty() {
            return;
        }
        let n = down[self.rng.random_range(0..down.len())];
        self.start(n);
        self.event(|| format!("restart {n}"));
        self.wake_some();
    }

    fn repartition(&mut self) {
        if let Some(host) = &mut self.host {
            host.faults.push(HostFault::Repartition);
            return;
        }
        self.cut.clear();
        self.wake_some();
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        let partition = Partition::draw(&mut self.rng, &ids);
        self.set_partition(&partition);
    }

    /// The network becomes `p`.
    fn set_partition(&mut self, p: &Partition) {
        self.cut = p.cut.clone();
        match &p.side {
            None => self.event(|| "heal".into()),
            Some(side) => {
                let one_way = p.one_way;
                self.event(|| format!("partition {side:?} one_way={one_way}"));
            }
        }
    }

    fn raw(&mut self, n: NodeId) -> Option<&mut RawNode<MemoryStorage>> {
        self.nodes.get_mut(&n).and_then(|s| s.raw.as_mut())
    }

    fn tick(&mut self, n: NodeId) -> Result<(), Finding> {
        let Some(raw) = self.raw(n) else {
            return Ok(());
        };
        raw.tick().map_err(|e| Finding {
            kind: ViolationKind::NodeError,
            detail: format!("tick {n}: {e}"),
        })
    }

    fn propose(&mut self, n: NodeId) -> Result<(), Finding> {
        self.next_value += 1;
        let v = self.next_value;
        let Some(raw) = self.raw(n) else {
            return Ok(());
        };
        let r = raw.propose(Bytes::from(v.to_le_bytes().to_vec()));
        if matches!(r, Err(crate::error::ProposeError::ApplyBacklog { .. })) {
            self.report.proposals_backpressured += 1;
        }
        self.event(|| format!("propose {v} at {n}: {r:?}"));
        Ok(())
    }

    fn propose_conf_change(&mut self, n: NodeId) -> Result<(), Finding> {
        let cc = if self.opts.joiners > 0 && self.rng.random_bool(0.5) {
            self.joiner_conf_change()
        } else {
            self.random_conf_change()
        };
        let Some(raw) = self.raw(n) else {
            return Ok(());
        };
        let r = raw.propose_conf_change(cc.clone());
        self.event(|| format!("conf change {cc:?} at {n}: {r:?}"));
        Ok(())
    }

    /// The kind a change that adds `n` takes: a witness id is added as a
    /// witness, whatever was drawn (no extra draw: other modes replay
    /// unchanged).
    fn kind_for(&self, kind: ConfChangeKind, n: NodeId) -> ConfChangeKind {
        match kind {
            ConfChangeKind::AddNode | ConfChangeKind::AddLearnerNode
                if self.opts.is_witness(n.get()) =>
            {
                ConfChangeKind::AddWitness
            }
            k => k,
        }
    }

    /// Adds one of the nodes that started empty, mostly as a voter.
    fn joiner_conf_change(&mut self) -> AnyConfChange {
        let founders = self.opts.nodes - self.opts.joiners;
        let joiner = id(self.rng.random_range(founders + 1..=self.opts.nodes));
        let kind = if self.rng.random_bool(0.8) {
            ConfChangeKind::AddNode
        } else {
            ConfChangeKind::AddLearnerNode
        };
        single_step(kind, joiner)
    }

    /// Any single-step or joint change of any node, valid or not.
    fn random_conf_change(&mut self) -> AnyConfChange {
        let target = id(self.rng.random_range(1..=self.opts.nodes));
        let kind = match self.rng.random_range(0..3) {
            0 => ConfChangeKind::AddNode,
            1 => ConfChangeKind::AddLearnerNode,
            _ => ConfChangeKind::RemoveNode,
        };
        let kind = self.kind_for(kind, target);
        if self.rng.random_bool(0.7) {
            return single_step(kind, target);
        }
        let other = id(self.rng.random_range(1..=self.opts.nodes));
        let changes = vec![
            ConfChangeSingle {
                kind,
                node_id: target,
            },
            ConfChangeSingle {
                kind: self.kind_for(ConfChangeKind::AddNode, other),
                node_id: other,
            },
        ];
        let transition = if self.rng.random_bool(0.5) {
            ConfChangeTransition::Auto
        } else {
            ConfChangeTransition::JointImplicit
        };
        AnyConfChange::V2(ConfChangeV2 {
            transition,
            changes,
            context: Bytes::new(),
        })
    }

    fn transfer(&mut self, n: NodeId) -> Result<(), Finding> {
        let target = id(self.rng.random_range(1..=self.opts.nodes));
        let Some(raw) = self.raw(n) else {
            return Ok(());
        };
        let r = raw.transfer_leader(target);
        self.event(|| format!("transfer to {target} at {n}: {r:?}"));
        Ok(())
    }

    fn read(&mut self, n: NodeId) -> Result<(), Finding> {
        self.next_read += 1;
        let ctx = self.next_read;
        let Some(raw) = self.raw(n) else {
            return Ok(());
        };
        let r = raw.read_index(Bytes::from(ctx.to_le_bytes().to_vec()));
        if r.is_ok() {
            self.checker.read_started(ctx);
        }
        let min = self.checker.max_applied();
        self.event(|| format!("read {ctx} at {n} (must see {min}): {r:?}"));
        Ok(())
    }

    /// The application tells `n` its leader is gone (it may not be).
    fn forget_leader(&mut self, n: NodeId) {
        let Some(raw) = self.raw(n) else {
            return;
        };
        let r = raw.forget_leader();
        if r.is_ok() {
            self.report.leaders_forgotten += 1;
        }
        self.event(|| format!("forget leader at {n}: {r:?}"));
    }

    /// The application of `n` finds its state machine damaged and asks for
    /// a snapshot. (The simulated state machine is only its applied index:
    /// the snapshot, when installed, replaces it like any other.)
    fn request_snapshot(&mut self, n: NodeId) {
        let Some(raw) = self.raw(n) else {
            return;
        };
        let r = raw.request_snapshot();
        if r.is_ok() {
            self.report.snapshots_asked_by_followers += 1;
        }
        self.event(|| format!("request snapshot at {n}: {r:?}"));
    }

    /// Snapshots `n` at its applied index and compacts its log there, once
    /// a few entries are applied past the last compaction.
    fn compact(&mut self, n: NodeId) {
        let node = &self.nodes[&n];
        let applied = node.applied;
        let first = node.storage.first_index().unwrap_or(Index::ZERO);
        if node.raw.is_none() || applied < first + 4 {
            return;
        }
        if node.snapshot_at_applied().is_ok() {
            node.storage
                .compact(applied)
                .expect("compact to a snapshotted, applied index");
            self.event(|| format!("compact {n} to {applied}"));
        }
    }

    fn deliver_one(&mut self) -> Result<(), Finding> {
        let due: Vec<usize> = (0..self.network.len())
            .filter(|&i| self.network[i].deliver_at <= self.step)
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let pick = due[self.rng.random_range(0..due.len())];
        let m = self.network.swap_remove(pick).msg;
        let cut = self.cut.contains(&(m.from, m.to));
        if cut || self.rng.random_bool(self.opts.drop_probability) {
            self.report.dropped += 1;
            self.report_loss(&m, cut);
            return Ok(());
        }
        if self.rng.random_bool(self.opts.duplicate_probability) {
            self.network.push(InFlight {
                deliver_at: self.step + 1,
                msg: m.clone(),
            });
        }
        self.deliver(m)
    }

    /// What a transport tells the sender about a lost message: a broken
    /// link is reported unreachable (the sender knows its connection
    /// failed), and a lost snapshot is reported failed. Silent loss is not
    /// reported.
    fn report_loss(&mut self, m: &Message, link_broken: bool) {
        let (from, to) = (m.from, m.to);
        let snapshot = matches!(m.body, crate::message::MessageBody::Snapshot(_));
        let Some(sender) = self.raw(from) else { return };
        if link_broken {
            sender.report_unreachable(to);
        }
        if snapshot {
            sender.report_snapshot(to, crate::raw_node::SnapshotStatus::Failed);
        }
    }

    fn deliver(&mut self, m: Message) -> Result<(), Finding> {
        let (from, to, kind) = (m.from, m.to, m.body.kind_name());
        if self.raw(to).is_none() {
            self.report_loss(&m, true);
            return Ok(());
        }
        if self.trace {
            let (t, k) = (m.term, kind);
            self.event(|| format!("deliver {from}->{to} {k} term={t}"));
        }
        if matches!(m.body, crate::message::MessageBody::Snapshot(_)) {
            // The transport streamed the whole snapshot: tell the leader.
            if let Some(sender) = self.raw(from) {
                sender.report_snapshot(to, crate::raw_node::SnapshotStatus::Finished);
            }
        }
        self.report.delivered += 1;
        let raw = self.raw(to).expect("checked");
        // Refusals (a response from a removed peer, a dropped forwarded
        // proposal) are normal; storage failures are not.
        if let Err(e) = raw.step(m)
            && matches!(e, crate::error::StepError::Storage(_))
        {
            return Err(Finding {
                kind: ViolationKind::NodeError,
                detail: format!("step {from}->{to} {kind}: {e}"),
            });
        }
        Ok(())
    }

    fn send(&mut self, msgs: Vec<Message>) {
        for msg in msgs {
            let delay = if self.opts.max_delay_steps == 0 {
                0
            } else {
                self.rng.random_range(0..=self.opts.max_delay_steps)
            };
            self.network.push(InFlight {
                deliver_at: self.step + delay,
                msg,
            });
        }
    }

    /// Handles one Ready of `n` per the contract; sometimes crashes between
    /// persisting and sending.
    fn process_ready(&mut self, n: NodeId) -> Result<(), Finding> {
        let Some(raw) = self.raw(n) else {
            return Ok(());
        };
        if !raw.has_ready() {
            return Ok(());
        }
        let mut rd = raw.ready().map_err(|e| Finding {
            kind: ViolationKind::NodeError,
            detail: format!("ready {n}: {e}"),
        })?;
        self.send(rd.messages.clone());
        if let Some(request) = rd.snapshot_request {
            let i = request.min_index;
            self.event(|| format!("{n} is asked for a snapshot at >= {i}"));
            self.nodes.get_mut(&n).expect("node").snapshot_wanted = Some(request.min_index);
        }
        if self.opts.async_writes {
            if self.opts.apply_before_persist {
                // The apply thread runs ahead of the writer: what committed
                // is applied (durably) before this Ready's commit index is.
                let committed = std::mem::take(&mut rd.committed_entries);
                self.apply_entries(n, &committed)?;
                let applied = self.nodes[&n].applied;
                let raw = self.raw(n).expect("running");
                raw.on_applied(applied).map_err(|e| Finding {
                    kind: ViolationKind::NodeError,
                    detail: format!("on_applied {n}: {e}"),
                })?;
                self.take_wanted_snapshot(n);
            }
            // The writer thread makes it durable later (`persist_pending`).
            self.nodes.get_mut(&n).expect("node").pending.push_back(rd);
            if let Some(host) = &mut self.host {
                host.queued.push(n);
            }
            return Ok(());
        }
        if !self.complete_ready(n, &rd)? {
            return Ok(());
        }
        let raw = self.raw(n).expect("running");
        raw.advance().map_err(|e| Finding {
            kind: ViolationKind::NodeError,
            detail: format!("advance {n}: {e}"),
        })
    }

    /// Asynchronous writes: the oldest queued Ready becomes durable, its
    /// held-back messages leave, its committed entries are applied, and the
    /// node is told by number and by index.
    fn persist_pending(&mut self, n: NodeId) -> Result<(), Finding> {
        let Some(rd) = self.nodes.get_mut(&n).and_then(|s| s.pending.pop_front()) else {
            return Ok(());
        };
        if !self.complete_ready(n, &rd)? {
            return Ok(());
        }
        let applied = self.nodes[&n].applied;
        let raw = self.raw(n).expect("running");
        let node_error = |e: crate::raw_node::AdvanceError| Finding {
            kind: ViolationKind::NodeError,
            detail: format!("on_persisted {n}: {e}"),
        };
        raw.on_persisted(rd.number).map_err(node_error)?;
        raw.on_applied(applied).map_err(node_error)
    }

    /// A crash is coming and the oldest queued Ready of `n` reached the disk
    /// first: it is durable, but nothing of it was sent or applied.
    fn persist_only_oldest(&mut self, n: NodeId) -> Result<(), Finding> {
        let rd = self
            .nodes
            .get_mut(&n)
            .and_then(|s| s.pending.pop_front())
            .expect("the host's log tail names a queued Ready of this group");
        self.persist(n, &rd)
    }

    /// Makes `rd` durable, then (unless a fault crashes the node between
    /// persisting and sending) sends its held-back messages and applies
    /// it. Returns false if the node crashed.
    fn complete_ready(&mut self, n: NodeId, rd: &Ready) -> Result<bool, Finding> {
        self.persist(n, rd)?;
        if self.faults && self.rng.random_bool(self.opts.crash_probability.min(0.5)) {
            self.crash(n);
            return Ok(false);
        }
        self.send(rd.persisted_messages.clone());
        self.apply(n, rd)?;
        self.take_wanted_snapshot(n);
        Ok(true)
    }

    /// Takes the snapshot a leader asked `n` for, once `n` applied far
    /// enough: at its applied index, without compacting (an application
    /// answering `Ready::snapshot_request`).
    fn take_wanted_snapshot(&mut self, n: NodeId) {
        let node = self.nodes.get_mut(&n).expect("node");
        let Some(min) = node.snapshot_wanted else {
            return;
        };
        if node.applied < min {
            return;
        }
        node.snapshot_wanted = None;
        let applied = node.applied;
        let r = node.snapshot_at_applied();
        if r.is_ok() {
            self.report.snapshots_requested += 1;
        }
        self.event(|| format!("{n} snapshots at {applied} as asked: {:?}", r.map(|_| ())));
    }

    fn persist(&mut self, n: NodeId, rd: &Ready) -> Result<(), Finding> {
        let node = self.nodes.get_mut(&n).expect("node");
        node.storage
            .persist(rd)
            .expect("raft-core hands out a newer snapshot and consecutive entries");
        let witness = self.opts.is_witness(n.get());
        if let Some(s) = &rd.snapshot {
            if witness && !s.data.is_empty() {
                return Err(Finding {
                    kind: ViolationKind::Witness,
                    detail: format!("witness {n} was sent a snapshot with data"),
                });
            }
            let node = self.nodes.get_mut(&n).expect("node");
            node.applied = s.metadata.index;
            self.report.snapshots_installed += 1;
            let (i, cs) = (s.metadata.index, s.metadata.conf_state.clone());
            self.event(|| format!("{n} installs snapshot at {i}: {cs:?}"));
        }
        let node = self.nodes.get_mut(&n).expect("node");
        for e in &rd.entries {
            let prev = node.storage.term(e.index.prev()).unwrap_or(Term::ZERO);
            if !witness {
                self.checker
                    .log_entry(n, e.index, e.term, prev, entry_digest(e))?;
                continue;
            }
            if e.kind == EntryKind::Normal && !e.data.is_empty() {
                return Err(Finding {
                    kind: ViolationKind::Witness,
                    detail: format!("witness {n} was sent the payload of {}/{}", e.term, e.index),
                });
            }
            self.checker.metadata_entry(n, e.index, e.term, prev)?;
            self.report.witness_entries += 1;
        }
        Ok(())
    }

    fn apply(&mut self, n: NodeId, rd: &Ready) -> Result<(), Finding> {
        self.apply_entries(n, &rd.committed_entries)?;
        for rs in &rd.read_states {
            let ctx = u64::from_le_bytes(rs.context[..8].try_into().expect("8-byte read contexts"));
            let i = rs.index;
            self.event(|| format!("read {ctx} answered at {n}: index {i}"));
            self.checker.read_answered(ctx, rs.index)?;
            self.report.reads_checked += 1;
        }
        Ok(())
    }

    /// Applies committed entries in order; membership changes take effect.
    fn apply_entries(&mut self, n: NodeId, entries: &[Entry]) -> Result<(), Finding> {
        let witness = self.opts.is_witness(n.get());
        for e in entries {
            if witness {
                self.checker.metadata_applied(n, e.index, e.term)?;
            } else {
                self.checker.applied(n, e.index, e.term, entry_digest(e))?;
            }
            let node = self.nodes.get_mut(&n).expect("node");
            if e.index != node.applied.next() {
                // A node applies every entry, in order, or a snapshot.
                return Err(Finding {
                    kind: ViolationKind::StateMachineSafety,
                    detail: format!("node {n} applied {} right after {}", e.index, node.applied),
                });
            }
            if let Some(cc) = AnyConfChange::from_entry(e).expect("conf changes we proposed decode")
            {
                let raw = node.raw.as_mut().expect("running");
                let was_member = raw.status().progress.is_some()
                    || node
                        .storage
                        .initial_state()
                        .is_ok_and(|s| s.conf_state.contains(n));
                let r = raw.apply_conf_change(&cc);
                if let Ok(cs) = &r {
                    node.storage.set_conf_state(cs.clone());
                    self.report.conf_changes_applied += 1;
                    if !was_member
                        && cs.contains(n)
                        && n.get() > self.opts.nodes - self.opts.joiners
                    {
                        self.report.joined += 1;
                    }
                }
                node.applied = e.index;
                let i = e.index;
                if let Err(err) = r {
                    // Every node applies the same changes to the same
                    // configuration: a change valid when proposed is valid
                    // everywhere, so a refusal here means nodes diverged.
                    return Err(Finding {
                        kind: ViolationKind::NodeError,
                        detail: format!("node {n} refused the conf change at {i} ({cc:?}): {err}"),
                    });
                }
                continue;
            }
            node.applied = e.index;
        }
        Ok(())
    }

    /// Role changes feed the election-safety, leader-completeness and
    /// append-only checks.
    fn observe_roles(&mut self) -> Result<(), Finding> {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for n in ids {
            let node = &self.nodes[&n];
            let Some(raw) = &node.raw else { continue };
            let quiesced = raw.is_quiesced();
            if quiesced != node.quiesced {
                self.report.quiescences += u64::from(quiesced);
                if self.trace {
                    self.event(|| format!("{n} quiesced: {quiesced}"));
                }
                self.nodes.get_mut(&n).expect("node").quiesced = quiesced;
            }
            let node = &self.nodes[&n];
            let Some(raw) = &node.raw else { continue };
            let raft = raw.raft();
            let now = (raft.role_kind(), raft.term());
            if self.opts.is_witness(n.get()) && now.0 != RoleKind::Follower {
                return Err(Finding {
                    kind: ViolationKind::Witness,
                    detail: format!("witness {n} became {:?} in term {}", now.0, now.1),
                });
            }
            if now.0 != RoleKind::Leader {
                self.nodes.get_mut(&n).expect("node").last_role = Some(now);
                continue;
            }
            let log = raft.log();
            let term_at = |i: Index| log.term_if_present(i).ok().flatten();
            let last = log.last_index().unwrap_or(Index::ZERO);
            let newly = node.last_role != Some(now);
            if newly {
                self.checker.leader(n, now.1)?;
                let first = log.first_index().unwrap_or(Index::ZERO);
                self.checker.new_leader_log(n, first, term_at)?;
                self.report.leaders += 1;
            }
            self.checker.leader_log(n, now.1, last, term_at)?;
            if newly {
                let t = now.1;
                self.event(|| format!("{n} leads term {t}"));
                self.drift_on_new_leader(n);
            }
            self.nodes.get_mut(&n).expect("node").last_role = Some(now);
        }
        Ok(())
    }

    /// Heals everything, stops nodes the cluster removed, and requires a
    /// leader to commit a new entry on every member within the bound.
    fn liveness(&mut self) -> Result<(), Finding> {
        self.cut.clear();
        self.faults = false;
        self.event(|| "liveness phase: heal, restart all".into());
        let down: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, s)| s.raw.is_none())
            .map(|(i, _)| *i)
            .collect();
        for n in down {
            self.start(n);
        }
        self.wake_all();
        let marker = Bytes::from_static(b"liveness-marker");
        let mut marker_id: Option<crate::types::LogId> = None;
        for _ in 0..self.opts.liveness_rounds {
            self.step += 1;
            // No snapshots are taken here but those a leader asks for
            // (`Ready::snapshot_request`): a member added after the last
            // snapshot, behind the compacted log, catches up through them.
            self.retire_removed_nodes();
            self.round()?;
            self.observe_roles()?;
            let Some(leader) = self.leader() else {
                continue;
            };
            if let Some(id) = marker_id {
                match self.checker.committed(id.index) {
                    Some(t) if t == id.term && self.members_applied(id.index) => return Ok(()),
                    Some(t) if t == id.term => continue,
                    // Overwritten by a later leader, or still pending under
                    // an older one: propose again to the current leader.
                    _ if self
                        .raw(leader)
                        .is_some_and(|r| r.status().hard_state.term == id.term) =>
                    {
                        continue;
                    }
                    _ => {}
                }
            }
            if let Ok(crate::raft::Proposal::Appended { id }) = self
                .raw(leader)
                .expect("leader runs")
                .propose(marker.clone())
            {
                marker_id = Some(id);
            }
        }
        let marker_index = marker_id.map(|m| m.index);
        let nodes = self.describe_nodes();
        Err(Finding {
            kind: ViolationKind::Liveness,
            detail: format!(
                "no progress within {} rounds after healing (leader: {:?}, marker: {marker_index:?}); {nodes}",
                self.opts.liveness_rounds,
                self.leader()
            ),
        })
    }

    /// One synchronous round: every node ticks, handles its Ready, and every
    /// message is delivered.
    fn round(&mut self) -> Result<(), Finding> {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for &n in &ids {
            self.tick(n)?;
        }
        for _ in 0..4 {
            for &n in &ids {
                self.process_ready(n)?;
                while self.nodes[&n].pending.front().is_some() {
                    self.persist_pending(n)?;
                }
            }
            let msgs: Vec<Message> = self.network.drain(..).map(|f| f.msg).collect();
            for m in msgs {
                self.deliver(m)?;
            }
        }
        Ok(())
    }

    /// One line per node: role, term, commit, applied, log bounds, and
    /// the leader's view of its followers.
    fn describe_nodes(&self) -> String {
        let mut out = String::new();
        for (n, s) in &self.nodes {
            let Some(raw) = &s.raw else {
                out.push_str(&format!("\n  {n}: down"));
                continue;
            };
            let st = raw.status();
            let first = s.storage.first_index().unwrap_or(Index::ZERO);
            out.push_str(&format!(
                "\n  {n}: {:?} term={} commit={} applied={} log=[{first}, {}] conf={:?}",
                st.soft_state.role,
                st.hard_state.term,
                st.hard_state.commit,
                s.applied,
                st.last_index,
                s.storage.initial_state().map(|i| i.conf_state).ok()
            ));
            for (p, pr) in st.progress.iter().flatten() {
                out.push_str(&format!(
                    "\n     -> {p}: {:?} match={} next={} active={} inflight={}",
                    pr.state, pr.matched, pr.next, pr.recent_active, pr.inflight_msgs
                ));
            }
        }
        out
    }

    fn leader(&self) -> Option<NodeId> {
        self.nodes.iter().find_map(|(n, s)| {
            let raw = s.raw.as_ref()?;
            (raw.status().soft_state.role == RoleKind::Leader).then_some(*n)
        })
    }

    /// The membership the most advanced node applied.
    fn current_membership(&self) -> ConfState {
        let most = self
            .nodes
            .values()
            .max_by_key(|s| s.applied)
            .expect("nodes");
        most.storage
            .initial_state()
            .expect("memory storage")
            .conf_state
    }

    /// Every node runs in the liveness phase, removed ones included: a node
    /// that shut down as soon as it applied its own removal could leave
    /// voters that have not yet learned that the removal committed waiting
    /// forever for its vote (membership takes effect on apply, as in
    /// etcd-raft). Removed nodes keep answering votes until the operator
    /// retires them.
    fn retire_removed_nodes(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for n in ids {
            if self.nodes[&n].raw.is_none() {
                self.start(n);
            }
        }
    }

    fn members_applied(&self, index: Index) -> bool {
        let cs = self.current_membership();
        self.nodes
            .iter()
            .filter(|(n, _)| cs.contains(**n))
            .all(|(_, s)| s.applied >= index)
    }
}

/// A network split drawn at random, or a healed network.
#[derive(Clone, Debug)]
struct Partition {
    /// Directed links that drop everything.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// The nodes cut off from the others; `None`, healed.
    side: Option<BTreeSet<NodeId>>,
    /// Only the links from `side` to the others are cut.
    one_way: bool,
}

impl Partition {
    /// Heals (2 times in 5) or cuts a random side off the others, both
    /// ways or one way.
    fn draw(rng: &mut StdRng, ids: &[NodeId]) -> Partition {
        let mut p = Partition {
            cut: BTreeSet::new(),
            side: None,
            one_way: false,
        };
        if rng.random_bool(0.4) {
            return p;
        }
        let side: BTreeSet<NodeId> = ids
            .iter()
            .copied()
            .filter(|_| rng.random_bool(0.4))
            .collect();
        p.one_way = rng.random_bool(0.3);
        for &a in &side {
            for &b in ids.iter().filter(|b| !side.contains(b)) {
                p.cut.insert((a, b));
                if !p.one_way {
                    p.cut.insert((b, a));
                }
            }
        }
        p.side = Some(side);
        p
    }
}

/// A single-step change with no context.
fn single_step(kind: ConfChangeKind, node_id: NodeId) -> AnyConfChange {
    AnyConfChange::V1(ConfChange {
        kind,
        node_id,
        context: Bytes::new(),
    })
}

fn entry_digest(e: &Entry) -> u64 {
    let kind = match e.kind {
        EntryKind::Normal => 0,
        EntryKind::ConfChange => 1,
        EntryKind::ConfChangeV2 => 2,
    };
    digest(kind, &e.data)
}
