//! Behaviour of the snapshot directory: save, load, verification,
//! quarantine of broken files, purge, temporary-file cleanup.

use std::path::{Path, PathBuf};

use raft_core::{ConfState, Index, LogId, NodeId, SnapshotMetadata, Term};
use raft_io::{Backend, FaultKind, SimBackend};
use raft_snap::{Corruption, LoadError, OpenDirError, PurgeError, SaveError, Snapshotter};

fn dir() -> PathBuf {
    PathBuf::from("/snap")
}

fn meta(term: u64, index: u64) -> SnapshotMetadata {
    let id = |raw| NodeId::new(raw).expect("non-zero");
    SnapshotMetadata {
        index: Index(index),
        term: Term(term),
        conf_state: ConfState {
            voters: [id(1), id(2), id(3)].into(),
            learners: [id(4)].into(),
            ..ConfState::default()
        },
    }
}

fn payload(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

fn sim_snapshotter() -> (SimBackend, Snapshotter) {
    let sim = SimBackend::new();
    let snap = Snapshotter::with_backend(sim.shared(), dir()).expect("open on an empty fs");
    (sim, snap)
}

fn overwrite(sim: &SimBackend, path: &Path, bytes: &[u8]) {
    let file = sim.create(path).expect("create");
    file.write_at(0, bytes).expect("write");
}

#[test]
fn saved_snapshot_loads_back_identically_from_a_real_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let snap = Snapshotter::new(tmp.path().join("snap")).expect("open");
    let path = snap.save(&meta(3, 100), b"state machine").expect("save");
    assert_eq!(
        path.file_name().and_then(|n| n.to_str()),
        Some("0000000000000003-0000000000000064.snap")
    );
    drop(snap);
    let snap = Snapshotter::new(tmp.path().join("snap")).expect("reopen");
    let loaded = snap.load_newest().expect("load");
    assert_eq!(loaded.metadata, meta(3, 100));
    assert_eq!(loaded.data, &b"state machine"[..]);
}

#[test]
fn load_newest_picks_the_highest_index() {
    let (_sim, snap) = sim_snapshotter();
    snap.save(&meta(2, 50), b"b").expect("save");
    snap.save(&meta(3, 90), b"c").expect("save");
    snap.save(&meta(1, 10), b"a").expect("save");
    assert_eq!(snap.load_newest().expect("load").metadata, meta(3, 90));
    let ids: Vec<(u64, u64)> = snap
        .list()
        .expect("list")
        .iter()
        .map(|id| (id.term.get(), id.index.get()))
        .collect();
    assert_eq!(ids, [(3, 90), (2, 50), (1, 10)]);
}

#[test]
fn empty_directory_reports_not_found() {
    let (_sim, snap) = sim_snapshotter();
    let err = snap.load_newest().expect_err("nothing saved");
    assert!(matches!(err, LoadError::NotFound { dir } if dir == self::dir()));
    assert!(matches!(
        snap.open_newest(),
        Err(LoadError::NotFound { .. })
    ));
}

#[test]
fn corrupt_newest_is_renamed_broken_and_the_older_one_is_loaded() {
    let (sim, snap) = sim_snapshotter();
    snap.save(&meta(1, 10), &payload(1, 300)).expect("save");
    let newest = snap.save(&meta(2, 20), &payload(2, 300)).expect("save");
    let mut bytes = sim.read(&newest).expect("read");
    bytes[200] ^= 0x10;
    overwrite(&sim, &newest, &bytes);

    let loaded = snap.load_newest().expect("the older snapshot is intact");
    assert_eq!(loaded.metadata, meta(1, 10));
    assert_eq!(loaded.data, payload(1, 300));
    let names = sim.list_dir(&dir()).expect("list");
    assert_eq!(
        names,
        [
            "0000000000000001-000000000000000a.snap",
            "0000000000000002-0000000000000014.snap.broken",
        ]
    );
}

#[test]
fn load_newest_matching_skips_snapshots_the_wal_does_not_know_without_renaming() {
    let (sim, snap) = sim_snapshotter();
    snap.save(&meta(1, 10), b"a").expect("save");
    snap.save(&meta(2, 20), b"b").expect("save");
    let loaded = snap
        .load_newest_matching(&[(Index(10), Term(1)), (Index(20), Term(9))])
        .expect("index 10 term 1 matches");
    assert_eq!(loaded.metadata, meta(1, 10));
    assert_eq!(
        sim.list_dir(&dir()).expect("list").len(),
        2,
        "nothing renamed"
    );
    let err = snap.load_newest_matching(&[]).expect_err("nothing matches");
    assert!(matches!(err, LoadError::NotFound { .. }));
}

#[test]
fn open_newest_streams_in_chunks_and_verifies_at_the_end() {
    let (_sim, snap) = sim_snapshotter();
    let data = payload(5, 10_000);
    snap.save(&meta(4, 40), &data).expect("save");
    let mut reader = snap.open_newest().expect("open");
    assert_eq!(reader.metadata(), &meta(4, 40));
    assert_eq!(reader.data_len(), 10_000);
    let mut got = Vec::new();
    while let Some(chunk) = reader.next_chunk().expect("valid") {
        got.extend_from_slice(chunk);
    }
    assert_eq!(got, data);

    let mut reader = snap
        .open_with_chunk_len(LogId::new(Term(4), Index(40)), 4096)
        .expect("open");
    let mut lens = Vec::new();
    while let Some(chunk) = reader.next_chunk().expect("valid") {
        lens.push(chunk.len());
    }
    assert_eq!(lens, [4096, 4096, 1808]);
}

#[test]
fn streaming_writer_produces_the_same_file_as_save() {
    let (sim, snap) = sim_snapshotter();
    let data = payload(9, 5000);
    let saved = snap.save(&meta(1, 1), &data).expect("save");
    let saved_bytes = sim.read(&saved).expect("read");
    let mut writer = snap.writer(&meta(1, 2), 5000).expect("writer");
    for chunk in data.chunks(333) {
        writer.write_chunk(chunk).expect("chunk");
    }
    assert_eq!(writer.remaining(), 0);
    let streamed = writer.commit().expect("commit");
    let streamed_bytes = sim.read(&streamed).expect("read");
    // Same layout; only the index (and therefore the checksums) differ.
    assert_eq!(saved_bytes.len(), streamed_bytes.len());
    let loaded = snap.load_newest().expect("load");
    assert_eq!(loaded.metadata, meta(1, 2));
    assert_eq!(loaded.data, data);
}

#[test]
fn a_membership_without_canonical_encoding_is_refused_before_any_file_exists() {
    let (sim, snap) = sim_snapshotter();
    let mut metadata = meta(1, 1);
    metadata.conf_state = ConfState {
        auto_leave: true,
        ..ConfState::with_voters([NodeId::new(1).expect("non-zero")])
    };
    let ops = sim.op_count();
    let err = snap
        .save(&metadata, b"x")
        .expect_err("auto_leave without joint");
    assert!(
        matches!(&err, SaveError::InvalidConfState { path, .. }
            if path.ends_with("0000000000000001-0000000000000001.snap")),
        "{err}"
    );
    assert_eq!(sim.op_count(), ops, "no file was created");
}

#[test]
fn dropped_writer_leaves_no_file_behind() {
    let (sim, snap) = sim_snapshotter();
    let mut writer = snap.writer(&meta(1, 1), 10).expect("writer");
    writer.write_chunk(b"12345").expect("chunk");
    drop(writer);
    assert!(sim.list_dir(&dir()).expect("list").is_empty());
}

#[test]
fn committing_a_short_writer_fails_and_leaves_no_file() {
    let (sim, snap) = sim_snapshotter();
    let mut writer = snap.writer(&meta(1, 1), 10).expect("writer");
    writer.write_chunk(b"12345").expect("chunk");
    let err = writer.commit().expect_err("five bytes short");
    assert!(matches!(
        err,
        SaveError::DataLength {
            declared: 10,
            actual: 5,
            ..
        }
    ));
    assert!(sim.list_dir(&dir()).expect("list").is_empty());
}

#[test]
fn leftover_temporary_files_are_deleted_on_open() {
    let sim = SimBackend::new();
    sim.create_dir_all(&dir()).expect("mkdir");
    overwrite(
        &sim,
        &dir().join("0000000000000001-0000000000000001.snap.0.tmp"),
        b"half",
    );
    overwrite(&sim, &dir().join("unrelated.txt"), b"keep me");
    let _snap = Snapshotter::with_backend(sim.shared(), dir()).expect("open");
    assert_eq!(sim.list_dir(&dir()).expect("list"), ["unrelated.txt"]);
}

#[test]
fn purge_keeps_the_newest_n_and_ignores_broken_files() {
    let (sim, snap) = sim_snapshotter();
    for i in 1..=5 {
        snap.save(&meta(1, i * 10), b"x").expect("save");
    }
    overwrite(
        &sim,
        &dir().join("0000000000000001-0000000000000001.snap.broken"),
        b"?",
    );
    let removed = snap.purge(2).expect("purge");
    let removed: Vec<u64> = removed.iter().map(|id| id.index.get()).collect();
    assert_eq!(removed, [30, 20, 10]);
    let kept: Vec<u64> = snap
        .list()
        .expect("list")
        .iter()
        .map(|id| id.index.get())
        .collect();
    assert_eq!(kept, [50, 40]);
    assert!(
        sim.list_dir(&dir())
            .expect("list")
            .iter()
            .any(|n| n.ends_with(".broken"))
    );
    assert!(snap.purge(2).expect("purge again").is_empty());
}

#[test]
fn a_second_snapshotter_on_the_same_directory_is_refused() {
    let (sim, _snap) = sim_snapshotter();
    let err = Snapshotter::with_backend(sim.shared(), dir()).expect_err("locked");
    assert!(err.to_string().contains("another process"), "{err}");
    match err {
        OpenDirError::Locked { dir } => assert_eq!(dir, self::dir()),
        other => panic!("expected a lock error, got {other}"),
    }
}

#[test]
fn an_unlocked_snapshotter_holds_no_lock_and_still_saves_durably() {
    let sim = SimBackend::new();
    let snap = Snapshotter::with_backend_unlocked(sim.shared(), dir()).expect("open");
    // The caller excludes other owners: nothing of its own refuses them.
    let locked = Snapshotter::with_backend(sim.shared(), dir()).expect("no lock held");
    drop(locked);
    snap.save(&meta(1, 5), b"state").expect("save");
    drop(snap);
    sim.crash_losing_unsynced();
    let reopened = Snapshotter::with_backend(sim.shared(), dir()).expect("reopen");
    assert_eq!(
        reopened.list().expect("list"),
        [LogId::new(Term(1), Index(5))]
    );
}

#[test]
fn file_renamed_to_another_index_is_rejected_as_a_name_mismatch() {
    let (sim, snap) = sim_snapshotter();
    let saved = snap.save(&meta(1, 10), b"a").expect("save");
    let renamed = dir().join("0000000000000001-0000000000000063.snap");
    sim.rename(&saved, &renamed).expect("rename");
    let err = snap
        .open(LogId::new(Term(1), Index(99)))
        .expect_err("header says index 10");
    assert!(matches!(
        err.corruption(),
        Some(Corruption::NameMismatch { .. })
    ));
    assert!(
        err.to_string()
            .contains("0000000000000001-0000000000000063.snap"),
        "{err}"
    );
}

#[test]
fn trailing_bytes_after_the_checksum_are_detected() {
    let (sim, snap) = sim_snapshotter();
    let saved = snap.save(&meta(1, 10), b"abc").expect("save");
    let mut bytes = sim.read(&saved).expect("read");
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    overwrite(&sim, &saved, &bytes);
    let err = snap
        .open(LogId::new(Term(1), Index(10)))
        .expect_err("too long");
    assert!(matches!(
        err.corruption(),
        Some(Corruption::LengthMismatch { .. })
    ));
}

/// Saves one small snapshot and returns its bytes, for the exhaustive
/// corruption tests below.
fn small_snapshot_bytes() -> Vec<u8> {
    let (sim, snap) = sim_snapshotter();
    let path = snap.save(&meta(7, 77), &payload(3, 64)).expect("save");
    sim.read(&path).expect("read")
}

/// Puts `bytes` in a fresh directory as the only snapshot and returns what
/// loading it gives, checking that a rejected file was renamed `.broken`.
fn load_damaged(bytes: &[u8]) -> Result<(), LoadError> {
    let sim = SimBackend::new();
    sim.create_dir_all(&dir()).expect("mkdir");
    let name = "0000000000000007-000000000000004d.snap";
    overwrite(&sim, &dir().join(name), bytes);
    let snap = Snapshotter::with_backend(sim.shared(), dir()).expect("open");
    let result = snap.load_newest().map(|_| ());
    if result.is_err() {
        let names = sim.list_dir(&dir()).expect("list");
        assert_eq!(names, [format!("{name}.broken")]);
    }
    result
}

#[test]
fn every_truncation_of_a_small_snapshot_file_is_detected() {
    let bytes = small_snapshot_bytes();
    load_damaged(&bytes).expect("the intact file loads");
    for len in 0..bytes.len() {
        let err = load_damaged(&bytes[..len]).expect_err("truncated file must not load");
        assert!(
            matches!(err, LoadError::NotFound { .. }),
            "length {len}: {err}"
        );
    }
}

#[test]
fn bit_flip_anywhere_in_a_small_snapshot_file_is_detected() {
    let bytes = small_snapshot_bytes();
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let err = load_damaged(&flipped).expect_err("flipped file must not load");
        assert!(
            matches!(err, LoadError::NotFound { .. }),
            "bit {bit}: {err}"
        );
    }
}

#[test]
fn corrupt_error_names_the_file_and_the_reason() {
    let (sim, snap) = sim_snapshotter();
    let saved = snap.save(&meta(1, 10), b"abc").expect("save");
    let mut bytes = sim.read(&saved).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    overwrite(&sim, &saved, &bytes);
    let mut reader = snap
        .open(LogId::new(Term(1), Index(10)))
        .expect("header intact");
    let err = reader.next_chunk().expect_err("checksum mismatch");
    let message = err.to_string();
    assert!(
        message.contains("/snap/0000000000000001-000000000000000a.snap"),
        "{message}"
    );
    assert!(message.contains("checksum mismatch"), "{message}");
}

#[test]
fn read_error_is_returned_and_the_file_is_not_renamed_broken() {
    let (sim, snap) = sim_snapshotter();
    snap.save(&meta(1, 10), &payload(1, 100)).expect("save");
    // Operations of a load: list, open, stat, then reads. Fail each read
    // position in turn.
    for step in 3..6 {
        sim.inject_fault(sim.op_count() + step, FaultKind::Eio);
        let err = snap.load_newest().expect_err("injected EIO");
        assert!(matches!(err, LoadError::Read { .. }), "step {step}: {err}");
        assert!(err.to_string().contains("000000000000000a.snap"), "{err}");
    }
    assert_eq!(
        sim.list_dir(&dir()).expect("list"),
        ["0000000000000001-000000000000000a.snap"]
    );
    assert_eq!(snap.load_newest().expect("load").data, payload(1, 100));
}

#[test]
fn failed_fsync_fails_the_save_and_names_the_temporary_file() {
    let (sim, snap) = sim_snapshotter();
    let before = sim.op_count();
    snap.save(&meta(1, 1), b"probe").expect("save");
    // create, write, sync, rename, sync dir: the sync is the third.
    assert_eq!(sim.op_count() - before, 5);
    sim.inject_fault(sim.op_count() + 2, FaultKind::Eio);
    let err = snap.save(&meta(1, 2), b"data").expect_err("sync fails");
    match &err {
        SaveError::Sync { path, .. } => {
            let name = path.file_name().and_then(|n| n.to_str()).expect("utf-8");
            assert!(
                name.starts_with("0000000000000001-0000000000000002.snap."),
                "{name}"
            );
            assert!(name.ends_with(".tmp"), "{name}");
        }
        other => panic!("expected an I/O error, got {other}"),
    }
    let names = sim.list_dir(&dir()).expect("list");
    assert_eq!(
        names,
        ["0000000000000001-0000000000000001.snap"],
        "temp file removed"
    );
}

#[test]
fn handles_are_send_so_a_transfer_can_run_on_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Snapshotter>();
    assert_send::<raft_snap::SnapshotWriter>();
    assert_send::<raft_snap::SnapshotReader>();
    let (_sim, snap) = sim_snapshotter();
    let mut writer = snap.writer(&meta(1, 5), 3).expect("writer");
    let writer = std::thread::spawn(move || {
        writer.write_chunk(b"abc").expect("chunk");
        writer
    })
    .join()
    .expect("thread");
    writer.commit().expect("commit");
    assert_eq!(snap.load_newest().expect("load").data, &b"abc"[..]);
}

#[test]
fn each_step_of_a_save_fails_with_its_own_error_naming_its_file() {
    let (sim, snap) = sim_snapshotter();
    let final_name = "0000000000000001-0000000000000002.snap";
    let is_tmp = |p: &Path| {
        let name = p.file_name().and_then(|n| n.to_str()).expect("utf-8");
        name.starts_with(&format!("{final_name}.")) && name.ends_with(".tmp")
    };
    // The operations of a small save: create, write, sync, rename, sync dir.
    for step in 0..5 {
        sim.inject_fault(sim.op_count() + step, FaultKind::Eio);
        let err = snap.save(&meta(1, 2), b"data").expect_err("injected EIO");
        let named = match (step, &err) {
            (0, SaveError::Create { path, .. })
            | (1, SaveError::Write { path, .. })
            | (2, SaveError::Sync { path, .. }) => is_tmp(path),
            (3, SaveError::Rename { from, to, .. }) => is_tmp(from) && to.ends_with(final_name),
            (4, SaveError::SyncDir { dir, .. }) => *dir == self::dir(),
            _ => panic!("step {step}: unexpected {err}"),
        };
        assert!(named, "step {step}: {err}");
    }
}

#[test]
fn a_failed_purge_names_the_file_it_could_not_remove() {
    let (sim, snap) = sim_snapshotter();
    for i in 1..=3 {
        snap.save(&meta(1, i), b"x").expect("save");
    }
    // The operations of a purge: list, then a remove per snapshot.
    sim.inject_fault(sim.op_count() + 1, FaultKind::Eio);
    let err = snap.purge(1).expect_err("injected EIO");
    match &err {
        PurgeError::Remove { path, .. } => {
            assert!(
                path.ends_with("0000000000000001-0000000000000002.snap"),
                "{err}"
            );
        }
        other => panic!("expected a remove error, got {other}"),
    }
    // Again: list, two removes, then the directory sync.
    sim.inject_fault(sim.op_count() + 3, FaultKind::Eio);
    let err = snap.purge(1).expect_err("the directory sync fails");
    assert!(matches!(err, PurgeError::SyncDir { .. }), "{err}");
}

#[test]
fn a_reader_that_failed_stays_spent() {
    let (sim, snap) = sim_snapshotter();
    let saved = snap.save(&meta(1, 10), &payload(1, 100)).expect("save");
    let mut bytes = sim.read(&saved).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    overwrite(&sim, &saved, &bytes);
    let mut reader = snap
        .open_with_chunk_len(LogId::new(Term(1), Index(10)), 64)
        .expect("header intact");
    reader
        .next_chunk()
        .expect("the first chunk is not checked yet");
    assert!(reader.next_chunk().expect_err("checksum").is_corrupt());
    let err = reader.next_chunk().expect_err("spent");
    assert!(
        matches!(&err, LoadError::Spent { path } if *path == saved),
        "{err}"
    );
}

/// The file version 1 wrote for what `v2` holds: the membership without
/// its reserved word, both checksums recomputed.
fn as_version_1(v2: &[u8]) -> Vec<u8> {
    const FIXED: usize = 44;
    let conf_len = u32::from_le_bytes(v2[40..44].try_into().expect("4 bytes")) as usize;
    let mut v1 = v2[..FIXED].to_vec();
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    v1[40..44].copy_from_slice(&(conf_len as u32 - 4).to_le_bytes());
    v1.extend_from_slice(&v2[FIXED..FIXED + 20]);
    assert_eq!(v2[FIXED + 20..FIXED + 24], [0; 4], "the reserved word");
    v1.extend_from_slice(&v2[FIXED + 24..FIXED + conf_len]);
    let header_crc = crc32fast::hash(&v1);
    v1.extend_from_slice(&header_crc.to_le_bytes());
    let data_start = FIXED + conf_len + 4;
    v1.extend_from_slice(&v2[data_start..v2.len() - 4]);
    let crc = crc32fast::hash(&v1);
    v1.extend_from_slice(&crc.to_le_bytes());
    v1
}

#[test]
fn a_snapshot_written_by_format_version_1_still_loads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let snap = Snapshotter::new(tmp.path().join("snap")).expect("open");
    let path = snap.save(&meta(3, 100), b"state machine").expect("save");
    let v1 = as_version_1(&std::fs::read(&path).expect("read"));
    std::fs::write(&path, &v1).expect("write version 1");
    let loaded = snap.load_newest().expect("a version 1 file loads");
    assert_eq!(loaded.metadata, meta(3, 100));
    assert_eq!(loaded.data, &b"state machine"[..]);
    assert!(path.exists(), "not renamed .broken");
}
