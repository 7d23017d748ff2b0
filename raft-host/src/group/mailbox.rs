//! A group's queue, from the senders' side: every event pushed wakes the
//! group's task on the host's scheduler.

use std::time::Duration;

use crossbeam_channel::{SendTimeoutError, Sender, TrySendError};

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
    /// `None` for a detached handle's mailbox, which nobody reads.
    waker: Option<Waker>,
}

impl<S: StateMachine> Clone for Mailbox<S> {
    fn clone(&self) -> Self {
        Mailbox {
            tx: self.tx.clone(),
            waker: self.waker.clone(),
        }
    }
}

impl<S: StateMachine> Mailbox<S> {
    pub(crate) fn new(tx: Sender<Event<S>>, waker: Waker) -> Mailbox<S> {
        Mailbox {
            tx,
            waker: Some(waker),
        }
    }

    /// A mailbox whose loop is gone: every send fails as disconnected.
    pub(crate) fn detached() -> Mailbox<S> {
        let (tx, _) = crossbeam_channel::bounded(1);
        Mailbox { tx, waker: None }
    }

    fn woke(&self) {
        if let Some(w) = &self.waker {
            w.wake();
        }
    }

    /// Queues `event` unless the queue is full or closed.
    pub(crate) fn try_send(&self, event: Event<S>) -> Result<(), Refused> {
        match self.tx.try_send(event) {
            Ok(()) => {
                self.woke();
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(Refused::Full),
            Err(TrySendError::Disconnected(_)) => Err(Refused::Closed),
        }
    }

    /// Queues `event`, waiting up to `timeout` for room.
    pub(crate) fn send_timeout(&self, event: Event<S>, timeout: Duration) -> Result<(), Refused> {
        match self.tx.send_timeout(event, timeout) {
            Ok(()) => {
                self.woke();
                Ok(())
            }
            Err(SendTimeoutError::Timeout(_)) => Err(Refused::Full),
            Err(SendTimeoutError::Disconnected(_)) => Err(Refused::Closed),
        }
    }
}

impl<S: StateMachine> PeerSink for Mailbox<S> {
    fn push(&self, event: PeerEvent) -> bool {
        match event {
            // Must not be lost, or the leader waits for the snapshot.
            e @ PeerEvent::SnapshotStatus(..) => self
                .send_timeout(Event::Peer(e), Duration::from_secs(1))
                .is_ok(),
            e => self.try_send(Event::Peer(e)).is_ok(),
        }
    }
}
