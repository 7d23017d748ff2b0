//! The raft loop: one thread owns the `RawNode` and does, in order, what
//! the Ready contract of raft-core asks (see `raft_core::Ready`).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, bounded};
use parking_lot::RwLock;
use raft_core::{
    AnyConfChange, ConfChangeKind, ConfState, Config, Index, LogId, NodeId, ProposeError, RawNode,
    Ready, RoleKind, SnapshotStatus, StepError,
};
use raft_storage::{CompactionPolicy, DiskStorage};

use super::apply::removed_id_refusal;
use super::durable::{self, OpenDataError};
use super::identity::Identity;
use super::{Event, Handle, Inbox, Refusal, Reply, Request, StatusReport};
use crate::conn::ConnectionLimits;
use crate::metrics::{self, Metrics};
use crate::peer_url::{self, PeerUrl};
use crate::store::{KvStore, Put};
use crate::tls::{PeerTls, TlsError, TlsFiles};
use crate::transport::{
    PeerListener, SnapshotReceiveConfig, Transport, TransportConfig, TransportError,
};

/// Snapshot files kept on disk.
const SNAPSHOTS_KEPT: usize = 3;
/// The most ticks one wake-up catches up on (see `ticks_due`).
const MAX_CATCH_UP_TICKS: u32 = 1000;
/// Requests drained from the queue before a Ready is built.
const MAX_EVENTS_PER_READY: usize = 8192;

/// How to run a node.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// This node.
    pub id: NodeId,
    /// The peer URLs given by `--cluster`; node `i` is the `i`-th.
    pub cluster: Vec<PeerUrl>,
    /// Joining an existing cluster rather than founding one.
    pub join: bool,
    /// Where the WAL and snapshots live.
    pub data_dir: PathBuf,
    /// Applied entries between snapshots.
    pub snapshot_count: u64,
    /// How linearizable reads are confirmed: a quorum round (`Safe`) or
    /// the leader's lease (`LeaseBased`).
    pub read_mode: raft_core::ReadOnlyOption,
    /// Entries kept in memory behind a snapshot so that a slightly lagging
    /// follower catches up from the log rather than by snapshot (etcd's
    /// `SnapshotCatchUpEntries`, 5000 by default there too).
    pub catch_up_entries: u64,
    /// Length of one tick.
    pub tick: Duration,
    /// Election timeout in ticks.
    pub election_ticks: u32,
    /// Heartbeat interval in ticks.
    pub heartbeat_ticks: u32,
    /// How long a client request may wait.
    pub request_timeout: Duration,
    /// Capacity of the request queue into the loop.
    pub queue_len: usize,
    /// Mutual TLS of the peer port (`None`: plain HTTP).
    pub peer_tls: Option<TlsFiles>,
    /// The size of a WAL segment (`--wal-segment-size`).
    pub wal_segment_bytes: u64,
    /// The peer port's connection cap and timeouts.
    pub peer_limits: ConnectionLimits,
}

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The data directory.
    #[error(transparent)]
    Data(#[from] OpenDataError),
    /// raft-core refused the recovered state.
    #[error("cannot start raft: {0}")]
    Raft(#[from] raft_core::NewError),
    /// The peer listener.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The peer port's certificates.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Why the loop stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopExit {
    /// Asked to shut down.
    Shutdown,
    /// This node was removed from the cluster.
    Removed,
}

/// A failure the node cannot continue after: storage, mostly. The process
/// exits; a restart recovers from the WAL.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LoopError(String);

fn fatal<E: std::error::Error + 'static>(what: &str, e: E) -> LoopError {
    let hint = if durable::is_disk_full(&e) {
        "; the disk is full: free space and restart the node (a smaller --wal-segment-size \
         needs less of it)"
    } else {
        ""
    };
    LoopError(format!("{what}: {e}{hint}"))
}

/// The raft loop. Built by [`RaftLoop::start`], run on its own thread.
#[derive(Debug)]
pub struct RaftLoop {
    pub(super) node: RawNode<Arc<DiskStorage>>,
    pub(super) storage: Arc<DiskStorage>,
    pub(super) store: Arc<RwLock<KvStore>>,
    /// The membership as of the last applied entry.
    pub(super) conf_state: ConfState,
    pub(super) transport: Arc<Transport>,
    pub(super) metrics: Arc<Metrics>,
    rx: Receiver<Event>,
    opts: ServerOptions,
    /// Writes proposed here, by request id, answered when applied.
    pub(super) writes: HashMap<u64, Reply>,
    /// Membership changes proposed here, answered when applied.
    pub(super) conf_waiters: Vec<(NodeId, ConfChangeKind, Reply)>,
    next_request_id: u64,
    /// Reads that arrived since the last ReadIndex round was started.
    read_batch: Vec<Reply>,
    /// ReadIndex rounds in flight, by context.
    read_rounds: HashMap<u64, Vec<Reply>>,
    next_read_ctx: u64,
    /// Confirmed reads waiting for `applied >= index`, in index order.
    ready_reads: VecDeque<(u64, Vec<Reply>)>,
    last_snapshot: LogId,
    leader: Option<NodeId>,
    /// Set when this node applied its own removal: ticks left before it
    /// stops (it lingers to hand leadership over and spread the commit).
    pub(super) removed_ticks_left: Option<u32>,
    stopping: bool,
    /// The data directory's identity record; its cluster id is filled in
    /// (and the record rewritten) once a joining node learns it.
    identity: Identity,
    /// The leader needs a snapshot at an applied index of at least this
    /// (`Ready::snapshot_request`: a follower behind the compacted log that
    /// the newest snapshot cannot serve).
    snapshot_requested: Option<u64>,
}

impl RaftLoop {
    /// Binds the peer port, opens the data directory, starts the transport
    /// (on the current tokio runtime) and builds the loop and a
    /// [`Handle`] to it. Nothing touches the disk before the certificates
    /// load and the port is bound.
    ///
    /// # Errors
    /// A [`StartError`].
    pub async fn start(
        opts: ServerOptions,
        metrics: Arc<Metrics>,
    ) -> Result<(RaftLoop, Handle), StartError> {
        let me = opts.cluster[opts.id.get() as usize - 1].clone();
        // Before the data directory: a node that cannot join its peers
        // should not create one.
        let tls = match &opts.peer_tls {
            Some(files) => Some(PeerTls::load(opts.id, files)?),
            None => None,
        };
        // So is one whose peer port is taken: a failed bind leaves no
        // directory behind (nor a 64 MiB WAL segment).
        let listener = PeerListener::bind(me.addr()).await?;
        let opened = durable::open(
            &opts.data_dir,
            opts.id,
            &opts.cluster,
            opts.join,
            opts.wal_segment_bytes,
        )?;
        if opened.bootstrapped {
            tracing::info!(
                members = opts.cluster.len(),
                "bootstrapped a new cluster log"
            );
        }
        let (tx, rx) = bounded(opts.queue_len);
        let inbox = Inbox { tx: tx.clone() };
        let transport = start_transport(listener, &opts, &opened, tls, inbox, &metrics)?;
        let mut config = Config::new(opts.id);
        config.election_timeout_ticks = opts.election_ticks;
        config.heartbeat_interval_ticks = opts.heartbeat_ticks;
        config.applied = opened.snapshot.map_or(Index::ZERO, |s| s.index);
        config.max_inflight_msgs = 1024;
        config.read_only_option = opts.read_mode;
        config.seed = random_u64();
        let node = RawNode::new(config, Arc::clone(&opened.storage))?;
        let store = Arc::new(RwLock::new(opened.store));
        let handle = Handle {
            tx,
            store: Arc::clone(&store),
            metrics: Arc::clone(&metrics),
            request_timeout: opts.request_timeout,
            peer_scheme: me.scheme(),
        };
        let raft_loop = RaftLoop {
            node,
            storage: opened.storage,
            store,
            conf_state: opened.conf_state,
            transport: Arc::new(transport),
            metrics,
            rx,
            writes: HashMap::new(),
            conf_waiters: Vec::new(),
            next_request_id: random_u64(),
            read_batch: Vec::new(),
            read_rounds: HashMap::new(),
            // Random, like the request ids: a ReadIndex reply to the
            // previous process of this node, arriving late, must not match
            // a round of this one.
            next_read_ctx: random_u64(),
            ready_reads: VecDeque::new(),
            last_snapshot: opened.snapshot.unwrap_or_default(),
            leader: None,
            removed_ticks_left: None,
            stopping: false,
            identity: opened.identity,
            snapshot_requested: None,
            opts,
        };
        Ok((raft_loop, handle))
    }

    /// The transport, to shut it down after the loop ends.
    pub fn transport(&self) -> Arc<Transport> {
        Arc::clone(&self.transport)
    }

    /// Runs until shut down or removed.
    ///
    /// # Errors
    /// A storage failure ([`LoopError`]); the caller should exit.
    pub fn run(mut self) -> Result<LoopExit, LoopError> {
        let tick = self.opts.tick;
        let mut next_tick = Instant::now() + tick;
        let mut busy = false;
        loop {
            let first = if busy {
                self.rx.try_recv().ok()
            } else {
                match self.rx.recv_deadline(next_tick) {
                    Ok(ev) => Some(ev),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => Some(Event::Shutdown),
                }
            };
            // Ticks first: a request that waited out a pause must meet the
            // node's clock as it is now, not as it was when it stopped.
            let now = Instant::now();
            if now >= next_tick {
                let ticks = ticks_due(now, next_tick, tick);
                next_tick = now + tick;
                for _ in 0..ticks {
                    if let Some(exit) = self.on_tick()? {
                        self.finish()?;
                        return Ok(exit);
                    }
                }
            }
            if let Some(ev) = first {
                self.handle_event(ev)?;
                for _ in 0..MAX_EVENTS_PER_READY {
                    let Ok(ev) = self.rx.try_recv() else { break };
                    self.handle_event(ev)?;
                }
            }
            self.start_read_round();
            busy = false;
            if self.node.has_ready() {
                busy = self.handle_ready()?;
            }
            if self.stopping {
                self.finish()?;
                return Ok(LoopExit::Shutdown);
            }
        }
    }

    fn finish(&mut self) -> Result<(), LoopError> {
        while self.node.has_ready() && self.handle_ready()? {}
        self.storage.sync().map_err(|e| fatal("final sync", e))
    }

    fn on_tick(&mut self) -> Result<Option<LoopExit>, LoopError> {
        self.node.tick().map_err(|e| fatal("tick", e))?;
        if self.identity.cluster_id.is_none()
            && let Some(id) = self.transport.cluster_id()
        {
            self.identity.cluster_id = Some(id);
            self.identity
                .save(&self.opts.data_dir)
                .map_err(|e| fatal("record the cluster id", e))?;
        }
        // Clients that gave up (timeout) dropped their receivers.
        self.writes.retain(|_, r| !r.is_closed());
        self.conf_waiters.retain(|(_, _, r)| !r.is_closed());
        if let Some(left) = self.removed_ticks_left.as_mut() {
            *left = left.saturating_sub(1);
            if *left == 0 {
                tracing::info!("removed from the cluster; stopping");
                return Ok(Some(LoopExit::Removed));
            }
        }
        Ok(None)
    }

    fn handle_event(&mut self, ev: Event) -> Result<(), LoopError> {
        match ev {
            Event::Request(r) => self.handle_request(r),
            Event::Peer(m) => match self.node.step(m) {
                Ok(()) => {}
                Err(StepError::Storage(e)) => return Err(fatal("step", e)),
                Err(e @ StepError::InvalidMessage { .. }) => {
                    metrics::inc(&self.metrics.peer_messages_invalid);
                    tracing::warn!(error = %e, "peer message refused");
                }
                Err(e @ StepError::TermTooFarAhead { .. }) => {
                    metrics::inc(&self.metrics.peer_messages_term_too_far_ahead);
                    tracing::warn!(error = %e, "peer message refused");
                }
                Err(e) => tracing::debug!(error = %e, "message ignored"),
            },
            Event::Unreachable(id) => self.node.report_unreachable(id),
            Event::SnapshotStatus(id, status) => {
                if status == SnapshotStatus::Finished {
                    metrics::inc(&self.metrics.snapshots_sent);
                }
                self.node.report_snapshot(id, status);
            }
            Event::Shutdown => self.stopping = true,
        }
        Ok(())
    }

    fn handle_request(&mut self, request: Request) {
        let leaving = self.stopping || self.removed_ticks_left.is_some();
        match request {
            Request::Status { reply } => {
                let _ = reply.send(self.status_report());
            }
            Request::Put { reply, .. }
            | Request::Read { reply }
            | Request::ConfChange { reply, .. }
                if leaving =>
            {
                let _ = reply.send(Err(Refusal::ShuttingDown));
            }
            Request::Put { key, value, reply } => {
                let request_id = self.next_request_id;
                self.next_request_id = self.next_request_id.wrapping_add(1);
                let data = Put {
                    request_id,
                    key,
                    value,
                }
                .encode();
                match self.node.propose(data) {
                    Ok(_) => {
                        metrics::inc(&self.metrics.proposals);
                        self.writes.insert(request_id, reply);
                    }
                    Err(e) => self.refuse_proposal(reply, &e),
                }
            }
            Request::Read { reply } => self.read_batch.push(reply),
            Request::ConfChange { change, reply } => {
                if let Err(refusal) = self.check_conf_change(&change) {
                    let _ = reply.send(Err(refusal));
                    return;
                }
                let (id, kind) = (change.node_id, change.kind);
                match self.node.propose_conf_change(AnyConfChange::V1(change)) {
                    Ok(_) => {
                        metrics::inc(&self.metrics.proposals);
                        self.conf_waiters.push((id, kind, reply));
                    }
                    Err(e) => self.refuse_proposal(reply, &e),
                }
            }
        }
    }

    fn refuse_proposal(&self, reply: Reply, e: &ProposeError) {
        metrics::inc(&self.metrics.proposals_dropped);
        let refusal = match e {
            ProposeError::InvalidConfChange(_) => Refusal::Conflict(e.to_string()),
            ProposeError::Storage(_) => Refusal::Unavailable(format!("storage: {e}")),
            _ => Refusal::Unavailable(format!("proposal dropped: {e}")),
        };
        let _ = reply.send(Err(refusal));
    }

    fn check_conf_change(&self, change: &raft_core::ConfChange) -> Result<(), Refusal> {
        let id = change.node_id;
        let cs = &self.conf_state;
        let member = cs.voters.contains(&id) || cs.learners.contains(&id);
        let adding = matches!(
            change.kind,
            ConfChangeKind::AddNode | ConfChangeKind::AddLearnerNode
        );
        if adding && self.store.read().was_removed(id.get()) {
            return Err(Refusal::Conflict(removed_id_refusal(id)));
        }
        match change.kind {
            ConfChangeKind::AddNode if cs.voters.contains(&id) => Err(Refusal::Conflict(format!(
                "node {id} is already a voting member"
            ))),
            ConfChangeKind::RemoveNode if !member => {
                Err(Refusal::NotMember(format!("node {id} is not a member")))
            }
            _ => Ok(()),
        }
    }

    /// Starts one ReadIndex round for every read that arrived since the
    /// last one: they share a heartbeat round (thesis §6.4 batching).
    fn start_read_round(&mut self) {
        if self.read_batch.is_empty() {
            return;
        }
        let waiters = std::mem::take(&mut self.read_batch);
        let ctx = self.next_read_ctx;
        self.next_read_ctx = self.next_read_ctx.wrapping_add(1);
        match self.node.read_index(ctx.to_le_bytes().to_vec()) {
            Ok(()) => {
                self.read_rounds.insert(ctx, waiters);
            }
            Err(e) => {
                for w in waiters {
                    let _ = w.send(Err(Refusal::Unavailable(format!("read refused: {e}"))));
                }
            }
        }
    }

    /// Handles one Ready; true if it held anything (so another may follow).
    fn handle_ready(&mut self) -> Result<bool, LoopError> {
        let mut rd = self.node.ready().map_err(|e| fatal("ready", e))?;
        if rd.is_empty() {
            self.node.advance().map_err(|e| fatal("advance", e))?;
            return Ok(false);
        }
        if let Some(ss) = rd.soft_state {
            self.on_soft_state(ss.leader, ss.role);
        }
        // Step 1: a leader's appends travel while it writes (thesis §10.2.1).
        self.transport.send(std::mem::take(&mut rd.messages));
        // Step 2: persist (a snapshot from the leader, entries, hard state).
        self.persist(&rd)?;
        if let Some(snapshot) = rd.snapshot.take() {
            self.restore_snapshot(snapshot)?;
        }
        // Step 3: messages that vouch for what was just persisted.
        self.transport
            .send(std::mem::take(&mut rd.persisted_messages));
        for rs in rd.read_states.drain(..) {
            let Ok(ctx) = <[u8; 8]>::try_from(&rs.context[..]) else {
                continue;
            };
            if let Some(waiters) = self.read_rounds.remove(&u64::from_le_bytes(ctx)) {
                self.ready_reads.push_back((rs.index.0, waiters));
            }
        }
        // Step 4: apply.
        let committed = std::mem::take(&mut rd.committed_entries);
        metrics::add(&self.metrics.commits, committed.len() as u64);
        self.apply_committed(committed)?;
        self.release_reads();
        self.node.advance().map_err(|e| fatal("advance", e))?;
        if let Some(request) = rd.snapshot_request {
            tracing::info!(min_index = request.min_index.0, to = %request.to, "leader asks for a snapshot");
            self.snapshot_requested = Some(request.min_index.0);
        }
        self.maybe_snapshot()?;
        Ok(true)
    }

    fn on_soft_state(&mut self, leader: Option<NodeId>, role: RoleKind) {
        if leader != self.leader {
            metrics::inc(&self.metrics.leader_changes);
            tracing::info!(leader = ?leader.map(|l| l.get()), role = role_name(role), "leader changed");
            self.leader = leader;
            // Rounds sent to the old leader are dropped there; the client
            // may retry at once (a read has no effect).
            for (_, waiters) in self.read_rounds.drain() {
                for w in waiters {
                    let _ = w.send(Err(Refusal::Unavailable("leader changed".into())));
                }
            }
        }
    }

    fn persist(&mut self, rd: &Ready) -> Result<(), LoopError> {
        let started = Instant::now();
        self.storage.persist(rd).map_err(|e| fatal("persist", e))?;
        if rd.must_sync {
            self.metrics.fsync_seconds.observe(started.elapsed());
        }
        Ok(())
    }

    /// Restores the state machine from a snapshot the leader sent, which
    /// `persist` made durable.
    fn restore_snapshot(&mut self, snapshot: raft_core::Snapshot) -> Result<(), LoopError> {
        let meta = snapshot.metadata;
        tracing::info!(
            index = meta.index.0,
            term = meta.term.0,
            "restoring a snapshot from the leader"
        );
        self.store
            .write()
            .restore(meta.index.0, snapshot.data)
            .map_err(|e| fatal("restore snapshot data", e))?;
        self.last_snapshot = meta.log_id();
        self.conf_state = meta.conf_state;
        self.sync_transport_peers();
        metrics::inc(&self.metrics.snapshots_restored);
        Ok(())
    }

    /// Makes the transport's peers those of the state machine.
    fn sync_transport_peers(&self) {
        let store = self.store.read();
        for (id, url) in store.peers() {
            let Some(id) = NodeId::new(*id) else { continue };
            if id == self.opts.id {
                continue;
            }
            match PeerUrl::parse(url) {
                Ok(url) => self.transport.add_peer(id, url),
                Err(e) => tracing::warn!(peer = id.get(), error = %e, "unusable peer URL"),
            }
        }
    }

    /// Serves confirmed reads whose index is applied.
    fn release_reads(&mut self) {
        let applied = self.store.read().applied();
        while let Some((index, _)) = self.ready_reads.front() {
            if *index > applied {
                break;
            }
            let (_, waiters) = self.ready_reads.pop_front().expect("front exists");
            for w in waiters {
                let _ = w.send(Ok(()));
            }
        }
    }

    /// Takes a snapshot every `snapshot_count` applied entries, or when the
    /// leader asks for one (etcd's `maybeTriggerSnapshot`); raft-storage
    /// then compacts the in-memory log, purges old snapshots and releases
    /// WAL segments, in the order a crash needs.
    fn maybe_snapshot(&mut self) -> Result<(), LoopError> {
        let applied = self.store.read().applied();
        let last = self.last_snapshot.index.0;
        // A snapshot at `applied` includes every member added up to it.
        let requested = self.snapshot_requested.is_some_and(|min| applied >= min) && applied > last;
        if applied < last + self.opts.snapshot_count && !requested {
            return Ok(());
        }
        self.snapshot_requested = None;
        let data = self.store.read().snapshot_data();
        let policy = CompactionPolicy::new()
            .catch_up_entries(self.opts.catch_up_entries)
            .snapshots_kept(SNAPSHOTS_KEPT);
        let meta = self
            .storage
            .snapshot_and_compact(Index(applied), self.conf_state.clone(), data, policy)
            .map_err(|e| fatal("snapshot", e))?;
        tracing::info!(index = applied, "snapshot taken");
        self.last_snapshot = meta.log_id();
        metrics::inc(&self.metrics.snapshots_created);
        Ok(())
    }

    pub(super) fn node_election_ticks(&self) -> u32 {
        self.opts.election_ticks
    }

    fn status_report(&self) -> StatusReport {
        let st = self.node.status();
        let store = self.store.read();
        StatusReport {
            id: self.opts.id,
            term: st.hard_state.term.0,
            leader: st.soft_state.leader,
            role: role_name(st.soft_state.role),
            commit: st.hard_state.commit.0,
            applied: store.applied(),
            voters: self.conf_state.voters.iter().map(|n| n.get()).collect(),
            learners: self.conf_state.learners.iter().map(|n| n.get()).collect(),
            urls: store.peers().iter().map(|(k, v)| (*k, v.clone())).collect(),
            removed: store.removed().iter().copied().collect(),
            last_snapshot: (self.last_snapshot.index.0, self.last_snapshot.term.0),
        }
    }
}

/// Ticks owed at `now` when the next was due at `due`: one, plus every tick
/// missed while the process was stopped (SIGSTOP, a VM pause) or starved,
/// so that a lease measured in ticks never outlives the time it stands for
/// (thesis §6.4.1 assumes clocks that advance). Bounded by
/// [`MAX_CATCH_UP_TICKS`]: past an election timeout or two, more ticks
/// change nothing.
fn ticks_due(now: Instant, due: Instant, tick: Duration) -> u32 {
    let late = now.saturating_duration_since(due);
    let missed = late.as_nanos() / tick.as_nanos().max(1);
    u32::try_from(missed.saturating_add(1))
        .unwrap_or(u32::MAX)
        .min(MAX_CATCH_UP_TICKS)
}

fn role_name(role: RoleKind) -> &'static str {
    match role {
        RoleKind::Follower => "follower",
        RoleKind::PreCandidate => "pre-candidate",
        RoleKind::Candidate => "candidate",
        RoleKind::Leader => "leader",
        _ => "unknown",
    }
}

/// A per-process random number (std's hasher keys are random), for the
/// election seed, request ids and ReadIndex contexts.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Starts the transport on this node's peer port, knowing the initial
/// peers.
fn start_transport(
    listener: PeerListener,
    opts: &ServerOptions,
    opened: &durable::Opened,
    tls: Option<PeerTls>,
    inbox: Inbox,
    metrics: &Arc<Metrics>,
) -> Result<Transport, TransportError> {
    let me = opts.cluster[opts.id.get() as usize - 1].addr();
    // Founders derive the id from the founding list; a joining node learns
    // it from the first peer that contacts it. Either way it is recorded,
    // so a restart with a longer --cluster keeps it.
    let cluster_id = opened
        .identity
        .cluster_id
        .or_else(|| (!opts.join).then(|| peer_url::cluster_id(&opts.cluster).max(1)));
    let config = TransportConfig {
        id: opts.id,
        cluster_id,
        listen: me,
        bind_outgoing: (!me.ip().is_unspecified()).then(|| me.ip()),
        peers: initial_peers(opts, &opened.store),
        queue_messages: 4096,
        snapshot_receive: SnapshotReceiveConfig::new(&opts.data_dir),
        limits: opts.peer_limits,
        tls,
    };
    Transport::start_on(listener, config, Arc::new(inbox), Arc::clone(metrics))
}

/// Peers at start: the state machine's members if a snapshot was
/// recovered (they include nodes added at run time), else the cluster
/// list. Conf changes replayed from the log adjust them further.
fn initial_peers(opts: &ServerOptions, store: &KvStore) -> Vec<(NodeId, PeerUrl)> {
    let mut peers: Vec<(NodeId, PeerUrl)> = Vec::new();
    if store.peers().is_empty() {
        for (i, url) in opts.cluster.iter().enumerate() {
            let id = NodeId::new(i as u64 + 1).expect("ids start at 1");
            peers.push((id, url.clone()));
        }
    } else {
        for (id, url) in store.peers() {
            if let (Some(id), Ok(url)) = (NodeId::new(*id), PeerUrl::parse(url)) {
                peers.push((id, url));
            }
        }
    }
    peers.retain(|(id, _)| *id != opts.id);
    peers
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bytes::Bytes;
    use raft_core::{ConfChange, Entry, Term};

    use super::*;

    fn nid(n: u64) -> NodeId {
        NodeId::new(n).expect("non-zero")
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    }

    /// Node 1 of `founders` founders, in `dir`.
    fn options(dir: &Path, founders: usize) -> ServerOptions {
        let cluster = (0..founders)
            .map(|_| PeerUrl::parse(&format!("http://127.0.0.1:{}", free_port())).expect("url"))
            .collect();
        ServerOptions {
            id: nid(1),
            cluster,
            join: false,
            data_dir: dir.to_path_buf(),
            snapshot_count: 10_000,
            read_mode: raft_core::ReadOnlyOption::Safe,
            catch_up_entries: 5000,
            tick: Duration::from_millis(100),
            election_ticks: 10,
            heartbeat_ticks: 1,
            request_timeout: Duration::from_secs(5),
            queue_len: 16,
            peer_tls: None,
            wal_segment_bytes: 1 << 20,
            peer_limits: ConnectionLimits::peer(16),
        }
    }

    fn conf_entry(index: u64, kind: ConfChangeKind, id: u64, url: &str) -> Entry {
        let (kind, data) = AnyConfChange::V1(ConfChange {
            kind,
            node_id: nid(id),
            context: Bytes::copy_from_slice(url.as_bytes()),
        })
        .to_entry_data();
        Entry {
            term: Term(1),
            index: Index(index),
            kind,
            data,
        }
    }

    #[test]
    fn a_fatal_out_of_space_error_says_what_to_do() {
        let full = OpenDataError::RecordIdentity {
            dir: PathBuf::from("/d"),
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        };
        let text = fatal("record the cluster id", full).to_string();
        assert!(text.contains("the disk is full"), "{text}");
        assert!(text.contains("--wal-segment-size"), "{text}");
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(!fatal("persist", other).to_string().contains("disk is full"));
    }

    #[tokio::test]
    async fn read_index_contexts_do_not_start_from_the_same_number_at_every_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = options(dir.path(), 1);
        let mut firsts = Vec::new();
        for _ in 0..2 {
            let (node, _handle) = RaftLoop::start(opts.clone(), Arc::default())
                .await
                .expect("start");
            firsts.push(node.next_read_ctx);
            // Stopped as main does: the peer port and the directory are
            // free again.
            node.transport().shutdown().await;
        }
        assert_ne!(
            firsts[0], firsts[1],
            "a late ReadIndex reply to the previous process could match a new read"
        );
    }

    #[tokio::test]
    async fn a_committed_re_add_of_a_removed_node_id_is_refused_on_apply() {
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = options(dir.path(), 3);
        let (mut node, _handle) = RaftLoop::start(opts.clone(), Arc::default())
            .await
            .expect("start");
        let mut entries = durable::bootstrap_log(&opts.cluster).entries;
        entries.push(conf_entry(4, ConfChangeKind::RemoveNode, 3, ""));
        // Proposed by a node that had not applied the removal yet.
        let url = format!("http://127.0.0.1:{}", free_port());
        entries.push(conf_entry(5, ConfChangeKind::AddNode, 3, &url));
        node.apply_committed(entries).expect("apply");
        let voters: Vec<u64> = node.conf_state.voters.iter().map(|n| n.get()).collect();
        assert_eq!(voters, [1, 2]);
        assert!(node.store.read().was_removed(3));
        assert!(!node.store.read().peers().contains_key(&3));
        assert_eq!(node.removed_ticks_left, None, "node 1 was not removed");
        // And a new proposal is refused before it reaches the log.
        let again = ConfChange {
            kind: ConfChangeKind::AddLearnerNode,
            node_id: nid(3),
            context: Bytes::copy_from_slice(url.as_bytes()),
        };
        match node.check_conf_change(&again) {
            Err(Refusal::Conflict(reason)) => assert!(reason.contains("never reused"), "{reason}"),
            other => panic!("re-adding node 3: {other:?}"),
        }
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
        // Stopped for 2.05 s: the due tick and 20 more.
        assert_eq!(ticks_due(due + Duration::from_millis(2050), due, tick), 21);
        // A very long pause is bounded.
        assert_eq!(
            ticks_due(due + Duration::from_secs(3600), due, tick),
            MAX_CATCH_UP_TICKS
        );
    }
}
