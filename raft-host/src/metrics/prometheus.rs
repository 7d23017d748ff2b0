//! The host's measurements in the Prometheus text exposition format
//! (version 0.0.4): [`PrometheusRecorder`] keeps them in atomics, per
//! group, and [`PrometheusText`] writes them, and whatever the application
//! counts beside them, for a `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

use super::{Counter, Histogram, Recorder};
use raft_core::GroupId;

/// Upper bounds, in seconds, of every histogram's buckets: from 100 µs (a
/// fast fsync) to 1 s (a stalled disk).
const BUCKETS_SECONDS: [f64; 12] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// A cumulative histogram with fixed buckets, lock-free.
#[derive(Debug, Default)]
struct Buckets {
    /// Per-bucket counts (not cumulative); the last slot is `+Inf`.
    counts: [AtomicU64; BUCKETS_SECONDS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Buckets {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let slot = BUCKETS_SECONDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS_SECONDS.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// One group's counters and histograms, indexed by their enums' order.
#[derive(Debug, Default)]
struct GroupMetrics {
    counters: [AtomicU64; Counter::ALL.len()],
    histograms: [Buckets; Histogram::ALL.len()],
}

/// A [`Recorder`] that keeps every counter and histogram of every group in
/// atomics, and writes them with [`PrometheusRecorder::render`] as
/// `<prefix>_<name>{group="<id>"}` samples.
///
/// ```
/// use std::sync::Arc;
/// use raft_host::{Counter, GroupId, PrometheusRecorder, PrometheusText, Recorder};
///
/// let metrics = Arc::new(PrometheusRecorder::new("myapp"));
/// // let host = Host::with_recorder(id, Arc::clone(&metrics) as _);
/// metrics.count(GroupId(1), Counter::Proposals, 2);
/// let mut text = PrometheusText::new();
/// metrics.render(&mut text);
/// text.counter("myapp_requests_total", "Client requests.", 7);
/// let text = text.finish();
/// assert!(text.contains("myapp_proposals_total{group=\"1\"} 2\n"));
/// assert!(text.contains("myapp_requests_total 7\n"));
/// ```
#[derive(Debug)]
pub struct PrometheusRecorder {
    prefix: String,
    groups: RwLock<BTreeMap<GroupId, Arc<GroupMetrics>>>,
}

impl PrometheusRecorder {
    /// A recorder whose metric names start with `prefix` and `_`.
    pub fn new(prefix: impl Into<String>) -> PrometheusRecorder {
        PrometheusRecorder {
            prefix: prefix.into(),
            groups: RwLock::new(BTreeMap::new()),
        }
    }

    /// `counter`'s total in `group` so far.
    pub fn get(&self, group: GroupId, counter: Counter) -> u64 {
        let groups = self.groups.read();
        groups
            .get(&group)
            .map_or(0, |g| g.counters[counter as usize].load(Ordering::Relaxed))
    }

    /// How many `histogram` observations `group` made so far.
    pub fn observations(&self, group: GroupId, histogram: Histogram) -> u64 {
        let groups = self.groups.read();
        groups.get(&group).map_or(0, |g| {
            g.histograms[histogram as usize]
                .count
                .load(Ordering::Relaxed)
        })
    }

    /// Writes every counter and histogram, one sample per group.
    pub fn render(&self, out: &mut PrometheusText) {
        let groups: Vec<(GroupId, Arc<GroupMetrics>)> = self
            .groups
            .read()
            .iter()
            .map(|(id, g)| (*id, Arc::clone(g)))
            .collect();
        for counter in Counter::ALL {
            let (name, help) = describe_counter(counter);
            out.family(&format!("{}_{name}", self.prefix), help, "counter");
            for (id, g) in &groups {
                let value = g.counters[counter as usize].load(Ordering::Relaxed);
                out.sample(&format!("{}_{name}", self.prefix), *id, "", value);
            }
        }
        for histogram in Histogram::ALL {
            let (name, help) = describe_histogram(histogram);
            let name = format!("{}_{name}", self.prefix);
            out.family(&name, help, "histogram");
            for (id, g) in &groups {
                out.histogram_samples(&name, *id, &g.histograms[histogram as usize]);
            }
        }
    }

    /// Runs `f` on the group's metrics, created on its first event. The
    /// loop threads call this a few times per Ready: after the first event
    /// it takes only the read lock, and clones nothing.
    fn with_group(&self, group: GroupId, f: impl FnOnce(&GroupMetrics)) {
        if let Some(g) = self.groups.read().get(&group) {
            return f(g);
        }
        f(self.groups.write().entry(group).or_default());
    }
}

impl Recorder for PrometheusRecorder {
    fn count(&self, group: GroupId, counter: Counter, n: u64) {
        self.with_group(group, |g| {
            g.counters[counter as usize].fetch_add(n, Ordering::Relaxed);
        });
    }

    fn observe(&self, group: GroupId, histogram: Histogram, value: Duration) {
        self.with_group(group, |g| g.histograms[histogram as usize].observe(value));
    }
}

/// A counter's name (after the prefix) and help text.
fn describe_counter(counter: Counter) -> (&'static str, &'static str) {
    match counter {
        Counter::Proposals => ("proposals_total", "Proposals accepted by raft."),
        Counter::ProposalsRefused => ("proposals_dropped_total", "Proposals raft refused."),
        Counter::EntriesApplied => ("applies_total", "Committed entries applied."),
        Counter::ReadRounds => ("read_rounds_total", "ReadIndex rounds started."),
        Counter::Reads => ("reads_total", "Linearizable reads served."),
        Counter::LeaderChanges => ("leader_changes_total", "Changes of the known leader."),
        Counter::SnapshotsTaken => ("snapshots_created_total", "Snapshots created."),
        Counter::SnapshotsRestored => (
            "snapshots_restored_total",
            "Snapshots received and restored.",
        ),
        Counter::SnapshotsSent => ("snapshots_sent_total", "Snapshots delivered to followers."),
        Counter::PeerMessagesInvalid => (
            "peer_messages_invalid_total",
            "Peer messages refused by raft as invalid.",
        ),
        Counter::PeerMessagesTermTooFarAhead => (
            "peer_messages_term_too_far_ahead_total",
            "Peer messages refused: term too far ahead of this node's.",
        ),
        Counter::Promotions => ("promotions_total", "Learners promoted to voters."),
        Counter::PeerHostsDown => (
            "peer_hosts_down_total",
            "Peer hosts that went silent past the liveness timeout (group 0).",
        ),
        Counter::ElectionsHeldBack => (
            "elections_held_back_total",
            "Elections that waited for one of the host's election permits.",
        ),
    }
}

/// A histogram's name (after the prefix) and help text.
fn describe_histogram(histogram: Histogram) -> (&'static str, &'static str) {
    match histogram {
        Histogram::Persist => ("wal_fsync_seconds", "Duration of Ready saves that fsynced."),
        Histogram::Apply => ("apply_seconds", "Duration of applying one Ready's entries."),
        Histogram::Snapshot => (
            "snapshot_write_seconds",
            "Duration of writing one snapshot.",
        ),
    }
}

/// Writes the Prometheus text format: a `# HELP` and a `# TYPE` line per
/// metric family, then its samples.
#[derive(Debug, Default)]
pub struct PrometheusText {
    out: String,
}

impl PrometheusText {
    /// An empty exposition.
    pub fn new() -> PrometheusText {
        PrometheusText {
            out: String::with_capacity(8192),
        }
    }

    /// A counter without labels.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) -> &mut PrometheusText {
        self.family(name, help, "counter");
        let _ = writeln!(self.out, "{name} {value}");
        self
    }

    /// A gauge without labels.
    pub fn gauge(&mut self, name: &str, help: &str, value: u64) -> &mut PrometheusText {
        self.family(name, help, "gauge");
        let _ = writeln!(self.out, "{name} {value}");
        self
    }

    /// A counter family with one sample per label set; each `labels` is
    /// what goes between the braces (`peer="2",lane="append"`), its values
    /// needing no escaping.
    pub fn labeled_counters(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (String, u64)>,
    ) -> &mut PrometheusText {
        self.labeled(name, help, "counter", samples)
    }

    /// A gauge family with one sample per label set (as
    /// [`labeled_counters`](Self::labeled_counters)).
    pub fn labeled_gauges(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (String, u64)>,
    ) -> &mut PrometheusText {
        self.labeled(name, help, "gauge", samples)
    }

    fn labeled(
        &mut self,
        name: &str,
        help: &str,
        kind: &str,
        samples: impl IntoIterator<Item = (String, u64)>,
    ) -> &mut PrometheusText {
        self.family(name, help, kind);
        for (labels, value) in samples {
            debug_assert!(
                !labels.contains(['\n', '{', '}']),
                "labels need no escaping"
            );
            let _ = writeln!(self.out, "{name}{{{labels}}} {value}");
        }
        self
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }

    fn family(&mut self, name: &str, help: &str, kind: &str) {
        debug_assert!(!help.contains(['\n', '\\']), "help text needs no escaping");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample of `name` for `group`; `extra` are more labels
    /// (`,le="0.1"`).
    fn sample(&mut self, name: &str, group: GroupId, extra: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.out, "{name}{{group=\"{group}\"{extra}}} {value}");
    }

    fn histogram_samples(&mut self, name: &str, group: GroupId, h: &Buckets) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS_SECONDS.iter().enumerate() {
            cumulative += h.counts[i].load(Ordering::Relaxed);
            self.sample(&bucket, group, &format!(",le=\"{bound}\""), cumulative);
        }
        cumulative += h.counts[BUCKETS_SECONDS.len()].load(Ordering::Relaxed);
        self.sample(&bucket, group, ",le=\"+Inf\"", cumulative);
        let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        self.sample(&format!("{name}_sum"), group, "", sum);
        let count = h.count.load(Ordering::Relaxed);
        self.sample(&format!("{name}_count"), group, "", count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_enums_order_is_their_slots() {
        for (i, c) in Counter::ALL.into_iter().enumerate() {
            assert_eq!(c as usize, i, "{c:?}");
        }
        for (i, h) in Histogram::ALL.into_iter().enumerate() {
            assert_eq!(h as usize, i, "{h:?}");
        }
    }

    #[test]
    fn every_group_gets_its_own_samples_and_histograms_are_cumulative() {
        let m = PrometheusRecorder::new("x");
        m.count(GroupId(2), Counter::Reads, 3);
        m.count(GroupId(1), Counter::Reads, 1);
        m.observe(GroupId(1), Histogram::Persist, Duration::from_micros(200));
        m.observe(GroupId(1), Histogram::Persist, Duration::from_secs(5));
        assert_eq!(m.get(GroupId(2), Counter::Reads), 3);
        assert_eq!(m.observations(GroupId(1), Histogram::Persist), 2);
        let mut text = PrometheusText::new();
        m.render(&mut text);
        let text = text.finish();
        for line in [
            "# TYPE x_reads_total counter",
            "x_reads_total{group=\"1\"} 1",
            "x_reads_total{group=\"2\"} 3",
            "x_wal_fsync_seconds_bucket{group=\"1\",le=\"0.0001\"} 0",
            "x_wal_fsync_seconds_bucket{group=\"1\",le=\"0.00025\"} 1",
            "x_wal_fsync_seconds_bucket{group=\"1\",le=\"1\"} 1",
            "x_wal_fsync_seconds_bucket{group=\"1\",le=\"+Inf\"} 2",
            "x_wal_fsync_seconds_count{group=\"1\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        // One HELP per family, however many groups.
        assert_eq!(text.matches("# HELP x_reads_total ").count(), 1);
    }
}
