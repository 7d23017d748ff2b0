//! Membership change arithmetic (thesis §4.1 single-server changes, §4.3
//! joint consensus): from a configuration and a change, the next
//! configuration, or why it is not allowed. Pure functions of sets; nothing
//! here knows about logs or messages.

mod codec;

use std::collections::BTreeSet;

pub use codec::ConfChangeDecodeError;

use bytes::Bytes;

use crate::types::{
    ConfChange, ConfChangeKind, ConfChangeSingle, ConfChangeTransition, ConfChangeV2, ConfState,
    Entry, EntryKind, NodeId,
};

/// Why a membership change cannot be applied to the current configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfChangeError {
    /// A joint change was requested while already joint.
    #[error("the configuration is already joint; leave it first")]
    AlreadyJoint,
    /// Leaving the joint state was requested outside one.
    #[error("the configuration is not joint; there is nothing to leave")]
    NotJoint,
    /// A single-step change would change more than one voter, which a
    /// majority overlap cannot tolerate (thesis §4.1); use a joint change.
    #[error(
        "a single-step change may add or remove at most one voter (this one changes {changed})"
    )]
    MoreThanOneVoterChanged {
        /// How many voters would change.
        changed: usize,
    },
    /// The change would leave no voter.
    #[error("the change would remove every voter")]
    NoVoters,
    /// The change would leave only witnesses as voters: nobody could lead.
    #[error("the change would leave only witnesses as voters; nobody could lead")]
    OnlyWitnesses,
    /// A witness may only be removed: it holds no entry payloads, so it
    /// cannot become a full voter or a learner. Remove it, wipe its
    /// storage, and add it again as a new member.
    #[error(
        "node {node} is a witness and can only be removed; to make it a full member, remove it, \
         wipe its storage and add it again"
    )]
    WitnessKindFixed {
        /// The witness.
        node: NodeId,
    },
    /// A full voter or learner cannot become a witness while it is a member
    /// (its kind is fixed while it is a member): remove it first.
    #[error("node {node} is a full member and cannot become a witness; remove it first")]
    MemberCannotBecomeWitness {
        /// The member.
        node: NodeId,
    },
    /// The entry data did not decode.
    #[error("undecodable conf change: {0}")]
    Decode(#[from] ConfChangeDecodeError),
}

/// A single-step ([`ConfChange`]) or joint-capable ([`ConfChangeV2`]) change.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum AnyConfChange {
    /// A single-step change, stored in an `EntryKind::ConfChange` entry.
    V1(ConfChange),
    /// A change of several nodes, stored in an `EntryKind::ConfChangeV2` entry.
    V2(ConfChangeV2),
}

impl From<ConfChange> for AnyConfChange {
    fn from(cc: ConfChange) -> AnyConfChange {
        AnyConfChange::V1(cc)
    }
}

impl From<ConfChangeV2> for AnyConfChange {
    fn from(cc: ConfChangeV2) -> AnyConfChange {
        AnyConfChange::V2(cc)
    }
}

impl AnyConfChange {
    /// The change as a V2 change (a V1 change is a V2 with one change and
    /// the automatic transition).
    pub fn to_v2(&self) -> ConfChangeV2 {
        match self {
            AnyConfChange::V1(cc) => ConfChangeV2 {
                transition: ConfChangeTransition::Auto,
                changes: vec![ConfChangeSingle {
                    kind: cc.kind,
                    node_id: cc.node_id,
                }],
                context: cc.context.clone(),
            },
            AnyConfChange::V2(cc) => cc.clone(),
        }
    }

    /// The entry kind and data that carry this change in the log.
    pub fn to_entry_data(&self) -> (EntryKind, Bytes) {
        match self {
            AnyConfChange::V1(cc) => (EntryKind::ConfChange, cc.encode()),
            AnyConfChange::V2(cc) => (EntryKind::ConfChangeV2, cc.encode()),
        }
    }

    /// The conf change carried by `entry`, or `None` for a normal entry.
    ///
    /// # Errors
    /// A [`ConfChangeDecodeError`] if the entry's data is malformed.
    pub fn from_entry(entry: &Entry) -> Result<Option<AnyConfChange>, ConfChangeDecodeError> {
        Self::decode(entry.kind, &entry.data)
    }

    pub(crate) fn decode(
        kind: EntryKind,
        data: &Bytes,
    ) -> Result<Option<AnyConfChange>, ConfChangeDecodeError> {
        Ok(match kind {
            EntryKind::Normal => None,
            EntryKind::ConfChange => Some(AnyConfChange::V1(ConfChange::decode(data)?)),
            EntryKind::ConfChangeV2 => Some(AnyConfChange::V2(ConfChangeV2::decode(data)?)),
        })
    }

    /// True for the empty V2 change that leaves a joint configuration.
    pub fn is_leave_joint(&self) -> bool {
        matches!(self, AnyConfChange::V2(cc) if cc.changes.is_empty())
    }
}

impl ConfChangeV2 {
    /// Whether this change enters a joint configuration, and if so whether
    /// the leader leaves it automatically. `None` for a single-step change.
    pub fn enter_joint(&self) -> Option<bool> {
        match self.transition {
            ConfChangeTransition::Auto if self.changes.len() <= 1 => None,
            ConfChangeTransition::Auto | ConfChangeTransition::JointImplicit => Some(true),
            ConfChangeTransition::JointExplicit => Some(false),
        }
    }
}

/// The configuration after applying `cc` to `current`.
///
/// # Errors
/// A [`ConfChangeError`] when the change is not allowed from `current`.
pub fn apply(current: &ConfState, cc: &AnyConfChange) -> Result<ConfState, ConfChangeError> {
    if cc.is_leave_joint() {
        return leave_joint(current);
    }
    let v2 = cc.to_v2();
    match v2.enter_joint() {
        Some(auto_leave) => enter_joint(current, auto_leave, &v2.changes),
        None => simple(current, &v2.changes),
    }
}

/// Enters a joint configuration: the current voters become the outgoing
/// half, `changes` apply to the incoming half.
fn enter_joint(
    current: &ConfState,
    auto_leave: bool,
    changes: &[ConfChangeSingle],
) -> Result<ConfState, ConfChangeError> {
    if current.is_joint() {
        return Err(ConfChangeError::AlreadyJoint);
    }
    if current.voters.is_empty() {
        // An empty outgoing half would make the joint state meaningless.
        return Err(ConfChangeError::NoVoters);
    }
    let mut next = current.clone();
    next.voters_outgoing = current.voters.clone();
    apply_changes(&mut next, changes)?;
    next.auto_leave = auto_leave;
    check_invariants(&next);
    Ok(next)
}

/// Leaves the joint configuration: the incoming half rules alone, demoted
/// voters become learners.
fn leave_joint(current: &ConfState) -> Result<ConfState, ConfChangeError> {
    if !current.is_joint() {
        return Err(ConfChangeError::NotJoint);
    }
    let mut next = current.clone();
    next.learners
        .extend(std::mem::take(&mut next.learners_next));
    next.voters_outgoing.clear();
    let voters = &next.voters;
    next.witnesses.retain(|w| voters.contains(w));
    next.auto_leave = false;
    check_invariants(&next);
    Ok(next)
}

/// A single-step change: at most one voter added or removed, so every
/// majority of the old configuration overlaps every majority of the new
/// (thesis §4.1).
fn simple(current: &ConfState, changes: &[ConfChangeSingle]) -> Result<ConfState, ConfChangeError> {
    if current.is_joint() {
        return Err(ConfChangeError::AlreadyJoint);
    }
    let mut next = current.clone();
    apply_changes(&mut next, changes)?;
    let changed = current.voters.symmetric_difference(&next.voters).count();
    if changed > 1 {
        return Err(ConfChangeError::MoreThanOneVoterChanged { changed });
    }
    check_invariants(&next);
    Ok(next)
}

fn apply_changes(cs: &mut ConfState, changes: &[ConfChangeSingle]) -> Result<(), ConfChangeError> {
    for c in changes {
        let id = c.node_id;
        match c.kind {
            ConfChangeKind::AddNode | ConfChangeKind::AddLearnerNode if cs.is_witness(id) => {
                return Err(ConfChangeError::WitnessKindFixed { node: id });
            }
            ConfChangeKind::AddWitness if cs.contains(id) && !cs.is_witness(id) => {
                return Err(ConfChangeError::MemberCannotBecomeWitness { node: id });
            }
            ConfChangeKind::AddNode => make_voter(cs, id),
            ConfChangeKind::AddLearnerNode => make_learner(cs, id),
            ConfChangeKind::AddWitness => make_witness(cs, id),
            ConfChangeKind::RemoveNode => remove(cs, id),
        }
    }
    if cs.voters.is_empty() {
        return Err(ConfChangeError::NoVoters);
    }
    if cs.voters.is_subset(&cs.witnesses) {
        return Err(ConfChangeError::OnlyWitnesses);
    }
    Ok(())
}

fn make_voter(cs: &mut ConfState, id: NodeId) {
    cs.voters.insert(id);
    cs.learners.remove(&id);
    cs.learners_next.remove(&id);
}

/// A voter of the outgoing half cannot become a learner while it still
/// votes there: it is staged in `learners_next` until the joint state ends.
fn make_learner(cs: &mut ConfState, id: NodeId) {
    if cs.learners.contains(&id) {
        return;
    }
    cs.voters.remove(&id);
    if cs.voters_outgoing.contains(&id) {
        cs.learners_next.insert(id);
    } else {
        cs.learners.insert(id);
    }
}

/// A witness votes in the incoming half like any voter; it stays a
/// witness in the outgoing half too (a member's kind never changes).
fn make_witness(cs: &mut ConfState, id: NodeId) {
    cs.voters.insert(id);
    cs.witnesses.insert(id);
}

fn remove(cs: &mut ConfState, id: NodeId) {
    cs.voters.remove(&id);
    cs.learners.remove(&id);
    cs.learners_next.remove(&id);
    // An outgoing voter stays what it was until the joint state ends.
    if !cs.voters_outgoing.contains(&id) {
        cs.witnesses.remove(&id);
    }
}

/// The relations every configuration satisfies.
fn check_invariants(cs: &ConfState) {
    let voters: BTreeSet<NodeId> = cs.voters.union(&cs.voters_outgoing).copied().collect();
    debug_assert!(
        cs.learners.is_disjoint(&voters),
        "a learner is also a voter: {cs:?}"
    );
    debug_assert!(cs.learners_next.is_subset(&cs.voters_outgoing), "{cs:?}");
    debug_assert!(cs.learners_next.is_disjoint(&cs.learners), "{cs:?}");
    debug_assert!(cs.is_joint() || cs.learners_next.is_empty(), "{cs:?}");
    debug_assert!(cs.is_joint() || !cs.auto_leave, "{cs:?}");
    debug_assert!(
        cs.witnesses.is_subset(&voters),
        "a witness is not a voter: {cs:?}"
    );
}

#[cfg(test)]
mod tests;
