//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use bytes::Bytes;
use raft_core::{Entry, HardState, Index, NodeId, Term};
use raft_io::{Backend, SimBackend};
use raft_wal::format::{self, Record};
use raft_wal::{Recovered, Wal, WalOptions};

/// Where the simulated tests keep their WAL.
pub const DIR: &str = "/wal";

pub fn dir() -> PathBuf {
    PathBuf::from(DIR)
}

/// Small segments so a handful of entries rotate.
pub fn sim_options(sim: &SimBackend) -> WalOptions {
    WalOptions::new()
        .backend(sim.shared())
        .segment_size_bytes(1024)
        .preallocate(true)
}

/// An entry whose payload is a function of (index, term, len), so a
/// recovered entry can be checked for invention.
pub fn entry(index: u64, term: u64, len: usize) -> Entry {
    let pattern = format!("{index}/{term};");
    let data: Vec<u8> = pattern.bytes().cycle().take(len).collect();
    Entry::new(Term(term), Index(index), Bytes::from(data))
}

pub fn entries(range: std::ops::RangeInclusive<u64>, term: u64, len: usize) -> Vec<Entry> {
    range.map(|i| entry(i, term, len)).collect()
}

pub fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term: Term(term),
        vote: NodeId::new(vote),
        commit: Index(commit),
    }
}

pub fn open(sim: &SimBackend) -> (Wal, Recovered) {
    Wal::open(DIR, sim_options(sim)).expect("open")
}

/// The segment files of the WAL directory, oldest first.
pub fn segment_paths(backend: &dyn Backend) -> Vec<PathBuf> {
    backend
        .list_dir(Path::new(DIR))
        .expect("list")
        .into_iter()
        .filter(|n| n.ends_with(".wal"))
        .map(|n| dir().join(n))
        .collect()
}

/// The segment id encoded in a segment path.
pub fn segment_id(path: &Path) -> u64 {
    let name = path.file_name().and_then(|n| n.to_str()).expect("name");
    format::parse_segment_file_name(name)
        .expect("segment name")
        .0
}

/// The frames of a segment up to the first damage: (offset, end, record).
pub fn frames(bytes: &[u8], segment_id: u64) -> Vec<(usize, usize, Record)> {
    let bytes = Bytes::copy_from_slice(bytes);
    let mut at = format::SEGMENT_HEADER_BYTES;
    let mut out = Vec::new();
    while let Ok((r, next)) = format::decode_frame(&bytes, segment_id, at, 1 << 20) {
        out.push((at, next, r));
        at = next;
    }
    out
}

/// The byte ranges of the complete batches of a segment.
pub fn batch_ranges(bytes: &[u8], segment_id: u64) -> Vec<(usize, usize)> {
    frames(bytes, segment_id)
        .into_iter()
        .filter_map(|(_, end, r)| match r {
            Record::Commit(c) => Some((c.batch_start as usize, end)),
            _ => None,
        })
        .collect()
}

/// Replaces a file's contents durably.
pub fn overwrite(backend: &dyn Backend, path: &Path, bytes: &[u8]) {
    let f = backend.create(path).expect("create");
    f.write_at(0, bytes).expect("write");
    f.sync_data().expect("sync");
    backend
        .sync_dir(path.parent().expect("parent"))
        .expect("sync dir");
}

/// A copy of a simulated file system's current (volatile) files.
pub fn snapshot_files(sim: &SimBackend) -> Vec<(PathBuf, Vec<u8>)> {
    let names = sim.list_dir(Path::new(DIR)).expect("list");
    names
        .into_iter()
        .map(|n| {
            let p = dir().join(n);
            let b = sim.read(&p).expect("read");
            (p, b)
        })
        .collect()
}

/// A fresh simulated file system holding exactly `files`, all durable.
pub fn restore_files(files: &[(PathBuf, Vec<u8>)]) -> SimBackend {
    let sim = SimBackend::new();
    sim.create_dir_all(&dir()).expect("mkdir");
    for (p, b) in files {
        overwrite(&sim, p, b);
    }
    sim
}
