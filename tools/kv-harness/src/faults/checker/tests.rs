//! The checker on hand-made histories, good and bad.

use super::*;

fn op(client: u32, kind: OpKind, value: Option<&str>, inv: u64, ret: u64, o: Outcome) -> Op {
    Op {
        client,
        kind,
        key: "k".into(),
        value: value.map(str::to_string),
        invoke_ns: inv,
        return_ns: ret,
        outcome: o,
    }
}
fn put(c: u32, v: &str, inv: u64, ret: u64) -> Op {
    op(c, OpKind::Put, Some(v), inv, ret, Outcome::Ok)
}
fn get(c: u32, v: Option<&str>, inv: u64, ret: u64) -> Op {
    op(c, OpKind::Get, v, inv, ret, Outcome::Ok)
}

fn linearizable(ops: &[Op]) -> bool {
    let r = check(ops);
    r.anomalies
        .iter()
        .all(|a| !matches!(a, Anomaly::NotLinearizable { .. }))
        && r.is_valid()
}

#[test]
fn sequential_writes_and_reads_are_linearizable() {
    let h = [
        get(1, None, 0, 1),
        put(1, "a", 2, 3),
        get(2, Some("a"), 4, 5),
        put(2, "b", 6, 7),
        get(1, Some("b"), 8, 9),
    ];
    assert!(linearizable(&h));
}

#[test]
fn concurrent_writes_may_linearize_in_reverse_order() {
    // Three overlapping writes; reads during them see 3, 2, 1.
    let h = [
        put(0, "1", 0, 100),
        put(1, "2", 0, 100),
        put(2, "3", 0, 100),
        get(3, Some("3"), 10, 20),
        get(3, Some("2"), 30, 40),
        get(3, Some("1"), 50, 60),
        get(3, Some("1"), 200, 210),
    ];
    assert!(linearizable(&h));
}

#[test]
fn a_stale_read_after_a_newer_write_is_rejected() {
    let h = [
        put(1, "a", 0, 10),
        put(2, "b", 20, 30),
        get(3, Some("a"), 40, 50),
    ];
    let r = check(&h);
    assert!(
        matches!(&r.anomalies[..], [Anomaly::NotLinearizable { stuck_at, .. }] if stuck_at.kind == OpKind::Get),
        "{:?}",
        r.anomalies
    );
}

#[test]
fn reads_that_go_back_in_time_during_a_write_are_rejected() {
    // Sequentially consistent but not linearizable.
    let h = [
        put(0, "1", 0, 100),
        get(1, Some("1"), 10, 20),
        get(2, None, 30, 40),
    ];
    assert!(!linearizable(&h));
}

#[test]
fn an_unknown_write_may_take_effect_late_or_never() {
    let unknown = |v, inv, ret| op(9, OpKind::Put, Some(v), inv, ret, Outcome::Unknown);
    // Observed long after the client gave up: it took effect late.
    let late = [
        unknown("u", 0, 10),
        put(1, "a", 20, 30),
        get(2, Some("a"), 40, 50),
        get(2, Some("u"), 60, 70),
    ];
    assert!(linearizable(&late));
    // Never observed: it may never have happened.
    let never = [unknown("u", 0, 10), get(2, None, 40, 50)];
    assert!(linearizable(&never));
    // But once read, it cannot un-happen.
    let flip = [
        unknown("u", 0, 10),
        get(2, Some("u"), 20, 30),
        get(2, None, 40, 50),
    ];
    assert!(!linearizable(&flip));
}

#[test]
fn failed_writes_have_no_effect_and_reading_them_is_an_anomaly() {
    let failed = op(1, OpKind::Put, Some("f"), 0, 10, Outcome::Fail);
    assert!(linearizable(&[failed.clone(), get(2, None, 20, 30)]));
    let r = check(&[failed, get(2, Some("f"), 20, 30)]);
    assert!(matches!(
        &r.anomalies[..],
        [Anomaly::ReadOfFailedWrite { .. }]
    ));
    let r = check(&[get(2, Some("ghost"), 20, 30)]);
    assert!(matches!(&r.anomalies[..], [Anomaly::NeverWritten { .. }]));
}

#[test]
fn a_final_value_older_than_an_acknowledged_write_is_a_lost_write() {
    let h = [put(1, "a", 0, 10), put(2, "b", 20, 30)];
    let mut opts = CheckOptions::default();
    opts.final_values.insert("k".into(), Some("a".into()));
    let r = check_with(&h, &opts);
    assert!(
        matches!(&r.anomalies[..], [Anomaly::LostWrite { lost, .. }] if lost.value.as_deref() == Some("b"))
    );
    opts.final_values.insert("k".into(), Some("b".into()));
    assert!(check_with(&h, &opts).is_valid());
    opts.final_values.insert("k".into(), None);
    assert_eq!(check_with(&h, &opts).anomalies.len(), 2);
}

#[test]
fn keys_are_checked_independently() {
    let mut other = put(1, "x", 0, 100);
    other.key = "other".into();
    let h = [other, put(1, "a", 0, 10), get(2, Some("a"), 20, 30)];
    let r = check(&h);
    assert!(r.is_valid());
    assert_eq!(r.keys, 2);
}

#[test]
fn a_long_concurrent_history_checks_quickly() {
    // 16 clients, 20,000 operations on one key, each write read back.
    let mut h = Vec::new();
    let mut t = 0u64;
    for i in 0..1250u64 {
        for c in 0..16u32 {
            let v = format!("v{i}-{c}");
            h.push(put(c, &v, t + u64::from(c), t + 100 + u64::from(c)));
        }
        // Every write overlaps; the last to linearize is any of them:
        // read one after all returned.
        let v = format!("v{i}-7");
        h.push(get(99, Some(&v), t + 200, t + 210));
        t += 1000;
    }
    let r = check(&h);
    assert!(r.is_valid(), "{:?}", r.anomalies);
}

#[test]
fn injecting_a_stale_read_makes_a_linearizable_history_fail() {
    let mut h = vec![
        put(1, "a", 0, 10),
        put(2, "b", 20, 30),
        get(3, Some("b"), 40, 50),
    ];
    assert!(check(&h).is_valid());
    assert_eq!(inject_stale_read(&mut h), Some(2));
    assert_eq!(h[2].value.as_deref(), Some("a"));
    assert!(!check(&h).is_valid());
}

fn cas(c: u32, expected: &str, v: &str, inv: u64, ret: u64, o: Outcome) -> Op {
    let kind = OpKind::Cas {
        expected: expected.into(),
    };
    op(c, kind, Some(v), inv, ret, o)
}
fn delete(c: u32, inv: u64, ret: u64, o: Outcome) -> Op {
    op(c, OpKind::Delete, None, inv, ret, o)
}

#[test]
fn deletes_make_the_key_missing_and_reading_the_old_value_after_one_is_rejected() {
    let good = [
        put(1, "a", 0, 10),
        delete(2, 20, 30, Outcome::Ok),
        get(3, None, 40, 50),
        put(1, "b", 60, 70),
        get(3, Some("b"), 80, 90),
    ];
    assert!(linearizable(&good));
    let stale = [
        put(1, "a", 0, 10),
        delete(2, 20, 30, Outcome::Ok),
        get(3, Some("a"), 40, 50),
    ];
    assert!(!linearizable(&stale));
    // A delete of unknown outcome may have happened, or not: both reads
    // are fine, but not missing and then back.
    let maybe = |v| {
        [
            put(1, "a", 0, 10),
            delete(2, 20, 30, Outcome::Unknown),
            get(3, v, 40, 50),
        ]
    };
    assert!(linearizable(&maybe(None)));
    assert!(linearizable(&maybe(Some("a"))));
    let mut back = maybe(None).to_vec();
    back.push(get(3, Some("a"), 60, 70));
    assert!(!linearizable(&back));
}

#[test]
fn a_compare_and_swap_writes_only_what_it_found_and_a_mismatch_found_something_else() {
    let good = [
        put(1, "a", 0, 10),
        cas(2, "a", "b", 20, 30, Outcome::Ok),
        cas(3, "a", "c", 40, 50, Outcome::Mismatch),
        get(4, Some("b"), 60, 70),
    ];
    assert!(linearizable(&good));
    // It swapped although the key held b.
    let wrong_swap = [
        put(1, "a", 0, 10),
        put(1, "b", 20, 30),
        cas(2, "a", "c", 40, 50, Outcome::Ok),
    ];
    assert!(!linearizable(&wrong_swap));
    // It answered mismatch although the key held what it expected.
    let wrong_mismatch = [
        put(1, "a", 0, 10),
        cas(2, "a", "c", 20, 30, Outcome::Mismatch),
    ];
    assert!(!linearizable(&wrong_mismatch));
    // Its value was read although it mismatched: a failed write seen.
    let r = check(&[
        put(1, "a", 0, 10),
        cas(2, "x", "c", 20, 30, Outcome::Mismatch),
        get(3, Some("c"), 40, 50),
    ]);
    assert!(
        matches!(&r.anomalies[..], [Anomaly::ReadOfFailedWrite { .. }]),
        "{:?}",
        r.anomalies
    );
    // It expected a value nobody wrote.
    let r = check(&[cas(2, "ghost", "c", 20, 30, Outcome::Ok)]);
    assert!(matches!(&r.anomalies[..], [Anomaly::NeverWritten { .. }]));
}

#[test]
fn an_unseen_write_of_unknown_outcome_can_still_explain_a_mismatch() {
    // b's put timed out and nobody read b, but the mismatch shows the key
    // no longer held a: the put took effect.
    let h = [
        put(1, "a", 0, 10),
        op(2, OpKind::Put, Some("b"), 20, 30, Outcome::Unknown),
        cas(3, "a", "c", 40, 50, Outcome::Mismatch),
    ];
    assert!(linearizable(&h));
    // Without it, the mismatch has no explanation.
    assert!(!linearizable(&[h[0].clone(), h[2].clone()]));
    // An unknown compare-and-swap may have swapped, late.
    let late = [
        put(1, "a", 0, 10),
        cas(2, "a", "b", 20, 30, Outcome::Unknown),
        get(3, Some("a"), 40, 50),
        get(3, Some("b"), 60, 70),
    ];
    assert!(linearizable(&late));
}

#[test]
fn a_key_missing_at_the_end_loses_only_the_writes_no_delete_could_follow() {
    let h = [
        put(1, "a", 0, 10),
        delete(2, 20, 30, Outcome::Ok),
        put(1, "b", 40, 50),
    ];
    let mut opts = CheckOptions::default();
    opts.final_values.insert("k".into(), None);
    let r = check_with(&h, &opts);
    assert!(
        matches!(&r.anomalies[..], [Anomaly::LostWrite { lost, .. }] if lost.value.as_deref() == Some("b")),
        "{:?}",
        r.anomalies
    );
    let unknown_delete = [
        h[0].clone(),
        put(1, "b", 40, 50),
        delete(2, 45, 46, Outcome::Unknown),
    ];
    assert!(check_with(&unknown_delete, &opts).is_valid());
}
