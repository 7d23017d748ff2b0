//! Applying membership changes (thesis §4): changes take effect when the
//! application applies their entry, one pending at a time.

use bytes::Bytes;

use super::{Leader, Raft};
use crate::confchange::{self, AnyConfChange, ConfChangeError};
use crate::error::{ApplyConfChangeError, ProposeError};
use crate::storage::{Storage, StorageError};
use crate::tracker::{Membership, Progress};
use crate::types::{ConfChangeV2, ConfState, EntryKind, Index, NodeId};

impl<S: Storage> Raft<S> {
    /// Applies a committed conf change and returns the new configuration.
    pub(crate) fn apply_conf_change(
        &mut self,
        cc: &AnyConfChange,
    ) -> Result<ConfState, ApplyConfChangeError> {
        let current = self.membership.to_conf_state();
        if current.is_empty() && !self.log_begins_with_founding_entries()? {
            tracing::error!(
                id = %self.id, change = ?cc,
                "conf change refused: no configuration, and the log does not begin with the founders' membership"
            );
            return Err(ApplyConfChangeError::NoFoundingMembership);
        }
        let next = confchange::apply(&current, cc)?;
        self.check_own_kind(&next)?;
        self.switch_to_config(&next);
        Ok(next)
    }

    /// Refuses a configuration that names this node a witness when it runs
    /// with a state machine, or a full voter when it runs as a witness.
    fn check_own_kind(&self, next: &ConfState) -> Result<(), ApplyConfChangeError> {
        if !kind_disagrees(next, self.id, self.cfg.witness) {
            return Ok(());
        }
        let named_witness = next.is_witness(self.id);
        tracing::error!(
            id = %self.id, witness = self.cfg.witness, conf = ?next,
            "conf change refused: it disagrees with what this node runs as"
        );
        Err(ApplyConfChangeError::WitnessMismatch { named_witness })
    }

    /// True when the log's first entry is a membership change: the cluster
    /// was founded in the log ([`crate::FoundingLog`]), so changes applied
    /// from an empty configuration rebuild the real membership. In a
    /// cluster founded outside the log the first entry is the first
    /// leader's empty entry (paper §5.4.2), never a change.
    fn log_begins_with_founding_entries(&self) -> Result<bool, StorageError> {
        let first = match self.log.slice(Index(1), Index(2), crate::NO_LIMIT) {
            Ok(first) => first,
            // Compacted (only a snapshot can tell the membership) or not
            // there at all.
            Err(StorageError::Compacted | StorageError::Unavailable) => return Ok(false),
            Err(e) => return Err(e),
        };
        Ok(first.first().is_some_and(|e| e.kind != EntryKind::Normal))
    }

    /// Installs `cs` as the membership; on a leader, adjusts progress and,
    /// if this node no longer votes, hands leadership over.
    fn switch_to_config(&mut self, cs: &ConfState) {
        self.membership = Membership::from_conf_state(cs);
        tracing::info!(id = %self.id, conf = ?cs, "membership changed");
        self.lead(|l| l.adopt_config());
    }

    /// True if a committed but unapplied entry holds a conf change.
    pub(crate) fn has_unapplied_conf_changes(&self) -> Result<bool, StorageError> {
        // Entries a pending snapshot covers are not in the log any more;
        // the snapshot's configuration replaces theirs (found by the
        // simulator: a vote request arriving before a received snapshot
        // was persisted).
        let mut lo = self.log.applied().next().max(self.log.first_index()?);
        let hi = self.log.committed().next();
        while lo < hi {
            let batch = self.log.slice(lo, hi, self.cfg.max_size_per_msg)?;
            if batch.iter().any(|e| e.kind != EntryKind::Normal) {
                return Ok(true);
            }
            match batch.last() {
                Some(e) => lo = e.index.next(),
                None => break,
            }
        }
        Ok(false)
    }

    /// Leaves an auto-leave joint configuration once the change that entered
    /// it is applied (etcd's auto-leave).
    pub(crate) fn maybe_auto_leave(&mut self) -> Result<(), StorageError> {
        self.lead(|l| l.maybe_auto_leave()).unwrap_or(Ok(()))
    }
}

/// True when `cs` makes `id` a voter of the other kind than it runs as
/// (`witness`: `Config::witness`). A node that `cs` does not make a voter
/// (removed, not yet added, a learner) agrees with any configuration.
pub(super) fn kind_disagrees(cs: &ConfState, id: NodeId, witness: bool) -> bool {
    let voter = cs.voters.contains(&id) || cs.voters_outgoing.contains(&id);
    voter && cs.is_witness(id) != witness
}

impl<S: Storage> Leader<'_, S> {
    /// Leader-side checks of a proposed conf change: one at a time, and valid
    /// from the current configuration. Refused changes are errors, never
    /// silently turned into empty entries (etcd-raft #354).
    pub(super) fn check_conf_change_proposal(
        &self,
        kind: EntryKind,
        data: &Bytes,
    ) -> Result<(), ProposeError> {
        let cc = AnyConfChange::decode(kind, data)
            .map_err(|e| ProposeError::InvalidConfChange(ConfChangeError::Decode(e)))?
            .expect("called for conf change entries only");
        if self.state.pending_conf_index > self.log.applied() {
            return Err(ProposeError::ConfChangePending {
                pending: self.state.pending_conf_index,
                applied: self.log.applied(),
            });
        }
        confchange::apply(&self.membership.to_conf_state(), &cc)?;
        Ok(())
    }

    /// The membership just changed: track exactly its members, and hand
    /// over if this leader no longer votes.
    fn adopt_config(&mut self) {
        let last = self.log.last_index().unwrap_or(Index::ZERO);
        let members = self.membership.members();
        let id = self.id;
        let l = &mut *self.state;
        l.progress.retain(|pid, _| members.contains(pid));
        for m in &members {
            let pr = l.progress.entry(*m).or_insert_with(|| {
                let mut p = Progress::new(
                    last.next(),
                    self.cfg.max_inflight_msgs,
                    self.cfg.max_inflight_bytes,
                );
                // A new member must not count as dead at the next CheckQuorum.
                p.mark_active();
                p
            });
            pr.set_learner(!self.membership.is_voter(*m));
        }
        l.broadcast_pending = true;
        l.stepping_down = !self.membership.is_voter(id) && self.cfg.step_down_on_removal;
        if let Some(t) = l.transferee
            && !self.membership.is_voter(t)
        {
            self.abort_transfer("target is no longer a voter");
        }
        if self.state.stepping_down {
            tracing::info!(id = %id, term = %self.term, "removed or demoted: handing leadership over");
            self.hand_over_leadership();
            if self.step_down {
                // A follower has nothing to commit.
                return;
            }
        }
        // The quorum changed: entries may now be committed.
        if let Err(e) = self.maybe_commit() {
            tracing::warn!(id = %id, error = %e, "commit check after conf change failed");
        }
    }

    /// A removed or demoted leader hands leadership to the most up-to-date
    /// remaining voter instead of just stepping down: stepping down at once
    /// can leave the remaining voters unable to elect anyone when they have
    /// not learned that the change committed (they still count this node's
    /// vote, and it refuses them for their shorter logs). The transfer
    /// first brings the target up to date, commit index included
    /// (thesis §3.10, §4.2.2). Retried every election timeout until it
    /// succeeds.
    pub(super) fn hand_over_leadership(&mut self) {
        let id = self.id;
        let target = self
            .state
            .progress
            .iter()
            .filter(|(p, _)| **p != id && self.membership.can_lead(**p))
            .max_by_key(|(p, pr)| (pr.matched(), std::cmp::Reverse(**p)))
            .map(|(p, _)| *p);
        match target {
            Some(t) => {
                if let Err(e) = self.leader_transfer(t) {
                    tracing::warn!(id = %id, target = %t, error = %e, "hand-over failed");
                }
            }
            None => self.step_down(),
        }
    }

    /// Leaves an auto-leave joint configuration once the change that entered
    /// it is applied (etcd's auto-leave).
    fn maybe_auto_leave(&mut self) -> Result<(), StorageError> {
        if !self.membership.auto_leave() || !self.membership.voters().is_joint() {
            return Ok(());
        }
        if self.state.pending_conf_index > self.log.applied() {
            return Ok(());
        }
        let leave = ConfChangeV2::default().encode();
        match self.propose(EntryKind::ConfChangeV2, leave) {
            Ok(p) => tracing::info!(id = %self.id, proposal = ?p, "leaving joint configuration"),
            Err(ProposeError::Storage(e)) => return Err(e),
            Err(e) => tracing::debug!(id = %self.id, error = %e, "auto-leave deferred"),
        }
        Ok(())
    }
}
