//! The results of `raftkv bench-vs`: one line per run, and per
//! connection count and placement a table of both systems (rounds
//! merged) with the ratios A/B.

use std::fmt;
use std::time::Duration;

use super::Placement;
use super::stats::Counters;
use crate::bench::{BenchReport, Histogram, fmt_us};

/// One run of one system.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The system's label.
    pub label: String,
    /// What the generator measured.
    pub report: BenchReport,
    /// CPU time of the system's server processes during the run, seconds.
    pub server_cpu_secs: f64,
    /// CPU time of the load generator (this process) during the run.
    pub generator_cpu_secs: f64,
    /// Snapshots and WAL fsyncs of the system during the run.
    pub counters: Counters,
}

/// Microseconds of `secs` per write, if there were writes.
fn us_per_write(secs: f64, writes: u64) -> Option<f64> {
    (writes > 0).then(|| secs * 1e6 / writes as f64)
}

impl RunResult {
    /// The line printed when the run ends.
    pub fn line(&self, key: &GroupKey, round: u32, rounds: u32) -> String {
        let w = &self.report.writes;
        let writes = w.count();
        let opt = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
        let count = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
        let mut line = format!(
            "{:>4} conns {:<6} round {round}/{rounds}  {:<10} {:>9} writes/s  p50 {}  p99 {}  \
             p99.9 {}  server CPU {} µs/write (generator {})  snapshots {}  WAL fsyncs {}  \
             errors {}",
            key.connections,
            key.placement.name(),
            self.label,
            thousands(self.report.writes_per_sec()),
            fmt_us(w.quantile(0.5)),
            fmt_us(w.quantile(0.99)),
            fmt_us(w.quantile(0.999)),
            opt(us_per_write(self.server_cpu_secs, writes), 1),
            opt(us_per_write(self.generator_cpu_secs, writes), 1),
            count(self.counters.snapshots),
            count(self.counters.fsyncs),
            self.report.total_errors(),
        );
        if !self.report.errors.is_empty() {
            let kinds: Vec<String> = self
                .report
                .errors
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            line.push_str(&format!(" ({})", kinds.join(", ")));
        }
        line
    }
}

/// A connection count and placement: one table of the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupKey {
    /// Connections (clients) of the runs.
    pub connections: usize,
    /// Where they connect.
    pub placement: Placement,
}

/// One system's runs of one group, merged.
#[derive(Clone, Debug, Default)]
pub struct SystemTotals {
    /// Runs merged.
    pub runs: u32,
    /// Write latencies of every run, microseconds.
    pub writes: Histogram,
    /// Time the runs took together.
    pub elapsed: Duration,
    /// Server CPU of every run, seconds.
    pub server_cpu_secs: f64,
    /// Failed requests.
    pub errors: u64,
    /// Snapshots taken (unknown if one run's count is).
    pub snapshots: Option<u64>,
    /// WAL fsyncs over every member (unknown if one run's count is).
    pub fsyncs: Option<u64>,
}

impl SystemTotals {
    /// Adds one run.
    pub fn add(&mut self, r: &RunResult) {
        let first = self.runs == 0;
        let sum = |total: Option<u64>, v: Option<u64>| {
            if first { v } else { Some(total? + v?) }
        };
        self.snapshots = sum(self.snapshots, r.counters.snapshots);
        self.fsyncs = sum(self.fsyncs, r.counters.fsyncs);
        self.runs += 1;
        self.writes.merge(&r.report.writes);
        self.elapsed += r.report.elapsed;
        self.server_cpu_secs += r.server_cpu_secs;
        self.errors += r.report.total_errors();
    }

    /// Successful writes per second over all runs.
    pub fn writes_per_sec(&self) -> f64 {
        if self.elapsed.is_zero() {
            0.0
        } else {
            self.writes.count() as f64 / self.elapsed.as_secs_f64()
        }
    }

    /// Server CPU microseconds per successful write.
    pub fn cpu_us_per_write(&self) -> Option<f64> {
        us_per_write(self.server_cpu_secs, self.writes.count())
    }

    /// The latency at quantile `q`, in milliseconds.
    fn ms(&self, q: f64) -> Option<f64> {
        self.writes.quantile(q).map(|us| us as f64 / 1e3)
    }

    /// The cells of its row that have a ratio: writes/s, p50, p99, p99.9
    /// (ms), CPU µs/write.
    fn ratio_cells(&self) -> [Option<f64>; 5] {
        [
            Some(self.writes_per_sec()),
            self.ms(0.5),
            self.ms(0.99),
            self.ms(0.999),
            self.cpu_us_per_write(),
        ]
    }

    /// Writes per WAL fsync of one member: writes × members / fsyncs.
    fn writes_per_fsync(&self, members: u16) -> Option<f64> {
        let fsyncs = self.fsyncs.filter(|&f| f > 0)?;
        Some(self.writes.count() as f64 * f64::from(members) / fsyncs as f64)
    }
}

/// Every run of a comparison, by group; its `Display` is the tables.
#[derive(Clone, Debug)]
pub struct Summary {
    labels: Vec<String>,
    rounds: u32,
    duration: Duration,
    groups: Vec<(GroupKey, Vec<SystemTotals>)>,
}

impl Summary {
    /// An empty summary of systems `labels` (A first), `rounds` runs of
    /// `duration` each per group.
    pub fn new(labels: Vec<String>, rounds: u32, duration: Duration) -> Summary {
        Summary {
            labels,
            rounds,
            duration,
            groups: Vec::new(),
        }
    }

    /// Adds a run of system number `system` (0 for A) to group `key`.
    pub fn add(&mut self, key: GroupKey, system: usize, run: RunResult) {
        let index = match self.groups.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let empty = vec![SystemTotals::default(); self.labels.len()];
                self.groups.push((key, empty));
                self.groups.len() - 1
            }
        };
        if let Some(totals) = self.groups[index].1.get_mut(system) {
            totals.add(&run);
        }
    }

    /// The merged runs of system `system` in group `key`.
    pub fn totals(&self, key: &GroupKey, system: usize) -> Option<&SystemTotals> {
        self.groups
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, t)| t.get(system))
    }

    /// The name of the ratio row: `raftkv/etcd`, or `A/B` for
    /// `raftkv A` and `raftkv B`.
    pub fn ratio_label(&self) -> String {
        match self.labels.as_slice() {
            [a, b] => match (a.strip_prefix("raftkv "), b.strip_prefix("raftkv ")) {
                (Some(a), Some(b)) => format!("{a}/{b}"),
                _ => format!("{a}/{b}"),
            },
            _ => "ratio".into(),
        }
    }
}

/// `21345.6` as `21,346`.
pub(crate) fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const HEADINGS: [&str; 8] = [
    "writes/s",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "CPU µs/write",
    "errors",
    "snapshots",
    "writes/fsync",
];
const WIDTHS: [usize; 8] = [10, 9, 9, 10, 14, 8, 11, 14];

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ratio = self.ratio_label();
        let label_width = self
            .labels
            .iter()
            .map(|l| l.chars().count())
            .chain([ratio.chars().count()])
            .max()
            .unwrap_or(0)
            + 2;
        let row = |f: &mut fmt::Formatter<'_>, label: &str, cells: &[String]| {
            write!(f, "  {label:<label_width$}")?;
            for (cell, width) in cells.iter().zip(WIDTHS) {
                write!(f, "{cell:>width$}")?;
            }
            writeln!(f)
        };
        let opt = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
        for (n, (key, totals)) in self.groups.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            writeln!(
                f,
                "{} connection{}, {} ({} round{} of {:?} each, merged):",
                key.connections,
                if key.connections == 1 { "" } else { "s" },
                key.placement.describe(),
                self.rounds,
                if self.rounds == 1 { "" } else { "s" },
                self.duration,
            )?;
            let headings: Vec<String> = HEADINGS.iter().map(|h| h.to_string()).collect();
            row(f, "", &headings)?;
            for (label, t) in self.labels.iter().zip(totals) {
                if t.runs == 0 {
                    continue;
                }
                let [_, p50, p99, p999, cpu] = t.ratio_cells();
                let cells = [
                    thousands(t.writes_per_sec()),
                    opt(p50, 2),
                    opt(p99, 2),
                    opt(p999, 2),
                    opt(cpu, 1),
                    t.errors.to_string(),
                    t.snapshots.map_or("-".into(), |s| s.to_string()),
                    opt(t.writes_per_fsync(super::cluster::MEMBERS), 1),
                ];
                row(f, label, &cells)?;
            }
            if let [a, b] = totals.as_slice()
                && a.runs > 0
                && b.runs > 0
            {
                let cells: Vec<String> = a
                    .ratio_cells()
                    .iter()
                    .zip(b.ratio_cells())
                    .map(|(x, y)| match (x, y) {
                        (Some(x), Some(y)) if y > 0.0 => format!("{:.2}", x / y),
                        _ => "-".into(),
                    })
                    .collect();
                row(f, &ratio, &cells)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::bench::Target;

    fn run(
        label: &str,
        latencies_us: &[u64],
        secs: u64,
        cpu: f64,
        snaps: Option<u64>,
    ) -> RunResult {
        let mut writes = Histogram::new();
        for &l in latencies_us {
            writes.record(l);
        }
        RunResult {
            label: label.into(),
            report: BenchReport {
                target: Target::Raftkv,
                leader: true,
                elapsed: Duration::from_secs(secs),
                clients: 16,
                endpoints: 1,
                writes,
                reads: Histogram::new(),
                read_misses: 0,
                errors: BTreeMap::new(),
                writes_unknown: 0,
            },
            server_cpu_secs: cpu,
            generator_cpu_secs: cpu / 2.0,
            counters: Counters {
                snapshots: snaps,
                fsyncs: Some(latencies_us.len() as u64),
            },
        }
    }

    const KEY: GroupKey = GroupKey {
        connections: 16,
        placement: Placement::Leader,
    };

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(21345.6), "21,346");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-3.0), "0");
    }

    #[test]
    fn rounds_merge_into_one_row_per_system_with_ratios() {
        let mut s = Summary::new(
            vec!["raftkv".into(), "etcd".into()],
            2,
            Duration::from_secs(1),
        );
        // raftkv: 4 writes of 1 ms per second, 100 µs of CPU each.
        s.add(KEY, 0, run("raftkv", &[1000, 1000], 1, 200e-6, Some(0)));
        s.add(KEY, 1, run("etcd", &[4000], 1, 400e-6, Some(0)));
        s.add(KEY, 0, run("raftkv", &[1000, 1000], 1, 200e-6, Some(1)));
        s.add(KEY, 1, run("etcd", &[4000], 1, 400e-6, Some(0)));
        let a = s.totals(&KEY, 0).unwrap();
        assert_eq!((a.runs, a.writes.count(), a.snapshots), (2, 4, Some(1)));
        assert_eq!(a.writes_per_sec(), 2.0);
        assert!((a.cpu_us_per_write().unwrap() - 100.0).abs() < 1e-9);
        let b = s.totals(&KEY, 1).unwrap();
        assert!((b.cpu_us_per_write().unwrap() - 400.0).abs() < 1e-9);
        assert_eq!(s.ratio_label(), "raftkv/etcd");
        let text = s.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "16 connections, all on the leader (2 rounds of 1s each, merged):"
        );
        assert!(
            lines[1].contains("writes/s") && lines[1].contains("CPU µs/write"),
            "{text}"
        );
        assert_eq!(
            lines[2],
            "  raftkv                2     1.00     1.00      1.00         100.0       0          1           3.0"
        );
        assert_eq!(
            lines[3],
            "  etcd                  1     4.00     4.00      4.00         400.0       0          0           3.0"
        );
        assert_eq!(
            lines[4],
            "  raftkv/etcd        2.00     0.25     0.25      0.25          0.25"
        );
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn unknown_values_show_as_dashes_and_groups_keep_their_order() {
        let mut s = Summary::new(
            vec!["raftkv A".into(), "raftkv B".into()],
            1,
            Duration::from_secs(3),
        );
        let spread = GroupKey {
            connections: 1,
            placement: Placement::Spread,
        };
        s.add(spread, 0, run("raftkv A", &[], 3, 0.1, None));
        s.add(spread, 1, run("raftkv B", &[500], 3, 0.1, Some(2)));
        s.add(KEY, 0, run("raftkv A", &[500], 3, 0.1, Some(2)));
        assert_eq!(s.ratio_label(), "A/B");
        let text = s.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "1 connection, spread over the members (1 round of 3s each, merged):"
        );
        assert_eq!(
            lines[2],
            "  raftkv A           0        -        -         -             -       0          -             -"
        );
        assert!(
            lines[3].contains("0.50      100000.0       0          2           3.0"),
            "{text}"
        );
        assert_eq!(
            lines[4],
            "  A/B             0.00        -        -         -             -"
        );
        assert_eq!(lines[5], "");
        assert!(
            lines[6].starts_with("16 connections, all on the leader"),
            "{text}"
        );
        // Group 2 has no run of B: neither its row nor a ratio row.
        assert!(lines[8].starts_with("  raftkv A"), "{text}");
        assert_eq!(lines.len(), 9, "{text}");
        assert_eq!(s.totals(&KEY, 1).unwrap().runs, 0);
    }

    #[test]
    fn a_run_line_names_the_run_and_its_errors() {
        let mut r = run("etcd", &[800, 1500, 2_500_000], 2, 3e-3, Some(0));
        r.report.errors.insert("unavailable", 2);
        let line = r.line(&KEY, 1, 3);
        assert!(
            line.starts_with("  16 conns leader round 1/3  etcd"),
            "{line}"
        );
        assert!(
            line.contains("        2 writes/s  p50 1.50ms  p99 2.500s  p99.9 2.500s"),
            "{line}"
        );
        assert!(
            line.contains("server CPU 1000.0 µs/write (generator 500.0)"),
            "{line}"
        );
        assert!(
            line.contains("snapshots 0  WAL fsyncs 3  errors 2 (unavailable 2)"),
            "{line}"
        );
    }
}
