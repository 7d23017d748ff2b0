//! How many connections each port of a node (its peer port and a client
//! API) may hold, from the soft `RLIMIT_NOFILE`.
//!
//! A node's file descriptors are shared by its connections and by what it
//! cannot do without: WAL segments, snapshot files, the spill files of
//! snapshots being received, its own connections to peers. So
//! [`RESERVED_DESCRIPTORS`] are kept out of every cap, and the rest is
//! split between the peer port and the client API
//! ([`ConnectionCaps::for_limit`]). [`Admission`](crate::Admission)
//! enforces the cap of each port and counts the refusals
//! ([`ConnectionMetrics`](crate::ConnectionMetrics)).

use std::time::Duration;

use crate::conn::ConnectionLimits;

/// Descriptors no connection cap may use: the WAL's segments and
/// directory handles, snapshot and spill files, outgoing peer
/// connections, the runtime's own and stdio.
pub const RESERVED_DESCRIPTORS: u64 = 64;
/// The fewest connections a port is given.
pub const MIN_CONNECTIONS: usize = 8;
/// The fewest descriptors a node starts with.
pub const MIN_DESCRIPTORS: u64 = RESERVED_DESCRIPTORS + 2 * MIN_CONNECTIONS as u64;
/// The most connections the peer port is given (peers are few).
const MAX_PEER_CONNECTIONS: usize = 1024;
/// The most connections the client API is given, however high the limit.
const MAX_CLIENT_CONNECTIONS: usize = 65_536;

/// The client API's [`ConnectionLimits::idle_timeout`] (the peer port's
/// is [`ConnectionLimits::PEER_IDLE_TIMEOUT`]).
pub const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How many connections each port may hold at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionCaps {
    /// The client API.
    pub client: usize,
    /// The peer port.
    pub peer: usize,
}

/// Why the descriptor limit does not allow a node to run.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CapsError {
    /// Too few descriptors for the reserve and a few connections.
    #[error(
        "the file descriptor limit (ulimit -n) is {limit}; a node needs at least \
         {MIN_DESCRIPTORS}, {RESERVED_DESCRIPTORS} of them for the WAL, snapshots and peer \
         links: raise it"
    )]
    TooFewDescriptors {
        /// The soft `RLIMIT_NOFILE`.
        limit: u64,
    },
    /// A client connection cap above what the limit leaves.
    #[error(
        "a cap of {asked} client connections does not fit the file descriptor limit (ulimit -n) \
         of {limit}, which leaves room for {most}: lower it or raise the limit"
    )]
    TooManyConnections {
        /// The flag's value.
        asked: usize,
        /// The most the limit allows.
        most: usize,
        /// The soft `RLIMIT_NOFILE`.
        limit: u64,
    },
}

impl ConnectionCaps {
    /// The caps a descriptor limit of `limit` leaves after
    /// [`RESERVED_DESCRIPTORS`]: a quarter for the peer port (from
    /// [`MIN_CONNECTIONS`] to 1024), the rest for the client API (at most
    /// 65,536), or `max_client` of it if given.
    ///
    /// # Errors
    /// A [`CapsError`] saying what to change.
    pub fn for_limit(limit: u64, max_client: Option<usize>) -> Result<ConnectionCaps, CapsError> {
        if limit < MIN_DESCRIPTORS {
            return Err(CapsError::TooFewDescriptors { limit });
        }
        let budget = usize::try_from(limit - RESERVED_DESCRIPTORS).unwrap_or(usize::MAX);
        let peer = (budget / 4).clamp(MIN_CONNECTIONS, MAX_PEER_CONNECTIONS);
        let most = (budget - peer).min(MAX_CLIENT_CONNECTIONS);
        let client = match max_client {
            None => most,
            Some(asked) if asked <= most => asked.max(1),
            Some(asked) => {
                return Err(CapsError::TooManyConnections { asked, most, limit });
            }
        };
        Ok(ConnectionCaps { client, peer })
    }

    /// The client API's limits: [`ConnectionCaps::client`] connections,
    /// [`CLIENT_IDLE_TIMEOUT`] and [`ConnectionLimits::BODY_TIMEOUT`].
    pub fn client_limits(&self) -> ConnectionLimits {
        ConnectionLimits::new(self.client, CLIENT_IDLE_TIMEOUT)
    }

    /// The peer port's limits: [`ConnectionCaps::peer`] connections and
    /// the peer timeouts.
    pub fn peer_limits(&self) -> ConnectionLimits {
        ConnectionLimits::peer(self.peer)
    }
}

/// The soft `RLIMIT_NOFILE` of this process (1024, the usual default, if
/// it cannot be read).
pub fn descriptor_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit};
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_keep_a_reserve_and_give_the_peer_port_a_quarter_of_the_rest() {
        assert_eq!(
            ConnectionCaps::for_limit(100, None),
            Ok(ConnectionCaps {
                client: 27,
                peer: 9
            })
        );
        assert_eq!(
            ConnectionCaps::for_limit(1024, None),
            Ok(ConnectionCaps {
                client: 720,
                peer: 240
            })
        );
        let huge = ConnectionCaps::for_limit(u64::MAX, None).unwrap();
        assert_eq!((huge.client, huge.peer), (65_536, 1024));
        assert_eq!(
            ConnectionCaps::for_limit(1024, Some(100)).unwrap().client,
            100
        );
        for e in [
            ConnectionCaps::for_limit(MIN_DESCRIPTORS - 1, None).unwrap_err(),
            ConnectionCaps::for_limit(100, Some(28)).unwrap_err(),
        ] {
            assert_eq!(e.to_string().lines().count(), 1, "{e}");
            assert!(e.to_string().contains("ulimit -n"), "{e}");
        }
        let least = ConnectionCaps::for_limit(MIN_DESCRIPTORS, None).unwrap();
        assert_eq!(
            (least.client, least.peer),
            (MIN_CONNECTIONS, MIN_CONNECTIONS)
        );
    }
}
