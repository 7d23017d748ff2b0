//! Transcript (datadriven) tests: an interaction environment driven by
//! scenario files whose output is checked in and reviewed as a diff, in the
//! style of etcd-raft's `rafttest` interaction env.
//!
//! An [`Env`] holds nodes (a [`RawNode`] over a [`MemoryStorage`] each) and
//! the messages in flight between them, which stay queued until a command
//! delivers (or drops) them. A scenario file is a sequence of commands, each
//! followed by the output it produced; see [`datadriven`] for the file
//! format. Run a file with [`run_file`], a directory with [`run_dir`];
//! set `REWRITE=1` to regenerate the outputs, then review `git diff`.
//!
//! ```no_run
//! // tests/transcripts.rs of your crate, with raft-core's `testkit` feature.
//! #[test]
//! fn transcripts() {
//!     let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
//!     if let Err(e) = raft_core::testkit::interaction::run_dir(&dir) {
//!         panic!("{e}");
//!     }
//! }
//! ```
//!
//! A file looks like this (comments start with `#`):
//!
//! ```text
//! # Three voters; node 1 wins an election.
//! add-nodes 3 voters=(1,2,3) index=2
//! ----
//! ...
//!
//! campaign 1
//! ----
//! INFO 1 became candidate at term 2
//!
//! stabilize
//! ----
//! > 1 handling Ready
//!   Ready MustSync=true:
//!   Lead:0 State:Candidate
//!   HardState Term:2 Vote:1 Commit:2
//!   Messages:
//!   1->2 Vote term=2 last=1/2
//!   1->3 Vote term=2 last=1/2
//! ...
//! ```
//!
//! # Commands
//!
//! Node ids are plain numbers; `ids...` means any number of them (none:
//! every node).
//!
//! | Command | Effect |
//! |---|---|
//! | `add-nodes N [voters=(..)] [learners=(..)] [index=I] [prevote=B] [checkquorum=B] [async-storage-writes=B] [inflight=N] [max-inflight-bytes=N] [max-size-per-msg=N] [max-committed-size-per-ready=N] [max-uncommitted-size=N] [max-apply-gap=N] [max-entry-bytes=N] [read-only=safe\|lease-based] [max-clock-drift=lockstep\|N] [step-down-on-removal=B] [disable-proposal-forwarding=B] [election-ticks=N] [heartbeat-ticks=N] [log=(t1,t2,..)] [term=T] [founding-log=B] [snapshot-on-apply=B] [witnesses=(..)] [witness=B]` | Adds N nodes with the next ids. With `founding-log=true`, each starts from the founders' membership written as the first log entries ([`MemoryStorage::bootstrap`]); with `index`, from a snapshot at `index` (term 1) holding the membership; otherwise from an empty log with that membership (no `voters`: a node joining with empty storage). `max-clock-drift=N` shortens leases for a drift of N per mille ([`ClockDrift::PerMille`]). `witnesses` names voters that are witnesses (they need not be listed in `voters`); those nodes, and every node with `witness=true`, run as witnesses (`Config::witness`). `snapshot-on-apply=false` stops the environment from snapshotting after every apply: the node then snapshots only when a leader asks (`Ready::snapshot_request`). `log` gives each node persisted entries after `index` with those terms (empty payloads); `term` sets the persisted term (default: the last entry's). Defaults: election 3 ticks, heartbeat 1, pre-vote, check-quorum and async writes off, no size limits, step-down on removal on. |
//! | `campaign id` | [`RawNode::campaign`]. |
//! | `restart id` | Crash and restart: a new `RawNode` from the node's storage (volatile state and unpersisted work lost; messages in flight kept). |
//! | `propose id data` | [`RawNode::propose`]. |
//! | `propose-conf-change id [v1=true] [transition=auto\|implicit\|explicit]` + input line `v4 l5 r6` | [`RawNode::propose_conf_change`]: `vN` adds voter N, `lN` learner N, `wN` witness N, `rN` removes N; an empty V2 change leaves a joint configuration. `v1=true` proposes a single-step (V1) change. |
//! | `transfer-leadership from=id to=id` | [`RawNode::transfer_leader`] on `from`. |
//! | `forget-leader id` | [`RawNode::forget_leader`]. |
//! | `request-snapshot id` | [`RawNode::request_snapshot`]. |
//! | `read-index id ctx` | [`RawNode::read_index`]. |
//! | `tick-election id` | A leader ticks `election_timeout_ticks` times (one CheckQuorum round); any other node ticks until its randomized election timer fires (at most `2 * election_timeout_ticks` ticks). |
//! | `tick-heartbeat id` | Ticks `heartbeat_interval_ticks` times. |
//! | `tick id N` | Ticks N times. |
//! | `process-ready ids...` | Handles one Ready per node following the Ready contract (persist, send, apply conf changes, advance). With async writes: hands the Ready to the node's append and apply "threads" instead. |
//! | `process-append-thread ids...` | Async writes: persists the oldest pending Ready, reports it with [`RawNode::on_persisted`] and sends its `persisted_messages`. |
//! | `process-apply-thread ids...` | Async writes: applies the oldest pending committed entries and reports them with [`RawNode::on_applied`]. |
//! | `deliver-msgs ids... [type=Kind] [drop=true]` | Delivers (or drops) the queued messages to those nodes, of that kind (see [`MessageBody::kind_name`](crate::MessageBody::kind_name)). |
//! | `stabilize ids...` | Processes Readys (and async work) and delivers messages among those nodes until nothing moves. |
//! | `partition a b \| c d` / `partition a` | Drops messages between groups at delivery (`partition a`: `a` against everyone else). |
//! | `heal` | Removes the partition. |
//! | `compact id index` | Compacts the node's log up to `index` (at most its applied index), after taking a snapshot there if `snapshot-on-apply=false`. The environment keeps each node's storage snapshot at its applied state, as an application that snapshots on demand would (unless `snapshot-on-apply=false`), and takes one whenever a leader's `Ready::snapshot_request` asks. |
//! | `report-unreachable leader id` | [`RawNode::report_unreachable`]. |
//! | `report-snapshot leader id [status=finished\|failed]` | [`RawNode::report_snapshot`]. |
//! | `raft-state` | Role, membership, term, leader and commit of every node. |
//! | `raft-log id` | The node's stored log. |
//! | `status id` | [`RawNode::status`], with the leader's progress per member. |
//!
//! Output is deterministic: nodes are visited in id order, messages in send
//! order, and every node's random election jitter is seeded with its id.
//! Whenever a command changes a node's role or term, a line
//! `INFO 2 became follower at term 3` is printed where it happened.
//!
//! # Differences from etcd-raft's interaction env
//!
//! - No `send-snapshot`, `set-randomized-election-timeout`, `log-level` or
//!   `_breakpoint`.
//! - `tick-election` ticks until the randomized timer fires instead of
//!   exactly `election_timeout_ticks` times; `tick id N` ticks precisely.
//! - `partition`/`heal`, `restart` and `report-snapshot` are additions.

pub mod datadriven;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::Path;

use bytes::Bytes;

pub use datadriven::{TestCase, TranscriptError};

use crate::testkit::describe;
use crate::{
    AnyConfChange, ClockDrift, ConfChange, ConfChangeKind, ConfChangeSingle, ConfChangeTransition,
    ConfChangeV2, ConfState, Config, Entry, Index, MemoryStorage, Message, NO_LIMIT, NodeId,
    PersistBatch, RawNode, ReadOnlyOption, RoleKind, Snapshot, SnapshotMetadata, SnapshotStatus,
    Storage, Term,
};

/// Work handed to a node's append "thread" (async storage writes).
struct AppendWork {
    batch: PersistBatch,
    messages: Vec<Message>,
}

/// One node of the environment.
struct EnvNode {
    raw: RawNode<MemoryStorage>,
    storage: MemoryStorage,
    config: Config,
    /// Role and term last reported, to print changes.
    seen: (RoleKind, Term),
    append_work: VecDeque<AppendWork>,
    apply_work: VecDeque<Vec<Entry>>,
    /// Keep the storage's snapshot at the applied state after every apply
    /// (`add-nodes snapshot-on-apply=`, default true); otherwise snapshots
    /// are taken only when a leader asks (`Ready::snapshot_request`).
    snapshot_on_apply: bool,
    /// A requested snapshot waiting for the state machine to apply far
    /// enough (asynchronous writes).
    snapshot_wanted: Option<Index>,
}

/// The interaction environment: nodes and the network between them.
///
/// Drive it with [`Env::handle`] (one transcript command) or through
/// [`run_file`]. Direct access to the nodes and the message queue lets
/// custom commands be built on top.
#[derive(Default)]
pub struct Env {
    nodes: BTreeMap<u64, EnvNode>,
    /// Messages sent and not yet delivered, in send order.
    messages: Vec<Message>,
    /// Groups of a partition; nodes in no group form one more group.
    partition: Vec<BTreeSet<u64>>,
    out: String,
}

/// Result of a command: output written to `Env::out`, or a script error.
type CmdResult = Result<(), String>;

fn parse_u64(s: &str, what: &str) -> Result<u64, String> {
    s.parse()
        .map_err(|_| format!("{what}: not a number: {s:?}"))
}

fn parse_bool(s: &str, what: &str) -> Result<bool, String> {
    s.parse().map_err(|_| format!("{what}: not a bool: {s:?}"))
}

/// The config `add-nodes` gives node `id`, from the command's arguments.
fn node_config(id: NodeId, a: &Args<'_>) -> Result<Config, String> {
    let mut cfg = Config::new(id);
    cfg.election_timeout_ticks = a.u64("election-ticks")?.unwrap_or(3) as u32;
    cfg.heartbeat_interval_ticks = a.u64("heartbeat-ticks")?.unwrap_or(1) as u32;
    cfg.pre_vote = a.bool("prevote")?.unwrap_or(false);
    cfg.check_quorum = a.bool("checkquorum")?.unwrap_or(false);
    cfg.async_storage_writes = a.bool("async-storage-writes")?.unwrap_or(false);
    cfg.max_size_per_msg = a.u64("max-size-per-msg")?.unwrap_or(NO_LIMIT);
    cfg.max_inflight_msgs = a.u64("inflight")?.unwrap_or(256) as usize;
    cfg.max_inflight_bytes = a.u64("max-inflight-bytes")?.unwrap_or(NO_LIMIT);
    cfg.max_committed_size_per_ready = a.u64("max-committed-size-per-ready")?.unwrap_or(NO_LIMIT);
    cfg.max_uncommitted_entries_size = a.u64("max-uncommitted-size")?.unwrap_or(NO_LIMIT);
    cfg.max_apply_gap = a.u64("max-apply-gap")?.unwrap_or(NO_LIMIT);
    cfg.max_entry_bytes = a.u64("max-entry-bytes")?.unwrap_or(NO_LIMIT);
    cfg.step_down_on_removal = a.bool("step-down-on-removal")?.unwrap_or(true);
    cfg.disable_proposal_forwarding = a.bool("disable-proposal-forwarding")?.unwrap_or(false);
    cfg.read_only_option = match a.value("read-only")? {
        None | Some("safe") => ReadOnlyOption::Safe,
        Some("lease-based") => ReadOnlyOption::LeaseBased,
        Some(o) => return Err(format!("read-only: unknown option {o:?}")),
    };
    cfg.max_clock_drift = match a.value("max-clock-drift")? {
        None | Some("lockstep") => ClockDrift::Lockstep,
        Some(n) => ClockDrift::PerMille(
            n.parse()
                .map_err(|e| format!("max-clock-drift: {n:?}: {e}"))?,
        ),
    };
    cfg.quiesce_after_ticks = match a.u64("quiesce-after-ticks")? {
        None => None,
        Some(n) => Some(
            u32::try_from(n)
                .ok()
                .and_then(std::num::NonZeroU32::new)
                .ok_or_else(|| format!("quiesce-after-ticks: {n} is not in 1..=u32::MAX"))?,
        ),
    };
    Ok(cfg)
}

/// The storage `add-nodes` starts a node from: a snapshot at `index` at
/// term 1 holding the membership, or an empty log with it; then the `log`
/// entries and `term`.
fn bootstrap_storage(a: &Args<'_>, cs: &ConfState) -> Result<MemoryStorage, String> {
    if a.bool("founding-log")?.unwrap_or(false) {
        // The membership as the first entries of the log (`FoundingLog`).
        return MemoryStorage::bootstrap(cs).map_err(|e| format!("founding log: {e}"));
    }
    let index = a.u64("index")?.unwrap_or(0);
    let storage = MemoryStorage::new();
    if index > 0 {
        let metadata = SnapshotMetadata {
            index: Index(index),
            term: Term(1),
            conf_state: cs.clone(),
        };
        storage
            .apply_snapshot(Snapshot {
                metadata,
                data: Bytes::new(),
            })
            .map_err(|e| format!("bootstrap snapshot: {e}"))?;
    } else {
        storage.set_conf_state(cs.clone());
    }
    let log = a.list("log")?;
    if !log.is_empty() || a.u64("term")?.is_some() {
        let entries: Vec<Entry> = log
            .iter()
            .enumerate()
            .map(|(i, &t)| Entry::new(Term(t), Index(index + 1 + i as u64), Bytes::new()))
            .collect();
        storage
            .append(&entries)
            .map_err(|e| format!("bootstrap log: {e}"))?;
        let last_term = log.last().copied().unwrap_or(0).max(1);
        let mut hs = storage.hard_state();
        hs.term = Term(a.u64("term")?.unwrap_or(last_term));
        storage.set_hard_state(hs);
    }
    Ok(storage)
}

fn node_id(raw: u64) -> Result<NodeId, String> {
    NodeId::new(raw).ok_or_else(|| "node id 0 is not allowed".to_string())
}

fn role_name(r: RoleKind) -> &'static str {
    match r {
        RoleKind::Follower => "follower",
        RoleKind::PreCandidate => "pre-candidate",
        RoleKind::Candidate => "candidate",
        RoleKind::Leader => "leader",
    }
}

/// The parsed arguments of one command.
struct Args<'a> {
    tc: &'a TestCase,
}

impl Args<'_> {
    /// Bare words (no `=`), in order.
    fn positional(&self) -> Vec<&str> {
        self.tc
            .args
            .iter()
            .filter(|a| !a.has_value)
            .map(|a| a.key.as_str())
            .collect()
    }

    /// Bare words that are node ids.
    fn ids(&self) -> Result<Vec<u64>, String> {
        self.positional()
            .into_iter()
            .map(|w| parse_u64(w, "node id"))
            .collect()
    }

    fn first_id(&self) -> Result<u64, String> {
        let p = self.positional();
        let w = p.first().ok_or("missing node id")?;
        parse_u64(w, "node id")
    }

    fn value(&self, key: &str) -> Result<Option<&str>, String> {
        match self.tc.args.iter().find(|a| a.has_value && a.key == key) {
            None => Ok(None),
            Some(a) if a.vals.len() == 1 => Ok(Some(a.vals[0].as_str())),
            Some(_) => Err(format!("{key}: expected one value")),
        }
    }

    fn u64(&self, key: &str) -> Result<Option<u64>, String> {
        self.value(key)?.map(|v| parse_u64(v, key)).transpose()
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        self.value(key)?.map(|v| parse_bool(v, key)).transpose()
    }

    fn list(&self, key: &str) -> Result<Vec<u64>, String> {
        match self.tc.args.iter().find(|a| a.has_value && a.key == key) {
            None => Ok(vec![]),
            Some(a) => a.vals.iter().map(|v| parse_u64(v, key)).collect(),
        }
    }

    /// Fails on keyed arguments not in `allowed`.
    fn only(&self, allowed: &[&str]) -> CmdResult {
        for a in &self.tc.args {
            if a.has_value && !allowed.contains(&a.key.as_str()) {
                return Err(format!("unknown argument {}", a.key));
            }
        }
        Ok(())
    }
}

impl Env {
    /// An empty environment.
    pub fn new() -> Env {
        Env::default()
    }

    /// The node with id `id`.
    pub fn node(&self, id: u64) -> Option<&RawNode<MemoryStorage>> {
        self.nodes.get(&id).map(|n| &n.raw)
    }

    /// The node with id `id`, mutably.
    pub fn node_mut(&mut self, id: u64) -> Option<&mut RawNode<MemoryStorage>> {
        self.nodes.get_mut(&id).map(|n| &mut n.raw)
    }

    /// The storage of node `id`.
    pub fn storage(&self, id: u64) -> Option<&MemoryStorage> {
        self.nodes.get(&id).map(|n| &n.storage)
    }

    /// The messages in flight, in send order.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// The ids of the nodes, in order.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// Runs one transcript command and returns its output.
    ///
    /// # Errors
    /// An unknown command or a malformed argument (a script error, not a
    /// Raft outcome: refused proposals and the like are part of the output).
    pub fn handle(&mut self, tc: &TestCase) -> Result<String, String> {
        self.out.clear();
        let a = Args { tc };
        match tc.cmd.as_str() {
            "add-nodes" => self.cmd_add_nodes(&a),
            "campaign" => self.cmd_campaign(&a),
            "restart" => self.cmd_restart(&a),
            "propose" => self.cmd_propose(&a),
            "propose-conf-change" => self.cmd_propose_conf_change(&a),
            "transfer-leadership" => self.cmd_transfer(&a),
            "forget-leader" => self.cmd_forget_leader(&a),
            "request-snapshot" => self.cmd_request_snapshot(&a),
            "read-index" => self.cmd_read_index(&a),
            "tick-election" => self.cmd_tick_election(&a),
            "tick-heartbeat" => self.cmd_tick_heartbeat(&a),
            "tick" => self.cmd_tick(&a),
            "process-ready" => self.cmd_process_ready(&a),
            "process-append-thread" => self.cmd_append_thread(&a),
            "process-apply-thread" => self.cmd_apply_thread(&a),
            "deliver-msgs" => self.cmd_deliver(&a),
            "stabilize" => self.cmd_stabilize(&a),
            "partition" => self.cmd_partition(&a),
            "heal" => {
                self.partition.clear();
                Ok(())
            }
            "compact" => self.cmd_compact(&a),
            "report-unreachable" => self.cmd_report_unreachable(&a),
            "wake" => self.cmd_wake(&a),
            "report-snapshot" => self.cmd_report_snapshot(&a),
            "raft-state" => self.cmd_raft_state(),
            "raft-log" => self.cmd_raft_log(&a),
            "status" => self.cmd_status(&a),
            other => Err(format!("unknown command {other:?}")),
        }?;
        Ok(std::mem::take(&mut self.out))
    }

    fn line(&mut self, indent: usize, text: &str) {
        for l in text.lines() {
            for _ in 0..indent {
                self.out.push_str("  ");
            }
            self.out.push_str(l);
            self.out.push('\n');
        }
    }

    fn get(&mut self, id: u64) -> Result<&mut EnvNode, String> {
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| format!("no node {id}"))
    }

    /// Prints a line for each node whose role or term changed.
    fn note(&mut self, indent: usize) {
        let mut lines = Vec::new();
        for (id, n) in &mut self.nodes {
            let st = n.raw.status();
            let now = (st.soft_state.role, st.hard_state.term);
            if now != n.seen {
                n.seen = now;
                lines.push(format!(
                    "INFO {id} became {} at term {}",
                    role_name(now.0),
                    now.1
                ));
            }
        }
        for l in lines {
            self.line(indent, &l);
        }
    }

    fn report<E: std::fmt::Display>(&mut self, indent: usize, r: Result<(), E>) {
        if let Err(e) = r {
            self.line(indent, &format!("error: {e}"));
        }
    }

    fn cmd_add_nodes(&mut self, a: &Args<'_>) -> CmdResult {
        a.only(&[
            "voters",
            "learners",
            "index",
            "prevote",
            "checkquorum",
            "async-storage-writes",
            "inflight",
            "max-inflight-bytes",
            "max-size-per-msg",
            "max-committed-size-per-ready",
            "max-uncommitted-size",
            "max-apply-gap",
            "max-entry-bytes",
            "read-only",
            "max-clock-drift",
            "step-down-on-removal",
            "disable-proposal-forwarding",
            "election-ticks",
            "heartbeat-ticks",
            "log",
            "term",
            "founding-log",
            "snapshot-on-apply",
            "quiesce-after-ticks",
            "witnesses",
            "witness",
        ])?;
        let n = a.first_id()?;
        let to_ids = |raws: Vec<u64>| raws.into_iter().map(node_id).collect::<Result<_, _>>();
        let mut cs = ConfState {
            voters: to_ids(a.list("voters")?)?,
            learners: to_ids(a.list("learners")?)?,
            witnesses: to_ids(a.list("witnesses")?)?,
            ..ConfState::default()
        };
        // A witness is a voter: `witnesses=(3)` needs no `voters=(3)`.
        cs.voters.extend(cs.witnesses.iter().copied());
        let index = a.u64("index")?.unwrap_or(0);
        let first = self.nodes.keys().last().copied().unwrap_or(0) + 1;
        for raw in first..first + n {
            let mut cfg = node_config(node_id(raw)?, a)?;
            cfg.applied = Index(index);
            cfg.witness = a.bool("witness")?.unwrap_or(false) || cs.is_witness(node_id(raw)?);
            let storage = bootstrap_storage(a, &cs)?;
            self.add_node(raw, cfg, storage);
            if let Some(node) = self.nodes.get_mut(&raw) {
                node.snapshot_on_apply = a.bool("snapshot-on-apply")?.unwrap_or(true);
            }
        }
        Ok(())
    }

    /// Starts node `raw` on `storage` and prints its state, or the error.
    fn add_node(&mut self, raw: u64, cfg: Config, storage: MemoryStorage) {
        // The configuration the node starts with (none for a founder whose
        // membership is in its log, or for a joiner).
        let cs = storage
            .initial_state()
            .map(|s| s.conf_state)
            .unwrap_or_default();
        let raw_node = match RawNode::new(cfg.clone(), storage.clone()) {
            Ok(r) => r,
            Err(e) => {
                self.line(0, &format!("error: node {raw}: {e}"));
                return;
            }
        };
        let st = raw_node.status();
        self.line(
            0,
            &format!(
                "{raw}: {} {} Applied:{} LastIndex:{} {}",
                describe::soft_state(&st.soft_state),
                describe::hard_state(&st.hard_state),
                st.applied,
                st.last_index,
                describe::conf_state(&cs)
            ),
        );
        let seen = (st.soft_state.role, st.hard_state.term);
        self.nodes.insert(
            raw,
            EnvNode {
                raw: raw_node,
                storage,
                config: cfg,
                seen,
                append_work: VecDeque::new(),
                apply_work: VecDeque::new(),
                snapshot_on_apply: true,
                snapshot_wanted: None,
            },
        );
    }

    /// A crash and restart: the node loses its volatile state (role,
    /// leader, timers, unpersisted work) and starts again from its storage.
    /// Messages already sent stay in flight.
    fn cmd_restart(&mut self, a: &Args<'_>) -> CmdResult {
        let id = a.first_id()?;
        let node = self.get(id)?;
        let mut cfg = node.config.clone();
        cfg.applied = node.raw.status().applied;
        node.raw =
            RawNode::new(cfg, node.storage.clone()).map_err(|e| format!("restart {id}: {e}"))?;
        node.append_work.clear();
        node.apply_work.clear();
        let st = node.raw.status();
        node.seen = (st.soft_state.role, st.hard_state.term);
        let line = format!(
            "{id}: {} {} Applied:{} LastIndex:{}",
            describe::soft_state(&st.soft_state),
            describe::hard_state(&st.hard_state),
            st.applied,
            st.last_index
        );
        self.line(0, &line);
        Ok(())
    }

    fn cmd_campaign(&mut self, a: &Args<'_>) -> CmdResult {
        let id = a.first_id()?;
        let r = self.get(id)?.raw.campaign();
        self.report(0, r);
        self.note(0);
        Ok(())
    }

    fn cmd_propose(&mut self, a: &Args<'_>) -> CmdResult {
        let p = a.positional();
        let id = a.first_id()?;
        let data = p.get(1).ok_or("missing data")?.to_string();
        let r = self.get(id)?.raw.propose(Bytes::from(data)).map(|_| ());
        self.report(0, r);
        Ok(())
    }

    fn cmd_propose_conf_change(&mut self, a: &Args<'_>) -> CmdResult {
        a.only(&["v1", "transition"])?;
        let id = a.first_id()?;
        let mut changes = Vec::new();
        for tok in a.tc.input.iter().flat_map(|l| l.split_whitespace()) {
            let (k, n) = tok.split_at(1);
            let kind = match k {
                "v" => ConfChangeKind::AddNode,
                "l" => ConfChangeKind::AddLearnerNode,
                "r" => ConfChangeKind::RemoveNode,
                "w" => ConfChangeKind::AddWitness,
                _ => return Err(format!("bad conf change {tok:?}: want vN, lN, wN or rN")),
            };
            let node_id = node_id(parse_u64(n, "conf change node")?)?;
            changes.push(ConfChangeSingle { kind, node_id });
        }
        let cc: AnyConfChange = if a.bool("v1")?.unwrap_or(false) {
            let [single] = changes[..] else {
                return Err("v1 takes exactly one change".into());
            };
            ConfChange {
                kind: single.kind,
                node_id: single.node_id,
                context: Bytes::new(),
            }
            .into()
        } else {
            let transition = match a.value("transition")? {
                None | Some("auto") => ConfChangeTransition::Auto,
                Some("implicit") => ConfChangeTransition::JointImplicit,
                Some("explicit") => ConfChangeTransition::JointExplicit,
                Some(o) => return Err(format!("transition: unknown {o:?}")),
            };
            ConfChangeV2 {
                transition,
                changes,
                context: Bytes::new(),
            }
            .into()
        };
        let r = self.get(id)?.raw.propose_conf_change(cc).map(|_| ());
        self.report(0, r);
        Ok(())
    }

    fn cmd_transfer(&mut self, a: &Args<'_>) -> CmdResult {
        a.only(&["from", "to"])?;
        let from = a.u64("from")?.ok_or("missing from=")?;
        let to = node_id(a.u64("to")?.ok_or("missing to=")?)?;
        let r = self.get(from)?.raw.transfer_leader(to);
        self.report(0, r);
        self.note(0);
        Ok(())
    }

    fn cmd_forget_leader(&mut self, a: &Args<'_>) -> CmdResult {
        let id = a.first_id()?;
        let r = self.get(id)?.raw.forget_leader();
        self.report(0, r);
        self.note(0);
        Ok(())
    }

    fn cmd_request_snapshot(&mut self, a: &Args<'_>) -> CmdResult {
        let id = a.first_id()?;
        match self.get(id)?.raw.request_snapshot() {
            Ok(index) => self.line(0, &format!("requested a snapshot reaching {index}")),
            Err(e) => self.line(0, &format!("error: {e}")),
        }
        Ok(())
    }

    fn cmd_read_index(&mut self, a: &Args<'_>) -> CmdResult {
        let id = a.first_id()?;
        let ctx = a.positional().get(1).ok_or("missing context")?.to_string();
        let r = self.get(id)?.raw.read_index(Bytes::from(ctx));
        self.report(0, r);
        Ok(())
    }

    fn tick(&mut self, id: u64, n: u64) -> CmdResult {
        for _ in 0..n {
            let r = self.get(id)?.raw.tick();
            self.report(0, r);
        }
        self.note(0);
        Ok(())
    }

    fn cmd_tick(&mut self, a: &Args<'_>) -> CmdResult {
        let id = a.first_id()?;
        let n = a
            .positional()
            .get(1)
            .ok_or("missing tick count")?
            .to_string();
        let n = parse_u64(&n, "tick count")?;
        self.tick(id, n)
    }

    fn cmd_tick_heartbeat(&mut self, a: &Args<'_>) -> CmdResult {
        let id = a.first_id()?;
        let n = self.get(id)?.config.heartbeat_interval_ticks;
        self.tick(id, u64::from(n))
    }

    fn cmd_tick_election(&mut self, a: &Args<'_>) -> CmdResult {
        let id = a.first_id()?;
        let node = self.get(id)?;
        let et = u64::from(node.config.election_timeout_ticks);
        if node.raw.status().soft_state.role == RoleKind::Leader {
            return self.tick(id, et);
        }
        // The randomized timeout lies in [et, 2et): tick until the timer
        // fires, which shows as a new role or term, or as new output.
        for _ in 0..2 * et {
            let node = self.get(id)?;
            let before = node.raw.status();
            let had_ready = node.raw.has_ready();
            let r = node.raw.tick();
            let after = node.raw.status();
            let fired = before.soft_state != after.soft_state
                || before.hard_state != after.hard_state
                || (!had_ready && node.raw.has_ready());
            self.report(0, r);
            if fired {
                break;
            }
        }
        self.note(0);
        Ok(())
    }

    fn all_or(&self, ids: Vec<u64>) -> Vec<u64> {
        if ids.is_empty() { self.ids() } else { ids }
    }

    fn cmd_process_ready(&mut self, a: &Args<'_>) -> CmdResult {
        for id in self.all_or(a.ids()?) {
            self.line(0, &format!("> {id} handling Ready"));
            self.process_ready(id)?;
        }
        Ok(())
    }

    /// Handles one Ready of `id` (printing it) per the Ready contract.
    fn process_ready(&mut self, id: u64) -> CmdResult {
        let node = self.get(id)?;
        if !node.raw.has_ready() {
            self.line(1, "<empty Ready>");
            return Ok(());
        }
        let mut rd = match node.raw.ready() {
            Ok(rd) => rd,
            Err(e) => {
                self.line(1, &format!("error: {e}"));
                return Ok(());
            }
        };
        let text = describe::ready(&rd);
        self.line(1, &text);
        let node = self.get(id)?;
        if let Some(request) = rd.snapshot_request {
            node.snapshot_wanted = Some(request.min_index);
        }
        if node.config.async_storage_writes {
            node.append_work.push_back(AppendWork {
                batch: rd.take_persist_batch(),
                messages: std::mem::take(&mut rd.persisted_messages),
            });
            if !rd.committed_entries.is_empty() {
                node.apply_work.push_back(rd.committed_entries);
            }
            self.messages.extend(rd.messages);
            self.note(1);
            return Ok(());
        }
        let mut errors = failures(node.storage.persist(&rd));
        errors.extend(apply(node, &rd.committed_entries));
        if let Err(e) = node.raw.advance() {
            errors.push(format!("advance: {e}"));
        }
        let taken = take_wanted_snapshot(node);
        for e in errors {
            self.line(1, &format!("error: {e}"));
        }
        if let Some(line) = taken {
            self.line(1, &line);
        }
        self.messages.extend(rd.messages);
        self.messages.extend(rd.persisted_messages);
        self.note(1);
        Ok(())
    }

    fn cmd_append_thread(&mut self, a: &Args<'_>) -> CmdResult {
        for id in self.all_or(a.ids()?) {
            self.line(0, &format!("> {id} processing append thread"));
            self.append_thread(id)?;
        }
        Ok(())
    }

    /// Persists the oldest pending Ready of `id` and reports it.
    fn append_thread(&mut self, id: u64) -> CmdResult {
        let node = self.get(id)?;
        let Some(w) = node.append_work.pop_front() else {
            self.line(1, "no append work to perform");
            return Ok(());
        };
        let (w, messages) = (w.batch, w.messages);
        let mut errors = failures(node.storage.persist_batch(&w));
        if let Err(e) = node.raw.on_persisted(w.number) {
            errors.push(format!("on_persisted: {e}"));
        }
        let mut lines = vec![format!("Processing Ready {}:", w.number)];
        if let Some(hs) = &w.hard_state {
            lines.push(format!("HardState {}", describe::hard_state(hs)));
        }
        if let Some(s) = &w.snapshot {
            lines.push(format!("Snapshot {}", describe::snapshot(s)));
        }
        lines.extend(w.entries.iter().map(describe::entry));
        if !messages.is_empty() {
            lines.push("Responses:".into());
            lines.extend(messages.iter().map(describe::message));
        }
        lines.extend(errors.into_iter().map(|e| format!("error: {e}")));
        self.line(1, &lines.join("\n"));
        self.messages.extend(messages);
        self.note(1);
        Ok(())
    }

    fn cmd_apply_thread(&mut self, a: &Args<'_>) -> CmdResult {
        for id in self.all_or(a.ids()?) {
            self.line(0, &format!("> {id} processing apply thread"));
            self.apply_thread(id)?;
        }
        Ok(())
    }

    /// Applies the oldest pending committed entries of `id`.
    fn apply_thread(&mut self, id: u64) -> CmdResult {
        let node = self.get(id)?;
        let Some(entries) = node.apply_work.pop_front() else {
            self.line(1, "no apply work to perform");
            return Ok(());
        };
        let mut errors = apply(node, &entries);
        let last = entries.last().map_or(Index::ZERO, |e| e.index);
        if let Err(e) = node.raw.on_applied(last) {
            errors.push(format!("on_applied: {e}"));
        }
        let taken = take_wanted_snapshot(node);
        let mut lines = vec!["Applying:".to_string()];
        lines.extend(entries.iter().map(describe::entry));
        lines.extend(errors.into_iter().map(|e| format!("error: {e}")));
        lines.extend(taken);
        self.line(1, &lines.join("\n"));
        self.note(1);
        Ok(())
    }

    fn connected(&self, a: NodeId, b: NodeId) -> bool {
        let group = |id: NodeId| {
            self.partition
                .iter()
                .position(|g| g.contains(&id.get()))
                .unwrap_or(usize::MAX)
        };
        group(a) == group(b)
    }

    /// Takes the queued messages to `to` matching `kind`, in send order.
    fn take_msgs(&mut self, to: u64, kind: Option<&str>) -> Vec<Message> {
        let (taken, kept): (Vec<Message>, Vec<Message>) = std::mem::take(&mut self.messages)
            .into_iter()
            .partition(|m| m.to.get() == to && kind.is_none_or(|k| m.body.kind_name() == k));
        self.messages = kept;
        taken
    }

    /// Delivers (or drops) `msgs`, printing each at `indent`.
    fn deliver(&mut self, msgs: Vec<Message>, drop: bool, indent: usize) {
        for m in msgs {
            let text = describe::message(&m);
            if drop {
                self.line(indent, &format!("dropped: {text}"));
                continue;
            }
            if !self.connected(m.from, m.to) {
                self.line(indent, &format!("dropped (partition): {text}"));
                continue;
            }
            let Some(node) = self.nodes.get_mut(&m.to.get()) else {
                self.line(indent, &format!("dropped (no such node): {text}"));
                continue;
            };
            let r = node.raw.step(m);
            self.line(indent, &text);
            self.report(indent + 1, r);
            self.note(indent + 1);
        }
    }

    fn cmd_deliver(&mut self, a: &Args<'_>) -> CmdResult {
        a.only(&["type", "drop"])?;
        let kind = a.value("type")?.map(str::to_string);
        let drop = a.bool("drop")?.unwrap_or(false);
        let mut ids = a.ids()?;
        if ids.is_empty() {
            ids = self.messages.iter().map(|m| m.to.get()).collect();
            ids.sort_unstable();
            ids.dedup();
        }
        for id in ids {
            let msgs = self.take_msgs(id, kind.as_deref());
            self.deliver(msgs, drop, 0);
        }
        Ok(())
    }

    fn cmd_stabilize(&mut self, a: &Args<'_>) -> CmdResult {
        let ids = self.all_or(a.ids()?);
        for _ in 0..10_000 {
            let mut moved = false;
            for &id in &ids {
                if self.get(id)?.raw.has_ready() {
                    moved = true;
                    self.line(0, &format!("> {id} handling Ready"));
                    self.process_ready(id)?;
                }
            }
            for &id in &ids {
                while !self.get(id)?.append_work.is_empty() {
                    moved = true;
                    self.line(0, &format!("> {id} processing append thread"));
                    self.append_thread(id)?;
                }
                while !self.get(id)?.apply_work.is_empty() {
                    moved = true;
                    self.line(0, &format!("> {id} processing apply thread"));
                    self.apply_thread(id)?;
                }
            }
            for &id in &ids {
                let msgs = self.take_msgs(id, None);
                if !msgs.is_empty() {
                    moved = true;
                    self.line(0, &format!("> {id} receiving messages"));
                    self.deliver(msgs, false, 1);
                }
            }
            if !moved {
                return Ok(());
            }
        }
        Err("did not stabilize within 10000 rounds".into())
    }

    fn cmd_partition(&mut self, a: &Args<'_>) -> CmdResult {
        let mut groups = vec![BTreeSet::new()];
        for w in a.positional() {
            if w == "|" {
                groups.push(BTreeSet::new());
            } else {
                let id = parse_u64(w, "node id")?;
                groups.last_mut().expect("non-empty").insert(id);
            }
        }
        groups.retain(|g| !g.is_empty());
        self.partition = groups;
        Ok(())
    }

    fn cmd_compact(&mut self, a: &Args<'_>) -> CmdResult {
        let p = a.positional();
        let id = a.first_id()?;
        let index = Index(parse_u64(p.get(1).ok_or("missing index")?, "index")?);
        let node = self.get(id)?;
        let applied = node.raw.status().applied;
        let r = if index > applied {
            Err(format!(
                "cannot compact to {index}: only {applied} is applied"
            ))
        } else if node.snapshot_on_apply {
            // The snapshot at the applied index exists already (see `apply`).
            node.storage.compact(index).map_err(|e| e.to_string())
        } else {
            // Snapshot at `index`, then compact behind it, as an
            // application does.
            let storage = &node.storage;
            storage
                .initial_state()
                .and_then(|st| storage.create_snapshot(index, st.conf_state, Bytes::new()))
                .and_then(|_| storage.compact(index))
                .map_err(|e| e.to_string())
        };
        self.report(0, r);
        self.raft_log(id)
    }

    fn cmd_report_unreachable(&mut self, a: &Args<'_>) -> CmdResult {
        let ids = a.ids()?;
        let [leader, peer] = ids[..] else {
            return Err("want: report-unreachable leader id".into());
        };
        let peer = node_id(peer)?;
        self.get(leader)?.raw.report_unreachable(peer);
        Ok(())
    }

    /// `wake 1 2`: the host's failure detector wakes these nodes.
    fn cmd_wake(&mut self, a: &Args<'_>) -> CmdResult {
        for id in a.ids()? {
            self.get(id)?.raw.wake();
        }
        Ok(())
    }

    fn cmd_report_snapshot(&mut self, a: &Args<'_>) -> CmdResult {
        a.only(&["status"])?;
        let ids = a.ids()?;
        let [leader, peer] = ids[..] else {
            return Err("want: report-snapshot leader id [status=..]".into());
        };
        let status = match a.value("status")? {
            None | Some("finished") => SnapshotStatus::Finished,
            Some("failed") => SnapshotStatus::Failed,
            Some(o) => return Err(format!("status: unknown {o:?}")),
        };
        let peer = node_id(peer)?;
        self.get(leader)?.raw.report_snapshot(peer, status);
        Ok(())
    }

    fn cmd_raft_state(&mut self) -> CmdResult {
        let mut lines = Vec::new();
        for (id, n) in &self.nodes {
            let st = n.raw.status();
            let cs = n
                .storage
                .initial_state()
                .map(|s| s.conf_state)
                .unwrap_or_default();
            let nid = st.id;
            let membership = if cs.is_witness(nid) {
                "Witness"
            } else if cs.voters.contains(&nid) || cs.voters_outgoing.contains(&nid) {
                "Voter"
            } else if cs.learners.contains(&nid) || cs.learners_next.contains(&nid) {
                "Learner"
            } else {
                "Non-member"
            };
            lines.push(format!(
                "{id}: {} ({membership}) Term:{} Lead:{} Commit:{}{}",
                describe::role(st.soft_state.role),
                st.hard_state.term,
                st.soft_state.leader.map_or(0, NodeId::get),
                st.hard_state.commit,
                if st.quiesced { " Quiesced" } else { "" }
            ));
        }
        self.line(0, &lines.join("\n"));
        Ok(())
    }

    fn raft_log(&mut self, id: u64) -> CmdResult {
        let node = self.get(id)?;
        let s = &node.storage;
        let (first, last) = match (s.first_index(), s.last_index()) {
            (Ok(f), Ok(l)) => (f, l),
            (Err(e), _) | (_, Err(e)) => return Err(format!("storage: {e}")),
        };
        let text = if last < first {
            format!("log is empty: first index={first}, last index={last}")
        } else {
            match s.entries(first, last.next(), NO_LIMIT) {
                Ok(es) => es
                    .iter()
                    .map(describe::entry)
                    .collect::<Vec<_>>()
                    .join("\n"),
                Err(e) => format!("error: {e}"),
            }
        };
        self.line(0, &text);
        Ok(())
    }

    fn cmd_raft_log(&mut self, a: &Args<'_>) -> CmdResult {
        let id = a.first_id()?;
        self.raft_log(id)
    }

    fn cmd_status(&mut self, a: &Args<'_>) -> CmdResult {
        let id = a.first_id()?;
        let node = self.get(id)?;
        let st = node.raw.status();
        let cs = node
            .storage
            .initial_state()
            .map(|s| s.conf_state)
            .unwrap_or_default();
        let mut text = describe::status(&st);
        let _ = write!(text, "\nconfig: {}", describe::conf_state(&cs));
        self.line(0, &text);
        Ok(())
    }
}

/// A failed persist as the lines to print.
fn failures(r: Result<(), crate::PersistError>) -> Vec<String> {
    r.err().map(|e| e.to_string()).into_iter().collect()
}

/// Applies committed entries: membership changes take effect and the new
/// configuration is stored. Returns failures.
fn apply(node: &mut EnvNode, entries: &[Entry]) -> Vec<String> {
    let mut errors = Vec::new();
    for e in entries {
        match AnyConfChange::from_entry(e) {
            Ok(None) => {}
            Ok(Some(cc)) => match node.raw.apply_conf_change(&cc) {
                Ok(cs) => node.storage.set_conf_state(cs),
                Err(err) => errors.push(format!("conf change at {}: {err}", e.index)),
            },
            Err(err) => errors.push(format!("conf change at {}: {err}", e.index)),
        }
    }
    // Like an application that can snapshot its state machine on demand
    // (etcd's interaction env does the same), keep the storage's snapshot at
    // the applied state, so a leader that needs to send one sends current
    // data and membership. The log is not compacted (see `compact`).
    if let Some(last) = entries.last().filter(|_| node.snapshot_on_apply) {
        let r = node.storage.initial_state().and_then(|st| {
            node.storage
                .create_snapshot(last.index, st.conf_state, Bytes::new())
        });
        if let Err(e) = r {
            errors.push(format!("snapshot at {}: {e}", last.index));
        }
    }
    errors
}

/// Takes the snapshot a leader asked for once the node applied far enough,
/// at its applied index; returns the line that says so.
fn take_wanted_snapshot(node: &mut EnvNode) -> Option<String> {
    let min = node.snapshot_wanted?;
    let applied = node.raw.status().applied;
    if applied < min {
        return None;
    }
    node.snapshot_wanted = None;
    let r = node.storage.initial_state().and_then(|st| {
        node.storage
            .create_snapshot(applied, st.conf_state, Bytes::new())
    });
    Some(match r {
        Ok(_) => format!("snapshot taken at {applied}, as requested"),
        Err(e) => format!("error: requested snapshot at {applied}: {e}"),
    })
}

/// Runs the transcript file at `path` in a fresh [`Env`] (see the module
/// docs; `REWRITE=1` regenerates it).
///
/// # Errors
/// The first mismatch, script error or I/O failure.
pub fn run_file(path: &Path) -> Result<(), TranscriptError> {
    let mut env = Env::new();
    datadriven::run_file_with(path, |tc| env.handle(tc))
}

/// Runs every `*.txt` transcript directly inside `dir`, in name order, each
/// in a fresh [`Env`]; returns how many ran.
///
/// # Errors
/// The first failing file's error.
pub fn run_dir(dir: &Path) -> Result<usize, TranscriptError> {
    let files = datadriven::files_in(dir)?;
    for f in &files {
        run_file(f)?;
    }
    Ok(files.len())
}
