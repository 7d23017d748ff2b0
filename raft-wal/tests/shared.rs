//! The shared WAL's rules: one batch for many groups, each group's log
//! kept apart, segments released once no group needs them, and the two
//! layouts refusing each other.

mod common;

use common::*;
use raft_core::{ConfState, GroupId, HardState, Index, LogId, NodeId, Term};
use raft_io::SimBackend;
use raft_wal::{
    GroupWrite, Layout, OpenError, ReleaseError, SaveError, SegmentHolder, SharedRecovered,
    SharedWal, SnapshotMarker, Wal, WalOptions,
};

const A: GroupId = GroupId(1);
const B: GroupId = GroupId(2);
const C: GroupId = GroupId(7);

fn open_shared(sim: &SimBackend) -> (SharedWal, SharedRecovered) {
    SharedWal::open(DIR, sim_options(sim)).expect("open shared")
}

fn write<'a>(
    group: GroupId,
    hs: Option<&'a HardState>,
    es: &'a [raft_core::Entry],
) -> GroupWrite<'a> {
    GroupWrite {
        group,
        hard_state: hs,
        entries: es,
    }
}

fn marker(index: u64, term: u64) -> SnapshotMarker {
    SnapshotMarker {
        index: Index(index),
        term: Term(term),
        conf_state: ConfState::with_voters([NodeId::new(1).expect("non-zero")]),
    }
}

fn recovered_entries(r: &SharedRecovered, group: GroupId, snapshot: Option<LogId>) -> Vec<u64> {
    let (_, es) = r.groups[&group]
        .clone()
        .entries_after(snapshot)
        .expect("continues");
    es.iter().map(|e| e.index.get()).collect()
}

#[test]
fn one_save_for_three_groups_is_one_batch_and_one_fsync_and_each_group_recovers_its_own() {
    let sim = SimBackend::new();
    let (wal, r) = open_shared(&sim);
    assert!(r.groups.is_empty());
    let before = wal.stats();
    let (ha, hb) = (hard_state(1, 1, 0), hard_state(3, 2, 1));
    let (ea, eb, ec) = (
        entries(1..=3, 1, 20),
        entries(1..=1, 3, 20),
        entries(1..=5, 2, 20),
    );
    wal.save(
        &[
            write(A, Some(&ha), &ea),
            write(B, Some(&hb), &eb),
            write(C, None, &ec),
        ],
        true,
    )
    .expect("save");
    let after = wal.stats();
    assert_eq!(after.batches - before.batches, 1);
    assert_eq!(after.fsyncs - before.fsyncs, 1);
    drop(wal);
    sim.crash_losing_unsynced();
    let (_, r) = open_shared(&sim);
    assert_eq!(r.groups.keys().copied().collect::<Vec<_>>(), vec![A, B, C]);
    assert_eq!(r.groups[&A].hard_state(), ha);
    assert_eq!(r.groups[&B].hard_state(), hb);
    assert_eq!(r.groups[&C].hard_state(), HardState::default());
    assert_eq!(recovered_entries(&r, A, None), vec![1, 2, 3]);
    assert_eq!(recovered_entries(&r, B, None), vec![1]);
    assert_eq!(recovered_entries(&r, C, None), vec![1, 2, 3, 4, 5]);
    let (_, b) = r.groups[&B].clone().entries_after(None).expect("continues");
    assert_eq!(b, eb, "payloads and terms are the group's own");
}

#[test]
fn a_conflicting_suffix_replaces_only_its_own_groups_entries() {
    let sim = SimBackend::new();
    let (wal, _) = open_shared(&sim);
    wal.save(
        &[
            write(A, None, &entries(1..=6, 1, 10)),
            write(B, None, &entries(1..=6, 1, 10)),
        ],
        true,
    )
    .expect("save");
    wal.save(&[write(A, None, &entries(4..=5, 2, 10))], true)
        .expect("truncate A");
    drop(wal);
    let (wal, r) = open_shared(&sim);
    assert_eq!(recovered_entries(&r, A, None), vec![1, 2, 3, 4, 5]);
    assert_eq!(recovered_entries(&r, B, None), vec![1, 2, 3, 4, 5, 6]);
    let (_, a) = r.groups[&A].clone().entries_after(None).expect("continues");
    assert_eq!(a[3].term, Term(2));
    assert_eq!(wal.last_index(A), Some(Index(5)));
    assert_eq!(wal.last_index(B), Some(Index(6)));
}

#[test]
fn a_refused_part_names_its_group_and_nothing_of_the_save_is_written() {
    let sim = SimBackend::new();
    let (wal, _) = open_shared(&sim);
    wal.save(&[write(A, None, &entries(1..=2, 1, 10))], true)
        .expect("save");
    let err = wal
        .save(
            &[
                write(B, None, &entries(1..=1, 1, 10)),
                write(A, None, &entries(5..=5, 1, 10)),
            ],
            true,
        )
        .expect_err("A skips 3 and 4");
    assert!(
        matches!(&err, SaveError::InGroup { group, source } if *group == A
            && matches!(**source, SaveError::Gap { .. })),
        "{err}"
    );
    assert!(err.to_string().starts_with("group 1: "), "{err}");
    assert_eq!(wal.last_index(B), None, "B's part was not written either");
    let dup = wal
        .save(&[write(B, None, &[]), write(B, None, &[])], true)
        .expect_err("duplicate");
    assert!(matches!(dup, SaveError::DuplicateGroup { group } if group == B));
}

#[test]
fn segments_go_once_no_group_needs_them_and_the_one_that_keeps_them_is_named() {
    let sim = SimBackend::new();
    let (wal, _) = open_shared(&sim);
    for i in 1..=40 {
        let e = entries(i..=i, 1, 100);
        wal.save(&[write(A, None, &e), write(B, None, &e)], true)
            .expect("save");
    }
    let segments = wal.segment_ids().len();
    assert!(segments > 4, "small segments rotated: {segments}");
    wal.save_snapshot_marker(A, &marker(40, 1))
        .expect("marker A");
    assert_eq!(
        wal.release(A, Index(40)).expect("release A"),
        0,
        "B still holds them"
    );
    let holder = wal.oldest_holder().expect("B holds the oldest segment");
    assert_eq!(holder.group, B);
    assert_eq!(holder.segment, wal.segment_ids()[0]);
    let err = wal.release(B, Index(10)).expect_err("B has no marker");
    assert!(matches!(err, ReleaseError::InGroup { group, .. } if group == B));
    wal.save_snapshot_marker(B, &marker(30, 1))
        .expect("marker B");
    let released = wal.release(B, Index(30)).expect("release B");
    assert!(released > 0);
    let SegmentHolder { group, through, .. } = wal.oldest_holder().expect("B's entries after 30");
    assert_eq!(group, B);
    assert!(through > Index(30));
    drop(wal);
    let (_, r) = open_shared(&sim);
    assert_eq!(
        recovered_entries(&r, A, Some(LogId::new(Term(1), Index(40)))),
        Vec::<u64>::new()
    );
    assert_eq!(
        recovered_entries(&r, B, Some(LogId::new(Term(1), Index(30)))),
        (31..=40).collect::<Vec<_>>()
    );
    assert_eq!(r.groups[&B].newest_marker(), Some(&marker(30, 1)));
}

#[test]
fn hard_states_and_markers_survive_the_release_of_the_segments_that_held_them() {
    let sim = SimBackend::new();
    let (wal, _) = open_shared(&sim);
    let hs = hard_state(5, 1, 1);
    wal.save(&[write(C, Some(&hs), &entries(1..=1, 5, 10))], true)
        .expect("C once");
    wal.save_snapshot_marker(C, &marker(1, 5))
        .expect("C marker");
    wal.release(C, Index(1)).expect("release C");
    for i in 1..=40 {
        wal.save(&[write(A, None, &entries(i..=i, 1, 100))], true)
            .expect("save A");
    }
    wal.save_snapshot_marker(A, &marker(40, 1))
        .expect("marker A");
    wal.release(A, Index(40)).expect("release A");
    assert_eq!(
        wal.segment_ids().len(),
        1,
        "only the current segment is left"
    );
    drop(wal);
    let (_, r) = open_shared(&sim);
    assert_eq!(r.groups[&C].hard_state(), hs);
    assert_eq!(r.groups[&C].newest_marker(), Some(&marker(1, 5)));
    assert_eq!(r.groups[&A].first_index(), Index(41));
}

#[test]
fn a_dropped_group_stops_holding_segments_and_is_not_recovered() {
    let sim = SimBackend::new();
    let (wal, _) = open_shared(&sim);
    for i in 1..=30 {
        let e = entries(i..=i, 1, 100);
        wal.save(&[write(A, None, &e), write(B, None, &e)], true)
            .expect("save");
    }
    wal.save_snapshot_marker(A, &marker(30, 1)).expect("marker");
    wal.release(A, Index(30)).expect("release");
    assert!(wal.segment_ids().len() > 2);
    wal.drop_group(B).expect("drop B");
    assert_eq!(
        wal.segment_ids().len(),
        1,
        "nothing holds the older segments"
    );
    assert_eq!(wal.groups(), vec![A]);
    drop(wal);
    let (wal, r) = open_shared(&sim);
    assert_eq!(r.groups.keys().copied().collect::<Vec<_>>(), vec![A]);
    // The id can start a new log.
    wal.save(&[write(B, None, &entries(1..=2, 4, 10))], true)
        .expect("B again");
    drop(wal);
    let (_, r) = open_shared(&sim);
    assert_eq!(recovered_entries(&r, B, None), vec![1, 2]);
}

#[test]
fn each_kind_of_log_refuses_the_others_directory() {
    let sim = SimBackend::new();
    drop(open_shared(&sim));
    let err = Wal::open(DIR, sim_options(&sim)).expect_err("a shared dir");
    assert!(
        matches!(
            err,
            OpenError::WrongLayout {
                found: Layout::Shared,
                ..
            }
        ),
        "{err}"
    );
    let other = SimBackend::new();
    drop(Wal::open(DIR, sim_options(&other)).expect("one-group dir"));
    let err = SharedWal::open(DIR, sim_options(&other)).expect_err("a one-group dir");
    assert!(
        matches!(
            err,
            OpenError::WrongLayout {
                found: Layout::Single,
                ..
            }
        ),
        "{err}"
    );
    let err = SharedWal::open(
        DIR,
        WalOptions::new()
            .backend(sim.shared())
            .snapshot(Some(LogId::new(Term(1), Index(1)))),
    )
    .expect_err("a snapshot option");
    assert!(matches!(err, OpenError::InvalidOption(_)), "{err}");
}

#[test]
fn concurrent_saves_of_different_groups_all_recover() {
    let sim = SimBackend::new();
    let (wal, _) =
        SharedWal::open(DIR, sim_options(&sim).segment_size_bytes(1 << 20)).expect("open");
    let wal = std::sync::Arc::new(wal);
    let threads: Vec<_> = (1..=8u64)
        .map(|g| {
            let wal = std::sync::Arc::clone(&wal);
            std::thread::spawn(move || {
                for i in 1..=50 {
                    let e = entries(i..=i, 1, 64);
                    wal.save(&[write(GroupId(g), None, &e)], true)
                        .expect("save");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    drop(wal);
    let (_, r) = open_shared(&sim);
    for g in 1..=8 {
        assert_eq!(
            recovered_entries(&r, GroupId(g), None),
            (1..=50).collect::<Vec<_>>()
        );
    }
}
