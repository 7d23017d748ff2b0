//! `xtask`: the workspace's rules, kept by a machine rather than by hand.
//!
//! ```text
//! cargo run -p xtask -- lint            # what CI runs: exit 1 on any finding
//! cargo run -p xtask -- lint --update   # rewrite the list of long functions
//! ```
//!
//! `lint` checks, over every workspace member's library and binary sources
//! (the module tree from each target's root; tests, benches, examples and
//! `#[cfg(test)]` code are not looked at):
//!
//! - **function length**: no function is longer than [`lint::LINE_LIMIT`]
//!   lines, except those listed in `tools/xtask/long-functions.txt` with
//!   their length today. The list is a ratchet: an entry may not grow, and
//!   one that shrank, fell under the limit or is gone must be lowered or
//!   removed, so the list stays tight (`--update` rewrites it);
//! - **no printing in library code**: `println!`, `print!`, `eprintln!`,
//!   `eprint!` and `dbg!` do not appear in the library target of a crate
//!   that is published (bins, tests and unpublished tools may print);
//! - **documented crates**: every library target's root has
//!   `#![deny(missing_docs)]`;
//! - **README facts**: counts the READMEs state (the transcript scenarios)
//!   match the files in the tree.

mod facts;
mod lint;
mod scan;
mod workspace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The workspace's rules, kept by a machine.
#[derive(Parser, Debug)]
#[command(name = "xtask", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check function lengths, printing in library code, `missing_docs` and
    /// README facts (exit 1 on a finding).
    Lint {
        /// Rewrite tools/xtask/long-functions.txt from today's lengths
        /// instead of checking against it (the other checks still run).
        #[arg(long)]
        update: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.command {
        Command::Lint { update } => match lint::run(&root, update) {
            Ok(findings) if findings.is_empty() => {
                println!("xtask lint: ok");
                ExitCode::SUCCESS
            }
            Ok(findings) => {
                for finding in &findings {
                    eprintln!("{finding}");
                }
                eprintln!("xtask lint: {} finding(s)", findings.len());
                ExitCode::FAILURE
            }
            Err(err) => {
                eprintln!("xtask lint: {err}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The workspace root: two levels above this crate's manifest.
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(|tools| tools.parent())
        .map(PathBuf::from)
        .unwrap_or(manifest)
}
