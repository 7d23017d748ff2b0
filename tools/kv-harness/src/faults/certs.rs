//! Certificates of a fault run with `--tls`: a CA made for the run, and
//! each node's certificate (for its address `127.0.0.i`) issued when the
//! node first starts, so nodes added by the nemesis get one too.

use std::path::PathBuf;

use raft_core::NodeId;

use super::net::node_ip;
use crate::certs::{CertAuthority, CertError, CertPaths, Validity};

/// How long a run's certificates are valid.
const DAYS: u32 = 7;

/// The CA of a TLS run and where its files go.
pub(super) struct RunCerts {
    ca: CertAuthority,
    dir: PathBuf,
    paths: CertPaths,
}

impl RunCerts {
    pub(super) fn new(dir: PathBuf) -> Result<RunCerts, CertError> {
        std::fs::create_dir_all(&dir).map_err(|source| CertError::Write {
            path: dir.clone(),
            source,
        })?;
        let ca = CertAuthority::new("raftkv faults CA", Validity::days_from_now(DAYS))?;
        ca.issued().write(&dir, "ca")?;
        Ok(RunCerts {
            ca,
            paths: CertPaths::new(&dir),
            dir,
        })
    }

    /// The peer flags of node `id`, issuing its certificate first if it
    /// has none yet.
    pub(super) fn flags(&self, id: u64) -> Result<Vec<std::ffi::OsString>, CertError> {
        if !self.paths.node_cert(id).exists() {
            let node = NodeId::new(id).ok_or_else(|| CertError::Args("node id 0".into()))?;
            let hosts = [node_ip(id).to_string()];
            self.ca
                .issue_node(node, &hosts, Validity::days_from_now(DAYS))?
                .write(&self.dir, &format!("node-{id}"))?;
        }
        Ok(self.paths.peer_flags(id))
    }
}
