//! How to run a group.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use raft_core::{ClockDrift, NodeId, ReadOnlyOption};

use raft_core::GroupId;

/// [`HostOptions::max_concurrent_elections`] by default: a few hundred
/// elections of a few messages each stay well inside a transport's
/// per-peer queue (raft-transport: 4,096 messages).
pub const DEFAULT_MAX_CONCURRENT_ELECTIONS: usize = 256;

/// A member and the address its peers reach it at (whatever the
/// [`Transport`](crate::Transport) understands: a URL, `host:port`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The member.
    pub id: NodeId,
    /// Its peer address.
    pub addr: String,
}

impl Peer {
    /// A member at `addr`.
    pub fn new(id: NodeId, addr: impl Into<String>) -> Peer {
        Peer {
            id,
            addr: addr.into(),
        }
    }
}

/// How a group's member comes to be, on its first start. On later starts
/// (the storage holds a log) the membership comes from the log and
/// snapshot; the peers listed here only tell the transport where to find
/// them until the log does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Membership {
    /// One of the founders: every founder is given the same list, this
    /// node among them (thesis §4.1: the founding configuration is the
    /// first entries of every founder's log).
    Found(Vec<Peer>),
    /// Joining a running group with empty storage: a member adds this
    /// node (`add_voter` / `add_learner`), the leader brings it up to date.
    /// `peers` are members it may hear from first.
    Join(Vec<Peer>),
}

impl Membership {
    /// The peers it names: the founders, or the members a joiner may hear
    /// from first.
    pub fn peers(&self) -> &[Peer] {
        match self {
            Membership::Found(peers) | Membership::Join(peers) => peers,
        }
    }
}

/// A group's settings. [`GroupOptions::new`] gives the defaults.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GroupOptions {
    /// The group.
    pub group: GroupId,
    /// Founding or joining (used on the first start only).
    pub membership: Membership,
    /// Length of one tick of raft-core's clock.
    pub tick_interval: Duration,
    /// Election timeout, in ticks (raft-core draws from `[t, 2t)`).
    pub election_timeout_ticks: u32,
    /// Heartbeat interval, in ticks.
    pub heartbeat_interval_ticks: u32,
    /// How linearizable reads are confirmed: a heartbeat round
    /// (`Safe`, thesis §6.4) or the leader's lease (`LeaseBased`, §6.4.1,
    /// which assumes bounded clock drift).
    pub read_mode: ReadOnlyOption,
    /// How far the members' clocks may drift apart, which shortens the
    /// lease of `LeaseBased` reads (raft-core's `max_clock_drift`, thesis
    /// §6.4.1). Default: 10% (`PerMille(100)`, 8 ticks of lease under a
    /// 10-tick election timeout): real machines never tick in lockstep,
    /// so raft-core's `Lockstep` is not offered as the host's default.
    pub max_clock_drift: ClockDrift,
    /// Applied entries between snapshots.
    pub snapshot_interval_entries: u64,
    /// Entries kept behind a snapshot so that a slightly lagging follower
    /// catches up from the log, not by snapshot (etcd: 5000).
    pub catch_up_entries: u64,
    /// Snapshot files kept (the WAL is released only to the oldest).
    pub snapshots_kept: usize,
    /// How long a proposal, read or transfer may wait for its answer.
    pub request_timeout: Duration,
    /// How long a membership change may wait (a learner may need a
    /// snapshot before it can be promoted).
    pub membership_timeout: Duration,
    /// A learner added with `add_voter` is promoted once its log is
    /// within this many entries of the leader's.
    pub promote_lag_entries: u64,
    /// The member that should lead: a leader that is not it hands
    /// leadership to it once it is a healthy, caught-up voter: two
    /// election timeouts after the group starts, or as soon as the group
    /// quiesces (nothing in flight), and at most every ten election
    /// timeouts after an attempt. A quiesced group's leader that did not
    /// hand over stays where it is until the group wakes. Set a different
    /// one per group to spread leaders over a host's nodes. Default: none.
    pub preferred_leader: Option<NodeId>,
    /// Persist on the host's storage writer thread (raft-core's
    /// `async_storage_writes`, thesis §10.2.1): the loop builds the next
    /// Ready while the previous one is being fsynced, and one writer round
    /// serves every group with writes queued. Off by default; a host of
    /// many groups wants it on, or each group's fsync holds a loop thread.
    pub async_storage_writes: bool,
    /// Followers forward proposals to the leader (and answer them once
    /// applied); `false` makes them refuse with
    /// [`ProposeError::NotLeader`](crate::ProposeError::NotLeader).
    pub forward_proposals: bool,
    /// Refuse a removal that would leave fewer healthy voters than a
    /// quorum of the new configuration (etcd's `--strict-reconfig-check`).
    pub strict_reconfig: bool,
    /// Requests queued into the loop before callers are refused
    /// (`Overloaded`).
    pub queue_len: usize,
    /// Append messages in flight per follower (raft-core's
    /// `max_inflight_msgs`).
    pub max_inflight_msgs: usize,
    /// Refuse proposals while more than this many committed entries wait
    /// to be applied (raft-core's `max_apply_gap`; etcd's server uses
    /// 5,000): a slow state machine pushes back on its writers instead of
    /// growing the backlog without bound. `None`: no limit.
    pub max_apply_gap_entries: Option<u64>,
    /// Refuse a command larger than this many bytes (raft-core's
    /// `max_entry_bytes`, TiKV's `RaftEntryTooLarge`), so that one entry
    /// can never exceed what a message or a follower accepts. `None`: no
    /// limit.
    pub max_entry_bytes: Option<u64>,
    /// Quiesce the group after this many idle ticks (raft-core's
    /// `quiesce_after_ticks`): its leader stops heartbeating, and a
    /// quiesced group with nothing waiting on the clock is not ticked at
    /// all, so an idle group costs no CPU. A message, a request or a peer
    /// host reported down ([`HostOptions::liveness_timeout`]) wakes it.
    /// `None` (the default): never; a host of many groups wants it.
    pub quiesce_after_ticks: Option<NonZeroU32>,
    /// Seed of raft-core's election timer; `None` draws one per start.
    pub seed: Option<u64>,
}

impl GroupOptions {
    /// Defaults for `group`: 100 ms ticks, election timeout 10 ticks,
    /// heartbeat every tick, ReadIndex reads, a snapshot every 100,000
    /// applied entries (etcd's default) keeping 5,000 behind it, 5 s
    /// request timeout, strict reconfiguration checks on.
    pub fn new(group: GroupId, membership: Membership) -> GroupOptions {
        GroupOptions {
            group,
            membership,
            tick_interval: Duration::from_millis(100),
            election_timeout_ticks: 10,
            heartbeat_interval_ticks: 1,
            read_mode: ReadOnlyOption::Safe,
            max_clock_drift: ClockDrift::PerMille(100),
            snapshot_interval_entries: 100_000,
            catch_up_entries: 5_000,
            snapshots_kept: 2,
            request_timeout: Duration::from_secs(5),
            membership_timeout: Duration::from_secs(60),
            promote_lag_entries: 1_000,
            preferred_leader: None,
            async_storage_writes: false,
            forward_proposals: true,
            strict_reconfig: true,
            queue_len: 8_192,
            max_inflight_msgs: 1_024,
            max_apply_gap_entries: None,
            max_entry_bytes: None,
            quiesce_after_ticks: None,
            seed: None,
        }
    }
}

/// A host's settings. [`HostOptions::new`] gives the defaults.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HostOptions {
    /// Threads that drive the groups' loops (at least one). A group runs on
    /// one thread at a time, so more threads than groups buy nothing.
    /// Default: the machine's parallelism, at most 8.
    pub loop_threads: usize,
    /// Threads that serialize and write snapshots (at least one). A group
    /// has at most one snapshot in flight. Default: 1.
    pub snapshot_threads: usize,
    /// How often this host pings every peer host it shares a group with
    /// (see [`HostOptions::liveness_timeout`]). Default: 250 ms.
    pub liveness_interval: Duration,
    /// A peer host not heard from for this long is reported down to every
    /// group here, so that a quiet group whose leader lived there elects
    /// a new one. Default: 2 s.
    pub liveness_timeout: Duration,
    /// At most this many of the host's groups campaign at once; the others
    /// hold back the tick that would start their election until a permit
    /// frees up (first come, first served; see `RawNode::election_due`).
    /// Without it, a host starting 100,000 groups floods its peers with
    /// 100,000 elections' messages within one election timeout and none
    /// gets through. `None`: no limit. Default: 256.
    pub max_concurrent_elections: Option<NonZeroUsize>,
}

impl HostOptions {
    /// The defaults.
    pub fn new() -> HostOptions {
        let parallelism = std::thread::available_parallelism().map_or(2, |n| n.get());
        HostOptions {
            loop_threads: parallelism.clamp(1, 8),
            snapshot_threads: 1,
            liveness_interval: Duration::from_millis(250),
            liveness_timeout: Duration::from_secs(2),
            max_concurrent_elections: NonZeroUsize::new(DEFAULT_MAX_CONCURRENT_ELECTIONS),
        }
    }

    /// Sets [`HostOptions::loop_threads`].
    pub fn loop_threads(mut self, threads: usize) -> Self {
        self.loop_threads = threads.max(1);
        self
    }

    /// Sets [`HostOptions::liveness_interval`] and
    /// [`HostOptions::liveness_timeout`].
    pub fn liveness(mut self, interval: Duration, timeout: Duration) -> Self {
        self.liveness_interval = interval;
        self.liveness_timeout = timeout;
        self
    }

    /// Sets [`HostOptions::max_concurrent_elections`] (`None`: no limit).
    pub fn max_concurrent_elections(mut self, limit: Option<NonZeroUsize>) -> Self {
        self.max_concurrent_elections = limit;
        self
    }

    /// Sets [`HostOptions::snapshot_threads`].
    pub fn snapshot_threads(mut self, threads: usize) -> Self {
        self.snapshot_threads = threads.max(1);
        self
    }
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions::new()
    }
}
