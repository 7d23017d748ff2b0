//! [`Host`]: runs a process's groups.

use std::collections::HashMap;
use std::sync::Arc;

use crossbeam_channel::{Receiver, TryRecvError};
use parking_lot::{Mutex, RwLock};
use raft_core::{ConfChange, ConfChangeKind, Config, FoundingLog, NodeId, RawNode, Storage};
use raft_storage::DiskStorage;
use tokio::sync::watch;

use crate::background::{SnapshotPool, Writer};
use crate::elections::Elections;
use crate::error::StartError;
use crate::group::{GroupLoop, Parts, Replica, mailbox_channel};
use crate::handle::{GroupHandle, HandleParts};
use crate::liveness::{HOST_GROUP, Liveness, Pinger, Tracked};
use crate::members::JoinContext;
use crate::metrics::{NoRecorder, Recorder};
use crate::options::{GroupOptions, HostOptions, Membership, Peer};
use crate::scheduler::{Scheduler, Slot};
use crate::state_machine::StateMachine;
use crate::status::GroupStatus;
use crate::transport::{Inbox, Transport};
use raft_core::GroupId;

/// A running group and how to stop it.
struct Running {
    /// Disconnected once the loop has ended.
    done: Receiver<()>,
    shutdown: Box<dyn Fn() + Send>,
}

impl Running {
    fn is_finished(&self) -> bool {
        matches!(self.done.try_recv(), Err(TryRecvError::Disconnected))
    }

    fn wait(&self) {
        let _ = self.done.recv();
    }
}

/// The threads every group shares, started with the first group.
struct Runtime {
    scheduler: Scheduler,
    writer: Arc<Writer>,
    snapshots: Arc<SnapshotPool>,
    liveness: Arc<Liveness>,
}

impl Runtime {
    fn start(host: &Host) -> std::io::Result<Runtime> {
        let (opts, id, inbox) = (&host.options, host.id, &host.inbox);
        let name = format!("raft-n{}", id.get());
        let scheduler = Scheduler::start(opts.loop_threads, &name)?;
        let writer = Arc::new(Writer::start(
            format!("{name}-persist"),
            Arc::clone(&host.recorder),
        )?);
        let snapshots = SnapshotPool::start(opts.snapshot_threads, &format!("{name}-snap"))?;
        let liveness = Arc::new(Liveness::new(
            id,
            (opts.liveness_interval, opts.liveness_timeout),
            inbox.clone(),
            Arc::clone(&host.recorder),
        ));
        inbox.set_liveness(&liveness);
        scheduler.slot().run(Pinger(Arc::clone(&liveness)));
        Ok(Runtime {
            scheduler,
            writer,
            snapshots: Arc::new(snapshots),
            liveness,
        })
    }

    fn stop(self) {
        // Groups are stopped first: nothing submits any more.
        self.liveness.stop();
        self.writer.stop();
        self.snapshots.stop();
        drop(self.scheduler);
    }
}

/// Runs the Raft groups of one node (one process). A small fixed pool of
/// threads ([`HostOptions::loop_threads`]) drives every group's loop —
/// its `RawNode` over a [`DiskStorage`], its [`StateMachine`], its
/// [`Transport`] — one turn at a time, woken by requests, by messages
/// from peers (through [`Host::inbox`]), by its storage writes and
/// snapshots finishing, and by its ticks; so a host runs thousands of
/// groups on a few threads. One storage writer serves every group's
/// asynchronous writes and one snapshot pool every group's snapshots.
pub struct Host {
    id: NodeId,
    inbox: Inbox,
    recorder: Arc<dyn Recorder>,
    options: HostOptions,
    /// Every group's election permits ([`HostOptions::max_concurrent_elections`]).
    elections: Arc<Elections>,
    /// Started with the first group (so that creating a host cannot fail).
    runtime: Mutex<Option<Runtime>>,
    groups: Mutex<HashMap<GroupId, Running>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let groups: Vec<GroupId> = self.groups.lock().keys().copied().collect();
        f.debug_struct("Host")
            .field("id", &self.id)
            .field("groups", &groups)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// A host for node `id` (the node's id in every group it runs).
    pub fn new(id: NodeId) -> Host {
        Host::with_recorder(id, Arc::new(NoRecorder))
    }

    /// A host that reports measurements to `recorder`.
    pub fn with_recorder(id: NodeId, recorder: Arc<dyn Recorder>) -> Host {
        Host::with_options(id, HostOptions::new(), recorder)
    }

    /// A host with `options` that reports measurements to `recorder`.
    pub fn with_options(id: NodeId, options: HostOptions, recorder: Arc<dyn Recorder>) -> Host {
        Host {
            id,
            inbox: Inbox::default(),
            recorder,
            elections: Elections::new(options.max_concurrent_elections),
            options,
            runtime: Mutex::new(None),
            groups: Mutex::new(HashMap::new()),
        }
    }

    /// The host's settings.
    pub fn options(&self) -> &HostOptions {
        &self.options
    }

    /// This node.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Where a transport delivers what arrives for this host.
    pub fn inbox(&self) -> Inbox {
        self.inbox.clone()
    }

    /// Starts a group: recovers `storage` (restoring `state_machine` from
    /// its newest snapshot; the log after it is applied again), founds the
    /// group on a first start as [`GroupOptions::membership`] says, and
    /// runs its loop on the host's threads.
    ///
    /// # Errors
    /// A [`StartError`]; nothing runs.
    pub fn start_group<S: StateMachine>(
        &self,
        opts: GroupOptions,
        storage: DiskStorage,
        state_machine: S,
        transport: Arc<dyn Transport>,
    ) -> Result<GroupHandle<S>, StartError> {
        let group = opts.group;
        let mut groups = self.groups.lock();
        free_slot(&mut groups, group)?;
        found_if_fresh(&opts, &storage)?;
        let storage = Arc::new(storage);
        let sm = Arc::new(RwLock::new(state_machine));
        let replica = Replica::recover(self.id, Arc::clone(&sm), &storage)?;
        let node = RawNode::new(self.raft_config(&opts, &replica), Arc::clone(&storage))?;
        let transport = self.tracked(transport)?;
        for peer in opts.membership.peers().iter().filter(|p| p.id != self.id) {
            transport.add_peer(group, peer.id, &peer.addr);
        }
        let (slot, writer, snapshot_pool) = self.shared_threads::<S>()?;
        let (tx, rx) = mailbox_channel::<S>(opts.queue_len, slot.waker());
        let (status_tx, status_rx) = watch::channel(GroupStatus::new(self.id));
        let (exit_tx, exit_rx) = watch::channel(None);
        let handle = GroupHandle::new(HandleParts {
            group,
            tx: tx.clone(),
            sm,
            status: status_rx,
            exit: exit_rx,
            request_timeout: opts.request_timeout,
            membership_timeout: opts.membership_timeout,
        });
        let (done_tx, done) = crossbeam_channel::bounded::<()>(0);
        let inbox = self.inbox.clone();
        let lp = GroupLoop::new(
            opts,
            Parts {
                me: self.id,
                node,
                storage,
                replica,
                transport,
                recorder: Arc::clone(&self.recorder),
                rx,
                status: status_tx,
                exit: exit_tx,
                first_read_ctx: random_u64(),
                first_request: random_u64(),
                elections: Arc::clone(&self.elections),
                waker: slot.waker(),
                writer,
                snapshot_pool,
                on_end: Box::new(move || {
                    inbox.unregister(group);
                    drop(done_tx);
                }),
            },
        )?;
        self.inbox.register(group, Arc::new(tx));
        slot.run(lp);
        let stopper = handle.clone();
        groups.insert(
            group,
            Running {
                done,
                shutdown: Box::new(move || stopper.shutdown()),
            },
        );
        Ok(handle)
    }

    /// A slot on the scheduler and the shared writer and snapshot pool,
    /// starting the host's threads with its first group.
    #[allow(clippy::type_complexity)]
    fn shared_threads<S: StateMachine>(
        &self,
    ) -> Result<(Slot<GroupLoop<S>>, Arc<Writer>, Arc<SnapshotPool>), StartError> {
        let mut runtime = self.runtime.lock();
        let rt = self.runtime_started(&mut runtime)?;
        let slot = rt.scheduler.slot::<GroupLoop<S>>();
        Ok((slot, Arc::clone(&rt.writer), Arc::clone(&rt.snapshots)))
    }

    fn runtime_started<'a>(
        &self,
        runtime: &'a mut Option<Runtime>,
    ) -> Result<&'a Runtime, StartError> {
        if runtime.is_none() {
            let rt = Runtime::start(self);
            *runtime = Some(rt.map_err(StartError::Spawn)?);
        }
        Ok(runtime.as_ref().expect("started above"))
    }

    /// The group's transport, its peers counted in the liveness table.
    fn tracked(&self, transport: Arc<dyn Transport>) -> Result<Arc<dyn Transport>, StartError> {
        let mut runtime = self.runtime.lock();
        let rt = self.runtime_started(&mut runtime)?;
        Ok(Arc::new(Tracked::new(transport, Arc::clone(&rt.liveness))))
    }

    fn raft_config<S: StateMachine>(&self, opts: &GroupOptions, replica: &Replica<S>) -> Config {
        let mut config = Config::new(self.id);
        config.election_timeout_ticks = opts.election_timeout_ticks;
        config.heartbeat_interval_ticks = opts.heartbeat_interval_ticks;
        config.applied = replica.applied();
        config.max_inflight_msgs = opts.max_inflight_msgs;
        config.max_apply_gap = opts.max_apply_gap_entries.unwrap_or(raft_core::NO_LIMIT);
        config.max_entry_bytes = opts.max_entry_bytes.unwrap_or(raft_core::NO_LIMIT);
        config.read_only_option = opts.read_mode;
        config.max_clock_drift = opts.max_clock_drift;
        config.async_storage_writes = opts.async_storage_writes;
        config.quiesce_after_ticks = opts.quiesce_after_ticks;
        // A follower forwards a proposal to the leader; the envelope lets
        // it find its waiter when the entry is applied.
        config.disable_proposal_forwarding = !opts.forward_proposals;
        config.seed = opts.seed.unwrap_or_else(random_u64);
        config
    }

    /// Stops `group` (finishing its current Ready and syncing) and waits
    /// for its loop to end. Returns false if it was not running here.
    pub fn stop_group(&self, group: GroupId) -> bool {
        let Some(running) = self.groups.lock().remove(&group) else {
            return false;
        };
        (running.shutdown)();
        running.wait();
        true
    }

    /// The groups this host runs (including ones whose loop has ended but
    /// that were not stopped through the host).
    pub fn groups(&self) -> Vec<GroupId> {
        let mut ids: Vec<GroupId> = self.groups.lock().keys().copied().collect();
        ids.sort();
        ids
    }

    /// Stops every group and waits for their loops to end. The host may
    /// start groups again afterwards.
    pub fn shutdown(&self) {
        let running: Vec<Running> = self.groups.lock().drain().map(|(_, r)| r).collect();
        for r in &running {
            (r.shutdown)();
        }
        for r in running {
            r.wait();
        }
    }
}

impl Drop for Host {
    /// Stops every group, then the host's threads.
    fn drop(&mut self) {
        self.shutdown();
        if let Some(runtime) = self.runtime.lock().take() {
            runtime.stop();
        }
    }
}

/// Refuses `group` if it is reserved or running; forgets it if its loop
/// ended without the host stopping it.
fn free_slot(groups: &mut HashMap<GroupId, Running>, group: GroupId) -> Result<(), StartError> {
    if group == HOST_GROUP {
        return Err(StartError::ReservedGroup(group));
    }
    if let Some(running) = groups.get(&group) {
        if !running.is_finished() {
            return Err(StartError::AlreadyRunning(group));
        }
        groups.remove(&group);
    }
    Ok(())
}

/// On a first start of a founder, writes the founding log.
fn found_if_fresh(opts: &GroupOptions, storage: &DiskStorage) -> Result<(), StartError> {
    if is_fresh(storage)
        && let Membership::Found(founders) = &opts.membership
    {
        storage
            .bootstrap(&founding_log(founders)?)
            .map_err(StartError::Bootstrap)?;
        tracing::info!(group = %opts.group, members = founders.len(), "founded the group");
    }
    Ok(())
}

/// True when the storage holds nothing: a first start.
fn is_fresh(storage: &DiskStorage) -> bool {
    let hs = storage.hard_state();
    hs.term.get() == 0
        && storage.snapshot_metadata().index.get() == 0
        && storage.last_index().is_ok_and(|i| i.get() == 0)
}

/// The founding log: one `AddNode` per founder, its address in the
/// context, so that every member (and every later joiner replaying the
/// log) learns the founders' addresses from the log itself.
fn founding_log(founders: &[Peer]) -> Result<FoundingLog, StartError> {
    let changes = founders.iter().map(|p| ConfChange {
        kind: ConfChangeKind::AddNode,
        node_id: p.id,
        context: JoinContext {
            addr: p.addr.clone(),
            promote: false,
        }
        .encode(),
    });
    Ok(FoundingLog::new(changes)?)
}

/// A per-process random number (std's hasher keys are random), for the
/// election seed and the first ReadIndex context.
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
