//! # raft-transport
//!
//! A peer transport for [raft-host](raft_host): protobuf message batches
//! over HTTP/1.1 ([hyper]), with snapshots streamed on connections of
//! their own and received in bounded memory. [`HttpTransport`] implements
//! [`raft_host::Transport`] and delivers what arrives into the host's
//! [`Inbox`](raft_host::Inbox), so a node built on raft-host gets its
//! network by starting one and handing it to
//! [`Host::start_group`](raft_host::Host::start_group).
//!
//! Every node runs a peer server on its peer port and one sender per peer,
//! with one bounded queue each: a message that does not fit, or whose
//! request fails, is dropped and its peer reported unreachable, which Raft
//! tolerates. Every request is checked before anything reaches Raft: the
//! cluster id, a sender that is a known member (not a removed one), a
//! target that is this node, messages from the sender only. With mutual
//! TLS ([`PeerTls`]) a certificate speaks only for the node it names.
//! Connection caps and timeouts ([`ConnectionLimits`]) keep a flood of
//! idle connections from taking the node's file descriptors.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use raft_core::NodeId;
//! use raft_host::{GroupId, Host};
//! use raft_transport::{HttpTransport, PeerListener, PeerUrl, TransportConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let id = NodeId::new(1).expect("non-zero");
//! let host = Host::new(id);
//! // Bound before anything touches the data directory: a taken port
//! // fails the start early.
//! let listener = PeerListener::bind("127.0.0.1:12379".parse()?).await?;
//! let mut config = TransportConfig::new(id, GroupId(1), "/var/lib/node-1");
//! config.cluster_id = Some(0x7261_6674);
//! config.peers = vec![(NodeId::new(2).expect("non-zero"), PeerUrl::parse("http://127.0.0.1:22379")?)];
//! let transport = Arc::new(HttpTransport::start(listener, config, host.inbox()));
//! // host.start_group(options, storage, state_machine, Arc::clone(&transport) as _)?;
//! // ... and once the group has stopped:
//! transport.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Wire format
//!
//! * `POST /raft/batch` ([`BATCH_PATH`]): the body is one `MessageBatch`
//!   ([`raft_proto::encode_batch`]) of messages, in sending order. A sender
//!   keeps one persistent connection per peer and sends one request at a
//!   time; whatever queued up while a request was in flight goes into the
//!   next one, up to [`MAX_BATCH_SEND_BYTES`].
//! * `POST /raft/snapshot` ([`SNAPSHOT_PATH`]): one snapshot message,
//!   streamed in chunks on a connection of its own: a 4-byte little-endian
//!   length, the message envelope ([`raft_proto::encode_message`] of the
//!   message with empty snapshot data), then the snapshot in `raft-snap`'s
//!   CRC-checked stream format ([`raft_snap::SnapshotEncoder`]).
//!
//! Every request carries the headers [`HEADER_CLUSTER_ID`] (16 lowercase
//! hex digits), [`HEADER_FROM`] and [`HEADER_TO`] (decimal node ids). The
//! format names no group: a transport carries one
//! ([`TransportConfig::group`]).
//!
//! With [`TransportConfig::tls`] every connection, both ways, is mutual TLS
//! ([`PeerTls`]): the server refuses at the handshake a client
//! without a certificate of the CA naming a node (a URI subject
//! alternative name `raftkv://node/<id>`, [`identity_uri`]; counted in
//! [`TransportMetrics::tls_handshakes_refused`]) and answers `403` to a
//! request whose [`HEADER_FROM`] is not the node its certificate names; a
//! sender sends nothing to a server whose certificate is not valid for the
//! URL's host or names another node than the one it meant. Without TLS the
//! port is plain HTTP and [`HttpTransport::start`] warns once that it is
//! unauthenticated.
//!
//! Answers: `204 No Content` once every message has been handed to the
//! inbox; `403 Forbidden` for a wrong or missing cluster id, an
//! unknown sender, or a message not addressed to this node (or whose `from`
//! is not the sender); `410 Gone` for a sender that was removed from the
//! cluster; `400 Bad Request` for a body that does not decode; `413 Payload
//! Too Large` beyond [`MAX_BATCH_RECEIVE_BYTES`] or
//! [`SnapshotReceiveConfig::max_bytes`]; `503 Service Unavailable` for a
//! snapshot while [`SnapshotReceiveConfig::max_concurrent`] are being
//! received; `408` for a body that stalls (a batch's within
//! [`ConnectionLimits::body_timeout`]); `404` / `405` for other paths and
//! methods. A connection over [`ConnectionLimits::max_connections`] is
//! closed at once (after a `503` without TLS) and counted in
//! [`ConnectionMetrics::refused`]; one that sends no request
//! headers for [`ConnectionLimits::idle_timeout`] is closed.
//!
//! Snapshot bodies stream through raft-snap's decoder into a spill file
//! (unlinked at once) in [`SnapshotReceiveConfig::dir`], verified as they
//! arrive, and only a complete, verified snapshot is read into memory: a
//! garbage or oversized upload never costs its size. Refusals carry a
//! plain-text reason, are logged at `warn` and counted in
//! [`TransportMetrics::requests_rejected`]; a refused request delivers
//! nothing.
//!
//! # For the node's other ports
//!
//! [`HttpServer`] serves any other HTTP port of the node (a client API,
//! say) the way the peer port is served: [`Admission`] (a connection cap,
//! which [`ConnectionCaps`] derives from the descriptor limit), idle
//! timeouts, and [`ServerTls`] (TLS with optional client certificates);
//! [`https_client_config`] is a client of one. [`TlsFlags`] turns a node's
//! TLS flags into [`TlsFiles`] and its errors into lines that name the flag.
#![deny(missing_docs)]

mod caps;
mod cluster_urls;
mod conn;
mod frame;
mod http_server;
mod lane;
mod limiter;
mod metrics;
mod peer_url;
mod prometheus;
mod tls;
mod transport;

pub use caps::{
    CLIENT_IDLE_TIMEOUT, CapsError, ConnectionCaps, MIN_CONNECTIONS, MIN_DESCRIPTORS,
    RESERVED_DESCRIPTORS, descriptor_limit,
};
pub use cluster_urls::{ClusterUrlsError, parse_cluster_urls};
pub use conn::{Admission, Admitted, ConnectionLimits, Slot};
pub use http_server::{BodyError, HttpServer, read_body};
pub use lane::Lane;
pub use metrics::{ConnectionMetrics, LaneMetrics, TransportMetrics};
pub use peer_url::{PeerUrl, PeerUrlError, Scheme};
pub use tls::identity::{IdentityError, identity_uri, node_identity};
pub use tls::{
    HANDSHAKE_TIMEOUT, HandshakeError, PeerTls, ServerTls, TlsError, TlsFile, TlsFiles, TlsFlags,
    TlsFlagsError, https_client_config,
};
pub use transport::{
    BATCH_PATH, DEFAULT_MAX_CONNECTIONS, DEFAULT_QUEUE_MESSAGES, HEADER_CLUSTER_ID, HEADER_FROM,
    HEADER_TO, HttpTransport, MAX_BATCH_RECEIVE_BYTES, MAX_BATCH_SEND_BYTES,
    MAX_CONCURRENT_SNAPSHOT_RECEIVES, MAX_CONCURRENT_SNAPSHOT_SENDS, MAX_FRAME_BYTES,
    MAX_SNAPSHOT_BYTES, PeerListener, SNAPSHOT_PATH, STREAM_APPEND_PATH, STREAM_MESSAGE_PATH,
    STREAM_PROTOCOL, SnapshotReceiveConfig, SnapshotSendConfig, TransportConfig, TransportError,
};
