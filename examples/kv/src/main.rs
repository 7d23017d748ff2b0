//! The `raftkv` binary: a node (the default), `raftkv cluster` (a local
//! cluster of processes), `raftkv bench` (a load generator), `raftkv
//! bench-vs` (raftkv side by side with etcd), `raftkv faults` (the fault
//! test) or `raftkv certs` (certificates for mutual TLS).

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use raft_transport::ServerTls;
use raftkv::cli::{CLIENT_TLS_FLAGS, tls_error};
use raftkv::cli::{ClientApiOptions, ServerArgs};
use raftkv::metrics::Metrics;
use raftkv::server::{LoopExit, Node};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

/// A replicated key-value store on Raft (etcd's raftexample, in Rust).
#[derive(Parser, Debug)]
#[command(name = "raftkv", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a local cluster of raftkv processes, one per node; Ctrl-C
    /// stops them all.
    Cluster(raftkv_harness::launcher::ClusterArgs),
    /// Load-test a running cluster and print throughput and latency.
    Bench(raftkv_harness::bench::BenchArgs),
    /// Start a raftkv and an etcd cluster (or two raftkv configurations)
    /// and load both alternately with the same generator; print
    /// throughput, latency, server CPU per write and the ratios.
    BenchVs(raftkv_harness::versus::VersusArgs),
    /// Run a Jepsen-style fault test of a local cluster (as root, in a
    /// private network namespace) and check its history.
    Faults(raftkv_harness::faults::FaultsArgs),
    /// Write a CA and node certificates for mutual TLS on the peer port.
    Certs(raftkv_harness::certs::CertsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Cluster(args)) => match raftkv_harness::launcher::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("raftkv cluster: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Bench(args)) => run_bench(args),
        Some(Command::BenchVs(args)) => run_bench_vs(args),
        Some(Command::Faults(args)) => raftkv_harness::faults::main(args),
        Some(Command::Certs(args)) => match raftkv_harness::certs::run(&args) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("raftkv certs: {e}");
                ExitCode::from(2)
            }
        },
        None => serve(&cli.server),
    }
}

fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
}

fn run_bench(args: raftkv_harness::bench::BenchArgs) -> ExitCode {
    let rt = match runtime(2) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("raftkv bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(raftkv_harness::bench::run(args)) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("raftkv bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_bench_vs(args: raftkv_harness::versus::VersusArgs) -> ExitCode {
    use raftkv_harness::versus::VersusError;
    let rt = match runtime(2) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("raftkv bench-vs: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(raftkv_harness::versus::run(args)) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e @ (VersusError::InvalidArgs(_) | VersusError::DebugBuild)) => {
            eprintln!("raftkv bench-vs: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("raftkv bench-vs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &ServerArgs) -> ExitCode {
    let (opts, client) = match args.validate() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("raftkv: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = match tracing_subscriber::EnvFilter::try_new(&args.log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("raftkv: --log {:?} is not a valid filter: {e}", args.log);
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(args.log_color.ansi())
        .with_writer(std::io::stderr)
        .init();
    let rt = match runtime(args.threads.max(1)) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("raftkv: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run_node(opts, client))
}

async fn run_node(opts: raftkv::server::ServerOptions, client: ClientApiOptions) -> ExitCode {
    let id = opts.id;
    // First of all: a SIGTERM that arrives while the node starts, or just
    // after it answers its first request, must stop it cleanly, not kill
    // it with the default action.
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            eprintln!("raftkv: cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    let (listener, client_tls) = match client_listener(&client).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("raftkv: {e}");
            return ExitCode::from(2);
        }
    };
    // The port bound, which `--port 0` leaves to the kernel.
    let client_addr = listener.local_addr().unwrap_or(client.addr);
    let metrics = Arc::new(Metrics::default());
    let (node, handle) = match Node::start(opts, metrics).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("raftkv: {e}");
            return ExitCode::from(2);
        }
    };
    let transport = node.transport();
    let handle = Arc::new(handle);
    let mut raft_thread = tokio::spawn(node.run());
    let tls = client_tls.is_some();
    let server = tokio::spawn(raftkv::http::serve(
        listener,
        Arc::clone(&handle),
        client_tls,
        client.limits,
    ));
    tracing::info!(
        node = id.get(),
        client = %client_addr,
        tls,
        max_connections = client.limits.max_connections,
        "serving"
    );
    let exit = tokio::select! {
        _ = term.recv() => None,
        _ = int.recv() => None,
        r = &mut raft_thread => Some(r),
    };
    // Stop accepting requests, then let the loop finish its Ready and sync.
    server.abort();
    let exit = match exit {
        Some(r) => r,
        None => {
            tracing::info!("signal received; shutting down");
            handle.shutdown();
            raft_thread.await
        }
    };
    transport.shutdown().await;
    match exit {
        Ok(Ok(LoopExit::Shutdown)) => ExitCode::SUCCESS,
        Ok(Ok(LoopExit::Removed)) => {
            tracing::info!("this node was removed from the cluster");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "raft loop failed");
            eprintln!("raftkv: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("raftkv: raft loop panicked: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The client API's TLS configuration, loaded, and its listener, bound.
async fn client_listener(
    client: &ClientApiOptions,
) -> Result<(TcpListener, Option<ServerTls>), String> {
    let tls = client
        .tls
        .as_ref()
        .map(ServerTls::load)
        .transpose()
        .map_err(|e| tls_error(&e, CLIENT_TLS_FLAGS))?;
    let addr = client.addr;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for clients on {addr}: {e} (choose another --port)"))?;
    Ok((listener, tls))
}
