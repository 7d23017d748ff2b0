//! raft-core: the Raft consensus protocol as a pure state machine.
#![deny(missing_docs)]

mod config;
mod error;
mod log;
mod message;
pub mod quorum;
mod raft;
mod raw_node;
mod ready;
mod status;
mod storage;
pub mod tracker;
mod types;

pub use config::{Config, ConfigError, NO_LIMIT, ReadOnlyOption};
pub use error::{CampaignError, NewError, ProposeError, ReadyError, StepError, TickError};
pub use message::*;
pub use raft::{Proposal, RoleKind};
pub use raw_node::{AdvanceError, RawNode, SnapshotStatus};
pub use ready::{Ready, SoftState};
pub use status::{ProgressStatus, Status};
pub use storage::{InitialState, MemoryStorage, Storage, StorageError};
pub use types::*;
