//! The `raft-wal` command-line tool on real files.

use std::process::Command;

use bytes::Bytes;
use raft_core::{Entry, HardState, Index, NodeId, Term};
use raft_io::{Backend, FileBackend};
use raft_wal::format::{self, Record};
use raft_wal::{Wal, WalOptions};

fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term: Term(term),
        vote: NodeId::new(vote),
        commit: Index(commit),
    }
}

fn entries(range: std::ops::RangeInclusive<u64>, term: u64, len: usize) -> Vec<Entry> {
    range
        .map(|i| Entry::new(Term(term), Index(i), Bytes::from(vec![b'x'; len])))
        .collect()
}

/// The byte ranges of the complete batches of segment `segment_id`.
fn batch_ranges(bytes: &[u8], segment_id: u64) -> Vec<(usize, usize)> {
    let bytes = Bytes::copy_from_slice(bytes);
    let mut at = format::SEGMENT_HEADER_BYTES;
    let mut out = Vec::new();
    while let Ok((r, next)) = format::decode_frame(&bytes, segment_id, at, 1 << 20) {
        if let Record::Commit(c) = r {
            out.push((c.batch_start as usize, next));
        }
        at = next;
    }
    out
}

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_raft-wal"))
        .args(args)
        .output()
        .expect("run raft-wal");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

fn write_log(dir: &std::path::Path) {
    let opts = WalOptions::new().segment_size_bytes(4096);
    let (wal, _) = Wal::open(dir, opts).expect("open");
    for i in 1..=5 {
        wal.save(Some(&hard_state(1, 1, i - 1)), &entries(i..=i, 1, 30), true)
            .expect("save");
    }
}

#[test]
fn verify_accepts_a_healthy_log_and_dump_lists_its_frames() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_log(tmp.path());
    let dir = tmp.path().to_str().expect("utf-8 path");
    let (code, text) = run(&["verify", dir]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("entries 1..=5"), "{text}");
    let (code, text) = run(&["dump", dir, "--data"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(text.matches("entry     index").count(), 5, "{text}");
    assert!(text.contains("zero bytes follow"), "{text}");
}

#[test]
fn verify_refuses_mid_log_corruption_and_dump_points_at_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_log(tmp.path());
    let names = FileBackend.list_dir(tmp.path()).expect("list");
    let path = tmp
        .path()
        .join(names.iter().find(|n| n.ends_with(".wal")).expect("segment"));
    let mut bytes = std::fs::read(&path).expect("read");
    let second = batch_ranges(&bytes, 1)[2].0;
    bytes[second + 20] ^= 0xFF;
    std::fs::write(&path, &bytes).expect("write");
    let dir = tmp.path().to_str().expect("utf-8 path");
    let (code, text) = run(&["verify", dir]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("REFUSED") && text.contains("corrupt"),
        "{text}"
    );
    let (_, text) = run(&["dump", dir]);
    assert!(
        text.contains("DAMAGE") && text.contains("corruption"),
        "{text}"
    );
}

#[test]
fn bad_usage_exits_with_status_two_and_help_and_version_exit_zero() {
    assert_eq!(run(&["frobnicate", "/nonexistent"]).0, 2);
    assert_eq!(run(&[]).0, 2);
    assert_eq!(run(&["verify"]).0, 2);
    assert_eq!(run(&["dump", "/tmp", "--segment", "x"]).0, 2);
    let (code, help) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("verify") && help.contains("dump"), "{help}");
    let (code, help) = run(&["verify", "--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("--max-record-bytes"), "{help}");
    let (code, version) = run(&["--version"]);
    assert_eq!(
        (code, version.trim()),
        (0, concat!("raft-wal ", env!("CARGO_PKG_VERSION")))
    );
}
