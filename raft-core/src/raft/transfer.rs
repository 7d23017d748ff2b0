//! Leadership transfer (thesis §3.10): bring the target up to date, then
//! tell it to campaign at once.

use super::{Leader, Raft, Role};
use crate::error::TransferError;
use crate::message::{Message, MessageBody, TransferLeader};
use crate::storage::{Storage, StorageError};
use crate::types::NodeId;

impl<S: Storage> Raft<S> {
    /// Asks for `target` to become leader.
    pub(crate) fn transfer_leader(&mut self, target: NodeId) -> Result<(), TransferError> {
        if let Ok(r) = self.lead_with(target, |l, x| l.leader_transfer(x)) {
            return r;
        }
        match self.role {
            Role::Follower {
                leader: Some(leader),
            } => {
                if target == leader {
                    return Ok(());
                }
                let body = MessageBody::TransferLeader(TransferLeader { target });
                self.out.push(Message::forwarded(self.id, leader, body));
                Ok(())
            }
            _ => Err(TransferError::NoLeader),
        }
    }

    /// The application stops a transfer in progress: proposals flow again
    /// at once instead of after the election timeout. Returns the target
    /// it was handing over to.
    pub(crate) fn cancel_transfer(&mut self) -> Result<Option<NodeId>, TransferError> {
        let leader = self.leader();
        self.lead(|l| l.cancel_transfer())
            .unwrap_or(Err(TransferError::NotLeader { leader }))
    }

    /// The target of the transfer in progress, if any.
    pub(crate) fn transferee(&self) -> Option<NodeId> {
        self.role.leader_state().and_then(|l| l.transferee)
    }
}

impl<S: Storage> Leader<'_, S> {
    pub(super) fn leader_transfer(&mut self, target: NodeId) -> Result<(), TransferError> {
        if target == self.id {
            // Staying leader is a request to stop handing over (etcd
            // aborts the pending transfer the same way).
            return self.cancel_transfer().map(|_| ());
        }
        if !self.membership.is_voter(target) {
            // Learners never campaign; a non-member cannot be elected.
            return Err(TransferError::NotVoter { target });
        }
        if self.membership.is_witness(target) {
            return Err(TransferError::Witness { target });
        }
        let l = &mut *self.state;
        if l.transferee == Some(target) {
            return Ok(());
        }
        if let Some(old) = l.transferee {
            tracing::info!(id = %self.id, old = %old, new = %target, "replacing leadership transfer");
        }
        l.transferee = Some(target);
        // The transfer must finish within an election timeout, or it is
        // abandoned and proposals flow again.
        *self.election_elapsed = 0;
        tracing::info!(id = %self.id, target = %target, term = %self.term, "leadership transfer started");
        self.maybe_finish_transfer(target, true)?;
        Ok(())
    }

    /// Sends TimeoutNow once the target's log matches ours; otherwise (if
    /// `catch_up`) pushes entries to it.
    pub(super) fn maybe_finish_transfer(
        &mut self,
        target: NodeId,
        catch_up: bool,
    ) -> Result<(), StorageError> {
        let last = self.log.last_index()?;
        let l = &mut *self.state;
        if l.transferee != Some(target) {
            return Ok(());
        }
        let Some(pr) = l.progress.get(&target) else {
            return Ok(());
        };
        // A leader handing over because it was removed also waits until the
        // target knows the removal committed: otherwise the target may
        // still count the old leader's vote, which will never come.
        let commit_known = !l.stepping_down || pr.commit_reported() >= self.log.committed();
        if pr.matched() == last && commit_known {
            tracing::info!(id = %self.id, target = %target, "target caught up; sending timeout-now");
            // The target will campaign through the voters' leases, maybe
            // after this transfer is aborted (the message can be delayed):
            // no lease read for the rest of this term.
            l.reads.void_lease();
            self.send(target, MessageBody::TimeoutNow);
            if self.state.stepping_down {
                // A removed leader need not wait to hear of the new term (it
                // may never: the new leader does not talk to non-members).
                // The target holds our whole log, so its votes will come.
                self.step_down();
            }
        } else if catch_up {
            self.maybe_send_append(target, true)?;
        }
        Ok(())
    }

    /// [`Raft::cancel_transfer`] on the leader.
    fn cancel_transfer(&mut self) -> Result<Option<NodeId>, TransferError> {
        let l = &*self.state;
        if l.stepping_down {
            // Removed or demoted: handing over is what lets the remaining
            // voters elect a leader (see `hand_over_leadership`).
            return Err(TransferError::SteppingDown);
        }
        let target = l.transferee;
        self.abort_transfer("cancelled by the application");
        Ok(target)
    }

    /// Abandons a transfer in progress (timeout, or the target left).
    pub(super) fn abort_transfer(&mut self, why: &'static str) {
        if let Some(target) = self.state.transferee.take() {
            tracing::info!(id = %self.id, target = %target, why, "leadership transfer aborted");
        }
    }
}
