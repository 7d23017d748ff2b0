//! What a leader knows about one follower's log (thesis §3.5, etcd's
//! progress state machine: probe, replicate, snapshot).

use super::inflights::Inflights;
use crate::types::Index;

/// How the leader currently sends to a follower.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ProgressState {
    /// The leader does not know where the follower's log matches; it sends
    /// one append per heartbeat interval and waits for the answer.
    Probe,
    /// The follower's log matches; appends are streamed optimistically up to
    /// the inflight window.
    Replicate,
    /// The follower needs a snapshot; nothing is sent until it is reported.
    Snapshot {
        /// The index of the snapshot being sent.
        pending: Index,
    },
}

/// The leader's view of one follower.
#[derive(Clone, Debug)]
pub struct Progress {
    /// The highest index known to be replicated on the follower.
    /// Invariant: `matched < next`.
    pub matched: Index,
    /// The next index to send.
    pub next: Index,
    /// The sending mode.
    pub state: ProgressState,
    /// In probe state: an append was sent and no answer came yet.
    pub probe_sent: bool,
    /// Heard from since the last CheckQuorum round.
    pub recent_active: bool,
    /// Unacknowledged appends (replicate state).
    pub inflights: Inflights,
    /// A learner: receives the log, never counts for quorum.
    pub is_learner: bool,
    /// The highest commit index the follower was told that it can adopt
    /// (capped by what the messages carried), to know when it needs an
    /// update.
    pub sent_commit: Index,
    /// The follower's own commit index, from its latest append response.
    pub commit_reported: Index,
    /// The `min_index` of the snapshot the application was asked to take
    /// for this follower ([`SnapshotRequest`](crate::SnapshotRequest)),
    /// until a snapshot is sent to it.
    pub snapshot_requested: Option<Index>,
    /// The follower asked for a snapshot reaching this index
    /// ([`RawNode::request_snapshot`](crate::RawNode::request_snapshot) on
    /// the follower), and none was sent yet. While set, the leader sends
    /// the follower snapshots, not appends (it refuses them).
    pub follower_snapshot_request: Option<Index>,
}

impl Progress {
    /// A follower about which nothing is known, probed from `next`.
    pub fn new(next: Index, max_inflight_msgs: usize, max_inflight_bytes: u64) -> Progress {
        Progress {
            matched: Index::ZERO,
            next,
            state: ProgressState::Probe,
            probe_sent: false,
            recent_active: false,
            inflights: Inflights::new(max_inflight_msgs, max_inflight_bytes),
            is_learner: false,
            sent_commit: Index::ZERO,
            commit_reported: Index::ZERO,
            snapshot_requested: None,
            follower_snapshot_request: None,
        }
    }

    fn reset_state(&mut self, state: ProgressState) {
        self.probe_sent = false;
        self.state = state;
        self.inflights.reset();
    }

    /// Switches to probing. Leaving snapshot state, the follower is assumed to
    /// have the snapshot, so probing starts after it.
    pub fn become_probe(&mut self) {
        let next = match self.state {
            ProgressState::Snapshot { pending } => self.matched.next().max(pending.next()),
            _ => self.matched.next(),
        };
        self.reset_state(ProgressState::Probe);
        self.next = next;
    }

    /// Switches to streaming appends after `matched`.
    pub fn become_replicate(&mut self) {
        self.reset_state(ProgressState::Replicate);
        self.next = self.matched.next();
    }

    /// Switches to waiting for a snapshot at `index`.
    pub fn become_snapshot(&mut self, index: Index) {
        self.reset_state(ProgressState::Snapshot { pending: index });
    }

    /// Records that the follower holds everything up to `index`. Returns
    /// true if that is news.
    pub fn maybe_update(&mut self, index: Index) -> bool {
        let updated = self.matched < index;
        if updated {
            self.matched = index;
            self.probe_sent = false;
        }
        self.next = self.next.max(index.next());
        updated
    }

    /// Handles a rejected append of `rejected` (its prev index), with the
    /// follower's hint that its log may match up to `match_hint`. Returns
    /// false for a stale rejection that says nothing new.
    pub fn maybe_decrease_to(&mut self, rejected: Index, match_hint: Index) -> bool {
        if self.state == ProgressState::Replicate {
            // Appends are pipelined: only a rejection above `matched` is news.
            if rejected <= self.matched {
                return false;
            }
            self.next = self.matched.next();
            return true;
        }
        // In probe state only the answer to the last probe counts.
        if self.next.prev() != rejected {
            return false;
        }
        self.next = rejected.min(match_hint.next()).max(self.matched.next());
        self.probe_sent = false;
        true
    }

    /// Records that an append of `entries` entries weighing `bytes` was sent.
    pub fn sent_entries(&mut self, entries: u64, bytes: u64) {
        match self.state {
            ProgressState::Replicate => {
                if entries > 0 {
                    self.next = self.next + entries;
                    self.inflights.add(self.next.prev(), bytes);
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot { .. } => {
                debug_assert!(false, "sending entries to a follower awaiting a snapshot");
            }
        }
    }

    /// True when the leader must not send appends now.
    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.is_full(),
            ProgressState::Snapshot { .. } => true,
        }
    }

    /// What `Status` shows of this progress.
    pub fn status(&self) -> crate::status::ProgressStatus {
        crate::status::ProgressStatus {
            matched: self.matched,
            next: self.next,
            state: self.state,
            recent_active: self.recent_active,
            is_learner: self.is_learner,
            inflight_msgs: self.inflights.len(),
            snapshot_requested: self.snapshot_requested,
            follower_snapshot_request: self.follower_snapshot_request,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(matched: u64, next: u64) -> Progress {
        let mut p = Progress::new(Index(next), 4, u64::MAX);
        p.matched = Index(matched);
        p
    }

    #[test]
    fn probe_pauses_after_one_send_until_answered() {
        let mut p = progress(0, 5);
        assert!(!p.is_paused());
        p.sent_entries(3, 30);
        assert!(p.is_paused());
        assert_eq!(
            p.next,
            Index(5),
            "probe does not advance next optimistically"
        );
        assert!(p.maybe_update(Index(7)));
        assert!(!p.is_paused());
        assert_eq!(p.next, Index(8));
    }

    #[test]
    fn replicate_advances_next_optimistically_and_pauses_on_full_window() {
        let mut p = progress(4, 5);
        p.become_replicate();
        for _ in 0..4 {
            assert!(!p.is_paused());
            p.sent_entries(2, 20);
        }
        assert_eq!(p.next, Index(13));
        assert!(p.is_paused());
        p.maybe_update(Index(6));
        p.inflights.free_le(Index(6));
        assert!(!p.is_paused());
    }

    #[test]
    fn stale_rejection_in_replicate_is_ignored() {
        let mut p = progress(5, 10);
        p.become_replicate();
        assert!(!p.maybe_decrease_to(Index(4), Index(4)));
        assert!(p.maybe_decrease_to(Index(8), Index(8)));
        assert_eq!(p.next, Index(6));
    }

    #[test]
    fn probe_rejection_uses_the_hint_but_never_goes_below_matched() {
        let mut p = progress(2, 10);
        assert!(
            !p.maybe_decrease_to(Index(7), Index(3)),
            "not the last probe"
        );
        assert!(p.maybe_decrease_to(Index(9), Index(4)));
        assert_eq!(p.next, Index(5));
        assert!(p.maybe_decrease_to(Index(4), Index(0)));
        assert_eq!(p.next, Index(3), "bounded by matched + 1");
    }

    #[test]
    fn leaving_snapshot_state_probes_after_the_snapshot() {
        let mut p = progress(3, 4);
        p.become_snapshot(Index(20));
        assert!(p.is_paused());
        p.become_probe();
        assert_eq!(p.next, Index(21));
    }
}
