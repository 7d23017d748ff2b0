//! Not a test: a measurement, ignored by default. Run with
//! `cargo test --release -p raft-transport throughput -- --ignored --nocapture`.
//!
//! Compares one message at a time (send, wait for delivery) on a stream
//! with the same over stop-and-wait `POST /raft/batch` requests on one
//! kept-alive connection (the previous sender's way), and measures
//! pipelined appends with a window of messages in flight.

use super::*;

const ROUNDS: u64 = 5_000;
const PIPELINED: u64 = 200_000;
const WINDOW: u64 = 1_024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --release --ignored --nocapture"]
async fn throughput() {
    let a = Node::start(1, CLUSTER, loopback0(), 8192).await;
    let mut b = Node::start(2, CLUSTER, loopback0(), 8192).await;
    a.knows(&b);
    b.knows(&a);

    let started = Instant::now();
    for i in 0..ROUNDS {
        a.transport
            .send(GROUP, vec![append(a.id, b.id, 1 + i, 1, 128)]);
        b.next_delivered().await;
    }
    let stream = started.elapsed();

    let addr = b.transport.local_addr();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let started = Instant::now();
    for i in 0..ROUNDS {
        let body = raft_proto::encode_batch(&[append(a.id, b.id, 1 + i, 1, 128)]);
        let mut req = hyper::Request::post(BATCH_PATH).header("host", addr.to_string());
        for (name, value) in headers(CLUSTER, 1, 2) {
            req = req.header(name, value);
        }
        sender.ready().await.unwrap();
        let response = sender
            .send_request(req.body(Full::new(body)).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        response.into_body().collect().await.unwrap();
        b.next_delivered().await;
    }
    let batch = started.elapsed();

    let started = Instant::now();
    let (mut sent, mut delivered) = (0u64, 0u64);
    while delivered < PIPELINED {
        while sent < PIPELINED && sent - delivered < WINDOW {
            let burst: Vec<Message> = (sent..(sent + 64).min(PIPELINED))
                .map(|i| append(a.id, b.id, 1 + i, 1, 128))
                .collect();
            sent += burst.len() as u64;
            a.transport.send(GROUP, burst);
        }
        b.next_delivered().await;
        delivered += 1;
    }
    let pipelined = started.elapsed();
    assert_eq!(a.metrics.send_failures(), 0);
    let per = |d: Duration, n: u64| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "one at a time: stream {:.1} µs/message, stop-and-wait batch {:.1} µs/message; \
         pipelined appends (window {WINDOW}): {:.0} messages/s, {:.2} µs/message",
        per(stream, ROUNDS),
        per(batch, ROUNDS),
        PIPELINED as f64 / pipelined.as_secs_f64(),
        per(pipelined, PIPELINED),
    );
}
