//! The identity record of a data directory: which node it belongs to and
//! in which cluster, so that it is never started as another node.
//!
//! A directory started under the wrong node id would vote and append as
//! that node with another node's log and vote: with the real one running,
//! two processes would vote as one node, which breaks Raft's safety
//! (thesis §3.6: a server's vote and log must be its own). So the record
//! is written when the directory is created, before its first log entry,
//! and every start checks it.
//!
//! The file is `<data-dir>/identity`, a few `key value` lines:
//!
//! ```text
//! # raft-host data directory identity
//! node-id 1
//! cluster-id 6a4c9e2b0f1d3a57
//! founders 3
//! ```
//!
//! `node-id` is always there. `cluster-id` is there once known: a founder
//! knows it at creation, a joining node records it when it learns it from
//! a peer. `founders` is the number of founding members whose addresses the
//! cluster id hashes; a founder restarted with more peers listed (members
//! were added) still derives the same id from that many, so another
//! cluster's peer list is recognised.

use std::io::Write;
use std::path::{Path, PathBuf};

use raft_core::NodeId;

use crate::options::Peer;

/// The file name, in the data directory.
pub const IDENTITY_FILE: &str = "identity";

/// What a data directory records about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The node the directory belongs to.
    pub node_id: NodeId,
    /// The cluster it belongs to, once known. Invariant: never 0.
    pub cluster_id: Option<u64>,
    /// How many founding members' addresses the cluster id hashes
    /// (founders only).
    pub founders: Option<u64>,
}

/// Why the identity record could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The file exists but cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not an identity record.
    #[error("{}, line {line}: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The 1-based line number (0: the file as a whole).
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// The id of a cluster: a hash (FNV-1a, 64 bits) of its founding members'
/// addresses in order, never 0. Peers send it with every message so two
/// clusters never talk to each other by mistake.
pub fn cluster_id(founders: &[Peer]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for peer in founders {
        for b in peer.addr.bytes().chain([b'\n']) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h.max(1)
}

impl Identity {
    /// The record in `dir`, or `None` if there is none.
    ///
    /// # Errors
    /// An [`IdentityError`] if it exists but cannot be read or parsed.
    pub fn load(dir: &Path) -> Result<Option<Identity>, IdentityError> {
        let path = dir.join(IDENTITY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Identity::parse(&text)
                .map(Some)
                .map_err(|(line, reason)| IdentityError::Malformed { path, line, reason }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(IdentityError::Read { path, source }),
        }
    }

    /// Parses the text of a record; errors are (line, reason).
    fn parse(text: &str) -> Result<Identity, (usize, String)> {
        let mut node_id = None;
        let mut cluster_id = None;
        let mut founders = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: &str| (i + 1, format!("{reason}: {line:?}"));
            let Some((key, value)) = line.split_once(char::is_whitespace) else {
                return Err(bad("expected `key value`"));
            };
            let value = value.trim();
            match key {
                "node-id" => {
                    let id = value.parse::<u64>().ok().and_then(NodeId::new);
                    node_id = Some(id.ok_or_else(|| bad("node-id must be a positive integer"))?);
                }
                "cluster-id" => {
                    let id = u64::from_str_radix(value, 16).ok().filter(|&id| id != 0);
                    cluster_id = Some(id.ok_or_else(|| bad("cluster-id must be 16 hex digits"))?);
                }
                "founders" => {
                    let n = value.parse::<u64>().ok().filter(|&n| n > 0);
                    founders = Some(n.ok_or_else(|| bad("founders must be a positive integer"))?);
                }
                _ => return Err(bad("unknown key")),
            }
        }
        let node_id = node_id.ok_or((0, "no node-id line".to_string()))?;
        Ok(Identity {
            node_id,
            cluster_id,
            founders,
        })
    }

    fn render(&self) -> String {
        let mut text = format!(
            "# raft-host data directory identity\nnode-id {}\n",
            self.node_id
        );
        if let Some(id) = self.cluster_id {
            text.push_str(&format!("cluster-id {id:016x}\n"));
        }
        if let Some(n) = self.founders {
            text.push_str(&format!("founders {n}\n"));
        }
        text
    }

    /// Writes the record into `dir` atomically: a temporary file, fsync,
    /// rename, fsync of the directory, so a crash leaves the old record or
    /// the new one, never a torn one.
    ///
    /// # Errors
    /// The I/O error.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!("{IDENTITY_FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(self.render().as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, dir.join(IDENTITY_FILE))?;
        std::fs::File::open(dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nid(n: u64) -> NodeId {
        NodeId::new(n).unwrap()
    }

    #[test]
    fn a_record_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Identity::load(dir.path()).unwrap(), None);
        for identity in [
            Identity {
                node_id: nid(3),
                cluster_id: Some(0xfeed),
                founders: Some(3),
            },
            Identity {
                node_id: nid(4),
                cluster_id: None,
                founders: None,
            },
        ] {
            identity.save(dir.path()).unwrap();
            assert_eq!(Identity::load(dir.path()).unwrap(), Some(identity));
        }
        assert!(!dir.path().join("identity.tmp").exists());
    }

    #[test]
    fn a_malformed_record_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        for (text, line) in [
            ("node-id 0\n", 1),
            ("# c\nnode-id 1\ncluster-id xyz\n", 3),
            ("node-id 1\nnode-name one\n", 2),
            ("node-id\n", 1),
            ("cluster-id 00000000000000aa\n", 0),
        ] {
            std::fs::write(dir.path().join(IDENTITY_FILE), text).unwrap();
            match Identity::load(dir.path()) {
                Err(IdentityError::Malformed { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn cluster_id_depends_on_members_and_order() {
        let a = Peer::new(nid(1), "http://127.0.0.1:1");
        let b = Peer::new(nid(2), "http://127.0.0.1:2");
        let ab = cluster_id(&[a.clone(), b.clone()]);
        assert_eq!(ab, cluster_id(&[a.clone(), b.clone()]));
        assert_ne!(ab, cluster_id(&[b, a]));
        assert_ne!(cluster_id(&[]), 0);
    }
}
