//! The control socket: one command per line, one reply line each.
//!
//! | command | effect |
//! |---|---|
//! | `power-loss` | drop everything not durable (the node must be stopped first) |
//! | `fail-fsync on` / `off` | every fsync fails with EIO and loses its writes |
//! | `capacity <bytes>` / `capacity off` | writes past it fail with ENOSPC |
//! | `fsync-delay-ms <n>` | every fsync waits `n` ms first |
//! | `status` | `power-losses=.. used-bytes=.. capacity=.. fail-fsync=.. fsync-delay-ms=..` |
//!
//! Replies are `ok`, the status line, or `error: <why>`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::Duration;

use crate::fs::Shared;

/// Why a command was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// Not a command of the table above.
    #[error(
        "unknown command {0:?} (power-loss, fail-fsync on|off, capacity <bytes>|off, fsync-delay-ms <n>, status)"
    )]
    Unknown(String),
    /// A number that does not parse.
    #[error("not a number: {0:?}")]
    BadNumber(String),
}

/// Runs one command against `shared`; returns the reply line.
///
/// # Errors
/// A [`CommandError`] for a malformed command; nothing changes then.
pub fn run(shared: &Shared, line: &str) -> Result<String, CommandError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let number = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| CommandError::BadNumber(s.to_string()))
    };
    match words[..] {
        ["power-loss"] => {
            shared.model.lock().power_loss();
            tracing::info!("power loss: everything not durable is gone");
        }
        ["fail-fsync", on @ ("on" | "off")] => shared.model.lock().faults.fail_fsync = on == "on",
        ["capacity", "off"] => shared.model.lock().faults.capacity_bytes = None,
        ["capacity", n] => shared.model.lock().faults.capacity_bytes = Some(number(n)?),
        ["fsync-delay-ms", n] => *shared.fsync_delay.lock() = Duration::from_millis(number(n)?),
        ["status"] => {
            let m = shared.model.lock();
            let (used, cap) = m.usage();
            return Ok(format!(
                "power-losses={} used-bytes={used} capacity={} fail-fsync={} fsync-delay-ms={}",
                m.power_losses,
                cap.map_or("off".to_string(), |c| c.to_string()),
                if m.faults.fail_fsync { "on" } else { "off" },
                shared.fsync_delay.lock().as_millis()
            ));
        }
        _ => return Err(CommandError::Unknown(line.trim().to_string())),
    }
    Ok("ok".to_string())
}

/// Serves the control socket until the process ends.
pub fn serve(listener: UnixListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                if let Err(e) = serve_one(stream, &shared) {
                    tracing::warn!(error = %e, "control connection failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "control accept failed"),
        }
    }
}

fn serve_one(stream: UnixStream, shared: &Shared) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    for line in BufReader::new(stream).lines() {
        let reply = match run(shared, &line?) {
            Ok(r) => r,
            Err(e) => format!("error: {e}"),
        };
        writeln!(out, "{reply}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_change_the_faults_and_status_reports_them() {
        let shared = Shared::default();
        assert_eq!(run(&shared, "capacity 4096").as_deref(), Ok("ok"));
        assert_eq!(run(&shared, "fail-fsync on").as_deref(), Ok("ok"));
        assert_eq!(run(&shared, "fsync-delay-ms 5").as_deref(), Ok("ok"));
        assert_eq!(
            run(&shared, "status").as_deref(),
            Ok("power-losses=0 used-bytes=0 capacity=4096 fail-fsync=on fsync-delay-ms=5")
        );
        assert_eq!(run(&shared, "power-loss").as_deref(), Ok("ok"));
        assert!(
            run(&shared, "status")
                .unwrap()
                .starts_with("power-losses=1")
        );
    }

    #[test]
    fn a_malformed_command_is_refused_and_changes_nothing() {
        let shared = Shared::default();
        assert!(matches!(
            run(&shared, "capacity lots"),
            Err(CommandError::BadNumber(_))
        ));
        assert!(matches!(
            run(&shared, "reboot"),
            Err(CommandError::Unknown(_))
        ));
        assert_eq!(shared.model.lock().faults.capacity_bytes, None);
    }
}
