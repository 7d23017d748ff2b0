//! The replicated state of one member: the application's state machine,
//! the address book and the membership, as of the applied index. It
//! changes only by applying committed entries in log order (paper §5.3)
//! or by restoring a snapshot, so every member holds the same state at
//! the same index.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use parking_lot::RwLock;
use raft_core::{
    AnyConfChange, ConfChangeKind, ConfState, Entry, EntryKind, Index, NodeId, RawNode, Snapshot,
};
use raft_storage::DiskStorage;

use crate::error::{MembershipError, ProposeError, StartError};
use crate::members::{JoinContext, Members};
use crate::reply::Reply;
use crate::state_machine::{Command, StateMachine};

use super::envelope;
use super::waiters::{IndexWaiters, RequestWaiters};

/// Callers waiting for entries to be applied.
#[derive(Debug)]
pub(crate) struct Waiters<O> {
    pub(crate) proposals: RequestWaiters<Result<O, ProposeError>>,
    pub(crate) changes: IndexWaiters<Result<(), MembershipError>>,
    /// Changes that add a learner to be promoted: their caller waits for
    /// the promotion, not for the learner (index of the change → node).
    pub(crate) promote_after: BTreeMap<Index, NodeId>,
    /// Callers of `add_voter` waiting for a learner's promotion.
    pub(crate) promotions: BTreeMap<NodeId, Vec<Reply<Result<(), MembershipError>>>>,
}

impl<O> Waiters<O> {
    /// True when no caller waits for anything the group's clock times
    /// out or drives.
    pub(crate) fn is_empty(&self) -> bool {
        self.proposals.is_empty()
            && self.changes.is_empty()
            && self.promote_after.is_empty()
            && self.promotions.is_empty()
    }
}

impl<O> Default for Waiters<O> {
    fn default() -> Self {
        Waiters {
            proposals: RequestWaiters::default(),
            changes: IndexWaiters::default(),
            promote_after: BTreeMap::new(),
            promotions: BTreeMap::new(),
        }
    }
}

impl<O> Waiters<O> {
    /// Answers everything: the group stops, outcomes unknown.
    pub(crate) fn interrupt_all(&mut self) {
        self.proposals.fail_all(|| Err(ProposeError::Interrupted));
        self.changes.fail_all(|_| Err(MembershipError::Interrupted));
        self.promote_after.clear();
        for (_, replies) in std::mem::take(&mut self.promotions) {
            for r in replies {
                r.send(Err(MembershipError::Interrupted));
            }
        }
    }
}

/// A change to the transport's peer table, from applying membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PeerChange {
    Add(NodeId, String),
    Remove(NodeId),
}

/// What applying entries did besides the state machine.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    pub(crate) peer_changes: Vec<PeerChange>,
    /// This member applied its own removal.
    pub(crate) removed_self: bool,
    pub(crate) membership_changed: bool,
    pub(crate) entries: u64,
    /// Membership callers to answer once the status shows the change.
    pub(crate) answers: Vec<(ChangeReply, Result<(), MembershipError>)>,
}

type ChangeReply = Reply<Result<(), MembershipError>>;

/// The replicated state. Invariant: `applied` only grows, except by a
/// snapshot restore, which moves it to the snapshot's index (higher).
pub(crate) struct Replica<S: StateMachine> {
    me: NodeId,
    sm: Arc<RwLock<S>>,
    members: Members,
    conf_state: ConfState,
    applied: Index,
    /// Reused buffers: the batch handed to the state machine, and the
    /// request number of each command this member proposed.
    commands: Vec<Command>,
    requests: Vec<Option<u64>>,
    outputs: Vec<S::Output>,
}

impl<S: StateMachine> std::fmt::Debug for Replica<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("me", &self.me)
            .field("applied", &self.applied)
            .field("conf_state", &self.conf_state)
            .finish_non_exhaustive()
    }
}

impl<S: StateMachine> Replica<S> {
    /// The state recovered from storage: restored from its newest
    /// snapshot, if any (the log after it is applied again).
    pub(crate) fn recover(
        me: NodeId,
        sm: Arc<RwLock<S>>,
        storage: &DiskStorage,
    ) -> Result<Replica<S>, StartError> {
        let mut replica = Replica {
            me,
            sm,
            members: Members::default(),
            conf_state: ConfState::default(),
            applied: Index::ZERO,
            commands: Vec::new(),
            requests: Vec::new(),
            outputs: Vec::new(),
        };
        if let Some(reader) = storage.open_snapshot()? {
            let snapshot = reader.read_to_snapshot()?;
            replica.restore_data(&snapshot)?;
        }
        Ok(replica)
    }

    pub(crate) fn applied(&self) -> Index {
        self.applied
    }

    pub(crate) fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    pub(crate) fn members(&self) -> &Members {
        &self.members
    }

    /// A point-in-time image for a snapshot at the applied index: the
    /// address book's header and the state machine's image.
    pub(crate) fn image(&self) -> (Vec<u8>, S::Image) {
        (self.members.encode(), self.sm.read().snapshot())
    }

    /// Restores from a snapshot the leader sent (already persisted).
    /// Waiters for entries the snapshot covers learn nothing certain.
    pub(crate) fn restore(
        &mut self,
        snapshot: &Snapshot,
        waiters: &mut Waiters<S::Output>,
    ) -> Result<Vec<PeerChange>, StartError> {
        let before: BTreeSet<NodeId> = self.members.addrs().keys().copied().collect();
        self.restore_data(snapshot)?;
        let index = self.applied;
        waiters
            .proposals
            .fail_appended_through(index, |index| Err(ProposeError::OutcomeUnknown { index }));
        waiters
            .changes
            .fail_through(index, &|_| Err(MembershipError::OutcomeUnknown));
        waiters.promote_after.retain(|at, _| *at > index);
        let mut changes: Vec<PeerChange> = before
            .iter()
            .filter(|id| self.members.addr(**id).is_none())
            .map(|id| PeerChange::Remove(*id))
            .collect();
        for (id, addr) in self.members.addrs() {
            if *id != self.me {
                changes.push(PeerChange::Add(*id, addr.clone()));
            }
        }
        Ok(changes)
    }

    fn restore_data(&mut self, snapshot: &Snapshot) -> Result<(), StartError> {
        let mut data: &[u8] = &snapshot.data;
        let members = Members::decode(&mut data)?;
        self.sm
            .write()
            .restore(&mut data)
            .map_err(StartError::Restore)?;
        self.members = members;
        self.conf_state = snapshot.metadata.conf_state.clone();
        self.applied = snapshot.metadata.index;
        Ok(())
    }

    /// Applies committed entries in order and answers their waiters.
    pub(crate) fn apply(
        &mut self,
        entries: Vec<Entry>,
        node: &mut RawNode<Arc<DiskStorage>>,
        storage: &DiskStorage,
        waiters: &mut Waiters<S::Output>,
    ) -> Applied {
        let mut applied = Applied::default();
        for entry in entries {
            if entry.index <= self.applied {
                // Already reflected by the snapshot the state came from.
                continue;
            }
            debug_assert_eq!(entry.index, self.applied.next(), "entries apply in order");
            applied.entries += 1;
            match entry.kind {
                EntryKind::Normal if entry.data.is_empty() => {
                    // A new leader's no-op (paper §8): it replaces any
                    // proposal appended at this index by an older leader.
                    self.flush(waiters);
                    supersede(waiters, entry.index);
                }
                EntryKind::Normal => {
                    let (request, data) = match envelope::unwrap(&entry.data) {
                        Some((origin, command)) => (
                            (origin.proposer == self.me).then_some(origin.request),
                            command,
                        ),
                        // Not wrapped by a host: applied as it is.
                        None => (None, entry.data),
                    };
                    self.requests.push(request);
                    self.commands.push(Command {
                        index: entry.index,
                        data,
                    });
                }
                EntryKind::ConfChange | EntryKind::ConfChangeV2 => {
                    self.flush(waiters);
                    supersede(waiters, entry.index);
                    self.apply_conf_entry(&entry, node, storage, waiters, &mut applied);
                }
            }
            self.applied = entry.index;
        }
        self.flush(waiters);
        applied
    }

    /// Hands the batch to the state machine and answers its proposers.
    fn flush(&mut self, waiters: &mut Waiters<S::Output>) {
        if self.commands.is_empty() {
            return;
        }
        self.sm.write().apply(&self.commands, &mut self.outputs);
        assert_eq!(
            self.outputs.len(),
            self.commands.len(),
            "StateMachine::apply must push one output per command"
        );
        let lost = |index| Err(ProposeError::Superseded { index });
        for ((cmd, request), output) in self
            .commands
            .drain(..)
            .zip(self.requests.drain(..))
            .zip(self.outputs.drain(..))
        {
            if let Some(reply) = waiters.proposals.take(cmd.index, request, lost) {
                reply.send(Ok(output));
            }
        }
    }

    fn apply_conf_entry(
        &mut self,
        entry: &Entry,
        node: &mut RawNode<Arc<DiskStorage>>,
        storage: &DiskStorage,
        waiters: &mut Waiters<S::Output>,
        applied: &mut Applied,
    ) {
        let cc = match AnyConfChange::from_entry(entry) {
            Ok(Some(cc)) => cc,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(index = %entry.index, error = %e, "undecodable conf change; skipped");
                return;
            }
        };
        let result = self.apply_conf_change(entry.index, &cc, node, storage, applied);
        let lost = |_| Err(MembershipError::Superseded);
        let reply = waiters.changes.take(entry.log_id(), lost);
        let promote = waiters.promote_after.remove(&entry.index);
        waiters.promote_after.retain(|at, _| *at > entry.index);
        if result.is_ok() {
            answer_promotions(&cc, waiters, &mut applied.answers);
        }
        match (reply, promote) {
            // The learner is in: its caller waits on for the promotion.
            (Some(reply), Some(id)) if result.is_ok() => {
                waiters.promotions.entry(id).or_default().push(reply);
            }
            (Some(reply), _) => applied.answers.push((reply, result)),
            (None, _) => {}
        }
    }

    /// Applies one membership change to raft-core, the storage and the
    /// address book.
    fn apply_conf_change(
        &mut self,
        index: Index,
        cc: &AnyConfChange,
        node: &mut RawNode<Arc<DiskStorage>>,
        storage: &DiskStorage,
        applied: &mut Applied,
    ) -> Result<(), MembershipError> {
        let v2 = cc.to_v2();
        // A removed id is never a member again (etcd's rule too): its old
        // process, log and votes may still be around. Refused here, on
        // replicated state, so every member refuses the same entries,
        // even one proposed before its proposer applied the removal.
        if let Some(c) = v2
            .changes
            .iter()
            .find(|c| c.kind != ConfChangeKind::RemoveNode && self.members.was_removed(c.node_id))
        {
            tracing::warn!(node = %c.node_id, "conf change re-adds a removed node id; refused");
            return Err(MembershipError::RemovedId(c.node_id));
        }
        let cs = node.apply_conf_change(cc).map_err(|e| {
            tracing::warn!(error = %e, "conf change refused at apply");
            MembershipError::Refused(e.to_string())
        })?;
        storage.set_conf_state(cs.clone());
        self.conf_state = cs;
        applied.membership_changed = true;
        let adds = v2
            .changes
            .iter()
            .filter(|c| c.kind != ConfChangeKind::RemoveNode)
            .count();
        let context = (adds == 1)
            .then(|| JoinContext::decode(&v2.context))
            .flatten();
        for single in &v2.changes {
            let id = single.node_id;
            match single.kind {
                // A witness is a voter to this member (the host runs no
                // witness itself: `Config::witness` stays false, and
                // raft-core refuses a change that names this member one).
                ConfChangeKind::AddNode
                | ConfChangeKind::AddLearnerNode
                | ConfChangeKind::AddWitness => {
                    let learner = single.kind == ConfChangeKind::AddLearnerNode;
                    let ctx = context.clone();
                    if let Some(ctx) = &ctx
                        && id != self.me
                    {
                        applied
                            .peer_changes
                            .push(PeerChange::Add(id, ctx.addr.clone()));
                    }
                    tracing::info!(node = %id, learner, "member added");
                    self.members.add(id, ctx, learner, index);
                }
                ConfChangeKind::RemoveNode => {
                    tracing::info!(node = %id, "member removed");
                    self.members.remove(id);
                    if id == self.me {
                        applied.removed_self = true;
                    } else {
                        applied.peer_changes.push(PeerChange::Remove(id));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The entry at `index` is no command of this member's: a command this
/// member appended there as leader was replaced by a new leader.
fn supersede<O>(waiters: &mut Waiters<O>, index: Index) {
    let lost = |index| Err(ProposeError::Superseded { index });
    let none = waiters.proposals.take(index, None, lost);
    debug_assert!(none.is_none(), "no request was asked for");
}

/// Answers `add_voter` callers whose learner was promoted (or removed).
fn answer_promotions<O>(
    cc: &AnyConfChange,
    waiters: &mut Waiters<O>,
    answers: &mut Vec<(ChangeReply, Result<(), MembershipError>)>,
) {
    for single in cc.to_v2().changes {
        let outcome = match single.kind {
            ConfChangeKind::AddNode => Ok(()),
            ConfChangeKind::RemoveNode => {
                Err(MembershipError::NotMember(single.node_id, "learner"))
            }
            ConfChangeKind::AddLearnerNode | ConfChangeKind::AddWitness => continue,
        };
        for reply in waiters
            .promotions
            .remove(&single.node_id)
            .unwrap_or_default()
        {
            answers.push((reply, outcome.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use raft_core::{ConfChange, Config, FoundingLog, Term};
    use raft_storage::StorageOptions;

    use super::*;

    use crate::state_machine::testing::Nothing;

    fn nid(n: u64) -> NodeId {
        NodeId::new(n).expect("non-zero")
    }

    fn change(kind: ConfChangeKind, id: u64, addr: &str) -> ConfChange {
        ConfChange {
            kind,
            node_id: nid(id),
            context: Bytes::copy_from_slice(addr.as_bytes()),
        }
    }

    fn entry(index: u64, cc: ConfChange) -> Entry {
        let (kind, data) = AnyConfChange::V1(cc).to_entry_data();
        Entry {
            term: Term(1),
            index: Index(index),
            kind,
            data,
        }
    }

    #[test]
    fn a_committed_re_add_of_a_removed_id_is_refused_on_apply_by_every_member() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (storage, _) = DiskStorage::open(dir.path(), StorageOptions::new()).expect("open");
        let founders = (1..=3).map(|n| change(ConfChangeKind::AddNode, n, &format!("a:{n}")));
        let founding = FoundingLog::new(founders).expect("founders");
        storage.bootstrap(&founding).expect("bootstrap");
        let storage = Arc::new(storage);
        let sm = Arc::new(RwLock::new(Nothing));
        let mut replica = Replica::recover(nid(1), sm, &storage).expect("recover");
        let mut node = RawNode::new(Config::new(nid(1)), Arc::clone(&storage)).expect("node");
        let mut entries = founding.entries;
        entries.push(entry(4, change(ConfChangeKind::RemoveNode, 3, "")));
        // Proposed by a member that had not applied the removal yet.
        entries.push(entry(5, change(ConfChangeKind::AddNode, 3, "a:3")));
        let mut waiters = Waiters::<()>::default();
        let applied = replica.apply(entries, &mut node, &storage, &mut waiters);
        let voters: Vec<NodeId> = replica.conf_state().voters.iter().copied().collect();
        assert_eq!(voters, [nid(1), nid(2)]);
        assert!(replica.members().was_removed(nid(3)));
        assert_eq!(replica.members().addr(nid(3)), None);
        assert!(!applied.removed_self);
        assert_eq!(replica.applied(), Index(5));
        // The transport was told to forget node 3 last (after the
        // founding entry added it), not to add it again.
        let last_for_3 = applied.peer_changes.iter().rev().find(|c| match c {
            PeerChange::Add(id, _) | PeerChange::Remove(id) => *id == nid(3),
        });
        assert_eq!(last_for_3, Some(&PeerChange::Remove(nid(3))));
    }
}
