//! The fault run's private network: a network namespace of its own, with
//! only a loopback interface, nftables rules that drop peer traffic
//! between chosen nodes, and an iptables rule that hands all peer traffic
//! to the harness's delaying queue (`super::delay`).
//!
//! Node `i` lives on `127.0.0.i`: its peer listener on port
//! [`PEER_PORT`], its client API on [`CLIENT_PORT`], and its outgoing peer
//! connections are bound to that address. A rule "drop what `a` sends to
//! `b`" matches packets from `127.0.0.a` to `127.0.0.b` with source or
//! destination port [`PEER_PORT`]: `a`'s requests to `b`'s listener and
//! `a`'s answers on connections `b` opened. Client traffic (port
//! [`CLIENT_PORT`]) is never touched, so clients can always reach every
//! node and see what the cluster does under the fault.
//!
//! The namespace is anonymous ([`enter_private_netns`] unshares the calling
//! process's): it disappears with the last process in it, so a crashed run
//! leaves nothing behind on the host, and its rules never touch the host's
//! network.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// Port of every node's peer listener (each node has its own address).
pub const PEER_PORT: u16 = 2380;
/// Port of every node's client API.
pub const CLIENT_PORT: u16 = 2379;
/// The largest node id: node `i` is `127.0.0.i`.
pub const MAX_NODE_ID: u64 = 250;

const TABLE: &str = "raftkv_faults";

/// What went wrong setting up or changing the network.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// This machine cannot run the fault test: not root, no `ip`, no
    /// `nft`.
    #[error("{0}")]
    Unsupported(String),
    /// A command failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed on stderr.
        stderr: String,
    },
}

/// The loopback address of node `id`.
pub fn node_ip(id: u64) -> Ipv4Addr {
    assert!(
        (1..=MAX_NODE_ID).contains(&id),
        "node ids run from 1 to {MAX_NODE_ID}"
    );
    Ipv4Addr::new(127, 0, 0, u8::try_from(id).unwrap_or(u8::MAX))
}

/// Moves this process into a new, empty network namespace, brings its
/// loopback up and creates the (empty) nftables table and chain the faults
/// use. Call it before starting any thread: a namespace belongs to the
/// thread that creates it and to the threads and processes it starts
/// afterwards.
///
/// # Errors
/// [`NetError::Unsupported`] when the process may not create a namespace
/// (not root) or `ip` or `nft` is missing; [`NetError::Command`] when one of
/// them fails.
pub fn enter_private_netns() -> Result<(), NetError> {
    for (tool, package) in [
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("iptables", "iptables"),
    ] {
        let found = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Err(NetError::Unsupported(format!(
                "`{tool}` is not installed (apt-get install {package})"
            )));
        }
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
        NetError::Unsupported(format!(
            "cannot create a network namespace ({e}): the fault test must run as root"
        ))
    })?;
    run("ip", &["link", "set", "lo", "up"], None)?;
    nft(&format!(
        "add table inet {TABLE}\n\
         add chain inet {TABLE} out {{ type filter hook output priority 0; policy accept; }}\n"
    ))
}

/// One rule: drop a share of the peer packets `from` sends to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drop {
    /// The sender.
    pub from: u64,
    /// The receiver.
    pub to: u64,
    /// Percentage of packets dropped, 1 to 100.
    pub percent: u8,
}

/// Replaces the rules in force with `rules` (atomically: one nft
/// transaction). An empty slice heals the network.
///
/// # Errors
/// [`NetError::Command`] if `nft` refuses.
pub fn set_rules(rules: &[Drop]) -> Result<(), NetError> {
    let mut script = format!("flush chain inet {TABLE} out\n");
    for r in rules {
        let (from, to) = (node_ip(r.from), node_ip(r.to));
        let sample = if r.percent >= 100 {
            String::new()
        } else {
            format!("numgen random mod 100 < {} ", r.percent)
        };
        for port in ["dport", "sport"] {
            script.push_str(&format!(
                "add rule inet {TABLE} out ip saddr {from} ip daddr {to} tcp {port} {PEER_PORT} {sample}drop\n"
            ));
        }
    }
    nft(&script)
}

/// Removes every rule.
///
/// # Errors
/// [`NetError::Command`] if `nft` refuses.
pub fn heal() -> Result<(), NetError> {
    set_rules(&[])
}

/// Sends every peer packet (both directions of every peer connection) to
/// NFQUEUE `queue`, where `super::delay::Delayer` holds it. Packets pass
/// untouched while no program is bound (`--queue-bypass`). iptables, not
/// nft: nftables' `queue` expression is not in this kind of kernel, the
/// xtables NFQUEUE target is.
///
/// # Errors
/// [`NetError::Command`] if `iptables` refuses.
pub fn queue_peer_traffic(queue: u16) -> Result<(), NetError> {
    let queue = queue.to_string();
    let port = PEER_PORT.to_string();
    for dir in ["--dport", "--sport"] {
        run(
            "iptables",
            &[
                "-w",
                "-A",
                "OUTPUT",
                "-p",
                "tcp",
                dir,
                &port,
                "-j",
                "NFQUEUE",
                "--queue-num",
                &queue,
                "--queue-bypass",
            ],
            None,
        )?;
    }
    Ok(())
}

/// Removes the rules of [`queue_peer_traffic`] (the namespace's iptables
/// hold no others).
///
/// # Errors
/// [`NetError::Command`] if `iptables` refuses.
pub fn unqueue_peer_traffic() -> Result<(), NetError> {
    run("iptables", &["-w", "-F", "OUTPUT"], None)
}

fn nft(script: &str) -> Result<(), NetError> {
    run("nft", &["-f", "-"], Some(script))
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<(), NetError> {
    let command = format!("{program} {}", args.join(" "));
    let fail = |stderr: String| NetError::Command {
        command: command.clone(),
        stderr,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(fail(format!(
            "{} ({})",
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status
        )))
    }
}
