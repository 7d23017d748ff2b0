//! # raft-transport
//!
//! The pieces of a Raft node's network port: peer URLs ([`PeerUrl`]),
//! connection caps and timeouts ([`Admission`], [`ConnectionLimits`]) and
//! TLS ([`PeerTls`] for mutual TLS between nodes, [`ServerTls`] for
//! another port of the node, such as a client API).
#![deny(missing_docs)]

mod conn;
mod metrics;
mod peer_url;
mod tls;

pub use conn::{Admission, Admitted, ConnectionLimits, Slot};
pub use metrics::ConnectionMetrics;
pub use peer_url::{PeerUrl, PeerUrlError, Scheme};
pub use tls::identity::{IdentityError, identity_uri, node_identity};
pub use tls::{
    HANDSHAKE_TIMEOUT, HandshakeError, PeerTls, ServerTls, TlsError, TlsFile, TlsFiles,
    https_client_config,
};
