//! Joint consensus quorums (thesis §4.3): decisions need a majority of the
//! incoming *and* of the outgoing configuration.

use std::collections::BTreeSet;

use super::{AckedIndexer, MajorityConfig, VoteResult};
use crate::types::{Index, NodeId};

/// Two majorities that must both agree. Outside a joint change, `outgoing`
/// is empty and this behaves exactly like `incoming`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct JointConfig {
    /// The new (or only) configuration.
    pub incoming: MajorityConfig,
    /// The old configuration; empty unless joint.
    pub outgoing: MajorityConfig,
}

impl JointConfig {
    /// A non-joint configuration of `voters`.
    pub fn simple(voters: BTreeSet<NodeId>) -> JointConfig {
        JointConfig {
            incoming: MajorityConfig::new(voters),
            outgoing: MajorityConfig::default(),
        }
    }

    /// True when `id` votes in either half.
    pub fn contains(&self, id: NodeId) -> bool {
        self.incoming.contains(id) || self.outgoing.contains(id)
    }

    /// True during a joint change.
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Every voter of either half, once, in id order.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        let mut a = self.incoming.voters().iter().peekable();
        let mut b = self.outgoing.voters().iter().peekable();
        std::iter::from_fn(move || match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x == y => {
                b.next();
                a.next().copied()
            }
            (Some(x), Some(y)) if x < y => a.next().copied(),
            (Some(_), Some(_)) | (None, Some(_)) => b.next().copied(),
            (Some(_), None) => a.next().copied(),
            (None, None) => None,
        })
    }

    /// The largest index committed by both halves. With no voters at all the
    /// result is `Index(u64::MAX)`; callers never commit past their log.
    pub fn committed_index(&self, acked: &impl AckedIndexer) -> Index {
        self.incoming
            .committed_index(acked)
            .min(self.outgoing.committed_index(acked))
    }

    /// Won only if both halves won; lost if either lost.
    pub fn vote_result(&self, votes: impl Fn(NodeId) -> Option<bool> + Copy) -> VoteResult {
        let a = self.incoming.vote_result(votes);
        let b = self.outgoing.vote_result(votes);
        match (a, b) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(raw: &[u64]) -> BTreeSet<NodeId> {
        raw.iter()
            .map(|&r| NodeId::new(r).expect("non-zero"))
            .collect()
    }

    fn joint(inc: &[u64], out: &[u64]) -> JointConfig {
        JointConfig {
            incoming: MajorityConfig::new(ids(inc)),
            outgoing: MajorityConfig::new(ids(out)),
        }
    }

    #[test]
    fn non_joint_config_behaves_like_its_majority() {
        let j = joint(&[1, 2, 3], &[]);
        let acked = |id: NodeId| Some(Index(id.get() * 10));
        assert_eq!(j.committed_index(&acked), Index(20));
        assert!(!j.is_joint());
    }

    #[test]
    fn joint_commit_is_the_minimum_of_both_halves() {
        let j = joint(&[1, 2, 3], &[3, 4, 5]);
        let acked = |id: NodeId| Some(Index([0, 9, 9, 5, 1, 1][id.get() as usize]));
        // incoming {9,9,5} -> 9; outgoing {5,1,1} -> 1.
        assert_eq!(j.committed_index(&acked), Index(1));
    }

    #[test]
    fn joint_vote_needs_both_halves() {
        let j = joint(&[1, 2, 3], &[4, 5, 6]);
        let only_incoming = |id: NodeId| Some(id.get() <= 3);
        assert_eq!(j.vote_result(only_incoming), VoteResult::Lost);
        let both = |id: NodeId| Some(matches!(id.get(), 1 | 2 | 4 | 5));
        assert_eq!(j.vote_result(both), VoteResult::Won);
        let partial = |id: NodeId| if id.get() <= 2 { Some(true) } else { None };
        assert_eq!(j.vote_result(partial), VoteResult::Pending);
    }

    /// The definition: an index is committed if each half alone would
    /// commit it; a vote is won if each half alone wins it.
    fn naive_committed(voters: &BTreeSet<NodeId>, acked: &dyn Fn(NodeId) -> u64) -> u64 {
        if voters.is_empty() {
            return u64::MAX;
        }
        let mut best = 0;
        for v in voters {
            let i = acked(*v);
            if voters.iter().filter(|w| acked(**w) >= i).count() * 2 > voters.len() {
                best = best.max(i);
            }
        }
        best
    }

    proptest::proptest! {
        #[test]
        fn joint_results_match_the_naive_definition(
            inc in proptest::collection::btree_set(1u64..9, 0..6),
            out in proptest::collection::btree_set(1u64..9, 0..6),
            acks in proptest::collection::vec(0u64..20, 9),
            votes in proptest::collection::vec(proptest::option::of(proptest::bool::ANY), 9),
        ) {
            let to_ids = |s: &BTreeSet<u64>| -> BTreeSet<NodeId> { s.iter().map(|&r| NodeId::new(r).expect("id")).collect() };
            let (inc, out) = (to_ids(&inc), to_ids(&out));
            let j = JointConfig { incoming: MajorityConfig::new(inc.clone()), outgoing: MajorityConfig::new(out.clone()) };
            let ack = |id: NodeId| acks[id.get() as usize];
            let expected = naive_committed(&inc, &ack).min(naive_committed(&out, &ack));
            proptest::prop_assert_eq!(j.committed_index(&|id: NodeId| Some(Index(ack(id)))).get(), expected);
            let vote = |id: NodeId| votes[id.get() as usize];
            let half = |s: &BTreeSet<NodeId>| -> VoteResult {
                let yes = s.iter().filter(|v| vote(**v) == Some(true)).count();
                let maybe = s.iter().filter(|v| vote(**v).is_none()).count();
                if s.is_empty() || yes * 2 > s.len() { VoteResult::Won }
                else if (yes + maybe) * 2 > s.len() { VoteResult::Pending }
                else { VoteResult::Lost }
            };
            let expected = match (half(&inc), half(&out)) {
                (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
                (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
                _ => VoteResult::Pending,
            };
            proptest::prop_assert_eq!(j.vote_result(vote), expected);
        }
    }

    #[test]
    fn ids_lists_each_voter_once_in_order() {
        let j = joint(&[1, 3, 5], &[2, 3, 4]);
        let got: Vec<u64> = j.ids().map(NodeId::get).collect();
        assert_eq!(got, vec![1, 2, 3, 4, 5]);
    }
}
