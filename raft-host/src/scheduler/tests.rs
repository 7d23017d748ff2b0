use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::cell::{STATE_DONE, state_of};
use super::{Scheduler, Task, Turn};

/// A guard against a hung test, not a timing assertion.
const GUARD: Duration = Duration::from_secs(10);

/// Reports each turn's number and answers with the scripted turn.
struct Scripted {
    turns: usize,
    script: Receiver<Turn>,
    report: Sender<usize>,
    /// Turns running at once, across every task sharing this counter.
    concurrent: Arc<AtomicUsize>,
}

impl Task for Scripted {
    fn turn(&mut self) -> Turn {
        let running = self.concurrent.fetch_add(1, Ordering::SeqCst);
        assert_eq!(running, 0, "a task never runs on two threads at once");
        self.turns += 1;
        let _ = self.report.send(self.turns);
        let next = self.script.recv_timeout(GUARD).unwrap_or(Turn::Done);
        self.concurrent.fetch_sub(1, Ordering::SeqCst);
        next
    }
}

fn scripted(scheduler: &Scheduler) -> (super::Waker, Sender<Turn>, Receiver<usize>) {
    let (script_tx, script) = crossbeam_channel::unbounded();
    let (report, reports) = crossbeam_channel::unbounded();
    let slot = scheduler.slot::<Scripted>();
    let waker = slot.waker();
    slot.run(Scripted {
        turns: 0,
        script,
        report,
        concurrent: Arc::new(AtomicUsize::new(0)),
    });
    (waker, script_tx, reports)
}

#[test]
fn an_installed_task_gets_a_first_turn_and_then_waits_to_be_woken() {
    let scheduler = Scheduler::start(2, "test").unwrap();
    let (waker, script, reports) = scripted(&scheduler);
    script.send(Turn::Idle(None)).unwrap();
    assert_eq!(reports.recv_timeout(GUARD), Ok(1));
    script.send(Turn::Idle(None)).unwrap();
    waker.wake();
    assert_eq!(reports.recv_timeout(GUARD), Ok(2));
    script.send(Turn::Done).unwrap();
    waker.wake();
    assert_eq!(reports.recv_timeout(GUARD), Ok(3));
}

#[test]
fn a_task_woken_during_its_turn_runs_once_more_and_never_twice_at_once() {
    let scheduler = Scheduler::start(2, "test").unwrap();
    let (waker, script, reports) = scripted(&scheduler);
    assert_eq!(reports.recv_timeout(GUARD), Ok(1));
    // Woken three times while the first turn runs: one more turn, not three.
    waker.wake();
    waker.wake();
    waker.wake();
    script.send(Turn::Idle(None)).unwrap();
    assert_eq!(reports.recv_timeout(GUARD), Ok(2));
    script.send(Turn::Done).unwrap();
    // The Done turn is the last: no report of a third turn ever comes.
    waker.wake();
    drop(scheduler);
    assert_eq!(reports.try_iter().collect::<Vec<_>>(), Vec::<usize>::new());
}

#[test]
fn a_task_asking_again_gets_another_turn_without_a_wake() {
    let scheduler = Scheduler::start(1, "test").unwrap();
    let (_waker, script, reports) = scripted(&scheduler);
    for _ in 0..5 {
        script.send(Turn::Again).unwrap();
    }
    script.send(Turn::Done).unwrap();
    let turns: Vec<usize> = (0..6)
        .map(|_| reports.recv_timeout(GUARD).unwrap())
        .collect();
    assert_eq!(turns, vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn an_idle_task_with_a_deadline_is_woken_by_the_timer() {
    let scheduler = Scheduler::start(1, "test").unwrap();
    let (_waker, script, reports) = scripted(&scheduler);
    let at = Instant::now() + Duration::from_millis(20);
    script.send(Turn::Idle(Some(at))).unwrap();
    assert_eq!(reports.recv_timeout(GUARD), Ok(1));
    script.send(Turn::Done).unwrap();
    assert_eq!(reports.recv_timeout(GUARD), Ok(2));
    assert!(Instant::now() >= at, "woken at its deadline, not before");
}

/// Counts its turns and ends after `turns_left`.
struct Countdown {
    turns_left: usize,
    total: Arc<AtomicUsize>,
    done: Sender<()>,
}

impl Task for Countdown {
    fn turn(&mut self) -> Turn {
        self.total.fetch_add(1, Ordering::SeqCst);
        self.turns_left -= 1;
        if self.turns_left == 0 {
            let _ = self.done.send(());
            Turn::Done
        } else {
            Turn::Again
        }
    }
}

#[test]
fn many_tasks_share_two_threads_and_each_runs_to_its_end() {
    let scheduler = Scheduler::start(2, "test").unwrap();
    let total = Arc::new(AtomicUsize::new(0));
    let (done, finished) = crossbeam_channel::unbounded();
    let mut cells = Vec::new();
    for i in 0..500 {
        let slot = scheduler.slot::<Countdown>();
        cells.push(Arc::clone(&slot.cell));
        slot.run(Countdown {
            turns_left: 1 + i % 7,
            total: Arc::clone(&total),
            done: done.clone(),
        });
    }
    for _ in 0..500 {
        finished.recv_timeout(GUARD).expect("every task ends");
    }
    let expected: usize = (0..500).map(|i| 1 + i % 7).sum();
    assert_eq!(total.load(Ordering::SeqCst), expected);
    assert!(cells.iter().all(|c| state_of(c) == STATE_DONE));
}
