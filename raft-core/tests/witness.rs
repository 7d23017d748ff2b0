//! Witnesses (`Config::witness`, `ConfChangeKind::AddWitness`): voters
//! that keep the log's metadata only and never lead. See
//! `raft-core/src/raft/witness.rs` for the rules and why they hold.

mod support;

use raft_core::{
    AnyConfChange, CampaignError, ConfChange, ConfChangeKind, EntryKind, MessageBody, RoleKind,
    TransferError,
};
use support::{Cluster, id};

/// 2 full voters (1, 2) and a witness (3), CheckQuorum and pre-vote on,
/// with 1 leading.
fn two_full_and_a_witness() -> Cluster {
    let mut c = Cluster::builder()
        .voters(&[1, 2])
        .witnesses(&[3])
        .check_quorum(true)
        .pre_vote(true)
        .build();
    c.elect(1);
    c
}

/// Ticks every node, one tick at a time with the network settled in
/// between, until one of `among` leads; at most `max_rounds`.
fn until_one_leads(c: &mut Cluster, among: &[u64], max_rounds: u32) -> Option<u64> {
    for _ in 0..max_rounds {
        if let Some(&l) = c.leaders().iter().find(|l| among.contains(l)) {
            return Some(l);
        }
        c.tick_all(1);
    }
    None
}

/// Every payload any node applied.
fn committed_payloads(c: &Cluster) -> Vec<bytes::Bytes> {
    let mut all: Vec<bytes::Bytes> = [1, 2].iter().flat_map(|&n| c.applied_data(n)).collect();
    all.sort();
    all.dedup();
    all
}

#[test]
fn two_full_voters_and_a_witness_survive_the_loss_of_any_one_member_and_keep_every_committed_entry()
{
    for lost in 1..=3u64 {
        let mut c = two_full_and_a_witness();
        c.propose(1, b"before");
        c.stabilize();
        // Writes under way when a member is lost: the leader's messages
        // reach the witness at once and the other full voter late.
        c.propose(1, b"racing-1");
        c.propose(1, b"racing-2");
        for _ in 0..6 {
            c.process_all();
            c.deliver_where(|m| m.from != id(2) && m.to != id(2));
        }
        c.isolate(lost);
        c.stabilize();
        let survivors: Vec<u64> = (1..=3).filter(|&n| n != lost).collect();
        let full: Vec<u64> = survivors.iter().copied().filter(|&n| n != 3).collect();
        let leader = until_one_leads(&mut c, &full, 200)
            .unwrap_or_else(|| panic!("no leader among {full:?} after losing {lost}"));
        let before_loss = committed_payloads(&c);
        c.propose(leader, b"after");
        c.stabilize();
        // With the other full voter gone, the witness carries the quorum
        // once the leader stops waiting for it (an election timeout).
        let after = bytes::Bytes::from_static(b"after");
        for _ in 0..100 {
            if c.applied_data(leader).contains(&after) {
                break;
            }
            c.tick_all(1);
        }
        let applied = c.applied_data(leader);
        for p in before_loss
            .iter()
            .chain([&bytes::Bytes::from_static(b"after")])
        {
            assert!(
                applied.contains(p),
                "losing {lost}: leader {leader} lacks committed {p:?} (applied {applied:?})"
            );
        }
        assert!(applied.contains(&bytes::Bytes::from_static(b"before")));
        assert_eq!(c.role(3), RoleKind::Follower, "the witness never leads");
    }
}

#[test]
fn a_witness_gets_entries_without_payloads_and_only_after_the_full_voter() {
    let mut c = two_full_and_a_witness();
    c.delivered.clear();
    c.propose(1, b"payload");
    c.stabilize();
    let appends_to = |n: u64| -> Vec<raft_core::Entry> {
        c.delivered
            .iter()
            .filter(|m| m.to == id(n))
            .filter_map(|m| match &m.body {
                MessageBody::Append(a) => Some(a.entries.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    };
    let to_full = appends_to(2);
    let to_witness = appends_to(3);
    assert!(to_full.iter().any(|e| e.data.as_ref() == b"payload"));
    assert!(!to_witness.is_empty(), "the witness gets the entry");
    assert!(
        to_witness
            .iter()
            .all(|e| e.kind != EntryKind::Normal || e.data.is_empty()),
        "no payload reaches the witness: {to_witness:?}"
    );
    // The append to the witness left after 2 acknowledged the entry.
    let pos = |pred: &dyn Fn(&raft_core::Message) -> bool| c.delivered.iter().position(pred);
    let ack_from_full = pos(&|m| {
        m.from == id(2) && matches!(&m.body, MessageBody::AppendResponse(r) if r.reject.is_none() && r.index == c.status(1).last_index)
    })
    .expect("2 acknowledged");
    let to_witness_at = pos(&|m| {
        m.to == id(3) && matches!(&m.body, MessageBody::Append(a) if !a.entries.is_empty())
    })
    .expect("an append with entries to 3");
    assert!(to_witness_at > ack_from_full);
    // The witness applied the entry's metadata; the full voter its payload.
    assert_eq!(
        c.applied_data(2),
        vec![bytes::Bytes::from_static(b"payload")]
    );
    assert!(c.applied_data(3).is_empty());
    assert_eq!(c.status(3).applied, c.status(2).applied);
}

#[test]
fn a_witness_never_campaigns_and_cannot_be_handed_leadership() {
    let mut c = two_full_and_a_witness();
    assert!(matches!(
        c.node(3).raw.campaign(),
        Err(CampaignError::Witness)
    ));
    assert!(matches!(
        c.node(1).raw.transfer_leader(id(3)),
        Err(TransferError::Witness { .. })
    ));
    // Alone with the witness, the full voter's loss leaves no leader: the
    // witness waits, whatever its timers say.
    c.isolate(1);
    c.isolate(2);
    c.tick_all(100);
    assert_eq!(c.role(3), RoleKind::Follower);
}

#[test]
fn a_full_node_refuses_a_change_that_names_it_a_witness() {
    let mut c = Cluster::builder().voters(&[1, 2, 3]).build();
    // Node 3 runs with a state machine. Removed and added back as a
    // witness, it would be sent entries without payloads and apply them:
    // the operator's mistake, refused where it would do harm.
    let change = |kind| {
        AnyConfChange::V1(ConfChange {
            kind,
            node_id: id(3),
            context: bytes::Bytes::new(),
        })
    };
    let node = &mut c.node(3).raw;
    node.apply_conf_change(&change(ConfChangeKind::RemoveNode))
        .expect("removal");
    let r = node.apply_conf_change(&change(ConfChangeKind::AddWitness));
    assert!(
        matches!(
            r,
            Err(raft_core::ApplyConfChangeError::WitnessMismatch {
                named_witness: true
            })
        ),
        "{r:?}"
    );
}
