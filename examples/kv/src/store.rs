//! The replicated state machine: a map from key bytes to value bytes, and
//! the encoding of its commands in log entries. raft-host runs it: it
//! applies committed commands, takes snapshots off the write path and
//! keeps the membership (peer URLs, removed ids) itself.
//!
//! Command payload of a write (little-endian): `[op = 1][key length:
//! u32][key][value]`. Snapshot data: `b"RKVS"`, version `u32 = 3`, pair
//! count `u64`, pairs as `[key len u32][key][value len u32][value]`.
//! raft-snap checksums the whole file; raft-host puts its own header
//! (the membership) in front.
//!
//! The map is a persistent ordered map (`imbl`): a snapshot image is a
//! clone of it, O(1) on the apply path, written out on raft-host's
//! snapshot thread while writes go on.

use std::io::{self, Read, Write};

use bytes::{BufMut, Bytes, BytesMut};
use imbl::OrdMap;
use raft_host::{Command, SnapshotImage, StateMachine};

/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

const OP_PUT: u8 = 1;
const SNAPSHOT_MAGIC: &[u8; 4] = b"RKVS";
const SNAPSHOT_VERSION: u32 = 3;

/// A decoded write command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Put {
    /// The key.
    pub key: Bytes,
    /// The value.
    pub value: Bytes,
}

impl Put {
    /// The command payload.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(5 + self.key.len() + self.value.len());
        b.put_u8(OP_PUT);
        b.put_u32_le(self.key.len() as u32);
        b.put_slice(&self.key);
        b.put_slice(&self.value);
        b.freeze()
    }

    /// Decodes a command payload; `None` for anything that is not a
    /// well-formed write (a committed entry is never trusted to be).
    pub fn decode(data: &Bytes) -> Option<Put> {
        if data.len() < 5 || data[0] != OP_PUT {
            return None;
        }
        let key_len = u32::from_le_bytes(data[1..5].try_into().expect("4 bytes")) as usize;
        let value_at = 5usize.checked_add(key_len)?;
        if value_at > data.len() {
            return None;
        }
        Some(Put {
            key: data.slice(5..value_at),
            value: data.slice(value_at..),
        })
    }
}

/// What applying a command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The key was written.
    Written,
    /// The command was not a raftkv write; it changed nothing.
    Skipped,
}

/// The key-value map.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KvStore {
    data: OrdMap<Bytes, Bytes>,
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
}

impl StateMachine for KvStore {
    type Output = Applied;
    type Image = KvImage;

    fn apply(&mut self, commands: &[Command], outputs: &mut Vec<Applied>) {
        for c in commands {
            match Put::decode(&c.data) {
                Some(put) => {
                    self.data.insert(put.key, put.value);
                    outputs.push(Applied::Written);
                }
                None => {
                    tracing::warn!(index = %c.index, "committed command is not a raftkv write; skipped");
                    outputs.push(Applied::Skipped);
                }
            }
        }
    }

    fn snapshot(&self) -> KvImage {
        KvImage(self.data.clone())
    }

    fn restore(&mut self, data: &mut dyn Read) -> io::Result<()> {
        let mut header = [0u8; 16];
        data.read_exact(&mut header)?;
        let version = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        if &header[..4] != SNAPSHOT_MAGIC || version != SNAPSHOT_VERSION {
            return Err(bad("snapshot data has an unknown header"));
        }
        let count = u64::from_le_bytes(header[8..].try_into().expect("8 bytes"));
        let mut map = OrdMap::new();
        for _ in 0..count {
            let key = read_chunk(data, MAX_KEY_BYTES)?;
            let value = read_chunk(data, MAX_VALUE_BYTES)?;
            map.insert(key, value);
        }
        let mut rest = [0u8; 1];
        if data.read(&mut rest)? != 0 {
            return Err(bad("snapshot data has trailing bytes"));
        }
        self.data = map;
        Ok(())
    }
}

/// A point-in-time image of the map (a clone of the persistent map).
#[derive(Debug, Clone)]
pub struct KvImage(OrdMap<Bytes, Bytes>);

impl SnapshotImage for KvImage {
    fn write_to(self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(SNAPSHOT_MAGIC)?;
        out.write_all(&SNAPSHOT_VERSION.to_le_bytes())?;
        out.write_all(&(self.0.len() as u64).to_le_bytes())?;
        for (k, v) in &self.0 {
            out.write_all(&(k.len() as u32).to_le_bytes())?;
            out.write_all(k)?;
            out.write_all(&(v.len() as u32).to_le_bytes())?;
            out.write_all(v)?;
        }
        Ok(())
    }
}

fn bad(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn read_chunk(data: &mut dyn Read, limit: usize) -> io::Result<Bytes> {
    let mut len = [0u8; 4];
    data.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > limit {
        return Err(bad(
            "snapshot data holds a key or value longer than accepted",
        ));
    }
    let mut chunk = vec![0u8; len];
    data.read_exact(&mut chunk)?;
    Ok(Bytes::from(chunk))
}

#[cfg(test)]
mod tests {
    use raft_core::Index;

    use super::*;

    fn put(k: &'static [u8], v: &'static [u8]) -> Put {
        Put {
            key: Bytes::from_static(k),
            value: Bytes::from_static(v),
        }
    }

    fn command(index: u64, p: &Put) -> Command {
        Command {
            index: Index(index),
            data: p.encode(),
        }
    }

    #[test]
    fn a_put_round_trips_through_its_encoding() {
        let p = put(b"key", b"value");
        assert_eq!(Put::decode(&p.encode()), Some(p));
        let empty = put(b"", b"");
        assert_eq!(Put::decode(&empty.encode()), Some(empty));
    }

    #[test]
    fn malformed_payloads_are_not_puts() {
        assert_eq!(Put::decode(&Bytes::new()), None);
        assert_eq!(Put::decode(&Bytes::from_static(&[2, 0, 0, 0, 0])), None);
        let mut long_key = put(b"k", b"v").encode().to_vec();
        long_key[1] = 200;
        assert_eq!(Put::decode(&Bytes::from(long_key)), None);
        let huge = Bytes::from_static(&[1, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(Put::decode(&huge), None);
    }

    #[test]
    fn applying_writes_and_skipping_what_is_not_a_write() {
        let mut s = KvStore::new();
        let mut out = Vec::new();
        let junk = Command {
            index: Index(2),
            data: Bytes::from_static(b"junk"),
        };
        s.apply(&[command(1, &put(b"a", b"1")), junk], &mut out);
        assert_eq!(out, [Applied::Written, Applied::Skipped]);
        assert_eq!(s.get(b"a"), Some(Bytes::from_static(b"1")));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_snapshot_restores_the_same_state_and_later_writes_do_not_change_it() {
        let mut s = KvStore::new();
        let mut out = Vec::new();
        s.apply(
            &[command(1, &put(b"a", b"1")), command(2, &put(b"b", b""))],
            &mut out,
        );
        let image = s.snapshot();
        // The image is of the moment it was taken.
        s.apply(&[command(3, &put(b"a", b"changed"))], &mut out);
        let mut data = Vec::new();
        image.write_to(&mut data).expect("write");
        let mut back = KvStore::new();
        back.restore(&mut &data[..]).expect("restore");
        assert_eq!(back.get(b"a"), Some(Bytes::from_static(b"1")));
        assert_eq!(back.get(b"b"), Some(Bytes::new()));
        assert_eq!(back.len(), 2);
    }

    #[test]
    fn damaged_snapshot_data_is_refused_and_changes_nothing() {
        let mut s = KvStore::new();
        s.apply(&[command(1, &put(b"a", b"1"))], &mut Vec::new());
        let mut data = Vec::new();
        s.snapshot().write_to(&mut data).expect("write");
        let mut target = KvStore::new();
        target.apply(&[command(1, &put(b"keep", b"me"))], &mut Vec::new());
        let before = target.clone();
        let mut bad_magic = data.clone();
        bad_magic[0] = b'X';
        let mut trailing = data.clone();
        trailing.push(0);
        for damaged in [bad_magic, data[..data.len() - 1].to_vec(), trailing] {
            assert!(target.restore(&mut &damaged[..]).is_err());
            assert_eq!(target, before);
        }
    }
}
