//! What an application gives the host: the replicated state machine.

use std::io::{Read, Write};

use bytes::Bytes;
use raft_core::Index;

/// One committed command, handed to [`StateMachine::apply`] in log order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The entry's position in the log.
    pub index: Index,
    /// What was proposed with [`GroupHandle::propose`](crate::GroupHandle::propose).
    pub data: Bytes,
}

/// The application's replicated state: every member applies the same
/// commands in the same order (paper §5.3) and so reaches the same state.
///
/// The host calls every method from its group's loop (on one of the
/// host's loop threads, one call at a time), except
/// [`SnapshotImage::write_to`], which runs on a snapshot thread while
/// the loop goes on committing and applying: that is why
/// [`StateMachine::snapshot`] returns a *point-in-time* image and not the
/// bytes. A state machine on a persistent (copy-on-write) map returns a
/// clone of the map, which costs O(1); one on a database returns a
/// read snapshot of it.
///
/// Reads run on the caller's thread under a read lock of the state
/// machine ([`GroupHandle::read`](crate::GroupHandle::read)), so they do
/// not queue behind the loop.
pub trait StateMachine: Send + Sync + 'static {
    /// What applying one command returns to its proposer (for instance
    /// the previous value, or an application-level refusal such as a
    /// failed compare-and-swap: those are outputs, not errors).
    type Output: Send + 'static;
    /// A point-in-time image of the state, written off the loop.
    type Image: SnapshotImage;

    /// Applies a batch of committed commands in log order, pushing one
    /// output per command onto `outputs` (in the same order).
    ///
    /// Applying must be deterministic: it may depend only on the state
    /// and the command, so that every member computes the same state.
    fn apply(&mut self, commands: &[Command], outputs: &mut Vec<Self::Output>);

    /// An image of the state as of the last applied command. Called from
    /// the loop: it should be cheap (O(1) or close to it), since
    /// the loop waits for it; the expensive part is
    /// [`SnapshotImage::write_to`].
    fn snapshot(&self) -> Self::Image;

    /// Replaces the whole state with the one `data` holds (written by
    /// [`SnapshotImage::write_to`] on some member). Called when the
    /// group starts from a snapshot on disk and when the leader sends a
    /// snapshot because this member is behind the compacted log.
    ///
    /// # Errors
    /// Data that does not decode, or a reader failure. The host stops the
    /// group: the snapshot was checksummed, so this is a bug or a damaged
    /// disk, and carrying on would diverge.
    fn restore(&mut self, data: &mut dyn Read) -> std::io::Result<()>;
}

/// A point-in-time image of a [`StateMachine`], written to disk on the
/// host's snapshot pool.
pub trait SnapshotImage: Send + 'static {
    /// Writes the image in the format [`StateMachine::restore`] reads.
    ///
    /// # Errors
    /// A writer failure (the host retries at the next interval).
    fn write_to(self, out: &mut dyn Write) -> std::io::Result<()>;
}

impl SnapshotImage for Bytes {
    fn write_to(self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(&self)
    }
}

impl SnapshotImage for Vec<u8> {
    fn write_to(self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(&self)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use std::io::Read;

    use super::{Command, StateMachine};

    /// A state machine that applies nothing, for tests of the plumbing.
    pub(crate) struct Nothing;

    impl StateMachine for Nothing {
        type Output = ();
        type Image = Vec<u8>;
        fn apply(&mut self, commands: &[Command], outputs: &mut Vec<()>) {
            outputs.extend(commands.iter().map(|_| ()));
        }
        fn snapshot(&self) -> Vec<u8> {
            Vec::new()
        }
        fn restore(&mut self, _data: &mut dyn Read) -> std::io::Result<()> {
            Ok(())
        }
    }
}
