//! An HTTP/1.1 server for a node's other ports (a client API, say) with
//! the peer port's protections: a connection cap ([`Admission`]), idle
//! and header timeouts, and optional TLS whose failed handshakes are
//! counted and never reach HTTP.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::conn::{Admission, Admitted, ConnectionLimits};
use crate::metrics::ConnectionMetrics;
use crate::tls::ServerTls;

/// How [`HttpServer::serve`] serves a port.
#[derive(Clone, Debug)]
pub struct HttpServer {
    /// The port's name in logs (`"client"`).
    pub name: &'static str,
    /// The connection cap and timeouts.
    pub limits: ConnectionLimits,
    /// Where connections, refusals and failed handshakes are counted.
    pub metrics: Arc<ConnectionMetrics>,
    /// TLS (`None`: plain HTTP).
    pub tls: Option<ServerTls>,
}

impl HttpServer {
    /// Serves `listener` until the task is dropped, answering each request
    /// with `handler`: at most [`ConnectionLimits::max_connections`]
    /// connections at once (more are refused, with `503` without TLS),
    /// each closed when a request's headers take longer than
    /// [`ConnectionLimits::idle_timeout`] (kept-alive connections
    /// included). With TLS, each handshake runs in its own task (with a
    /// timeout); one that fails is logged and counted in
    /// [`ConnectionMetrics::tls_refused`].
    pub async fn serve<H, F>(self, listener: TcpListener, handler: H)
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        let metrics = Arc::clone(&self.metrics);
        let mut admission = Admission::new(
            self.name,
            self.limits.max_connections,
            metrics,
            self.tls.is_some(),
        );
        loop {
            let Admitted {
                stream,
                remote,
                slot,
            } = admission.accept(&listener).await;
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            let handler = handler.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let Some(tls) = &server.tls else {
                    return server.connection(stream, handler).await;
                };
                match tls.accept(stream).await {
                    Ok(stream) => server.connection(stream, handler).await,
                    Err(e) => {
                        server.metrics.tls_refused_one();
                        tracing::info!(port = server.name, remote = %remote, reason = %e, "handshake refused");
                    }
                }
            });
        }
    }

    /// Serves one connection.
    async fn connection<IO, H, F>(&self, io: IO, handler: H)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
        F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        let service = service_fn(move |req| {
            let answer = handler(req);
            async move { Ok::<_, Infallible>(answer.await) }
        });
        if let Err(e) = http1::Builder::new()
            .timer(TokioTimer::new())
            // Starts when hyper waits for a request's headers: on a new
            // connection and on a kept-alive one after each response, so
            // it closes idle connections too.
            .header_read_timeout(self.limits.idle_timeout)
            .serve_connection(TokioIo::new(io), service)
            .await
        {
            tracing::debug!(port = self.name, error = %e, "connection ended");
        }
    }
}

/// Why a request body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// Over the limit, declared or as it arrived (answer `413`).
    #[error("body larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// It did not arrive within the timeout (answer `408`).
    #[error("the request body did not arrive within {0:?}")]
    Timeout(std::time::Duration),
    /// The connection failed or sent a malformed body (answer `400`).
    #[error("cannot read body: {0}")]
    Read(String),
}

/// Reads a request's whole body, at most `limit` bytes, within `timeout`:
/// a body declared larger is refused before a byte of it is read.
///
/// # Errors
/// A [`BodyError`].
pub async fn read_body(
    req: Request<Incoming>,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, BodyError> {
    use http_body_util::{BodyExt, LengthLimitError, Limited};
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    let body = Limited::new(req.into_body(), limit).collect();
    match tokio::time::timeout(timeout, body).await {
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(BodyError::TooLarge(limit)),
        Ok(Err(e)) => Err(BodyError::Read(e.to_string())),
        Err(_) => Err(BodyError::Timeout(timeout)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hyper::StatusCode;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A server answering every request with `200 ok`, under `limits`.
    async fn serving(limits: ConnectionLimits) -> (std::net::SocketAddr, Arc<ConnectionMetrics>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(ConnectionMetrics::default());
        let server = HttpServer {
            name: "test",
            limits,
            metrics: Arc::clone(&metrics),
            tls: None,
        };
        // Reads the body as an API would, within the limits' body timeout.
        let body_timeout = limits.body_timeout;
        tokio::spawn(server.serve(listener, move |req| async move {
            let status = match read_body(req, 1024, body_timeout).await {
                Ok(_) => StatusCode::OK,
                Err(BodyError::Timeout(_)) => StatusCode::REQUEST_TIMEOUT,
                Err(_) => StatusCode::BAD_REQUEST,
            };
            let mut answer = Response::new(Full::new(Bytes::from_static(b"done")));
            *answer.status_mut() = status;
            answer
        }));
        (addr, metrics)
    }

    /// Everything the server sends until it closes the connection (a
    /// generous deadline guards the test, not the behaviour).
    async fn until_closed(stream: &mut tokio::net::TcpStream) -> String {
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut out))
            .await
            .expect("the server closes the connection")
            .expect("read");
        String::from_utf8_lossy(&out).into_owned()
    }

    fn short_limits(max_connections: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections,
            idle_timeout: Duration::from_millis(200),
            body_timeout: Duration::from_millis(200),
        }
    }

    #[tokio::test]
    async fn idle_connections_new_or_kept_alive_are_closed() {
        let (addr, _) = serving(short_limits(8)).await;
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert_eq!(until_closed(&mut silent).await, "");
        let mut kept = tokio::net::TcpStream::connect(addr).await.unwrap();
        kept.write_all(b"GET /x HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let answer = until_closed(&mut kept).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[tokio::test]
    async fn a_stalled_body_times_out_and_its_connection_closes() {
        let (addr, _) = serving(short_limits(8)).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"PUT /k HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nonly ten b")
            .await
            .unwrap();
        let answer = until_closed(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }

    #[tokio::test]
    async fn connections_over_the_cap_are_refused_and_counted() {
        let limits = ConnectionLimits {
            idle_timeout: Duration::from_secs(60),
            ..short_limits(2)
        };
        let (addr, metrics) = serving(limits).await;
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        let mut surplus = tokio::net::TcpStream::connect(addr).await.unwrap();
        let answer = until_closed(&mut surplus).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("too many connections"), "{answer}");
        assert_eq!((metrics.refused(), metrics.open()), (1, 2));
    }
}
