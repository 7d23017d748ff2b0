//! Quiescence in the host: an idle group stops heartbeating and is not
//! ticked at all; requests and lost peer hosts wake it.

mod support;

use std::num::NonZeroU32;

use raft_host::GroupOptions;
use support::{Cluster, add};

fn quiet(o: &mut GroupOptions) {
    o.quiesce_after_ticks = NonZeroU32::new(5);
}

/// Waits until every running member of `c` reports the group quiesced.
async fn all_quiesced(c: &Cluster) {
    for id in c.members.keys().copied().collect::<Vec<_>>() {
        c.wait(id, |s| s.quiesced).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_group_quiesces_on_every_member_and_a_proposal_wakes_it() {
    let c = Cluster::founded_with(3, quiet);
    assert_eq!(c.propose(1).await, 1);
    all_quiesced(&c).await;
    let leader = c.leader().await;
    let term = c.handle(leader).status().term;
    // A proposal wakes the leader, whose append wakes the followers.
    assert_eq!(c.handle(leader).propose(add(2)).await.expect("applied"), 3);
    all_quiesced(&c).await;
    for id in c.members.keys() {
        let st = c.handle(*id).status();
        assert_eq!(
            (st.term, st.applied),
            (term, c.handle(leader).status().applied)
        );
    }
    // A linearizable read wakes the group too, and is answered.
    let total = c.handle(leader).read(|s| s.total).await.expect("read");
    assert_eq!(total, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiesced_group_whose_leader_dies_elects_another() {
    let mut c = Cluster::founded_with(3, quiet);
    assert_eq!(c.propose(1).await, 1);
    all_quiesced(&c).await;
    let old = c.leader().await;
    let term = c.handle(old).status().term;
    // Nothing reaches the followers any more: only the host liveness
    // report ("peer host down") wakes them.
    c.kill(old);
    let new = c.leader().await;
    assert_ne!(new, old);
    assert!(c.handle(new).status().term > term);
    assert_eq!(c.propose(2).await, 3);
}
