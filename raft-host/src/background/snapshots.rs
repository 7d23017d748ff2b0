//! The host's snapshot pool: a few threads, shared by every group, that
//! serialize state-machine images and write them to storage. A group has
//! at most one snapshot in flight, so a pool of one thread already keeps
//! every loop free; more threads let several groups snapshot at once.

use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use parking_lot::Mutex;

/// A snapshot job, ready to run.
pub(crate) type Work = Box<dyn FnOnce() + Send>;

/// The pool. [`SnapshotPool::stop`] finishes the queued jobs and stops.
pub(crate) struct SnapshotPool {
    jobs: Mutex<Option<Sender<Work>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for SnapshotPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotPool").finish_non_exhaustive()
    }
}

impl SnapshotPool {
    pub(crate) fn start(threads: usize, name: &str) -> std::io::Result<SnapshotPool> {
        let (jobs, rx) = crossbeam_channel::unbounded::<Work>();
        let pool = SnapshotPool {
            jobs: Mutex::new(Some(jobs)),
            threads: Mutex::new(Vec::new()),
        };
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    for work in rx {
                        work();
                    }
                })?;
            pool.threads.lock().push(thread);
        }
        Ok(pool)
    }

    /// Queues a job; false once the pool has stopped (the job is dropped).
    pub(crate) fn submit(&self, work: Work) -> bool {
        match &*self.jobs.lock() {
            Some(jobs) => jobs.send(work).is_ok(),
            None => false,
        }
    }

    /// Runs what is queued, then stops the threads.
    pub(crate) fn stop(&self) {
        drop(self.jobs.lock().take());
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
    }
}
