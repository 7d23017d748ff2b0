//! The application's handle on one Raft node.

use bytes::Bytes;

use crate::confchange::AnyConfChange;
use crate::config::Config;
use crate::error::{
    ApplyConfChangeError, CampaignError, ForgetLeaderError, NewError, ProposeError, ReadIndexError,
    ReadyError, RequestSnapshotError, StepError, TickError, TransferError,
};
use crate::message::Message;
use crate::raft::{Proposal, Raft, RoleKind};
use crate::ready::{Ready, ReadyNumber, SoftState};
use crate::status::Status;
use crate::storage::{Storage, StorageError};
use crate::types::{ConfState, EntryKind, HardState, Index, LogId, NodeId, Term};

/// How sending a snapshot to a follower ended (see
/// [`RawNode::report_snapshot`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SnapshotStatus {
    /// The follower received the whole snapshot.
    Finished,
    /// Sending failed; the leader will probe the follower again.
    Failed,
}

/// Why [`RawNode::advance`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdvanceError {
    /// Storage failed.
    #[error("storage failure: {0}")]
    Storage(#[from] StorageError),
}

/// What became ready while advancing: see [`RawNode::advance_with_commits`].
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct LightReady {
    /// The new commit index, to persist (with or before applying the
    /// entries) like a `Ready`'s hard state.
    pub commit: Option<Index>,
    /// Newly committed entries to apply, in order.
    pub committed_entries: Vec<crate::types::Entry>,
    /// Messages that may be sent now (commit updates to followers).
    pub messages: Vec<Message>,
}

/// What the outstanding `Ready` covered, so `advance` knows what became
/// durable and applied.
#[derive(Debug)]
struct Receipt {
    number: ReadyNumber,
    last_entry: Option<LogId>,
    snapshot: Option<Index>,
    hard_state: Option<HardState>,
}

/// A Raft node driven by the application: feed it ticks, messages and
/// proposals; collect [`Ready`]s; call [`RawNode::advance`] after each.
///
/// It performs no I/O, reads no clock, starts no thread: everything it
/// does is a function of its inputs and `Config::seed`.
pub struct RawNode<S: Storage> {
    raft: Raft<S>,
    prev_soft: SoftState,
    prev_hard: HardState,
    /// Readys handed out and not yet persisted, oldest first.
    outstanding: std::collections::VecDeque<Receipt>,
    /// The number of the last Ready handed out; `None` before the first.
    last_ready: Option<ReadyNumber>,
}

impl<S: Storage> RawNode<S> {
    /// A node over `storage`, which holds its persisted state (empty for a
    /// new node; the membership comes from `Storage::initial_state`).
    ///
    /// # Errors
    /// An invalid `config`, unreadable storage, or persisted state that
    /// contradicts itself.
    pub fn new(config: Config, storage: S) -> Result<RawNode<S>, NewError> {
        let raft = Raft::new(config, storage)?;
        let prev_hard = raft.hard_state();
        let prev_soft = soft_state(&raft);
        Ok(RawNode {
            raft,
            prev_soft,
            prev_hard,
            outstanding: Default::default(),
            last_ready: None,
        })
    }

    fn checked<T>(&mut self, r: T) -> T {
        self.raft.debug_check_invariants();
        r
    }

    /// Advances the logical clock. Call it at a fixed interval; timeouts in
    /// `Config` count these ticks.
    ///
    /// # Errors
    /// A storage failure while starting an election.
    pub fn tick(&mut self) -> Result<(), TickError> {
        let r = self.raft.tick().map_err(TickError::Storage);
        self.checked(r)
    }

    /// Starts an election now (with a pre-vote round if `Config::pre_vote`).
    ///
    /// # Errors
    /// [`CampaignError::NotVoter`] for learners and non-members,
    /// [`CampaignError::AlreadyLeader`] on the leader.
    pub fn campaign(&mut self) -> Result<(), CampaignError> {
        self.raft.wake(None);
        if self.raft.is_leader() {
            return Err(CampaignError::AlreadyLeader);
        }
        if self.raft.is_witness() {
            return Err(CampaignError::Witness);
        }
        if !self.raft.promotable() {
            return Err(CampaignError::NotVoter);
        }
        if self.raft.term() >= Term::MAX {
            return Err(CampaignError::TermsExhausted);
        }
        let r = self.raft.hup(false).map_err(CampaignError::from);
        self.checked(r)
    }

    /// Proposes `data` for the replicated log. On a follower the proposal is
    /// forwarded to the leader (unless forwarding is disabled).
    ///
    /// Acceptance is not commitment: watch `Ready::committed_entries` for the
    /// entry at the returned position. A leader change may drop it.
    ///
    /// # Errors
    /// A [`ProposeError`] saying why nothing was proposed.
    pub fn propose(&mut self, data: impl Into<Bytes>) -> Result<Proposal, ProposeError> {
        self.raft.wake(None);
        let r = self.raft.propose(EntryKind::Normal, data.into());
        self.checked(r)
    }

    /// Proposes a membership change. It takes effect when applied: call
    /// [`RawNode::apply_conf_change`] for it when it shows up in
    /// `Ready::committed_entries`.
    ///
    /// # Errors
    /// As [`RawNode::propose`], plus [`ProposeError::ConfChangePending`] while
    /// another change is not applied and [`ProposeError::InvalidConfChange`]
    /// for a change the current configuration does not allow.
    pub fn propose_conf_change(
        &mut self,
        cc: impl Into<AnyConfChange>,
    ) -> Result<Proposal, ProposeError> {
        self.raft.wake(None);
        let (kind, data) = cc.into().to_entry_data();
        let r = self.raft.propose(kind, data);
        self.checked(r)
    }

    /// Applies a committed membership change (decode it from the entry with
    /// [`AnyConfChange::from_entry`]) and returns the new configuration,
    /// which the application stores with its snapshot state.
    ///
    /// # Errors
    /// [`ApplyConfChangeError::Invalid`] if the change is invalid for the
    /// current configuration; [`ApplyConfChangeError::NoFoundingMembership`]
    /// on a joiner whose log cannot tell it the founders' membership. The
    /// membership is then unchanged.
    pub fn apply_conf_change(
        &mut self,
        cc: &AnyConfChange,
    ) -> Result<ConfState, ApplyConfChangeError> {
        let r = self.raft.apply_conf_change(cc);
        self.checked(r)
    }

    /// Handles a message from a peer.
    ///
    /// Stale or duplicate messages are ignored (not an error).
    ///
    /// # Errors
    /// A misaddressed message, a response from a non-member, a forwarded
    /// proposal that cannot be accepted, or a storage failure.
    pub fn step(&mut self, m: Message) -> Result<(), StepError> {
        let r = self.raft.step(m);
        self.checked(r)
    }

    /// True when [`RawNode::ready`] has something to hand out.
    pub fn has_ready(&self) -> bool {
        let r = &self.raft;
        soft_state(r) != self.prev_soft || r.hard_state() != self.prev_hard || r.has_output()
    }

    /// Collects the work to do. Handle it as [`Ready`] describes, then call
    /// [`RawNode::advance`] (or, with `Config::async_storage_writes`, report
    /// progress later with [`RawNode::on_persisted`] and
    /// [`RawNode::on_applied`]).
    ///
    /// # Errors
    /// A storage failure while reading entries.
    ///
    /// # Panics
    /// With synchronous writes (the default), if the previous `Ready` was not
    /// advanced: each Ready must be persisted before the next is built.
    pub fn ready(&mut self) -> Result<Ready, ReadyError> {
        let sync = !self.raft.async_writes();
        assert!(
            !sync || self.outstanding.is_empty(),
            "ready() called before advance() of the previous Ready"
        );
        self.raft.flush_broadcast()?;
        let (entries, snapshot) = self.raft.log().unpersisted();
        let committed_entries = self.raft.next_committed_entries(sync)?;
        let hs = self.raft.hard_state();
        let ss = soft_state(&self.raft);
        let hard_state = (hs != self.prev_hard).then_some(hs);
        let soft = (ss != self.prev_soft).then_some(ss);
        let must_sync = !entries.is_empty()
            || snapshot.is_some()
            || hs.term != self.prev_hard.term
            || hs.vote != self.prev_hard.vote;
        let number = self
            .last_ready
            .map_or(ReadyNumber::FIRST, ReadyNumber::next);
        self.last_ready = Some(number);
        let receipt = Receipt {
            number,
            last_entry: entries.last().map(|e| e.log_id()),
            snapshot: snapshot.as_ref().map(|s| s.metadata.index),
            hard_state,
        };
        self.raft.accept_in_progress();
        self.raft.hand_out_committed(&committed_entries);

        self.prev_hard = hs;
        self.prev_soft = ss;
        self.outstanding.push_back(receipt);
        Ok(Ready {
            number,
            soft_state: soft,
            hard_state,
            snapshot,
            entries,
            committed_entries,
            messages: self.raft.take_messages(),
            persisted_messages: self.raft.take_persisted_messages(),
            read_states: self.raft.take_read_states(),
            snapshot_request: self.raft.take_snapshot_request(),
            must_sync,
        })
    }

    /// Tells the node that every [`Ready`] handed out was persisted and its
    /// committed entries applied: [`RawNode::on_persisted`] with the last
    /// Ready's number, then [`RawNode::on_applied`] with its last committed
    /// index. Its own votes and log count only now (a leader's own append
    /// acknowledges itself here, thesis §10.2.1).
    ///
    /// # Errors
    /// A storage failure.
    pub fn advance(&mut self) -> Result<(), AdvanceError> {
        if let Some(number) = self.last_ready {
            self.on_persisted(number)?;
        }
        self.on_applied(self.raft.log().applying())
    }

    /// [`RawNode::advance`], returning at once what this node's own
    /// persistence made ready, instead of in the next [`Ready`]: a leader's
    /// own acknowledgement commits entries here, and a single-node cluster
    /// then needs one Ready cycle per batch instead of two (raft-rs's
    /// `LightReady`). Synchronous writes only.
    ///
    /// Handle the result like a Ready: persist
    /// [`LightReady::commit`] (with or before applying), send
    /// [`LightReady::messages`], apply [`LightReady::committed_entries`].
    /// The next `advance` (or `on_applied`) records them applied.
    ///
    /// # Errors
    /// A storage failure.
    pub fn advance_with_commits(&mut self) -> Result<LightReady, AdvanceError> {
        debug_assert!(!self.raft.async_writes(), "synchronous writes only");
        // `advance`, but the entries just persisted leave the unstable
        // buffer only after the entries they committed were taken: from
        // memory, not read back from storage.
        let unstabled = match self.last_ready {
            Some(number) => self.persist_receipts(number)?,
            None => None,
        };
        self.on_applied(self.raft.log().applying())?;
        self.raft.flush_broadcast()?;
        let committed_entries = match unstabled {
            Some(id) => self.raft.take_committed_and_stable_to(id)?,
            None => self.raft.log().next_committed_entries(true)?,
        };
        self.raft.hand_out_committed(&committed_entries);
        let hs = self.raft.hard_state();
        let commit = (hs.commit != self.prev_hard.commit
            && hs.term == self.prev_hard.term
            && hs.vote == self.prev_hard.vote)
            .then_some(hs.commit);
        if commit.is_some() {
            // Persisted by the application from the LightReady, not by the
            // next Ready.
            self.prev_hard.commit = hs.commit;
        }
        let r = Ok(LightReady {
            commit,
            committed_entries,
            messages: self.raft.take_messages(),
        });
        self.checked(r)
    }

    /// Asynchronous writes: the snapshot, entries and hard state of every
    /// Ready numbered up to `number` are durable. Readys must be persisted
    /// in order. Their `persisted_messages` may now be sent.
    ///
    /// # Errors
    /// A storage failure.
    pub fn on_persisted(&mut self, number: ReadyNumber) -> Result<(), AdvanceError> {
        if let Some(id) = self.persist_receipts(number)? {
            self.raft.stable_to(id);
        }
        let r = Ok(());
        self.checked(r)
    }

    /// Processes the receipts of the Readys numbered up to `number`. The
    /// newest persisted entries stay in the unstable buffer: their id is
    /// returned for the caller to `stable_to` (after taking committed
    /// entries from memory, in `advance_with_commits`). Where the entries
    /// are held changes no answer of the log.
    fn persist_receipts(&mut self, number: ReadyNumber) -> Result<Option<LogId>, AdvanceError> {
        let mut unstabled = None;
        while self.outstanding.front().is_some_and(|r| r.number <= number) {
            let receipt = self.outstanding.pop_front().expect("checked non-empty");
            if let Some(index) = receipt.snapshot {
                self.raft.snapshot_persisted(index);
            }
            if let Some(id) = receipt.last_entry {
                if let Some(prev) = unstabled.replace(id) {
                    self.raft.stable_to(prev);
                }
                self.raft.on_entries_persisted(id)?;
            }
            if let Some(hs) = receipt.hard_state {
                self.raft.on_hard_state_persisted(hs.term, hs.vote)?;
            }
        }
        Ok(unstabled)
    }

    /// Asynchronous writes: the state machine applied every committed entry
    /// up to `index` (entries are handed out in order; `index` beyond what
    /// was handed out is capped).
    ///
    /// # Errors
    /// A storage failure.
    pub fn on_applied(&mut self, index: Index) -> Result<(), AdvanceError> {
        let r = self.raft.on_applied(index).map_err(AdvanceError::from);
        self.checked(r)
    }

    /// Asks for a linearizable read (thesis §6.4). When leadership is
    /// confirmed, a [`ReadState`](crate::ReadState) with the same `context`
    /// appears in `Ready::read_states`: serve the read once the application
    /// applied its index. On a follower the request goes to the leader. A
    /// request in flight when leadership changes is dropped: retry after a
    /// timeout.
    ///
    /// # Errors
    /// [`ReadIndexError::NoLeader`] when no leader is known.
    pub fn read_index(&mut self, context: impl Into<Bytes>) -> Result<(), ReadIndexError> {
        self.raft.wake(None);
        let r = self.raft.read_index(context.into());
        self.checked(r)
    }

    /// Asks for `target` to become leader (thesis §3.10). The leader stops
    /// accepting proposals, brings `target` up to date and tells it to
    /// campaign at once; it gives up after an election timeout. On a
    /// follower the request goes to the leader.
    ///
    /// On the leader, `target` = itself cancels a transfer in progress (as
    /// in etcd-raft), like [`RawNode::abort_leader_transfer`].
    ///
    /// # Errors
    /// [`TransferError::NotVoter`] for learners and non-members,
    /// [`TransferError::NoLeader`] when no leader is known,
    /// [`TransferError::SteppingDown`] for a cancellation while a removed
    /// leader hands over.
    pub fn transfer_leader(&mut self, target: NodeId) -> Result<(), TransferError> {
        self.raft.wake(None);
        let r = self.raft.transfer_leader(target);
        self.checked(r)
    }

    /// Cancels the leadership transfer in progress, so proposals are
    /// accepted again at once instead of after the election timeout. The
    /// target may still campaign if it already got `TimeoutNow`. Returns
    /// the target given up, or `None` if no transfer was in progress.
    ///
    /// # Errors
    /// [`TransferError::NotLeader`] on a follower or candidate;
    /// [`TransferError::SteppingDown`] while a removed or demoted leader
    /// hands leadership over (that transfer is what lets the cluster elect
    /// a leader).
    pub fn abort_leader_transfer(&mut self) -> Result<Option<NodeId>, TransferError> {
        self.raft.wake(None);
        let r = self.raft.cancel_transfer();
        self.checked(r)
    }

    /// Makes this follower forget its leader (etcd-raft's `ForgetLeader`),
    /// so that under CheckQuorum it grants votes at once instead of
    /// refusing them for the rest of an election timeout (thesis §4.2.3).
    /// Call it on the followers when the application knows the leader is
    /// gone, e.g. before removing or restarting it: the next election then
    /// need not wait out the leader's lease. It does not start an election
    /// (see [`RawNode::campaign`]); a leader that is still alive is
    /// followed again at its next heartbeat. Forgetting when no leader is
    /// known does nothing.
    ///
    /// # Errors
    /// [`ForgetLeaderError::NotFollower`] on a leader or (pre-)candidate;
    /// [`ForgetLeaderError::LeaseBasedReads`] with lease-based reads, whose
    /// safety rests on voters honouring the lease. Nothing changes then.
    pub fn forget_leader(&mut self) -> Result<(), ForgetLeaderError> {
        self.raft.wake(None);
        let r = self.raft.forget_leader();
        self.checked(r)
    }

    /// Asks the leader for a snapshot, for an application that found its
    /// state machine damaged (raft-rs's `request_snapshot`). Returns the
    /// index the snapshot will reach at least: this node's last index, an
    /// entry of the current term. Until the snapshot arrives (in a
    /// `Ready`, restored like any other) the node appends nothing, so the
    /// snapshot covers every entry it acknowledged, and it repeats the
    /// request to whoever leads. Committed entries up to the commit index
    /// may still be handed out meanwhile: the application decides whether
    /// to apply them to its damaged state. The request is dropped if this
    /// node campaigns, and lost in a restart ([`Status`] shows it while it
    /// is outstanding).
    ///
    /// The leader sends a snapshot from its storage once one reaches the
    /// index, or asks its application for one
    /// ([`Ready::snapshot_request`](crate::Ready)). The snapshot may end
    /// at the index of this node's own newest snapshot: storage must let a
    /// received snapshot at the same index replace it ([`MemoryStorage`](crate::MemoryStorage)
    /// does). If the term changes before it arrives, the node appends
    /// again until its log holds an entry of the new term, and asks the new
    /// leader from there (the old index may be an entry it does not have).
    ///
    /// # Errors
    /// A [`RequestSnapshotError`] saying why nothing was requested: not a
    /// follower, no leader known, a request or a snapshot already on its
    /// way, or a log whose last entry is not of the current term yet.
    pub fn request_snapshot(&mut self) -> Result<Index, RequestSnapshotError> {
        self.raft.wake(None);
        let r = self.raft.request_snapshot();
        self.checked(r)
    }

    /// Tells the leader that messages to `id` cannot be delivered: it stops
    /// streaming to it and probes instead.
    pub fn report_unreachable(&mut self, id: NodeId) {
        self.raft.wake(None);
        self.raft.report_unreachable(id);
    }

    /// Tells the leader how sending a snapshot to `id` ended.
    pub fn report_snapshot(&mut self, id: NodeId, status: SnapshotStatus) {
        self.raft.wake(None);
        self.raft
            .report_snapshot(id, status == SnapshotStatus::Failed);
    }

    /// True while this node is quiesced
    /// ([`Config::quiesce_after_ticks`](crate::Config)): it ignores ticks,
    /// so a host may stop ticking it until this turns false again, which
    /// only a message, a local request or [`RawNode::wake`] does. Check it
    /// after handling a `Ready`.
    pub fn is_quiesced(&self) -> bool {
        self.raft.is_quiesced()
    }

    /// True if the next [`RawNode::tick`] makes this node campaign: its
    /// election timeout elapses with the tick (paper §5.2). A host of many
    /// groups may hold that tick back until few of its groups are in an
    /// election, so that thousands of first elections do not flood the
    /// network at once: a node whose clock stands still delays only its
    /// own election, and a voter's clock running slow is always safe
    /// (paper §5.6: safety does not depend on timing; with leases, thesis
    /// §6.4.1, only the leader's clock must not run slow). Any message
    /// from a leader, or a vote granted, resets the timeout.
    pub fn election_due(&self) -> bool {
        self.raft.election_due()
    }

    /// Wakes a quiesced node: it counts ticks again, and a follower tells
    /// its leader, which wakes too. Call it when the host suspects a peer
    /// of this group is down (its connection broke, its node stopped
    /// answering): a follower whose leader died then times out and
    /// campaigns. Requests (propose, read, transfer, campaign, ...) and
    /// messages wake a node by themselves; waking an awake node does
    /// nothing.
    pub fn wake(&mut self) {
        self.raft.wake(None);
        self.checked(())
    }

    /// The current term, vote and commit index, without building a
    /// [`Status`] (which copies every follower's progress).
    pub fn hard_state(&self) -> HardState {
        self.raft.hard_state()
    }

    /// The known leader and this node's role, without building a
    /// [`Status`].
    pub fn soft_state(&self) -> SoftState {
        soft_state(&self.raft)
    }

    /// The node's observable state.
    pub fn status(&self) -> Status {
        let r = &self.raft;
        let progress = r.progress_status();
        Status {
            id: r.id(),
            hard_state: r.hard_state(),
            soft_state: soft_state(r),
            applied: r.log().applied(),
            last_index: r.log().last_index().unwrap_or(Index::ZERO),
            transferee: r.transferee(),
            pending_snapshot_request: r.pending_snapshot_index(),
            quiesced: r.is_quiesced(),
            witness: r.is_witness(),
            progress,
        }
    }

    /// The storage this node reads.
    pub fn store(&self) -> &S {
        self.raft.log().storage()
    }

    /// The protocol state, for the test kit's checkers.
    #[cfg(feature = "testkit")]
    pub(crate) fn raft(&self) -> &Raft<S> {
        &self.raft
    }
}

fn soft_state<S: Storage>(r: &Raft<S>) -> SoftState {
    SoftState {
        leader: r.leader(),
        role: r.role_kind(),
    }
}

impl<S: Storage> std::fmt::Debug for RawNode<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawNode")
            .field("id", &self.raft.id())
            .field("term", &self.raft.term())
            .field("role", &self.raft.role_kind())
            .field("commit", &self.raft.log().committed())
            .finish_non_exhaustive()
    }
}

// Keep RoleKind reachable for docs of SoftState.
const _: Option<RoleKind> = None;
