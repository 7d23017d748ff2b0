//! The host over the in-process network: proposals, reads, membership,
//! leadership, restarts and snapshots, each asserting outcomes (which
//! member leads is up to the election; nothing here depends on timing).

mod support;

use std::sync::atomic::Ordering;

use raft_host::{
    ForgetLeaderError, MembershipChange, MembershipError, ProposeError, RequestSnapshotError,
    StopReason,
};
use support::{Cluster, PATIENCE, add, addr, nid};

/// A member of the three founders other than `leader`.
fn other_than(leader: raft_core::NodeId) -> raft_core::NodeId {
    [nid(1), nid(2), nid(3)]
        .into_iter()
        .find(|id| *id != leader)
        .expect("three founders")
}

async fn patient<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, f)
        .await
        .expect("done within the test's patience")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_return_their_outputs_and_every_member_applies_them() {
    let c = Cluster::founded(3);
    let leader = patient(c.leader()).await;
    let h = c.handle(leader).clone();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let h = h.clone();
        tasks.spawn(async move { h.propose(add(2)).await });
    }
    let mut outputs = Vec::new();
    while let Some(r) = tasks.join_next().await {
        outputs.push(r.expect("task").expect("proposal applied"));
    }
    outputs.sort_unstable();
    let expected: Vec<u64> = (1..=50).map(|i| i * 2).collect();
    assert_eq!(outputs, expected, "each proposal sees the sum after itself");
    for id in [nid(1), nid(2), nid(3)] {
        let total = patient(c.handle(id).read(|s| s.total)).await.expect("read");
        assert_eq!(total, 100, "linearizable read on {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_on_a_follower_is_forwarded_and_answered_there() {
    let c = Cluster::founded(3);
    patient(c.propose(1)).await;
    let leader = patient(c.leader()).await;
    let follower = other_than(leader);
    let out = patient(c.handle(follower).propose(add(4))).await;
    assert_eq!(out.expect("forwarded and applied"), 5);
    match c.handle(follower).propose(Vec::new()).await {
        Err(ProposeError::EmptyCommand) => {}
        other => panic!("an empty command: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_forwarding_a_follower_refuses_a_proposal_and_names_the_leader() {
    let c = Cluster::founded_with(3, |o| o.forward_proposals = false);
    let leader = patient(c.leader()).await;
    let follower = other_than(leader);
    match c.handle(follower).propose(add(1)).await {
        Err(ProposeError::NotLeader { leader: Some(l) }) => assert_eq!(l, leader),
        other => panic!("a follower's proposal: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_member_joins_as_a_learner_and_is_promoted_once_caught_up() {
    let mut c = Cluster::founded(3);
    for _ in 0..20 {
        patient(c.propose(1)).await;
    }
    c.start_joiner(nid(4));
    let leader = patient(c.leader()).await;
    patient(c.handle(leader).add_voter(nid(4), addr(nid(4))))
        .await
        .expect("added and promoted");
    let st = c.handle(leader).status();
    assert!(st.voters.contains(&nid(4)), "{st:?}");
    assert!(st.promoting.is_empty());
    assert_eq!(st.addrs.get(&nid(4)).map(String::as_str), Some("local:4"));
    // The newcomer serves linearizable reads of everything before it.
    let total = patient(c.handle(nid(4)).read(|s| s.total))
        .await
        .expect("read");
    assert_eq!(total, 20);
    // Every member's transport learned the newcomer's address.
    for id in [nid(1), nid(2), nid(3)] {
        let peers = c.net.peers_of(id, support::GROUP);
        assert_eq!(
            peers.get(&nid(4)).map(String::as_str),
            Some("local:4"),
            "{id}"
        );
    }
    // And adding it again is refused.
    match c.handle(leader).add_voter(nid(4), addr(nid(4))).await {
        Err(MembershipError::AlreadyMember(id, "voter")) => assert_eq!(id, nid(4)),
        other => panic!("adding a voter twice: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_leader_leaves_a_working_group_and_the_id_is_never_reused() {
    let mut c = Cluster::founded(3);
    patient(c.propose(5)).await;
    let old = patient(c.leader()).await;
    // The strict check counts healthy voters: wait until the leader has
    // heard from both followers.
    c.wait(old, |s| {
        s.followers.len() == 2 && s.followers.values().all(|f| f.active)
    })
    .await;
    patient(c.handle(old).remove(old)).await.expect("removed");
    let reason = patient(c.handle(old).stopped()).await.expect("no failure");
    assert_eq!(reason, StopReason::Removed);
    c.stop(old);
    let new = patient(c.leader()).await;
    assert_ne!(new, old);
    assert_eq!(patient(c.propose(1)).await, 6);
    let st = c.handle(new).status();
    assert!(
        !st.voters.contains(&old) && st.removed.contains(&old),
        "{st:?}"
    );
    match c.handle(new).add_learner(old, addr(old)).await {
        Err(MembershipError::RemovedId(id)) => assert_eq!(id, old),
        other => panic!("re-adding a removed id: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_transfer_hands_leadership_to_the_target() {
    let c = Cluster::founded(3);
    patient(c.propose(1)).await;
    let leader = patient(c.leader()).await;
    let target = other_than(leader);
    patient(c.handle(leader).transfer_leader(target))
        .await
        .expect("transferred");
    // Answered once the old leader saw the target lead, in this term:
    let st = c.handle(leader).status();
    assert_eq!(st.leader, Some(target), "{st:?}");
    // and the target got there (it may have lost it since, on a slow
    // machine, but not before reaching that term).
    let term = st.term;
    let st = c
        .wait(target, |s| {
            s.term > term || (s.term == term && s.is_leader())
        })
        .await;
    assert!(st.term >= term);
    assert_eq!(patient(c.propose(1)).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_restart_from_disk_with_their_state() {
    let mut c = Cluster::founded_with(3, |o| {
        o.snapshot_interval_entries = 8;
        o.catch_up_entries = 2;
    });
    for _ in 0..30 {
        patient(c.propose(3)).await;
    }
    for id in [nid(1), nid(2), nid(3)] {
        c.stop(id);
    }
    for id in [nid(1), nid(2), nid(3)] {
        c.start(id);
    }
    // Restored from a snapshot plus the log after it, before any new
    // entry: the state is there at once, locally.
    for id in [nid(1), nid(2), nid(3)] {
        let st = c.handle(id).status();
        assert!(
            st.snapshot.index.get() > 0,
            "{id} started from a snapshot: {st:?}"
        );
    }
    let total = patient(c.handle(nid(2)).read(|s| s.total))
        .await
        .expect("read");
    assert_eq!(total, 90);
    assert_eq!(patient(c.propose(10)).await, 100);
}

/// Stops a follower, writes past what the leader keeps in its log, and
/// checks the follower comes back by snapshot; then restarts everyone.
async fn catch_up_by_snapshot_then_restart(mut c: Cluster) {
    patient(c.propose(2)).await;
    let leader = patient(c.leader()).await;
    let lagging = other_than(leader);
    c.kill(lagging);
    for _ in 0..30 {
        patient(c.propose(1)).await;
    }
    // The leader compacted past what the stopped member has.
    c.wait(leader, |s| s.snapshot.index.get() >= 20).await;
    c.start(lagging);
    let total = patient(c.handle(lagging).read(|s| s.total))
        .await
        .expect("read");
    assert_eq!(total, 32);
    assert!(
        c.members[&lagging].counts.restored.load(Ordering::Relaxed) >= 1,
        "caught up by a snapshot, not the log"
    );
    for id in [nid(1), nid(2), nid(3)] {
        c.stop(id);
    }
    for id in [nid(1), nid(2), nid(3)] {
        c.start(id);
    }
    assert_eq!(patient(c.propose(8)).await, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_behind_the_compacted_log_is_brought_up_by_a_snapshot() {
    let c = Cluster::founded_with(3, |o| {
        o.snapshot_interval_entries = 10;
        o.catch_up_entries = 0;
    });
    catch_up_by_snapshot_then_restart(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_restored_by_a_snapshot_shows_the_snapshots_membership() {
    let mut c = Cluster::founded_with(5, |o| {
        o.snapshot_interval_entries = 10;
        o.catch_up_entries = 0;
    });
    patient(c.propose(2)).await;
    let leader = patient(c.leader()).await;
    let mut others = (1..=5).map(nid).filter(|id| *id != leader);
    let (lagging, removed) = (others.next().unwrap(), others.next().unwrap());
    c.kill(lagging);
    // A membership change the stopped member will only learn from a
    // snapshot, the log it is in being compacted away meanwhile.
    patient(c.handle(leader).remove(removed))
        .await
        .expect("removed");
    c.stop(removed);
    for _ in 0..30 {
        patient(c.propose(1)).await;
    }
    c.wait(leader, |s| s.snapshot.index.get() >= 20).await;
    c.start(lagging);
    let st = c
        .wait(lagging, |s| {
            s.snapshot.index.get() >= 20 && s.applied.get() >= 20
        })
        .await;
    assert!(
        !st.voters.contains(&removed),
        "node {lagging} shows node {removed} as a voter after restoring a snapshot without it: {:?}",
        st.voters
    );
    assert_eq!(st.voters.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_member_recovers_and_catches_up() {
    let mut c = Cluster::founded(3);
    patient(c.propose(4)).await;
    let leader = patient(c.leader()).await;
    let victim = other_than(leader);
    c.kill(victim);
    for _ in 0..10 {
        patient(c.propose(1)).await;
    }
    c.start(victim);
    let total = patient(c.handle(victim).read(|s| s.total))
        .await
        .expect("read");
    assert_eq!(total, 14);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_that_would_leave_no_healthy_quorum_is_refused() {
    let mut c = Cluster::founded(3);
    patient(c.propose(1)).await;
    let leader = patient(c.leader()).await;
    let mut others = [nid(1), nid(2), nid(3)]
        .into_iter()
        .filter(|id| *id != leader);
    let (healthy, down) = (
        others.next().expect("a follower"),
        others.next().expect("another"),
    );
    c.kill(down);
    // Once the leader counts the stopped member as inactive, removing the
    // healthy follower would leave {leader, down}: one healthy of two.
    c.wait(leader, |s| {
        s.followers.get(&down).is_some_and(|f| !f.active)
    })
    .await;
    match c.handle(leader).remove(healthy).await {
        Err(MembershipError::Unsafe {
            healthy: 1,
            needed: 2,
        }) => {}
        other => panic!("an unsafe removal: {other:?}"),
    }
    // Removing the stopped member is safe: {leader, healthy} remain.
    patient(c.handle(leader).remove(down))
        .await
        .expect("removed");
    assert_eq!(patient(c.propose(1)).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_added_before_it_starts_is_promoted_once_it_has_caught_up() {
    let mut c = Cluster::founded(3);
    for _ in 0..5 {
        patient(c.propose(1)).await;
    }
    let leader = patient(c.leader()).await;
    let change = MembershipChange::AddLearnerToPromote {
        id: nid(4),
        addr: addr(nid(4)),
    };
    patient(c.handle(leader).change_membership(change))
        .await
        .expect("added as a learner");
    let st = c.handle(leader).status();
    assert!(
        st.learners.contains(&nid(4)) && st.promoting.contains(&nid(4)),
        "{st:?}"
    );
    // Nothing to promote while it is not running: it holds nothing.
    assert!(!st.voters.contains(&nid(4)));
    c.start_joiner(nid(4));
    let st = c.wait(leader, |s| s.voters.contains(&nid(4))).await;
    assert!(st.promoting.is_empty(), "{st:?}");
    let total = patient(c.handle(nid(4)).read(|s| s.total))
        .await
        .expect("read");
    assert_eq!(total, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_asynchronous_writes_members_catch_up_by_snapshot_and_restart_with_their_state() {
    let c = Cluster::founded_with(3, |o| {
        o.async_storage_writes = true;
        o.snapshot_interval_entries = 10;
        o.catch_up_entries = 0;
    });
    catch_up_by_snapshot_then_restart(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_forgets_its_leader_and_a_leader_refuses_to() {
    let c = Cluster::founded(3);
    patient(c.propose(1)).await;
    let leader = patient(c.leader()).await;
    let follower = other_than(leader);
    match c.handle(leader).forget_leader().await {
        Err(ForgetLeaderError::Refused(raft_core::ForgetLeaderError::NotFollower { .. })) => {}
        other => panic!("a leader forgetting itself: {other:?}"),
    }
    // A follower may have started an election since: then it is refused
    // too, and the group still works either way.
    match c.handle(follower).forget_leader().await {
        Ok(()) | Err(ForgetLeaderError::Refused(_)) => {}
        other => panic!("a follower forgetting its leader: {other:?}"),
    }
    assert_eq!(patient(c.propose(1)).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_requests_a_snapshot_installs_one_reaching_its_log() {
    let c = Cluster::founded(3);
    for n in 1..=5 {
        assert_eq!(patient(c.propose(1)).await, n);
    }
    let leader = patient(c.leader()).await;
    let follower = other_than(leader);
    let h = c.handle(follower).clone();
    let mut attempts = 0..100;
    let index = loop {
        assert!(
            attempts.next().is_some(),
            "the request was refused 100 times"
        );
        match patient(h.request_snapshot()).await {
            Ok(index) => break index,
            // Not a follower of a leader of this term yet: once it is, ask.
            Err(RequestSnapshotError::Refused(e)) => {
                let term = h.status().term;
                patient(h.wait_for(|s| s.leader.is_some() && s.term >= term))
                    .await
                    .expect("running");
                tracing::info!(error = %e, "retrying the snapshot request");
            }
            Err(e) => panic!("requesting a snapshot: {e}"),
        }
    };
    // The leader had none that recent: it took one, and sent it.
    let st = patient(h.wait_for(|s| s.snapshot.index >= index))
        .await
        .expect("running");
    assert!(st.snapshot.index >= index, "{st:?}");
    assert_eq!(h.read_local(|s| s.total), 5);
    // The follower appends again after it.
    assert_eq!(patient(c.propose(1)).await, 6);
    assert_eq!(patient(h.read(|s| s.total)).await.expect("read"), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_over_the_entry_limit_is_refused_and_nothing_is_proposed() {
    let c = Cluster::founded_with(3, |o| o.max_entry_bytes = Some(64));
    assert_eq!(patient(c.propose(1)).await, 1);
    let leader = patient(c.leader()).await;
    let big = [1u8; 100];
    match patient(c.handle(leader).propose(big.to_vec())).await {
        Err(ProposeError::Dropped(raft_core::ProposeError::EntryTooLarge { .. })) => {}
        other => panic!("a 100-byte command under a 64-byte limit: {other:?}"),
    }
    assert_eq!(patient(c.propose(1)).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_to_the_preferred_member_and_stays() {
    let c = Cluster::founded_with(3, |o| o.preferred_leader = Some(nid(3)));
    // Cut off, node 3 cannot lead: one of the others is elected.
    c.net.isolate(nid(3));
    while !(c.handle(nid(1)).status().is_leader() || c.handle(nid(2)).status().is_leader()) {
        c.any_change().await;
    }
    c.net.heal();
    // The leader hands over once node 3 is back and caught up.
    patient(c.handle(nid(3)).wait_for(|s| s.is_leader()))
        .await
        .expect("running");
    assert_eq!(c.leader().await, nid(3));
    assert_eq!(
        c.propose(5).await,
        5,
        "the group serves under its new leader"
    );
    assert_eq!(c.leader().await, nid(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_set_change_counts_groups_that_have_it_as_done() {
    let c = Cluster::founded(3);
    // Followers that answered count as healthy for the strict check.
    assert_eq!(c.propose(1).await, 1);
    let leader = c.leader().await;
    let set = raft_host::GroupSet::new(vec![c.handle(leader).clone(), c.handle(leader).clone()])
        .expect("not empty");
    let gone = other_than(leader);
    // The first group makes the change; the second (the same group here)
    // already has it: done, not an error.
    let remove = MembershipChange::Remove { id: gone };
    patient(set.change_membership(remove.clone()))
        .await
        .expect("removed");
    // Every group has it now: nothing changed, and the caller is told.
    let again = patient(set.change_membership(remove)).await;
    assert!(
        matches!(again, Err(MembershipError::NotMember(id, _)) if id == gone),
        "{again:?}"
    );
    assert!(std::ptr::eq(set.first(), &set.groups()[0]));
    assert_eq!(set.statuses().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_set_change_on_a_follower_takes_leadership_over_and_makes_it() {
    let c = Cluster::founded(3);
    assert_eq!(c.propose(1).await, 1);
    let leader = c.leader().await;
    let follower = other_than(leader);
    let gone = [nid(1), nid(2), nid(3)]
        .into_iter()
        .find(|id| *id != leader && *id != follower)
        .expect("a third member");
    let set = raft_host::GroupSet::new(vec![c.handle(follower).clone()]).expect("not empty");
    patient(set.change_membership(MembershipChange::Remove { id: gone }))
        .await
        .expect("removed from a follower");
    let st = c.handle(follower).status();
    assert!(
        st.is_leader(),
        "the follower took leadership over to make the change"
    );
    assert!(!st.voters.contains(&gone));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_refused_as_removed_by_a_member_stops_but_not_when_a_stranger_refuses_it() {
    let c = Cluster::founded(3);
    patient(c.propose(5)).await;
    let leader = patient(c.leader()).await;
    let follower = (1..=3)
        .map(nid)
        .find(|&id| id != leader)
        .expect("a follower");
    let inbox = c.members[&follower].host.inbox();
    // Not a member of the group: its word does not count.
    inbox.removed_by(nid(99));
    let after_stranger = patient(c.handle(follower).propose(add(1))).await;
    assert!(
        !matches!(after_stranger, Err(ProposeError::Stopped)),
        "{after_stranger:?}"
    );
    // A member that applied this node's removal refuses it (410 Gone).
    inbox.removed_by(leader);
    let after_member = patient(c.handle(follower).propose(add(1))).await;
    assert!(
        matches!(after_member, Err(ProposeError::Stopped)),
        "{after_member:?}"
    );
    let reason = patient(c.handle(follower).stopped())
        .await
        .expect("no failure");
    assert_eq!(reason, StopReason::Removed);
}
