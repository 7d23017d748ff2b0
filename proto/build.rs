//! Generates the Rust types of `raft.proto`.
//!
//! The schema is compiled by `protox`, a pure-Rust protobuf compiler, and the
//! resulting descriptors are handed to `prost-build`: building this crate
//! never needs a system `protoc`.

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    const SCHEMA: &str = "raft.proto";
    println!("cargo:rerun-if-changed={SCHEMA}");

    let descriptors = protox::compile([SCHEMA], ["."])?;
    prost_build::Config::new()
        // Every `bytes` field becomes `bytes::Bytes`, so decoding from a
        // `Bytes` buffer shares it instead of copying payloads.
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
