//! raft-core (work in progress).
#![deny(missing_docs)]

mod message;
mod storage;
mod types;

pub use message::*;
pub use storage::{InitialState, MemoryStorage, Storage, StorageError};
pub use types::*;
