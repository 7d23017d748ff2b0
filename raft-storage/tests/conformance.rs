//! raft-core's storage conformance suite on `DiskStorage`: on real files,
//! on the simulated file system, and reopened after every write (so every
//! read the suite makes sees what recovery rebuilt).

use std::cell::RefCell;
use std::path::PathBuf;

use bytes::Bytes;
use raft_core::testkit::conformance::{TestableStorage, check_storage};
use raft_core::{
    ConfState, Entry, Index, InitialState, PersistBatch, Snapshot, Storage, StorageError, Term,
};
use raft_io::SimBackend;
use raft_storage::{CompactionPolicy, DiskStorage, PersistError, SnapshotError, StorageOptions};

/// A `DiskStorage` under test, reopened after each write when `reopen`.
struct Disk {
    storage: RefCell<Option<DiskStorage>>,
    dir: PathBuf,
    options: StorageOptions,
    reopen: bool,
    _tmp: Option<tempfile::TempDir>,
}

impl Disk {
    fn open(
        dir: PathBuf,
        options: StorageOptions,
        reopen: bool,
        tmp: Option<tempfile::TempDir>,
    ) -> Disk {
        let (storage, _) = DiskStorage::open(&dir, options.clone()).expect("open");
        Disk {
            storage: RefCell::new(Some(storage)),
            dir,
            options,
            reopen,
            _tmp: tmp,
        }
    }

    fn on_files() -> Disk {
        let tmp = tempfile::tempdir().expect("tempdir");
        Disk::open(
            tmp.path().join("node"),
            StorageOptions::new(),
            false,
            Some(tmp),
        )
    }

    fn on_sim(reopen: bool) -> Disk {
        let fs = SimBackend::new();
        Disk::open(
            PathBuf::from("/node"),
            StorageOptions::new().backend(fs.shared()),
            reopen,
            None,
        )
    }

    fn with<T>(&self, f: impl FnOnce(&DiskStorage) -> T) -> T {
        f(self.storage.borrow().as_ref().expect("open"))
    }

    fn after_write(&self) {
        if self.reopen {
            drop(self.storage.borrow_mut().take());
            let (storage, _) = DiskStorage::open(&self.dir, self.options.clone()).expect("reopen");
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
        self.with(|s| s.persist_batch(batch))
            .map_err(persist_error)?;
        self.after_write();
        Ok(())
    }
    fn save_conf_state(&self, cs: ConfState) -> Result<(), StorageError> {
        self.with(|s| s.set_conf_state(cs));
        Ok(())
    }
    fn snapshot_and_compact(
        &self,
        index: Index,
        cs: ConfState,
        data: Bytes,
    ) -> Result<(), StorageError> {
        let policy = CompactionPolicy::new().catch_up_entries(0);
        self.with(|s| s.snapshot_and_compact(index, cs, data, policy))
            .map_err(snapshot_error)?;
        self.after_write();
        Ok(())
    }
}

#[test]
fn disk_storage_on_real_files_passes_the_conformance_suite() {
    check_storage(Disk::on_files).expect("conforms");
}

#[test]
fn disk_storage_on_the_simulated_file_system_passes_the_conformance_suite() {
    check_storage(|| Disk::on_sim(false)).expect("conforms");
}

#[test]
fn disk_storage_reopened_after_every_write_passes_the_conformance_suite() {
    check_storage(|| Disk::on_sim(true)).expect("conforms after recovery");
}

#[test]
fn memory_storage_written_through_persist_passes_the_conformance_suite() {
    // TestableStorage for MemoryStorage writes through persist_batch.
    check_storage(raft_core::MemoryStorage::new).expect("conforms");
}
