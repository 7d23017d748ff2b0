//! Sending snapshots: paced to the configured rate, capped in number. The
//! pace is asserted as a lower bound only (a loaded machine is slower,
//! never faster); its arithmetic is the limiter's unit tests.

use super::*;

/// Node 1 sending snapshots under `send`, and node 2, knowing each other.
async fn sender(send: SnapshotSendConfig) -> (Node, Node) {
    let a = Node::start_config(TransportConfig {
        snapshot_send: send,
        ..config(1)
    })
    .await;
    let b = Node::any(2).await;
    a.knows(&b);
    b.knows(&a);
    (a, b)
}

/// The next snapshot report of `node`, skipping unreachable reports.
async fn next_snapshot_done(node: &mut Node) -> (NodeId, SnapshotStatus) {
    loop {
        match node.next_event().await {
            Event::SnapshotDone(to, status) => return (to, status),
            Event::Unreachable(_) => {}
            e => panic!("unexpected {e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_snapshot_takes_at_least_its_bytes_over_the_rate() {
    const RATE: u64 = 256 << 10;
    let send = SnapshotSendConfig {
        max_bytes_per_sec: Some(RATE),
        ..SnapshotSendConfig::new()
    };
    let (mut a, mut b) = sender(send).await;
    let data = Bytes::from(vec![9u8; 512 << 10]);
    let message = snapshot_message(a.id, b.id, data.clone());
    let started = Instant::now();
    a.transport.send(GROUP, vec![message.clone()]);
    assert_same(&b.next_delivered().await, &message);
    assert_eq!(
        next_snapshot_done(&mut a).await,
        (b.id, SnapshotStatus::Finished)
    );
    let took = started.elapsed().as_secs_f64();
    let ideal = data.len() as f64 / RATE as f64;
    assert!(took >= ideal * 0.9, "{took} s for {ideal} s worth of bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_over_the_send_cap_fails_at_once_and_the_one_in_flight_finishes() {
    // Paced, so the first is still in flight when the second is refused.
    let send = SnapshotSendConfig {
        max_bytes_per_sec: Some(256 << 10),
        max_concurrent: 1,
    };
    let (mut a, mut b) = sender(send).await;
    let first = snapshot_message(a.id, b.id, Bytes::from(vec![1u8; 256 << 10]));
    a.transport.send(GROUP, vec![first.clone()]);
    eventually("the first send holds the slot", || {
        a.transport.shared.snapshot_sends.available_permits() == 0
    })
    .await;
    let second = snapshot_message(a.id, b.id, Bytes::from(vec![2u8; 1000]));
    a.transport.send(GROUP, vec![second]);
    assert_eq!(
        next_snapshot_done(&mut a).await,
        (b.id, SnapshotStatus::Failed)
    );
    assert_eq!(a.metrics.snapshot_sends_refused(), 1);
    assert_same(&b.next_delivered().await, &first);
    assert_eq!(
        next_snapshot_done(&mut a).await,
        (b.id, SnapshotStatus::Finished)
    );
    b.no_pending_delivery();
    // The slot is free again.
    let third = snapshot_message(a.id, b.id, Bytes::from(vec![3u8; 1000]));
    a.transport.send(GROUP, vec![third.clone()]);
    assert_same(&b.next_delivered().await, &third);
    assert_eq!(
        next_snapshot_done(&mut a).await,
        (b.id, SnapshotStatus::Finished)
    );
}
