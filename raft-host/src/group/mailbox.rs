//! A group's queue: every event pushed wakes the group's task on the
//! host's scheduler.
//!
//! The queue is bounded by a count, not by a preallocated array: a
//! bounded crossbeam channel allocates its whole capacity up front (8,192
//! slots of an event took 12 MB per group, 12.8 GB for 1,000 groups),
//! while an idle group should cost next to nothing. So it is an unbounded
//! channel whose senders reserve a place in `queued` first.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::events::Event;
use crate::scheduler::Waker;
use crate::state_machine::StateMachine;
use crate::transport::{PeerEvent, PeerSink};

/// Why an event was not queued (it is dropped, and with it any reply
/// sender it carried).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue is full.
    Full,
    /// The loop has ended.
    Closed,
}

/// Where handles and the transport queue events for one group's loop.
pub(crate) struct Mailbox<S: StateMachine> {
    tx: Sender<Event<S>>,
    /// Events sent and not yet received. Invariant: at most `capacity`
    /// once every `try_send` has returned, plus the urgent ones.
    queued: Arc<AtomicUsize>,
    capacity: usize,
    /// `None` for a detached handle's mailbox, which nobody reads.
    waker: Option<Waker>,
}

impl<S: StateMachine> Clone for Mailbox<S> {
    fn clone(&self) -> Self {
        Mailbox {
            tx: self.tx.clone(),
            queued: Arc::clone(&self.queued),
            capacity: self.capacity,
            waker: self.waker.clone(),
        }
    }
}

/// The loop's end of a group's queue.
pub(crate) struct Inbound<S: StateMachine> {
    rx: Receiver<Event<S>>,
    queued: Arc<AtomicUsize>,
}

impl<S: StateMachine> Inbound<S> {
    /// The next event, if one is queued.
    pub(crate) fn try_recv(&self) -> Result<Event<S>, TryRecvError> {
        let event = self.rx.try_recv()?;
        let before = self.queued.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before > 0, "every queued event was counted");
        Ok(event)
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

/// A group's queue of at most `capacity` events (urgent ones aside),
/// waking `waker` on every send.
pub(crate) fn channel<S: StateMachine>(capacity: usize, waker: Waker) -> (Mailbox<S>, Inbound<S>) {
    channel_waking(capacity, Some(waker))
}

fn channel_waking<S: StateMachine>(
    capacity: usize,
    waker: Option<Waker>,
) -> (Mailbox<S>, Inbound<S>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let queued = Arc::new(AtomicUsize::new(0));
    let mailbox = Mailbox {
        tx,
        queued: Arc::clone(&queued),
        capacity: capacity.max(1),
        waker,
    };
    (mailbox, Inbound { rx, queued })
}

impl<S: StateMachine> Mailbox<S> {
    /// A mailbox whose loop is gone: every send fails as disconnected.
    pub(crate) fn detached() -> Mailbox<S> {
        let (tx, _) = crossbeam_channel::unbounded();
        Mailbox {
            tx,
            queued: Arc::default(),
            capacity: 1,
            waker: None,
        }
    }

    fn woke(&self) {
        if let Some(w) = &self.waker {
            w.wake();
        }
    }

    /// Queues `event` unless the queue is full or closed.
    pub(crate) fn try_send(&self, event: Event<S>) -> Result<(), Refused> {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        self.send_counted(event)
    }

    /// Queues `event` even when the queue is full: for the few events that
    /// must not be lost (a shutdown, a snapshot's outcome), which a full
    /// queue of requests must not keep out.
    pub(crate) fn send_urgent(&self, event: Event<S>) -> Result<(), Refused> {
        self.queued.fetch_add(1, Ordering::AcqRel);
        self.send_counted(event)
    }

    /// Sends an event already counted in `queued`.
    fn send_counted(&self, event: Event<S>) -> Result<(), Refused> {
        match self.tx.send(event) {
            Ok(()) => {
                self.woke();
                Ok(())
            }
            Err(_) => {
                self.queued.fetch_sub(1, Ordering::AcqRel);
                Err(Refused::Closed)
            }
        }
    }
}

impl<S: StateMachine> PeerSink for Mailbox<S> {
    fn push(&self, event: PeerEvent) -> bool {
        match event {
            // Must not be lost, or the leader waits for the snapshot.
            e @ PeerEvent::SnapshotStatus(..) => self.send_urgent(Event::Peer(e)).is_ok(),
            e => self.try_send(Event::Peer(e)).is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_machine::testing::Nothing;

    #[test]
    fn a_full_mailbox_refuses_requests_but_takes_urgent_events_and_frees_room_as_read() {
        let (tx, rx) = channel_waking::<Nothing>(2, None);
        assert_eq!(tx.try_send(Event::Shutdown), Ok(()));
        assert_eq!(tx.clone().try_send(Event::Shutdown), Ok(()));
        assert_eq!(tx.try_send(Event::Shutdown), Err(Refused::Full));
        assert_eq!(tx.send_urgent(Event::Shutdown), Ok(()));
        for _ in 0..3 {
            assert!(rx.try_recv().is_ok());
        }
        assert!(rx.is_empty());
        assert_eq!(tx.try_send(Event::Shutdown), Ok(()));
        drop(rx);
        assert_eq!(tx.try_send(Event::Shutdown), Err(Refused::Closed));
        assert_eq!(tx.send_urgent(Event::Shutdown), Err(Refused::Closed));
        assert_eq!(tx.queued.load(Ordering::Acquire), 1, "the one never read");
    }
}
