//! Recovery time of a large log on the real file system. Ignored by default:
//! it writes 1 GiB. Run in release:
//!
//! ```text
//! cargo test --release -p raft-wal --test big_recovery -- --ignored --nocapture
//! ```
//!
//! `RAFT_WAL_RECOVERY_MIB` changes the size (default 1024).

use std::time::Instant;

use bytes::Bytes;
use raft_core::{Entry, Index, Term};
use raft_wal::{Wal, WalOptions};

#[test]
#[ignore = "writes 1 GiB: run in release with --ignored --nocapture"]
fn recovery_of_a_one_gib_log_is_timed() {
    let mib: u64 = std::env::var("RAFT_WAL_RECOVERY_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let entry_bytes = 4096u64;
    let batch = 1024u64;
    let total_entries = mib * (1 << 20) / entry_bytes;
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = Bytes::from(vec![0x5Au8; entry_bytes as usize]);
    let write_start = Instant::now();
    {
        let (wal, _) = Wal::open(tmp.path(), WalOptions::new()).expect("open");
        let mut next = 1;
        while next <= total_entries {
            let entries: Vec<Entry> = (next..next + batch)
                .map(|i| Entry::new(Term(1), Index(i), data.clone()))
                .collect();
            wal.save(None, &entries, false).expect("save");
            next += batch;
        }
        wal.sync().expect("sync");
    }
    let write_secs = write_start.elapsed().as_secs_f64();
    let start = Instant::now();
    let (wal, recovered) = Wal::open(tmp.path(), WalOptions::new()).expect("reopen");
    let secs = start.elapsed().as_secs_f64();
    let segments = wal.segment_ids().len();
    assert_eq!(
        recovered.entries.len() as u64,
        total_entries.div_ceil(batch) * batch
    );
    eprintln!(
        "recovery of {mib} MiB ({} entries of {entry_bytes} B, {segments} segments): {secs:.2} s \
         ({:.0} MiB/s); writing it took {write_secs:.2} s",
        recovered.entries.len(),
        mib as f64 / secs
    );
    drop(recovered);
    drop(wal);
    drop(tmp);
}
