//! Receiving snapshots: streamed to disk in bounded memory, capped in size
//! and in how many arrive at once. Memory is asserted on the receiver's
//! own count of buffered body bytes, which its bounded pipeline fixes,
//! never on timing.

use std::io;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::*;

/// Body frames fed to uploads, like the sender's chunks.
const FRAME: usize = 256 << 10;
/// No receive may hold more body bytes than this in memory at once: a few
/// frames of hyper's read buffer (at most about 400 KiB each).
const BUFFERED_BOUND: u64 = 4 << 20;

/// Node 2, which knows node 1, taking snapshots of at most `max_bytes`,
/// `max_concurrent` at once.
async fn receiver(max_bytes: u64, max_concurrent: usize) -> (Node, Node) {
    let a = Node::any(1).await;
    let spill = std::env::temp_dir();
    let b = Node::start_config(TransportConfig {
        snapshot_receive: SnapshotReceiveConfig {
            dir: spill,
            max_bytes,
            max_concurrent,
        },
        ..config(2)
    })
    .await;
    a.knows(&b);
    b.knows(&a);
    (a, b)
}

/// A snapshot upload from node 1 to node 2 whose body the test feeds.
struct Upload {
    body: mpsc::Sender<Result<Bytes, io::Error>>,
    response: JoinHandle<(StatusCode, String)>,
}

impl Upload {
    async fn start(addr: SocketAddr) -> Upload {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let (body, rx) = mpsc::channel(4);
        let mut req = hyper::Request::post(SNAPSHOT_PATH).header("host", addr.to_string());
        for (name, value) in headers(CLUSTER, 1, 2) {
            req = req.header(name, value);
        }
        let req = req.body(snapshot::ChannelBody::new(rx)).unwrap();
        let response = tokio::spawn(async move {
            let response = sender.send_request(req).await.unwrap();
            let status = response.status();
            let text = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&text).into_owned())
        });
        Upload { body, response }
    }

    /// Feeds `bytes`; false if the server stopped reading.
    async fn feed(&self, bytes: Bytes) -> bool {
        self.body.send(Ok(bytes)).await.is_ok()
    }

    /// Feeds `len` zero bytes in frames; false if the server stopped reading.
    async fn feed_zeros(&self, len: usize) -> bool {
        let frame = Bytes::from(vec![0u8; FRAME]);
        let mut left = len;
        while left > 0 {
            let n = left.min(FRAME);
            if !self.feed(frame.slice(..n)).await {
                return false;
            }
            left -= n;
        }
        true
    }

    async fn response(self) -> (StatusCode, String) {
        drop(self.body);
        timeout(WAIT, self.response)
            .await
            .expect("an answer before the deadline")
            .unwrap()
    }
}

/// The start of a snapshot body announcing `data_len` bytes of data: the
/// envelope, then the stream header.
fn snapshot_head(data_len: u64) -> Bytes {
    let m = snapshot_message(nid(1), nid(2), Bytes::new());
    let MessageBody::Snapshot(s) = &m.body else {
        unreachable!()
    };
    let envelope = raft_proto::encode_message(&m);
    let mut head = (envelope.len() as u32).to_le_bytes().to_vec();
    head.extend_from_slice(&envelope);
    let _ = raft_snap::SnapshotEncoder::new(&mut head, &s.metadata, data_len).unwrap();
    head.into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_snapshot_body_is_refused_without_being_buffered_whole() {
    let (_a, mut b) = receiver(MAX_SNAPSHOT_BYTES, 2).await;
    let len = 64 << 20;
    let upload = Upload::start(b.transport.local_addr()).await;
    assert!(upload.feed(snapshot_head(len as u64)).await);
    assert!(upload.feed_zeros(len).await, "the server read the data");
    assert!(upload.feed(Bytes::from_static(b"!crc")).await);
    let (status, text) = upload.response().await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("checksum"), "{text}");
    let peak = b.metrics.snapshot_bytes_buffered_peak();
    assert!(
        peak <= BUFFERED_BOUND,
        "{peak} bytes of a {len}-byte body were held in memory at once"
    );
    assert!(peak > 0, "the receive counted what it buffered");
    b.no_pending_delivery();
    eventually("the receive ends", || {
        b.metrics.snapshot_receives_in_progress() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_snapshot_is_refused_from_its_header() {
    let (_a, mut b) = receiver(1 << 20, 2).await;
    let upload = Upload::start(b.transport.local_addr()).await;
    assert!(upload.feed(snapshot_head(2 << 20)).await);
    // The data never comes: the answer must not wait for it.
    let response = timeout(WAIT, upload.response)
        .await
        .expect("refused before the data arrived")
        .unwrap();
    assert_eq!(response.0, StatusCode::PAYLOAD_TOO_LARGE, "{}", response.1);
    b.no_pending_delivery();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_receive_beyond_the_cap_is_refused_with_503_and_counted() {
    let (a, mut b) = receiver(MAX_SNAPSHOT_BYTES, 1).await;
    let addr = b.transport.local_addr();
    // The first upload holds the only receive slot, half sent.
    let first = Upload::start(addr).await;
    assert!(first.feed(snapshot_head(1 << 20)).await);
    assert!(first.feed_zeros(FRAME).await);
    eventually("the first upload is being received", || {
        b.metrics.snapshot_receives_in_progress() == 1
    })
    .await;
    let m = snapshot_message(a.id, b.id, Bytes::from(vec![5u8; 1000]));
    let MessageBody::Snapshot(s) = &m.body else {
        unreachable!()
    };
    let body = Bytes::from(snapshot_body(&m, &s.metadata));
    let (status, text) = post(addr, SNAPSHOT_PATH, &headers(CLUSTER, 1, 2), body.clone()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(text.contains("snapshot"), "{text}");
    assert_eq!(b.metrics.snapshot_receives_refused(), 1);
    b.no_pending_delivery();

    // The first ends early (refused as truncated), which frees the slot.
    let (status, text) = first.response().await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    eventually("the slot is free", || {
        b.metrics.snapshot_receives_in_progress() == 0
    })
    .await;
    let (status, text) = post(addr, SNAPSHOT_PATH, &headers(CLUSTER, 1, 2), body).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    assert_same(&b.next_delivered().await, &m);
}
