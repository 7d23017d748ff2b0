//! What the application must do next: the output of a `RawNode`.

use crate::message::Message;
use crate::raft::RoleKind;
use crate::types::{Entry, HardState, Index, NodeId, Snapshot};

/// The leader must send a follower a snapshot, and storage has none that
/// would do: the newest one predates the follower's membership (a member
/// added after it was taken refuses it), or predates the compacted log.
/// Until the application takes a newer snapshot (and makes
/// [`Storage::snapshot`](crate::Storage::snapshot) return it), the follower
/// cannot catch up.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct SnapshotRequest {
    /// Take the snapshot once the state machine has applied at least this
    /// index, at the index it applied: such a snapshot includes the
    /// follower's membership and reaches the compacted log.
    pub min_index: Index,
    /// The follower waiting for it.
    pub to: NodeId,
}

/// The sequence number of a [`Ready`]: the first a node hands out is 1,
/// each next one 1 more. Persistence is reported by it
/// ([`RawNode::on_persisted`](crate::RawNode::on_persisted)): reporting a
/// number reports every Ready up to it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReadyNumber(u64);

impl ReadyNumber {
    /// The number of a node's first Ready.
    pub const FIRST: ReadyNumber = ReadyNumber(1);

    /// The number `raw`, or `None` for zero (no Ready has it); for an
    /// application that stored a number and reads it back.
    pub const fn new(raw: u64) -> Option<ReadyNumber> {
        if raw == 0 {
            None
        } else {
            Some(ReadyNumber(raw))
        }
    }

    /// The raw value, at least 1.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The number of the Ready after this one.
    #[must_use]
    pub(crate) const fn next(self) -> ReadyNumber {
        ReadyNumber(self.0 + 1)
    }
}

impl std::fmt::Display for ReadyNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::fmt::Debug for ReadyNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ready#{}", self.0)
    }
}

/// The durable part of one [`Ready`]: what step 2 writes, in this order
/// (snapshot, entries, hard state), taken out with
/// [`Ready::take_persist_batch`]. Batches must be persisted in `number`
/// order; once one is durable, report it with
/// [`RawNode::on_persisted`](crate::RawNode::on_persisted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistBatch {
    /// The number of the Ready it came from.
    pub number: ReadyNumber,
    /// A snapshot received from the leader; it replaces the whole log.
    pub snapshot: Option<Snapshot>,
    /// Entries to append; writing index `i` discards any persisted entries
    /// at `i` and after (Raft's conflict truncation, paper §5.3).
    pub entries: Vec<Entry>,
    /// Term, vote and commit, when they changed.
    pub hard_state: Option<HardState>,
    /// True when the batch must be fsynced before the Ready's
    /// `persisted_messages` leave (a commit-only change need not be).
    pub must_sync: bool,
}

impl PersistBatch {
    /// A batch of Ready `number` with nothing to write yet (fill in its
    /// fields), for an application or test that builds batches itself.
    pub fn new(number: ReadyNumber) -> PersistBatch {
        PersistBatch {
            number,
            snapshot: None,
            entries: Vec::new(),
            hard_state: None,
            must_sync: false,
        }
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.entries.is_empty() && self.hard_state.is_none()
    }
}

/// Volatile state worth reporting: who leads and what this node is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SoftState {
    /// The known leader (this node, when leading).
    pub leader: Option<NodeId>,
    /// This node's role.
    pub role: RoleKind,
}

/// A batch of work for the application, handed out by
/// [`RawNode::ready`](crate::RawNode::ready). Handle it in this order:
///
/// 1. Send [`Ready::messages`] — they do not depend on this Ready being
///    durable (a leader's appends may travel while it writes its own log,
///    thesis §10.2.1).
/// 2. Persist [`Ready::snapshot`], [`Ready::entries`] (writing index `i`
///    discards any persisted entries at `i` and after) and
///    [`Ready::hard_state`]; fsync if [`Ready::must_sync`].
/// 3. Only then send [`Ready::persisted_messages`]: votes and append
///    acknowledgements vouch for the state just persisted.
/// 4. Apply the snapshot, then [`Ready::committed_entries`] in order
///    (membership changes through
///    [`RawNode::apply_conf_change`](crate::RawNode::apply_conf_change)).
/// 5. If [`Ready::snapshot_request`] is set, take a snapshot as it asks.
/// 6. Call [`RawNode::advance`](crate::RawNode::advance).
#[derive(Debug)]
#[non_exhaustive]
pub struct Ready {
    /// This Ready's sequence number.
    pub number: ReadyNumber,
    /// Set when the leader or role changed since the previous Ready.
    pub soft_state: Option<SoftState>,
    /// Set when term, vote or commit changed: persist it.
    pub hard_state: Option<HardState>,
    /// A snapshot received from the leader: persist it, then restore the
    /// state machine from it.
    pub snapshot: Option<Snapshot>,
    /// Entries to append to stable storage.
    pub entries: Vec<Entry>,
    /// Committed entries to apply, in order. May include entries of
    /// `entries` (persist first). Paginated by
    /// `Config::max_committed_size_per_ready`.
    pub committed_entries: Vec<Entry>,
    /// Messages that may be sent immediately.
    pub messages: Vec<Message>,
    /// Messages that may only be sent after step 2 is durable.
    pub persisted_messages: Vec<Message>,
    /// Reads confirmed since the last Ready: serve each once the state
    /// machine has applied its index.
    pub read_states: Vec<crate::ReadState>,
    /// Set on a leader when storage has no snapshot that can bring a
    /// follower up to date: take one as the request says (the leader sends
    /// it at the follower's next heartbeat response). Asked again at most
    /// once per election timeout while the need lasts, so a request lost
    /// (or not served yet) is not fatal; a snapshot already being taken
    /// answers a repeated request.
    pub snapshot_request: Option<SnapshotRequest>,
    /// True when the hard state's term or vote, the entries or the snapshot
    /// changed: they must be fsynced before `persisted_messages` are sent.
    /// A commit-index-only change need not be synced.
    pub must_sync: bool,
}

impl Ready {
    /// Moves the durable part of this Ready (step 2: snapshot, entries,
    /// hard state) into a [`PersistBatch`], for an application that
    /// persists on another thread (`Config::async_storage_writes`). The
    /// Ready keeps its messages, committed entries and read states;
    /// `snapshot` and `entries` are left empty.
    pub fn take_persist_batch(&mut self) -> PersistBatch {
        PersistBatch {
            number: self.number,
            snapshot: self.snapshot.take(),
            entries: std::mem::take(&mut self.entries),
            hard_state: self.hard_state,
            must_sync: self.must_sync,
        }
    }

    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.soft_state.is_none()
            && self.hard_state.is_none()
            && self.snapshot.is_none()
            && self.entries.is_empty()
            && self.committed_entries.is_empty()
            && self.messages.is_empty()
            && self.persisted_messages.is_empty()
            && self.read_states.is_empty()
            && self.snapshot_request.is_none()
    }
}
