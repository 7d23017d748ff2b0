//! Regression tests for bugs found while reviewing the transcripts in
//! `raft-core/testdata/`.

mod support;

use raft_core::{ProgressState, RoleKind};
use support::{Cluster, id};

/// `heartbeat_resp_recovers_from_probing`: a follower in probe state whose
/// probe is acknowledged at the index the leader already knew it matched
/// must return to replicate.
#[test]
fn probe_acknowledged_at_known_match_resumes_replication() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.elect(1);
    let pr = |c: &Cluster| c.status(1).progress.expect("leader")[&id(2)];
    assert_eq!(pr(&c).state, ProgressState::Replicate);
    let matched = pr(&c).matched;

    // Nothing is lost; the leader merely believes 2 is unreachable.
    c.node(1).raw.report_unreachable(id(2));
    assert_eq!(pr(&c).state, ProgressState::Probe);

    // The heartbeat response triggers a probe at the matched index, which
    // 2 acknowledges with that same index.
    c.tick(1, 1);
    c.stabilize();
    assert_eq!(pr(&c).matched, matched);
    assert_eq!(
        pr(&c).state,
        ProgressState::Replicate,
        "acknowledged probe must resume replication"
    );

    // Replication streams again: two proposals go out without waiting for
    // a heartbeat in between.
    c.propose(1, b"a");
    c.propose(1, b"b");
    c.stabilize();
    assert_eq!(c.role(1), RoleKind::Leader);
    assert_eq!(c.applied_data(2).len(), 2);
    assert_eq!(pr(&c).state, ProgressState::Replicate);
}

/// `read_index_safe`: a read whose own heartbeat round was lost (the leader
/// was briefly partitioned) is confirmed by the next regular heartbeat
/// round, not left waiting for another read.
#[test]
fn pending_read_is_confirmed_by_later_heartbeats() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    c.elect(1);
    c.isolate(1);
    c.node(1).raw.read_index(&b"ctx"[..]).expect("leader read");
    c.stabilize();
    assert!(c.node(1).read_states.is_empty(), "no quorum, no answer");
    c.heal();
    c.tick(1, 1);
    c.stabilize();
    let answered: Vec<_> = c
        .node(1)
        .read_states
        .iter()
        .map(|r| r.context.clone())
        .collect();
    assert_eq!(answered, vec![bytes::Bytes::from_static(b"ctx")]);
}
