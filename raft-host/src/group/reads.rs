//! Linearizable reads: every read queued between two Readys shares one
//! ReadIndex round (thesis §6.4, batching), and is answered once the
//! state machine has applied the index the round confirmed.

use std::collections::{HashMap, VecDeque};

use raft_core::{Index, RawNode, ReadIndexError, ReadState, Storage};

use crate::error::ReadError;
use crate::reply::Reply;

type ReadReply = Reply<Result<(), ReadError>>;

/// Reads in their three stages. Invariant: `ready` is in index order.
#[derive(Debug)]
pub(crate) struct Reads {
    /// Arrived since the last round was started.
    queued: Vec<ReadReply>,
    /// Rounds in flight, by context, with the tick each was started at.
    rounds: HashMap<u64, (Vec<ReadReply>, u64)>,
    next_ctx: u64,
    /// Confirmed at an index, waiting for it to be applied.
    ready: VecDeque<(Index, Vec<ReadReply>)>,
}

impl Reads {
    /// `first_ctx` should differ between starts of the process, so that a
    /// late confirmation meant for a previous run matches no round.
    pub(crate) fn new(first_ctx: u64) -> Reads {
        Reads {
            queued: Vec::new(),
            rounds: HashMap::new(),
            next_ctx: first_ctx,
            ready: VecDeque::new(),
        }
    }

    /// True when no read waits in any stage.
    pub(crate) fn is_empty(&self) -> bool {
        self.queued.is_empty() && self.rounds.is_empty() && self.ready.is_empty()
    }

    pub(crate) fn queue(&mut self, reply: ReadReply) {
        self.queued.push(reply);
    }

    /// Starts one round for everything queued; true if one was started.
    /// `now` is the loop's tick count.
    pub(crate) fn start_round<S: Storage>(&mut self, node: &mut RawNode<S>, now: u64) -> bool {
        if self.queued.is_empty() {
            return false;
        }
        let waiters = std::mem::take(&mut self.queued);
        let ctx = self.next_ctx;
        self.next_ctx = self.next_ctx.wrapping_add(1);
        match node.read_index(ctx.to_le_bytes().to_vec()) {
            Ok(()) => {
                self.rounds.insert(ctx, (waiters, now));
                true
            }
            Err(e) => {
                let err = match e {
                    ReadIndexError::NoLeader => ReadError::NoLeader,
                    other => ReadError::Refused(other.to_string()),
                };
                for w in waiters {
                    w.send(Err(err.clone()));
                }
                false
            }
        }
    }

    /// Records the rounds a Ready confirmed.
    pub(crate) fn confirmed(&mut self, states: Vec<ReadState>) {
        for rs in states {
            let Ok(ctx) = <[u8; 8]>::try_from(&rs.context[..]) else {
                continue;
            };
            let Some((waiters, _)) = self.rounds.remove(&u64::from_le_bytes(ctx)) else {
                continue;
            };
            // Confirmed indexes grow with the commit index, but a round
            // confirmed by a new leader may come back lower than an older
            // one still waiting: keep the queue sorted.
            let at = self.ready.partition_point(|(i, _)| *i <= rs.index);
            self.ready.insert(at, (rs.index, waiters));
        }
    }

    /// Answers the reads whose index is applied; returns how many.
    pub(crate) fn release(&mut self, applied: Index) -> usize {
        let mut served = 0;
        while let Some((index, _)) = self.ready.front() {
            if *index > applied {
                break;
            }
            let (_, waiters) = self.ready.pop_front().expect("front exists");
            served += waiters.len();
            for w in waiters {
                w.send(Ok(()));
            }
        }
        served
    }

    /// Rounds sent to a leader that is gone are dropped there: ask them
    /// again, under new contexts, once a leader is known (a read has no
    /// effect, so the host retries it rather than every caller; the
    /// caller's timeout still bounds the wait). A late answer to an old
    /// context matches nothing. Reads already confirmed keep their index:
    /// a leader confirmed it while it led.
    pub(crate) fn leader_changed(&mut self) {
        for (_, (waiters, _)) in self.rounds.drain() {
            self.queued.extend(waiters);
        }
    }

    /// Rounds unanswered for `after_ticks` are asked again (under a new
    /// context): a ReadIndex request or its answer may be lost between a
    /// follower and the leader, and the leader does not resend it (etcd's
    /// server retries the same way). A late answer to the old context
    /// matches nothing.
    pub(crate) fn retry_stale(&mut self, now: u64, after_ticks: u64) {
        let stale: Vec<u64> = self
            .rounds
            .iter()
            .filter(|(_, (_, at))| now.saturating_sub(*at) >= after_ticks)
            .map(|(ctx, _)| *ctx)
            .collect();
        for ctx in stale {
            let (waiters, _) = self.rounds.remove(&ctx).expect("listed");
            self.queued.extend(waiters);
        }
    }

    /// Answers everything with `err` (the group stops).
    pub(crate) fn fail_all(&mut self, err: &ReadError) {
        let rounds = self.rounds.drain().flat_map(|(_, (w, _))| w);
        let ready = self.ready.drain(..).flat_map(|(_, w)| w);
        for w in self.queued.drain(..).chain(rounds).chain(ready) {
            w.send(Err(err.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply;

    #[test]
    fn a_read_in_flight_when_the_leader_changes_is_asked_again_not_failed() {
        let mut reads = Reads::new(7);
        let (w, mut rx) = reply::async_pair();
        reads.rounds.insert(7, (vec![w], 0));
        reads.leader_changed();
        assert!(reads.rounds.is_empty(), "the old round is forgotten");
        assert_eq!(reads.queued.len(), 1, "the read waits for the next round");
        assert!(rx.try_recv().is_err(), "the caller has no answer yet");
        // A late confirmation of the old round matches nothing.
        reads.confirmed(vec![ReadState {
            index: Index::from(5),
            context: 7u64.to_le_bytes().to_vec().into(),
        }]);
        assert!(reads.ready.is_empty());
    }
}
