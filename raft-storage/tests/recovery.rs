//! Recovery fallbacks, poisoning, received snapshots and the writer thread.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use raft_core::{
    ConfState, Entry, FoundingLog, HardState, Index, LogId, NodeId, PersistBatch, Snapshot,
    SnapshotMetadata, Storage, Term,
};
use raft_io::{FaultKind, SimBackend};
use raft_storage::{
    CompactionPolicy, DiskStorage, InstallError, OpenError, PersistError, PersistWriter, SNAP_DIR,
    SkippedSnapshot, StorageOptions,
};

fn nid(n: u64) -> NodeId {
    NodeId::new(n).expect("non-zero")
}

fn voters() -> ConfState {
    ConfState::with_voters([1, 2, 3].map(nid))
}

fn entries(range: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    range
        .map(|i| Entry::new(Term(1), Index(i), Bytes::from(format!("entry {i:>100}"))))
        .collect()
}

fn hard_state(commit: u64) -> HardState {
    HardState {
        term: Term(1),
        vote: Some(nid(1)),
        commit: Index(commit),
    }
}

fn batch(entries: Vec<Entry>, commit: u64) -> PersistBatch {
    PersistBatch {
        entries,
        hard_state: Some(hard_state(commit)),
        must_sync: true,
        ..PersistBatch::new(raft_core::ReadyNumber::FIRST)
    }
}

/// Small segments, so that snapshots release some.
fn open(dir: &Path) -> Result<(DiskStorage, raft_storage::Recovery), OpenError> {
    let wal = raft_wal::WalOptions::new().segment_size_bytes(1024);
    DiskStorage::open(dir, StorageOptions::new().wal(wal))
}

/// A storage with entries 1..=45 committed and snapshots at 22 and 40; the
/// first WAL segment is released.
fn two_snapshots(dir: &Path) {
    let (s, _) = open(dir).expect("open");
    for e in entries(1..=30) {
        let i = e.index.get();
        s.persist_batch(&batch(vec![e], i)).expect("persist");
    }
    let policy = CompactionPolicy::new().catch_up_entries(2);
    s.snapshot_and_compact(Index(22), voters(), Bytes::from_static(b"at 22"), policy)
        .expect("snapshot 22");
    for e in entries(31..=45) {
        let i = e.index.get();
        s.persist_batch(&batch(vec![e], i)).expect("persist");
    }
    s.snapshot_and_compact(Index(40), voters(), Bytes::from_static(b"at 40"), policy)
        .expect("snapshot 40");
    drop(s);
    let (_, recovery) = open(dir).expect("reopen");
    assert_eq!(recovery.applied(), Index(40));
    let first_segment = dir
        .join(raft_storage::WAL_DIR)
        .join(format!("{:016x}-{:016x}.wal", 1, 1));
    assert!(!first_segment.exists(), "the first segment is released");
}

fn snapshot_path(dir: &Path, index: u64) -> std::path::PathBuf {
    dir.join(SNAP_DIR)
        .join(format!("{:016x}-{:016x}.snap", 1, index))
}

fn flip_a_data_byte(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read snapshot");
    let at = bytes.len() - 6;
    bytes[at] ^= 0x40;
    std::fs::write(path, bytes).expect("write snapshot");
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_the_older_one_the_log_still_reaches() {
    let dir = tempfile::tempdir().expect("tempdir");
    two_snapshots(dir.path());
    flip_a_data_byte(&snapshot_path(dir.path(), 40));

    let (s, recovery) = open(dir.path()).expect("starts from the older snapshot");
    assert_eq!(recovery.applied(), Index(22));
    assert!(matches!(
        &recovery.skipped_snapshots[..],
        [SkippedSnapshot::Damaged { id, .. }] if id.index == Index(40)
    ));
    assert_eq!(s.first_index().ok(), Some(Index(23)));
    assert_eq!(s.last_index().ok(), Some(Index(45)));
    assert_eq!(
        s.entries(Index(23), Index(46), u64::MAX).expect("entries"),
        entries(23..=45)
    );
    assert_eq!(s.snapshot(Index(0)).expect("snapshot").data, &b"at 22"[..]);
}

#[test]
fn with_every_snapshot_the_log_needs_damaged_open_names_the_files_and_the_way_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    two_snapshots(dir.path());
    flip_a_data_byte(&snapshot_path(dir.path(), 40));
    flip_a_data_byte(&snapshot_path(dir.path(), 22));

    let e = open(dir.path()).expect_err("nothing to start from");
    let OpenError::DamagedSnapshot { damaged, needed } = &e else {
        panic!("wrong error: {e}");
    };
    assert_eq!(damaged.len(), 2, "{e}");
    assert!(needed.iter().any(|id| id.index == Index(22)), "{e}");
    let message = e.to_string();
    assert!(
        message.contains(".broken") && message.contains("re-add"),
        "{message}"
    );
}

#[test]
fn a_snapshot_file_the_wal_never_recorded_is_deleted_and_the_recorded_one_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    two_snapshots(dir.path());
    {
        // As if the process died between a snapshot's file and its marker.
        let snapshotter = raft_snap::Snapshotter::new(dir.path().join(SNAP_DIR)).expect("snap");
        let meta = SnapshotMetadata {
            index: Index(44),
            term: Term(1),
            conf_state: voters(),
        };
        snapshotter.save(&meta, b"at 44").expect("save");
    }
    let (_, recovery) = open(dir.path()).expect("open");
    assert_eq!(recovery.applied(), Index(40));
    assert_eq!(
        recovery.skipped_snapshots,
        vec![SkippedSnapshot::Unrecorded(LogId::new(Term(1), Index(44)))]
    );
    assert!(!snapshot_path(dir.path(), 44).exists(), "deleted");
    let (_, again) = open(dir.path()).expect("reopen");
    assert!(again.skipped_snapshots.is_empty());
}

#[test]
fn a_failed_fsync_poisons_the_storage_until_it_is_reopened() {
    let fs = SimBackend::new();
    let options = StorageOptions::new().backend(fs.shared());
    let (s, _) = DiskStorage::open("/n", options.clone()).expect("open");
    s.persist_batch(&batch(entries(1..=3), 1)).expect("persist");
    fs.inject_fault(fs.op_count(), FaultKind::Eio);
    let e = s
        .persist_batch(&batch(entries(4..=5), 1))
        .expect_err("fault");
    assert!(matches!(e, PersistError::Wal(_)), "{e}");
    fs.clear_fault();
    assert!(s.is_poisoned());
    assert!(matches!(
        s.persist_batch(&batch(entries(4..=5), 1)),
        Err(PersistError::Poisoned)
    ));
    assert!(matches!(
        s.snapshot_and_compact(Index(1), voters(), Bytes::new(), CompactionPolicy::new()),
        Err(raft_storage::SnapshotError::Poisoned)
    ));
    drop(s);
    let (s, recovery) = DiskStorage::open("/n", options).expect("reopen");
    assert!(!s.is_poisoned());
    assert_eq!(recovery.last_index, Index(3));
}

fn encoded(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc =
        raft_snap::SnapshotEncoder::new(&mut out, &snapshot.metadata, snapshot.data.len() as u64)
            .expect("encoder");
    enc.write_chunk(&snapshot.data).expect("chunk");
    enc.finish().expect("finish");
    out
}

fn leader_snapshot(index: u64) -> Snapshot {
    Snapshot {
        metadata: SnapshotMetadata {
            index: Index(index),
            term: Term(3),
            conf_state: voters(),
        },
        data: Bytes::from(vec![5u8; 10_000]),
    }
}

#[test]
fn a_streamed_snapshot_is_recorded_by_its_ready_without_being_written_twice() {
    let fs = SimBackend::new();
    let options = StorageOptions::new().backend(fs.shared());
    let (s, _) = DiskStorage::open("/n", options.clone()).expect("open");
    s.persist_batch(&batch(entries(1..=3), 3)).expect("persist");
    let snap = leader_snapshot(50);
    let meta = s
        .install_snapshot(&encoded(&snap)[..], 1 << 20)
        .expect("install");
    assert_eq!(meta, snap.metadata);
    let writes = fs.stats().writes;
    s.persist_batch(&PersistBatch {
        snapshot: Some(snap.clone()),
        hard_state: Some(HardState {
            term: Term(3),
            vote: None,
            commit: Index(50),
        }),
        must_sync: true,
        ..PersistBatch::new(raft_core::ReadyNumber::FIRST)
    })
    .expect("persist the Ready");
    let file_bytes = fs.stats().writes - writes;
    assert!(
        file_bytes <= 3,
        "only WAL frames written: {file_bytes} writes"
    );
    drop(s);
    let (s, recovery) = DiskStorage::open("/n", options).expect("reopen");
    assert_eq!(recovery.applied(), Index(50));
    assert_eq!(s.snapshot(Index(0)).expect("snapshot"), snap);
}

#[test]
fn a_received_snapshot_that_is_too_large_damaged_or_stale_is_refused_and_leaves_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = open(dir.path()).expect("open");
    let snap = leader_snapshot(50);
    let e = s
        .install_snapshot(&encoded(&snap)[..], 100)
        .expect_err("too large");
    assert!(
        matches!(
            e,
            InstallError::TooLarge {
                data_len: 10_000,
                max_bytes: 100
            }
        ),
        "{e}"
    );
    let mut damaged = encoded(&snap);
    let at = damaged.len() - 100;
    damaged[at] ^= 1;
    let e = s
        .install_snapshot(&damaged[..], 1 << 20)
        .expect_err("damaged");
    assert!(matches!(e, InstallError::Decode(_)), "{e}");
    let cut = encoded(&snap);
    let e = s
        .install_snapshot(&cut[..cut.len() / 2], 1 << 20)
        .expect_err("cut off");
    assert!(matches!(e, InstallError::Decode(_)), "{e}");
    let files: Vec<_> = std::fs::read_dir(dir.path().join(SNAP_DIR))
        .expect("list")
        .collect();
    assert!(files.is_empty(), "nothing left behind: {files:?}");
    assert!(!s.is_poisoned(), "bad input is not an I/O failure");

    s.install_snapshot(&encoded(&snap)[..], 1 << 20)
        .expect("install");
    s.persist_batch(&PersistBatch {
        snapshot: Some(snap),
        ..PersistBatch::new(raft_core::ReadyNumber::FIRST)
    })
    .expect("record");
    let e = s
        .install_snapshot(&encoded(&leader_snapshot(40))[..], 1 << 20)
        .expect_err("stale");
    assert!(matches!(e, InstallError::OutOfDate { .. }), "{e}");
    // One at the stored index replaces it (a follower-requested snapshot
    // may end where the follower's own does).
    let again = leader_snapshot(50);
    s.install_snapshot(&encoded(&again)[..], 1 << 20)
        .expect("same index");
    s.persist_batch(&PersistBatch {
        snapshot: Some(again),
        ..PersistBatch::new(raft_core::ReadyNumber::FIRST)
    })
    .expect("record the same index again");
    drop(s);
    let (s, _) = open(dir.path()).expect("reopen");
    let stored = raft_core::Storage::snapshot(&s, Index(0)).expect("snapshot");
    assert_eq!(stored.metadata.index, Index(50));
}

#[test]
fn bootstrap_writes_the_founding_log_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let founding = FoundingLog::from_conf_state(&voters()).expect("founding");
    let (s, recovery) = open(dir.path()).expect("open");
    assert!(recovery.fresh);
    s.bootstrap(&founding).expect("bootstrap");
    assert!(matches!(
        s.bootstrap(&founding),
        Err(PersistError::NotEmpty)
    ));
    drop(s);
    let (s, recovery) = open(dir.path()).expect("reopen");
    assert!(!recovery.fresh);
    assert_eq!(recovery.hard_state, founding.hard_state);
    assert_eq!(
        s.entries(Index(1), Index(4), u64::MAX).expect("entries"),
        founding.entries
    );
}

#[test]
fn the_writer_thread_reports_each_batch_durable_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = open(dir.path()).expect("open");
    let s = Arc::new(s);
    let writer = PersistWriter::spawn(Arc::clone(&s)).expect("spawn");
    for n in 1..=20u64 {
        let mut b = batch(entries(n..=n), n.saturating_sub(1));
        b.number = raft_core::ReadyNumber::new(n).expect("from 1");
        writer.submit(b).expect("submit");
    }
    let mut last = 0;
    while last < 20 {
        let n = writer
            .persisted()
            .recv()
            .expect("report")
            .expect("durable")
            .get();
        assert!(n > last, "in order: {n} after {last}");
        last = n;
    }
    drop(writer);
    drop(s);
    let (_, recovery) = open(dir.path()).expect("reopen");
    assert_eq!(recovery.last_index, Index(20));
}

#[test]
fn the_writer_thread_reports_a_failure_and_stops() {
    let fs = SimBackend::new();
    let (s, _) = DiskStorage::open("/n", StorageOptions::new().backend(fs.shared())).expect("open");
    let s = Arc::new(s);
    let writer = PersistWriter::spawn(Arc::clone(&s)).expect("spawn");
    fs.inject_fault(fs.op_count(), FaultKind::Enospc);
    writer.submit(batch(entries(1..=1), 0)).expect("submit");
    let report = writer.persisted().recv().expect("report");
    assert!(matches!(report, Err(PersistError::Wal(_))), "{report:?}");
    // The thread has stopped: the channel closes.
    assert!(writer.persisted().recv().is_err());
    assert!(writer.submit(batch(entries(2..=2), 0)).is_err());
}

/// Handles every Ready of a one-node cluster on `storage`, persisting the
/// LightReady's commit too; returns the normal entries applied.
fn drain(node: &mut raft_core::RawNode<Arc<DiskStorage>>, storage: &DiskStorage) -> Vec<Bytes> {
    let mut applied = Vec::new();
    let mut apply = |node: &mut raft_core::RawNode<Arc<DiskStorage>>, e: &Entry| {
        match raft_core::AnyConfChange::from_entry(e).expect("valid") {
            Some(cc) => storage.set_conf_state(node.apply_conf_change(&cc).expect("applies")),
            None if !e.data.is_empty() => applied.push(e.data.clone()),
            None => {}
        }
    };
    while node.has_ready() {
        let rd = node.ready().expect("ready");
        storage.persist(&rd).expect("persist");
        for e in &rd.committed_entries {
            apply(node, e);
        }
        let light = node.advance_with_commits().expect("advance");
        storage.persist_light(&light).expect("persist light");
        for e in &light.committed_entries {
            apply(node, e);
        }
    }
    applied
}

#[test]
fn a_node_on_disk_storage_restarts_where_its_snapshot_and_log_left_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = nid(1);
    let founding = FoundingLog::from_conf_state(&ConfState::with_voters([id])).expect("founding");
    {
        let (storage, recovery) = open(dir.path()).expect("open");
        assert!(recovery.fresh);
        storage.bootstrap(&founding).expect("bootstrap");
        let storage = Arc::new(storage);
        let mut node = raft_core::RawNode::new(raft_core::Config::new(id), Arc::clone(&storage))
            .expect("node");
        drain(&mut node, &storage);
        node.campaign().expect("campaign");
        drain(&mut node, &storage);
        for i in 0..10u8 {
            node.propose(Bytes::from(vec![i])).expect("propose");
            drain(&mut node, &storage);
        }
        // Everything is applied: drain applied the LightReady's entries
        // (raft-core records that at the next advance).
        let applied = storage.last_index().expect("last");
        let conf = storage.initial_state().expect("state").conf_state;
        storage
            .snapshot_and_compact(
                applied,
                conf,
                Bytes::from_static(b"sm"),
                CompactionPolicy::new(),
            )
            .expect("snapshot");
        node.propose(Bytes::from_static(b"after")).expect("propose");
        assert_eq!(
            drain(&mut node, &storage),
            vec![Bytes::from_static(b"after")]
        );
    }
    let (storage, recovery) = open(dir.path()).expect("reopen");
    assert_eq!(recovery.conf_state, ConfState::with_voters([id]));
    let mut config = raft_core::Config::new(id);
    config.applied = recovery.applied();
    let storage = Arc::new(storage);
    let mut node = raft_core::RawNode::new(config, Arc::clone(&storage)).expect("restart");
    node.campaign().expect("campaign");
    let replayed = drain(&mut node, &storage);
    assert_eq!(
        replayed,
        vec![Bytes::from_static(b"after")],
        "only what the snapshot lacks"
    );
    // The founding entry, a no-op, ten proposals, "after", and the new
    // term's no-op.
    assert_eq!(node.status().hard_state.commit, Index(14));
}

#[test]
fn a_snapshot_streamed_from_a_reader_is_served_from_its_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = open(dir.path()).expect("open");
    s.persist_batch(&batch(entries(1..=10), 10))
        .expect("persist");
    let data = vec![3u8; 3 << 20];
    let meta = s
        .snapshot_and_compact_from(
            Index(8),
            voters(),
            data.len() as u64,
            &data[..],
            CompactionPolicy::new(),
        )
        .expect("snapshot");
    assert_eq!((meta.index, meta.term), (Index(8), Term(1)));
    assert_eq!(s.snapshot(Index(0)).expect("loads").data, data);
    drop(s);
    let (s, recovery) = open(dir.path()).expect("reopen");
    assert_eq!(recovery.applied(), Index(8));
    let mut reader = s.open_snapshot().expect("open").expect("a snapshot");
    let mut streamed = Vec::new();
    while let Some(chunk) = reader.next_chunk().expect("verified") {
        streamed.extend_from_slice(chunk);
    }
    assert_eq!(streamed, data);
}

#[test]
fn a_snapshot_source_that_fails_leaves_nothing_and_poisons_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = open(dir.path()).expect("open");
    s.persist_batch(&batch(entries(1..=10), 10))
        .expect("persist");
    let short = [1u8; 100];
    let e = s
        .snapshot_and_compact_from(
            Index(5),
            voters(),
            1000,
            &short[..],
            CompactionPolicy::new(),
        )
        .expect_err("ends early");
    assert!(matches!(e, raft_storage::SnapshotError::Source(_)), "{e}");
    assert!(!s.is_poisoned());
    let files: Vec<_> = std::fs::read_dir(dir.path().join(SNAP_DIR))
        .expect("list")
        .collect();
    assert!(files.is_empty(), "no file left: {files:?}");
    assert_eq!(s.snapshot_metadata().index, Index(0));
    s.snapshot_and_compact(
        Index(5),
        voters(),
        Bytes::from_static(b"ok"),
        CompactionPolicy::new(),
    )
    .expect("a later snapshot works");
}
