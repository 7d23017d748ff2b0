//! What a simulated run does: its faults, its workload and its mode.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::ClockDrift;
#[cfg(doc)]
use crate::{config::Config, raw_node::RawNode};

/// How hostile and how busy a simulated run is. Probabilities are per step.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SimOptions {
    /// Cluster size (3, 5 or 7 are typical).
    pub nodes: u64,
    /// Steps of the fault phase.
    pub steps: u64,
    /// A delivered message is lost.
    pub drop_probability: f64,
    /// A delivered message is delivered twice.
    pub duplicate_probability: f64,
    /// Messages are delayed by up to this many steps (reordering them).
    pub max_delay_steps: u64,
    /// A node crashes (volatile state lost, storage kept).
    pub crash_probability: f64,
    /// A crashed node restarts.
    pub restart_probability: f64,
    /// The network splits (symmetric or one-way) or heals.
    pub partition_probability: f64,
    /// A client proposes a write.
    pub propose_probability: f64,
    /// A membership change is proposed.
    pub conf_change_probability: f64,
    /// A leadership transfer is requested.
    pub transfer_probability: f64,
    /// A node snapshots and compacts its log.
    pub compact_probability: f64,
    /// A linearizable read starts.
    pub read_probability: f64,
    /// A node is told to forget its leader
    /// ([`RawNode::forget_leader`]; refused unless it is a follower, and
    /// with lease reads). 0 in [`SimOptions::randomized`], so that existing
    /// seeds replay unchanged; see [`SimOptions::with_local_ops`].
    pub forget_leader_probability: f64,
    /// A node's application finds its state machine damaged and asks the
    /// leader for a snapshot ([`RawNode::request_snapshot`]). 0 in
    /// [`SimOptions::randomized`]; see [`SimOptions::with_local_ops`].
    pub request_snapshot_probability: f64,
    /// Every node's [`Config::max_apply_gap`]: proposals are refused while
    /// its state machine lags the commit index by more. No limit in
    /// [`SimOptions::randomized`]; see [`SimOptions::with_local_ops`].
    pub max_apply_gap: u64,
    /// Nodes run pre-vote.
    pub pre_vote: bool,
    /// Nodes run CheckQuorum.
    pub check_quorum: bool,
    /// Nodes persist and apply asynchronously (`Config::async_storage_writes`):
    /// Readys queue up and are made durable one at a time, later.
    pub async_writes: bool,
    /// Rounds (one tick per node) the liveness phase may take.
    pub liveness_rounds: u64,
    /// Reads are lease-based (`ReadOnlyOption::LeaseBased`, with
    /// CheckQuorum) and all live nodes tick together, every
    /// [`LOCKSTEP_TICK_STEPS`] steps per node: clocks without drift, the
    /// assumption leases rest on. Off in [`SimOptions::randomized`], so
    /// existing seeds replay unchanged; see [`SimOptions::with_lease_reads`].
    pub lease_reads: bool,
    /// Lease reads only: `None`, nodes tick in lockstep (above);
    /// `Some(a)`, each node ticks at its own rate, between once every
    /// [`SimOptions::lease_tick_steps`] steps per node and `1 + a / 1000`
    /// times as often, from its own phase: the fastest clock runs at most
    /// `1 + a / 1000` times the slowest. Rates are drawn from the seed at
    /// the start and again whenever a new leader is seen (often the
    /// adversary's choice: the leader slowest, the others fastest). The
    /// liveness phase ticks every node each round. See
    /// [`SimOptions::with_lease_drift`].
    pub tick_drift_per_mille: Option<u32>,
    /// Lease reads only: steps per node between two ticks of a clock at
    /// the slowest rate. [`LOCKSTEP_TICK_STEPS`] in
    /// [`SimOptions::randomized`]; the drift modes tick more slowly, so
    /// that messages are fast against ticks, the regime where a lease
    /// that lasts too long is caught.
    pub lease_tick_steps: u64,
    /// Every node's [`Config::max_clock_drift`]: the drift its lease is
    /// shortened for. [`ClockDrift::Lockstep`] in
    /// [`SimOptions::randomized`].
    pub max_clock_drift: ClockDrift,
    /// The highest this many ids start with empty storage, outside the
    /// cluster, and join when a membership change adds them; the others
    /// found the cluster in the log ([`FoundingLog`](crate::FoundingLog)). With 0, every node
    /// starts from the same membership outside the log
    /// (`MemoryStorage::with_conf_state`). See [`SimOptions::with_joiners`].
    pub joiners: u64,
    /// Asynchronous writes only: committed entries are applied as soon as
    /// they are handed out, before the Ready that carries them (and its
    /// commit index) is durable, so after a crash the state machine can be
    /// ahead of the persisted commit index; nodes restart at the state
    /// machine's index. See [`SimOptions::with_aggressive_compaction`].
    pub apply_before_persist: bool,
    /// Every node's [`Config::quiesce_after_ticks`]. `None` in
    /// [`SimOptions::randomized`]; see [`SimOptions::with_quiescence`].
    /// The simulated hosts wake nodes ([`RawNode::wake`]) when a node
    /// crashes or restarts and when the network splits or heals, each with
    /// probability 1/2 (an imperfect failure detector), and all of them in
    /// the liveness phase.
    pub quiesce_after_ticks: Option<std::num::NonZeroU32>,
    /// Raft groups over the same nodes. 1 in [`SimOptions::randomized`]
    /// (a [`Simulation`](super::Simulation)); more run as a
    /// [`MultiSimulation`](super::MultiSimulation), see
    /// [`SimOptions::with_groups`].
    pub groups: u64,
    /// The highest this many ids are witnesses ([`Config::witness`], and
    /// named so in the membership): they vote and hold the log's metadata,
    /// never lead, and get no payloads. 0 in [`SimOptions::randomized`];
    /// see [`SimOptions::with_witnesses`].
    pub witnesses: u64,
}

/// In lease mode, all nodes tick once every this many steps per node (the
/// same average rate as the random ticks of the other mode).
pub const LOCKSTEP_TICK_STEPS: u64 = 4;

/// In the drift modes, a clock at the slowest rate ticks once every this
/// many steps per node ([`SimOptions::lease_tick_steps`]).
pub const DRIFT_TICK_STEPS: u64 = 16;

/// The drift bound of the `lease-drift` modes, in parts per thousand:
/// every node's [`Config::max_clock_drift`] is
/// `ClockDrift::PerMille(LEASE_DRIFT_PER_MILLE)`.
pub const LEASE_DRIFT_PER_MILLE: u32 = 100;

/// The actual tick-rate spread of the `lease-drift-beyond` mode, in parts
/// per thousand: beyond [`LEASE_DRIFT_PER_MILLE`], where the simulator
/// finds stale reads.
pub const BEYOND_DRIFT_PER_MILLE: u32 = 4000;

impl SimOptions {
    /// A mix of faults and workload drawn from `seed`, so that many seeds
    /// explore many regimes.
    pub fn randomized(seed: u64) -> SimOptions {
        let mut r = StdRng::seed_from_u64(seed ^ 0x5eed_0f0a_7105);
        SimOptions {
            nodes: [3, 3, 5, 5, 7][r.random_range(0..5)],
            steps: 2_000,
            drop_probability: [0.0, 0.02, 0.1, 0.3][r.random_range(0..4)],
            duplicate_probability: [0.0, 0.02, 0.1][r.random_range(0..3)],
            max_delay_steps: [0, 3, 20][r.random_range(0..3)],
            crash_probability: [0.0, 0.002, 0.01][r.random_range(0..3)],
            restart_probability: 0.05,
            partition_probability: [0.0, 0.003, 0.01][r.random_range(0..3)],
            propose_probability: [0.05, 0.2][r.random_range(0..2)],
            conf_change_probability: [0.0, 0.003, 0.01][r.random_range(0..3)],
            transfer_probability: [0.0, 0.003][r.random_range(0..2)],
            compact_probability: [0.0, 0.01][r.random_range(0..2)],
            read_probability: [0.0, 0.05][r.random_range(0..2)],
            forget_leader_probability: 0.0,
            request_snapshot_probability: 0.0,
            max_apply_gap: crate::config::NO_LIMIT,
            pre_vote: r.random_bool(0.7),
            check_quorum: r.random_bool(0.7),
            async_writes: r.random_bool(0.3),
            liveness_rounds: 2_000,
            lease_reads: false,
            tick_drift_per_mille: None,
            lease_tick_steps: LOCKSTEP_TICK_STEPS,
            max_clock_drift: ClockDrift::Lockstep,
            joiners: 0,
            apply_before_persist: false,
            quiesce_after_ticks: None,
            groups: 1,
            witnesses: 0,
        }
    }

    /// The same options for `full` full voters and `witnesses` witnesses
    /// (the highest ids), with the node-local operations
    /// ([`SimOptions::with_local_ops`]) and membership changes that remove
    /// and re-add members of either kind.
    #[must_use]
    pub fn with_witnesses(mut self, full: u64, witnesses: u64) -> SimOptions {
        self = self.with_local_ops();
        self.nodes = full + witnesses;
        self.witnesses = witnesses;
        self.joiners = 0;
        self
    }

    /// True when `n` (an id) is one of the witnesses.
    pub fn is_witness(&self, n: u64) -> bool {
        n > self.nodes - self.witnesses
    }

    /// The same options with some clusters founded in the log and joined
    /// by nodes that start empty: 3 or 5 founders, and 1 or 2 joiners
    /// (drawn from `seed`), with membership changes frequent enough to add
    /// them.
    #[must_use]
    pub fn with_joiners(mut self, seed: u64) -> SimOptions {
        let mut r = StdRng::seed_from_u64(seed ^ 0x101e_0f0a);
        let founders = [3, 3, 5][r.random_range(0..3)];
        self.joiners = r.random_range(1..=2);
        self.nodes = founders + self.joiners;
        self.conf_change_probability = self.conf_change_probability.max(0.03);
        self
    }

    /// The same options with asynchronous writes, committed entries applied
    /// before they are persisted ([`SimOptions::apply_before_persist`]) and
    /// frequent compaction at the state machine's applied index.
    #[must_use]
    pub fn with_aggressive_compaction(mut self) -> SimOptions {
        self.async_writes = true;
        self.apply_before_persist = true;
        self.compact_probability = 0.05;
        self
    }

    /// The same options with lease reads and lockstep clocks (and reads
    /// frequent enough to test them).
    #[must_use]
    pub fn with_lease_reads(mut self) -> SimOptions {
        self.lease_reads = true;
        self.check_quorum = true;
        self.read_probability = self.read_probability.max(0.05);
        self
    }

    /// The same options with lease reads shortened for a drift of
    /// `configured` per mille ([`ClockDrift::PerMille`]), and nodes that
    /// tick at rates `actual` per mille apart, each from its own phase
    /// ([`SimOptions::tick_drift_per_mille`]), instead of in lockstep.
    #[must_use]
    pub fn with_lease_drift(mut self, configured: u32, actual: u32) -> SimOptions {
        self = self.with_lease_reads();
        self.max_clock_drift = ClockDrift::PerMille(configured);
        self.tick_drift_per_mille = Some(actual);
        // Ticks come `slower` times more rarely against the messages; so do
        // the faults, so that a partition still lasts a few election
        // timeouts and the fault phase as many ticks.
        let slower = DRIFT_TICK_STEPS / LOCKSTEP_TICK_STEPS;
        self.lease_tick_steps = DRIFT_TICK_STEPS;
        self.steps *= slower;
        for p in [
            &mut self.crash_probability,
            &mut self.restart_probability,
            &mut self.partition_probability,
            &mut self.conf_change_probability,
            &mut self.transfer_probability,
            &mut self.compact_probability,
        ] {
            *p /= slower as f64;
        }
        self
    }

    /// The same options with the node-local operations of the application
    /// as well: followers told to forget their leader, and followers that
    /// ask the leader for a snapshot (each with probability 0.005 a step);
    /// and apply backpressure at a gap of 8 entries.
    #[must_use]
    pub fn with_local_ops(mut self) -> SimOptions {
        self.forget_leader_probability = 0.005;
        self.request_snapshot_probability = 0.005;
        self.max_apply_gap = 8;
        self
    }

    /// The same options with quiescence: a leader quiesces after 3 idle
    /// ticks; writes, reads, membership changes and transfers are ten times
    /// sparser, so that groups fall idle between bursts and quiesce with
    /// faults in flight; partitions come at least every 200 steps.
    #[must_use]
    pub fn with_quiescence(mut self) -> SimOptions {
        self.quiesce_after_ticks = std::num::NonZeroU32::new(3);
        for p in [
            &mut self.read_probability,
            &mut self.conf_change_probability,
            &mut self.transfer_probability,
        ] {
            *p /= 10.0;
        }
        self.propose_probability /= 4.0;
        // The network splits often: a quiesced leader cut off while the
        // others elect a new one is where a lease kept through quiescence
        // reads stale.
        self.partition_probability = self.partition_probability.max(0.005);
        self
    }

    /// The same options for 2 to 4 groups (drawn from `seed`) over the same
    /// nodes, as a host runs them ([`MultiSimulation`](super::MultiSimulation)):
    /// crashes and the network are the host's, and every group's writes go
    /// through the host's one log, asynchronously
    /// ([`SimOptions::async_writes`]), made durable together by one sync.
    #[must_use]
    pub fn with_groups(mut self, seed: u64) -> SimOptions {
        let mut r = StdRng::seed_from_u64(seed ^ 0x0960_0095);
        self.groups = r.random_range(2..=4);
        self.async_writes = true;
        self
    }

    /// The name of the mode these options run in, as `RAFT_SIM_MODE`
    /// takes it in the replay command: `lease`, `lease-drift` (nodes drift
    /// within the bound their lease is shortened for), `lease-drift-beyond`
    /// (beyond it), `joiners`, `compaction`, `local-ops`, `quiesce`,
    /// `quiesce-lease` (quiescence with lease reads), `multi` (several
    /// groups over the same nodes), `multi-quiesce` (the same, quiescing),
    /// `witness` (2 full voters and 1 witness), `witness-5` (3 full voters
    /// and 2 witnesses) or `default`.
    pub fn mode(&self) -> &'static str {
        if self.witnesses > 0 {
            if self.nodes == 3 {
                "witness"
            } else {
                "witness-5"
            }
        } else if self.groups > 1 {
            if self.quiesce_after_ticks.is_some() {
                "multi-quiesce"
            } else {
                "multi"
            }
        } else if self.quiesce_after_ticks.is_some() {
            if self.lease_reads {
                "quiesce-lease"
            } else {
                "quiesce"
            }
        } else if self.lease_reads {
            match (self.tick_drift_per_mille, self.max_clock_drift) {
                (None, _) => "lease",
                (Some(a), ClockDrift::PerMille(d)) if a <= d => "lease-drift",
                (Some(_), _) => "lease-drift-beyond",
            }
        } else if self.joiners > 0 {
            "joiners"
        } else if self.apply_before_persist {
            "compaction"
        } else if self.forget_leader_probability > 0.0 || self.request_snapshot_probability > 0.0 {
            "local-ops"
        } else {
            "default"
        }
    }

    /// The options of `mode` (see [`SimOptions::mode`]) for `seed`, or
    /// `None` for an unknown mode.
    pub fn for_mode(mode: &str, seed: u64) -> Option<SimOptions> {
        let base = SimOptions::randomized(seed);
        match mode {
            "default" => Some(base),
            "lease" => Some(base.with_lease_reads()),
            "lease-drift" => {
                Some(base.with_lease_drift(LEASE_DRIFT_PER_MILLE, LEASE_DRIFT_PER_MILLE))
            }
            "lease-drift-beyond" => {
                Some(base.with_lease_drift(LEASE_DRIFT_PER_MILLE, BEYOND_DRIFT_PER_MILLE))
            }
            "joiners" => Some(base.with_joiners(seed)),
            "compaction" => Some(base.with_aggressive_compaction()),
            "local-ops" => Some(base.with_local_ops()),
            "quiesce" => Some(base.with_quiescence()),
            "quiesce-lease" => Some(base.with_lease_reads().with_quiescence()),
            "multi" => Some(base.with_groups(seed)),
            "multi-quiesce" => Some(base.with_groups(seed).with_quiescence()),
            "witness" => Some(base.with_witnesses(2, 1)),
            "witness-5" => Some(base.with_witnesses(3, 2)),
            _ => None,
        }
    }

    /// The same options with another step count.
    #[must_use]
    pub fn with_steps(mut self, steps: u64) -> SimOptions {
        self.steps = steps;
        self
    }
}
