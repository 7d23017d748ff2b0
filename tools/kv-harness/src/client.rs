//! An HTTP client for the raftkv client API.
//!
//! [`Client`] speaks HTTP/1.1 to any member's client URL
//! (`http://127.0.0.1:12380`), reusing connections across requests, and puts
//! a deadline on every request. Its errors say whether a write's outcome is
//! known: a request that was never sent (connection refused) or refused by
//! the server (400, 413, 503) did not change anything; one whose answer never
//! came (timeout, broken connection, 504) may or may not have been applied.
//!
//! ```no_run
//! # async fn demo() -> Result<(), raftkv_harness::client::ClientError> {
//! use raftkv_harness::client::Client;
//! let client = Client::new();
//! client.put("http://127.0.0.1:12380", b"greeting", "hello".into()).await?;
//! let value = client.get("http://127.0.0.1:12380", b"greeting", false).await?;
//! assert_eq!(value.as_deref(), Some(&b"hello"[..]));
//! # Ok(())
//! # }
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HOST, HeaderMap, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The per-request deadline of [`Client::new`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The endpoint is not a URL like `http://127.0.0.1:12380`.
    #[error("{endpoint:?} is not a client URL like http://127.0.0.1:12380: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made (refused, unreachable, DNS). The request
    /// was not sent, so it changed nothing.
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The connection broke after the request may have been sent: the
    /// outcome of a write is unknown.
    #[error("connection to {endpoint} failed: {source}")]
    Connection {
        /// The endpoint.
        endpoint: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No answer within the client's deadline: the outcome of a write is
    /// unknown.
    #[error("no answer from {endpoint} within {after:?}")]
    TimedOut {
        /// The endpoint.
        endpoint: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// 400: the server refused the request as malformed.
    #[error("bad request: {message}")]
    BadRequest {
        /// The server's explanation.
        message: String,
    },
    /// 404 where a resource had to exist (a node id, a path).
    #[error("not found: {message}")]
    NotFound {
        /// The server's explanation.
        message: String,
    },
    /// 413: the key or value is too large.
    #[error("too large: {message}")]
    TooLarge {
        /// The server's explanation.
        message: String,
    },
    /// 503: no leader is known or the proposal was dropped; nothing was
    /// applied. Retry, after `retry_after` if the server said so.
    #[error("unavailable{}: {message}", retry_hint(*.retry_after))]
    Unavailable {
        /// The server's `Retry-After`, if it sent one (in seconds).
        retry_after: Option<Duration>,
        /// The server's explanation.
        message: String,
    },
    /// 504: the server gave up waiting for the request to commit or apply.
    /// The outcome of a write is unknown: it may still be applied.
    #[error("server timed out: {message}")]
    Timeout {
        /// The server's explanation.
        message: String,
    },
    /// Any other unexpected status.
    #[error("HTTP {status}: {message}")]
    Status {
        /// The status code.
        status: u16,
        /// The body, as text.
        message: String,
    },
    /// A success status whose body could not be understood (say, `/status`
    /// that is not JSON).
    #[error("unexpected response from {endpoint}: {reason}")]
    InvalidResponse {
        /// The endpoint.
        endpoint: String,
        /// What was wrong with it.
        reason: String,
    },
}

fn retry_hint(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (retry after {}s)", d.as_secs()),
        None => String::new(),
    }
}

impl ClientError {
    /// Whether a write that failed this way may nevertheless have been (or
    /// may still be) applied: timeouts, broken connections and 504s.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            ClientError::Connection { .. }
                | ClientError::TimedOut { .. }
                | ClientError::Timeout { .. }
        )
    }

    /// Whether retrying the same request (perhaps on another member) could
    /// succeed: connection problems, timeouts and 503s.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::Connection { .. }
                | ClientError::TimedOut { .. }
                | ClientError::Unavailable { .. }
                | ClientError::Timeout { .. }
        )
    }

    /// A short stable name for the kind of error (`"connect"`,
    /// `"timeout"`, `"unavailable"`, …), for counting errors by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::InvalidEndpoint { .. } => "invalid-endpoint",
            ClientError::Connect { .. } => "connect",
            ClientError::Connection { .. } => "connection",
            ClientError::TimedOut { .. } => "client-timeout",
            ClientError::BadRequest { .. } => "bad-request",
            ClientError::NotFound { .. } => "not-found",
            ClientError::TooLarge { .. } => "too-large",
            ClientError::Unavailable { .. } => "unavailable",
            ClientError::Timeout { .. } => "server-timeout",
            ClientError::Status { .. } => "http-status",
            ClientError::InvalidResponse { .. } => "invalid-response",
        }
    }

    /// The HTTP status the server answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::BadRequest { .. } => Some(400),
            ClientError::NotFound { .. } => Some(404),
            ClientError::TooLarge { .. } => Some(413),
            ClientError::Unavailable { .. } => Some(503),
            ClientError::Timeout { .. } => Some(504),
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A whole response, as returned by [`Client::request`].
#[derive(Clone, Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// An HTTP/1.1 client for raftkv's client API, with connection reuse and a
/// per-request deadline. Cheap to clone; clones share the connection pool.
#[derive(Clone, Debug)]
pub struct Client {
    http: HyperClient<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client with the [`DEFAULT_TIMEOUT`] per request.
    ///
    /// Must be called within a Tokio runtime context.
    pub fn new() -> Client {
        Client::with_timeout(DEFAULT_TIMEOUT)
    }

    /// A client whose requests each fail with [`ClientError::TimedOut`] when
    /// the whole response has not arrived within `timeout`.
    ///
    /// Must be called within a Tokio runtime context.
    pub fn with_timeout(timeout: Duration) -> Client {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Client { http, timeout }
    }

    /// The per-request deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `method` to `endpoint` + `path` (`path` starts with `/` and is
    /// already percent-encoded) with `body`, and returns the whole response,
    /// whatever its status.
    ///
    /// # Errors
    /// [`ClientError::InvalidEndpoint`], [`ClientError::Connect`],
    /// [`ClientError::Connection`] or [`ClientError::TimedOut`]; never a
    /// status error.
    pub async fn request(
        &self,
        method: Method,
        endpoint: &str,
        path: &str,
        body: Bytes,
    ) -> Result<RawResponse, ClientError> {
        let uri = request_uri(endpoint, path)?;
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Full::new(body))
            .map_err(|e| ClientError::InvalidEndpoint {
                endpoint: endpoint.to_string(),
                reason: e.to_string(),
            })?;
        let exchange = async {
            let resp = self.http.request(req).await.map_err(|e| {
                if e.is_connect() {
                    ClientError::Connect {
                        endpoint: endpoint.to_string(),
                        source: Box::new(e),
                    }
                } else {
                    ClientError::Connection {
                        endpoint: endpoint.to_string(),
                        source: Box::new(e),
                    }
                }
            })?;
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| ClientError::Connection {
                    endpoint: endpoint.to_string(),
                    source: Box::new(e),
                })?
                .to_bytes();
            Ok(RawResponse {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::TimedOut {
                endpoint: endpoint.to_string(),
                after: self.timeout,
            }),
        }
    }

    /// Writes `key` = `value`; returns once the write is committed and
    /// applied.
    ///
    /// # Errors
    /// See [`ClientError`]; [`ClientError::outcome_unknown`] says whether the
    /// write may have happened anyway.
    pub async fn put(&self, endpoint: &str, key: &[u8], value: Bytes) -> Result<(), ClientError> {
        let path = format!("/{}", encode_key(key));
        let resp = self.request(Method::PUT, endpoint, &path, value).await?;
        expect_success(resp).map(drop)
    }

    /// Writes `key` = `value` if `key` holds `expected` now (a
    /// compare-and-swap, `PUT /<key>?prev=`): `Ok(true)` once written,
    /// `Ok(false)` if the key held another value or none (412: nothing was
    /// written).
    ///
    /// # Errors
    /// See [`ClientError`], as for [`Client::put`].
    pub async fn cas(
        &self,
        endpoint: &str,
        key: &[u8],
        expected: &[u8],
        value: Bytes,
    ) -> Result<bool, ClientError> {
        let path = format!("/{}?prev={}", encode_key(key), encode_key(expected));
        let resp = self.request(Method::PUT, endpoint, &path, value).await?;
        cas_result(resp)
    }

    /// Removes `key` (`DELETE /<key>?key`); succeeds whether or not it was
    /// there.
    ///
    /// # Errors
    /// See [`ClientError`], as for [`Client::put`].
    pub async fn delete(&self, endpoint: &str, key: &[u8]) -> Result<(), ClientError> {
        let path = format!("/{}?key", encode_key(key));
        let resp = self
            .request(Method::DELETE, endpoint, &path, Bytes::new())
            .await?;
        expect_success(resp).map(drop)
    }

    /// Reads `key`: `None` if it is missing. Linearizable unless
    /// `serializable`, which reads the member's local state (possibly
    /// stale).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn get(
        &self,
        endpoint: &str,
        key: &[u8],
        serializable: bool,
    ) -> Result<Option<Bytes>, ClientError> {
        let resp = self
            .request(
                Method::GET,
                endpoint,
                &get_path(key, serializable),
                Bytes::new(),
            )
            .await?;
        get_result(resp)
    }

    /// Adds node `id`, reachable by its peers at `peer_url`, to the cluster;
    /// returns once the membership change is applied.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn add_node(
        &self,
        endpoint: &str,
        id: u64,
        peer_url: &str,
    ) -> Result<(), ClientError> {
        let body = Bytes::copy_from_slice(peer_url.as_bytes());
        let resp = self
            .request(Method::POST, endpoint, &format!("/{id}"), body)
            .await?;
        expect_success(resp).map(drop)
    }

    /// Removes node `id` from the cluster; returns once the membership
    /// change is applied.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn remove_node(&self, endpoint: &str, id: u64) -> Result<(), ClientError> {
        let resp = self
            .request(Method::DELETE, endpoint, &format!("/{id}"), Bytes::new())
            .await?;
        expect_success(resp).map(drop)
    }

    /// The member's `/status` document (id, term, leader, role, commit,
    /// applied, members, last snapshot).
    ///
    /// # Errors
    /// See [`ClientError`]; [`ClientError::InvalidResponse`] if the body is
    /// not JSON.
    pub async fn status(&self, endpoint: &str) -> Result<serde_json::Value, ClientError> {
        let resp = self
            .request(Method::GET, endpoint, "/status", Bytes::new())
            .await?;
        let resp = expect_success(resp)?;
        serde_json::from_slice(&resp.body).map_err(|e| ClientError::InvalidResponse {
            endpoint: endpoint.to_string(),
            reason: format!("/status is not JSON: {e}"),
        })
    }

    /// Whether the member knows a leader (`/health` answers 200); `false`
    /// when it answers 503.
    ///
    /// # Errors
    /// Connection problems, timeouts and statuses other than 200 and 503.
    pub async fn health(&self, endpoint: &str) -> Result<bool, ClientError> {
        let resp = self
            .request(Method::GET, endpoint, "/health", Bytes::new())
            .await?;
        if resp.status == StatusCode::SERVICE_UNAVAILABLE {
            return Ok(false);
        }
        expect_success(resp).map(|_| true)
    }
}

/// One dedicated HTTP/1.1 connection to one member, opened on first use
/// and again after a failure: no pool, so nothing shared between tasks.
/// What a load generator wants for each of its simulated clients: with
/// [`Client`], 64 tasks share one pool (measured on this project's
/// machine, `raftkv bench` spends about 15 % less CPU per request this
/// way: 32 against 38 µs, averages of five alternating runs). Same errors
/// and deadline as [`Client`].
#[derive(Debug)]
pub struct Connection {
    endpoint: String,
    /// `host:port`, for connecting and for the `Host` header.
    authority: String,
    host: HeaderValue,
    timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    /// A connection to `endpoint` (`http://host:port`), not opened yet.
    ///
    /// # Errors
    /// [`ClientError::InvalidEndpoint`].
    pub fn new(endpoint: &str, timeout: Duration) -> Result<Connection, ClientError> {
        let uri = request_uri(endpoint, "/")?;
        let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
        let host = HeaderValue::from_str(&authority).map_err(|e| ClientError::InvalidEndpoint {
            endpoint: endpoint.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Connection {
            endpoint: endpoint.trim().trim_end_matches('/').to_string(),
            authority,
            host,
            timeout,
            sender: None,
        })
    }

    /// The endpoint it connects to, without a trailing `/`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Writes `key` = `value`, as [`Client::put`].
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn put(&mut self, key: &[u8], value: Bytes) -> Result<(), ClientError> {
        let path = format!("/{}", encode_key(key));
        let resp = self.request(Method::PUT, &path, value).await?;
        expect_success(resp).map(drop)
    }

    /// Reads `key`, as [`Client::get`].
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn get(
        &mut self,
        key: &[u8],
        serializable: bool,
    ) -> Result<Option<Bytes>, ClientError> {
        let resp = self
            .request(Method::GET, &get_path(key, serializable), Bytes::new())
            .await?;
        get_result(resp)
    }

    /// Sends one request (`path` starts with `/`, already percent-encoded)
    /// and returns the whole response, whatever its status; a failed
    /// exchange closes the connection, so the next request opens a new one.
    ///
    /// # Errors
    /// [`ClientError::Connect`], [`ClientError::Connection`] or
    /// [`ClientError::TimedOut`].
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<RawResponse, ClientError> {
        let timeout = self.timeout;
        let result = match tokio::time::timeout(timeout, self.exchange(method, path, body)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::TimedOut {
                endpoint: self.endpoint.clone(),
                after: timeout,
            }),
        };
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<RawResponse, ClientError> {
        let endpoint = self.endpoint.clone();
        let broken = |e: hyper::Error| ClientError::Connection {
            endpoint: endpoint.clone(),
            source: Box::new(e),
        };
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .body(Full::new(body))
            .map_err(|e| ClientError::InvalidEndpoint {
                endpoint: self.endpoint.clone(),
                reason: e.to_string(),
            })?;
        req.headers_mut().insert(HOST, self.host.clone());
        let sender = self.open().await?;
        sender.ready().await.map_err(broken)?;
        let resp = sender.send_request(req).await.map_err(broken)?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(broken)?.to_bytes();
        Ok(RawResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// The open connection, or a new one.
    async fn open(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, ClientError> {
        if self.sender.as_ref().is_some_and(SendRequest::is_closed) {
            self.sender = None;
        }
        if self.sender.is_none() {
            let connect_error =
                |e: Box<dyn std::error::Error + Send + Sync>| ClientError::Connect {
                    endpoint: self.endpoint.clone(),
                    source: e,
                };
            let stream = tokio::net::TcpStream::connect(&self.authority)
                .await
                .map_err(|e| connect_error(Box::new(e)))?;
            stream
                .set_nodelay(true)
                .map_err(|e| connect_error(Box::new(e)))?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| connect_error(Box::new(e)))?;
            tokio::spawn(async move {
                // Ends when the sender is dropped or the peer closes.
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("opened above"))
    }
}

/// The path of a GET of `key`.
fn get_path(key: &[u8], serializable: bool) -> String {
    let mut path = format!("/{}", encode_key(key));
    if serializable {
        path.push_str("?serializable");
    }
    path
}

/// A compare-and-swap's answer: written, not written (412), or the error.
fn cas_result(resp: RawResponse) -> Result<bool, ClientError> {
    if resp.status == StatusCode::PRECONDITION_FAILED {
        return Ok(false);
    }
    expect_success(resp).map(|_| true)
}

/// A GET's answer: the value, `None` for 404, or the error.
fn get_result(resp: RawResponse) -> Result<Option<Bytes>, ClientError> {
    if resp.status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    expect_success(resp).map(|r| Some(r.body))
}

/// Percent-encodes `key` for use as a URL path segment: ASCII letters,
/// digits and `-._~` stay as they are, every other byte becomes `%XX`
/// (upper-case hex), so any byte string round-trips through the server's
/// percent-decoding.
pub fn encode_key(key: &[u8]) -> String {
    let mut out = String::with_capacity(key.len());
    for &b in key {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn request_uri(endpoint: &str, path: &str) -> Result<Uri, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let base = endpoint.trim().trim_end_matches('/');
    let Some(authority) = base.strip_prefix("http://") else {
        return Err(invalid("only http:// URLs are supported"));
    };
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err(invalid("expected scheme, host and port only"));
    }
    format!("{base}{path}")
        .parse::<Uri>()
        .map_err(|e| invalid(&e.to_string()))
}

/// Turns a non-2xx response into the matching [`ClientError`].
pub(crate) fn expect_success(resp: RawResponse) -> Result<RawResponse, ClientError> {
    if resp.status.is_success() {
        Ok(resp)
    } else {
        Err(status_error(resp.status, &resp.headers, &resp.body))
    }
}

fn status_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ClientError {
    let message = String::from_utf8_lossy(body).trim().to_string();
    match status {
        StatusCode::BAD_REQUEST => ClientError::BadRequest { message },
        StatusCode::NOT_FOUND => ClientError::NotFound { message },
        StatusCode::PAYLOAD_TOO_LARGE => ClientError::TooLarge { message },
        StatusCode::SERVICE_UNAVAILABLE => ClientError::Unavailable {
            retry_after: headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
            message,
        },
        StatusCode::GATEWAY_TIMEOUT => ClientError::Timeout { message },
        _ => ClientError::Status {
            status: status.as_u16(),
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::net::SocketAddr;

    use http_body_util::Full;
    use hyper::body::Incoming;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Response, StatusCode};
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    use super::*;

    /// What the fake server saw of one request.
    #[derive(Debug)]
    struct Seen {
        method: Method,
        path_and_query: String,
        body: Bytes,
    }

    /// A tiny fake raftkv on port 0. Each request is reported on the
    /// returned channel and answered by `respond(method, path, body)`;
    /// `/slow` never answers.
    async fn fake_server(
        respond: fn(&Method, &str, &Bytes) -> Response<Full<Bytes>>,
    ) -> (String, tokio::sync::mpsc::UnboundedReceiver<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let tx = tx.clone();
                        async move {
                            let method = req.method().clone();
                            let pq = req
                                .uri()
                                .path_and_query()
                                .map(|p| p.as_str().to_string())
                                .unwrap_or_default();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let resp = respond(&method, &pq, &body);
                            let slow = pq == "/slow";
                            let _ = tx.send(Seen {
                                method,
                                path_and_query: pq,
                                body,
                            });
                            if slow {
                                std::future::pending::<()>().await;
                            }
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (format!("http://{addr}"), rx)
    }

    fn reply(status: u16, body: &'static str) -> Response<Full<Bytes>> {
        Response::builder()
            .status(status)
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    }

    fn kv_server(method: &Method, path: &str, body: &Bytes) -> Response<Full<Bytes>> {
        match (method.as_str(), path) {
            ("PUT", "/a%2Fb") => reply(204, ""),
            ("PUT", "/big") => reply(413, "value larger than 1 MiB\n"),
            ("PUT", "/busy") => Response::builder()
                .status(503)
                .header("Retry-After", "2")
                .body(Full::new(Bytes::from_static(b"no leader")))
                .unwrap(),
            ("PUT", "/late") => reply(504, "proposal not applied within 5s"),
            ("PUT", "/teapot") => reply(418, "short and stout"),
            ("PUT", _) => reply(400, "bad key"),
            ("GET", "/present") | ("GET", "/present?serializable") => reply(200, "value"),
            ("GET", "/status") => reply(200, r#"{"id":1,"leader":null,"role":"follower"}"#),
            ("GET", "/health") => reply(503, "no leader"),
            ("POST", "/4") if body.as_ref() == b"http://127.0.0.1:42379" => reply(204, ""),
            ("DELETE", "/9") => reply(404, "node 9 is not a member"),
            _ => reply(404, "not found"),
        }
    }

    #[test]
    fn unreserved_characters_stay_and_everything_else_is_percent_encoded() {
        assert_eq!(encode_key(b"AZaz09-._~"), "AZaz09-._~");
        assert_eq!(encode_key(b"a/b c?d#e%f"), "a%2Fb%20c%3Fd%23e%25f");
        assert_eq!(encode_key(&[0, 0x7f, 0x80, 0xff]), "%00%7F%80%FF");
        assert_eq!(encode_key("é".as_bytes()), "%C3%A9");
        assert_eq!(encode_key(b""), "");
    }

    #[test]
    fn statuses_map_to_errors_that_say_whether_a_write_may_have_happened() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        let e = status_error(StatusCode::SERVICE_UNAVAILABLE, &h, b"no leader\n");
        assert!(matches!(
            &e,
            ClientError::Unavailable { retry_after: Some(d), message }
                if *d == Duration::from_secs(3) && message == "no leader"
        ));
        assert!(!e.outcome_unknown() && e.is_retryable());
        assert_eq!(e.to_string(), "unavailable (retry after 3s): no leader");

        let none = HeaderMap::new();
        let e = status_error(StatusCode::SERVICE_UNAVAILABLE, &none, b"");
        assert!(matches!(
            e,
            ClientError::Unavailable {
                retry_after: None,
                ..
            }
        ));

        let e = status_error(StatusCode::GATEWAY_TIMEOUT, &none, b"slow");
        assert!(matches!(e, ClientError::Timeout { .. }));
        assert!(e.outcome_unknown() && e.is_retryable());

        let e = status_error(StatusCode::BAD_REQUEST, &none, b"bad");
        assert!(matches!(e, ClientError::BadRequest { .. }));
        assert!(!e.outcome_unknown() && !e.is_retryable());
        assert!(matches!(
            status_error(StatusCode::PAYLOAD_TOO_LARGE, &none, b""),
            ClientError::TooLarge { .. }
        ));
        assert!(matches!(
            status_error(StatusCode::NOT_FOUND, &none, b""),
            ClientError::NotFound { .. }
        ));
        let e = status_error(StatusCode::INTERNAL_SERVER_ERROR, &none, b"boom");
        assert!(matches!(e, ClientError::Status { status: 500, .. }));
        assert_eq!(e.status(), Some(500));
        assert_eq!(e.kind(), "http-status");
    }

    #[test]
    fn endpoints_must_be_plain_http_urls() {
        assert_eq!(
            request_uri("http://127.0.0.1:1/", "/k?serializable")
                .unwrap()
                .to_string(),
            "http://127.0.0.1:1/k?serializable"
        );
        for bad in [
            "https://127.0.0.1:1",
            "127.0.0.1:1",
            "http://",
            "http://h:1/x",
        ] {
            assert!(
                matches!(
                    request_uri(bad, "/k"),
                    Err(ClientError::InvalidEndpoint { .. })
                ),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn a_dedicated_connection_maps_answers_like_the_client_and_reopens_after_a_failure() {
        let (ep, mut seen) = fake_server(kv_server).await;
        let mut c = Connection::new(&ep, Duration::from_millis(300)).unwrap();
        c.put(b"a/b", Bytes::from_static(b"v1")).await.unwrap();
        let s = seen.recv().await.unwrap();
        assert_eq!(
            (s.method, s.path_and_query.as_str(), s.body.as_ref()),
            (Method::PUT, "/a%2Fb", &b"v1"[..])
        );
        assert_eq!(
            c.get(b"present", true).await.unwrap().as_deref(),
            Some(&b"value"[..])
        );
        assert_eq!(
            seen.recv().await.unwrap().path_and_query,
            "/present?serializable"
        );
        assert_eq!(c.get(b"absent", false).await.unwrap(), None);
        let e = c.put(b"busy", Bytes::new()).await.unwrap_err();
        assert!(matches!(e, ClientError::Unavailable { .. }));
        // A request that never gets an answer times out, drops the
        // connection, and the next request opens a new one.
        let e = c
            .request(Method::GET, "/slow", Bytes::new())
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::TimedOut { .. }) && e.outcome_unknown());
        assert_eq!(
            c.get(b"present", false).await.unwrap().as_deref(),
            Some(&b"value"[..])
        );
        let refused = Connection::new("http://127.0.0.1:1", Duration::from_secs(1))
            .unwrap()
            .put(b"k", Bytes::new())
            .await
            .unwrap_err();
        assert!(matches!(refused, ClientError::Connect { .. }) && !refused.outcome_unknown());
        assert!(matches!(
            Connection::new("https://x:1", Duration::from_secs(1)),
            Err(ClientError::InvalidEndpoint { .. })
        ));
    }

    #[tokio::test]
    async fn put_and_get_send_encoded_keys_and_map_answers() {
        let (ep, mut seen) = fake_server(kv_server).await;
        let c = Client::new();

        c.put(&ep, b"a/b", Bytes::from_static(b"v1")).await.unwrap();
        let s = seen.recv().await.unwrap();
        assert_eq!(
            (s.method, s.path_and_query.as_str(), s.body.as_ref()),
            (Method::PUT, "/a%2Fb", &b"v1"[..])
        );

        assert_eq!(
            c.get(&ep, b"present", false).await.unwrap().as_deref(),
            Some(&b"value"[..])
        );
        assert_eq!(seen.recv().await.unwrap().path_and_query, "/present");
        assert_eq!(
            c.get(&ep, b"present", true).await.unwrap().as_deref(),
            Some(&b"value"[..])
        );
        assert_eq!(
            seen.recv().await.unwrap().path_and_query,
            "/present?serializable"
        );
        assert_eq!(c.get(&ep, b"absent", false).await.unwrap(), None);

        let e = c.put(&ep, b"big", Bytes::new()).await.unwrap_err();
        assert!(
            matches!(e, ClientError::TooLarge { ref message } if message == "value larger than 1 MiB")
        );
        let e = c.put(&ep, b"busy", Bytes::new()).await.unwrap_err();
        assert!(matches!(
            e,
            ClientError::Unavailable { retry_after: Some(d), .. } if d == Duration::from_secs(2)
        ));
        let e = c.put(&ep, b"late", Bytes::new()).await.unwrap_err();
        assert!(matches!(e, ClientError::Timeout { .. }) && e.outcome_unknown());
        let e = c.put(&ep, b"teapot", Bytes::new()).await.unwrap_err();
        assert!(
            matches!(e, ClientError::Status { status: 418, ref message } if message == "short and stout")
        );
        let e = c.put(&ep, b"x", Bytes::new()).await.unwrap_err();
        assert!(matches!(e, ClientError::BadRequest { .. }));
    }

    #[tokio::test]
    async fn membership_status_and_health_calls_use_their_paths() {
        let (ep, mut seen) = fake_server(kv_server).await;
        let c = Client::new();

        c.add_node(&ep, 4, "http://127.0.0.1:42379").await.unwrap();
        let s = seen.recv().await.unwrap();
        assert_eq!((s.method, s.path_and_query.as_str()), (Method::POST, "/4"));

        let e = c.remove_node(&ep, 9).await.unwrap_err();
        assert!(
            matches!(e, ClientError::NotFound { ref message } if message == "node 9 is not a member")
        );
        assert_eq!(seen.recv().await.unwrap().method, Method::DELETE);

        let st = c.status(&ep).await.unwrap();
        assert_eq!(st["id"], 1);
        assert!(st["leader"].is_null());

        assert!(!c.health(&ep).await.unwrap());

        let raw = c
            .request(Method::GET, &ep, "/present", Bytes::new())
            .await
            .unwrap();
        assert_eq!(raw.status, StatusCode::OK);
        assert_eq!(raw.body.as_ref(), b"value");
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error_with_a_known_outcome() {
        // Bind then drop a listener: nothing listens on that port any more.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let e = Client::new()
            .put(&format!("http://{addr}"), b"k", Bytes::new())
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::Connect { .. }), "{e:?}");
        assert!(!e.outcome_unknown() && e.is_retryable());
    }

    #[tokio::test]
    async fn a_request_without_an_answer_times_out_with_an_unknown_outcome() {
        let (ep, mut seen) = fake_server(kv_server).await;
        let timeout = Duration::from_millis(200);
        let c = Client::with_timeout(timeout);
        let e = c.put(&ep, b"slow", Bytes::new()).await.unwrap_err();
        assert!(
            matches!(e, ClientError::TimedOut { after, .. } if after == timeout),
            "{e:?}"
        );
        assert!(e.outcome_unknown());
        assert_eq!(seen.recv().await.unwrap().path_and_query, "/slow");
    }
}
