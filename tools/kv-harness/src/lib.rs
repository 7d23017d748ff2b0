//! Everything that runs around a `raftkv` cluster rather than in it: a
//! client of the nodes' HTTP API ([`client`]) and the load generator
//! behind `raftkv bench` ([`bench`](mod@bench)).
//!
//! The `raftkv` binary dispatches those subcommands here. The harness
//! never links the server: it speaks to nodes over their client API, so
//! `raftkv` depends on this crate and not the other way round.
#![deny(missing_docs)]

pub mod bench;
pub mod client;
