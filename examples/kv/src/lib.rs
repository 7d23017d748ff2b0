//! `raftkv`: a replicated key-value store on `raft-core`, `raft-wal` and
//! `raft-snap` — etcd's `contrib/raftexample`, in Rust.
#![deny(missing_docs)]

pub mod bench;
pub mod client;
pub mod launcher;
pub mod metrics;
pub mod peer_url;
pub mod transport;
