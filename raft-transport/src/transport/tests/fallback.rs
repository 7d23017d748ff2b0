//! A peer of the previous version knows batches only: a lane falls back
//! to posting them, so a rolling upgrade keeps both directions working.

use std::convert::Infallible;

use hyper::service::service_fn;

use super::*;

/// A peer server of the previous version: `POST /raft/batch` delivers
/// into the returned channel, anything else is `404`.
async fn old_peer() -> (SocketAddr, UnboundedReceiver<Message>) {
    let listener = tokio::net::TcpListener::bind(loopback0()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let tx = tx.clone();
                async move {
                    let status = if req.uri().path() == BATCH_PATH {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        for m in raft_proto::decode_batch(&body).unwrap() {
                            let _ = tx.send(m);
                        }
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::NOT_FOUND
                    };
                    let mut reply = hyper::Response::new(Full::new(Bytes::new()));
                    *reply.status_mut() = status;
                    Ok::<_, Infallible>(reply)
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_the_previous_version_gets_batches_on_both_lanes() {
    let mut a = Node::any(1).await;
    let (addr, mut old) = old_peer().await;
    a.transport
        .add_peer(GROUP, nid(2), &format!("http://{addr}"));
    let want = [heartbeat(a.id, nid(2), 1), append(a.id, nid(2), 1, 2, 64)];
    a.transport.send(GROUP, want.to_vec());
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(timeout(WAIT, old.recv()).await.unwrap().unwrap());
    }
    got.sort_by_key(|m| m.body.kind_name());
    assert_same(&got[0], &want[1]);
    assert_same(&got[1], &want[0]);
    // And on: the lanes keep posting.
    a.transport.send(GROUP, vec![heartbeat(a.id, nid(2), 2)]);
    let next = timeout(WAIT, old.recv()).await.unwrap().unwrap();
    assert_eq!(next, heartbeat(a.id, nid(2), 2));
    let lane = a.metrics.lane(nid(2), Lane::Message).unwrap();
    eventually("both heartbeats counted", || lane.messages_sent() == 2).await;
    assert!(a.events.try_recv().is_err(), "nothing reported unreachable");
    assert_eq!(a.metrics.send_failures(), 0);
}
