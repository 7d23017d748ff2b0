//! Transports talking over loopback. Conditions are awaited on channels or
//! polled against deadlines; nothing asserts on timing.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use raft_core::{
    Append, ConfState, Entry, Heartbeat, Index, LogId, MessageBody, Snapshot, SnapshotMetadata,
    Term,
};
use raft_host::Transport as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::time::{Instant, timeout};

use super::*;

mod batch_refusals;
mod fallback;
mod snapshot_receive;
mod snapshot_send;
mod streams;
mod throughput;
mod tls;

const CLUSTER: u64 = 0xfeed_beef;
/// The group most tests send in: the plain one, which batches to an older
/// peer carry too.
const GROUP: GroupId = crate::frame::PLAIN_GROUP;
/// Deadline for anything that should happen.
const WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, PartialEq, Eq)]
enum Event {
    Delivered(Message),
    Unreachable(NodeId),
    SnapshotDone(NodeId, SnapshotStatus),
    /// What was reported for another group than [`GROUP`].
    OtherGroup(GroupId, Box<Event>),
}

/// An inbox that records what arrives. raft-host's `Inbox` only delivers
/// to running groups, so the tests watch a channel instead.
struct ChanInbox(UnboundedSender<Event>);

impl ChanInbox {
    fn record(&self, group: GroupId, event: Event) {
        let event = if group == GROUP {
            event
        } else {
            Event::OtherGroup(group, Box::new(event))
        };
        let _ = self.0.send(event);
    }
}

impl Inbound for ChanInbox {
    fn deliver(&self, group: GroupId, message: Message) {
        self.record(group, Event::Delivered(message));
    }
    fn unreachable(&self, group: GroupId, to: NodeId) {
        self.record(group, Event::Unreachable(to));
    }
    fn snapshot_status(&self, group: GroupId, to: NodeId, status: SnapshotStatus) {
        self.record(group, Event::SnapshotDone(to, status));
    }
    fn removed_by(&self, _by: NodeId) {}
}

struct Node {
    id: NodeId,
    transport: HttpTransport,
    events: UnboundedReceiver<Event>,
    metrics: Arc<TransportMetrics>,
    /// `http` or, with mutual TLS, `https`.
    scheme: &'static str,
}

impl Node {
    async fn start(id: u64, cluster_id: u64, listen: SocketAddr, queue_messages: usize) -> Node {
        Node::start_with(id, Some(cluster_id), listen, queue_messages).await
    }

    async fn start_with(
        id: u64,
        cluster_id: Option<u64>,
        listen: SocketAddr,
        queue_messages: usize,
    ) -> Node {
        let config = TransportConfig {
            cluster_id,
            queue_messages,
            ..config(id)
        };
        Node::start_on(config, listen).await
    }

    /// Node `config.id` on a free loopback port.
    async fn start_config(config: TransportConfig) -> Node {
        Node::start_on(config, loopback0()).await
    }

    async fn start_on(config: TransportConfig, listen: SocketAddr) -> Node {
        let (tx, events) = unbounded_channel();
        let metrics = Arc::clone(&config.metrics);
        let id = config.id;
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let listener = PeerListener::bind(listen).await.unwrap();
        let transport = HttpTransport::start_with(listener, config, Arc::new(ChanInbox(tx)));
        Node {
            id,
            transport,
            events,
            metrics,
            scheme,
        }
    }

    async fn any(id: u64) -> Node {
        Node::start(id, CLUSTER, loopback0(), 64).await
    }

    fn url(&self) -> PeerUrl {
        let addr = self.transport.local_addr();
        PeerUrl::parse(&format!("{}://{addr}", self.scheme)).unwrap()
    }

    fn knows(&self, other: &Node) {
        self.transport
            .add_peer(GROUP, other.id, other.url().as_str());
    }

    async fn next_event(&mut self) -> Event {
        timeout(WAIT, self.events.recv())
            .await
            .expect("no event before the deadline")
            .expect("inbox closed")
    }

    /// The next delivered message, skipping other events.
    async fn next_delivered(&mut self) -> Message {
        loop {
            if let Event::Delivered(m) = self.next_event().await {
                return m;
            }
        }
    }

    fn no_pending_delivery(&mut self) {
        while let Ok(e) = self.events.try_recv() {
            assert!(!matches!(e, Event::Delivered(_)), "unexpected {e:?}");
        }
    }
}

/// The configuration of node `id` of [`GROUP`] in cluster [`CLUSTER`].
fn config(id: u64) -> TransportConfig {
    TransportConfig {
        cluster_id: Some(CLUSTER),
        bind_outgoing: Some("127.0.0.1".parse().unwrap()),
        queue_messages: 64,
        limits: ConnectionLimits::peer(64),
        ..TransportConfig::new(nid(id), std::env::temp_dir())
    }
}

fn nid(n: u64) -> NodeId {
    NodeId::new(n).unwrap()
}

fn loopback0() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn heartbeat(from: NodeId, to: NodeId, commit: u64) -> Message {
    Message {
        from,
        to,
        term: Term(3),
        body: MessageBody::Heartbeat(Heartbeat {
            commit: Index(commit),
            read_round: None,
        }),
    }
}

fn append(from: NodeId, to: NodeId, first: u64, count: u64, payload: usize) -> Message {
    let entries = (first..first + count)
        .map(|i| Entry::new(Term(3), Index(i), Bytes::from(vec![i as u8; payload])))
        .collect();
    Message {
        from,
        to,
        term: Term(3),
        body: MessageBody::Append(Append {
            prev: LogId {
                index: Index(first - 1),
                term: Term(if first > 1 { 3 } else { 0 }),
            },
            entries,
            commit: Index(0),
        }),
    }
}

fn snapshot_message(from: NodeId, to: NodeId, data: Bytes) -> Message {
    Message {
        from,
        to,
        term: Term(5),
        body: MessageBody::Snapshot(Snapshot {
            metadata: SnapshotMetadata {
                index: Index(42),
                term: Term(4),
                conf_state: ConfState::with_voters([from, to]),
            },
            data,
        }),
    }
}

/// A short description of a message, for assertion failures (payloads
/// can be megabytes).
fn brief(m: &Message) -> String {
    let detail = match &m.body {
        MessageBody::Heartbeat(h) => format!("commit {}", h.commit.get()),
        MessageBody::Append(a) => {
            format!("prev {} entries {}", a.prev.index.get(), a.entries.len())
        }
        MessageBody::Snapshot(s) => format!(
            "index {} data {} bytes",
            s.metadata.index.get(),
            s.data.len()
        ),
        _ => String::new(),
    };
    format!(
        "{} {}->{} term {} {detail}",
        m.body.kind_name(),
        m.from,
        m.to,
        m.term.get()
    )
}

#[track_caller]
fn assert_same(got: &Message, want: &Message) {
    assert!(got == want, "got {}, want {}", brief(got), brief(want));
}

/// Polls `condition` until it holds or the deadline passes.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A raw `POST` to a peer server: status and body text.
async fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    body: Bytes,
) -> (StatusCode, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    exchange(stream, addr, path, headers, body).await.unwrap()
}

/// One `POST` on `io`, a connection to `addr`: status and body text, or
/// the error that cut it short.
async fn exchange<IO>(
    io: IO,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<(StatusCode, String), hyper::Error>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(conn);
    let mut req = hyper::Request::post(path).header("host", addr.to_string());
    for (name, value) in headers {
        req = req.header(*name, value.as_str());
    }
    let response = sender
        .send_request(req.body(Full::new(body)).unwrap())
        .await?;
    let status = response.status();
    let text = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&text).into_owned()))
}

fn headers(cluster: u64, from: u64, to: u64) -> Vec<(&'static str, String)> {
    vec![
        (HEADER_CLUSTER_ID, format!("{cluster:016x}")),
        (HEADER_FROM, from.to_string()),
        (HEADER_TO, to.to_string()),
    ]
}

/// Two nodes that know each other.
async fn pair() -> (Node, Node) {
    let a = Node::any(1).await;
    let b = Node::any(2).await;
    a.knows(&b);
    b.knows(&a);
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_flow_both_ways_in_order_within_each_lane() {
    // Queues large enough for everything sent at once.
    let mut a = Node::start(1, CLUSTER, loopback0(), 1024).await;
    let mut b = Node::any(2).await;
    a.knows(&b);
    b.knows(&a);
    let mut expected: [Vec<Message>; 2] = [Vec::new(), Vec::new()];
    // Appends of ~1 MiB each exceed one write's cap together, and
    // heartbeats are sent between them.
    for k in 0..6u64 {
        let batch: Vec<Message> = (0..10)
            .map(|i| heartbeat(a.id, b.id, k * 10 + i))
            .chain([append(a.id, b.id, 1 + k * 4, 4, 256 << 10)])
            .collect();
        for m in &batch {
            expected[Lane::of(&m.body).unwrap().index()].push(m.clone());
        }
        a.transport.send(GROUP, batch);
    }
    // Each lane keeps its order; the lanes do not wait for each other.
    let mut got: [Vec<Message>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..expected[0].len() + expected[1].len() {
        let m = b.next_delivered().await;
        got[Lane::of(&m.body).unwrap().index()].push(m);
    }
    for (got, want) in got.iter().zip(&expected) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_same(g, w);
        }
    }
    b.transport.send(GROUP, vec![heartbeat(b.id, a.id, 7)]);
    assert_eq!(a.next_delivered().await, heartbeat(b.id, a.id, 7));
    let total = (expected[0].len() + expected[1].len()) as u64;
    eventually("sent counter", || a.metrics.messages_sent() == total).await;
    assert_eq!(a.metrics.send_failures(), 0);
    assert_eq!(b.metrics.requests_rejected(), 0);
    assert_eq!(b.metrics.stream_frames_refused(), 0);
    a.transport.shutdown().await;
    b.transport.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_round_trips_with_its_data() {
    let (mut a, mut b) = pair().await;
    // Several chunks, not a multiple of the chunk size.
    let data: Bytes = (0..(3 << 20) + 12345u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let message = snapshot_message(a.id, b.id, data);
    // Appends keep flowing next to it.
    a.transport
        .send(GROUP, vec![message.clone(), heartbeat(a.id, b.id, 1)]);
    let mut got_snapshot = false;
    let mut got_heartbeat = false;
    while !(got_snapshot && got_heartbeat) {
        let m = b.next_delivered().await;
        if m == message {
            got_snapshot = true;
        } else {
            assert_same(&m, &heartbeat(a.id, b.id, 1));
            got_heartbeat = true;
        }
    }
    assert_eq!(
        a.next_event().await,
        Event::SnapshotDone(b.id, SnapshotStatus::Finished)
    );
    assert_eq!(a.metrics.snapshots_sent(), 1);
    a.transport.shutdown().await;
    b.transport.shutdown().await;
}

#[tokio::test]
async fn a_snapshot_to_a_down_peer_fails() {
    let mut a = Node::any(1).await;
    let b = Node::any(2).await;
    let b_url = b.url();
    b.transport.shutdown().await;
    drop(b);
    a.transport.add_peer(GROUP, nid(2), b_url.as_str());
    a.transport.send(
        GROUP,
        vec![snapshot_message(a.id, nid(2), Bytes::from_static(b"x"))],
    );
    loop {
        match a.next_event().await {
            Event::SnapshotDone(to, status) => {
                assert_eq!((to, status), (nid(2), SnapshotStatus::Failed));
                break;
            }
            Event::Unreachable(_) => {}
            e => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(a.metrics.snapshots_sent(), 0);
    a.transport.shutdown().await;
}

#[tokio::test]
async fn one_stream_per_peer_carries_every_group_and_a_peer_stays_while_a_group_names_it() {
    let (mut a, mut b) = pair().await;
    let (seven, hosts) = (GroupId(7), GroupId(0));
    a.transport.add_peer(seven, b.id, b.url().as_str());
    a.transport.add_peer(hosts, b.id, b.url().as_str());
    a.transport.send(seven, vec![heartbeat(a.id, b.id, 1)]);
    a.transport.send(GROUP, vec![heartbeat(a.id, b.id, 2)]);
    a.transport.send(hosts, vec![heartbeat(a.id, b.id, 3)]);
    // In sending order on the peer's one message lane, each to its group.
    let other = |g, m| Event::OtherGroup(g, Box::new(Event::Delivered(m)));
    assert_eq!(b.next_event().await, other(seven, heartbeat(a.id, b.id, 1)));
    assert_eq!(
        b.next_event().await,
        Event::Delivered(heartbeat(a.id, b.id, 2))
    );
    assert_eq!(b.next_event().await, other(hosts, heartbeat(a.id, b.id, 3)));
    // A snapshot of group 7 arrives as group 7's, reported to group 7.
    let snapshot = snapshot_message(a.id, b.id, Bytes::from(vec![3u8; 10_000]));
    a.transport.send(seven, vec![snapshot.clone()]);
    assert_eq!(b.next_event().await, other(seven, snapshot));
    let finished = Event::SnapshotDone(b.id, SnapshotStatus::Finished);
    assert_eq!(
        a.next_event().await,
        Event::OtherGroup(seven, Box::new(finished))
    );
    // Group 1 lets go of b; groups 7 and 0 still name it: still sent to.
    a.transport.remove_peer(GROUP, b.id);
    a.transport.send(seven, vec![heartbeat(a.id, b.id, 4)]);
    assert_eq!(b.next_event().await, other(seven, heartbeat(a.id, b.id, 4)));
    // Once no group names it, it is removed: its messages are reported
    // unreachable to the group that sent them.
    a.transport.remove_peer(seven, b.id);
    a.transport.remove_peer(hosts, b.id);
    a.transport.send(seven, vec![heartbeat(a.id, b.id, 5)]);
    let unreachable = Event::Unreachable(b.id);
    assert_eq!(
        a.next_event().await,
        Event::OtherGroup(seven, Box::new(unreachable))
    );
    a.transport.add_peer(GROUP, nid(3), "not a URL");
    a.transport.send(GROUP, vec![heartbeat(a.id, nid(3), 3)]);
    assert_eq!(a.next_event().await, Event::Unreachable(nid(3)));
}

#[tokio::test]
async fn a_joining_node_adopts_the_cluster_id_of_a_known_peer_only() {
    let a = Node::any(1).await;
    let mut j = Node::start_with(4, None, loopback0(), 64).await;
    assert_eq!(j.transport.cluster_id(), None);
    let addr = j.transport.local_addr();
    // A stranger cannot make it adopt another cluster's id.
    let body = raft_proto::encode_batch(&[heartbeat(nid(9), j.id, 1)]);
    let (status, _) = post(addr, BATCH_PATH, &headers(CLUSTER + 1, 9, 4), body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(j.transport.cluster_id(), None);
    // A known peer can.
    j.knows(&a);
    a.knows(&j);
    a.transport.send(GROUP, vec![heartbeat(a.id, j.id, 1)]);
    assert_eq!(j.next_delivered().await, heartbeat(a.id, j.id, 1));
    assert_eq!(j.transport.cluster_id(), Some(CLUSTER));
    // From then on another id is refused.
    let body = raft_proto::encode_batch(&[heartbeat(a.id, j.id, 2)]);
    let (status, _) = post(addr, BATCH_PATH, &headers(CLUSTER + 1, 1, 4), body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    j.no_pending_delivery();
}

/// On a current-thread runtime the sender cannot run during `send`, so the
/// queue fills deterministically.
#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_reports_unreachable() {
    let mut a = Node::start(1, CLUSTER, loopback0(), 4).await;
    let mut b = Node::any(2).await;
    a.knows(&b);
    b.knows(&a);
    let batch: Vec<Message> = (0..10).map(|i| heartbeat(a.id, b.id, i)).collect();
    a.transport.send(GROUP, batch);
    for _ in 0..6 {
        assert_eq!(a.next_event().await, Event::Unreachable(b.id));
    }
    assert_eq!(a.metrics.send_failures(), 6);
    // The four that fit are delivered, in order.
    for i in 0..4 {
        assert_eq!(b.next_delivered().await, heartbeat(a.id, b.id, i));
    }
    // And the queue drains: later messages get through.
    a.transport.send(GROUP, vec![heartbeat(a.id, b.id, 100)]);
    assert_eq!(b.next_delivered().await, heartbeat(a.id, b.id, 100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_comes_back_gets_messages_again() {
    let (mut a, mut b) = pair().await;
    a.transport.send(GROUP, vec![heartbeat(a.id, b.id, 1)]);
    assert_eq!(b.next_delivered().await, heartbeat(a.id, b.id, 1));

    // B goes down: sends fail and are reported.
    let b_addr = b.transport.local_addr();
    b.transport.shutdown().await;
    drop(b);
    let mut commit = 2;
    let mut unreachable_reports = 0;
    // A message written just before the stream's close is noticed is lost
    // without a report (the kernel took it): keep sending until three
    // reports are in.
    let deadline = Instant::now() + WAIT;
    while unreachable_reports < 3 {
        assert!(Instant::now() < deadline, "no unreachable reports");
        a.transport
            .send(GROUP, vec![heartbeat(a.id, nid(2), commit)]);
        commit += 1;
        match timeout(Duration::from_millis(100), a.events.recv()).await {
            Ok(Some(Event::Unreachable(to))) => {
                assert_eq!(to, nid(2));
                unreachable_reports += 1;
            }
            Ok(e) => panic!("unexpected {e:?}"),
            Err(_) => {}
        }
    }

    // B comes back on the same address: messages flow again.
    let mut b = Node::start(2, CLUSTER, b_addr, 64).await;
    b.knows(&a);
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no message after the restart");
        a.transport.send(GROUP, vec![heartbeat(a.id, b.id, commit)]);
        if let Ok(Some(Event::Delivered(m))) =
            timeout(Duration::from_millis(50), b.events.recv()).await
        {
            assert_eq!(m.from, a.id);
            break;
        }
        commit += 1;
    }
    assert!(a.metrics.send_failures() >= 1);
    let lane = a.metrics.lane(nid(2), Lane::Message).unwrap();
    assert!(lane.reconnects() >= 1, "the stream was opened again");
    a.transport.shutdown().await;
    b.transport.shutdown().await;
}

/// A snapshot request body built the way the sender builds it.
fn snapshot_body(message: &Message, stream_metadata: &SnapshotMetadata) -> Vec<u8> {
    let MessageBody::Snapshot(s) = &message.body else {
        panic!("not a snapshot")
    };
    let envelope = raft_proto::encode_message(&Message {
        body: MessageBody::Snapshot(Snapshot {
            metadata: s.metadata.clone(),
            data: Bytes::new(),
        }),
        ..message.clone()
    });
    let mut body = (envelope.len() as u32).to_le_bytes().to_vec();
    body.extend_from_slice(&envelope);
    let mut encoder =
        raft_snap::SnapshotEncoder::new(body, stream_metadata, s.data.len() as u64).unwrap();
    encoder.write_chunk(&s.data).unwrap();
    encoder.finish().unwrap()
}

/// Decodes a whole snapshot body from 1 to 2 as the server does.
fn decode(body: &[u8]) -> Result<Message, receive::ReceiveError> {
    let config = SnapshotReceiveConfig::new(std::env::temp_dir());
    let parties = receive::Parties {
        from: nid(1),
        to: nid(2),
    };
    receive::decode_stream(body, parties, &config, |_| {}).map(|(group, m)| {
        assert_eq!(group, GROUP);
        m
    })
}

#[test]
fn snapshot_bodies_are_verified() {
    let (a, b) = (nid(1), nid(2));
    for data in [Bytes::new(), Bytes::from(vec![7u8; 100_000])] {
        let m = snapshot_message(a, b, data);
        let MessageBody::Snapshot(s) = &m.body else {
            unreachable!()
        };
        let body = snapshot_body(&m, &s.metadata);
        assert_same(&decode(&body).unwrap(), &m);

        // Damage anywhere after the envelope fails the checksum or header.
        for at in [body.len() - 1, body.len() - 5, body.len() / 2 + 4] {
            let mut bad = body.clone();
            bad[at] ^= 0x40;
            assert!(decode(&bad).is_err(), "flip at {at}");
        }
        // Truncated, or with bytes after the stream.
        assert!(decode(&body[..body.len() - 1]).is_err());
        let mut longer = body.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        // A stream of another snapshot than the envelope announces.
        let mut other = s.metadata.clone();
        other.index = Index(41);
        assert!(decode(&snapshot_body(&m, &other)).is_err());
        // A snapshot for another node, or from another than the sender.
        let stray = snapshot_message(a, nid(3), s.data.clone());
        let e = decode(&snapshot_body(&stray, &s.metadata)).unwrap_err();
        assert_eq!(e.status(), StatusCode::FORBIDDEN, "{e}");
    }
}
