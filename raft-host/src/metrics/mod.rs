//! What the host measures, reported through a [`Recorder`] the
//! application provides (Prometheus, OpenTelemetry, logs, ...).

use std::time::Duration;

use raft_core::GroupId;

mod prometheus;

pub use prometheus::{PrometheusRecorder, PrometheusText};

/// Events the host counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Counter {
    /// Proposals accepted by raft-core.
    Proposals,
    /// Proposals refused (not leader, dropped, overloaded).
    ProposalsRefused,
    /// Committed entries applied.
    EntriesApplied,
    /// ReadIndex rounds started (each serves every read queued with it).
    ReadRounds,
    /// Linearizable reads served.
    Reads,
    /// Leader changes seen.
    LeaderChanges,
    /// Snapshots written by this member.
    SnapshotsTaken,
    /// Snapshots received from a leader and restored.
    SnapshotsRestored,
    /// Snapshots this leader sent to followers (the transport reported
    /// them delivered).
    SnapshotsSent,
    /// Peer messages raft-core refused because no correct peer sends them
    /// (`StepError::InvalidMessage`); nothing changed.
    PeerMessagesInvalid,
    /// Peer messages raft-core refused because their term was absurdly far
    /// ahead (`StepError::TermTooFarAhead`, e.g. forged to exhaust terms).
    PeerMessagesTermTooFarAhead,
    /// Learners promoted to voters by this leader.
    Promotions,
    /// Peer hosts that went silent past the liveness timeout (counted in
    /// [`HOST_GROUP`](crate::HOST_GROUP), once per silence).
    PeerHostsDown,
    /// Elections held back because too many of the host's groups were
    /// campaigning ([`HostOptions::max_concurrent_elections`](crate::HostOptions::max_concurrent_elections));
    /// counted once per wait.
    ElectionsHeldBack,
}

/// Durations the host measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Histogram {
    /// Persisting one Ready that must sync, on the group's loop thread; or,
    /// with `async_storage_writes`, one fsync of the storage writer (a
    /// round syncs a WAL that groups share once, observed in the first
    /// group that needed it).
    Persist,
    /// Applying one Ready's committed entries.
    Apply,
    /// Writing one snapshot, off the loop.
    Snapshot,
}

/// Receives the host's measurements. Called on the loop threads: keep it
/// cheap (atomics). Both methods do nothing by default.
pub trait Recorder: Send + Sync + 'static {
    /// `n` more `counter` events in `group`.
    fn count(&self, group: GroupId, counter: Counter, n: u64) {
        let _ = (group, counter, n);
    }
    /// One `histogram` observation in `group`.
    fn observe(&self, group: GroupId, histogram: Histogram, value: Duration) {
        let _ = (group, histogram, value);
    }
}

/// A [`Recorder`] that drops everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRecorder;

impl Recorder for NoRecorder {}

impl Counter {
    /// Every counter, in the order [`PrometheusRecorder`] writes them.
    pub const ALL: [Counter; 14] = [
        Counter::Proposals,
        Counter::ProposalsRefused,
        Counter::EntriesApplied,
        Counter::ReadRounds,
        Counter::Reads,
        Counter::LeaderChanges,
        Counter::SnapshotsTaken,
        Counter::SnapshotsRestored,
        Counter::SnapshotsSent,
        Counter::PeerMessagesInvalid,
        Counter::PeerMessagesTermTooFarAhead,
        Counter::Promotions,
        Counter::PeerHostsDown,
        Counter::ElectionsHeldBack,
    ];
}

impl Histogram {
    /// Every histogram, in the order [`PrometheusRecorder`] writes them.
    pub const ALL: [Histogram; 3] = [Histogram::Persist, Histogram::Apply, Histogram::Snapshot];
}
