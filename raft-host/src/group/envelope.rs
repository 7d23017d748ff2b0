//! The host's envelope around every proposed command: who proposed it and
//! under which request number, so that the proposer finds its waiter when
//! the entry is applied, even if it proposed on a follower (forwarded to
//! the leader) or the entry was committed by a later leader.
//!
//! Layout: `[tag 0x52][proposer: u64 LE][request: u64 LE][command]`.

use bytes::{BufMut, Bytes, BytesMut};
use raft_core::NodeId;

const TAG: u8 = 0x52;
/// Bytes the envelope adds to a command.
pub(crate) const OVERHEAD_BYTES: usize = 17;

/// Who proposed a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) proposer: NodeId,
    pub(crate) request: u64,
}

pub(crate) fn wrap(origin: Origin, command: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(OVERHEAD_BYTES + command.len());
    b.put_u8(TAG);
    b.put_u64_le(origin.proposer.get());
    b.put_u64_le(origin.request);
    b.put_slice(command);
    b.freeze()
}

/// The origin and the command of an entry's data (no copy); `None` for
/// data the host did not wrap, which is applied as it is.
pub(crate) fn unwrap(data: &Bytes) -> Option<(Origin, Bytes)> {
    if data.len() < OVERHEAD_BYTES || data[0] != TAG {
        return None;
    }
    let proposer = u64::from_le_bytes(data[1..9].try_into().expect("8 bytes"));
    let request = u64::from_le_bytes(data[9..17].try_into().expect("8 bytes"));
    let origin = Origin {
        proposer: NodeId::new(proposer)?,
        request,
    };
    Some((origin, data.slice(OVERHEAD_BYTES..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_round_trips_through_the_envelope() {
        let origin = Origin {
            proposer: NodeId::new(3).expect("non-zero"),
            request: u64::MAX - 1,
        };
        let data = wrap(origin, b"set x");
        assert_eq!(data.len(), OVERHEAD_BYTES + 5);
        assert_eq!(unwrap(&data), Some((origin, Bytes::from_static(b"set x"))));
    }

    #[test]
    fn data_the_host_did_not_wrap_is_not_unwrapped() {
        assert_eq!(unwrap(&Bytes::from_static(b"short")), None);
        let mut zero_proposer = wrap(
            Origin {
                proposer: NodeId::new(1).expect("non-zero"),
                request: 7,
            },
            b"",
        )
        .to_vec();
        zero_proposer[1] = 0;
        assert_eq!(unwrap(&Bytes::from(zero_proposer)), None);
        assert_eq!(unwrap(&Bytes::from(vec![0u8; 40])), None, "another tag");
    }
}
