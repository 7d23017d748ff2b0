//! Read-only inspection of a snapshot directory: what each file is and
//! whether it verifies. Unlike opening a [`Snapshotter`](crate::Snapshotter),
//! it takes no lock and deletes, renames and syncs nothing, so it can look
//! at the directory of a running node or of one that failed.

use std::io;
use std::path::Path;

use raft_core::{LogId, SnapshotMetadata};
use raft_io::Backend;

use crate::error::{ListError, LoadError};
use crate::format;
use crate::snapshotter::{BROKEN_SUFFIX, TMP_SUFFIX, open_reader};
use crate::stream::DEFAULT_CHUNK_LEN;

/// One file of a snapshot directory.
#[derive(Debug)]
pub struct FileReport {
    /// Its name in the directory.
    pub name: String,
    /// What it is.
    pub kind: FileKind,
}

/// What a file of a snapshot directory is.
#[derive(Debug)]
#[non_exhaustive]
pub enum FileKind {
    /// A snapshot whose header, name, length and checksum verify.
    Valid {
        /// What it covers.
        metadata: SnapshotMetadata,
        /// The length of its application data.
        data_len: u64,
    },
    /// A snapshot file that does not verify: loading skips it (and renames
    /// it aside).
    Damaged {
        /// Why.
        error: LoadError,
    },
    /// A file of a save that did not finish: opening the directory deletes
    /// it.
    Temporary,
    /// A snapshot renamed aside after it failed to verify.
    Broken,
    /// Anything else (the directory lock, say).
    Other,
}

impl FileKind {
    /// Whether this is a snapshot that verifies.
    pub fn is_valid(&self) -> bool {
        matches!(self, FileKind::Valid { .. })
    }
}

/// Every file in `dir` on `backend`: snapshots first, newest (highest
/// index, then term) first, each read to its end and verified; then the
/// other files by name.
///
/// # Errors
/// [`ListError`] if the directory cannot be listed. A file that cannot be
/// read is reported as [`FileKind::Damaged`], not as an error.
pub fn inspect_dir(backend: &dyn Backend, dir: &Path) -> Result<Vec<FileReport>, ListError> {
    let mut names = backend.list_dir(dir).map_err(|source| ListError {
        dir: dir.to_path_buf(),
        source,
    })?;
    let id_of =
        |name: &str| format::parse_file_name(name).map(|(term, index)| LogId::new(term, index));
    // Snapshots newest first, then the other files by name.
    names.sort_by(|a, b| match (id_of(a), id_of(b)) {
        (Some(x), Some(y)) => (y.index, y.term).cmp(&(x.index, x.term)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    });
    let reports = names
        .into_iter()
        .map(|name| {
            let kind = match id_of(&name) {
                Some(id) => verify(backend, dir, &name, id),
                None if name.ends_with(TMP_SUFFIX) => FileKind::Temporary,
                None if name.ends_with(BROKEN_SUFFIX) => FileKind::Broken,
                None => FileKind::Other,
            };
            FileReport { name, kind }
        })
        .collect();
    Ok(reports)
}

/// Reads the snapshot file `name` (named for `id`) to its end.
fn verify(backend: &dyn Backend, dir: &Path, name: &str, id: LogId) -> FileKind {
    let result = open_reader(backend, dir.join(name), id, DEFAULT_CHUNK_LEN).and_then(|mut r| {
        while r.next_chunk()?.is_some() {}
        Ok((r.metadata().clone(), r.data_len()))
    });
    match result {
        Ok((metadata, data_len)) => FileKind::Valid { metadata, data_len },
        Err(error) => FileKind::Damaged { error },
    }
}

/// Whether `e` is a missing directory: a node that never took a snapshot
/// may not have one.
pub fn is_missing_dir(e: &ListError) -> bool {
    e.source.kind() == io::ErrorKind::NotFound
}

#[cfg(test)]
mod tests {
    use raft_core::{ConfState, Index, NodeId, Term};
    use raft_io::FileBackend;

    use super::*;
    use crate::Snapshotter;

    fn metadata(index: u64, term: u64) -> SnapshotMetadata {
        let voters = [1, 2, 3].map(|id| NodeId::new(id).expect("non-zero"));
        SnapshotMetadata {
            index: Index(index),
            term: Term(term),
            conf_state: ConfState::with_voters(voters),
        }
    }

    #[test]
    fn a_directory_is_reported_newest_first_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let snap_dir = dir.path().join("snap");
        let snapshotter = Snapshotter::new(&snap_dir).unwrap();
        snapshotter.save(&metadata(10, 1), b"old").unwrap();
        let newest = snapshotter.save(&metadata(20, 2), b"new").unwrap();
        let damaged = snapshotter.save(&metadata(15, 2), b"damaged").unwrap();
        drop(snapshotter);
        let mut bytes = std::fs::read(&damaged).unwrap();
        let last = bytes.len() - 5;
        bytes[last] ^= 0xff;
        std::fs::write(&damaged, bytes).unwrap();
        std::fs::write(snap_dir.join("x.snap.0.tmp"), b"partial").unwrap();
        let before: Vec<_> = std::fs::read_dir(&snap_dir).unwrap().collect();

        let reports = inspect_dir(&FileBackend, &snap_dir).unwrap();
        let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names[0], newest.file_name().unwrap().to_str().unwrap());
        assert!(
            matches!(&reports[0].kind, FileKind::Valid { data_len: 3, metadata } if metadata.index == Index(20))
        );
        assert!(
            matches!(reports[1].kind, FileKind::Damaged { .. }),
            "{:?}",
            reports[1]
        );
        assert!(reports[2].kind.is_valid());
        assert!(
            reports
                .iter()
                .any(|r| matches!(r.kind, FileKind::Temporary))
        );
        let after: Vec<_> = std::fs::read_dir(&snap_dir).unwrap().collect();
        assert_eq!(before.len(), after.len(), "nothing deleted or renamed");
    }

    #[test]
    fn a_missing_directory_is_an_error_that_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let e = inspect_dir(&FileBackend, &dir.path().join("none")).unwrap_err();
        assert!(is_missing_dir(&e));
    }
}
