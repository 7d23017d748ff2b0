//! The node: raft-transport's [`HttpNode`] runs the group (raft-host's
//! Ready loop, durability through raft-storage's `DiskStorage`, snapshots
//! off the write path, membership, the peer transport) with the key-value
//! [`KvStore`] as its state machine. What is raftkv's own: its group id
//! and settings, and error messages that say which flag to change.

use std::sync::Arc;

use raft_core::NodeId;
use raft_host::{DataDirError, GroupId, GroupOptions, Membership, Peer};
use raft_transport::{HttpNode, HttpNodeConfig, HttpNodeError, HttpNodeRunError, PeerUrl};

use crate::cli::PEER_TLS_FLAGS;
use crate::metrics::Metrics;
use crate::store::KvStore;

/// The first group (the only one without `--groups`).
pub const GROUP: GroupId = GroupId(1);

/// Snapshot files kept on disk.
const SNAPSHOTS_KEPT: usize = 3;

/// The group's settings the flags do not give: raftkv's group id, the
/// members from `--cluster` (node `i` is the `i`-th URL), founding the
/// cluster or joining it (`--join`), and its snapshot retention.
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

/// With `groups` > 1, the groups after the first: the same members and
/// settings, ids 2 to `groups`; group `g` prefers member `(g - 1) % n + 1`
/// as its leader, so the leaders (and the work they do) spread. Every
/// group then persists on the host's storage writer
/// (`async_storage_writes`): one writer round syncs the WAL the groups
/// share once for all of them, where a loop thread persisting a group at a
/// time would fsync per group (docs/perf/2026-12-03-shared-wal.md: at
/// G = 16, 0.34× the writes/s of one group that way, 0.85× on the writer).
pub fn shard(first: &mut GroupOptions, groups: u64, members: usize) -> Vec<GroupOptions> {
    if groups <= 1 {
        return Vec::new();
    }
    let prefer = |g: u64| NodeId::new((g - 1) % members.max(1) as u64 + 1);
    first.preferred_leader = prefer(GROUP.get());
    first.async_storage_writes = true;
    (GROUP.get() + 1..=groups)
        .map(|g| {
            let mut o = first.clone();
            o.group = GroupId(g);
            o.preferred_leader = prefer(g);
            o
        })
        .collect()
}

/// Starts the node of `config` with an empty [`KvStore`] (recovered from
/// the data directory), its metrics recorded into `metrics`.
///
/// # Errors
/// A [`StartError`].
pub async fn start(
    mut config: HttpNodeConfig,
    metrics: &Metrics,
) -> Result<HttpNode<KvStore>, StartError> {
    config.recorder = Arc::clone(&metrics.raft) as _;
    config.transport_metrics = Arc::clone(&metrics.transport);
    HttpNode::start(config, |_| KvStore::new())
        .await
        .map_err(StartError)
}

/// Why the node could not start, saying which flag to change.
#[derive(Debug, thiserror::Error)]
#[error("{}", start_error(.0))]
pub struct StartError(pub HttpNodeError);

fn start_error(e: &HttpNodeError) -> String {
    match e {
        HttpNodeError::Tls(e) => PEER_TLS_FLAGS.describe(e),
        HttpNodeError::DataDir(e) => data_dir_error(e),
        other => other.to_string(),
    }
}

/// A failure the node cannot continue after: storage, mostly. The process
/// exits; a restart recovers from the WAL.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LoopError(String);

impl From<HttpNodeRunError> for LoopError {
    fn from(e: HttpNodeRunError) -> LoopError {
        let (text, disk_full) = match &e {
            HttpNodeRunError::Fatal(f) => (format!("{}: {}", f.what, f.reason), f.disk_full),
            HttpNodeRunError::RecordClusterId { disk_full, .. } => (e.to_string(), *disk_full),
            other => (other.to_string(), false),
        };
        let hint = if disk_full {
            "; the disk is full: free space and restart the node (a smaller --wal-segment-size \
             needs less of it)"
        } else {
            ""
        };
        LoopError(format!("{text}{hint}"))
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
        let text = LoopError::from(HttpNodeRunError::Fatal(full)).to_string();
        assert!(text.contains("the disk is full"), "{text}");
        assert!(text.contains("--wal-segment-size"), "{text}");
        let other = raft_host::FatalError {
            group: GROUP,
            what: "persist",
            reason: "Permission denied".into(),
            disk_full: false,
        };
        assert!(
            !LoopError::from(HttpNodeRunError::Fatal(other))
                .to_string()
                .contains("disk is full")
        );
    }
}
