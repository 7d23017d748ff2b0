//! Asynchronous storage writes (raft-core's `Config::async_storage_writes`,
//! thesis §10.2.1): each Ready's durable part goes to the host's storage
//! writer while the loop goes on; the Ready's `persisted_messages` wait
//! here until the writer reports that Ready durable.

use std::collections::VecDeque;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use raft_core::{GroupId, Message, PersistBatch, ReadyNumber};
use raft_storage::{DiskStorage, PersistError};

use crate::background::{WriteJob, Writer};
use crate::scheduler::Waker;

/// The group's end of the host's writer, and the messages waiting for
/// it. Invariant: `held` is in Ready-number order, and every number in it
/// was submitted.
#[derive(Debug)]
pub(crate) struct AsyncWrites {
    group: GroupId,
    writer: Arc<Writer>,
    storage: Arc<DiskStorage>,
    waker: Waker,
    report: Sender<Result<ReadyNumber, PersistError>>,
    reports: Receiver<Result<ReadyNumber, PersistError>>,
    held: VecDeque<(ReadyNumber, Vec<Message>)>,
    /// The last Ready number submitted.
    submitted: Option<ReadyNumber>,
}

/// A report the writer could not give.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    #[error(transparent)]
    Persist(#[from] PersistError),
    #[error("the storage writer stopped")]
    Stopped,
}

impl AsyncWrites {
    pub(crate) fn new(
        group: GroupId,
        writer: Arc<Writer>,
        storage: Arc<DiskStorage>,
        waker: Waker,
    ) -> AsyncWrites {
        let (report, reports) = crossbeam_channel::unbounded();
        AsyncWrites {
            group,
            writer,
            storage,
            waker,
            report,
            reports,
            held: VecDeque::new(),
            submitted: None,
        }
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
        let job = WriteJob {
            group: self.group,
            storage: Arc::clone(&self.storage),
            batch,
            report: self.report.clone(),
            waker: self.waker.clone(),
        };
        self.writer.submit(job).map_err(|_| WriteError::Stopped)?;
        self.held.push_back((number, persisted));
        self.submitted = Some(number);
        Ok(())
    }

    /// Durable Ready numbers reported since the last call.
    pub(crate) fn take_reports(
        &self,
    ) -> impl Iterator<Item = Result<ReadyNumber, PersistError>> + '_ {
        self.reports.try_iter()
    }

    /// Readys through `number` are durable: the messages they held.
    pub(crate) fn release(&mut self, number: ReadyNumber) -> Vec<Message> {
        let mut out = Vec::new();
        while self.held.front().is_some_and(|(n, _)| *n <= number) {
            let (_, mut messages) = self.held.pop_front().expect("checked non-empty");
            out.append(&mut messages);
        }
        out
    }

    /// Waits until everything submitted is durable or failed (at
    /// shutdown); the messages still held are dropped (the group stops).
    pub(crate) fn finish(self) {
        let Some(last) = self.submitted else { return };
        drop(self.report);
        while let Ok(report) = self.reports.recv() {
            match report {
                Ok(n) if n < last => {}
                _ => return,
            }
        }
    }
}
