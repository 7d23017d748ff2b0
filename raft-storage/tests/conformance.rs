//! raft-core's storage conformance suite on `DiskStorage`: on real files,
//! on the simulated file system, and reopened after every write (so every
//! read the suite makes sees what recovery rebuilt); each with its own WAL
//! and as one group of a shared WAL, beside a neighbour group that gets
//! the same writes (so the two groups' records interleave in every
//! segment).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use raft_core::testkit::conformance::{TestableStorage, check_storage};
use raft_core::{
    ConfState, Entry, GroupId, Index, InitialState, PersistBatch, Snapshot, Storage, StorageError,
    Term,
};
use raft_io::SimBackend;
use raft_storage::{CompactionPolicy, DiskStorage, PersistError, SnapshotError, StorageOptions};
use raft_wal::SharedWal;

/// The storage under test and, in a shared WAL, its neighbour group.
type Opened = (DiskStorage, Option<DiskStorage>);

/// A `DiskStorage` under test, reopened after each write when `reopen`.
struct Disk {
    storage: RefCell<Option<Opened>>,
    dir: PathBuf,
    options: StorageOptions,
    reopen: bool,
    shared: bool,
    _tmp: Option<tempfile::TempDir>,
}

const NEIGHBOUR: GroupId = GroupId(1);
const TESTED: GroupId = GroupId(2);

/// Opens the storage in `dir`: with its own WAL, or as group 2 of a
/// shared WAL beside group 1.
fn open_storage(dir: &Path, options: &StorageOptions, shared: bool) -> Opened {
    if !shared {
        let (storage, _) = DiskStorage::open(dir, options.clone()).expect("open");
        return (storage, None);
    }
    let (wal, mut recovered) =
        SharedWal::open(dir.join("shared-wal"), options.shared_wal_options()).expect("open");
    let wal = Arc::new(wal);
    let mut open = |group: GroupId, name: &str| {
        let log = recovered.groups.remove(&group);
        let (storage, _) = DiskStorage::open_in_shared(
            dir.join(name),
            options.clone(),
            Arc::clone(&wal),
            group,
            log,
        )
        .expect("open in the shared WAL");
        storage
    };
    let neighbour = open(NEIGHBOUR, "neighbour");
    (open(TESTED, "tested"), Some(neighbour))
}

impl Disk {
    fn open(
        dir: PathBuf,
        options: StorageOptions,
        reopen: bool,
        shared: bool,
        tmp: Option<tempfile::TempDir>,
    ) -> Disk {
        let storage = open_storage(&dir, &options, shared);
        Disk {
            storage: RefCell::new(Some(storage)),
            dir,
            options,
            reopen,
            shared,
            _tmp: tmp,
        }
    }

    fn on_files(shared: bool) -> Disk {
        let tmp = tempfile::tempdir().expect("tempdir");
        Disk::open(
            tmp.path().join("node"),
            StorageOptions::new(),
            false,
            shared,
            Some(tmp),
        )
    }

    fn on_sim(reopen: bool, shared: bool) -> Disk {
        let fs = SimBackend::new();
        Disk::open(
            PathBuf::from("/node"),
            StorageOptions::new().backend(fs.shared()),
            reopen,
            shared,
            None,
        )
    }

    fn with<T>(&self, f: impl FnOnce(&DiskStorage) -> T) -> T {
        f(&self.storage.borrow().as_ref().expect("open").0)
    }

    /// Makes the same write to the storage under test and its neighbour,
    /// which must agree on whether it is taken.
    fn write<E>(&self, f: impl Fn(&DiskStorage) -> Result<(), E>) -> Result<(), E> {
        let opened = self.storage.borrow();
        let (storage, neighbour) = opened.as_ref().expect("open");
        let result = f(storage);
        if let Some(n) = neighbour {
            assert_eq!(
                f(n).is_ok(),
                result.is_ok(),
                "the neighbour group disagrees"
            );
        }
        result
    }

    fn after_write(&self) {
        if self.reopen {
            drop(self.storage.borrow_mut().take());
            let storage = open_storage(&self.dir, &self.options, self.shared);
            *self.storage.borrow_mut() = Some(storage);
        }
    }
}

fn persist_error(e: PersistError) -> StorageError {
    match e {
        PersistError::Refused(raft_core::PersistError::SnapshotOutOfDate { .. }) => {
            StorageError::SnapshotOutOfDate
        }
        PersistError::Refused(_) | PersistError::Wal(raft_wal::SaveError::Gap { .. }) => {
            StorageError::Unavailable
        }
        other => StorageError::Other(Box::new(other)),
    }
}

fn snapshot_error(e: SnapshotError) -> StorageError {
    match e {
        SnapshotError::OutOfDate { .. } => StorageError::SnapshotOutOfDate,
        SnapshotError::NotInLog { .. } => StorageError::Unavailable,
        other => StorageError::Other(Box::new(other)),
    }
}

impl Storage for Disk {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        self.with(|s| s.initial_state())
    }
    fn entries(&self, lo: Index, hi: Index, max: u64) -> Result<Vec<Entry>, StorageError> {
        self.with(|s| s.entries(lo, hi, max))
    }
    fn term(&self, index: Index) -> Result<Term, StorageError> {
        self.with(|s| s.term(index))
    }
    fn first_index(&self) -> Result<Index, StorageError> {
        self.with(|s| s.first_index())
    }
    fn last_index(&self) -> Result<Index, StorageError> {
        self.with(|s| s.last_index())
    }
    fn snapshot(&self, index: Index) -> Result<Snapshot, StorageError> {
        self.with(|s| s.snapshot(index))
    }
}

impl TestableStorage for Disk {
    fn persist(&self, batch: &PersistBatch) -> Result<(), StorageError> {
        self.write(|s| s.persist_batch(batch))
            .map_err(persist_error)?;
        self.after_write();
        Ok(())
    }
    fn save_conf_state(&self, cs: ConfState) -> Result<(), StorageError> {
        self.write(|s| {
            s.set_conf_state(cs.clone());
            Ok::<_, ()>(())
        })
        .expect("in memory");
        Ok(())
    }
    fn snapshot_and_compact(
        &self,
        index: Index,
        cs: ConfState,
        data: Bytes,
    ) -> Result<(), StorageError> {
        let policy = CompactionPolicy::new().catch_up_entries(0);
        self.write(|s| {
            s.snapshot_and_compact(index, cs.clone(), data.clone(), policy)
                .map(drop)
        })
        .map_err(snapshot_error)?;
        self.after_write();
        Ok(())
    }
}

#[test]
fn disk_storage_on_real_files_passes_the_conformance_suite() {
    check_storage(|| Disk::on_files(false)).expect("conforms");
}

#[test]
fn disk_storage_on_the_simulated_file_system_passes_the_conformance_suite() {
    check_storage(|| Disk::on_sim(false, false)).expect("conforms");
}

#[test]
fn disk_storage_reopened_after_every_write_passes_the_conformance_suite() {
    check_storage(|| Disk::on_sim(true, false)).expect("conforms after recovery");
}

#[test]
fn disk_storage_in_a_shared_wal_on_real_files_passes_the_conformance_suite() {
    check_storage(|| Disk::on_files(true)).expect("conforms");
}

#[test]
fn disk_storage_in_a_shared_wal_reopened_after_every_write_passes_the_conformance_suite() {
    check_storage(|| Disk::on_sim(true, true)).expect("conforms after recovery");
}

#[test]
fn memory_storage_written_through_persist_passes_the_conformance_suite() {
    // TestableStorage for MemoryStorage writes through persist_batch.
    check_storage(raft_core::MemoryStorage::new).expect("conforms");
}
