//! Tools to test Raft, and your integration with it (feature `testkit`).
//!
//! - [`conformance`]: a suite your own [`Storage`](crate::Storage)
//!   implementation can run to check it keeps the contract raft-core relies
//!   on.
//! - [`sim`]: a deterministic, seeded cluster simulator with a faulty
//!   network, crashes and restarts, and safety checkers run after every step.
//! - [`interaction`]: the transcript (datadriven) test environment: scenario
//!   files of commands whose output is checked in and reviewed as diffs.

pub mod check;
pub mod conformance;
pub mod describe;
pub mod interaction;
pub mod sim;
