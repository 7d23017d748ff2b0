//! Host liveness: which peer hosts are up, measured once per pair of hosts
//! rather than once per group.
//!
//! A group that is quiet (a quiesced group sends no heartbeats) cannot
//! tell by itself that its leader's host died: nothing arrives either way.
//! So every host pings every peer host it shares a group with, every
//! [`HostOptions::liveness_interval`](crate::HostOptions::liveness_interval),
//! and a peer not heard from for
//! [`HostOptions::liveness_timeout`](crate::HostOptions::liveness_timeout)
//! is reported down to every group on this host
//! (`PeerEvent::HostDown`), which wakes a follower whose leader lives
//! there so that it elects a new one. This is the node-liveness idea of
//! CockroachDB's quiesced ranges and of TiKV's hibernate regions; it
//! costs two small messages per host pair and interval, however many
//! groups the hosts share.
//!
//! Pings travel as messages of the reserved [`HOST_GROUP`] (group 0,
//! never a Raft group) over the groups' own transport, so any
//! [`Transport`] carries them unchanged. Liveness is advice for liveness
//! only: a wrong "down" costs an early election, never safety (the
//! protocol's safety does not depend on timing, paper §5.6).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use raft_core::{GroupId, Heartbeat, Index, Message, MessageBody, NodeId, Term};

use crate::metrics::{Counter, Recorder};
use crate::scheduler::{Task, Turn};
use crate::transport::{Inbox, PeerEvent, Transport};

/// The group id reserved for messages between hosts (liveness pings).
/// [`Host::start_group`](crate::Host::start_group) refuses it.
pub const HOST_GROUP: GroupId = GroupId(0);

/// One peer host.
struct PeerHost {
    /// The transport of the first group that named it: pings go there.
    transport: Arc<dyn Transport>,
    /// The groups on this host that have it as a peer. Invariant: never
    /// empty (the entry goes with its last group).
    groups: HashSet<GroupId>,
    last_heard: Instant,
    down: bool,
}

/// The host's liveness table.
pub(crate) struct Liveness {
    me: NodeId,
    interval: Duration,
    timeout: Duration,
    inbox: Inbox,
    recorder: Arc<dyn Recorder>,
    peers: Mutex<HashMap<NodeId, PeerHost>>,
    stopped: AtomicBool,
}

impl Liveness {
    pub(crate) fn new(
        me: NodeId,
        (interval, timeout): (Duration, Duration),
        inbox: Inbox,
        recorder: Arc<dyn Recorder>,
    ) -> Liveness {
        Liveness {
            me,
            interval,
            timeout,
            inbox,
            recorder,
            peers: Mutex::new(HashMap::new()),
            stopped: AtomicBool::new(false),
        }
    }

    /// `group` has `id` (at `addr`, over `transport`) as a peer.
    fn add_peer(&self, group: GroupId, transport: &Arc<dyn Transport>, id: NodeId, addr: &str) {
        let mut peers = self.peers.lock();
        let peer = peers.entry(id).or_insert_with(|| PeerHost {
            transport: Arc::clone(transport),
            groups: HashSet::new(),
            // A new peer gets a full timeout before it can be down.
            last_heard: Instant::now(),
            down: false,
        });
        if peer.groups.is_empty() || Arc::ptr_eq(&peer.transport, transport) {
            // The first group, or an address change: tell the transport.
            peer.transport.add_peer(HOST_GROUP, id, addr);
        }
        peer.groups.insert(group);
    }

    /// `group` no longer has `id` as a peer.
    fn remove_peer(&self, group: GroupId, id: NodeId) {
        let mut peers = self.peers.lock();
        let Some(peer) = peers.get_mut(&id) else {
            return;
        };
        peer.groups.remove(&group);
        if peer.groups.is_empty() {
            let peer = peers.remove(&id).expect("present");
            peer.transport.remove_peer(HOST_GROUP, id);
        }
    }

    /// A ping from `from` arrived.
    pub(crate) fn heard(&self, from: NodeId) {
        if let Some(peer) = self.peers.lock().get_mut(&from) {
            peer.last_heard = Instant::now();
            if peer.down {
                peer.down = false;
                tracing::info!(peer = %from, "peer host is up again");
            }
        }
    }

    /// Pings every peer host and reports the ones that went silent.
    fn round(&self) {
        let now = Instant::now();
        let mut newly_down = Vec::new();
        let mut pings: Vec<(Arc<dyn Transport>, Message)> = Vec::new();
        for (id, peer) in self.peers.lock().iter_mut() {
            pings.push((Arc::clone(&peer.transport), self.ping(*id)));
            if !peer.down && now.duration_since(peer.last_heard) >= self.timeout {
                peer.down = true;
                newly_down.push(*id);
            }
        }
        // Outside the lock: a transport may call back into the inbox.
        for (transport, ping) in pings {
            transport.send(HOST_GROUP, vec![ping]);
        }
        for id in newly_down {
            tracing::warn!(peer = %id, timeout_ms = self.timeout.as_millis() as u64, "peer host is silent: reporting it down to every group");
            self.recorder.count(HOST_GROUP, Counter::PeerHostsDown, 1);
            self.inbox.broadcast(|| PeerEvent::HostDown(id));
        }
    }

    /// A ping: a heartbeat of group 0, which no Raft group reads.
    fn ping(&self, to: NodeId) -> Message {
        Message {
            from: self.me,
            to,
            term: Term(1),
            body: MessageBody::Heartbeat(Heartbeat {
                commit: Index::ZERO,
                read_round: None,
            }),
        }
    }

    /// Ends the pinging task at its next turn.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
    }
}

/// The pinging task, on the host's scheduler.
pub(crate) struct Pinger(pub(crate) Arc<Liveness>);

impl Task for Pinger {
    fn turn(&mut self) -> Turn {
        if self.0.stopped.load(Ordering::Acquire) {
            return Turn::Done;
        }
        self.0.round();
        Turn::Idle(Some(Instant::now() + self.0.interval))
    }
}

/// A group's transport, as the host hands it to the group: peers it adds
/// and removes are counted in the host's liveness table.
pub(crate) struct Tracked {
    inner: Arc<dyn Transport>,
    liveness: Arc<Liveness>,
}

impl Tracked {
    pub(crate) fn new(inner: Arc<dyn Transport>, liveness: Arc<Liveness>) -> Tracked {
        Tracked { inner, liveness }
    }
}

impl Transport for Tracked {
    fn send(&self, group: GroupId, messages: Vec<Message>) {
        self.inner.send(group, messages);
    }

    fn add_peer(&self, group: GroupId, id: NodeId, addr: &str) {
        self.inner.add_peer(group, id, addr);
        self.liveness.add_peer(group, &self.inner, id, addr);
    }

    fn remove_peer(&self, group: GroupId, id: NodeId) {
        self.inner.remove_peer(group, id);
        self.liveness.remove_peer(group, id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::PeerSink;

    #[derive(Default)]
    struct Pings(Mutex<Vec<(GroupId, NodeId)>>);

    impl Transport for Pings {
        fn send(&self, group: GroupId, messages: Vec<Message>) {
            self.0.lock().extend(messages.iter().map(|m| (group, m.to)));
        }
        fn add_peer(&self, _: GroupId, _: NodeId, _: &str) {}
        fn remove_peer(&self, _: GroupId, _: NodeId) {}
    }

    #[derive(Default)]
    struct Downs(Mutex<Vec<NodeId>>);

    impl PeerSink for Downs {
        fn push(&self, event: PeerEvent) -> bool {
            if let PeerEvent::HostDown(id) = event {
                self.0.lock().push(id);
            }
            true
        }
    }

    fn nid(n: u64) -> NodeId {
        NodeId::new(n).expect("non-zero")
    }

    /// A table whose peers are silent past the timeout at every round.
    fn table(timeout: Duration) -> (Liveness, Arc<Pings>, Arc<Downs>) {
        let inbox = Inbox::default();
        let downs = Arc::new(Downs::default());
        inbox.register(GroupId(1), Arc::clone(&downs) as Arc<dyn PeerSink>);
        let live = Liveness::new(
            nid(1),
            (Duration::from_millis(10), timeout),
            inbox,
            Arc::new(crate::NoRecorder),
        );
        (live, Arc::new(Pings::default()), downs)
    }

    #[test]
    fn a_silence_is_reported_once_and_again_only_after_the_peer_was_heard() {
        let (live, pings, downs) = table(Duration::ZERO);
        let transport = Arc::clone(&pings) as Arc<dyn Transport>;
        live.add_peer(GroupId(1), &transport, nid(2), "b");
        live.add_peer(GroupId(2), &transport, nid(2), "b");
        live.round();
        live.round();
        assert_eq!(
            *downs.0.lock(),
            vec![nid(2)],
            "once per silence, not per round or group"
        );
        live.heard(nid(2));
        live.round();
        assert_eq!(*downs.0.lock(), vec![nid(2), nid(2)]);
        // One ping per peer host and round, in group 0, however many groups.
        assert_eq!(*pings.0.lock(), vec![(HOST_GROUP, nid(2)); 3]);
    }

    #[test]
    fn a_peer_is_forgotten_with_the_last_group_that_had_it() {
        let (live, pings, _) = table(Duration::from_secs(3600));
        let transport = Arc::clone(&pings) as Arc<dyn Transport>;
        live.add_peer(GroupId(1), &transport, nid(2), "b");
        live.add_peer(GroupId(2), &transport, nid(2), "b");
        live.remove_peer(GroupId(1), nid(2));
        live.round();
        live.remove_peer(GroupId(2), nid(2));
        live.round();
        assert_eq!(*pings.0.lock(), vec![(HOST_GROUP, nid(2))]);
    }
}
