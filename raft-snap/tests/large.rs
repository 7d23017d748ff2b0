//! Streaming a large snapshot through a real directory in bounded memory.
//!
//! The size defaults to 16 MiB so the debug-mode suite stays quick; the
//! figure in the README comes from
//! `RAFT_SNAP_LARGE_MIB=256 cargo test -p raft-snap --release --test large -- --nocapture`.
//! This file holds a single test so the process's peak RSS is this test's.

use raft_core::{ConfState, Index, NodeId, SnapshotMetadata, Term};
use raft_snap::Snapshotter;

const DEFAULT_MIB: u64 = 16;
/// How far the peak resident set may rise above where it started. The
/// writer buffers 1 MiB and the reader holds one 1 MiB chunk; the rest is
/// slack for the allocator and the test's own buffers.
const RSS_GROWTH_MAX_BYTES: u64 = 32 << 20;

fn size_bytes() -> u64 {
    let mib = match std::env::var("RAFT_SNAP_LARGE_MIB") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("RAFT_SNAP_LARGE_MIB={s:?} is not a number")),
        Err(_) => DEFAULT_MIB,
    };
    mib << 20
}

/// The byte at `offset` of the test data: a pure function of the offset, so
/// the reader can check any chunk without keeping the data.
fn fill(offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let pos = offset + i as u64;
        let word = splitmix64(pos / 8);
        *b = word.to_le_bytes()[(pos % 8) as usize];
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A field of `/proc/self/status` in bytes ("VmHWM", "VmRSS").
fn proc_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} missing from /proc/self/status"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unparsable line {line:?}"));
    kib * 1024
}

#[test]
fn large_snapshot_streams_to_disk_and_back_in_bounded_memory() {
    let size = size_bytes();
    let rss_before = proc_status_bytes("VmRSS");
    let tmp = tempfile::tempdir().expect("tempdir");
    let snapshotter = Snapshotter::new(tmp.path().join("snap")).expect("open");
    let metadata = SnapshotMetadata {
        index: Index(1 << 40),
        term: Term(9),
        conf_state: ConfState::with_voters([1, 2, 3].map(|id| NodeId::new(id).expect("non-zero"))),
    };

    // Odd write chunks, so they never line up with the reader's chunks.
    let mut chunk = vec![0u8; 192 * 1024 + 17];
    let mut writer = snapshotter.writer(&metadata, size).expect("writer");
    let mut written = 0;
    while written < size {
        let len = chunk.len().min((size - written) as usize);
        fill(written, &mut chunk[..len]);
        writer.write_chunk(&chunk[..len]).expect("write chunk");
        written += len as u64;
    }
    writer.commit().expect("commit");

    let mut reader = snapshotter.open_newest().expect("verified and opened");
    assert_eq!(reader.metadata(), &metadata);
    assert_eq!(reader.data_len(), size);
    let mut expected = Vec::new();
    let mut read = 0;
    while let Some(got) = reader.next_chunk().expect("chunk verifies") {
        expected.resize(got.len(), 0);
        fill(read, &mut expected);
        assert!(
            got == &expected[..],
            "data differs in the chunk at offset {read}"
        );
        read += got.len() as u64;
    }
    assert_eq!(read, size);

    let peak = proc_status_bytes("VmHWM");
    let growth = peak.saturating_sub(rss_before);
    println!(
        "streamed {} MiB: RSS before {} KiB, peak (VmHWM) {} KiB, growth {} KiB",
        size >> 20,
        rss_before >> 10,
        peak >> 10,
        growth >> 10
    );
    assert!(
        growth < RSS_GROWTH_MAX_BYTES,
        "peak RSS grew by {growth} bytes streaming {size} bytes"
    );
}
