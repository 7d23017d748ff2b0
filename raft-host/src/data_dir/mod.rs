//! A node's data directory: whose it is (an [`Identity`] record, checked
//! on every start) and the durable storage under it, opened in the order
//! that keeps a crash harmless.
//!
//! Layout: `<dir>/identity`, then raft-storage's `<dir>/snap/` and
//! `<dir>/wal/` for a node of one group ([`DataDir::open`]); for a node of
//! many ([`DataDir::open_sharded`]), one WAL they all share in
//! `<dir>/groups/wal/` and each group's snapshots in
//! `<dir>/groups/<id>/snap/`.

mod identity;

use std::path::{Path, PathBuf};

use std::sync::Arc;

use raft_core::{GroupId, NodeId};
use raft_storage::{DiskStorage, OpenError, Recovery, SkippedSnapshot, StorageOptions, WAL_DIR};
use raft_wal::SharedWal;

pub use identity::{IDENTITY_FILE, Identity, IdentityError, cluster_id};

use crate::options::Membership;

/// Why a data directory could not be opened. Each message says what is
/// wrong with the directory in one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
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
        source: OpenError,
    },
    /// [`DataDir::open_sharded`] was given no group.
    #[error("no group to open: a node runs at least one")]
    NoGroups,
    /// The WAL the further groups share refused to open.
    #[error("shared WAL in {}: {source}", path.display())]
    SharedWal {
        /// Its directory.
        path: PathBuf,
        /// The cause.
        source: raft_wal::OpenError,
    },
    /// The identity record could not be read.
    #[error("identity record: {0}")]
    Identity(#[from] IdentityError),
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
        "data directory {} belongs to node {recorded}, not node {given}: start node {recorded} \
         on it, or give node {given} a data directory of its own",
        dir.display()
    )]
    WrongNode {
        /// The data directory.
        dir: PathBuf,
        /// The node it belongs to.
        recorded: NodeId,
        /// The node asked for.
        given: NodeId,
    },
    /// The directory belongs to another cluster than the founders given.
    #[error(
        "data directory {} belongs to cluster {recorded:016x}, but its first {founders} \
         founder(s) given make cluster {derived:016x}: this directory is another cluster's",
        dir.display()
    )]
    WrongCluster {
        /// The data directory.
        dir: PathBuf,
        /// The cluster it belongs to.
        recorded: u64,
        /// How many founders the recorded id hashes.
        founders: u64,
        /// The id those founders give.
        derived: u64,
    },
    /// The directory is a joining node's that has no log yet, and it was
    /// opened to found a group: that would start a second cluster beside
    /// the one it joined.
    #[error(
        "data directory {} belongs to a node that joined a cluster and has no log yet: founding \
         a group here would start a second cluster; start it as a joiner (Membership::Join), as \
         when it first joined",
        dir.display()
    )]
    JoinerWithoutLog {
        /// The data directory.
        dir: PathBuf,
    },
    /// The directory holds a log but no identity record.
    #[error(
        "data directory {} holds a log but no identity record, so which node it belongs to is \
         unknown and will not be guessed; if it is node N's, write the line `node-id N` to {}",
        dir.display(),
        dir.join(IDENTITY_FILE).display()
    )]
    Unrecorded {
        /// The data directory.
        dir: PathBuf,
    },
}

impl DataDirError {
    /// True if what failed ran out of space (a full disk or quota).
    pub fn is_disk_full(&self) -> bool {
        raft_io::is_disk_full(self)
    }
}

/// An opened data directory: its identity, kept up to date on disk.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    identity: Identity,
}

impl DataDir {
    /// Opens (creating on first start) the data directory of node `id`
    /// and recovers its storage, ready for
    /// [`Host::start_group`](crate::Host::start_group) with the same
    /// `membership`.
    ///
    /// The identity record is checked first: a directory of another node,
    /// or of a cluster whose founders are not the first ones of
    /// [`Membership::Found`], is refused; so is a directory with a log but
    /// no record. A new directory gets its record before its first log
    /// entry (the host writes the founding log when the group starts), so
    /// a crash in between leaves a recorded, empty directory.
    ///
    /// # Errors
    /// A [`DataDirError`]; [`DataDirError::is_disk_full`] tells a full
    /// disk.
    pub fn open(
        path: &Path,
        id: NodeId,
        membership: &Membership,
        options: StorageOptions,
    ) -> Result<(DataDir, DiskStorage), DataDirError> {
        DataDir::open_with(path, id, membership, |path| open_storage(path, options))
    }

    /// Opens (creating on first start) the data directory of node `id`
    /// with every group it runs (`groups`, the first being the one
    /// [`DataDir::open`] would open, each with the membership it starts
    /// with) and recovers their storages, in that order.
    ///
    /// With more than one group, a new directory keeps them all in **one
    /// WAL they share** (see [`DataDir::open_groups`]), so that their
    /// writes share fdatasyncs; the first group's snapshots are then in
    /// `<dir>/groups/<id>/snap/` like the others'. A directory whose first
    /// group has a WAL of its own (`<dir>/wal/`, a one-group directory or
    /// one written before) keeps it. The identity checks are
    /// [`DataDir::open`]'s.
    ///
    /// # Errors
    /// A [`DataDirError`]; [`DataDirError::NoGroups`] for an empty
    /// `groups`.
    pub fn open_sharded(
        path: &Path,
        id: NodeId,
        groups: &[(GroupId, &Membership)],
        options: StorageOptions,
    ) -> Result<(DataDir, Vec<DiskStorage>), DataDirError> {
        let [(_, first), rest @ ..] = groups else {
            return Err(DataDirError::NoGroups);
        };
        if rest.is_empty() || path.join(WAL_DIR).exists() {
            let (dir, storage) = DataDir::open(path, id, first, options.clone())?;
            let mut storages = vec![storage];
            if !rest.is_empty() {
                storages.extend(dir.open_groups(rest, options)?);
            }
            return Ok((dir, storages));
        }
        let mut rest_storages = Vec::new();
        let (dir, first_storage) = DataDir::open_with(path, id, first, |path| {
            let mut opened = open_shared(path, groups, &options)?.into_iter();
            let first = opened.next().expect("one storage per group");
            rest_storages.extend(opened.map(|(storage, _)| storage));
            Ok(first)
        })?;
        for (storage, &(group, membership)) in rest_storages.iter().zip(rest) {
            let group_path = dir.group_path(group)?;
            refuse_joiner_founding(&group_path, &dir.identity, membership, storage)?;
        }
        rest_storages.insert(0, first_storage);
        Ok((dir, rest_storages))
    }

    /// [`DataDir::open`] with the first group's storage opened by `open`
    /// (which returns it and whether it was fresh).
    fn open_with(
        path: &Path,
        id: NodeId,
        membership: &Membership,
        open: impl FnOnce(&Path) -> Result<(DiskStorage, bool), DataDirError>,
    ) -> Result<(DataDir, DiskStorage), DataDirError> {
        std::fs::create_dir_all(path).map_err(|source| DataDirError::Dir {
            path: path.to_path_buf(),
            source,
        })?;
        let recorded = Identity::load(path)?;
        if let Some(identity) = &recorded {
            check_identity(path, identity, id, membership)?;
        }
        let (storage, fresh) = open(path)?;
        if let Some(identity) = &recorded {
            refuse_joiner_founding(path, identity, membership, &storage)?;
        }
        let identity = match recorded {
            Some(identity) => identity,
            None if fresh => record_new_identity(path, id, membership)?,
            None => {
                return Err(DataDirError::Unrecorded {
                    dir: path.to_path_buf(),
                });
            }
        };
        let dir = DataDir {
            path: path.to_path_buf(),
            identity,
        };
        Ok((dir, storage))
    }

    /// Opens (creating on first start) the storage of a further group of
    /// this node with a WAL of its own, in `<dir>/groups/<group>/`, ready
    /// for [`Host::start_group`](crate::Host::start_group) with the same
    /// `membership`; the node's first group keeps the storage
    /// [`DataDir::open`] returned. [`DataDir::open_groups`] opens many
    /// groups over one WAL instead, so that they share fdatasyncs.
    ///
    /// # Errors
    /// A [`DataDirError`]: [`DataDirError::Storage`], or
    /// [`DataDirError::JoinerWithoutLog`] for a joiner asked to found.
    pub fn open_group(
        &self,
        group: GroupId,
        membership: &Membership,
        options: StorageOptions,
    ) -> Result<DiskStorage, DataDirError> {
        let path = self.group_path(group)?;
        let (storage, _) = open_storage(&path, options)?;
        refuse_joiner_founding(&path, &self.identity, membership, &storage)?;
        Ok(storage)
    }

    /// Opens (creating on first start) the storages of further groups of
    /// this node (each with the membership it starts with), in that order,
    /// over **one WAL they share** in `<dir>/groups/wal/`, so that their
    /// writes share fdatasyncs; each group's snapshots live in
    /// `<dir>/groups/<id>/snap/`. A group directory that holds a WAL of
    /// its own (written by [`DataDir::open_group`]) keeps it. Groups the
    /// shared WAL holds but `groups` does not name are left in it, with a
    /// warning.
    ///
    /// # Errors
    /// A [`DataDirError`]: [`DataDirError::SharedWal`],
    /// [`DataDirError::Storage`] naming the group's directory, or
    /// [`DataDirError::JoinerWithoutLog`] for a joiner asked to found.
    pub fn open_groups(
        &self,
        groups: &[(GroupId, &Membership)],
        options: StorageOptions,
    ) -> Result<Vec<DiskStorage>, DataDirError> {
        let opened = open_shared(&self.path, groups, &options)?;
        let mut storages = Vec::with_capacity(groups.len());
        for ((storage, _), &(group, membership)) in opened.into_iter().zip(groups) {
            let path = self.group_path(group)?;
            refuse_joiner_founding(&path, &self.identity, membership, &storage)?;
            storages.push(storage);
        }
        Ok(storages)
    }

    /// `<dir>/groups/<group>/`, created.
    fn group_path(&self, group: GroupId) -> Result<PathBuf, DataDirError> {
        group_path(&self.path, group)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the directory records about itself.
    pub fn identity(&self) -> Identity {
        self.identity
    }

    /// Records the cluster id a joining node learned from its peers, so a
    /// restart keeps it. Does nothing if one is recorded already.
    ///
    /// # Errors
    /// The I/O error; the record on disk is then the old one.
    pub fn record_cluster_id(&mut self, cluster: u64) -> std::io::Result<()> {
        debug_assert_ne!(cluster, 0, "cluster ids are never 0");
        if self.identity.cluster_id.is_some() {
            return Ok(());
        }
        let updated = Identity {
            cluster_id: Some(cluster),
            ..self.identity
        };
        updated.save(&self.path)?;
        self.identity = updated;
        Ok(())
    }
}

/// Where further groups' storage lives, under the data directory.
pub const GROUPS_DIR: &str = "groups";

/// The WAL a node's groups share, under [`GROUPS_DIR`].
pub const SHARED_WAL_DIR: &str = "wal";

/// `<dir>/groups/<group>/`, created.
fn group_path(dir: &Path, group: GroupId) -> Result<PathBuf, DataDirError> {
    let path = dir.join(GROUPS_DIR).join(group.get().to_string());
    std::fs::create_dir_all(&path).map_err(|source| DataDirError::Dir {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Opens the storages of `groups` under `dir`'s [`GROUPS_DIR`], over the
/// WAL they share (a group directory with a WAL of its own keeps it);
/// true for each that was fresh.
fn open_shared(
    dir: &Path,
    groups: &[(GroupId, &Membership)],
    options: &StorageOptions,
) -> Result<Vec<(DiskStorage, bool)>, DataDirError> {
    let wal_path = dir.join(GROUPS_DIR).join(SHARED_WAL_DIR);
    let paths = (groups.iter())
        .map(|&(group, _)| group_path(dir, group))
        .collect::<Result<Vec<_>, _>>()?;
    let own_wal = |path: &Path| path.join(WAL_DIR).exists();
    // Groups that all keep WALs of their own (an older layout) need no
    // shared one, nor its preallocated segment.
    if !wal_path.exists() && paths.iter().all(|p| own_wal(p)) {
        return (paths.iter())
            .map(|path| open_storage(path, options.clone()))
            .collect();
    }
    let (wal, mut recovered) =
        SharedWal::open(&wal_path, options.shared_wal_options()).map_err(|source| {
            DataDirError::SharedWal {
                path: wal_path.clone(),
                source,
            }
        })?;
    if let Some(t) = &recovered.truncated_tail {
        tracing::warn!(
            segment = t.segment,
            offset = t.truncated_at,
            "repaired the torn tail of the shared WAL"
        );
    }
    let wal = Arc::new(wal);
    let mut storages = Vec::with_capacity(groups.len());
    for (&(group, _), path) in groups.iter().zip(&paths) {
        let log = recovered.groups.remove(&group);
        let opened = if own_wal(path) && log.is_none() {
            open_storage(path, options.clone())?
        } else {
            let opened =
                DiskStorage::open_in_shared(path, options.clone(), Arc::clone(&wal), group, log);
            report(path, opened)?
        };
        storages.push(opened);
    }
    for group in recovered.groups.keys() {
        tracing::warn!(%group, wal = %wal_path.display(), "the shared WAL holds a group this node was not started with; it is kept");
    }
    Ok(storages)
}

/// Opens the storage in `path`; true if it was fresh.
fn open_storage(path: &Path, options: StorageOptions) -> Result<(DiskStorage, bool), DataDirError> {
    report(path, DiskStorage::open(path, options))
}

/// The storage opened in `path`, its skipped snapshots logged; true if it
/// was fresh.
fn report(
    path: &Path,
    opened: Result<(DiskStorage, Recovery), OpenError>,
) -> Result<(DiskStorage, bool), DataDirError> {
    let (storage, recovery) = opened.map_err(|source| DataDirError::Storage {
        path: path.to_path_buf(),
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
    Ok((storage, recovery.fresh))
}

/// A joiner's record names no founders; with no log yet, founding here
/// would make a cluster of its own (a joiner killed before its first
/// append, restarted without its join flag).
fn refuse_joiner_founding(
    path: &Path,
    identity: &Identity,
    membership: &Membership,
    storage: &DiskStorage,
) -> Result<(), DataDirError> {
    let joiner = identity.founders.is_none();
    if joiner && matches!(membership, Membership::Found(_)) && log_is_empty(storage) {
        return Err(DataDirError::JoinerWithoutLog {
            dir: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Whether `storage` holds nothing: no entry, no snapshot, no term.
fn log_is_empty(storage: &DiskStorage) -> bool {
    use raft_core::Storage;
    let no_term = storage
        .initial_state()
        .is_ok_and(|s| s.hard_state.term == raft_core::Term::ZERO);
    no_term && storage.last_index().is_ok_and(|i| i == raft_core::Index(0))
}

/// Writes the identity record of a new directory: node `id`, and for a
/// founder the cluster id its founders give.
fn record_new_identity(
    dir: &Path,
    id: NodeId,
    membership: &Membership,
) -> Result<Identity, DataDirError> {
    let founders = match membership {
        Membership::Found(founders) => Some(founders),
        Membership::Join(_) => None,
    };
    let identity = Identity {
        node_id: id,
        cluster_id: founders.map(|f| cluster_id(f)),
        founders: founders.map(|f| f.len() as u64),
    };
    identity
        .save(dir)
        .map_err(|source| DataDirError::RecordIdentity {
            dir: dir.to_path_buf(),
            source,
        })?;
    Ok(identity)
}

/// Refuses a record of another node, or of a cluster whose founders are
/// not the first of `membership`'s (checked when both are recorded and at
/// least that many founders are given).
fn check_identity(
    dir: &Path,
    identity: &Identity,
    id: NodeId,
    membership: &Membership,
) -> Result<(), DataDirError> {
    if identity.node_id != id {
        return Err(DataDirError::WrongNode {
            dir: dir.to_path_buf(),
            recorded: identity.node_id,
            given: id,
        });
    }
    if let (Membership::Found(founders), Some(recorded), Some(n)) =
        (membership, identity.cluster_id, identity.founders)
        && let Some(first) = usize::try_from(n).ok().and_then(|n| founders.get(..n))
    {
        let derived = cluster_id(first);
        if derived != recorded {
            return Err(DataDirError::WrongCluster {
                dir: dir.to_path_buf(),
                recorded,
                founders: n,
                derived,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use raft_io::{FaultKind, SimBackend};

    use super::*;
    use crate::options::Peer;

    fn found(ports: &[u16]) -> Membership {
        let peers = ports
            .iter()
            .enumerate()
            .map(|(i, p)| Peer::new(nid(i as u64 + 1), format!("http://127.0.0.1:{p}")));
        Membership::Found(peers.collect())
    }

    fn nid(n: u64) -> NodeId {
        NodeId::new(n).unwrap()
    }

    /// Opens `dir` as node `id` of `membership` and closes it again.
    fn open_once(dir: &Path, id: u64, membership: &Membership) -> Result<Identity, DataDirError> {
        DataDir::open(dir, nid(id), membership, StorageOptions::new()).map(|(d, _)| d.identity())
    }

    #[test]
    fn every_out_of_space_error_while_opening_is_told_apart() {
        let founders = found(&[1, 2, 3]);
        let mut disk_full = 0;
        // Fail each storage operation of a first start in turn, until one
        // start gets through.
        for at_op in 0.. {
            let sim = SimBackend::new();
            sim.inject_fault(at_op, FaultKind::Enospc);
            let dir = tempfile::tempdir().unwrap();
            let options = StorageOptions::new().backend(sim.shared());
            match DataDir::open(dir.path(), nid(1), &founders, options) {
                Ok(_) if sim.op_count() <= at_op => break,
                Ok(_) => continue,
                Err(e) => {
                    disk_full += 1;
                    assert!(e.is_disk_full(), "{e}");
                    assert_eq!(e.to_string().lines().count(), 1, "{e}");
                }
            }
        }
        assert!(disk_full > 0, "no operation ran out of space");
    }

    #[test]
    fn a_new_directory_records_its_node_and_cluster_before_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let founders = found(&[1, 2, 3]);
        let identity = open_once(dir.path(), 2, &founders).unwrap();
        let Membership::Found(peers) = &founders else {
            unreachable!("built as founders")
        };
        let want = Identity {
            node_id: nid(2),
            cluster_id: Some(cluster_id(peers)),
            founders: Some(3),
        };
        assert_eq!(identity, want);
        assert_eq!(Identity::load(dir.path()).unwrap(), Some(want));
        // Restarting with members added keeps the same cluster.
        assert_eq!(
            open_once(dir.path(), 2, &found(&[1, 2, 3, 4])).unwrap(),
            want
        );
    }

    #[test]
    fn another_node_id_or_cluster_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        open_once(dir.path(), 1, &found(&[1, 2, 3])).unwrap();
        let e = open_once(dir.path(), 2, &found(&[1, 2, 3])).unwrap_err();
        assert!(matches!(e, DataDirError::WrongNode { .. }), "{e}");
        assert_eq!(e.to_string().lines().count(), 1, "{e}");
        let e = open_once(dir.path(), 1, &found(&[1, 2, 9])).unwrap_err();
        assert!(matches!(e, DataDirError::WrongCluster { .. }), "{e}");
        assert_eq!(e.to_string().lines().count(), 1, "{e}");
    }

    #[test]
    fn a_directory_with_a_log_but_no_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let founders = found(&[1, 2, 3]);
        let (_, storage) =
            DataDir::open(dir.path(), nid(1), &founders, StorageOptions::new()).unwrap();
        let Membership::Found(peers) = &founders else {
            unreachable!("built as founders")
        };
        let changes = peers.iter().map(|p| raft_core::ConfChange {
            kind: raft_core::ConfChangeKind::AddNode,
            node_id: p.id,
            context: bytes::Bytes::new(),
        });
        storage
            .bootstrap(&raft_core::FoundingLog::new(changes).unwrap())
            .unwrap();
        drop(storage);
        std::fs::remove_file(dir.path().join(IDENTITY_FILE)).unwrap();
        let e = open_once(dir.path(), 1, &founders).unwrap_err();
        assert!(matches!(e, DataDirError::Unrecorded { .. }), "{e}");
        // An empty one (created by hand, or a first start that died before
        // its log) is adopted.
        let empty = tempfile::tempdir().unwrap();
        std::fs::create_dir(empty.path().join("wal")).unwrap();
        open_once(empty.path(), 3, &founders).unwrap();
    }

    #[test]
    fn a_joiner_without_a_log_is_never_opened_to_found_a_group() {
        let dir = tempfile::tempdir().unwrap();
        let join = Membership::Join(vec![Peer::new(nid(1), "http://127.0.0.1:1")]);
        drop(DataDir::open(dir.path(), nid(4), &join, StorageOptions::new()).unwrap());
        let found = found(&[1, 2, 3, 4]);
        let e = DataDir::open(dir.path(), nid(4), &found, StorageOptions::new()).unwrap_err();
        assert!(matches!(e, DataDirError::JoinerWithoutLog { .. }), "{e}");
        assert_eq!(e.to_string().lines().count(), 1);
        // As a joiner it opens again.
        DataDir::open(dir.path(), nid(4), &join, StorageOptions::new()).unwrap();
    }

    #[test]
    fn a_joining_node_records_the_cluster_id_it_learns_once() {
        let dir = tempfile::tempdir().unwrap();
        let join = Membership::Join(vec![Peer::new(nid(1), "http://127.0.0.1:1")]);
        let (mut data, _storage) =
            DataDir::open(dir.path(), nid(4), &join, StorageOptions::new()).unwrap();
        assert_eq!(data.identity().cluster_id, None);
        data.record_cluster_id(0xabc).unwrap();
        data.record_cluster_id(0xdef).unwrap();
        assert_eq!(
            Identity::load(dir.path()).unwrap().unwrap().cluster_id,
            Some(0xabc)
        );
    }
}
