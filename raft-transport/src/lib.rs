//! # raft-transport
//!
//! A peer transport for [raft-host](raft_host): Raft messages on
//! long-lived, pipelined HTTP/1.1 streams ([hyper]), two lanes per peer so
//! votes and heartbeats never wait behind bulk appends, and snapshots on
//! connections of their own, paced, capped and received in bounded memory.
//! [`HttpTransport`] implements [`raft_host::Transport`] and delivers what
//! arrives into the host's [`Inbox`](raft_host::Inbox), so a node built on
//! raft-host gets its network by starting one and handing it to
//! [`Host::start_group`](raft_host::Host::start_group).
//!
//! Every node runs a peer server on its peer port and, per peer, one
//! sender task per [`Lane`], each with a bounded queue: a message that does
//! not fit, or whose stream fails, is dropped and its peer reported
//! unreachable, which Raft tolerates. Senders write whatever is queued
//! without waiting for acknowledgements: raft-core's inflight window, not
//! the transport, bounds the appends in flight. Everything is checked
//! before it reaches Raft: the cluster id, a sender that is a known member
//! (not a removed one), a target that is this node, and, frame by frame,
//! messages from the sender only, on their own lane. With mutual TLS
//! ([`PeerTls`]) a certificate speaks only for the node it names.
//! Connection caps and timeouts ([`ConnectionLimits`]) keep a flood of
//! idle connections from taking the node's file descriptors.
//!
//! [`HttpNode`] wires a group, its data directory and this transport into
//! one node, in the order failures and durability need: certificates
//! and peer port first, then the data directory, the transport and the
//! group; while running it records the cluster id a joiner learns; on
//! shutdown it stops the group, the host and the transport in order. The
//! pieces it uses are public for programs that need another order:
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
//! let mut config = TransportConfig::new(id, "/var/lib/node-1");
//! config.cluster_id = Some(0x7261_6674);
//! let peer = NodeId::new(2).expect("non-zero");
//! config.peers = vec![(GroupId(1), peer, PeerUrl::parse("http://127.0.0.1:22379")?)];
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
//! * `POST /raft/stream/message` ([`STREAM_MESSAGE_PATH`]) and `POST
//!   /raft/stream/append` ([`STREAM_APPEND_PATH`]): a lane's stream. The
//!   request has no body and carries `upgrade: raft-stream/1`
//!   ([`STREAM_PROTOCOL`]) and `connection: upgrade`; once its headers
//!   check out the server answers `101 Switching Protocols` and the
//!   connection carries frames from then on: a kind byte, a `u32`
//!   little-endian payload length, the payload. A message frame (kind 1)
//!   holds one `Message` of group 1 ([`PLAIN_GROUP`],
//!   [`raft_proto::encode_message`]), a group message frame (kind 4) one
//!   `GroupMessage` of any other group
//!   ([`raft_proto::encode_group_message_into`]; group 0 carries the
//!   hosts' liveness pings), each at most [`MAX_FRAME_BYTES`]. So one
//!   stream per peer node and lane carries every group the two hosts
//!   share, and a single-group cluster's bytes are what they were before
//!   groups (a receiver of that version closes a stream on kind 4 rather
//!   than take another group's message for its own). A ping (2) holds a `u64` nonce, which the
//!   receiver echoes in a pong (3) on the same connection: the sender's
//!   round trip and liveness. The [`Lane::Message`] stream carries votes,
//!   pre-votes, heartbeats, every response, timeout-now, read-index and
//!   transfer requests; the [`Lane::Append`] stream carries appends and
//!   forwarded proposals ([`Lane::of`]). A sender keeps one stream per peer
//!   and lane, writes frames as they are queued (what queued up while a
//!   write was under way goes into the next, up to
//!   [`MAX_BATCH_SEND_BYTES`]), pings every second and opens the stream
//!   again, with exponential backoff, once it fails. A newer stream from
//!   the same peer and lane replaces the older one.
//! * `POST /raft/snapshot` ([`SNAPSHOT_PATH`]): one snapshot message,
//!   streamed in chunks on a connection of its own: a 4-byte little-endian
//!   length, the message envelope ([`raft_proto::encode_message`] of the
//!   message with empty snapshot data; for a group other than
//!   [`PLAIN_GROUP`] a `GroupMessage`, with the length's top bit set,
//!   which a receiver that knows no groups refuses as too long), then the snapshot in `raft-snap`'s
//!   CRC-checked stream format ([`raft_snap::SnapshotEncoder`]). Sends are
//!   paced and capped by [`SnapshotSendConfig`].
//! * `POST /raft/batch` ([`BATCH_PATH`]): one `MessageBatch`
//!   ([`raft_proto::encode_batch`]) per request, answered `204`: the
//!   previous version's format, of [`PLAIN_GROUP`] only (a lane posting
//!   to such a peer drops other groups' messages as unreachable). The server still accepts it, and a lane
//!   whose stream request is answered `404` (a peer of that version)
//!   posts its messages as batches, one request at a time, asking for a
//!   stream again after a minute, so a rolling upgrade keeps every pair of
//!   nodes talking both ways.
//!
//! Why HTTP/1.1 upgrades rather than HTTP/2 streams: each lane is a TCP
//! connection of its own, so a megabyte of appends in the append lane's
//! socket buffer never delays a heartbeat (one HTTP/2 connection would put
//! both behind one TCP window and one congestion controller: head-of-line
//! blocking between the lanes); after the upgrade a frame costs 5 bytes
//! of header and one write, with no HPACK, no HTTP/2 flow-control window
//! updates to send and account for, and no per-stream state in the
//! server; and it reuses the HTTP/1.1 hyper server, client and rustls
//! code the snapshot and batch paths already have, with the same
//! connection caps, header checks and certificate identities. HTTP/2's
//! gain, many streams on one connection, buys nothing with two
//! long-lived lanes per peer. Not measured against an HTTP/2
//! implementation here (hyper's `http2` feature is not built); measured
//! against the previous sender's way on loopback (the ignored
//! `throughput` test, release build, a shared 2-core machine): one
//! message at a time takes 17–21 µs on a stream against 29–36 µs as a
//! stop-and-wait batch request, and pipelined 128-byte appends go at
//! 350,000–750,000 a second.
//!
//! Every request, stream requests included, carries the headers
//! [`HEADER_CLUSTER_ID`] (16 lowercase hex digits), [`HEADER_FROM`] and
//! [`HEADER_TO`] (decimal node ids). Groups are named in the frames and
//! envelopes (above), not in the headers: one connection serves every
//! group the two hosts share.
//!
//! With [`TransportConfig::tls`] every connection, both ways (both lanes'
//! streams, snapshots, batches), is mutual TLS
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
//! Answers: `101 Switching Protocols` to a stream request whose headers
//! check out; `204 No Content` once every message of a batch or snapshot
//! has been handed to the inbox; `403 Forbidden` for a wrong or missing cluster id, an
//! unknown sender, or a message not addressed to this node (or whose `from`
//! is not the sender); `410 Gone` for a sender that was removed from the
//! cluster (removing a peer also closes its open streams); `400 Bad
//! Request` for a body that does not decode, or a stream request without
//! the upgrade header; `413 Payload
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
//! A stream's frames are checked one by one: at most [`MAX_FRAME_BYTES`]
//! (refused from the header, before the body is buffered), a message that
//! decodes and validates, whose `from` is the stream's sender and `to` this
//! node, of the stream's lane. A frame that fails, or that starts and then
//! stalls for [`ConnectionLimits::body_timeout`], closes its stream, is
//! logged at `warn` with the reason and counted in
//! [`TransportMetrics::stream_frames_refused`] and the lane's
//! [`LaneMetrics::bad_frames_received`]; it never reaches Raft (frames
//! before it were delivered). A stream silent for
//! [`ConnectionLimits::idle_timeout`] is closed. An upgraded stream leaves
//! the connection cap (hyper hands the connection over), but there are at
//! most two per known peer: a newer one replaces the older.
//!
//! # Metrics
//!
//! [`TransportMetrics`] counts totals and, per peer and lane
//! ([`TransportMetrics::lanes`], [`LaneMetrics`]), bytes and messages
//! sent, queue depth, drops, reconnects, round trips (last and moving
//! average, from pings and the upgrade) and bad frames received;
//! [`TransportMetrics::render`] writes them in the Prometheus text format.
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
mod node;
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
pub use frame::PLAIN_GROUP;
pub use http_server::{BodyError, HttpServer, read_body};
pub use lane::Lane;
pub use metrics::{ConnectionMetrics, LaneMetrics, TransportMetrics};
pub use node::{HttpNode, HttpNodeConfig, HttpNodeError, HttpNodeRunError};
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
