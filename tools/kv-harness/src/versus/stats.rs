//! What `raftkv bench-vs` reads off the machine: CPU time from
//! `/proc/<pid>/stat`, counters from the servers' `/metrics`, the CPU
//! model, versions, and other servers running.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::bench::Target;

/// utime + stime, in clock ticks, from the text of a `/proc/<pid>/stat`:
/// fields 14 and 15, counted after the command name in parentheses (which
/// may itself hold spaces and parentheses, so the last `)` ends it).
/// `None` if the text is not such a line.
pub fn parse_stat_cpu_ticks(text: &str) -> Option<u64> {
    let after_comm = &text[text.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name: field n is at n - 3.
    let mut fields = after_comm.split_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The CPU time (utime + stime, every thread) of the process whose stat
/// file is `path`, in clock ticks.
///
/// # Errors
/// What went wrong, in words.
pub(crate) fn process_cpu_ticks(path: &str) -> Result<u64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    parse_stat_cpu_ticks(&text).ok_or_else(|| format!("{path} is not a stat line"))
}

/// Clock ticks per second (`getconf CLK_TCK`), the unit of
/// [`parse_stat_cpu_ticks`]; 100 if the system does not say.
pub fn clock_ticks_per_sec() -> u64 {
    use nix::unistd::{SysconfVar, sysconf};
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t.unsigned_abs(),
        _ => 100,
    }
}

/// The sum of every sample of metric `name` in a Prometheus text
/// exposition (with or without labels); `None` if it has none.
pub fn sum_metric(text: &str, name: &str) -> Option<f64> {
    let mut sum = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let value = if rest.starts_with('{') {
            rest.rfind('}').map(|end| &rest[end + 1..])
        } else if rest.starts_with([' ', '\t']) {
            Some(rest)
        } else {
            None // A longer name with this one as its prefix.
        };
        // The value, then perhaps a timestamp.
        if let Some(v) = value
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
        {
            *sum.get_or_insert(0.0) += v;
        }
    }
    sum
}

/// Counters of a system, summed over its members.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Snapshots taken.
    pub snapshots: Option<u64>,
    /// WAL fsyncs.
    pub fsyncs: Option<u64>,
}

impl Counters {
    /// The metric names of snapshots taken and WAL fsyncs.
    fn names(target: Target) -> (&'static str, &'static str) {
        match target {
            Target::Raftkv => (
                "raftkv_snapshots_created_total",
                "raftkv_wal_fsync_seconds_count",
            ),
            Target::Etcd => (
                "etcd_debugging_snap_save_total_duration_seconds_count",
                "etcd_disk_wal_fsync_duration_seconds_count",
            ),
        }
    }

    /// The counters in the members' `/metrics` texts; a counter is known
    /// only if every member's text has it.
    pub(crate) fn from_metrics(target: Target, texts: &[Option<String>]) -> Counters {
        let (snapshots, fsyncs) = Counters::names(target);
        let total = |name: &str| {
            texts.iter().try_fold(0u64, |sum, text| {
                let v = sum_metric(text.as_deref()?, name)?;
                Some(sum + v as u64)
            })
        };
        Counters {
            snapshots: total(snapshots),
            fsyncs: total(fsyncs),
        }
    }

    /// How much each counter grew since `before`.
    pub fn since(&self, before: &Counters) -> Counters {
        let delta = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_sub(b?));
        Counters {
            snapshots: delta(self.snapshots, before.snapshots),
            fsyncs: delta(self.fsyncs, before.fsyncs),
        }
    }
}

/// The first `model name` of a `/proc/cpuinfo` text.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_string())
    })
}

/// `2 CPUs, AMD EPYC, 7.8 GiB, Linux 6.1.0-…`.
pub(crate) fn machine_summary() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| cpu_model(&t))
        .unwrap_or_else(|| "unknown CPU model".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            let kib: f64 = t
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Some(format!("{:.1} GiB", kib / (1024.0 * 1024.0)))
        })
        .unwrap_or_else(|| "unknown memory".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_string());
    format!("{cpus} CPUs (nproc), {model}, {memory}, Linux {kernel}")
}

/// What `<bin> --version` says, shortened: `raftkv 0.1.0`,
/// `etcd 3.4.23 (go1.19.8)`.
pub fn parse_version(target: Target, output: &str) -> Option<String> {
    match target {
        Target::Raftkv => output.lines().next().map(|l| l.trim().to_string()),
        Target::Etcd => {
            let field = |key: &str| {
                output
                    .lines()
                    .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
            };
            let version = field("etcd Version:")?;
            Some(match field("Go Version:") {
                Some(go) => format!("etcd {version} ({go})"),
                None => format!("etcd {version}"),
            })
        }
    }
    .filter(|s| !s.is_empty())
}

/// [`parse_version`] of running `bin --version`, or why it is unknown.
pub(crate) fn version_of(bin: &Path, target: Target) -> String {
    match Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => parse_version(target, &String::from_utf8_lossy(&out.stdout))
            .unwrap_or_else(|| "version unknown".into()),
        Err(e) => format!("version unknown ({e})"),
    }
}

/// Other etcd and raftkv processes on this machine (before `bench-vs`
/// starts its own): `etcd (pid 812)`; `None` if there are none.
pub(crate) fn other_servers() -> Option<String> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) {
            let comm = comm.trim();
            if comm == "etcd" || comm == "raftkv" {
                found.push(format!("{comm} (pid {pid})"));
            }
        }
    }
    found.sort();
    (!found.is_empty()).then(|| found.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_utime_plus_stime_whatever_the_command_name() {
        let line = "4242 (raftkv) S 1 4242 4242 0 -1 4194560 1200 0 0 0 731 269 0 0 20 0 5 0 \
                    123456 1000000 2000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(parse_stat_cpu_ticks(line), Some(1000));
        // A name with spaces and parentheses: the last ')' ends it.
        let odd = "7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 1 1";
        assert_eq!(parse_stat_cpu_ticks(odd), Some(11));
        assert_eq!(parse_stat_cpu_ticks("7 (x) R 1 2"), None);
        assert_eq!(parse_stat_cpu_ticks("no parenthesis"), None);
        assert_eq!(
            parse_stat_cpu_ticks("7 (x) R 1 7 7 0 -1 0 0 0 0 0 x 6"),
            None
        );
        let own = process_cpu_ticks("/proc/self/stat").unwrap();
        assert!(own < 1 << 40);
        assert!(process_cpu_ticks("/proc/0/stat").is_err());
        assert!(clock_ticks_per_sec() >= 100);
    }

    #[test]
    fn metric_samples_are_summed_over_labels_and_prefixes_do_not_match() {
        let text = "# HELP raftkv_snapshots_created_total Snapshots.\n\
                    # TYPE raftkv_snapshots_created_total counter\n\
                    raftkv_snapshots_created_total 3\n\
                    raftkv_snapshots_created_total_extra 100\n\
                    raftkv_wal_fsync_seconds_bucket{le=\"0.001\"} 10\n\
                    raftkv_wal_fsync_seconds_count 42\n\
                    etcd_disk_wal_fsync_duration_seconds_count{a=\"x}\"} 7 1700000000\n\
                    etcd_disk_wal_fsync_duration_seconds_count{a=\"y\"} 1.5e3\n";
        assert_eq!(
            sum_metric(text, "raftkv_snapshots_created_total"),
            Some(3.0)
        );
        assert_eq!(
            sum_metric(text, "raftkv_wal_fsync_seconds_count"),
            Some(42.0)
        );
        assert_eq!(
            sum_metric(text, "etcd_disk_wal_fsync_duration_seconds_count"),
            Some(1507.0)
        );
        assert_eq!(sum_metric(text, "raftkv_wal_fsync_seconds"), None);
        assert_eq!(sum_metric(text, "missing"), None);
    }

    #[test]
    fn counters_add_up_over_members_and_are_unknown_if_one_is_missing() {
        let m = |s: u64, f: u64| {
            Some(format!(
                "etcd_debugging_snap_save_total_duration_seconds_count {s}\n\
                 etcd_disk_wal_fsync_duration_seconds_count {f}\n"
            ))
        };
        let before = Counters::from_metrics(Target::Etcd, &[m(0, 10), m(1, 20), m(0, 30)]);
        assert_eq!((before.snapshots, before.fsyncs), (Some(1), Some(60)));
        let after = Counters::from_metrics(Target::Etcd, &[m(1, 15), m(1, 26), m(2, 40)]);
        let d = after.since(&before);
        assert_eq!((d.snapshots, d.fsyncs), (Some(3), Some(21)));
        let partial = Counters::from_metrics(Target::Etcd, &[m(1, 15), None, m(2, 40)]);
        assert_eq!(partial, Counters::default());
        assert_eq!(after.since(&partial), Counters::default());
        let raftkv = Counters::from_metrics(
            Target::Raftkv,
            &[Some(
                "raftkv_snapshots_created_total 2\nraftkv_wal_fsync_seconds_count 9\n".into(),
            )],
        );
        assert_eq!((raftkv.snapshots, raftkv.fsyncs), (Some(2), Some(9)));
    }

    #[test]
    fn the_machine_and_versions_are_read_from_what_linux_and_the_servers_print() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\n\
                       processor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(cpu_model("processor : 0\n"), None);
        let etcd = "etcd Version: 3.4.23\nGit SHA: Not provided (use ./build instead of go build)\n\
                    Go Version: go1.19.8\nGo OS/Arch: linux/amd64\n";
        assert_eq!(
            parse_version(Target::Etcd, etcd).as_deref(),
            Some("etcd 3.4.23 (go1.19.8)")
        );
        assert_eq!(
            parse_version(Target::Etcd, "etcd Version: 3.5.0\n").as_deref(),
            Some("etcd 3.5.0")
        );
        assert_eq!(parse_version(Target::Etcd, "usage: ...\n"), None);
        assert_eq!(
            parse_version(Target::Raftkv, "raftkv 0.1.0\n").as_deref(),
            Some("raftkv 0.1.0")
        );
        assert_eq!(parse_version(Target::Raftkv, ""), None);
        let summary = machine_summary();
        assert!(
            summary.contains("CPUs (nproc)") && summary.contains("Linux"),
            "{summary}"
        );
        assert!(
            version_of(Path::new("/nonexistent/etcd"), Target::Etcd).starts_with("version unknown")
        );
    }
}
