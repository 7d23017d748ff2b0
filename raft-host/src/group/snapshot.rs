//! Snapshots off the write path: the loop hands a point-in-time image to
//! a thread of its own, which serializes, writes and fsyncs it, then
//! records it in the storage's order (file, WAL marker, log compaction,
//! release of old files and segments), while the loop keeps committing.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use raft_core::{ConfState, Index, SnapshotMetadata};
use raft_storage::{CompactionPolicy, DiskStorage, SnapshotError};

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

/// The snapshot thread. At most one job is in flight.
#[derive(Debug)]
pub(crate) struct SnapshotWorker<I> {
    jobs: Option<Sender<Job<I>>>,
    done: Receiver<Outcome>,
    in_flight: bool,
    thread: Option<JoinHandle<()>>,
}

impl<I: SnapshotImage> SnapshotWorker<I> {
    pub(crate) fn spawn(
        storage: Arc<DiskStorage>,
        name: String,
    ) -> std::io::Result<SnapshotWorker<I>> {
        let (jobs, rx) = crossbeam_channel::bounded::<Job<I>>(1);
        let (tx, done) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            for job in rx {
                if tx.send(take(&storage, job)).is_err() {
                    return;
                }
            }
        })?;
        Ok(SnapshotWorker {
            jobs: Some(jobs),
            done,
            in_flight: false,
            thread: Some(thread),
        })
    }

    pub(crate) fn is_busy(&self) -> bool {
        self.in_flight
    }

    /// Hands a job over. Invariant: none is in flight.
    pub(crate) fn start(&mut self, job: Job<I>) {
        assert!(!self.in_flight, "one snapshot at a time");
        let jobs = self.jobs.as_ref().expect("present until drop");
        if jobs.send(job).is_ok() {
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
                Some(Outcome::Skipped("the snapshot thread ended".into()))
            }
        }
    }

    /// Waits for the job in flight (at shutdown), then stops the thread.
    pub(crate) fn finish(&mut self) -> Option<Outcome> {
        let outcome = if self.in_flight {
            self.in_flight = false;
            self.done.recv().ok()
        } else {
            None
        };
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        outcome
    }
}

impl<I> Drop for SnapshotWorker<I> {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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
