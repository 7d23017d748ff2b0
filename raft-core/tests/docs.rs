//! What the documentation promises about the crate and the repository.

use std::path::Path;

#[test]
fn the_readme_states_the_number_of_transcript_scenarios() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scenarios = std::fs::read_dir(dir.join("testdata"))
        .expect("testdata")
        .filter(|e| {
            let path = e.as_ref().expect("entry").path();
            path.extension().is_some_and(|x| x == "txt")
        })
        .count();
    let readme = std::fs::read_to_string(dir.join("../README.md")).expect("README.md");
    let said = readme
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(3)
        .find(|w| w[1] == "scenarios" && w[2] == "live")
        .and_then(|w| w[0].parse::<usize>().ok())
        .expect("the README says how many scenarios live in raft-core/testdata/");
    assert_eq!(said, scenarios, "README.md: update the scenario count");
}

#[test]
fn the_crate_examples_need_no_dependency_but_raft_core() {
    let lib = include_str!("../src/lib.rs");
    let uses_bytes: Vec<&str> = lib
        .lines()
        .filter(|l| l.trim_start().starts_with("//!") && l.contains("bytes::"))
        .collect();
    assert!(
        uses_bytes.is_empty(),
        "a user crate has no `bytes` dependency; use raft_core::Bytes: {uses_bytes:?}"
    );
    // The re-export is the very type entries carry.
    let data: raft_core::Bytes = raft_core::Entry::new(
        raft_core::Term(1),
        raft_core::Index(1),
        raft_core::Bytes::from_static(b"x"),
    )
    .data;
    assert_eq!(&data[..], b"x");
}
