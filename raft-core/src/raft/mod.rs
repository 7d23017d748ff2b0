//! The protocol state machine. `step` applies the term rules every message
//! goes through (paper §5.1) and dispatches by role; the handlers live in
//! one file per concern.

mod election;
mod follow;
mod membership;
mod output;
mod quiesce;
mod read;
mod replicate;
mod request_snapshot;
mod role;
mod transfer;
mod witness;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::{Config, ReadOnlyOption};
use crate::error::{NewError, StepError};
use crate::log::RaftLog;
use crate::message::{AppendResponse, Message, MessageBody, VoteResponse};
use crate::storage::{Storage, StorageError};
use crate::tracker::Membership;
use crate::types::{HardState, Index, NodeId, Term};

pub use read::ReadState;
pub use replicate::Proposal;
pub use role::RoleKind;
pub(crate) use role::{LeaderState, Role};

/// Why a message was ignored. Logged, never an error: stale and duplicate
/// messages are normal in an asynchronous network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ignored {
    /// From an older term (paper §5.1).
    StaleTerm,
    /// A vote request while this node still hears from a leader
    /// (CheckQuorum, thesis §4.2.3).
    InLease,
    /// Not meaningful in this node's role.
    WrongRole,
    /// An answer to a question this node no longer asks.
    Stale,
    /// A leader asked to overwrite committed entries: a broken peer.
    RewritesCommitted,
    /// A snapshot whose configuration does not include this node.
    SnapshotWithoutSelf,
    /// A snapshot whose configuration names this node a witness though it
    /// runs with a state machine, or a full voter though it is a witness.
    SnapshotWitnessMismatch,
}

/// A snapshot this follower asked its leader for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PendingSnapshotRequest {
    /// The snapshot must reach this index: the last index when asked, an
    /// entry of `term`.
    index: Index,
    /// The term the request was made in. In a later term the index may be
    /// an entry the new leader does not have: the request is made again
    /// once the log holds an entry of the new term.
    term: Term,
}

/// Messages produced while handling input, split by when they may be sent.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// May be sent at once (a leader's appends go out in parallel with its
    /// own write, thesis §10.2.1).
    now: Vec<Message>,
    /// Must wait until this node's Ready is durable: they vouch for its
    /// log or vote (paper Figure 2, thesis §3.8).
    after_persist: Vec<Message>,
}

impl Outbox {
    pub(crate) fn push(&mut self, m: Message) {
        debug_assert_ne!(m.from, m.to, "a node never messages itself");
        if m.body.needs_durable_state() {
            self.after_persist.push(m);
        } else {
            self.now.push(m);
        }
    }
}

/// A leader's view of its node: the shared state, borrowed field by field
/// next to the [`LeaderState`] the role holds, so leader-only handlers
/// state their role in their type instead of matching on it (a split
/// borrow, made by [`Raft::lead`]).
pub(crate) struct Leader<'a, S> {
    id: NodeId,
    /// A leader never changes its term (a higher one makes it step down,
    /// outside this view).
    term: Term,
    log: &'a mut RaftLog<S>,
    membership: &'a Membership,
    out: &'a mut Outbox,
    read_states: &'a mut Vec<ReadState>,
    cfg: &'a Config,
    election_elapsed: &'a mut u32,
    ticks: u64,
    state: &'a mut LeaderState,
    /// A handler gave up leadership: the node becomes a follower of its
    /// term as soon as the view is released (nothing a leader does may
    /// follow in the same handler).
    step_down: bool,
}

impl<S> Leader<'_, S> {
    /// A message from this leader at its term.
    fn send(&mut self, to: NodeId, body: MessageBody) {
        self.out.push(Message {
            from: self.id,
            to,
            term: self.term,
            body,
        });
    }

    /// Gives up leadership once the handler returns.
    fn step_down(&mut self) {
        self.step_down = true;
    }

    fn ignore(&self, m: &Message, reason: Ignored) {
        log_ignored(self.id, m, reason);
    }
}

/// One node's protocol state.
pub(crate) struct Raft<S> {
    id: NodeId,
    /// Invariant: never decreases.
    term: Term,
    /// Who this node voted for in `term`.
    vote: Option<NodeId>,
    log: RaftLog<S>,
    role: Role,
    membership: Membership,
    out: Outbox,
    /// Reads answered and not yet handed out in a `Ready`.
    read_states: Vec<ReadState>,
    cfg: Config,
    /// Ticks since the last reset (heard from a leader, started an
    /// election, or — on a leader — since the last CheckQuorum round).
    election_elapsed: u32,
    /// Leader only: ticks since the last heartbeat.
    heartbeat_elapsed: u32,
    /// Drawn from `[election, 2 * election)` at every role change (§5.2).
    randomized_election_timeout: u32,
    /// Ticks since this node started: the clock leader leases are measured
    /// on (thesis §6.4.1).
    ticks: u64,
    /// The application asked for a snapshot and none was installed yet
    /// (`RawNode::request_snapshot`). Invariant: while set, the node is not
    /// a candidate or leader; while active (of the current term), its last
    /// index is the requested one (it appends nothing).
    pending_snapshot_request: Option<PendingSnapshotRequest>,
    /// Ticks are ignored until something wakes this node (`quiesce.rs`).
    /// Invariant: only a leader, or a follower that knows its leader.
    quiesced: bool,
    rng: StdRng,
}

impl<S: Storage> Raft<S> {
    pub(crate) fn new(cfg: Config, storage: S) -> Result<Raft<S>, NewError> {
        cfg.validate()?;
        let init = storage.initial_state()?;
        let mut log = RaftLog::new(storage, cfg.max_committed_size_per_ready)?;
        let hs = init.hard_state;
        if hs.term > Term::MAX || hs.commit > Index::MAX {
            return Err(NewError::HardStateOutOfRange { hard_state: hs });
        }
        let last = log.last_index()?;
        if hs.commit > last {
            return Err(NewError::CommitBeyondLog {
                commit: hs.commit,
                last,
            });
        }
        log.commit_to(hs.commit);
        if cfg.applied > last {
            return Err(NewError::AppliedBeyondLog {
                applied: cfg.applied,
                last,
            });
        }
        // Only committed entries are ever handed out for applying, so an
        // applied index is itself proof that the entries up to it
        // committed. It can be ahead of the persisted commit index: with
        // asynchronous writes the state machine may apply (and snapshot)
        // before the Ready that records the commit is durable. The log
        // holds those entries (they are handed out only once durable), and
        // committed entries are never overwritten (Leader Completeness,
        // paper §5.4).
        log.commit_to(cfg.applied);
        log.applied_to(cfg.applied);
        let mut raft = Raft {
            id: cfg.id,
            term: hs.term,
            vote: hs.vote,
            log,
            role: Role::Follower { leader: None },
            membership: Membership::from_conf_state(&init.conf_state),
            out: Outbox::default(),
            read_states: Vec::new(),
            rng: StdRng::seed_from_u64(cfg.seed),
            cfg,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_timeout: 0,
            ticks: 0,
            pending_snapshot_request: None,
            quiesced: false,
        };
        raft.become_follower(hs.term, None);
        tracing::info!(
            id = %raft.id, term = %raft.term, commit = %raft.log.committed(),
            applied = %raft.log.applied(), last = %last, "raft node started"
        );
        Ok(raft)
    }

    pub(crate) fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed(),
        }
    }

    /// The leader this node currently follows (itself when leader).
    pub(crate) fn leader(&self) -> Option<NodeId> {
        match &self.role {
            Role::Follower { leader } => *leader,
            Role::Leader(_) => Some(self.id),
            Role::PreCandidate(_) | Role::Candidate(_) => None,
        }
    }

    /// True when this node may campaign: it is a voter and not a witness
    /// (a witness's log holds no payloads; it must never lead).
    pub(crate) fn promotable(&self) -> bool {
        !self.cfg.witness && self.membership.can_lead(self.id)
    }

    /// True when this node runs as a witness (`Config::witness`).
    pub(crate) fn is_witness(&self) -> bool {
        self.cfg.witness
    }

    /// True when this node applied its own removal or demotion and may run
    /// the rescue election (see `maybe_rescue_election`). Never a witness,
    /// removed or not: as leader it would send its payload-free log.
    fn may_rescue(&self) -> bool {
        !self.cfg.witness && !self.membership.is_voter(self.id) && self.cfg.step_down_on_removal
    }

    /// A message from this node at its current term.
    pub(crate) fn message(&self, to: NodeId, body: MessageBody) -> Message {
        Message {
            from: self.id,
            to,
            term: self.term,
            body,
        }
    }

    /// The leader's split borrow, if this node leads. Private: a handler
    /// run on it may step down, which only [`Raft::lead_with`] carries out.
    fn as_leader(&mut self) -> Option<Leader<'_, S>> {
        let Raft {
            id,
            term,
            log,
            role,
            membership,
            out,
            read_states,
            cfg,
            election_elapsed,
            ticks,
            ..
        } = self;
        let Role::Leader(state) = role else {
            return None;
        };
        Some(Leader {
            id: *id,
            term: *term,
            log,
            membership,
            out,
            read_states,
            cfg,
            election_elapsed,
            ticks: *ticks,
            state,
            step_down: false,
        })
    }

    /// Runs a leader-only handler on `input`, or gives `input` back if this
    /// node does not lead. A handler that gave up leadership leaves this
    /// node a follower of its term.
    pub(crate) fn lead_with<T, R>(
        &mut self,
        input: T,
        f: impl FnOnce(&mut Leader<'_, S>, T) -> R,
    ) -> Result<R, T> {
        let Some(mut leader) = self.as_leader() else {
            return Err(input);
        };
        let r = f(&mut leader, input);
        if leader.step_down {
            self.become_follower(self.term, None);
        }
        Ok(r)
    }

    /// [`Raft::lead_with`] without input: `None` if this node does not lead.
    pub(crate) fn lead<R>(&mut self, f: impl FnOnce(&mut Leader<'_, S>) -> R) -> Option<R> {
        self.lead_with((), |l, ()| f(l)).ok()
    }

    /// True if this node leads its term.
    pub(crate) fn is_leader(&self) -> bool {
        self.role.leader_state().is_some()
    }

    pub(crate) fn send(&mut self, to: NodeId, body: MessageBody) {
        let m = self.message(to, body);
        self.out.push(m);
    }

    /// Resets the timers and the per-term state for `term` (etcd's `reset`).
    fn reset(&mut self, term: Term) {
        if self.term != term {
            debug_assert!(term > self.term, "term must never decrease");
            self.term = term;
            self.vote = None;
        }
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.quiesced = false;
        let base = self.cfg.election_timeout_ticks;
        self.randomized_election_timeout = base + self.rng.random_range(0..base);
    }

    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        self.reset(term);
        self.role = Role::Follower { leader };
        tracing::debug!(id = %self.id, term = %self.term, leader = ?leader, "became follower");
    }

    /// True if the next [`Raft::tick`] starts an election (paper §5.2: the
    /// election timeout elapses without word from a leader), or retries a
    /// rescue election.
    pub(crate) fn election_due(&self) -> bool {
        !self.quiesced
            && !self.is_leader()
            && self.election_elapsed + 1 >= self.randomized_election_timeout
            && (self.promotable()
                || self.rescues_on_timeout()
                || matches!(self.role, Role::PreCandidate(_) | Role::Candidate(_)))
    }

    /// With witnesses, a removed or demoted full member that hears from no
    /// leader runs the rescue election on its own timeout, not only when a
    /// voter asks it for a vote (`maybe_rescue_election`): it may hold
    /// entries (with their payloads) that the witnesses hold and no
    /// remaining full voter does, and the witnesses then refuse every full
    /// voter their votes. Voters that still follow a leader ignore it
    /// (pre-vote, CheckQuorum); one whose log is not the longest loses.
    fn rescues_on_timeout(&self) -> bool {
        self.may_rescue()
            && self.membership.has_witnesses()
            && matches!(self.role, Role::Follower { leader: None })
    }

    /// Advances the logical clock by one tick.
    pub(crate) fn tick(&mut self) -> Result<(), StorageError> {
        if self.quiesced {
            // A quiesced node's clock stands still (see `quiesce.rs`).
            return Ok(());
        }
        self.ticks += 1;
        if self.is_leader() {
            return self.tick_leader();
        }
        self.election_elapsed += 1;
        if self.election_elapsed < self.randomized_election_timeout {
            return Ok(());
        }
        if self.promotable() {
            self.election_elapsed = 0;
            self.hup(false)?;
        } else if self.rescues_on_timeout() {
            self.election_elapsed = 0;
            tracing::info!(id = %self.id, "removed member with no leader campaigns to hand over (witnesses)");
            self.retry_rescue_election()?;
        } else if matches!(self.role, Role::PreCandidate(_) | Role::Candidate(_)) {
            // Only the rescue path makes a non-voter campaign: keep trying
            // until a voter takes over (see `maybe_rescue_election`).
            self.election_elapsed = 0;
            self.retry_rescue_election()?;
        }
        Ok(())
    }

    /// Handles one message from a peer.
    pub(crate) fn step(&mut self, m: Message) -> Result<(), StepError> {
        if m.to != self.id {
            return Err(StepError::WrongRecipient {
                to: m.to,
                me: self.id,
            });
        }
        // Checked before anything else: a message no correct peer sends
        // changes nothing (it could overflow a term or index, or make this
        // node accept entries the leader never sent).
        m.validate().map_err(|reason| StepError::InvalidMessage {
            from: m.from,
            reason,
        })?;
        if self.woken_by(&m) {
            self.wake(Some(m.from));
        }
        if m.is_forwarded_request() {
            // Requests forwarded by followers carry no term: they are not
            // part of the protocol's term ordering.
            return self.step_by_role(m);
        }
        if m.term.get().saturating_sub(self.term.get()) > Term::MAX_JUMP {
            return Err(StepError::TermTooFarAhead {
                from: m.from,
                term: m.term,
                own: self.term,
            });
        }
        if m.term > self.term && !self.step_higher_term(&m) {
            return Ok(());
        }
        if m.term < self.term {
            self.step_lower_term(&m);
            return Ok(());
        }
        match &m.body {
            MessageBody::Vote(r) => self.handle_vote_request(&m, *r, false),
            MessageBody::PreVote(r) => self.handle_vote_request(&m, *r, true),
            _ => self.step_by_role(m),
        }
    }

    /// Paper §5.1: a higher term makes this node a follower, except for
    /// pre-votes (thesis §9.6) and vote requests inside a leader lease
    /// (CheckQuorum, thesis §4.2.3). Returns false if `m` is to be dropped.
    fn step_higher_term(&mut self, m: &Message) -> bool {
        let (is_vote, transfer) = match &m.body {
            MessageBody::Vote(r) | MessageBody::PreVote(r) => (true, r.transfer),
            _ => (false, false),
        };
        if is_vote && !transfer && self.in_leader_lease() {
            tracing::debug!(
                id = %self.id, from = %m.from, term = %m.term, reason = ?Ignored::InLease,
                "vote request ignored"
            );
            return false;
        }
        match &m.body {
            // A pre-vote does not change our term; nor does a granted
            // pre-vote response (we become a candidate on a quorum of them).
            MessageBody::PreVote(_) => {}
            MessageBody::PreVoteResponse(VoteResponse { reject: false }) => {}
            MessageBody::Append(_)
            | MessageBody::Heartbeat(_)
            | MessageBody::Snapshot(_)
            | MessageBody::Quiesce(_) => {
                self.become_follower(m.term, Some(m.from));
            }
            _ => self.become_follower(m.term, None),
        }
        true
    }

    /// True while this node has heard from a leader within the election
    /// timeout and CheckQuorum is on. With lease reads, also for the first
    /// election timeout after a (re)start: this node may have acknowledged
    /// a heartbeat just before it went down, and the leader's lease counts
    /// on it not voting for another leader until an election timeout after
    /// that (testdata/read_index_lease_restart.txt shows the stale read
    /// otherwise).
    fn in_leader_lease(&self) -> bool {
        let timeout = u64::from(self.cfg.election_timeout_ticks);
        self.cfg.check_quorum
            && ((self.leader().is_some()
                && self.election_elapsed < self.cfg.election_timeout_ticks)
                || (self.cfg.read_only_option == ReadOnlyOption::LeaseBased
                    && self.ticks < timeout))
    }

    /// A message from an older term is ignored (paper §5.1), with two
    /// answers that let the sender catch up.
    fn step_lower_term(&mut self, m: &Message) {
        match &m.body {
            // Paper §5.1: answer with our term so a stale leader steps down.
            // etcd answers only with CheckQuorum or PreVote; without either,
            // a learner whose term grew while it was a voter would never be
            // heard from again (learners never campaign) and never catch up
            // (found by the simulator).
            MessageBody::Append(_) | MessageBody::Heartbeat(_) | MessageBody::Quiesce(_) => {
                let body = MessageBody::AppendResponse(AppendResponse {
                    index: Index::ZERO,
                    reject: None,
                    commit: self.log.committed(),
                });
                self.send(m.from, body);
            }
            // Without an answer a pre-candidate at a stale term would wait for
            // its election timeout.
            MessageBody::PreVote(_) => {
                self.send(
                    m.from,
                    MessageBody::PreVoteResponse(VoteResponse { reject: true }),
                );
            }
            // Paper §5.1: the rejection carries our term, so a candidate that
            // lags behind catches up. etcd stays silent; a candidate that
            // nobody else ever messages (configurations that disagree during
            // membership changes) then never catches up with the term and
            // can never win (found by the simulator).
            MessageBody::Vote(_) => {
                self.send(
                    m.from,
                    MessageBody::VoteResponse(VoteResponse { reject: true }),
                );
            }
            _ => tracing::trace!(
                id = %self.id, from = %m.from, term = %m.term, kind = m.body.kind_name(),
                reason = ?Ignored::StaleTerm, "message ignored"
            ),
        }
    }

    fn step_by_role(&mut self, m: Message) -> Result<(), StepError> {
        let m = match self.lead_with(m, |l, x| l.step(x)) {
            Ok(r) => return r,
            Err(m) => m,
        };
        if matches!(self.role, Role::Follower { .. }) {
            self.step_follower(m)
        } else {
            self.step_candidate(m)
        }
    }

    pub(crate) fn ignore(&self, m: &Message, reason: Ignored) {
        log_ignored(self.id, m, reason);
    }

    /// Checks the invariants that must hold between any two inputs.
    pub(crate) fn debug_check_invariants(&self) {
        // `step` refuses what would take a term or index past MAX.
        debug_assert!(self.term <= Term::MAX);
        debug_assert!(self.log.committed() <= Index::MAX);
        debug_assert!(self.log.applied() <= self.log.applying());
        debug_assert!(self.log.applying() <= self.log.committed());
        debug_assert!(
            self.log
                .last_index()
                .is_ok_and(|l| self.log.committed() <= l)
        );
        if let Some(wanted) = self.pending_snapshot_request {
            debug_assert!(!self.is_leader());
            debug_assert!(!matches!(self.role, Role::Candidate(_)));
            debug_assert!(wanted.term <= self.term);
        }
        if let Some(wanted) = self.active_snapshot_request() {
            debug_assert!(self.log.last_index().is_ok_and(|l| l == wanted));
        }
        debug_assert!(
            !self.quiesced
                || self.is_leader()
                || matches!(self.role, Role::Follower { leader: Some(_) }),
            "only a leader or a follower of a known leader quiesces"
        );
        debug_assert!(
            !self.cfg.witness || matches!(self.role, Role::Follower { .. }),
            "a witness never campaigns"
        );
        if let Some(l) = self.role.leader_state() {
            debug_assert_eq!(self.vote, Some(self.id), "a leader voted for itself");
            debug_assert!(l.progress.values().all(|p| p.matched() < p.next()));
        }
    }
}

fn log_ignored(id: NodeId, m: &Message, reason: Ignored) {
    tracing::debug!(
        id = %id, from = %m.from, term = %m.term, kind = m.body.kind_name(),
        reason = ?reason, "message ignored"
    );
}
