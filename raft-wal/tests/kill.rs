//! A real-process crash test: a child process appends and reports each
//! synced index over a pipe; the parent SIGKILLs it at a random point, then
//! reopens the WAL and checks that every reported index survived and that
//! nothing was invented. Repeats on the same directory, so each round also
//! recovers whatever the previous kill left.
//!
//! The child is this test binary re-run with `--exact` on an ignored test
//! and an environment variable naming the directory.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::*;
use raft_core::{Entry, Index};
use raft_wal::{Wal, WalOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CHILD_DIR_ENV: &str = "RAFT_WAL_KILL_CHILD_DIR";
const CHILD_TEST: &str = "child_appends_and_reports_synced_indexes";

fn options() -> WalOptions {
    WalOptions::new().segment_size_bytes(64 << 10)
}

fn payload_len(index: u64) -> usize {
    10 + (index as usize * 37) % 700
}

fn expected(index: u64) -> Entry {
    entry(index, 1, payload_len(index))
}

#[test]
#[ignore = "child process of sigkilled_writer_never_loses_an_acknowledged_entry"]
fn child_appends_and_reports_synced_indexes() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let (wal, r) = Wal::open(&dir, options()).expect("child: open");
    let mut next = r.entries.last().map_or(1, |e| e.index.get() + 1);
    let mut out = std::io::stdout().lock();
    loop {
        let count = 1 + next % 4;
        let batch: Vec<Entry> = (next..next + count).map(expected).collect();
        let hs = hard_state(1, 1, next - 1);
        wal.save(Some(&hs), &batch, true).expect("child: save");
        next += count;
        // The marker keeps the line findable amid the test harness's output.
        writeln!(out, "\n@@acked {}@@", next - 1).expect("child: report");
        out.flush().expect("child: flush");
    }
}

fn parse_ack(line: &str) -> Option<u64> {
    let start = line.find("@@acked ")? + "@@acked ".len();
    let end = start + line[start..].find("@@")?;
    line[start..end].parse().ok()
}

#[test]
fn sigkilled_writer_never_loses_an_acknowledged_entry() {
    let rounds: u32 = std::env::var("RAFT_WAL_KILL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("RAFT_WAL_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    eprintln!(
        "sigkill test: seed={seed} rounds={rounds} (RAFT_WAL_KILL_SEED / RAFT_WAL_KILL_ROUNDS)"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut acked = 0u64;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args([
                CHILD_TEST,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let kill_after = rng.random_range(1..60u32);
        let stdout = child.stdout.take().expect("piped");
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read pipe");
            if let Some(index) = parse_ack(&line) {
                assert!(index > acked, "acks increase");
                acked = index;
                seen += 1;
                if seen == kill_after {
                    break;
                }
            }
        }
        assert_eq!(
            seen, kill_after,
            "seed={seed} round={round}: child died on its own"
        );
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");

        let (_, r) = Wal::open(tmp.path(), options())
            .unwrap_or_else(|e| panic!("seed={seed} round={round}: recovery failed: {e}"));
        let last = r.entries.last().map_or(0, |e| e.index.get());
        assert!(
            last >= acked,
            "seed={seed} round={round}: acked {acked}, recovered {last}"
        );
        for (i, e) in r.entries.iter().enumerate() {
            assert_eq!(
                *e,
                expected(i as u64 + 1),
                "seed={seed} round={round}: entry {i}"
            );
        }
        assert!(r.hard_state.commit <= Index(last));
    }
}
