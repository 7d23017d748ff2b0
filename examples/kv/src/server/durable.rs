//! Opening a node's data directory: check whose it is, recover the storage
//! (raft-storage's [`DiskStorage`]), or bootstrap a founding member on
//! first start. raft-host restores the state machine from the storage's
//! newest snapshot when it starts the group.
//!
//! Layout: `<data-dir>/identity` (see [`super::identity`]), then
//! raft-storage's `<data-dir>/snap/` and `<data-dir>/wal/`.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use raft_core::{ConfChange, ConfChangeKind, FoundingLog, NodeId};
use raft_storage::{DiskStorage, PersistError, SkippedSnapshot, StorageOptions};
use raft_wal::WalOptions;

use raft_transport::PeerUrl;

use super::identity::{self, Identity, LoadIdentityError};

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
    /// The storage refused to open (damaged, locked by another process,
    /// ...).
    #[error("storage in {}: {source}", path.display())]
    Storage {
        /// The data directory.
        path: PathBuf,
        /// The cause.
        source: raft_storage::OpenError,
    },
    /// Writing the bootstrap entries failed.
    #[error("cannot write the initial log: {0}")]
    Bootstrap(#[from] PersistError),
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
    /// The disk (or the user's quota) is full.
    #[error(
        "{source}: the disk is full; free space, or give a smaller --wal-segment-size (now {}; \
         the WAL fills each segment up front and prepares the next one early)",
        size_text(*segment_bytes)
    )]
    DiskFull {
        /// What failed.
        source: Box<OpenDataError>,
        /// The WAL segment size in use.
        segment_bytes: u64,
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
    /// The durable log and snapshots, for raft-host to run the group on.
    pub storage: DiskStorage,
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
/// The WAL's segments are `wal_segment_bytes` long.
///
/// # Errors
/// An [`OpenDataError`] that says what is wrong with the directory;
/// [`OpenDataError::DiskFull`] when what failed was out of space.
pub fn open(
    dir: &Path,
    id: NodeId,
    founders: &[PeerUrl],
    join: bool,
    wal_segment_bytes: u64,
) -> Result<Opened, OpenDataError> {
    open_on(
        dir,
        id,
        founders,
        join,
        wal_segment_bytes,
        StorageOptions::new(),
    )
}

/// [`open`], with the storage on `storage`'s backend (a simulated disk in
/// tests).
fn open_on(
    dir: &Path,
    id: NodeId,
    founders: &[PeerUrl],
    join: bool,
    wal_segment_bytes: u64,
    storage: StorageOptions,
) -> Result<Opened, OpenDataError> {
    let storage = storage.wal(WalOptions::new().segment_size_bytes(wal_segment_bytes));
    open_storage(dir, id, founders, join, storage).map_err(|e| {
        if is_disk_full(&e) {
            OpenDataError::DiskFull {
                source: Box::new(e),
                segment_bytes: wal_segment_bytes,
            }
        } else {
            e
        }
    })
}

/// True if `e`, or an error in its source chain, is a full disk or quota.
pub use raft_wal::io::is_disk_full;

/// `bytes` as `64 MiB`, `512 KiB` or `1000 bytes`.
pub fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

fn open_storage(
    dir: &Path,
    id: NodeId,
    founders: &[PeerUrl],
    join: bool,
    storage_options: StorageOptions,
) -> Result<Opened, OpenDataError> {
    std::fs::create_dir_all(dir).map_err(|source| OpenDataError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    let recorded = Identity::load(dir)?;
    if let Some(identity) = &recorded {
        check_identity(dir, identity, id, founders, join)?;
    }
    let (storage, recovery) =
        DiskStorage::open(dir, storage_options).map_err(|source| OpenDataError::Storage {
            path: dir.to_path_buf(),
            source,
        })?;
    for skipped in &recovery.skipped_snapshots {
        match skipped {
            SkippedSnapshot::Damaged { id, path } => {
                tracing::error!(snapshot = %id, path = %path.display(), "skipped a damaged snapshot")
            }
            other => tracing::warn!(skipped = ?other, "skipped a snapshot"),
        }
    }
    let identity = match recorded {
        Some(identity) => identity,
        None if recovery.fresh => record_new_identity(dir, id, founders, join)?,
        None => {
            return Err(OpenDataError::Unrecorded {
                dir: dir.to_path_buf(),
            });
        }
    };
    let bootstrapped = recovery.fresh && !join;
    if bootstrapped {
        storage.bootstrap(&bootstrap_log(founders))?;
    }
    Ok(Opened {
        storage,
        bootstrapped,
        identity,
    })
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
        cluster_id: (!join).then(|| identity::cluster_id(founders).max(1)),
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
        let derived = identity::cluster_id(first).max(1);
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
    use raft_io::{FaultKind, SimBackend};

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
        open(dir, nid(id), founders, false, 1 << 20).map(|o| o.identity)
    }

    #[test]
    fn every_out_of_space_error_while_opening_says_what_to_do() {
        let founders = urls(&[1, 2, 3]);
        let mut disk_full = 0;
        // Fail each storage operation of a first start in turn, until one
        // start gets through.
        for at_op in 0.. {
            let sim = SimBackend::new();
            sim.inject_fault(at_op, FaultKind::Enospc);
            let dir = tempfile::tempdir().unwrap();
            let options = StorageOptions::new().backend(sim.shared());
            match open_on(dir.path(), nid(1), &founders, false, 1 << 20, options) {
                Ok(_) if sim.op_count() <= at_op => break,
                Ok(_) => continue,
                Err(e) => {
                    disk_full += 1;
                    let text = e.to_string();
                    assert!(matches!(e, OpenDataError::DiskFull { .. }), "{text}");
                    assert!(text.contains("the disk is full"), "{text}");
                    assert!(text.contains("--wal-segment-size"), "{text}");
                    assert!(text.contains("1 MiB"), "{text}");
                    assert_eq!(text.lines().count(), 1, "{text}");
                }
            }
        }
        assert!(disk_full > 0, "no operation ran out of space");
    }

    #[test]
    fn a_new_directory_records_its_node_and_cluster_before_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let founders = urls(&[1, 2, 3]);
        let identity = open_once(dir.path(), 2, &founders).unwrap();
        let want = Identity {
            node_id: nid(2),
            cluster_id: Some(identity::cluster_id(&founders).max(1)),
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
