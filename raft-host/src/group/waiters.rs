//! Callers waiting for their entry to be applied, by log position.

use std::collections::BTreeMap;

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
