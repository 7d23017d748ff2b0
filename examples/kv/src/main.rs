//! The `raftkv` binary: a node (the default), `raftkv cluster` (a local
//! cluster of processes), `raftkv bench` (a load generator), `raftkv
//! bench-vs` (raftkv side by side with etcd), `raftkv faults` (the fault
//! test) or `raftkv certs` (certificates for mutual TLS).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use raft_host::StopReason;
use raft_transport::{HttpNodeConfig, ServerTls};
use raftkv::cli::{CLIENT_TLS_FLAGS, ClientApiOptions, ServerArgs};
use raftkv::http::Api;
use raftkv::metrics::Metrics;
use raftkv::node::LoopError;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

/// A replicated key-value store on Raft (etcd's raftexample, in Rust).
#[derive(Parser, Debug)]
#[command(name = "raftkv", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<raftkv_harness::Command>,
    #[command(flatten)]
    server: ServerArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(command) => command.run(),
        None => serve(&cli.server),
    }
}

/// `raftkv: <e>` on stderr, and the exit code `code`.
fn fail(code: u8, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("raftkv: {e}");
    ExitCode::from(code)
}

fn serve(args: &ServerArgs) -> ExitCode {
    let run = || -> Result<ExitCode, ExitCode> {
        let (opts, client) = args.validate().map_err(|e| fail(2, e))?;
        let filter = tracing_subscriber::EnvFilter::try_new(&args.log).map_err(|e| {
            fail(
                2,
                format!("--log {:?} is not a valid filter: {e}", args.log),
            )
        })?;
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(raftkv::cli::log_ansi(args.log_color))
            .with_writer(std::io::stderr)
            .init();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads.max(1))
            .enable_all()
            .build()
            .map_err(|e| fail(1, format!("cannot start the runtime: {e}")))?;
        Ok(rt
            .block_on(run_node(opts, client))
            .unwrap_or_else(|code| code))
    };
    run().unwrap_or_else(|code| code)
}

async fn run_node(opts: HttpNodeConfig, client: ClientApiOptions) -> Result<ExitCode, ExitCode> {
    let id = opts.id;
    // First of all: a SIGTERM that arrives while the node starts, or just
    // after it answers its first request, must stop it cleanly, not kill
    // it with the default action.
    let signals =
        signal(SignalKind::terminate()).and_then(|t| Ok((t, signal(SignalKind::interrupt())?)));
    let (mut term, mut int) =
        signals.map_err(|e| fail(1, format!("cannot install signal handlers: {e}")))?;
    let (listener, client_tls) = client_listener(&client).await.map_err(|e| fail(2, e))?;
    // The port bound, which `--port 0` leaves to the kernel.
    let client_addr = listener.local_addr().unwrap_or(client.addr);
    let metrics = Arc::new(Metrics::default());
    let node = raftkv::node::start(opts, &metrics)
        .await
        .map_err(|e| fail(2, e))?;
    let api = Api {
        groups: node.groups().clone(),
        metrics,
        peer_scheme: node.peer_url().scheme(),
    };
    let tls = client_tls.is_some();
    let limits = client.limits;
    let server = tokio::spawn(raftkv::http::serve(listener, api, client_tls, limits));
    let stop_serving = server.abort_handle();
    let max_connections = limits.max_connections;
    tracing::info!(node = id.get(), client = %client_addr, tls, max_connections, "serving");
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("signal received; shutting down");
        // Stop accepting requests, then let the group finish its Ready
        // and sync.
        stop_serving.abort();
    };
    let exit = node.run(shutdown).await;
    server.abort();
    match exit {
        Ok(StopReason::Removed) => {
            tracing::info!("this node was removed from the cluster");
            Ok(ExitCode::SUCCESS)
        }
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            let e = LoopError::from(e);
            tracing::error!(error = %e, "raft loop failed");
            Err(fail(1, e))
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
        .map_err(|e| CLIENT_TLS_FLAGS.describe(&e))?;
    let addr = client.addr;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen for clients on {addr}: {e} (choose another --port)"))?;
    Ok((listener, tls))
}
