//! `raftkv`: a replicated key-value store on `raft-core` and `raft-storage`
//! — etcd's `contrib/raftexample`, in Rust. See the crate's
//! README for how to run it; [`http`] documents the client API.
#![deny(missing_docs)]

pub mod cli;
pub mod http;
pub mod metrics;
pub mod node;
pub mod store;
