//! Requests refused at the headers or the body: wrong cluster, unknown or
//! removed senders, misaddressed messages, garbage, oversized and stalled
//! bodies, and connections over the cap. Streams meet the same header
//! checks (`streams.rs`).

use super::*;

#[tokio::test]
async fn a_wrong_or_missing_cluster_id_is_refused() {
    let (a, mut b) = pair().await;
    let addr = b.transport.local_addr();
    let body = raft_proto::encode_batch(&[heartbeat(a.id, b.id, 1)]);
    let (status, text) = post(addr, BATCH_PATH, &headers(CLUSTER + 1, 1, 2), body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(text.contains("cluster id mismatch"), "{text}");
    let (status, _) = post(addr, BATCH_PATH, &headers(CLUSTER, 1, 2)[1..], body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    b.no_pending_delivery();
    assert_eq!(b.metrics.requests_rejected(), 2);

    // A whole transport of another cluster: refused, reported unreachable.
    let mut c = Node::start(3, CLUSTER + 1, loopback0(), 64).await;
    c.knows(&b);
    b.knows(&c);
    c.transport.send(GROUP, vec![heartbeat(c.id, b.id, 1)]);
    assert_eq!(c.next_event().await, Event::Unreachable(b.id));
    b.no_pending_delivery();
    assert_eq!(b.metrics.requests_rejected(), 3);
    // The proper sender still gets through.
    let (status, _) = post(addr, BATCH_PATH, &headers(CLUSTER, 1, 2), body).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(b.next_delivered().await, heartbeat(a.id, b.id, 1));
}

#[tokio::test]
async fn a_wrong_cluster_refusal_does_not_reveal_the_right_cluster_id() {
    let (a, b) = pair().await;
    let addr = b.transport.local_addr();
    let body = raft_proto::encode_batch(&[heartbeat(a.id, b.id, 1)]);
    let (status, text) = post(addr, BATCH_PATH, &headers(CLUSTER + 1, 1, 2), body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let ours = format!("{CLUSTER:016x}");
    assert!(!text.contains(&ours), "the refusal reveals {ours}: {text}");
    assert!(
        !text.contains(&CLUSTER.to_string()),
        "the refusal reveals the id in decimal: {text}"
    );
    assert!(text.contains("cluster id mismatch"), "{text}");
}

#[tokio::test]
async fn unknown_and_removed_senders_are_refused() {
    let (a, mut b) = pair().await;
    let stranger = Node::any(9).await;
    let addr = b.transport.local_addr();

    // Unknown in the headers.
    let body = raft_proto::encode_batch(&[heartbeat(stranger.id, b.id, 1)]);
    let (status, text) = post(addr, BATCH_PATH, &headers(CLUSTER, 9, 2), body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    // Known sender in the headers, but a message claiming another sender.
    let body =
        raft_proto::encode_batch(&[heartbeat(a.id, b.id, 1), heartbeat(stranger.id, b.id, 2)]);
    let (status, text) = post(addr, BATCH_PATH, &headers(CLUSTER, 1, 2), body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    // A message for another node.
    let body = raft_proto::encode_batch(&[heartbeat(a.id, stranger.id, 1)]);
    let (status, text) = post(addr, BATCH_PATH, &headers(CLUSTER, 1, 2), body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    // A request for another node.
    let body = raft_proto::encode_batch(&[heartbeat(a.id, b.id, 1)]);
    let (status, text) = post(addr, BATCH_PATH, &headers(CLUSTER, 1, 9), body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    b.no_pending_delivery();

    // Removed: 410, also through a real transport.
    b.transport.remove_peer(GROUP, a.id);
    let (status, text) = post(addr, BATCH_PATH, &headers(CLUSTER, 1, 2), body).await;
    assert_eq!(status, StatusCode::GONE, "{text}");
    let mut a = a;
    a.transport.send(GROUP, vec![heartbeat(a.id, b.id, 5)]);
    assert_eq!(a.next_event().await, Event::Unreachable(b.id));
    b.no_pending_delivery();
    assert_eq!(b.metrics.requests_rejected(), 6);
    stranger.transport.shutdown().await;
}

#[tokio::test]
async fn garbage_and_oversized_bodies_are_refused() {
    let (a, mut b) = pair().await;
    let addr = b.transport.local_addr();
    let (status, text) = post(
        addr,
        BATCH_PATH,
        &headers(CLUSTER, 1, 2),
        Bytes::from_static(b"\xff\xff\xff\xff this is not protobuf"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    let (status, text) = post(
        addr,
        SNAPSHOT_PATH,
        &headers(CLUSTER, 1, 2),
        Bytes::from_static(b"\x03\x00\x00\x00abcdefgh"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    // A snapshot with a valid envelope whose stream is corrupt.
    let m = snapshot_message(a.id, b.id, Bytes::from_static(b"data"));
    let envelope = raft_proto::encode_message(&m);
    let mut body = (envelope.len() as u32).to_le_bytes().to_vec();
    body.extend_from_slice(&envelope);
    body.extend_from_slice(b"not a snapshot stream at all, no magic");
    let (status, text) = post(addr, SNAPSHOT_PATH, &headers(CLUSTER, 1, 2), body.into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    // Declared too large: refused before the body is sent.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("POST {BATCH_PATH} HTTP/1.1\r\nhost: {addr}\r\n");
    for (name, value) in headers(CLUSTER, 1, 2) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\n\r\n",
        MAX_BATCH_RECEIVE_BYTES + 1
    ));
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    while !response.windows(2).any(|w| w == b"\r\n") {
        let mut buf = [0u8; 512];
        let n = timeout(WAIT, stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed without a response");
        response.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    let (status, _) = post(addr, "/nope", &headers(CLUSTER, 1, 2), Bytes::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    b.no_pending_delivery();
    assert_eq!(b.metrics.requests_rejected(), 5);
}

#[tokio::test]
async fn a_stalled_batch_body_gets_408_and_idle_or_surplus_peer_connections_are_closed() {
    let limits = ConnectionLimits {
        max_connections: 3,
        idle_timeout: Duration::from_millis(200),
        body_timeout: Duration::from_millis(200),
    };
    let a = Node::any(1).await;
    let b = Node::start_config(TransportConfig {
        limits,
        ..config(2)
    })
    .await;
    b.knows(&a);
    let addr = b.transport.local_addr();
    // A batch whose body stops after 10 of its 100 bytes.
    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("POST {BATCH_PATH} HTTP/1.1\r\nhost: {addr}\r\n");
    for (name, value) in headers(CLUSTER, 1, 2) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("content-length: 100\r\n\r\n0123456789");
    stalled.write_all(head.as_bytes()).await.unwrap();
    let text = read_status_line(&mut stalled).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    // A connection that never sends a request is closed.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        read_status_line(&mut idle).await,
        "",
        "closed without a word"
    );
    // Over the cap of 3: the fourth of four connections gets 503.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let mut surplus = tokio::net::TcpStream::connect(addr).await.unwrap();
    let text = read_status_line(&mut surplus).await;
    assert!(text.starts_with("HTTP/1.1 503"), "{text:?}");
    assert!(b.metrics.connections().refused() >= 1);
}

/// Reads from `stream` until the status line is in, or the connection
/// closes; returns what arrived.
async fn read_status_line(stream: &mut tokio::net::TcpStream) -> String {
    let mut response = Vec::new();
    while !response.windows(2).any(|w| w == b"\r\n") {
        let mut buf = [0u8; 512];
        let n = timeout(WAIT, stream.read(&mut buf)).await.unwrap().unwrap();
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&response).into_owned()
}
