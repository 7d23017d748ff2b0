//! Lanes: pipelining, independence of the lanes, and every refusal a
//! stream can meet, at the upgrade and frame by frame. Raw streams are
//! written by hand here so the tests can send what no correct sender does.

use std::sync::Condvar;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};

use super::*;
use crate::frame::{self, KIND_MESSAGE, KIND_PING};

/// An inbox whose deliveries of appends wait while the gate is shut,
/// holding the append lane's receiving task (the message lane goes on).
struct GatedInbox {
    inner: ChanInbox,
    shut: std::sync::Mutex<bool>,
    changed: Condvar,
    /// Told each time an append starts waiting at the gate.
    holding: UnboundedSender<()>,
}

impl GatedInbox {
    fn open(&self) {
        *self.shut.lock().unwrap() = false;
        self.changed.notify_all();
    }
}

impl Inbound for GatedInbox {
    fn deliver(&self, group: GroupId, message: Message) {
        if matches!(message.body, MessageBody::Append(_)) {
            // The runtime thread hands its other tasks on while this waits.
            tokio::task::block_in_place(|| {
                let mut shut = self.shut.lock().unwrap();
                if *shut {
                    let _ = self.holding.send(());
                }
                while *shut {
                    shut = self.changed.wait(shut).unwrap();
                }
            });
        }
        self.inner.deliver(group, message);
    }
    fn unreachable(&self, group: GroupId, to: NodeId) {
        self.inner.unreachable(group, to);
    }
    fn snapshot_status(&self, group: GroupId, to: NodeId, status: SnapshotStatus) {
        self.inner.snapshot_status(group, to, status);
    }
    fn removed_by(&self, _by: NodeId) {}
}

/// Opens the gate when dropped, so a failing test cannot leave a runtime
/// thread blocked in it.
struct OpenOnDrop(Arc<GatedInbox>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// Node `config.id` whose append deliveries wait at a shut gate; the
/// receiver is told each time one starts waiting.
async fn gated(config: TransportConfig) -> (Node, OpenOnDrop, UnboundedReceiver<()>) {
    let (tx, events) = unbounded_channel();
    let (holding, held) = unbounded_channel();
    let inbox = Arc::new(GatedInbox {
        inner: ChanInbox(tx),
        shut: std::sync::Mutex::new(true),
        changed: Condvar::new(),
        holding,
    });
    let metrics = Arc::clone(&config.metrics);
    let id = config.id;
    let listener = PeerListener::bind(loopback0()).await.unwrap();
    let dyn_inbox: Arc<dyn Inbound> = Arc::clone(&inbox) as _;
    let transport = HttpTransport::start_with(listener, config, dyn_inbox);
    let node = Node {
        id,
        transport,
        events,
        metrics,
        scheme: "http",
    };
    (node, OpenOnDrop(inbox), held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_are_pipelined_and_heartbeats_pass_a_held_append_lane() {
    let a = Node::any(1).await;
    let (mut b, gate, mut held) = gated(config(2)).await;
    a.knows(&b);
    b.knows(&a);
    let appends: Vec<Message> = (0..6)
        .map(|k| append(a.id, b.id, 1 + k * 2, 2, 1024))
        .collect();
    a.transport.send(GROUP, vec![appends[0].clone()]);
    timeout(WAIT, held.recv())
        .await
        .expect("the first append reaches the gate");
    // The receiver holds the first append; the sender does not wait for it.
    for m in &appends[1..] {
        a.transport.send(GROUP, vec![m.clone()]);
    }
    let lane = a
        .metrics
        .lane(b.id, Lane::Append)
        .expect("the append lane is in use");
    eventually("every append written while none is consumed", || {
        lane.messages_sent() == 6
    })
    .await;
    // Heartbeats and their lane are not held behind the appends.
    a.transport.send(GROUP, vec![heartbeat(a.id, b.id, 1)]);
    assert_eq!(b.next_delivered().await, heartbeat(a.id, b.id, 1));
    b.no_pending_delivery();
    drop(gate);
    for want in &appends {
        assert_same(&b.next_delivered().await, want);
    }
    assert_eq!(lane.drops(), 0);
    assert!(
        lane.rtt_last().is_some(),
        "the upgrade round trip is measured"
    );
    a.transport.shutdown().await;
    b.transport.shutdown().await;
}

/// Reads `io` until the answer's head is in; its status code, or why there
/// is none.
async fn read_head<IO: AsyncRead + Unpin>(io: &mut IO) -> Result<u16, String> {
    let mut head = Vec::new();
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        match timeout(WAIT, io.read(&mut byte)).await.expect("an answer") {
            Ok(1) => head.push(byte[0]),
            Ok(_) => return Err(format!("closed after {:?}", String::from_utf8_lossy(&head))),
            Err(e) => return Err(e.to_string()),
        }
    }
    let text = String::from_utf8_lossy(&head);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {text:?}"))
}

/// Asks for `lane`'s stream on `io` with `headers` (and the upgrade
/// headers unless `upgrade` is false); the answer's status.
pub(super) async fn ask<IO>(
    io: &mut IO,
    lane: Lane,
    headers: &[(&str, String)],
    upgrade: bool,
) -> Result<u16, String>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = format!("POST {} HTTP/1.1\r\nhost: peer\r\n", lane.path());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if upgrade {
        head.push_str(&format!(
            "upgrade: {STREAM_PROTOCOL}\r\nconnection: upgrade\r\n"
        ));
    }
    head.push_str("content-length: 0\r\n\r\n");
    io.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    read_head(io).await
}

/// A stream from node `from` to node 2 at `addr` on `lane`, upgraded.
async fn raw_stream(addr: SocketAddr, from: u64, lane: Lane) -> tokio::net::TcpStream {
    let mut io = tokio::net::TcpStream::connect(addr).await.unwrap();
    let status = ask(&mut io, lane, &headers(CLUSTER, from, 2), true).await;
    assert_eq!(status, Ok(101));
    io
}

/// The status of a stream request to `addr` with `headers`.
async fn upgrade_status(addr: SocketAddr, lane: Lane, headers: &[(&str, String)]) -> u16 {
    let mut io = tokio::net::TcpStream::connect(addr).await.unwrap();
    ask(&mut io, lane, headers, true).await.unwrap()
}

/// Waits until the server closes `io`; whatever it wrote meanwhile
/// (pongs) is skipped.
pub(super) async fn closed_by_server<IO: AsyncRead + Unpin>(io: &mut IO) {
    let mut buf = [0u8; 256];
    loop {
        match timeout(WAIT, io.read(&mut buf))
            .await
            .expect("the server closes the stream")
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

pub(super) fn message_frame(m: &Message) -> Vec<u8> {
    let mut buf = BytesMut::new();
    frame::encode_message(GROUP, m, &mut buf);
    buf.to_vec()
}

#[tokio::test]
async fn stream_requests_are_checked_like_batches() {
    let (a, mut b) = pair().await;
    let addr = b.transport.local_addr();
    for lane in Lane::ALL {
        assert_eq!(
            upgrade_status(addr, lane, &headers(CLUSTER + 1, 1, 2)).await,
            403
        );
        assert_eq!(
            upgrade_status(addr, lane, &headers(CLUSTER, 1, 2)[1..]).await,
            403
        );
        assert_eq!(
            upgrade_status(addr, lane, &headers(CLUSTER, 9, 2)).await,
            403,
            "unknown"
        );
        assert_eq!(
            upgrade_status(addr, lane, &headers(CLUSTER, 1, 9)).await,
            403,
            "not for b"
        );
        let mut io = tokio::net::TcpStream::connect(addr).await.unwrap();
        let status = ask(&mut io, lane, &headers(CLUSTER, 1, 2), false).await;
        assert_eq!(status, Ok(400), "no upgrade header");
    }
    assert_eq!(b.metrics.requests_rejected(), 10);
    b.no_pending_delivery();
    // The cluster still serves its members.
    let mut a = a;
    a.transport.send(
        GROUP,
        vec![heartbeat(a.id, b.id, 1), append(a.id, b.id, 1, 1, 8)],
    );
    let mut got = [b.next_delivered().await, b.next_delivered().await];
    got.sort_by_key(|m| m.body.kind_name());
    assert_eq!(got[0].body.kind_name(), "Append", "{}", brief(&got[0]));
    assert_eq!(got[1], heartbeat(a.id, b.id, 1));
    assert!(a.events.try_recv().is_err(), "nothing reported unreachable");
}

#[tokio::test]
async fn bad_frames_close_their_stream_are_counted_and_never_delivered() {
    let (a, mut b) = pair().await;
    let addr = b.transport.local_addr();
    let oversized = {
        let mut f = vec![KIND_MESSAGE];
        f.put_u32_le(MAX_FRAME_BYTES as u32 + 1);
        f
    };
    let garbage = {
        let mut f = vec![KIND_MESSAGE];
        f.put_u32_le(6);
        f.extend_from_slice(b"\xff\xff\xffbad");
        f
    };
    let cases: Vec<(&str, Lane, Vec<u8>)> = vec![
        ("garbage", Lane::Message, garbage),
        ("oversized", Lane::Append, oversized),
        ("unknown kind", Lane::Message, vec![9, 0, 0, 0, 0]),
        (
            "wrong from",
            Lane::Message,
            message_frame(&heartbeat(nid(3), b.id, 1)),
        ),
        (
            "wrong to",
            Lane::Message,
            message_frame(&heartbeat(a.id, nid(3), 1)),
        ),
        (
            "heartbeat on the append lane",
            Lane::Append,
            message_frame(&heartbeat(a.id, b.id, 1)),
        ),
        (
            "append on the message lane",
            Lane::Message,
            message_frame(&append(a.id, b.id, 1, 1, 8)),
        ),
    ];
    for (n, (case, lane, bad)) in cases.into_iter().enumerate() {
        let mut io = raw_stream(addr, 1, lane).await;
        // A good frame first: delivered; then the bad one closes the stream.
        let good = if lane == Lane::Message {
            heartbeat(a.id, b.id, 100 + n as u64)
        } else {
            append(a.id, b.id, 1 + n as u64, 1, 8)
        };
        io.write_all(&message_frame(&good)).await.unwrap();
        assert_same(&b.next_delivered().await, &good);
        io.write_all(&bad).await.unwrap();
        io.write_all(&message_frame(&good)).await.unwrap_or(());
        closed_by_server(&mut io).await;
        assert_eq!(b.metrics.stream_frames_refused(), n as u64 + 1, "{case}");
        b.no_pending_delivery();
    }
    let lane = |l| b.metrics.lane(a.id, l).unwrap().bad_frames_received();
    assert_eq!((lane(Lane::Message), lane(Lane::Append)), (5, 2));
    let text = {
        let mut out = raft_host::PrometheusText::new();
        b.metrics.render("kv", &mut out);
        out.finish()
    };
    assert!(
        text.contains("kv_peer_lane_bad_frames_received_total{peer=\"1\",lane=\"append\"} 2"),
        "{text}"
    );
}

#[tokio::test]
async fn a_frame_that_stalls_midway_closes_its_stream() {
    let a = Node::any(1).await;
    let limits = ConnectionLimits {
        body_timeout: Duration::from_millis(200),
        ..ConnectionLimits::peer(64)
    };
    let mut b = Node::start_config(TransportConfig {
        limits,
        ..config(2)
    })
    .await;
    a.knows(&b);
    b.knows(&a);
    let mut io = raw_stream(b.transport.local_addr(), 1, Lane::Message).await;
    let whole = message_frame(&heartbeat(a.id, b.id, 1));
    io.write_all(&whole[..whole.len() - 3]).await.unwrap();
    closed_by_server(&mut io).await;
    assert_eq!(b.metrics.stream_frames_refused(), 1);
    b.no_pending_delivery();
}

#[tokio::test]
async fn pings_are_answered_and_a_newer_stream_replaces_the_older() {
    let (a, mut b) = pair().await;
    let addr = b.transport.local_addr();
    let mut older = raw_stream(addr, 1, Lane::Message).await;
    let mut ping = BytesMut::new();
    frame::encode_control(KIND_PING, 42, &mut ping);
    older.write_all(&ping).await.unwrap();
    let mut pong = [0u8; frame::HEADER_BYTES + 8];
    timeout(WAIT, older.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    let mut buf = BytesMut::from(&pong[..]);
    assert_eq!(
        frame::decode_frame(&mut buf, 64).unwrap(),
        Some(frame::Frame::Pong(42))
    );

    let mut newer = raw_stream(addr, 1, Lane::Message).await;
    closed_by_server(&mut older).await;
    newer
        .write_all(&message_frame(&heartbeat(a.id, b.id, 5)))
        .await
        .unwrap();
    assert_eq!(b.next_delivered().await, heartbeat(a.id, b.id, 5));
    assert_eq!(
        b.metrics.stream_frames_refused(),
        0,
        "a replaced stream is no bad frame"
    );
}

#[tokio::test]
async fn removing_a_peer_closes_its_streams_and_refuses_new_ones_with_410() {
    let (mut a, mut b) = pair().await;
    let addr = b.transport.local_addr();
    let mut raw = raw_stream(addr, 1, Lane::Append).await;
    a.transport.send(GROUP, vec![heartbeat(a.id, b.id, 1)]);
    assert_eq!(b.next_delivered().await, heartbeat(a.id, b.id, 1));

    b.transport.remove_peer(GROUP, a.id);
    closed_by_server(&mut raw).await;
    for lane in Lane::ALL {
        assert_eq!(
            upgrade_status(addr, lane, &headers(CLUSTER, 1, 2)).await,
            410
        );
    }
    // A's own message stream was closed too: its next sends are refused.
    loop {
        a.transport.send(GROUP, vec![heartbeat(a.id, b.id, 2)]);
        if let Event::Unreachable(to) = a.next_event().await {
            assert_eq!(to, b.id);
            break;
        }
    }
    b.no_pending_delivery();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_carry_their_metrics_to_the_exposition() {
    let (a, mut b) = pair().await;
    a.transport.send(
        GROUP,
        vec![heartbeat(a.id, b.id, 1), append(a.id, b.id, 1, 2, 100)],
    );
    b.next_delivered().await;
    b.next_delivered().await;
    let message = a.metrics.lane(b.id, Lane::Message).unwrap();
    let appends = a.metrics.lane(b.id, Lane::Append).unwrap();
    eventually("both lanes counted", || {
        message.messages_sent() == 1 && appends.messages_sent() == 1
    })
    .await;
    assert!(appends.bytes_sent() > 200, "{}", appends.bytes_sent());
    assert_eq!(message.queue_depth(), 0);
    assert_eq!((message.reconnects(), message.drops()), (0, 0));
    assert!(message.rtt_ewma().is_some());
    let mut out = raft_host::PrometheusText::new();
    a.metrics.render("kv", &mut out);
    let text = out.finish();
    for line in [
        "kv_peer_lane_messages_sent_total{peer=\"2\",lane=\"message\"} 1",
        "kv_peer_lane_messages_sent_total{peer=\"2\",lane=\"append\"} 1",
        "kv_peer_lane_queue_depth{peer=\"2\",lane=\"append\"} 0",
        "# TYPE kv_peer_lane_rtt_ewma_microseconds gauge",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}
