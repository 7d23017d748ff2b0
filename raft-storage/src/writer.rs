//! [`PersistWriter`]: persisting on a thread of its own, for raft-core's
//! `async_storage_writes`.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use raft_core::{PersistBatch, ReadyNumber};

use crate::disk::DiskStorage;
use crate::error::PersistError;

/// The most batches one fsync covers; more wait for the next.
const MAX_BATCHES_PER_SYNC: usize = 256;

/// A writer thread for [`DiskStorage`]: submit each Ready's
/// [`PersistBatch`] (`Ready::take_persist_batch`) and keep stepping the
/// node; the thread writes batches in order, sharing one fsync among all
/// that queued meanwhile, and reports each durable Ready number on
/// [`PersistWriter::persisted`]: pass it to `RawNode::on_persisted`, then
/// send that Ready's `persisted_messages`.
///
/// On the first failure the thread reports it and stops (the storage is
/// poisoned); later submissions fail.
#[derive(Debug)]
pub struct PersistWriter {
    batches: Option<Sender<PersistBatch>>,
    persisted: Receiver<Result<ReadyNumber, PersistError>>,
    thread: Option<JoinHandle<()>>,
}

/// [`PersistWriter::submit`] after the writer stopped.
#[derive(Debug, thiserror::Error)]
#[error("the persist writer has stopped (after a failure it reported)")]
pub struct WriterStopped(pub Box<PersistBatch>);

impl PersistWriter {
    /// Starts the writer thread.
    ///
    /// # Errors
    /// The thread could not be spawned.
    pub fn spawn(storage: Arc<DiskStorage>) -> std::io::Result<PersistWriter> {
        let (batches, rx) = crossbeam_channel::unbounded::<PersistBatch>();
        let (done, persisted) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("raft-persist".into())
            .spawn(move || write_loop(&storage, &rx, &done))?;
        Ok(PersistWriter {
            batches: Some(batches),
            persisted,
            thread: Some(thread),
        })
    }

    /// Queues a batch; batches are written in the order submitted.
    ///
    /// # Errors
    /// [`WriterStopped`] (with the batch) once the writer has stopped.
    pub fn submit(&self, batch: PersistBatch) -> Result<(), WriterStopped> {
        let batches = self.batches.as_ref().expect("present until drop");
        batches
            .send(batch)
            .map_err(|e| WriterStopped(Box::new(e.0)))
    }

    /// Durable Ready numbers, in order (each covers every earlier one), or
    /// the failure that stopped the writer.
    pub fn persisted(&self) -> &Receiver<Result<ReadyNumber, PersistError>> {
        &self.persisted
    }
}

impl Drop for PersistWriter {
    /// Writes what is queued, then stops the thread.
    fn drop(&mut self) {
        drop(self.batches.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_loop(
    storage: &DiskStorage,
    batches: &Receiver<PersistBatch>,
    done: &Sender<Result<ReadyNumber, PersistError>>,
) {
    let mut group = Vec::with_capacity(MAX_BATCHES_PER_SYNC);
    while let Ok(first) = batches.recv() {
        group.push(first);
        group.extend(batches.try_iter().take(MAX_BATCHES_PER_SYNC - 1));
        let result = write_group(storage, &group);
        let failed = result.is_err();
        let _ = done.send(result);
        if failed {
            return;
        }
        group.clear();
    }
}

/// Writes `group` without syncing each batch, then syncs once if any of
/// them must be; returns the last number.
fn write_group(storage: &DiskStorage, group: &[PersistBatch]) -> Result<ReadyNumber, PersistError> {
    debug_assert!(
        group.windows(2).all(|w| w[0].number < w[1].number),
        "Readys are persisted in order"
    );
    let mut must_sync = false;
    for batch in group {
        must_sync |= batch.must_sync;
        storage.persist_parts(
            batch.snapshot.as_ref(),
            &batch.entries,
            batch.hard_state,
            false,
        )?;
    }
    if must_sync {
        storage.sync()?;
    }
    Ok(group.last().expect("at least one batch").number)
}
