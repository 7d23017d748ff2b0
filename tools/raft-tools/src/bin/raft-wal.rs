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

use clap::{Parser, Subcommand};
use raft_io::FileBackend;
use raft_wal::{DEFAULT_MAX_RECORD_BYTES, inspect};

/// Inspect a raft-wal directory without changing it.
#[derive(Parser, Debug)]
#[command(name = "raft-wal", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the recovery checks read-only and say what opening the WAL
    /// would do (exit 0: it would open, maybe after truncating a torn
    /// tail; exit 1: it would refuse).
    Verify {
        /// The WAL directory.
        dir: PathBuf,
        /// The largest record a frame may hold, as the WAL was opened with.
        #[arg(long, default_value_t = DEFAULT_MAX_RECORD_BYTES)]
        max_record_bytes: u32,
    },
    /// Print every frame of every segment, and where and why decoding
    /// stops.
    Dump {
        /// The WAL directory.
        dir: PathBuf,
        /// Only this segment (its id).
        #[arg(long)]
        segment: Option<u64>,
        /// Print entry payloads too.
        #[arg(long)]
        data: bool,
        /// The largest record a frame may hold, as the WAL was opened with.
        #[arg(long, default_value_t = DEFAULT_MAX_RECORD_BYTES)]
        max_record_bytes: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    let result = match cli.command {
        Command::Verify {
            dir,
            max_record_bytes,
        } => verify(&mut out, &dir, max_record_bytes),
        Command::Dump {
            dir,
            segment,
            data,
            max_record_bytes,
        } => {
            let mut options = inspect::DumpOptions::default();
            options.segment = segment;
            options.data = data;
            options.max_record_bytes = max_record_bytes;
            inspect::dump(&FileBackend, &dir, &options, &mut out).map(|()| ExitCode::SUCCESS)
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

fn verify(
    out: &mut impl Write,
    dir: &std::path::Path,
    max_record_bytes: u32,
) -> std::io::Result<ExitCode> {
    match inspect::verify(&FileBackend, dir, max_record_bytes) {
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
