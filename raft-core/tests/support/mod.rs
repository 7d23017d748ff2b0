//! A deterministic in-process cluster for tests: RawNodes over
//! MemoryStorage, messages held in a queue until delivered, links that can be
//! cut. Every node follows the Ready contract exactly.
#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use raft_core::{
    ConfState, Config, Entry, HardState, Index, MemoryStorage, Message, MessageBody, NodeId,
    Proposal, RawNode, Ready, RoleKind, Status, StepError, Term,
};

/// Shorthand for a node id in tests.
pub fn id(raw: u64) -> NodeId {
    NodeId::new(raw).expect("test ids are non-zero")
}

/// One node and what it applied.
pub struct TestNode {
    pub raw: RawNode<MemoryStorage>,
    pub storage: MemoryStorage,
    pub applied: Vec<Entry>,
    /// Read states handed out, in order.
    pub read_states: Vec<raft_core::ReadState>,
}

impl TestNode {
    /// A node over `storage`, which nothing has applied yet.
    pub fn start(cfg: Config, storage: MemoryStorage) -> TestNode {
        TestNode {
            raw: RawNode::new(cfg, storage.clone()).expect("valid node"),
            storage,
            applied: Vec::new(),
            read_states: Vec::new(),
        }
    }
}

/// A change applied to every node's config.
type ConfigTweak = Box<dyn Fn(&mut Config)>;

/// Builds a [`Cluster`].
pub struct ClusterBuilder {
    voters: Vec<u64>,
    learners: Vec<u64>,
    witnesses: Vec<u64>,
    pre_vote: bool,
    check_quorum: bool,
    election_ticks: u32,
    heartbeat_ticks: u32,
    logs: BTreeMap<u64, (Vec<u64>, u64)>,
    tweak: Option<ConfigTweak>,
}

impl ClusterBuilder {
    pub fn voters(mut self, ids: &[u64]) -> Self {
        self.voters = ids.to_vec();
        self
    }
    pub fn learners(mut self, ids: &[u64]) -> Self {
        self.learners = ids.to_vec();
        self
    }
    /// Voters that are witnesses (named in the membership, and run with
    /// `Config::witness`), in addition to `voters`.
    pub fn witnesses(mut self, ids: &[u64]) -> Self {
        self.witnesses = ids.to_vec();
        self
    }
    pub fn pre_vote(mut self, on: bool) -> Self {
        self.pre_vote = on;
        self
    }
    pub fn check_quorum(mut self, on: bool) -> Self {
        self.check_quorum = on;
        self
    }
    pub fn election_ticks(mut self, n: u32) -> Self {
        self.election_ticks = n;
        self
    }
    pub fn heartbeat_ticks(mut self, n: u32) -> Self {
        self.heartbeat_ticks = n;
        self
    }
    /// Gives node `node` a persisted log whose entry `i` (1-based) has term
    /// `terms[i-1]`, and a persisted current term.
    pub fn log(mut self, node: u64, terms: &[u64], current_term: u64) -> Self {
        self.logs.insert(node, (terms.to_vec(), current_term));
        self
    }
    /// Adjusts every node's config.
    pub fn configure(mut self, f: impl Fn(&mut Config) + 'static) -> Self {
        self.tweak = Some(Box::new(f));
        self
    }

    pub fn build(self) -> Cluster {
        let conf = ConfState {
            voters: self
                .voters
                .iter()
                .chain(&self.witnesses)
                .map(|&v| id(v))
                .collect(),
            learners: self.learners.iter().map(|&v| id(v)).collect(),
            witnesses: self.witnesses.iter().map(|&v| id(v)).collect(),
            ..ConfState::default()
        };
        let mut nodes = BTreeMap::new();
        for &raw in self
            .voters
            .iter()
            .chain(&self.witnesses)
            .chain(&self.learners)
        {
            let storage = MemoryStorage::with_conf_state(conf.clone());
            if let Some((terms, current)) = self.logs.get(&raw) {
                let entries: Vec<Entry> = terms
                    .iter()
                    .enumerate()
                    .map(|(i, &t)| Entry::new(Term(t), Index(i as u64 + 1), Bytes::new()))
                    .collect();
                storage.append(&entries).expect("append");
                storage.set_hard_state(HardState {
                    term: Term(*current),
                    vote: None,
                    commit: Index(0),
                });
            }
            let mut cfg = Config::new(id(raw));
            cfg.pre_vote = self.pre_vote;
            cfg.check_quorum = self.check_quorum;
            cfg.election_timeout_ticks = self.election_ticks;
            cfg.heartbeat_interval_ticks = self.heartbeat_ticks;
            cfg.witness = self.witnesses.contains(&raw);
            if let Some(f) = &self.tweak {
                f(&mut cfg);
            }
            nodes.insert(id(raw), TestNode::start(cfg, storage));
        }
        Cluster {
            nodes,
            queue: VecDeque::new(),
            cut: BTreeSet::new(),
            delivered: Vec::new(),
        }
    }
}

/// Several nodes and the network between them.
pub struct Cluster {
    pub nodes: BTreeMap<NodeId, TestNode>,
    /// Messages sent and not yet delivered, in send order.
    pub queue: VecDeque<Message>,
    /// Directed links that drop everything.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Every message delivered, for assertions.
    pub delivered: Vec<Message>,
}

impl Cluster {
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder {
            voters: vec![1],
            learners: vec![],
            witnesses: vec![],
            pre_vote: false,
            check_quorum: false,
            election_ticks: 10,
            heartbeat_ticks: 1,
            logs: BTreeMap::new(),
            tweak: None,
        }
    }

    /// Starts node `raw` with empty storage and no configuration: a node
    /// joining the cluster, which learns the log (or a snapshot) from the
    /// leader once a conf change adds it.
    pub fn add_joiner(&mut self, raw: u64) {
        self.add_joiner_with(raw, |_| {});
    }

    /// [`Cluster::add_joiner`] with a config tweak.
    pub fn add_joiner_with(&mut self, raw: u64, tweak: impl Fn(&mut Config)) {
        let storage = MemoryStorage::new();
        let mut cfg = Config::new(id(raw));
        cfg.pre_vote = true;
        cfg.check_quorum = true;
        tweak(&mut cfg);
        self.nodes.insert(id(raw), TestNode::start(cfg, storage));
    }

    /// Fails if two nodes applied different entries at the same index
    /// (State Machine Safety, paper §5.4.3).
    pub fn assert_applied_logs_agree(&self) {
        let mut seen: BTreeMap<Index, (NodeId, Term)> = BTreeMap::new();
        for (n, node) in &self.nodes {
            for e in &node.applied {
                let (first, term) = *seen.entry(e.index).or_insert((*n, e.term));
                assert_eq!(
                    term, e.term,
                    "node {n} applied {}/{} but node {first} applied {term}/{}",
                    e.term, e.index, e.index
                );
            }
        }
    }

    pub fn node(&mut self, raw: u64) -> &mut TestNode {
        self.nodes.get_mut(&id(raw)).expect("node exists")
    }

    pub fn status(&self, raw: u64) -> Status {
        self.nodes[&id(raw)].raw.status()
    }

    pub fn role(&self, raw: u64) -> RoleKind {
        self.status(raw).soft_state.role
    }

    pub fn term(&self, raw: u64) -> Term {
        self.status(raw).hard_state.term
    }

    pub fn commit(&self, raw: u64) -> Index {
        self.status(raw).hard_state.commit
    }

    /// The ids of nodes that consider themselves leader.
    pub fn leaders(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.raw.status().soft_state.role == RoleKind::Leader)
            .map(|(i, _)| i.get())
            .collect()
    }

    /// Handles one Ready of `raw` per the contract; returns the messages it
    /// emitted (also queued for delivery).
    pub fn process_ready(&mut self, raw: u64) -> Vec<Message> {
        match self.handle_ready(raw) {
            Some(rd) => {
                let mut out = rd.messages;
                out.extend(rd.persisted_messages);
                out
            }
            None => Vec::new(),
        }
    }

    /// Like [`Cluster::process_ready`], but returns the whole `Ready` (after
    /// it was persisted, applied, advanced and its messages queued), or
    /// `None` if the node had nothing to hand out.
    ///
    /// Checks the Ready contract on the way: messages that vouch for durable
    /// state never appear in `Ready::messages`, and only those wait in
    /// `Ready::persisted_messages`.
    pub fn handle_ready(&mut self, raw: u64) -> Option<Ready> {
        let node = self.nodes.get_mut(&id(raw)).expect("node exists");
        if !node.raw.has_ready() {
            return None;
        }
        let rd = node.raw.ready().expect("ready");
        for m in &rd.messages {
            assert!(
                !m.body.needs_durable_state(),
                "node {raw}: {} in Ready::messages instead of persisted_messages",
                m.body.kind_name()
            );
        }
        for m in &rd.persisted_messages {
            assert!(
                m.body.needs_durable_state(),
                "node {raw}: {} needlessly delayed in persisted_messages",
                m.body.kind_name()
            );
        }
        node.storage.persist(&rd).expect("persist");
        for e in &rd.committed_entries {
            // Membership changes take effect when applied (thesis §4.1).
            if let Some(cc) = raft_core::AnyConfChange::from_entry(e).expect("valid conf change")
                && let Ok(cs) = node.raw.apply_conf_change(&cc)
            {
                node.storage.set_conf_state(cs);
            }
        }
        node.applied.extend(rd.committed_entries.iter().cloned());
        node.read_states.extend(rd.read_states.iter().cloned());
        node.raw.advance().expect("advance");
        if let Some(request) = rd.snapshot_request {
            // The leader needs a newer snapshot than storage has: take one at
            // the applied index, as the Ready contract asks.
            use raft_core::Storage;
            let applied = node.raw.status().applied;
            assert!(
                applied >= request.min_index,
                "applied everything handed out"
            );
            let cs = node.storage.initial_state().expect("state").conf_state;
            let data = Bytes::from(format!("applied:{}", node.applied.len()));
            node.storage
                .create_snapshot(applied, cs, data)
                .expect("snapshot at the applied index");
        }
        self.queue.extend(rd.messages.iter().cloned());
        self.queue.extend(rd.persisted_messages.iter().cloned());
        Some(rd)
    }

    /// Steps `m` into its addressee directly (no link check, not recorded
    /// in `delivered`) and returns the node's verdict.
    pub fn step(&mut self, m: Message) -> Result<(), StepError> {
        let to = m.to.get();
        self.node(to).raw.step(m)
    }

    /// Drops every queued message.
    pub fn clear_queue(&mut self) {
        self.queue.clear();
    }

    /// Removes and returns the queued messages matching `pred`.
    pub fn take_where(&mut self, pred: impl Fn(&Message) -> bool) -> Vec<Message> {
        let (taken, kept): (Vec<Message>, Vec<Message>) = self.queue.drain(..).partition(&pred);
        self.queue = kept.into();
        taken
    }

    /// Delivers the queued messages matching `pred` (others stay queued).
    /// Returns how many were taken from the queue.
    pub fn deliver_where(&mut self, pred: impl Fn(&Message) -> bool) -> usize {
        let batch = self.take_where(pred);
        let n = batch.len();
        for m in batch {
            self.deliver(m);
        }
        n
    }

    /// The vote `raw` cast in its current term.
    pub fn vote(&self, raw: u64) -> Option<u64> {
        self.status(raw).hard_state.vote.map(NodeId::get)
    }

    /// The leader `raw` knows of.
    pub fn leader_of(&self, raw: u64) -> Option<u64> {
        self.status(raw).soft_state.leader.map(NodeId::get)
    }

    /// How many delivered messages match `pred`.
    pub fn count_delivered(&self, pred: impl Fn(&Message) -> bool) -> usize {
        self.delivered.iter().filter(|m| pred(m)).count()
    }

    /// Processes every node's Ready once, in id order. True if any had one.
    pub fn process_all(&mut self) -> bool {
        let ids: Vec<u64> = self.nodes.keys().map(|i| i.get()).collect();
        let mut any = false;
        for raw in ids {
            any |= self.nodes[&id(raw)].raw.has_ready();
            self.process_ready(raw);
        }
        any
    }

    /// Delivers every queued message once (new ones stay queued).
    pub fn deliver_all(&mut self) -> bool {
        let batch: Vec<Message> = self.queue.drain(..).collect();
        let any = !batch.is_empty();
        for m in batch {
            self.deliver(m);
        }
        any
    }

    /// Delivers one message unless its link is cut or its target is gone.
    pub fn deliver(&mut self, m: Message) {
        if self.cut.contains(&(m.from, m.to)) {
            return;
        }
        let Some(node) = self.nodes.get_mut(&m.to) else {
            return;
        };
        self.delivered.push(m.clone());
        // Refusals are part of normal operation (e.g. a forwarded
        // proposal with no leader); tests inspect state, not these.
        let _ = node.raw.step(m);
    }

    /// Runs Ready processing and delivery until nothing moves.
    pub fn stabilize(&mut self) {
        for _ in 0..10_000 {
            let a = self.process_all();
            let b = self.deliver_all();
            if !a && !b {
                return;
            }
        }
        panic!("cluster did not stabilize in 10000 rounds");
    }

    pub fn campaign(&mut self, raw: u64) {
        self.node(raw).raw.campaign().expect("campaign");
        self.stabilize();
    }

    /// Elects `raw` (campaign and stabilize) and checks it won.
    pub fn elect(&mut self, raw: u64) {
        self.campaign(raw);
        assert_eq!(
            self.role(raw),
            RoleKind::Leader,
            "node {raw} should have won"
        );
    }

    pub fn propose(&mut self, raw: u64, data: &'static [u8]) -> Proposal {
        self.node(raw)
            .raw
            .propose(Bytes::from_static(data))
            .expect("proposal accepted")
    }

    pub fn tick(&mut self, raw: u64, n: u32) {
        for _ in 0..n {
            self.node(raw).raw.tick().expect("tick");
        }
    }

    /// Ticks every node `n` times, stabilizing after each round.
    pub fn tick_all(&mut self, n: u32) {
        let ids: Vec<u64> = self.nodes.keys().map(|i| i.get()).collect();
        for _ in 0..n {
            for &raw in &ids {
                self.tick(raw, 1);
            }
            self.stabilize();
        }
    }

    /// Snapshots node `raw`'s state at `index` (which it applied) and
    /// compacts its log up to there, as an application does.
    pub fn compact(&mut self, raw: u64, index: u64) {
        use raft_core::Storage;
        let node = self.node(raw);
        let cs = node.storage.initial_state().expect("state").conf_state;
        let data = Bytes::from(format!("applied:{}", node.applied.len()));
        node.storage
            .create_snapshot(Index(index), cs, data)
            .expect("snapshot");
        node.storage.compact(Index(index)).expect("compact");
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut(&mut self, a: u64, b: u64) {
        self.cut.insert((id(a), id(b)));
        self.cut.insert((id(b), id(a)));
    }

    /// Cuts `raw` from every other node.
    pub fn isolate(&mut self, raw: u64) {
        let others: Vec<u64> = self
            .nodes
            .keys()
            .map(|i| i.get())
            .filter(|&o| o != raw)
            .collect();
        for o in others {
            self.cut(raw, o);
        }
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// The payloads `raw` applied, skipping empty entries.
    pub fn applied_data(&self, raw: u64) -> Vec<Bytes> {
        self.nodes[&id(raw)]
            .applied
            .iter()
            .filter(|e| e.kind == raft_core::EntryKind::Normal && !e.data.is_empty())
            .map(|e| e.data.clone())
            .collect()
    }

    /// The terms of `raw`'s stored log, from index 1.
    pub fn log_terms(&self, raw: u64) -> Vec<u64> {
        use raft_core::Storage;
        let s = &self.nodes[&id(raw)].storage;
        let (first, last) = (
            s.first_index().expect("first"),
            s.last_index().expect("last"),
        );
        (first.get()..=last.get())
            .map(|i| s.term(Index(i)).expect("term").get())
            .collect()
    }

    /// Takes the queued messages of a given kind from `from`.
    pub fn take_sent(&mut self, from: u64, kind: &str) -> Vec<Message> {
        let (taken, kept): (Vec<Message>, Vec<Message>) = self
            .queue
            .drain(..)
            .partition(|m| m.from == id(from) && m.body.kind_name() == kind);
        self.queue = kept.into();
        taken
    }
}

/// True if `m` is of kind `kind`.
pub fn is_kind(m: &Message, kind: &str) -> bool {
    m.body.kind_name() == kind
}

/// Extracts the append fields or panics.
pub fn as_append(m: &Message) -> &raft_core::Append {
    match &m.body {
        MessageBody::Append(a) => a,
        other => panic!("expected Append, got {}", other.kind_name()),
    }
}

/// A message from `from` to `to` at `term`.
pub fn msg(from: u64, to: u64, term: u64, body: MessageBody) -> Message {
    Message {
        from: id(from),
        to: id(to),
        term: Term(term),
        body,
    }
}

/// Entries at the given `(term, index)` positions, with empty payloads.
pub fn entries(ids: &[(u64, u64)]) -> Vec<Entry> {
    ids.iter()
        .map(|&(t, i)| Entry::new(Term(t), Index(i), Bytes::new()))
        .collect()
}

/// An append body: previous position `(term, index)`, entries at
/// `(term, index)` positions, leader commit `commit`.
pub fn append(prev: (u64, u64), ents: &[(u64, u64)], commit: u64) -> MessageBody {
    MessageBody::Append(raft_core::Append {
        prev: raft_core::LogId::new(Term(prev.0), Index(prev.1)),
        entries: entries(ents),
        commit: Index(commit),
    })
}

/// A vote request for a candidate whose log ends at `(term, index)`.
pub fn vote_req(last: (u64, u64), transfer: bool) -> raft_core::VoteRequest {
    raft_core::VoteRequest {
        last: raft_core::LogId::new(Term(last.0), Index(last.1)),
        transfer,
    }
}

/// The append-response fields, or panics.
pub fn as_append_response(m: &Message) -> &raft_core::AppendResponse {
    match &m.body {
        MessageBody::AppendResponse(r) => r,
        other => panic!("expected AppendResponse, got {}", other.kind_name()),
    }
}

/// The `reject` flag of a (pre-)vote response, or panics.
pub fn vote_rejected(m: &Message) -> bool {
    match &m.body {
        MessageBody::VoteResponse(r) | MessageBody::PreVoteResponse(r) => r.reject,
        other => panic!("expected a vote response, got {}", other.kind_name()),
    }
}
