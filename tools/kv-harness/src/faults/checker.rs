//! Checks a history of puts and gets on registers: linearizability per key
//! (Wing–Gong–Lowe search with memoisation, as in Porcupine), no value read
//! that was never written, no acknowledged write lost.
//!
//! # Model
//!
//! Every key is an independent register (P-compositionality: a history is
//! linearizable iff each key's sub-history is), initially missing. `put(v)`
//! sets it; `get() -> Option<v>` returns it. Values are unique per write.
//!
//! Operations whose outcome is unknown may or may not have taken effect:
//!
//! - a failed put (definite failure) and any get that did not succeed are
//!   dropped;
//! - an unknown put whose value no successful get returned is dropped too:
//!   if a linearization contains it, no read sits between it and the next
//!   write, so removing it leaves every read valid; conversely a history
//!   linearizable without it stays so with the put linearized last;
//! - an unknown put whose value was read certainly took effect; it is kept
//!   with a return time of +infinity (it may take effect any time after it
//!   was invoked).
//!
//! # Search
//!
//! The classic WGL search over a doubly linked list of call and return
//! events, ordered by time (calls before returns on equal times, which only
//! makes more operations concurrent). The memo is the set of (linearized
//! set, register state) pairs already explored; the set is kept as a
//! 128-bit Zobrist hash (XOR of a random word per operation), so each memo
//! entry is 20 bytes whatever the history's length. Two different sets
//! collide with probability 2^-128 per pair, far below any other source of
//! error here.
//!
//! # Why not `todc-utils`
//!
//! `todc-utils` 0.1.1 implements the same algorithm but memoises the whole
//! linearized set as a `Vec<bool>` cloned at every step: memory and time
//! grow with the square of a key's history (a 10-minute run records
//! 10^5 operations per key: gigabytes of memo), it has no notion of
//! operations that never returned, and it has had no release since 2023.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use super::history::{Op, OpKind, Outcome};

/// The search gives up on a key after this many steps, by default.
pub const DEFAULT_STEP_BUDGET: u64 = 200_000_000;

/// Something the checker found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anomaly {
    /// The key's history has no linearization.
    NotLinearizable {
        /// The key.
        key: String,
        /// The most operations any partial linearization placed.
        linearized: usize,
        /// Operations considered.
        total: usize,
        /// The operation whose return no linearization could reach, at the
        /// deepest point of the search.
        stuck_at: Op,
        /// The last operations of that deepest partial linearization,
        /// oldest first.
        last_linearized: Vec<Op>,
    },
    /// A get returned a value no put of that key ever tried to write.
    NeverWritten {
        /// The get.
        read: Op,
    },
    /// A get returned a value whose put certainly failed.
    ReadOfFailedWrite {
        /// The get.
        read: Op,
        /// The failed put.
        write: Op,
    },
    /// An acknowledged put's value was overwritten by an older write: the
    /// final value was written by a put that returned before `lost` was
    /// invoked (or the key ended up missing).
    LostWrite {
        /// The key.
        key: String,
        /// The acknowledged put that was lost.
        lost: Op,
        /// The final value of the key.
        final_value: Option<String>,
    },
    /// The search exceeded its step budget: the result is unknown.
    Undecided {
        /// The key.
        key: String,
        /// Operations considered.
        total: usize,
    },
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anomaly::NotLinearizable {
                key,
                linearized,
                total,
                stuck_at,
                last_linearized,
            } => {
                write!(
                    f,
                    "key {key}: not linearizable: at most {linearized} of {total} operations \
                     linearize; no order reaches the return of `{stuck_at}`; the deepest \
                     partial linearization ends with:"
                )?;
                for op in last_linearized {
                    write!(f, "\n    {op}")?;
                }
                Ok(())
            }
            Anomaly::NeverWritten { read } => {
                write!(f, "read of a value that was never written: `{read}`")
            }
            Anomaly::ReadOfFailedWrite { read, write } => {
                write!(f, "read `{read}` of the value of a failed write `{write}`")
            }
            Anomaly::LostWrite {
                key,
                lost,
                final_value,
            } => write!(
                f,
                "key {key}: acknowledged write `{lost}` lost: the final value is {}",
                final_value.as_deref().unwrap_or("missing")
            ),
            Anomaly::Undecided { key, total } => write!(
                f,
                "key {key}: linearizability undecided after the step budget ({total} operations)"
            ),
        }
    }
}

/// What [`check`] found.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// Operations in the history.
    pub ops: usize,
    /// Operations the linearizability search considered (after dropping
    /// failed ones and unknown ones without effect).
    pub checked: usize,
    /// Keys checked.
    pub keys: usize,
    /// Search steps, over all keys.
    pub steps: u64,
    /// Everything wrong, empty if the history is fine.
    pub anomalies: Vec<Anomaly>,
}

impl CheckReport {
    /// Whether nothing is wrong.
    pub fn is_valid(&self) -> bool {
        self.anomalies.is_empty()
    }
}

/// Options of [`check_with`].
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Steps of the search per key before it gives up.
    pub step_budget: u64,
    /// The final value of each key, read after the run healed, for the
    /// lost-write check (`None` inside: the key was missing). Keys not in
    /// the map are not checked for lost writes.
    pub final_values: BTreeMap<String, Option<String>>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            step_budget: DEFAULT_STEP_BUDGET,
            final_values: BTreeMap::new(),
        }
    }
}

/// Checks `ops` with default options: linearizability per key and reads of
/// values never written.
pub fn check(ops: &[Op]) -> CheckReport {
    check_with(ops, &CheckOptions::default())
}

/// Checks `ops`: linearizability per key, reads of values never written,
/// and (for keys in `opts.final_values`) lost acknowledged writes.
pub fn check_with(ops: &[Op], opts: &CheckOptions) -> CheckReport {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    let mut report = CheckReport {
        ops: ops.len(),
        keys: by_key.len(),
        ..CheckReport::default()
    };
    for (key, key_ops) in by_key {
        check_key(key, &key_ops, opts, &mut report);
    }
    report
}

fn check_key(key: &str, ops: &[&Op], opts: &CheckOptions, report: &mut CheckReport) {
    // Values written, and which of them some successful get returned.
    let mut writes: HashMap<&str, &Op> = HashMap::new();
    for op in ops.iter().filter(|o| o.kind == OpKind::Put) {
        if let Some(v) = op.value.as_deref() {
            writes.insert(v, op);
        }
    }
    let (observed, phantom) = observed_values(ops, &writes, report);
    if let Some(final_value) = opts.final_values.get(key) {
        lost_writes(key, ops, &writes, final_value.as_deref(), report);
    }
    if phantom {
        // Already explained; the search would only say it again.
        return;
    }
    let search_ops = search_ops(ops, &observed);
    report.checked += search_ops.len();
    let total = search_ops.len();
    let (result, steps) = search(&search_ops, opts.step_budget);
    report.steps += steps;
    match result {
        SearchResult::Linearizable => {}
        SearchResult::Budget => report.anomalies.push(Anomaly::Undecided {
            key: key.to_string(),
            total,
        }),
        SearchResult::Violation {
            depth,
            stuck_at,
            tail,
        } => report.anomalies.push(Anomaly::NotLinearizable {
            key: key.to_string(),
            linearized: depth,
            total,
            stuck_at: search_ops[stuck_at].op.clone(),
            last_linearized: tail.iter().map(|&i| search_ops[i].op.clone()).collect(),
        }),
    }
}

/// The values successful gets returned that some put wrote; reports (and
/// returns true for) reads of a value never written or of a failed write.
fn observed_values<'a>(
    ops: &[&'a Op],
    writes: &HashMap<&str, &Op>,
    report: &mut CheckReport,
) -> (HashSet<&'a str>, bool) {
    let mut observed: HashSet<&str> = HashSet::new();
    let mut phantom = false;
    for op in ops
        .iter()
        .filter(|o| o.kind == OpKind::Get && o.outcome == Outcome::Ok)
    {
        let Some(v) = op.value.as_deref() else {
            continue;
        };
        match writes.get(v) {
            None => {
                phantom = true;
                report.anomalies.push(Anomaly::NeverWritten {
                    read: (*op).clone(),
                });
            }
            Some(w) if w.outcome == Outcome::Fail => {
                phantom = true;
                report.anomalies.push(Anomaly::ReadOfFailedWrite {
                    read: (*op).clone(),
                    write: (*w).clone(),
                });
            }
            Some(_) => {
                observed.insert(v);
            }
        }
    }
    (observed, phantom)
}

/// The operations the search considers, with value ids (0 = missing):
/// failed operations and gets of unknown outcome drop out; a put of unknown
/// outcome stays only if some get observed its value, with an infinite
/// return time.
fn search_ops<'a>(ops: &[&'a Op], observed: &HashSet<&str>) -> Vec<SearchOp<'a>> {
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let mut search_ops: Vec<SearchOp<'_>> = Vec::new();
    for op in ops {
        let keep = match (op.kind, op.outcome) {
            (_, Outcome::Fail) | (OpKind::Get, Outcome::Unknown) => false,
            (OpKind::Put, Outcome::Unknown) => {
                op.value.as_deref().is_some_and(|v| observed.contains(v))
            }
            (_, Outcome::Ok) => true,
        };
        if !keep {
            continue;
        }
        let value = match op.value.as_deref() {
            None => 0,
            Some(v) => {
                let next = u32::try_from(ids.len() + 1).unwrap_or(u32::MAX);
                *ids.entry(v).or_insert(next)
            }
        };
        let ret = if op.outcome == Outcome::Unknown {
            u64::MAX
        } else {
            op.return_ns.max(op.invoke_ns)
        };
        search_ops.push(SearchOp {
            op,
            put: op.kind == OpKind::Put,
            value,
            invoke: op.invoke_ns,
            ret,
        });
    }
    search_ops
}

/// Every acknowledged put must not have been superseded by a write that
/// finished before it started.
fn lost_writes(
    key: &str,
    ops: &[&Op],
    writes: &HashMap<&str, &Op>,
    final_value: Option<&str>,
    report: &mut CheckReport,
) {
    // The put that produced the final value returned at `final_ret`
    // (+infinity when its outcome is unknown); an acknowledged put invoked
    // after that was overwritten by an older write.
    let final_ret = match final_value {
        None => 0,
        Some(v) => match writes.get(v) {
            Some(w) if w.outcome == Outcome::Ok => w.return_ns,
            // Unknown (or phantom, reported elsewhere): no bound.
            _ => u64::MAX,
        },
    };
    for op in ops
        .iter()
        .filter(|o| o.kind == OpKind::Put && o.outcome == Outcome::Ok)
    {
        let superseded = match final_value {
            None => true,
            Some(_) => final_ret < op.invoke_ns,
        };
        if superseded {
            report.anomalies.push(Anomaly::LostWrite {
                key: key.to_string(),
                lost: (*op).clone(),
                final_value: final_value.map(str::to_string),
            });
        }
    }
}

struct SearchOp<'a> {
    op: &'a Op,
    put: bool,
    value: u32,
    invoke: u64,
    ret: u64,
}

enum SearchResult {
    Linearizable,
    Budget,
    Violation {
        depth: usize,
        stuck_at: usize,
        tail: Vec<usize>,
    },
}

/// A node of the event list: a call or a return of operation `op`.
#[derive(Clone, Copy)]
struct Event {
    op: usize,
    call: bool,
    /// For a call: the index of its return event.
    matching: usize,
    prev: usize,
    next: usize,
}

const NIL: usize = usize::MAX;

/// A hasher for memo keys that are already uniformly random.
#[derive(Default)]
struct MemoHasher(u64);

impl Hasher for MemoHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0 =
                (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 ^= n as u64 ^ (n >> 64) as u64;
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The doubly linked list of call and return events, sorted by time with
/// calls before returns on equal times; event 0 is the head sentinel.
fn event_list(ops: &[SearchOp<'_>]) -> Vec<Event> {
    let n = ops.len();
    let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        order.push((op.invoke, true, i));
        order.push((op.ret, false, i));
    }
    order.sort_by_key(|&(t, call, i)| (t, !call, i));
    let mut events: Vec<Event> = Vec::with_capacity(2 * n + 1);
    events.push(Event {
        op: NIL,
        call: false,
        matching: NIL,
        prev: NIL,
        next: NIL,
    });
    let mut return_of = vec![NIL; n];
    for &(_, call, i) in &order {
        let idx = events.len();
        events.push(Event {
            op: i,
            call,
            matching: NIL,
            prev: idx - 1,
            next: NIL,
        });
        events[idx - 1].next = idx;
        if !call {
            return_of[i] = idx;
        }
    }
    for e in events.iter_mut().skip(1) {
        if e.call {
            e.matching = return_of[e.op];
        }
    }
    events
}

/// Wing and Gong's search with Lowe's memo of (linearized set, state):
/// linearizes the earliest pending call whose result fits the state,
/// backtracking on a return whose call could not be placed.
fn search(ops: &[SearchOp<'_>], budget: u64) -> (SearchResult, u64) {
    let n = ops.len();
    let mut events = event_list(ops);
    // Random 128-bit keys per operation: the XOR of a set's keys names it.
    let mut seed = 0x5EED_u64 ^ n as u64;
    let zobrist: Vec<u128> = (0..n)
        .map(|_| (u128::from(splitmix(&mut seed)) << 64) | u128::from(splitmix(&mut seed)))
        .collect();

    let mut memo: HashSet<(u128, u32), BuildHasherDefault<MemoHasher>> = HashSet::default();
    // Stack of (call event, state before it).
    let mut stack: Vec<(usize, u32)> = Vec::new();
    let mut state: u32 = 0;
    let mut linearized: u128 = 0;
    let mut steps: u64 = 0;
    let mut best: (usize, usize, Vec<usize>) = (0, NIL, Vec::new());
    let mut cur = events[0].next;
    while events[0].next != NIL {
        steps += 1;
        if steps > budget {
            return (SearchResult::Budget, steps);
        }
        let e = events[cur];
        if e.call {
            let op = &ops[e.op];
            let (ok, next_state) = if op.put {
                (true, op.value)
            } else {
                (state == op.value, state)
            };
            if ok && memo.insert((linearized ^ zobrist[e.op], next_state)) {
                stack.push((cur, state));
                state = next_state;
                linearized ^= zobrist[e.op];
                lift(&mut events, cur);
                cur = events[0].next;
                continue;
            }
            cur = e.next;
        } else {
            // A return whose operation is not linearized: dead end.
            if stack.len() >= best.0 || best.1 == NIL {
                let tail = stack
                    .iter()
                    .rev()
                    .take(8)
                    .rev()
                    .map(|&(c, _)| events[c].op)
                    .collect();
                best = (stack.len(), e.op, tail);
            }
            let Some((call, old_state)) = stack.pop() else {
                return (
                    SearchResult::Violation {
                        depth: best.0,
                        stuck_at: best.1,
                        tail: best.2,
                    },
                    steps,
                );
            };
            state = old_state;
            linearized ^= zobrist[events[call].op];
            unlift(&mut events, call);
            cur = events[call].next;
        }
    }
    (SearchResult::Linearizable, steps)
}

/// Removes call event `call` and its return from the list.
fn lift(events: &mut [Event], call: usize) {
    for idx in [call, events[call].matching] {
        let Event { prev, next, .. } = events[idx];
        events[prev].next = next;
        if next != NIL {
            events[next].prev = prev;
        }
    }
}

/// Puts back what [`lift`] removed, in reverse order.
fn unlift(events: &mut [Event], call: usize) {
    for idx in [events[call].matching, call] {
        let Event { prev, next, .. } = events[idx];
        events[prev].next = idx;
        if next != NIL {
            events[next].prev = idx;
        }
    }
}

/// Makes one successful get of `ops` stale, for testing the checker on a
/// real history: finds a get that started after an acknowledged put `w2`
/// returned, where another acknowledged put `w1` returned before `w2`
/// started, and makes the get return `w1`'s value. No linearization allows
/// that. Returns the index of the changed get, or `None` if no such triple
/// exists.
pub fn inject_stale_read(ops: &mut [Op]) -> Option<usize> {
    let mut puts: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops.iter() {
        if op.kind == OpKind::Put && op.outcome == Outcome::Ok {
            puts.entry(&op.key).or_default().push(op);
        }
    }
    let mut found = None;
    'gets: for (gi, get) in ops.iter().enumerate() {
        if get.kind != OpKind::Get || get.outcome != Outcome::Ok {
            continue;
        }
        let Some(key_puts) = puts.get(get.key.as_str()) else {
            continue;
        };
        for w2 in key_puts.iter().filter(|w| w.return_ns < get.invoke_ns) {
            if let Some(w1) = key_puts
                .iter()
                .find(|w1| w1.return_ns < w2.invoke_ns && w1.value != get.value)
            {
                found = Some((gi, w1.value.clone()));
                break 'gets;
            }
        }
    }
    let (gi, value) = found?;
    ops[gi].value = value;
    Some(gi)
}

#[cfg(test)]
mod tests {
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
}
