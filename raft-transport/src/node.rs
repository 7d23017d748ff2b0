//! [`HttpNode`]: one node of a group on raft-host, durable in its data
//! directory and networked with [`HttpTransport`], started in the order a
//! failure needs and stopped in the order durability needs.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use raft_core::GroupId;
use raft_core::NodeId;
use raft_host::{
    DataDir, DataDirError, FatalError, GroupHandle, GroupOptions, GroupSet, Host, HostOptions,
    NoRecorder, Recorder, StateMachine, StopReason,
};
use raft_storage::StorageOptions;

use crate::{
    ConnectionLimits, DEFAULT_MAX_CONNECTIONS, HttpTransport, PeerListener, PeerTls, PeerUrl,
    PeerUrlError, Scheme, TlsError, TlsFiles, TransportConfig, TransportError, TransportMetrics,
};

/// How to start an [`HttpNode`]. [`HttpNodeConfig::new`] gives the
/// defaults.
#[derive(Clone)]
#[non_exhaustive]
pub struct HttpNodeConfig {
    /// This node.
    pub id: NodeId,
    /// Where its WAL, snapshots and identity record live.
    pub data_dir: PathBuf,
    /// raft-storage's settings (the WAL's segment size, say).
    pub storage: StorageOptions,
    /// The group. Its membership names the peers by peer URL, this node
    /// among them: the address it binds.
    pub group: GroupOptions,
    /// Further groups of the same members (a sharded service: see
    /// [`raft_host::GroupSet`]): then every group's log is in one WAL they
    /// share, and their snapshots in the data directory's `groups/<id>/`
    /// ([`DataDir::open_sharded`]). Their
    /// memberships must name the same peers as [`HttpNodeConfig::group`]'s.
    pub extra_groups: Vec<GroupOptions>,
    /// Mutual TLS on the peer port and every connection to peers (`None`:
    /// plain HTTP, for trusted networks only).
    pub tls: Option<TlsFiles>,
    /// The peer port's connection cap and timeouts.
    pub limits: ConnectionLimits,
    /// The host's settings (liveness, how many groups may campaign at
    /// once).
    pub host: HostOptions,
    /// Where raft-host's counters and histograms go.
    pub recorder: Arc<dyn Recorder>,
    /// What the transport counts.
    pub transport_metrics: Arc<TransportMetrics>,
}

impl HttpNodeConfig {
    /// Node `id` of `group`, its data in `data_dir`: plain HTTP, default
    /// limits and storage, metrics counted but recorded nowhere.
    pub fn new(id: NodeId, data_dir: impl Into<PathBuf>, group: GroupOptions) -> HttpNodeConfig {
        HttpNodeConfig {
            id,
            data_dir: data_dir.into(),
            storage: StorageOptions::new(),
            group,
            extra_groups: Vec::new(),
            tls: None,
            limits: ConnectionLimits::peer(DEFAULT_MAX_CONNECTIONS),
            host: HostOptions::new(),
            recorder: Arc::new(NoRecorder),
            transport_metrics: Arc::default(),
        }
    }
}

impl std::fmt::Debug for HttpNodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpNodeConfig")
            .field("id", &self.id)
            .field("data_dir", &self.data_dir)
            .field("group", &self.group)
            .field("extra_groups", &self.extra_groups.len())
            .field("tls", &self.tls)
            .field("limits", &self.limits)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// Why an [`HttpNode`] could not start. Nothing is left running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpNodeError {
    /// The group's membership does not name this node, so its peer URL
    /// (the address to bind) is unknown.
    #[error("node {0} is not among the peers of its group's membership")]
    NotAPeer(NodeId),
    /// A peer's address is not a peer URL.
    #[error("the address of node {id}: {source}")]
    PeerUrl {
        /// The peer.
        id: NodeId,
        /// Why it is not one.
        #[source]
        source: PeerUrlError,
    },
    /// This node's peer URL is `https://` without [`HttpNodeConfig::tls`],
    /// or `http://` with it.
    #[error(
        "node {id}'s peer URL is {}://, which {}",
        scheme.as_str(),
        if *.scheme == Scheme::Https {
            "needs TLS certificates"
        } else {
            "cannot carry TLS: give https:// URLs"
        }
    )]
    SchemeMismatch {
        /// This node.
        id: NodeId,
        /// Its URL's scheme.
        scheme: Scheme,
    },
    /// The peer certificates did not load.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The peer port could not be bound.
    #[error(transparent)]
    Bind(#[from] TransportError),
    /// The data directory was refused or could not be opened.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// raft-host refused to start the group.
    #[error("cannot start the group: {0}")]
    Start(#[from] raft_host::StartError),
    /// A further group's membership names other peers than the first
    /// group's (every group of a node runs over the same peer port).
    #[error("group {0} names other peers than the node's first group")]
    GroupPeers(GroupId),
    /// Two groups have the same id.
    #[error("group {0} is given twice")]
    DuplicateGroup(GroupId),
}

/// Why a running [`HttpNode`] stopped on its own. The process should exit;
/// a restart recovers from the data directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpNodeRunError {
    /// The group's loop failed (storage, mostly).
    #[error(transparent)]
    Fatal(#[from] FatalError),
    /// The cluster id learned from a peer could not be recorded.
    #[error("cannot record the cluster id: {source}")]
    RecordClusterId {
        /// The underlying error.
        #[source]
        source: std::io::Error,
        /// Whether the disk is full.
        disk_full: bool,
    },
}

/// A running node: its host, its one group, its transport and its data
/// directory. Built by [`HttpNode::start`], run by [`HttpNode::run`].
///
/// This is the wiring every program on raft-host and this transport would
/// otherwise write by hand:
/// 1. load the peer certificates and bind the peer port *before* the data
///    directory is touched, so a node that cannot reach its peers, or
///    whose port is taken, leaves no directory (nor a WAL segment) behind;
/// 2. open the data directory ([`DataDir::open_sharded`]: identity checks,
///    WAL and snapshot recovery);
/// 3. start the transport with the cluster id the directory knows and the
///    peers the membership names, then the group;
/// 4. while running, record the cluster id a joining node learns from the
///    first peer that contacts it, so a restart keeps it;
/// 5. on shutdown, stop the group (it finishes its Ready and syncs), then
///    the host's threads, then the transport.
#[derive(Debug)]
pub struct HttpNode<S: StateMachine> {
    host: Host,
    groups: GroupSet<S>,
    transport: Arc<HttpTransport>,
    data_dir: DataDir,
    url: PeerUrl,
    tick: Duration,
}

impl<S: StateMachine> HttpNode<S> {
    /// Starts node `config.id`, each group with the state machine
    /// `state_machines` makes for it (recovered from the data directory),
    /// on the current tokio runtime, in the order above: its peer port is
    /// the address of its own URL in the group's membership.
    ///
    /// # Errors
    /// An [`HttpNodeError`]; nothing is left running.
    pub async fn start(
        config: HttpNodeConfig,
        state_machines: impl FnMut(GroupId) -> S,
    ) -> Result<Self, HttpNodeError> {
        let (url, _) = peer_urls(&config)?;
        // Before the data directory: a node whose certificates do not load
        // should not create one.
        let tls = load_tls(&config)?;
        let listener = PeerListener::bind(url.addr()).await?;
        HttpNode::start_with(listener, tls, config, state_machines).await
    }

    /// [`HttpNode::start`] on a peer port bound already (port 0 in tests,
    /// a socket handed over by a supervisor); its own URL in the
    /// membership is still what peers are told to dial.
    ///
    /// # Errors
    /// An [`HttpNodeError`]; nothing is left running.
    pub async fn start_on(
        listener: PeerListener,
        config: HttpNodeConfig,
        state_machines: impl FnMut(GroupId) -> S,
    ) -> Result<Self, HttpNodeError> {
        peer_urls(&config)?;
        let tls = load_tls(&config)?;
        HttpNode::start_with(listener, tls, config, state_machines).await
    }

    async fn start_with(
        listener: PeerListener,
        tls: Option<PeerTls>,
        config: HttpNodeConfig,
        mut state_machines: impl FnMut(GroupId) -> S,
    ) -> Result<Self, HttpNodeError> {
        let id = config.id;
        let (url, peers) = peer_urls(&config)?;
        check_groups(&config)?;
        let groups: Vec<_> = std::iter::once(&config.group)
            .chain(&config.extra_groups)
            .map(|g| (g.group, &g.membership))
            .collect();
        let (data_dir, storages) =
            DataDir::open_sharded(&config.data_dir, id, &groups, config.storage.clone())?;
        let host = Host::with_options(id, config.host.clone(), Arc::clone(&config.recorder));
        let cluster_id = data_dir.identity().cluster_id;
        let transport = start_transport(listener, &config, cluster_id, peers, tls, &host);
        let tick = config.group.tick_interval;
        let all = std::iter::once(config.group).chain(config.extra_groups);
        let mut handles = Vec::new();
        for (opts, storage) in all.zip(storages) {
            let state_machine = state_machines(opts.group);
            match host.start_group(opts, storage, state_machine, Arc::clone(&transport) as _) {
                Ok(group) => handles.push(group),
                Err(e) => {
                    host.shutdown();
                    transport.shutdown().await;
                    return Err(e.into());
                }
            }
        }
        Ok(HttpNode {
            host,
            groups: GroupSet::new(handles).expect("the first group at least"),
            transport,
            data_dir,
            url,
            tick,
        })
    }

    /// The first group's handle: proposals, reads, membership, status.
    pub fn group(&self) -> &GroupHandle<S> {
        self.groups.first()
    }

    /// Every group's handle, the first group first.
    pub fn groups(&self) -> &GroupSet<S> {
        &self.groups
    }

    /// The transport (its metrics, the cluster id it knows).
    pub fn transport(&self) -> &Arc<HttpTransport> {
        &self.transport
    }

    /// This node's peer URL.
    pub fn peer_url(&self) -> &PeerUrl {
        &self.url
    }

    /// Runs until every group stops (shut down through a handle, this
    /// node removed, or failed) or `shutdown` completes, which shuts the
    /// groups down; then stops the host's threads and the transport. A
    /// group that fails stops the others: the process should exit.
    ///
    /// # Errors
    /// An [`HttpNodeRunError`]: the process should exit.
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<StopReason, HttpNodeRunError> {
        let groups = self.groups.clone();
        let exit = tokio::select! {
            exit = all_stopped(&groups) => exit,
            () = shutdown => Ok(StopReason::Shutdown),
            Err(e) = self.record_cluster_id() => Err(e),
        };
        for group in groups.groups() {
            group.shutdown();
        }
        let stopped = all_stopped(&groups).await;
        // Every group has ended; the host's threads are joined here.
        self.host.shutdown();
        self.transport.shutdown().await;
        match (exit, stopped) {
            (Err(e), _) | (Ok(StopReason::Shutdown), Err(e)) => Err(e),
            (Ok(reason), _) => Ok(reason),
        }
    }

    /// Records the cluster id once the transport knows it: at once for a
    /// founder, from the first peer that contacts it for a joiner. Then
    /// waits forever (for the group to end).
    async fn record_cluster_id(&mut self) -> Result<(), HttpNodeRunError> {
        let mut every_tick = tokio::time::interval(self.tick);
        while self.data_dir.identity().cluster_id.is_none() {
            every_tick.tick().await;
            if let Some(id) = self.transport.cluster_id() {
                self.data_dir.record_cluster_id(id).map_err(|source| {
                    let disk_full = raft_io::is_disk_full(&source);
                    HttpNodeRunError::RecordClusterId { source, disk_full }
                })?;
            }
        }
        std::future::pending().await
    }
}

/// Waits until every group has stopped; the first failure if one failed,
/// else the last group's reason.
async fn all_stopped<S: StateMachine>(
    groups: &GroupSet<S>,
) -> Result<StopReason, HttpNodeRunError> {
    let mut waits = tokio::task::JoinSet::new();
    for group in groups.groups() {
        let group = group.clone();
        waits.spawn(async move { group.stopped().await });
    }
    let mut reason = StopReason::Shutdown;
    while let Some(done) = waits.join_next().await {
        match done {
            Ok(Ok(r)) => reason = r,
            Ok(Err(fatal)) => return Err(fatal.into()),
            // The wait itself cannot panic; a cancelled one ends the run.
            Err(_) => break,
        }
    }
    Ok(reason)
}

/// Every further group has a distinct id and names the first group's
/// peers.
fn check_groups(config: &HttpNodeConfig) -> Result<(), HttpNodeError> {
    let mut ids = std::collections::BTreeSet::from([config.group.group]);
    for g in &config.extra_groups {
        if !ids.insert(g.group) {
            return Err(HttpNodeError::DuplicateGroup(g.group));
        }
        if g.membership.peers() != config.group.membership.peers() {
            return Err(HttpNodeError::GroupPeers(g.group));
        }
    }
    Ok(())
}

/// Starts the transport with the cluster id the directory knows and the
/// peers the membership names.
fn start_transport(
    listener: PeerListener,
    config: &HttpNodeConfig,
    cluster_id: Option<u64>,
    peers: Vec<(NodeId, PeerUrl)>,
    tls: Option<PeerTls>,
    host: &Host,
) -> Arc<HttpTransport> {
    let mut transport = TransportConfig::new(config.id, &config.data_dir);
    // Founders derive the id from the founding list; a joiner learns it
    // from the first peer that contacts it (see `record_cluster_id`).
    transport.cluster_id = cluster_id;
    let ip = listener.local_addr().ip();
    transport.bind_outgoing = (!ip.is_unspecified()).then_some(ip);
    // Members the log records beyond these (added at run time) are added
    // by raft-host as it recovers them.
    let group = config.group.group;
    transport.peers = peers
        .into_iter()
        .map(|(id, url)| (group, id, url))
        .collect();
    transport.limits = config.limits;
    transport.tls = tls;
    transport.metrics = Arc::clone(&config.transport_metrics);
    Arc::new(HttpTransport::start(listener, transport, host.inbox()))
}

/// This node's URL and the other peers' (id, URL), from the membership.
fn peer_urls(config: &HttpNodeConfig) -> Result<(PeerUrl, Vec<(NodeId, PeerUrl)>), HttpNodeError> {
    let mut peers = Vec::new();
    for peer in config.group.membership.peers() {
        let url = PeerUrl::parse(&peer.addr).map_err(|source| HttpNodeError::PeerUrl {
            id: peer.id,
            source,
        })?;
        peers.push((peer.id, url));
    }
    let at = peers
        .iter()
        .position(|(peer, _)| *peer == config.id)
        .ok_or(HttpNodeError::NotAPeer(config.id))?;
    let (_, url) = peers.swap_remove(at);
    if (url.scheme() == Scheme::Https) != config.tls.is_some() {
        return Err(HttpNodeError::SchemeMismatch {
            id: config.id,
            scheme: url.scheme(),
        });
    }
    Ok((url, peers))
}

fn load_tls(config: &HttpNodeConfig) -> Result<Option<PeerTls>, HttpNodeError> {
    let load = |files| PeerTls::load(config.id, files);
    Ok(config.tls.as_ref().map(load).transpose()?)
}
