//! The `raftkv` subcommands this crate implements, as one clap
//! [`Subcommand`](clap::Subcommand) the binary embeds, and how each runs
//! and exits.

use std::process::ExitCode;

use crate::{bench, certs, faults, launcher, versus};

/// `raftkv cluster`, `bench`, `bench-vs`, `faults` and `certs`.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Start a local cluster of raftkv processes, one per node; Ctrl-C
    /// stops them all.
    Cluster(launcher::ClusterArgs),
    /// Load-test a running cluster and print throughput and latency.
    Bench(bench::BenchArgs),
    /// Start a raftkv and an etcd cluster (or two raftkv configurations)
    /// and load both alternately with the same generator; print
    /// throughput, latency, server CPU per write and the ratios.
    BenchVs(versus::VersusArgs),
    /// Run a Jepsen-style fault test of a local cluster (as root, in a
    /// private network namespace) and check its history.
    Faults(faults::FaultsArgs),
    /// Write a CA and node certificates for mutual TLS on the peer port.
    Certs(certs::CertsArgs),
}

impl Command {
    /// Runs the subcommand; what it prints goes to stdout, errors to
    /// stderr as one line. Exit codes: 0 done, 2 bad arguments, 1 other
    /// failures (the fault test has its own, see [`faults::main`]).
    pub fn run(self) -> ExitCode {
        match self {
            Command::Cluster(args) => finish(
                "cluster",
                launcher::run(args).map(|()| ""),
                ExitCode::FAILURE,
            ),
            Command::Bench(args) => match runtime("bench") {
                Ok(rt) => finish("bench", rt.block_on(bench::run(args)), ExitCode::from(2)),
                Err(code) => code,
            },
            Command::BenchVs(args) => match runtime("bench-vs") {
                Ok(rt) => {
                    let result = rt.block_on(versus::run(args));
                    let code = match &result {
                        Err(
                            versus::VersusError::InvalidArgs(_) | versus::VersusError::DebugBuild,
                        ) => ExitCode::from(2),
                        _ => ExitCode::FAILURE,
                    };
                    finish("bench-vs", result, code)
                }
                Err(code) => code,
            },
            Command::Faults(args) => faults::main(args),
            Command::Certs(args) => finish("certs", certs::run(&args), ExitCode::from(2)),
        }
    }
}

/// Prints what a subcommand returned, or its error with `failed`.
fn finish<T: std::fmt::Display, E: std::fmt::Display>(
    name: &str,
    result: Result<T, E>,
    failed: ExitCode,
) -> ExitCode {
    match result {
        Ok(out) => {
            let out = out.to_string();
            if !out.is_empty() {
                println!("{out}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("raftkv {name}: {e}");
            failed
        }
    }
}

/// The tokio runtime of the load generators: two workers.
fn runtime(name: &str) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("raftkv {name}: cannot start the runtime: {e}");
            ExitCode::FAILURE
        })
}
