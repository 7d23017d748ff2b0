//! Command-line flags of the server, compatible with etcd's raftexample
//! (`--id`, `--cluster`, `--port`, `--join`), and their validation: every
//! mistake becomes one line that says what to fix.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use raft_core::NodeId;

use crate::peer_url::{PeerUrl, PeerUrlError};
use crate::server::ServerOptions;

/// Flags of `raftkv` when it runs a node.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// This node's id: node i is the i-th URL of --cluster.
    #[arg(long)]
    pub id: Option<u64>,
    /// Comma-separated peer URLs of every member, e.g.
    /// http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379
    #[arg(long, value_delimiter = ',')]
    pub cluster: Vec<String>,
    /// Port of the client HTTP API.
    #[arg(long, default_value_t = 9121)]
    pub port: u16,
    /// Join an existing cluster (after `POST /<id>` on a member) instead of
    /// founding a new one.
    #[arg(long)]
    pub join: bool,
    /// Where the WAL and snapshots live [default: ./raftkv-N for --id N].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Applied entries between two snapshots.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_count: u64,
    /// Entries kept in memory behind a snapshot, so a follower that lags by
    /// less catches up from the log instead of receiving a snapshot.
    #[arg(long, default_value_t = 5000)]
    pub catch_up_entries: u64,
    /// Length of one Raft tick, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub tick_ms: u64,
    /// Election timeout, in ticks.
    #[arg(long, default_value_t = 10)]
    pub election_ticks: u32,
    /// Heartbeat interval, in ticks.
    #[arg(long, default_value_t = 1)]
    pub heartbeat_ticks: u32,
    /// Log filter (tracing-subscriber EnvFilter syntax), e.g. `info` or
    /// `raftkv=debug,raft_core=info`.
    #[arg(long, default_value = "info")]
    pub log: String,
    /// Address the client API listens on.
    #[arg(long, default_value = "127.0.0.1")]
    pub client_host: IpAddr,
    /// Threads serving the client API and the peer transport (the raft
    /// loop has its own). One measured faster than two on a 2-core machine
    /// running a whole cluster: fewer cross-thread wakeups.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// How long a client request may wait before it gets 504.
    #[arg(long, default_value_t = 5000)]
    pub request_timeout_ms: u64,
}

/// A flag that cannot work, and what to do about it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgsError {
    /// `--id` is missing or zero.
    #[error("--id is required and must be at least 1 (node i is the i-th URL of --cluster)")]
    MissingId,
    /// `--cluster` is missing.
    #[error("--cluster is required: the comma-separated peer URLs of every member")]
    MissingCluster,
    /// `--id` points past the end of `--cluster`.
    #[error("--id {id} is not in --cluster, which lists {len} URL(s); node i is the i-th URL")]
    IdNotInCluster {
        /// The id given.
        id: u64,
        /// How many URLs were given.
        len: usize,
    },
    /// A URL in `--cluster` is malformed.
    #[error("--cluster: {0}")]
    BadUrl(#[from] PeerUrlError),
    /// The same URL twice.
    #[error("--cluster lists {0} twice")]
    DuplicateUrl(String),
    /// A tick setting that cannot work.
    #[error("{0}")]
    BadTiming(&'static str),
    /// `--snapshot-count 0`.
    #[error("--snapshot-count must be at least 1")]
    BadSnapshotCount,
    /// `--data-dir` exists and is not a directory.
    #[error("--data-dir {0} exists and is not a directory")]
    DataDirNotADir(String),
}

impl ServerArgs {
    /// Checks the flags and builds the node's options.
    ///
    /// # Errors
    /// An [`ArgsError`] naming the flag to fix.
    pub fn validate(&self) -> Result<(ServerOptions, SocketAddr), ArgsError> {
        let id = self.id.and_then(NodeId::new).ok_or(ArgsError::MissingId)?;
        if self.cluster.is_empty() || self.cluster.iter().all(|u| u.trim().is_empty()) {
            return Err(ArgsError::MissingCluster);
        }
        let mut cluster = Vec::with_capacity(self.cluster.len());
        for raw in &self.cluster {
            let url = PeerUrl::parse(raw)?;
            if cluster.contains(&url) {
                return Err(ArgsError::DuplicateUrl(url.to_string()));
            }
            cluster.push(url);
        }
        if id.get() as usize > cluster.len() {
            return Err(ArgsError::IdNotInCluster {
                id: id.get(),
                len: cluster.len(),
            });
        }
        if self.tick_ms == 0 {
            return Err(ArgsError::BadTiming("--tick-ms must be at least 1"));
        }
        if self.heartbeat_ticks == 0 || self.election_ticks <= self.heartbeat_ticks {
            return Err(ArgsError::BadTiming(
                "--election-ticks must be greater than --heartbeat-ticks, which must be at least 1",
            ));
        }
        if self.snapshot_count == 0 {
            return Err(ArgsError::BadSnapshotCount);
        }
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("raftkv-{id}")));
        if data_dir.exists() && !data_dir.is_dir() {
            return Err(ArgsError::DataDirNotADir(data_dir.display().to_string()));
        }
        let opts = ServerOptions {
            id,
            cluster,
            join: self.join,
            data_dir,
            snapshot_count: self.snapshot_count,
            catch_up_entries: self.catch_up_entries,
            tick: Duration::from_millis(self.tick_ms),
            election_ticks: self.election_ticks,
            heartbeat_ticks: self.heartbeat_ticks,
            request_timeout: Duration::from_millis(self.request_timeout_ms.max(1)),
            queue_len: 65_536,
        };
        Ok((opts, SocketAddr::new(self.client_host, self.port)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ServerArgs {
        ServerArgs {
            id: Some(1),
            cluster: vec![
                "http://127.0.0.1:12379".into(),
                "http://127.0.0.1:22379".into(),
            ],
            port: 12380,
            join: false,
            data_dir: None,
            snapshot_count: 10_000,
            catch_up_entries: 5000,
            tick_ms: 100,
            election_ticks: 10,
            heartbeat_ticks: 1,
            log: "info".into(),
            client_host: "127.0.0.1".parse().unwrap(),
            request_timeout_ms: 5000,
            threads: 2,
        }
    }

    #[test]
    fn good_flags_build_options() {
        let (opts, addr) = args().validate().unwrap();
        assert_eq!(opts.id.get(), 1);
        assert_eq!(opts.cluster.len(), 2);
        assert_eq!(opts.data_dir, PathBuf::from("raftkv-1"));
        assert_eq!(addr, "127.0.0.1:12380".parse().unwrap());
    }

    #[test]
    fn each_bad_flag_gets_its_own_error() {
        let mut a = args();
        a.id = None;
        assert_eq!(a.validate().unwrap_err(), ArgsError::MissingId);
        let mut a = args();
        a.id = Some(3);
        assert_eq!(
            a.validate().unwrap_err(),
            ArgsError::IdNotInCluster { id: 3, len: 2 }
        );
        let mut a = args();
        a.cluster.clear();
        assert_eq!(a.validate().unwrap_err(), ArgsError::MissingCluster);
        let mut a = args();
        a.cluster[1] = "127.0.0.1:22379".into();
        assert!(matches!(a.validate().unwrap_err(), ArgsError::BadUrl(_)));
        let mut a = args();
        a.cluster[1] = a.cluster[0].clone();
        assert!(matches!(
            a.validate().unwrap_err(),
            ArgsError::DuplicateUrl(_)
        ));
        let mut a = args();
        a.election_ticks = 1;
        assert!(matches!(a.validate().unwrap_err(), ArgsError::BadTiming(_)));
        let mut a = args();
        a.snapshot_count = 0;
        assert_eq!(a.validate().unwrap_err(), ArgsError::BadSnapshotCount);
    }

    #[test]
    fn a_file_is_not_a_data_dir() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut a = args();
        a.data_dir = Some(f.path().to_path_buf());
        assert!(matches!(
            a.validate().unwrap_err(),
            ArgsError::DataDirNotADir(_)
        ));
    }
}
