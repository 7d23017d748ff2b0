//! [`GroupSet`]: the groups of a sharded service on one host, every key in
//! exactly one of them, and membership changes made to all of them.

use crate::error::MembershipError;
use crate::group::MembershipChange;
use crate::handle::GroupHandle;
use crate::state_machine::StateMachine;
use crate::status::GroupStatus;

/// The groups a service splits its keys over: the same members in each
/// group, each group with its own leader (see
/// [`GroupOptions::preferred_leader`](crate::GroupOptions::preferred_leader)
/// to spread them), log and state machine. [`GroupSet::for_key`] says
/// which group holds a key.
///
/// The mapping is a hash of the key modulo the number of groups (FNV-1a,
/// 64 bits): the same on every member, every platform and every version
/// of this crate, since it decides where data lives. Changing the number
/// of groups moves almost every key; a service keeps it fixed for the
/// life of its data.
#[derive(Debug)]
pub struct GroupSet<S: StateMachine> {
    /// Invariant: not empty; `groups[i]` holds the keys that hash to `i`.
    groups: Vec<GroupHandle<S>>,
}

impl<S: StateMachine> Clone for GroupSet<S> {
    fn clone(&self) -> Self {
        GroupSet {
            groups: self.groups.clone(),
        }
    }
}

/// [`GroupSet::new`] without groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a group set needs at least one group")]
pub struct EmptyGroupSet;

impl<S: StateMachine> GroupSet<S> {
    /// The set of `groups`, in key order (the `i`-th holds the keys that
    /// hash to `i`).
    ///
    /// # Errors
    /// [`EmptyGroupSet`] when `groups` is empty.
    pub fn new(groups: Vec<GroupHandle<S>>) -> Result<GroupSet<S>, EmptyGroupSet> {
        if groups.is_empty() {
            return Err(EmptyGroupSet);
        }
        Ok(GroupSet { groups })
    }

    /// The group that holds `key`.
    pub fn for_key(&self, key: &[u8]) -> &GroupHandle<S> {
        let n = self.groups.len() as u64;
        // Fits: the remainder is below the length, which is a usize.
        &self.groups[(fnv1a(key) % n) as usize]
    }

    /// Every group, in key order.
    pub fn groups(&self) -> &[GroupHandle<S>] {
        &self.groups
    }

    /// The first group (the only one of a set of one).
    pub fn first(&self) -> &GroupHandle<S> {
        &self.groups[0]
    }

    /// Every group's status, in key order.
    pub fn statuses(&self) -> Vec<GroupStatus> {
        self.groups.iter().map(GroupHandle::status).collect()
    }

    /// Makes `change` in every group, one group after another; answered
    /// once every group applied it here. Idempotent, so that a caller
    /// retries a change that failed part-way: a group that already has it
    /// (an add of a member it has, a removal of one it lacks) counts as
    /// done, and [`MembershipError::AlreadyMember`] or
    /// [`MembershipError::NotMember`] is returned only when *every* group
    /// answered so (nothing changed).
    ///
    /// Each group's change is made by its leader. For a group this node
    /// does not lead, it asks the leader to hand leadership over (a
    /// transfer, thesis §3.10) and makes the change then, so that one call
    /// on any member changes every group; leaders move back to their
    /// [`preferred_leader`](crate::GroupOptions::preferred_leader)s later.
    ///
    /// # Errors
    /// The first other [`MembershipError`] of a group; the groups before
    /// it made the change, the ones after it were not asked.
    pub async fn change_membership(&self, change: MembershipChange) -> Result<(), MembershipError> {
        let mut unchanged = None;
        let mut changed = false;
        for group in &self.groups {
            match change_led_here(group, &change).await {
                Ok(()) => changed = true,
                Err(e @ (MembershipError::AlreadyMember(..) | MembershipError::NotMember(..))) => {
                    unchanged = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        match unchanged {
            Some(e) if !changed => Err(e),
            _ => Ok(()),
        }
    }
}

/// Leadership transfers one change may wait for, per group, before it
/// gives up with the group's `NotLeader` (leadership moving on meanwhile).
const MAX_TRANSFERS_PER_CHANGE: usize = 3;

/// `change` in `group`, made by this node after it took leadership over
/// if it did not have it.
async fn change_led_here<S: StateMachine>(
    group: &GroupHandle<S>,
    change: &MembershipChange,
) -> Result<(), MembershipError> {
    let me = group.status().id;
    let mut transfers = 0;
    loop {
        match group.change_membership(change.clone()).await {
            Err(MembershipError::NotLeader { leader }) if transfers < MAX_TRANSFERS_PER_CHANGE => {
                transfers += 1;
                if group.transfer_leader(me).await.is_err() {
                    return Err(MembershipError::NotLeader { leader });
                }
            }
            other => return other,
        }
    }
}

/// FNV-1a, 64 bits: tiny, stable, and spreads short keys well enough to
/// balance groups.
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_hash_is_fnv1a_as_published() {
        // Test vectors of the FNV reference (draft-eastlake-fnv).
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn keys_spread_over_the_groups() {
        let groups = 16u64;
        let mut counts = vec![0u32; groups as usize];
        for i in 0..16_000u32 {
            let key = format!("key-{i}");
            counts[(fnv1a(key.as_bytes()) % groups) as usize] += 1;
        }
        // Each group gets its share within a quarter.
        assert!(
            counts.iter().all(|c| (750..=1250).contains(c)),
            "{counts:?}"
        );
    }
}
