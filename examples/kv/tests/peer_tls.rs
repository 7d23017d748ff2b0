//! Mutual TLS on the peer port and TLS on the client API, end to end with
//! real processes (issue #15, item 1).

mod support;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use raft_core::{Heartbeat, Index, Message, MessageBody, NodeId, Term};
use raft_transport::{PeerUrl, https_client_config};
use raftkv_harness::certs::CertPaths;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use support::{ClusterBuilder, Process, eventually, free_port, write_certs};

/// One HTTP/1.1 request over `stream`: the status and body, or the first
/// error (connection, answer).
async fn request_over<S>(
    stream: S,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(StatusCode, String), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("http: {e}"))?;
    tokio::spawn(conn);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

async fn connect(addr: std::net::SocketAddr) -> Result<tokio::net::TcpStream, String> {
    tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))
}

/// One request over TLS with `client` to `addr`: the status and body, or
/// the first error (handshake, connection, answer).
async fn tls_request(
    addr: std::net::SocketAddr,
    client: Arc<ClientConfig>,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(StatusCode, String), String> {
    let stream = tokio_rustls::TlsConnector::from(client)
        .connect(ServerName::from(addr.ip()), connect(addr).await?)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    request_over(stream, request).await
}

/// One plain HTTP/1.1 request to `addr`.
async fn plain_request(
    addr: std::net::SocketAddr,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(StatusCode, String), String> {
    request_over(connect(addr).await?, request).await
}

/// A heartbeat from "node 1" to node 2 with the largest term the wire
/// accepts: the message that, unauthenticated, moved a whole cluster to a
/// term it could never elect past.
fn forged_heartbeat(cluster: u64) -> hyper::Request<Full<Bytes>> {
    let message = Message {
        from: NodeId::new(1).expect("non-zero"),
        to: NodeId::new(2).expect("non-zero"),
        term: Term(raft_proto::MAX_TERM_OR_INDEX),
        body: MessageBody::Heartbeat(Heartbeat {
            commit: Index(0),
            read_round: None,
        }),
    };
    hyper::Request::post("/raft/batch")
        .header("x-raftkv-cluster-id", format!("{cluster:016x}"))
        .header("x-raftkv-from", "1")
        .header("x-raftkv-to", "2")
        .body(Full::new(raft_proto::encode_batch(&[message])))
        .expect("a valid request")
}

fn client_trusting(certs: &CertPaths, identity: Option<(&Path, &Path)>) -> Arc<ClientConfig> {
    https_client_config(&certs.ca(), identity).expect("client configuration")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_heartbeats_without_a_valid_certificate_are_refused_at_the_handshake() {
    let c = ClusterBuilder::default().tls().start().await;
    c.put(1, "before", "1").await;
    let certs = c.certs.clone().expect("a TLS cluster");
    let urls: Vec<PeerUrl> = (1..=3)
        .map(|id| PeerUrl::parse(&c.peer_url(id)).expect("peer URL"))
        .collect();
    let target = urls[1].addr();
    let cluster = cluster_of(&urls);

    // No certificate; then node 1's identity from another CA.
    let other = tempfile::tempdir().expect("temp dir");
    let other = write_certs(other.path());
    let (cert, key) = (other.node_cert(1), other.node_key(1));
    for client in [
        client_trusting(&certs, None),
        client_trusting(&certs, Some((&cert, &key))),
    ] {
        let attempt = tls_request(target, client, forged_heartbeat(cluster)).await;
        assert!(
            attempt.is_err(),
            "the forged heartbeat got an answer: {attempt:?}"
        );
    }
    eventually("node 2 counts both refusals", || async {
        let n = c
            .metric(2, "raftkv_peer_tls_handshakes_refused_total")
            .await?;
        (n >= 2).then_some(())
    })
    .await;
    assert_eq!(
        c.metric(2, "raftkv_peer_requests_rejected_total").await,
        Some(0),
        "nothing got as far as HTTP"
    );

    c.put(2, "after", "2").await;
    for id in 1..=3 {
        assert_eq!(c.get(id, "before").await.as_deref(), Some("1"));
        assert_eq!(c.get(id, "after").await.as_deref(), Some("2"));
        let term = c.status(id).await.expect("status")["term"].as_u64();
        assert!(term < Some(1000), "node {id} is at term {term:?}");
    }
    for id in 1..=3 {
        assert!(
            !c.log(id).contains("peer port is unauthenticated"),
            "node {id} warned about a plain peer port"
        );
    }
}

/// The attack of issue #15 on an unauthenticated peer port: a heartbeat at
/// the largest term the wire accepts, under the leader's id. Before the
/// term bound, all three nodes moved to that term and no election could
/// follow (the next term does not decode), for good. Now raft-core refuses
/// it as too far ahead, counts it, and the cluster keeps electing and
/// serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_heartbeat_at_the_largest_term_leaves_a_plain_cluster_electing_and_serving() {
    let mut c = ClusterBuilder::default().start().await;
    c.put(1, "before", "1").await;
    let urls: Vec<PeerUrl> = (1..=3)
        .map(|id| PeerUrl::parse(&c.peer_url(id)).expect("peer URL"))
        .collect();
    let cluster = cluster_of(&urls);
    let (status, _) = plain_request(urls[1].addr(), forged_heartbeat(cluster))
        .await
        .expect("the plain port answers");
    // The transport delivers it (it decodes); raft-core refuses it.
    assert_eq!(status, StatusCode::NO_CONTENT);
    eventually("node 2 counts the refused term", || async {
        let n = c
            .metric(2, "raftkv_peer_messages_term_too_far_ahead_total")
            .await?;
        (n >= 1).then_some(())
    })
    .await;

    // Elections go on: the leader goes away and the others elect one.
    let leader = c.wait_leader().await;
    c.kill(leader);
    let survivor = (1..=3).find(|&id| id != leader).expect("two survivors");
    eventually("a new leader among the survivors", || async {
        let st = c.status(survivor).await?;
        let lead = st["leader"].as_u64()?;
        (lead != leader).then_some(())
    })
    .await;
    c.put(survivor, "after", "2").await;
    for id in (1..=3).filter(|&id| id != leader) {
        assert_eq!(c.get(id, "before").await.as_deref(), Some("1"));
        assert_eq!(c.get(id, "after").await.as_deref(), Some("2"));
        let term = c.status(id).await.expect("status")["term"].as_u64();
        assert!(term < Some(1000), "node {id} is at term {term:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_peer_port_is_announced_with_exactly_one_warning() {
    let c = ClusterBuilder::default().start().await;
    c.put(1, "k", "v").await;
    for id in 1..=3 {
        let log = c.log(id);
        let warnings = log.matches("peer port is unauthenticated").count();
        assert_eq!(warnings, 1, "node {id}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mtls_cluster_adds_a_node_that_catches_up_by_snapshot() {
    let mut c = ClusterBuilder::default()
        .tls()
        .snapshot_count(30)
        .catch_up_entries(5)
        .start()
        .await;
    c.add_node_behind_a_snapshot(100, 4).await;
    let leader = c.wait_leader().await;
    // A plain URL is refused for a TLS cluster.
    let plain = format!("http://127.0.0.1:{}", free_port());
    let e = c
        .client
        .add_node(&c.endpoint(leader), 5, &plain)
        .await
        .expect_err("a plain peer URL");
    assert_eq!(e.status(), Some(400), "{e}");
}

/// `raftkv <args>` exits 2 with one line on stderr containing `needle`.
async fn exits_2_with_one_line(dir: &Path, args: &[String], needle: &str) {
    let mut p = Process::spawn(args, dir.join("stderr.txt"));
    let status = p.exit_within_deadline().await;
    let stderr = p.stderr();
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_or_broken_tls_configurations_exit_2_with_one_line() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let certs = write_certs(&tmp.path().join("certs"));
    let https = format!(
        "https://127.0.0.1:{},https://127.0.0.1:{}",
        free_port(),
        free_port()
    );
    let http = https.replace("https", "http");
    let mixed = format!(
        "https://127.0.0.1:{},http://127.0.0.1:{}",
        free_port(),
        free_port()
    );
    let data = tmp.path().join("data").display().to_string();
    let flags = |id: u64| -> Vec<String> {
        let mut f: Vec<String> = certs
            .peer_flags(id)
            .into_iter()
            .map(|s| s.into_string().expect("utf-8"))
            .collect();
        f.extend(["--data-dir".to_string(), data.clone()]);
        f.extend(["--port".to_string(), free_port().to_string()]);
        f
    };
    let node = |cluster: &str, extra: Vec<String>| -> Vec<String> {
        let mut a = vec![
            "--id".into(),
            "1".into(),
            "--cluster".into(),
            cluster.into(),
        ];
        a.extend(extra);
        a
    };
    let garbage = tmp.path().join("garbage.pem");
    std::fs::write(&garbage, "not PEM").expect("write");
    let mut with_garbage_key = flags(1);
    with_garbage_key[3] = garbage.display().to_string();
    let mut with_missing_ca = flags(1);
    with_missing_ca[5] = tmp.path().join("missing.pem").display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            node(&https, vec![]),
            "--peer-cert, --peer-key and --peer-ca",
        ),
        (node(&http, flags(1)), "need https:// URLs"),
        (node(&mixed, flags(1)), "mixes http:// and https://"),
        (node(&https, flags(1)[..4].to_vec()), "go together"),
        (node(&https, flags(2)), "node 2's certificate, not node 1's"),
        (node(&https, with_garbage_key), "--peer-key"),
        (node(&https, with_missing_ca), "--peer-ca"),
        (
            node(
                &http,
                vec!["--client-cert".into(), garbage.display().to_string()],
            ),
            "--client-cert and --client-key",
        ),
    ];
    for (args, needle) in cases {
        exits_2_with_one_line(tmp.path(), &args, needle).await;
    }
    assert!(
        !tmp.path().join("data").exists(),
        "a node that cannot start creates no data directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_api_serves_over_tls_and_can_require_client_certificates() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let certs = write_certs(&tmp.path().join("certs"));
    let port = free_port();
    let mut args: Vec<String> = vec![
        "--id".into(),
        "1".into(),
        "--cluster".into(),
        format!("http://127.0.0.1:{}", free_port()),
        "--port".into(),
        port.to_string(),
        "--data-dir".into(),
        tmp.path().join("data").display().to_string(),
    ];
    for (flag, path) in [
        ("--client-cert", certs.node_cert(1)),
        ("--client-key", certs.node_key(1)),
        ("--client-ca", certs.ca()),
    ] {
        args.extend([flag.to_string(), path.display().to_string()]);
    }
    let _node = Process::spawn(&args, tmp.path().join("node.err"));
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let (cert, key) = (certs.client_cert(), certs.client_key());
    let with_cert = client_trusting(&certs, Some((&cert, &key)));
    let status = |client: Arc<ClientConfig>| {
        let request = hyper::Request::get("/status")
            .header("host", addr.to_string())
            .body(Full::new(Bytes::new()))
            .expect("a valid request");
        tls_request(addr, client, request)
    };
    let (code, body) = eventually("the node serves /status over TLS", || async {
        status(Arc::clone(&with_cert)).await.ok()
    })
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(body.contains("\"id\":1"), "{body}");

    let without = status(client_trusting(&certs, None)).await;
    assert!(
        without.is_err(),
        "answered without a client certificate: {without:?}"
    );
    let (_, metrics) = tls_request(
        addr,
        with_cert,
        hyper::Request::get("/metrics")
            .header("host", addr.to_string())
            .body(Full::new(Bytes::new()))
            .expect("a valid request"),
    )
    .await
    .expect("metrics over TLS");
    assert!(
        metrics.contains("raftkv_client_tls_handshakes_refused_total 1"),
        "{metrics}"
    );
}

/// The cluster id the founders at `urls` share (raft-host's hash of their
/// peer addresses, in id order).
fn cluster_of(urls: &[PeerUrl]) -> u64 {
    let founders: Vec<raft_host::Peer> = (1..)
        .zip(urls)
        .map(|(id, url)| raft_host::Peer::new(raft_core::NodeId::new(id).unwrap(), url.as_str()))
        .collect();
    raft_host::cluster_id(&founders)
}
