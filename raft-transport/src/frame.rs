//! The stream frame codec, pure: what a lane's upgraded connection
//! carries once the `101 Switching Protocols` is through.
//!
//! A frame is a 1-byte kind, a `u32` little-endian payload length, then
//! the payload:
//!
//! | kind | payload |
//! |---|---|
//! | [`KIND_MESSAGE`] (1) | one `Message` of [`PLAIN_GROUP`], [`raft_proto::encode_message`] |
//! | [`KIND_PING`] (2) | a `u64` little-endian nonce (sender to receiver) |
//! | [`KIND_PONG`] (3) | the nonce of the ping it answers (receiver to sender) |
//! | [`KIND_GROUP_MESSAGE`] (4) | one `GroupMessage` (any other group), [`raft_proto::encode_group_message_into`] |
//!
//! One stream per peer node and lane carries the messages of every group
//! the two hosts share. Group 1's go as plain messages, byte for byte what
//! a single-group cluster sent before groups; a receiver built before
//! groups closes the stream on kind 4 instead of taking another group's
//! message for its own (and a `GroupMessage` does not decode as a
//! `Message`, should one reach it some other way).
//!
//! The length comes before the body so a receiver refuses an oversized
//! frame from its header alone, before buffering any of it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use raft_core::{GroupId, Message};
use raft_proto::DecodeLimits;

/// The group whose messages travel as plain `Message`s (kind 1, batches,
/// snapshot envelopes without a group header): the group of a
/// single-group cluster.
pub const PLAIN_GROUP: GroupId = GroupId(1);

/// A frame's header: kind and length.
pub(crate) const HEADER_BYTES: usize = 5;
/// Kind byte of a message frame.
pub(crate) const KIND_MESSAGE: u8 = 1;
/// Kind byte of a ping (asks for a pong with the same nonce).
pub(crate) const KIND_PING: u8 = 2;
/// Kind byte of a pong.
pub(crate) const KIND_PONG: u8 = 3;
/// Kind byte of a message of a group other than [`PLAIN_GROUP`].
pub(crate) const KIND_GROUP_MESSAGE: u8 = 4;
/// The payload length of pings and pongs.
const NONCE_BYTES: usize = 8;

/// One decoded frame; a message still in its encoded form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// An encoded `Message` of [`PLAIN_GROUP`] ([`decode_message`]
    /// validates it).
    Message(Bytes),
    /// An encoded `GroupMessage` ([`decode_message`] validates it).
    GroupMessage(Bytes),
    /// A ping carrying a nonce.
    Ping(u64),
    /// The answer to the ping with that nonce.
    Pong(u64),
}

/// Why a frame is refused; the stream it came on is closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum FrameError {
    /// A kind byte this version does not know.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// A payload longer than the receiver accepts.
    #[error("frame of {len} bytes; at most {max} are accepted")]
    TooLarge {
        /// Its declared length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A ping or pong whose payload is not one nonce.
    #[error("{kind} frame of {len} bytes; it carries exactly {NONCE_BYTES}")]
    BadControl {
        /// `ping` or `pong`.
        kind: &'static str,
        /// Its declared length.
        len: usize,
    },
    /// A message frame that does not decode or validate.
    #[error("undecodable message: {0}")]
    Decode(#[from] raft_proto::DecodeError),
}

/// Appends a message frame for `message` of `group` to `out`; returns the
/// frame's length, header included.
pub(crate) fn encode_message(group: GroupId, message: &Message, out: &mut BytesMut) -> usize {
    let start = out.len();
    if group == PLAIN_GROUP {
        out.put_u8(KIND_MESSAGE);
        out.put_u32_le(0);
        raft_proto::encode_message_into(message, out);
    } else {
        out.put_u8(KIND_GROUP_MESSAGE);
        out.put_u32_le(0);
        raft_proto::encode_group_message_into(group, message, out);
    }
    let len = out.len() - start - HEADER_BYTES;
    // Patched in afterwards so the message is encoded once, in place. A
    // message over 4 GiB saturates, which every receiver refuses as too large.
    let len32 = u32::try_from(len).unwrap_or(u32::MAX);
    out[start + 1..start + HEADER_BYTES].copy_from_slice(&len32.to_le_bytes());
    out.len() - start
}

/// Appends a ping (`KIND_PING`) or pong (`KIND_PONG`) frame to `out`.
pub(crate) fn encode_control(kind: u8, nonce: u64, out: &mut BytesMut) {
    debug_assert!(kind == KIND_PING || kind == KIND_PONG);
    out.put_u8(kind);
    out.put_u32_le(NONCE_BYTES as u32);
    out.put_u64_le(nonce);
}

/// Takes the first whole frame off the front of `buf`; `Ok(None)` while
/// it is incomplete (nothing is consumed). A header declaring more than
/// `max` payload bytes is refused at once.
pub(crate) fn decode_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Frame>, FrameError> {
    let Some(header) = buf.get(..HEADER_BYTES) else {
        return Ok(None);
    };
    let kind = header[0];
    let mut len_bytes = [0u8; 4];
    len_bytes.copy_from_slice(&header[1..HEADER_BYTES]);
    let len = u32::from_le_bytes(len_bytes) as usize;
    let control = |kind| -> Result<(), FrameError> {
        if len == NONCE_BYTES {
            Ok(())
        } else {
            Err(FrameError::BadControl { kind, len })
        }
    };
    match kind {
        KIND_MESSAGE | KIND_GROUP_MESSAGE if len > max => {
            return Err(FrameError::TooLarge { len, max });
        }
        KIND_MESSAGE | KIND_GROUP_MESSAGE => {}
        KIND_PING => control("ping")?,
        KIND_PONG => control("pong")?,
        other => return Err(FrameError::UnknownKind(other)),
    }
    if buf.len() < HEADER_BYTES + len {
        return Ok(None);
    }
    buf.advance(HEADER_BYTES);
    let mut payload = buf.split_to(len);
    Ok(Some(match kind {
        KIND_MESSAGE => Frame::Message(payload.freeze()),
        KIND_GROUP_MESSAGE => Frame::GroupMessage(payload.freeze()),
        KIND_PING => Frame::Ping(payload.get_u64_le()),
        _ => Frame::Pong(payload.get_u64_le()),
    }))
}

/// Decodes and validates the message of a message frame (`grouped`: a
/// [`Frame::GroupMessage`]), with its group; payloads share `payload`.
pub(crate) fn decode_message(
    grouped: bool,
    payload: Bytes,
    max: usize,
) -> Result<(GroupId, Message), FrameError> {
    let limits = DecodeLimits::new().with_max_message_bytes(max);
    if grouped {
        Ok(limits.decode_group_message_bytes(payload)?)
    } else {
        Ok((PLAIN_GROUP, limits.decode_message_bytes(payload)?))
    }
}

/// Whether `buf` holds the start of a frame that has not fully arrived:
/// a stream that stops there has stalled mid-frame.
pub(crate) fn is_partial(buf: &BytesMut) -> bool {
    !buf.is_empty()
}

#[cfg(test)]
mod tests {
    use raft_core::{Heartbeat, Index, MessageBody, NodeId, Term};

    use super::*;

    const MAX: usize = 1 << 20;

    fn heartbeat(commit: u64) -> Message {
        Message {
            from: NodeId::new(1).unwrap(),
            to: NodeId::new(2).unwrap(),
            term: Term(3),
            body: MessageBody::Heartbeat(Heartbeat {
                commit: Index(commit),
                read_round: None,
            }),
        }
    }

    fn decode_all(buf: &mut BytesMut) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(f) = decode_frame(buf, MAX).unwrap() {
            frames.push(f);
        }
        frames
    }

    #[test]
    fn frames_round_trip_in_order_and_a_message_decodes_to_itself() {
        let mut buf = BytesMut::new();
        let n = encode_message(PLAIN_GROUP, &heartbeat(1), &mut buf);
        assert_eq!(n, buf.len());
        encode_control(KIND_PING, 7, &mut buf);
        encode_message(PLAIN_GROUP, &heartbeat(2), &mut buf);
        encode_control(KIND_PONG, u64::MAX, &mut buf);
        let frames = decode_all(&mut buf);
        assert!(buf.is_empty());
        assert_eq!(frames.len(), 4);
        let Frame::Message(first) = &frames[0] else {
            panic!("{frames:?}")
        };
        assert_eq!(
            decode_message(false, first.clone(), MAX).unwrap(),
            (PLAIN_GROUP, heartbeat(1))
        );
        assert_eq!(frames[1], Frame::Ping(7));
        let Frame::Message(third) = &frames[2] else {
            panic!("{frames:?}")
        };
        assert_eq!(
            decode_message(false, third.clone(), MAX).unwrap(),
            (PLAIN_GROUP, heartbeat(2))
        );
        assert_eq!(frames[3], Frame::Pong(u64::MAX));
    }

    #[test]
    fn an_incomplete_frame_waits_for_its_bytes_whatever_the_split() {
        let mut whole = BytesMut::new();
        encode_message(PLAIN_GROUP, &heartbeat(9), &mut whole);
        for cut in 0..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert_eq!(decode_frame(&mut buf, MAX).unwrap(), None, "cut at {cut}");
            assert_eq!(buf.len(), cut, "nothing consumed");
            assert_eq!(is_partial(&buf), cut > 0);
            buf.extend_from_slice(&whole[cut..]);
            assert!(matches!(
                decode_frame(&mut buf, MAX),
                Ok(Some(Frame::Message(_)))
            ));
        }
    }

    #[test]
    fn an_oversized_frame_is_refused_from_its_header_alone() {
        let mut buf = BytesMut::new();
        buf.put_u8(KIND_MESSAGE);
        buf.put_u32_le(MAX as u32 + 1);
        let e = decode_frame(&mut buf, MAX).unwrap_err();
        assert!(matches!(e, FrameError::TooLarge { len, max } if len == MAX + 1 && max == MAX));
    }

    #[test]
    fn unknown_kinds_and_malformed_controls_are_refused() {
        let mut buf = BytesMut::from(&[9u8, 0, 0, 0, 0][..]);
        assert!(matches!(
            decode_frame(&mut buf, MAX),
            Err(FrameError::UnknownKind(9))
        ));
        let mut buf = BytesMut::from(&[KIND_PING, 4, 0, 0, 0, 1, 2, 3, 4][..]);
        assert!(matches!(
            decode_frame(&mut buf, MAX),
            Err(FrameError::BadControl {
                kind: "ping",
                len: 4
            })
        ));
    }

    #[test]
    fn a_message_frame_of_garbage_fails_to_decode() {
        let e =
            decode_message(false, Bytes::from_static(b"\xff\xff\xff garbage"), MAX).unwrap_err();
        assert!(matches!(e, FrameError::Decode(_)), "{e}");
        let mut buf = BytesMut::new();
        encode_message(PLAIN_GROUP, &heartbeat(1), &mut buf);
        let Some(Frame::Message(payload)) = decode_frame(&mut buf, MAX).unwrap() else {
            panic!("a message frame");
        };
        let e = decode_message(false, payload.clone(), payload.len() - 1).unwrap_err();
        assert!(matches!(e, FrameError::Decode(_)), "{e}");
    }

    #[test]
    fn other_groups_travel_as_group_frames_that_no_plain_decoder_accepts() {
        let mut buf = BytesMut::new();
        encode_message(GroupId(7), &heartbeat(4), &mut buf);
        encode_message(GroupId(0), &heartbeat(5), &mut buf);
        let frames = decode_all(&mut buf);
        let [Frame::GroupMessage(seven), Frame::GroupMessage(zero)] = &frames[..] else {
            panic!("{frames:?}")
        };
        assert_eq!(
            decode_message(true, seven.clone(), MAX).unwrap(),
            (GroupId(7), heartbeat(4))
        );
        assert_eq!(
            decode_message(true, zero.clone(), MAX).unwrap(),
            (GroupId(0), heartbeat(5))
        );
        assert!(decode_message(false, seven.clone(), MAX).is_err());
    }
}
