//! Accepting connections within limits: the peer port's, and any other
//! HTTP port of the same process (a client API) that wants the same.
//!
//! A node's file descriptors are shared by its connections and by what it
//! cannot do without: WAL segments, snapshot files, the spill files of
//! snapshots being received, its own connections to peers. Without limits
//! a flood of idle connections takes every descriptor, and the node dies
//! at its next snapshot ("Too many open files"). So:
//!
//! - **Caps.** A port holds at most [`ConnectionLimits::max_connections`]
//!   connections at once (sizing it from the descriptor limit is the
//!   application's call). A connection over the cap is accepted and
//!   closed at once, with a `503` on plain HTTP, logged (once per
//!   episode) and counted in [`ConnectionMetrics::refused`].
//! - **Timeouts.** A connection must deliver a request's headers within
//!   [`ConnectionLimits::idle_timeout`] of opening or of the previous
//!   response: hyper's header read timeout, which also closes idle
//!   keep-alive connections. A request body must arrive within
//!   [`ConnectionLimits::body_timeout`] (`408` otherwise).
//! - **Accept errors** (EMFILE, ENFILE, ...) neither end nor spin the
//!   accept loop: it backs off from 10 ms to 1 s and tries again.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::ConnectionMetrics;

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
    /// The peer port's default [`idle_timeout`](Self::idle_timeout): long,
    /// as a connection between two followers is idle most of the time.
    pub const PEER_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// The default [`body_timeout`](Self::body_timeout).
    pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

    /// `max_connections` and `idle_timeout`, with
    /// [`BODY_TIMEOUT`](Self::BODY_TIMEOUT).
    pub fn new(max_connections: usize, idle_timeout: Duration) -> ConnectionLimits {
        ConnectionLimits {
            max_connections,
            idle_timeout,
            body_timeout: ConnectionLimits::BODY_TIMEOUT,
        }
    }

    /// The peer port's: `max_connections`,
    /// [`PEER_IDLE_TIMEOUT`](Self::PEER_IDLE_TIMEOUT) and
    /// [`BODY_TIMEOUT`](Self::BODY_TIMEOUT) (snapshots have limits of their
    /// own).
    pub fn peer(max_connections: usize) -> ConnectionLimits {
        ConnectionLimits::new(max_connections, ConnectionLimits::PEER_IDLE_TIMEOUT)
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
    /// Names the port in log lines.
    port: &'static str,
    slots: Arc<Semaphore>,
    max: usize,
    metrics: Arc<ConnectionMetrics>,
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
    metrics: Arc<ConnectionMetrics>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.metrics.closed();
    }
}

impl Admission {
    /// Admits at most `max_connections` connections at once, counted in
    /// `metrics`; `port` names the port in log lines (`"peer"`,
    /// `"client"`), `tls` is true when it speaks TLS (a refusal then
    /// closes without the `503`, which would be garbage to a TLS client).
    pub fn new(
        port: &'static str,
        max_connections: usize,
        metrics: Arc<ConnectionMetrics>,
        tls: bool,
    ) -> Admission {
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
            let port = self.port;
            let (stream, remote) = accept_next(|| listener.accept(), &mut self.backoff, port).await;
            match Arc::clone(&self.slots).try_acquire_owned() {
                Ok(permit) => {
                    if self.refusing {
                        self.refusing = false;
                        tracing::info!(port, "below the connection cap again");
                    }
                    self.metrics.opened();
                    let slot = Slot {
                        _permit: permit,
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
        self.metrics.refused_one();
        let port = self.port;
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
pub(crate) struct AcceptBackoff {
    delay: Duration,
    failures: u64,
}

impl AcceptBackoff {
    /// The first delay.
    pub(crate) const MIN: Duration = Duration::from_millis(10);
    /// The longest delay.
    pub(crate) const MAX: Duration = Duration::from_secs(1);

    /// No failure yet.
    pub(crate) fn new() -> AcceptBackoff {
        AcceptBackoff {
            delay: AcceptBackoff::MIN,
            failures: 0,
        }
    }

    /// Records a failure; returns how long to wait before the next try.
    pub(crate) fn failed(&mut self) -> Duration {
        let delay = self.delay;
        self.delay = (delay * 2).min(AcceptBackoff::MAX);
        self.failures += 1;
        delay
    }

    /// Failures since the last success.
    pub(crate) fn failures(&self) -> u64 {
        self.failures
    }

    /// Records a success.
    pub(crate) fn succeeded(&mut self) {
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
pub(crate) async fn accept_next<S, A, F>(
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
        let metrics = Arc::new(ConnectionMetrics::default());
        let mut admission = Admission::new("client", 2, Arc::clone(&metrics), false);
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
        assert_eq!(metrics.refused(), 2, "refusals are counted");
        assert_eq!(metrics.open(), 2);
        // Closing an admitted connection frees a slot for the next one.
        drop(held.pop());
        assert_eq!(metrics.open(), 1);
        let _client = TcpStream::connect(addr).await.unwrap();
        let (_admission, _listener, admitted) = third.await.unwrap();
        assert_eq!(admitted.remote.ip(), addr.ip());
        assert_eq!(metrics.open(), 2);
    }
}
