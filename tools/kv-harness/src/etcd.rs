//! Just enough of etcd's v3 JSON gateway (etcd 3.4's `/v3/...` on its
//! client port) for the load generator to drive an etcd cluster the way it
//! drives raftkv: a put, a linearizable range read of one key, and the
//! status call that names the leader.
//!
//! The gateway takes keys and values as standard base64 inside JSON:
//! `POST /v3/kv/put` with `{"key":"<base64>","value":"<base64>"}`,
//! `POST /v3/kv/range` with `{"key":"<base64>"}` and
//! `POST /v3/maintenance/status` with `{}`, which answers
//! `{"header":{"member_id":"…"},"leader":"…",…}` (64-bit numbers as
//! strings). Errors come back as HTTP statuses that
//! [`ClientError`] maps as it does raftkv's (503 unavailable, 504
//! timed out, …).

use bytes::Bytes;
use hyper::Method;

use crate::client::{Client, ClientError, Connection, expect_success};

/// The gateway path of a put.
pub const PUT_PATH: &str = "/v3/kv/put";
/// The gateway path of a range read.
pub const RANGE_PATH: &str = "/v3/kv/range";
/// The gateway path of a member's status.
pub const STATUS_PATH: &str = "/v3/maintenance/status";

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Appends `data` to `out` in standard base64 (RFC 4648, with `=`
/// padding), the encoding protobuf's JSON mapping uses for bytes.
pub fn base64_encode_into(data: &[u8], out: &mut String) {
    out.reserve(data.len().div_ceil(3) * 4);
    let sextet = |n: u32, shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
    let mut chunks = data.chunks_exact(3);
    for c in &mut chunks {
        let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        out.extend([sextet(n, 18), sextet(n, 12), sextet(n, 6), sextet(n, 0)]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend([sextet(n, 18), sextet(n, 12), '=', '=']);
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.extend([sextet(n, 18), sextet(n, 12), sextet(n, 6), '=']);
        }
        _ => {}
    }
}

/// `data` in standard base64.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    base64_encode_into(data, &mut out);
    out
}

/// The JSON body of a put of `key` = `value`.
pub fn put_body(key: &[u8], value: &[u8]) -> Bytes {
    let mut body = String::with_capacity(24 + (key.len() + value.len()).div_ceil(3) * 4 + 8);
    body.push_str(r#"{"key":""#);
    base64_encode_into(key, &mut body);
    body.push_str(r#"","value":""#);
    base64_encode_into(value, &mut body);
    body.push_str(r#""}"#);
    Bytes::from(body)
}

/// The JSON body of a (linearizable) range read of exactly `key`.
pub fn range_body(key: &[u8]) -> Bytes {
    let mut body = String::from(r#"{"key":""#);
    base64_encode_into(key, &mut body);
    body.push_str(r#""}"#);
    Bytes::from(body)
}

/// Whether a range answer found the key: a non-empty `kvs` array (the
/// gateway leaves `kvs` out when nothing matched).
///
/// # Errors
/// A message if `body` is not a JSON object.
pub fn range_found(body: &[u8]) -> Result<bool, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("range answer is not JSON: {e}"))?;
    if !v.is_object() {
        return Err("range answer is not a JSON object".into());
    }
    Ok(v.get("kvs")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|kvs| !kvs.is_empty()))
}

/// A member's view from its status answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    /// The answering member's id.
    pub member_id: u64,
    /// The leader it knows of; `None` while it knows none (etcd says 0).
    pub leader: Option<u64>,
}

impl MemberStatus {
    /// Whether the answering member is the leader.
    pub fn is_leader(&self) -> bool {
        self.leader == Some(self.member_id)
    }
}

/// A 64-bit number the gateway wrote as a string (its usual form) or as a
/// JSON number.
fn json_u64(v: Option<&serde_json::Value>) -> Option<u64> {
    match v? {
        serde_json::Value::String(s) => s.parse().ok(),
        n => n.as_u64(),
    }
}

/// Parses the answer of [`STATUS_PATH`].
///
/// # Errors
/// A message saying what is missing.
pub fn parse_status(body: &[u8]) -> Result<MemberStatus, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("status is not JSON: {e}"))?;
    let member_id = json_u64(v.get("header").and_then(|h| h.get("member_id")))
        .ok_or("status has no header.member_id")?;
    // Omitted (protobuf's JSON leaves out zeros) or 0: no leader known.
    let leader = match v.get("leader") {
        None => 0,
        some => json_u64(some).ok_or("status has a leader that is not a number")?,
    };
    Ok(MemberStatus {
        member_id,
        leader: (leader != 0).then_some(leader),
    })
}

/// Writes `key` = `value` through the gateway on `conn`.
///
/// # Errors
/// See [`ClientError`].
pub async fn put(conn: &mut Connection, key: &[u8], value: &[u8]) -> Result<(), ClientError> {
    let resp = conn
        .request(Method::POST, PUT_PATH, put_body(key, value))
        .await?;
    expect_success(resp).map(drop)
}

/// Reads `key` linearizably through the gateway on `conn`: whether it
/// exists.
///
/// # Errors
/// See [`ClientError`]; [`ClientError::InvalidResponse`] if the answer is
/// not a range answer.
pub async fn get(conn: &mut Connection, key: &[u8]) -> Result<bool, ClientError> {
    let resp = conn
        .request(Method::POST, RANGE_PATH, range_body(key))
        .await?;
    let resp = expect_success(resp)?;
    range_found(&resp.body).map_err(|reason| ClientError::InvalidResponse {
        endpoint: conn.endpoint().to_string(),
        reason,
    })
}

/// The status of the member at `endpoint`.
///
/// # Errors
/// See [`ClientError`]; [`ClientError::InvalidResponse`] if the answer is
/// not a status.
pub async fn status(client: &Client, endpoint: &str) -> Result<MemberStatus, ClientError> {
    let resp = client
        .request(
            Method::POST,
            endpoint,
            STATUS_PATH,
            Bytes::from_static(b"{}"),
        )
        .await?;
    let resp = expect_success(resp)?;
    parse_status(&resp.body).map_err(|reason| ClientError::InvalidResponse {
        endpoint: endpoint.to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_test_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), encoded, "{plain:?}");
        }
        // Every sextet value, including the last two characters.
        assert_eq!(base64_encode(&[0xfb, 0xff, 0xbf]), "+/+/");
        assert_eq!(base64_encode(&[0, 0, 0]), "AAAA");
        let all: Vec<u8> = (0..=255).collect();
        let text = base64_encode(&all);
        assert_eq!(text.len(), 344);
        assert!(text.ends_with("+/w=="), "{text}");
    }

    #[test]
    fn put_and_range_bodies_are_the_gateway_json() {
        let body = put_body(b"bench-7", &[0xff, 0, 1]);
        assert_eq!(&body[..], br#"{"key":"YmVuY2gtNw==","value":"/wAB"}"#);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["key"], "YmVuY2gtNw==");
        assert_eq!(&put_body(b"", b"")[..], br#"{"key":"","value":""}"#);
        assert_eq!(&range_body(b"k")[..], br#"{"key":"aw=="}"#);
    }

    #[test]
    fn range_answers_say_whether_the_key_exists() {
        let found =
            br#"{"header":{"revision":"5"},"kvs":[{"key":"aw==","value":"dg=="}],"count":"1"}"#;
        assert_eq!(range_found(found), Ok(true));
        assert_eq!(range_found(br#"{"header":{"revision":"5"}}"#), Ok(false));
        assert_eq!(range_found(br#"{"kvs":[]}"#), Ok(false));
        assert!(range_found(b"<html>").is_err());
        assert!(range_found(b"[1]").is_err());
    }

    #[test]
    fn status_names_the_member_and_its_leader() {
        // As etcd 3.4.23 answers (abridged).
        let leader = br#"{"header":{"cluster_id":"17237436991929493444","member_id":"9372538179322589801","revision":"1","raft_term":"2"},"version":"3.4.23","dbSize":"20480","leader":"9372538179322589801","raftIndex":"8","raftTerm":"2","raftAppliedIndex":"8","dbSizeInUse":"16384"}"#;
        let s = parse_status(leader).unwrap();
        assert_eq!(s.member_id, 9_372_538_179_322_589_801);
        assert!(s.is_leader());
        let follower = br#"{"header":{"member_id":"2"},"leader":"9"}"#;
        let s = parse_status(follower).unwrap();
        assert_eq!((s.member_id, s.leader, s.is_leader()), (2, Some(9), false));
        let numbers = br#"{"header":{"member_id":3},"leader":3}"#;
        assert!(parse_status(numbers).unwrap().is_leader());
        for none in [
            &br#"{"header":{"member_id":"2"}}"#[..],
            br#"{"header":{"member_id":"2"},"leader":"0"}"#,
        ] {
            assert_eq!(parse_status(none).unwrap().leader, None);
        }
        assert!(
            parse_status(br#"{"leader":"1"}"#)
                .unwrap_err()
                .contains("member_id")
        );
        assert!(parse_status(br#"{"header":{"member_id":"1"},"leader":"x"}"#).is_err());
        assert!(parse_status(b"nope").unwrap_err().contains("not JSON"));
    }
}
