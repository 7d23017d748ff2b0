//! Checks a history of puts, gets, deletes and compare-and-swaps on
//! registers: linearizability per key (Wing–Gong–Lowe search with
//! memoisation, as in Porcupine; the `search` module), no value seen that was never
//! written, no acknowledged write lost.
//!
//! # Model
//!
//! Every key is an independent register (P-compositionality: a history is
//! linearizable iff each key's sub-history is), initially missing. `put(v)`
//! sets it; `delete` makes it missing; `get() -> Option<v>` returns it;
//! `cas(e, v)` sets `v` if it holds `e` and answers *ok*, or changes
//! nothing and answers *mismatch*. Values are unique per write.
//!
//! Operations whose outcome is unknown may or may not have taken effect:
//!
//! - failed operations (definite failures) and reads that did not succeed
//!   are dropped;
//! - a put or compare-and-swap of unknown outcome whose value no successful
//!   operation saw (a get's result, an ok compare-and-swap's expected
//!   value) is dropped too, unless the key has mismatched compare-and-swaps:
//!   if a linearization contains it with its effect, every operation between
//!   it and the next write must accept its value, and none does (none saw
//!   it, and only a mismatch could accept it without seeing it), so removing
//!   it leaves the rest valid; conversely a history linearizable without
//!   it stays so with it linearized last, as a no-op;
//! - every other operation of unknown outcome (deletes always: a read of a
//!   missing key does not say which delete it saw) is kept, with a return
//!   time of +infinity, as a step that may take effect or not.
//!
//! # Why not `todc-utils`
//!
//! `todc-utils` 0.1.1 implements the same algorithm but memoises the whole
//! linearized set as a `Vec<bool>` cloned at every step: memory and time
//! grow with the square of a key's history (a 10-minute run records
//! 10^5 operations per key: gigabytes of memo), it has no notion of
//! operations that never returned, and it has had no release since 2023.

mod local;
mod search;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use self::search::{MaybeStep, SearchOp, SearchResult, State, Step, search};
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
    /// A member's serializable reads went back in time: `later` returned a
    /// value that `earlier`'s value certainly overwrote, both served by one
    /// process of `node`.
    LocalReadWentBack {
        /// The member.
        node: u64,
        /// The read that showed the newer state.
        earlier: Op,
        /// The read that showed an older one.
        later: Op,
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
            Anomaly::LocalReadWentBack {
                node,
                earlier,
                later,
            } => write!(
                f,
                "node {node} went back in time: `{later}` after `{earlier}`"
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
    /// When each node's processes started (nanoseconds on the history's
    /// clock, ascending): serializable reads are compared for going back
    /// in time only within one process.
    pub starts: BTreeMap<u64, Vec<u64>>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            step_budget: DEFAULT_STEP_BUDGET,
            final_values: BTreeMap::new(),
            starts: BTreeMap::new(),
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
    // Values written (by puts and compare-and-swaps), and which of them
    // some successful operation observed.
    let mut writes: HashMap<&str, &Op> = HashMap::new();
    for op in ops.iter().filter(|o| writes_value(o)) {
        if let Some(v) = op.value.as_deref() {
            writes.insert(v, op);
        }
    }
    let (observed, phantom) = observed_values(ops, &writes, report);
    if let Some(final_value) = opts.final_values.get(key) {
        lost_writes(key, ops, &writes, final_value.as_deref(), report);
    }
    for (node, earlier, later) in
        local::reads_going_back(ops, &writes, last_delete(ops), &opts.starts)
    {
        let (earlier, later) = (earlier.clone(), later.clone());
        let anomaly = Anomaly::LocalReadWentBack {
            node,
            earlier,
            later,
        };
        report.anomalies.push(anomaly);
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
    let op_of = |i: usize| ops[search_ops[i].index].clone();
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
            stuck_at: op_of(stuck_at),
            last_linearized: tail.into_iter().map(op_of).collect(),
        }),
    }
}

/// Whether `op` tries to write its `value`: a put or a compare-and-swap.
fn writes_value(op: &Op) -> bool {
    matches!(op.kind, OpKind::Put | OpKind::Cas { .. })
}

/// The value a successful operation saw the key hold: a get's result, the
/// expected value of a compare-and-swap that wrote.
fn seen_value(op: &Op) -> Option<&str> {
    match (&op.kind, op.outcome) {
        (OpKind::Get | OpKind::LocalGet { .. }, Outcome::Ok) => op.value.as_deref(),
        (OpKind::Cas { expected }, Outcome::Ok) => Some(expected),
        _ => None,
    }
}

/// The values successful operations saw that some put or compare-and-swap
/// wrote; reports (and returns true for) values seen that were never
/// written or whose write certainly failed.
fn observed_values<'a>(
    ops: &[&'a Op],
    writes: &HashMap<&str, &Op>,
    report: &mut CheckReport,
) -> (HashSet<&'a str>, bool) {
    let mut observed: HashSet<&str> = HashSet::new();
    let mut phantom = false;
    for op in ops {
        let Some(v) = seen_value(op) else {
            continue;
        };
        match writes.get(v) {
            None => {
                phantom = true;
                report.anomalies.push(Anomaly::NeverWritten {
                    read: (*op).clone(),
                });
            }
            Some(w) if matches!(w.outcome, Outcome::Fail | Outcome::Mismatch) => {
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

/// The operations the search considers, with value ids (0 = missing).
/// Failed operations and reads of unknown outcome drop out. A put or
/// compare-and-swap of unknown outcome stays, as a step that may or may
/// not take effect (with an infinite return time), if some operation saw
/// its value or if the key has mismatched compare-and-swaps (which could
/// be explained by its effect); otherwise it drops out: no operation
/// between it and the next write depends on it (see the module docs).
/// Unknown deletes always stay: reads of a missing key do not say which
/// delete they saw.
fn search_ops(ops: &[&Op], observed: &HashSet<&str>) -> Vec<SearchOp> {
    let mismatches = ops.iter().any(|o| o.outcome == Outcome::Mismatch);
    let mut ids: HashMap<&str, State> = HashMap::new();
    let mut search_ops = Vec::new();
    for (index, op) in ops.iter().enumerate() {
        let value = op.value.as_deref();
        let relevant = mismatches || value.is_some_and(|v| observed.contains(v));
        let step = match (&op.kind, op.outcome) {
            // Serializable reads are not linearizable by design.
            (OpKind::LocalGet { .. }, _) => continue,
            (_, Outcome::Fail) | (OpKind::Get, Outcome::Unknown | Outcome::Mismatch) => continue,
            (OpKind::Put | OpKind::Cas { .. }, Outcome::Unknown) if !relevant => continue,
            (OpKind::Get, Outcome::Ok) => Step::Read(value_id(&mut ids, value)),
            (OpKind::Put, Outcome::Ok | Outcome::Mismatch) => {
                Step::Write(value_id(&mut ids, value))
            }
            (OpKind::Delete, Outcome::Ok | Outcome::Mismatch) => Step::Write(0),
            (OpKind::Put, Outcome::Unknown) => {
                Step::Maybe(MaybeStep::Write(value_id(&mut ids, value)))
            }
            (OpKind::Delete, Outcome::Unknown) => Step::Maybe(MaybeStep::Write(0)),
            (OpKind::Cas { expected }, outcome) => {
                let (expected, new) = (
                    value_id(&mut ids, Some(expected)),
                    value_id(&mut ids, value),
                );
                match outcome {
                    Outcome::Ok => Step::Swap { expected, new },
                    Outcome::Mismatch => Step::NotEqual(expected),
                    _ => Step::Maybe(MaybeStep::Swap { expected, new }),
                }
            }
        };
        let ret = if op.outcome == Outcome::Unknown {
            u64::MAX
        } else {
            op.return_ns.max(op.invoke_ns)
        };
        search_ops.push(SearchOp {
            index,
            step,
            invoke: op.invoke_ns,
            ret,
        });
    }
    search_ops
}

/// When `op` had certainly taken effect, if it did: its return, or
/// +infinity for an unknown outcome.
fn effective_by(op: &Op) -> u64 {
    match op.outcome {
        Outcome::Ok => op.return_ns,
        _ => u64::MAX,
    }
}

/// The latest a delete of the key may have taken effect (`None`: no
/// delete that may have).
fn last_delete(ops: &[&Op]) -> Option<u64> {
    ops.iter()
        .filter(|o| o.kind == OpKind::Delete && o.outcome != Outcome::Fail)
        .map(|o| effective_by(o))
        .max()
}

/// The id of `value` (0 for none), numbered in order of appearance.
fn value_id<'a>(ids: &mut HashMap<&'a str, State>, value: Option<&'a str>) -> State {
    let Some(v) = value else {
        return 0;
    };
    let next = State::try_from(ids.len() + 1).unwrap_or(State::MAX);
    *ids.entry(v).or_insert(next)
}

/// Every acknowledged write (a put, a compare-and-swap that wrote) must
/// not have been superseded by a write that finished before it started.
fn lost_writes(
    key: &str,
    ops: &[&Op],
    writes: &HashMap<&str, &Op>,
    final_value: Option<&str>,
    report: &mut CheckReport,
) {
    // The write that produced the final value returned at `final_ret`
    // (+infinity when its outcome is unknown; for a missing key, the last
    // delete that may have taken effect, or `None`: nothing after the
    // start); an acknowledged write invoked after that was overwritten by
    // an older write.
    let final_ret = match final_value {
        None => last_delete(ops),
        Some(v) => match writes.get(v) {
            Some(w) => Some(effective_by(w)),
            // Phantom, reported elsewhere: no bound.
            None => Some(u64::MAX),
        },
    };
    for op in ops
        .iter()
        .filter(|o| writes_value(o) && o.outcome == Outcome::Ok)
    {
        if final_ret.is_none_or(|t| t < op.invoke_ns) {
            report.anomalies.push(Anomaly::LostWrite {
                key: key.to_string(),
                lost: (*op).clone(),
                final_value: final_value.map(str::to_string),
            });
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
mod tests;
