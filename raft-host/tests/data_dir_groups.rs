//! `DataDir::open_groups`: further groups over one shared WAL, each with
//! its own snapshots, recovered as their own logs.

use bytes::Bytes;
use raft_core::{
    ConfChange, ConfChangeKind, Entry, FoundingLog, GroupId, HardState, Index, NodeId,
    PersistBatch, Storage, Term,
};
use raft_host::{DataDir, GROUPS_DIR, Membership, Peer, SHARED_WAL_DIR};
use raft_storage::{DiskStorage, StorageOptions};

fn nid(n: u64) -> NodeId {
    NodeId::new(n).expect("non-zero")
}

fn founders() -> Membership {
    Membership::Found(
        (1..=3)
            .map(|n| Peer::new(nid(n), format!("http://127.0.0.1:{}", 7000 + n)))
            .collect(),
    )
}

fn founding() -> FoundingLog {
    FoundingLog::new((1..=3).map(|n| ConfChange {
        kind: ConfChangeKind::AddNode,
        node_id: nid(n),
        context: Bytes::new(),
    }))
    .expect("founders")
}

/// Appends `count` entries of term 1 after the storage's last one.
fn append(storage: &DiskStorage, count: u64) {
    let last = storage.last_index().expect("memory").get();
    let entries: Vec<Entry> = (last + 1..=last + count)
        .map(|i| Entry::new(Term(1), Index(i), Bytes::from(vec![i as u8; 8])))
        .collect();
    let hs = HardState {
        term: Term(1),
        vote: Some(nid(1)),
        commit: Index(last),
    };
    let batch = PersistBatch {
        entries,
        hard_state: Some(hs),
        must_sync: true,
        ..PersistBatch::new(raft_core::ReadyNumber::FIRST)
    };
    storage.persist_batch(&batch).expect("persist");
}

fn groups(ids: &[u64], membership: &Membership) -> Vec<(GroupId, Membership)> {
    ids.iter()
        .map(|&g| (GroupId(g), membership.clone()))
        .collect()
}

fn open(dir: &std::path::Path, ids: &[u64]) -> Vec<DiskStorage> {
    let membership = founders();
    let (data, _first) =
        DataDir::open(dir, nid(1), &membership, StorageOptions::new()).expect("open");
    let groups = groups(ids, &membership);
    let refs: Vec<_> = groups.iter().map(|(g, m)| (*g, m)).collect();
    data.open_groups(&refs, StorageOptions::new())
        .expect("open groups")
}

#[test]
fn further_groups_share_one_wal_and_recover_their_own_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storages = open(dir.path(), &[2, 3, 4]);
    for (n, storage) in storages.iter().enumerate() {
        storage.bootstrap(&founding()).expect("bootstrap");
        append(storage, 10 * (n as u64 + 1));
    }
    let fsyncs = storages[0].wal_stats().fsyncs;
    assert_eq!(
        storages[2].wal_stats().fsyncs,
        fsyncs,
        "the groups count the same log"
    );
    drop(storages);

    let groups_dir = dir.path().join(GROUPS_DIR);
    assert!(groups_dir.join(SHARED_WAL_DIR).is_dir());
    for g in 2..=4 {
        let group_dir = groups_dir.join(g.to_string());
        assert!(
            group_dir.join("snap").is_dir(),
            "group {g} keeps its snapshots"
        );
        assert!(
            !group_dir.join("wal").exists(),
            "group {g} has no WAL of its own"
        );
    }
    let reopened = open(dir.path(), &[2, 3, 4]);
    let lasts: Vec<u64> = reopened
        .iter()
        .map(|s| s.last_index().expect("memory").get())
        .collect();
    // Three founding entries each, then 10, 20 and 30.
    assert_eq!(lasts, [13, 23, 33]);
    assert_eq!(reopened[1].hard_state().commit, Index(3), "as persisted");
}

#[test]
fn a_group_with_a_wal_of_its_own_keeps_it_beside_the_shared_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let membership = founders();
    {
        let (data, _first) =
            DataDir::open(dir.path(), nid(1), &membership, StorageOptions::new()).expect("open");
        let own = data
            .open_group(GroupId(2), &membership, StorageOptions::new())
            .expect("own WAL");
        own.bootstrap(&founding()).expect("bootstrap");
        append(&own, 5);
    }
    let storages = open(dir.path(), &[2, 3]);
    assert_eq!(storages[0].last_index().expect("memory"), Index(8));
    assert_eq!(storages[1].last_index().expect("memory"), Index(0));
    storages[1].bootstrap(&founding()).expect("bootstrap");
    append(&storages[1], 2);
    drop(storages);
    let reopened = open(dir.path(), &[2, 3]);
    assert_eq!(reopened[0].last_index().expect("memory"), Index(8));
    assert_eq!(reopened[1].last_index().expect("memory"), Index(5));
    assert!(dir.path().join(GROUPS_DIR).join("2").join("wal").is_dir());
    assert!(!dir.path().join(GROUPS_DIR).join("3").join("wal").exists());
}

fn open_sharded(dir: &std::path::Path, ids: &[u64]) -> Vec<DiskStorage> {
    let membership = founders();
    let groups = groups(ids, &membership);
    let refs: Vec<_> = groups.iter().map(|(g, m)| (*g, m)).collect();
    let (_, storages) =
        DataDir::open_sharded(dir, nid(1), &refs, StorageOptions::new()).expect("open sharded");
    storages
}

#[test]
fn a_new_directory_of_many_groups_keeps_every_group_in_the_shared_wal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storages = open_sharded(dir.path(), &[1, 2, 3]);
    for (n, storage) in storages.iter().enumerate() {
        storage.bootstrap(&founding()).expect("bootstrap");
        append(storage, n as u64 + 1);
    }
    drop(storages);
    assert!(
        !dir.path().join("wal").exists(),
        "no WAL of the first group's own"
    );
    assert!(dir.path().join(GROUPS_DIR).join("1").join("snap").is_dir());
    assert!(dir.path().join(raft_host::IDENTITY_FILE).is_file());
    let lasts: Vec<u64> = open_sharded(dir.path(), &[1, 2, 3])
        .iter()
        .map(|s| s.last_index().expect("memory").get())
        .collect();
    assert_eq!(lasts, [4, 5, 6]);
    // Another node's id is refused as DataDir::open refuses it.
    let membership = founders();
    let e = DataDir::open_sharded(
        dir.path(),
        nid(2),
        &[(GroupId(1), &membership), (GroupId(2), &membership)],
        StorageOptions::new(),
    )
    .unwrap_err();
    assert!(
        matches!(e, raft_host::DataDirError::WrongNode { .. }),
        "{e}"
    );
}

#[test]
fn a_directory_whose_first_group_has_its_own_wal_keeps_it_when_opened_sharded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storages = open(dir.path(), &[2]);
    storages[0].bootstrap(&founding()).expect("bootstrap");
    drop(storages);
    // open() left group 1 in <dir>/wal: it stays there.
    let reopened = open_sharded(dir.path(), &[1, 2]);
    assert_eq!(reopened[1].last_index().expect("memory"), Index(3));
    assert!(dir.path().join("wal").is_dir());
    assert!(!dir.path().join(GROUPS_DIR).join("1").exists());
    assert!(matches!(
        DataDir::open_sharded(dir.path(), nid(1), &[], StorageOptions::new()),
        Err(raft_host::DataDirError::NoGroups)
    ));
}

#[test]
fn groups_that_all_keep_wals_of_their_own_open_no_shared_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let membership = founders();
    let (data, _first) =
        DataDir::open(dir.path(), nid(1), &membership, StorageOptions::new()).expect("open");
    let own = data
        .open_group(GroupId(2), &membership, StorageOptions::new())
        .expect("own WAL");
    own.bootstrap(&founding()).expect("bootstrap");
    drop(own);
    let storages = data
        .open_groups(&[(GroupId(2), &membership)], StorageOptions::new())
        .expect("open groups");
    assert_eq!(storages[0].last_index().expect("memory"), Index(3));
    assert!(
        !dir.path().join(GROUPS_DIR).join(SHARED_WAL_DIR).exists(),
        "no shared WAL (nor its segment) for groups that do not use it"
    );
}
