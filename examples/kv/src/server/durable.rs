//! Opening a node's data directory: recover the newest snapshot and the WAL
//! after it, or bootstrap a founding member on first start.
//!
//! Layout: `<data-dir>/identity` (see [`super::identity`]), `<data-dir>/snap/`
//! (raft-snap) and `<data-dir>/wal/` (raft-wal).
//! A snapshot file is written (atomically) before its WAL marker, so after a
//! crash the newest snapshot file may be unknown to the WAL: recovery then
//! falls back to the newest snapshot the WAL has a marker for, as etcd does.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use raft_core::{
    ConfChange, ConfChangeKind, ConfState, FoundingLog, HardState, Index, LogId, MemoryStorage,
    NodeId, Snapshot, StorageError, Term,
};
use raft_snap::{LoadError, OpenDirError, Snapshotter};
use raft_wal::{OpenError, SaveError, Wal, WalOptions};

use super::identity::{Identity, LoadIdentityError};
use crate::peer_url::{self, PeerUrl};
use crate::store::{KvStore, RestoreError};

/// Why a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenDataError {
    /// The directory could not be created or is not a directory.
    #[error("cannot use data directory {}: {source}", path.display())]
    Dir {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The WAL refused to open (damaged, locked by another process, ...).
    #[error("write-ahead log in {}: {source}", path.display())]
    Wal {
        /// The WAL directory.
        path: PathBuf,
        /// The cause.
        source: OpenError,
    },
    /// Writing the bootstrap entries failed.
    #[error("cannot write the initial log: {0}")]
    Bootstrap(#[from] SaveError),
    /// The snapshot directory could not be opened.
    #[error("snapshots: {0}")]
    SnapDir(#[from] OpenDirError),
    /// The snapshot directory could not be read.
    #[error("snapshots: {0}")]
    Snap(#[from] LoadError),
    /// The snapshot's data is not a raftkv state.
    #[error("snapshot at index {index}: {source}")]
    Restore {
        /// The snapshot's index.
        index: Index,
        /// The cause.
        source: RestoreError,
    },
    /// The recovered log could not be loaded into memory.
    #[error("recovered log: {0}")]
    Storage(#[from] StorageError),
    /// The identity record could not be read.
    #[error("identity record: {0}")]
    Identity(#[from] LoadIdentityError),
    /// The identity record could not be written.
    #[error("cannot record the identity of {}: {source}", dir.display())]
    RecordIdentity {
        /// The data directory.
        dir: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The directory belongs to another node.
    #[error(
        "data directory {} belongs to node {recorded}, not --id {given}: start node {recorded} \
         on it, or give node {given} a --data-dir of its own",
        dir.display()
    )]
    WrongNode {
        /// The data directory.
        dir: PathBuf,
        /// The node it belongs to.
        recorded: NodeId,
        /// The `--id` given.
        given: NodeId,
    },
    /// The directory belongs to another cluster than `--cluster` describes.
    #[error(
        "data directory {} belongs to cluster {recorded:016x}, but the first {founders} URL(s) \
         of --cluster found cluster {derived:016x}: this directory is another cluster's",
        dir.display()
    )]
    WrongCluster {
        /// The data directory.
        dir: PathBuf,
        /// The cluster it belongs to.
        recorded: u64,
        /// How many founders the recorded id hashes.
        founders: u64,
        /// The id those `--cluster` URLs give.
        derived: u64,
    },
    /// The directory holds a log but no identity record.
    #[error(
        "data directory {} holds a log but no identity record, so which node it belongs to is \
         unknown and raftkv will not guess; if it is node N's, write the line `node-id N` to {}",
        dir.display(),
        dir.join(super::identity::IDENTITY_FILE).display()
    )]
    Unrecorded {
        /// The data directory.
        dir: PathBuf,
    },
}

/// Everything a node starts from.
#[derive(Debug)]
pub struct Opened {
    /// The WAL, positioned after the recovered log.
    pub wal: Wal,
    /// The snapshot directory.
    pub snapshotter: Snapshotter,
    /// The in-memory copy of the log that raft-core reads.
    pub storage: MemoryStorage,
    /// The state machine as of the snapshot; entries after it are applied
    /// again as raft-core hands them out.
    pub store: KvStore,
    /// The membership as of the snapshot (or empty): conf-change entries
    /// after it are applied again.
    pub conf_state: ConfState,
    /// The snapshot recovered, if any.
    pub snapshot: Option<LogId>,
    /// True when this start wrote the bootstrap log.
    pub bootstrapped: bool,
    /// The directory's identity record (written by this start if new).
    pub identity: Identity,
}

/// Opens (creating on first start) the data directory of node `id`.
///
/// The identity record is checked first: a directory of another node, or
/// of a cluster whose founders are not the first URLs of `founders`, is
/// refused; so is a directory with a log but no record. A new directory
/// gets its record before its first log entry, so a crash in between
/// leaves a recorded, empty directory.
///
/// A founding member (`join == false`) that finds nothing writes the
/// bootstrap log: one `AddNode` conf change per founder at term 1, all
/// committed, exactly like every other founder (etcd's `StartNode`). A
/// joining node starts empty and learns the log, or a snapshot, from the
/// leader.
///
/// # Errors
/// An [`OpenDataError`] that says what is wrong with the directory.
pub fn open(
    dir: &Path,
    id: NodeId,
    founders: &[PeerUrl],
    join: bool,
) -> Result<Opened, OpenDataError> {
    let (wal_dir, snap_dir) = create_dirs(dir)?;
    let recorded = Identity::load(dir)?;
    if let Some(identity) = &recorded {
        check_identity(dir, identity, id, founders, join)?;
    }
    let snapshotter = Snapshotter::new(&snap_dir)?;
    let newest = match snapshotter.load_newest() {
        Ok(s) => Some(s),
        Err(LoadError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let (wal, recovered, snapshot) = open_wal(&wal_dir, &snapshotter, newest)?;
    if let Some(t) = &recovered.truncated_tail {
        tracing::warn!(
            segment = t.segment,
            offset = t.truncated_at,
            "repaired a torn WAL tail"
        );
    }
    let storage = MemoryStorage::new();
    let snapshot_id = snapshot.as_ref().map(|s| s.metadata.log_id());
    let (store, conf_state) = restore(snapshot, &storage)?;
    let fresh = snapshot_id.is_none()
        && recovered.entries.is_empty()
        && recovered.hard_state == HardState::default();
    let identity = match recorded {
        Some(identity) => identity,
        None if fresh => record_new_identity(dir, id, founders, join)?,
        None => {
            return Err(OpenDataError::Unrecorded {
                dir: dir.to_path_buf(),
            });
        }
    };
    let mut bootstrapped = false;
    if fresh && !join {
        let founding = bootstrap_log(founders);
        wal.save(Some(&founding.hard_state), &founding.entries, true)?;
        storage.append(&founding.entries)?;
        storage.set_hard_state(founding.hard_state);
        bootstrapped = true;
    } else {
        storage.append(&recovered.entries)?;
        storage.set_hard_state(recovered.hard_state);
    }
    storage.set_conf_state(conf_state.clone());
    Ok(Opened {
        wal,
        snapshotter,
        storage,
        store,
        conf_state,
        snapshot: snapshot_id,
        bootstrapped,
        identity,
    })
}

/// Creates `dir` and its `wal/` and `snap/` subdirectories if missing;
/// returns the latter two.
fn create_dirs(dir: &Path) -> Result<(PathBuf, PathBuf), OpenDataError> {
    let wal_dir = dir.join("wal");
    let snap_dir = dir.join("snap");
    for d in [dir, &wal_dir, &snap_dir] {
        std::fs::create_dir_all(d).map_err(|source| OpenDataError::Dir {
            path: d.to_path_buf(),
            source,
        })?;
    }
    Ok((wal_dir, snap_dir))
}

/// The state machine and membership of `snapshot` (empty without one),
/// installed in `storage` too.
fn restore(
    snapshot: Option<Snapshot>,
    storage: &MemoryStorage,
) -> Result<(KvStore, ConfState), OpenDataError> {
    let mut store = KvStore::new();
    let Some(snap) = snapshot else {
        return Ok((store, ConfState::default()));
    };
    let index = snap.metadata.index;
    store
        .restore(index.0, snap.data.clone())
        .map_err(|source| OpenDataError::Restore { index, source })?;
    let conf_state = snap.metadata.conf_state.clone();
    storage.apply_snapshot(snap)?;
    Ok((store, conf_state))
}

/// Writes the identity record of a new directory: node `id`, and for a
/// founder the cluster id `founders` give.
fn record_new_identity(
    dir: &Path,
    id: NodeId,
    founders: &[PeerUrl],
    join: bool,
) -> Result<Identity, OpenDataError> {
    let identity = Identity {
        node_id: id,
        cluster_id: (!join).then(|| peer_url::cluster_id(founders).max(1)),
        founders: (!join).then_some(founders.len() as u64),
    };
    identity
        .save(dir)
        .map_err(|source| OpenDataError::RecordIdentity {
            dir: dir.to_path_buf(),
            source,
        })?;
    Ok(identity)
}

/// Refuses a record of another node, or of a cluster whose founders are
/// not the first URLs of `founders` (checked when both are recorded and
/// `--cluster` lists at least that many URLs).
fn check_identity(
    dir: &Path,
    identity: &Identity,
    id: NodeId,
    founders: &[PeerUrl],
    join: bool,
) -> Result<(), OpenDataError> {
    if identity.node_id != id {
        return Err(OpenDataError::WrongNode {
            dir: dir.to_path_buf(),
            recorded: identity.node_id,
            given: id,
        });
    }
    if let (false, Some(recorded), Some(n)) = (join, identity.cluster_id, identity.founders)
        && let Some(first) = usize::try_from(n).ok().and_then(|n| founders.get(..n))
    {
        let derived = peer_url::cluster_id(first).max(1);
        if derived != recorded {
            return Err(OpenDataError::WrongCluster {
                dir: dir.to_path_buf(),
                recorded,
                founders: n,
                derived,
            });
        }
    }
    Ok(())
}

/// Opens the WAL after `newest`; if the WAL holds no marker for it (the
/// process died between writing the snapshot file and its marker), after
/// the newest snapshot the WAL does know.
fn open_wal(
    wal_dir: &Path,
    snapshotter: &Snapshotter,
    newest: Option<Snapshot>,
) -> Result<(Wal, raft_wal::Recovered, Option<Snapshot>), OpenDataError> {
    let wal_err = |source| OpenDataError::Wal {
        path: wal_dir.to_path_buf(),
        source,
    };
    let want = newest.as_ref().map(|s| s.metadata.log_id());
    match Wal::open(wal_dir, WalOptions::new().snapshot(want)) {
        Ok((wal, rec)) => Ok((wal, rec, newest)),
        Err(OpenError::SnapshotMismatch { available, .. }) if !available.is_empty() => {
            let known: Vec<(Index, Term)> = available.iter().map(|l| (l.index, l.term)).collect();
            let older = snapshotter.load_newest_matching(&known)?;
            tracing::warn!(
                skipped = ?want,
                using = ?older.metadata.log_id(),
                "newest snapshot has no WAL marker; using the newest one that has"
            );
            let id = older.metadata.log_id();
            let (wal, rec) =
                Wal::open(wal_dir, WalOptions::new().snapshot(Some(id))).map_err(wal_err)?;
            Ok((wal, rec, Some(older)))
        }
        Err(e) => Err(wal_err(e)),
    }
}

/// The founders' common first log (raft-core's [`FoundingLog`]):
/// `AddNode(i, url_i)` at index `i`, term 1, all committed. The URL in each
/// change's context is how every node, a joiner included, learns where the
/// founders listen.
pub fn bootstrap_log(founders: &[PeerUrl]) -> FoundingLog {
    let changes = founders.iter().enumerate().map(|(i, url)| ConfChange {
        kind: ConfChangeKind::AddNode,
        node_id: NodeId::new(i as u64 + 1).expect("ids start at 1"),
        context: Bytes::copy_from_slice(url.as_str().as_bytes()),
    });
    FoundingLog::new(changes).expect("distinct founders, at least one (checked by the flags)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(ports: &[u16]) -> Vec<PeerUrl> {
        ports
            .iter()
            .map(|p| PeerUrl::parse(&format!("http://127.0.0.1:{p}")).unwrap())
            .collect()
    }

    fn nid(n: u64) -> NodeId {
        NodeId::new(n).unwrap()
    }

    /// Opens `dir` as node `id` of `founders` and closes it again.
    fn open_once(dir: &Path, id: u64, founders: &[PeerUrl]) -> Result<Identity, OpenDataError> {
        open(dir, nid(id), founders, false).map(|o| o.identity)
    }

    #[test]
    fn a_new_directory_records_its_node_and_cluster_before_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let founders = urls(&[1, 2, 3]);
        let identity = open_once(dir.path(), 2, &founders).unwrap();
        let want = Identity {
            node_id: nid(2),
            cluster_id: Some(peer_url::cluster_id(&founders).max(1)),
            founders: Some(3),
        };
        assert_eq!(identity, want);
        assert_eq!(Identity::load(dir.path()).unwrap(), Some(want));
        // Restarting with members added to --cluster keeps the same cluster.
        assert_eq!(
            open_once(dir.path(), 2, &urls(&[1, 2, 3, 4])).unwrap(),
            want
        );
    }

    #[test]
    fn another_node_id_or_cluster_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        open_once(dir.path(), 1, &urls(&[1, 2, 3])).unwrap();
        let e = open_once(dir.path(), 2, &urls(&[1, 2, 3])).unwrap_err();
        assert!(matches!(e, OpenDataError::WrongNode { .. }), "{e}");
        let e = open_once(dir.path(), 1, &urls(&[1, 2, 9])).unwrap_err();
        assert!(matches!(e, OpenDataError::WrongCluster { .. }), "{e}");
        for e in [
            open_once(dir.path(), 2, &urls(&[1, 2, 3])).unwrap_err(),
            open_once(dir.path(), 1, &urls(&[1, 2, 9])).unwrap_err(),
        ] {
            assert_eq!(e.to_string().lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn a_directory_with_a_log_but_no_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        open_once(dir.path(), 1, &urls(&[1, 2, 3])).unwrap();
        std::fs::remove_file(dir.path().join(super::super::identity::IDENTITY_FILE)).unwrap();
        let e = open_once(dir.path(), 1, &urls(&[1, 2, 3])).unwrap_err();
        assert!(matches!(e, OpenDataError::Unrecorded { .. }), "{e}");
        // An empty one (created by hand, or a first start that died before
        // its log) is adopted.
        let empty = tempfile::tempdir().unwrap();
        std::fs::create_dir(empty.path().join("wal")).unwrap();
        open_once(empty.path(), 3, &urls(&[1, 2, 3])).unwrap();
    }
}
