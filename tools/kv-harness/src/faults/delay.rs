//! Message delay and reordering, without netem: this kind of kernel is
//! built without `CONFIG_NET_SCH_NETEM` (and without nftables' `queue`),
//! so an iptables rule ([`super::net::queue_peer_traffic`]) hands every
//! peer packet to an NFQUEUE, and a thread of the harness holds each one
//! for a random time before letting it go.
//!
//! Packets leave when their own time falls due, not in the order they
//! came. Within one TCP connection the receiver's stack puts the bytes
//! back in order (after the retransmissions the holding provokes), so
//! what a node sees is messages late by varying amounts and reordered
//! *across* connections: a peer's message lane against its append lane,
//! one peer's traffic against another's, an answer overtaking a retry.
//! Raft must tolerate exactly that (its messages may be delayed,
//! duplicated and reordered: paper §5.1, thesis §3.2).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io;
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nfq::{Message, Queue, Verdict};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The NFQUEUE number the rules send peer packets to.
pub const QUEUE_NUM: u16 = 2380;
/// Packets the kernel keeps for us at most; beyond it, it lets them pass
/// (fail-open), so a slow harness delays less, never drops.
const QUEUE_MAX_LEN: u32 = 32_768;
/// How often the thread looks for packets while it holds some.
const POLL: Duration = Duration::from_millis(1);
/// How often it looks while nothing is delayed (stragglers queued just
/// before the rules were removed).
const IDLE_POLL: Duration = Duration::from_millis(50);

/// What the nemesis tells the thread.
enum Control {
    /// Hold every packet from now on for a random time up to this.
    Hold(Duration),
    /// Let everything held go now and pass new packets at once; answer
    /// with what happened since the last `Hold`.
    Release(mpsc::Sender<Tally>),
}

/// What one `delay` fault did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Packets held.
    pub delayed: u64,
    /// Packets that left after one that had arrived later: the
    /// reordering the fault is for.
    pub overtaken: u64,
}

/// The delaying thread, bound to [`QUEUE_NUM`] until dropped.
pub struct Delayer {
    control: Option<mpsc::Sender<Control>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Delayer {
    /// Binds the queue (in this process's network namespace) and starts
    /// the thread; its random delays come from `seed`.
    ///
    /// # Errors
    /// The netlink socket could not be opened or bound (not root, or no
    /// `NETFILTER_NETLINK_QUEUE` in the kernel).
    pub fn start(seed: u64) -> io::Result<Delayer> {
        let mut queue = Queue::open()?;
        queue.bind(QUEUE_NUM)?;
        // Metadata only: the verdict lets the kernel's own copy through.
        queue.set_copy_range(QUEUE_NUM, 0)?;
        queue.set_queue_max_len(QUEUE_NUM, QUEUE_MAX_LEN)?;
        queue.set_fail_open(QUEUE_NUM, true)?;
        queue.set_nonblocking(true);
        let (tx, rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("fault-delay".into())
            .spawn(move || Held::new(seed).run(queue, &rx))?;
        Ok(Delayer {
            control: Some(tx),
            thread: Some(thread),
        })
    }

    /// From now on, hold each peer packet for a random time in `0..=max`.
    pub fn hold(&self, max: Duration) {
        if let Some(tx) = &self.control {
            // A thread that stopped reports why when dropped.
            let _ = tx.send(Control::Hold(max));
        }
    }

    /// Lets every held packet go; returns what happened since
    /// [`hold`](Self::hold), or `None` if the thread has stopped.
    pub fn release(&self) -> Option<Tally> {
        let (tx, rx) = mpsc::channel();
        self.control.as_ref()?.send(Control::Release(tx)).ok()?;
        rx.recv_timeout(Duration::from_secs(5)).ok()
    }
}

impl Drop for Delayer {
    fn drop(&mut self) {
        // Closing the channel stops the thread, which lets everything go.
        self.control.take();
        if let Some(Ok(Err(e))) = self.thread.take().map(JoinHandle::join) {
            eprintln!("fault delay thread failed: {e}");
        }
    }
}

/// A packet (`T`) and when it may go.
struct Pending<T> {
    due: Instant,
    /// Arrival order, to break ties. Invariant: unique.
    seq: u64,
    msg: T,
}

impl<T> PartialEq for Pending<T> {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
    }
}
impl<T> Eq for Pending<T> {}
impl<T> PartialOrd for Pending<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Pending<T> {
    /// Reversed: the heap's top is the packet due first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

/// The thread's state.
struct Held {
    rng: StdRng,
    /// `None`: packets pass at once.
    max: Option<Duration>,
    pending: BinaryHeap<Pending<Message>>,
    seq: u64,
    /// The latest arrival released so far. Invariant: at most `seq`.
    released_seq: u64,
    tally: Tally,
}

impl Held {
    fn new(seed: u64) -> Held {
        Held {
            rng: StdRng::seed_from_u64(seed),
            max: None,
            pending: BinaryHeap::new(),
            seq: 0,
            released_seq: 0,
            tally: Tally::default(),
        }
    }

    /// Until the nemesis hangs up: take orders, take packets, let the
    /// due ones go, wait a little.
    fn run(mut self, mut queue: Queue, control: &mpsc::Receiver<Control>) -> io::Result<()> {
        loop {
            let idle = self.max.is_none() && self.pending.is_empty();
            let order = if idle {
                match control.recv_timeout(IDLE_POLL) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match control.try_recv() {
                    Ok(c) => Some(c),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => break,
                }
            };
            match order {
                Some(Control::Hold(max)) => {
                    self.max = Some(max);
                    self.tally = Tally::default();
                }
                Some(Control::Release(answer)) => {
                    self.max = None;
                    self.release_all(&mut queue)?;
                    let _ = answer.send(self.tally);
                }
                None => {}
            }
            self.take(&mut queue)?;
            self.release_due(&mut queue, Instant::now())?;
            if !self.pending.is_empty() {
                // The queue offers no descriptor to wait on (nfq keeps
                // it), so the thread polls while it holds packets.
                thread::sleep(POLL);
            }
        }
        self.max = None;
        self.release_all(&mut queue)?;
        self.take(&mut queue)
    }

    /// Every packet the kernel has queued: held, or passed at once.
    fn take(&mut self, queue: &mut Queue) -> io::Result<()> {
        loop {
            let mut msg = match queue.recv() {
                Ok(msg) => msg,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let Some(max) = self.max else {
                msg.set_verdict(Verdict::Accept);
                queue.verdict(msg)?;
                continue;
            };
            let hold = Duration::from_micros(self.rng.random_range(0..=max.as_micros() as u64));
            self.seq += 1;
            self.tally.delayed += 1;
            self.pending.push(Pending {
                due: Instant::now() + hold,
                seq: self.seq,
                msg,
            });
        }
    }

    fn release_due(&mut self, queue: &mut Queue, now: Instant) -> io::Result<()> {
        while self.pending.peek().is_some_and(|p| p.due <= now) {
            let p = self.pending.pop().expect("peeked");
            self.accept(queue, p)?;
        }
        Ok(())
    }

    fn release_all(&mut self, queue: &mut Queue) -> io::Result<()> {
        while let Some(p) = self.pending.pop() {
            self.accept(queue, p)?;
        }
        Ok(())
    }

    fn accept(&mut self, queue: &mut Queue, mut p: Pending<Message>) -> io::Result<()> {
        if p.seq < self.released_seq {
            self.tally.overtaken += 1;
        }
        self.released_seq = self.released_seq.max(p.seq);
        p.msg.set_verdict(Verdict::Accept);
        queue.verdict(p.msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_packets_leave_in_the_order_they_fall_due_not_the_order_they_came() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut heap = BinaryHeap::new();
        for (seq, (hold, name)) in [(ms(30), "first"), (ms(10), "second"), (ms(10), "third")]
            .into_iter()
            .enumerate()
        {
            heap.push(Pending {
                due: t + hold,
                seq: seq as u64,
                msg: name,
            });
        }
        let order: Vec<_> = std::iter::from_fn(|| heap.pop().map(|p| p.msg)).collect();
        assert_eq!(order, ["second", "third", "first"]);
    }
}
