//! Membership changes and leadership transfer, as the leader makes them:
//! one change at a time (thesis §4.1), learners first and promoted once
//! caught up, removals refused when they would leave no healthy quorum.

use std::collections::BTreeMap;
use std::sync::Arc;

use raft_core::{
    ConfChange, ConfChangeKind, Index, LogId, NodeId, ProgressStatus, Proposal, RawNode, RoleKind,
};
use raft_storage::DiskStorage;

use crate::error::{MembershipError, TransferError};
use crate::members::JoinContext;
use crate::options::GroupOptions;
use crate::reply::Reply;
use crate::state_machine::StateMachine;

use super::events::MembershipChange;
use super::health::Health;
use super::replica::{Replica, Waiters};
use super::safety::{caught_up, check_quorum_after, voters_with, voters_without};

type Node = RawNode<Arc<DiskStorage>>;
type ChangeReply = Reply<Result<(), MembershipError>>;

/// A leadership transfer waiting for the target to lead.
#[derive(Debug)]
struct TransferWait {
    target: NodeId,
    reply: Reply<Result<(), TransferError>>,
    /// Ticks before it is given up (raft-core aborts a transfer after an
    /// election timeout, thesis §3.10).
    ticks_left: u32,
}

/// The leader's side of reconfiguration.
#[derive(Debug)]
pub(crate) struct Reconfig {
    promote_lag_entries: u64,
    strict: bool,
    transfer_ticks: u32,
    transfer: Option<TransferWait>,
}

/// The leader's view of its followers.
struct LeaderView<'a> {
    health: &'a Health,
    me: NodeId,
    last: Index,
    commit: Index,
    progress: BTreeMap<NodeId, ProgressStatus>,
}

impl LeaderView<'_> {
    /// The view if this node leads, else who does.
    fn of<'a>(node: &Node, health: &'a Health) -> Result<LeaderView<'a>, Option<NodeId>> {
        let st = node.status();
        match (st.soft_state.role, st.progress) {
            (RoleKind::Leader, Some(progress)) => Ok(LeaderView {
                health,
                me: st.id,
                last: st.last_index,
                commit: st.hard_state.commit,
                progress,
            }),
            _ => Err(st.soft_state.leader),
        }
    }

    /// Heard from lately.
    fn healthy(&self, id: NodeId) -> bool {
        id == self.me || self.health.is_healthy(id)
    }

    fn matched(&self, id: NodeId) -> Index {
        self.progress.get(&id).map_or(Index::ZERO, |p| p.matched)
    }
}

impl Reconfig {
    pub(crate) fn new(opts: &GroupOptions) -> Reconfig {
        Reconfig {
            promote_lag_entries: opts.promote_lag_entries,
            strict: opts.strict_reconfig,
            transfer_ticks: opts.election_timeout_ticks * 2,
            transfer: None,
        }
    }

    /// Checks and proposes a membership change; the reply is answered once
    /// it is applied (for `AddVoter`, once the learner is promoted).
    pub(crate) fn propose<S: StateMachine>(
        &mut self,
        node: &mut Node,
        (replica, health): (&Replica<S>, &Health),
        waiters: &mut Waiters<S::Output>,
        change: MembershipChange,
        reply: ChangeReply,
    ) {
        // What every member can tell from the replicated membership comes
        // first, so a request that can never succeed says so wherever it
        // is sent; what needs the leader's view of its followers, after.
        if let Err(e) = check_facts(replica, &change) {
            return reply.send(Err(e));
        }
        let view = match LeaderView::of(node, health) {
            Ok(view) => view,
            Err(leader) => return reply.send(Err(MembershipError::NotLeader { leader })),
        };
        match self.check(&view, replica, change) {
            Ok((cc, promote)) => match propose_cc(node, cc) {
                Ok(id) => {
                    waiters.changes.insert(id, reply);
                    if let Some(node_id) = promote {
                        waiters.promote_after.insert(id.index, node_id);
                    }
                }
                Err(e) => reply.send(Err(e)),
            },
            Err(e) => reply.send(Err(e)),
        }
    }

    /// The conf change for `change`, and the learner to promote after it.
    fn check<S: StateMachine>(
        &self,
        view: &LeaderView<'_>,
        replica: &Replica<S>,
        change: MembershipChange,
    ) -> Result<(ConfChange, Option<NodeId>), MembershipError> {
        let cs = replica.conf_state();
        let members = replica.members();
        // (member, address, promote once caught up, caller waits for it)
        let (id, addr, promote, wait) = match change {
            MembershipChange::AddLearner { id, addr } => (id, addr, false, false),
            MembershipChange::AddLearnerToPromote { id, addr } => (id, addr, true, false),
            MembershipChange::AddVoter { id, addr } if cs.learners.contains(&id) => {
                let _ = addr;
                let added_at = members.to_promote().get(&id).copied();
                return self
                    .check_promotion(view, cs, id, added_at)
                    .map(|cc| (cc, None));
            }
            MembershipChange::AddVoter { id, addr } => (id, addr, true, true),
            MembershipChange::Promote { id } => {
                let added_at = members.to_promote().get(&id).copied();
                return self
                    .check_promotion(view, cs, id, added_at)
                    .map(|cc| (cc, None));
            }
            MembershipChange::Remove { id } => return self.check_removal(view, cs, id),
        };
        let context = JoinContext { addr, promote }.encode();
        let cc = ConfChange {
            kind: ConfChangeKind::AddLearnerNode,
            node_id: id,
            context,
        };
        Ok((cc, wait.then_some(id)))
    }

    fn check_promotion(
        &self,
        view: &LeaderView<'_>,
        cs: &raft_core::ConfState,
        id: NodeId,
        added_at: Option<Index>,
    ) -> Result<ConfChange, MembershipError> {
        debug_assert!(cs.learners.contains(&id), "checked by check_facts");
        let matched = view.matched(id);
        // A learner added by `add_learner` has no recorded index: it must
        // at least hold everything the leader had committed.
        let added_at = added_at.unwrap_or(view.commit);
        if !caught_up(matched, added_at, view.last, self.promote_lag_entries) {
            return Err(MembershipError::NotCaughtUp {
                id,
                matched,
                last: view.last,
            });
        }
        if self.strict {
            let voters = cs.voters.iter().copied().collect();
            check_quorum_after(&voters_with(&voters, id), |v| view.healthy(v))?;
        }
        Ok(ConfChange {
            kind: ConfChangeKind::AddNode,
            node_id: id,
            context: bytes::Bytes::new(),
        })
    }

    fn check_removal(
        &self,
        view: &LeaderView<'_>,
        cs: &raft_core::ConfState,
        id: NodeId,
    ) -> Result<(ConfChange, Option<NodeId>), MembershipError> {
        let voter = cs.voters.contains(&id);
        if voter && self.strict {
            let voters = cs.voters.iter().copied().collect();
            check_quorum_after(&voters_without(&voters, id), |v| view.healthy(v))?;
        }
        let cc = ConfChange {
            kind: ConfChangeKind::RemoveNode,
            node_id: id,
            context: bytes::Bytes::new(),
        };
        Ok((cc, None))
    }

    /// On each tick: give up a transfer that took too long, and promote a
    /// learner that caught up.
    /// True when ticks would change nothing: no transfer waits for its
    /// deadline and no learner waits to be promoted.
    pub(crate) fn is_idle<S: StateMachine>(&self, replica: &Replica<S>) -> bool {
        self.transfer.is_none() && replica.members().to_promote().is_empty()
    }

    pub(crate) fn on_tick<S: StateMachine>(
        &mut self,
        node: &mut Node,
        replica: &Replica<S>,
        health: &Health,
    ) {
        if let Some(t) = self.transfer.as_mut() {
            t.ticks_left = t.ticks_left.saturating_sub(1);
            if t.ticks_left == 0 {
                let leader = node.status().soft_state.leader;
                let t = self.transfer.take().expect("checked");
                t.reply.send(Err(TransferError::Failed { leader }));
            }
        }
        self.maybe_promote(node, replica, health);
    }

    /// Promotes one learner that `add_voter` added, once it caught up
    /// (whoever leads now: the intent is replicated with the learner).
    fn maybe_promote<S: StateMachine>(
        &self,
        node: &mut Node,
        replica: &Replica<S>,
        health: &Health,
    ) {
        let pending = replica.members().to_promote();
        if pending.is_empty() {
            return;
        }
        let Ok(view) = LeaderView::of(node, health) else {
            return;
        };
        let cs = replica.conf_state();
        for (id, added_at) in pending {
            if !cs.learners.contains(id) {
                continue;
            }
            let Ok(cc) = self.check_promotion(&view, cs, *id, Some(*added_at)) else {
                continue;
            };
            if view.healthy(*id) {
                match propose_cc(node, cc) {
                    Ok(_) => tracing::info!(node = %id, "promoting a caught-up learner"),
                    Err(e) => tracing::debug!(node = %id, error = %e, "promotion not proposed"),
                }
                // One change at a time (thesis §4.1).
                return;
            }
        }
    }

    /// Starts a leadership transfer; answered once `to` leads.
    pub(crate) fn transfer(
        &mut self,
        node: &mut Node,
        to: NodeId,
        reply: Reply<Result<(), TransferError>>,
    ) {
        if node.status().soft_state.leader == Some(to) {
            return reply.send(Ok(()));
        }
        if let Err(e) = node.transfer_leader(to) {
            let err = match e {
                raft_core::TransferError::NoLeader => TransferError::NotLeader { leader: None },
                other => TransferError::Refused(other.to_string()),
            };
            return reply.send(Err(err));
        }
        if let Some(old) = self.transfer.take() {
            old.reply.send(Err(TransferError::Failed {
                leader: node.status().soft_state.leader,
            }));
        }
        self.transfer = Some(TransferWait {
            target: to,
            reply,
            ticks_left: self.transfer_ticks,
        });
    }

    /// A new leader is known: the transfer succeeded or failed.
    pub(crate) fn leader_changed(&mut self, leader: Option<NodeId>) {
        let Some(leader) = leader else { return };
        if let Some(t) = self.transfer.take() {
            if leader == t.target {
                t.reply.send(Ok(()));
            } else {
                t.reply.send(Err(TransferError::Failed {
                    leader: Some(leader),
                }));
            }
        }
    }

    pub(crate) fn stop(&mut self) {
        if let Some(t) = self.transfer.take() {
            t.reply.send(Err(TransferError::Stopped));
        }
    }
}

/// Checks `change` against the replicated membership (the same on every
/// member at the same applied index).
fn check_facts<S: StateMachine>(
    replica: &Replica<S>,
    change: &MembershipChange,
) -> Result<(), MembershipError> {
    let cs = replica.conf_state();
    if cs.is_joint() {
        return Err(MembershipError::Pending);
    }
    let voter = |id: &NodeId| cs.voters.contains(id);
    let learner = |id: &NodeId| cs.learners.contains(id);
    match change {
        MembershipChange::AddLearner { id, .. }
        | MembershipChange::AddLearnerToPromote { id, .. }
        | MembershipChange::AddVoter { id, .. } => {
            if replica.members().was_removed(*id) {
                return Err(MembershipError::RemovedId(*id));
            }
            match (voter(id), learner(id), change) {
                (true, _, _) => Err(MembershipError::AlreadyMember(*id, "voter")),
                // add_voter of a learner promotes it.
                (_, true, MembershipChange::AddVoter { .. }) => Ok(()),
                (_, true, _) => Err(MembershipError::AlreadyMember(*id, "learner")),
                _ => Ok(()),
            }
        }
        MembershipChange::Promote { id } if !learner(id) => {
            Err(MembershipError::NotMember(*id, "learner"))
        }
        MembershipChange::Remove { id } if !voter(id) && !learner(id) => {
            Err(MembershipError::NotMember(*id, "member"))
        }
        MembershipChange::Promote { .. } | MembershipChange::Remove { .. } => Ok(()),
    }
}

/// Proposes a conf change; its position identifies it when applied.
fn propose_cc(node: &mut Node, cc: ConfChange) -> Result<LogId, MembershipError> {
    match node.propose_conf_change(cc) {
        Ok(Proposal::Appended { id }) => Ok(id),
        Ok(Proposal::Forwarded { to }) => Err(MembershipError::NotLeader { leader: Some(to) }),
        Ok(_) => Err(MembershipError::NotLeader { leader: None }),
        Err(raft_core::ProposeError::ConfChangePending { .. }) => Err(MembershipError::Pending),
        Err(raft_core::ProposeError::NoLeader) => Err(MembershipError::NotLeader { leader: None }),
        Err(raft_core::ProposeError::ForwardingDisabled { leader }) => {
            Err(MembershipError::NotLeader {
                leader: Some(leader),
            })
        }
        Err(e) => Err(MembershipError::Refused(e.to_string())),
    }
}
