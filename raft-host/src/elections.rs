//! Election pacing: at most
//! [`HostOptions::max_concurrent_elections`](crate::HostOptions::max_concurrent_elections)
//! of a host's groups campaign at once.
//!
//! Why: a host that starts 100,000 groups starts 100,000 first elections
//! within one election timeout. Their pre-votes and votes overflow the
//! per-peer queues, are dropped, time out and are sent again, and the
//! cluster never gets ahead (measured: `docs/perf/2026-12-04-quiescence.md`).
//! Elections need a round trip or two each; run a few hundred at a time,
//! they finish in a fraction of a second and the next ones start.
//!
//! How: a group whose next tick would start an election
//! ([`RawNode::election_due`](raft_core::RawNode::election_due)) asks for a
//! permit. Without one it holds that tick back and waits in line (first
//! come, first served), asleep unless something else of it needs the
//! clock; when a permit frees up it goes to the first in line, which is
//! woken. A permit is given back once the group knows a leader, or after
//! one election timeout of ticks (an election that cannot win, say for
//! want of a quorum, must not keep its permit). Holding a tick back only
//! delays this node's own campaign, which is always safe (see
//! `election_due`); messages are handled as usual meanwhile, so a waiting
//! node still votes, and a leader's message ends its wait.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use parking_lot::Mutex;

use crate::scheduler::Waker;

const WAITING: u8 = 0;
const GRANTED: u8 = 1;
const CANCELLED: u8 = 2;

/// A host's election permits.
pub(crate) struct Elections {
    /// `None`: no pacing, every election runs at once.
    limit: Option<NonZeroUsize>,
    inner: Mutex<Line>,
}

struct Line {
    /// Permits out. Invariant: at most `limit`.
    held: usize,
    /// Groups waiting, oldest first; cancelled tickets are skipped (and
    /// dropped) when they reach the front.
    waiting: VecDeque<Arc<Ticket>>,
}

/// One group's place in line.
pub(crate) struct Ticket {
    state: AtomicU8,
    waker: Waker,
}

impl Ticket {
    fn granted(&self) -> bool {
        self.state.load(Ordering::Acquire) == GRANTED
    }
}

impl Elections {
    pub(crate) fn new(limit: Option<NonZeroUsize>) -> Arc<Elections> {
        Arc::new(Elections {
            limit,
            inner: Mutex::new(Line {
                held: 0,
                waiting: VecDeque::new(),
            }),
        })
    }

    /// A permit now (`None`), or a place in line whose waker is woken once
    /// the permit is granted.
    fn ask(&self, waker: &Waker) -> Option<Arc<Ticket>> {
        let limit = self.limit?;
        let mut line = self.inner.lock();
        if line.held < limit.get() {
            line.held += 1;
            return None;
        }
        let ticket = Arc::new(Ticket {
            state: AtomicU8::new(WAITING),
            waker: waker.clone(),
        });
        line.waiting.push_back(Arc::clone(&ticket));
        Some(ticket)
    }

    /// Gives a permit back: to the first group still waiting, or to the pool.
    fn release(&self) {
        if self.limit.is_none() {
            return;
        }
        let mut line = self.inner.lock();
        debug_assert!(line.held > 0, "a permit given back was held");
        while let Some(next) = line.waiting.pop_front() {
            let handed = next
                .state
                .compare_exchange(WAITING, GRANTED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            if handed {
                drop(line);
                next.waker.wake();
                return;
            }
        }
        line.held -= 1;
    }

    /// Leaves the line; a permit granted meanwhile is given back.
    fn cancel(&self, ticket: &Ticket) {
        let was =
            ticket
                .state
                .compare_exchange(WAITING, CANCELLED, Ordering::AcqRel, Ordering::Acquire);
        if was == Err(GRANTED) {
            self.release();
        }
    }

    /// Permits out and groups in line (cancelled ones included), for tests.
    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let line = self.inner.lock();
        (line.held, line.waiting.len())
    }
}

/// Where one group stands.
enum Standing {
    /// No election due, or one running without a permit (pacing off).
    Free,
    /// An election is due; the tick that starts it is held back.
    Waiting(Arc<Ticket>),
    /// Campaigning with a permit, for at most `ticks_left` more ticks.
    Holding { ticks_left: u32 },
}

/// One group's side of the pacing, owned by its loop.
pub(crate) struct Pacer {
    elections: Arc<Elections>,
    waker: Waker,
    /// How long a permit is kept: one election timeout of ticks.
    hold_ticks: u32,
    standing: Standing,
}

impl Pacer {
    pub(crate) fn new(elections: Arc<Elections>, waker: Waker, hold_ticks: u32) -> Pacer {
        Pacer {
            elections,
            waker,
            hold_ticks: hold_ticks.max(1),
            standing: Standing::Free,
        }
    }

    /// Before a tick: true if the node may take it. `due` is
    /// [`RawNode::election_due`](raft_core::RawNode::election_due).
    pub(crate) fn may_tick(&mut self, due: bool) -> bool {
        match &self.standing {
            Standing::Holding { .. } => true,
            Standing::Waiting(t) if t.granted() => {
                self.standing = self.holding();
                true
            }
            Standing::Waiting(_) if !due => {
                self.leave();
                true
            }
            Standing::Waiting(_) => false,
            Standing::Free if !due => true,
            Standing::Free => match self.elections.ask(&self.waker) {
                None => {
                    self.standing = self.holding();
                    true
                }
                Some(t) => {
                    tracing::trace!("election held back: too many running on this host");
                    self.standing = Standing::Waiting(t);
                    false
                }
            },
        }
    }

    /// After a tick the node took: a permit's time runs out.
    pub(crate) fn ticked(&mut self) {
        if let Standing::Holding { ticks_left } = &mut self.standing {
            *ticks_left = ticks_left.saturating_sub(1);
            if *ticks_left == 0 {
                self.leave();
            }
        }
    }

    /// After a turn: a group that knows a leader (or leads) gives its
    /// permit back; one no longer due leaves the line.
    pub(crate) fn settle(&mut self, has_leader: bool, due: bool) {
        match &self.standing {
            Standing::Holding { .. } if has_leader => self.leave(),
            Standing::Waiting(_) if !due => self.leave(),
            _ => {}
        }
    }

    /// Waiting in line for a permit (and not granted one yet).
    pub(crate) fn is_waiting(&self) -> bool {
        matches!(&self.standing, Standing::Waiting(t) if !t.granted())
    }

    fn holding(&self) -> Standing {
        Standing::Holding {
            ticks_left: self.hold_ticks,
        }
    }

    /// Gives back a permit or a place in line.
    fn leave(&mut self) {
        match std::mem::replace(&mut self.standing, Standing::Free) {
            Standing::Free => {}
            Standing::Waiting(t) => self.elections.cancel(&t),
            Standing::Holding { .. } => self.elections.release(),
        }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::{Scheduler, Task, Turn};
    use crossbeam_channel::{Receiver, Sender};
    use std::time::Duration;

    /// A guard against a hung test, not a timing assertion.
    const GUARD: Duration = Duration::from_secs(10);

    /// A task that reports its number at every turn.
    struct Reporting(usize, Sender<usize>);

    impl Task for Reporting {
        fn turn(&mut self) -> Turn {
            let _ = self.1.send(self.0);
            Turn::Idle(None)
        }
    }

    struct Fixture {
        elections: Arc<Elections>,
        pacers: Vec<Pacer>,
        turns: Receiver<usize>,
        _scheduler: Scheduler,
    }

    /// `n` groups' pacers sharing `limit` permits (0: no limit), each
    /// with a task whose turns are reported.
    fn fixture(limit: usize, n: usize, hold: u32) -> Fixture {
        let elections = Elections::new(NonZeroUsize::new(limit));
        let scheduler = Scheduler::start(1, "pacing-test").expect("threads start");
        let (tx, turns) = crossbeam_channel::unbounded();
        let pacers = (0..n)
            .map(|i| {
                let slot = scheduler.slot::<Reporting>();
                let waker = slot.waker();
                slot.run(Reporting(i, tx.clone()));
                Pacer::new(Arc::clone(&elections), waker, hold)
            })
            .collect();
        // Every task's first turn, on install.
        for _ in 0..n {
            turns.recv_timeout(GUARD).expect("a first turn");
        }
        Fixture {
            elections,
            pacers,
            turns,
            _scheduler: scheduler,
        }
    }

    #[test]
    fn elections_beyond_the_limit_wait_in_line_and_start_in_order() {
        let Fixture {
            elections,
            pacers: mut p,
            turns,
            _scheduler,
        } = fixture(2, 4, 10);
        assert!(p[0].may_tick(true));
        assert!(p[1].may_tick(true));
        assert!(!p[2].may_tick(true), "the third waits");
        assert!(!p[3].may_tick(true));
        assert!(p[2].is_waiting() && p[3].is_waiting());
        assert_eq!(elections.counts(), (2, 2));
        // The first learns its leader: its permit goes to the first in
        // line, whose task is woken.
        p[0].settle(true, false);
        assert_eq!(
            turns.recv_timeout(GUARD),
            Ok(2),
            "the first in line is woken"
        );
        assert!(!p[2].is_waiting());
        assert!(p[2].may_tick(true), "granted in order");
        assert!(!p[3].may_tick(true), "the last still waits");
        assert_eq!(elections.counts(), (2, 1));
    }

    #[test]
    fn a_permit_is_given_back_after_one_election_timeout_of_ticks() {
        let Fixture {
            elections,
            pacers: mut p,
            turns: _,
            _scheduler,
        } = fixture(1, 2, 3);
        assert!(p[0].may_tick(true));
        assert!(!p[1].may_tick(true));
        for _ in 0..3 {
            p[0].ticked();
        }
        assert!(
            p[1].may_tick(true),
            "the permit passed on when its time ran out"
        );
        assert!(!p[0].may_tick(true), "the first now waits behind it");
        assert_eq!(elections.counts(), (1, 1));
    }

    #[test]
    fn a_group_that_finds_a_leader_while_waiting_leaves_the_line() {
        let Fixture {
            elections,
            pacers: mut p,
            turns: _,
            _scheduler,
        } = fixture(1, 3, 10);
        assert!(p[0].may_tick(true));
        assert!(!p[1].may_tick(true));
        assert!(!p[2].may_tick(true));
        // A leader's heartbeat reset group 1's timer: no longer due.
        p[1].settle(true, false);
        assert!(!p[1].is_waiting());
        assert!(p[1].may_tick(false), "it ticks as usual");
        // Group 0 gives its permit back: group 1 left the line, so group 2
        // gets it.
        p[0].settle(true, false);
        assert!(!p[2].is_waiting());
        assert!(p[2].may_tick(true));
        assert_eq!(elections.counts(), (1, 0));
    }

    #[test]
    fn a_dropped_group_gives_its_permit_or_its_place_back() {
        let Fixture {
            elections,
            pacers: mut p,
            turns: _,
            _scheduler,
        } = fixture(1, 3, 10);
        assert!(p[0].may_tick(true));
        assert!(!p[1].may_tick(true));
        assert!(!p[2].may_tick(true));
        drop(p.remove(1));
        drop(p.remove(0));
        assert!(p[0].may_tick(true), "group 2 got the permit");
        p.clear();
        assert_eq!(elections.counts().0, 0, "no permit stays out");
    }

    #[test]
    fn without_a_limit_every_election_runs_at_once() {
        let Fixture {
            elections,
            pacers: mut p,
            turns: _,
            _scheduler,
        } = fixture(0, 3, 10);
        assert!(p.iter_mut().all(|p| p.may_tick(true)));
        assert_eq!(elections.counts(), (0, 0));
    }
}
