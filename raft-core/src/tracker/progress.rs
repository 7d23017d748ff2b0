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
pub(crate) struct Progress {
    /// The highest index known to be replicated on the follower.
    /// Invariant: `matched < next`.
    matched: Index,
    /// The next index to send.
    next: Index,
    /// The sending mode.
    state: ProgressState,
    /// In probe state: an append was sent and no answer came yet.
    probe_sent: bool,
    /// Heard from since the last CheckQuorum round.
    recent_active: bool,
    /// Unacknowledged appends (replicate state).
    inflights: Inflights,
    /// A learner: receives the log, never counts for quorum.
    is_learner: bool,
    /// The highest commit index the follower was told that it can adopt
    /// (capped by what the messages carried), to know when it needs an
    /// update.
    sent_commit: Index,
    /// The follower's own commit index, from its latest append response.
    commit_reported: Index,
    /// The `min_index` of the snapshot the application was asked to take
    /// for this follower ([`SnapshotRequest`](crate::SnapshotRequest)),
    /// until a snapshot is sent to it.
    snapshot_requested: Option<Index>,
    /// The follower asked for a snapshot reaching this index
    /// ([`RawNode::request_snapshot`](crate::RawNode::request_snapshot) on
    /// the follower), and none was sent yet. While set, the leader sends
    /// the follower snapshots, not appends (it refuses them).
    follower_snapshot_request: Option<Index>,
    /// The leader's tick at which this follower last answered it, `None`
    /// until it does (kept only in groups with witnesses, see
    /// `raft/witness.rs`).
    heard_at_tick: Option<u64>,
}

impl Progress {
    /// A follower about which nothing is known, probed from `next`.
    pub(crate) fn new(next: Index, max_inflight_msgs: usize, max_inflight_bytes: u64) -> Progress {
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
            heard_at_tick: None,
        }
    }

    /// The follower answered at the leader's tick `now`.
    pub(crate) fn heard_at(&mut self, now: u64) {
        debug_assert!(
            self.heard_at_tick.is_none_or(|t| now >= t),
            "the leader's clock never runs back"
        );
        self.heard_at_tick = Some(now);
    }

    /// The leader's tick at which the follower last answered, if it did.
    pub(crate) fn heard_at_tick(&self) -> Option<u64> {
        self.heard_at_tick
    }

    fn reset_state(&mut self, state: ProgressState) {
        self.probe_sent = false;
        self.state = state;
        self.inflights.reset();
    }

    /// Switches to probing. Leaving snapshot state, the follower is assumed to
    /// have the snapshot, so probing starts after it.
    pub(crate) fn become_probe(&mut self) {
        let next = match self.state {
            ProgressState::Snapshot { pending } => self.matched.next().max(pending.next()),
            _ => self.matched.next(),
        };
        self.reset_state(ProgressState::Probe);
        self.next = next;
    }

    /// Switches to streaming appends after `matched`.
    pub(crate) fn become_replicate(&mut self) {
        self.reset_state(ProgressState::Replicate);
        self.next = self.matched.next();
    }

    /// Switches to waiting for a snapshot at `index`.
    pub(crate) fn become_snapshot(&mut self, index: Index) {
        self.reset_state(ProgressState::Snapshot { pending: index });
    }

    /// Records that the follower holds everything up to `index`. Returns
    /// true if that is news.
    pub(crate) fn maybe_update(&mut self, index: Index) -> bool {
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
    pub(crate) fn maybe_decrease_to(&mut self, rejected: Index, match_hint: Index) -> bool {
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
    pub(crate) fn sent_entries(&mut self, entries: u64, bytes: u64) {
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
    pub(crate) fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.is_full(),
            ProgressState::Snapshot { .. } => true,
        }
    }

    /// The highest index known to be replicated on the follower.
    pub(crate) fn matched(&self) -> Index {
        self.matched
    }

    /// The next index to send.
    pub(crate) fn next(&self) -> Index {
        self.next
    }

    /// The sending mode.
    pub(crate) fn state(&self) -> ProgressState {
        self.state
    }

    /// Heard from since the last CheckQuorum round.
    pub(crate) fn recent_active(&self) -> bool {
        self.recent_active
    }

    /// The follower's own commit index, from its latest append response.
    pub(crate) fn commit_reported(&self) -> Index {
        self.commit_reported
    }

    /// The index the follower asked a snapshot to reach, if it waits for
    /// one.
    pub(crate) fn follower_snapshot_request(&self) -> Option<Index> {
        self.follower_snapshot_request
    }

    /// The `min_index` the application was asked to take a snapshot at
    /// for this follower, if it was and none was sent yet.
    pub(crate) fn snapshot_requested(&self) -> Option<Index> {
        self.snapshot_requested
    }

    /// Marks the member a learner (or a voter).
    pub(crate) fn set_learner(&mut self, is_learner: bool) {
        self.is_learner = is_learner;
    }

    /// The follower was heard from (or counts as if: a new member, the
    /// leader itself).
    pub(crate) fn mark_active(&mut self) {
        self.recent_active = true;
    }

    /// Starts a CheckQuorum round: only `active` members count as heard
    /// from.
    pub(crate) fn reset_active(&mut self, active: bool) {
        self.recent_active = active;
    }

    /// The follower reported its commit index.
    pub(crate) fn report_commit(&mut self, commit: Index) {
        self.commit_reported = self.commit_reported.max(commit);
    }

    /// The follower was sent a message that lets it adopt `commit`.
    pub(crate) fn commit_sent(&mut self, commit: Index) {
        self.sent_commit = self.sent_commit.max(commit);
    }

    /// True if the follower was not yet told of `committed` (as far as its
    /// log, as sent, reaches).
    pub(crate) fn needs_commit(&self, committed: Index) -> bool {
        self.next.prev().min(committed) > self.sent_commit
    }

    /// The application was asked for a snapshot reaching `min_index` for
    /// this follower (`None`: forget the request, to ask again).
    pub(crate) fn set_snapshot_requested(&mut self, min_index: Option<Index>) {
        self.snapshot_requested = min_index;
    }

    /// A snapshot at `index` is on its way: no request for one is
    /// outstanding any more.
    pub(crate) fn snapshot_sent(&mut self, index: Index) {
        self.snapshot_requested = None;
        self.follower_snapshot_request = None;
        self.become_snapshot(index);
    }

    /// The follower asked for a snapshot reaching `index`. Unless the one
    /// on its way reaches it, streaming stops (the follower refuses
    /// appends until it has one) and a snapshot that does not reach the
    /// index is given up (the follower refuses it too). Returns true if a
    /// new snapshot is needed.
    pub(crate) fn follower_requested_snapshot(&mut self, index: Index) -> bool {
        match self.state {
            ProgressState::Snapshot { pending } if pending >= index => {
                self.follower_snapshot_request = None;
                false
            }
            _ => {
                self.follower_snapshot_request = self.follower_snapshot_request.max(Some(index));
                self.become_probe();
                true
            }
        }
    }

    /// The follower acknowledged `index`: probing found the match, so
    /// stream; a follower that reconnected to the log at `first` (through
    /// a snapshot, possibly an older one, or plain appends) streams again
    /// (etcd #110).
    pub(crate) fn move_on_after_ack(&mut self, index: Index, first: Index) {
        match self.state {
            ProgressState::Probe => self.become_replicate(),
            ProgressState::Snapshot { .. } => {
                if self.matched.next() >= first {
                    self.become_probe();
                    self.become_replicate();
                }
            }
            ProgressState::Replicate => self.inflights.free_le(index),
        }
    }

    /// A heartbeat was answered: the follower is alive. If the window is
    /// full, its acknowledgements (or our appends) were lost: without
    /// freeing a slot it would stay full forever. One more append either
    /// fills a gap or is rejected, which moves the follower back to
    /// probing (etcd's FreeFirstOne).
    pub(crate) fn heartbeat_answered(&mut self) {
        self.recent_active = true;
        self.probe_sent = false;
        if self.state == ProgressState::Replicate && self.inflights.is_full() {
            self.inflights.free_first_one();
        }
    }

    /// Messages to the follower cannot be delivered: stop streaming, probe.
    pub(crate) fn report_unreachable(&mut self) {
        if self.state == ProgressState::Replicate {
            self.become_probe();
        }
    }

    /// Sending a snapshot ended, `failed` or not: probe again, after
    /// waiting for the follower's append response (or a heartbeat
    /// response), so the snapshot is not raced by a probe. Ignored unless
    /// a snapshot was on its way.
    pub(crate) fn report_snapshot(&mut self, failed: bool) {
        let ProgressState::Snapshot { .. } = self.state else {
            return;
        };
        if failed {
            // Forget the pending snapshot so probing restarts after `matched`.
            self.state = ProgressState::Snapshot {
                pending: Index::ZERO,
            };
        }
        self.become_probe();
        self.probe_sent = true;
    }

    /// What `Status` shows of this progress.
    pub(crate) fn status(&self) -> crate::status::ProgressStatus {
        crate::status::ProgressStatus {
            matched: self.matched,
            next: self.next,
            state: self.state,
            recent_active: self.recent_active,
            is_learner: self.is_learner,
            is_witness: false,
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
