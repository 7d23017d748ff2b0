//! The linearizability search of one key's history: Wing and Gong's
//! algorithm with Lowe's memo, as in Porcupine, over a register whose
//! operations may be nondeterministic (an operation of unknown outcome may
//! have taken effect or not).
//!
//! The memo is the set of (linearized set, register state) pairs already
//! explored; the set is kept as a 128-bit Zobrist hash (XOR of a random
//! word per operation), so each memo entry is 20 bytes whatever the
//! history's length. Two different sets collide with probability 2^-128
//! per pair, far below any other source of error here.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// A register state: a value id, 0 for a missing key.
pub(super) type State = u32;

/// What an operation does to the register, as the search sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Sets it (a put).
    Write(State),
    /// Requires it to hold this (a get).
    Read(State),
    /// Requires `expected`, then sets `new` (a compare-and-swap that
    /// wrote; a delete is a write of 0).
    Swap { expected: State, new: State },
    /// Requires anything but `expected`; changes nothing (a
    /// compare-and-swap answered with a mismatch).
    NotEqual(State),
    /// `step`'s effect, or none: the outcome is unknown.
    Maybe(MaybeStep),
}

/// The effect of an operation of unknown outcome, if it had one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MaybeStep {
    /// A put or delete: sets the state.
    Write(State),
    /// A compare-and-swap: sets `new` if the state is `expected`.
    Swap { expected: State, new: State },
}

impl Step {
    /// The states this step may leave from `state`, in the order tried:
    /// none if it cannot be linearized there.
    fn next(self, state: State) -> ([State; 2], usize) {
        match self {
            Step::Write(v) => ([v, v], 1),
            Step::Read(v) if state == v => ([state, state], 1),
            Step::Swap { expected, new } if state == expected => ([new, new], 1),
            Step::NotEqual(v) if state != v => ([state, state], 1),
            Step::Read(_) | Step::Swap { .. } | Step::NotEqual(_) => ([state, state], 0),
            Step::Maybe(MaybeStep::Write(v)) if v != state => ([v, state], 2),
            Step::Maybe(MaybeStep::Swap { expected, new }) if state == expected && new != state => {
                ([new, state], 2)
            }
            Step::Maybe(_) => ([state, state], 1),
        }
    }
}

/// One operation as the search sees it: its step and its interval.
pub(super) struct SearchOp {
    /// Index of the operation in the caller's list.
    pub(super) index: usize,
    pub(super) step: Step,
    pub(super) invoke: u64,
    /// `u64::MAX` for an operation of unknown outcome: it may take effect
    /// any time after it was invoked.
    pub(super) ret: u64,
}

/// How a search ended.
pub(super) enum SearchResult {
    Linearizable,
    /// The step budget ran out: undecided.
    Budget,
    /// No linearization: `depth` operations placed at most, `stuck_at` the
    /// operation whose return could not be reached then, `tail` the last
    /// ones placed (indexes into the search's operations).
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
/// calls before returns on equal times (which only makes more operations
/// concurrent); event 0 is the head sentinel.
fn event_list(ops: &[SearchOp]) -> Vec<Event> {
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

/// A placed operation: its call event, the state before it, and which of
/// its possible next states was taken.
#[derive(Clone, Copy)]
struct Placed {
    call: usize,
    state_before: State,
    choice: usize,
}

/// Wing and Gong's search with Lowe's memo of (linearized set, state):
/// linearizes the earliest pending call whose step fits the state (trying
/// each state a nondeterministic step may leave), backtracking on a return
/// whose call could not be placed.
pub(super) fn search(ops: &[SearchOp], budget: u64) -> (SearchResult, u64) {
    let n = ops.len();
    let mut events = event_list(ops);
    // Random 128-bit keys per operation: the XOR of a set's keys names it.
    let mut seed = 0x5EED_u64 ^ n as u64;
    let zobrist: Vec<u128> = (0..n)
        .map(|_| (u128::from(splitmix(&mut seed)) << 64) | u128::from(splitmix(&mut seed)))
        .collect();
    let mut memo: HashSet<(u128, State), BuildHasherDefault<MemoHasher>> = HashSet::default();
    let mut stack: Vec<Placed> = Vec::new();
    let (mut state, mut linearized, mut steps) = (0, 0u128, 0u64);
    let mut best: (usize, usize, Vec<usize>) = (0, NIL, Vec::new());
    let mut cur = events[0].next;
    // The first choice to try at `cur` (after a backtrack, the next one).
    let mut first_choice = 0;
    while events[0].next != NIL {
        steps += 1;
        if steps > budget {
            return (SearchResult::Budget, steps);
        }
        let e = events[cur];
        if e.call {
            let (next, count) = ops[e.op].step.next(state);
            let key = linearized ^ zobrist[e.op];
            let choice = (first_choice..count).find(|&c| memo.insert((key, next[c])));
            first_choice = 0;
            if let Some(choice) = choice {
                stack.push(Placed {
                    call: cur,
                    state_before: state,
                    choice,
                });
                (state, linearized) = (next[choice], key);
                lift(&mut events, cur);
                cur = events[0].next;
            } else {
                cur = e.next;
            }
            continue;
        }
        // A return whose operation is not linearized: dead end.
        if stack.len() >= best.0 || best.1 == NIL {
            let tail = stack.iter().rev().take(8).rev();
            best = (stack.len(), e.op, tail.map(|p| events[p.call].op).collect());
        }
        let Some(placed) = stack.pop() else {
            let (depth, stuck_at, tail) = best;
            let violation = SearchResult::Violation {
                depth,
                stuck_at,
                tail,
            };
            return (violation, steps);
        };
        state = placed.state_before;
        linearized ^= zobrist[events[placed.call].op];
        unlift(&mut events, placed.call);
        // Its other choices first, then the calls after it.
        cur = placed.call;
        first_choice = placed.choice + 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_leaves_the_states_the_model_allows() {
        assert_eq!(Step::Write(3).next(1), ([3, 3], 1));
        assert_eq!(Step::Read(3).next(3).1, 1);
        assert_eq!(Step::Read(3).next(1).1, 0);
        let swap = Step::Swap {
            expected: 1,
            new: 2,
        };
        assert_eq!(swap.next(1), ([2, 2], 1));
        assert_eq!(swap.next(0).1, 0);
        assert_eq!(Step::NotEqual(1).next(1).1, 0);
        assert_eq!(Step::NotEqual(1).next(4), ([4, 4], 1));
        let maybe_delete = Step::Maybe(MaybeStep::Write(0));
        assert_eq!(maybe_delete.next(5), ([0, 5], 2));
        assert_eq!(maybe_delete.next(0), ([0, 0], 1));
        let maybe_swap = Step::Maybe(MaybeStep::Swap {
            expected: 1,
            new: 2,
        });
        assert_eq!(maybe_swap.next(1), ([2, 1], 2));
        assert_eq!(maybe_swap.next(7), ([7, 7], 1));
    }
}
