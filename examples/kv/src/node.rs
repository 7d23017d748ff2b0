//! The node: raft-host runs the Raft group (the Ready loop, durability
//! through raft-storage's `DiskStorage`, snapshots off the write path,
//! membership), with the key-value [`KvStore`] as its state machine and
//! raft-transport's [`HttpTransport`] as its peer transport. Started in the
//! order a failure needs: certificates, peer port, data directory,
//! transport, group.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use raft_core::NodeId;
use raft_host::{
    DataDir, DataDirError, GroupHandle, GroupId, GroupOptions, Host, Membership, Peer, StopReason,
};
use raft_storage::StorageOptions;
use raft_transport::{
    ConnectionLimits, HttpTransport, PeerListener, PeerTls, PeerUrl, TlsError, TlsFiles,
    TransportConfig, TransportError,
};

use crate::cli::PEER_TLS_FLAGS;
use crate::http::Api;
use crate::metrics::Metrics;
use crate::store::KvStore;

/// raftkv runs one group.
const GROUP: GroupId = GroupId(1);

/// Snapshot files kept on disk.
const SNAPSHOTS_KEPT: usize = 3;

/// How to run a node, from the flags.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node.
    pub id: NodeId,
    /// The peer URLs given by `--cluster`; node `i` is the `i`-th.
    pub cluster: Vec<PeerUrl>,
    /// Where the WAL and snapshots live.
    pub data_dir: PathBuf,
    /// The size of a WAL segment (`--wal-segment-size`).
    pub wal_segment_bytes: u64,
    /// Mutual TLS of the peer port (`None`: plain HTTP).
    pub peer_tls: Option<TlsFiles>,
    /// The peer port's connection cap and timeouts.
    pub peer_limits: ConnectionLimits,
    /// raft-host's settings; its membership founds the cluster of
    /// `cluster` or joins it (`--join`).
    pub group: GroupOptions,
}

impl NodeConfig {
    /// The group's settings the flags do not give: raftkv's group id, the
    /// members from `--cluster`, and its snapshot retention.
    pub fn group_options(cluster: &[PeerUrl], join: bool) -> GroupOptions {
        let peers: Vec<Peer> = (1..)
            .zip(cluster)
            .map(|(i, url)| Peer::new(NodeId::new(i).expect("ids start at 1"), url.as_str()))
            .collect();
        let membership = if join {
            Membership::Join(peers)
        } else {
            Membership::Found(peers)
        };
        let mut g = GroupOptions::new(GROUP, membership);
        g.snapshots_kept = SNAPSHOTS_KEPT;
        g.queue_len = 65_536;
        g.max_inflight_msgs = 1024;
        g
    }
}

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The data directory.
    #[error("{}", data_dir_error(.0))]
    Data(#[from] DataDirError),
    /// raft-host refused to start the group.
    #[error("cannot start raft: {0}")]
    Raft(#[from] raft_host::StartError),
    /// The peer listener.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The peer port's certificates.
    #[error("{}", PEER_TLS_FLAGS.describe(.0))]
    Tls(#[from] TlsError),
}

/// Why the node stopped.
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

impl From<raft_host::FatalError> for LoopError {
    fn from(e: raft_host::FatalError) -> LoopError {
        let hint = if e.disk_full {
            "; the disk is full: free space and restart the node (a smaller --wal-segment-size \
             needs less of it)"
        } else {
            ""
        };
        LoopError(format!("{}: {}{hint}", e.what, e.reason))
    }
}

/// A running node. Built by [`Node::start`], run by [`Node::run`].
#[derive(Debug)]
pub struct Node {
    host: Host,
    group: GroupHandle<KvStore>,
    transport: Arc<HttpTransport>,
    data_dir: DataDir,
    tick: Duration,
}

impl Node {
    /// Binds the peer port, opens the data directory, starts the transport
    /// (on the current tokio runtime) and the raft-host group, and returns
    /// the node and the client [`Api`] to it. Nothing touches the disk before
    /// the certificates load and the port is bound.
    ///
    /// # Errors
    /// A [`StartError`].
    pub async fn start(opts: NodeConfig, metrics: Arc<Metrics>) -> Result<(Node, Api), StartError> {
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
        let storage = StorageOptions::new()
            .wal(raft_wal::WalOptions::new().segment_size_bytes(opts.wal_segment_bytes));
        let membership = &opts.group.membership;
        let (data_dir, storage) = DataDir::open(&opts.data_dir, opts.id, membership, storage)?;
        let host = Host::with_recorder(opts.id, Arc::clone(&metrics.raft) as _);
        let transport = Arc::new(start_transport(
            listener, &opts, &data_dir, tls, &host, &metrics,
        ));
        let tick = opts.group.tick_interval;
        let group = host.start_group(
            opts.group,
            storage,
            KvStore::new(),
            Arc::clone(&transport) as _,
        )?;
        let api = Api {
            group: group.clone(),
            metrics,
            peer_scheme: me.scheme(),
        };
        let node = Node {
            host,
            group,
            transport,
            data_dir,
            tick,
        };
        Ok((node, api))
    }

    /// The transport, to shut it down after the node stops.
    pub fn transport(&self) -> Arc<HttpTransport> {
        Arc::clone(&self.transport)
    }

    /// Runs until shut down, removed or failed.
    ///
    /// # Errors
    /// A storage failure ([`LoopError`]); the caller should exit.
    pub async fn run(mut self) -> Result<LoopExit, LoopError> {
        let group = self.group.clone();
        let exit = tokio::select! {
            exit = group.stopped() => exit.map_err(LoopError::from),
            Err(e) = self.record_cluster_id() => {
                group.shutdown();
                let _ = group.stopped().await;
                Err(e)
            }
        };
        // The group has ended; its thread is joined here.
        self.host.shutdown();
        match exit? {
            StopReason::Removed => Ok(LoopExit::Removed),
            _ => Ok(LoopExit::Shutdown),
        }
    }

    /// A joining node learns the cluster id from the first peer that
    /// contacts it: recorded then, so that a restart with a longer
    /// --cluster keeps it. Returns once recorded (or at once if known).
    async fn record_cluster_id(&mut self) -> Result<(), LoopError> {
        let mut every_tick = tokio::time::interval(self.tick);
        while self.data_dir.identity().cluster_id.is_none() {
            every_tick.tick().await;
            if let Some(id) = self.transport.cluster_id() {
                self.data_dir.record_cluster_id(id).map_err(|e| {
                    let hint = if raft_wal::io::is_disk_full(&e) {
                        "; the disk is full: free space and restart the node"
                    } else {
                        ""
                    };
                    LoopError(format!("record the cluster id: {e}{hint}"))
                })?;
            }
        }
        // Nothing more to do: wait for the group to end.
        std::future::pending().await
    }
}

/// A data directory error, with what to do when the disk is full.
fn data_dir_error(e: &DataDirError) -> String {
    if matches!(e, DataDirError::JoinerWithoutLog { .. }) {
        return format!("{e}: restart it with --join");
    }
    if !e.is_disk_full() {
        return e.to_string();
    }
    format!(
        "{e}: the disk is full; free space, or give a smaller --wal-segment-size (the WAL fills \
         each segment up front and prepares the next one early)"
    )
}

/// Starts the transport on this node's peer port, knowing the founders.
fn start_transport(
    listener: PeerListener,
    opts: &NodeConfig,
    data_dir: &DataDir,
    tls: Option<PeerTls>,
    host: &Host,
    metrics: &Metrics,
) -> HttpTransport {
    let me = opts.cluster[opts.id.get() as usize - 1].addr();
    // Founders derive the id from the founding list; a joining node learns
    // it from the first peer that contacts it. Either way it is recorded,
    // so a restart with a longer --cluster keeps it.
    let cluster_id = data_dir.identity().cluster_id;
    // The --cluster list; the members the log records (nodes added at run
    // time) are added by raft-host as it recovers them.
    let peers = (1..)
        .zip(&opts.cluster)
        .map(|(i, url)| (NodeId::new(i).expect("ids start at 1"), url.clone()))
        .filter(|(id, _)| *id != opts.id)
        .collect();
    let mut config = TransportConfig::new(opts.id, GROUP, &opts.data_dir);
    config.cluster_id = cluster_id;
    config.bind_outgoing = (!me.ip().is_unspecified()).then(|| me.ip());
    config.peers = peers;
    config.limits = opts.peer_limits;
    config.tls = tls;
    config.metrics = Arc::clone(&metrics.transport);
    HttpTransport::start(listener, config, host.inbox())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fatal_out_of_space_error_says_what_to_do() {
        let full = raft_host::FatalError {
            group: GROUP,
            what: "persist",
            reason: "No space left on device (os error 28)".into(),
            disk_full: true,
        };
        let text = LoopError::from(full).to_string();
        assert!(text.contains("the disk is full"), "{text}");
        assert!(text.contains("--wal-segment-size"), "{text}");
        let other = raft_host::FatalError {
            group: GROUP,
            what: "persist",
            reason: "Permission denied".into(),
            disk_full: false,
        };
        assert!(!LoopError::from(other).to_string().contains("disk is full"));
    }
}
