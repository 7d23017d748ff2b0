//! Several Raft groups over the same nodes, as a host runs them (see
//! [`MultiSimulation`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{HostFault, HostRequests, Partition, SimOptions, SimReport, Simulation, Violation};
use crate::testkit::check::Finding;
use crate::types::NodeId;

/// Each step, with this probability, one node's host syncs its shared log
/// instead of a group taking a step: a few writes per sync, from several
/// groups.
const SYNC_PROBABILITY: f64 = 0.1;

/// Group `g` writes values from `g << VALUE_SHIFT` up, so that no two
/// groups ever write the same value.
const VALUE_SHIFT: u32 = 40;

/// A seeded simulation of [`SimOptions::groups`] Raft groups over the same
/// [`SimOptions::nodes`] nodes.
///
/// The groups run the way a host runs them:
/// a crash takes down every group of a node at once, the network is the
/// nodes', and every group's writes go through the node's one shared log
/// (the layout of raft-wal's `SharedWal`). The shared log is what can go
/// wrong across groups, so it is modelled as an ordered tail of unsynced
/// writes per node:
///
/// - a sync makes the whole tail durable at once (one fsync serves every
///   group with writes in it); then each group learns its writes are
///   durable, oldest first, and sends and applies what waited for them;
/// - a crash loses the tail, except a prefix of it that already reached the
///   disk in order (a log is written in order; a record torn after the
///   prefix is cut off by its checksum on reopening).
///
/// Each group keeps its own [`SafetyChecker`](crate::testkit::check::SafetyChecker),
/// run after every step, and its own liveness phase; groups write distinct
/// values, so a write landing in the wrong group would fail its checker.
///
/// ```
/// use raft_core::testkit::sim::{MultiSimulation, SimOptions};
///
/// let opts = SimOptions::randomized(7).with_groups(7).with_steps(300);
/// let report = MultiSimulation::new(7, opts).run().unwrap_or_else(|v| panic!("{v}"));
/// assert!(report.groups >= 2);
/// ```
pub struct MultiSimulation {
    seed: u64,
    opts: SimOptions,
    rng: StdRng,
    /// One single-group simulation per group, each with its own checker,
    /// network queue and workload, asking this run for the host's faults.
    groups: Vec<Simulation>,
    /// Per node, its shared log past the last sync: the group of each
    /// queued write, oldest first.
    /// Invariant: the entries of group `g` are as many as group `g`'s
    /// queued Readys of that node.
    tails: BTreeMap<NodeId, VecDeque<usize>>,
    step: u64,
    /// The host's own counters (syncs, writes per sync).
    report: SimReport,
}

impl MultiSimulation {
    /// `opts.groups` groups over `opts.nodes` nodes; nothing runs until
    /// [`MultiSimulation::run`].
    ///
    /// # Panics
    /// If `opts` asks for lease reads: their clocks are a node's, and this
    /// run ticks each group on its own.
    pub fn new(seed: u64, opts: SimOptions) -> MultiSimulation {
        assert!(
            !opts.lease_reads,
            "lease reads are simulated one group at a time"
        );
        let groups: Vec<Simulation> = (0..opts.groups.max(1))
            .map(|g| {
                let mut sim = Simulation::new(group_seed(seed, g), opts.clone());
                sim.host = Some(HostRequests::default());
                sim.next_value = g << VALUE_SHIFT;
                sim
            })
            .collect();
        let tails = groups[0]
            .nodes
            .keys()
            .map(|&n| (n, VecDeque::new()))
            .collect();
        MultiSimulation {
            seed,
            rng: StdRng::seed_from_u64(seed ^ 0x0057_a7ed_1095),
            groups,
            tails,
            step: 0,
            report: SimReport::default(),
            opts,
        }
    }

    /// Runs the fault phase ([`SimOptions::steps`] per group), then every
    /// group's liveness phase.
    ///
    /// # Errors
    /// The first [`Violation`] found, with its group.
    pub fn run(mut self) -> Result<SimReport, Violation> {
        for _ in 0..self.opts.steps * self.groups.len() as u64 {
            self.step += 1;
            self.fault_step()?;
        }
        self.liveness()?;
        Ok(self.finish())
    }

    fn node_ids(&self) -> Vec<NodeId> {
        self.tails.keys().copied().collect()
    }

    fn violation(&self, g: usize, finding: Finding) -> Violation {
        let group = &self.groups[g];
        Violation {
            seed: self.seed,
            step: group.step,
            finding,
            recent: group.recent.iter().cloned().collect(),
            mode: self.opts.mode(),
            group: Some(g as u64),
        }
    }

    /// A host syncs its log, or one group takes a step of its own (and the
    /// host carries out what that step asked of it).
    fn fault_step(&mut self) -> Result<(), Violation> {
        for g in &mut self.groups {
            g.step = self.step;
        }
        if self.rng.random_bool(SYNC_PROBABILITY) {
            let ids = self.node_ids();
            let n = ids[self.rng.random_range(0..ids.len())];
            return self.sync(n);
        }
        let g = self.rng.random_range(0..self.groups.len());
        let stepped = self.groups[g].fault_step();
        stepped.map_err(|f| self.violation(g, f))?;
        self.serve(g)
    }

    /// Takes what group `g` asked of the host: its queued writes join the
    /// log tails, its faults happen to every group.
    fn serve(&mut self, g: usize) -> Result<(), Violation> {
        let Some(host) = self.groups[g].host.as_mut() else {
            return Ok(());
        };
        let HostRequests { faults, queued } = std::mem::take(host);
        for n in queued {
            self.tails
                .get_mut(&n)
                .expect("a tail per node")
                .push_back(g);
        }
        for fault in faults {
            match fault {
                HostFault::Crash(n) => self.crash(n)?,
                HostFault::Restart => self.restart(),
                HostFault::Repartition => self.repartition(),
            }
        }
        debug_assert!(self.tails_match_queues(), "log tails and queues agree");
        Ok(())
    }

    /// Every tail holds each group's queued writes, no more, no fewer.
    fn tails_match_queues(&self) -> bool {
        self.tails.iter().all(|(n, tail)| {
            self.groups.iter().enumerate().all(|(g, sim)| {
                tail.iter().filter(|&&t| t == g).count() == sim.nodes[n].pending.len()
            })
        })
    }

    /// One sync of `n`'s log makes its whole tail durable; then each group
    /// hears of its writes, oldest first. A crash while they do (between
    /// persisting and sending) leaves the rest of the batch durable, unsent.
    fn sync(&mut self, n: NodeId) -> Result<(), Violation> {
        let batch: Vec<usize> = self
            .tails
            .get_mut(&n)
            .expect("a tail per node")
            .drain(..)
            .collect();
        if batch.is_empty() {
            return Ok(());
        }
        self.count_sync(&batch);
        let mut crashed = false;
        for g in batch {
            let sim = &mut self.groups[g];
            let done = if crashed {
                sim.persist_only_oldest(n)
            } else {
                sim.persist_pending(n)
            };
            done.map_err(|f| self.violation(g, f))?;
            let host = self.groups[g].host.as_mut().expect("a group of a host");
            let crash_asked = host
                .faults
                .iter()
                .any(|f| matches!(f, HostFault::Crash(c) if *c == n));
            host.faults
                .retain(|f| !matches!(f, HostFault::Crash(c) if *c == n));
            crashed |= crash_asked;
        }
        if crashed {
            self.crash(n)?;
        }
        Ok(())
    }

    fn count_sync(&mut self, batch: &[usize]) {
        let groups: BTreeSet<usize> = batch.iter().copied().collect();
        self.report.host_syncs += 1;
        self.report.host_synced_writes += batch.len() as u64;
        self.report.host_syncs_across_groups += u64::from(groups.len() > 1);
    }

    /// `n` crashes in every group at once. Of its unsynced tail, a random
    /// prefix reached the disk in order and stays; the rest is lost.
    fn crash(&mut self, n: NodeId) -> Result<(), Violation> {
        let tail: Vec<usize> = self
            .tails
            .get_mut(&n)
            .expect("a tail per node")
            .drain(..)
            .collect();
        let durable = self.rng.random_range(0..=tail.len());
        for &g in &tail[..durable] {
            let kept = self.groups[g].persist_only_oldest(n);
            kept.map_err(|f| self.violation(g, f))?;
        }
        self.report.host_writes_durable_at_crash += durable as u64;
        for sim in &mut self.groups {
            sim.crash_now(n);
        }
        Ok(())
    }

    /// A crashed node restarts, every group on it.
    fn restart(&mut self) {
        let down: Vec<NodeId> = self
            .node_ids()
            .into_iter()
            .filter(|n| self.groups[0].nodes[n].raw.is_none())
            .collect();
        debug_assert!(
            down.iter()
                .all(|n| self.groups.iter().all(|g| g.nodes[n].raw.is_none())),
            "a node is down in every group or in none"
        );
        if down.is_empty() {
            return;
        }
        let n = down[self.rng.random_range(0..down.len())];
        for sim in &mut self.groups {
            sim.start(n);
            sim.event(|| format!("restart {n} (every group)"));
            sim.wake_some();
        }
    }

    /// The nodes' network splits or heals, for every group.
    fn repartition(&mut self) {
        for sim in &mut self.groups {
            sim.cut.clear();
            sim.wake_some();
        }
        let ids = self.node_ids();
        let partition = Partition::draw(&mut self.rng, &ids);
        for sim in &mut self.groups {
            sim.set_partition(&partition);
        }
    }

    /// No more faults; every log is synced; then each group must make
    /// progress on its own ([`Simulation`]'s liveness phase).
    fn liveness(&mut self) -> Result<(), Violation> {
        for sim in &mut self.groups {
            sim.faults = false;
        }
        for n in self.node_ids() {
            self.sync(n)?;
        }
        for g in 0..self.groups.len() {
            self.groups[g].host = None;
            let live = self.groups[g].liveness();
            live.map_err(|f| self.violation(g, f))?;
        }
        Ok(())
    }

    /// Every group's counters added up, with the host's.
    fn finish(self) -> SimReport {
        let mut report = self.report;
        let fault_steps = self.step;
        let mut liveness_steps = 0;
        for sim in self.groups {
            let r = sim.finish();
            liveness_steps += r.steps - fault_steps;
            report.absorb(&r);
        }
        report.steps = fault_steps + liveness_steps;
        report
    }
}

/// Group `g`'s own seed (group 0 runs on the run's seed).
fn group_seed(seed: u64, g: u64) -> u64 {
    seed ^ g.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}
