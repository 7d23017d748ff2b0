//! Node configuration.

use std::num::NonZeroU32;

use crate::types::{Index, NodeId};

/// "No limit" for the byte limits of [`Config`].
pub const NO_LIMIT: u64 = u64::MAX;

/// How linearizable reads are confirmed (thesis §6.4).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub enum ReadOnlyOption {
    /// The leader confirms it is still leader with a quorum heartbeat round
    /// before answering. Safe without any clock assumption. The default.
    #[default]
    Safe,
    /// The leader answers from its lease (thesis §6.4.1): no round trip.
    /// The lease runs [`Config::lease_ticks`] (by default
    /// `election_timeout_ticks`) after the sending of the newest heartbeat
    /// a quorum acknowledged (every heartbeat is a round in this mode);
    /// outside it, and for the rest of a term in which the leader sent
    /// TimeoutNow, reads are confirmed as with [`ReadOnlyOption::Safe`].
    /// Voters refuse votes within an election timeout of hearing from a
    /// leader, and for an election timeout after they start (a restarted
    /// voter may have acknowledged a lease).
    ///
    /// [`Config::max_clock_drift`] shortens the lease for clock drift; its
    /// default assumes nodes tick in lockstep. A leader whose ticks slow
    /// down beyond that bound (a paused process, a stalled tick timer)
    /// overestimates its lease. Campaigning by hand
    /// ([`crate::RawNode::campaign`]) ignores leases. Requires
    /// [`Config::check_quorum`].
    LeaseBased,
}

/// How far apart the tick rates of any two nodes may drift, for lease reads
/// ([`Config::max_clock_drift`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub enum ClockDrift {
    /// Every node ticks at the same instants: same rate, same phase. The
    /// lease is the whole election timeout, as before this setting existed.
    /// Only a simulator (or a test driving all ticks) keeps this promise;
    /// real nodes tick at different phases even at equal rates, which alone
    /// can make a one-tick window for a stale read. The default, so that
    /// existing configurations keep their lease.
    #[default]
    Lockstep,
    /// At any time, the fastest node's ticks come at most `1 + n / 1000`
    /// times as often as the slowest node's, and nodes tick at arbitrary
    /// phases. `PerMille(0)`: equal rates, unaligned
    /// ticks. TiKV's 9 s lease under a 10 s election timeout is, with 1 s
    /// ticks, `PerMille(0)` here; `PerMille(100)` (10% drift) gives 8 s.
    PerMille(u32),
}

/// The configuration of one Raft node. Build it with [`Config::new`] and
/// adjust fields; [`Config::validate`] (called by `RawNode::new`) checks it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// This node's id. No default: it is the argument of [`Config::new`].
    pub id: NodeId,
    /// Ticks a follower waits without hearing from a leader before it
    /// campaigns. The actual timeout is drawn from
    /// `[election_timeout_ticks, 2 * election_timeout_ticks)` (paper §5.2).
    /// Must be greater than `heartbeat_interval_ticks`. Default: 10.
    pub election_timeout_ticks: u32,
    /// Ticks between a leader's heartbeats. Default: 1.
    pub heartbeat_interval_ticks: u32,
    /// Run a pre-vote round before a real election so a node that cannot win
    /// does not disrupt the cluster by bumping its term (thesis §9.6).
    /// Default: true (etcd-raft defaults to false).
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a quorum within an
    /// election timeout, and followers that heard from a leader within that
    /// time ignore vote requests (thesis §6.2, §4.2.3). Default: true
    /// (etcd-raft defaults to false).
    pub check_quorum: bool,
    /// Maximum bytes of entries ([`Entry::size_bytes`](crate::Entry::size_bytes))
    /// in one append message; at least one entry is always sent.
    /// Default: 1 MiB.
    pub max_size_per_msg: u64,
    /// Maximum append messages in flight to one follower in the replicate
    /// state. Must be > 0. Default: 256.
    pub max_inflight_msgs: usize,
    /// Maximum bytes of entries in flight to one follower. Must be
    /// `>= max_size_per_msg`. Default: [`NO_LIMIT`].
    pub max_inflight_bytes: u64,
    /// Maximum payload bytes of the leader's uncommitted log tail; proposals
    /// beyond it are refused with
    /// [`ProposeError::UncommittedSizeExceeded`](crate::ProposeError).
    /// A proposal is always accepted when nothing is uncommitted.
    /// Default: [`NO_LIMIT`].
    pub max_uncommitted_entries_size: u64,
    /// Apply backpressure: proposals are refused with
    /// [`ProposeError::ApplyBacklog`](crate::ProposeError) while this node's
    /// commit index is more than this many entries ahead of the index its
    /// application reported applied (`advance` / `on_applied`). A state
    /// machine that cannot keep up then slows its clients down instead of
    /// growing an unbounded backlog of committed, unapplied entries. Checked
    /// on the node proposed to, and again on the leader for a forwarded
    /// proposal. etcd's server refuses proposals the same way beyond a gap
    /// of 5,000 (`maxGapBetweenApplyAndCommitIndex`). Default: [`NO_LIMIT`],
    /// so that nothing is refused that was accepted before this knob
    /// existed; 5,000 is a reasonable value for a server.
    pub max_apply_gap: u64,
    /// Maximum payload bytes of one proposed entry (data or an encoded
    /// membership change); a larger one is refused with
    /// [`ProposeError::EntryTooLarge`](crate::ProposeError) before anything
    /// is appended or forwarded, as TiKV refuses a `RaftEntryTooLarge`.
    /// Without it one huge entry can exceed what a transport or a follower
    /// accepts (one append always carries at least one whole entry,
    /// whatever `max_size_per_msg` says). Checked on the node proposed to
    /// and again on the leader. Default: [`NO_LIMIT`].
    pub max_entry_bytes: u64,
    /// Maximum bytes of committed entries handed out in one `Ready`
    /// (pagination of the apply work). Default: [`NO_LIMIT`].
    pub max_committed_size_per_ready: u64,
    /// Followers refuse proposals instead of forwarding them to the leader.
    /// Default: false.
    pub disable_proposal_forwarding: bool,
    /// The last index the application has applied, when restarting. Entries
    /// up to it are not handed out again. It may be ahead of the persisted
    /// commit index (an applied entry was committed, and with asynchronous
    /// writes the state machine can run ahead of the last durable hard
    /// state): the node then starts with its commit index there. It may not
    /// be beyond the last log index (`NewError::AppliedBeyondLog`).
    /// Default: 0.
    pub applied: Index,
    /// How read-index requests are confirmed. Default: [`ReadOnlyOption::Safe`].
    pub read_only_option: ReadOnlyOption,
    /// The largest clock drift between nodes that lease reads
    /// ([`ReadOnlyOption::LeaseBased`]) must survive: the leader's lease is
    /// shortened to [`Config::lease_ticks`]. Ignored with
    /// [`ReadOnlyOption::Safe`]. Default: [`ClockDrift::Lockstep`] (the
    /// lease is `election_timeout_ticks`, as before this field existed).
    pub max_clock_drift: ClockDrift,
    /// Persist and apply on other threads: `ready` may be called again
    /// before earlier Readys are durable; the application reports progress
    /// with `RawNode::on_persisted` and `RawNode::on_applied` (as raft-rs's
    /// `on_persist_ready` and etcd's `AsyncStorageWrites`). Committed entries
    /// are then only handed out once durable locally. Default: false.
    pub async_storage_writes: bool,
    /// A leader that a membership change removes or demotes steps down as
    /// soon as the change is applied, so a new leader is elected among the
    /// remaining voters. Default: true (etcd-raft's `StepDownOnRemoval`
    /// defaults to false).
    pub step_down_on_removal: bool,
    /// Quiescence of an idle group (CockroachDB's quiesced ranges, TiKV's
    /// hibernate regions, dragonboat's `Quiesce`): a leader that has had
    /// nothing to do for this many ticks — everything committed and
    /// applied, every member holding its whole log, no read, transfer,
    /// snapshot or membership change under way — tells its followers so
    /// and stops its heartbeats; leader and followers then ignore ticks
    /// ([`RawNode::is_quiesced`](crate::RawNode::is_quiesced): a host may
    /// stop ticking the group) until a message, a local request or
    /// [`RawNode::wake`](crate::RawNode::wake) (a lost peer) wakes them.
    /// A quiesced leader holds no lease. `None` (the default): never.
    /// See `raft/quiesce.rs` for why it is safe.
    pub quiesce_after_ticks: Option<NonZeroU32>,
    /// This node runs as a witness (dragonboat's `IsWitness`): it has no
    /// state machine, keeps only the log's metadata (its leader sends it
    /// entries without payloads and snapshots without data), votes, and
    /// never campaigns by any path (not on a timeout, not when asked, not
    /// for a leadership transfer, not to rescue a cluster after its own
    /// removal). The membership must name it a witness
    /// ([`ConfChangeKind::AddWitness`](crate::ConfChangeKind::AddWitness));
    /// a node whose kind and membership disagree refuses the change that
    /// makes them disagree ([`ApplyConfChangeError::WitnessMismatch`](crate::ApplyConfChangeError::WitnessMismatch)).
    /// A witness answers no reads and asks for no snapshots. Default: false.
    pub witness: bool,
    /// Seed of the random election jitter. Same seed, same run. Default:
    /// the node id, so nodes of one cluster differ.
    pub seed: u64,
}

/// Why a [`Config`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `heartbeat_interval_ticks` is zero.
    #[error("heartbeat_interval_ticks must be greater than 0")]
    ZeroHeartbeatInterval,
    /// The election timeout does not exceed the heartbeat interval.
    #[error(
        "election_timeout_ticks ({election}) must be greater than heartbeat_interval_ticks ({heartbeat})"
    )]
    ElectionNotAboveHeartbeat {
        /// The configured election timeout.
        election: u32,
        /// The configured heartbeat interval.
        heartbeat: u32,
    },
    /// `max_inflight_msgs` is zero.
    #[error("max_inflight_msgs must be greater than 0")]
    ZeroInflightMsgs,
    /// The inflight byte budget cannot hold one message.
    #[error("max_inflight_bytes ({inflight}) must be >= max_size_per_msg ({per_msg})")]
    InflightBytesBelowMessageSize {
        /// The configured inflight byte limit.
        inflight: u64,
        /// The configured message size.
        per_msg: u64,
    },
    /// Lease-based reads are only sound with CheckQuorum.
    #[error("read_only_option LeaseBased requires check_quorum = true")]
    LeaseWithoutCheckQuorum,
    /// Lease reads with a clock-drift bound that leaves no lease
    /// ([`Config::lease_ticks`] is 0).
    #[error("max_clock_drift {drift:?} leaves no lease under election_timeout_ticks ({election})")]
    NoLeaseUnderDrift {
        /// The configured election timeout.
        election: u32,
        /// The configured drift bound.
        drift: ClockDrift,
    },
}

impl Config {
    /// A configuration for node `id` with every other field at its default.
    pub fn new(id: NodeId) -> Config {
        Config {
            id,
            election_timeout_ticks: 10,
            heartbeat_interval_ticks: 1,
            pre_vote: true,
            check_quorum: true,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            max_inflight_bytes: NO_LIMIT,
            max_uncommitted_entries_size: NO_LIMIT,
            max_committed_size_per_ready: NO_LIMIT,
            max_apply_gap: NO_LIMIT,
            max_entry_bytes: NO_LIMIT,
            disable_proposal_forwarding: false,
            applied: Index::ZERO,
            read_only_option: ReadOnlyOption::Safe,
            max_clock_drift: ClockDrift::Lockstep,
            step_down_on_removal: true,
            async_storage_writes: false,
            quiesce_after_ticks: None,
            witness: false,
            seed: id.get(),
        }
    }

    /// Checks the relations between fields.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.heartbeat_interval_ticks == 0 {
            return Err(ConfigError::ZeroHeartbeatInterval);
        }
        if self.election_timeout_ticks <= self.heartbeat_interval_ticks {
            return Err(ConfigError::ElectionNotAboveHeartbeat {
                election: self.election_timeout_ticks,
                heartbeat: self.heartbeat_interval_ticks,
            });
        }
        if self.max_inflight_msgs == 0 {
            return Err(ConfigError::ZeroInflightMsgs);
        }
        if self.max_inflight_bytes < self.max_size_per_msg {
            return Err(ConfigError::InflightBytesBelowMessageSize {
                inflight: self.max_inflight_bytes,
                per_msg: self.max_size_per_msg,
            });
        }
        if self.read_only_option == ReadOnlyOption::LeaseBased && !self.check_quorum {
            return Err(ConfigError::LeaseWithoutCheckQuorum);
        }
        if self.read_only_option == ReadOnlyOption::LeaseBased && self.lease_ticks() == 0 {
            return Err(ConfigError::NoLeaseUnderDrift {
                election: self.election_timeout_ticks,
                drift: self.max_clock_drift,
            });
        }
        Ok(())
    }

    /// Ticks of the leader's clock a lease lasts from the sending of a
    /// heartbeat a quorum acknowledged (thesis §6.4.1), for
    /// [`Config::max_clock_drift`]. With `E = election_timeout_ticks`:
    ///
    /// - `E` with [`ClockDrift::Lockstep`];
    /// - `floor((E - 1) * 1000 / (1000 + d))` with [`ClockDrift::PerMille`]`(d)`.
    ///
    /// Why (thesis §6.4.1, with CheckQuorum's vote refusal of §4.2.3): a
    /// voter that acknowledged the heartbeat refuses votes until `E` ticks
    /// of *its* clock after receiving it. Its next tick may come at once,
    /// so that is more than `E - 1` of its tick periods after the leader
    /// sent it. The lease ends at most `L` of the leader's tick periods
    /// after the sending (the leader's tick count was read at or after its
    /// last tick). A new leader needs a vote from some voter of the
    /// acknowledging quorum, so no other leader exists within the lease if
    /// `L * P_leader <= (E - 1) * P_voter`; with
    /// `P_leader / P_voter <= 1 + d / 1000`, the largest such `L` is the
    /// one above. A restarted voter refuses votes for `E` ticks after it
    /// starts, later still. E = 10, d = 100: a lease of 8 ticks
    /// (testdata/read_index_lease_drift.txt; read_index_lease_drift_beyond.txt
    /// shows the stale read when the drift exceeds the bound).
    pub fn lease_ticks(&self) -> u32 {
        let e = self.election_timeout_ticks;
        match self.max_clock_drift {
            ClockDrift::Lockstep => e,
            ClockDrift::PerMille(d) => {
                let l = u64::from(e.saturating_sub(1)) * 1000 / (1000 + u64::from(d));
                u32::try_from(l).expect("at most the election timeout")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::new(NodeId::new(1).expect("non-zero"))
    }

    #[test]
    fn default_config_is_valid() {
        assert_eq!(config().validate(), Ok(()));
    }

    #[test]
    fn zero_heartbeat_is_refused() {
        let mut c = config();
        c.heartbeat_interval_ticks = 0;
        assert_eq!(c.validate(), Err(ConfigError::ZeroHeartbeatInterval));
    }

    #[test]
    fn election_timeout_must_exceed_heartbeat() {
        let mut c = config();
        c.election_timeout_ticks = 1;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::ElectionNotAboveHeartbeat { .. })
        ));
    }

    #[test]
    fn zero_inflight_window_is_refused() {
        let mut c = config();
        c.max_inflight_msgs = 0;
        assert_eq!(c.validate(), Err(ConfigError::ZeroInflightMsgs));
    }

    #[test]
    fn inflight_bytes_must_hold_one_message() {
        let mut c = config();
        c.max_inflight_bytes = 10;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::InflightBytesBelowMessageSize { .. })
        ));
    }

    #[test]
    fn lease_reads_require_check_quorum() {
        let mut c = config();
        c.read_only_option = ReadOnlyOption::LeaseBased;
        c.check_quorum = false;
        assert_eq!(c.validate(), Err(ConfigError::LeaseWithoutCheckQuorum));
    }

    #[test]
    fn the_default_lease_is_the_election_timeout() {
        assert_eq!(config().lease_ticks(), 10);
    }

    #[test]
    fn a_drift_bound_shortens_the_lease_below_the_election_timeout() {
        let mut c = config();
        c.max_clock_drift = ClockDrift::PerMille(0);
        assert_eq!(c.lease_ticks(), 9, "one tick for unaligned phases");
        c.max_clock_drift = ClockDrift::PerMille(100);
        assert_eq!(c.lease_ticks(), 8, "9 / 1.1 = 8.18");
        c.max_clock_drift = ClockDrift::PerMille(125);
        assert_eq!(c.lease_ticks(), 8, "9 / 1.125 = 8 exactly");
        c.max_clock_drift = ClockDrift::PerMille(1000);
        assert_eq!(c.lease_ticks(), 4, "9 / 2 = 4.5");
    }

    #[test]
    fn a_drift_bound_that_leaves_no_lease_is_refused() {
        let mut c = config();
        c.read_only_option = ReadOnlyOption::LeaseBased;
        c.election_timeout_ticks = 2;
        c.max_clock_drift = ClockDrift::PerMille(1);
        assert_eq!(
            c.validate(),
            Err(ConfigError::NoLeaseUnderDrift {
                election: 2,
                drift: ClockDrift::PerMille(1),
            })
        );
        c.read_only_option = ReadOnlyOption::Safe;
        assert_eq!(c.validate(), Ok(()), "no lease, no lease to shorten");
    }
}
