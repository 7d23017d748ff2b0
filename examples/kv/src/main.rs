//! The `raftkv` binary: a node (the default), `raftkv cluster` (a local
//! cluster of processes), `raftkv bench` (a load generator), `raftkv
//! bench-vs` (raftkv side by side with etcd), `raftkv faults` (the fault
//! test) or `raftkv certs` (certificates for mutual TLS).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build();
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("raftkv: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run_node(opts, client))
}

async fn run_node(opts: raftkv::server::NodeConfig, client: ClientApiOptions) -> ExitCode {
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
