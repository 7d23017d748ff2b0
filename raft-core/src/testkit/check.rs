//! Safety checkers for Raft histories (paper §5.2 Figure 3 properties, plus
//! linearizable reads). They consume observations, so they run against the
//! simulator's clusters or against hand-built histories alike.

use std::collections::BTreeMap;
use std::fmt;

use crate::types::{Index, NodeId, Term};

/// Which property a history broke.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ViolationKind {
    /// Two leaders in one term (Election Safety).
    ElectionSafety,
    /// A leader removed or rewrote an entry of its own log (Leader
    /// Append-Only).
    LeaderAppendOnly,
    /// Two logs hold an entry with the same index and term but different
    /// contents or predecessors (Log Matching).
    LogMatching,
    /// A committed entry is missing from a new leader's log or from the final
    /// state (Leader Completeness; no committed entry lost across crashes).
    LostCommittedEntry,
    /// Two nodes applied different entries at one index (State Machine
    /// Safety).
    StateMachineSafety,
    /// A read returned an index older than a write acknowledged before the
    /// read began.
    StaleRead,
    /// After faults healed, the cluster did not make progress in time.
    Liveness,
    /// A node returned an error that a correct node never returns.
    NodeError,
    /// A witness campaigned or led, or was sent an entry payload or
    /// snapshot data.
    Witness,
}

/// A broken property, with what showed it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Finding {
    /// The property.
    pub kind: ViolationKind,
    /// The evidence.
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)
    }
}

fn finding(kind: ViolationKind, detail: String) -> Result<(), Finding> {
    Err(Finding { kind, detail })
}

/// A short fingerprint of an entry's kind and payload.
pub type Digest = u64;

/// Fingerprints payload bytes (FNV-1a; collisions only weaken a check).
pub fn digest(kind: u8, data: &[u8]) -> Digest {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(kind);
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Observations of a cluster's history, checked as they arrive.
#[derive(Debug, Default)]
pub struct SafetyChecker {
    /// Term -> the node that led it.
    leaders: BTreeMap<Term, NodeId>,
    /// (index, term) -> (term of the previous entry, digest).
    entries: BTreeMap<(Index, Term), (Term, Digest)>,
    /// Index -> (term, digest) of the entry applied there.
    applied: BTreeMap<Index, (Term, Digest)>,
    /// Highest index applied anywhere: every write up to it was
    /// acknowledged to someone.
    max_applied: Index,
    /// Open reads: context -> the minimum index an answer must have.
    reads: BTreeMap<u64, Index>,
    /// The last log end seen for each (leader, term).
    leader_logs: BTreeMap<NodeId, (Term, Index, Term)>,
    /// Entries seen only as metadata (in a witness's log): (index, term)
    /// -> term of the previous entry.
    metadata: BTreeMap<(Index, Term), Term>,
    /// Index -> term of the entry a witness applied there.
    metadata_applied: BTreeMap<Index, Term>,
}

impl SafetyChecker {
    /// An empty history.
    pub fn new() -> SafetyChecker {
        SafetyChecker::default()
    }

    /// `node` is leader in `term`.
    ///
    /// # Errors
    /// [`ViolationKind::ElectionSafety`] if another node led `term`.
    pub fn leader(&mut self, node: NodeId, term: Term) -> Result<(), Finding> {
        match self.leaders.insert(term, node) {
            Some(other) if other != node => finding(
                ViolationKind::ElectionSafety,
                format!("nodes {other} and {node} both led term {term}"),
            ),
            _ => Ok(()),
        }
    }

    /// The leader `node` in `term` has a log ending at `last` with term
    /// `last_term`; `term_at` reads its log.
    ///
    /// # Errors
    /// [`ViolationKind::LeaderAppendOnly`] if the log shrank or the previous
    /// end was rewritten since the last observation in the same term.
    pub fn leader_log(
        &mut self,
        node: NodeId,
        term: Term,
        last: Index,
        term_at: impl Fn(Index) -> Option<Term>,
    ) -> Result<(), Finding> {
        if let Some(&(t, prev_last, prev_term)) = self.leader_logs.get(&node)
            && t == term
        {
            if last < prev_last {
                return finding(
                    ViolationKind::LeaderAppendOnly,
                    format!("leader {node} (term {term}) log shrank from {prev_last} to {last}"),
                );
            }
            if let Some(now) = term_at(prev_last)
                && now != prev_term
            {
                return finding(
                    ViolationKind::LeaderAppendOnly,
                    format!(
                        "leader {node} (term {term}) rewrote index {prev_last}: term {prev_term} -> {now}"
                    ),
                );
            }
        }
        let last_term = term_at(last).unwrap_or(Term::ZERO);
        self.leader_logs.insert(node, (term, last, last_term));
        Ok(())
    }

    /// `node` persisted the entry `(index, term)` whose predecessor has
    /// `prev_term`.
    ///
    /// # Errors
    /// [`ViolationKind::LogMatching`] if another log holds the same
    /// `(index, term)` with a different predecessor or payload.
    pub fn log_entry(
        &mut self,
        node: NodeId,
        index: Index,
        term: Term,
        prev_term: Term,
        digest: Digest,
    ) -> Result<(), Finding> {
        self.check_metadata(node, index, term, prev_term)?;
        match self.entries.get(&(index, term)) {
            Some(&(p, d)) if p != prev_term || d != digest => finding(
                ViolationKind::LogMatching,
                format!(
                    "node {node} holds {term}/{index} after term {prev_term} with digest {digest:x}; \
                     another log holds it after term {p} with digest {d:x}"
                ),
            ),
            Some(_) => Ok(()),
            None => {
                self.entries.insert((index, term), (prev_term, digest));
                Ok(())
            }
        }
    }

    /// `node`, a witness, persisted the metadata of entry `(index, term)`,
    /// whose predecessor has `prev_term` (a witness holds no payloads, so
    /// only index, term and predecessor are compared).
    ///
    /// # Errors
    /// [`ViolationKind::LogMatching`] if another log holds the same
    /// `(index, term)` with a different predecessor.
    pub fn metadata_entry(
        &mut self,
        node: NodeId,
        index: Index,
        term: Term,
        prev_term: Term,
    ) -> Result<(), Finding> {
        self.check_metadata(node, index, term, prev_term)?;
        if let Some(&(p, _)) = self.entries.get(&(index, term))
            && p != prev_term
        {
            return finding(
                ViolationKind::LogMatching,
                format!(
                    "witness {node} holds {term}/{index} after term {prev_term}; another log holds it after term {p}"
                ),
            );
        }
        self.metadata.insert((index, term), prev_term);
        Ok(())
    }

    fn check_metadata(
        &self,
        node: NodeId,
        index: Index,
        term: Term,
        prev_term: Term,
    ) -> Result<(), Finding> {
        match self.metadata.get(&(index, term)) {
            Some(&p) if p != prev_term => finding(
                ViolationKind::LogMatching,
                format!(
                    "node {node} holds {term}/{index} after term {prev_term}; a witness holds it after term {p}"
                ),
            ),
            _ => Ok(()),
        }
    }

    /// `node`, a witness, applied the entry `(index, term)` (its metadata:
    /// a witness has no state machine, but it applies conf changes).
    ///
    /// # Errors
    /// [`ViolationKind::StateMachineSafety`] if another node applied an
    /// entry of another term at `index`.
    pub fn metadata_applied(
        &mut self,
        node: NodeId,
        index: Index,
        term: Term,
    ) -> Result<(), Finding> {
        let other = self
            .applied
            .get(&index)
            .map(|(t, _)| *t)
            .or_else(|| self.metadata_applied.get(&index).copied());
        if let Some(t) = other
            && t != term
        {
            return finding(
                ViolationKind::StateMachineSafety,
                format!("witness {node} applied {term}/{index}; another applied {t}/{index}"),
            );
        }
        self.metadata_applied.insert(index, term);
        Ok(())
    }

    /// `node` applied the entry `(index, term)`.
    ///
    /// # Errors
    /// [`ViolationKind::StateMachineSafety`] if another node applied a
    /// different entry at `index`.
    pub fn applied(
        &mut self,
        node: NodeId,
        index: Index,
        term: Term,
        digest: Digest,
    ) -> Result<(), Finding> {
        self.max_applied = self.max_applied.max(index);
        if let Some(&t) = self.metadata_applied.get(&index)
            && t != term
        {
            return finding(
                ViolationKind::StateMachineSafety,
                format!("node {node} applied {term}/{index}; a witness applied {t}/{index}"),
            );
        }
        match self.applied.get(&index) {
            Some(&(t, d)) if t != term || d != digest => finding(
                ViolationKind::StateMachineSafety,
                format!(
                    "node {node} applied {term}/{index} ({digest:x}); another applied {t}/{index} ({d:x})"
                ),
            ),
            Some(_) => Ok(()),
            None => {
                self.applied.insert(index, (term, digest));
                Ok(())
            }
        }
    }

    /// The committed entry at `index`, if any node applied it.
    pub fn committed(&self, index: Index) -> Option<Term> {
        self.applied.get(&index).map(|(t, _)| *t)
    }

    /// The highest index any node applied.
    pub fn max_applied(&self) -> Index {
        self.max_applied
    }

    /// `node` just became leader; `term_at` reads its log and `first` is its
    /// first index (entries before it are covered by its snapshot).
    ///
    /// # Errors
    /// [`ViolationKind::LostCommittedEntry`] if it lacks a committed entry.
    pub fn new_leader_log(
        &self,
        node: NodeId,
        first: Index,
        term_at: impl Fn(Index) -> Option<Term>,
    ) -> Result<(), Finding> {
        for (&index, &(term, _)) in self.applied.range(first..) {
            if term_at(index) != Some(term) {
                return finding(
                    ViolationKind::LostCommittedEntry,
                    format!("new leader {node} lacks committed entry {term}/{index}"),
                );
            }
        }
        Ok(())
    }

    /// A read with `context` starts now: it must observe every write
    /// applied anywhere so far.
    pub fn read_started(&mut self, context: u64) {
        self.reads.insert(context, self.max_applied);
    }

    /// The read `context` was answered with `index`.
    ///
    /// # Errors
    /// [`ViolationKind::StaleRead`] if `index` misses an acknowledged write.
    pub fn read_answered(&mut self, context: u64, index: Index) -> Result<(), Finding> {
        let Some(min) = self.reads.remove(&context) else {
            return Ok(());
        };
        if index < min {
            return finding(
                ViolationKind::StaleRead,
                format!(
                    "read {context} answered at index {index}, but index {min} was acknowledged before it began"
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> NodeId {
        NodeId::new(n).expect("non-zero")
    }

    #[test]
    fn two_leaders_in_one_term_are_caught() {
        let mut c = SafetyChecker::new();
        c.leader(id(1), Term(3)).expect("first");
        c.leader(id(1), Term(3)).expect("same node again");
        c.leader(id(2), Term(4)).expect("other term");
        let f = c.leader(id(2), Term(3)).expect_err("second leader");
        assert_eq!(f.kind, ViolationKind::ElectionSafety);
    }

    #[test]
    fn divergent_applied_entries_are_caught() {
        let mut c = SafetyChecker::new();
        c.applied(id(1), Index(5), Term(2), digest(0, b"a"))
            .expect("first");
        c.applied(id(2), Index(5), Term(2), digest(0, b"a"))
            .expect("same");
        let f = c
            .applied(id(3), Index(5), Term(2), digest(0, b"b"))
            .expect_err("divergent");
        assert_eq!(f.kind, ViolationKind::StateMachineSafety);
    }

    #[test]
    fn a_new_leader_missing_a_committed_entry_is_caught() {
        let mut c = SafetyChecker::new();
        c.applied(id(1), Index(1), Term(1), 7).expect("apply");
        c.applied(id(1), Index(2), Term(1), 8).expect("apply");
        let log = |i: Index| match i.get() {
            1 => Some(Term(1)),
            2 => Some(Term(2)),
            _ => None,
        };
        let f = c
            .new_leader_log(id(2), Index(1), log)
            .expect_err("lost entry");
        assert_eq!(f.kind, ViolationKind::LostCommittedEntry);
        // A leader whose snapshot covers the entry is fine.
        c.new_leader_log(id(3), Index(3), |_| None)
            .expect("covered by snapshot");
    }

    #[test]
    fn a_stale_read_is_caught() {
        let mut c = SafetyChecker::new();
        c.applied(id(1), Index(9), Term(1), 1)
            .expect("write acknowledged");
        c.read_started(42);
        let f = c.read_answered(42, Index(8)).expect_err("stale");
        assert_eq!(f.kind, ViolationKind::StaleRead);
        c.read_started(43);
        c.read_answered(43, Index(9)).expect("fresh read");
    }

    #[test]
    fn log_matching_violation_is_caught() {
        let mut c = SafetyChecker::new();
        c.log_entry(id(1), Index(4), Term(2), Term(1), 5)
            .expect("first");
        c.log_entry(id(2), Index(4), Term(2), Term(1), 5)
            .expect("identical");
        let f = c
            .log_entry(id(3), Index(4), Term(2), Term(2), 5)
            .expect_err("different predecessor");
        assert_eq!(f.kind, ViolationKind::LogMatching);
    }

    #[test]
    fn leader_rewriting_its_log_is_caught() {
        let mut c = SafetyChecker::new();
        c.leader_log(id(1), Term(2), Index(5), |_| Some(Term(2)))
            .expect("first");
        let f = c
            .leader_log(id(1), Term(2), Index(4), |_| Some(Term(2)))
            .expect_err("shrank");
        assert_eq!(f.kind, ViolationKind::LeaderAppendOnly);
        let mut c = SafetyChecker::new();
        c.leader_log(id(1), Term(2), Index(5), |_| Some(Term(2)))
            .expect("first");
        let f = c.leader_log(id(1), Term(2), Index(6), |i| {
            Some(if i.get() == 5 { Term(1) } else { Term(2) })
        });
        assert_eq!(
            f.expect_err("rewritten").kind,
            ViolationKind::LeaderAppendOnly
        );
    }
}
