//! Membership and the leader's per-follower progress.

mod inflights;
mod progress;

use std::collections::{BTreeMap, BTreeSet};

pub(crate) use progress::Progress;
pub use progress::ProgressState;

use crate::quorum::JointConfig;
use crate::types::{ConfState, NodeId};

/// Who votes and who learns. Every role knows this (it decides whom to ask
/// for votes); only the leader keeps [`Progress`].
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub(crate) struct Membership {
    /// The voters, joint during a membership change.
    voters: JointConfig,
    /// Non-voting members.
    learners: BTreeSet<NodeId>,
    /// Outgoing voters that become learners when the joint state is left.
    learners_next: BTreeSet<NodeId>,
    /// Leave the joint state automatically.
    auto_leave: bool,
    /// Voters that keep only the log's metadata and never lead.
    /// Invariant: a subset of the voters.
    witnesses: BTreeSet<NodeId>,
}

impl Membership {
    /// The membership a [`ConfState`] describes.
    pub(crate) fn from_conf_state(cs: &ConfState) -> Membership {
        Membership {
            voters: JointConfig {
                incoming: crate::quorum::MajorityConfig::new(cs.voters.clone()),
                outgoing: crate::quorum::MajorityConfig::new(cs.voters_outgoing.clone()),
            },
            learners: cs.learners.clone(),
            learners_next: cs.learners_next.clone(),
            auto_leave: cs.auto_leave,
            witnesses: cs.witnesses.clone(),
        }
    }

    /// The [`ConfState`] describing this membership.
    pub(crate) fn to_conf_state(&self) -> ConfState {
        ConfState {
            voters: self.voters.incoming.voters().clone(),
            learners: self.learners.clone(),
            voters_outgoing: self.voters.outgoing.voters().clone(),
            learners_next: self.learners_next.clone(),
            auto_leave: self.auto_leave,
            witnesses: self.witnesses.clone(),
        }
    }

    /// The voters, joint during a membership change.
    pub(crate) fn voters(&self) -> &JointConfig {
        &self.voters
    }

    /// Leave the joint state automatically once the change is applied.
    pub(crate) fn auto_leave(&self) -> bool {
        self.auto_leave
    }

    /// True when `id` can vote (a witness votes too, but never campaigns).
    pub(crate) fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(id)
    }

    /// True when `id` is a witness: a voter that gets payload-free appends
    /// and metadata-only snapshots, and never leads.
    pub(crate) fn is_witness(&self, id: NodeId) -> bool {
        self.witnesses.contains(&id)
    }

    /// The witnesses, in id order.
    pub(crate) fn witnesses(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.witnesses.iter().copied()
    }

    /// True when some voter is a witness.
    #[inline]
    pub(crate) fn has_witnesses(&self) -> bool {
        !self.witnesses.is_empty()
    }

    /// True when `id` may lead: a voter that is not a witness.
    pub(crate) fn can_lead(&self, id: NodeId) -> bool {
        self.is_voter(id) && !self.is_witness(id)
    }

    /// True when `id` is a member of any kind.
    pub(crate) fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(id) || self.learners.contains(&id) || self.learners_next.contains(&id)
    }

    /// Every member, voters and learners, in id order.
    pub(crate) fn members(&self) -> BTreeSet<NodeId> {
        let mut all: BTreeSet<NodeId> = self.voters.ids().collect();
        all.extend(self.learners.iter().copied());
        all.extend(self.learners_next.iter().copied());
        all
    }
}

/// Progress of every member, visited in id order.
pub(crate) type ProgressMap = BTreeMap<NodeId, Progress>;
