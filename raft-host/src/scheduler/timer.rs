//! The timer thread: wakes tasks at their deadlines (their next tick).
//! One thread for the whole host, however many groups it runs; a group
//! with no deadline (idle, quiesced) costs it nothing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use super::Waker;

/// When nothing is due, how long the thread sleeps before it looks
/// again (a registration wakes it earlier).
const IDLE_SLEEP: Duration = Duration::from_secs(3600);

/// One deadline. Ordered by time, then by registration, so equal
/// deadlines fire in the order they were set.
struct Due {
    at: Instant,
    seq: u64,
    waker: Waker,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The timer. [`Timer::stop`] stops the thread: the wakers it holds keep
/// the scheduler's shared state alive, so dropping cannot be the signal.
pub(super) struct Timer {
    requests: Mutex<Option<Sender<(Instant, Waker)>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Timer {
    pub(super) fn start(name: String) -> std::io::Result<Timer> {
        let (requests, rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(&rx))?;
        Ok(Timer {
            requests: Mutex::new(Some(requests)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Wakes `waker` at `at` (at once if it has passed).
    pub(super) fn wake_at(&self, at: Instant, waker: Waker) {
        if let Some(requests) = &*self.requests.lock() {
            // Fails only while the host stops: nothing needs waking then.
            let _ = requests.send((at, waker));
        }
    }
}

impl Timer {
    /// Stops the thread, dropping every deadline (and waker) it held.
    pub(super) fn stop(&self) {
        drop(self.requests.lock().take());
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

fn run(requests: &Receiver<(Instant, Waker)>) {
    let mut heap: BinaryHeap<Reverse<Due>> = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        while heap.peek().is_some_and(|d| d.0.at <= now) {
            let Reverse(due) = heap.pop().expect("peeked");
            due.waker.wake();
        }
        let deadline = heap.peek().map_or(now + IDLE_SLEEP, |d| d.0.at);
        match requests.recv_deadline(deadline) {
            Ok((at, waker)) => {
                seq += 1;
                heap.push(Reverse(Due { at, seq, waker }));
                // Take every request waiting before looking at the clock.
                for (at, waker) in requests.try_iter() {
                    seq += 1;
                    heap.push(Reverse(Due { at, seq, waker }));
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
