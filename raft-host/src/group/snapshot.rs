//! Snapshots off the write path: the loop hands a point-in-time image to
//! the host's snapshot pool, which serializes, writes and fsyncs it, then
//! records it in the storage's order (file, WAL marker, log compaction,
//! release of old files and segments), while the loop keeps committing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use raft_core::{ConfState, Index, SnapshotMetadata};
use raft_storage::{CompactionPolicy, DiskStorage, SnapshotError};

use crate::background::SnapshotPool;
use crate::scheduler::Waker;
use crate::state_machine::SnapshotImage;

/// One snapshot to take.
pub(crate) struct Job<I> {
    pub(crate) index: Index,
    pub(crate) conf_state: ConfState,
    /// The host's header (the address book), written ahead of the image.
    pub(crate) header: Vec<u8>,
    pub(crate) image: I,
    pub(crate) policy: CompactionPolicy,
}

/// How a job ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Taken {
        metadata: SnapshotMetadata,
        elapsed: Duration,
    },
    /// Nothing was recorded and nothing is wrong: a snapshot from the
    /// leader got there first, or the image failed to serialize (retried
    /// at the next interval).
    Skipped(String),
    /// The storage failed (and is poisoned).
    Failed(SnapshotError),
}

/// A group's snapshots, taken on the host's pool. At most one job is in
/// flight; its outcome arrives on `done`, and the group is woken.
#[derive(Debug)]
pub(crate) struct SnapshotWorker<I> {
    storage: Arc<DiskStorage>,
    pool: Arc<SnapshotPool>,
    waker: Waker,
    done_tx: Sender<Outcome>,
    done: Receiver<Outcome>,
    in_flight: bool,
    _image: std::marker::PhantomData<fn(I)>,
}

impl<I: SnapshotImage> SnapshotWorker<I> {
    pub(crate) fn new(
        storage: Arc<DiskStorage>,
        pool: Arc<SnapshotPool>,
        waker: Waker,
    ) -> SnapshotWorker<I> {
        let (done_tx, done) = crossbeam_channel::bounded(1);
        SnapshotWorker {
            storage,
            pool,
            waker,
            done_tx,
            done,
            in_flight: false,
            _image: std::marker::PhantomData,
        }
    }

    pub(crate) fn is_busy(&self) -> bool {
        self.in_flight
    }

    /// Hands a job over. Invariant: none is in flight.
    pub(crate) fn start(&mut self, job: Job<I>) {
        assert!(!self.in_flight, "one snapshot at a time");
        let storage = Arc::clone(&self.storage);
        let done = self.done_tx.clone();
        let waker = self.waker.clone();
        let work = Box::new(move || {
            let _ = done.send(take(&storage, job));
            waker.wake();
        });
        if self.pool.submit(work) {
            self.in_flight = true;
        }
    }

    /// The finished job's outcome, if it finished.
    pub(crate) fn poll(&mut self) -> Option<Outcome> {
        if !self.in_flight {
            return None;
        }
        match self.done.try_recv() {
            Ok(outcome) => {
                self.in_flight = false;
                Some(outcome)
            }
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                self.in_flight = false;
                Some(Outcome::Skipped("the snapshot pool stopped".into()))
            }
        }
    }

    /// Waits for the job in flight (at shutdown).
    pub(crate) fn finish(&mut self) -> Option<Outcome> {
        if !self.in_flight {
            return None;
        }
        self.in_flight = false;
        // The job holds a sender of its own: this returns once it ran, or
        // once the pool dropped it unrun.
        drop(std::mem::replace(
            &mut self.done_tx,
            crossbeam_channel::bounded(1).0,
        ));
        self.done.recv().ok()
    }
}

fn take<I: SnapshotImage>(storage: &DiskStorage, job: Job<I>) -> Outcome {
    let started = Instant::now();
    let mut data = job.header;
    if let Err(e) = job.image.write_to(&mut data) {
        return Outcome::Skipped(format!("the state machine image failed to serialize: {e}"));
    }
    match storage.snapshot_and_compact(job.index, job.conf_state, Bytes::from(data), job.policy) {
        Ok(metadata) => Outcome::Taken {
            metadata,
            elapsed: started.elapsed(),
        },
        // A snapshot from the leader replaced the log meanwhile.
        Err(e @ (SnapshotError::OutOfDate { .. } | SnapshotError::NotInLog { .. })) => {
            Outcome::Skipped(e.to_string())
        }
        Err(e) => Outcome::Failed(e),
    }
}
