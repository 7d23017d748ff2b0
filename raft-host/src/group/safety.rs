//! The membership checks a careful operator would make by hand, as pure
//! functions of the leader's view: strict reconfiguration (etcd's
//! `--strict-reconfig-check`) and learner catch-up before promotion
//! (hashicorp's autopilot, etcd #15107).

use std::collections::BTreeSet;

use raft_core::{Index, NodeId};

use crate::error::MembershipError;

/// Votes needed in a configuration of `voters` voters (paper §5.2).
pub(crate) fn quorum(voters: usize) -> usize {
    voters / 2 + 1
}

/// Checks that `after` (the voters once a change is applied) keeps a
/// quorum of healthy voters: otherwise the change would leave the group
/// unable to commit, including the change that could undo it.
pub(crate) fn check_quorum_after(
    after: &BTreeSet<NodeId>,
    healthy: impl Fn(NodeId) -> bool,
) -> Result<(), MembershipError> {
    let needed = quorum(after.len());
    let healthy = after.iter().filter(|id| healthy(**id)).count();
    if after.is_empty() || healthy < needed {
        return Err(MembershipError::Unsafe { healthy, needed });
    }
    Ok(())
}

/// The voters once `id` is removed.
pub(crate) fn voters_without(voters: &BTreeSet<NodeId>, id: NodeId) -> BTreeSet<NodeId> {
    voters.iter().copied().filter(|v| *v != id).collect()
}

/// The voters once `id` is promoted.
pub(crate) fn voters_with(voters: &BTreeSet<NodeId>, id: NodeId) -> BTreeSet<NodeId> {
    let mut after = voters.clone();
    after.insert(id);
    after
}

/// True when a learner whose log matches the leader's through `matched`
/// holds the entry that added it (`added_at`) and is close enough to the
/// leader's `last` index to vote without slowing commits: a voter that is
/// far behind adds to the quorum without helping it.
pub(crate) fn caught_up(matched: Index, added_at: Index, last: Index, lag_entries: u64) -> bool {
    matched >= added_at && matched.get().saturating_add(lag_entries) >= last.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ns: &[u64]) -> BTreeSet<NodeId> {
        ns.iter()
            .map(|n| NodeId::new(*n).expect("non-zero"))
            .collect()
    }

    #[test]
    fn removing_a_healthy_voter_from_three_is_safe_when_the_others_are_healthy() {
        let after = voters_without(&ids(&[1, 2, 3]), NodeId::new(3).expect("id"));
        assert_eq!(check_quorum_after(&after, |_| true), Ok(()));
    }

    #[test]
    fn a_removal_that_leaves_no_healthy_quorum_is_refused() {
        // 1, 2, 3 with 2 down: removing 3 leaves {1, 2}, whose quorum is 2.
        let after = voters_without(&ids(&[1, 2, 3]), NodeId::new(3).expect("id"));
        let down = NodeId::new(2).expect("id");
        assert_eq!(
            check_quorum_after(&after, |id| id != down),
            Err(MembershipError::Unsafe {
                healthy: 1,
                needed: 2
            })
        );
    }

    #[test]
    fn removing_the_last_voter_is_refused() {
        let after = voters_without(&ids(&[1]), NodeId::new(1).expect("id"));
        assert!(check_quorum_after(&after, |_| true).is_err());
    }

    #[test]
    fn a_learner_is_caught_up_within_the_lag() {
        assert!(caught_up(Index(90), Index(50), Index(100), 10));
        assert!(!caught_up(Index(89), Index(50), Index(100), 10));
        assert!(caught_up(Index(100), Index(50), Index(100), 0));
    }

    #[test]
    fn an_empty_learner_is_not_caught_up_however_short_the_log() {
        assert!(!caught_up(Index(0), Index(9), Index(9), 1000));
        assert!(!caught_up(Index(8), Index(9), Index(9), 1000));
        assert!(caught_up(Index(9), Index(9), Index(12), 1000));
    }
}
