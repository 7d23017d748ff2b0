//! `raftkv cluster`: starts a local cluster of processes (to be implemented).
