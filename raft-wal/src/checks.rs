//! The checks a save passes before anything is written, shared by the
//! one-group and the shared log.

use raft_core::{Entry, HardState, Index};

use crate::error::SaveError;
use crate::format;

/// The end of one group's log, as the writer knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LogTip {
    /// The last index (or the newest marker's, if later).
    pub(crate) last_index: Index,
    /// The saved hard state's commit index.
    pub(crate) commit: Index,
    /// The newest snapshot marker's index, 0 without one.
    pub(crate) snapshot: Index,
}

/// Validates a save of `entries` and `hard_state` onto the log ending at
/// `tip`; returns the last index after it.
pub(crate) fn check_save(
    tip: LogTip,
    hard_state: Option<&HardState>,
    entries: &[Entry],
    max_record_bytes: u32,
) -> Result<Index, SaveError> {
    let new_last = match entries.last() {
        Some(last) => {
            check_entries(tip, entries, max_record_bytes)?;
            last.index
        }
        None => tip.last_index,
    };
    if let Some(hs) = hard_state
        && hs.commit > new_last
    {
        return Err(SaveError::CommitBeyondLog {
            commit: hs.commit,
            last_index: new_last,
        });
    }
    Ok(new_last)
}

/// The entries continue the log (or replace an uncommitted suffix of it
/// that no snapshot covers), follow each other, and fit the format.
fn check_entries(tip: LogTip, entries: &[Entry], max_record_bytes: u32) -> Result<(), SaveError> {
    let first = entries[0].index;
    let expected = tip.last_index.next();
    if first > expected {
        return Err(SaveError::Gap {
            expected,
            found: first,
        });
    }
    if first <= tip.snapshot {
        return Err(SaveError::BelowSnapshot {
            index: first,
            snapshot: tip.snapshot,
        });
    }
    if first <= tip.commit {
        return Err(SaveError::TruncatesCommitted {
            index: first,
            commit: tip.commit,
        });
    }
    for pair in entries.windows(2) {
        if pair[1].index != pair[0].index.next() {
            return Err(SaveError::NotContiguous {
                previous: pair[0].index,
                found: pair[1].index,
            });
        }
    }
    for e in entries {
        if !format::kind_is_storable(e.kind) {
            return Err(SaveError::UnsupportedEntryKind { index: e.index });
        }
        let bytes = format::entry_payload_bytes(e) as u64;
        if bytes > u64::from(max_record_bytes) {
            return Err(SaveError::RecordTooLarge {
                bytes,
                max: max_record_bytes,
            });
        }
    }
    Ok(())
}
