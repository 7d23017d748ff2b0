//! The host's background threads, shared by every group: one storage
//! writer (asynchronous writes of all groups, one fsync per storage per
//! round however many Readys queued) and a small snapshot pool (images
//! serialized, written and fsynced off the loops). A group hands work over
//! with its [`Waker`](crate::scheduler::Waker), and is woken when the
//! result is waiting in its queue.

mod snapshots;
mod writer;

pub(crate) use snapshots::SnapshotPool;
pub(crate) use writer::{WriteJob, Writer};
