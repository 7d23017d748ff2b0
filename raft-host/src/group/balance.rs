//! Leadership where the application wants it: with
//! [`GroupOptions::preferred_leader`](crate::GroupOptions::preferred_leader)
//! set, a leader that is not the preferred member hands leadership to it
//! once it is a healthy, caught-up voter (thesis §3.10's leadership
//! transfer, so nothing committed is at risk). A host of many groups sets
//! a different preference per group, so that their leaders — and the work
//! leaders do — spread over the nodes instead of piling onto whichever
//! node won the first elections (TiKV's PD balances leaders for the same
//! reason; CockroachDB has lease preferences).

use std::sync::Arc;

use raft_core::{NodeId, RawNode, RoleKind};
use raft_storage::DiskStorage;

use super::health::Health;

type Node = RawNode<Arc<DiskStorage>>;

/// Election timeouts between two attempts, so that a preferred member
/// that cannot hold leadership (slow, flapping) is not handed it over
/// and over.
const COOLDOWN_ELECTION_TIMEOUTS: u32 = 10;

/// The preference and when to look at it next.
#[derive(Debug)]
pub(crate) struct Balance {
    preferred: Option<NodeId>,
    cooldown_ticks: u32,
    /// Ticks until the next look. Invariant: at most `cooldown_ticks`.
    wait_ticks: u32,
}

impl Balance {
    pub(crate) fn new(preferred: Option<NodeId>, election_timeout_ticks: u32) -> Balance {
        let cooldown_ticks = election_timeout_ticks.saturating_mul(COOLDOWN_ELECTION_TIMEOUTS);
        Balance {
            preferred,
            cooldown_ticks,
            // A new leader settles for an election timeout or two first.
            wait_ticks: election_timeout_ticks.saturating_mul(2),
        }
    }

    /// Once a tick: hands leadership to the preferred member if this node
    /// leads and the preferred member could take over at once.
    /// True when ticks would change nothing: no preferred leader, or this
    /// node does not lead (only a leader hands over), or it is the
    /// preferred one.
    pub(crate) fn is_settled(&self, node: &Node) -> bool {
        let soft = node.soft_state();
        self.preferred
            .is_none_or(|to| soft.role != RoleKind::Leader || soft.leader == Some(to))
    }

    pub(crate) fn on_tick(&mut self, node: &mut Node, health: &Health) {
        let Some(to) = self.preferred else { return };
        if self.wait_ticks > 0 {
            self.wait_ticks -= 1;
            return;
        }
        self.wait_ticks = self.cooldown_ticks;
        let st = node.status();
        if st.soft_state.role != RoleKind::Leader || st.id == to {
            return;
        }
        let Some(progress) = st.progress.as_ref().and_then(|p| p.get(&to)) else {
            // Not a member (yet, or any more).
            return;
        };
        // A learner cannot lead; a lagging or silent member would leave
        // the group without a leader until the transfer times out.
        if progress.is_learner || progress.matched < st.hard_state.commit || !health.is_healthy(to)
        {
            return;
        }
        match node.transfer_leader(to) {
            Ok(()) => tracing::info!(to = %to, "handing leadership to the preferred leader"),
            Err(e) => tracing::debug!(to = %to, error = %e, "no transfer to the preferred leader"),
        }
    }
}
