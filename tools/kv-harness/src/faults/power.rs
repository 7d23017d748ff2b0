//! Power loss for the fault run: each node's data directory is a
//! `powerloss-fs` mount (`tools/powerloss-fs`), a FUSE file system that
//! keeps what the node did not fsync apart from what it did. A power cut
//! is SIGKILL, then `power-loss` on the mount's control socket (every
//! unsynced write, create and rename is gone), then a restart.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a mount may take to appear.
const MOUNT_DEADLINE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(20);

/// Why a mount could not be made or driven.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PowerError {
    /// The file system process could not be started.
    #[error("cannot start {bin} for {}: {source}", mountpoint.display())]
    Start {
        /// The `powerloss-fs` executable.
        bin: String,
        /// Where it was to mount.
        mountpoint: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The mount did not appear in time (see its log).
    #[error("powerloss-fs did not mount {} within {MOUNT_DEADLINE:?}; see {}", mountpoint.display(), log.display())]
    NotMounted {
        /// Where it was to mount.
        mountpoint: PathBuf,
        /// Its log.
        log: PathBuf,
    },
    /// A control command failed.
    #[error("powerloss-fs control {}: {what}", socket.display())]
    Control {
        /// The control socket.
        socket: PathBuf,
        /// What went wrong.
        what: String,
    },
}

struct Mount {
    daemon: Child,
    mountpoint: PathBuf,
    socket: PathBuf,
}

/// The mounts of a run, one per node. Dropping it unmounts them.
pub struct Mounts {
    bin: PathBuf,
    mounts: BTreeMap<u64, Mount>,
}

impl Mounts {
    /// Mounts made with the `powerloss-fs` executable `bin`.
    pub fn new(bin: PathBuf) -> Mounts {
        Mounts {
            bin,
            mounts: BTreeMap::new(),
        }
    }

    /// Mounts node `id`'s file system on `mountpoint` (created if missing)
    /// unless it is mounted already; its log and socket go into `dir`.
    ///
    /// # Errors
    /// A [`PowerError`].
    pub fn ensure(&mut self, id: u64, mountpoint: &Path, dir: &Path) -> Result<(), PowerError> {
        if self.mounts.contains_key(&id) {
            return Ok(());
        }
        let start = |source| PowerError::Start {
            bin: self.bin.display().to_string(),
            mountpoint: mountpoint.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(mountpoint).map_err(start)?;
        let log = dir.join(format!("fs-{id}.log"));
        let socket = dir.join(format!("fs-{id}.sock"));
        let log_file = File::create(&log).map_err(start)?;
        let daemon = Command::new(&self.bin)
            .arg("--control")
            .arg(&socket)
            .arg(mountpoint)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .spawn()
            .map_err(start)?;
        let mount = Mount {
            daemon,
            mountpoint: mountpoint.to_path_buf(),
            socket,
        };
        let deadline = Instant::now() + MOUNT_DEADLINE;
        while !(is_mounted(mountpoint) && control(&mount.socket, "status").is_ok()) {
            if Instant::now() > deadline {
                drop(mount);
                return Err(PowerError::NotMounted {
                    mountpoint: mountpoint.to_path_buf(),
                    log,
                });
            }
            std::thread::sleep(POLL);
        }
        self.mounts.insert(id, mount);
        Ok(())
    }

    /// Cuts node `id`'s power: everything it did not make durable is gone.
    /// The node must be stopped first.
    ///
    /// # Errors
    /// A [`PowerError::Control`].
    pub fn power_loss(&self, id: u64) -> Result<(), PowerError> {
        self.command(id, "power-loss").map(|_| ())
    }

    /// Sends node `id`'s file system a control command (see
    /// `tools/powerloss-fs`); returns the reply. Without a mount for `id`,
    /// nothing happens.
    ///
    /// # Errors
    /// A [`PowerError::Control`].
    pub fn command(&self, id: u64, command: &str) -> Result<String, PowerError> {
        match self.mounts.get(&id) {
            Some(m) => control(&m.socket, command),
            None => Ok(String::new()),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.mountpoint, nix::mount::MntFlags::MNT_DETACH);
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// Whether `/proc/self/mountinfo` lists `mountpoint`.
fn is_mounted(mountpoint: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = mountpoint.to_string_lossy();
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m == want))
}

/// Sends one command; returns the reply line.
fn control(socket: &Path, command: &str) -> Result<String, PowerError> {
    let err = |what: String| PowerError::Control {
        socket: socket.to_path_buf(),
        what,
    };
    let mut stream = UnixStream::connect(socket).map_err(|e| err(e.to_string()))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| err(e.to_string()))?;
    writeln!(stream, "{command}").map_err(|e| err(e.to_string()))?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(|e| err(e.to_string()))?;
    let reply = reply.trim().to_string();
    if reply.is_empty() || reply.starts_with("error") {
        return Err(err(format!("{command}: {reply:?}")));
    }
    Ok(reply)
}
