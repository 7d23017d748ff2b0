//! A simple majority of a set of voters (paper §5.2, §5.3).

use std::collections::BTreeSet;

use super::{AckedIndexer, VoteResult};
use crate::types::{Index, NodeId};

/// Voters of which more than half must agree.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct MajorityConfig {
    voters: BTreeSet<NodeId>,
}

/// Up to this many voters, `committed_index` sorts on the stack.
const STACK_VOTERS: usize = 11;

impl MajorityConfig {
    /// A majority over `voters`.
    pub fn new(voters: BTreeSet<NodeId>) -> MajorityConfig {
        MajorityConfig { voters }
    }

    /// The voters, in id order.
    pub fn voters(&self) -> &BTreeSet<NodeId> {
        &self.voters
    }

    /// True when `id` votes here.
    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    /// True when there are no voters.
    pub fn is_empty(&self) -> bool {
        self.voters.is_empty()
    }

    /// The number of voters.
    pub fn len(&self) -> usize {
        self.voters.len()
    }

    /// The largest index acknowledged by a majority. Unknown voters count as
    /// index 0. An empty configuration returns `Index(u64::MAX)`, so that
    /// in a joint configuration an empty half never holds the other back.
    pub fn committed_index(&self, acked: &impl AckedIndexer) -> Index {
        let n = self.voters.len();
        if n == 0 {
            return Index(u64::MAX);
        }
        if n == 1 {
            // A single voter is its own majority.
            let only = *self.voters.first().expect("one voter");
            return acked.acked_index(only).unwrap_or(Index::ZERO);
        }
        let fill = |buf: &mut [u64]| {
            for (slot, id) in buf.iter_mut().zip(&self.voters) {
                *slot = acked.acked_index(*id).map_or(0, Index::get);
            }
        };
        // Sorted descending, the (n/2)-th value (0-based) is held by
        // n/2 + 1 voters: a majority.
        let pick = |buf: &mut [u64]| {
            if buf.len() <= STACK_VOTERS {
                // Insertion sort, descending: cheapest for a handful.
                for i in 1..buf.len() {
                    let mut j = i;
                    while j > 0 && buf[j - 1] < buf[j] {
                        buf.swap(j - 1, j);
                        j -= 1;
                    }
                }
            } else {
                buf.sort_unstable_by(|a, b| b.cmp(a));
            }
            Index(buf[n / 2])
        };
        if n <= STACK_VOTERS {
            let mut buf = [0u64; STACK_VOTERS];
            fill(&mut buf[..n]);
            pick(&mut buf[..n])
        } else {
            let mut buf = vec![0u64; n];
            fill(&mut buf);
            pick(&mut buf)
        }
    }

    /// Counts `votes` (`Some(true)` granted, `Some(false)` rejected, `None`
    /// missing). An empty configuration wins, for joint configurations.
    pub fn vote_result(&self, votes: impl Fn(NodeId) -> Option<bool>) -> VoteResult {
        if self.voters.is_empty() {
            return VoteResult::Won;
        }
        let (mut granted, mut missing) = (0usize, 0usize);
        for id in &self.voters {
            match votes(*id) {
                Some(true) => granted += 1,
                Some(false) => {}
                None => missing += 1,
            }
        }
        let quorum = self.voters.len() / 2 + 1;
        if granted >= quorum {
            VoteResult::Won
        } else if granted + missing >= quorum {
            VoteResult::Pending
        } else {
            VoteResult::Lost
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn ids(raw: &[u64]) -> BTreeSet<NodeId> {
        raw.iter()
            .map(|&r| NodeId::new(r).expect("non-zero"))
            .collect()
    }

    fn acked(pairs: &[(u64, u64)]) -> impl Fn(NodeId) -> Option<Index> {
        let map: BTreeMap<u64, u64> = pairs.iter().copied().collect();
        move |id: NodeId| map.get(&id.get()).map(|&i| Index(i))
    }

    #[test]
    fn empty_majority_commits_everything_and_wins_every_vote() {
        let c = MajorityConfig::default();
        assert_eq!(c.committed_index(&acked(&[])), Index(u64::MAX));
        assert_eq!(c.vote_result(|_| None), VoteResult::Won);
    }

    #[test]
    fn single_voter_commits_its_own_index() {
        let c = MajorityConfig::new(ids(&[1]));
        assert_eq!(c.committed_index(&acked(&[(1, 7)])), Index(7));
    }

    #[test]
    fn three_voters_commit_the_median() {
        let c = MajorityConfig::new(ids(&[1, 2, 3]));
        assert_eq!(
            c.committed_index(&acked(&[(1, 9), (2, 5), (3, 2)])),
            Index(5)
        );
        assert_eq!(c.committed_index(&acked(&[(1, 9)])), Index(0));
        assert_eq!(c.committed_index(&acked(&[(1, 9), (3, 4)])), Index(4));
    }

    #[test]
    fn four_voters_need_three_acks() {
        let c = MajorityConfig::new(ids(&[1, 2, 3, 4]));
        assert_eq!(
            c.committed_index(&acked(&[(1, 9), (2, 8), (3, 2), (4, 1)])),
            Index(2)
        );
    }

    #[test]
    fn votes_are_pending_until_a_majority_decides() {
        let c = MajorityConfig::new(ids(&[1, 2, 3]));
        let v = |m: &'static [(u64, bool)]| {
            move |id: NodeId| m.iter().find(|(i, _)| *i == id.get()).map(|(_, g)| *g)
        };
        assert_eq!(c.vote_result(v(&[(1, true)])), VoteResult::Pending);
        assert_eq!(c.vote_result(v(&[(1, true), (2, true)])), VoteResult::Won);
        assert_eq!(
            c.vote_result(v(&[(1, true), (2, false)])),
            VoteResult::Pending
        );
        assert_eq!(
            c.vote_result(v(&[(1, true), (2, false), (3, false)])),
            VoteResult::Lost
        );
    }

    /// The obvious definition: the largest index `i` such that more than half
    /// of the voters acknowledged at least `i`.
    fn naive_committed(voters: &[u64], acks: &[(u64, u64)]) -> u64 {
        let ack = |v: u64| acks.iter().find(|(id, _)| *id == v).map_or(0, |(_, i)| *i);
        let candidates: Vec<u64> = voters.iter().map(|&v| ack(v)).chain([0]).collect();
        candidates
            .into_iter()
            .filter(|&i| voters.iter().filter(|&&v| ack(v) >= i).count() * 2 > voters.len())
            .max()
            .unwrap_or(0)
    }

    proptest! {
        #[test]
        fn committed_index_matches_naive_definition(
            voters in proptest::collection::btree_set(1u64..20, 1..14),
            acks in proptest::collection::vec((1u64..20, 0u64..100), 0..20),
        ) {
            let voter_list: Vec<u64> = voters.iter().copied().collect();
            let mut dedup: BTreeMap<u64, u64> = BTreeMap::new();
            for (id, i) in acks { dedup.insert(id, i); }
            let pairs: Vec<(u64, u64)> = dedup.into_iter().collect();
            let c = MajorityConfig::new(ids(&voter_list));
            prop_assert_eq!(
                c.committed_index(&acked(&pairs)).get(),
                naive_committed(&voter_list, &pairs)
            );
        }
    }
}
