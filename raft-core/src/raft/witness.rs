//! Witnesses: voters that keep the log's metadata but no payloads and no
//! state machine, and never lead (dragonboat's witnesses; the idea is
//! from Pâris's "Reducing the energy footprint of a distributed consensus
//! algorithm", and TiKV's witness RFC names the hole fixed here).
//!
//! What a leader sends a witness: appends whose normal entries carry no
//! payload (conf changes keep theirs: the witness applies them to know the
//! membership) and snapshots without data. What a witness is, everywhere
//! else: a voter. It counts for commit and for elections and grants votes
//! by the usual rule (paper §5.4.1), so every safety argument of Raft holds
//! unchanged: an entry acknowledged by a quorum that includes a witness is
//! in the log of every later leader, because the witness holds its index
//! and term and refuses votes to logs that lack them; and every leader is a
//! full member (a witness never campaigns, `Raft::promotable`), whose log
//! came from earlier leaders whole.
//!
//! What the plain rule breaks is liveness. Take full members A, B and a
//! witness W, A leading: if an entry reaches W before B and A then fails,
//! W refuses B's votes (W's log is longer) and W cannot campaign: no leader
//! until A returns, and if A's disk is lost, the entries only A held with
//! their payloads are gone. So the leader sends a witness only entries
//! that every full follower keeping up with it already holds
//! (`Leader::witness_limit`): a follower that is not installing a
//! snapshot and either answered within an election timeout and holds at
//! least what the witness holds, or has not answered this leader yet and
//! the leader took over less than two heartbeat intervals ago (its log is
//! unknown: wait briefly for its answer). Then, from a
//! healthy cluster, any minority of members can fail and the rest still
//! elect a full member holding every committed entry: the witnesses' logs
//! are prefixes of each surviving full member's. When full followers stop
//! answering, the witnesses get everything and carry the quorum, as they
//! are there to (2 full + 1 witness survives the loss of a full member).
//! The price: while every full follower answers, commit waits for the
//! slowest of them (a witness acknowledges only what they hold); when a
//! full follower fails, commits that need the witness wait until an
//! election timeout has passed without its answer. A follower behind the
//! witness (restarted, or added) does not hold the witness back; once it
//! has caught up with it, it does again.
//!
//! The rule decides only what is sent when: it is never needed for safety.

use bytes::Bytes;

use super::Leader;
use crate::storage::{Storage, StorageError};
use crate::tracker::ProgressState;
use crate::types::{Entry, EntryKind, Index, NodeId, Snapshot};

impl<S: Storage> Leader<'_, S> {
    /// The last index witness `to` may be sent now: the lowest match of
    /// the full followers that keep up (see the module doc); when none
    /// does, what this leader holds durably if it is a full voter (the
    /// witness then carries the quorum with it), and otherwise (a removed leader
    /// handing over) the most any full voter holds: a witness ahead of
    /// every full voter would refuse each of them its vote, and no quorum
    /// of the configuration includes this leader.
    pub(super) fn witness_limit(&self, to: NodeId, last: Index) -> Index {
        let timeout = u64::from(self.cfg.election_timeout_ticks);
        let grace = 2 * u64::from(self.cfg.heartbeat_interval_ticks);
        let now = self.ticks;
        let held = self
            .state
            .progress
            .get(&to)
            .map_or(Index::ZERO, |p| p.matched());
        let new_term = now - self.state.term_start_tick < grace;
        self.state
            .progress
            .iter()
            .filter(|(id, pr)| {
                **id != self.id
                    && self.membership.can_lead(**id)
                    && !matches!(pr.state(), ProgressState::Snapshot { .. })
                    && match pr.heard_at_tick() {
                        Some(t) => now - t < timeout && pr.matched() >= held,
                        None => new_term,
                    }
            })
            .map(|(_, pr)| pr.matched())
            .min()
            .unwrap_or_else(|| {
                if self.membership.can_lead(self.id) {
                    // What this leader holds durably: with asynchronous
                    // writes it sends entries before its own write ends,
                    // and a witness holding entries that a crash then
                    // takes from the only full voter would refuse that
                    // voter its vote forever.
                    return self
                        .state
                        .progress
                        .get(&self.id)
                        .map_or(Index::ZERO, |p| p.matched());
                }
                self.state
                    .progress
                    .iter()
                    .filter(|(id, _)| **id != self.id && self.membership.can_lead(**id))
                    .map(|(_, pr)| pr.matched())
                    .max()
                    .unwrap_or(held)
            })
            .min(last)
    }

    /// A follower answered: in a group with witnesses, note when (the
    /// witness limit counts only followers heard from recently).
    pub(super) fn note_heard(&mut self, from: NodeId) {
        if !self.membership.has_witnesses() {
            return;
        }
        let now = self.ticks;
        if let Some(pr) = self.state.progress.get_mut(&from) {
            pr.heard_at(now);
        }
    }

    /// A full follower's match rose: the witnesses may now be sent more.
    pub(super) fn feed_witnesses(&mut self, from: NodeId) -> Result<(), StorageError> {
        if !self.membership.has_witnesses() || self.membership.is_witness(from) {
            return Ok(());
        }
        // A copy of the shared reference: iterating it borrows nothing of
        // `self`.
        let membership = self.membership;
        for w in membership.witnesses() {
            debug_assert_ne!(w, self.id, "a witness never leads");
            while self.maybe_send_append(w, false)? {}
        }
        Ok(())
    }
}

/// The entries as a witness gets them: normal entries without payload.
pub(super) fn strip_payloads(entries: &mut [Entry]) {
    for e in entries.iter_mut().filter(|e| e.kind == EntryKind::Normal) {
        e.data = Bytes::new();
    }
}

/// The snapshot as a witness gets it: the metadata, no data.
pub(super) fn strip_snapshot(snapshot: &mut Snapshot) {
    snapshot.data = Bytes::new();
}
