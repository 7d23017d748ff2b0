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
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use raft_io::{Backend, FileBackend};
use raft_wal::format::{self, DamageKind, Record};
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
    let backend = FileBackend;
    let mut names = backend.list_dir(&args.dir)?;
    names.retain(|n| format::parse_segment_file_name(n).is_some());
    for name in names {
        let (id, _) = format::parse_segment_file_name(&name).expect("filtered above");
        if args.segment.is_some_and(|s| s != id) {
            continue;
        }
        dump_segment(out, &args.dir.join(&name), id, args)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn dump_segment(out: &mut impl Write, path: &Path, id: u64, args: &Args) -> std::io::Result<()> {
    let bytes = Bytes::from(FileBackend.read(path)?);
    writeln!(out, "== {} ({} bytes)", path.display(), bytes.len())?;
    match format::decode_segment_header(&bytes) {
        Ok(h) => writeln!(
            out,
            "header: segment {} first index {}",
            h.segment_id, h.first_index
        )?,
        Err(e) => {
            writeln!(out, "header: {e}")?;
            return Ok(());
        }
    }
    let mut at = format::SEGMENT_HEADER_BYTES;
    while at < bytes.len() {
        match format::decode_frame(&bytes, id, at, args.max_record_bytes) {
            Ok((record, next)) => {
                write!(out, "{at:>10} ")?;
                describe(out, &record, args.data)?;
                at = next;
            }
            Err(DamageKind::Hole | DamageKind::Truncated)
                if bytes[at..].iter().all(|&b| b == 0) =>
            {
                writeln!(out, "{at:>10} end: {} zero bytes follow", bytes.len() - at)?;
                return Ok(());
            }
            Err(kind) => {
                writeln!(out, "{at:>10} DAMAGE: {kind}")?;
                match format::later_commit_proves_durable(&bytes, id, at, at as u64) {
                    Some(p) => writeln!(
                        out,
                        "           a valid commit frame at {p} records bytes past {at} as synced: corruption"
                    )?,
                    None => writeln!(
                        out,
                        "           nothing after it proves it was synced: a torn tail if this is the last segment"
                    )?,
                }
                return Ok(());
            }
        }
    }
    writeln!(out, "{at:>10} end of file")?;
    Ok(())
}

fn describe(out: &mut impl Write, record: &Record, data: bool) -> std::io::Result<()> {
    match record {
        Record::Entry(e) => {
            write!(
                out,
                "entry     index {} term {} kind {:?} {} bytes",
                e.index,
                e.term,
                e.kind,
                e.data.len()
            )?;
            if data {
                write!(out, " {:?}", String::from_utf8_lossy(&e.data))?;
            }
            writeln!(out)
        }
        Record::HardState(hs) => writeln!(
            out,
            "hardstate term {} vote {:?} commit {}",
            hs.term, hs.vote, hs.commit
        ),
        Record::SnapshotMarker(m) => writeln!(
            out,
            "snapshot  index {} term {} voters {:?} learners {:?}",
            m.index, m.term, m.conf_state.voters, m.conf_state.learners
        ),
        Record::Commit(c) => writeln!(
            out,
            "commit    batch at {} of {} frame(s), synced through {}",
            c.batch_start, c.frame_count, c.synced_through
        ),
        _ => writeln!(out, "unknown record"),
    }
}
