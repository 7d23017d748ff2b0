//! The replicated state machine: a map from key bytes to value bytes, and
//! the encoding of its commands in log entries. raft-host runs it: it
//! applies committed commands, takes snapshots off the write path and
//! keeps the membership (peer URLs, removed ids) itself.
//!
//! Command payloads ([`KvCommand::encode`], little-endian): a put is
//! `[1][key length: u32][key][value]`, a delete `[2][key length][key]`, a
//! compare-and-swap `[3][key length][key][expected length: u32][expected][value]`.
//! Snapshot data: `b"RKVS"`, version `u32 = 3`, pair
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
const OP_DELETE: u8 = 2;
const OP_CAS: u8 = 3;
const SNAPSHOT_MAGIC: &[u8; 4] = b"RKVS";
const SNAPSHOT_VERSION: u32 = 3;

/// A decoded command: what one log entry asks of the map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvCommand {
    /// `key` = `value`.
    Put {
        /// The key.
        key: Bytes,
        /// The value.
        value: Bytes,
    },
    /// `key` removed, whether or not it was there.
    Delete {
        /// The key.
        key: Bytes,
    },
    /// `key` = `value` if `key` holds `expected` now; nothing otherwise.
    Cas {
        /// The key.
        key: Bytes,
        /// The value it must hold.
        expected: Bytes,
        /// The value it then gets.
        value: Bytes,
    },
}

impl KvCommand {
    /// The key it writes.
    pub fn key(&self) -> &[u8] {
        match self {
            KvCommand::Put { key, .. } | KvCommand::Delete { key } | KvCommand::Cas { key, .. } => {
                key
            }
        }
    }

    /// The command payload: `[op][key length: u32 LE][key]`, then for a
    /// put the value, for a compare-and-swap `[expected length: u32
    /// LE][expected][value]`.
    pub fn encode(&self) -> Bytes {
        let (op, key, expected, value) = match self {
            KvCommand::Put { key, value } => (OP_PUT, key, None, Some(value)),
            KvCommand::Delete { key } => (OP_DELETE, key, None, None),
            KvCommand::Cas {
                key,
                expected,
                value,
            } => (OP_CAS, key, Some(expected), Some(value)),
        };
        let len = |b: Option<&Bytes>| b.map_or(0, |b| 4 + b.len());
        let mut b = BytesMut::with_capacity(5 + key.len() + len(expected) + len(value));
        b.put_u8(op);
        b.put_u32_le(key.len() as u32);
        b.put_slice(key);
        if let Some(expected) = expected {
            b.put_u32_le(expected.len() as u32);
            b.put_slice(expected);
        }
        b.put_slice(value.map_or(&[][..], |v| v));
        b.freeze()
    }

    /// Decodes a command payload; `None` for anything that is not a
    /// well-formed command (a committed entry is never trusted to be).
    pub fn decode(data: &Bytes) -> Option<KvCommand> {
        let (&op, _) = data.split_first()?;
        let (key, rest) = chunk(data.slice(1..))?;
        match op {
            OP_PUT => Some(KvCommand::Put { key, value: rest }),
            OP_DELETE if rest.is_empty() => Some(KvCommand::Delete { key }),
            OP_CAS => {
                let (expected, value) = chunk(rest)?;
                Some(KvCommand::Cas {
                    key,
                    expected,
                    value,
                })
            }
            _ => None,
        }
    }
}

/// Splits `[length: u32 LE][bytes]` off the front of `data`.
fn chunk(data: Bytes) -> Option<(Bytes, Bytes)> {
    let len = u32::from_le_bytes(data.get(..4)?.try_into().expect("4 bytes")) as usize;
    let end = 4usize.checked_add(len).filter(|&end| end <= data.len())?;
    Some((data.slice(4..end), data.slice(end..)))
}

/// What applying a command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The key was written (a put, or a compare-and-swap that matched).
    Written,
    /// The key was removed (or was not there).
    Deleted,
    /// A compare-and-swap found another value (or none): nothing changed.
    Mismatch,
    /// The command was not a raftkv command; it changed nothing.
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
            let applied = match KvCommand::decode(&c.data) {
                Some(KvCommand::Put { key, value }) => {
                    self.data.insert(key, value);
                    Applied::Written
                }
                Some(KvCommand::Delete { key }) => {
                    self.data.remove(&key);
                    Applied::Deleted
                }
                Some(KvCommand::Cas {
                    key,
                    expected,
                    value,
                }) => match self.data.get_mut(&key) {
                    Some(current) if *current == expected => {
                        *current = value;
                        Applied::Written
                    }
                    _ => Applied::Mismatch,
                },
                None => {
                    tracing::warn!(index = %c.index, "committed command is not a raftkv command; skipped");
                    Applied::Skipped
                }
            };
            outputs.push(applied);
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

    fn put(k: &'static [u8], v: &'static [u8]) -> KvCommand {
        KvCommand::Put {
            key: Bytes::from_static(k),
            value: Bytes::from_static(v),
        }
    }

    fn command(index: u64, p: &KvCommand) -> Command {
        Command {
            index: Index(index),
            data: p.encode(),
        }
    }

    fn cas(k: &'static [u8], expected: &'static [u8], v: &'static [u8]) -> KvCommand {
        KvCommand::Cas {
            key: Bytes::from_static(k),
            expected: Bytes::from_static(expected),
            value: Bytes::from_static(v),
        }
    }

    fn delete(k: &'static [u8]) -> KvCommand {
        KvCommand::Delete {
            key: Bytes::from_static(k),
        }
    }

    #[test]
    fn every_command_round_trips_through_its_encoding() {
        for c in [
            put(b"key", b"value"),
            put(b"", b""),
            delete(b"key"),
            cas(b"key", b"old", b"new"),
            cas(b"", b"", b""),
        ] {
            assert_eq!(KvCommand::decode(&c.encode()), Some(c));
        }
    }

    #[test]
    fn malformed_payloads_are_not_commands() {
        assert_eq!(KvCommand::decode(&Bytes::new()), None);
        assert_eq!(
            KvCommand::decode(&Bytes::from_static(&[9, 0, 0, 0, 0])),
            None
        );
        let mut long_key = put(b"k", b"v").encode().to_vec();
        long_key[1] = 200;
        assert_eq!(KvCommand::decode(&Bytes::from(long_key)), None);
        let huge = Bytes::from_static(&[1, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(KvCommand::decode(&huge), None);
        let mut delete_with_value = delete(b"k").encode().to_vec();
        delete_with_value.push(b'v');
        assert_eq!(KvCommand::decode(&Bytes::from(delete_with_value)), None);
        let cas_cut = cas(b"k", b"old", b"").encode();
        assert_eq!(KvCommand::decode(&cas_cut.slice(..cas_cut.len() - 1)), None);
    }

    #[test]
    fn deletes_and_compare_and_swaps_change_the_map_only_when_they_should() {
        let mut s = KvStore::new();
        let mut out = Vec::new();
        let commands = [
            put(b"a", b"1"),
            cas(b"a", b"2", b"3"),
            cas(b"a", b"1", b"2"),
            cas(b"missing", b"", b"x"),
            delete(b"a"),
            delete(b"a"),
            cas(b"a", b"2", b"4"),
        ];
        let entries: Vec<Command> = (1..).zip(&commands).map(|(i, c)| command(i, c)).collect();
        s.apply(&entries[..3], &mut out);
        assert_eq!(s.get(b"a"), Some(Bytes::from_static(b"2")));
        s.apply(&entries[3..], &mut out);
        use Applied::{Deleted, Mismatch, Written};
        let expected = [
            Written, Mismatch, Written, Mismatch, Deleted, Deleted, Mismatch,
        ];
        assert_eq!(out, expected);
        assert!(s.is_empty());
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
