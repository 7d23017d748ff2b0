//! Serializable reads: a member serves them from its own state, which may
//! be stale but only moves forward while the process lives (it applies the
//! log in order). So of two reads of a key served by one process, the later
//! one must not return a value the earlier one's value certainly
//! overwrote: a value whose write returned before the earlier value's
//! write was invoked (values are unique per write), or a missing key when
//! every delete returned before then.
//!
//! Across a restart the state may go back (the commit index is not synced
//! on every change, so a power cut can lose some), so reads are compared
//! only within one process: a read during which the node started is left
//! out.

use std::collections::{BTreeMap, HashMap};

use super::super::history::{Op, OpKind, Outcome};
use super::effective_by;

/// Triples `(node, earlier, later)` of one key's serializable reads served
/// by one process of `node` where the later went back in time. `writes` maps each value to
/// the operation that wrote it; `last_delete` is the latest a delete may
/// have taken effect (`None`: no delete); `starts` each node to when its processes
/// started (nanoseconds, ascending).
pub(super) fn reads_going_back<'a>(
    ops: &[&'a Op],
    writes: &HashMap<&str, &Op>,
    last_delete: Option<u64>,
    starts: &BTreeMap<u64, Vec<u64>>,
) -> Vec<(u64, &'a Op, &'a Op)> {
    let mut by_process: BTreeMap<(u64, usize), Vec<&Op>> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        let OpKind::LocalGet { node } = op.kind else {
            continue;
        };
        let node_starts = starts.get(&node).map_or(&[][..], Vec::as_slice);
        let before = node_starts.partition_point(|&t| t <= op.invoke_ns);
        let during = node_starts.partition_point(|&t| t <= op.return_ns);
        if before == during {
            by_process.entry((node, before)).or_default().push(op);
        }
    }
    let mut found = Vec::new();
    for (&(node, _), reads) in &by_process {
        let back = going_back(reads, writes, last_delete);
        found.extend(
            back.into_iter()
                .map(|(earlier, later)| (node, earlier, later)),
        );
    }
    found
}

/// [`reads_going_back`] among the reads of one process.
fn going_back<'a>(
    reads: &[&'a Op],
    writes: &HashMap<&str, &Op>,
    last_delete: Option<u64>,
) -> Vec<(&'a Op, &'a Op)> {
    // The write a read's value came from, if it is a real, possibly
    // successful one (anything else is reported as a phantom elsewhere).
    let writer = |r: &Op| {
        let w = writes.get(r.value.as_deref()?)?;
        matches!(w.outcome, Outcome::Ok | Outcome::Unknown).then_some(*w)
    };
    let mut by_invoke: Vec<&Op> = reads.to_vec();
    by_invoke.sort_by_key(|r| r.invoke_ns);
    let mut by_return: Vec<&Op> = reads.to_vec();
    by_return.sort_by_key(|r| r.return_ns);
    let mut done = by_return.iter().peekable();
    // Of the reads finished so far, the one whose value's write was
    // invoked last: the newest state the process certainly showed.
    let mut newest: Option<(u64, &Op)> = None;
    let mut found = Vec::new();
    for &later in &by_invoke {
        while let Some(&earlier) = done.next_if(|r| r.return_ns < later.invoke_ns) {
            if let Some(w) = writer(earlier)
                && newest.is_none_or(|(t, _)| w.invoke_ns > t)
            {
                newest = Some((w.invoke_ns, earlier));
            }
        }
        let Some((shown, earlier)) = newest else {
            continue;
        };
        // Whether the later read's state was certainly gone before the
        // write the earlier one showed was even invoked.
        let older = match later.value {
            Some(_) => writer(later).is_some_and(|w| effective_by(w) < shown),
            None => last_delete.is_none_or(|d| d < shown),
        };
        if older {
            found.push((earlier, later));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: OpKind, value: Option<&str>, inv: u64, ret: u64) -> Op {
        Op {
            client: 1,
            kind,
            key: "k".into(),
            value: value.map(str::to_string),
            invoke_ns: inv,
            return_ns: ret,
            outcome: Outcome::Ok,
        }
    }

    fn sget(node: u64, v: Option<&str>, inv: u64, ret: u64) -> Op {
        op(OpKind::LocalGet { node }, v, inv, ret)
    }

    fn check(ops: &[Op], starts: &[(u64, u64)]) -> usize {
        let refs: Vec<&Op> = ops.iter().collect();
        let mut writes = HashMap::new();
        for o in ops.iter().filter(|o| o.kind == OpKind::Put) {
            writes.insert(o.value.as_deref().unwrap(), o);
        }
        let mut s: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for &(n, t) in starts {
            s.entry(n).or_default().push(t);
        }
        let last_delete = super::super::last_delete(&refs);
        reads_going_back(&refs, &writes, last_delete, &s).len()
    }

    #[test]
    fn a_stale_member_may_lag_but_never_go_back_while_it_runs() {
        let a = op(OpKind::Put, Some("a"), 0, 10);
        let b = op(OpKind::Put, Some("b"), 20, 30);
        // Node 2 lags behind node 1: fine.
        let lagging = [
            a.clone(),
            b.clone(),
            sget(1, Some("b"), 40, 50),
            sget(2, Some("a"), 60, 70),
        ];
        assert_eq!(check(&lagging, &[]), 0);
        // Node 2 showed b, then a: it went back.
        let back = [
            a.clone(),
            b.clone(),
            sget(2, Some("b"), 40, 50),
            sget(2, Some("a"), 60, 70),
        ];
        assert_eq!(check(&back, &[]), 1);
        // Or a missing key, with no delete: back to the start.
        let empty = [a.clone(), sget(2, Some("a"), 40, 50), sget(2, None, 60, 70)];
        assert_eq!(check(&empty, &[]), 1);
        // Unless a delete could explain it.
        let mut deleted = empty.to_vec();
        deleted.push(op(OpKind::Delete, None, 45, 55));
        assert_eq!(check(&deleted, &[]), 0);
        // A restart between the two reads may lose an unsynced commit.
        assert_eq!(check(&back, &[(2, 55)]), 0);
        // Concurrent writes have no order: either may be seen first.
        let concurrent = [
            op(OpKind::Put, Some("a"), 0, 30),
            op(OpKind::Put, Some("b"), 0, 30),
            sget(3, Some("b"), 40, 50),
            sget(3, Some("a"), 60, 70),
        ];
        assert_eq!(check(&concurrent, &[]), 0);
    }
}
