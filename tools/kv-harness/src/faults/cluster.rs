//! The `raftkv` processes of a fault run, inside its network namespace:
//! node `i` on `127.0.0.i` (see [`super::net`]), started, killed, paused,
//! removed and added. With [`NodeSettings::tls`] the peer ports use mutual
//! TLS: a CA made for the run issues each node's certificate (for
//! `127.0.0.i`) when the node first starts.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::certs::RunCerts;
use super::net::{CLIENT_PORT, MAX_NODE_ID, PEER_PORT, node_ip};
use super::power::{Mounts, PowerError};
use crate::certs::CertError;
use crate::client::{Client, ClientError};

/// Between two polls of a condition.
const POLL: Duration = Duration::from_millis(50);

/// Raft settings of the nodes.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    /// `--tick-ms`.
    pub tick_ms: u64,
    /// Node 1's own `--tick-ms`, when its clock runs slower than the
    /// others' (`raftkv faults --slow-tick-ms`).
    pub node_1_tick_ms: Option<u64>,
    /// `--election-ticks`.
    pub election_ticks: u32,
    /// `--snapshot-count`.
    pub snapshot_count: u64,
    /// `--catch-up-entries`.
    pub catch_up_entries: u64,
    /// `--request-timeout-ms`.
    pub request_timeout_ms: u64,
    /// `--log`.
    pub log: String,
    /// Mutual TLS on the peer ports.
    pub tls: bool,
    /// `--read-mode` (`index` or `lease`).
    pub read_mode: String,
    /// The `powerloss-fs` executable: each node's data directory becomes
    /// a mount of it, so power can be cut ([`Cluster::power_loss`]).
    pub power_loss_fs: Option<PathBuf>,
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            tick_ms: 25,
            node_1_tick_ms: None,
            election_ticks: 10,
            snapshot_count: 300,
            catch_up_entries: 100,
            request_timeout_ms: 2000,
            log: "info".into(),
            tls: false,
            read_mode: "index".into(),
            power_loss_fs: None,
        }
    }
}

/// What went wrong with the processes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// A process could not be started or signalled.
    #[error("node {id}: {what}: {source}")]
    Process {
        /// The node.
        id: u64,
        /// What was being done.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A condition did not hold in time.
    #[error("timed out after {after:?} waiting for {what}; last seen: {seen}")]
    Timeout {
        /// The condition.
        what: String,
        /// The deadline.
        after: Duration,
        /// The last observation, for the report.
        seen: String,
    },
    /// A node exited when it should not have, or with a failure.
    #[error("node {id} exited unexpectedly: {status}")]
    Exited {
        /// The node.
        id: u64,
        /// Its exit status.
        status: ExitStatus,
    },
    /// Every node id is used.
    #[error("no node ids left (at most {MAX_NODE_ID})")]
    OutOfIds,
    /// Certificates could not be made.
    #[error("certificates: {0}")]
    Certs(#[from] CertError),
    /// A power-loss mount failed.
    #[error(transparent)]
    Power(#[from] PowerError),
}

struct Node {
    child: Option<Child>,
    paused: bool,
}

/// The processes of a fault run. Dropping it kills them all.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    settings: NodeSettings,
    /// Every id ever allocated (its slot in `--cluster`), in order.
    slots: u64,
    /// Current members.
    members: Vec<u64>,
    nodes: BTreeMap<u64, Node>,
    client: Client,
    certs: Option<RunCerts>,
    /// The nodes' power-loss mounts, when [`NodeSettings::power_loss_fs`].
    /// Dropped after the nodes (see `Drop`).
    mounts: Option<Mounts>,
    /// When each node process was started, in order.
    starts: Vec<(u64, Instant)>,
    /// The nodes added at run time: they restart with `--join`.
    joined: std::collections::BTreeSet<u64>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(child) = node.child.as_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Unmounted only once no node uses them.
        drop(self.mounts.take());
    }
}

/// The client URL of node `id`.
pub fn endpoint(id: u64) -> String {
    format!("http://{}:{CLIENT_PORT}", node_ip(id))
}

/// The peer URL of node `id`: `https` with mutual TLS.
pub fn peer_url(id: u64, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{}:{PEER_PORT}", node_ip(id))
}

/// A node's view of the cluster, from `/status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node.
    pub id: u64,
    /// Its term.
    pub term: u64,
    /// The leader it knows.
    pub leader: Option<u64>,
    /// Whether it is the leader.
    pub is_leader: bool,
    /// Commit index.
    pub commit: u64,
    /// Applied index.
    pub applied: u64,
    /// Voters it knows.
    pub voters: Vec<u64>,
}

impl Cluster {
    /// Starts `nodes` founding members, running `bin` (a `raftkv`
    /// executable), with data and logs under `dir`.
    ///
    /// # Errors
    /// [`ClusterError::Process`] if a node cannot be started.
    pub fn start(
        bin: PathBuf,
        dir: PathBuf,
        nodes: u64,
        settings: NodeSettings,
    ) -> Result<Cluster, ClusterError> {
        let certs = match settings.tls {
            true => Some(RunCerts::new(dir.join("certs"))?),
            false => None,
        };
        let mut c = Cluster {
            mounts: settings.power_loss_fs.clone().map(Mounts::new),
            certs,
            bin,
            dir,
            settings,
            slots: nodes,
            members: (1..=nodes).collect(),
            nodes: BTreeMap::new(),
            client: Client::with_timeout(Duration::from_millis(1000)),
            starts: Vec::new(),
            joined: Default::default(),
        };
        for id in 1..=nodes {
            c.spawn(id, false)?;
        }
        Ok(c)
    }

    /// When each node process was started (node id, instant), in order:
    /// a node's state may go back across a restart (an unsynced commit
    /// index lost with the power), never within one process.
    pub fn starts(&self) -> &[(u64, Instant)] {
        &self.starts
    }

    /// Current members.
    pub fn members(&self) -> &[u64] {
        &self.members
    }

    /// The log file of node `id`.
    pub fn log_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node-{id}.log"))
    }

    /// Where the data and logs live.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn cluster_flag(&self) -> String {
        (1..=self.slots)
            .map(|id| self.peer_url(id))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn peer_url(&self, id: u64) -> String {
        peer_url(id, self.certs.is_some())
    }

    fn spawn(&mut self, id: u64, join: bool) -> Result<(), ClusterError> {
        let err = |what, source| ClusterError::Process { id, what, source };
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .map_err(|e| err("opening its log", e))?;
        let data_dir = self.dir.join(format!("node-{id}"));
        if let Some(mounts) = &mut self.mounts {
            mounts.ensure(id, &data_dir, &self.dir)?;
        }
        let s = &self.settings;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--id")
            .arg(id.to_string())
            .arg("--cluster")
            .arg(self.cluster_flag())
            .arg("--client-host")
            .arg(node_ip(id).to_string())
            .arg("--port")
            .arg(CLIENT_PORT.to_string())
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--snapshot-count")
            .arg(s.snapshot_count.to_string())
            .arg("--catch-up-entries")
            .arg(s.catch_up_entries.to_string())
            .arg("--tick-ms")
            .arg(match s.node_1_tick_ms {
                Some(slow) if id == 1 => slow.to_string(),
                _ => s.tick_ms.to_string(),
            })
            .arg("--election-ticks")
            .arg(s.election_ticks.to_string())
            .arg("--request-timeout-ms")
            .arg(s.request_timeout_ms.to_string())
            .arg("--log")
            .arg(&s.log)
            .arg("--read-mode")
            .arg(&s.read_mode)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        if join {
            cmd.arg("--join");
        }
        if let Some(certs) = &self.certs {
            cmd.args(certs.flags(id)?);
        }
        // Before the process exists: whatever it serves comes after this.
        self.starts.push((id, Instant::now()));
        let child = cmd.spawn().map_err(|e| err("starting", e))?;
        self.nodes.insert(
            id,
            Node {
                child: Some(child),
                paused: false,
            },
        );
        Ok(())
    }

    /// Whether node `id`'s process is running (possibly paused).
    pub fn is_running(&self, id: u64) -> bool {
        self.nodes.get(&id).is_some_and(|n| n.child.is_some())
    }

    /// SIGKILLs node `id` and reaps it.
    ///
    /// # Errors
    /// [`ClusterError::Process`].
    pub fn kill(&mut self, id: u64) -> Result<(), ClusterError> {
        let err = |what, source| ClusterError::Process { id, what, source };
        if let Some(node) = self.nodes.get_mut(&id)
            && let Some(mut child) = node.child.take()
        {
            node.paused = false;
            child.kill().map_err(|e| err("killing", e))?;
            child.wait().map_err(|e| err("reaping", e))?;
        }
        Ok(())
    }

    /// Cuts node `id`'s power: SIGKILL, then everything it did not make
    /// durable is dropped from its data directory. Restart it with
    /// [`Cluster::restart`].
    ///
    /// # Errors
    /// [`ClusterError::Process`] or [`ClusterError::Power`]; without
    /// power-loss mounts, the kill alone.
    pub fn power_loss(&mut self, id: u64) -> Result<(), ClusterError> {
        self.kill(id)?;
        if let Some(mounts) = &self.mounts {
            mounts.power_loss(id)?;
        }
        Ok(())
    }

    /// Sends node `id`'s file system a control command (`fail-fsync on`,
    /// `capacity <bytes>`, `fsync-delay-ms <n>`, `status`, ...); returns
    /// the reply.
    ///
    /// # Errors
    /// [`ClusterError::Power`].
    pub fn disk(&self, id: u64, command: &str) -> Result<String, ClusterError> {
        match &self.mounts {
            Some(mounts) => Ok(mounts.command(id, command)?),
            None => Ok(String::new()),
        }
    }

    /// Waits until node `id`'s process exits on its own; returns how.
    ///
    /// # Errors
    /// [`ClusterError::Timeout`] if it is still running after `within`.
    pub async fn wait_stopped(
        &mut self,
        id: u64,
        within: Duration,
    ) -> Result<ExitStatus, ClusterError> {
        self.wait_exit(id, Instant::now() + within).await
    }

    /// Whether the data directories are power-loss mounts.
    pub fn can_cut_power(&self) -> bool {
        self.mounts.is_some()
    }

    /// Restarts a killed member `id` on its data directory.
    ///
    /// # Errors
    /// [`ClusterError::Process`].
    pub fn restart(&mut self, id: u64) -> Result<(), ClusterError> {
        if self.is_running(id) {
            return Ok(());
        }
        // A joiner killed before its first append has no log, and must
        // not found a cluster of its own.
        self.spawn(id, self.joined.contains(&id))
    }

    /// SIGSTOPs (`pause`) or SIGCONTs node `id`.
    ///
    /// # Errors
    /// [`ClusterError::Process`].
    pub fn pause(&mut self, id: u64, pause: bool) -> Result<(), ClusterError> {
        let Some(node) = self.nodes.get_mut(&id) else {
            return Ok(());
        };
        let Some(child) = node.child.as_ref() else {
            return Ok(());
        };
        let signal = if pause {
            Signal::SIGSTOP
        } else {
            Signal::SIGCONT
        };
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        kill(pid, signal).map_err(|e| ClusterError::Process {
            id,
            what: "signalling",
            source: e.into(),
        })?;
        node.paused = pause;
        Ok(())
    }

    /// Resumes every paused node and restarts every member that is not
    /// running.
    ///
    /// # Errors
    /// [`ClusterError::Process`].
    pub fn revive_all(&mut self) -> Result<(), ClusterError> {
        let paused: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.paused)
            .map(|(id, _)| *id)
            .collect();
        for id in paused {
            self.pause(id, false)?;
        }
        for id in self.members.clone() {
            self.restart(id)?;
        }
        Ok(())
    }

    /// Checks that no member's process exited on its own.
    ///
    /// # Errors
    /// [`ClusterError::Exited`] for the first one that did.
    pub fn check_alive(&mut self) -> Result<(), ClusterError> {
        for id in self.members.clone() {
            if let Some(child) = self.nodes.get_mut(&id).and_then(|n| n.child.as_mut())
                && let Ok(Some(status)) = child.try_wait()
            {
                self.nodes.get_mut(&id).map(|n| n.child.take());
                return Err(ClusterError::Exited { id, status });
            }
        }
        Ok(())
    }

    /// The `/status` of node `id`, if it answers within a second.
    pub async fn status(&self, id: u64) -> Option<NodeStatus> {
        let v = self.client.status(&endpoint(id)).await.ok()?;
        Some(NodeStatus {
            id,
            term: v["term"].as_u64()?,
            leader: v["leader"].as_u64(),
            is_leader: v["role"].as_str() == Some("leader"),
            commit: v["commit"].as_u64()?,
            applied: v["applied"].as_u64()?,
            voters: v["members"]["voters"]
                .as_array()?
                .iter()
                .filter_map(serde_json::Value::as_u64)
                .collect(),
        })
    }

    /// The statuses of every running, unpaused member that answers.
    pub async fn statuses(&self) -> Vec<NodeStatus> {
        let ids: Vec<u64> = self
            .members
            .iter()
            .copied()
            .filter(|id| {
                self.nodes
                    .get(id)
                    .is_some_and(|n| n.child.is_some() && !n.paused)
            })
            .collect();
        let mut all = Vec::with_capacity(ids.len());
        for id in ids {
            all.extend(self.status(id).await);
        }
        all
    }

    /// The member that says it leads in the highest term, if any answers.
    pub async fn leader(&self) -> Option<u64> {
        self.statuses()
            .await
            .into_iter()
            .filter(|s| s.is_leader)
            .max_by_key(|s| s.term)
            .map(|s| s.id)
    }

    /// Waits until every member runs, answers, and names the same leader,
    /// a member, whose voters are the members; returns that leader. With
    /// `caught_up`, also until every member has applied the leader's
    /// commit index.
    ///
    /// # Errors
    /// [`ClusterError::Timeout`] with the statuses last seen.
    pub async fn wait_healthy(
        &self,
        within: Duration,
        caught_up: bool,
    ) -> Result<u64, ClusterError> {
        let deadline = Instant::now() + within;
        loop {
            let st = self.statuses().await;
            if let Some(leader) = self.healthy(&st)
                && (!caught_up || self.caught_up(leader).await)
            {
                return Ok(leader);
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::Timeout {
                    what: format!(
                        "members {:?} to agree on a leader{}",
                        self.members,
                        if caught_up { " and catch up" } else { "" }
                    ),
                    after: within,
                    seen: format!("{st:?}"),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn healthy(&self, st: &[NodeStatus]) -> Option<u64> {
        if st.len() != self.members.len() {
            return None;
        }
        let leader = st.first()?.leader?;
        let mut members = self.members.clone();
        members.sort_unstable();
        st.iter().find(|s| s.id == leader && s.is_leader)?;
        for s in st {
            let mut voters = s.voters.clone();
            voters.sort_unstable();
            if s.leader != Some(leader) || voters != members {
                return None;
            }
        }
        Some(leader)
    }

    /// Whether every member has applied what `leader` had committed just
    /// before (asked in that order, so it works while writes continue).
    async fn caught_up(&self, leader: u64) -> bool {
        let Some(commit) = self.status(leader).await.map(|s| s.commit) else {
            return false;
        };
        for &m in &self.members {
            match self.status(m).await {
                Some(s) if s.applied >= commit => {}
                _ => return false,
            }
        }
        true
    }

    /// Removes member `id`, trying every member in turn (`id` itself
    /// too: membership changes are made by the leader, the others answer
    /// 503, and the leader may be the member being removed), and waits for
    /// its process to exit 0.
    ///
    /// # Errors
    /// [`ClusterError::Timeout`] if the removal does not apply or the node
    /// does not exit; [`ClusterError::Exited`] if it exits with a failure.
    pub async fn remove(&mut self, id: u64, within: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + within;
        self.request_removal(id, within).await?;
        self.wait_removed(id, deadline).await
    }

    /// The first half of [`Cluster::remove`]: returns once the removal of
    /// node `id` is applied, while the node may still be handing over its
    /// leadership.
    ///
    /// # Errors
    /// [`ClusterError::Timeout`] if the removal does not apply in time.
    pub async fn request_removal(&mut self, id: u64, within: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + within;
        let members: Vec<u64> = self.members.clone();
        let mut i = 0usize;
        loop {
            let via = members[i % members.len()];
            i += 1;
            match self.client.remove_node(&endpoint(via), id).await {
                Ok(()) => break,
                // Already removed (an earlier attempt went through).
                Err(ClientError::NotFound { .. }) => break,
                Err(e) => {
                    if let Some(st) = self.status(via).await
                        && !st.voters.contains(&id)
                    {
                        break;
                    }
                    if Instant::now() >= deadline {
                        return Err(ClusterError::Timeout {
                            what: format!("removing node {id}"),
                            after: within,
                            seen: format!("DELETE /{id} via {via}: {e}"),
                        });
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
        self.members.retain(|m| *m != id);
        Ok(())
    }

    /// The second half of [`Cluster::remove`]: waits until the removed
    /// node `id` has exited 0.
    ///
    /// # Errors
    /// [`ClusterError::Timeout`] if it does not exit by `deadline`;
    /// [`ClusterError::Exited`] if it exits with a failure.
    pub async fn wait_removed(&mut self, id: u64, deadline: Instant) -> Result<(), ClusterError> {
        let status = self.wait_exit(id, deadline).await?;
        if !status.success() {
            return Err(ClusterError::Exited { id, status });
        }
        Ok(())
    }

    async fn wait_exit(&mut self, id: u64, deadline: Instant) -> Result<ExitStatus, ClusterError> {
        loop {
            let Some(child) = self.nodes.get_mut(&id).and_then(|n| n.child.as_mut()) else {
                return Err(ClusterError::Timeout {
                    what: format!("node {id} to exit"),
                    after: Duration::ZERO,
                    seen: "it was not running".into(),
                });
            };
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.nodes.remove(&id);
                    return Ok(status);
                }
                Ok(None) => {}
                Err(source) => {
                    return Err(ClusterError::Process {
                        id,
                        what: "waiting",
                        source,
                    });
                }
            }
            if Instant::now() >= deadline {
                return Err(ClusterError::Timeout {
                    what: format!("removed node {id} to exit"),
                    after: Duration::ZERO,
                    seen: "still running".into(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Adds a brand-new node with the next unused id through a member,
    /// starts it with `--join`, and returns its id.
    ///
    /// # Errors
    /// [`ClusterError::OutOfIds`], [`ClusterError::Timeout`] if the change
    /// does not apply, [`ClusterError::Process`] if it cannot start.
    pub async fn add(&mut self, within: Duration) -> Result<u64, ClusterError> {
        if self.slots >= MAX_NODE_ID {
            return Err(ClusterError::OutOfIds);
        }
        let id = self.slots + 1;
        let deadline = Instant::now() + within;
        let mut i = 0usize;
        loop {
            let via = self.members[i % self.members.len()];
            i += 1;
            match self
                .client
                .add_node(&endpoint(via), id, &self.peer_url(id))
                .await
            {
                Ok(()) => break,
                Err(e) => {
                    if let Some(st) = self.status(via).await
                        && st.voters.contains(&id)
                    {
                        break;
                    }
                    if Instant::now() >= deadline {
                        return Err(ClusterError::Timeout {
                            what: format!("adding node {id}"),
                            after: within,
                            seen: format!("POST /{id} via {via}: {e}"),
                        });
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
        self.slots = id;
        self.members.push(id);
        self.joined.insert(id);
        self.spawn(id, true)?;
        Ok(id)
    }
}
