//! Mutual TLS on the peer port: who may connect, and that a certificate
//! speaks only for the node it names, on both sides of a connection.

use std::path::PathBuf;
use std::time::SystemTime;

use raftkv_harness::certs::{CertAuthority, Issued, Validity};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;

use super::*;
use crate::tls::{PeerTls, TlsFiles, https_client_config};

/// A CA and the certificates it issued, in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertAuthority,
    issued: std::cell::Cell<u32>,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertAuthority::new("test CA", Validity::days_from_now(1)).unwrap();
        ca.issued().write(dir.path(), "ca").unwrap();
        Pki {
            dir,
            ca,
            issued: std::cell::Cell::new(0),
        }
    }

    fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Writes `issued` under a fresh name; its files, with this CA.
    fn files(&self, issued: &Issued) -> TlsFiles {
        let n = self.issued.get();
        self.issued.set(n + 1);
        let stem = format!("cert-{n}");
        issued.write(self.dir.path(), &stem).unwrap();
        TlsFiles {
            cert: self.dir.path().join(format!("{stem}.pem")),
            key: self.dir.path().join(format!("{stem}-key.pem")),
            ca: Some(self.ca_path()),
        }
    }

    /// Node `id`'s files: reached at `hosts`, valid for `validity`.
    fn node_files(&self, id: u64, hosts: &[&str], validity: Validity) -> TlsFiles {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        self.files(&self.ca.issue_node(nid(id), &hosts, validity).unwrap())
    }

    /// Node `id`'s files for 127.0.0.1, valid now.
    fn node(&self, id: u64) -> TlsFiles {
        self.node_files(id, &["127.0.0.1"], Validity::days_from_now(1))
    }

    /// A client-API certificate of this CA: it names no node.
    fn client_only(&self) -> TlsFiles {
        let issued = self.ca.issue_client("a client", Validity::days_from_now(1));
        self.files(&issued.unwrap())
    }

    fn peer_tls(&self, id: u64) -> PeerTls {
        PeerTls::load(nid(id), &self.node(id)).unwrap()
    }

    /// A client trusting this CA, presenting `identity` if given.
    fn client(&self, identity: Option<&TlsFiles>) -> Arc<ClientConfig> {
        let identity = identity.map(|f| (f.cert.as_path(), f.key.as_path()));
        https_client_config(&self.ca_path(), identity).unwrap()
    }
}

impl Node {
    async fn tls(id: u64, tls: PeerTls) -> Node {
        Node::start_config(TransportConfig {
            tls: Some(tls),
            ..config(id)
        })
        .await
    }
}

/// Two TLS nodes of `pki` that know each other.
async fn tls_pair(pki: &Pki) -> (Node, Node) {
    let a = Node::tls(1, pki.peer_tls(1)).await;
    let b = Node::tls(2, pki.peer_tls(2)).await;
    a.knows(&b);
    b.knows(&a);
    (a, b)
}

/// A `POST` over TLS with `client` to the peer port at `addr`: the
/// answer, or the first error (handshake, connection, response).
async fn tls_post(
    addr: SocketAddr,
    client: Arc<ClientConfig>,
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<(StatusCode, String), String> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::from(addr.ip());
    let stream = tokio_rustls::TlsConnector::from(client)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    exchange(stream, addr, BATCH_PATH, headers, body)
        .await
        .map_err(|e| format!("request: {e}"))
}

fn forged_heartbeat() -> Bytes {
    raft_proto::encode_batch(&[heartbeat(nid(1), nid(2), 1)])
}

/// A heartbeat "from node 1" to `b`, over TLS with `client`.
async fn attack(b: &Node, client: Arc<ClientConfig>) -> Result<(StatusCode, String), String> {
    let addr = b.transport.local_addr();
    tls_post(addr, client, &headers(CLUSTER, 1, 2), forged_heartbeat()).await
}

/// Asserts that `attempt` was refused at the handshake by `b`, which
/// delivered nothing and refused no HTTP request.
#[track_caller]
fn assert_refused_at_handshake(b: &mut Node, attempt: Result<(StatusCode, String), String>) {
    assert!(attempt.is_err(), "got an HTTP answer: {attempt:?}");
    b.no_pending_delivery();
    assert_eq!(b.metrics.requests_rejected(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_and_snapshots_flow_over_mutual_tls() {
    let pki = Pki::new();
    let (mut a, mut b) = tls_pair(&pki).await;
    a.transport.send(GROUP, vec![heartbeat(a.id, b.id, 1)]);
    assert_eq!(b.next_delivered().await, heartbeat(a.id, b.id, 1));
    let entries = append(a.id, b.id, 1, 3, 1000);
    a.transport.send(GROUP, vec![entries.clone()]);
    assert_same(&b.next_delivered().await, &entries);
    let snapshot = snapshot_message(b.id, a.id, Bytes::from(vec![3u8; 300_000]));
    b.transport.send(GROUP, vec![snapshot.clone()]);
    assert_same(&a.next_delivered().await, &snapshot);
    assert_eq!(
        b.next_event().await,
        Event::SnapshotDone(a.id, SnapshotStatus::Finished)
    );
    assert_eq!(a.metrics.tls_handshakes_refused(), 0);
    assert_eq!(b.metrics.tls_handshakes_refused(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_a_certificate_is_refused_at_the_handshake() {
    let pki = Pki::new();
    let (_a, mut b) = tls_pair(&pki).await;
    let addr = b.transport.local_addr();
    let attempt = attack(&b, pki.client(None)).await;
    assert_refused_at_handshake(&mut b, attempt);
    eventually("the refusal is counted", || {
        b.metrics.tls_handshakes_refused() == 1
    })
    .await;
    // Plain HTTP gets no further.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let plain = exchange(
        tcp,
        addr,
        BATCH_PATH,
        &headers(CLUSTER, 1, 2),
        forged_heartbeat(),
    )
    .await;
    assert_refused_at_handshake(&mut b, plain.map_err(|e| e.to_string()));
    eventually("the plain attempt is counted", || {
        b.metrics.tls_handshakes_refused() == 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_a_certificate_of_another_ca_or_an_expired_one_is_refused_at_the_handshake() {
    let pki = Pki::new();
    let (_a, mut b) = tls_pair(&pki).await;
    let other = Pki::new();
    let impostor = other.node(1);
    let attempt = attack(&b, pki.client(Some(&impostor))).await;
    assert_refused_at_handshake(&mut b, attempt);

    let day = Duration::from_secs(86_400);
    let expired = Validity {
        not_before: SystemTime::now() - 3 * day,
        not_after: SystemTime::now() - day,
    };
    let stale = pki.node_files(1, &["127.0.0.1"], expired);
    let attempt = attack(&b, pki.client(Some(&stale))).await;
    assert_refused_at_handshake(&mut b, attempt);
    // The right CA but no node named: a client-API certificate.
    let client_cert = pki.client_only();
    let attempt = attack(&b, pki.client(Some(&client_cert))).await;
    assert_refused_at_handshake(&mut b, attempt);
    eventually("every refusal is counted", || {
        b.metrics.tls_handshakes_refused() == 3
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_certificate_cannot_speak_for_another_node() {
    let pki = Pki::new();
    let (_a, mut b) = tls_pair(&pki).await;
    let c = Node::tls(3, pki.peer_tls(3)).await;
    b.knows(&c);
    let addr = b.transport.local_addr();
    let node3 = pki.client(Some(&pki.node(3)));
    // Node 3's certificate, claiming to be node 1.
    let (status, text) = tls_post(
        addr,
        Arc::clone(&node3),
        &headers(CLUSTER, 1, 2),
        forged_heartbeat(),
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("node 3 cannot speak for node 1"), "{text}");
    // Claiming node 3 in the headers, node 1 in the message.
    let (status, text) = tls_post(
        addr,
        Arc::clone(&node3),
        &headers(CLUSTER, 3, 2),
        forged_heartbeat(),
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    b.no_pending_delivery();
    // As itself it gets through.
    let own = raft_proto::encode_batch(&[heartbeat(c.id, b.id, 9)]);
    let (status, text) = tls_post(addr, node3, &headers(CLUSTER, 3, 2), own)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    assert_eq!(b.next_delivered().await, heartbeat(c.id, b.id, 9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_refuses_a_server_whose_certificate_names_another_node() {
    let pki = Pki::new();
    let mut a = Node::tls(1, pki.peer_tls(1)).await;
    let mut c = Node::tls(3, pki.peer_tls(3)).await;
    c.knows(&a);
    // Node 1 believes node 2 lives where node 3 does.
    a.transport.add_peer(GROUP, nid(2), c.url().as_str());
    a.transport.send(GROUP, vec![heartbeat(a.id, nid(2), 1)]);
    assert_eq!(a.next_event().await, Event::Unreachable(nid(2)));
    c.no_pending_delivery();
    assert_eq!(
        c.metrics.requests_rejected(),
        0,
        "node 1 sent nothing to the wrong node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_refuses_a_server_whose_certificate_does_not_name_the_url_host() {
    let pki = Pki::new();
    let mut a = Node::tls(1, pki.peer_tls(1)).await;
    let elsewhere = pki.node_files(
        2,
        &["10.9.9.9", "node2.invalid"],
        Validity::days_from_now(1),
    );
    let mut b = Node::tls(2, PeerTls::load(nid(2), &elsewhere).unwrap()).await;
    a.knows(&b);
    b.knows(&a);
    a.transport.send(GROUP, vec![heartbeat(a.id, b.id, 1)]);
    assert_eq!(a.next_event().await, Event::Unreachable(b.id));
    b.no_pending_delivery();
}

#[test]
fn peer_certificate_files_that_cannot_work_are_one_line_errors() {
    let pki = Pki::new();
    let good = pki.node(2);
    let missing = TlsFiles {
        cert: pki.dir.path().join("missing.pem"),
        ..good.clone()
    };
    let not_pem = TlsFiles {
        cert: pki.ca_path().with_file_name("garbage.pem"),
        ..good.clone()
    };
    std::fs::write(&not_pem.cert, b"not a certificate at all").unwrap();
    let key_of_another = TlsFiles {
        key: pki.node(2).key,
        ..good.clone()
    };
    let no_key = TlsFiles {
        key: good.cert.clone(),
        ..good.clone()
    };
    let no_ca = TlsFiles {
        ca: None,
        ..good.clone()
    };
    let client_only = pki.client_only();
    let cases: [(&TlsFiles, u64, &str); 7] = [
        (&missing, 2, "certificate"),
        (&not_pem, 2, "no certificate"),
        (&key_of_another, 2, "certificate, key and CA"),
        (&no_key, 2, "no private key"),
        (&no_ca, 2, "needs the CA"),
        (&good, 3, "node 2's certificate, not node 3's"),
        (&client_only, 2, "names no node"),
    ];
    for (files, id, needle) in cases {
        let e = PeerTls::load(nid(id), files).unwrap_err().to_string();
        assert!(e.contains(needle), "{files:?} as node {id}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    assert!(PeerTls::load(nid(2), &good).is_ok());
}

/// A TLS connection to `addr` with `client`, asking for `lane`'s stream
/// with `headers`: the answer's status, or why there is none.
async fn tls_stream(
    addr: SocketAddr,
    client: Arc<ClientConfig>,
    lane: Lane,
    headers: &[(&str, String)],
) -> (
    Result<u16, String>,
    Option<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::from(addr.ip());
    match tokio_rustls::TlsConnector::from(client)
        .connect(name, tcp)
        .await
    {
        Err(e) => (Err(format!("handshake: {e}")), None),
        Ok(mut io) => {
            let status = super::streams::ask(&mut io, lane, headers, true).await;
            (status, Some(io))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lane_refuses_a_peer_without_a_certificate_or_speaking_for_another_node() {
    let pki = Pki::new();
    let (mut a, mut b) = tls_pair(&pki).await;
    let c = Node::tls(3, pki.peer_tls(3)).await;
    b.knows(&c);
    let addr = b.transport.local_addr();
    let node3 = pki.client(Some(&pki.node(3)));
    for lane in Lane::ALL {
        let (status, _) = tls_stream(addr, pki.client(None), lane, &headers(CLUSTER, 1, 2)).await;
        assert!(
            status.is_err(),
            "{lane}: answered without a certificate: {status:?}"
        );
        let (status, _) = tls_stream(addr, Arc::clone(&node3), lane, &headers(CLUSTER, 1, 2)).await;
        assert_eq!(status, Ok(403), "{lane}: node 3 speaking for node 1");
        // As itself node 3 gets its stream, but its frames speak for it only.
        let (status, io) =
            tls_stream(addr, Arc::clone(&node3), lane, &headers(CLUSTER, 3, 2)).await;
        assert_eq!(status, Ok(101), "{lane}");
        let mut io = io.unwrap();
        let own = match lane {
            Lane::Message => heartbeat(c.id, b.id, 9),
            _ => append(c.id, b.id, 1, 1, 8),
        };
        io.write_all(&super::streams::message_frame(&own))
            .await
            .unwrap();
        assert_same(&b.next_delivered().await, &own);
        let forged = match lane {
            Lane::Message => heartbeat(a.id, b.id, 9),
            _ => append(a.id, b.id, 1, 1, 8),
        };
        io.write_all(&super::streams::message_frame(&forged))
            .await
            .unwrap();
        super::streams::closed_by_server(&mut io).await;
        b.no_pending_delivery();
    }
    eventually("the handshake refusals are counted", || {
        b.metrics.tls_handshakes_refused() == 2
    })
    .await;
    assert_eq!(b.metrics.stream_frames_refused(), 2);
    // The cluster still serves, on both lanes.
    a.transport.send(
        GROUP,
        vec![heartbeat(a.id, b.id, 1), append(a.id, b.id, 1, 1, 8)],
    );
    let mut got = [b.next_delivered().await, b.next_delivered().await];
    got.sort_by_key(|m| m.body.kind_name());
    assert_same(&got[0], &append(a.id, b.id, 1, 1, 8));
    assert_same(&got[1], &heartbeat(a.id, b.id, 1));
    assert!(a.events.try_recv().is_err(), "nothing reported unreachable");
}
