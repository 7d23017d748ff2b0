//! `raft-wal`: inspect a WAL directory without changing it.
//!
//! ```text
//! raft-wal verify <dir> [--max-record-bytes N]
//! raft-wal dump <dir> [--segment ID] [--data] [--max-record-bytes N]
//! ```
//!
//! `verify` runs the recovery checks read-only and says what opening the
//! WAL would do (exit 0: it would open, maybe after truncating a torn tail;
//! exit 1: it would refuse). `dump` prints every frame of every segment and
//! where and why decoding stops.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use raft_io::FileBackend;
use raft_wal::{DEFAULT_MAX_RECORD_BYTES, inspect};

const USAGE: &str = "usage:
  raft-wal verify <dir> [--max-record-bytes N]
  raft-wal dump <dir> [--segment ID] [--data] [--max-record-bytes N]";

struct Args {
    command: String,
    dir: PathBuf,
    segment: Option<u64>,
    data: bool,
    max_record_bytes: u32,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let command = it.next().ok_or("missing command")?;
    let dir = PathBuf::from(it.next().ok_or("missing directory")?);
    let mut args = Args {
        command,
        dir,
        segment: None,
        data: false,
        max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
    };
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--data" => args.data = true,
            "--segment" => {
                let v = it.next().ok_or("--segment needs a value")?;
                args.segment = Some(v.parse().map_err(|_| format!("bad segment id {v}"))?);
            }
            "--max-record-bytes" => {
                let v = it.next().ok_or("--max-record-bytes needs a value")?;
                args.max_record_bytes = v.parse().map_err(|_| format!("bad size {v}"))?;
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("raft-wal: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    let result = match args.command.as_str() {
        "verify" => verify(&mut out, &args),
        "dump" => dump(&mut out, &args),
        other => {
            eprintln!("raft-wal: unknown command {other}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("raft-wal: {e}");
            ExitCode::from(1)
        }
    }
}

fn verify(out: &mut impl Write, args: &Args) -> std::io::Result<ExitCode> {
    match inspect::verify(&FileBackend, &args.dir, args.max_record_bytes) {
        Ok(r) => {
            writeln!(out, "ok: {} segment(s) {:?}", r.segments.len(), r.segments)?;
            writeln!(out, "entries {}..={}", r.first_index, r.last_index)?;
            writeln!(
                out,
                "hard state: term {} vote {:?} commit {}",
                r.hard_state.term, r.hard_state.vote, r.hard_state.commit
            )?;
            writeln!(out, "snapshot markers: {:?}", r.snapshot_markers)?;
            if let Some((segment, damage, cut)) = r.torn_tail {
                writeln!(
                    out,
                    "torn tail: segment {segment} damaged at offset {damage}; opening will truncate it at {cut}"
                )?;
            }
            if let Some((segment, offset, len)) = r.tail_copy {
                writeln!(
                    out,
                    "interrupted tail rewrite: opening will first write {len} bytes from its copy at offset {offset} of segment {segment} (read as written above)"
                )?;
            }
            if r.temp_files > 0 {
                writeln!(
                    out,
                    "{} temporary file(s) opening will delete",
                    r.temp_files
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            writeln!(out, "REFUSED: {e}")?;
            Ok(ExitCode::from(1))
        }
    }
}

fn dump(out: &mut impl Write, args: &Args) -> std::io::Result<ExitCode> {
    let mut options = inspect::DumpOptions::default();
    options.segment = args.segment;
    options.data = args.data;
    options.max_record_bytes = args.max_record_bytes;
    inspect::dump(&FileBackend, &args.dir, &options, out)?;
    Ok(ExitCode::SUCCESS)
}
