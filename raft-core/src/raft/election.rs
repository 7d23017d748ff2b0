//! Elections: pre-vote, campaign, vote granting and counting (paper §5.2,
//! §5.4.1; thesis §9.6 for pre-vote).

use bytes::Bytes;

use super::{Ignored, LeaderState, Raft, Role};
use crate::error::StepError;
use crate::message::{Message, MessageBody, VoteRequest, VoteResponse};
use crate::quorum::VoteResult;
use crate::storage::{Storage, StorageError};
use crate::tracker::{Progress, ProgressMap};
use crate::types::{Entry, EntryKind, NodeId, Term};

/// Which round a campaign runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum CampaignKind {
    /// Ask first whether an election could be won (thesis §9.6).
    PreElection,
    /// A real election in a new term.
    Election,
    /// A real election started by a leadership transfer: skips pre-vote
    /// and overrides the voters' leader lease (thesis §3.10).
    Transfer,
}

impl<S: Storage> Raft<S> {
    /// The election timer fired, or the application asked to campaign.
    pub(crate) fn hup(&mut self, transfer: bool) -> Result<(), StorageError> {
        if self.is_leader() {
            tracing::debug!(id = %self.id, "ignoring campaign: already leader");
            return Ok(());
        }
        if self.cfg.witness {
            tracing::debug!(id = %self.id, "ignoring campaign: a witness never campaigns");
            return Ok(());
        }
        if !self.promotable() {
            tracing::warn!(id = %self.id, "ignoring campaign: not a voter");
            return Ok(());
        }
        if self.term >= Term::MAX {
            // Only 2^31 forged messages in a row or 2^63 elections get here
            // (see `Term::MAX_JUMP`); a campaign would overflow the term.
            tracing::error!(id = %self.id, term = %self.term, "ignoring campaign: no term left");
            return Ok(());
        }
        if self.has_unapplied_conf_changes()? {
            // A committed change may remove us or change the quorum; campaign
            // only under the configuration the log says is current.
            tracing::warn!(id = %self.id, "ignoring campaign: committed conf change not yet applied");
            return Ok(());
        }
        let kind = match (transfer, self.cfg.pre_vote) {
            (true, _) => CampaignKind::Transfer,
            (false, true) => CampaignKind::PreElection,
            (false, false) => CampaignKind::Election,
        };
        self.campaign(kind)
    }

    /// Starts a (pre-)election and asks every voter, in id order.
    pub(crate) fn campaign(&mut self, kind: CampaignKind) -> Result<(), StorageError> {
        let vote_term = if kind == CampaignKind::PreElection {
            self.become_pre_candidate();
            self.term.next()
        } else {
            self.become_candidate();
            self.term
        };
        let last = self.log.last_log_id()?;
        let request = VoteRequest {
            last,
            transfer: kind == CampaignKind::Transfer,
        };
        let voters: Vec<NodeId> = self
            .membership
            .voters()
            .ids()
            .filter(|&v| v != self.id)
            .collect();
        for to in voters {
            let body = if kind == CampaignKind::PreElection {
                MessageBody::PreVote(request)
            } else {
                MessageBody::Vote(request)
            };
            self.out.push(Message {
                from: self.id,
                to,
                term: vote_term,
                body,
            });
        }
        tracing::info!(id = %self.id, term = %vote_term, last = %last, kind = ?kind, "campaign started");
        if kind == CampaignKind::PreElection {
            // A pre-vote changes nothing durable: it counts at once. A real
            // self-vote counts only once the Ready holding it is persisted
            // (see `on_hard_state_persisted`).
            self.record_vote(self.id, true)?;
        }
        Ok(())
    }

    fn become_pre_candidate(&mut self) {
        debug_assert!(!self.is_leader(), "leader cannot become pre-candidate");
        // The term and vote stay: a pre-candidate changes nothing durable.
        self.election_elapsed = 0;
        self.role = Role::PreCandidate(Default::default());
        tracing::debug!(id = %self.id, term = %self.term, "became pre-candidate");
    }

    fn become_candidate(&mut self) {
        debug_assert!(!self.is_leader(), "leader cannot become candidate");
        let term = self.term.next();
        self.reset(term);
        self.vote = Some(self.id);
        self.role = Role::Candidate(Default::default());
        // As leader this node would append: a snapshot at the requested
        // index could then drop entries it acknowledged.
        self.clear_snapshot_request("campaigning");
        tracing::debug!(id = %self.id, term = %self.term, "became candidate");
    }

    /// Won the election (paper §5.2). Appends an empty entry so that entries
    /// of earlier terms commit through it (§5.4.2, thesis §6.4).
    pub(crate) fn become_leader(&mut self) -> Result<(), StorageError> {
        debug_assert!(
            matches!(self.role, Role::Candidate(_)),
            "only a candidate can win"
        );
        let term = self.term;
        self.reset(term);
        let last = self.log.last_index()?;
        let mut progress = ProgressMap::new();
        for id in self.membership.members() {
            let mut pr = Progress::new(
                last.next(),
                self.cfg.max_inflight_msgs,
                self.cfg.max_inflight_bytes,
            );
            pr.set_learner(!self.membership.is_voter(id));
            if id == self.id {
                // Our own log matches by definition; entries count toward
                // commit once persisted (`on_entries_persisted`).
                pr.become_replicate();
                pr.mark_active();
            }
            progress.insert(id, pr);
        }
        self.role = Role::Leader(Box::new(LeaderState {
            progress,
            uncommitted_size: 0,
            broadcast_pending: false,
            // Entries of earlier terms may hold a conf change: wait until all
            // of them are applied before accepting another.
            pending_conf_index: last,
            reads: Default::default(),
            transferee: None,
            stepping_down: false,
            snapshot_request: None,
            quiet_ticks: 0,
            term_start_tick: self.ticks,
        }));
        let noop = Entry {
            term,
            index: last.next(),
            kind: EntryKind::Normal,
            data: Bytes::new(),
        };
        debug_assert!(!self.cfg.witness, "a witness never campaigns");
        let rescuer = self.may_rescue();
        self.lead(|l| {
            l.append_leader_entry(noop);
            if rescuer {
                // Elected by the rescue path: lead only to hand over.
                l.state.stepping_down = true;
                l.hand_over_leadership();
            }
        });
        tracing::info!(id = %self.id, term = %term, "became leader");
        Ok(())
    }

    /// Grants or rejects a vote (paper §5.2 first-come-first-served, §5.4.1
    /// up-to-date check). Runs in every role after the term rules. `req`
    /// is `m`'s request, a pre-vote if `pre`.
    pub(crate) fn handle_vote_request(
        &mut self,
        m: &Message,
        req: VoteRequest,
        pre: bool,
    ) -> Result<(), StepError> {
        // We already voted for this candidate (a retransmission), or have not
        // voted and know no leader; a pre-vote for a future term is not
        // bound by this term's vote.
        let can_vote = self.vote == Some(m.from)
            || (self.vote.is_none() && self.leader().is_none())
            || (pre && m.term > self.term);
        let up_to_date = self.log.is_up_to_date(req.last)?;
        let grant = can_vote && up_to_date;
        let reject = !grant;
        // A granted answer carries the request's term so the candidate counts
        // it; a rejection carries ours so a stale candidate catches up.
        let term = if grant { m.term } else { self.term };
        let body = if pre {
            MessageBody::PreVoteResponse(VoteResponse { reject })
        } else {
            MessageBody::VoteResponse(VoteResponse { reject })
        };
        self.out.push(Message {
            from: self.id,
            to: m.from,
            term,
            body,
        });
        if grant && !pre {
            // Thesis §3.4: the vote must be durable before the response leaves
            // (it does: vote responses wait for the Ready to be persisted).
            self.election_elapsed = 0;
            self.vote = Some(m.from);
        }
        tracing::debug!(
            id = %self.id, from = %m.from, term = %m.term, pre, granted = grant,
            candidate_last = %req.last, "vote request handled"
        );
        if !up_to_date {
            self.maybe_rescue_election(m.from)?;
        }
        Ok(())
    }

    /// A voter that still counts us asked for a vote we refused because our
    /// log is ahead of its own. If we applied our own removal (or demotion),
    /// nobody else may be able to win: the remaining voters may not know the
    /// change committed and keep needing our vote, which their shorter logs
    /// never get. So we campaign under our applied configuration (its
    /// voters, not us, decide), and as leader hand leadership to a voter
    /// once it has our log and the commit index (see
    /// `hand_over_leadership`). Found by the simulator; without it,
    /// membership-on-apply can leave a cluster without a leader forever.
    fn maybe_rescue_election(&mut self, asker: NodeId) -> Result<(), StorageError> {
        let rescuer = self.may_rescue()
            && matches!(self.role, Role::Follower { .. })
            && self.membership.is_voter(asker);
        if !rescuer || self.has_unapplied_conf_changes()? {
            return Ok(());
        }
        tracing::info!(id = %self.id, asker = %asker, "removed node with the longest log campaigns to hand over");
        self.retry_rescue_election()
    }

    /// Runs (again) the campaign of the rescue path.
    pub(crate) fn retry_rescue_election(&mut self) -> Result<(), StorageError> {
        if self.has_unapplied_conf_changes()? {
            self.become_follower(self.term, None);
            return Ok(());
        }
        let kind = if self.cfg.pre_vote {
            CampaignKind::PreElection
        } else {
            CampaignKind::Election
        };
        self.campaign(kind)
    }

    /// Messages while campaigning.
    pub(crate) fn step_candidate(&mut self, m: Message) -> Result<(), StepError> {
        let pre = matches!(self.role, Role::PreCandidate(_));
        match &m.body {
            MessageBody::Propose(_) => Err(crate::error::ProposeError::NoLeader.into()),
            // A leader exists for this term (or, for a pre-candidate, this or a
            // later term): fall back to follower (paper §5.2).
            MessageBody::Append(_)
            | MessageBody::Heartbeat(_)
            | MessageBody::Snapshot(_)
            | MessageBody::Quiesce(_) => {
                self.become_follower(m.term, Some(m.from));
                self.step_follower(m)
            }
            MessageBody::VoteResponse(r) if !pre => {
                self.record_vote(m.from, !r.reject)?;
                Ok(())
            }
            MessageBody::PreVoteResponse(r) if pre => {
                // Granted answers come at our term + 1, rejections at ours.
                let expected = if r.reject {
                    self.term
                } else {
                    self.term.next()
                };
                if m.term != expected {
                    self.ignore(&m, Ignored::Stale);
                    return Ok(());
                }
                self.record_vote(m.from, !r.reject)?;
                Ok(())
            }
            MessageBody::TimeoutNow => {
                self.ignore(&m, Ignored::WrongRole);
                Ok(())
            }
            _ => {
                self.ignore(&m, Ignored::WrongRole);
                Ok(())
            }
        }
    }

    /// Records a vote and acts on the result.
    pub(crate) fn record_vote(&mut self, from: NodeId, granted: bool) -> Result<(), StorageError> {
        let (Role::PreCandidate(votes) | Role::Candidate(votes)) = &mut self.role else {
            return Ok(());
        };
        votes.entry(from).or_insert(granted);
        let result = self
            .membership
            .voters()
            .vote_result(|id| votes.get(&id).copied());
        let pre = matches!(self.role, Role::PreCandidate(_));
        match result {
            VoteResult::Pending => Ok(()),
            VoteResult::Lost => {
                tracing::info!(id = %self.id, term = %self.term, pre, "election lost");
                self.become_follower(self.term, None);
                Ok(())
            }
            VoteResult::Won if pre => self.campaign(CampaignKind::Election),
            VoteResult::Won => self.become_leader(),
        }
    }

    /// The Ready holding `(term, vote)` is durable: a candidate's own vote
    /// now counts.
    pub(crate) fn on_hard_state_persisted(
        &mut self,
        term: Term,
        vote: Option<NodeId>,
    ) -> Result<(), StorageError> {
        if matches!(self.role, Role::Candidate(_)) && term == self.term && vote == Some(self.id) {
            self.record_vote(self.id, true)?;
        }
        Ok(())
    }
}
