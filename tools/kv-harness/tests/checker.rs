//! The fault test's checker on a real history: one a 3-node run of
//! `raftkv faults` recorded (`tests/faults/recorded-3-nodes.history`),
//! accepted as it is and rejected with one injected stale read or one
//! read of a value never written. The fault runs themselves are
//! `examples/kv/tests/faults.rs`, which runs the `raftkv` binary.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use raftkv_harness::faults::checker::{self, Anomaly};
use raftkv_harness::faults::history::{self, OpKind};

#[test]
fn the_checker_rejects_a_recorded_history_with_one_injected_stale_read() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/faults/recorded-3-nodes.history");
    let file = File::open(&path).expect("recorded history");
    let mut ops = history::read_history(BufReader::new(file)).expect("parses");
    assert_eq!(ops.len(), 1899);
    let report = checker::check(&ops);
    assert!(report.is_valid(), "{:?}", report.anomalies);
    assert_eq!(report.keys, 3);

    let original = ops.clone();
    let changed = checker::inject_stale_read(&mut ops).expect("a place for a stale read");
    let changed_ops: Vec<usize> = (0..ops.len()).filter(|&i| ops[i] != original[i]).collect();
    assert_eq!(changed_ops, vec![changed], "exactly one operation changed");
    assert_eq!(ops[changed].kind, OpKind::Get);

    let report = checker::check(&ops);
    match &report.anomalies[..] {
        [Anomaly::NotLinearizable { key, .. }] => assert_eq!(*key, ops[changed].key),
        other => panic!("expected one non-linearizable key, got {other:?}"),
    }
}

#[test]
fn the_checker_rejects_a_recorded_history_reading_a_value_never_written() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/faults/recorded-3-nodes.history");
    let file = File::open(&path).expect("recorded history");
    let mut ops = history::read_history(BufReader::new(file)).expect("parses");
    let get = ops
        .iter()
        .rposition(|o| o.kind == OpKind::Get && o.value.is_some())
        .expect("a read of a value");
    ops[get].value = Some("never-written".into());
    let report = checker::check(&ops);
    assert!(
        matches!(&report.anomalies[..], [Anomaly::NeverWritten { read }] if *read == ops[get]),
        "{:?}",
        report.anomalies
    );
}
