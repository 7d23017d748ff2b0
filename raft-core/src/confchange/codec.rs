//! The byte encoding of conf changes inside log entries.
//!
//! It is the protobuf encoding of `raftpb.ConfChange` / `raftpb.ConfChangeV2`
//! from `proto/raft.proto`, written by hand so that raft-core needs no
//! protobuf dependency; `raft-proto` tests that both agree byte for byte.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::types::{
    ConfChange, ConfChangeKind, ConfChangeSingle, ConfChangeTransition, ConfChangeV2, NodeId,
};

/// Why conf-change bytes did not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfChangeDecodeError {
    /// The bytes end inside a field.
    #[error("truncated conf change")]
    Truncated,
    /// A varint is longer than ten bytes.
    #[error("malformed varint")]
    BadVarint,
    /// A field has an unsupported wire type.
    #[error("unsupported wire type {0}")]
    BadWireType(u8),
    /// The change type is unknown or unset.
    #[error("unknown conf change type {0}")]
    UnknownType(u64),
    /// The transition is unknown or unset.
    #[error("unknown conf change transition {0}")]
    UnknownTransition(u64),
    /// A change names node 0.
    #[error("conf change names node 0")]
    ZeroNodeId,
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

fn put_varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_key(buf: &mut BytesMut, field: u32, wire: u8) {
    put_varint(buf, (u64::from(field) << 3) | u64::from(wire));
}

fn kind_code(k: ConfChangeKind) -> u64 {
    match k {
        ConfChangeKind::AddNode => 1,
        ConfChangeKind::RemoveNode => 2,
        ConfChangeKind::AddLearnerNode => 3,
        ConfChangeKind::AddWitness => 4,
    }
}

fn kind_from(code: u64) -> Result<ConfChangeKind, ConfChangeDecodeError> {
    match code {
        1 => Ok(ConfChangeKind::AddNode),
        2 => Ok(ConfChangeKind::RemoveNode),
        3 => Ok(ConfChangeKind::AddLearnerNode),
        4 => Ok(ConfChangeKind::AddWitness),
        other => Err(ConfChangeDecodeError::UnknownType(other)),
    }
}

fn transition_code(t: ConfChangeTransition) -> u64 {
    match t {
        ConfChangeTransition::Auto => 1,
        ConfChangeTransition::JointImplicit => 2,
        ConfChangeTransition::JointExplicit => 3,
    }
}

fn single_bytes(c: &ConfChangeSingle) -> BytesMut {
    let mut b = BytesMut::with_capacity(12);
    put_key(&mut b, 1, VARINT);
    put_varint(&mut b, kind_code(c.kind));
    put_key(&mut b, 2, VARINT);
    put_varint(&mut b, c.node_id.get());
    b
}

impl ConfChange {
    /// Encodes the change for an `EntryKind::ConfChange` entry.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(16 + self.context.len());
        put_key(&mut b, 1, VARINT);
        put_varint(&mut b, kind_code(self.kind));
        put_key(&mut b, 2, VARINT);
        put_varint(&mut b, self.node_id.get());
        if !self.context.is_empty() {
            put_key(&mut b, 3, LEN);
            put_varint(&mut b, self.context.len() as u64);
            b.put_slice(&self.context);
        }
        b.freeze()
    }

    /// Decodes the data of an `EntryKind::ConfChange` entry.
    ///
    /// # Errors
    /// A [`ConfChangeDecodeError`] for malformed bytes.
    pub fn decode(data: &Bytes) -> Result<ConfChange, ConfChangeDecodeError> {
        let (mut kind, mut node, mut context) = (0, 0, Bytes::new());
        for_each_field(data.clone(), |field, value| {
            match (field, value) {
                (1, Value::Varint(v)) => kind = v,
                (2, Value::Varint(v)) => node = v,
                (3, Value::Bytes(b)) => context = b,
                _ => {}
            }
            Ok(())
        })?;
        Ok(ConfChange {
            kind: kind_from(kind)?,
            node_id: NodeId::new(node).ok_or(ConfChangeDecodeError::ZeroNodeId)?,
            context,
        })
    }
}

impl ConfChangeV2 {
    /// Encodes the change for an `EntryKind::ConfChangeV2` entry.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(4 + 14 * self.changes.len() + self.context.len());
        put_key(&mut b, 1, VARINT);
        put_varint(&mut b, transition_code(self.transition));
        for c in &self.changes {
            let inner = single_bytes(c);
            put_key(&mut b, 2, LEN);
            put_varint(&mut b, inner.len() as u64);
            b.put_slice(&inner);
        }
        if !self.context.is_empty() {
            put_key(&mut b, 3, LEN);
            put_varint(&mut b, self.context.len() as u64);
            b.put_slice(&self.context);
        }
        b.freeze()
    }

    /// Decodes the data of an `EntryKind::ConfChangeV2` entry.
    ///
    /// # Errors
    /// A [`ConfChangeDecodeError`] for malformed bytes.
    pub fn decode(data: &Bytes) -> Result<ConfChangeV2, ConfChangeDecodeError> {
        let mut transition = 0;
        let mut changes = Vec::new();
        let mut context = Bytes::new();
        for_each_field(data.clone(), |field, value| {
            match (field, value) {
                (1, Value::Varint(v)) => transition = v,
                (2, Value::Bytes(inner)) => {
                    let (mut kind, mut node) = (0, 0);
                    for_each_field(inner, |f, v| {
                        match (f, v) {
                            (1, Value::Varint(x)) => kind = x,
                            (2, Value::Varint(x)) => node = x,
                            _ => {}
                        }
                        Ok(())
                    })?;
                    let node_id = NodeId::new(node).ok_or(ConfChangeDecodeError::ZeroNodeId)?;
                    changes.push(ConfChangeSingle {
                        kind: kind_from(kind)?,
                        node_id,
                    });
                }
                (3, Value::Bytes(b)) => context = b,
                _ => {}
            }
            Ok(())
        })?;
        let transition = match transition {
            1 => ConfChangeTransition::Auto,
            2 => ConfChangeTransition::JointImplicit,
            3 => ConfChangeTransition::JointExplicit,
            other => return Err(ConfChangeDecodeError::UnknownTransition(other)),
        };
        Ok(ConfChangeV2 {
            transition,
            changes,
            context,
        })
    }
}

enum Value {
    Varint(u64),
    Bytes(Bytes),
    Skipped,
}

fn get_varint(buf: &mut Bytes) -> Result<u64, ConfChangeDecodeError> {
    let mut v = 0u64;
    for i in 0..10 {
        if !buf.has_remaining() {
            return Err(ConfChangeDecodeError::Truncated);
        }
        let b = buf.get_u8();
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(ConfChangeDecodeError::BadVarint)
}

/// Walks the fields of one protobuf message, skipping unknown ones.
fn for_each_field(
    mut buf: Bytes,
    mut f: impl FnMut(u64, Value) -> Result<(), ConfChangeDecodeError>,
) -> Result<(), ConfChangeDecodeError> {
    while buf.has_remaining() {
        let key = get_varint(&mut buf)?;
        let (field, wire) = (key >> 3, (key & 7) as u8);
        let value = match wire {
            VARINT => Value::Varint(get_varint(&mut buf)?),
            LEN => {
                let len = get_varint(&mut buf)?;
                if len > buf.remaining() as u64 {
                    return Err(ConfChangeDecodeError::Truncated);
                }
                Value::Bytes(buf.split_to(len as usize))
            }
            FIXED64 | FIXED32 => {
                let n = if wire == FIXED64 { 8 } else { 4 };
                if buf.remaining() < n {
                    return Err(ConfChangeDecodeError::Truncated);
                }
                buf.advance(n);
                Value::Skipped
            }
            other => return Err(ConfChangeDecodeError::BadWireType(other)),
        };
        f(field, value)?;
    }
    Ok(())
}
