//! Which peers this member heard from lately, in ticks: what the strict
//! reconfiguration check and the promotion of learners count as healthy.
//!
//! raft-core's own activity marks (CheckQuorum's `recent_active`) are
//! reset at every check, so right after one every follower looks
//! inactive; this keeps a sliding window instead, as etcd's server does
//! for `--strict-reconfig-check` with its transport's activity times.

use std::collections::HashMap;

use raft_core::NodeId;

/// Last-heard times. Invariant: every recorded time is at most `now`.
#[derive(Debug)]
pub(crate) struct Health {
    now: u64,
    window_ticks: u64,
    last_heard: HashMap<NodeId, u64>,
}

impl Health {
    /// Peers heard from within the last `window_ticks` ticks are healthy.
    pub(crate) fn new(window_ticks: u64) -> Health {
        Health {
            now: 0,
            window_ticks,
            last_heard: HashMap::new(),
        }
    }

    pub(crate) fn tick(&mut self) {
        self.now += 1;
    }

    /// A message from `id` arrived.
    pub(crate) fn heard(&mut self, id: NodeId) {
        self.last_heard.insert(id, self.now);
    }

    /// Heard from within the window.
    pub(crate) fn is_healthy(&self, id: NodeId) -> bool {
        self.last_heard
            .get(&id)
            .is_some_and(|t| self.now - t <= self.window_ticks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_healthy_for_a_window_after_it_was_heard_from() {
        let id = NodeId::new(2).expect("non-zero");
        let mut h = Health::new(3);
        assert!(!h.is_healthy(id), "never heard from");
        h.heard(id);
        for _ in 0..3 {
            h.tick();
            assert!(h.is_healthy(id));
        }
        h.tick();
        assert!(!h.is_healthy(id));
        h.heard(id);
        assert!(h.is_healthy(id));
    }
}
