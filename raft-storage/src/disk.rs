//! [`DiskStorage`]: the WAL, the snapshot files and the in-memory index
//! that raft-core reads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use raft_core::{
    ConfState, Entry, FoundingLog, GroupId, HardState, Index, InitialState, LightReady,
    MemoryStorage, PersistBatch, Ready, Snapshot, SnapshotMetadata, Storage, StorageError, Term,
};
use raft_snap::{LoadError, SnapshotReader};
use raft_wal::{GroupRecovered, SaveError, SharedWal, SnapshotMarker};

use crate::error::{InstallError, OpenError, PersistError, SnapshotError};
use crate::log::Log;
use crate::open::{self, Opened, Recovery};
use crate::options::{CompactionPolicy, StorageOptions};
use crate::snapshots::SnapshotFiles;

/// A durable [`Storage`] for one Raft node: a write-ahead log
/// ([`raft_wal`]) for entries, hard state and snapshot markers, snapshot
/// files ([`raft_snap`]), and the log since the last compaction indexed in
/// memory, where raft-core reads it.
///
/// Every method takes `&self`: share it in an `Arc` between the Ready loop
/// (which persists), raft-core (which reads) and a thread that takes
/// snapshots. Any failed write or fsync **poisons** it: every later write
/// returns a `Poisoned` error until it is reopened, because after a failed
/// fsync the page cache may claim data is clean that never reached the
/// disk.
#[derive(Debug)]
pub struct DiskStorage {
    dir: PathBuf,
    /// Its own WAL, or its group's share of one.
    log: Log,
    snapshots: SnapshotFiles,
    /// The log since the compaction point, the hard state and the
    /// membership. Its snapshot carries the newest snapshot's metadata
    /// only; the data lives in its file (and maybe in `snapshots`' cache).
    ///
    /// Invariant: `mem`'s snapshot is the newest snapshot with a durable
    /// file and WAL marker.
    mem: MemoryStorage,
    /// Held while a snapshot's file and marker are written, so that
    /// markers reach the WAL in index order and the check that a snapshot
    /// is newer holds until it is recorded.
    snapshot_lock: Mutex<()>,
    poisoned: AtomicBool,
}

impl DiskStorage {
    /// Opens (creating on first use) the storage in `dir`: snapshots in
    /// `dir/snap`, the WAL in `dir/wal`. Recovers the newest intact
    /// snapshot the WAL has a marker for and the log after it.
    ///
    /// # Errors
    /// An [`OpenError`] that says what is wrong with the directory.
    pub fn open(
        dir: impl AsRef<Path>,
        options: StorageOptions,
    ) -> Result<(DiskStorage, Recovery), OpenError> {
        let dir = dir.as_ref().to_path_buf();
        let opened = open::open_dirs(&dir, &options)?;
        DiskStorage::from_opened(dir, opened)
    }

    /// Opens (creating on first use) the storage of `group` whose log lives
    /// in `wal`, a WAL shared with other groups' storages (their saves
    /// share fdatasyncs): snapshots in `dir/snap`, the log as `wal`
    /// recovered it (`recovered`: the group's entry in
    /// [`raft_wal::SharedRecovered::groups`]; `None` for a group new to
    /// it). Open `wal` with [`StorageOptions::shared_wal_options`] so that
    /// both use the same backend. Recovery is as for
    /// [`DiskStorage::open`], except that the shared WAL reports a torn tail
    /// itself.
    ///
    /// [`DiskStorage::sync`] then syncs every group's writes, and
    /// [`DiskStorage::wal_stats`] counts the whole shared log.
    ///
    /// The snapshot directory takes no lock of its own (a host of many
    /// groups would spend a file descriptor on each): the shared WAL's
    /// directory lock keeps other processes out. Open a group at most once
    /// at a time in the process, as its log in `wal` demands anyway.
    ///
    /// # Errors
    /// An [`OpenError`]; a refusal of the group's log is
    /// [`OpenError::Wal`] with [`raft_wal::OpenError::InGroup`].
    pub fn open_in_shared(
        dir: impl AsRef<Path>,
        options: StorageOptions,
        wal: Arc<SharedWal>,
        group: GroupId,
        recovered: Option<GroupRecovered>,
    ) -> Result<(DiskStorage, Recovery), OpenError> {
        let dir = dir.as_ref().to_path_buf();
        let opened = open::open_in_shared(&dir, &options, wal, group, recovered)?;
        DiskStorage::from_opened(dir, opened)
    }

    /// Indexes what recovery found in memory.
    fn from_opened(dir: PathBuf, opened: Opened) -> Result<(DiskStorage, Recovery), OpenError> {
        let mem = MemoryStorage::new();
        let mut hard_state = opened.hard_state;
        let mut conf_state = ConfState::default();
        if let Some(meta) = &opened.snapshot {
            mem.apply_snapshot(Snapshot {
                metadata: meta.clone(),
                data: Bytes::new(),
            })
            .expect("an empty storage takes any snapshot");
            // A snapshot holds only committed entries.
            hard_state.commit = hard_state.commit.max(meta.index);
            conf_state = meta.conf_state.clone();
        }
        mem.append(&opened.entries).map_err(|_| {
            OpenError::Index(raft_core::PersistError::Gap {
                first: opened.entries.first().map_or(Index::ZERO, |e| e.index),
                last: mem.last_index().unwrap_or_default(),
            })
        })?;
        mem.set_hard_state(hard_state);
        if let Some(t) = &opened.truncated_tail {
            tracing::warn!(
                segment = t.segment,
                offset = t.truncated_at,
                "repaired a torn WAL tail"
            );
        }
        let last_index = mem.last_index().expect("memory reads do not fail");
        let recovery = Recovery {
            hard_state,
            conf_state,
            fresh: opened.snapshot.is_none()
                && last_index == Index::ZERO
                && hard_state == HardState::default(),
            snapshot: opened.snapshot,
            last_index,
            skipped_snapshots: opened.skipped,
            truncated_tail: opened.truncated_tail,
        };
        let storage = DiskStorage {
            dir,
            log: opened.log,
            snapshots: SnapshotFiles::new(opened.snapshotter),
            mem,
            snapshot_lock: Mutex::new(()),
            poisoned: AtomicBool::new(false),
        };
        Ok((storage, recovery))
    }

    /// Writes the founders' first log ([`FoundingLog`]) to a fresh storage,
    /// durably (etcd's `StartNode`). Every founder bootstraps with the same
    /// one; a node that joins later starts empty.
    ///
    /// # Errors
    /// [`PersistError::NotEmpty`] unless the storage is fresh; otherwise as
    /// [`DiskStorage::persist`].
    pub fn bootstrap(&self, founding: &FoundingLog) -> Result<(), PersistError> {
        let empty = self.mem.hard_state() == HardState::default()
            && self.mem.last_index().expect("memory") == Index::ZERO
            && self.mem.first_index().expect("memory") == Index(1);
        if !empty {
            return Err(PersistError::NotEmpty);
        }
        self.persist_parts(None, &founding.entries, Some(founding.hard_state), true)
    }

    /// Step 2 of the Ready contract, in one call: writes `rd`'s snapshot
    /// (file, then WAL marker), its entries and hard state to the WAL,
    /// fsynced iff `rd.must_sync`, then indexes them in memory. Only then
    /// may `rd.persisted_messages` leave.
    ///
    /// # Errors
    /// [`PersistError::Refused`] before anything is written when the Ready
    /// does not fit the log; an I/O failure poisons the storage.
    pub fn persist(&self, rd: &Ready) -> Result<(), PersistError> {
        self.persist_parts(
            rd.snapshot.as_ref(),
            &rd.entries,
            rd.hard_state,
            rd.must_sync,
        )
    }

    /// Persists a `LightReady`'s commit index (from
    /// `RawNode::advance_with_commits`), unsynced: a commit index may be
    /// lost in a crash, and raft-core learns it again.
    ///
    /// # Errors
    /// As [`DiskStorage::persist`].
    pub fn persist_light(&self, light: &LightReady) -> Result<(), PersistError> {
        let Some(commit) = light.commit else {
            return Ok(());
        };
        let hs = self.mem.hard_state();
        if commit <= hs.commit {
            return Ok(());
        }
        self.persist_parts(None, &[], Some(HardState { commit, ..hs }), false)
    }

    /// [`DiskStorage::persist`] for a batch taken out of a Ready with
    /// `Ready::take_persist_batch` (see also
    /// [`PersistWriter`](crate::PersistWriter), which does this on a thread
    /// of its own).
    ///
    /// # Errors
    /// As [`DiskStorage::persist`].
    pub fn persist_batch(&self, batch: &PersistBatch) -> Result<(), PersistError> {
        self.persist_parts(
            batch.snapshot.as_ref(),
            &batch.entries,
            batch.hard_state,
            batch.must_sync,
        )
    }

    pub(crate) fn persist_parts(
        &self,
        snapshot: Option<&Snapshot>,
        entries: &[Entry],
        hard_state: Option<HardState>,
        sync: bool,
    ) -> Result<(), PersistError> {
        // The WAL refuses writes once it is poisoned itself.
        if self.poisoned.load(Ordering::Acquire) {
            return Err(PersistError::Poisoned);
        }
        if let Some(s) = snapshot {
            self.record_received_snapshot(s)?;
        }
        if entries.is_empty() && hard_state.is_none() {
            return Ok(());
        }
        self.log
            .save(hard_state.as_ref(), entries, sync)
            .map_err(|e| self.poison_on_io(e))?;
        // The WAL checked the same rules (no gap, no truncation below the
        // snapshot), so memory takes it.
        self.index_in_memory(entries, hard_state)
    }

    fn index_in_memory(
        &self,
        entries: &[Entry],
        hard_state: Option<HardState>,
    ) -> Result<(), PersistError> {
        if let Err(e) = self.mem.append(entries) {
            debug_assert!(false, "the WAL took entries memory refuses: {e}");
            let last = self.mem.last_index().expect("memory reads do not fail");
            let first = entries.first().map_or(last, |e| e.index);
            return Err(raft_core::PersistError::Gap { first, last }.into());
        }
        if let Some(hs) = hard_state {
            self.mem.set_hard_state(hs);
        }
        Ok(())
    }

    /// A snapshot from the leader: its file (unless
    /// [`DiskStorage::install_snapshot`] wrote it), then its WAL marker,
    /// which restarts the log after it when it is past the last index.
    fn record_received_snapshot(&self, s: &Snapshot) -> Result<(), PersistError> {
        let _order = self.snapshot_lock.lock();
        let meta = &s.metadata;
        let current = self.snapshot_index();
        // One at the stored index replaces it: a follower that asked for a
        // snapshot (`request_snapshot`) may get one ending where its own
        // does, as raft-core's MemoryStorage allows.
        if meta.index < current {
            return Err(raft_core::PersistError::SnapshotOutOfDate {
                index: meta.index,
                stored: current,
            }
            .into());
        }
        if let Err(e) = self.snapshots.save(s) {
            self.poison();
            return Err(PersistError::SnapshotFile(e));
        }
        self.log
            .save_snapshot_marker(&marker(meta))
            .map_err(|e| self.poison_on_io(e))?;
        self.mem
            .apply_snapshot(Snapshot {
                metadata: meta.clone(),
                data: Bytes::new(),
            })
            .expect("checked newer under the snapshot lock");
        Ok(())
    }

    /// Takes a snapshot of the state machine at `index` (applied, and in
    /// the log) with the ordering rules encoded once:
    ///
    /// 1. the snapshot file, fsynced (raft-snap: temporary file, fsync,
    ///    rename, directory fsync);
    /// 2. its WAL marker, fsynced, so the WAL never names a snapshot that
    ///    is not on disk;
    /// 3. the in-memory log compacted, keeping
    ///    [`CompactionPolicy::catch_up_entries`] behind `index`;
    /// 4. snapshot files beyond [`CompactionPolicy::snapshots_kept`]
    ///    removed;
    /// 5. WAL segments released up to the *oldest* snapshot kept, so that
    ///    a damaged newest file leaves an older one the log continues from.
    ///
    /// May run on a thread of its own while the Ready loop persists.
    /// Returns the new snapshot's metadata.
    ///
    /// # Errors
    /// [`SnapshotError::OutOfDate`] or [`SnapshotError::NotInLog`] before
    /// anything is written; an I/O failure poisons the storage.
    pub fn snapshot_and_compact(
        &self,
        index: Index,
        conf_state: ConfState,
        data: Bytes,
        policy: CompactionPolicy,
    ) -> Result<SnapshotMetadata, SnapshotError> {
        let metadata = self.take_snapshot(index, conf_state, |files, meta| {
            files.write(meta, &data).map_err(SnapshotError::File)
        })?;
        self.snapshots.cache(metadata.clone(), data);
        self.compact(index, policy)?;
        Ok(metadata)
    }

    /// [`DiskStorage::snapshot_and_compact`] for a state machine too large
    /// to serialize in memory: `data_len` bytes are read from `data` in
    /// chunks straight into the snapshot file. The data is not kept in
    /// memory; a leader sending the snapshot reads it back from the file.
    ///
    /// # Errors
    /// As [`DiskStorage::snapshot_and_compact`], and
    /// [`SnapshotError::Source`] when `data` fails or ends early (which
    /// does not poison the storage: nothing was recorded).
    pub fn snapshot_and_compact_from(
        &self,
        index: Index,
        conf_state: ConfState,
        data_len: u64,
        data: impl std::io::Read,
        policy: CompactionPolicy,
    ) -> Result<SnapshotMetadata, SnapshotError> {
        let metadata = self.take_snapshot(index, conf_state, |files, meta| {
            files.write_from(meta, data_len, data)
        })?;
        self.compact(index, policy)?;
        Ok(metadata)
    }

    /// Steps 1 and 2 of [`DiskStorage::snapshot_and_compact`]: the file
    /// (written by `write`), then its marker; records it in memory.
    fn take_snapshot(
        &self,
        index: Index,
        conf_state: ConfState,
        write: impl FnOnce(&SnapshotFiles, &SnapshotMetadata) -> Result<(), SnapshotError>,
    ) -> Result<SnapshotMetadata, SnapshotError> {
        if self.is_poisoned() {
            return Err(SnapshotError::Poisoned);
        }
        let _order = self.snapshot_lock.lock();
        let metadata = self.check_new_snapshot(index, conf_state)?;
        match write(&self.snapshots, &metadata) {
            Ok(()) => {}
            // The source failed: the temporary file is gone, nothing on
            // disk changed.
            Err(e @ SnapshotError::Source(_)) => return Err(e),
            Err(e) => {
                self.poison();
                return Err(e);
            }
        }
        if let Err(e) = self.log.save_snapshot_marker(&marker(&metadata)) {
            self.poison();
            return Err(SnapshotError::Wal(e));
        }
        self.mem
            .create_snapshot(index, metadata.conf_state.clone(), Bytes::new())
            .expect("checked under the snapshot lock");
        Ok(metadata)
    }

    /// The metadata of a new snapshot at `index`, if it may be taken.
    fn check_new_snapshot(
        &self,
        index: Index,
        conf_state: ConfState,
    ) -> Result<SnapshotMetadata, SnapshotError> {
        let current = self.snapshot_index();
        if index <= current && current > Index::ZERO {
            return Err(SnapshotError::OutOfDate { index, current });
        }
        let last = self.mem.last_index().expect("memory reads do not fail");
        let term = match self.mem.term(index) {
            Ok(term) if index > Index::ZERO => term,
            _ => {
                return Err(SnapshotError::NotInLog {
                    index,
                    first: self.mem.first_index().expect("memory reads do not fail"),
                    last,
                });
            }
        };
        Ok(SnapshotMetadata {
            index,
            term,
            conf_state,
        })
    }

    /// Steps 3 to 5 of [`DiskStorage::snapshot_and_compact`].
    fn compact(&self, index: Index, policy: CompactionPolicy) -> Result<(), SnapshotError> {
        let compact_to = Index(index.get().saturating_sub(policy.catch_up_entries));
        let compacted = self
            .mem
            .first_index()
            .expect("memory reads do not fail")
            .prev();
        if compact_to > compacted {
            self.mem
                .compact(compact_to)
                .expect("between the compaction point and the snapshot, so in the log");
        }
        let oldest = self
            .snapshots
            .purge(index, policy.snapshots_kept)
            .inspect_err(|_| self.poison())
            .map_err(SnapshotError::Purge)?;
        self.log
            .release_to(oldest.index)
            .inspect_err(|_| self.poison())
            .map_err(SnapshotError::Release)?;
        Ok(())
    }

    /// Writes a snapshot received from the leader, as a raft-snap stream
    /// (see `raft_snap::SnapshotEncoder`), to its file in bounded memory,
    /// refusing one whose data exceeds `max_bytes`. Step the message that
    /// carries it into raft-core afterwards: when the Ready that installs
    /// it comes, [`DiskStorage::persist`] records it without writing the
    /// file again.
    ///
    /// # Errors
    /// An [`InstallError`]; nothing is recorded, and a partial file is
    /// deleted.
    pub fn install_snapshot(
        &self,
        stream: impl std::io::Read,
        max_bytes: u64,
    ) -> Result<SnapshotMetadata, InstallError> {
        if self.is_poisoned() {
            return Err(InstallError::Poisoned);
        }
        self.snapshots
            .install(stream, max_bytes, self.snapshot_index())
            .inspect_err(|e| {
                if matches!(e, InstallError::File(_)) {
                    self.poison();
                }
            })
    }

    /// Makes every write so far durable (for a caller that persisted with
    /// `must_sync == false` and stops now).
    ///
    /// # Errors
    /// [`PersistError::Wal`] (which poisons) or [`PersistError::Poisoned`].
    pub fn sync(&self) -> Result<(), PersistError> {
        if self.is_poisoned() {
            return Err(PersistError::Poisoned);
        }
        self.log.sync().map_err(|e| self.poison_on_io(e))
    }

    /// Sets the membership [`Storage::initial_state`] reports (call it with
    /// the result of `RawNode::apply_conf_change`). In memory only: after a
    /// restart the membership is the snapshot's, and the conf changes after
    /// it are handed out and applied again.
    pub fn set_conf_state(&self, cs: ConfState) {
        self.mem.set_conf_state(cs);
    }

    /// The WAL's counters since open (batches, fsyncs, bytes, rotations).
    pub fn wal_stats(&self) -> raft_wal::WalStats {
        self.log.stats()
    }

    /// The hard state as last persisted.
    pub fn hard_state(&self) -> HardState {
        self.mem.hard_state()
    }

    /// The newest snapshot's metadata (index 0 when there is none).
    pub fn snapshot_metadata(&self) -> SnapshotMetadata {
        self.mem
            .snapshot(Index::ZERO)
            .expect("memory reads do not fail")
            .metadata
    }

    /// Streams the newest snapshot's data from its file, in bounded memory
    /// (to restore a state machine after [`DiskStorage::open`]); `None`
    /// without a snapshot. The data is verified as it is read.
    ///
    /// # Errors
    /// The file could not be opened or its header is damaged.
    pub fn open_snapshot(&self) -> Result<Option<SnapshotReader>, LoadError> {
        let meta = self.snapshot_metadata();
        if meta.index == Index::ZERO {
            return Ok(None);
        }
        self.snapshots.open(&meta).map(Some)
    }

    /// The storage directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True after a failed write: reopen to recover.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire) || self.log.is_poisoned()
    }

    pub(crate) fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }

    /// Poisons on an I/O failure (a refused write wrote nothing).
    pub(crate) fn poison_on_io(&self, e: SaveError) -> PersistError {
        if matches!(e, SaveError::Io(_) | SaveError::Poisoned) {
            self.poison();
        }
        PersistError::Wal(e)
    }

    pub(crate) fn snapshot_index(&self) -> Index {
        self.snapshot_metadata().index
    }
}

pub(crate) fn marker(meta: &SnapshotMetadata) -> SnapshotMarker {
    SnapshotMarker {
        index: meta.index,
        term: meta.term,
        conf_state: meta.conf_state.clone(),
    }
}

impl Storage for DiskStorage {
    fn initial_state(&self) -> Result<InitialState, StorageError> {
        self.mem.initial_state()
    }

    fn entries(&self, lo: Index, hi: Index, max_bytes: u64) -> Result<Vec<Entry>, StorageError> {
        self.mem.entries(lo, hi, max_bytes)
    }

    fn term(&self, index: Index) -> Result<Term, StorageError> {
        self.mem.term(index)
    }

    fn first_index(&self) -> Result<Index, StorageError> {
        self.mem.first_index()
    }

    fn last_index(&self) -> Result<Index, StorageError> {
        self.mem.last_index()
    }

    /// The newest snapshot, its data read from the file unless it is in
    /// memory already.
    fn snapshot(&self, _request_index: Index) -> Result<Snapshot, StorageError> {
        let meta = self.snapshot_metadata();
        if meta.index == Index::ZERO {
            return Ok(Snapshot::default());
        }
        self.snapshots.load(&meta)
    }
}
