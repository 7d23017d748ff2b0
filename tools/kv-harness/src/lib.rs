//! Everything that runs around a `raftkv` cluster rather than in it: the
//! client that talks to its nodes, the load generator, the launcher of a
//! local cluster, the Jepsen-style fault test and the certificates for
//! mutual TLS, and the comparison with etcd. The `raftkv` binary's
//! subcommands `bench`, `bench-vs`, `cluster`, `faults` and `certs` are
//! thin dispatchers to this crate.
//!
//! - [`Command`]: those subcommands, for the binary to embed.
//! - [`client`]: an HTTP/1.1 client of a node's client API, whose errors
//!   say whether a write's outcome is known.
//! - [`bench`](mod@bench): `raftkv bench`, a closed-loop load generator
//!   of raftkv or etcd ([`etcd`]: etcd's v3 JSON gateway).
//! - [`launcher`]: `raftkv cluster`, a local cluster of `raftkv`
//!   processes, supervised.
//! - [`faults`]: `raftkv faults`, a cluster under faults in a private
//!   network namespace, its history checked for linearizability
//!   ([`faults::checker`]).
//! - [`certs`]: `raftkv certs`, a CA and node and client certificates.
//! - [`versus`]: `raftkv bench-vs`, raftkv side by side with etcd (or two
//!   raftkv configurations), both driven by [`bench`](mod@bench).
//!
//! The harness never links the server. It speaks to nodes over their HTTP
//! API and runs them as processes of the `raftkv` executable: the launcher
//! and the fault test start [`std::env::current_exe`] (the fault test
//! unless `--bin` says otherwise), which is `raftkv` when they run as its
//! subcommands. So `raftkv` depends on this crate and never the other way
//! round.
#![deny(missing_docs)]

pub mod bench;
pub mod certs;
pub mod client;
mod command;
pub mod etcd;
pub mod faults;
pub mod launcher;
pub mod versus;

pub use command::Command;
