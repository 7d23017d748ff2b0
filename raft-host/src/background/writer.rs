//! The host's storage writer: every group's asynchronous writes
//! (raft-core's `async_storage_writes`, thesis §10.2.1) go through one
//! thread, which takes every batch queued meanwhile, writes each storage's
//! batches in order without syncing, syncs each storage once if any of its
//! batches must be, and reports per group the last durable Ready number.
//! Storages that share a WAL share its fsync: the first one's sync makes
//! every group's writes durable and the others' return at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use raft_core::{GroupId, PersistBatch, ReadyNumber};
use raft_storage::{DiskStorage, PersistError};

use crate::metrics::{Histogram, Recorder};
use crate::scheduler::Waker;

/// The most batches one round takes; more wait for the next round.
const MAX_BATCHES_PER_ROUND: usize = 4096;

/// One Ready's durable part, and where to report it.
pub(crate) struct WriteJob {
    pub(crate) group: GroupId,
    pub(crate) storage: Arc<DiskStorage>,
    pub(crate) batch: PersistBatch,
    /// The group's report queue: durable Ready numbers, in order, or the
    /// failure (after which the storage is poisoned).
    pub(crate) report: Sender<Result<ReadyNumber, PersistError>>,
    pub(crate) waker: Waker,
}

/// The writer thread. [`Writer::stop`] writes what is queued and stops.
pub(crate) struct Writer {
    jobs: Mutex<Option<Sender<WriteJob>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

/// The writer has stopped (the host is shutting down).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the host's storage writer has stopped")]
pub(crate) struct WriterStopped;

impl Writer {
    /// Starts the thread; the fsyncs it does are observed in `recorder`
    /// ([`Histogram::Persist`]).
    pub(crate) fn start(name: String, recorder: Arc<dyn Recorder>) -> std::io::Result<Writer> {
        let (jobs, rx) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(&rx, recorder.as_ref()))?;
        Ok(Writer {
            jobs: Mutex::new(Some(jobs)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a job; a group's jobs are written in the order submitted.
    pub(crate) fn submit(&self, job: WriteJob) -> Result<(), WriterStopped> {
        match &*self.jobs.lock() {
            Some(jobs) => jobs.send(job).map_err(|_| WriterStopped),
            None => Err(WriterStopped),
        }
    }

    /// Writes what is queued, then stops the thread.
    pub(crate) fn stop(&self) {
        drop(self.jobs.lock().take());
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

fn run(jobs: &Receiver<WriteJob>, recorder: &dyn Recorder) {
    let mut round = Vec::with_capacity(64);
    while let Ok(first) = jobs.recv() {
        round.push(first);
        round.extend(jobs.try_iter().take(MAX_BATCHES_PER_ROUND - 1));
        write_round(&mut round, recorder);
    }
}

/// One storage's share of a round.
struct Pending {
    group: GroupId,
    storage: Arc<DiskStorage>,
    report: Sender<Result<ReadyNumber, PersistError>>,
    waker: Waker,
    must_sync: bool,
    /// The last Ready number written for this storage in the round.
    last: Option<ReadyNumber>,
    failed: Option<PersistError>,
}

/// Writes a round: every batch unsynced in submission order, then one
/// sync per storage that needs it, then the reports.
fn write_round(round: &mut Vec<WriteJob>, recorder: &dyn Recorder) {
    let mut pending: Vec<Pending> = Vec::new();
    let mut index: HashMap<*const DiskStorage, usize> = HashMap::new();
    for mut job in round.drain(..) {
        let key = Arc::as_ptr(&job.storage);
        let at = *index.entry(key).or_insert_with(|| {
            pending.push(Pending {
                group: job.group,
                storage: Arc::clone(&job.storage),
                report: job.report.clone(),
                waker: job.waker.clone(),
                must_sync: false,
                last: None,
                failed: None,
            });
            pending.len() - 1
        });
        let p = &mut pending[at];
        if p.failed.is_some() {
            continue;
        }
        debug_assert!(
            p.last.is_none_or(|last| last < job.batch.number),
            "a group's Readys come in order"
        );
        p.must_sync |= job.batch.must_sync;
        p.last = Some(job.batch.number);
        job.batch.must_sync = false;
        if let Err(e) = job.storage.persist_batch(&job.batch) {
            p.failed = Some(e);
        }
    }
    for p in pending {
        let result = match p.failed {
            Some(e) => Err(e),
            None => {
                let last = p.last.expect("a storage is pending for a batch it wrote");
                if p.must_sync {
                    sync(&p, recorder).map(|()| last)
                } else {
                    Ok(last)
                }
            }
        };
        let _ = p.report.send(result);
        p.waker.wake();
    }
}

/// Syncs `p`'s storage; observes the time if it did an fsync (a storage
/// whose shared WAL another's sync made durable in this round did none).
fn sync(p: &Pending, recorder: &dyn Recorder) -> Result<(), PersistError> {
    let before = p.storage.wal_stats().fsyncs;
    let started = Instant::now();
    p.storage.sync()?;
    if p.storage.wal_stats().fsyncs > before {
        recorder.observe(p.group, Histogram::Persist, started.elapsed());
    }
    Ok(())
}
