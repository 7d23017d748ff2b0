//! The corruption corpus: a small log damaged in every way we can enumerate
//! (truncation at every offset, every bit flipped, sectors zeroed,
//! segments deleted), each compared with the outcome the recovery rules
//! prescribe.

mod common;

use std::path::PathBuf;

use common::*;
use raft_core::{Entry, Index};
use raft_io::Backend;
use raft_wal::{OpenError, Wal};

type Files = Vec<(PathBuf, Vec<u8>)>;

/// A log over several segments, every save synced. Returns the files and
/// the entries after each save (index 0: before any).
fn build() -> (Files, Vec<Vec<Entry>>) {
    let sim = raft_io::SimBackend::new();
    let (wal, _) = open(&sim);
    let mut states = vec![Vec::new()];
    let mut log: Vec<Entry> = Vec::new();
    for i in 1..=14u64 {
        let batch = entries(i..=i, 1, 20 + (i as usize * 13) % 90);
        wal.save(Some(&hard_state(1, 1, i - 1)), &batch, true)
            .expect("save");
        log.extend(batch);
        states.push(log.clone());
    }
    drop(wal);
    (snapshot_files(&sim), states)
}

struct Layout {
    last_path: PathBuf,
    last_id: u64,
    /// Complete batches of the last segment, the carried one first.
    batches: Vec<(usize, usize)>,
    /// The number of saves whose batches are in the last segment.
    saves_in_last: usize,
}

fn layout(files: &Files) -> Layout {
    let (last_path, bytes) = files
        .iter()
        .rfind(|(p, _)| p.extension().is_some_and(|e| e == "wal"))
        .expect("a segment");
    let last_id = segment_id(last_path);
    let batches = batch_ranges(bytes, last_id);
    assert!(batches.len() >= 3, "the last segment holds several batches");
    Layout {
        last_path: last_path.clone(),
        last_id,
        saves_in_last: batches.len() - 1,
        batches,
    }
}

fn with_last(files: &Files, layout: &Layout, bytes: Vec<u8>) -> raft_io::SimBackend {
    let mut files = files.clone();
    let slot = files
        .iter_mut()
        .find(|(p, _)| *p == layout.last_path)
        .expect("last");
    slot.1 = bytes;
    restore_files(&files)
}

/// The entries recovery should return when the last segment keeps `kept`
/// complete batches (the carried one included).
fn expected(states: &[Vec<Entry>], layout: &Layout, kept: usize) -> Vec<Entry> {
    let before_last_segment = states.len() - 1 - layout.saves_in_last;
    states[before_last_segment + kept.saturating_sub(1)].clone()
}

fn assert_corrupt_in(
    result: Result<(Wal, raft_wal::Recovered), OpenError>,
    segment: u64,
    ctx: &str,
) {
    match result {
        Err(OpenError::Corrupt { segment: s, .. }) => assert_eq!(s, segment, "{ctx}"),
        Err(e) => panic!("{ctx}: expected Corrupt, got {e}"),
        Ok((_, r)) => panic!(
            "{ctx}: expected Corrupt, recovered {} entries",
            r.entries.len()
        ),
    }
}

#[test]
fn truncating_the_last_segment_at_every_offset_keeps_exactly_the_whole_batches() {
    let (files, states) = build();
    let layout = layout(&files);
    let original = files
        .iter()
        .find(|(p, _)| *p == layout.last_path)
        .expect("last")
        .1
        .clone();
    let data_end = layout.batches.last().expect("batches").1;
    for cut in 0..=data_end + 16 {
        let sim = with_last(
            &files,
            &layout,
            original[..cut.min(original.len())].to_vec(),
        );
        let ctx = format!("cut at {cut}");
        let result = Wal::open(DIR, sim_options(&sim));
        if cut < raft_wal::format::SEGMENT_HEADER_BYTES {
            assert_corrupt_in(result, layout.last_id, &ctx);
            continue;
        }
        let (_, r) = result.unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let kept = layout.batches.iter().filter(|(_, end)| *end <= cut).count();
        assert_eq!(r.entries, expected(&states, &layout, kept), "{ctx}");
        let at_boundary = cut == data_end || layout.batches.iter().any(|(s, _)| *s == cut);
        assert_eq!(
            r.truncated_tail.is_some(),
            !at_boundary && cut < data_end,
            "{ctx}"
        );
    }
}

#[test]
fn flipping_any_bit_of_the_last_segment_truncates_only_the_final_batch_or_refuses() {
    let (files, states) = build();
    let layout = layout(&files);
    let original = files
        .iter()
        .find(|(p, _)| *p == layout.last_path)
        .expect("last")
        .1
        .clone();
    let (last_start, data_end) = *layout.batches.last().expect("batches");
    // All of the written bytes, plus some of the zeroed preallocation.
    for bit in 0..(data_end + 64) * 8 {
        let mut bytes = original.clone();
        bytes[bit / 8] ^= 1 << (bit % 8);
        let sim = with_last(&files, &layout, bytes);
        let ctx = format!("bit {bit} (byte {})", bit / 8);
        let result = Wal::open(DIR, sim_options(&sim));
        let byte = bit / 8;
        if byte < last_start {
            // Header, or a batch that a later commit proves was synced.
            assert_corrupt_in(result, layout.last_id, &ctx);
        } else if byte < data_end {
            let (_, r) = result.unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let kept = layout.batches.len() - 1;
            assert_eq!(r.entries, expected(&states, &layout, kept), "{ctx}");
            assert!(r.truncated_tail.is_some(), "{ctx}");
        } else {
            let (_, r) = result.unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(r.entries, *states.last().expect("states"), "{ctx}");
            assert!(
                r.truncated_tail.is_some(),
                "{ctx}: stray byte after the log"
            );
        }
    }
}

#[test]
fn zeroing_a_sector_refuses_unless_nothing_after_it_proves_it_synced() {
    let (files, states) = build();
    let layout = layout(&files);
    let original = files
        .iter()
        .find(|(p, _)| *p == layout.last_path)
        .expect("last")
        .1
        .clone();
    let (last_start, data_end) = *layout.batches.last().expect("batches");
    for sector in 0..original.len().div_ceil(512) {
        let (lo, hi) = (sector * 512, ((sector + 1) * 512).min(original.len()));
        let mut bytes = original.clone();
        bytes[lo..hi].fill(0);
        let sim = with_last(&files, &layout, bytes);
        let ctx = format!("sector {sector}");
        let result = Wal::open(DIR, sim_options(&sim));
        if lo < last_start && hi < data_end {
            // The final commit survives and proves the zeroed bytes synced.
            assert_corrupt_in(result, layout.last_id, &ctx);
        } else if lo < raft_wal::format::SEGMENT_HEADER_BYTES {
            assert_corrupt_in(result, layout.last_id, &ctx);
        } else if lo < data_end {
            // Nothing valid survives after the damage: a torn tail.
            let (_, r) = result.unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let kept = layout.batches.iter().filter(|(_, end)| *end <= lo).count();
            assert_eq!(r.entries, expected(&states, &layout, kept), "{ctx}");
            assert!(r.truncated_tail.is_some(), "{ctx}");
        } else {
            let (_, r) = result.unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(r.entries, *states.last().expect("states"), "{ctx}");
            assert_eq!(r.truncated_tail, None, "{ctx}: zeros are unwritten space");
        }
    }
}

#[test]
fn truncating_an_earlier_segment_anywhere_in_its_data_is_refused() {
    let (files, states) = build();
    let (first_path, first) = files
        .iter()
        .find(|(p, _)| p.extension().is_some_and(|e| e == "wal"))
        .expect("segment")
        .clone();
    let data_end = batch_ranges(&first, 1).last().expect("batches").1;
    for cut in (0..first.len()).step_by(8) {
        let mut files = files.clone();
        files
            .iter_mut()
            .find(|(p, _)| *p == first_path)
            .expect("first")
            .1 = first[..cut].to_vec();
        let sim = restore_files(&files);
        let result = Wal::open(DIR, sim_options(&sim));
        let ctx = format!("cut at {cut}");
        match result {
            Ok((_, r)) => {
                assert!(cut >= data_end, "{ctx}: accepted a cut into the data");
                assert_eq!(r.entries, *states.last().expect("states"), "{ctx}");
            }
            Err(OpenError::Corrupt { segment: 1, .. } | OpenError::IndexGap { .. }) => {
                assert!(cut < data_end, "{ctx}: refused a cut in zeros");
            }
            Err(e) => panic!("{ctx}: undeclared error {e}"),
        }
    }
}

#[test]
fn deleting_the_first_segment_is_refused_without_a_snapshot() {
    let (files, _) = build();
    let sim = restore_files(&files);
    let segments = segment_paths(&sim);
    sim.remove_file(&segments[0]).expect("rm");
    match Wal::open(DIR, sim_options(&sim)) {
        Err(OpenError::SnapshotMismatch {
            requested: None,
            log_start,
            ..
        }) => assert!(log_start > Index(1)),
        other => panic!("expected SnapshotMismatch, got {other:?}"),
    }
}

#[test]
fn deleting_the_last_segment_goes_undetected_as_documented() {
    let (files, states) = build();
    let sim = restore_files(&files);
    let segments = segment_paths(&sim);
    sim.remove_file(segments.last().expect("segments"))
        .expect("rm");
    let (_, r) = Wal::open(DIR, sim_options(&sim)).expect("known gap: accepted");
    assert!(r.entries.len() < states.last().expect("states").len());
}
