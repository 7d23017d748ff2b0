//! The group's address book: who the members are, where they listen,
//! which ids were removed (never to return), and which learners are to be
//! promoted once caught up. It changes only by applying committed
//! membership changes, so every member holds the same book at the same
//! applied index, and it travels in snapshots ahead of the state
//! machine's data (see [`Members::encode`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use bytes::{BufMut, Bytes, BytesMut};
use raft_core::{Index, NodeId};

/// First byte of a host-format conf change context. An address never
/// starts with it, so a context without it is a bare address (what
/// raftexample puts there).
const CONTEXT_TAG: u8 = 0x01;
/// Context flag: promote this learner to voter once it has caught up.
const FLAG_PROMOTE: u8 = 0x01;
/// Snapshot header magic and version.
const HEADER_MAGIC: &[u8; 4] = b"RHST";
const HEADER_VERSION: u8 = 1;
/// Sanity bounds on a decoded header (ids and addresses are small).
const MAX_MEMBERS: u32 = 1 << 16;
const MAX_ADDR_BYTES: u32 = 4096;

/// What a membership change carries in its context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JoinContext {
    /// Where the member listens for peers.
    pub(crate) addr: String,
    /// A learner added by `add_voter`: promote it once caught up.
    pub(crate) promote: bool,
}

impl JoinContext {
    pub(crate) fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(2 + self.addr.len());
        b.put_u8(CONTEXT_TAG);
        b.put_u8(if self.promote { FLAG_PROMOTE } else { 0 });
        b.put_slice(self.addr.as_bytes());
        b.freeze()
    }

    /// Decodes a context; `None` when it holds no usable address.
    pub(crate) fn decode(context: &[u8]) -> Option<JoinContext> {
        let (promote, addr) = match context {
            [CONTEXT_TAG, flags, addr @ ..] => (flags & FLAG_PROMOTE != 0, addr),
            [CONTEXT_TAG] => return None,
            addr => (false, addr),
        };
        let addr = std::str::from_utf8(addr).ok()?;
        (!addr.is_empty()).then(|| JoinContext {
            addr: addr.to_string(),
            promote,
        })
    }
}

/// Why a snapshot's host header does not decode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The data does not start with the host's header.
    #[error("snapshot data lacks the host header (magic {found:02x?})")]
    Magic {
        /// The first bytes found.
        found: [u8; 4],
    },
    /// A header version this build cannot read.
    #[error(
        "snapshot host header version {0} is not supported (this build reads {HEADER_VERSION})"
    )]
    Version(u8),
    /// A count or length beyond the header's bounds.
    #[error("snapshot host header: {what} of {value} exceeds {limit}")]
    Bound {
        /// Which field.
        what: &'static str,
        /// Its value.
        value: u32,
        /// The bound.
        limit: u32,
    },
    /// An id of zero, or an address that is not UTF-8.
    #[error("snapshot host header: {0}")]
    Invalid(&'static str),
    /// The data ended early or could not be read.
    #[error("snapshot host header: {0}")]
    Io(#[from] std::io::Error),
}

/// The address book. Invariants: `addrs` and `removed` are disjoint;
/// every key of `promote` has an address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Members {
    addrs: BTreeMap<NodeId, String>,
    removed: BTreeSet<NodeId>,
    /// Learners to promote once caught up, with the index of the entry
    /// that added them: a learner is caught up only once it holds that
    /// entry (so an empty newcomer never is, however short the log).
    promote: BTreeMap<NodeId, Index>,
}

impl Members {
    /// Records an added member. A removed id is refused (the caller
    /// checks [`Members::was_removed`] first, on replicated state).
    /// `at` is the index of the entry that adds it.
    pub(crate) fn add(
        &mut self,
        id: NodeId,
        context: Option<JoinContext>,
        as_learner: bool,
        at: Index,
    ) {
        debug_assert!(
            !self.removed.contains(&id),
            "a removed id is never re-added"
        );
        if let Some(ctx) = context {
            if as_learner && ctx.promote {
                self.promote.insert(id, at);
            }
            self.addrs.insert(id, ctx.addr);
        }
        if !as_learner {
            self.promote.remove(&id);
        }
    }

    /// Records a removal; the id is never a member again.
    pub(crate) fn remove(&mut self, id: NodeId) {
        self.addrs.remove(&id);
        self.promote.remove(&id);
        self.removed.insert(id);
    }

    /// Learners waiting for promotion, with the index that added them.
    pub(crate) fn to_promote(&self) -> &BTreeMap<NodeId, Index> {
        &self.promote
    }

    pub(crate) fn was_removed(&self, id: NodeId) -> bool {
        self.removed.contains(&id)
    }

    pub(crate) fn addr(&self, id: NodeId) -> Option<&str> {
        self.addrs.get(&id).map(String::as_str)
    }

    pub(crate) fn addrs(&self) -> &BTreeMap<NodeId, String> {
        &self.addrs
    }

    pub(crate) fn removed(&self) -> &BTreeSet<NodeId> {
        &self.removed
    }

    /// The snapshot header: this book, ahead of the state machine's data.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + self.addrs.len() * 32);
        b.extend_from_slice(HEADER_MAGIC);
        b.push(HEADER_VERSION);
        b.extend_from_slice(&(self.addrs.len() as u32).to_le_bytes());
        for (id, addr) in &self.addrs {
            b.extend_from_slice(&id.get().to_le_bytes());
            let promote = self.promote.get(id);
            b.push(if promote.is_some() { FLAG_PROMOTE } else { 0 });
            b.extend_from_slice(&promote.map_or(0, |i| i.get()).to_le_bytes());
            b.extend_from_slice(&(addr.len() as u32).to_le_bytes());
            b.extend_from_slice(addr.as_bytes());
        }
        b.extend_from_slice(&(self.removed.len() as u32).to_le_bytes());
        for id in &self.removed {
            b.extend_from_slice(&id.get().to_le_bytes());
        }
        b
    }

    /// Reads the header [`Members::encode`] wrote, leaving `r` at the
    /// state machine's data.
    pub(crate) fn decode(r: &mut dyn Read) -> Result<Members, HeaderError> {
        let mut magic = [0u8; 4];
        r.read_exact(&mut magic)?;
        if &magic != HEADER_MAGIC {
            return Err(HeaderError::Magic { found: magic });
        }
        let version = read_u8(r)?;
        if version != HEADER_VERSION {
            return Err(HeaderError::Version(version));
        }
        let mut members = Members::default();
        for _ in 0..bounded(r, "member count", MAX_MEMBERS)? {
            let id = read_id(r)?;
            let flags = read_u8(r)?;
            let added_at = Index(read_u64(r)?);
            let len = bounded(r, "address length", MAX_ADDR_BYTES)?;
            let mut addr = vec![0u8; len as usize];
            r.read_exact(&mut addr)?;
            let addr = String::from_utf8(addr)
                .map_err(|_| HeaderError::Invalid("an address is not UTF-8"))?;
            if flags & FLAG_PROMOTE != 0 {
                members.promote.insert(id, added_at);
            }
            members.addrs.insert(id, addr);
        }
        for _ in 0..bounded(r, "removed count", MAX_MEMBERS)? {
            let id = read_id(r)?;
            if members.addrs.contains_key(&id) {
                return Err(HeaderError::Invalid("a removed id is listed as a member"));
            }
            members.removed.insert(id);
        }
        Ok(members)
    }
}

fn read_u8(r: &mut dyn Read) -> std::io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

fn bounded(r: &mut dyn Read, what: &'static str, limit: u32) -> Result<u32, HeaderError> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    let value = u32::from_le_bytes(b);
    if value > limit {
        return Err(HeaderError::Bound { what, value, limit });
    }
    Ok(value)
}

fn read_u64(r: &mut dyn Read) -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_id(r: &mut dyn Read) -> Result<NodeId, HeaderError> {
    NodeId::new(read_u64(r)?).ok_or(HeaderError::Invalid("a node id is zero"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nid(n: u64) -> NodeId {
        NodeId::new(n).expect("non-zero")
    }

    fn ctx(addr: &str, promote: bool) -> Option<JoinContext> {
        Some(JoinContext {
            addr: addr.into(),
            promote,
        })
    }

    #[test]
    fn a_context_round_trips_and_a_bare_address_is_read_as_one() {
        let c = JoinContext {
            addr: "10.0.0.1:2380".into(),
            promote: true,
        };
        assert_eq!(JoinContext::decode(&c.encode()), Some(c));
        let bare = JoinContext::decode(b"http://10.0.0.2:2380").expect("an address");
        assert_eq!(bare.addr, "http://10.0.0.2:2380");
        assert!(!bare.promote);
        assert_eq!(JoinContext::decode(b""), None);
        assert_eq!(JoinContext::decode(&[CONTEXT_TAG]), None);
        assert_eq!(JoinContext::decode(&[0xff, 0xfe]), None, "not UTF-8");
    }

    #[test]
    fn the_header_round_trips_and_leaves_the_reader_at_the_data() {
        let mut m = Members::default();
        m.add(nid(1), ctx("a:1", false), false, Index(1));
        m.add(nid(4), ctx("d:4", true), true, Index(9));
        m.add(nid(3), ctx("c:3", false), false, Index(2));
        m.remove(nid(3));
        let mut data = m.encode();
        data.extend_from_slice(b"state");
        let mut r = &data[..];
        let back = Members::decode(&mut r).expect("decodes");
        assert_eq!(back, m);
        assert_eq!(r, b"state");
        assert!(back.was_removed(nid(3)));
        let promote: Vec<(NodeId, Index)> =
            back.to_promote().iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(promote, [(nid(4), Index(9))]);
    }

    #[test]
    fn promoting_a_learner_clears_its_promotion_intent() {
        let mut m = Members::default();
        m.add(nid(4), ctx("d:4", true), true, Index(5));
        m.add(nid(4), None, false, Index(8));
        assert!(m.to_promote().is_empty());
        assert_eq!(m.addr(nid(4)), Some("d:4"), "the address stays");
    }

    #[test]
    fn a_damaged_header_is_a_typed_error() {
        let mut m = Members::default();
        m.add(nid(1), ctx("a:1", false), false, Index(1));
        let good = m.encode();
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        assert!(matches!(
            Members::decode(&mut &bad_magic[..]),
            Err(HeaderError::Magic { .. })
        ));
        let mut bad_version = good.clone();
        bad_version[4] = 9;
        assert!(matches!(
            Members::decode(&mut &bad_version[..]),
            Err(HeaderError::Version(9))
        ));
        let mut huge = good.clone();
        huge[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Members::decode(&mut &huge[..]),
            Err(HeaderError::Bound { .. })
        ));
        for cut in 0..good.len() {
            assert!(
                Members::decode(&mut &good[..cut]).is_err(),
                "a header cut at {cut} bytes decoded"
            );
        }
    }
}
