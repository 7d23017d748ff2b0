//! Preallocation adapts to batch sizes: after a segment of batches of
//! 1 MiB or more, the next segment is not filled with zeros, and such a
//! log recovers like any other.

mod common;

use common::*;
use raft_wal::Wal;
use raft_wal::io::{Backend, SimBackend};

const SEGMENT: u64 = 4 << 20;

fn segment_lengths(sim: &SimBackend) -> Vec<u64> {
    segment_paths(sim)
        .iter()
        .map(|p| sim.read(p).expect("read").len() as u64)
        .collect()
}

#[test]
fn segments_after_big_batches_are_not_zero_filled_and_recover() {
    let sim = SimBackend::new();
    let opts = sim_options(&sim).segment_size_bytes(SEGMENT);
    let (wal, _) = Wal::open(DIR, opts.clone()).expect("open");
    // Small batches: the next segment is preallocated.
    let mut expected = Vec::new();
    let mut save = |count: u64, len: usize| {
        let first = expected.len() as u64 + 1;
        let batch = entries(first..=first + count - 1, 1, len);
        wal.save(None, &batch, true).expect("save");
        expected.extend(batch);
    };
    // Small batches: the next segment is preallocated.
    while wal.stats().rotations == 0 {
        save(4, 4096);
    }
    assert_eq!(segment_lengths(&sim)[1], SEGMENT, "zero-filled");
    // 1.5 MiB batches: the segment after them is not.
    while wal.stats().rotations == 1 {
        save(48, 32 << 10);
    }
    save(1, 100);
    let lengths = segment_lengths(&sim);
    assert!(lengths[2] < SEGMENT, "{lengths:?}");
    drop(wal);
    sim.crash_losing_unsynced();
    let (_, r) = Wal::open(DIR, opts).expect("reopen");
    assert_eq!(r.truncated_tail, None);
    assert_eq!(r.entries, expected);
}
