//! Quiescence: an idle group stops its heartbeats and ignores ticks until
//! something happens (CockroachDB's quiesced ranges, TiKV's hibernate
//! regions, dragonboat's `Quiesce`; etcd-raft's `TickQuiesced` left the
//! protocol side to the application). Off unless
//! [`Config::quiesce_after_ticks`](crate::Config) is set.
//!
//! # The protocol
//! A leader whose group has been idle for `quiesce_after_ticks` ticks
//! (everything committed and applied, every member's match at the last
//! index, nothing under way: see [`Leader::is_idle`]) sends every member a
//! `Quiesce` naming its last entry, instead of a heartbeat, and quiesces. A
//! follower whose own last entry is that one holds exactly the leader's log
//! (Log Matching, paper §5.3), commits all of it and quiesces; any other
//! follower answers, which wakes the leader. Answers to what the leader
//! sent before it quiesced do not wake it. A quiesced node ignores ticks.
//! Any message, any local request (propose, read, transfer, campaign, ...)
//! and [`RawNode::wake`](crate::RawNode::wake) — a host's failure detector
//! reporting a lost peer — wake it. A follower woken by anything but its
//! leader tells the leader (a `Wake` message), so the leader wakes too
//! and its heartbeats keep the follower from timing out.
//!
//! # Why it is safe
//! Quiescence changes no term, vote, log or commit rule: every message is
//! handled as before, and the only new one commits what the leader already
//! committed on a follower that provably holds it. What it changes is time:
//! quiesced nodes do not count ticks. That matters for the two rules that
//! are measured in ticks:
//!
//! - **Leader leases** (thesis §6.4.1) are counted on the leader's clock.
//!   A quiesced leader's clock stops, so a lease it kept would never run
//!   out while real time passes, and a partitioned, quiesced leader would
//!   answer lease reads while the rest elect a new leader and write. So a
//!   leader drops its lease, and every heartbeat round it sent, when it
//!   quiesces ([`ReadQueue::drop_lease`](super::read::ReadQueue)); after
//!   waking it answers lease reads only from rounds sent after it woke. The
//!   `quiesce-lease` simulator mode checks it (and finds the stale read
//!   when the lease is kept).
//! - **CheckQuorum** (thesis §6.2, §4.2.3): a voter refuses votes within an
//!   election timeout of hearing from its leader, counted on its own clock.
//!   A quiesced voter's clock stops, so it refuses for *longer* in real
//!   time than an awake one: the direction leases need (a voter that
//!   acknowledged a round still refuses votes until its timeout passed
//!   after that). A quiesced leader does not check its quorum; it needs
//!   none for safety: it holds no lease, it must confirm reads with a
//!   quorum round (ReadIndex, thesis §6.4) and commit with a quorum.
//!
//! Liveness rests on waking: a woken follower whose leader is gone times
//! out and campaigns (with PreVote, the others refuse only until their
//! own timeouts pass after they wake); a lost `Quiesce` leaves a follower
//! ticking, whose timeout wakes the group. A host must wake its groups
//! when it loses a peer, or a group whose leader died stays asleep.

use super::{Leader, Raft, Role};
use crate::message::{MessageBody, Quiesce};
use crate::storage::{Storage, StorageError};
use crate::tracker::ProgressState;
use crate::types::NodeId;

impl<S: Storage> Raft<S> {
    /// True while this node ignores ticks (see the module docs).
    pub(crate) fn is_quiesced(&self) -> bool {
        self.quiesced
    }

    /// Ends quiescence. `by` is the peer whose message woke this node, or
    /// `None` for a local cause (a request, the host's failure detector).
    pub(crate) fn wake(&mut self, by: Option<NodeId>) {
        if !std::mem::take(&mut self.quiesced) {
            return;
        }
        tracing::debug!(id = %self.id, term = %self.term, by = ?by, "woken from quiescence");
        if let Role::Follower {
            leader: Some(leader),
        } = self.role
            && by != Some(leader)
        {
            // The leader may still be quiesced: without its heartbeats this
            // follower would time out and campaign against a live leader.
            self.send(leader, MessageBody::Wake);
        }
        self.heartbeat_elapsed = 0;
        self.lead(|l| l.wake());
    }

    /// True if `m` ends this node's quiescence: any message but a
    /// `Quiesce`, except
    /// - on a leader, the answers to appends and heartbeats it sent before
    ///   it quiesced (they report nothing new: it quiesced only with every
    ///   member matching its whole log);
    /// - on a follower, a heartbeat of its leader's term from that leader:
    ///   one that a transport delivered after the `Quiesce` (heartbeats
    ///   and appends may travel apart), or one of a leader that woke for
    ///   a reason of its own. It is answered as always; while the leader
    ///   heartbeats the follower needs no clock, and if it stops, the
    ///   follower is in the state quiescence leaves it in anyway.
    pub(crate) fn woken_by(&self, m: &crate::message::Message) -> bool {
        self.quiesced
            && match m.body {
                MessageBody::Quiesce(_) => false,
                MessageBody::AppendResponse(_) | MessageBody::HeartbeatResponse(_) => {
                    !self.is_leader()
                }
                MessageBody::Heartbeat(_) => {
                    m.term != self.term || self.leader() != Some(m.from) || self.is_leader()
                }
                _ => true,
            }
    }

    /// Leader tick: counts an idle tick, and quiesces once the group has
    /// been idle for `quiesce_after_ticks`. Returns true if it quiesced.
    pub(crate) fn tick_quiesce(&mut self) -> Result<bool, StorageError> {
        let quiesced = self.lead(|l| l.tick_quiesce()).unwrap_or(Ok(false))?;
        if quiesced {
            self.quiesced = true;
            self.heartbeat_elapsed = 0;
        }
        Ok(quiesced)
    }

    /// A follower hears that its leader quiesced.
    pub(crate) fn handle_quiesce(&mut self, from: NodeId, q: Quiesce) -> Result<(), StorageError> {
        if self.pending_snapshot_request.is_some() || self.log.last_log_id()? != q.last {
            // Not the log the leader counts on (or this follower waits for
            // a snapshot): stay awake and answer, which wakes the leader.
            tracing::debug!(id = %self.id, from = %from, last = %q.last, "quiesce refused");
            self.send(from, MessageBody::Wake);
            return Ok(());
        }
        // Our last entry is the leader's last, committed entry: by Log
        // Matching (paper §5.3) our whole log is the leader's, committed.
        self.log.commit_to(q.last.index);
        self.quiesced = true;
        tracing::debug!(id = %self.id, leader = %from, last = %q.last, "quiesced");
        Ok(())
    }
}

impl<S: Storage> Leader<'_, S> {
    /// True if the group has nothing to do: everything committed and
    /// applied, every member holding the whole log, and no read, transfer,
    /// hand-over, snapshot request or membership change under way.
    fn is_idle(&self) -> Result<bool, StorageError> {
        let last = self.log.last_index()?;
        let l = &*self.state;
        Ok(self.log.committed() == last
            && self.log.applied() == last
            && !l.broadcast_pending
            && l.transferee.is_none()
            && !l.stepping_down
            && l.snapshot_request.is_none()
            && l.pending_conf_index <= self.log.applied()
            && l.reads.is_idle()
            && l.progress
                .values()
                .all(|p| p.matched() == last && p.state() == ProgressState::Replicate))
    }

    /// Counts one tick of idleness (or restarts the count) and quiesces
    /// once the group was idle for `quiesce_after_ticks` ticks in a row.
    fn tick_quiesce(&mut self) -> Result<bool, StorageError> {
        let Some(after) = self.cfg.quiesce_after_ticks else {
            return Ok(false);
        };
        if !self.is_idle()? {
            self.state.quiet_ticks = 0;
            return Ok(false);
        }
        self.state.quiet_ticks = self.state.quiet_ticks.saturating_add(1);
        if self.state.quiet_ticks < after.get() {
            return Ok(false);
        }
        self.quiesce()?;
        Ok(true)
    }

    /// Drops the lease (see the module docs) and tells every member.
    fn quiesce(&mut self) -> Result<(), StorageError> {
        let last = self.log.last_log_id()?;
        debug_assert_eq!(last.term, self.term, "a leader's log ends in its term");
        debug_assert_eq!(last.index, self.log.committed());
        self.state.reads.drop_lease();
        let id = self.id;
        let mut peers = Vec::with_capacity(self.state.progress.len());
        for (pid, pr) in self.state.progress.iter_mut().filter(|(p, _)| **p != id) {
            pr.commit_sent(last.index);
            peers.push(*pid);
        }
        for to in peers {
            self.send(to, MessageBody::Quiesce(Quiesce { last }));
        }
        tracing::debug!(id = %self.id, term = %self.term, last = %last, "leader quiesced");
        Ok(())
    }

    /// Resumes leading: a CheckQuorum round starts afresh (only members
    /// heard from after waking count), and idleness is counted anew.
    fn wake(&mut self) {
        *self.election_elapsed = 0;
        self.state.quiet_ticks = 0;
        let id = self.id;
        for (pid, pr) in self.state.progress.iter_mut() {
            pr.reset_active(*pid == id);
        }
    }
}
