//! Callers waiting for their entry to be applied: membership changes by
//! log position, commands by request number.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use raft_core::{Index, LogId, Term};

use crate::reply::Reply;

/// Waiters for entries this node appended as leader.
///
/// An entry is identified by its `LogId`: when the entry applied at an
/// index has the waiter's term it is the waiter's entry (Log Matching,
/// paper §5.3); any other term there means a new leader replaced it.
/// Invariant: every key is above the applied index.
#[derive(Debug)]
pub(crate) struct IndexWaiters<T> {
    by_index: BTreeMap<Index, (Term, Reply<T>)>,
}

impl<T> Default for IndexWaiters<T> {
    fn default() -> Self {
        IndexWaiters {
            by_index: BTreeMap::new(),
        }
    }
}

impl<T> IndexWaiters<T> {
    pub(crate) fn insert(&mut self, id: LogId, reply: Reply<T>) {
        // A leader appends each index once per term; a later leader that
        // reuses the index has a higher term and so replaced the entry.
        if let Some((_, old)) = self.by_index.insert(id.index, (id.term, reply)) {
            debug_assert!(false, "two proposals appended at index {}", id.index);
            drop(old);
        }
    }

    /// The entry `id` was applied: returns the waiter for exactly this
    /// entry, if any. Earlier waiters, and one at this index with another
    /// term, are answered with `lost(index)`.
    pub(crate) fn take(&mut self, id: LogId, lost: impl Fn(Index) -> T) -> Option<Reply<T>> {
        self.fail_through(id.index.prev(), &lost);
        let (term, reply) = self.by_index.remove(&id.index)?;
        if term == id.term {
            return Some(reply);
        }
        reply.send(lost(id.index));
        None
    }

    /// Answers every waiter at or below `index` with `value(index)`.
    pub(crate) fn fail_through(&mut self, index: Index, value: &impl Fn(Index) -> T) {
        while let Some(entry) = self.by_index.first_entry() {
            if *entry.key() > index {
                break;
            }
            let (at, (_, reply)) = entry.remove_entry();
            reply.send(value(at));
        }
    }

    /// Answers every waiter.
    pub(crate) fn fail_all(&mut self, value: impl Fn(Index) -> T) {
        self.fail_through(Index(u64::MAX), &value);
    }

    /// Forgets callers that stopped waiting.
    pub(crate) fn prune_abandoned(&mut self) {
        self.by_index.retain(|_, (_, r)| !r.is_abandoned());
    }

    /// True when nobody waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_index.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::blocking_pair;

    fn id(index: u64, term: u64) -> LogId {
        LogId {
            index: Index(index),
            term: Term(term),
        }
    }

    #[test]
    fn the_entry_with_the_waiters_term_is_the_waiters_and_others_are_lost() {
        let mut w: IndexWaiters<Result<u64, Index>> = IndexWaiters::default();
        let (r5, rx5) = blocking_pair();
        let (r6, rx6) = blocking_pair();
        let (r7, rx7) = blocking_pair();
        w.insert(id(5, 2), r5);
        w.insert(id(6, 2), r6);
        w.insert(id(7, 2), r7);
        // Index 6 was applied with term 3: 5 was skipped (lost) and 6 is
        // another leader's entry.
        assert!(w.take(id(6, 3), Err).is_none());
        assert_eq!(rx5.try_recv(), Ok(Err(Index(5))));
        assert_eq!(rx6.try_recv(), Ok(Err(Index(6))));
        let mine = w.take(id(7, 2), Err).expect("the waiter's own entry");
        mine.send(Ok(70));
        assert_eq!(rx7.try_recv(), Ok(Ok(70)));
        assert_eq!(w.len(), 0);
    }
}

/// Waiters for proposed commands, by request number (see the envelope):
/// found when the command is applied, wherever it was appended.
/// Commands this node appended as leader are also known by index, so that
/// a new leader's different entry there answers them as superseded.
/// Invariant: every value of `appended` is a key of `by_request`, or was
/// answered.
#[derive(Debug)]
pub(crate) struct RequestWaiters<T> {
    by_request: HashMap<u64, (Reply<T>, Instant)>,
    appended: BTreeMap<Index, u64>,
}

impl<T> Default for RequestWaiters<T> {
    fn default() -> Self {
        RequestWaiters {
            by_request: HashMap::new(),
            appended: BTreeMap::new(),
        }
    }
}

impl<T> RequestWaiters<T> {
    /// Waits for request `request`, appended here at `index` if this node
    /// leads (`None` when forwarded), until `deadline`.
    pub(crate) fn insert(
        &mut self,
        request: u64,
        index: Option<Index>,
        reply: Reply<T>,
        deadline: Instant,
    ) {
        let old = self.by_request.insert(request, (reply, deadline));
        debug_assert!(old.is_none(), "request numbers are unique");
        if let Some(index) = index {
            self.appended.insert(index, request);
        }
    }

    /// The entry at `index` was applied, carrying `request` if this node
    /// proposed it. Returns that request's waiter; a different request
    /// appended here at `index` is answered with `lost(index)`.
    pub(crate) fn take(
        &mut self,
        index: Index,
        request: Option<u64>,
        lost: impl Fn(Index) -> T,
    ) -> Option<Reply<T>> {
        if let Some(appended) = self.appended.remove(&index)
            && Some(appended) != request
            && let Some((reply, _)) = self.by_request.remove(&appended)
        {
            reply.send(lost(index));
        }
        request
            .and_then(|r| self.by_request.remove(&r))
            .map(|(reply, _)| reply)
    }

    /// A snapshot replaced the log through `index`: what this node
    /// appended there is answered with `value(index)`.
    pub(crate) fn fail_appended_through(&mut self, index: Index, value: impl Fn(Index) -> T) {
        while let Some(entry) = self.appended.first_entry() {
            if *entry.key() > index {
                break;
            }
            let (at, request) = entry.remove_entry();
            if let Some((reply, _)) = self.by_request.remove(&request) {
                reply.send(value(at));
            }
        }
    }

    /// True when nobody waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_request.is_empty()
    }

    /// Forgets waiters past their deadline (their callers timed out).
    pub(crate) fn expire(&mut self, now: Instant) {
        self.by_request.retain(|_, (_, deadline)| *deadline > now);
        let live = &self.by_request;
        self.appended.retain(|_, r| live.contains_key(r));
    }

    /// Answers every waiter with `value`.
    pub(crate) fn fail_all(&mut self, value: impl Fn() -> T) {
        self.appended.clear();
        for (_, (reply, _)) in self.by_request.drain() {
            reply.send(value());
        }
    }
}

#[cfg(test)]
mod request_tests {
    use super::*;
    use crate::reply::blocking_pair;

    #[test]
    fn a_forwarded_request_is_found_by_number_and_a_replaced_append_is_lost() {
        let mut w: RequestWaiters<Result<u64, Index>> = RequestWaiters::default();
        let later = Instant::now() + std::time::Duration::from_secs(60);
        let (forwarded, rx_f) = blocking_pair();
        let (appended, rx_a) = blocking_pair();
        w.insert(1, None, forwarded, later);
        w.insert(2, Some(Index(9)), appended, later);
        // Index 9 holds another node's command: request 2 was replaced.
        assert!(w.take(Index(9), None, Err).is_none());
        assert_eq!(rx_a.try_recv(), Ok(Err(Index(9))));
        // Request 1 was committed by the leader at index 10.
        w.take(Index(10), Some(1), Err).expect("found").send(Ok(1));
        assert_eq!(rx_f.try_recv(), Ok(Ok(1)));
    }

    #[test]
    fn waiters_past_their_deadline_are_forgotten() {
        let mut w: RequestWaiters<u64> = RequestWaiters::default();
        let now = Instant::now();
        let (r, rx) = blocking_pair();
        w.insert(5, Some(Index(3)), r, now);
        w.expire(now);
        assert!(w.take(Index(3), Some(5), |_| 0).is_none());
        assert!(rx.try_recv().is_err(), "dropped unanswered");
    }
}
