//! [`Host`]: runs a process's groups.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};
use raft_core::{ConfChange, ConfChangeKind, Config, FoundingLog, NodeId, RawNode, Storage};
use raft_storage::DiskStorage;
use tokio::sync::watch;

use crate::error::StartError;
use crate::group::{Event, GroupLoop, Parts, Replica};
use crate::handle::{GroupHandle, HandleParts};
use crate::members::JoinContext;
use crate::metrics::{NoRecorder, Recorder};
use crate::options::{GroupOptions, Membership, Peer};
use crate::state_machine::StateMachine;
use crate::status::GroupStatus;
use crate::transport::{Inbox, Transport};
use raft_core::GroupId;

/// A running group's loop thread and how to stop it.
struct Running {
    thread: JoinHandle<()>,
    shutdown: Box<dyn Fn() + Send>,
}

/// Runs the Raft groups of one node (one process): each group gets a loop
/// thread that drives its `RawNode` over a [`DiskStorage`], applies
/// committed entries to its [`StateMachine`] and talks to peers through a
/// [`Transport`]. Messages from peers arrive through [`Host::inbox`].
///
/// This version runs one loop thread per group, which suits a handful of
/// groups; a shared scheduler for many groups is future work.
pub struct Host {
    id: NodeId,
    inbox: Inbox,
    recorder: Arc<dyn Recorder>,
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
        Host {
            id,
            inbox: Inbox::default(),
            recorder,
            groups: Mutex::new(HashMap::new()),
        }
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
    /// runs its loop on a thread of its own.
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
        if let Some(running) = groups.get(&group) {
            if !running.thread.is_finished() {
                return Err(StartError::AlreadyRunning(group));
            }
            groups.remove(&group);
        }
        if is_fresh(&storage)
            && let Membership::Found(founders) = &opts.membership
        {
            storage
                .bootstrap(&founding_log(founders)?)
                .map_err(StartError::Bootstrap)?;
            tracing::info!(group = %group, members = founders.len(), "founded the group");
        }
        let storage = Arc::new(storage);
        let sm = Arc::new(RwLock::new(state_machine));
        let replica = Replica::recover(self.id, Arc::clone(&sm), &storage)?;
        let node = RawNode::new(self.raft_config(&opts, &replica), Arc::clone(&storage))?;
        let known = match &opts.membership {
            Membership::Found(peers) | Membership::Join(peers) => peers,
        };
        for peer in known.iter().filter(|p| p.id != self.id) {
            transport.add_peer(group, peer.id, &peer.addr);
        }
        let (tx, rx) = crossbeam_channel::bounded::<Event<S>>(opts.queue_len);
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
            },
        )?;
        self.inbox.register(group, Arc::new(tx.clone()));
        let inbox = self.inbox.clone();
        let thread = std::thread::Builder::new()
            .name(format!("raft-g{}", group.get()))
            .spawn(move || {
                lp.run();
                inbox.unregister(group);
            })
            .map_err(StartError::Spawn)?;
        let stopper = handle.clone();
        groups.insert(
            group,
            Running {
                thread,
                shutdown: Box::new(move || stopper.shutdown()),
            },
        );
        Ok(handle)
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
        // A follower forwards a proposal to the leader; the envelope lets
        // it find its waiter when the entry is applied.
        config.disable_proposal_forwarding = !opts.forward_proposals;
        config.seed = opts.seed.unwrap_or_else(random_u64);
        config
    }

    /// Stops `group` (finishing its current Ready and syncing) and waits
    /// for its thread. Returns false if it was not running here.
    pub fn stop_group(&self, group: GroupId) -> bool {
        let Some(running) = self.groups.lock().remove(&group) else {
            return false;
        };
        (running.shutdown)();
        let _ = running.thread.join();
        true
    }

    /// The groups this host runs (including ones whose loop has ended but
    /// that were not stopped through the host).
    pub fn groups(&self) -> Vec<GroupId> {
        let mut ids: Vec<GroupId> = self.groups.lock().keys().copied().collect();
        ids.sort();
        ids
    }

    /// Stops every group and waits for their threads.
    pub fn shutdown(&self) {
        let running: Vec<Running> = self.groups.lock().drain().map(|(_, r)| r).collect();
        for r in &running {
            (r.shutdown)();
        }
        for r in running {
            let _ = r.thread.join();
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.shutdown();
    }
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
