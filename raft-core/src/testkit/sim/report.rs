//! What a simulated run reports: its counters, or the property it broke.

use std::fmt;

use crate::testkit::check::Finding;

/// What a successful run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimReport {
    /// Steps executed, including the liveness phase.
    pub steps: u64,
    /// Highest index applied anywhere.
    pub committed: u64,
    /// Leaders elected (distinct terms with a leader).
    pub leaders: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Messages dropped by the network.
    pub dropped: u64,
    /// Reads answered and checked.
    pub reads_checked: u64,
    /// Membership changes applied (counted once per node).
    pub conf_changes_applied: u64,
    /// Snapshots installed from a leader.
    pub snapshots_installed: u64,
    /// Restarts whose state machine was ahead of the persisted commit index.
    pub restarts_applied_ahead: u64,
    /// Nodes that started empty and became members (applied a configuration
    /// that holds them).
    pub joined: u64,
    /// Snapshots taken because a leader asked (`Ready::snapshot_request`).
    pub snapshots_requested: u64,
    /// Followers that forgot their leader (`RawNode::forget_leader`).
    pub leaders_forgotten: u64,
    /// Snapshots followers asked for (`RawNode::request_snapshot`).
    pub snapshots_asked_by_followers: u64,
    /// Proposals refused for apply backpressure
    /// (`ProposeError::ApplyBacklog`).
    pub proposals_backpressured: u64,
    /// Times a node was seen to quiesce.
    pub quiescences: u64,
    /// Groups run (1 for a [`Simulation`](super::Simulation)).
    pub groups: u64,
    /// Multi-group runs: syncs of a host's shared log that made writes
    /// durable.
    pub host_syncs: u64,
    /// Multi-group runs: writes (Readys) those syncs made durable.
    pub host_synced_writes: u64,
    /// Multi-group runs: syncs whose writes came from more than one group
    /// (one sync serving several groups, as in a shared log).
    pub host_syncs_across_groups: u64,
    /// Multi-group runs: unsynced writes a crash still left durable (the
    /// first of a host's unsynced tail reached the disk in order).
    pub host_writes_durable_at_crash: u64,
    /// Witness runs: entries witnesses persisted (each checked to carry no
    /// payload).
    pub witness_entries: u64,
}

impl SimReport {
    /// Adds another group's counters to these ("committed" adds up too).
    pub(super) fn absorb(&mut self, o: &SimReport) {
        let SimReport {
            steps,
            committed,
            leaders,
            crashes,
            delivered,
            dropped,
            reads_checked,
            conf_changes_applied,
            snapshots_installed,
            restarts_applied_ahead,
            joined,
            snapshots_requested,
            leaders_forgotten,
            snapshots_asked_by_followers,
            proposals_backpressured,
            quiescences,
            groups,
            witness_entries,
            host_syncs,
            host_synced_writes,
            host_syncs_across_groups,
            host_writes_durable_at_crash,
        } = o;
        self.steps += steps;
        self.committed += committed;
        self.leaders += leaders;
        self.crashes += crashes;
        self.delivered += delivered;
        self.dropped += dropped;
        self.reads_checked += reads_checked;
        self.conf_changes_applied += conf_changes_applied;
        self.snapshots_installed += snapshots_installed;
        self.restarts_applied_ahead += restarts_applied_ahead;
        self.joined += joined;
        self.snapshots_requested += snapshots_requested;
        self.leaders_forgotten += leaders_forgotten;
        self.snapshots_asked_by_followers += snapshots_asked_by_followers;
        self.proposals_backpressured += proposals_backpressured;
        self.quiescences += quiescences;
        self.groups += groups;
        self.witness_entries += witness_entries;
        self.host_syncs += host_syncs;
        self.host_synced_writes += host_synced_writes;
        self.host_syncs_across_groups += host_syncs_across_groups;
        self.host_writes_durable_at_crash += host_writes_durable_at_crash;
    }
}

/// A broken property, with everything needed to replay it.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The seed of the run.
    pub seed: u64,
    /// The step at which the checker failed.
    pub step: u64,
    /// What broke.
    pub finding: Finding,
    /// The last events before the failure, oldest first.
    pub recent: Vec<String>,
    /// The mode of the run ([`SimOptions::mode`](super::SimOptions::mode)).
    pub mode: &'static str,
    /// Multi-group runs: the group (from 0) whose checker failed, and whose
    /// events `recent` holds.
    pub group: Option<u64>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "simulation seed={}", self.seed)?;
        if let Some(g) = self.group {
            write!(f, " group {g}")?;
        }
        writeln!(f, " failed at step {}: {}", self.step, self.finding)?;
        writeln!(f, "last events:")?;
        for e in &self.recent {
            writeln!(f, "  {e}")?;
        }
        write!(
            f,
            "replay: RAFT_SIM_SEED={} RAFT_SIM_MODE={} cargo test -p raft-core --release --features testkit --test sim sim_replay -- --nocapture",
            self.seed, self.mode
        )
    }
}

impl std::error::Error for Violation {}
