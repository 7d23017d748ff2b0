//! `raftkv bench`: a closed-loop load generator for a running cluster.
//!
//! `--clients` concurrent clients are spread round-robin over
//! `--endpoints` (or all aimed at the leader with `--leader`); each has
//! its own connection and issues one request at a time for `--duration`:
//! a linearizable read with probability `--reads`, otherwise a write of a
//! random `--value-size`-byte value, on a key drawn uniformly from
//! `--keys` keys. A progress line goes to stderr every second; [`run`]
//! returns a [`BenchReport`] whose `Display` is the final report (the caller
//! prints it to stdout).
//!
//! `--target etcd` drives an etcd cluster instead, through its v3 JSON
//! gateway ([`crate::etcd`]): the same clients, keys, values, connections
//! and histograms, only the requests differ (`POST /v3/kv/put` and
//! `/v3/kv/range` instead of `PUT` and `GET /<key>`). So the two systems
//! are measured by one generator; `raftkv bench-vs` ([`crate::versus`])
//! runs both side by side.
//!
//! ```text
//! raftkv bench --endpoints http://127.0.0.1:12380,http://127.0.0.1:22380 \
//!     --clients 64 --duration 10s --value-size 128 --reads 0.5
//! raftkv bench --target etcd --leader --endpoints http://127.0.0.1:2379 --clients 16
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::client::{Client, ClientError, Connection};

/// The largest value the server accepts (1 MiB).
pub const MAX_VALUE_SIZE: usize = 1 << 20;

/// What kind of cluster the generator drives (`--target`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Target {
    /// raftkv: `PUT /<key>`, `GET /<key>`, leader from `GET /status`.
    #[default]
    Raftkv,
    /// etcd 3.4 through its v3 JSON gateway: `POST /v3/kv/put`,
    /// `/v3/kv/range`, leader from `/v3/maintenance/status`.
    Etcd,
}

impl Target {
    /// `raftkv` or `etcd`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Raftkv => "raftkv",
            Target::Etcd => "etcd",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Command-line arguments of `raftkv bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Client URLs of cluster members, comma-separated
    /// (e.g. http://127.0.0.1:12380,http://127.0.0.1:22380).
    #[arg(long, value_delimiter = ',', required = true)]
    pub endpoints: Vec<String>,
    /// What the endpoints are: raftkv nodes, or etcd members (driven
    /// through etcd's v3 JSON gateway on their client URLs).
    #[arg(long, value_enum, default_value_t = Target::Raftkv)]
    pub target: Target,
    /// Aim every client at the leader (asked of the endpoints before the
    /// run) instead of spreading them round-robin over the endpoints.
    #[arg(long)]
    pub leader: bool,
    /// Number of concurrent clients, each with its own connection, spread
    /// round-robin over the endpoints (or all on the leader).
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// How long to run: 10s, 500ms, 2m, 1m30s.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Size in bytes of each written value.
    #[arg(long, default_value_t = 128)]
    pub value_size: usize,
    /// Fraction of operations that are (linearizable) reads, in [0, 1].
    #[arg(long, default_value_t = 0.0)]
    pub reads: f64,
    /// Number of distinct keys operations are spread over.
    #[arg(long, default_value_t = 10_000)]
    pub keys: u64,
    /// Per-request timeout: 5s, 500ms.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl BenchArgs {
    /// Checks the arguments: at least one client and one key, `reads` in
    /// [0, 1], non-zero duration and timeout, a value size the server
    /// accepts, at least one endpoint, each an `http://host:port` URL.
    ///
    /// # Errors
    /// [`BenchError::InvalidArgs`] saying what is wrong.
    pub fn validate(&self) -> Result<(), BenchError> {
        let invalid = |msg: String| Err(BenchError::InvalidArgs(msg));
        if self.clients == 0 {
            return invalid("--clients must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.reads) {
            return invalid(format!(
                "--reads must be a fraction between 0 and 1, not {}",
                self.reads
            ));
        }
        if self.keys == 0 {
            return invalid("--keys must be at least 1".into());
        }
        if self.value_size > MAX_VALUE_SIZE {
            return invalid(format!(
                "--value-size {} exceeds the server's limit of {MAX_VALUE_SIZE} bytes",
                self.value_size
            ));
        }
        if self.duration.is_zero() {
            return invalid("--duration must be more than 0".into());
        }
        if self.timeout.is_zero() {
            return invalid("--timeout must be more than 0".into());
        }
        if self.endpoints.iter().all(|e| e.trim().is_empty()) {
            return invalid("--endpoints needs at least one client URL".into());
        }
        for e in &self.endpoints {
            if let Err(err) = check_endpoint(e) {
                return invalid(format!("--endpoints: {err}"));
            }
        }
        Ok(())
    }
}

/// Checks one `--endpoints` URL as a node checks its peer URLs
/// (`http(s)://host:port`, a host that resolves; the same messages), then
/// that it is `http://`.
fn check_endpoint(raw: &str) -> Result<(), String> {
    let url = raw.trim();
    let malformed = || format!("{url:?} is not a URL like http://127.0.0.1:12379");
    let no_port = || format!("{url:?} has no port; write it like http://127.0.0.1:12379");
    let (https, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if url.contains("://") {
        return Err(format!(
            "{url:?}: only http:// and https:// peer URLs are supported"
        ));
    } else {
        return Err(malformed());
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['@', ' ']) {
        return Err(malformed());
    }
    if authority.contains(['/', '?', '#']) {
        return Err(format!(
            "{url:?} has a path; a peer URL is only scheme, host and port"
        ));
    }
    let Some((host, port)) = authority.rsplit_once(':') else {
        return Err(no_port());
    };
    if host.is_empty() || host.ends_with(']') && !host.starts_with('[') {
        return Err(malformed());
    }
    let port: u16 = port.parse().map_err(|_| no_port())?;
    if port == 0 {
        return Err(format!(
            "{url:?} has port 0; a peer URL names the port its node listens on"
        ));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if !(host, port)
        .to_socket_addrs()
        .is_ok_and(|mut a| a.next().is_some())
    {
        return Err(format!("{url:?}: host does not resolve"));
    }
    if https {
        return Err(format!(
            "https://{authority}: only http:// client URLs are supported"
        ));
    }
    Ok(())
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The arguments are invalid.
    #[error("invalid arguments: {0}")]
    InvalidArgs(String),
    /// A client task panicked.
    #[error("a benchmark client failed: {0}")]
    ClientPanicked(String),
    /// `--leader`: no endpoint said it is the leader.
    #[error("no leader among {endpoints}: {detail}")]
    NoLeader {
        /// The endpoints asked, comma-separated.
        endpoints: String,
        /// What they answered (the last error, or that none leads).
        detail: String,
    },
}

/// The endpoint among `endpoints` that is the leader, asked of each in
/// turn (raftkv: `GET /status`, `id == leader`; etcd:
/// `POST /v3/maintenance/status`, `member_id == leader`).
///
/// # Errors
/// [`BenchError::NoLeader`] if none says it leads (no leader yet, or
/// none answers).
pub async fn find_leader(
    target: Target,
    endpoints: &[String],
    timeout: Duration,
) -> Result<String, BenchError> {
    let client = Client::with_timeout(timeout);
    let mut detail = String::from("no member says it is the leader");
    for ep in endpoints {
        let leads = match target {
            Target::Raftkv => client.status(ep).await.map(|s| {
                let id = s.get("id").and_then(serde_json::Value::as_u64);
                id.is_some() && id == s.get("leader").and_then(serde_json::Value::as_u64)
            }),
            Target::Etcd => crate::etcd::status(&client, ep)
                .await
                .map(|s| s.is_leader()),
        };
        match leads {
            Ok(true) => return Ok(ep.clone()),
            Ok(false) => {}
            Err(e) => detail = e.to_string(),
        }
    }
    Err(BenchError::NoLeader {
        endpoints: endpoints.join(","),
        detail,
    })
}

/// Parses a duration written as one or more number-unit pairs: `10s`,
/// `500ms`, `2m`, `1h`, `250us`, `1.5s`, `1m30s`.
///
/// # Errors
/// A message saying what is wrong, suitable for clap.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("empty duration; write it like 10s, 500ms or 2m".into());
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a duration like 10s, 500ms or 2m"))?;
        let scale = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            "" => return Err(format!("{s:?} has no unit; write it like 10s, 500ms or 2m")),
            other => {
                return Err(format!(
                    "{s:?}: unknown unit {other:?} (use h, m, s, ms, us or ns)"
                ));
            }
        };
        total += value * scale;
        rest = next;
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("{s:?} is out of range"))
}

/// A log-bucketed latency histogram in the style of HdrHistogram: values
/// below 128 are exact, larger ones fall in buckets 1/64 of their power of
/// two wide, so every reported percentile is within about 1.6% of a
/// recorded value. Values are microseconds by convention.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
const EXACT: u64 = 2 << SUB_BITS;
const BUCKETS: usize = 2 * SUB + (63 - SUB_BITS as usize) * SUB;

fn bucket_of(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let magnitude = 63 - v.leading_zeros(); // >= SUB_BITS + 1
    let shift = magnitude - SUB_BITS;
    let top = (v >> shift) as usize; // in [SUB, 2 * SUB)
    2 * SUB + (shift as usize - 1) * SUB + (top - SUB)
}

/// The highest value that falls in bucket `i`.
fn bucket_high(i: usize) -> u64 {
    if i < EXACT as usize {
        return i as u64;
    }
    let shift = (i - 2 * SUB) / SUB + 1;
    let top = ((i - 2 * SUB) % SUB + SUB) as u64;
    ((top + 1) << shift).wrapping_sub(1)
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one value.
    pub fn record(&mut self, v: u64) {
        self.counts[bucket_of(v)] += 1;
        self.count += 1;
        self.sum += u128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Adds every value recorded in `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The smallest recorded value, if any.
    pub fn min(&self) -> Option<u64> {
        (self.count > 0).then_some(self.min)
    }

    /// The largest recorded value, if any.
    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    /// The mean of the recorded values, if any.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// The value at quantile `q` (0.5 for the median, 0.99 for p99): the
    /// highest value equivalent to the smallest recorded value that at least
    /// `q` of all values are less than or equal to, capped at the maximum.
    /// `None` if nothing was recorded.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_high(i).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }
}

/// The outcome of a benchmark run.
#[derive(Clone, Debug)]
pub struct BenchReport {
    /// What was driven.
    pub target: Target,
    /// Whether every client was aimed at the leader.
    pub leader: bool,
    /// How long the clients ran.
    pub elapsed: Duration,
    /// Number of clients.
    pub clients: usize,
    /// Number of endpoints.
    pub endpoints: usize,
    /// Latencies of successful writes, in microseconds.
    pub writes: Histogram,
    /// Latencies of successful reads (found or not), in microseconds.
    pub reads: Histogram,
    /// Successful reads that found no value.
    pub read_misses: u64,
    /// Failed operations by [`ClientError::kind`].
    pub errors: BTreeMap<&'static str, u64>,
    /// Failed writes whose outcome is unknown (they may have been applied).
    pub writes_unknown: u64,
}

impl BenchReport {
    /// Successful operations, reads and writes.
    pub fn total_ops(&self) -> u64 {
        self.writes.count() + self.reads.count()
    }

    /// Failed operations.
    pub fn total_errors(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Successful writes per second.
    pub fn writes_per_sec(&self) -> f64 {
        per_sec(self.writes.count(), self.elapsed)
    }

    /// Successful reads per second.
    pub fn reads_per_sec(&self) -> f64 {
        per_sec(self.reads.count(), self.elapsed)
    }
}

fn per_sec(n: u64, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        n as f64 / d.as_secs_f64()
    }
}

/// Formats microseconds as `850us`, `12.34ms` or `1.234s`.
pub(crate) fn fmt_us(us: Option<u64>) -> String {
    match us {
        None => "-".into(),
        Some(us) if us < 1_000 => format!("{us}us"),
        Some(us) if us < 1_000_000 => format!("{:.2}ms", us as f64 / 1e3),
        Some(us) => format!("{:.3}s", us as f64 / 1e6),
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = if self.leader {
            "the leader".to_string()
        } else {
            format!("{} endpoint(s)", self.endpoints)
        };
        writeln!(
            f,
            "{} clients on {on} of {} for {:.2}s",
            self.clients,
            self.target,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "total:  {} ops ({:.1} ops/s), {} errors",
            self.total_ops(),
            per_sec(self.total_ops(), self.elapsed),
            self.total_errors()
        )?;
        for (name, h, rate) in [
            ("writes", &self.writes, self.writes_per_sec()),
            ("reads", &self.reads, self.reads_per_sec()),
        ] {
            write!(f, "{name:<7} {} ({rate:.1}/s)", h.count())?;
            if h.count() > 0 {
                write!(
                    f,
                    "  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
                    fmt_us(h.quantile(0.5)),
                    fmt_us(h.quantile(0.9)),
                    fmt_us(h.quantile(0.99)),
                    fmt_us(h.quantile(0.999)),
                    fmt_us(h.max())
                )?;
            }
            writeln!(f)?;
        }
        if self.read_misses > 0 {
            writeln!(f, "reads of missing keys: {}", self.read_misses)?;
        }
        if self.errors.is_empty() {
            write!(f, "errors: none")?;
        } else {
            let by_kind: Vec<String> = self
                .errors
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            write!(f, "errors: {}", by_kind.join(", "))?;
            if self.writes_unknown > 0 {
                write!(f, " ({} writes with unknown outcome)", self.writes_unknown)?;
            }
        }
        Ok(())
    }
}

/// What one client task measured.
struct ClientStats {
    writes: Histogram,
    reads: Histogram,
    read_misses: u64,
    errors: BTreeMap<&'static str, u64>,
    writes_unknown: u64,
}

/// Counters the progress line reads while clients run.
#[derive(Default)]
struct Live {
    ops: AtomicU64,
    errors: AtomicU64,
}

/// How long a client pauses after an error before trying again, so a
/// cluster without a leader (or a dead endpoint) is not flooded: the
/// server's `Retry-After` (at most a second), else a short pause for
/// connection errors, else none.
fn backoff(e: &ClientError) -> Duration {
    match e {
        ClientError::Unavailable {
            retry_after: Some(d),
            ..
        } => (*d).min(Duration::from_secs(1)),
        ClientError::Unavailable { .. } => Duration::from_millis(50),
        ClientError::Connect { .. } | ClientError::Connection { .. } => Duration::from_millis(100),
        _ => Duration::ZERO,
    }
}

async fn client_loop(
    mut conn: Connection,
    args: Arc<BenchArgs>,
    seed: u64,
    deadline: tokio::time::Instant,
    live: Arc<Live>,
) -> ClientStats {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut stats = ClientStats {
        writes: Histogram::new(),
        reads: Histogram::new(),
        read_misses: 0,
        errors: BTreeMap::new(),
        writes_unknown: 0,
    };
    let mut value = vec![0u8; args.value_size];
    while tokio::time::Instant::now() < deadline {
        let key = format!("bench-{}", rng.random_range(0..args.keys));
        let is_read = args.reads > 0.0 && rng.random_bool(args.reads);
        let start = Instant::now();
        if !is_read {
            rng.fill(&mut value[..]);
        }
        let op = async {
            match (args.target, is_read) {
                (Target::Raftkv, true) => {
                    conn.get(key.as_bytes(), false).await.map(|v| v.is_some())
                }
                (Target::Raftkv, false) => conn
                    .put(key.as_bytes(), Bytes::copy_from_slice(&value))
                    .await
                    .map(|()| true),
                (Target::Etcd, true) => crate::etcd::get(&mut conn, key.as_bytes()).await,
                (Target::Etcd, false) => crate::etcd::put(&mut conn, key.as_bytes(), &value)
                    .await
                    .map(|()| true),
            }
        };
        // Stop at the deadline even if a request is outstanding.
        let Ok(result) = tokio::time::timeout_at(deadline, op).await else {
            break;
        };
        let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        match result {
            Ok(found) => {
                if is_read {
                    stats.reads.record(us);
                    stats.read_misses += u64::from(!found);
                } else {
                    stats.writes.record(us);
                }
                live.ops.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                *stats.errors.entry(e.kind()).or_default() += 1;
                if !is_read && e.outcome_unknown() {
                    stats.writes_unknown += 1;
                }
                live.errors.fetch_add(1, Ordering::Relaxed);
                let pause = backoff(&e);
                if !pause.is_zero() {
                    tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + pause))
                        .await;
                }
            }
        }
    }
    stats
}

/// Runs the benchmark described by `args` and returns its report. Prints a
/// progress line to stderr every second (unless `args.quiet`); does not
/// print the report.
///
/// # Errors
/// [`BenchError::InvalidArgs`] before anything is sent;
/// [`BenchError::ClientPanicked`] if a client task panicked. Failed requests
/// are not errors: they are counted in the report.
pub async fn run(args: BenchArgs) -> Result<BenchReport, BenchError> {
    args.validate()?;
    let mut endpoints: Vec<String> = args
        .endpoints
        .iter()
        .map(|e| e.trim().trim_end_matches('/').to_string())
        .filter(|e| !e.is_empty())
        .collect();
    if args.leader {
        endpoints = vec![find_leader(args.target, &endpoints, args.timeout).await?];
    }
    let args = Arc::new(args);
    let live = Arc::new(Live::default());
    let base_seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);

    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + args.duration;
    let mut tasks = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        // One connection per client, as 64 real clients would have.
        let conn = Connection::new(&endpoints[i % endpoints.len()], args.timeout)
            .map_err(|e| BenchError::InvalidArgs(e.to_string()))?;
        tasks.push(tokio::spawn(client_loop(
            conn,
            Arc::clone(&args),
            base_seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            deadline,
            Arc::clone(&live),
        )));
    }

    let progress = (!args.quiet).then(|| {
        let live = Arc::clone(&live);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await; // The first tick is immediate.
            loop {
                tick.tick().await;
                let secs = started.elapsed().as_secs_f64();
                let ops = live.ops.load(Ordering::Relaxed);
                let errors = live.errors.load(Ordering::Relaxed);
                let mut err = std::io::stderr().lock();
                let _ = writeln!(
                    err,
                    "{secs:6.1}s  {ops} ops  {:.0} ops/s  {errors} errors",
                    ops as f64 / secs
                );
            }
        })
    });

    let mut report = BenchReport {
        target: args.target,
        leader: args.leader,
        elapsed: Duration::ZERO,
        clients: args.clients,
        endpoints: endpoints.len(),
        writes: Histogram::new(),
        reads: Histogram::new(),
        read_misses: 0,
        errors: BTreeMap::new(),
        writes_unknown: 0,
    };
    let mut failure = None;
    for task in tasks {
        match task.await {
            Ok(stats) => {
                report.writes.merge(&stats.writes);
                report.reads.merge(&stats.reads);
                report.read_misses += stats.read_misses;
                report.writes_unknown += stats.writes_unknown;
                for (kind, n) in stats.errors {
                    *report.errors.entry(kind).or_default() += n;
                }
            }
            Err(e) => failure = Some(e.to_string()),
        }
    }
    report.elapsed = started.elapsed();
    if let Some(p) = progress {
        p.abort();
    }
    match failure {
        Some(e) => Err(BenchError::ClientPanicked(e)),
        None => Ok(report),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied())).map(|c| c.bench)
    }

    #[test]
    fn durations_parse_in_common_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
    }

    #[test]
    fn malformed_durations_are_refused_with_a_hint() {
        for bad in ["", "10", "s", "10x", "1..2s", "-1s", "ten seconds"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("10s") || e.contains("unit"), "{bad}: {e}");
        }
    }

    #[test]
    fn defaults_match_the_documented_command_line() {
        let a = parse(&[
            "--endpoints",
            "http://127.0.0.1:12380,http://127.0.0.1:22380",
        ])
        .unwrap();
        assert_eq!(a.endpoints.len(), 2);
        assert_eq!(a.clients, 64);
        assert_eq!(a.duration, Duration::from_secs(10));
        assert_eq!(a.value_size, 128);
        assert_eq!(a.reads, 0.0);
        assert_eq!(a.keys, 10_000);
        assert_eq!(a.timeout, Duration::from_secs(5));
        assert_eq!((a.target, a.leader), (Target::Raftkv, false));
        a.validate().unwrap();
        let a = parse(&[
            "--endpoints=http://127.0.0.1:1",
            "--target=etcd",
            "--leader",
        ])
        .unwrap();
        assert_eq!((a.target, a.leader), (Target::Etcd, true));
        assert!(parse(&["--endpoints=http://127.0.0.1:1", "--target=zookeeper"]).is_err());

        let a = parse(&[
            "--endpoints=http://127.0.0.1:1",
            "--clients=8",
            "--duration=500ms",
            "--reads=0.9",
            "--timeout=2s",
        ])
        .unwrap();
        assert_eq!((a.clients, a.reads), (8, 0.9));
        assert_eq!(a.duration, Duration::from_millis(500));
        assert!(parse(&[]).is_err(), "--endpoints is required");
        assert!(parse(&["--endpoints=http://h:1", "--duration=10"]).is_err());
    }

    #[test]
    fn invalid_arguments_are_explained() {
        let ok = parse(&["--endpoints", "http://127.0.0.1:12380"]).unwrap();
        let check = |f: &dyn Fn(&mut BenchArgs), needle: &str| {
            let mut a = ok.clone();
            f(&mut a);
            let e = a.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{e:?} should mention {needle:?}");
        };
        check(&|a| a.clients = 0, "--clients");
        check(&|a| a.reads = 1.5, "--reads");
        check(&|a| a.reads = -0.1, "--reads");
        check(&|a| a.reads = f64::NAN, "--reads");
        check(&|a| a.keys = 0, "--keys");
        check(&|a| a.value_size = MAX_VALUE_SIZE + 1, "--value-size");
        check(&|a| a.duration = Duration::ZERO, "--duration");
        check(&|a| a.timeout = Duration::ZERO, "--timeout");
        check(&|a| a.endpoints = vec![], "--endpoints");
        check(&|a| a.endpoints = vec!["127.0.0.1:1".into()], "--endpoints");
        check(
            &|a| a.endpoints = vec!["https://127.0.0.1:1".into()],
            "only http://",
        );
        check(
            &|a| a.endpoints = vec!["http://127.0.0.1".into()],
            "no port",
        );
    }

    /// The messages a node gives for the same peer URLs: the endpoints
    /// were checked with the server's peer URL parser before the harness
    /// became a crate of its own.
    #[test]
    fn bad_endpoints_get_the_messages_of_a_bad_peer_url() {
        for (endpoint, message) in [
            (
                "127.0.0.1:1",
                r#""127.0.0.1:1" is not a URL like http://127.0.0.1:12379"#,
            ),
            (
                "http://a@b:1",
                r#""http://a@b:1" is not a URL like http://127.0.0.1:12379"#,
            ),
            (
                "http://:1",
                r#""http://:1" is not a URL like http://127.0.0.1:12379"#,
            ),
            (
                "ftp://x:1",
                r#""ftp://x:1": only http:// and https:// peer URLs are supported"#,
            ),
            (
                "http://127.0.0.1",
                r#""http://127.0.0.1" has no port; write it like http://127.0.0.1:12379"#,
            ),
            (
                "http://h:99999",
                r#""http://h:99999" has no port; write it like http://127.0.0.1:12379"#,
            ),
            (
                "http://127.0.0.1:0",
                r#""http://127.0.0.1:0" has port 0; a peer URL names the port its node listens on"#,
            ),
            (
                "http://127.0.0.1:1/x",
                r#""http://127.0.0.1:1/x" has a path; a peer URL is only scheme, host and port"#,
            ),
            (
                "http://nonexistent.invalid:1",
                r#""http://nonexistent.invalid:1": host does not resolve"#,
            ),
            (
                " https://127.0.0.1:1/ ",
                "https://127.0.0.1:1: only http:// client URLs are supported",
            ),
        ] {
            assert_eq!(check_endpoint(endpoint), Err(message.to_string()));
        }
        for good in [
            "http://127.0.0.1:1",
            " http://127.0.0.1:1/ ",
            "http://[::1]:1",
        ] {
            assert_eq!(check_endpoint(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn small_values_are_exact_and_percentiles_pick_the_right_rank() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        assert_eq!(h.max(), None);
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.9), Some(90));
        assert_eq!(h.quantile(0.99), Some(99));
        assert_eq!(h.quantile(1.0), Some(100));
        assert_eq!(h.quantile(0.0), Some(1));
        assert_eq!((h.min(), h.max()), (Some(1), Some(100)));
        assert_eq!(h.mean(), Some(50.5));
    }

    #[test]
    fn large_values_are_reported_within_two_percent() {
        let mut h = Histogram::new();
        let values: Vec<u64> = (0..10_000u64).map(|i| 1_000 + i * 997).collect();
        for &v in &values {
            h.record(v);
        }
        for q in [0.5, 0.9, 0.99, 0.999] {
            let exact = values[(q * values.len() as f64).ceil() as usize - 1] as f64;
            let got = h.quantile(q).unwrap() as f64;
            assert!(
                (got - exact).abs() / exact < 0.02,
                "q={q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.max(), Some(*values.last().unwrap()));
        h.record(u64::MAX);
        assert_eq!(h.quantile(1.0), Some(u64::MAX));
    }

    #[test]
    fn every_value_falls_in_a_bucket_whose_bounds_contain_it() {
        let mut v = 0u64;
        while v < u64::MAX / 3 {
            for x in [v, v + 1, v * 2 + 1] {
                let i = bucket_of(x);
                assert!(i < BUCKETS);
                assert!(bucket_high(i) >= x, "{x}");
                assert!(i == 0 || bucket_high(i - 1) < x, "{x}");
            }
            v = v * 3 + 1;
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_high(BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn merged_histograms_count_both_sides() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record(10);
        b.record(1_000_000);
        b.record(20);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!((a.min(), a.max()), (Some(10), Some(1_000_000)));
        assert_eq!(a.quantile(0.5), Some(20));
    }

    #[test]
    fn the_report_shows_rates_percentiles_and_errors_by_kind() {
        let mut writes = Histogram::new();
        for v in [800, 1_500, 2_500_000] {
            writes.record(v);
        }
        let report = BenchReport {
            target: Target::Raftkv,
            leader: false,
            elapsed: Duration::from_secs(2),
            clients: 4,
            endpoints: 2,
            writes,
            reads: Histogram::new(),
            read_misses: 0,
            errors: BTreeMap::from([("unavailable", 2), ("client-timeout", 1)]),
            writes_unknown: 1,
        };
        assert_eq!(report.total_ops(), 3);
        assert_eq!(report.writes_per_sec(), 1.5);
        let text = report.to_string();
        assert!(
            text.contains("4 clients on 2 endpoint(s) of raftkv"),
            "{text}"
        );
        assert!(text.contains("3 ops (1.5 ops/s), 3 errors"), "{text}");
        assert!(text.contains("p50 1.50ms"), "{text}");
        assert!(text.contains("p99.9 2.500s"), "{text}");
        assert!(text.contains("max 2.500s"), "{text}");
        assert!(text.contains("reads   0 (0.0/s)"), "{text}");
        assert!(
            text.contains(
                "errors: client-timeout 1, unavailable 2 (1 writes with unknown outcome)"
            ),
            "{text}"
        );
    }

    /// A fake cluster member on port 0, member `id` knowing `leader`,
    /// keeping values in memory and speaking both APIs: raftkv's (PUT
    /// answers 204, GET 200 or 404, `GET /status`) and etcd's gateway
    /// (`POST /v3/kv/put`, `/v3/kv/range`, `/v3/maintenance/status`;
    /// keys stay base64). Returns its URL and how many writes it took.
    async fn fake_member(id: u64, leader: u64) -> (String, Arc<AtomicU64>) {
        use std::collections::HashMap;
        use std::convert::Infallible;

        use http_body_util::{BodyExt, Full};
        use hyper::body::Incoming;
        use hyper::{Method, Request, Response};
        use hyper_util::rt::TokioIo;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let store = Arc::new(parking_lot::Mutex::new(HashMap::<String, Bytes>::new()));
        let writes = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&writes);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let store = Arc::clone(&store);
                let writes = Arc::clone(&counted);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let store = Arc::clone(&store);
                        let writes = Arc::clone(&writes);
                        async move {
                            let path = req.uri().path().to_string();
                            let method = req.method().clone();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let json = |v: serde_json::Value| {
                                Response::builder().body(Full::new(Bytes::from(v.to_string())))
                            };
                            let field = |name: &str| {
                                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                                v[name].as_str().unwrap().to_string()
                            };
                            let resp = match (method, path.as_str()) {
                                (Method::GET, "/status") => {
                                    json(serde_json::json!({"id": id, "leader": leader}))
                                }
                                (Method::POST, "/v3/maintenance/status") => {
                                    json(serde_json::json!({
                                        "header": {"member_id": id.to_string()},
                                        "leader": leader.to_string(),
                                    }))
                                }
                                (Method::POST, "/v3/kv/put") => {
                                    writes.fetch_add(1, Ordering::Relaxed);
                                    let value = Bytes::from(field("value"));
                                    store.lock().insert(field("key"), value);
                                    json(serde_json::json!({"header": {}}))
                                }
                                (Method::POST, "/v3/kv/range") => {
                                    match store.lock().get(&field("key")) {
                                        Some(_) => {
                                            json(serde_json::json!({"kvs": [{}], "count": "1"}))
                                        }
                                        None => json(serde_json::json!({"header": {}})),
                                    }
                                }
                                (Method::PUT, _) => {
                                    writes.fetch_add(1, Ordering::Relaxed);
                                    store.lock().insert(path, body);
                                    Response::builder()
                                        .status(204)
                                        .body(Full::new(Bytes::new()))
                                }
                                _ => match store.lock().get(&path) {
                                    Some(v) => Response::builder().body(Full::new(v.clone())),
                                    None => Response::builder()
                                        .status(404)
                                        .body(Full::new(Bytes::new())),
                                },
                            };
                            Ok::<_, Infallible>(resp.unwrap())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (format!("http://{addr}"), writes)
    }

    #[tokio::test]
    async fn a_run_against_a_working_server_records_reads_and_writes() {
        for target in [Target::Raftkv, Target::Etcd] {
            let (ep, _) = fake_member(1, 1).await;
            let mut args = parse(&["--endpoints", &format!("{ep},{ep}/")]).unwrap();
            args.target = target;
            args.clients = 4;
            args.keys = 3;
            args.reads = 0.5;
            args.duration = Duration::from_millis(200);
            args.quiet = true;
            let report = run(args).await.unwrap();
            assert!(report.errors.is_empty(), "{target}: {report}");
            assert!(
                report.writes.count() > 0 && report.reads.count() > 0,
                "{target}: {report}"
            );
            // Three keys, many reads: most find a value.
            assert!(
                report.read_misses < report.reads.count(),
                "{target}: {report}"
            );
            assert_eq!(report.endpoints, 2);
            assert_eq!(report.target, target);
        }
    }

    #[tokio::test]
    async fn with_leader_every_client_goes_to_the_member_that_leads() {
        for target in [Target::Raftkv, Target::Etcd] {
            let (a, a_writes) = fake_member(1, 2).await;
            let (b, b_writes) = fake_member(2, 2).await;
            let (c, c_writes) = fake_member(3, 2).await;
            let endpoints = [a.clone(), b.clone(), c.clone()];
            assert_eq!(
                find_leader(target, &endpoints, Duration::from_secs(1))
                    .await
                    .unwrap(),
                b
            );
            let mut args = parse(&["--endpoints", &endpoints.join(","), "--leader"]).unwrap();
            args.target = target;
            args.clients = 3;
            args.duration = Duration::from_millis(150);
            args.quiet = true;
            let report = run(args).await.unwrap();
            assert!(report.leader && report.endpoints == 1, "{report}");
            assert!(
                report.to_string().contains("3 clients on the leader of"),
                "{report}"
            );
            // Requests outstanding at the deadline are not counted.
            assert!(b_writes.load(Ordering::Relaxed) >= report.writes.count());
            assert!(report.writes.count() > 0, "{report}");
            assert_eq!(
                a_writes.load(Ordering::Relaxed) + c_writes.load(Ordering::Relaxed),
                0
            );
        }
    }

    #[tokio::test]
    async fn without_a_leader_a_leader_run_is_refused() {
        let (a, _) = fake_member(1, 0).await;
        let mut args = parse(&["--endpoints", &a, "--leader"]).unwrap();
        args.quiet = true;
        let e = run(args).await.unwrap_err();
        assert!(matches!(e, BenchError::NoLeader { .. }), "{e}");
        assert!(
            e.to_string().contains("no member says it is the leader"),
            "{e}"
        );
        // A dead endpoint: its error is the detail.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let e = find_leader(Target::Etcd, &[dead], Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("cannot connect"), "{e}");
    }

    #[tokio::test]
    async fn a_run_against_a_dead_endpoint_counts_connect_errors() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let mut args = parse(&["--endpoints", &format!("http://{addr}")]).unwrap();
        args.clients = 2;
        args.duration = Duration::from_millis(150);
        args.quiet = true;
        let report = run(args).await.unwrap();
        assert_eq!(report.total_ops(), 0);
        assert!(
            report.errors.get("connect").copied().unwrap_or(0) >= 2,
            "{report}"
        );
        assert_eq!(report.errors.len(), 1, "{report}");
    }
}
