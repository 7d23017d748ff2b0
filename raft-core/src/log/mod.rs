//! The Raft log as the protocol sees it: durable entries in [`Storage`]
//! followed by an unstable tail, with the commit and apply cursors.

mod unstable;

use crate::storage::{Storage, StorageError, limit_size};
use crate::types::{Entry, Index, LogId, Snapshot, Term};

pub(crate) use unstable::Unstable;

/// The log of one node.
pub(crate) struct RaftLog<S> {
    storage: S,
    unstable: Unstable,
    /// The highest index known committed.
    /// Invariant: `applied <= applying <= committed <= last_index()`.
    committed: Index,
    /// The highest index handed to the application for applying.
    applying: Index,
    /// The highest index the application reported applied.
    applied: Index,
    /// Bytes of committed entries handed out per `Ready`.
    max_applying_size: u64,
}

impl<S: Storage> RaftLog<S> {
    /// A log over `storage`, with nothing unstable.
    pub(crate) fn new(storage: S, max_applying_size: u64) -> Result<RaftLog<S>, StorageError> {
        let first = storage.first_index()?;
        let last = storage.last_index()?;
        let last_term = storage.term(last).ok();
        Ok(RaftLog {
            storage,
            unstable: Unstable::new(last.next(), last_term),
            committed: first.prev(),
            applying: first.prev(),
            applied: first.prev(),
            max_applying_size,
        })
    }

    /// The storage under the log.
    pub(crate) fn storage(&self) -> &S {
        &self.storage
    }

    /// The highest index known committed.
    pub(crate) fn committed(&self) -> Index {
        self.committed
    }

    /// The highest index handed to the application for applying.
    pub(crate) fn applying(&self) -> Index {
        self.applying
    }

    /// The highest index the application reported applied.
    pub(crate) fn applied(&self) -> Index {
        self.applied
    }

    /// True if entries or a snapshot wait to be handed out for persisting.
    pub(crate) fn has_unpersisted(&self) -> bool {
        !self.unstable.next_entries().is_empty() || self.unstable.has_next_snapshot()
    }

    /// The entries and the snapshot to hand out for persisting next, not
    /// yet marked handed out (see [`RaftLog::accept_in_progress`]).
    pub(crate) fn unpersisted(&self) -> (Vec<Entry>, Option<Snapshot>) {
        let entries = self.unstable.next_entries().to_vec();
        let snapshot = self
            .unstable
            .snapshot()
            .filter(|_| self.unstable.has_next_snapshot())
            .cloned();
        (entries, snapshot)
    }

    /// What [`RaftLog::unpersisted`] returned was handed out for persisting.
    pub(crate) fn accept_in_progress(&mut self) {
        self.unstable.accept_in_progress();
    }

    /// True while a received snapshot is not yet persisted.
    pub(crate) fn has_unstable_snapshot(&self) -> bool {
        self.unstable.snapshot().is_some()
    }

    pub(crate) fn first_index(&self) -> Result<Index, StorageError> {
        match self.unstable.maybe_first_index() {
            Some(i) => Ok(i),
            None => self.storage.first_index(),
        }
    }

    /// The last index. Answered without reading storage: the stable log
    /// ends right before the unstable offset (see `Unstable::last_index`).
    pub(crate) fn last_index(&self) -> Result<Index, StorageError> {
        let last = self.unstable.last_index();
        debug_assert!(
            self.unstable.maybe_last_index().is_some()
                || self.storage.last_index().is_err()
                || self.storage.last_index().ok() == Some(last),
            "storage last index {:?} differs from the log's {last}",
            self.storage.last_index().ok()
        );
        Ok(last)
    }

    pub(crate) fn last_log_id(&self) -> Result<LogId, StorageError> {
        let last = self.last_index()?;
        Ok(LogId::new(self.term(last)?, last))
    }

    /// The term at `i`, for `i` in `[first_index - 1, last_index]`.
    pub(crate) fn term(&self, i: Index) -> Result<Term, StorageError> {
        if let Some(t) = self.unstable.maybe_term(i) {
            debug_assert!(
                i >= self.unstable.offset()
                    || self.unstable.snapshot().is_some()
                    || self.storage.term(i).is_err()
                    || self.storage.term(i).ok() == Some(t),
                "storage term at {i} {:?} differs from the cached {t}",
                self.storage.term(i).ok()
            );
            return Ok(t);
        }
        if i < self.unstable.offset() {
            // Ask storage only for what it can hold; past the unstable
            // offset the log ends.
            return self.storage.term(i);
        }
        Err(StorageError::Unavailable)
    }

    /// `term(i)`, with "not in the log" folded into `None`.
    pub(crate) fn term_if_present(&self, i: Index) -> Result<Option<Term>, StorageError> {
        match self.term(i) {
            Ok(t) => Ok(Some(t)),
            Err(StorageError::Compacted | StorageError::Unavailable) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// True when the log holds `id` (Log Matching, paper §5.3).
    pub(crate) fn match_term(&self, id: LogId) -> Result<bool, StorageError> {
        Ok(self.term_if_present(id.index)? == Some(id.term))
    }

    /// True when a candidate whose log ends at `last` is at least as
    /// up-to-date as this log (paper §5.4.1).
    pub(crate) fn is_up_to_date(&self, last: LogId) -> Result<bool, StorageError> {
        Ok(last >= self.last_log_id()?)
    }

    /// The index of the first entry of `entries` that this log does not hold
    /// (a conflicting term, or past the end); `None` if it holds them all.
    fn find_conflict(&self, entries: &[Entry]) -> Result<Option<Index>, StorageError> {
        for e in entries {
            if !self.match_term(e.log_id())? {
                return Ok(Some(e.index));
            }
        }
        Ok(None)
    }

    /// The largest index `<= index` whose term is `<= term`, with that term
    /// (fast backtracking, used on both sides of a rejected append). When
    /// the search reaches the compacted prefix it stops there with term 0.
    pub(crate) fn find_conflict_by_term(
        &self,
        index: Index,
        term: Term,
    ) -> Result<LogId, StorageError> {
        let mut i = index;
        loop {
            match self.term_if_present(i)? {
                Some(t) if t > term && i > Index::ZERO => i = i.prev(),
                Some(t) => return Ok(LogId::new(t, i)),
                None => return Ok(LogId::new(Term::ZERO, i)),
            }
        }
    }

    /// The follower side of AppendEntries (paper §5.3): if the log holds
    /// `prev`, append `entries` (truncating a conflicting suffix), advance
    /// the commit index and return the last new index.
    ///
    /// Returns `Ok(Err(conflict))` when a conflict lies at or below the commit
    /// index: a leader asking to rewrite committed history is ignored.
    pub(crate) fn maybe_append(
        &mut self,
        prev: LogId,
        commit: Index,
        mut entries: Vec<Entry>,
    ) -> Result<Option<Result<Index, Index>>, StorageError> {
        if !self.match_term(prev)? {
            return Ok(None);
        }
        let last_new = prev.index + entries.len() as u64;
        if let Some(conflict) = self.find_conflict(&entries)? {
            if conflict <= self.committed {
                return Ok(Some(Err(conflict)));
            }
            let from = (conflict - prev.index.next()) as usize;
            // The message is consumed: move its entries instead of cloning.
            entries.drain(..from);
            self.append(entries);
        }
        self.commit_to(commit.min(last_new));
        Ok(Some(Ok(last_new)))
    }

    /// Appends entries after the last index (or truncating, for a leader's
    /// own log never). Returns the new last index. The entries are moved,
    /// not cloned.
    pub(crate) fn append(&mut self, entries: Vec<Entry>) {
        debug_assert!(entries.first().is_none_or(|e| e.index > self.committed));
        self.unstable.truncate_and_append(entries);
    }

    /// Appends one entry by value (moved, not cloned).
    pub(crate) fn append_one(&mut self, entry: Entry) {
        debug_assert!(entry.index > self.committed);
        self.unstable.truncate_and_push(entry);
    }

    /// Raises the commit index. Never lowers it.
    pub(crate) fn commit_to(&mut self, index: Index) {
        if index > self.committed {
            debug_assert!(
                self.last_index().is_ok_and(|l| index <= l),
                "commit {index} beyond the last index"
            );
            self.committed = index;
        }
    }

    /// Commits `id.index` if the entry there has term `id.term`: a leader
    /// only counts replicas of entries from its own term (§5.4.2).
    pub(crate) fn maybe_commit(&mut self, id: LogId) -> Result<bool, StorageError> {
        if id.index > self.committed && self.term_if_present(id.index)? == Some(id.term) {
            self.commit_to(id.index);
            return Ok(true);
        }
        Ok(false)
    }

    /// Entries `[lo, hi)` whose total size stays within `max_bytes` (at
    /// least one).
    pub(crate) fn slice(
        &self,
        lo: Index,
        hi: Index,
        max_bytes: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        if lo >= hi {
            return Ok(Vec::new());
        }
        let offset = self.unstable.offset();
        // The first index is at most the unstable offset: only a range
        // reaching below it needs the (storage) first index.
        if lo < offset && lo < self.first_index()? {
            return Err(StorageError::Compacted);
        }
        if hi > self.last_index()?.next() {
            return Err(StorageError::Unavailable);
        }
        let mut out = if lo < offset {
            let stored = self.storage.entries(lo, hi.min(offset), max_bytes)?;
            // Storage stopped early because of the size limit: done.
            if (stored.len() as u64) < hi.min(offset) - lo {
                return Ok(stored);
            }
            stored
        } else {
            Vec::new()
        };
        if hi > offset {
            let tail = self.unstable.slice(lo.max(offset), hi);
            if out.is_empty() {
                return Ok(tail[..limit_size(tail, max_bytes)].to_vec());
            }
            out.extend_from_slice(tail);
            let keep = limit_size(&out, max_bytes);
            out.truncate(keep);
        }
        Ok(out)
    }

    /// The highest index that may be handed out for applying. With
    /// `allow_unstable` (synchronous writes: the application persists a
    /// Ready before applying it) that is the commit index; otherwise only
    /// entries known durable locally may be applied.
    fn apply_limit(&self, allow_unstable: bool) -> Index {
        if allow_unstable {
            self.committed
        } else {
            self.committed.min(self.unstable.offset().prev())
        }
    }

    /// True when committed entries wait to be handed to the application.
    pub(crate) fn has_next_committed_entries(&self, allow_unstable: bool) -> bool {
        // While a snapshot is pending, the entries it covers are not in the
        // log; applying resumes after it.
        self.applying < self.apply_limit(allow_unstable) && self.unstable.snapshot().is_none()
    }

    /// The next batch of committed entries to apply, paginated.
    pub(crate) fn next_committed_entries(
        &self,
        allow_unstable: bool,
    ) -> Result<Vec<Entry>, StorageError> {
        if !self.has_next_committed_entries(allow_unstable) {
            return Ok(Vec::new());
        }
        let hi = self.apply_limit(allow_unstable).next();
        self.slice(self.applying.next(), hi, self.max_applying_size)
    }

    /// `next_committed_entries(true)` followed by `stable_to(id)`. When the
    /// committed entries are exactly the persisted prefix of the unstable
    /// buffer that `stable_to` drops (a single node committing what it just
    /// persisted), they are moved out instead of cloned and dropped.
    #[inline]
    pub(crate) fn take_committed_and_stable_to(
        &mut self,
        id: LogId,
    ) -> Result<Vec<Entry>, StorageError> {
        if self.has_next_committed_entries(true)
            && self.applying.next() == self.unstable.offset()
            && self.committed == id.index
            && self.unstable.maybe_term(id.index) == Some(id.term)
        {
            let n = (id.index.next() - self.unstable.offset()) as usize;
            if limit_size(&self.unstable.entries()[..n], self.max_applying_size) == n {
                return Ok(self.unstable.take_stable_prefix(id));
            }
        }
        let entries = self.next_committed_entries(true);
        self.stable_to(id);
        entries
    }

    /// Records that entries up to `index` were handed out for applying.
    pub(crate) fn accept_applying(&mut self, index: Index) {
        debug_assert!(index <= self.committed);
        self.applying = self.applying.max(index);
    }

    /// Records that the application applied up to `index`.
    pub(crate) fn applied_to(&mut self, index: Index) {
        debug_assert!(index <= self.committed, "applied {index} beyond committed");
        self.applied = self.applied.max(index);
        self.applying = self.applying.max(self.applied);
    }

    /// The application persisted the entries and snapshot handed out.
    pub(crate) fn stable_to(&mut self, id: LogId) {
        self.unstable.stable_to(id);
    }

    /// A snapshot from the leader replaces the log. It is applied, and
    /// `applied` moves, once the application persisted it
    /// (`snapshot_persisted`).
    pub(crate) fn restore(&mut self, snapshot: Snapshot) {
        self.committed = snapshot.metadata.index;
        self.unstable.restore(snapshot);
    }

    /// The application persisted and applied the snapshot at `index`.
    pub(crate) fn snapshot_persisted(&mut self, index: Index) {
        self.unstable.stable_snapshot_to(index);
        self.applied_to(index);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::storage::MemoryStorage;

    fn ents(ids: &[(u64, u64)]) -> Vec<Entry> {
        ids.iter()
            .map(|&(t, i)| Entry::new(Term(t), Index(i), Bytes::new()))
            .collect()
    }

    fn log_with(stored: &[(u64, u64)], unstable: &[(u64, u64)]) -> RaftLog<MemoryStorage> {
        let s = MemoryStorage::new();
        s.append(&ents(stored)).expect("append");
        let mut log = RaftLog::new(s, u64::MAX).expect("log");
        log.append(ents(unstable));
        log
    }

    #[test]
    fn terms_come_from_storage_then_unstable() {
        let log = log_with(&[(1, 1), (1, 2)], &[(2, 3)]);
        assert_eq!(log.term(Index(0)).ok(), Some(Term(0)));
        assert_eq!(log.term(Index(2)).ok(), Some(Term(1)));
        assert_eq!(log.term(Index(3)).ok(), Some(Term(2)));
        assert!(matches!(log.term(Index(4)), Err(StorageError::Unavailable)));
        assert_eq!(log.last_log_id().ok(), Some(LogId::new(Term(2), Index(3))));
    }

    #[test]
    fn slice_spans_storage_and_unstable() {
        let log = log_with(&[(1, 1), (1, 2)], &[(2, 3), (2, 4)]);
        let got = log.slice(Index(2), Index(5), u64::MAX).expect("slice");
        assert_eq!(
            got.iter().map(|e| e.index.get()).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        let one = log.slice(Index(2), Index(5), 1).expect("slice");
        assert_eq!(one.len(), 1, "size limit keeps at least one entry");
    }

    #[test]
    fn up_to_date_compares_last_term_then_index() {
        let log = log_with(&[(1, 1), (2, 2)], &[]);
        assert!(
            log.is_up_to_date(LogId::new(Term(3), Index(1)))
                .expect("ok")
        );
        assert!(
            log.is_up_to_date(LogId::new(Term(2), Index(2)))
                .expect("ok")
        );
        assert!(
            !log.is_up_to_date(LogId::new(Term(2), Index(1)))
                .expect("ok")
        );
        assert!(
            !log.is_up_to_date(LogId::new(Term(1), Index(9)))
                .expect("ok")
        );
    }

    #[test]
    fn find_conflict_by_term_skips_entries_of_higher_terms() {
        let log = log_with(&[(1, 1), (1, 2), (4, 3), (4, 4), (5, 5)], &[]);
        assert_eq!(
            log.find_conflict_by_term(Index(5), Term(3)).ok(),
            Some(LogId::new(Term(1), Index(2)))
        );
        assert_eq!(
            log.find_conflict_by_term(Index(5), Term(4)).ok(),
            Some(LogId::new(Term(4), Index(4)))
        );
        assert_eq!(
            log.find_conflict_by_term(Index(5), Term(0)).ok(),
            Some(LogId::new(Term(0), Index(0)))
        );
    }

    #[test]
    fn maybe_append_truncates_a_conflicting_suffix() {
        let mut log = log_with(&[(1, 1), (1, 2), (1, 3)], &[]);
        let r = log
            .maybe_append(LogId::new(Term(1), Index(1)), Index(2), ents(&[(2, 2)]))
            .expect("ok");
        assert_eq!(r, Some(Ok(Index(2))));
        assert_eq!(log.last_log_id().ok(), Some(LogId::new(Term(2), Index(2))));
        assert_eq!(log.committed, Index(2));
    }

    #[test]
    fn maybe_append_refuses_a_mismatched_prev() {
        let mut log = log_with(&[(1, 1)], &[]);
        let r = log
            .maybe_append(LogId::new(Term(2), Index(1)), Index(1), Vec::new())
            .expect("ok");
        assert_eq!(r, None);
    }

    #[test]
    fn maybe_append_never_rewrites_committed_entries() {
        let mut log = log_with(&[(1, 1), (1, 2)], &[]);
        log.commit_to(Index(2));
        let r = log
            .maybe_append(LogId::new(Term(1), Index(1)), Index(2), ents(&[(3, 2)]))
            .expect("ok");
        assert_eq!(r, Some(Err(Index(2))));
        assert_eq!(log.term(Index(2)).ok(), Some(Term(1)));
    }

    #[test]
    fn committed_persisted_prefix_is_moved_out_else_sliced() {
        // Exactly the persisted prefix committed: moved out of the buffer.
        let mut log = log_with(&[(1, 1)], &[(1, 2), (1, 3)]);
        log.applied_to(Index(0));
        log.commit_to(Index(3));
        log.accept_applying(Index(1));
        let got = log
            .take_committed_and_stable_to(LogId::new(Term(1), Index(3)))
            .expect("ok");
        assert_eq!(got, ents(&[(1, 2), (1, 3)]));
        assert_eq!(log.unstable.offset(), Index(4));
        assert!(log.unstable.entries().is_empty());
        assert_eq!(log.term(Index(3)).ok(), Some(Term(1)));

        // Committed only part of it: sliced, then the prefix is dropped.
        let mut log = log_with(&[(1, 1)], &[(1, 2), (1, 3)]);
        log.commit_to(Index(2));
        log.accept_applying(Index(1));
        let got = log
            .take_committed_and_stable_to(LogId::new(Term(1), Index(3)))
            .expect("ok");
        assert_eq!(got, ents(&[(1, 2)]));
        assert_eq!(log.unstable.offset(), Index(4));
    }

    #[test]
    fn commit_index_only_moves_forward() {
        let mut log = log_with(&[(1, 1), (1, 2)], &[]);
        log.commit_to(Index(2));
        log.commit_to(Index(1));
        assert_eq!(log.committed, Index(2));
    }
}
