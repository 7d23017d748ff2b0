//! Runs every transcript in `raft-core/testdata/` through the interaction
//! environment. Regenerate after a deliberate change with
//! `REWRITE=1 cargo test -p raft-core --features testkit --test interaction`
//! and review the diff.

use std::path::Path;

use raft_core::testkit::interaction::{datadriven, run_file};

#[test]
fn transcripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let files = datadriven::files_in(&dir).expect("testdata directory");
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| run_file(f).err().map(|e| e.to_string()))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} transcripts failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    assert!(
        files.len() >= 25,
        "expected at least 25 scenarios, found {}",
        files.len()
    );
}
