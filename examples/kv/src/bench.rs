//! `raftkv bench`: a load generator (to be implemented).
