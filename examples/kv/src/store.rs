//! The replicated state machine: a map from key bytes to value bytes, plus
//! the peer URLs of the members (so a snapshot carries everything a
//! restarted or new node needs), and the encoding of commands in log
//! entries.
//!
//! Entry payload of a write (little-endian):
//! `[op = 1][request id: u64][key length: u32][key][value]`.
//! Snapshot data: `b"RKVS"`, version `u32 = 2`, pair count `u64`, pairs as
//! `[key len u32][key][value len u32][value]`, peer count `u32`, peers as
//! `[id u64][url len u32][url]`, then (version 2) removed-node count `u32`
//! and the removed ids as `u64`s. Version 1 data (no removed ids) is still
//! read. raft-snap checksums the whole file.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

const OP_PUT: u8 = 1;
const SNAPSHOT_MAGIC: &[u8; 4] = b"RKVS";
const SNAPSHOT_VERSION: u32 = 2;
/// The version before removed node ids were recorded; still restored.
const SNAPSHOT_VERSION_1: u32 = 1;

/// A decoded write command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Put {
    /// Chosen by the proposing node to find the waiting client.
    pub request_id: u64,
    /// The key.
    pub key: Bytes,
    /// The value.
    pub value: Bytes,
}

impl Put {
    /// The entry payload.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(13 + self.key.len() + self.value.len());
        b.put_u8(OP_PUT);
        b.put_u64_le(self.request_id);
        b.put_u32_le(self.key.len() as u32);
        b.put_slice(&self.key);
        b.put_slice(&self.value);
        b.freeze()
    }

    /// Decodes an entry payload; `None` for anything that is not a
    /// well-formed write (a committed entry is never trusted to be).
    pub fn decode(mut data: Bytes) -> Option<Put> {
        if data.remaining() < 13 || data.get_u8() != OP_PUT {
            return None;
        }
        let request_id = data.get_u64_le();
        let key_len = data.get_u32_le() as usize;
        if key_len > data.remaining() {
            return None;
        }
        let key = data.split_to(key_len);
        Some(Put {
            request_id,
            key,
            value: data,
        })
    }
}

/// Why snapshot data could not be restored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestoreError {
    /// Not produced by [`KvStore::snapshot_data`], or a newer version.
    #[error("snapshot data has an unknown header")]
    BadHeader,
    /// Ends early or has trailing bytes.
    #[error("snapshot data is truncated or has trailing bytes")]
    Truncated,
    /// A peer URL is not UTF-8.
    #[error("snapshot data holds a peer URL that is not UTF-8")]
    BadUrl,
}

/// The key-value map, the member URLs and the ids of removed members.
///
/// Invariant: `applied` is the index of the last entry (or snapshot)
/// reflected in `data`, `peers` and `removed`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KvStore {
    data: BTreeMap<Bytes, Bytes>,
    peers: BTreeMap<u64, String>,
    /// Every node id ever removed: never a member again (ids are not
    /// reused, as in etcd), so this is replicated state too.
    removed: BTreeSet<u64>,
    applied: u64,
}

impl KvStore {
    /// An empty store.
    pub fn new() -> KvStore {
        KvStore::default()
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.data.get(key).cloned()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when no key is set.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The index of the last applied entry.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Applies a write committed at `index`.
    pub fn put(&mut self, index: u64, key: Bytes, value: Bytes) {
        self.data.insert(key, value);
        self.set_applied(index);
    }

    /// Records an applied entry that does not change the map.
    pub fn set_applied(&mut self, index: u64) {
        debug_assert!(index >= self.applied, "applied index went backwards");
        self.applied = index;
    }

    /// The known peer URLs, by node id.
    pub fn peers(&self) -> &BTreeMap<u64, String> {
        &self.peers
    }

    /// Records a member's URL.
    pub fn set_peer(&mut self, id: u64, url: String) {
        self.peers.insert(id, url);
    }

    /// Forgets a removed member's URL and records that `id` was removed,
    /// for good.
    pub fn remove_peer(&mut self, id: u64) {
        self.peers.remove(&id);
        self.removed.insert(id);
    }

    /// True if node `id` was removed from the cluster at some point.
    pub fn was_removed(&self, id: u64) -> bool {
        self.removed.contains(&id)
    }

    /// The ids of every node ever removed, in order.
    pub fn removed(&self) -> &BTreeSet<u64> {
        &self.removed
    }

    /// Serialises the map and the peers (see the module docs).
    pub fn snapshot_data(&self) -> Bytes {
        let size: usize = self.data.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
        let mut b = BytesMut::with_capacity(24 + size + 64 * self.peers.len());
        b.put_slice(SNAPSHOT_MAGIC);
        b.put_u32_le(SNAPSHOT_VERSION);
        b.put_u64_le(self.data.len() as u64);
        for (k, v) in &self.data {
            b.put_u32_le(k.len() as u32);
            b.put_slice(k);
            b.put_u32_le(v.len() as u32);
            b.put_slice(v);
        }
        b.put_u32_le(self.peers.len() as u32);
        for (id, url) in &self.peers {
            b.put_u64_le(*id);
            b.put_u32_le(url.len() as u32);
            b.put_slice(url.as_bytes());
        }
        b.put_u32_le(self.removed.len() as u32);
        for id in &self.removed {
            b.put_u64_le(*id);
        }
        b.freeze()
    }

    /// Replaces the whole state with snapshot data taken at `index`.
    ///
    /// # Errors
    /// A [`RestoreError`]; the store is unchanged then.
    pub fn restore(&mut self, index: u64, mut data: Bytes) -> Result<(), RestoreError> {
        if data.remaining() < 16 || &data[..4] != SNAPSHOT_MAGIC {
            return Err(RestoreError::BadHeader);
        }
        data.advance(4);
        let version = data.get_u32_le();
        if version != SNAPSHOT_VERSION && version != SNAPSHOT_VERSION_1 {
            return Err(RestoreError::BadHeader);
        }
        let count = data.get_u64_le();
        let mut map = BTreeMap::new();
        for _ in 0..count {
            let key = take_chunk(&mut data)?;
            let value = take_chunk(&mut data)?;
            map.insert(key, value);
        }
        if data.remaining() < 4 {
            return Err(RestoreError::Truncated);
        }
        let peer_count = data.get_u32_le();
        let mut peers = BTreeMap::new();
        for _ in 0..peer_count {
            if data.remaining() < 8 {
                return Err(RestoreError::Truncated);
            }
            let id = data.get_u64_le();
            let url = take_chunk(&mut data)?;
            let url = String::from_utf8(url.to_vec()).map_err(|_| RestoreError::BadUrl)?;
            peers.insert(id, url);
        }
        let mut removed = BTreeSet::new();
        if version >= SNAPSHOT_VERSION {
            if data.remaining() < 4 {
                return Err(RestoreError::Truncated);
            }
            let count = data.get_u32_le();
            for _ in 0..count {
                if data.remaining() < 8 {
                    return Err(RestoreError::Truncated);
                }
                removed.insert(data.get_u64_le());
            }
        }
        if data.has_remaining() {
            return Err(RestoreError::Truncated);
        }
        self.data = map;
        self.peers = peers;
        self.removed = removed;
        self.applied = index;
        Ok(())
    }
}

fn take_chunk(data: &mut Bytes) -> Result<Bytes, RestoreError> {
    if data.remaining() < 4 {
        return Err(RestoreError::Truncated);
    }
    let len = data.get_u32_le() as usize;
    if len > data.remaining() {
        return Err(RestoreError::Truncated);
    }
    Ok(data.split_to(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(id: u64, k: &'static [u8], v: &'static [u8]) -> Put {
        Put {
            request_id: id,
            key: Bytes::from_static(k),
            value: Bytes::from_static(v),
        }
    }

    #[test]
    fn a_put_round_trips_through_its_encoding() {
        let p = put(7, b"key", b"value");
        assert_eq!(Put::decode(p.encode()), Some(p));
        let empty = put(1, b"", b"");
        assert_eq!(Put::decode(empty.encode()), Some(empty));
    }

    #[test]
    fn malformed_payloads_are_not_puts() {
        assert_eq!(Put::decode(Bytes::new()), None);
        assert_eq!(Put::decode(Bytes::from_static(&[2; 20])), None);
        let mut bad = BytesMut::new();
        bad.put_u8(OP_PUT);
        bad.put_u64_le(1);
        bad.put_u32_le(100);
        bad.put_slice(b"short");
        assert_eq!(Put::decode(bad.freeze()), None);
    }

    #[test]
    fn a_snapshot_restores_the_same_state() {
        let mut s = KvStore::new();
        s.put(1, Bytes::from_static(b"a"), Bytes::from_static(b"1"));
        s.put(2, Bytes::from_static(b"b"), Bytes::new());
        s.set_peer(1, "http://127.0.0.1:12379".into());
        s.set_peer(4, "http://127.0.0.1:42379".into());
        s.set_peer(3, "http://127.0.0.1:32379".into());
        s.remove_peer(3);
        let mut t = KvStore::new();
        t.restore(2, s.snapshot_data()).unwrap();
        assert_eq!(s, t);
        assert!(t.was_removed(3) && !t.was_removed(4));
    }

    #[test]
    fn version_1_snapshot_data_restores_with_no_removed_nodes() {
        let mut s = KvStore::new();
        s.put(1, Bytes::from_static(b"a"), Bytes::from_static(b"1"));
        s.set_peer(1, "http://127.0.0.1:12379".into());
        // Version 1: the same layout without the removed ids at the end.
        let v2 = s.snapshot_data();
        let mut v1 = BytesMut::from(&v2[..v2.len() - 4]);
        v1[4..8].copy_from_slice(&SNAPSHOT_VERSION_1.to_le_bytes());
        let mut t = KvStore::new();
        t.restore(1, v1.freeze()).unwrap();
        assert_eq!(s, t);
    }

    #[test]
    fn damaged_snapshot_data_is_refused_and_changes_nothing() {
        let mut s = KvStore::new();
        s.put(1, Bytes::from_static(b"a"), Bytes::from_static(b"1"));
        s.set_peer(1, "http://x:1".into());
        let data = s.snapshot_data();
        let mut t = KvStore::new();
        t.put(9, Bytes::from_static(b"keep"), Bytes::from_static(b"me"));
        let before = t.clone();
        for cut in 0..data.len() {
            assert!(t.restore(3, data.slice(..cut)).is_err(), "cut at {cut}");
        }
        let mut long = BytesMut::from(&data[..]);
        long.put_u8(0);
        assert_eq!(t.restore(3, long.freeze()), Err(RestoreError::Truncated));
        assert_eq!(t, before);
    }
}
