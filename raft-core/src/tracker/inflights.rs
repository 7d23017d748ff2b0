//! The window of append messages sent to one follower and not yet
//! acknowledged, bounded by count and by bytes (flow control).

use std::collections::VecDeque;

use crate::types::Index;

/// Unacknowledged appends to one follower, oldest first.
#[derive(Clone, Debug)]
pub(crate) struct Inflights {
    /// `(last index of the message, bytes of its entries)`.
    /// Invariant: indexes strictly increase from front to back.
    window: VecDeque<(Index, u64)>,
    /// Invariant: equals the sum of the window's byte counts.
    bytes: u64,
    max_msgs: usize,
    max_bytes: u64,
}

impl Inflights {
    /// An empty window holding at most `max_msgs` messages and `max_bytes`.
    pub(crate) fn new(max_msgs: usize, max_bytes: u64) -> Inflights {
        debug_assert!(max_msgs > 0);
        Inflights {
            window: VecDeque::new(),
            bytes: 0,
            max_msgs,
            max_bytes,
        }
    }

    /// Records a message whose last entry is `last` and whose entries
    /// weigh `bytes`.
    pub(crate) fn add(&mut self, last: Index, bytes: u64) {
        debug_assert!(!self.is_full(), "adding to a full inflight window");
        debug_assert!(self.window.back().is_none_or(|(i, _)| *i < last));
        if self.window.capacity() == 0 {
            // Allocate lazily: most followers in probe state never need it.
            self.window.reserve_exact(self.max_msgs.min(64));
        }
        self.window.push_back((last, bytes));
        self.bytes = self.bytes.saturating_add(bytes);
    }

    /// Frees every message whose last index is `<= index` (they are
    /// acknowledged).
    pub(crate) fn free_le(&mut self, index: Index) {
        while let Some(&(last, bytes)) = self.window.front() {
            if last > index {
                break;
            }
            self.bytes -= bytes;
            self.window.pop_front();
        }
    }

    /// Frees the oldest message, acknowledged or not: lets one more append
    /// go out when acknowledgements may have been lost.
    pub(crate) fn free_first_one(&mut self) {
        if let Some((_, bytes)) = self.window.pop_front() {
            self.bytes -= bytes;
        }
    }

    /// True when no more messages may be sent.
    pub(crate) fn is_full(&self) -> bool {
        self.window.len() >= self.max_msgs || self.bytes >= self.max_bytes
    }

    /// Messages in flight.
    pub(crate) fn len(&self) -> usize {
        self.window.len()
    }

    /// True when nothing is in flight.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.window.is_empty()
    }

    /// Bytes in flight (the tests' view; flow control asks `is_full`).
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Forgets everything in flight.
    pub(crate) fn reset(&mut self) {
        self.window.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_fills_by_message_count() {
        let mut w = Inflights::new(3, u64::MAX);
        for i in 1..=3 {
            assert!(!w.is_full());
            w.add(Index(i), 10);
        }
        assert!(w.is_full());
        w.free_le(Index(1));
        assert!(!w.is_full());
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn window_fills_by_bytes() {
        let mut w = Inflights::new(100, 250);
        w.add(Index(1), 100);
        w.add(Index(2), 100);
        assert!(!w.is_full());
        w.add(Index(3), 100);
        assert!(w.is_full());
        assert_eq!(w.bytes(), 300);
        w.free_le(Index(2));
        assert_eq!(w.bytes(), 100);
        assert!(!w.is_full());
    }

    #[test]
    fn freeing_stops_at_the_first_unacknowledged_message() {
        let mut w = Inflights::new(10, u64::MAX);
        w.add(Index(5), 1);
        w.add(Index(9), 1);
        w.free_le(Index(7));
        assert_eq!(w.len(), 1);
        w.free_le(Index(100));
        assert!(w.is_empty());
        assert_eq!(w.bytes(), 0);
    }

    #[test]
    fn reset_empties_the_window() {
        let mut w = Inflights::new(2, u64::MAX);
        w.add(Index(1), 5);
        w.add(Index(2), 5);
        w.reset();
        assert!(w.is_empty());
        assert!(!w.is_full());
    }
}
