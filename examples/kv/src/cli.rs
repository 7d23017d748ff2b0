//! Command-line flags of the server, compatible with etcd's raftexample
//! (`--id`, `--cluster`, `--port`, `--join`), and their validation: every
//! mistake becomes one line that says what to fix.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::ColorChoice;
use raft_core::NodeId;

use crate::node::group_options;
use raft_transport::{
    CapsError, ClusterUrlsError, ConnectionCaps, ConnectionLimits, HttpNodeConfig, PeerUrl, Scheme,
    TlsFiles, TlsFlags, TlsFlagsError, descriptor_limit, parse_cluster_urls,
};

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
    /// Raft groups the keys are split over by a hash of the key, their
    /// leaders spread over the members (1: one group, raftexample's
    /// layout). Fixed for the life of the data directory.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub groups: u64,
    /// Entries kept in memory behind a snapshot, so a follower that lags by
    /// less catches up from the log instead of receiving a snapshot.
    #[arg(long, default_value_t = 5000)]
    pub catch_up_entries: u64,
    /// Persist on a writer thread of its own: the next Ready is built while
    /// the previous one is fsynced (raft-core's async storage writes).
    /// Always on with --groups above 1, where one writer round syncs every
    /// group's writes at once.
    #[arg(long)]
    pub async_storage_writes: bool,
    /// Idle ticks after which a group quiesces: its leader stops
    /// heartbeating and nobody ticks it until a request, a peer's message
    /// or a peer node reported down wakes it. Default: three heartbeat
    /// intervals with --groups above 1, so that idle groups cost nothing
    /// and few leaders heartbeat at once while many groups start (100,000
    /// groups elect on 2 cores with 3, not with 20:
    /// docs/perf/2026-12-04-election-pacing.md); off with one group
    /// (raftexample heartbeats forever).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub quiesce_after_ticks: Option<u32>,
    /// Never quiesce, whatever --groups is.
    #[arg(long, conflicts_with = "quiesce_after_ticks")]
    pub no_quiesce: bool,
    /// At most this many of the node's groups campaign at once; a group
    /// whose election falls due beyond that waits in line for a free
    /// permit, so that many groups starting together do not flood the
    /// peers with votes.
    #[arg(long, default_value_t = raft_host::DEFAULT_MAX_CONCURRENT_ELECTIONS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_concurrent_elections: usize,
    /// Length of one Raft tick, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub tick_ms: u64,
    /// Election timeout, in ticks.
    #[arg(long, default_value_t = 10)]
    pub election_ticks: u32,
    /// How linearizable reads are confirmed: `index` (a heartbeat round
    /// with a quorum, etcd's default) or `lease` (the leader answers within
    /// its lease, no round trip; safe while the nodes' clocks drift apart
    /// by at most --max-clock-drift).
    #[arg(long, value_enum, default_value_t = ReadMode::Index)]
    pub read_mode: ReadMode,
    /// With --read-mode lease: how much faster, in per mille, any node's
    /// clock may run than any other's; the lease shrinks to match (100:
    /// 10%, an 8-tick lease under a 10-tick election timeout).
    #[arg(long, default_value_t = 100)]
    pub max_clock_drift: u32,
    /// Heartbeat interval, in ticks.
    #[arg(long, default_value_t = 1)]
    pub heartbeat_ticks: u32,
    /// Size of a WAL segment, filled with zeros up front (the next one is
    /// prepared while one fills, so the WAL needs about twice this): e.g.
    /// 64MiB, 4MiB or 1048576 (bytes); K, M and G are powers of 1024. From
    /// 1 MiB to 1 GiB; smaller suits a small disk. With --groups G the
    /// groups share one WAL with segments of this size.
    #[arg(long, default_value = "64MiB", value_parser = parse_segment_size)]
    pub wal_segment_size: u64,
    /// Log filter (tracing-subscriber EnvFilter syntax), e.g. `info` or
    /// `raftkv=debug,raft_core=info`.
    #[arg(long, default_value = "info")]
    pub log: String,
    /// Colour in the log: `auto` (only when stderr is a terminal),
    /// `always` or `never`.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub log_color: ColorChoice,
    /// Address the client API listens on.
    #[arg(long, default_value = "127.0.0.1")]
    pub client_host: IpAddr,
    /// Threads serving the client API and the peer transport (the raft
    /// loop has its own). One measured faster than two on a 2-core machine
    /// running a whole cluster: fewer cross-thread wakeups.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// The most client API connections at once; more are refused with
    /// 503 [default: what the file descriptor limit (ulimit -n) leaves
    /// after 64 for the WAL, snapshots and peers, and a quarter of the
    /// rest for the peer port].
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// How long a client request may wait before it gets 504.
    #[arg(long, default_value_t = 5000)]
    pub request_timeout_ms: u64,
    /// This node's certificate (PEM) for mutual TLS on the peer port; it
    /// must name the node (URI SAN raftkv://node/ID). Needs https://
    /// URLs in --cluster, --peer-key and --peer-ca.
    #[arg(long)]
    pub peer_cert: Option<PathBuf>,
    /// The private key (PEM) of --peer-cert.
    #[arg(long)]
    pub peer_key: Option<PathBuf>,
    /// The CA certificate (PEM) that signs every member's certificate.
    #[arg(long)]
    pub peer_ca: Option<PathBuf>,
    /// A certificate (PEM) to serve the client API over TLS.
    #[arg(long)]
    pub client_cert: Option<PathBuf>,
    /// The private key (PEM) of --client-cert.
    #[arg(long)]
    pub client_key: Option<PathBuf>,
    /// A CA certificate (PEM): the client API then requires client
    /// certificates signed by it.
    #[arg(long)]
    pub client_ca: Option<PathBuf>,
}

/// Whether to write ANSI colour codes to stderr for `--log-color`:
/// `auto` only when stderr is a terminal (a file or a pipe gets plain
/// text; `raftkv cluster` asks for `always` when its own stderr is a
/// terminal, as it pipes the nodes' output).
pub fn log_ansi(color: ColorChoice) -> bool {
    use std::io::IsTerminal;
    match color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        _ => std::io::stderr().is_terminal(),
    }
}

/// The smallest `--wal-segment-size`.
pub const MIN_WAL_SEGMENT_BYTES: u64 = 1 << 20;
/// The largest `--wal-segment-size`.
pub const MAX_WAL_SEGMENT_BYTES: u64 = 1 << 30;

/// Parses a `--wal-segment-size`: bytes, or a size with a unit (`K`,
/// `KiB`, `M`, `MiB`, `G`, `GiB`, all powers of 1024), within
/// [`MIN_WAL_SEGMENT_BYTES`] and [`MAX_WAL_SEGMENT_BYTES`].
///
/// # Errors
/// What is wrong with it, in one line.
pub fn parse_segment_size(text: &str) -> Result<u64, String> {
    let bytes = parse_size::Config::new()
        .with_binary()
        .parse_size(text.trim())
        .map_err(|e| format!("{text:?} is not a size like 64MiB, 4M or 1048576: {e}"))?;
    if !(MIN_WAL_SEGMENT_BYTES..=MAX_WAL_SEGMENT_BYTES).contains(&bytes) {
        return Err(format!(
            "{text} is outside 1MiB..=1GiB, the sizes a WAL segment may have"
        ));
    }
    Ok(bytes)
}

/// Where and how the client API listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientApiOptions {
    /// The address.
    pub addr: SocketAddr,
    /// TLS, if `--client-cert` and `--client-key` were given.
    pub tls: Option<TlsFiles>,
    /// The connection cap and timeouts.
    pub limits: ConnectionLimits,
}

/// How linearizable reads are confirmed (`--read-mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadMode {
    /// ReadIndex: a heartbeat round with a quorum per batch of reads.
    Index,
    /// The leader's lease: no round trip.
    Lease,
}

/// A flag that cannot work, and what to do about it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgsError {
    /// `--id` is missing or zero.
    #[error("--id is required and must be at least 1 (node i is the i-th URL of --cluster)")]
    MissingId,
    /// `--id` points past the end of `--cluster`.
    #[error("--id {id} is not in --cluster, which lists {len} URL(s); node i is the i-th URL")]
    IdNotInCluster {
        /// The id given.
        id: u64,
        /// How many URLs were given.
        len: usize,
    },
    /// `--cluster` is missing or not a list of distinct peer URLs with one
    /// scheme.
    #[error("--cluster: {0}")]
    Cluster(#[from] ClusterUrlsError),
    /// A tick setting that cannot work.
    #[error("{0}")]
    BadTiming(&'static str),
    /// `--snapshot-count 0`.
    #[error("--snapshot-count must be at least 1")]
    BadSnapshotCount,
    /// `--data-dir` exists and is not a directory.
    #[error("--data-dir {0} exists and is not a directory")]
    DataDirNotADir(String),
    /// The data directory holds another number of groups than `--groups`
    /// (keys would be looked for in the wrong group).
    #[error("--data-dir {dir} holds {found} group(s): start it with --groups {found}")]
    GroupCount {
        /// The data directory.
        dir: String,
        /// The groups it holds.
        found: u64,
    },
    /// Some of the TLS flags of a port, but not a working combination.
    #[error("{0}")]
    Tls(#[from] TlsFlagsError),
    /// `https://` peer URLs without certificates.
    #[error(
        "--cluster has https:// URLs, which need --peer-cert, --peer-key and --peer-ca \
         (`raftkv certs` writes them)"
    )]
    HttpsWithoutCertificates,
    /// Certificates with `http://` peer URLs.
    #[error(
        "--peer-cert, --peer-key and --peer-ca need https:// URLs in --cluster, which has http:// \
         ones"
    )]
    CertificatesWithHttp,
    /// The file descriptor limit is too low, or `--max-connections` too
    /// high for it.
    #[error("{0}")]
    Descriptors(#[from] CapsError),
    /// The groups' snapshot files would leave too few descriptors for a
    /// node.
    #[error(
        "--groups {groups} keeps up to {for_groups} file descriptors open for the groups' \
         snapshot files, and the limit (ulimit -n) of {limit} leaves too few beside them: raise \
         the limit to at least {needed} or use fewer groups"
    )]
    GroupDescriptors {
        /// `--groups`.
        groups: u64,
        /// What the groups after the first hold.
        for_groups: u64,
        /// The soft `RLIMIT_NOFILE`.
        limit: u64,
        /// The least limit that fits.
        needed: u64,
    },
}

/// File descriptors the groups after the first hold open, together: the
/// snapshot files being written or received (on the host's small snapshot
/// pool and a bounded number of peer connections). A group holds none of
/// its own: the groups share one WAL, whose directory, segment and
/// prepared spare are in the node's own reserve as a one-group node's WAL
/// is, and their snapshot directories take no lock of their own (the
/// shared WAL's keeps other processes out).
const SNAPSHOT_FILES_IN_FLIGHT: u64 = 16;

impl ServerArgs {
    /// Checks the flags and builds the node's options and the client
    /// API's.
    ///
    /// # Errors
    /// An [`ArgsError`] naming the flag to fix.
    pub fn validate(&self) -> Result<(HttpNodeConfig, ClientApiOptions), ArgsError> {
        self.validate_with_descriptors(descriptor_limit())
    }

    /// [`ServerArgs::validate`] for a process allowed `descriptors` open
    /// file descriptors (the soft `RLIMIT_NOFILE`), from which the
    /// connection caps derive.
    ///
    /// # Errors
    /// An [`ArgsError`] naming the flag (or limit) to fix.
    pub fn validate_with_descriptors(
        &self,
        descriptors: u64,
    ) -> Result<(HttpNodeConfig, ClientApiOptions), ArgsError> {
        let id = self.id.and_then(NodeId::new).ok_or(ArgsError::MissingId)?;
        let cluster = parse_cluster_urls(&self.cluster)?;
        if id.get() as usize > cluster.len() {
            return Err(ArgsError::IdNotInCluster {
                id: id.get(),
                len: cluster.len(),
            });
        }
        self.check_timing()?;
        if self.snapshot_count == 0 {
            return Err(ArgsError::BadSnapshotCount);
        }
        let caps =
            ConnectionCaps::for_limit(self.group_budget(descriptors)?, self.max_connections)?;
        let peer_tls = self.peer_tls(&cluster)?;
        let client_tls = self.client_tls()?;
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("raftkv-{id}")));
        if data_dir.exists() && !data_dir.is_dir() {
            return Err(ArgsError::DataDirNotADir(data_dir.display().to_string()));
        }
        check_group_count(&data_dir, self.groups)?;
        let mut group = group_options(&cluster, self.join);
        group.tick_interval = Duration::from_millis(self.tick_ms);
        group.election_timeout_ticks = self.election_ticks;
        group.heartbeat_interval_ticks = self.heartbeat_ticks;
        group.read_mode = match self.read_mode {
            ReadMode::Index => raft_core::ReadOnlyOption::Safe,
            ReadMode::Lease => raft_core::ReadOnlyOption::LeaseBased,
        };
        group.max_clock_drift = raft_core::ClockDrift::PerMille(self.max_clock_drift);
        group.snapshot_interval_entries = self.snapshot_count;
        group.catch_up_entries = self.catch_up_entries;
        group.async_storage_writes = self.async_storage_writes;
        group.quiesce_after_ticks = self.quiesce_ticks();
        group.request_timeout = Duration::from_millis(self.request_timeout_ms.max(1));
        group.membership_timeout = group.request_timeout;
        let extra_groups = crate::node::shard(&mut group, self.groups, cluster.len());
        let mut opts = HttpNodeConfig::new(id, data_dir, group);
        opts.extra_groups = extra_groups;
        opts.host = raft_host::HostOptions::new()
            .max_concurrent_elections(std::num::NonZeroUsize::new(self.max_concurrent_elections));
        // The first group's WAL and the one the others share each take
        // the full segment size.
        let wal = raft_wal::WalOptions::new().segment_size_bytes(self.wal_segment_size);
        opts.storage = raft_storage::StorageOptions::new().wal(wal);
        opts.limits = caps.peer_limits();
        opts.tls = peer_tls;
        let client = ClientApiOptions {
            addr: SocketAddr::new(self.client_host, self.port),
            tls: client_tls,
            limits: caps.client_limits(),
        };
        Ok((opts, client))
    }

    /// After how many idle ticks a group quiesces (see the flags).
    fn quiesce_ticks(&self) -> Option<NonZeroU32> {
        if self.no_quiesce {
            return None;
        }
        match self.quiesce_after_ticks {
            Some(n) => NonZeroU32::new(n),
            None if self.groups > 1 => NonZeroU32::new(self.heartbeat_ticks.saturating_mul(3)),
            None => None,
        }
    }

    /// The tick, the timeouts and the lease they leave.
    fn check_timing(&self) -> Result<(), ArgsError> {
        if self.tick_ms == 0 {
            return Err(ArgsError::BadTiming("--tick-ms must be at least 1"));
        }
        if self.heartbeat_ticks == 0 || self.election_ticks <= self.heartbeat_ticks {
            return Err(ArgsError::BadTiming(
                "--election-ticks must be greater than --heartbeat-ticks, which must be at least 1",
            ));
        }
        let lease =
            u64::from(self.election_ticks - 1) * 1000 / (1000 + u64::from(self.max_clock_drift));
        if self.read_mode == ReadMode::Lease && lease == 0 {
            return Err(ArgsError::BadTiming(
                "--read-mode lease leaves no lease under --max-clock-drift: raise --election-ticks \
                 or lower --max-clock-drift",
            ));
        }
        Ok(())
    }

    /// The descriptors left for connections and the node's own files once
    /// the groups after the first have theirs.
    fn group_budget(&self, limit: u64) -> Result<u64, ArgsError> {
        let for_groups = if self.groups > 1 {
            SNAPSHOT_FILES_IN_FLIGHT
        } else {
            0
        };
        let needed = for_groups + raft_transport::MIN_DESCRIPTORS;
        if for_groups > 0 && limit < needed {
            return Err(ArgsError::GroupDescriptors {
                groups: self.groups,
                for_groups,
                limit,
                needed,
            });
        }
        Ok(limit - for_groups)
    }

    /// The peer TLS files, checked against the URLs' schemes: https://
    /// URLs with all three files, http:// URLs with none.
    fn peer_tls(&self, cluster: &[PeerUrl]) -> Result<Option<TlsFiles>, ArgsError> {
        // One scheme for all (checked by parse_cluster_urls).
        let https = cluster.first().is_some_and(|u| u.scheme() == Scheme::Https);
        let (cert, key, ca) = (&self.peer_cert, &self.peer_key, &self.peer_ca);
        let files = PEER_TLS_FLAGS.mutual(cert.as_deref(), key.as_deref(), ca.as_deref())?;
        match (&files, https) {
            (None, true) => Err(ArgsError::HttpsWithoutCertificates),
            (Some(_), false) => Err(ArgsError::CertificatesWithHttp),
            _ => Ok(files),
        }
    }

    fn client_tls(&self) -> Result<Option<TlsFiles>, ArgsError> {
        let (cert, key, ca) = (&self.client_cert, &self.client_key, &self.client_ca);
        Ok(CLIENT_TLS_FLAGS.server(cert.as_deref(), key.as_deref(), ca.as_deref())?)
    }
}

/// A node that started before keeps its number of groups: each in
/// `groups/<id>/` (beside the WAL they share, `groups/wal/`), except a
/// first group that keeps its log in the directory itself (one group, or
/// a directory written before the groups shared a WAL).
fn check_group_count(dir: &std::path::Path, groups: u64) -> Result<(), ArgsError> {
    if !dir.join(raft_host::IDENTITY_FILE).exists() {
        return Ok(());
    }
    let group_dir = |name: &std::ffi::OsStr| name.to_str().and_then(|n| n.parse::<u64>().ok());
    let listed: Vec<u64> = std::fs::read_dir(dir.join(raft_host::GROUPS_DIR)).map_or(vec![], |d| {
        d.filter_map(|e| group_dir(&e.ok()?.file_name())).collect()
    });
    let first_in_dir = !listed.contains(&crate::node::GROUP.get());
    let found = listed.len() as u64 + u64::from(first_in_dir);
    if found == groups {
        return Ok(());
    }
    let dir = dir.display().to_string();
    Err(ArgsError::GroupCount { dir, found })
}

/// The flags naming the peer port's certificate, key and CA.
pub const PEER_TLS_FLAGS: TlsFlags = TlsFlags {
    cert: "--peer-cert",
    key: "--peer-key",
    ca: "--peer-ca",
};
/// The flags naming the client API's certificate, key and CA.
pub const CLIENT_TLS_FLAGS: TlsFlags = TlsFlags {
    cert: "--client-cert",
    key: "--client-key",
    ca: "--client-ca",
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags of node 1 of two, parsed as the binary parses them.
    fn args() -> ServerArgs {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            server: ServerArgs,
        }
        let line =
            "raftkv --id 1 --port 12380 --cluster http://127.0.0.1:12379,http://127.0.0.1:22379";
        <Flags as clap::Parser>::parse_from(line.split(' ')).server
    }

    fn with_peer_tls(mut a: ServerArgs) -> ServerArgs {
        a.cluster = vec![
            "https://127.0.0.1:12379".into(),
            "https://127.0.0.1:22379".into(),
        ];
        a.peer_cert = Some("n1.pem".into());
        a.peer_key = Some("n1-key.pem".into());
        a.peer_ca = Some("ca.pem".into());
        a
    }

    #[test]
    fn https_urls_with_all_three_certificate_flags_configure_peer_tls() {
        let (opts, client) = with_peer_tls(args()).validate().unwrap();
        let tls = opts.tls.expect("peer TLS");
        assert_eq!(tls.ca, Some(PathBuf::from("ca.pem")));
        assert_eq!(client.tls, None);
        assert_eq!(args().validate().unwrap().0.tls, None);
    }

    #[test]
    fn mixed_tls_configurations_are_each_one_error() {
        let mut a = args();
        a.cluster[1] = "https://127.0.0.1:22379".into();
        assert_eq!(
            a.validate().unwrap_err(),
            ArgsError::Cluster(ClusterUrlsError::MixedSchemes)
        );
        let mut a = with_peer_tls(args());
        (a.peer_cert, a.peer_key, a.peer_ca) = (None, None, None);
        assert_eq!(
            a.validate().unwrap_err(),
            ArgsError::HttpsWithoutCertificates
        );
        let mut a = with_peer_tls(args());
        a.peer_ca = None;
        assert!(matches!(a.validate().unwrap_err(), ArgsError::Tls(_)));
        let mut a = with_peer_tls(args());
        a.cluster = args().cluster;
        assert_eq!(a.validate().unwrap_err(), ArgsError::CertificatesWithHttp);
        let mut a = args();
        a.client_ca = Some("ca.pem".into());
        assert!(matches!(a.validate().unwrap_err(), ArgsError::Tls(_)));
        a.client_cert = Some("c.pem".into());
        a.client_key = Some("c-key.pem".into());
        assert!(a.validate().unwrap().1.tls.is_some());
        for e in [
            ArgsError::Cluster(ClusterUrlsError::MixedSchemes),
            ArgsError::HttpsWithoutCertificates,
            ArgsError::CertificatesWithHttp,
        ] {
            assert_eq!(e.to_string().lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn groups_quiesce_by_default_only_when_sharded() {
        let quiesce = |a: ServerArgs| a.validate().unwrap().0.group.quiesce_after_ticks;
        assert_eq!(quiesce(args()), None, "one group heartbeats as raftexample");
        let mut a = args();
        a.groups = 16;
        assert_eq!(
            quiesce(a.clone()),
            NonZeroU32::new(3),
            "three heartbeat intervals"
        );
        a.heartbeat_ticks = 2;
        assert_eq!(quiesce(a.clone()), NonZeroU32::new(6));
        a.no_quiesce = true;
        assert_eq!(quiesce(a), None);
        let mut a = args();
        a.quiesce_after_ticks = Some(7);
        assert_eq!(quiesce(a), NonZeroU32::new(7));
    }

    #[test]
    fn the_election_limit_reaches_the_host() {
        let limit = |a: ServerArgs| a.validate().unwrap().0.host.max_concurrent_elections;
        assert_eq!(
            limit(args()),
            std::num::NonZeroUsize::new(raft_host::DEFAULT_MAX_CONCURRENT_ELECTIONS)
        );
        let mut a = args();
        a.max_concurrent_elections = 3;
        assert_eq!(limit(a), std::num::NonZeroUsize::new(3));
    }

    #[test]
    fn good_flags_build_options() {
        let (opts, client) = args().validate().unwrap();
        assert_eq!(opts.id.get(), 1);
        assert_eq!(opts.group.membership.peers().len(), 2);
        assert_eq!(opts.data_dir, PathBuf::from("raftkv-1"));
        assert_eq!(client.addr, "127.0.0.1:12380".parse().unwrap());
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
        assert_eq!(
            a.validate().unwrap_err(),
            ArgsError::Cluster(ClusterUrlsError::Empty)
        );
        let mut a = args();
        a.cluster[1] = "127.0.0.1:22379".into();
        assert!(matches!(
            a.validate().unwrap_err(),
            ArgsError::Cluster(ClusterUrlsError::BadUrl(_))
        ));
        let mut a = args();
        a.cluster[1] = a.cluster[0].clone();
        assert!(matches!(
            a.validate().unwrap_err(),
            ArgsError::Cluster(ClusterUrlsError::Duplicate { .. })
        ));
        let mut a = args();
        a.election_ticks = 1;
        assert!(matches!(a.validate().unwrap_err(), ArgsError::BadTiming(_)));
        let mut a = args();
        (a.read_mode, a.election_ticks, a.max_clock_drift) = (ReadMode::Lease, 2, 1);
        let err = a.validate().unwrap_err().to_string();
        assert!(err.contains("--max-clock-drift"), "{err}");
        a.max_clock_drift = 0;
        a.validate().expect("a one-tick lease");
        let mut a = args();
        a.snapshot_count = 0;
        assert_eq!(a.validate().unwrap_err(), ArgsError::BadSnapshotCount);
    }

    #[test]
    fn many_groups_need_descriptors_for_their_snapshot_files_or_are_refused() {
        let mut a = args();
        a.groups = 100_000;
        let e = a.validate_with_descriptors(90).unwrap_err();
        assert!(
            matches!(e, ArgsError::GroupDescriptors { needed, .. } if needed == 16 + 80),
            "{e}"
        );
        assert!(e.to_string().contains("ulimit -n"), "{e}");
        // No descriptor per group: 100,000 groups fit the usual 1,024.
        assert!(a.validate_with_descriptors(1024).is_ok());
        a.groups = 1;
        assert!(a.validate_with_descriptors(90).is_ok());
    }

    #[test]
    fn a_data_directory_keeps_its_group_count_not_counting_the_shared_wal() {
        let dir = tempfile::tempdir().unwrap();
        check_group_count(dir.path(), 7).expect("a new directory takes any count");
        std::fs::write(dir.path().join(raft_host::IDENTITY_FILE), "node-id 1\n").unwrap();
        let groups = dir.path().join(raft_host::GROUPS_DIR);
        for sub in [raft_host::SHARED_WAL_DIR, "2", "3"] {
            std::fs::create_dir_all(groups.join(sub)).unwrap();
        }
        // Group 1 in the directory itself, as written before the groups
        // shared a WAL.
        check_group_count(dir.path(), 3).expect("groups 1 to 3");
        let e = check_group_count(dir.path(), 4).unwrap_err();
        assert!(matches!(e, ArgsError::GroupCount { found: 3, .. }), "{e}");
        // Group 1 among the others.
        std::fs::create_dir_all(groups.join("1")).unwrap();
        check_group_count(dir.path(), 3).expect("groups 1 to 3");
    }

    #[test]
    fn wal_segment_sizes_parse_with_binary_units_within_their_range() {
        for (text, bytes) in [
            ("64MiB", 64 << 20),
            ("4M", 4 << 20),
            ("1048576", 1 << 20),
            ("2048K", 2 << 20),
            ("1GiB", 1 << 30),
            ("4MB", 4 << 20),
        ] {
            assert_eq!(parse_segment_size(text), Ok(bytes), "{text}");
        }
        for bad in [
            "",
            "MiB",
            "4 furlongs",
            "512KiB",
            "2G",
            "99999999999999999999",
        ] {
            let e = parse_segment_size(bad).unwrap_err();
            assert_eq!(e.lines().count(), 1, "{bad}: {e}");
        }
        let mut a = args();
        a.wal_segment_size = 4 << 20;
        let storage = format!("{:?}", a.validate().unwrap().0.storage);
        assert!(storage.contains("segment_size_bytes: 4194304"), "{storage}");
    }

    #[test]
    fn connection_caps_follow_the_descriptor_limit_and_the_flag() {
        let (opts, client) = args().validate_with_descriptors(1024).unwrap();
        assert_eq!(client.limits.max_connections, 720);
        assert_eq!(opts.limits.max_connections, 240);
        let mut a = args();
        a.max_connections = Some(50);
        let (_, client) = a.validate_with_descriptors(1024).unwrap();
        assert_eq!(client.limits.max_connections, 50);
        a.max_connections = Some(5000);
        let e = a.validate_with_descriptors(1024).unwrap_err();
        assert!(matches!(e, ArgsError::Descriptors(_)), "{e}");
        let e = args().validate_with_descriptors(20).unwrap_err();
        assert!(e.to_string().contains("ulimit -n"), "{e}");
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
