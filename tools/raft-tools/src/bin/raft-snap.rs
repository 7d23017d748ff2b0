//! `raft-snap`: inspect a snapshot directory without changing it.
//!
//! ```text
//! raft-snap list <dir>      # every file: snapshots newest first, with what they cover
//! raft-snap verify <dir>    # read every snapshot to its end; exit 1 if one is damaged
//! ```
//!
//! Unlike a node opening the directory, it takes no lock and deletes or
//! renames nothing (leftover temporary files, damaged snapshots), so it is
//! safe on the directory of a running node.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use raft_core::{ConfState, SnapshotMetadata};
use raft_io::FileBackend;
use raft_snap::inspect::{FileKind, FileReport, inspect_dir, is_missing_dir};

/// Inspect a raft-snap snapshot directory without changing it.
#[derive(Parser, Debug)]
#[command(name = "raft-snap", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every file: snapshots newest first (index, term, data size,
    /// membership, whether it verifies), then temporary, broken and other
    /// files.
    List {
        /// The snapshot directory.
        dir: PathBuf,
    },
    /// Read every snapshot to its end and check it (header, name, length,
    /// checksum); say which one a node would load (exit 0: all verify;
    /// exit 1: some are damaged, or the directory cannot be read).
    Verify {
        /// The snapshot directory.
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (Command::List { dir } | Command::Verify { dir }) = &cli.command;
    let reports = match inspect_dir(&FileBackend, dir) {
        Ok(r) => r,
        Err(e) if is_missing_dir(&e) => {
            eprintln!(
                "raft-snap: {}: no such directory (a node that never took or received a \
                 snapshot has none)",
                dir.display()
            );
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("raft-snap: {}: {}", dir.display(), e.source);
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout().lock();
    let written = match cli.command {
        Command::List { .. } => list(&mut out, &reports),
        Command::Verify { .. } => verify(&mut out, dir, &reports),
    };
    match written {
        Ok(code) => code,
        // stdout closed (a pipe into `head`): nothing more to say.
        Err(_) => ExitCode::from(1),
    }
}

fn list(out: &mut impl Write, reports: &[FileReport]) -> std::io::Result<ExitCode> {
    for r in reports {
        match &r.kind {
            FileKind::Valid { metadata, data_len } => {
                writeln!(out, "{}  ok  {}", r.name, describe(metadata, *data_len))?
            }
            FileKind::Damaged { error } => writeln!(out, "{}  DAMAGED  {error}", r.name)?,
            FileKind::Temporary => writeln!(
                out,
                "{}  temporary (an interrupted save; deleted when a node opens the directory)",
                r.name
            )?,
            FileKind::Broken => writeln!(
                out,
                "{}  broken (set aside after it failed to verify)",
                r.name
            )?,
            _ => writeln!(out, "{}  other", r.name)?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(out: &mut impl Write, dir: &Path, reports: &[FileReport]) -> std::io::Result<ExitCode> {
    let damaged: Vec<&FileReport> = reports
        .iter()
        .filter(|r| matches!(r.kind, FileKind::Damaged { .. }))
        .collect();
    let valid = reports.iter().filter(|r| r.kind.is_valid()).count();
    for r in &damaged {
        if let FileKind::Damaged { error } = &r.kind {
            writeln!(out, "DAMAGED {}: {error}", r.name)?;
        }
    }
    match reports.iter().find(|r| r.kind.is_valid()) {
        Some(FileReport {
            name,
            kind: FileKind::Valid { metadata, data_len },
        }) => writeln!(
            out,
            "{valid} snapshot(s) verify; a node loads {name}: {}",
            describe(metadata, *data_len)
        )?,
        _ => writeln!(out, "no snapshot in {} verifies", dir.display())?,
    }
    Ok(if damaged.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `index 20 term 2, 3 bytes, voters [1, 2, 3]`.
fn describe(m: &SnapshotMetadata, data_len: u64) -> String {
    let ids = |set: &std::collections::BTreeSet<raft_core::NodeId>| {
        let ids: Vec<u64> = set.iter().map(|n| n.get()).collect();
        format!("{ids:?}")
    };
    let ConfState {
        voters, learners, ..
    } = &m.conf_state;
    let mut s = format!(
        "index {} term {}, {data_len} bytes, voters {}",
        m.index,
        m.term,
        ids(voters)
    );
    if !learners.is_empty() {
        s.push_str(&format!(", learners {}", ids(learners)));
    }
    s
}
