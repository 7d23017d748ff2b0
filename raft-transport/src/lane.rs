//! Which stream a message travels on.

use std::fmt;

use raft_core::MessageBody;

/// One of the two long-lived streams a node keeps to each peer. Each lane
/// is a TCP connection of its own, so votes and heartbeats never wait
/// behind a megabyte of entries in a socket buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Lane {
    /// Everything small and urgent: votes and pre-votes, heartbeats, all
    /// responses, timeout-now, read-index and leader-transfer traffic.
    Message,
    /// Bulk replication: `Append` messages and forwarded proposals.
    Append,
}

impl Lane {
    /// Both lanes.
    pub const ALL: [Lane; 2] = [Lane::Message, Lane::Append];

    /// The lane's name in metrics and logs: `message` or `append`.
    pub fn name(self) -> &'static str {
        match self {
            Lane::Message => "message",
            Lane::Append => "append",
        }
    }

    /// The path its stream is opened with
    /// ([`STREAM_MESSAGE_PATH`](crate::STREAM_MESSAGE_PATH),
    /// [`STREAM_APPEND_PATH`](crate::STREAM_APPEND_PATH)).
    pub fn path(self) -> &'static str {
        match self {
            Lane::Message => crate::STREAM_MESSAGE_PATH,
            Lane::Append => crate::STREAM_APPEND_PATH,
        }
    }

    /// The lane of a message; `None` for a snapshot, which goes on a
    /// connection of its own.
    pub fn of(body: &MessageBody) -> Option<Lane> {
        match body {
            MessageBody::Append(_) | MessageBody::Propose(_) => Some(Lane::Append),
            MessageBody::Snapshot(_) => None,
            MessageBody::AppendResponse(_)
            | MessageBody::Vote(_)
            | MessageBody::VoteResponse(_)
            | MessageBody::PreVote(_)
            | MessageBody::PreVoteResponse(_)
            | MessageBody::Heartbeat(_)
            | MessageBody::HeartbeatResponse(_)
            | MessageBody::ReadIndex(_)
            | MessageBody::ReadIndexResponse(_)
            | MessageBody::TimeoutNow
            | MessageBody::TransferLeader(_)
            | MessageBody::RequestSnapshot(_)
            // With the heartbeats, so that none overtakes it.
            | MessageBody::Quiesce(_)
            | MessageBody::Wake => Some(Lane::Message),
        }
    }

    /// Its index in per-lane arrays.
    pub(crate) fn index(self) -> usize {
        match self {
            Lane::Message => 0,
            Lane::Append => 1,
        }
    }

    /// The lane a stream path opens, if it is one.
    pub(crate) fn from_path(path: &str) -> Option<Lane> {
        Lane::ALL.into_iter().find(|l| l.path() == path)
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use raft_core::{
        Append, Entry, Heartbeat, Index, LogId, Propose, Snapshot, SnapshotMetadata, Term,
    };

    use super::*;

    #[test]
    fn appends_and_proposals_take_the_append_lane_snapshots_none_the_rest_the_message_lane() {
        let entries = vec![Entry::new(Term(1), Index(1), Bytes::from_static(b"x"))];
        let append = MessageBody::Append(Append {
            prev: LogId {
                index: Index(0),
                term: Term(0),
            },
            entries: entries.clone(),
            commit: Index(0),
        });
        assert_eq!(Lane::of(&append), Some(Lane::Append));
        let propose = MessageBody::Propose(Propose { entries });
        assert_eq!(Lane::of(&propose), Some(Lane::Append));
        let snapshot = MessageBody::Snapshot(Snapshot {
            metadata: SnapshotMetadata::default(),
            data: Bytes::new(),
        });
        assert_eq!(Lane::of(&snapshot), None);
        let heartbeat = MessageBody::Heartbeat(Heartbeat {
            commit: Index(0),
            read_round: None,
        });
        assert_eq!(Lane::of(&heartbeat), Some(Lane::Message));
        assert_eq!(Lane::of(&MessageBody::TimeoutNow), Some(Lane::Message));
    }

    #[test]
    fn each_lane_has_its_own_path_and_index() {
        for lane in Lane::ALL {
            assert_eq!(Lane::from_path(lane.path()), Some(lane));
            assert_eq!(Lane::ALL[lane.index()], lane);
        }
        assert_ne!(Lane::Message.path(), Lane::Append.path());
        assert_eq!(Lane::from_path(crate::BATCH_PATH), None);
    }
}
