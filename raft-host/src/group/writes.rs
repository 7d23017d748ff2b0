//! Asynchronous storage writes (raft-core's `Config::async_storage_writes`,
//! thesis §10.2.1): each Ready's durable part goes to raft-storage's
//! writer thread while the loop goes on; the Ready's `persisted_messages`
//! wait here until the writer reports that Ready durable.

use std::collections::VecDeque;
use std::sync::Arc;

use crossbeam_channel::Receiver;
use raft_core::{Message, PersistBatch};
use raft_storage::{DiskStorage, PersistError, PersistWriter};

/// The writer thread and the messages waiting for it. Invariant: `held`
/// is in Ready-number order, and every number in it was submitted.
#[derive(Debug)]
pub(crate) struct AsyncWrites {
    writer: PersistWriter,
    held: VecDeque<(u64, Vec<Message>)>,
}

/// A report the writer could not give.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    #[error(transparent)]
    Persist(#[from] PersistError),
    #[error("the storage writer thread stopped")]
    Stopped,
}

impl AsyncWrites {
    pub(crate) fn spawn(storage: Arc<DiskStorage>) -> std::io::Result<AsyncWrites> {
        Ok(AsyncWrites {
            writer: PersistWriter::spawn(storage)?,
            held: VecDeque::new(),
        })
    }

    /// Hands Ready `batch.number`'s durable part to the writer; `persisted`
    /// (its messages that vouch for it) leave once it is durable. Every
    /// Ready that has either is submitted, even with nothing to write, so
    /// that its number is reported after every earlier one.
    pub(crate) fn submit(
        &mut self,
        batch: PersistBatch,
        persisted: Vec<Message>,
    ) -> Result<(), WriteError> {
        let number = batch.number;
        debug_assert!(
            self.held.back().is_none_or(|(n, _)| *n < number),
            "Readys are submitted in order"
        );
        self.writer.submit(batch).map_err(|_| WriteError::Stopped)?;
        self.held.push_back((number, persisted));
        Ok(())
    }

    /// Where the writer reports durable Ready numbers.
    pub(crate) fn reports(&self) -> Receiver<Result<u64, PersistError>> {
        self.writer.persisted().clone()
    }

    /// Readys through `number` are durable: the messages they held.
    pub(crate) fn release(&mut self, number: u64) -> Vec<Message> {
        let mut out = Vec::new();
        while self.held.front().is_some_and(|(n, _)| *n <= number) {
            let (_, mut messages) = self.held.pop_front().expect("checked non-empty");
            out.append(&mut messages);
        }
        out
    }

    /// Waits for everything submitted to be written (at shutdown).
    pub(crate) fn finish(self) {
        drop(self.writer);
    }
}
