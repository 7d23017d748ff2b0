//! The `raft-snap` command-line tool on real files.

use std::process::Command;

use raft_core::{ConfState, Index, NodeId, SnapshotMetadata, Term};
use raft_snap::Snapshotter;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_raft-snap"))
        .args(args)
        .output()
        .expect("run raft-snap");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

fn metadata(index: u64, term: u64) -> SnapshotMetadata {
    let voters = [1, 2, 3].map(|id| NodeId::new(id).expect("non-zero"));
    SnapshotMetadata {
        index: Index(index),
        term: Term(term),
        conf_state: ConfState::with_voters(voters),
    }
}

#[test]
fn list_and_verify_report_every_snapshot_and_change_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("snap");
    let snapshotter = Snapshotter::new(&dir).expect("open");
    snapshotter.save(&metadata(10, 1), b"old").expect("save");
    snapshotter.save(&metadata(20, 2), b"newest").expect("save");
    drop(snapshotter);
    let d = dir.to_str().expect("utf-8 path");
    let (code, text) = run(&["verify", d]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("2 snapshot(s) verify"), "{text}");
    assert!(
        text.contains("index 20 term 2, 6 bytes, voters [1, 2, 3]"),
        "{text}"
    );
    let (code, text) = run(&["list", d]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(text.matches("  ok  ").count(), 2, "{text}");
    let first = text.lines().next().expect("a line");
    assert!(first.contains("index 20"), "newest first: {text}");

    // Damage the newest: verify fails and names it; loading would take
    // the older one. Nothing is renamed.
    let newest = std::fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().contains("0000000000000014.snap"))
        .expect("the newest snapshot");
    let mut bytes = std::fs::read(&newest).expect("read");
    let at = bytes.len() - 6;
    bytes[at] ^= 0xff;
    std::fs::write(&newest, bytes).expect("write");
    let (code, text) = run(&["verify", d]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("DAMAGED") && text.contains("index 10"),
        "{text}"
    );
    assert!(newest.exists(), "left in place");
}

#[test]
fn bad_usage_exits_two_a_missing_directory_one_and_help_and_version_zero() {
    assert_eq!(run(&[]).0, 2);
    assert_eq!(run(&["verify"]).0, 2);
    assert_eq!(run(&["frobnicate", "/tmp"]).0, 2);
    let out = Command::new(env!("CARGO_BIN_EXE_raft-snap"))
        .args(["verify", "/nonexistent/snap"])
        .output()
        .expect("run raft-snap");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no such directory"), "{stderr}");
    let (code, help) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("list") && help.contains("verify"), "{help}");
    let (code, version) = run(&["--version"]);
    assert_eq!(
        (code, version.trim()),
        (0, concat!("raft-snap ", env!("CARGO_PKG_VERSION")))
    );
}
