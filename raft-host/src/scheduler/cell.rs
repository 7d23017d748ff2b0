//! A task's cell: the task itself and the small state machine that makes
//! "wake" idempotent and keeps a task on at most one pool thread.
//!
//! ```text
//!             wake                   a pool thread takes it
//!   Idle ──────────────▶ Queued ──────────────────────────▶ Running
//!    ▲                     ▲                                 │   │ wake
//!    │ turn: Idle          │ turn: Again, or woken meanwhile │   ▼
//!    └─────────────────────┴──────────────────────────── RunningWoken
//!                                            turn: Done ─▶ Done (forever)
//! ```
//!
//! Only the thread that moved a cell to `Running` touches its task, so
//! the task's mutex is never contended; it is there to make the cell
//! `Sync` without `unsafe`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use super::{Shared, Task, Turn};

const IDLE: u8 = 0;
const QUEUED: u8 = 1;
const RUNNING: u8 = 2;
const RUNNING_WOKEN: u8 = 3;
const DONE: u8 = 4;

/// What the run queue and the wakers hold: a cell, type-erased.
pub(crate) trait Runnable: Send + Sync {
    /// Runs one turn of the task (called by the pool thread that took the
    /// cell off the run queue).
    fn run(self: Arc<Self>);
    /// Queues the task for a turn unless it is queued already; a task
    /// woken while it runs gets another turn right after.
    fn wake(self: Arc<Self>);
}

/// Wakes one task. Cheap to clone; waking a task that ended does nothing.
#[derive(Clone)]
pub(crate) struct Waker(Arc<dyn Runnable>);

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}

impl Waker {
    pub(super) fn new(cell: Arc<dyn Runnable>) -> Waker {
        Waker(cell)
    }

    /// Queues the task for a turn (see [`Runnable::wake`]).
    pub(crate) fn wake(&self) {
        Arc::clone(&self.0).wake();
    }
}

pub(super) struct Cell<T> {
    /// One of the constants above. Invariant: the cell is on the run
    /// queue exactly when the state is `QUEUED`.
    state: AtomicU8,
    /// `None` until installed, and again once the task is done.
    task: Mutex<Option<T>>,
    /// The deadline the timer was last given, so that the turns between
    /// two ticks do not register the same deadline again and again.
    armed: Mutex<Option<Instant>>,
    shared: Arc<Shared>,
}

impl<T: Task> Cell<T> {
    /// A cell without its task, in `RUNNING` so that a wake before
    /// [`Cell::install`] only marks it woken.
    pub(super) fn new(shared: Arc<Shared>) -> Cell<T> {
        Cell {
            state: AtomicU8::new(RUNNING),
            task: Mutex::new(None),
            armed: Mutex::new(None),
            shared,
        }
    }

    /// Gives the cell its task and queues the first turn.
    pub(super) fn install(cell: &Arc<Cell<T>>, task: T) {
        *cell.task.lock() = Some(task);
        cell.state.store(QUEUED, Ordering::Release);
        cell.shared.push(Arc::clone(cell) as Arc<dyn Runnable>);
    }

    /// After a turn that left the task idle: back to `IDLE`, unless it was
    /// woken during the turn (then queued again).
    fn settle(self: Arc<Self>) {
        let settled =
            self.state
                .compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire);
        if let Err(state) = settled {
            debug_assert_eq!(state, RUNNING_WOKEN, "only a wake changes a running cell");
            self.requeue();
        }
    }

    fn requeue(self: Arc<Self>) {
        self.state.store(QUEUED, Ordering::Release);
        let shared = Arc::clone(&self.shared);
        shared.push(self);
    }

    fn arm(self: &Arc<Self>, deadline: Instant) {
        let mut armed = self.armed.lock();
        if *armed == Some(deadline) {
            return;
        }
        *armed = Some(deadline);
        drop(armed);
        let waker = Waker::new(Arc::clone(self) as Arc<dyn Runnable>);
        self.shared.timer.wake_at(deadline, waker);
    }
}

impl<T: Task> Runnable for Cell<T> {
    fn run(self: Arc<Self>) {
        let was = self.state.swap(RUNNING, Ordering::AcqRel);
        debug_assert_eq!(was, QUEUED, "only a queued cell runs");
        let turn = match self.task.lock().as_mut() {
            Some(task) => task.turn(),
            None => Turn::Done,
        };
        match turn {
            Turn::Again => self.requeue(),
            Turn::Idle(deadline) => {
                if let Some(deadline) = deadline {
                    self.arm(deadline);
                }
                self.settle();
            }
            Turn::Done => {
                // Dropping the task drops its queues: senders see it gone.
                let task = self.task.lock().take();
                self.state.store(DONE, Ordering::Release);
                drop(task);
            }
        }
    }

    fn wake(self: Arc<Self>) {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            let next = match state {
                IDLE => QUEUED,
                RUNNING => RUNNING_WOKEN,
                // Queued already, woken already, or gone.
                _ => return,
            };
            match self
                .state
                .compare_exchange(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(now) => state = now,
            }
        }
        if state == IDLE {
            let shared = Arc::clone(&self.shared);
            shared.push(self);
        }
    }
}

#[cfg(test)]
pub(super) fn state_of<T: Task>(cell: &Cell<T>) -> u8 {
    cell.state.load(Ordering::Acquire)
}

#[cfg(test)]
pub(super) const STATE_DONE: u8 = DONE;
