//! Everything that runs around a `raftkv` cluster rather than in it: a
//! client of the nodes' HTTP API ([`client`]), the load generator behind
//! `raftkv bench` ([`bench`](mod@bench)), the local-cluster launcher
//! behind `raftkv cluster` ([`launcher`]) and the certificates of
//! `raftkv certs` ([`certs`]).
//!
//! The `raftkv` binary dispatches those subcommands here. The harness
//! never links the server: it speaks to nodes over their client API and
//! runs them as processes of the `raftkv` executable (the launcher runs
//! `std::env::current_exe()`, which is `raftkv` when called from its
//! `cluster` subcommand), so `raftkv` depends on this crate and not the
//! other way round.
#![deny(missing_docs)]

pub mod bench;
pub mod certs;
pub mod client;
pub mod launcher;
