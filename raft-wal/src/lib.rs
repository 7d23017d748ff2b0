//! A crash-safe write-ahead log for one Raft node.
#![deny(missing_docs)]

pub mod io;
