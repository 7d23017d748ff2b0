//! The host's scheduler: a small fixed pool of threads drives every
//! group's loop, so that a host runs thousands of groups without a thread
//! (and a stack, and a wake-up per tick) each.
//!
//! A group's loop is a [`Task`]: a *turn* drains what is queued for it,
//! ticks if a tick is due, handles one Ready and says what should happen
//! next ([`Turn`]). A task runs on one pool thread at a time; whoever
//! queues work for it (a handle, the transport, the storage writer, the
//! snapshot pool, the timer) calls [`Waker::wake`], which puts it on the
//! run queue once, however many wake it. A task that wants another turn
//! at once goes to the back of the queue, so that one busy group does not
//! starve the others.

mod cell;
mod timer;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

pub(crate) use cell::Waker;
use cell::{Cell, Runnable};
use timer::Timer;

/// One group's loop, as the pool sees it.
pub(crate) trait Task: Send + 'static {
    /// Runs one turn. Never blocks for long: no waiting for events, and
    /// at most one fsync (a loop without asynchronous writes persists its
    /// Ready in the turn).
    fn turn(&mut self) -> Turn;
}

/// What a turn asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// More work is waiting: another turn soon, behind the other tasks.
    Again,
    /// Nothing to do until woken, or until the instant (the next tick),
    /// if any.
    Idle(Option<Instant>),
    /// The task ended: it is dropped and never runs again.
    Done,
}

/// What the pool threads, the timer and the cells share.
pub(crate) struct Shared {
    /// The run queue; `None` tells a pool thread to stop.
    queue: Sender<Option<Arc<dyn Runnable>>>,
    timer: Timer,
}

impl Shared {
    fn push(&self, task: Arc<dyn Runnable>) {
        // Fails only once the pool has stopped, when nothing runs anyway.
        let _ = self.queue.send(Some(task));
    }
}

/// The pool. Dropping it stops its threads once they finish the turns
/// they are in (the host stops every group first).
pub(crate) struct Scheduler {
    shared: Arc<Shared>,
    /// The run queue's receiving end, drained at drop: a queued cell
    /// holds the shared state that holds the queue.
    queued: Receiver<Option<Arc<dyn Runnable>>>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// Starts `threads` pool threads (at least one) and the timer thread.
    ///
    /// # Errors
    /// A thread could not be spawned (those started are stopped).
    pub(crate) fn start(threads: usize, name: &str) -> std::io::Result<Scheduler> {
        let (queue, rx) = crossbeam_channel::unbounded();
        let timer = Timer::start(format!("{name}-timer"))?;
        let mut scheduler = Scheduler {
            shared: Arc::new(Shared { queue, timer }),
            queued: rx.clone(),
            threads: Vec::new(),
        };
        for i in 0..threads.max(1) {
            let rx: Receiver<Option<Arc<dyn Runnable>>> = rx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    while let Ok(Some(task)) = rx.recv() {
                        task.run();
                    }
                })?;
            scheduler.threads.push(thread);
        }
        Ok(scheduler)
    }

    /// A slot for a task that is still being built: its waker may be
    /// handed out (and woken) before [`Slot::run`] gives it the task.
    pub(crate) fn slot<T: Task>(&self) -> Slot<T> {
        Slot {
            cell: Arc::new(Cell::new(Arc::clone(&self.shared))),
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        for _ in &self.threads {
            let _ = self.shared.queue.send(None);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.shared.timer.stop();
        for task in self.queued.try_iter().flatten() {
            drop(task);
        }
    }
}

/// A task's place in the pool, before it runs.
pub(crate) struct Slot<T: Task> {
    cell: Arc<Cell<T>>,
}

impl<T: Task> Slot<T> {
    /// What wakes the task.
    pub(crate) fn waker(&self) -> Waker {
        Waker::new(Arc::clone(&self.cell) as Arc<dyn Runnable>)
    }

    /// Gives the slot its task and queues its first turn.
    pub(crate) fn run(self, task: T) {
        Cell::install(&self.cell, task);
    }
}

#[cfg(test)]
mod tests;
