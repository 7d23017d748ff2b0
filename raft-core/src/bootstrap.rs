//! Founding a cluster: the founders' membership written as the first
//! entries of the log, so that every node that replays the log, a joiner
//! included, learns the same membership (etcd's `StartNode` does the same).

use bytes::Bytes;

use crate::confchange::AnyConfChange;
use crate::types::{ConfChange, ConfChangeKind, ConfState, Entry, HardState, Index, NodeId, Term};

/// The first log of a new cluster, identical on every founder: one
/// [`ConfChange`] entry per founding member at term 1 and indexes `1..=n`
/// (`AddNode` for voters, `AddLearnerNode` for learners), all committed.
///
/// A founder writes it to empty storage before its first start (see
/// [`MemoryStorage::bootstrap`](crate::MemoryStorage::bootstrap)) and starts
/// with an empty configuration: the founding entries come out as
/// `Ready::committed_entries`, and applying them with
/// [`RawNode::apply_conf_change`](crate::RawNode::apply_conf_change) builds
/// the membership, on the founders and on every node that joins later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundingLog {
    /// Term 1, no vote, committed through the last founding entry.
    pub hard_state: HardState,
    /// The founding entries.
    /// Invariant: at least one `AddNode`; no node twice; indexes `1..=n`.
    pub entries: Vec<Entry>,
}

/// Why a set of founding members cannot found a cluster.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapError {
    /// No founder is a voter: nobody could ever be elected.
    #[error("a cluster needs at least one founding voter")]
    NoVoters,
    /// A founding change removes a node; founders only add.
    #[error("founding changes only add members; node {node} is removed")]
    Removal {
        /// The node.
        node: NodeId,
    },
    /// A node appears twice among the founders.
    #[error("node {node} is listed twice among the founders")]
    DuplicateMember {
        /// The node.
        node: NodeId,
    },
    /// The founders' configuration is joint; a cluster starts simple.
    #[error("a cluster cannot be founded in a joint configuration")]
    Joint,
}

impl FoundingLog {
    /// The founding log of `founders`, in the given order. Each change's
    /// `context` is kept (an application may put a founder's address there).
    ///
    /// # Errors
    /// A [`BootstrapError`] if the changes do not add a set of distinct
    /// members with at least one voter.
    pub fn new(
        founders: impl IntoIterator<Item = ConfChange>,
    ) -> Result<FoundingLog, BootstrapError> {
        let mut seen = std::collections::BTreeSet::new();
        let mut entries = Vec::new();
        let mut voters = 0usize;
        for cc in founders {
            match cc.kind {
                ConfChangeKind::RemoveNode => {
                    return Err(BootstrapError::Removal { node: cc.node_id });
                }
                ConfChangeKind::AddNode => voters += 1,
                // A witness votes but never leads: it does not count as the
                // voter a cluster needs to elect anyone.
                ConfChangeKind::AddLearnerNode | ConfChangeKind::AddWitness => {}
            }
            if !seen.insert(cc.node_id) {
                return Err(BootstrapError::DuplicateMember { node: cc.node_id });
            }
            let (kind, data) = AnyConfChange::V1(cc).to_entry_data();
            let index = Index(entries.len() as u64 + 1);
            entries.push(Entry {
                term: Term(1),
                index,
                kind,
                data,
            });
        }
        if voters == 0 {
            return Err(BootstrapError::NoVoters);
        }
        let hard_state = HardState {
            term: Term(1),
            vote: None,
            commit: Index(entries.len() as u64),
        };
        Ok(FoundingLog {
            hard_state,
            entries,
        })
    }

    /// The founding log of the voters, witnesses and learners of
    /// `founders`, each in id order (full voters first), with empty
    /// contexts.
    ///
    /// # Errors
    /// [`BootstrapError::Joint`] for a joint configuration, and as
    /// [`FoundingLog::new`].
    pub fn from_conf_state(founders: &ConfState) -> Result<FoundingLog, BootstrapError> {
        if founders.is_joint() || !founders.learners_next.is_empty() {
            return Err(BootstrapError::Joint);
        }
        let change = |kind| {
            move |&node_id| ConfChange {
                kind,
                node_id,
                context: Bytes::new(),
            }
        };
        let voters = founders
            .voters
            .iter()
            .filter(|v| !founders.is_witness(**v))
            .map(change(ConfChangeKind::AddNode));
        let witnesses = founders
            .witnesses
            .iter()
            .map(change(ConfChangeKind::AddWitness));
        let learners = founders
            .learners
            .iter()
            .map(change(ConfChangeKind::AddLearnerNode));
        FoundingLog::new(voters.chain(witnesses).chain(learners))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> NodeId {
        NodeId::new(n).expect("non-zero")
    }

    #[test]
    fn founding_entries_add_each_member_at_term_one_and_are_committed() {
        let cs = ConfState {
            voters: [id(1), id(2)].into(),
            learners: [id(3)].into(),
            ..ConfState::default()
        };
        let log = FoundingLog::from_conf_state(&cs).expect("valid");
        assert_eq!(log.hard_state.commit, Index(3));
        assert_eq!(log.hard_state.term, Term(1));
        let mut rebuilt = ConfState::default();
        for (i, e) in log.entries.iter().enumerate() {
            assert_eq!(e.index, Index(i as u64 + 1));
            assert_eq!(e.term, Term(1));
            let cc = AnyConfChange::from_entry(e)
                .expect("decodes")
                .expect("a change");
            rebuilt = crate::confchange::apply(&rebuilt, &cc).expect("applies");
        }
        assert_eq!(rebuilt, cs);
    }

    #[test]
    fn founders_without_a_voter_or_with_repeats_are_refused() {
        let learner_only = ConfState {
            learners: [id(1)].into(),
            ..ConfState::default()
        };
        assert_eq!(
            FoundingLog::from_conf_state(&learner_only),
            Err(BootstrapError::NoVoters)
        );
        let twice =
            [ConfChangeKind::AddNode, ConfChangeKind::AddLearnerNode].map(|kind| ConfChange {
                kind,
                node_id: id(1),
                context: Bytes::new(),
            });
        assert_eq!(
            FoundingLog::new(twice),
            Err(BootstrapError::DuplicateMember { node: id(1) })
        );
        let joint = ConfState {
            voters: [id(1)].into(),
            voters_outgoing: [id(2)].into(),
            ..ConfState::default()
        };
        assert_eq!(
            FoundingLog::from_conf_state(&joint),
            Err(BootstrapError::Joint)
        );
    }
}
