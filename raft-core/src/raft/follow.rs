//! The follower side: appends, heartbeats, snapshots, forwarding (paper
//! §5.3, §7; thesis Figure 13 for snapshots).

use super::{Ignored, Raft, Role};
use crate::config::ReadOnlyOption;
use crate::error::{ForgetLeaderError, ProposeError, StepError};
use crate::message::{
    Append, AppendResponse, Heartbeat, HeartbeatResponse, Message, MessageBody, RejectHint,
};
use crate::storage::{Storage, StorageError};
use crate::tracker::Membership;
use crate::types::{Index, Snapshot};

impl<S: Storage> Raft<S> {
    /// Messages to a follower.
    pub(crate) fn step_follower(&mut self, m: Message) -> Result<(), StepError> {
        let from = m.from;
        match m.body {
            MessageBody::Propose(p) => {
                let Role::Follower {
                    leader: Some(leader),
                } = self.role
                else {
                    return Err(ProposeError::NoLeader.into());
                };
                if self.cfg.disable_proposal_forwarding {
                    return Err(ProposeError::ForwardingDisabled { leader }.into());
                }
                let body = MessageBody::Propose(p);
                self.out.push(Message {
                    from: self.id,
                    to: leader,
                    term: m.term,
                    body,
                });
                Ok(())
            }
            MessageBody::Append(a) => {
                self.heard_from_leader(from);
                // Waiting for a requested snapshot: append nothing, so that
                // the snapshot covers every entry acknowledged; ask again
                // instead (the request may have been lost, raft-rs alike).
                if !self.renew_snapshot_request(from)? {
                    self.handle_append(from, a)?;
                    // A request of an earlier term is made anew once the
                    // log holds an entry of this one.
                    self.renew_snapshot_request(from)?;
                }
                Ok(())
            }
            MessageBody::Heartbeat(h) => {
                self.heard_from_leader(from);
                self.handle_heartbeat(from, h)?;
                self.renew_snapshot_request(from)?;
                Ok(())
            }
            MessageBody::Snapshot(s) => {
                self.heard_from_leader(from);
                self.handle_snapshot(from, s)?;
                Ok(())
            }
            MessageBody::Quiesce(q) => {
                self.heard_from_leader(from);
                self.handle_quiesce(from, q)?;
                Ok(())
            }
            MessageBody::TimeoutNow => {
                // Thesis §3.10: the leader chose us; campaign at once, even
                // inside a leader lease, without pre-vote.
                tracing::info!(id = %self.id, from = %from, "timeout-now received; campaigning");
                self.hup(true)?;
                Ok(())
            }
            MessageBody::ReadIndexResponse(ref r) => {
                self.handle_read_index_response(&m, r);
                Ok(())
            }
            _ => {
                // Requests forwarded to a node that no longer leads are
                // dropped; the requester retries against the new leader.
                self.ignore(&m, Ignored::WrongRole);
                Ok(())
            }
        }
    }

    /// Forgets the leader this follower follows (etcd-raft 3.6's
    /// `ForgetLeader`), for when the application knows the leader is gone
    /// (it is being removed or restarted). A voter refuses votes while it
    /// believes a leader exists, within an election timeout of hearing
    /// from it (CheckQuorum, thesis §4.2.3: leader stickiness, so that a
    /// disruptive server cannot depose a live leader); forgetting ends that
    /// wait, so the follower grants (pre-)votes at once. It does not
    /// campaign, and one follower forgetting elects nobody: a quorum must
    /// agree that the leader is gone. The leader is learned again from its
    /// next append or heartbeat, if it is alive after all.
    pub(crate) fn forget_leader(&mut self) -> Result<(), ForgetLeaderError> {
        let Role::Follower { leader } = self.role else {
            return Err(ForgetLeaderError::NotFollower {
                role: self.role.kind(),
            });
        };
        if self.cfg.read_only_option == ReadOnlyOption::LeaseBased {
            // Thesis §6.4.1: the leader's lease counts on this voter not
            // voting for an election timeout after acknowledging it.
            return Err(ForgetLeaderError::LeaseBasedReads);
        }
        if let Some(leader) = leader {
            tracing::info!(id = %self.id, leader = %leader, term = %self.term, "forgetting leader");
            self.role = Role::Follower { leader: None };
        }
        debug_assert!(self.leader().is_none());
        Ok(())
    }

    fn heard_from_leader(&mut self, leader: crate::types::NodeId) {
        self.election_elapsed = 0;
        self.role = Role::Follower {
            leader: Some(leader),
        };
    }

    fn respond_append(
        &mut self,
        to: crate::types::NodeId,
        index: Index,
        reject: Option<RejectHint>,
    ) {
        let body = MessageBody::AppendResponse(AppendResponse {
            index,
            reject,
            commit: self.log.committed(),
        });
        self.send(to, body);
    }

    /// AppendEntries receiver implementation (paper Figure 2).
    fn handle_append(&mut self, from: crate::types::NodeId, a: Append) -> Result<(), StorageError> {
        if a.prev.index < self.log.committed() {
            // Everything up to our commit index already matches the leader
            // (Leader Completeness): report it so the leader moves on.
            self.respond_append(from, self.log.committed(), None);
            return Ok(());
        }
        match self.log.maybe_append(a.prev, a.commit, a.entries)? {
            Some(Ok(last_new)) => self.respond_append(from, last_new, None),
            Some(Err(conflict)) => {
                tracing::error!(
                    id = %self.id, from = %from, conflict = %conflict, commit = %self.log.committed(),
                    reason = ?Ignored::RewritesCommitted, "append would overwrite committed entries; ignored"
                );
            }
            None => {
                // Reject with a hint: the last index that may match, skipping
                // our entries of terms above the leader's prev term.
                let hint_index = a.prev.index.min(self.log.last_index()?);
                let hint = self.log.find_conflict_by_term(hint_index, a.prev.term)?;
                tracing::debug!(
                    id = %self.id, from = %from, prev = %a.prev, hint = %hint, "append rejected"
                );
                // `find_conflict_by_term` says term 0 where it knows no term.
                let reject = RejectHint {
                    index: hint.index,
                    term: (hint.term > crate::types::Term::ZERO).then_some(hint.term),
                };
                self.respond_append(from, a.prev.index, Some(reject));
            }
        }
        Ok(())
    }

    /// A heartbeat carries a commit index the follower is known to hold.
    fn handle_heartbeat(
        &mut self,
        from: crate::types::NodeId,
        h: Heartbeat,
    ) -> Result<(), StorageError> {
        // The leader caps it at our match index; cap again at our log in
        // case the message is stale relative to a truncation.
        let commit = h.commit.min(self.log.last_index()?);
        self.log.commit_to(commit);
        self.send(
            from,
            MessageBody::HeartbeatResponse(HeartbeatResponse {
                read_round: h.read_round,
            }),
        );
        Ok(())
    }

    /// Refuses a snapshot at `index` that we hold already, or that does
    /// not reach the snapshot we requested, and answers `from`. Returns
    /// true if refused.
    fn refuse_stale_snapshot(
        &mut self,
        from: crate::types::NodeId,
        index: Index,
    ) -> Result<bool, StorageError> {
        Ok(match self.active_snapshot_request() {
            // Restoring it would drop entries we acknowledged after it (and
            // the application wants a state machine reaching its request):
            // ask again.
            Some(wanted) if index < wanted => {
                tracing::debug!(
                    id = %self.id, from = %from, index = %index, wanted = %wanted,
                    "snapshot refused: older than the one requested"
                );
                self.renew_snapshot_request(from)?;
                true
            }
            Some(_) => false,
            // Stale: we already have everything it covers.
            None if index <= self.log.committed() => {
                self.respond_append(from, self.log.committed(), None);
                true
            }
            None => false,
        })
    }

    /// InstallSnapshot receiver (paper §7, thesis Figure 13).
    fn handle_snapshot(
        &mut self,
        from: crate::types::NodeId,
        s: Snapshot,
    ) -> Result<(), StorageError> {
        let meta = &s.metadata;
        let wanted = self.active_snapshot_request();
        if self.refuse_stale_snapshot(from, meta.index)? {
            return Ok(());
        }
        if self.log.applying() > self.log.applied() {
            // Asynchronous writes: committed entries handed out earlier are
            // still being applied. Restoring now would install the
            // snapshot's membership before their conf changes are applied
            // on top of it, in the wrong order (found by the simulator). The
            // leader sends the snapshot again later.
            tracing::debug!(
                id = %self.id, from = %from, index = %meta.index,
                "snapshot deferred: committed entries still being applied"
            );
            return Ok(());
        }
        if !meta.conf_state.contains(self.id) {
            tracing::warn!(
                id = %self.id, from = %from, index = %meta.index,
                reason = ?Ignored::SnapshotWithoutSelf, "snapshot refused"
            );
            return Ok(());
        }
        if super::membership::kind_disagrees(&meta.conf_state, self.id, self.cfg.witness) {
            // The same rule as `check_own_kind`: a full node named a witness
            // would restore a snapshot without data; a witness named a full
            // voter could lead with a log without payloads.
            tracing::error!(
                id = %self.id, from = %from, index = %meta.index, witness = self.cfg.witness,
                reason = ?Ignored::SnapshotWitnessMismatch, "snapshot refused"
            );
            return Ok(());
        }
        if wanted.is_none() && self.log.match_term(meta.log_id())? {
            // Our log already holds the snapshot's last entry: keep the log
            // and only fast-forward the commit index. (A requested snapshot
            // is restored in any case: the state machine needs it.)
            self.log.commit_to(meta.index);
            self.respond_append(from, self.log.committed(), None);
            return Ok(());
        }
        tracing::info!(id = %self.id, from = %from, index = %meta.index, term = %meta.term, "restoring snapshot");
        self.membership = Membership::from_conf_state(&meta.conf_state);
        // Everything up to the snapshot is committed (paper §7), and it
        // reaches at least our commit index (a requested one: the last
        // index, which is at least the commit index).
        debug_assert!(meta.index >= self.log.committed());
        self.clear_snapshot_request("snapshot installed");
        self.log.restore(s);
        let last = self.log.last_index()?;
        self.respond_append(from, last, None);
        Ok(())
    }
}
