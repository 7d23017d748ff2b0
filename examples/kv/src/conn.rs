//! Accepting connections within limits, on the client API and the peer
//! port alike.
//!
//! A node's file descriptors are shared by its connections and by what it
//! cannot do without: WAL segments, snapshot files, the spill files of
//! snapshots being received, its own connections to peers. Without limits
//! a flood of idle connections took every descriptor, and the node died at
//! its next snapshot ("Too many open files"). So:
//!
//! - **Caps.** Each port holds at most [`ConnectionLimits::max_connections`]
//!   connections at once, derived from the soft `RLIMIT_NOFILE`
//!   ([`ConnectionCaps::for_limit`]) after keeping
//!   [`RESERVED_DESCRIPTORS`] out. A connection over the cap is accepted
//!   and closed at once, with a `503` on plain HTTP, logged (once per
//!   episode) and counted (`raftkv_client_connections_refused_total`,
//!   `raftkv_peer_connections_refused_total`).
//! - **Timeouts.** A connection must deliver a request's headers within
//!   [`ConnectionLimits::idle_timeout`] of opening or of the previous
//!   response: hyper's header read timeout, which also closes idle
//!   keep-alive connections. A request body must arrive within
//!   [`ConnectionLimits::body_timeout`] (`408` otherwise).
//! - **Accept errors** (EMFILE, ENFILE, ...) neither end nor spin the
//!   accept loop: it backs off from 10 ms to 1 s ([`AcceptBackoff`]) and
//!   tries again.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::{self, Metrics};

/// Descriptors no connection cap may use: the WAL's segments and
/// directory handles, snapshot and spill files, outgoing peer
/// connections, the runtime's own and stdio.
pub const RESERVED_DESCRIPTORS: u64 = 64;
/// The fewest connections a port is given.
pub const MIN_CONNECTIONS: usize = 8;
/// The fewest descriptors a node starts with.
pub const MIN_DESCRIPTORS: u64 = RESERVED_DESCRIPTORS + 2 * MIN_CONNECTIONS as u64;
/// The most connections the peer port is given (peers are few).
const MAX_PEER_CONNECTIONS: usize = 1024;
/// The most connections the client API is given, however high the limit.
const MAX_CLIENT_CONNECTIONS: usize = 65_536;

/// Default [`ConnectionLimits::idle_timeout`] of the client API.
pub const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`ConnectionLimits::idle_timeout`] of the peer port: longer, as
/// a peer's connection between two followers is idle most of the time.
pub const PEER_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`ConnectionLimits::body_timeout`].
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// How many connections each port may hold at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionCaps {
    /// The client API.
    pub client: usize,
    /// The peer port.
    pub peer: usize,
}

/// Why the descriptor limit does not allow a node to run.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CapsError {
    /// Too few descriptors for the reserve and a few connections.
    #[error(
        "the file descriptor limit (ulimit -n) is {limit}; a node needs at least \
         {MIN_DESCRIPTORS}, {RESERVED_DESCRIPTORS} of them for the WAL, snapshots and peer \
         links: raise it"
    )]
    TooFewDescriptors {
        /// The soft `RLIMIT_NOFILE`.
        limit: u64,
    },
    /// `--max-connections` above what the limit leaves.
    #[error(
        "--max-connections {asked} does not fit the file descriptor limit (ulimit -n) of \
         {limit}, which leaves room for {most} client connections: lower it or raise the limit"
    )]
    TooManyConnections {
        /// The flag's value.
        asked: usize,
        /// The most the limit allows.
        most: usize,
        /// The soft `RLIMIT_NOFILE`.
        limit: u64,
    },
}

impl ConnectionCaps {
    /// The caps a descriptor limit of `limit` leaves after
    /// [`RESERVED_DESCRIPTORS`]: a quarter for the peer port (from
    /// [`MIN_CONNECTIONS`] to 1024), the rest for the client API (at most
    /// 65,536), or `max_client` of it if given.
    ///
    /// # Errors
    /// A [`CapsError`] saying what to change.
    pub fn for_limit(limit: u64, max_client: Option<usize>) -> Result<ConnectionCaps, CapsError> {
        if limit < MIN_DESCRIPTORS {
            return Err(CapsError::TooFewDescriptors { limit });
        }
        let budget = usize::try_from(limit - RESERVED_DESCRIPTORS).unwrap_or(usize::MAX);
        let peer = (budget / 4).clamp(MIN_CONNECTIONS, MAX_PEER_CONNECTIONS);
        let most = (budget - peer).min(MAX_CLIENT_CONNECTIONS);
        let client = match max_client {
            None => most,
            Some(asked) if asked <= most => asked.max(1),
            Some(asked) => {
                return Err(CapsError::TooManyConnections { asked, most, limit });
            }
        };
        Ok(ConnectionCaps { client, peer })
    }
}

/// The soft `RLIMIT_NOFILE` of this process (1024, the usual default, if
/// it cannot be read).
pub fn descriptor_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit};
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
}

/// The cap and the timeouts of one listening port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections held at once; more are refused.
    pub max_connections: usize,
    /// How long a connection may take to deliver a request's headers,
    /// from its opening or from the previous response: hyper's header read
    /// timeout, which thereby closes idle keep-alive connections too.
    pub idle_timeout: Duration,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
}

impl ConnectionLimits {
    /// The client API's: `max_connections`, [`CLIENT_IDLE_TIMEOUT`],
    /// [`BODY_TIMEOUT`].
    pub fn client(max_connections: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections,
            idle_timeout: CLIENT_IDLE_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
        }
    }

    /// The peer port's: `max_connections`, [`PEER_IDLE_TIMEOUT`],
    /// [`BODY_TIMEOUT`] (snapshots have limits of their own).
    pub fn peer(max_connections: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections,
            idle_timeout: PEER_IDLE_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
        }
    }
}

/// Which port a listener serves: names its log lines and its metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// The client API.
    Client,
    /// The peer port.
    Peer,
}

impl Port {
    fn name(self) -> &'static str {
        match self {
            Port::Client => "client",
            Port::Peer => "peer",
        }
    }

    fn refused(self, m: &Metrics) -> &AtomicU64 {
        match self {
            Port::Client => &m.client_connections_refused,
            Port::Peer => &m.peer_connections_refused,
        }
    }

    fn open(self, m: &Metrics) -> &AtomicU64 {
        match self {
            Port::Client => &m.client_connections_open,
            Port::Peer => &m.peer_connections_open,
        }
    }
}

/// What a client over the cap reads before the connection closes.
const BUSY_REPLY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain; charset=utf-8\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 35\r\n\
\r\n\
too many connections; retry later\r\n";

/// Accepts the connections of one listener within its cap.
#[derive(Debug)]
pub struct Admission {
    port: Port,
    slots: Arc<Semaphore>,
    max: usize,
    metrics: Arc<Metrics>,
    /// With TLS a plain-text 503 would be garbage: refusals just close.
    tls: bool,
    /// True while connections are being refused (one warning per episode).
    refusing: bool,
    backoff: AcceptBackoff,
}

/// An accepted connection within the cap.
#[derive(Debug)]
pub struct Admitted {
    /// The connection.
    pub stream: TcpStream,
    /// Who connected.
    pub remote: SocketAddr,
    /// Its place under the cap: hold it as long as the connection.
    pub slot: Slot,
}

/// A connection's place under its port's cap, given back on drop.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    port: Port,
    metrics: Arc<Metrics>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        metrics::sub(self.port.open(&self.metrics), 1);
    }
}

impl Admission {
    /// Admits at most `max_connections` connections of `port` at once;
    /// `tls` when the port speaks TLS.
    pub fn new(port: Port, max_connections: usize, metrics: Arc<Metrics>, tls: bool) -> Admission {
        let max = max_connections.max(1);
        Admission {
            port,
            slots: Arc::new(Semaphore::new(max)),
            max,
            metrics,
            tls,
            refusing: false,
            backoff: AcceptBackoff::new(),
        }
    }

    /// The next connection that fits under the cap. Connections over it
    /// are closed (with a `503` on plain HTTP) and counted; accept errors
    /// back off and retry. Never fails.
    pub async fn accept(&mut self, listener: &TcpListener) -> Admitted {
        loop {
            let port = self.port.name();
            let (stream, remote) = accept_next(|| listener.accept(), &mut self.backoff, port).await;
            match Arc::clone(&self.slots).try_acquire_owned() {
                Ok(permit) => {
                    if self.refusing {
                        self.refusing = false;
                        tracing::info!(port, "below the connection cap again");
                    }
                    metrics::add(self.port.open(&self.metrics), 1);
                    let slot = Slot {
                        _permit: permit,
                        port: self.port,
                        metrics: Arc::clone(&self.metrics),
                    };
                    return Admitted {
                        stream,
                        remote,
                        slot,
                    };
                }
                Err(_) => self.refuse(stream, remote),
            }
        }
    }

    fn refuse(&mut self, stream: TcpStream, remote: SocketAddr) {
        metrics::inc(self.port.refused(&self.metrics));
        let port = self.port.name();
        if self.refusing {
            tracing::debug!(port, remote = %remote, "connection refused: at the cap");
        } else {
            self.refusing = true;
            tracing::warn!(
                port,
                cap = self.max,
                remote = %remote,
                "connection cap reached; refusing new connections until some close"
            );
        }
        if !self.tls {
            // A fresh socket's send buffer is empty: this never blocks.
            let _ = stream.try_write(BUSY_REPLY);
        }
    }
}

/// The delays between failed `accept` calls: from 10 ms, doubling to 1 s,
/// back to 10 ms after a success.
#[derive(Debug, Clone)]
pub struct AcceptBackoff {
    delay: Duration,
    failures: u64,
}

impl AcceptBackoff {
    /// The first delay.
    pub const MIN: Duration = Duration::from_millis(10);
    /// The longest delay.
    pub const MAX: Duration = Duration::from_secs(1);

    /// No failure yet.
    pub fn new() -> AcceptBackoff {
        AcceptBackoff {
            delay: AcceptBackoff::MIN,
            failures: 0,
        }
    }

    /// Records a failure; returns how long to wait before the next try.
    pub fn failed(&mut self) -> Duration {
        let delay = self.delay;
        self.delay = (delay * 2).min(AcceptBackoff::MAX);
        self.failures += 1;
        delay
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Records a success.
    pub fn succeeded(&mut self) {
        *self = AcceptBackoff::new();
    }
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff::new()
    }
}

/// Calls `accept` until it succeeds, waiting as `backoff` says after each
/// failure (warned about once per episode).
pub async fn accept_next<S, A, F>(
    mut accept: A,
    backoff: &mut AcceptBackoff,
    port: &'static str,
) -> (S, SocketAddr)
where
    A: FnMut() -> F,
    F: Future<Output = io::Result<(S, SocketAddr)>>,
{
    loop {
        match accept().await {
            Ok(accepted) => {
                if backoff.failures() > 0 {
                    tracing::info!(
                        port,
                        failures = backoff.failures(),
                        "accepting connections again"
                    );
                }
                backoff.succeeded();
                return accepted;
            }
            Err(e) => {
                let delay = backoff.failed();
                if backoff.failures() == 1 {
                    tracing::warn!(port, error = %e, "accept failed; backing off and retrying");
                } else {
                    tracing::debug!(port, error = %e, ?delay, "accept failed again");
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[test]
    fn caps_keep_a_reserve_and_give_the_peer_port_a_quarter_of_the_rest() {
        assert_eq!(
            ConnectionCaps::for_limit(100, None),
            Ok(ConnectionCaps {
                client: 27,
                peer: 9
            })
        );
        assert_eq!(
            ConnectionCaps::for_limit(1024, None),
            Ok(ConnectionCaps {
                client: 720,
                peer: 240
            })
        );
        let huge = ConnectionCaps::for_limit(u64::MAX, None).unwrap();
        assert_eq!((huge.client, huge.peer), (65_536, 1024));
        assert_eq!(
            ConnectionCaps::for_limit(1024, Some(100)).unwrap().client,
            100
        );
        for e in [
            ConnectionCaps::for_limit(MIN_DESCRIPTORS - 1, None).unwrap_err(),
            ConnectionCaps::for_limit(100, Some(28)).unwrap_err(),
        ] {
            assert_eq!(e.to_string().lines().count(), 1, "{e}");
            assert!(e.to_string().contains("ulimit -n"), "{e}");
        }
        let least = ConnectionCaps::for_limit(MIN_DESCRIPTORS, None).unwrap();
        assert_eq!(
            (least.client, least.peer),
            (MIN_CONNECTIONS, MIN_CONNECTIONS)
        );
    }

    #[test]
    fn the_accept_backoff_doubles_to_a_ceiling_and_resets_on_success() {
        let mut b = AcceptBackoff::new();
        let delays: Vec<Duration> = (0..10).map(|_| b.failed()).collect();
        assert_eq!(delays[0], AcceptBackoff::MIN);
        assert!(delays.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(delays[9], AcceptBackoff::MAX);
        assert_eq!(b.failures(), 10);
        b.succeeded();
        assert_eq!(b.failed(), AcceptBackoff::MIN);
    }

    #[tokio::test]
    async fn accept_errors_back_off_and_the_next_connection_is_still_accepted() {
        let mut calls = 0;
        let mut backoff = AcceptBackoff::new();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let accept = || {
            calls += 1;
            let result = if calls <= 3 {
                Err(io::Error::from_raw_os_error(24)) // EMFILE
            } else {
                Ok((calls, addr))
            };
            async move { result }
        };
        let (accepted, _) = accept_next(accept, &mut backoff, "test").await;
        assert_eq!(accepted, 4, "three failures, then the connection");
        assert_eq!(backoff.failures(), 0, "reset by the success");
    }

    #[tokio::test]
    async fn connections_over_the_cap_get_503_and_are_counted_and_a_closed_one_frees_its_slot() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        let mut admission = Admission::new(Port::Client, 2, Arc::clone(&metrics), false);
        let mut held = Vec::new();
        for _ in 0..2 {
            let _client = TcpStream::connect(addr).await.unwrap();
            held.push((_client, admission.accept(&listener).await));
        }
        // Two more: refused while the accept waits for one that fits.
        let mut refused = Vec::new();
        for _ in 0..2 {
            refused.push(TcpStream::connect(addr).await.unwrap());
        }
        let third = tokio::spawn(async move {
            let admitted = admission.accept(&listener).await;
            (admission, listener, admitted)
        });
        for mut r in refused {
            let mut answer = Vec::new();
            r.read_to_end(&mut answer).await.unwrap();
            assert!(answer.starts_with(b"HTTP/1.1 503"), "{answer:?}");
        }
        assert_eq!(
            metrics::get(&metrics.client_connections_refused),
            2,
            "refusals are counted"
        );
        assert_eq!(metrics::get(&metrics.client_connections_open), 2);
        // Closing an admitted connection frees a slot for the next one.
        drop(held.pop());
        assert_eq!(metrics::get(&metrics.client_connections_open), 1);
        let _client = TcpStream::connect(addr).await.unwrap();
        let (_admission, _listener, admitted) = third.await.unwrap();
        assert_eq!(admitted.remote.ip(), addr.ip());
        assert_eq!(metrics::get(&metrics.client_connections_open), 2);
    }
}
