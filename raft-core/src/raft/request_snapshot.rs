//! Follower-requested snapshots (raft-rs's `request_snapshot`): an
//! application that finds its state machine damaged asks the leader for a
//! snapshot to restore it from.
//!
//! The follower asks for a snapshot reaching its last index, an entry of
//! the current term (so the leader has it, and every later leader will if
//! it commits: paper §5.4). Until one is installed it appends nothing, so
//! the snapshot covers every entry it ever acknowledged, and it repeats the
//! request in answer to the leader's appends and heartbeats (requests can
//! be lost). In a later term the index may be an entry the new leader does
//! not have: the follower then appends again until its log holds an entry
//! of the new term, and asks anew from there. The leader sends its
//! storage's snapshot once it reaches the index, or asks the application
//! for a newer one (`Ready::snapshot_request`), as for a follower behind
//! the compacted log (paper §7).

use super::{Leader, PendingSnapshotRequest, Raft, Role};
use crate::error::{RequestSnapshotError, StepError};
use crate::message::{MessageBody, RequestSnapshot};
use crate::storage::{Storage, StorageError};
use crate::types::{Index, NodeId};

impl<S: Storage> Raft<S> {
    /// The application asks the leader for a snapshot.
    pub(crate) fn request_snapshot(&mut self) -> Result<Index, RequestSnapshotError> {
        if self.cfg.witness {
            return Err(RequestSnapshotError::Witness);
        }
        let Role::Follower { leader } = self.role else {
            return Err(RequestSnapshotError::NotFollower {
                role: self.role.kind(),
            });
        };
        let Some(leader) = leader else {
            return Err(RequestSnapshotError::NoLeader);
        };
        if let Some(pending) = self.pending_snapshot_request {
            return Err(RequestSnapshotError::AlreadyPending {
                index: pending.index,
            });
        }
        if self.log.has_unstable_snapshot() {
            return Err(RequestSnapshotError::SnapshotInProgress);
        }
        let last = self.log.last_log_id()?;
        if last.term != self.term {
            return Err(RequestSnapshotError::LogBehindLeader {
                last_term: last.term,
                term: self.term,
            });
        }
        tracing::info!(id = %self.id, leader = %leader, index = %last.index, "requesting a snapshot");
        self.pending_snapshot_request = Some(PendingSnapshotRequest {
            index: last.index,
            term: self.term,
        });
        self.send_snapshot_request(leader);
        Ok(last.index)
    }

    /// The index of the request made in the current term, if any: while
    /// there is one the log is frozen at it.
    pub(crate) fn active_snapshot_request(&self) -> Option<Index> {
        self.pending_snapshot_request
            .filter(|p| p.term == self.term)
            .map(|p| p.index)
    }

    /// Repeats the outstanding request to `leader`, or makes it anew if it
    /// was made in an earlier term and the log now ends with an entry of
    /// this one. Returns true if a request of this term is outstanding
    /// (the log must not grow).
    pub(crate) fn renew_snapshot_request(&mut self, leader: NodeId) -> Result<bool, StorageError> {
        let Some(pending) = self.pending_snapshot_request else {
            return Ok(false);
        };
        if pending.term != self.term {
            let last = self.log.last_log_id()?;
            if last.term != self.term {
                return Ok(false);
            }
            tracing::info!(id = %self.id, leader = %leader, index = %last.index, "requesting a snapshot again in a new term");
            self.pending_snapshot_request = Some(PendingSnapshotRequest {
                index: last.index,
                term: self.term,
            });
        }
        self.send_snapshot_request(leader);
        Ok(true)
    }

    fn send_snapshot_request(&mut self, leader: NodeId) {
        let Some(index) = self.active_snapshot_request() else {
            return;
        };
        // The log does not grow while a request of this term is
        // outstanding (appends are refused): the index stays the last one.
        debug_assert!(self.log.last_index().is_ok_and(|l| l == index));
        self.send(
            leader,
            MessageBody::RequestSnapshot(RequestSnapshot { index }),
        );
    }

    /// The request is dropped: a snapshot was installed (it replaces the
    /// state machine), or this node campaigns (as leader it would append,
    /// and a later snapshot at the requested index could drop entries it
    /// acknowledged).
    pub(crate) fn clear_snapshot_request(&mut self, why: &'static str) {
        if let Some(p) = self.pending_snapshot_request.take() {
            tracing::info!(id = %self.id, index = %p.index, why, "snapshot request dropped");
        }
    }
}

impl<S: Storage> Leader<'_, S> {
    /// A follower asks the leader for a snapshot reaching `index`.
    pub(super) fn handle_snapshot_request(
        &mut self,
        from: NodeId,
        index: Index,
    ) -> Result<(), StepError> {
        if index > self.log.last_index()? {
            // The follower's last entry is of our term, so ours too: a
            // confused or malicious peer.
            tracing::warn!(id = %self.id, from = %from, index = %index, "snapshot request beyond our log; ignored");
            return Ok(());
        }
        // The follower's entry at `index` is of our term, so only we
        // created it: by Log Matching (paper §5.3) its log equals ours up
        // to there, and the request left only once that log was durable.
        // It counts as an acknowledgement (without it a lost append
        // response could keep the index from committing, and the snapshot
        // from ever reaching it).
        let acked = self.log.term_if_present(index)? == Some(self.term);
        let id = self.id;
        let pr = self
            .state
            .progress
            .get_mut(&from)
            .expect("progress of a member");
        pr.mark_active();
        let updated = acked && pr.maybe_update(index);
        // Unless the snapshot on its way reaches the index already.
        if pr.follower_requested_snapshot(index) {
            tracing::info!(id = %id, from = %from, index = %index, "follower requests a snapshot");
        }
        if updated && self.maybe_commit()? {
            self.state.broadcast_pending = true;
            self.release_reads_after_commit()?;
        }
        self.maybe_send_append(from, true)?;
        Ok(())
    }
}
