//! One test per recovery rule of the crate docs, plus the API contract of
//! save, markers, release and poisoning.

mod common;

use std::path::Path;

use common::*;
use raft_core::{Index, LogId, Term};
use raft_io::{Backend, FaultKind, FileBackend, SimBackend};
use raft_wal::format::{self, Commit, DamageKind, SegmentHeader};
use raft_wal::{OpenError, ReleaseError, SaveError, SnapshotMarker, Wal, WalOptions};

/// A WAL with three synced batches in one segment: entries 1..=2, 3..=4,
/// 5..=6. Returns the segment's path.
fn three_batches(sim: &SimBackend) -> std::path::PathBuf {
    let opts = sim_options(sim).segment_size_bytes(1 << 20);
    let (wal, _) = Wal::open(DIR, opts).expect("open");
    wal.save(Some(&hard_state(1, 1, 0)), &entries(1..=2, 1, 10), true)
        .expect("save");
    wal.save(None, &entries(3..=4, 1, 10), true).expect("save");
    wal.save(None, &entries(5..=6, 1, 10), true).expect("save");
    segment_paths(sim).pop().expect("one segment")
}

fn reopen_big(sim: &SimBackend) -> Result<(Wal, raft_wal::Recovered), OpenError> {
    Wal::open(DIR, sim_options(sim).segment_size_bytes(1 << 20))
}

fn indexes(r: &raft_wal::Recovered) -> Vec<u64> {
    r.entries.iter().map(|e| e.index.get()).collect()
}

#[test]
fn zeroed_preallocated_space_after_the_last_frame_is_fine() {
    let sim = SimBackend::new();
    let path = three_batches(&sim);
    assert_eq!(
        sim.read(&path).expect("read").len(),
        1 << 20,
        "preallocated"
    );
    let (_, r) = reopen_big(&sim).expect("reopen");
    assert_eq!(indexes(&r), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(r.truncated_tail, None);
}

#[test]
fn torn_final_frame_is_truncated_and_reported() {
    let sim = SimBackend::new();
    let path = three_batches(&sim);
    let mut bytes = sim.read(&path).expect("read");
    let (start, end) = *batch_ranges(&bytes, 1).last().expect("batches");
    // Tear the last batch: its second half becomes garbage.
    for b in &mut bytes[(start + end) / 2..end] {
        *b = 0xA5;
    }
    overwrite(&sim, &path, &bytes);
    let (wal, r) = reopen_big(&sim).expect("reopen");
    assert_eq!(indexes(&r), vec![1, 2, 3, 4]);
    let tail = r.truncated_tail.expect("reported");
    assert_eq!(tail.truncated_at, start as u64);
    drop(wal);
    let repaired = sim.read(&path).expect("read");
    assert!(repaired[start..].iter().all(|&b| b == 0), "rest zeroed");
    let (_, again) = reopen_big(&sim).expect("reopen twice");
    assert_eq!(
        again.truncated_tail, None,
        "repair is durable and idempotent"
    );
    assert_eq!(indexes(&again), vec![1, 2, 3, 4]);
}

#[test]
fn final_batch_without_its_commit_frame_is_truncated() {
    let sim = SimBackend::new();
    let path = three_batches(&sim);
    let mut bytes = sim.read(&path).expect("read");
    let (_, end) = *batch_ranges(&bytes, 1).last().expect("batches");
    let commit_len = format::FRAME_HEADER_BYTES + format::COMMIT_BYTES;
    bytes[end - commit_len..end].fill(0);
    overwrite(&sim, &path, &bytes);
    let (_, r) = reopen_big(&sim).expect("reopen");
    assert_eq!(indexes(&r), vec![1, 2, 3, 4]);
    assert_eq!(
        r.truncated_tail.expect("reported").kind,
        DamageKind::IncompleteBatch
    );
}

#[test]
fn frame_running_past_the_end_of_the_last_file_is_truncated() {
    let sim = SimBackend::new();
    let (wal, _) = Wal::open(DIR, sim_options(&sim).preallocate(false)).expect("open");
    wal.save(None, &entries(1..=2, 1, 10), true).expect("save");
    wal.save(None, &entries(3..=3, 1, 300), true).expect("save");
    drop(wal);
    let path = segment_paths(&sim).pop().expect("segment");
    let bytes = sim.read(&path).expect("read");
    overwrite(&sim, &path, &bytes[..bytes.len() - 100]);
    let (_, r) = Wal::open(DIR, sim_options(&sim).preallocate(false)).expect("reopen");
    assert_eq!(indexes(&r), vec![1, 2]);
    assert_eq!(
        r.truncated_tail.expect("reported").kind,
        DamageKind::Truncated
    );
}

#[test]
fn bad_frame_followed_by_a_batch_proving_it_synced_is_refused_as_corrupt() {
    let sim = SimBackend::new();
    let path = three_batches(&sim);
    let mut bytes = sim.read(&path).expect("read");
    let batches = batch_ranges(&bytes, 1);
    let (second_start, _) = batches[2];
    bytes[second_start + format::FRAME_HEADER_BYTES + 30] ^= 0x10;
    overwrite(&sim, &path, &bytes);
    match reopen_big(&sim) {
        Err(OpenError::Corrupt {
            segment,
            offset,
            last_good_index,
            kind,
        }) => {
            assert_eq!(segment, 1);
            assert_eq!(offset, second_start as u64);
            assert_eq!(last_good_index, Index(2));
            assert_eq!(kind, DamageKind::Checksum);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn damage_at_the_tail_of_an_earlier_segment_is_refused() {
    let sim = SimBackend::new();
    let (wal, _) = open(&sim);
    for i in 1..=12 {
        wal.save(None, &entries(i..=i, 1, 200), true).expect("save");
    }
    drop(wal);
    let segments = segment_paths(&sim);
    assert!(segments.len() >= 3, "rotated: {segments:?}");
    let first = &segments[0];
    let mut bytes = sim.read(first).expect("read");
    let (start, end) = *batch_ranges(&bytes, 1).last().expect("batches");
    bytes[end - 3] ^= 1;
    overwrite(&sim, first, &bytes);
    match Wal::open(DIR, sim_options(&sim)) {
        Err(OpenError::Corrupt {
            segment: 1, offset, ..
        }) => assert!(offset >= start as u64),
        other => panic!("expected Corrupt in segment 1, got {other:?}"),
    }
}

fn rotated_wal(sim: &SimBackend) -> Vec<std::path::PathBuf> {
    let (wal, _) = open(sim);
    for i in 1..=12 {
        wal.save(None, &entries(i..=i, 1, 200), true).expect("save");
    }
    drop(wal);
    segment_paths(sim)
}

#[test]
fn missing_middle_segment_is_refused() {
    let sim = SimBackend::new();
    let segments = rotated_wal(&sim);
    sim.remove_file(&segments[1]).expect("rm");
    assert!(matches!(
        Wal::open(DIR, sim_options(&sim)),
        Err(OpenError::MissingSegment { missing: 2, .. })
    ));
}

#[test]
fn duplicate_segment_id_is_refused() {
    let sim = SimBackend::new();
    let segments = rotated_wal(&sim);
    let bytes = sim.read(&segments[1]).expect("read");
    let copy = dir().join(format::segment_file_name(2, Index(999)));
    overwrite(&sim, &copy, &bytes);
    assert!(matches!(
        Wal::open(DIR, sim_options(&sim)),
        Err(OpenError::DuplicateSegment { segment: 2 })
    ));
}

#[test]
fn segment_copied_under_another_name_is_refused() {
    let sim = SimBackend::new();
    let segments = rotated_wal(&sim);
    let last = segments.last().expect("segments");
    let bytes = sim.read(last).expect("read");
    let next_id = segment_id(last) + 1;
    let copy = dir().join(format::segment_file_name(next_id, Index(13)));
    overwrite(&sim, &copy, &bytes);
    assert!(matches!(
        Wal::open(DIR, sim_options(&sim)),
        Err(OpenError::MisnamedSegment { .. })
    ));
}

/// Writes a segment by hand: header, then one batch of `records`.
fn craft_segment(sim: &SimBackend, id: u64, first: u64, build: impl FnOnce(&mut Vec<u8>) -> u32) {
    let mut buf = format::encode_segment_header(SegmentHeader {
        segment_id: id,
        first_index: Index(first),
    })
    .to_vec();
    let start = buf.len() as u64;
    let frames = build(&mut buf);
    let commit = Commit {
        batch_start: start,
        synced_through: start,
        frame_count: frames,
    };
    format::put_commit(&mut buf, id, commit);
    sim.create_dir_all(&dir()).expect("mkdir");
    overwrite(
        sim,
        &dir().join(format::segment_file_name(id, Index(first))),
        &buf,
    );
}

#[test]
fn index_gap_between_segments_is_refused() {
    let sim = SimBackend::new();
    craft_segment(&sim, 1, 1, |b| {
        format::put_entry(b, 1, &entry(1, 1, 5));
        1
    });
    craft_segment(&sim, 2, 5, |b| {
        format::put_entry(b, 2, &entry(5, 1, 5));
        1
    });
    assert!(matches!(
        Wal::open(DIR, sim_options(&sim)),
        Err(OpenError::IndexGap {
            segment: 2,
            expected: Index(2),
            found: Index(5)
        })
    ));
}

#[test]
fn index_gap_inside_a_segment_is_refused() {
    let sim = SimBackend::new();
    craft_segment(&sim, 1, 1, |b| {
        format::put_entry(b, 1, &entry(1, 1, 5));
        format::put_entry(b, 1, &entry(3, 1, 5));
        2
    });
    assert!(matches!(
        Wal::open(DIR, sim_options(&sim)),
        Err(OpenError::IndexGap {
            found: Index(3),
            ..
        })
    ));
}

#[test]
fn commit_beyond_the_last_index_is_refused() {
    let sim = SimBackend::new();
    craft_segment(&sim, 1, 1, |b| {
        format::put_hard_state(b, 1, &hard_state(1, 0, 10));
        format::put_entry(b, 1, &entry(1, 1, 5));
        2
    });
    assert!(matches!(
        Wal::open(DIR, sim_options(&sim)),
        Err(OpenError::CommitBeyondLog {
            commit: Index(10),
            last_index: Index(1)
        })
    ));
}

#[test]
fn corrupt_hard_state_is_refused_not_defaulted() {
    let sim = SimBackend::new();
    let path = three_batches(&sim);
    let mut bytes = sim.read(&path).expect("read");
    let hs_frame = frames(&bytes, 1)
        .into_iter()
        .filter(|(_, _, r)| matches!(r, format::Record::HardState(_)))
        .nth(1)
        .expect("the saved hard state frame");
    bytes[hs_frame.0 + format::FRAME_HEADER_BYTES + 1] ^= 0x40;
    overwrite(&sim, &path, &bytes);
    assert!(matches!(
        reopen_big(&sim),
        Err(OpenError::Corrupt {
            kind: DamageKind::Checksum,
            ..
        })
    ));
}

#[test]
fn leftover_temp_files_are_deleted() {
    let sim = SimBackend::new();
    let _ = three_batches(&sim);
    let temp = dir().join("0000000000000002-0000000000000007.wal.tmp");
    overwrite(&sim, &temp, b"half a segment");
    let (_, r) = reopen_big(&sim).expect("reopen");
    assert_eq!(r.removed_temp_files, vec![temp.clone()]);
    assert!(sim.read(&temp).is_err());
    assert_eq!(indexes(&r), vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn second_open_of_a_locked_directory_is_refused_with_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_wal, _) =
        Wal::open(tmp.path(), WalOptions::new().segment_size_bytes(1 << 16)).expect("open");
    let err = Wal::open(tmp.path(), WalOptions::new()).expect_err("locked");
    assert!(matches!(err, OpenError::Locked { .. }));
    assert!(err.to_string().contains("locked"), "{err}");
}

#[test]
fn real_files_round_trip_through_reopen() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let opts = || {
        WalOptions::new()
            .backend(FileBackend::shared())
            .segment_size_bytes(4096)
    };
    let (wal, _) = Wal::open(tmp.path(), opts()).expect("open");
    for i in 1..=20 {
        wal.save(
            Some(&hard_state(1, 2, i - 1)),
            &entries(i..=i, 1, 300),
            true,
        )
        .expect("save");
    }
    drop(wal);
    let (_, r) = Wal::open(tmp.path(), opts()).expect("reopen");
    assert_eq!(r.entries, entries(1..=20, 1, 300));
    assert_eq!(r.hard_state, hard_state(1, 2, 19));
}

#[test]
fn failed_write_poisons_the_wal_until_reopen() {
    let sim = SimBackend::new();
    let (wal, _) = open(&sim);
    wal.save(None, &entries(1..=1, 1, 10), true).expect("save");
    sim.inject_fault(sim.op_count(), FaultKind::ShortWrite);
    assert!(matches!(
        wal.save(None, &entries(2..=2, 1, 10), true),
        Err(SaveError::Io(_))
    ));
    assert!(wal.is_poisoned());
    assert!(matches!(
        wal.save(None, &entries(2..=2, 1, 10), true),
        Err(SaveError::Poisoned)
    ));
    assert!(matches!(wal.sync(), Err(SaveError::Poisoned)));
    assert!(matches!(
        wal.release_to(Index(0)),
        Err(ReleaseError::Poisoned)
    ));
    drop(wal);
    let (wal, r) = open(&sim);
    assert_eq!(r.entries, entries(1..=1, 1, 10));
    wal.save(None, &entries(2..=2, 1, 10), true)
        .expect("writable again");
}

#[test]
fn failed_fsync_poisons_the_wal_and_its_batch_is_not_acknowledged() {
    let sim = SimBackend::new();
    let (wal, _) = open(&sim);
    wal.save(None, &entries(1..=1, 1, 10), true).expect("save");
    // The write is op N, its fsync op N+1.
    sim.inject_fault(sim.op_count() + 1, FaultKind::Eio);
    assert!(matches!(
        wal.save(None, &entries(2..=2, 1, 10), true),
        Err(SaveError::Io(_))
    ));
    assert!(matches!(wal.sync(), Err(SaveError::Poisoned)));
    drop(wal);
    sim.crash_losing_unsynced();
    let (_, r) = open(&sim);
    assert_eq!(r.entries, entries(1..=1, 1, 10));
}

#[test]
fn enospc_while_rotating_poisons_the_wal() {
    let sim = SimBackend::new();
    let (wal, _) = open(&sim);
    let mut failed = false;
    for i in 1..=12 {
        if i == 5 {
            sim.inject_fault(sim.op_count() + 2, FaultKind::Enospc);
        }
        match wal.save(None, &entries(i..=i, 1, 200), true) {
            Ok(()) => {}
            Err(SaveError::Io(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::StorageFull);
                failed = true;
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(failed);
    assert!(wal.is_poisoned());
}

#[test]
fn suffix_replacement_survives_reopen() {
    let sim = SimBackend::new();
    let (wal, _) = open(&sim);
    wal.save(Some(&hard_state(1, 1, 1)), &entries(1..=5, 1, 50), true)
        .expect("save");
    wal.save(Some(&hard_state(2, 2, 1)), &entries(3..=4, 2, 60), true)
        .expect("truncate");
    drop(wal);
    let (_, r) = open(&sim);
    let mut want = entries(1..=2, 1, 50);
    want.extend(entries(3..=4, 2, 60));
    assert_eq!(r.entries, want);
    assert_eq!(r.hard_state, hard_state(2, 2, 1));
}

#[test]
fn save_rejects_invalid_batches_before_writing() {
    let sim = SimBackend::new();
    let (wal, _) = open(&sim);
    wal.save(Some(&hard_state(1, 1, 2)), &entries(1..=3, 1, 5), true)
        .expect("save");
    let before = wal.stats();
    assert!(matches!(
        wal.save(None, &entries(5..=5, 1, 5), true),
        Err(SaveError::Gap {
            expected: Index(4),
            found: Index(5)
        })
    ));
    let mut holey = entries(4..=4, 1, 5);
    holey.push(entry(6, 1, 5));
    assert!(matches!(
        wal.save(None, &holey, true),
        Err(SaveError::NotContiguous { .. })
    ));
    assert!(matches!(
        wal.save(None, &entries(2..=2, 2, 5), true),
        Err(SaveError::TruncatesCommitted { .. })
    ));
    assert!(matches!(
        wal.save(Some(&hard_state(1, 1, 9)), &[], true),
        Err(SaveError::CommitBeyondLog { .. })
    ));
    let opts_max = sim_options(&sim).max_record_bytes;
    assert!(matches!(
        wal.save(None, &entries(4..=4, 1, opts_max as usize), true),
        Err(SaveError::RecordTooLarge { .. })
    ));
    assert_eq!(wal.stats(), before, "nothing written");
    assert!(!wal.is_poisoned());
}

#[test]
fn recovery_returns_entries_after_the_callers_snapshot() {
    let sim = SimBackend::new();
    let (wal, _) = open(&sim);
    wal.save(Some(&hard_state(1, 1, 6)), &entries(1..=8, 1, 20), true)
        .expect("save");
    let marker = SnapshotMarker {
        index: Index(6),
        term: Term(1),
        conf_state: Default::default(),
    };
    wal.save_snapshot_marker(&marker).expect("marker");
    drop(wal);
    let opts = sim_options(&sim).snapshot(Some(LogId::new(Term(1), Index(6))));
    let (_, r) = Wal::open(DIR, opts).expect("reopen");
    assert_eq!(r.snapshot, Some(marker));
    assert_eq!(r.entries, entries(7..=8, 1, 20));
    let wrong = sim_options(&sim).snapshot(Some(LogId::new(Term(2), Index(6))));
    assert!(matches!(
        Wal::open(DIR, wrong),
        Err(OpenError::SnapshotMismatch { .. })
    ));
}

#[test]
fn a_marker_whose_membership_has_no_canonical_encoding_is_refused_before_writing() {
    let sim = SimBackend::new();
    let (wal, _) = open(&sim);
    wal.save(Some(&hard_state(1, 1, 2)), &entries(1..=3, 1, 20), true)
        .expect("save");
    let voter = raft_core::NodeId::new(1).expect("non-zero");
    let marker = SnapshotMarker {
        index: Index(2),
        term: Term(1),
        conf_state: raft_core::ConfState {
            auto_leave: true,
            ..raft_core::ConfState::with_voters([voter])
        },
    };
    let writes = sim.stats().writes;
    let err = wal.save_snapshot_marker(&marker).expect_err("not joint");
    assert!(matches!(err, SaveError::InvalidConfState(_)), "{err}");
    assert_eq!(sim.stats().writes, writes, "nothing written");
    assert!(!wal.is_poisoned());
    wal.save(None, &entries(4..=4, 1, 20), true)
        .expect("the WAL goes on");
}

#[test]
fn marker_past_the_last_index_restarts_the_log_after_it() {
    let sim = SimBackend::new();
    let (wal, _) = open(&sim);
    wal.save(None, &entries(1..=3, 1, 20), true).expect("save");
    let marker = SnapshotMarker {
        index: Index(100),
        term: Term(4),
        conf_state: Default::default(),
    };
    wal.save_snapshot_marker(&marker).expect("marker");
    assert!(matches!(
        wal.save(None, &entries(100..=100, 4, 5), true),
        Err(SaveError::BelowSnapshot { .. })
    ));
    wal.save(
        Some(&hard_state(4, 0, 100)),
        &entries(101..=102, 4, 20),
        true,
    )
    .expect("save");
    drop(wal);
    let (_, r) = Wal::open(DIR, sim_options(&sim).snapshot(Some(marker.log_id()))).expect("reopen");
    assert_eq!(r.entries, entries(101..=102, 4, 20));
    assert!(matches!(
        Wal::open(DIR, sim_options(&sim)),
        Err(OpenError::SnapshotMismatch {
            requested: None,
            ..
        })
    ));
}

#[test]
fn release_deletes_only_whole_segments_a_snapshot_covers() {
    let sim = SimBackend::new();
    let (wal, _) = open(&sim);
    for i in 1..=12 {
        wal.save(Some(&hard_state(1, 1, i)), &entries(i..=i, 1, 200), true)
            .expect("save");
    }
    assert!(matches!(
        wal.release_to(Index(5)),
        Err(ReleaseError::BeyondSnapshot { .. })
    ));
    let marker = SnapshotMarker {
        index: Index(7),
        term: Term(1),
        conf_state: Default::default(),
    };
    wal.save_snapshot_marker(&marker).expect("marker");
    let before = wal.segment_ids();
    let released = wal.release_to(Index(7)).expect("release");
    assert!(released > 0, "segments {before:?}");
    assert_eq!(wal.segment_ids(), before[released..].to_vec());
    wal.save(None, &entries(13..=13, 1, 200), true)
        .expect("save after release");
    drop(wal);
    let (_, r) = Wal::open(DIR, sim_options(&sim).snapshot(Some(marker.log_id()))).expect("reopen");
    let mut want = entries(8..=12, 1, 200);
    want.extend(entries(13..=13, 1, 200));
    assert_eq!(r.entries, want);
    assert_eq!(r.hard_state, hard_state(1, 1, 12));
}

#[test]
fn one_fsync_covers_a_batch_of_a_thousand_entries() {
    let sim = SimBackend::new();
    let opts = sim_options(&sim).segment_size_bytes(1 << 22);
    let (wal, _) = Wal::open(DIR, opts).expect("open");
    let syncs = sim.stats().file_syncs;
    wal.save(None, &entries(1..=1024, 1, 16), true)
        .expect("save");
    assert_eq!(sim.stats().file_syncs - syncs, 1);
    assert_eq!(wal.stats().fsyncs, 1);
    assert_eq!(wal.stats().batches, 1);
}

#[test]
fn unsynced_saves_cost_no_fsync_until_a_synced_one() {
    let sim = SimBackend::new();
    let opts = sim_options(&sim).segment_size_bytes(1 << 22);
    let (wal, _) = Wal::open(DIR, opts).expect("open");
    for i in 1..=10 {
        wal.save(None, &entries(i..=i, 1, 16), false).expect("save");
    }
    assert_eq!(wal.stats().fsyncs, 0);
    wal.sync().expect("sync");
    assert_eq!(wal.stats().fsyncs, 1);
    wal.sync().expect("nothing new");
    assert_eq!(wal.stats().fsyncs, 1);
}

#[test]
fn verify_reports_a_torn_tail_without_repairing_it() {
    let sim = SimBackend::new();
    let path = three_batches(&sim);
    let mut bytes = sim.read(&path).expect("read");
    let (start, end) = *batch_ranges(&bytes, 1).last().expect("batches");
    bytes[end - 1] ^= 0xFF;
    overwrite(&sim, &path, &bytes);
    let report = raft_wal::inspect::verify(&sim, Path::new(DIR), 1 << 20).expect("verify");
    assert_eq!(report.last_index, Index(4));
    assert_eq!(report.torn_tail.map(|t| t.2), Some(start as u64));
    assert_eq!(
        sim.read(&path).expect("read"),
        bytes,
        "verify writes nothing"
    );
}

/// What `open` recovers is durable before it returns: a process that died
/// after writing a batch but before its fsync leaves the batch in the page
/// cache, recovery reads it, and raft acts on it (a vote, say, re-sent
/// without another fsync since it is already "persisted"). A power cut
/// after that must not take it back.
#[test]
fn what_open_recovers_survives_a_later_power_cut() {
    let sim = SimBackend::new();
    let (wal, _) = open(&sim);
    wal.save(Some(&hard_state(1, 2, 0)), &entries(1..=2, 1, 10), true)
        .expect("save");
    // Written, not synced; then the process dies (the page cache stays).
    wal.save(Some(&hard_state(2, 3, 0)), &entries(3..=3, 2, 10), false)
        .expect("save");
    drop(wal);
    let (wal, r) = open(&sim);
    assert_eq!(r.hard_state, hard_state(2, 3, 0));
    assert_eq!(
        r.entries,
        entries(1..=2, 1, 10)
            .into_iter()
            .chain(entries(3..=3, 2, 10))
            .collect::<Vec<_>>()
    );
    drop(wal);
    sim.crash_losing_unsynced();
    let (_, r) = open(&sim);
    assert_eq!(
        r.hard_state,
        hard_state(2, 3, 0),
        "the recovered vote was lost"
    );
    assert_eq!(r.entries.len(), 3);
}

/// The files of a WAL holding one synced batch (hard state 1/1/0, entries
/// 1..=3), which is also the batch `open` writes again.
fn one_synced_batch() -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let sim = SimBackend::new();
    let (wal, _) = open(&sim);
    wal.save(Some(&hard_state(1, 1, 0)), &entries(1..=3, 1, 40), true)
        .expect("save");
    drop(wal);
    snapshot_files(&sim)
}

/// `open` writes the last batches again to make them durable (see above),
/// and some of them may already be durable: a power cut in the middle of
/// that rewrite must not tear a synced batch. Every fault at each of
/// `open`'s first operations, then a power cut, then a clean open: the
/// synced batch is always there.
#[test]
fn a_power_cut_during_opens_tail_rewrite_loses_no_synced_batch() {
    let files = one_synced_batch();
    let kinds = [FaultKind::Eio, FaultKind::Enospc, FaultKind::ShortWrite];
    for at in 0..16 {
        for (k, kind) in kinds.into_iter().enumerate() {
            for seed in 0..8 {
                let sim = restore_files(&files);
                sim.inject_fault(sim.op_count() + at, kind);
                let _ = Wal::open(DIR, sim_options(&sim));
                sim.clear_fault();
                sim.crash(seed * 3 + k as u64);
                let (_, r) = open(&sim);
                let ctx = format!("fault {kind:?} at op {at}, crash seed {seed}");
                assert_eq!(r.hard_state, hard_state(1, 1, 0), "{ctx}");
                assert_eq!(r.entries, entries(1..=3, 1, 40), "{ctx}");
            }
        }
    }
}

/// A WAL whose last `open` failed right after making the copy of its tail
/// rewrite durable, leaving the copy behind.
fn interrupted_tail_rewrite() -> SimBackend {
    let files = one_synced_batch();
    for at in 0..32 {
        let sim = restore_files(&files);
        sim.inject_fault(sim.op_count() + at, FaultKind::Eio);
        if Wal::open(DIR, sim_options(&sim)).is_err()
            && sim
                .list_dir(Path::new(DIR))
                .expect("list")
                .contains(&"tail-copy".to_string())
        {
            sim.clear_fault();
            return sim;
        }
    }
    panic!("no fault left the tail copy behind");
}

#[test]
fn open_finishes_an_interrupted_tail_rewrite_and_removes_its_copy() {
    let sim = interrupted_tail_rewrite();
    let report = raft_wal::inspect::verify(&sim, Path::new(DIR), 1 << 20).expect("verify");
    let (segment, _, len) = report.tail_copy.expect("verify reports the copy");
    assert_eq!(segment, 1);
    assert!(len > 0);
    assert_eq!(report.last_index, Index(3));
    let (_, r) = open(&sim);
    assert_eq!(r.entries, entries(1..=3, 1, 40));
    let names = sim.list_dir(Path::new(DIR)).expect("list");
    assert!(
        !names.iter().any(|n| n.starts_with("tail-copy")),
        "{names:?}"
    );
    sim.crash_losing_unsynced();
    assert!(
        !sim.list_dir(Path::new(DIR))
            .expect("list")
            .iter()
            .any(|n| n.starts_with("tail-copy")),
        "the removal is durable"
    );
}

#[test]
fn a_damaged_tail_copy_is_refused_by_open_and_verify() {
    let sim = interrupted_tail_rewrite();
    let copy = dir().join("tail-copy");
    let mut bytes = sim.read(&copy).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    overwrite(&sim, &copy, &bytes);
    assert_tail_copy_refused(&sim);
}

/// A copy that verifies but points past its segment's end (forged, or
/// written by something else) is refused too, before anything is
/// allocated or written for it.
#[test]
fn a_tail_copy_pointing_past_its_segment_is_refused() {
    let sim = interrupted_tail_rewrite();
    let copy = dir().join("tail-copy");
    let mut bytes = sim.read(&copy).expect("read");
    bytes[24..32].copy_from_slice(&(1u64 << 50).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes[..40]);
    crc.update(&bytes[48..]);
    bytes[40..44].copy_from_slice(&crc.finalize().to_le_bytes());
    overwrite(&sim, &copy, &bytes);
    assert_tail_copy_refused(&sim);
}

fn assert_tail_copy_refused(sim: &SimBackend) {
    let refused = |e: OpenError| matches!(e, OpenError::CorruptTailCopy { .. });
    let err = Wal::open(DIR, sim_options(sim)).expect_err("open refuses");
    assert!(refused(err));
    let err = raft_wal::inspect::verify(sim, Path::new(DIR), 1 << 20).expect_err("verify refuses");
    assert!(refused(err));
}
