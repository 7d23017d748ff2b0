//! `powerloss-fs`: see the library's docs.

use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use fuser::{Config, MountOption};
use powerloss_fs::{control, fs};

/// Mounts a power-loss simulating file system.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where to mount it (an existing, empty directory).
    mountpoint: PathBuf,
    /// The control socket to create (see the commands in the crate docs).
    #[arg(long)]
    control: PathBuf,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let _ = std::fs::remove_file(&args.control);
    let listener = match UnixListener::bind(&args.control) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("powerloss-fs: cannot bind {}: {e}", args.control.display());
            return std::process::ExitCode::FAILURE;
        }
    };
    let shared = Arc::new(fs::Shared::default());
    let for_control = Arc::clone(&shared);
    std::thread::spawn(move || control::serve(listener, for_control));
    let mut config = Config::default();
    config.mount_options = vec![MountOption::FSName("powerloss-fs".into())];
    config.n_threads = Some(2);
    match fuser::mount(fs::PowerLossFs::new(shared), &args.mountpoint, &config) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "powerloss-fs: cannot mount {}: {e}",
                args.mountpoint.display()
            );
            std::process::ExitCode::FAILURE
        }
    }
}
