//! Quorum arithmetic: which index a set of voters has committed and whether
//! an election is won. Pure functions of ids and numbers; nothing here knows
//! about logs or messages.

mod joint;
mod majority;

pub use joint::JointConfig;
pub use majority::MajorityConfig;

use crate::types::{Index, NodeId};

/// The outcome of counting votes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum VoteResult {
    /// Not decided yet: missing votes could still swing it.
    Pending,
    /// A quorum rejected.
    Lost,
    /// A quorum granted.
    Won,
}

/// Something that knows how far each voter's log is acknowledged.
pub trait AckedIndexer {
    /// The acknowledged index of `id`, or `None` if unknown.
    fn acked_index(&self, id: NodeId) -> Option<Index>;
}

impl<F: Fn(NodeId) -> Option<Index>> AckedIndexer for F {
    fn acked_index(&self, id: NodeId) -> Option<Index> {
        self(id)
    }
}
