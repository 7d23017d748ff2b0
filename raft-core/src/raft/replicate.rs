//! The leader: proposals, log replication with flow control, heartbeats,
//! commit, CheckQuorum (paper §5.3, §5.4.2; thesis §6.2).

use bytes::Bytes;

use super::read::ReadRequest;
use std::collections::BTreeMap;

use super::{Ignored, Leader, Raft};
use crate::config::Config;
use crate::error::{ProposeError, StepError};
use crate::log::RaftLog;
use crate::message::{Append, AppendResponse, Heartbeat, Message, MessageBody, RejectHint};
use crate::quorum::VoteResult;
use crate::ready::SnapshotRequest;
use crate::status::ProgressStatus;
use crate::storage::{Storage, StorageError};
use crate::tracker::{Progress, ProgressState};
use crate::types::{Entry, EntryKind, Index, LogId, NodeId};

/// Up to this many members, a broadcast collects the peers on the stack.
const STACK_PEERS: usize = 16;

/// Where an accepted proposal went.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Proposal {
    /// This node leads: the entry was appended at `index` in `term`. It is
    /// committed once it shows up in `Ready::committed_entries`, with the
    /// same index and term.
    Appended {
        /// The entry's position.
        id: LogId,
    },
    /// Forwarded to the leader, which will assign the index.
    Forwarded {
        /// The leader it went to.
        to: NodeId,
    },
}

impl<S: Storage> Raft<S> {
    /// Proposes one entry (paper §5.3: the leader appends it to its log).
    pub(crate) fn propose(
        &mut self,
        kind: EntryKind,
        data: Bytes,
    ) -> Result<Proposal, ProposeError> {
        let data = match self.lead_with(data, |l, data| l.propose(kind, data)) {
            Ok(r) => return r,
            Err(data) => data,
        };
        let Some(leader) = self.leader() else {
            return Err(ProposeError::NoLeader);
        };
        if self.cfg.disable_proposal_forwarding {
            return Err(ProposeError::ForwardingDisabled { leader });
        }
        check_proposal_limits(&self.cfg, &self.log, &data)?;
        let entry = Entry {
            term: crate::types::Term::ZERO,
            index: Index::ZERO,
            kind,
            data,
        };
        let body = MessageBody::Propose(crate::message::Propose {
            entries: vec![entry],
        });
        self.out.push(Message::forwarded(self.id, leader, body));
        Ok(Proposal::Forwarded { to: leader })
    }

    /// Sends pending appends and commit updates, batched: one message per
    /// follower per `Ready` instead of one per proposal.
    #[inline]
    pub(crate) fn flush_broadcast(&mut self) -> Result<(), StorageError> {
        self.lead(|l| l.flush_broadcast()).unwrap_or(Ok(()))
    }

    /// The persisted part of the leader's own log counts toward commit.
    pub(crate) fn on_entries_persisted(&mut self, last: LogId) -> Result<(), StorageError> {
        self.lead(|l| l.on_entries_persisted(last))
            .unwrap_or(Ok(()))
    }

    /// True if the leader has work for the next `Ready`: a batched
    /// broadcast, or a snapshot request for the application.
    pub(crate) fn has_leader_work(&self) -> bool {
        self.role
            .leader_state()
            .is_some_and(|l| l.broadcast_pending || l.snapshot_request.is_some())
    }

    /// The snapshot request for the next `Ready`, if the leader has one.
    pub(crate) fn take_snapshot_request(&mut self) -> Option<SnapshotRequest> {
        self.lead(|l| l.state.snapshot_request.take()).flatten()
    }

    /// `entries` were handed out for applying: on a leader they no longer
    /// count as uncommitted.
    pub(crate) fn release_uncommitted(&mut self, entries: &[Entry]) {
        self.lead(|l| l.release_uncommitted(entries));
    }

    /// The application cannot deliver messages to `id`: stop streaming to
    /// it and probe instead.
    pub(crate) fn report_unreachable(&mut self, id: NodeId) {
        self.lead(|l| l.report_unreachable(id));
    }

    /// Sending a snapshot to `id` ended, `failed` or not.
    pub(crate) fn report_snapshot(&mut self, id: NodeId, failed: bool) {
        self.lead(|l| l.report_snapshot(id, failed));
    }

    /// Every member's progress, on the leader.
    pub(crate) fn progress_status(&self) -> Option<BTreeMap<NodeId, ProgressStatus>> {
        let l = self.role.leader_state()?;
        let status = l.progress.iter().map(|(id, p)| {
            let mut s = p.status();
            s.is_witness = self.membership.is_witness(*id);
            (*id, s)
        });
        Some(status.collect())
    }

    /// Leader tick: heartbeats and CheckQuorum.
    pub(crate) fn tick_leader(&mut self) -> Result<(), StorageError> {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.cfg.election_timeout_ticks {
            self.election_elapsed = 0;
            // Handing over may make this node a follower: the quorum check
            // below then steps down (again) as it always did.
            self.lead(|l| l.on_election_timeout());
            if self.cfg.check_quorum && self.lead(|l| l.quorum_recently_active()) != Some(true) {
                // Thesis §6.2: a leader that cannot reach a quorum steps down,
                // so clients look for the real leader elsewhere.
                tracing::warn!(id = %self.id, term = %self.term, "stepping down: quorum not active");
                self.become_follower(self.term, None);
                return Ok(());
            }
        }
        if self.tick_quiesce()? {
            return Ok(());
        }
        if self.heartbeat_elapsed >= self.cfg.heartbeat_interval_ticks {
            self.heartbeat_elapsed = 0;
            self.lead(|l| l.broadcast_heartbeat());
        }
        Ok(())
    }
}

/// Admission control, before anything is appended or forwarded: the
/// entry size (TiKV's `RaftEntryTooLarge`) and apply backpressure
/// (etcd's server refuses proposals while its commit index is more
/// than `maxGapBetweenApplyAndCommitIndex` ahead of its applied index).
/// Conf changes obey both: their entry travels and is applied like any
/// other.
fn check_proposal_limits<S: Storage>(
    cfg: &Config,
    log: &RaftLog<S>,
    data: &Bytes,
) -> Result<(), ProposeError> {
    let bytes = data.len() as u64;
    let max = cfg.max_entry_bytes;
    if bytes > max {
        return Err(ProposeError::EntryTooLarge { bytes, max });
    }
    let (committed, applied) = (log.committed(), log.applied());
    debug_assert!(applied <= committed, "applied beyond commit");
    let max_gap = cfg.max_apply_gap;
    if committed - applied > max_gap {
        return Err(ProposeError::ApplyBacklog {
            committed,
            applied,
            max_gap,
        });
    }
    Ok(())
}

impl<S: Storage> Leader<'_, S> {
    /// The leader's view of member `id`.
    ///
    /// # Panics
    /// If `id` is not a member: callers check first.
    fn progress_of(&mut self, id: NodeId) -> &mut Progress {
        self.state
            .progress
            .get_mut(&id)
            .expect("progress of a member")
    }

    /// Appends an entry the leader created and schedules the broadcast.
    pub(super) fn append_leader_entry(&mut self, entry: Entry) {
        debug_assert_eq!(entry.term, self.term);
        let size = entry.payload_bytes();
        // Moved into the log, not cloned: one proposal, no refcount traffic.
        self.log.append_one(entry);
        self.state.uncommitted_size += size;
        self.state.broadcast_pending = true;
    }

    /// The other half of the uncommitted-size accounting of
    /// [`Leader::append_leader_entry`]: `entries` were handed out for
    /// applying.
    fn release_uncommitted(&mut self, entries: &[Entry]) {
        let applied_bytes: u64 = entries.iter().map(|e| e.payload_bytes()).sum();
        let l = &mut *self.state;
        l.uncommitted_size = l.uncommitted_size.saturating_sub(applied_bytes);
    }

    fn report_unreachable(&mut self, id: NodeId) {
        if let Some(pr) = self.state.progress.get_mut(&id) {
            pr.report_unreachable();
        }
    }

    fn report_snapshot(&mut self, id: NodeId, failed: bool) {
        if let Some(pr) = self.state.progress.get_mut(&id) {
            pr.report_snapshot(failed);
        }
    }

    /// Proposes one entry as the leader: appends it to its log.
    pub(super) fn propose(
        &mut self,
        kind: EntryKind,
        data: Bytes,
    ) -> Result<Proposal, ProposeError> {
        if let Some(target) = self.state.transferee {
            // Thesis §3.10: stop accepting work so the target can catch up.
            return Err(ProposeError::TransferInProgress { target });
        }
        if !self.membership.contains(self.id) {
            return Err(ProposeError::NotAMember);
        }
        check_proposal_limits(self.cfg, self.log, &data)?;
        let limit = self.cfg.max_uncommitted_entries_size;
        let uncommitted = self.state.uncommitted_size;
        let size = data.len() as u64;
        // An empty entry is always accepted, and so is anything when
        // nothing is outstanding, so a large entry cannot wedge the leader.
        if size > 0 && uncommitted > 0 && uncommitted.saturating_add(size) > limit {
            return Err(ProposeError::UncommittedSizeExceeded { uncommitted, limit });
        }
        if kind != EntryKind::Normal {
            self.check_conf_change_proposal(kind, &data)?;
        }
        let index = self.log.last_index()?.next();
        let id = LogId::new(self.term, index);
        self.append_leader_entry(Entry {
            term: self.term,
            index,
            kind,
            data,
        });
        if kind != EntryKind::Normal {
            self.state.pending_conf_index = index;
        }
        Ok(Proposal::Appended { id })
    }

    /// Messages to a leader.
    pub(super) fn step(&mut self, m: Message) -> Result<(), StepError> {
        if let Some(kind) = response_kind(&m.body) {
            if !self.state.progress.contains_key(&m.from) {
                return Err(StepError::UnknownPeer { from: m.from, kind });
            }
            self.note_heard(m.from);
        }
        match m.body {
            MessageBody::Propose(p) => {
                for e in p.entries {
                    self.propose(e.kind, e.data)?;
                }
                Ok(())
            }
            MessageBody::AppendResponse(r) => self.handle_append_response(m.from, r),
            MessageBody::HeartbeatResponse(h) => {
                if let Some(round) = h.read_round {
                    self.ack_read_round(m.from, round);
                }
                self.handle_heartbeat_response(m.from)
            }
            MessageBody::ReadIndex(r) => {
                let request = ReadRequest {
                    from: Some(m.from),
                    context: r.context,
                };
                Ok(self.leader_read(request)?)
            }
            MessageBody::RequestSnapshot(r) => self.handle_snapshot_request(m.from, r.index),
            // `Raft::step` woke this leader already.
            MessageBody::Wake => Ok(()),
            MessageBody::TransferLeader(t) => {
                if let Err(e) = self.leader_transfer(t.target) {
                    tracing::info!(id = %self.id, from = %m.from, error = %e, "forwarded transfer refused");
                }
                Ok(())
            }
            _ => {
                self.ignore(&m, Ignored::WrongRole);
                Ok(())
            }
        }
    }

    /// Sends pending appends and commit updates, batched: one message per
    /// follower per `Ready` instead of one per proposal.
    #[inline]
    fn flush_broadcast(&mut self) -> Result<(), StorageError> {
        let leader = &mut *self.state;
        if std::mem::take(&mut leader.broadcast_pending)
            // A single-node cluster has nobody to send to.
            && !(leader.progress.len() == 1 && leader.progress.contains_key(&self.id))
        {
            return self.broadcast_appends();
        }
        Ok(())
    }

    /// The body of [`Leader::flush_broadcast`], once a broadcast is due.
    fn broadcast_appends(&mut self) -> Result<(), StorageError> {
        let leader = &*self.state;
        // The peers, in id order, collected on the stack for clusters of
        // usual size: no allocation per Ready.
        let id = self.id;
        let members = leader.progress.len();
        let peers = leader.progress.keys().copied().filter(|&p| p != id);
        if members <= STACK_PEERS {
            let mut buf = [id; STACK_PEERS];
            let mut n = 0;
            for p in peers {
                buf[n] = p;
                n += 1;
            }
            for &to in &buf[..n] {
                self.send_append_all(to)?;
            }
        } else {
            let peers: Vec<NodeId> = peers.collect();
            for to in peers {
                self.send_append_all(to)?;
            }
        }
        Ok(())
    }

    /// Sends as many appends to `to` as flow control allows; an empty one
    /// if the follower only needs the commit index.
    fn send_append_all(&mut self, to: NodeId) -> Result<(), StorageError> {
        let committed = self.log.committed();
        let needs_commit = { self.state.progress[&to].needs_commit(committed) };
        let mut send_if_empty = needs_commit;
        while self.maybe_send_append(to, send_if_empty)? {
            send_if_empty = false;
        }
        Ok(())
    }

    /// Sends one append to `to` unless flow control pauses it or there is
    /// nothing to send. Falls back to a snapshot when the entries `to` needs
    /// were compacted. Returns true if something was sent.
    pub(super) fn maybe_send_append(
        &mut self,
        to: NodeId,
        send_if_empty: bool,
    ) -> Result<bool, StorageError> {
        // Checked for emptiness first: most groups have no witness.
        let witness = self.membership.has_witnesses() && self.membership.is_witness(to);
        let mut last = self.log.last_index()?;
        if witness {
            last = self.witness_limit(to, last);
        }
        let pr = self
            .state
            .progress
            .get_mut(&to)
            .expect("progress of a member");
        if pr.is_paused() {
            return Ok(false);
        }
        if pr.follower_snapshot_request().is_some() {
            // The follower refuses appends until it has a snapshot.
            return self.maybe_send_snapshot(to);
        }
        if witness {
            // A witness may hold more than its limit allows now (the limit
            // falls when a full follower catches up again): nothing new.
            last = last.max(pr.next().prev());
        }
        if pr.next() > last && !send_if_empty {
            // Up to date: nothing to send (and the term of the last entry,
            // the follower's prev, is always known: no snapshot needed).
            return Ok(false);
        }
        let prev_index = pr.next().prev();
        let Some(prev_term) = self.log.term_if_present(prev_index)? else {
            return self.maybe_send_snapshot(to);
        };
        let mut entries = match self
            .log
            .slice(pr.next(), last.next(), self.cfg.max_size_per_msg)
        {
            Ok(e) => e,
            Err(StorageError::Compacted) => return self.maybe_send_snapshot(to),
            Err(e) => return Err(e),
        };
        if witness {
            super::witness::strip_payloads(&mut entries);
        }
        if entries.is_empty() && !send_if_empty {
            return Ok(false);
        }
        let bytes: u64 = entries.iter().map(Entry::size_bytes).sum();
        pr.sent_entries(entries.len() as u64, bytes);
        let commit = self.log.committed();
        // The follower adopts min(commit, last entry it now holds).
        pr.commit_sent(commit.min(prev_index + entries.len() as u64));
        let body = MessageBody::Append(Append {
            prev: LogId::new(prev_term, prev_index),
            entries,
            commit,
        });
        self.send(to, body);
        Ok(true)
    }

    /// Sends the latest snapshot to `to` (paper §7), if it is reachable and
    /// storage has one ready.
    fn maybe_send_snapshot(&mut self, to: NodeId) -> Result<bool, StorageError> {
        let pr = self.progress_of(to);
        if !pr.recent_active() {
            tracing::debug!(id = %self.id, to = %to, "snapshot not sent: follower not recently active");
            return Ok(false);
        }
        let next = pr.next();
        let requested = pr.follower_snapshot_request();
        let mut snapshot = match self
            .log
            .storage()
            .snapshot(next.max(requested.unwrap_or(next)))
        {
            Ok(s) => s,
            Err(StorageError::SnapshotTemporarilyUnavailable) => {
                tracing::debug!(id = %self.id, to = %to, "snapshot temporarily unavailable; will retry");
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let compacted_to = self.log.first_index()?.prev();
        // A follower that asked for a snapshot refuses one that does not
        // reach the index it asked for.
        let needed = compacted_to.max(requested.unwrap_or(Index::ZERO));
        let meta = &snapshot.metadata;
        if snapshot.is_empty() || !meta.conf_state.contains(to) || meta.index < needed {
            // The follower would refuse it (it was added after this
            // snapshot was taken, or asked for a newer one), or still miss
            // entries after it (the log was compacted further): ask the
            // application for a newer one.
            self.ask_for_snapshot(to, needed, meta.index);
            return Ok(false);
        }
        if self.membership.has_witnesses() && self.membership.is_witness(to) {
            super::witness::strip_snapshot(&mut snapshot);
        }
        let pr = self.progress_of(to);
        pr.snapshot_sent(snapshot.metadata.index);
        tracing::info!(id = %self.id, to = %to, index = %snapshot.metadata.index, "sending snapshot");
        self.send(to, MessageBody::Snapshot(snapshot));
        Ok(true)
    }

    /// Asks the application (in the next `Ready`) for a snapshot that can
    /// serve `to`, one reaching `compacted_to` at least, unless an earlier
    /// request for it still would. Without it a member added after the
    /// newest snapshot, behind compaction, waits until the application
    /// happens to snapshot again.
    fn ask_for_snapshot(&mut self, to: NodeId, compacted_to: Index, newest: Index) {
        // An index the leader applied (or handed out for applying) is at or
        // after the conf change that added `to`.
        let min_index = self.log.applying().max(compacted_to);
        let id = self.id;
        let pr = self.progress_of(to);
        if pr
            .snapshot_requested()
            .is_some_and(|asked| asked >= compacted_to)
        {
            return;
        }
        pr.set_snapshot_requested(Some(min_index));
        tracing::info!(
            id = %id, to = %to, newest = %newest, compacted_to = %compacted_to,
            min_index = %min_index, "no snapshot can serve this member; asking for a newer one"
        );
        let request = SnapshotRequest { min_index, to };
        // One request per Ready: keep the one the application can serve
        // first. A larger one may wait on commits that need the smaller
        // one served: followers that requested snapshots append nothing
        // until they have one (found by the simulator). The other follower
        // is asked for again within an election timeout (`tick_leader`).
        let leader = &mut *self.state;
        leader.snapshot_request = Some(match leader.snapshot_request {
            Some(r) if r.min_index <= min_index => r,
            _ => request,
        });
    }

    /// A follower answered an append (paper §5.3).
    fn handle_append_response(&mut self, from: NodeId, r: AppendResponse) -> Result<(), StepError> {
        if r.index > self.log.last_index()? {
            // Nobody can hold or have been sent entries we do not have: a
            // confused or malicious peer.
            tracing::warn!(id = %self.id, from = %from, index = %r.index, "append response beyond our log; ignored");
            return Ok(());
        }
        // Only a follower in snapshot state needs the first index (a storage
        // read): skip it on the hot path.
        let pr = self
            .state
            .progress
            .get_mut(&from)
            .expect("progress of a member");
        let first = if matches!(pr.state(), ProgressState::Snapshot { .. }) {
            self.log.first_index()?
        } else {
            Index::ZERO
        };
        pr.mark_active();
        pr.report_commit(r.commit);
        if let Some(hint) = r.reject {
            return self.handle_append_rejection(from, r.index, hint);
        }
        let was_paused = pr.is_paused();
        // A probe acknowledged at the index already matched (e.g. after
        // `report_unreachable`, or a probe sent on a heartbeat response)
        // proves the logs match there: resume replication, or the follower
        // would stay in probe, one append per heartbeat (etcd's
        // heartbeat_resp_recovers_from_probing).
        let probe_confirmed = pr.state() == ProgressState::Probe && pr.matched() == r.index;
        // A follower that requested a snapshot acknowledged its log with
        // the request: the answer to the snapshot may bring no new index,
        // but it still says the snapshot is installed.
        let snapshot_installed =
            matches!(pr.state(), ProgressState::Snapshot { pending } if r.index >= pending);
        if !pr.maybe_update(r.index) && !probe_confirmed && !snapshot_installed {
            // Nothing new replicated, but the follower may now report the
            // commit index a hand-over waits for.
            self.maybe_finish_transfer(from, false)?;
            return Ok(());
        }
        pr.move_on_after_ack(r.index, first);
        // Raising one member's match index to `matched` can raise the
        // quorum index only up to `matched`: at or below the commit index
        // nothing can commit, so skip the quorum computation (the second
        // acknowledgement of an entry in a 3-node cluster).
        let matched = pr.matched();
        if matched > self.log.committed() && self.maybe_commit()? {
            self.state.broadcast_pending = true;
            self.release_reads_after_commit()?;
        } else if was_paused {
            // A paused follower was skipped by earlier commit broadcasts and
            // may lack the latest commit index: send it, in an empty append
            // if there are no entries to carry it (etcd's `sendAppend` here).
            // Without this a follower repaired by probing learns the commit
            // only at the next heartbeat.
            self.send_append_all(from)?;
        }
        // Keep the window full while there is a backlog.
        while self.maybe_send_append(from, false)? {}
        self.feed_witnesses(from)?;
        self.maybe_finish_transfer(from, false)?;
        Ok(())
    }

    /// The follower's log does not match at `rejected`: back off to the
    /// hint and probe again. Fast backtracking: jump over the follower's
    /// entries of terms the leader does not have (thesis §5.3 optimisation).
    fn handle_append_rejection(
        &mut self,
        from: NodeId,
        rejected: Index,
        hint: RejectHint,
    ) -> Result<(), StepError> {
        let next_probe = match hint.term {
            // Term 0 holds no entry: nothing to search by (a peer built on
            // this crate sends `None` then, but the type allows it).
            Some(term) if term > crate::types::Term::ZERO => {
                self.log.find_conflict_by_term(hint.index, term)?.index
            }
            _ => hint.index,
        };
        let pr = self.progress_of(from);
        if pr.maybe_decrease_to(rejected, next_probe) {
            if pr.state() == ProgressState::Replicate {
                pr.become_probe();
            }
            self.maybe_send_append(from, true)?;
        }
        Ok(())
    }

    fn handle_heartbeat_response(&mut self, from: NodeId) -> Result<(), StepError> {
        let last = self.log.last_index()?;
        let pr = self.progress_of(from);
        pr.heartbeat_answered();
        // A heartbeat answer proves the follower is reachable: resume a
        // lagging or probing follower (etcd heartbeat_resp_recovers_from_probing).
        if pr.matched() < last || pr.state() == ProgressState::Probe {
            self.maybe_send_append(from, true)?;
        }
        Ok(())
    }

    /// The persisted part of the leader's own log counts toward commit.
    fn on_entries_persisted(&mut self, last: LogId) -> Result<(), StorageError> {
        if !self.log.match_term(last)? {
            return Ok(());
        }
        let id = self.id;
        let updated = self
            .state
            .progress
            .get_mut(&id)
            .is_some_and(|pr| pr.maybe_update(last.index));
        if updated && self.maybe_commit()? {
            self.state.broadcast_pending = true;
            self.release_reads_after_commit()?;
        }
        if updated {
            // Witnesses waiting for this leader's own write may go on.
            self.feed_witnesses(id)?;
        }
        Ok(())
    }

    /// Commits the highest index a quorum holds, if it is from the current
    /// term: entries of earlier terms commit only indirectly (§5.4.2,
    /// Figure 8).
    pub(super) fn maybe_commit(&mut self) -> Result<bool, StorageError> {
        let progress = &self.state.progress;
        let quorum_index = self
            .membership
            .voters()
            .committed_index(&|id: NodeId| progress.get(&id).map(|p| p.matched()));
        let last = self.log.last_index()?;
        let candidate = quorum_index.min(last);
        let committed = self.log.maybe_commit(LogId::new(self.term, candidate))?;
        if committed {
            tracing::trace!(id = %self.id, commit = %candidate, "commit advanced");
        }
        Ok(committed)
    }

    /// An election timeout passed on the leader: give up a transfer that
    /// did not finish, retry snapshot requests, retry handing over.
    fn on_election_timeout(&mut self) {
        self.abort_transfer("not completed within an election timeout");
        // A snapshot request the application lost or could not serve
        // yet is made again, at most once per election timeout.
        self.state
            .progress
            .values_mut()
            .for_each(|pr| pr.set_snapshot_requested(None));
        if self.state.stepping_down {
            self.hand_over_leadership();
        }
    }

    /// True if a quorum was heard from since the last check; resets the
    /// activity marks for the next round.
    fn quorum_recently_active(&mut self) -> bool {
        let id = self.id;
        let progress = &mut self.state.progress;
        let result = self
            .membership
            .voters()
            .vote_result(|v| Some(v == id || progress.get(&v).is_some_and(|p| p.recent_active())));
        for (pid, pr) in progress.iter_mut() {
            pr.reset_active(*pid == id);
        }
        result == VoteResult::Won
    }

    /// Heartbeats to every follower (paper §5.2), each carrying the commit
    /// index capped at what that follower holds.
    fn broadcast_heartbeat(&mut self) {
        let committed = self.log.committed();
        let id = self.id;
        let lease = self.cfg.read_only_option == crate::config::ReadOnlyOption::LeaseBased;
        let now = self.ticks;
        let leader = &mut *self.state;
        // Retry the newest pending read round (see `newest_pending_round`);
        // with lease reads every heartbeat is a round, which renews the
        // lease and confirms any pending read.
        let read_round = if lease {
            Some(leader.reads.new_lease_round(now))
        } else {
            leader.reads.newest_pending_round()
        };
        let mut targets: Vec<(NodeId, Index)> = Vec::with_capacity(leader.progress.len());
        for (pid, pr) in leader.progress.iter_mut().filter(|(pid, _)| **pid != id) {
            let commit = pr.matched().min(committed);
            pr.commit_sent(commit);
            targets.push((*pid, commit));
        }
        for (to, commit) in targets {
            self.send(to, MessageBody::Heartbeat(Heartbeat { commit, read_round }));
        }
    }
}

/// The kind name of a message that only a member answering this leader
/// sends.
fn response_kind(body: &MessageBody) -> Option<&'static str> {
    match body {
        MessageBody::AppendResponse(_)
        | MessageBody::HeartbeatResponse(_)
        | MessageBody::RequestSnapshot(_) => Some(body.kind_name()),
        _ => None,
    }
}
