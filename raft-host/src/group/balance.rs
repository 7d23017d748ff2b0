//! Leadership where the application wants it: with
//! [`GroupOptions::preferred_leader`](crate::GroupOptions::preferred_leader)
//! set, a leader that is not the preferred member hands leadership to it
//! once it is a healthy, caught-up voter (thesis §3.10's leadership
//! transfer, so nothing committed is at risk). A host of many groups sets
//! a different preference per group, so that their leaders — and the work
//! leaders do — spread over the nodes instead of piling onto whichever
//! node won the first elections (TiKV's PD balances leaders for the same
//! reason; CockroachDB has lease preferences).
//!
//! When: a new leader first settles for two election timeouts, so that
//! proposals arriving with the election are not caught by a transfer (a
//! leader drops proposals while it hands over); but an idle group
//! quiesces a few ticks after its election (`quiesce_after_ticks`), so a
//! leader also hands over the moment its group quiesces — nothing is in
//! flight then, and the preferred member has just acknowledged
//! everything. After an attempt it waits a cooldown. A quiesced leader
//! that did not hand over stays where it is: it costs nothing on any
//! node, and a group that kept ticking to count down a wait would cost
//! every idle group a tick per tick (100,000 groups: a tenth of a core
//! per node). Balance resumes when the group wakes.

use raft_core::{NodeId, RawNode, RoleKind, Storage};

use super::health::Health;

/// Election timeouts between two attempts, so that a preferred member
/// that cannot hold leadership (slow, flapping) is not handed it over
/// and over.
const COOLDOWN_ELECTION_TIMEOUTS: u32 = 10;

/// The preference and when to look at it next.
#[derive(Debug)]
pub(crate) struct Balance {
    preferred: Option<NodeId>,
    cooldown_ticks: u32,
    /// After a look that found the preferred member unable to take over
    /// (lagging, silent, a learner, not a member): one election timeout,
    /// so that a busy group whose preferred member is down does not build
    /// a full status every tick.
    retry_ticks: u32,
    /// Awake ticks until a busy leader may hand over. Invariant: at most
    /// `cooldown_ticks` when `cooling`.
    wait_ticks: u32,
    /// The wait is the cooldown after an attempt (which a quiescing group
    /// does not skip), not the settling after the start.
    cooling: bool,
}

impl Balance {
    pub(crate) fn new(preferred: Option<NodeId>, election_timeout_ticks: u32) -> Balance {
        Balance {
            preferred,
            cooldown_ticks: election_timeout_ticks.saturating_mul(COOLDOWN_ELECTION_TIMEOUTS),
            retry_ticks: election_timeout_ticks,
            wait_ticks: election_timeout_ticks.saturating_mul(2),
            cooling: false,
        }
    }

    /// True when ticks would change nothing: no preferred leader, or this
    /// node does not lead (only a leader hands over), or it is the
    /// preferred one, or the group is quiesced (see the module docs).
    pub(crate) fn is_settled<S: Storage>(&self, node: &RawNode<S>) -> bool {
        let soft = node.soft_state();
        node.is_quiesced()
            || self
                .preferred
                .is_none_or(|to| soft.role != RoleKind::Leader || soft.leader == Some(to))
    }

    /// Once a tick, after the node's own tick: hands leadership to the
    /// preferred member if this node leads, may hand over now (the wait is
    /// over, or the group just quiesced), and the preferred member could
    /// take over at once.
    pub(crate) fn on_tick<S: Storage>(&mut self, node: &mut RawNode<S>, health: &Health) {
        let Some(to) = self.preferred else { return };
        self.wait_ticks = self.wait_ticks.saturating_sub(1);
        if self.wait_ticks == 0 {
            self.cooling = false;
        }
        let soft = node.soft_state();
        // Cheap guards first: this runs on every tick of every group.
        if soft.role != RoleKind::Leader || soft.leader == Some(to) {
            return;
        }
        let idle = node.is_quiesced() && !self.cooling;
        if self.wait_ticks > 0 && !idle {
            return;
        }
        let st = node.status();
        // Not a member (yet, or any more); a learner cannot lead; a
        // lagging or silent member would leave the group without a leader
        // until the transfer times out. Look again later (or when the
        // group quiesces: the retry does not count as cooling).
        let ready = st
            .progress
            .as_ref()
            .and_then(|p| p.get(&to))
            .is_some_and(|p| {
                !p.is_learner && p.matched >= st.hard_state.commit && health.is_healthy(to)
            });
        if !ready {
            self.wait_ticks = self.wait_ticks.max(self.retry_ticks);
            return;
        }
        (self.wait_ticks, self.cooling) = (self.cooldown_ticks, true);
        match node.transfer_leader(to) {
            Ok(()) => tracing::info!(to = %to, "handing leadership to the preferred leader"),
            Err(e) => tracing::debug!(to = %to, error = %e, "no transfer to the preferred leader"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use raft_core::{AnyConfChange, ConfState, Config, MemoryStorage};

    use super::*;

    /// Persists, applies (membership only) and advances until idle.
    fn settle(node: &mut RawNode<MemoryStorage>) {
        while node.has_ready() {
            let rd = node.ready().expect("ready");
            node.store().persist(&rd).expect("persist");
            for entry in &rd.committed_entries {
                if let Some(cc) = AnyConfChange::from_entry(entry).expect("entry") {
                    let cs = node.apply_conf_change(&cc).expect("conf change");
                    node.store().set_conf_state(cs);
                }
            }
            node.advance().expect("advance");
        }
    }

    fn nid(n: u64) -> NodeId {
        NodeId::new(n).expect("non-zero")
    }

    /// The only voter of its group, elected, preferring a member that
    /// does not exist (yet): it can never hand over.
    fn lone_leader() -> RawNode<MemoryStorage> {
        let mut cfg = Config::new(nid(1));
        cfg.quiesce_after_ticks = NonZeroU32::new(3);
        let storage = MemoryStorage::bootstrap(&ConfState::with_voters([nid(1)])).expect("store");
        let mut node = RawNode::new(cfg, storage).expect("node");
        settle(&mut node);
        node.campaign().expect("campaign");
        settle(&mut node);
        assert_eq!(node.soft_state().role, RoleKind::Leader);
        node
    }

    #[test]
    fn a_quiesced_leader_is_settled_wherever_it_is() {
        let mut node = lone_leader();
        let mut balance = Balance::new(Some(nid(2)), 10);
        let health = Health::new(20);
        assert!(!balance.is_settled(&node), "not the preferred leader");
        for _ in 0..100 {
            if node.is_quiesced() {
                break;
            }
            node.tick().expect("tick");
            balance.on_tick(&mut node, &health);
            settle(&mut node);
        }
        assert!(node.is_quiesced(), "an idle group quiesces");
        assert!(
            balance.is_settled(&node),
            "a quiesced group needs no ticks for its balance"
        );
    }

    #[test]
    fn only_a_leader_that_is_not_the_preferred_one_is_unsettled() {
        let node = lone_leader();
        assert!(Balance::new(None, 10).is_settled(&node));
        assert!(Balance::new(Some(nid(1)), 10).is_settled(&node));
        assert!(!Balance::new(Some(nid(2)), 10).is_settled(&node));
    }
}
