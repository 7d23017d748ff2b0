//! The client API over HTTP/1.1 (hyper):
//!
//! | request | answer |
//! |---|---|
//! | `PUT /<key>`, body = value | 204 once committed and applied on this node |
//! | `GET /<key>` | 200 + value, or 404; linearizable (ReadIndex) |
//! | `GET /<key>?serializable` | the same from this node's state, possibly stale |
//! | `PUT /<key>?prev=<value>` | compare-and-swap: 204 once applied if the key held `<value>` (percent-encoded), else 412 |
//! | `DELETE /<key>?key` | 204 once the key is removed (or was missing) |
//! | `POST /<id>`, body = peer URL | 204 once the node is added and the change applied |
//! | `DELETE /<id>` | 204 once the node is removed |
//! | `GET /status` | JSON: id, term, leader, role, commit, applied, members, last snapshot |
//! | `GET /health` | 200 `ok` when a leader is known, else 503 |
//! | `GET /metrics` | Prometheus text |
//!
//! Keys are the percent-decoded path (any bytes, at most
//! [`MAX_KEY_BYTES`]); values at most [`MAX_VALUE_BYTES`]. `status`,
//! `health` and `metrics` are reserved, however they are percent-encoded
//! (`/st%61tus` is `/status`). Followers accept writes and linearizable
//! reads: raft-core forwards them to the leader (proposal and
//! ReadIndex forwarding), so any node can be used.
//!
//! A key is deleted with `DELETE /<key>?key`: without `?key`, `DELETE
//! /<id>` removes a member, as in raftexample, so a key named `3` can never
//! be taken for node 3 (nor the reverse).
//!
//! Errors have plain-text bodies: 400 malformed request, 404 missing key
//! or member, 405 wrong method, 408 a body that did not arrive in time
//! ([`ConnectionLimits::body_timeout`]), 409 membership conflict (an
//! existing voter, a removed id: ids are never reused), 412 a
//! compare-and-swap whose key held another value (or none), 413 key or value
//! too large, 503 + `Retry-After` when there is no leader or the proposal
//! was dropped, 504 when the outcome is unknown after the request timeout.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use raft_core::{NodeId, RoleKind};
use raft_host::{
    GroupSet, GroupStatus, MembershipChange, MembershipError, ProposeError, ReadError,
};
use raft_transport::{
    BodyError, ConnectionLimits, HttpServer, PeerUrl, Scheme, ServerTls, read_body,
};
use tokio::net::TcpListener;

use crate::metrics::Metrics;
use crate::store::{Applied, KvCommand, KvStore};
pub use crate::store::{MAX_KEY_BYTES, MAX_VALUE_BYTES};

/// Response type of every handler.
pub type Resp = Response<Full<Bytes>>;

fn text(status: StatusCode, body: impl Into<String>) -> Resp {
    let mut body: String = body.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

fn no_content() -> Resp {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Full::new(Bytes::new()))
        .expect("static response parts are valid")
}

/// What the API serves from. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Api {
    /// The raft-host groups running the store, each holding the keys that
    /// hash to it (one group unless `--groups`).
    pub groups: GroupSet<KvStore>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// The scheme of this cluster's peer URLs (`https` with mutual TLS).
    pub peer_scheme: Scheme,
}

const SHUTTING_DOWN: &str = "this node is shutting down";
const TIMED_OUT: &str = "timed out; the outcome is unknown";
/// The node stopped (shutdown or removal) while the request was pending:
/// it may have been proposed and committed, so the outcome is unknown,
/// unlike [`SHUTTING_DOWN`] before it was taken.
const INTERRUPTED: &str = "the node stopped before the request finished; the outcome is unknown";

/// 503 + `Retry-After`: no leader, a dropped proposal, shutting down.
fn unavailable(why: impl Into<String>) -> Resp {
    let mut resp = text(StatusCode::SERVICE_UNAVAILABLE, why);
    resp.headers_mut()
        .insert(RETRY_AFTER, hyper::header::HeaderValue::from_static("1"));
    resp
}

fn propose_failed(e: ProposeError) -> Resp {
    match e {
        ProposeError::Timeout => text(StatusCode::GATEWAY_TIMEOUT, TIMED_OUT),
        ProposeError::Interrupted | ProposeError::OutcomeUnknown { .. } => {
            text(StatusCode::GATEWAY_TIMEOUT, INTERRUPTED)
        }
        ProposeError::Stopped => unavailable(SHUTTING_DOWN),
        ProposeError::NotLeader { leader: None } => unavailable("no leader is known"),
        other => unavailable(format!("proposal dropped: {other}")),
    }
}

fn read_failed(e: ReadError) -> Resp {
    match e {
        ReadError::Timeout => text(StatusCode::GATEWAY_TIMEOUT, TIMED_OUT),
        ReadError::Stopped => unavailable(SHUTTING_DOWN),
        other => unavailable(format!("read refused: {other}")),
    }
}

fn membership_failed(e: MembershipError) -> Resp {
    use MembershipError as E;
    match e {
        E::NotLeader { leader: Some(l) } => unavailable(format!(
            "node {l} leads: membership changes are made by the leader, send it there"
        )),
        E::NotMember(..) => text(StatusCode::NOT_FOUND, e.to_string()),
        E::RemovedId(id) => text(
            StatusCode::CONFLICT,
            format!(
                "node {id} was removed from this cluster, and a removed node id is never reused \
                 (its old process, log and votes may still be around): add the machine under a \
                 new id, with an empty --data-dir"
            ),
        ),
        E::AlreadyMember(..) | E::Unsafe { .. } | E::NotCaughtUp { .. } | E::Refused(_) => {
            text(StatusCode::CONFLICT, e.to_string())
        }
        E::Timeout | E::OutcomeUnknown => text(StatusCode::GATEWAY_TIMEOUT, TIMED_OUT),
        E::Interrupted => text(StatusCode::GATEWAY_TIMEOUT, INTERRUPTED),
        E::Stopped => unavailable(SHUTTING_DOWN),
        other => unavailable(other.to_string()),
    }
}

/// A request this API refuses before it reaches the node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// A key or body over its limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// The body did not arrive in time (408), or another problem reading
    /// it.
    #[error(transparent)]
    Body(#[from] BodyError),
}

impl RequestError {
    fn status(&self) -> StatusCode {
        match self {
            RequestError::BadRequest(_) => StatusCode::BAD_REQUEST,
            RequestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            RequestError::Body(BodyError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            RequestError::Body(BodyError::Timeout(_)) => StatusCode::REQUEST_TIMEOUT,
            RequestError::Body(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn into_response(self) -> Resp {
        text(self.status(), self.to_string())
    }
}

/// What a request asks for, decided on the percent-decoded path, so
/// `/st%61tus` is `/status` (RFC 3986 §6.2.2.2) and never a key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Status,
    Health,
    Metrics,
    /// A reserved name with another method than GET (405).
    Reserved,
    AddNode(NodeId),
    RemoveNode(NodeId),
    /// A put of a key; a compare-and-swap if it must hold a value.
    Put(Bytes, Option<Bytes>),
    Get(Bytes, bool),
    Delete(Bytes),
    /// A method the API does not have (405).
    OtherMethod,
}

/// The names that are never keys.
const RESERVED: [&str; 3] = ["status", "health", "metrics"];

/// The query parameters the API knows; others are ignored.
#[derive(Debug, Default, PartialEq, Eq)]
struct Query {
    /// `serializable` (or `=true`, `=1`): a read of this node's state.
    serializable: bool,
    /// `key`: `DELETE` names a key, not a member.
    key: bool,
    /// `prev=<value>`: the value a compare-and-swap expects.
    prev: Option<Bytes>,
}

impl Query {
    fn parse(query: &str) -> Result<Query, RequestError> {
        let mut q = Query::default();
        for param in query.split('&') {
            let (name, value) = param
                .split_once('=')
                .map_or((param, None), |(n, v)| (n, Some(v)));
            match (name, value) {
                ("prev", Some(v)) => q.prev = Some(Bytes::from(percent_decode(v)?)),
                ("serializable", None | Some("true" | "1")) => q.serializable = true,
                ("key", None) => q.key = true,
                _ => {}
            }
        }
        Ok(q)
    }
}

fn target(method: &Method, raw: &str, query: &str) -> Result<Target, RequestError> {
    let known = [Method::GET, Method::PUT, Method::POST, Method::DELETE].contains(method);
    let path = match percent_decode(raw) {
        Ok(path) => path,
        Err(_) if !known => return Ok(Target::OtherMethod),
        Err(e) => return Err(e),
    };
    if let Some(name) = RESERVED.iter().find(|name| name.as_bytes() == path) {
        return Ok(match (method, *name) {
            (&Method::GET, "status") => Target::Status,
            (&Method::GET, "health") => Target::Health,
            (&Method::GET, _) => Target::Metrics,
            _ => Target::Reserved,
        });
    }
    let query = Query::parse(query)?;
    match *method {
        Method::POST => parse_node_id(&path).map(Target::AddNode),
        Method::DELETE if query.key => check_key(path).map(Target::Delete),
        Method::DELETE => parse_node_id(&path).map(Target::RemoveNode),
        Method::PUT => check_key(path).map(|key| Target::Put(key, query.prev)),
        Method::GET => check_key(path).map(|key| Target::Get(key, query.serializable)),
        _ => Ok(Target::OtherMethod),
    }
}

/// Serves the client API on `listener` until the task is dropped, with
/// raft-transport's [`HttpServer`]: the connection cap, idle timeouts and
/// TLS of `limits` and `tls` (see [`raft_transport::ConnectionCaps`]).
pub async fn serve(
    listener: TcpListener,
    api: Api,
    tls: Option<ServerTls>,
    limits: ConnectionLimits,
) {
    let server = HttpServer {
        name: "client",
        limits,
        metrics: Arc::clone(&api.metrics.client_connections),
        tls,
    };
    let body_timeout = limits.body_timeout;
    let api = Arc::new(api);
    let handler = move |req| route(Arc::clone(&api), req, body_timeout);
    server.serve(listener, handler).await;
}

/// Handles one request; its body may take `body_timeout` to arrive. Never
/// fails: every problem is a response.
pub async fn route(api: Arc<Api>, req: Request<Incoming>, body_timeout: Duration) -> Resp {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("");
    let Some(raw) = path.strip_prefix('/') else {
        return text(StatusCode::BAD_REQUEST, "path must start with /");
    };
    let target = match target(req.method(), raw, query) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    match target {
        Target::Status => status(&api),
        Target::Health => health(&api),
        Target::Metrics => Response::builder()
            .header(CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(Full::new(Bytes::from(api.metrics.render())))
            .expect("static response parts are valid"),
        Target::Reserved => method_not_allowed("GET"),
        Target::AddNode(id) => add_node(&api, id, req, body_timeout).await,
        Target::RemoveNode(id) => remove_node(&api, id).await,
        Target::Put(key, expected) => put(&api, key, expected, req, body_timeout).await,
        Target::Get(key, serializable) => get(&api, &key, serializable).await,
        Target::Delete(key) => write(&api, KvCommand::Delete { key }).await,
        Target::OtherMethod => method_not_allowed("GET, PUT, POST, DELETE"),
    }
}

fn method_not_allowed(allow: &'static str) -> Resp {
    let mut r = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("allowed methods: {allow}"),
    );
    r.headers_mut()
        .insert(ALLOW, hyper::header::HeaderValue::from_static(allow));
    r
}

fn parse_node_id(path: &[u8]) -> Result<NodeId, RequestError> {
    std::str::from_utf8(path)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .and_then(NodeId::new)
        .ok_or_else(|| {
            RequestError::BadRequest(format!(
                "POST and DELETE take a node id (a positive integer), not {:?}",
                String::from_utf8_lossy(path)
            ))
        })
}

/// Percent-decodes a key from the path.
///
/// # Errors
/// [`RequestError::BadRequest`] for an empty key or a bad escape,
/// [`RequestError::TooLarge`] for a long key.
pub fn decode_key(raw: &str) -> Result<Bytes, RequestError> {
    check_key(percent_decode(raw)?)
}

/// The bytes `raw` percent-encodes.
fn percent_decode(raw: &str) -> Result<Vec<u8>, RequestError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(b) = hex else {
                return Err(RequestError::BadRequest(
                    "bad percent-escape in path".into(),
                ));
            };
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// A decoded key, if it is not empty and within [`MAX_KEY_BYTES`].
fn check_key(key: Vec<u8>) -> Result<Bytes, RequestError> {
    if key.is_empty() {
        return Err(RequestError::BadRequest("missing key: use /<key>".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(RequestError::TooLarge(format!(
            "key is {} bytes; the limit is {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(Bytes::from(key))
}

/// `PUT /<key>` (with `?prev=`, a compare-and-swap): 204 once the write
/// is applied on this node.
async fn put(
    api: &Api,
    key: Bytes,
    expected: Option<Bytes>,
    req: Request<Incoming>,
    timeout: Duration,
) -> Resp {
    let value = match read_body(req, MAX_VALUE_BYTES, timeout)
        .await
        .map_err(RequestError::from)
    {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let command = match expected {
        None => KvCommand::Put { key, value },
        Some(expected) => KvCommand::Cas {
            key,
            expected,
            value,
        },
    };
    write(api, command).await
}

/// Proposes `command`: 204 once applied on this node, 412 for a
/// compare-and-swap that found another value.
async fn write(api: &Api, command: KvCommand) -> Resp {
    let group = api.groups.for_key(command.key());
    match group.propose(command.encode()).await {
        Ok(Applied::Mismatch) => text(
            StatusCode::PRECONDITION_FAILED,
            "the key does not hold the expected value; nothing was written",
        ),
        Ok(_) => no_content(),
        Err(e) => propose_failed(e),
    }
}

/// `GET /<key>`: linearizable (ReadIndex, thesis §6.4), or this node's
/// possibly stale state with `?serializable`.
async fn get(api: &Api, key: &[u8], serializable: bool) -> Resp {
    let group = api.groups.for_key(key);
    let value = if serializable {
        group.read_local(|s| s.get(key))
    } else {
        match group.read(|s| s.get(key)).await {
            Ok(v) => v,
            Err(e) => return read_failed(e),
        }
    };
    match value {
        Some(v) => Response::builder()
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(Full::new(v))
            .expect("static response parts are valid"),
        None => text(StatusCode::NOT_FOUND, "key not found"),
    }
}

/// `POST /<id>`: adds the node as a learner that the leader promotes to
/// voter once it has caught up; 204 once the learner is added.
async fn add_node(api: &Api, id: NodeId, req: Request<Incoming>, timeout: Duration) -> Resp {
    let body = match read_body(req, 4096, timeout)
        .await
        .map_err(RequestError::from)
    {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let Ok(raw) = std::str::from_utf8(&body) else {
        let why = "the body must be the new node's peer URL";
        return text(StatusCode::BAD_REQUEST, why);
    };
    let url = match PeerUrl::parse(raw) {
        Ok(u) => u,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if url.scheme() != api.peer_scheme {
        let scheme = api.peer_scheme.as_str();
        let why = format!("{url}: this cluster's peer URLs are {scheme}:// ones");
        return text(StatusCode::BAD_REQUEST, why);
    }
    // Resolved without holding anything: a URL may hold a host name.
    let addrs = api.groups.first().status().addrs;
    let taken = addrs.into_iter().find(|(other, known)| {
        *other != id && PeerUrl::parse(known).is_ok_and(|u| u.addr() == url.addr())
    });
    if let Some((other, _)) = taken {
        let addr = url.addr();
        let why = format!(
            "{url} is the address of node {other} ({addr}): every member needs one of its own"
        );
        return text(StatusCode::CONFLICT, why);
    }
    let addr = url.as_str().to_string();
    let change = MembershipChange::AddLearnerToPromote { id, addr };
    match api.groups.change_membership(change).await {
        Ok(()) => no_content(),
        Err(e) => membership_failed(e),
    }
}

/// `DELETE /<id>`: 204 once the removal is applied here.
async fn remove_node(api: &Api, id: NodeId) -> Resp {
    match api
        .groups
        .change_membership(MembershipChange::Remove { id })
        .await
    {
        Ok(()) => no_content(),
        Err(e) => membership_failed(e),
    }
}

/// The JSON body of `GET /status`.
pub fn status_json(s: &GroupStatus) -> serde_json::Value {
    let ids =
        |set: &std::collections::BTreeSet<NodeId>| set.iter().map(|n| n.get()).collect::<Vec<_>>();
    let urls: serde_json::Map<String, serde_json::Value> = s
        .addrs
        .iter()
        .map(|(id, url)| (id.to_string(), url.clone().into()))
        .collect();
    let role = match s.role {
        RoleKind::Follower => "follower",
        RoleKind::PreCandidate => "pre-candidate",
        RoleKind::Candidate => "candidate",
        RoleKind::Leader => "leader",
        _ => "unknown",
    };
    serde_json::json!({
        "id": s.id.get(),
        "term": s.term.get(),
        "leader": s.leader.map(|l| l.get()),
        "role": role,
        "commit": s.commit.get(),
        "applied": s.applied.get(),
        "quiesced": s.quiesced,
        "members": {
            "voters": ids(&s.voters),
            "learners": ids(&s.learners),
            "urls": urls,
            "removed": ids(&s.removed),
        },
        "last_snapshot": { "index": s.snapshot.index.get(), "term": s.snapshot.term.get() },
    })
}

/// Every group's status, the first group first; `None` once any stopped.
fn running_status(api: &Api) -> Option<Vec<GroupStatus>> {
    let all = api.groups.statuses();
    all.iter().all(|st| st.running).then_some(all)
}

/// The first group's status, as raftexample's; with `--groups`, also
/// `groups`: each group's id, leader, role, term, commit and applied.
fn status(api: &Api) -> Resp {
    let Some(all) = running_status(api) else {
        return unavailable(SHUTTING_DOWN);
    };
    let mut body = status_json(&all[0]);
    if all.len() > 1 {
        let groups = api.groups.groups().iter().zip(&all).map(|(g, s)| {
            let mut one = status_json(s);
            one["group"] = g.group().get().into();
            one
        });
        body["groups"] = groups.collect::<Vec<_>>().into();
    }
    Response::builder()
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("static response parts are valid")
}

/// 200 once every group has a leader. Reads each group's status in
/// place: a copy of 100,000 statuses per probe would load the node it
/// probes.
fn health(api: &Api) -> Resp {
    let mut all_led = true;
    for g in api.groups.groups() {
        let (running, led) = g.with_status(|s| (s.running, s.leader.is_some()));
        if !running {
            return unavailable(SHUTTING_DOWN);
        }
        all_led &= led;
    }
    if all_led {
        text(StatusCode::OK, "ok")
    } else {
        unavailable("no leader")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_problems_get_their_statuses() {
        for (e, status) in [
            (
                BodyError::Timeout(Duration::ZERO),
                StatusCode::REQUEST_TIMEOUT,
            ),
            (BodyError::TooLarge(1), StatusCode::PAYLOAD_TOO_LARGE),
            (BodyError::Read("reset".into()), StatusCode::BAD_REQUEST),
        ] {
            assert_eq!(RequestError::from(e).status(), status);
        }
    }

    #[test]
    fn keys_are_percent_decoded() {
        assert_eq!(
            decode_key("a%2Fb%00").unwrap(),
            Bytes::from_static(b"a/b\0")
        );
        assert_eq!(decode_key("plain").unwrap(), Bytes::from_static(b"plain"));
    }

    #[test]
    fn bad_keys_get_client_errors() {
        assert_eq!(
            decode_key("").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            decode_key("%G1").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            decode_key("%4").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        assert_eq!(
            decode_key(&long).unwrap_err().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    #[test]
    fn reserved_names_are_recognised_after_percent_decoding() {
        for raw in ["status", "st%61tus", "%73tatus", "%68ealth", "metric%73"] {
            let name = decode_key(raw).unwrap();
            assert_eq!(
                target(&Method::PUT, raw, "").unwrap(),
                Target::Reserved,
                "PUT /{raw}"
            );
            let want = match &name[..] {
                b"status" => Target::Status,
                b"health" => Target::Health,
                _ => Target::Metrics,
            };
            assert_eq!(target(&Method::GET, raw, "").unwrap(), want, "GET /{raw}");
        }
        assert_eq!(
            target(&Method::PUT, "st%61tus2", "").unwrap(),
            Target::Put(Bytes::from_static(b"status2"), None)
        );
        assert_eq!(
            target(&Method::DELETE, "%33", "").unwrap(),
            Target::RemoveNode(NodeId::new(3).unwrap())
        );
    }

    #[test]
    fn a_key_is_deleted_only_with_the_key_flag_and_swapped_only_with_prev() {
        let key = || Bytes::from_static(b"3");
        let delete = target(&Method::DELETE, "3", "key").unwrap();
        assert_eq!(delete, Target::Delete(key()));
        let cas = target(&Method::PUT, "3", "prev=a%20b").unwrap();
        assert_eq!(cas, Target::Put(key(), Some(Bytes::from_static(b"a b"))));
        let empty = target(&Method::PUT, "3", "prev=").unwrap();
        assert_eq!(empty, Target::Put(key(), Some(Bytes::new())));
        let bad = target(&Method::PUT, "3", "prev=%zz").unwrap_err();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert!(target(&Method::DELETE, "k", "").is_err());
    }

    #[test]
    fn node_ids_must_be_positive_integers() {
        assert!(parse_node_id(b"4").is_ok());
        assert!(parse_node_id(b"0").is_err());
        assert!(parse_node_id(b"x").is_err());
    }

    #[test]
    fn refusals_map_to_statuses() {
        let r = propose_failed(ProposeError::NotLeader { leader: None });
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().contains_key(RETRY_AFTER));
        for r in [
            propose_failed(ProposeError::Interrupted),
            propose_failed(ProposeError::Timeout),
            read_failed(ReadError::Timeout),
            membership_failed(MembershipError::OutcomeUnknown),
        ] {
            assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
        }
        let id = NodeId::new(4).unwrap();
        let conflict = membership_failed(MembershipError::RemovedId(id));
        assert_eq!(conflict.status(), StatusCode::CONFLICT);
        let missing = membership_failed(MembershipError::NotMember(id, "a voter"));
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let stopped = read_failed(ReadError::Stopped);
        assert_eq!(stopped.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn the_serializable_flag_is_recognised() {
        let serializable = |q: &str| Query::parse(q).unwrap().serializable;
        assert!(serializable("serializable"));
        assert!(serializable("a=b&serializable=true"));
        assert!(!serializable(""));
        assert!(!serializable("serializable=false"));
    }
}
