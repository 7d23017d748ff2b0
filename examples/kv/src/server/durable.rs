//! Opening a node's data directory: recover the newest snapshot and the WAL
//! after it, or bootstrap a founding member on first start.
//!
//! Layout: `<data-dir>/snap/` (raft-snap) and `<data-dir>/wal/` (raft-wal).
//! A snapshot file is written (atomically) before its WAL marker, so after a
//! crash the newest snapshot file may be unknown to the WAL: recovery then
//! falls back to the newest snapshot the WAL has a marker for, as etcd does.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use raft_core::{
    AnyConfChange, ConfChange, ConfChangeKind, ConfState, Entry, EntryKind, HardState, Index,
    LogId, MemoryStorage, NodeId, Snapshot, StorageError, Term,
};
use raft_snap::{SnapError, Snapshotter};
use raft_wal::{OpenError, SaveError, Wal, WalOptions};

use crate::peer_url::PeerUrl;
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
    /// The snapshot directory could not be read.
    #[error("snapshots: {0}")]
    Snap(#[from] SnapError),
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
}

/// Opens (creating on first start) the data directory of node `id`.
/// A founding member (`join == false`) that finds nothing writes the
/// bootstrap log: one `AddNode` conf change per founder at term 1, all
/// committed, exactly like every other founder (etcd's `StartNode`). A
/// joining node starts empty and learns the log, or a snapshot, from the
/// leader.
///
/// # Errors
/// An [`OpenDataError`] that says what is wrong with the directory.
pub fn open(dir: &Path, founders: &[PeerUrl], join: bool) -> Result<Opened, OpenDataError> {
    let wal_dir = dir.join("wal");
    let snap_dir = dir.join("snap");
    for d in [dir, &wal_dir, &snap_dir] {
        std::fs::create_dir_all(d).map_err(|source| OpenDataError::Dir {
            path: d.to_path_buf(),
            source,
        })?;
    }
    let snapshotter = Snapshotter::new(&snap_dir)?;
    let newest = match snapshotter.load_newest() {
        Ok(s) => Some(s),
        Err(SnapError::NotFound { .. }) => None,
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
    let mut store = KvStore::new();
    let mut conf_state = ConfState::default();
    let snapshot_id = snapshot.as_ref().map(|s| s.metadata.log_id());
    if let Some(snap) = snapshot {
        let index = snap.metadata.index;
        store
            .restore(index.0, snap.data.clone())
            .map_err(|source| OpenDataError::Restore { index, source })?;
        conf_state = snap.metadata.conf_state.clone();
        storage.apply_snapshot(snap)?;
    }
    let fresh = snapshot_id.is_none()
        && recovered.entries.is_empty()
        && recovered.hard_state == HardState::default();
    let mut bootstrapped = false;
    if fresh && !join {
        let (hs, entries) = bootstrap_log(founders);
        wal.save(Some(&hs), &entries, true)?;
        storage.append(&entries)?;
        storage.set_hard_state(hs);
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
    })
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

/// The founders' common first log: `AddNode(i, url_i)` at index `i`, term 1,
/// all committed.
pub fn bootstrap_log(founders: &[PeerUrl]) -> (HardState, Vec<Entry>) {
    let entries: Vec<Entry> = founders
        .iter()
        .enumerate()
        .map(|(i, url)| {
            let id = NodeId::new(i as u64 + 1).expect("ids start at 1");
            let cc = AnyConfChange::V1(ConfChange {
                kind: ConfChangeKind::AddNode,
                node_id: id,
                context: Bytes::copy_from_slice(url.as_str().as_bytes()),
            });
            let (kind, data) = cc.to_entry_data();
            debug_assert_eq!(kind, EntryKind::ConfChange);
            Entry {
                term: Term(1),
                index: Index(i as u64 + 1),
                kind,
                data,
            }
        })
        .collect();
    let hs = HardState {
        term: Term(1),
        vote: None,
        commit: Index(entries.len() as u64),
    };
    (hs, entries)
}

const CLUSTER_ID_FILE: &str = "cluster-id";

/// The cluster id recorded in `dir` (16 hex digits), if any.
///
/// # Errors
/// [`OpenDataError::Dir`] if the file exists but cannot be read or parsed.
pub fn load_cluster_id(dir: &Path) -> Result<Option<u64>, OpenDataError> {
    let path = dir.join(CLUSTER_ID_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(OpenDataError::Dir { path, source }),
    };
    match u64::from_str_radix(text.trim(), 16) {
        Ok(id) if id != 0 => Ok(Some(id)),
        _ => Err(OpenDataError::Dir {
            path,
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a cluster id (16 hex digits)",
            ),
        }),
    }
}

/// Records the cluster id in `dir`: temporary file, fsync, rename, fsync
/// of the directory, so a crash leaves either no file or the whole one.
///
/// # Errors
/// The I/O error.
pub fn save_cluster_id(dir: &Path, id: u64) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{CLUSTER_ID_FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    writeln!(f, "{id:016x}")?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(CLUSTER_ID_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}
