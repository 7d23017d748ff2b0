//! [`GroupHandle`]: how an application talks to a running group.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use raft_core::{Index, NodeId};
use tokio::sync::watch;

use crate::error::{
    FatalError, ForgetLeaderError, MembershipError, ProposeError, ReadError, RequestSnapshotError,
    TransferError,
};
use crate::group::{Event, Exit, Mailbox, MembershipChange, Refused, StopReason};
use crate::reply::{self, Reply, WaitError};
use crate::state_machine::StateMachine;
use crate::status::GroupStatus;
use raft_core::GroupId;

/// The group stopped before the awaited condition held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the group stopped")]
pub struct GroupStopped;

/// A running group, from the application's side. Cheap to clone; every
/// call is safe from any thread. Async calls need a tokio runtime (for
/// their timeouts); each has a `_blocking` twin for plain threads.
pub struct GroupHandle<S: StateMachine> {
    group: GroupId,
    tx: Mailbox<S>,
    sm: Arc<RwLock<S>>,
    status: watch::Receiver<GroupStatus>,
    exit: watch::Receiver<Exit>,
    request_timeout: Duration,
    membership_timeout: Duration,
}

impl<S: StateMachine> Clone for GroupHandle<S> {
    fn clone(&self) -> Self {
        GroupHandle {
            group: self.group,
            tx: self.tx.clone(),
            sm: Arc::clone(&self.sm),
            status: self.status.clone(),
            exit: self.exit.clone(),
            request_timeout: self.request_timeout,
            membership_timeout: self.membership_timeout,
        }
    }
}

impl<S: StateMachine> std::fmt::Debug for GroupHandle<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupHandle")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// Why a request did not reach the loop.
enum SubmitError {
    Full,
    Closed,
}

/// The parts [`GroupHandle`] is made of (built by the host).
pub(crate) struct HandleParts<S: StateMachine> {
    pub(crate) group: GroupId,
    pub(crate) tx: Mailbox<S>,
    pub(crate) sm: Arc<RwLock<S>>,
    pub(crate) status: watch::Receiver<GroupStatus>,
    pub(crate) exit: watch::Receiver<Exit>,
    pub(crate) request_timeout: Duration,
    pub(crate) membership_timeout: Duration,
}

impl<S: StateMachine> GroupHandle<S> {
    pub(crate) fn new(parts: HandleParts<S>) -> GroupHandle<S> {
        GroupHandle {
            group: parts.group,
            tx: parts.tx,
            sm: parts.sm,
            status: parts.status,
            exit: parts.exit,
            request_timeout: parts.request_timeout,
            membership_timeout: parts.membership_timeout,
        }
    }

    /// A handle to no running group, over `state_machine`: every request
    /// fails at once with its `Stopped` error, and
    /// [`GroupHandle::read_local`] reads the state machine. For testing
    /// what sits in front of a group (an HTTP layer, say) without one.
    pub fn detached(group: GroupId, state_machine: S) -> GroupHandle<S> {
        let tx = Mailbox::detached();
        let mut status = GroupStatus::new(NodeId::new(1).expect("non-zero"));
        status.running = false;
        let (_, status_rx) = watch::channel(status);
        let (_, exit) = watch::channel(Some(Ok(StopReason::Shutdown)));
        GroupHandle {
            group,
            tx,
            sm: Arc::new(RwLock::new(state_machine)),
            status: status_rx,
            exit,
            request_timeout: Duration::from_secs(1),
            membership_timeout: Duration::from_secs(1),
        }
    }

    /// The group.
    pub fn group(&self) -> GroupId {
        self.group
    }

    fn submit(&self, event: Event<S>) -> Result<(), SubmitError> {
        match self.tx.try_send(event) {
            Ok(()) => Ok(()),
            Err(Refused::Full) => Err(SubmitError::Full),
            Err(Refused::Closed) => Err(SubmitError::Closed),
        }
    }

    /// Proposes `command`; returns its output once this member applied it
    /// (paper §8: the client gets the result of its own command).
    ///
    /// # Errors
    /// A [`ProposeError`]: [`ProposeError::NotLeader`] says where to go.
    pub async fn propose(&self, command: impl Into<Bytes>) -> Result<S::Output, ProposeError> {
        let (reply, rx) = reply::async_pair();
        self.submit_propose(command.into(), reply)?;
        propose_outcome(reply::wait_async(rx, self.request_timeout).await)
    }

    /// [`GroupHandle::propose`], blocking the calling thread.
    ///
    /// # Errors
    /// As [`GroupHandle::propose`].
    pub fn propose_blocking(&self, command: impl Into<Bytes>) -> Result<S::Output, ProposeError> {
        let (reply, rx) = reply::blocking_pair();
        self.submit_propose(command.into(), reply)?;
        propose_outcome(reply::wait_blocking(&rx, self.request_timeout))
    }

    fn submit_propose(
        &self,
        data: Bytes,
        reply: Reply<Result<S::Output, ProposeError>>,
    ) -> Result<(), ProposeError> {
        self.submit(Event::Propose { data, reply })
            .map_err(|e| match e {
                SubmitError::Full => ProposeError::Overloaded,
                SubmitError::Closed => ProposeError::Stopped,
            })
    }

    /// A linearizable read (ReadIndex, thesis §6.4): once this member has
    /// applied everything committed when the read arrived, runs `f` on
    /// the state machine. Reads queued together share one round.
    ///
    /// # Errors
    /// A [`ReadError`]; every case may be retried.
    pub async fn read<R>(&self, f: impl FnOnce(&S) -> R) -> Result<R, ReadError> {
        let (reply, rx) = reply::async_pair();
        self.submit_read(reply)?;
        read_outcome(reply::wait_async(rx, self.request_timeout).await)?;
        Ok(f(&self.sm.read()))
    }

    /// [`GroupHandle::read`], blocking the calling thread.
    ///
    /// # Errors
    /// As [`GroupHandle::read`].
    pub fn read_blocking<R>(&self, f: impl FnOnce(&S) -> R) -> Result<R, ReadError> {
        let (reply, rx) = reply::blocking_pair();
        self.submit_read(reply)?;
        read_outcome(reply::wait_blocking(&rx, self.request_timeout))?;
        Ok(f(&self.sm.read()))
    }

    fn submit_read(&self, reply: Reply<Result<(), ReadError>>) -> Result<(), ReadError> {
        self.submit(Event::Read { reply }).map_err(|e| match e {
            SubmitError::Full => ReadError::Overloaded,
            SubmitError::Closed => ReadError::Stopped,
        })
    }

    /// Runs `f` on this member's state machine as it is now: no round
    /// trip, but possibly stale (a "serializable" read). Successive local
    /// reads on one member never go back in time while it runs.
    pub fn read_local<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&self.sm.read())
    }

    /// Makes a membership change on the leader; answered once applied
    /// here (for [`MembershipChange::AddVoter`], once promoted).
    ///
    /// # Errors
    /// A [`MembershipError`].
    pub async fn change_membership(&self, change: MembershipChange) -> Result<(), MembershipError> {
        let (reply, rx) = reply::async_pair();
        self.submit_membership(change, reply)?;
        membership_outcome(reply::wait_async(rx, self.membership_timeout).await)
    }

    /// [`GroupHandle::change_membership`], blocking the calling thread.
    ///
    /// # Errors
    /// As [`GroupHandle::change_membership`].
    pub fn change_membership_blocking(
        &self,
        change: MembershipChange,
    ) -> Result<(), MembershipError> {
        let (reply, rx) = reply::blocking_pair();
        self.submit_membership(change, reply)?;
        membership_outcome(reply::wait_blocking(&rx, self.membership_timeout))
    }

    fn submit_membership(
        &self,
        change: MembershipChange,
        reply: Reply<Result<(), MembershipError>>,
    ) -> Result<(), MembershipError> {
        self.submit(Event::Membership { change, reply })
            .map_err(|e| match e {
                SubmitError::Full => MembershipError::Overloaded,
                SubmitError::Closed => MembershipError::Stopped,
            })
    }

    /// Adds a voter, learner first (see [`MembershipChange::AddVoter`]).
    ///
    /// # Errors
    /// A [`MembershipError`].
    pub async fn add_voter(
        &self,
        id: NodeId,
        addr: impl Into<String>,
    ) -> Result<(), MembershipError> {
        let addr = addr.into();
        self.change_membership(MembershipChange::AddVoter { id, addr })
            .await
    }

    /// Adds a learner.
    ///
    /// # Errors
    /// A [`MembershipError`].
    pub async fn add_learner(
        &self,
        id: NodeId,
        addr: impl Into<String>,
    ) -> Result<(), MembershipError> {
        let addr = addr.into();
        self.change_membership(MembershipChange::AddLearner { id, addr })
            .await
    }

    /// Promotes a caught-up learner.
    ///
    /// # Errors
    /// A [`MembershipError`].
    pub async fn promote(&self, id: NodeId) -> Result<(), MembershipError> {
        self.change_membership(MembershipChange::Promote { id })
            .await
    }

    /// Removes a member.
    ///
    /// # Errors
    /// A [`MembershipError`]; [`MembershipError::Unsafe`] when it would
    /// leave no healthy quorum.
    pub async fn remove(&self, id: NodeId) -> Result<(), MembershipError> {
        self.change_membership(MembershipChange::Remove { id })
            .await
    }

    /// Hands leadership to `to` (thesis §3.10); answered once `to` leads.
    ///
    /// # Errors
    /// A [`TransferError`].
    pub async fn transfer_leader(&self, to: NodeId) -> Result<(), TransferError> {
        self.call(|reply| Event::Transfer { to, reply }).await
    }

    /// Makes this follower forget its leader (etcd-raft's ForgetLeader), so
    /// that under CheckQuorum it grants a vote at once instead of waiting
    /// out an election timeout: call it on the followers before stopping
    /// or removing the leader. A leader still alive is followed again at
    /// its next heartbeat.
    ///
    /// # Errors
    /// A [`ForgetLeaderError`]; [`ForgetLeaderError::Refused`] on a leader
    /// or candidate, or with lease-based reads.
    pub async fn forget_leader(&self) -> Result<(), ForgetLeaderError> {
        self.call(|reply| Event::ForgetLeader { reply }).await
    }

    /// Asks the leader for a snapshot that replaces this follower's state
    /// machine (raft-rs's `request_snapshot`): for an application that
    /// finds its state damaged. Answered once requested, with the index
    /// the snapshot will reach at least; it is installed, and the state
    /// machine restored from it, like any snapshot from the leader (watch
    /// [`GroupStatus::snapshot`] with [`wait_for`](Self::wait_for)).
    ///
    /// # Errors
    /// A [`RequestSnapshotError`].
    pub async fn request_snapshot(&self) -> Result<Index, RequestSnapshotError> {
        self.call(|reply| Event::RequestSnapshot { reply }).await
    }

    /// Submits the request `event` wraps around its reply and waits for
    /// the answer, mapping a full queue, a stopped loop and the timeout to
    /// the request's own errors.
    async fn call<T, E: Refusal>(
        &self,
        event: impl FnOnce(Reply<Result<T, E>>) -> Event<S>,
    ) -> Result<T, E> {
        let (reply, rx) = reply::async_pair();
        self.submit(event(reply)).map_err(|e| match e {
            SubmitError::Full => E::OVERLOADED,
            SubmitError::Closed => E::STOPPED,
        })?;
        match reply::wait_async(rx, self.request_timeout).await {
            Ok(r) => r,
            Err(WaitError::Timeout) => Err(E::TIMEOUT),
            Err(WaitError::Dropped) => Err(E::STOPPED),
        }
    }

    /// The member's status as of its last Ready.
    pub fn status(&self) -> GroupStatus {
        self.status.borrow().clone()
    }

    /// Reads the member's status in place, without copying it: for a
    /// host of many groups that asks every group one thing (has it a
    /// leader?) often. The loop cannot publish a new status while `f`
    /// runs, so keep `f` short.
    pub fn with_status<R>(&self, f: impl FnOnce(&GroupStatus) -> R) -> R {
        f(&self.status.borrow())
    }

    /// Waits until the status satisfies `condition` (for instance a known
    /// leader, or an applied index), and returns that status.
    ///
    /// # Errors
    /// [`GroupStopped`] if the group stops first.
    pub async fn wait_for(
        &self,
        mut condition: impl FnMut(&GroupStatus) -> bool,
    ) -> Result<GroupStatus, GroupStopped> {
        let mut rx = self.status.clone();
        let st = rx
            .wait_for(|s| !s.running || condition(s))
            .await
            .map_err(|_| GroupStopped)?
            .clone();
        if condition(&st) {
            Ok(st)
        } else {
            Err(GroupStopped)
        }
    }

    /// Asks the loop to finish its current Ready, sync and stop. Pending
    /// requests are answered as interrupted (outcome unknown).
    pub fn shutdown(&self) {
        // A full queue still takes it (see `Mailbox::send_urgent`).
        let _ = self.tx.send_urgent(Event::Shutdown);
    }

    /// Waits for the loop to end, and says how it ended.
    ///
    /// # Errors
    /// The [`FatalError`] that stopped it.
    pub async fn stopped(&self) -> Result<StopReason, FatalError> {
        let mut rx = self.exit.clone();
        let exit = rx.wait_for(Option::is_some).await.map(|e| e.clone());
        match exit {
            Ok(Some(result)) => result,
            // The loop's thread is gone without a word: it panicked.
            _ => Err(FatalError {
                group: self.group,
                what: "run",
                reason: "the group's thread ended without a result".into(),
                disk_full: false,
            }),
        }
    }

    /// How the loop ended, if it has.
    pub fn exit(&self) -> Option<Result<StopReason, FatalError>> {
        self.exit.borrow().clone()
    }
}

fn propose_outcome<O>(r: Result<Result<O, ProposeError>, WaitError>) -> Result<O, ProposeError> {
    match r {
        Ok(r) => r,
        Err(WaitError::Timeout) => Err(ProposeError::Timeout),
        // The loop stopped with the proposal pending (it may have been
        // proposed and committed): unknown, not "nothing happened".
        Err(WaitError::Dropped) => Err(ProposeError::Interrupted),
    }
}

fn read_outcome(r: Result<Result<(), ReadError>, WaitError>) -> Result<(), ReadError> {
    match r {
        Ok(r) => r,
        Err(WaitError::Timeout) => Err(ReadError::Timeout),
        Err(WaitError::Dropped) => Err(ReadError::Stopped),
    }
}

fn membership_outcome(
    r: Result<Result<(), MembershipError>, WaitError>,
) -> Result<(), MembershipError> {
    match r {
        Ok(r) => r,
        Err(WaitError::Timeout) => Err(MembershipError::Timeout),
        Err(WaitError::Dropped) => Err(MembershipError::Interrupted),
    }
}

/// The errors every request to the loop can end with, other than its own.
trait Refusal {
    /// The request queue is full.
    const OVERLOADED: Self;
    /// The loop is not running.
    const STOPPED: Self;
    /// No answer in time.
    const TIMEOUT: Self;
}

macro_rules! refusal {
    ($($error:ident),*) => {$(
        impl Refusal for $error {
            const OVERLOADED: Self = $error::Overloaded;
            const STOPPED: Self = $error::Stopped;
            const TIMEOUT: Self = $error::Timeout;
        }
    )*};
}

refusal!(TransferError, ForgetLeaderError, RequestSnapshotError);
