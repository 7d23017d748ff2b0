//! A threaded driver: a [`RawNode`] running on its own thread, driven
//! through channels (etcd-raft's `Node` next to `RawNode`).
//!
//! Every call sends a command to the node's thread; calls that have an
//! outcome wait for it. [`Ready`]s arrive on [`Node::ready`]; after
//! handling one, call [`Node::advance`]. All channels are bounded, and once
//! the node stops every call returns [`NodeError::Stopped`] at once.

use std::ops::ControlFlow;
use std::thread::JoinHandle;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Select, Sender, bounded};

use crate::Config;
use crate::confchange::AnyConfChange;
use crate::error::{
    ApplyConfChangeError, CampaignError, ForgetLeaderError, NewError, ProposeError, ReadIndexError,
    ReadyError, RequestSnapshotError, StepError, TickError, TransferError,
};
use crate::message::Message;
use crate::raft::Proposal;
use crate::raw_node::{AdvanceError, RawNode, SnapshotStatus};
use crate::ready::Ready;
use crate::status::Status;
use crate::storage::Storage;
use crate::types::{ConfState, Index, NodeId};

/// Commands queued before the node's thread must pick them up.
const COMMAND_QUEUE: usize = 256;

/// Why a [`Node`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The node was stopped (or its thread ended on a storage failure; see
    /// [`Node::stop`]).
    #[error("the node is stopped")]
    Stopped,
    /// The command queue is full (ticks are dropped rather than queued
    /// without bound).
    #[error("the node is busy; command dropped")]
    Busy,
    /// A proposal was refused.
    #[error(transparent)]
    Propose(#[from] ProposeError),
    /// A message was refused.
    #[error(transparent)]
    Step(#[from] StepError),
    /// An election could not start.
    #[error(transparent)]
    Campaign(#[from] CampaignError),
    /// A read could not start.
    #[error(transparent)]
    ReadIndex(#[from] ReadIndexError),
    /// A transfer could not start.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// The leader could not be forgotten.
    #[error(transparent)]
    ForgetLeader(#[from] ForgetLeaderError),
    /// No snapshot could be requested.
    #[error(transparent)]
    RequestSnapshot(#[from] RequestSnapshotError),
    /// A conf change could not be applied.
    #[error(transparent)]
    ConfChange(#[from] ApplyConfChangeError),
}

/// Why the node's thread ended other than by [`Node::stop`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeFailure {
    /// Building a Ready failed.
    #[error(transparent)]
    Ready(#[from] ReadyError),
    /// Advancing failed.
    #[error(transparent)]
    Advance(#[from] AdvanceError),
    /// Ticking failed.
    #[error(transparent)]
    Tick(#[from] TickError),
}

type Reply<T> = Sender<T>;

enum Command {
    Tick,
    Campaign(Reply<Result<(), CampaignError>>),
    Propose(Bytes, Reply<Result<Proposal, ProposeError>>),
    ProposeConfChange(AnyConfChange, Reply<Result<Proposal, ProposeError>>),
    ApplyConfChange(
        AnyConfChange,
        Reply<Result<ConfState, ApplyConfChangeError>>,
    ),
    Step(Message, Reply<Result<(), StepError>>),
    Advance,
    ReadIndex(Bytes, Reply<Result<(), ReadIndexError>>),
    TransferLeader(NodeId, Reply<Result<(), TransferError>>),
    ForgetLeader(Reply<Result<(), ForgetLeaderError>>),
    RequestSnapshot(Reply<Result<Index, RequestSnapshotError>>),
    ReportUnreachable(NodeId),
    ReportSnapshot(NodeId, SnapshotStatus),
    Status(Reply<Status>),
    Stop,
}

/// A Raft node on its own thread.
pub struct Node {
    commands: Sender<Command>,
    ready: Receiver<Ready>,
    thread: Option<JoinHandle<Result<(), NodeFailure>>>,
}

impl Node {
    /// Starts a node over `storage` on a new thread.
    ///
    /// # Errors
    /// As [`RawNode::new`].
    pub fn start<S: Storage + Send + 'static>(
        config: Config,
        storage: S,
    ) -> Result<Node, NewError> {
        let raw = RawNode::new(config, storage)?;
        let (commands, command_rx) = bounded(COMMAND_QUEUE);
        let (ready_tx, ready) = bounded(1);
        let thread = std::thread::Builder::new()
            .name("raft-node".into())
            .spawn(move || run(raw, command_rx, ready_tx))
            .expect("spawning the node thread");
        Ok(Node {
            commands,
            ready,
            thread: Some(thread),
        })
    }

    fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, NodeError> {
        let (tx, rx) = bounded(1);
        self.commands
            .send(make(tx))
            .map_err(|_| NodeError::Stopped)?;
        rx.recv().map_err(|_| NodeError::Stopped)
    }

    /// Advances the logical clock. Never blocks: when the node is
    /// overloaded the tick is dropped and [`NodeError::Busy`] returned.
    ///
    /// # Errors
    /// [`NodeError::Busy`] or [`NodeError::Stopped`].
    pub fn tick(&self) -> Result<(), NodeError> {
        self.commands.try_send(Command::Tick).map_err(|e| match e {
            crossbeam_channel::TrySendError::Full(_) => NodeError::Busy,
            crossbeam_channel::TrySendError::Disconnected(_) => NodeError::Stopped,
        })
    }

    /// Starts an election.
    ///
    /// # Errors
    /// As [`RawNode::campaign`], or [`NodeError::Stopped`].
    pub fn campaign(&self) -> Result<(), NodeError> {
        Ok(self.call(Command::Campaign)??)
    }

    /// Proposes `data` and waits for the outcome: accepted (with its log
    /// position, or forwarded) or why it was dropped.
    ///
    /// # Errors
    /// As [`RawNode::propose`], or [`NodeError::Stopped`].
    pub fn propose(&self, data: impl Into<Bytes>) -> Result<Proposal, NodeError> {
        let data = data.into();
        Ok(self.call(|r| Command::Propose(data, r))??)
    }

    /// Proposes a membership change and waits for the outcome.
    ///
    /// # Errors
    /// As [`RawNode::propose_conf_change`], or [`NodeError::Stopped`].
    pub fn propose_conf_change(&self, cc: impl Into<AnyConfChange>) -> Result<Proposal, NodeError> {
        let cc = cc.into();
        Ok(self.call(|r| Command::ProposeConfChange(cc, r))??)
    }

    /// Applies a committed membership change.
    ///
    /// # Errors
    /// As [`RawNode::apply_conf_change`], or [`NodeError::Stopped`].
    pub fn apply_conf_change(&self, cc: AnyConfChange) -> Result<ConfState, NodeError> {
        Ok(self.call(|r| Command::ApplyConfChange(cc, r))??)
    }

    /// Hands a message from a peer to the node.
    ///
    /// # Errors
    /// As [`RawNode::step`], or [`NodeError::Stopped`].
    pub fn step(&self, m: Message) -> Result<(), NodeError> {
        Ok(self.call(|r| Command::Step(m, r))??)
    }

    /// The channel on which Readys arrive, one at a time: the next comes only
    /// after [`Node::advance`]. It disconnects when the node stops.
    pub fn ready(&self) -> &Receiver<Ready> {
        &self.ready
    }

    /// Reports the last Ready persisted and applied.
    ///
    /// # Errors
    /// [`NodeError::Stopped`].
    pub fn advance(&self) -> Result<(), NodeError> {
        self.commands
            .send(Command::Advance)
            .map_err(|_| NodeError::Stopped)
    }

    /// Starts a linearizable read; the answer arrives in a Ready.
    ///
    /// # Errors
    /// As [`RawNode::read_index`], or [`NodeError::Stopped`].
    pub fn read_index(&self, context: impl Into<Bytes>) -> Result<(), NodeError> {
        let context = context.into();
        Ok(self.call(|r| Command::ReadIndex(context, r))??)
    }

    /// Asks for `target` to become leader.
    ///
    /// # Errors
    /// As [`RawNode::transfer_leader`], or [`NodeError::Stopped`].
    pub fn transfer_leader(&self, target: NodeId) -> Result<(), NodeError> {
        Ok(self.call(|r| Command::TransferLeader(target, r))??)
    }

    /// Makes this follower forget its leader.
    ///
    /// # Errors
    /// As [`RawNode::forget_leader`], or [`NodeError::Stopped`].
    pub fn forget_leader(&self) -> Result<(), NodeError> {
        Ok(self.call(Command::ForgetLeader)??)
    }

    /// Asks the leader for a snapshot; returns the index it will reach.
    ///
    /// # Errors
    /// As [`RawNode::request_snapshot`], or [`NodeError::Stopped`].
    pub fn request_snapshot(&self) -> Result<Index, NodeError> {
        Ok(self.call(Command::RequestSnapshot)??)
    }

    /// See [`RawNode::report_unreachable`].
    ///
    /// # Errors
    /// [`NodeError::Stopped`].
    pub fn report_unreachable(&self, id: NodeId) -> Result<(), NodeError> {
        self.commands
            .send(Command::ReportUnreachable(id))
            .map_err(|_| NodeError::Stopped)
    }

    /// See [`RawNode::report_snapshot`].
    ///
    /// # Errors
    /// [`NodeError::Stopped`].
    pub fn report_snapshot(&self, id: NodeId, status: SnapshotStatus) -> Result<(), NodeError> {
        self.commands
            .send(Command::ReportSnapshot(id, status))
            .map_err(|_| NodeError::Stopped)
    }

    /// The node's state.
    ///
    /// # Errors
    /// [`NodeError::Stopped`].
    pub fn status(&self) -> Result<Status, NodeError> {
        self.call(Command::Status)
    }

    /// Stops the node and waits for its thread. Returns the failure that
    /// ended the thread early, if any. Calling it twice is harmless.
    ///
    /// # Errors
    /// The [`NodeFailure`] that stopped the node, if it was not this call.
    pub fn stop(&mut self) -> Result<(), NodeFailure> {
        // The thread may already be gone; then the send fails, which is fine.
        let _ = self.commands.send(Command::Stop);
        match self.thread.take() {
            Some(t) => t.join().expect("the node thread does not panic"),
            None => Ok(()),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The node's thread: serve commands, offer a Ready when one is due.
fn run<S: Storage>(
    mut raw: RawNode<S>,
    commands: Receiver<Command>,
    ready_tx: Sender<Ready>,
) -> Result<(), NodeFailure> {
    let mut pending: Option<Ready> = None;
    let mut awaiting_advance = false;
    loop {
        if pending.is_none() && !awaiting_advance && raw.has_ready() {
            // Hand the Ready over at once when the channel has room, so it is
            // visible before any later command is answered.
            match ready_tx.try_send(raw.ready()?) {
                Ok(()) => awaiting_advance = true,
                Err(crossbeam_channel::TrySendError::Full(rd)) => pending = Some(rd),
                Err(crossbeam_channel::TrySendError::Disconnected(_)) => return Ok(()),
            }
        }
        let mut sel = Select::new();
        let cmd_op = sel.recv(&commands);
        let ready_op = pending.as_ref().map(|_| sel.send(&ready_tx));
        let op = sel.select();
        if Some(op.index()) == ready_op {
            let rd = pending.take().expect("offered only when pending");
            if op.send(&ready_tx, rd).is_err() {
                // Nobody listens for Readys any more: the application is gone.
                return Ok(());
            }
            awaiting_advance = true;
            continue;
        }
        debug_assert_eq!(op.index(), cmd_op);
        let Ok(cmd) = op.recv(&commands) else {
            return Ok(());
        };
        if handle(&mut raw, cmd, &mut awaiting_advance)?.is_break() {
            return Ok(());
        }
    }
}

/// Carries out one command; `Break` once asked to stop.
fn handle<S: Storage>(
    raw: &mut RawNode<S>,
    cmd: Command,
    awaiting_advance: &mut bool,
) -> Result<ControlFlow<()>, NodeFailure> {
    // A caller that stopped waiting for its reply is no error of ours.
    match cmd {
        Command::Stop => return Ok(ControlFlow::Break(())),
        Command::Advance => {
            raw.advance()?;
            *awaiting_advance = false;
        }
        Command::Tick => raw.tick()?,
        Command::Campaign(r) => drop(r.send(raw.campaign())),
        Command::Propose(data, r) => drop(r.send(raw.propose(data))),
        Command::ProposeConfChange(cc, r) => drop(r.send(raw.propose_conf_change(cc))),
        Command::ApplyConfChange(cc, r) => drop(r.send(raw.apply_conf_change(&cc))),
        Command::Step(m, r) => drop(r.send(raw.step(m))),
        Command::ReadIndex(ctx, r) => drop(r.send(raw.read_index(ctx))),
        Command::TransferLeader(t, r) => drop(r.send(raw.transfer_leader(t))),
        Command::ForgetLeader(r) => drop(r.send(raw.forget_leader())),
        Command::RequestSnapshot(r) => drop(r.send(raw.request_snapshot())),
        Command::ReportUnreachable(id) => raw.report_unreachable(id),
        Command::ReportSnapshot(id, s) => raw.report_snapshot(id, s),
        Command::Status(r) => drop(r.send(raw.status())),
    }
    Ok(ControlFlow::Continue(()))
}
