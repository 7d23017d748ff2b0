//! Arbitrary bytes through the frame decoder and through recovery: no
//! panic, only typed errors. The first input byte picks whether the segment
//! gets a valid header, so the fuzzer reaches the frame decoder quickly.
//!
//! `cargo +nightly fuzz run recover` from `raft-wal/`.
#![no_main]

use std::path::Path;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use raft_core::Index;
use raft_wal::format::{self, SegmentHeader};
use raft_io::{Backend, SimBackend};
use raft_wal::{Wal, WalOptions};

fuzz_target!(|input: &[u8]| {
    let Some((&mode, body)) = input.split_first() else {
        return;
    };
    let bytes = Bytes::copy_from_slice(body);
    let _ = format::decode_segment_header(&bytes);
    for at in (0..bytes.len()).step_by(format::FRAME_ALIGN_BYTES) {
        let _ = format::decode_frame(&bytes, 1, at, 1 << 16);
    }

    let mut segment = Vec::new();
    if mode & 1 == 1 {
        let header = SegmentHeader {
            segment_id: 1,
            first_index: Index(1),
        };
        segment.extend_from_slice(&format::encode_segment_header(header));
    }
    segment.extend_from_slice(body);
    let sim = SimBackend::new();
    let dir = Path::new("/wal");
    sim.create_dir_all(dir).expect("mkdir");
    let path = dir.join(format::segment_file_name(1, Index(1)));
    let file = sim.create(&path).expect("create");
    file.write_at(0, &segment).expect("write");
    let options = WalOptions::new()
        .backend(sim.shared())
        .segment_size_bytes(4096)
        .max_record_bytes(1 << 16);
    if let Ok((wal, recovered)) = Wal::open(dir, options) {
        for pair in recovered.entries.windows(2) {
            assert_eq!(pair[1].index.get(), pair[0].index.get() + 1);
        }
        let _ = wal.sync();
    }
});
