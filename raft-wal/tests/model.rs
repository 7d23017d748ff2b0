//! Property tests: the WAL against a simple in-memory model, and arbitrary
//! bytes against the decoder and recovery (no panic, only typed errors).

mod common;

use std::path::Path;

use bytes::Bytes;
use common::*;
use proptest::prelude::*;
use raft_core::{Entry, HardState, Index, LogId, Term};
use raft_io::{Backend, SimBackend};
use raft_wal::format::{self, SegmentHeader};
use raft_wal::{SnapshotMarker, Wal};

#[derive(Debug, Clone)]
enum Op {
    /// Append `count` entries starting `back` below the next index
    /// (a conflict when `back > 0`), in a new term if so.
    Append {
        back: u64,
        count: u64,
        len: usize,
        sync: bool,
    },
    /// Advance the commit index by up to `by`.
    Commit { by: u64 },
    /// Snapshot at the commit index.
    Marker,
    /// Release up to the newest snapshot.
    Release,
    /// Close and recover.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4u64, 0..6u64, 0..300usize, any::<bool>())
            .prop_map(|(back, count, len, sync)| Op::Append { back, count, len, sync }),
        2 => (0..8u64).prop_map(|by| Op::Commit { by }),
        1 => Just(Op::Marker),
        1 => Just(Op::Release),
        1 => Just(Op::Reopen),
    ]
}

/// The model: a log from index `base`, a hard state and a snapshot.
#[derive(Debug)]
struct Model {
    base: u64,
    log: Vec<Entry>,
    hs: HardState,
    snapshot: Option<LogId>,
}

impl Model {
    fn last(&self) -> u64 {
        self.base + self.log.len() as u64 - 1
    }

    fn floor(&self) -> u64 {
        let snap = self.snapshot.map_or(0, |s| s.index.get());
        snap.max(self.hs.commit.get())
    }

    fn term_at(&self, index: u64) -> u64 {
        if index < self.base {
            return self.snapshot.map_or(0, |s| s.term.get());
        }
        self.log[(index - self.base) as usize].term.get()
    }
}

/// 64 cases per property by default; `PROPTEST_CASES` for longer runs.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
}

fn check(wal: &Wal, model: &Model) {
    assert_eq!(wal.last_index(), Index(model.last()));
    assert_eq!(wal.hard_state(), model.hs);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn wal_matches_an_in_memory_model(ops in prop::collection::vec(op(), 1..40)) {
        let sim = SimBackend::new();
        let (mut wal, _) = open(&sim);
        let mut model = Model { base: 1, log: Vec::new(), hs: HardState::default(), snapshot: None };
        for op in ops {
            match op {
                Op::Append { back, count, len, sync } => {
                    let first = (model.last() + 1).saturating_sub(back).max(model.floor() + 1);
                    let term = model.hs.term.get().max(1) + u64::from(first <= model.last());
                    let batch = entries(first..=first + count.max(1) - 1, term, len);
                    let hs = HardState { term: Term(term), ..model.hs };
                    wal.save(Some(&hs), &batch, sync).expect("append");
                    model.log.truncate((first - model.base) as usize);
                    model.log.extend(batch);
                    model.hs = hs;
                }
                Op::Commit { by } => {
                    let commit = (model.hs.commit.get() + by).min(model.last());
                    let hs = HardState { commit: Index(commit), ..model.hs };
                    wal.save(Some(&hs), &[], true).expect("commit");
                    model.hs = hs;
                }
                Op::Marker => {
                    let index = model.hs.commit.get();
                    if index > model.snapshot.map_or(0, |s| s.index.get()) {
                        let id = LogId::new(Term(model.term_at(index)), Index(index));
                        let marker = SnapshotMarker { index: id.index, term: id.term, conf_state: Default::default() };
                        wal.save_snapshot_marker(&marker).expect("marker");
                        model.snapshot = Some(id);
                    }
                }
                Op::Release => {
                    let to = model.snapshot.map_or(Index(0), |s| s.index);
                    wal.release_to(to).expect("release");
                }
                Op::Reopen => {
                    drop(wal);
                    let opts = sim_options(&sim).snapshot(model.snapshot);
                    let (w, r) = Wal::open(DIR, opts).expect("reopen");
                    wal = w;
                    let from = model.snapshot.map_or(0, |s| s.index.get());
                    let want: Vec<Entry> =
                        model.log.iter().filter(|e| e.index.get() > from).cloned().collect();
                    prop_assert_eq!(r.entries, want);
                    prop_assert_eq!(r.hard_state, model.hs);
                    prop_assert_eq!(r.truncated_tail, None);
                }
            }
            check(&wal, &model);
        }
    }

    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        segment_id in any::<u64>(),
        max in 0..u32::MAX,
    ) {
        let bytes = Bytes::from(bytes);
        let _ = format::decode_segment_header(&bytes);
        for at in (0..bytes.len() + 8).step_by(format::FRAME_ALIGN_BYTES) {
            let _ = format::decode_frame(&bytes, segment_id, at, max);
        }
        let _ = format::later_commit_proves_durable(&bytes, segment_id, 0, 0);
    }

    #[test]
    fn recovery_of_arbitrary_segment_bytes_returns_a_typed_result(
        body in prop::collection::vec(any::<u8>(), 0..1024),
        valid_header in any::<bool>(),
    ) {
        let sim = SimBackend::new();
        sim.create_dir_all(&dir()).expect("mkdir");
        let mut bytes = Vec::new();
        if valid_header {
            let header = SegmentHeader { segment_id: 1, first_index: Index(1) };
            bytes.extend_from_slice(&format::encode_segment_header(header));
        }
        bytes.extend_from_slice(&body);
        overwrite(&sim, &dir().join(format::segment_file_name(1, Index(1))), &bytes);
        if let Ok((_, r)) = Wal::open(DIR, sim_options(&sim)) {
            for pair in r.entries.windows(2) {
                prop_assert_eq!(pair[1].index, pair[0].index.next());
            }
        }
    }

    #[test]
    fn recovery_of_a_randomly_damaged_log_returns_a_typed_result(
        edits in prop::collection::vec((any::<u16>(), any::<u8>()), 1..8),
    ) {
        let sim = SimBackend::new();
        let (wal, _) = open(&sim);
        for i in 1..=10u64 {
            wal.save(Some(&hard_state(1, 1, i - 1)), &entries(i..=i, 1, 60), true).expect("save");
        }
        drop(wal);
        let segments = segment_paths(&sim);
        for (at, value) in edits {
            let path = &segments[at as usize % segments.len()];
            let mut bytes = sim.read(path).expect("read");
            let pos = at as usize % bytes.len();
            bytes[pos] = value;
            overwrite(&sim, path, &bytes);
        }
        match Wal::open(DIR, sim_options(&sim)) {
            Ok((_, r)) => {
                // Whatever survives is a prefix of what was written.
                prop_assert_eq!(&r.entries[..], &entries(1..=r.entries.len() as u64, 1, 60)[..]);
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        let _ = raft_wal::inspect::verify(&sim, Path::new(DIR), 1 << 20);
    }
}
