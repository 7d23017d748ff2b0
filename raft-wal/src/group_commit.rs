//! Group commit: concurrent synced saves share one `fdatasync`.
//!
//! Every batch gets a sequence number when it is queued (`written`). A sync
//! leader *takes* every batch queued so far (`taken`), writes the ones not
//! yet in the file with one call and fsyncs, with the lock released, so
//! other writers queue the next group meanwhile; then it *completes* the
//! group (`synced`) and *wakes* exactly that group's waiters, plus one
//! waiter of the next group, which leads next. The same three points carry
//! the byte offsets of the current segment: everything before
//! `synced_offset` is durable, everything before the pending bytes is in
//! the file, and the next batch goes at `offset`.
//!
//! The invariants, asserted at take, complete and wake (each has a test
//! below that breaks it on purpose):
//!
//! 1. `synced <= taken <= written`, and `synced_offset <= file end <=
//!    offset`, where the file end is `offset` minus the pending bytes.
//! 2. One group at a time: a leader takes only when the previous group is
//!    complete (`synced == taken`), and only while it holds the lead.
//! 3. A completion is for the group taken, in the same segment, and moves
//!    `synced` and `synced_offset` forward, never back, and not past what
//!    was queued.
//! 4. Waking a group's waiters happens only once that group is durable
//!    (`synced == taken`, no leader in flight); waking everyone only when
//!    everything is durable or the WAL is poisoned.
//! 5. Pending bytes are written under the lock only while no leader is in
//!    flight, and the segment changes only when nothing is pending,
//!    in flight or unsynced.
//!
//! Why parked threads rather than a condition variable for save waiters: a
//! condition variable would requeue them onto the mutex and wake them one
//! at a time, each wakeup waiting for the previous thread to run; with 64
//! writers that chain took about 1 ms per group.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};
use raft_io::FileHandle;

use crate::error::SaveError;

/// The longest a sync leader waits for the writers of the previous group to
/// queue again (see [`GroupCommit::wait_synced`]); below it, the last
/// group's own write + fsync time is the bound.
const GROUP_FILL_WAIT_MAX: Duration = Duration::from_millis(2);

/// Writes longer than this go out in chunks of this size (at file offsets
/// aligned to it), each handed to [`FileHandle::start_writeback`] once
/// written: the device then works while later chunks are copied, and the
/// `fdatasync` that follows waits for the last chunk rather than the whole
/// write (RocksDB's `bytes_per_sync`).
const WRITEBACK_CHUNK_BYTES: u64 = 1 << 20;

/// The state a [`GroupCommit`] keeps under its lock: what the writer's
/// other state needs to give it access to.
pub(crate) trait Synced {
    /// The group-commit state inside the locked value.
    fn sync(&mut self) -> &mut SyncState;
}

/// The sync sequence, the current segment's offsets and the parked
/// waiters; kept under the [`GroupCommit`]'s lock.
#[derive(Debug)]
pub(crate) struct SyncState {
    /// The file batches go to: the current segment.
    file: Arc<dyn FileHandle>,
    /// Counts segment switches, so a completion can check it is for the
    /// segment its group was taken from.
    segment: u64,
    /// Where the next batch goes in the current segment.
    offset: u64,
    /// Encoded batches not written yet; they end at `offset`. The next
    /// sync leader writes them all with one call before its `fdatasync`.
    pending: Vec<u8>,
    /// All bytes of the current segment before it are durable.
    synced_offset: u64,
    /// Batches queued since open.
    written_seq: u64,
    /// The last batch a sync leader took.
    taken_seq: u64,
    /// The last batch known durable.
    synced_seq: u64,
    /// Groups taken since open: the one in flight (while `syncing` and not
    /// `filling`) is number `groups`, the next is `groups + 1`.
    groups: u64,
    /// The threads of group `n` parked until it completes, in
    /// `parked[n % 2]`.
    parked: [Vec<Thread>; 2],
    /// Threads waiting for the group in flight.
    in_flight_waiters: u64,
    /// Threads waiting for the next group (target beyond `taken_seq`).
    next_waiters: u64,
    /// How many waiters the leader of the next group waits for: all the
    /// threads that waited when the last group completed, as writers
    /// acknowledged by a group usually come straight back.
    fill_target: u64,
    /// How long the last group's write + fsync took: the bound on waiting
    /// for a group to fill (waiting longer would cost more than the fsync
    /// it shares).
    last_sync: Duration,
    /// A sync leader holds the lead: filling its group or writing and
    /// syncing, with the lock released.
    syncing: bool,
    /// The leader is still waiting for its group to fill.
    filling: bool,
    /// A write or fsync failed: nothing more is written until reopen.
    poisoned: bool,
    /// Successful `fdatasync`s of groups and seals.
    fsyncs: u64,
}

/// What a leader took: the bytes it writes and the point it makes durable.
#[derive(Debug)]
struct Taken {
    data: Vec<u8>,
    /// Where `data` goes.
    at: u64,
    /// The last batch of the group.
    seq: u64,
    /// The offset the group makes durable: the end of its last batch.
    end: u64,
    segment: u64,
    file: Arc<dyn FileHandle>,
}

impl Synced for SyncState {
    fn sync(&mut self) -> &mut SyncState {
        self
    }
}

impl SyncState {
    /// The state of a segment whose first `offset` bytes are durable.
    pub(crate) fn new(file: Arc<dyn FileHandle>, offset: u64) -> SyncState {
        SyncState {
            file,
            segment: 0,
            offset,
            pending: Vec::new(),
            synced_offset: offset,
            written_seq: 0,
            taken_seq: 0,
            synced_seq: 0,
            groups: 0,
            parked: [Vec::new(), Vec::new()],
            in_flight_waiters: 0,
            next_waiters: 0,
            fill_target: 0,
            last_sync: Duration::ZERO,
            syncing: false,
            filling: false,
            poisoned: false,
            fsyncs: 0,
        }
    }

    /// Where the next batch goes.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// True while a sync leader is filling or writing its group.
    pub(crate) fn is_syncing(&self) -> bool {
        self.syncing
    }

    /// True once a write or fsync failed.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Marks the WAL poisoned (a failure outside the group commit).
    pub(crate) fn poison(&mut self) {
        self.poisoned = true;
    }

    /// Successful `fdatasync`s of groups and seals so far.
    pub(crate) fn fsyncs(&self) -> u64 {
        self.fsyncs
    }

    /// Queues a batch: `encode` appends its bytes to the pending bytes,
    /// given the offset the batch starts at and the offset up to which the
    /// segment is durable (what its commit frame records). Nothing is
    /// written yet. Returns the batch's length.
    pub(crate) fn queue(&mut self, encode: impl FnOnce(&mut Vec<u8>, u64, u64)) -> u64 {
        let before = self.pending.len();
        encode(&mut self.pending, self.offset, self.synced_offset);
        let len = (self.pending.len() - before) as u64;
        assert!(len > 0, "a batch has at least its commit frame");
        self.offset += len;
        self.written_seq += 1;
        len
    }

    /// Queues a batch of segment `segment_id`: the frames `encode` appends
    /// (it returns their count), then the commit frame that closes them.
    /// Returns the batch's length.
    pub(crate) fn queue_batch(
        &mut self,
        segment_id: u64,
        encode: impl FnOnce(&mut Vec<u8>, u64) -> u32,
    ) -> u64 {
        self.queue(|buf, batch_start, synced_through| {
            let frame_count = encode(buf, segment_id);
            let commit = crate::format::Commit {
                batch_start,
                synced_through,
                frame_count,
            };
            crate::format::put_commit(buf, segment_id, commit);
        })
    }

    /// Writes the pending bytes now, under the lock (no fsync): for a save
    /// that skips the fsync, and before rotation.
    ///
    /// # Errors
    /// [`SaveError::Io`], which poisons.
    pub(crate) fn flush(&mut self) -> Result<(), SaveError> {
        assert!(
            !self.syncing,
            "pending bytes are written under the lock only while no leader is in flight"
        );
        if self.pending.is_empty() {
            return Ok(());
        }
        let at = self.file_end();
        let result = write_streaming(self.file.as_ref(), at, &self.pending);
        self.pending.clear();
        result.map_err(|e| {
            self.poisoned = true;
            SaveError::Io(e)
        })
    }

    /// Switches to a new segment whose first `end` bytes are durable.
    pub(crate) fn start_segment(&mut self, file: Arc<dyn FileHandle>, end: u64) {
        assert!(
            !self.syncing && self.pending.is_empty() && self.synced_seq == self.written_seq,
            "the segment changes only when nothing is in flight, pending or unsynced"
        );
        self.file = file;
        self.segment += 1;
        self.offset = end;
        self.synced_offset = end;
    }

    /// The end of what is in the file: the pending bytes follow it.
    fn file_end(&self) -> u64 {
        self.offset - self.pending.len() as u64
    }

    /// Invariant 1.
    fn assert_ordered(&self) {
        assert!(
            self.synced_seq <= self.taken_seq && self.taken_seq <= self.written_seq,
            "sync sequence out of order: synced {} taken {} written {}",
            self.synced_seq,
            self.taken_seq,
            self.written_seq
        );
        let file_end = self.offset.checked_sub(self.pending.len() as u64);
        assert!(
            file_end.is_some_and(|end| self.synced_offset <= end),
            "offsets out of order: synced {} file end {file_end:?} next {}",
            self.synced_offset,
            self.offset
        );
    }

    /// Counts a new waiter in the group it waits for; true when a filling
    /// leader's group is now as large as it waits for.
    fn register_waiter(&mut self, next_group: bool) -> bool {
        if next_group {
            self.next_waiters += 1;
            self.filling && self.next_waiters >= self.fill_target
        } else {
            self.in_flight_waiters += 1;
            false
        }
    }

    /// Parks-list slot of the group in flight, or of the next one.
    fn slot(&self, next_group: bool) -> usize {
        let group = if next_group {
            self.groups + 1
        } else {
            self.groups
        };
        (group % 2) as usize
    }

    /// Takes every queued batch for the leader's group (invariant 2).
    fn take(&mut self) -> Taken {
        assert!(
            self.syncing && !self.filling,
            "only a leader that stopped filling takes"
        );
        assert_eq!(
            self.synced_seq, self.taken_seq,
            "a group is taken only when the previous one is complete"
        );
        self.assert_ordered();
        let at = self.file_end();
        self.taken_seq = self.written_seq;
        self.groups += 1;
        self.in_flight_waiters = std::mem::take(&mut self.next_waiters);
        Taken {
            data: std::mem::take(&mut self.pending),
            at,
            seq: self.written_seq,
            end: self.offset,
            segment: self.segment,
            file: Arc::clone(&self.file),
        }
    }

    /// Records that the group `taken` is durable (invariant 3).
    fn complete(&mut self, taken: &Taken, took: Duration) {
        assert_eq!(taken.seq, self.taken_seq, "completing a group not taken");
        assert_eq!(
            taken.segment, self.segment,
            "a group completes in its segment"
        );
        assert!(
            taken.seq >= self.synced_seq && taken.end >= self.synced_offset,
            "a completion moves the durable point back: seq {} < {} or offset {} < {}",
            taken.seq,
            self.synced_seq,
            taken.end,
            self.synced_offset
        );
        assert!(
            taken.end <= self.offset,
            "a completion moves the durable point past what was queued"
        );
        self.synced_seq = taken.seq;
        self.synced_offset = taken.end;
        self.last_sync = took;
        self.fill_target = self.in_flight_waiters + self.next_waiters;
        self.fsyncs += 1;
        self.assert_ordered();
    }

    /// The completed group's parked threads and one of the next group's
    /// to lead it (invariant 4).
    fn completed_waiters(&mut self) -> Vec<Thread> {
        assert!(
            !self.syncing && self.synced_seq == self.taken_seq,
            "waking a group that is not durable: synced {} taken {}",
            self.synced_seq,
            self.taken_seq
        );
        self.assert_ordered();
        let slot = (self.groups % 2) as usize;
        let mut woken = std::mem::take(&mut self.parked[slot]);
        // Last, so it is unparked first: the next group's leader starts
        // before the members of this one come back to join it.
        woken.extend(self.parked[1 - slot].pop());
        woken
    }

    /// Every parked thread (invariant 4).
    fn all_waiters(&mut self) -> Vec<Thread> {
        assert!(
            self.poisoned || self.synced_seq == self.written_seq,
            "waking every waiter while batches are neither durable nor failed"
        );
        let mut woken = std::mem::take(&mut self.parked[0]);
        woken.append(&mut self.parked[1]);
        woken
    }
}

/// A lock over the writer's state `T` (which holds a [`SyncState`]), with
/// the condition variables and wake lists of group commit.
#[derive(Debug)]
pub(crate) struct GroupCommit<T> {
    state: Mutex<T>,
    /// A copy of `SyncState::synced_seq`, stored under the lock and read
    /// without it: a woken waiter whose batch is durable returns without
    /// taking the lock again.
    synced_seq: AtomicU64,
    /// A thread waiting for the sync leader to finish (`quiesce`) sleeps
    /// on `group_done[n % 2]` for group `n`; save waiters park instead.
    group_done: [Condvar; 2],
    /// A leader filling its group sleeps here until enough waiters queued.
    group_filled: Condvar,
    /// Threads of a completed group still to be unparked. The leader and
    /// every thread it wakes take turns unparking them (see
    /// `complete_group`). Locked alone, never with `state`.
    to_wake: Mutex<Vec<Thread>>,
}

impl<T: Synced> GroupCommit<T> {
    /// Wraps the writer's state.
    pub(crate) fn new(state: T) -> GroupCommit<T> {
        GroupCommit {
            state: Mutex::new(state),
            synced_seq: AtomicU64::new(0),
            group_done: [Condvar::new(), Condvar::new()],
            group_filled: Condvar::new(),
            to_wake: Mutex::new(Vec::new()),
        }
    }

    /// Locks the writer's state.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.state.lock()
    }

    /// Waits until every batch queued so far is durable, leading the fsync
    /// if no other thread is.
    ///
    /// Before taking, a leader waits (bounded by the last group's sync
    /// time) until as many threads wait for its group as waited when the
    /// last group completed: writers acknowledged by a group usually come
    /// straight back, and taking before they do splits the writers into
    /// two alternating half-size groups.
    ///
    /// # Errors
    /// [`SaveError::Io`] if this thread's write or fsync failed (which
    /// poisons), [`SaveError::Poisoned`] if any failed.
    pub(crate) fn wait_synced<'a>(&'a self, mut g: MutexGuard<'a, T>) -> Result<(), SaveError> {
        let target = g.sync().written_seq;
        let mut registered = false;
        loop {
            let s = g.sync();
            if s.poisoned {
                // Whoever sees the poison first passes it on: waiters of
                // the next group are not woken by anything else.
                self.wake_all(s);
                return Err(SaveError::Poisoned);
            }
            if s.synced_seq >= target {
                return Ok(());
            }
            let next_group = target > s.taken_seq;
            if !registered {
                registered = true;
                if s.register_waiter(next_group) {
                    self.group_filled.notify_one();
                }
            }
            if s.syncing {
                let slot = s.slot(next_group);
                s.parked[slot].push(thread::current());
                drop(g);
                // An unpark that came before this park is not lost (the
                // token stays), and a spurious return just checks again.
                thread::park();
                if self.synced_seq.load(Ordering::Acquire) >= target {
                    self.help_wake();
                    return Ok(());
                }
                g = self.state.lock();
                continue;
            }
            self.lead(&mut g)?;
        }
    }

    /// Takes the lead, fills the group, writes and syncs it; on failure
    /// poisons and wakes every waiter.
    fn lead(&self, g: &mut MutexGuard<'_, T>) -> Result<(), SaveError> {
        g.sync().syncing = true;
        self.fill_group(g);
        let s = g.sync();
        if s.poisoned {
            s.syncing = false;
            self.wake_all(s);
            return Err(SaveError::Poisoned);
        }
        self.lead_group(g).map_err(|e| {
            let s = g.sync();
            s.poisoned = true;
            self.wake_all(s);
            SaveError::Io(e)
        })
    }

    /// A new leader waits (at most the last group's sync time, and
    /// [`GROUP_FILL_WAIT_MAX`]) until as many waiters queued as the last
    /// group had.
    fn fill_group(&self, g: &mut MutexGuard<'_, T>) {
        let s = g.sync();
        if s.next_waiters >= s.fill_target {
            return;
        }
        s.filling = true;
        let deadline = Instant::now() + s.last_sync.min(GROUP_FILL_WAIT_MAX);
        loop {
            let s = g.sync();
            if s.next_waiters >= s.fill_target || s.poisoned {
                break;
            }
            if self.group_filled.wait_until(g, deadline).timed_out() {
                break;
            }
        }
        g.sync().filling = false;
    }

    /// Leads a group: writes every queued batch with one call and fsyncs,
    /// without the lock, so other writers queue the next group meanwhile;
    /// then completes the group. An error is the write's or the fsync's.
    fn lead_group(&self, g: &mut MutexGuard<'_, T>) -> io::Result<()> {
        let mut taken = g.sync().take();
        let started = Instant::now();
        let result = MutexGuard::unlocked(g, || {
            if !taken.data.is_empty() {
                write_streaming(taken.file.as_ref(), taken.at, &taken.data)?;
            }
            taken.file.sync_data()
        });
        let s = g.sync();
        s.syncing = false;
        if s.pending.is_empty() {
            // Keep the allocation for the next group.
            taken.data.clear();
            s.pending = std::mem::take(&mut taken.data);
        }
        result?;
        s.complete(&taken, started.elapsed());
        self.synced_seq.store(s.synced_seq, Ordering::Release);
        self.complete_group(g);
        let s = g.sync();
        if !s.syncing && s.next_waiters == 0 && !s.pending.is_empty() {
            // Unsynced saves made during this sync left their bytes for it,
            // and no next group will take them.
            if let Err(e) = s.flush() {
                tracing::error!(error = %e, "writing unsynced batches failed; the WAL is poisoned");
                self.wake_all(s);
            }
        }
        Ok(())
    }

    /// Wakes the waiters of the group just synced, and one waiter of the
    /// next group to lead it.
    ///
    /// Waking a thread costs a few microseconds of system time (6 µs each
    /// on the 2-vCPU machine the benchmarks ran on), so one thread waking
    /// 64 writers would hold the next group back by ~0.4 ms. Instead every
    /// woken thread helps (`help_wake`) until the list is empty: the wakes
    /// run on every core at once.
    fn complete_group(&self, g: &mut MutexGuard<'_, T>) {
        let s = g.sync();
        self.group_done[(s.groups % 2) as usize].notify_all();
        let mut woken = s.completed_waiters();
        self.to_wake.lock().append(&mut woken);
        // Unparked without the lock, so the woken threads do not run into
        // it while this thread still holds it.
        MutexGuard::unlocked(g, || self.help_wake());
    }

    /// Unparks the threads in `to_wake` until none is left.
    fn help_wake(&self) {
        loop {
            let Some(t) = self.to_wake.lock().pop() else {
                return;
            };
            t.unpark();
        }
    }

    /// Wakes every waiter: after a failure or a rotation's own sync, which
    /// may satisfy or fail the waiters of any group.
    pub(crate) fn wake_all(&self, s: &mut SyncState) {
        for cv in &self.group_done {
            cv.notify_all();
        }
        self.group_filled.notify_all();
        for t in s.all_waiters() {
            t.unpark();
        }
    }

    /// Waits until no sync leader is in flight and writes the pending
    /// bytes, so the file holds every batch: what rotation needs.
    ///
    /// # Errors
    /// [`SaveError::Poisoned`], or the write's [`SaveError::Io`].
    pub(crate) fn quiesce(&self, g: &mut MutexGuard<'_, T>) -> Result<(), SaveError> {
        while g.sync().syncing {
            let s = g.sync();
            // A filling leader stops waiting for its group.
            s.fill_target = 0;
            self.group_filled.notify_one();
            let slot = s.slot(s.filling);
            self.group_done[slot].wait(g);
        }
        let s = g.sync();
        if s.poisoned {
            return Err(SaveError::Poisoned);
        }
        s.flush()
    }

    /// Makes every batch written to the current segment durable before the
    /// WAL leaves it (after [`GroupCommit::quiesce`]): no byte of it may be
    /// lost once a newer segment exists. Nothing to do when every batch is
    /// durable, the usual case (a Raft node syncs every save with entries).
    ///
    /// # Errors
    /// The fsync's; the caller poisons.
    pub(crate) fn seal(&self, s: &mut SyncState) -> io::Result<()> {
        assert!(
            !s.syncing && s.pending.is_empty(),
            "sealing a segment with a group in flight or bytes pending"
        );
        if s.synced_seq < s.written_seq {
            s.file.sync_data()?;
            s.fsyncs += 1;
        }
        s.synced_seq = s.written_seq;
        s.taken_seq = s.written_seq;
        s.synced_offset = s.offset;
        self.synced_seq.store(s.synced_seq, Ordering::Release);
        Ok(())
    }

    /// After a rotation (or its failure, which poisoned): its sync
    /// satisfied, or its failure failed, every waiter, whichever group it
    /// was queued for.
    pub(crate) fn release_all(&self, s: &mut SyncState) {
        s.next_waiters = 0;
        s.in_flight_waiters = 0;
        self.wake_all(s);
    }
}

/// Writes `data` at `at`; a long write goes out in chunks ending at
/// multiples of [`WRITEBACK_CHUNK_BYTES`], and writeback of each chunk but
/// the last is started as soon as it is written. Only a hint to the OS:
/// durability still comes from the `fdatasync` the caller issues, so the
/// hint's own errors are ignored.
pub(crate) fn write_streaming(file: &dyn FileHandle, at: u64, data: &[u8]) -> io::Result<()> {
    let end = at + data.len() as u64;
    let mut from = at;
    loop {
        let to = ((from / WRITEBACK_CHUNK_BYTES + 1) * WRITEBACK_CHUNK_BYTES).min(end);
        let chunk = &data[(from - at) as usize..(to - at) as usize];
        file.write_at(from, chunk)?;
        if to == end {
            return Ok(());
        }
        if let Err(e) = file.start_writeback(from, to - from) {
            tracing::trace!(error = %e, "start_writeback failed (ignored)");
        }
        from = to;
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use raft_io::{Backend, FaultKind, SimBackend};

    use super::*;

    /// A sync state over a fresh simulated file whose first 40 bytes are
    /// durable.
    fn state() -> (SimBackend, SyncState) {
        let sim = SimBackend::new();
        sim.create_dir_all(Path::new("/wal")).expect("mkdir");
        let file = sim.create(Path::new("/wal/segment")).expect("create");
        (sim, SyncState::new(Arc::from(file), 40))
    }

    /// Queues a batch of `len` bytes.
    fn queue(s: &mut SyncState, len: usize) {
        s.queue(|buf, _, _| buf.resize(buf.len() + len, 7));
    }

    /// Takes the lead and the group, as `GroupCommit::lead` does.
    fn take(s: &mut SyncState) -> Taken {
        s.syncing = true;
        s.take()
    }

    #[test]
    fn a_group_moves_every_point_forward_together() {
        let (_sim, mut s) = state();
        queue(&mut s, 24);
        queue(&mut s, 32);
        let taken = take(&mut s);
        assert_eq!((taken.at, taken.end, taken.seq), (40, 96, 2));
        // A batch queued while the group is in flight stays pending.
        queue(&mut s, 16);
        s.syncing = false;
        s.complete(&taken, Duration::ZERO);
        assert_eq!((s.synced_seq, s.taken_seq, s.written_seq), (2, 2, 3));
        assert_eq!((s.synced_offset, s.file_end(), s.offset), (96, 96, 112));
        assert!(s.completed_waiters().is_empty());
        s.flush().expect("write the unsynced batch");
        assert_eq!(s.file_end(), 112);
    }

    // Invariant 1: synced <= taken <= written, synced_offset <= file end.

    #[test]
    #[should_panic(expected = "sync sequence out of order")]
    fn taking_with_the_taken_point_past_the_written_one_panics() {
        let (_sim, mut s) = state();
        queue(&mut s, 24);
        s.synced_seq = 2;
        s.taken_seq = 2;
        take(&mut s);
    }

    #[test]
    #[should_panic(expected = "offsets out of order")]
    fn taking_with_the_durable_offset_past_the_file_end_panics() {
        let (_sim, mut s) = state();
        queue(&mut s, 24);
        s.synced_offset = 48; // the batch at 40..64 is only pending
        take(&mut s);
    }

    // Invariant 2: one group at a time, taken by the leader.

    #[test]
    #[should_panic(expected = "a group is taken only when the previous one is complete")]
    fn a_second_take_while_a_group_is_in_flight_panics() {
        let (_sim, mut s) = state();
        queue(&mut s, 24);
        take(&mut s);
        queue(&mut s, 24);
        take(&mut s);
    }

    #[test]
    #[should_panic(expected = "only a leader that stopped filling takes")]
    fn taking_without_the_lead_panics() {
        let (_sim, mut s) = state();
        queue(&mut s, 24);
        s.take();
    }

    // Invariant 3: a completion is for the group taken, in its segment,
    // forward only, and not past what was queued.

    #[test]
    #[should_panic(expected = "completing a group not taken")]
    fn completing_a_group_that_was_not_taken_panics() {
        let (_sim, mut s) = state();
        queue(&mut s, 24);
        let mut taken = take(&mut s);
        taken.seq += 1;
        s.complete(&taken, Duration::ZERO);
    }

    #[test]
    #[should_panic(expected = "a group completes in its segment")]
    fn completing_a_group_of_another_segment_panics() {
        let (_sim, mut s) = state();
        queue(&mut s, 24);
        let mut taken = take(&mut s);
        taken.segment += 1;
        s.complete(&taken, Duration::ZERO);
    }

    #[test]
    #[should_panic(expected = "a completion moves the durable point back")]
    fn a_completion_moving_the_durable_offset_back_panics() {
        let (_sim, mut s) = state();
        queue(&mut s, 24);
        let mut taken = take(&mut s);
        taken.end = 32; // below the 40 bytes already durable
        s.complete(&taken, Duration::ZERO);
    }

    #[test]
    #[should_panic(expected = "a completion moves the durable point back")]
    fn a_completion_moving_the_synced_sequence_back_panics() {
        let (_sim, mut s) = state();
        queue(&mut s, 24);
        let taken = take(&mut s);
        s.synced_seq = 2;
        s.taken_seq = 1;
        s.complete(&taken, Duration::ZERO);
    }

    #[test]
    #[should_panic(expected = "past what was queued")]
    fn a_completion_past_what_was_queued_panics() {
        let (_sim, mut s) = state();
        queue(&mut s, 24);
        let mut taken = take(&mut s);
        taken.end += 8;
        s.complete(&taken, Duration::ZERO);
    }

    // Invariant 4: waiters are woken only for durable groups.

    #[test]
    #[should_panic(expected = "waking a group that is not durable")]
    fn waking_a_group_before_it_completes_panics() {
        let (_sim, mut s) = state();
        queue(&mut s, 24);
        take(&mut s);
        s.syncing = false;
        s.completed_waiters();
    }

    #[test]
    #[should_panic(expected = "waking every waiter while batches are neither durable nor failed")]
    fn waking_everyone_with_batches_in_limbo_panics() {
        let (_sim, mut s) = state();
        queue(&mut s, 24);
        s.all_waiters();
    }

    // Invariant 5: the leader owns the file while in flight, and the
    // segment changes only when everything is durable.

    #[test]
    #[should_panic(expected = "only while no leader is in flight")]
    fn flushing_under_the_lock_while_a_leader_writes_panics() {
        let (_sim, mut s) = state();
        queue(&mut s, 24);
        s.syncing = true;
        let _ = s.flush();
    }

    #[test]
    #[should_panic(expected = "the segment changes only when nothing is in flight")]
    fn switching_segments_with_an_unsynced_batch_panics() {
        let (sim, mut s) = state();
        queue(&mut s, 24);
        s.flush().expect("written, not synced");
        let next = sim.create(Path::new("/wal/next")).expect("create");
        s.start_segment(Arc::from(next), 40);
    }

    #[test]
    #[should_panic(expected = "sealing a segment with a group in flight")]
    fn sealing_with_bytes_pending_panics() {
        let (_sim, s) = state();
        let gc = GroupCommit::new(s);
        let mut g = gc.lock();
        queue(&mut g, 24);
        let _ = gc.seal(&mut g);
    }

    #[test]
    #[should_panic(expected = "a batch has at least its commit frame")]
    fn queueing_an_empty_batch_panics() {
        let (_sim, mut s) = state();
        s.queue(|_, _, _| {});
    }

    #[test]
    fn concurrent_waiters_share_fsyncs_and_all_return() {
        let (sim, s) = state();
        let gc = Arc::new(GroupCommit::new(s));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let gc = Arc::clone(&gc);
                thread::spawn(move || {
                    for _ in 0..20 {
                        let mut g = gc.lock();
                        queue(&mut g, 24);
                        gc.wait_synced(g).expect("synced");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("join");
        }
        let s = gc.lock();
        assert_eq!(s.synced_seq, 160);
        assert_eq!(s.synced_offset, 40 + 160 * 24);
        assert!(s.fsyncs <= 160);
        assert_eq!(sim.stats().file_syncs, s.fsyncs);
    }

    #[test]
    fn a_failed_fsync_fails_its_group_and_poisons_every_later_wait() {
        let (sim, s) = state();
        let gc = GroupCommit::new(s);
        let mut g = gc.lock();
        queue(&mut g, 24);
        // The group's write, then its fsync.
        sim.inject_fault(sim.op_count() + 1, FaultKind::Eio);
        assert!(matches!(gc.wait_synced(g), Err(SaveError::Io(_))));
        let mut g = gc.lock();
        assert!(g.is_poisoned());
        queue(&mut g, 24);
        assert!(matches!(gc.wait_synced(g), Err(SaveError::Poisoned)));
    }
}
