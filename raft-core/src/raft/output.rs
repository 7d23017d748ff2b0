//! What the node hands to the application (`Ready`, `LightReady`,
//! `Status`) and what the application reports back: persisted, applied.
//! `RawNode` translates; the work is here, next to the state it reads.

use super::{Raft, ReadState, RoleKind};
use crate::error::ReadyError;
use crate::log::RaftLog;
use crate::message::Message;
use crate::storage::{Storage, StorageError};
use crate::types::{Entry, Index, LogId, NodeId, Term};

impl<S: Storage> Raft<S> {
    /// This node.
    pub(crate) fn id(&self) -> NodeId {
        self.id
    }

    /// The current term.
    pub(crate) fn term(&self) -> Term {
        self.term
    }

    /// The log, read only.
    pub(crate) fn log(&self) -> &RaftLog<S> {
        &self.log
    }

    /// The role, without its state.
    pub(crate) fn role_kind(&self) -> RoleKind {
        self.role.kind()
    }

    /// `Config::async_storage_writes`.
    pub(crate) fn async_writes(&self) -> bool {
        self.cfg.async_storage_writes
    }

    /// The index of the snapshot this follower requested and waits for.
    pub(crate) fn pending_snapshot_index(&self) -> Option<Index> {
        self.pending_snapshot_request.map(|p| p.index)
    }

    /// True if a `Ready` would carry messages, read states, entries or a
    /// snapshot to persist, committed entries, or leader work (the soft and
    /// hard state are compared by the caller, which knows what it handed
    /// out last).
    pub(crate) fn has_output(&self) -> bool {
        !self.out.now.is_empty()
            || !self.out.after_persist.is_empty()
            || !self.read_states.is_empty()
            || self.log.has_unpersisted()
            || self.has_leader_work()
            || self
                .log
                .has_next_committed_entries(!self.cfg.async_storage_writes)
    }

    /// The messages that may be sent now.
    pub(crate) fn take_messages(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.out.now)
    }

    /// The messages that may leave only once the `Ready` is persisted.
    pub(crate) fn take_persisted_messages(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.out.after_persist)
    }

    /// The reads answered since the last `Ready`.
    pub(crate) fn take_read_states(&mut self) -> Vec<ReadState> {
        std::mem::take(&mut self.read_states)
    }

    /// The next committed entries to apply; with `allow_unstable` also
    /// entries not yet persisted here (synchronous writes persist them
    /// with the same `Ready`).
    pub(crate) fn next_committed_entries(
        &self,
        allow_unstable: bool,
    ) -> Result<Vec<Entry>, ReadyError> {
        let log = &self.log;
        log.next_committed_entries(allow_unstable)
            .map_err(|e| match e {
                StorageError::Compacted => ReadyError::CompactedBeyondApplied {
                    next: log.applying().next(),
                    first_index: log.first_index().unwrap_or(Index::ZERO),
                },
                other => ReadyError::Storage(other),
            })
    }

    /// The entries and snapshot of [`RaftLog::unpersisted`] were handed out
    /// for persisting.
    pub(crate) fn accept_in_progress(&mut self) {
        self.log.accept_in_progress();
    }

    /// Marks `entries` (the next committed ones) as handed to the
    /// application; a leader no longer counts them as uncommitted.
    pub(crate) fn hand_out_committed(&mut self, entries: &[Entry]) {
        if let Some(e) = entries.last() {
            self.log.accept_applying(e.index);
        }
        self.release_uncommitted(entries);
    }

    /// The snapshot at `index` is durable.
    pub(crate) fn snapshot_persisted(&mut self, index: Index) {
        self.log.snapshot_persisted(index);
    }

    /// The entries up to `id` are durable: they leave the unstable tail.
    pub(crate) fn stable_to(&mut self, id: LogId) {
        self.log.stable_to(id);
    }

    /// The next committed entries (from memory), then [`Raft::stable_to`]
    /// `id`.
    pub(crate) fn take_committed_and_stable_to(
        &mut self,
        id: LogId,
    ) -> Result<Vec<Entry>, StorageError> {
        self.log.take_committed_and_stable_to(id)
    }

    /// The state machine applied every committed entry up to `index`
    /// (capped at what was handed out); a leader may now leave a joint
    /// configuration.
    pub(crate) fn on_applied(&mut self, index: Index) -> Result<(), StorageError> {
        let index = index.min(self.log.applying());
        if index > self.log.applied() {
            self.log.applied_to(index);
            self.maybe_auto_leave()?;
        }
        Ok(())
    }
}
