//! The `raftkv` binary.
fn main() {}
