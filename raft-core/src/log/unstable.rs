//! The tail of the log that is not yet known to be durable, and a pending
//! incoming snapshot.

use crate::types::{Entry, Index, LogId, Snapshot, Term};

/// Entries and a snapshot that the application has not confirmed persisted.
#[derive(Debug, Default)]
pub(crate) struct Unstable {
    /// An incoming snapshot that is not yet persisted.
    snapshot: Option<Snapshot>,
    /// Invariant: `entries[i].index == offset + i`.
    entries: Vec<Entry>,
    /// The index of `entries[0]` (or where it would be).
    offset: Index,
    /// Entries with index `< in_progress_end` were handed out for persistence
    /// in a `Ready` that has not been acknowledged yet.
    /// Invariant: `offset <= in_progress_end <= offset + entries.len()`.
    in_progress_end: Index,
    /// The snapshot was handed out for persistence.
    snapshot_in_progress: bool,
    /// The term of the entry at `offset - 1` (the last stable entry, or
    /// the snapshot), when known: it answers the hot-path term lookups
    /// (a leader's own acknowledgement, commit) without a storage read.
    /// `None` after a truncation moved `offset` back.
    prev_term: Option<Term>,
}

impl Unstable {
    /// The index of the first unstable entry (or where it would be).
    pub(crate) fn offset(&self) -> Index {
        self.offset
    }

    /// The unstable entries, from `offset()` on.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The incoming snapshot not yet persisted.
    pub(crate) fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Nothing unstable; the stable log ends at `offset - 1`, whose term is
    /// `prev_term` if known.
    pub(crate) fn new(offset: Index, prev_term: Option<Term>) -> Unstable {
        Unstable {
            offset,
            in_progress_end: offset,
            prev_term,
            ..Unstable::default()
        }
    }

    /// The first index, if a snapshot sets it.
    pub(crate) fn maybe_first_index(&self) -> Option<Index> {
        self.snapshot.as_ref().map(|s| s.metadata.index.next())
    }

    /// The last index, if the unstable part determines it.
    pub(crate) fn maybe_last_index(&self) -> Option<Index> {
        match self.entries.last() {
            Some(e) => Some(e.index),
            None => self.snapshot.as_ref().map(|s| s.metadata.index),
        }
    }

    /// The last index of the whole log. With nothing unstable the stable
    /// log ends right before `offset`: entries leave this buffer only when
    /// the application persisted them (`stable_to`), and persisting index
    /// `i` discards any stored entries after `i` (Ready contract).
    pub(crate) fn last_index(&self) -> Index {
        match self.maybe_last_index() {
            Some(i) => i,
            None => self.offset.prev(),
        }
    }

    /// The term at `i`, if the unstable part knows it.
    pub(crate) fn maybe_term(&self, i: Index) -> Option<Term> {
        if i < self.offset {
            if i == self.offset.prev() && self.prev_term.is_some() {
                return self.prev_term;
            }
            return self
                .snapshot
                .as_ref()
                .filter(|s| s.metadata.index == i)
                .map(|s| s.metadata.term);
        }
        self.entries.get((i - self.offset) as usize).map(|e| e.term)
    }

    /// Entries not yet handed out for persistence.
    pub(crate) fn next_entries(&self) -> &[Entry] {
        &self.entries[(self.in_progress_end - self.offset) as usize..]
    }

    /// True when a snapshot waits to be handed out.
    pub(crate) fn has_next_snapshot(&self) -> bool {
        self.snapshot.is_some() && !self.snapshot_in_progress
    }

    /// Marks everything currently unstable as handed out.
    pub(crate) fn accept_in_progress(&mut self) {
        self.in_progress_end = self.offset + self.entries.len() as u64;
        self.snapshot_in_progress = self.snapshot.is_some();
    }

    /// The application persisted entries up to `id`: drop them. Ignored if
    /// the entry at `id.index` was since replaced (its term differs).
    pub(crate) fn stable_to(&mut self, id: LogId) {
        if id.index < self.offset || self.maybe_term(id.index) != Some(id.term) {
            return;
        }
        let n = (id.index.next() - self.offset) as usize;
        if n == self.entries.len() {
            // The common case: everything handed out was persisted.
            self.entries.clear();
        } else {
            self.entries.drain(..n);
        }
        self.after_stable_to(id);
    }

    /// `stable_to(id)`, returning the entries it drops (moved, not
    /// cloned). The caller checked that `id` is in this buffer.
    pub(crate) fn take_stable_prefix(&mut self, id: LogId) -> Vec<Entry> {
        debug_assert!(id.index >= self.offset && self.maybe_term(id.index) == Some(id.term));
        let n = (id.index.next() - self.offset) as usize;
        let taken = self.entries.drain(..n).collect();
        self.after_stable_to(id);
        taken
    }

    /// The bookkeeping of `stable_to(id)` once its entries are gone.
    fn after_stable_to(&mut self, id: LogId) {
        self.offset = id.index.next();
        self.prev_term = Some(id.term);
        self.in_progress_end = self.in_progress_end.max(self.offset);
        // Give back memory after a burst, but keep a working capacity.
        if self.entries.capacity() > 4096 && self.entries.len() * 4 < self.entries.capacity() {
            self.entries.shrink_to(self.entries.len() * 2);
        }
    }

    /// The application persisted the snapshot at `index`.
    pub(crate) fn stable_snapshot_to(&mut self, index: Index) {
        if self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.metadata.index == index)
        {
            self.snapshot = None;
            self.snapshot_in_progress = false;
        }
    }

    /// Replaces everything with `snapshot`.
    pub(crate) fn restore(&mut self, snapshot: Snapshot) {
        self.offset = snapshot.metadata.index.next();
        self.prev_term = Some(snapshot.metadata.term);
        self.in_progress_end = self.offset;
        self.entries.clear();
        self.snapshot = Some(snapshot);
        self.snapshot_in_progress = false;
    }

    /// Appends `entries` (non-empty, consecutive), truncating anything at or
    /// after `entries[0].index` first (paper §5.3).
    /// The entries are moved in, not cloned: no reference-count traffic on
    /// their payloads.
    pub(crate) fn truncate_and_append(&mut self, mut entries: Vec<Entry>) {
        let Some(first) = entries.first() else { return };
        self.truncate_from(first.index);
        self.entries.append(&mut entries);
        self.debug_check_indexes();
    }

    /// Appends one entry by value, truncating anything at or after its
    /// index first.
    pub(crate) fn truncate_and_push(&mut self, entry: Entry) {
        if entry.index != self.offset + self.entries.len() as u64 {
            self.truncate_from(entry.index);
        }
        self.entries.push(entry);
        self.debug_check_indexes();
    }

    /// Drops everything at or after `after`, the index of the first entry
    /// about to be appended.
    fn truncate_from(&mut self, after: Index) {
        let end = self.offset + self.entries.len() as u64;
        if after == end {
            // The common case: a plain append.
        } else if after <= self.offset {
            // Replaces the whole unstable part; storage entries at and after
            // `after` are superseded too, as the application's write of
            // index `after` truncates its log (Ready contract).
            if after < self.offset {
                // The term before the new offset is in storage.
                self.prev_term = None;
            }
            self.offset = after;
            self.entries.clear();
        } else {
            self.entries.truncate((after - self.offset) as usize);
        }
        self.in_progress_end = self.in_progress_end.min(after).max(self.offset);
    }

    fn debug_check_indexes(&self) {
        debug_assert!(
            self.entries
                .iter()
                .enumerate()
                .all(|(i, e)| e.index == self.offset + i as u64)
        );
    }

    /// Entries `[lo, hi)`; the caller checks the bounds.
    pub(crate) fn slice(&self, lo: Index, hi: Index) -> &[Entry] {
        debug_assert!(self.offset <= lo && lo <= hi);
        debug_assert!(hi <= self.offset + self.entries.len() as u64);
        &self.entries[(lo - self.offset) as usize..(hi - self.offset) as usize]
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn ents(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
        range
            .map(|i| Entry::new(Term(term), Index(i), Bytes::new()))
            .collect()
    }

    #[test]
    fn append_then_stable_drops_the_persisted_prefix() {
        let mut u = Unstable::new(Index(1), Some(Term(0)));
        u.truncate_and_append(ents(1..=5, 1));
        u.accept_in_progress();
        u.stable_to(LogId::new(Term(1), Index(3)));
        assert_eq!(u.offset, Index(4));
        assert_eq!(u.entries.len(), 2);
        assert_eq!(u.maybe_last_index(), Some(Index(5)));
    }

    #[test]
    fn stable_to_is_ignored_when_the_entry_was_replaced() {
        let mut u = Unstable::new(Index(1), Some(Term(0)));
        u.truncate_and_append(ents(1..=3, 1));
        u.accept_in_progress();
        u.truncate_and_append(ents(2..=2, 2));
        u.stable_to(LogId::new(Term(1), Index(3)));
        assert_eq!(u.offset, Index(1), "index 3 at term 1 no longer exists");
        assert_eq!(
            u.next_entries().len(),
            1,
            "the replacement still needs persisting"
        );
    }

    #[test]
    fn truncation_before_offset_replaces_everything() {
        let mut u = Unstable::new(Index(5), None);
        u.truncate_and_append(ents(5..=6, 1));
        u.truncate_and_append(ents(3..=4, 2));
        assert_eq!(u.offset, Index(3));
        assert_eq!(u.maybe_term(Index(4)), Some(Term(2)));
        assert_eq!(u.maybe_term(Index(5)), None);
    }
}
