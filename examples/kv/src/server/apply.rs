//! Applying committed entries to the state machine and the membership.

use std::sync::Arc;

use raft_core::{AnyConfChange, ConfChangeKind, Entry, EntryKind, NodeId};

use super::Refusal;
use super::raft_loop::{LoopError, RaftLoop};
use crate::metrics;
use crate::peer_url::PeerUrl;
use crate::store::{KvStore, Put};

impl RaftLoop {
    /// Applies `entries` in order (paper §5.3: state machines apply
    /// committed entries in log order) and answers the clients waiting for
    /// them.
    pub(super) fn apply_committed(&mut self, entries: Vec<Entry>) -> Result<(), LoopError> {
        if entries.is_empty() {
            return Ok(());
        }
        let store = Arc::clone(&self.store);
        let count = entries.len() as u64;
        for entry in entries {
            let index = entry.index.0;
            if index <= store.read().applied() {
                // Already reflected by the snapshot the store came from.
                continue;
            }
            match entry.kind {
                EntryKind::Normal => self.apply_normal(&mut store.write(), entry),
                EntryKind::ConfChange | EntryKind::ConfChangeV2 => {
                    self.apply_conf_entry(&entry);
                    store.write().set_applied(index);
                }
            }
        }
        metrics::add(&self.metrics.applies, count);
        Ok(())
    }

    fn apply_normal(&mut self, store: &mut KvStore, entry: Entry) {
        let index = entry.index.0;
        if entry.data.is_empty() {
            // A new leader's empty entry (paper §8).
            store.set_applied(index);
            return;
        }
        let Some(put) = Put::decode(entry.data) else {
            tracing::warn!(index, "committed entry is not a raftkv command; skipped");
            store.set_applied(index);
            return;
        };
        store.put(index, put.key, put.value);
        if let Some(reply) = self.writes.remove(&put.request_id) {
            let _ = reply.send(Ok(()));
        }
    }

    fn apply_conf_entry(&mut self, entry: &Entry) {
        let index = entry.index.0;
        let cc = match AnyConfChange::from_entry(entry) {
            Ok(Some(cc)) => cc,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(index, error = %e, "undecodable conf change; skipped");
                return;
            }
        };
        let changes = cc.to_v2().changes;
        // A removed id is never a member again (etcd's rule too): its old
        // process, log and votes may still be around. Refused here, on
        // replicated state, so every node refuses the same entries, even
        // one a node proposed before it applied the removal.
        let reused = changes.iter().find(|c| {
            matches!(
                c.kind,
                ConfChangeKind::AddNode | ConfChangeKind::AddLearnerNode
            ) && self.store.read().was_removed(c.node_id.get())
        });
        let applied = match reused {
            Some(c) => {
                tracing::warn!(
                    index,
                    node = c.node_id.get(),
                    "conf change re-adds a removed node id; refused"
                );
                Err(Refusal::Conflict(removed_id_refusal(c.node_id)))
            }
            None => self.node.apply_conf_change(&cc).map_err(|e| {
                tracing::warn!(index, error = %e, "conf change refused at apply");
                Refusal::Conflict(format!("membership change refused: {e}"))
            }),
        };
        let result = applied.map(|cs| {
            self.storage.set_conf_state(cs.clone());
            self.conf_state = cs;
        });
        for single in changes {
            if result.is_ok() {
                self.apply_peer_change(single.kind, single.node_id, &cc);
            }
            let mut i = 0;
            while i < self.conf_waiters.len() {
                let (id, kind, _) = &self.conf_waiters[i];
                if *id == single.node_id && *kind == single.kind {
                    let (_, _, reply) = self.conf_waiters.swap_remove(i);
                    let _ = reply.send(result.clone());
                } else {
                    i += 1;
                }
            }
        }
    }
}

/// Why node `id` cannot be added: it was removed before, and ids are
/// never reused.
pub(super) fn removed_id_refusal(id: NodeId) -> String {
    format!(
        "node {id} was removed from this cluster, and a removed node id is never reused (its old \
         process, log and votes may still be around): add the machine under a new id, with an \
         empty --data-dir"
    )
}

impl RaftLoop {
    /// Keeps the peer table (state machine and transport) in step with the
    /// membership; the URL of an added node travels in the conf change's
    /// context, as in raftexample.
    fn apply_peer_change(&mut self, kind: ConfChangeKind, id: NodeId, cc: &AnyConfChange) {
        let me = self.node.status().id;
        match kind {
            ConfChangeKind::AddNode | ConfChangeKind::AddLearnerNode => {
                let AnyConfChange::V1(v1) = cc else { return };
                let Ok(text) = std::str::from_utf8(&v1.context) else {
                    return;
                };
                if text.is_empty() {
                    return;
                }
                match PeerUrl::parse(text) {
                    Ok(url) => {
                        self.store
                            .write()
                            .set_peer(id.get(), url.as_str().to_string());
                        if id != me {
                            self.transport.add_peer(id, url);
                        }
                        tracing::info!(node = id.get(), url = text, "member added");
                    }
                    Err(e) => tracing::warn!(node = id.get(), error = %e, "bad URL in conf change"),
                }
            }
            ConfChangeKind::RemoveNode => {
                self.store.write().remove_peer(id.get());
                tracing::info!(node = id.get(), "member removed");
                if id == me {
                    // Linger two election timeouts: a removed leader hands
                    // over leadership and the survivors learn the commit.
                    self.removed_ticks_left = Some(self.node_election_ticks() * 2);
                } else {
                    self.transport.remove_peer(id);
                }
            }
        }
    }
}
