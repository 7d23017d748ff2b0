//! One group's loop: a task on the host's scheduler that owns the group's
//! `RawNode` and does, turn by turn, what the Ready contract of raft-core
//! asks (see `raft_core::Ready`): send, persist, send what vouches for the
//! persisted state, apply, advance.

mod balance;
mod envelope;
mod events;
mod health;
mod mailbox;
mod reads;
mod reconfig;
mod replica;
mod safety;
mod snapshot;
mod waiters;
mod writes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::TryRecvError;
use raft_core::{Index, LogId, NodeId, Proposal, Ready, RoleKind, SnapshotStatus, StepError};
use raft_storage::{CompactionPolicy, DiskStorage};
use tokio::sync::watch;

use crate::background::{SnapshotPool, Writer};
use crate::elections::{Elections, Pacer};
use crate::error::{
    FatalError, ForgetLeaderError, ProposeError, ReadError, RequestSnapshotError, StartError,
};
use crate::metrics::{Counter, Histogram, Recorder};
use crate::options::GroupOptions;
use crate::reply::Reply;
use crate::scheduler::{Task, Turn, Waker};
use crate::state_machine::StateMachine;
use crate::status::{FollowerStatus, GroupStatus};
use crate::transport::{PeerEvent, Transport};
use raft_core::GroupId;

use balance::Balance;
pub(crate) use events::Event;
pub use events::MembershipChange;
use health::Health;
pub(crate) use mailbox::{Inbound, Mailbox, Refused, channel as mailbox_channel};
pub(crate) use reads::Reads;
pub(crate) use reconfig::Reconfig;
pub(crate) use replica::{PeerChange, Replica, Waiters};
pub(crate) use snapshot::{Job, Outcome, SnapshotWorker};
use writes::AsyncWrites;

/// The most ticks one wake-up catches up on (see [`ticks_due`]).
const MAX_CATCH_UP_TICKS: u32 = 1000;
/// Events drained from the queue before a Ready is built.
const MAX_EVENTS_PER_READY: usize = 8192;

/// Why a group's loop ended without a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// Asked to stop ([`GroupHandle::shutdown`](crate::GroupHandle::shutdown)).
    Shutdown,
    /// This member applied its own removal from the group.
    Removed,
}

/// The reply to a proposal.
pub(crate) type ProposeReply<O> = Reply<Result<O, ProposeError>>;

/// How the loop ended, published once.
pub(crate) type Exit = Option<Result<StopReason, FatalError>>;

/// The loop's state. Built by [`GroupLoop::new`], run turn by turn by the
/// host's scheduler ([`Task::turn`]).
pub(crate) struct GroupLoop<S: StateMachine> {
    pub(crate) group: GroupId,
    pub(crate) me: NodeId,
    pub(crate) node: raft_core::RawNode<Arc<DiskStorage>>,
    pub(crate) storage: Arc<DiskStorage>,
    pub(crate) replica: Replica<S>,
    pub(crate) waiters: Waiters<S::Output>,
    pub(crate) reads: Reads,
    reconfig: Reconfig,
    balance: Balance,
    health: Health,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) recorder: Arc<dyn Recorder>,
    pub(crate) opts: GroupOptions,
    rx: Inbound<S>,
    /// With `async_storage_writes`: the writer thread.
    writes: Option<AsyncWrites>,
    snapshots: SnapshotWorker<S::Image>,
    last_snapshot: LogId,
    /// A leader asked for a snapshot at an applied index of at least this.
    snapshot_requested: Option<Index>,
    leader: Option<NodeId>,
    /// Set when this member applied its own removal: ticks before it stops
    /// (it lingers to hand leadership over and spread the commit).
    removed_ticks_left: Option<u32>,
    pub(crate) stopping: bool,
    /// The last turn handled a Ready that held something: another may
    /// follow at once.
    busy: bool,
    /// Ticks since the loop started.
    ticks: u64,
    /// The next proposal's request number (see the envelope); starts
    /// random, so that a late reply to a previous run matches nothing.
    next_request: u64,
    status: watch::Sender<GroupStatus>,
    exit: watch::Sender<Exit>,
    /// When the next tick is due.
    next_tick: Instant,
    /// This group's place among the host's elections.
    pacer: Pacer,
    /// Runs once, when the loop has ended (unregisters it from the inbox,
    /// tells the host it stopped).
    on_end: Option<Box<dyn FnOnce() + Send>>,
}

/// What [`GroupLoop::new`] needs besides the options.
pub(crate) struct Parts<S: StateMachine> {
    pub(crate) me: NodeId,
    pub(crate) node: raft_core::RawNode<Arc<DiskStorage>>,
    pub(crate) storage: Arc<DiskStorage>,
    pub(crate) replica: Replica<S>,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) recorder: Arc<dyn Recorder>,
    pub(crate) rx: Inbound<S>,
    pub(crate) status: watch::Sender<GroupStatus>,
    pub(crate) exit: watch::Sender<Exit>,
    pub(crate) first_read_ctx: u64,
    pub(crate) first_request: u64,
    /// The host's election permits.
    pub(crate) elections: Arc<Elections>,
    /// Wakes this loop's task.
    pub(crate) waker: Waker,
    pub(crate) writer: Arc<Writer>,
    pub(crate) snapshot_pool: Arc<SnapshotPool>,
    pub(crate) on_end: Box<dyn FnOnce() + Send>,
}

impl<S: StateMachine> GroupLoop<S> {
    pub(crate) fn new(opts: GroupOptions, parts: Parts<S>) -> Result<GroupLoop<S>, StartError> {
        let group = opts.group;
        let snapshots = SnapshotWorker::new(
            Arc::clone(&parts.storage),
            parts.snapshot_pool,
            parts.waker.clone(),
        );
        let pacer = Pacer::new(
            parts.elections,
            parts.waker.clone(),
            opts.election_timeout_ticks,
        );
        let last_snapshot = parts.storage.snapshot_metadata().log_id();
        let writes = opts.async_storage_writes.then(|| {
            AsyncWrites::new(group, parts.writer, Arc::clone(&parts.storage), parts.waker)
        });
        let lp = GroupLoop {
            group,
            me: parts.me,
            node: parts.node,
            storage: parts.storage,
            replica: parts.replica,
            waiters: Waiters::default(),
            reads: Reads::new(parts.first_read_ctx),
            reconfig: Reconfig::new(&opts),
            balance: Balance::new(opts.preferred_leader, opts.election_timeout_ticks),
            // Two election timeouts: a peer missing that long is down.
            health: Health::new(u64::from(opts.election_timeout_ticks) * 2),
            transport: parts.transport,
            recorder: parts.recorder,
            rx: parts.rx,
            writes,
            snapshots,
            last_snapshot,
            snapshot_requested: None,
            leader: None,
            removed_ticks_left: None,
            stopping: false,
            busy: false,
            next_request: parts.first_request,
            ticks: 0,
            status: parts.status,
            exit: parts.exit,
            next_tick: Instant::now() + opts.tick_interval,
            pacer,
            on_end: Some(parts.on_end),
            opts,
        };
        lp.sync_peers_from_members();
        lp.publish_status(true);
        Ok(lp)
    }

    /// Answers every waiter and publishes how the loop ended.
    fn end(&mut self, result: Result<StopReason, FatalError>) {
        if let Err(e) = &result {
            tracing::error!(group = %self.group, error = %e, "group stopped on a failure");
        }
        self.waiters.interrupt_all();
        self.reads.fail_all(&ReadError::Stopped);
        self.reconfig.stop();
        // Requests still queued were never seen: nothing happened.
        while let Ok(ev) = self.rx.try_recv() {
            ev.refuse_stopped();
        }
        self.status.send_modify(|s| s.running = false);
        let _ = self.exit.send(Some(result));
        if let Some(on_end) = self.on_end.take() {
            on_end();
        }
    }

    /// One turn: ticks that are due, the events queued (up to
    /// [`MAX_EVENTS_PER_READY`]), one Ready. `Some` once the loop ends.
    fn turn_inner(&mut self) -> Result<Option<StopReason>, FatalError> {
        self.take_write_reports()?;
        // Ticks first: a request that waited out a pause must meet the
        // node's clock as it is now, not as it was when it stopped.
        let now = Instant::now();
        if now >= self.next_tick {
            let tick = self.opts.tick_interval;
            // Only a leader catches up on missed ticks: its lease must not
            // outlive the time it stands for. A voter's clock may run slow
            // (that only delays its vote for another), and a follower
            // starved on a loaded host that caught up would time out
            // before it read the heartbeats queued for it, and campaign:
            // load would breed elections.
            let ticks = if self.node.soft_state().role == RoleKind::Leader {
                ticks_due(now, self.next_tick, tick)
            } else {
                1
            };
            self.next_tick = now + tick;
            for _ in 0..ticks {
                if let Some(reason) = self.on_tick()? {
                    self.finish()?;
                    return Ok(Some(reason));
                }
            }
        }
        for _ in 0..MAX_EVENTS_PER_READY {
            match self.rx.try_recv() {
                Ok(ev) => self.handle_event(ev)?,
                Err(TryRecvError::Empty) => break,
                // Every handle and the inbox are gone: nobody can ask again.
                Err(TryRecvError::Disconnected) => {
                    self.stopping = true;
                    break;
                }
            }
        }
        // Reads wait for a leader to confirm them (until the caller's
        // timeout) rather than fail at once during an election.
        if self.leader.is_some() && self.reads.start_round(&mut self.node, self.ticks) {
            self.count(Counter::ReadRounds, 1);
        }
        if self.node.has_ready() {
            self.busy = self.handle_ready()?;
        } else {
            self.busy = false;
        }
        self.poll_snapshot()?;
        if self.stopping {
            self.finish()?;
            return Ok(Some(StopReason::Shutdown));
        }
        Ok(None)
    }

    /// Handles every write report waiting.
    fn take_write_reports(&mut self) -> Result<(), FatalError> {
        let Some(writes) = &self.writes else {
            return Ok(());
        };
        let reports: Vec<_> = writes.take_reports().collect();
        for r in reports {
            self.on_write_report(Some(r))?;
        }
        Ok(())
    }

    /// Readys through the reported number are durable: tell raft-core and
    /// send the messages that vouch for them.
    fn on_write_report(
        &mut self,
        report: Option<Result<raft_core::ReadyNumber, raft_storage::PersistError>>,
    ) -> Result<(), FatalError> {
        let number = match report {
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(self.fatal("persist", e)),
            None => return Err(self.fatal("persist", writes::WriteError::Stopped)),
        };
        self.node
            .on_persisted(number)
            .map_err(|e| self.fatal("on_persisted", e))?;
        let messages = self
            .writes
            .as_mut()
            .expect("reports come from the writer")
            .release(number);
        self.send(messages);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), FatalError> {
        while self.node.has_ready() && self.handle_ready()? {}
        if let Some(writes) = self.writes.take() {
            writes.finish();
        }
        if let Some(outcome) = self.snapshots.finish() {
            self.on_snapshot_outcome(outcome)?;
        }
        self.storage.sync().map_err(|e| self.fatal("final sync", e))
    }

    /// True when this group needs no ticks: its node is quiesced
    /// ([`raft_core::Config::quiesce_after_ticks`]) or waits for an
    /// election permit (which wakes it), and nothing of the host's waits
    /// on the clock.
    fn may_sleep(&self) -> bool {
        (self.node.is_quiesced() || self.pacer.is_waiting())
            && self.waiters.is_empty()
            && self.reads.is_empty()
            && self.removed_ticks_left.is_none()
            && self.reconfig.is_idle(&self.replica)
            && self.balance.is_settled(&self.node)
            && !self.snapshots.is_busy()
    }

    fn on_tick(&mut self) -> Result<Option<StopReason>, FatalError> {
        // The tick that would start an election waits for a permit.
        let was_waiting = self.pacer.is_waiting();
        if self.pacer.may_tick(self.node.election_due()) {
            self.node.tick().map_err(|e| self.fatal("tick", e))?;
            self.pacer.ticked();
        } else if !was_waiting {
            self.count(Counter::ElectionsHeldBack, 1);
        }
        self.ticks += 1;
        self.health.tick();
        // An election timeout without an answer: ask again.
        self.reads
            .retry_stale(self.ticks, u64::from(self.opts.election_timeout_ticks));
        self.waiters.proposals.expire(Instant::now());
        self.waiters.changes.prune_abandoned();
        self.reconfig
            .on_tick(&mut self.node, &self.replica, &self.health);
        self.balance.on_tick(&mut self.node, &self.health);
        self.publish_followers();
        if let Some(left) = self.removed_ticks_left.as_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                tracing::info!(group = %self.group, "removed from the group; stopping");
                return Ok(Some(StopReason::Removed));
            }
        }
        Ok(None)
    }

    fn handle_event(&mut self, ev: Event<S>) -> Result<(), FatalError> {
        match ev {
            Event::Peer(PeerEvent::Message(m)) => self.step(m)?,
            Event::Peer(PeerEvent::Unreachable(id)) => self.node.report_unreachable(id),
            Event::Peer(PeerEvent::HostDown(id)) => self.on_host_down(id),
            Event::Peer(PeerEvent::RemovedBy(id)) => self.on_removed_by(id),
            Event::Peer(PeerEvent::SnapshotStatus(id, status)) => {
                match status {
                    SnapshotStatus::Finished => self.count(Counter::SnapshotsSent, 1),
                    _ => tracing::info!(group = %self.group, to = %id, "snapshot send failed"),
                }
                self.node.report_snapshot(id, status);
            }
            Event::Shutdown => self.stopping = true,
            Event::Propose { data, reply } => self.propose(data, reply),
            Event::Read { reply } => self.reads.queue(reply),
            Event::Membership { change, reply } => self.reconfig.propose(
                &mut self.node,
                (&self.replica, &self.health),
                &mut self.waiters,
                change,
                reply,
            ),
            Event::Transfer { to, reply } => self.reconfig.transfer(&mut self.node, to, reply),
            Event::ForgetLeader { reply } => reply.send(
                self.node
                    .forget_leader()
                    .map_err(ForgetLeaderError::Refused),
            ),
            Event::RequestSnapshot { reply } => reply.send(
                self.node
                    .request_snapshot()
                    .map_err(RequestSnapshotError::Refused),
            ),
        }
        Ok(())
    }

    /// The host of `id` went silent (`crate::liveness`): a leader probes
    /// it again rather than stream to it.
    fn on_host_down(&mut self, id: NodeId) {
        if !host_down_concerns(self.node.is_quiesced(), self.node.soft_state().leader, id) {
            return;
        }
        if self.replica.members().addrs().contains_key(&id) {
            tracing::debug!(group = %self.group, peer = %id, "peer host reported down");
            self.node.report_unreachable(id);
        }
    }

    /// Peer `by` refused this node as removed: if `by` is a member, this
    /// member was removed too (the peer applied it, ids are never
    /// reused), so it stops as after applying its own removal.
    fn on_removed_by(&mut self, by: NodeId) {
        if self.removed_ticks_left.is_some() || !self.replica.members().addrs().contains_key(&by) {
            return;
        }
        tracing::warn!(group = %self.group, peer = %by, "a member refuses this node as removed; stopping");
        self.removed_ticks_left = Some(self.opts.election_timeout_ticks * 2);
    }

    fn propose(&mut self, data: bytes::Bytes, reply: ProposeReply<S::Output>) {
        if self.removed_ticks_left.is_some() || self.stopping {
            return reply.send(Err(ProposeError::Stopped));
        }
        if data.is_empty() {
            return reply.send(Err(ProposeError::EmptyCommand));
        }
        let request = self.next_request;
        self.next_request = self.next_request.wrapping_add(1);
        let origin = envelope::Origin {
            proposer: self.me,
            request,
        };
        // A little longer than the caller waits: its own timeout answers.
        let deadline = Instant::now() + self.opts.request_timeout * 2;
        match self.node.propose(envelope::wrap(origin, &data)) {
            Ok(proposal) => {
                self.count(Counter::Proposals, 1);
                let index = match proposal {
                    Proposal::Appended { id } => Some(id.index),
                    _ => None,
                };
                self.waiters
                    .proposals
                    .insert(request, index, reply, deadline);
            }
            Err(e) => {
                self.count(Counter::ProposalsRefused, 1);
                reply.send(Err(match e {
                    raft_core::ProposeError::NoLeader => ProposeError::NotLeader { leader: None },
                    raft_core::ProposeError::ForwardingDisabled { leader } => {
                        ProposeError::NotLeader {
                            leader: Some(leader),
                        }
                    }
                    other => ProposeError::Dropped(other),
                }));
            }
        }
    }

    fn step(&mut self, m: raft_core::Message) -> Result<(), FatalError> {
        let from = m.from;
        self.health.heard(from);
        match self.node.step(m) {
            Ok(()) => Ok(()),
            Err(StepError::Storage(e)) => Err(self.fatal("step", e)),
            Err(e @ (StepError::InvalidMessage { .. } | StepError::TermTooFarAhead { .. })) => {
                let counter = match e {
                    StepError::InvalidMessage { .. } => Counter::PeerMessagesInvalid,
                    _ => Counter::PeerMessagesTermTooFarAhead,
                };
                self.count(counter, 1);
                tracing::warn!(group = %self.group, %from, error = %e, "peer message refused");
                Ok(())
            }
            Err(e) => {
                tracing::debug!(group = %self.group, %from, error = %e, "message ignored");
                Ok(())
            }
        }
    }

    /// Handles one Ready; true if it held anything (so another may follow).
    fn handle_ready(&mut self) -> Result<bool, FatalError> {
        let mut rd = self.node.ready().map_err(|e| self.fatal("ready", e))?;
        let asynchronous = self.writes.is_some();
        if rd.is_empty() {
            if !asynchronous {
                self.node.advance().map_err(|e| self.fatal("advance", e))?;
            }
            return Ok(false);
        }
        if let Some(ss) = rd.soft_state {
            self.on_leader(ss.leader);
        }
        // Step 1: a leader's appends travel while it writes (thesis §10.2.1).
        self.send(std::mem::take(&mut rd.messages));
        // Steps 2 and 3: persist (a snapshot from the leader, entries, hard
        // state), then send what vouches for it: here, or once the writer
        // thread reports it durable.
        let snapshot = if asynchronous {
            self.persist_async(&mut rd)?
        } else {
            self.persist(&rd)?;
            self.send(std::mem::take(&mut rd.persisted_messages));
            rd.snapshot.take()
        };
        if let Some(snapshot) = snapshot {
            self.restore(&snapshot)?;
        }
        self.reads.confirmed(std::mem::take(&mut rd.read_states));
        // Step 4: apply, and serve the reads that were waiting for it.
        // (With asynchronous writes, raft-core hands out only entries that
        // are durable here.)
        self.apply(std::mem::take(&mut rd.committed_entries));
        let served = self.reads.release(self.replica.applied());
        if served > 0 {
            self.count(Counter::Reads, served as u64);
        }
        if asynchronous {
            self.node
                .on_applied(self.replica.applied())
                .map_err(|e| self.fatal("on_applied", e))?;
        } else {
            self.node.advance().map_err(|e| self.fatal("advance", e))?;
        }
        if let Some(request) = rd.snapshot_request {
            tracing::info!(group = %self.group, min_index = %request.min_index, to = %request.to, "a follower needs a newer snapshot");
            self.snapshot_requested = Some(request.min_index);
        }
        self.maybe_snapshot();
        self.publish_status(false);
        Ok(true)
    }

    fn send(&self, messages: Vec<raft_core::Message>) {
        if !messages.is_empty() {
            self.transport.send(self.group, messages);
        }
    }

    fn persist(&mut self, rd: &Ready) -> Result<(), FatalError> {
        let started = Instant::now();
        self.storage
            .persist(rd)
            .map_err(|e| self.fatal("persist", e))?;
        if rd.must_sync {
            self.recorder
                .observe(self.group, Histogram::Persist, started.elapsed());
        }
        Ok(())
    }

    /// Hands the Ready's durable part to the writer thread; returns the
    /// snapshot it carries (restored now: the state machine is rebuilt
    /// from storage after a crash anyway).
    fn persist_async(&mut self, rd: &mut Ready) -> Result<Option<raft_core::Snapshot>, FatalError> {
        let snapshot = rd.snapshot.clone();
        let batch = rd.take_persist_batch();
        let persisted = std::mem::take(&mut rd.persisted_messages);
        if batch.is_empty() && persisted.is_empty() {
            return Ok(snapshot);
        }
        let writes = self.writes.as_mut().expect("asynchronous writes");
        if let Err(e) = writes.submit(batch, persisted) {
            return Err(self.fatal("persist", e));
        }
        Ok(snapshot)
    }

    fn restore(&mut self, snapshot: &raft_core::Snapshot) -> Result<(), FatalError> {
        let meta = &snapshot.metadata;
        tracing::info!(group = %self.group, index = %meta.index, term = %meta.term, "restoring a snapshot from the leader");
        let changes = self
            .replica
            .restore(snapshot, &mut self.waiters)
            .map_err(|e| self.fatal("restore a snapshot", e))?;
        self.last_snapshot = meta.log_id();
        self.apply_peer_changes(changes);
        self.count(Counter::SnapshotsRestored, 1);
        // The snapshot's membership replaces ours: show it (a restarted
        // learner whose promotion came in the snapshot showed itself a
        // learner for good, and the fault run waited on it).
        self.publish_status(true);
        Ok(())
    }

    fn apply(&mut self, entries: Vec<raft_core::Entry>) {
        if entries.is_empty() {
            return;
        }
        let started = Instant::now();
        let mut applied =
            self.replica
                .apply(entries, &mut self.node, &self.storage, &mut self.waiters);
        self.recorder
            .observe(self.group, Histogram::Apply, started.elapsed());
        self.count(Counter::EntriesApplied, applied.entries);
        self.apply_peer_changes(applied.peer_changes);
        if applied.removed_self && self.removed_ticks_left.is_none() {
            // Linger two election timeouts: a removed leader hands over
            // leadership and the survivors learn the commit.
            self.removed_ticks_left = Some(self.opts.election_timeout_ticks * 2);
        }
        if applied.membership_changed {
            self.publish_status(true);
        }
        // After the status shows the change, so a caller that looks at
        // the status once answered sees it.
        for (reply, result) in applied.answers.drain(..) {
            reply.send(result);
        }
    }

    fn apply_peer_changes(&self, changes: Vec<PeerChange>) {
        for change in changes {
            match change {
                PeerChange::Add(id, addr) => self.transport.add_peer(self.group, id, &addr),
                PeerChange::Remove(id) => self.transport.remove_peer(self.group, id),
            }
        }
    }

    /// Tells the transport every member's address (at start).
    fn sync_peers_from_members(&self) {
        for (id, addr) in self.replica.members().addrs() {
            if *id != self.me {
                self.transport.add_peer(self.group, *id, addr);
            }
        }
    }

    fn on_leader(&mut self, leader: Option<NodeId>) {
        if leader == self.leader {
            return;
        }
        self.count(Counter::LeaderChanges, 1);
        tracing::info!(group = %self.group, leader = ?leader, "leader changed");
        self.leader = leader;
        self.reads.leader_changed();
        // So that a transfer's caller, once answered, sees the new leader.
        self.publish_status(false);
        self.reconfig.leader_changed(leader);
    }

    /// Starts a snapshot every `snapshot_interval_entries` applied
    /// entries, or when a follower needs a newer one than there is
    /// (etcd's `maybeTriggerSnapshot`), unless one is being written.
    fn maybe_snapshot(&mut self) {
        let applied = self.replica.applied();
        let last = self.last_snapshot.index;
        let requested = self.snapshot_requested.is_some_and(|min| applied >= min);
        let due = applied.get() >= last.get() + self.opts.snapshot_interval_entries;
        if applied <= last || !(due || requested) || self.snapshots.is_busy() {
            return;
        }
        self.snapshot_requested = None;
        let (header, image) = self.replica.image();
        let policy = CompactionPolicy::new()
            .catch_up_entries(self.opts.catch_up_entries)
            .snapshots_kept(self.opts.snapshots_kept);
        self.snapshots.start(Job {
            index: applied,
            conf_state: self.replica.conf_state().clone(),
            header,
            image,
            policy,
        });
    }

    fn poll_snapshot(&mut self) -> Result<(), FatalError> {
        match self.snapshots.poll() {
            Some(outcome) => self.on_snapshot_outcome(outcome),
            None => Ok(()),
        }
    }

    fn on_snapshot_outcome(&mut self, outcome: Outcome) -> Result<(), FatalError> {
        match outcome {
            Outcome::Taken { metadata, elapsed } => {
                tracing::info!(group = %self.group, index = %metadata.index, ms = elapsed.as_millis() as u64, "snapshot taken");
                if metadata.index > self.last_snapshot.index {
                    self.last_snapshot = metadata.log_id();
                }
                self.count(Counter::SnapshotsTaken, 1);
                self.recorder
                    .observe(self.group, Histogram::Snapshot, elapsed);
                self.publish_status(false);
                Ok(())
            }
            Outcome::Skipped(why) => {
                tracing::info!(group = %self.group, reason = %why, "snapshot skipped");
                Ok(())
            }
            Outcome::Failed(e) => Err(self.fatal("snapshot", e)),
        }
    }

    /// Publishes the status; `membership` also refreshes the member lists.
    /// Runs after every Ready, so it copies nothing per follower (that is
    /// [`GroupLoop::publish_followers`], once a tick).
    fn publish_status(&self, membership: bool) {
        let hs = self.node.hard_state();
        let ss = self.node.soft_state();
        let applied = self.replica.applied();
        let snapshot = self.last_snapshot;
        self.status.send_modify(|s| {
            s.term = hs.term;
            s.leader = ss.leader;
            s.role = ss.role;
            s.commit = hs.commit;
            s.applied = applied;
            s.snapshot = snapshot;
            if membership {
                let cs = self.replica.conf_state();
                let members = self.replica.members();
                s.voters = cs.voters.iter().copied().collect();
                s.learners = cs.learners.iter().copied().collect();
                s.promoting = members.to_promote().keys().copied().collect();
                s.addrs = members.addrs().clone();
                s.removed = members.removed().clone();
            }
        });
    }

    /// Publishes the leader's view of its followers (empty elsewhere):
    /// once a tick, since their health is measured in ticks.
    fn publish_followers(&self) {
        let progress = self.node.status().progress.unwrap_or_default();
        self.status.send_if_modified(|s| {
            let before = std::mem::take(&mut s.followers);
            for (id, p) in progress.iter().filter(|(id, _)| **id != self.me) {
                let follower = FollowerStatus {
                    matched: p.matched,
                    active: self.health.is_healthy(*id),
                    learner: p.is_learner,
                };
                s.followers.insert(*id, follower);
            }
            s.followers != before
        });
    }

    pub(crate) fn count(&self, counter: Counter, n: u64) {
        self.recorder.count(self.group, counter, n);
    }

    fn fatal(&self, what: &'static str, e: impl std::error::Error + 'static) -> FatalError {
        FatalError::new(self.group, what, &e)
    }
}

impl<S: StateMachine> Task for GroupLoop<S> {
    fn turn(&mut self) -> Turn {
        let ended = match self.turn_inner() {
            Ok(None) => None,
            Ok(Some(reason)) => Some(Ok(reason)),
            Err(e) => Some(Err(e)),
        };
        if let Some(result) = ended {
            self.end(result);
            return Turn::Done;
        }
        let soft = self.node.soft_state();
        self.pacer
            .settle(soft.leader.is_some(), self.node.election_due());
        let quiesced = self.node.is_quiesced();
        self.status
            .send_if_modified(|s| std::mem::replace(&mut s.quiesced, quiesced) != quiesced);
        // Events beyond one turn's share, or a Ready that may be followed
        // by another: a turn soon, behind the other groups.
        if self.busy || !self.rx.is_empty() {
            Turn::Again
        } else if self.may_sleep() {
            // Quiesced (or waiting for an election permit) with nothing
            // that ticks would time out or drive: no timer at all, until a
            // message, a request, a lost peer or a permit wakes the task
            // (an idle group then costs nothing). A quiesced leader
            // catches up on the ticks missed meanwhile at its next turn
            // (see `ticks_due`); the node ignores ticks until it wakes.
            Turn::Idle(None)
        } else {
            Turn::Idle(Some(self.next_tick))
        }
    }
}

/// Ticks owed at `now` when the next was due at `due`: one, plus every
/// tick missed while the process was stopped (SIGSTOP, a VM pause) or
/// starved, so that a lease measured in ticks never outlives the time it
/// stands for (thesis §6.4.1 assumes clocks that advance). Bounded by
/// [`MAX_CATCH_UP_TICKS`]: past an election timeout or two, more ticks
/// change nothing.
fn ticks_due(now: Instant, due: Instant, tick: Duration) -> u32 {
    let late = now.saturating_duration_since(due);
    let missed = late.as_nanos() / tick.as_nanos().max(1);
    u32::try_from(missed.saturating_add(1))
        .unwrap_or(u32::MAX)
        .min(MAX_CATCH_UP_TICKS)
}

/// Whether a report that the host of `down` went silent concerns a group
/// that is `quiesced` and knows `leader`. A quiesced group wakes only if its
/// leader lived there: it must elect another. A quiesced leader has nothing
/// to send a follower that went down, and waking every group of the host
/// on one report (maybe false: a peer too busy to answer in time) would
/// have them all heartbeat at once, which is what makes a busy peer late.
fn host_down_concerns(quiesced: bool, leader: Option<NodeId>, down: NodeId) -> bool {
    !quiesced || leader == Some(down)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiesced_group_wakes_for_a_silent_host_only_if_its_leader_lived_there() {
        let [a, b] = [1, 2].map(|n| NodeId::new(n).expect("non-zero"));
        assert!(host_down_concerns(true, Some(a), a));
        assert!(!host_down_concerns(true, Some(a), b));
        assert!(!host_down_concerns(true, None, b));
        // An awake group always hears of it (a leader probes the peer).
        assert!(host_down_concerns(false, Some(a), b));
        assert!(host_down_concerns(false, None, b));
    }

    #[test]
    fn a_wake_up_on_time_owes_one_tick() {
        let due = Instant::now();
        let tick = Duration::from_millis(100);
        assert_eq!(ticks_due(due, due, tick), 1);
        assert_eq!(ticks_due(due + Duration::from_millis(99), due, tick), 1);
    }

    #[test]
    fn a_wake_up_after_a_pause_owes_every_tick_it_missed() {
        let due = Instant::now();
        let tick = Duration::from_millis(100);
        assert_eq!(ticks_due(due + Duration::from_millis(2050), due, tick), 21);
        assert_eq!(
            ticks_due(due + Duration::from_secs(3600), due, tick),
            MAX_CATCH_UP_TICKS
        );
    }
}
