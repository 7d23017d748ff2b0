//! Certificates for a cluster, generated with rcgen: `raftkv certs`, and
//! the same for `raftkv cluster --tls`, the fault test and the tests.
//!
//! One self-signed CA signs one certificate per node, each naming its node
//! with the identity URI `raftkv://node/<id>` (what the server's
//! `raft_transport::node_identity` looks for in a peer's certificate) and
//! the hosts it is reached at, valid for both server and client
//! authentication (a node is both on the peer port), plus one client
//! certificate for the client API (it names no node, so the peer port
//! refuses it). Keys are ECDSA P-256, written with mode 0600.
//!
//! Files in the output directory: `ca.pem`, `ca-key.pem`, `node-<i>.pem`,
//! `node-<i>-key.pem`, `client.pem`, `client-key.pem`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use raft_core::NodeId;
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// The identity URI of node `id`, `raftkv://node/<id>`, which the server
/// reads back from a peer's certificate (`raft_transport::node_identity`; the
/// server's TLS tests load certificates made here, so the two agree).
fn identity_uri(id: NodeId) -> String {
    format!("raftkv://node/{id}")
}

/// The most nodes `raftkv certs` writes certificates for.
pub const MAX_NODES: u64 = 1000;

/// Arguments of `raftkv certs`.
#[derive(clap::Args, Debug, Clone)]
pub struct CertsArgs {
    /// Nodes to write certificates for: ids 1 to N.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Directory to write the files into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Host names and IP addresses every node certificate is valid for
    /// (the hosts of the peer URLs), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1,localhost")]
    pub hosts: Vec<String>,
    /// Days the certificates are valid.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
}

/// Why certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// An argument cannot work.
    #[error("{0}")]
    Args(String),
    /// A host is neither an IP address nor a DNS name.
    #[error("--hosts: {0:?} is neither an IP address nor a DNS name")]
    BadHost(String),
    /// rcgen refused to make a key or certificate.
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// When certificates are valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// Not before.
    pub not_before: SystemTime,
    /// Not after.
    pub not_after: SystemTime,
}

impl Validity {
    /// From an hour ago (clocks of a cluster differ a little) for `days`.
    pub fn days_from_now(days: u32) -> Validity {
        let now = SystemTime::now();
        Validity {
            not_before: now - Duration::from_secs(3600),
            not_after: now + Duration::from_secs(u64::from(days) * 86_400),
        }
    }

    fn apply(&self, params: &mut CertificateParams) {
        params.not_before = self.not_before.into();
        params.not_after = self.not_after.into();
    }
}

/// A certificate and its private key, PEM-encoded.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

impl Issued {
    /// Writes `<stem>.pem` and `<stem>-key.pem` (mode 0600) into `dir`.
    ///
    /// # Errors
    /// [`CertError::Write`].
    pub fn write(&self, dir: &Path, stem: &str) -> Result<(), CertError> {
        write_file(&dir.join(format!("{stem}.pem")), &self.cert_pem, 0o644)?;
        write_file(&dir.join(format!("{stem}-key.pem")), &self.key_pem, 0o600)
    }
}

/// A certificate authority that signs node and client certificates.
#[derive(Debug)]
pub struct CertAuthority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl CertAuthority {
    /// A new self-signed CA named `name`.
    ///
    /// # Errors
    /// [`CertError::Generate`].
    pub fn new(name: &str, validity: Validity) -> Result<CertAuthority, CertError> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        validity.apply(&mut params);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(CertAuthority { issuer })
    }

    /// The CA's certificate and key.
    pub fn issued(&self) -> Issued {
        Issued {
            cert_pem: self.issuer.pem(),
            key_pem: self.issuer.key().serialize_pem(),
        }
    }

    /// A certificate for node `id`, reached at `hosts` (IP addresses or DNS
    /// names), for server and client authentication.
    ///
    /// # Errors
    /// [`CertError::BadHost`] or [`CertError::Generate`].
    pub fn issue_node(
        &self,
        id: NodeId,
        hosts: &[String],
        validity: Validity,
    ) -> Result<Issued, CertError> {
        let mut params = CertificateParams::default();
        for host in hosts {
            params.subject_alt_names.push(host_san(host)?);
        }
        let uri = Ia5String::try_from(identity_uri(id))?;
        params.subject_alt_names.push(SanType::URI(uri));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.sign(params, &format!("raftkv node {id}"), validity)
    }

    /// A client certificate for the client API, named `name`; it names no
    /// node, so the peer port refuses it.
    ///
    /// # Errors
    /// [`CertError::Generate`].
    pub fn issue_client(&self, name: &str, validity: Validity) -> Result<Issued, CertError> {
        let mut params = CertificateParams::default();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, name, validity)
    }

    fn sign(
        &self,
        mut params: CertificateParams,
        name: &str,
        validity: Validity,
    ) -> Result<Issued, CertError> {
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        validity.apply(&mut params);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn host_san(host: &str) -> Result<SanType, CertError> {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse() {
        return Ok(SanType::IpAddress(ip));
    }
    let valid = !host.is_empty()
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    let name = Ia5String::try_from(host).ok().filter(|_| valid);
    name.map(SanType::DnsName)
        .ok_or_else(|| CertError::BadHost(host.to_string()))
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), CertError> {
    let err = |source| CertError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)
}

/// The paths of a cluster's certificate files in `dir`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertPaths {
    dir: PathBuf,
}

impl CertPaths {
    /// The files in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> CertPaths {
        CertPaths { dir: dir.into() }
    }

    /// The CA certificate (`--peer-ca`).
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Node `id`'s certificate (`--peer-cert`).
    pub fn node_cert(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node-{id}.pem"))
    }

    /// Node `id`'s key (`--peer-key`).
    pub fn node_key(&self, id: u64) -> PathBuf {
        self.dir.join(format!("node-{id}-key.pem"))
    }

    /// The client-API client certificate.
    pub fn client_cert(&self) -> PathBuf {
        self.dir.join("client.pem")
    }

    /// Its key.
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client-key.pem")
    }

    /// `--peer-cert <cert> --peer-key <key> --peer-ca <ca>` of node `id`.
    pub fn peer_flags(&self, id: u64) -> Vec<std::ffi::OsString> {
        vec![
            "--peer-cert".into(),
            self.node_cert(id).into(),
            "--peer-key".into(),
            self.node_key(id).into(),
            "--peer-ca".into(),
            self.ca().into(),
        ]
    }
}

/// Writes a CA, certificates for nodes `1..=nodes` valid for `hosts`, and
/// a client certificate into `dir` (created if missing); returns the CA,
/// which can issue more (for nodes added later).
///
/// # Errors
/// A [`CertError`].
pub fn write_cluster(
    dir: &Path,
    nodes: u64,
    hosts: &[String],
    validity: Validity,
) -> Result<CertAuthority, CertError> {
    if !(1..=MAX_NODES).contains(&nodes) {
        return Err(CertError::Args(format!(
            "--nodes must be between 1 and {MAX_NODES}, not {nodes}"
        )));
    }
    if hosts.iter().all(|h| h.trim().is_empty()) {
        return Err(CertError::Args(
            "--hosts must name at least one host".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|source| CertError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let ca = CertAuthority::new("raftkv cluster CA", validity)?;
    ca.issued().write(dir, "ca")?;
    for id in (1..=nodes).filter_map(NodeId::new) {
        ca.issue_node(id, hosts, validity)?
            .write(dir, &format!("node-{id}"))?;
    }
    ca.issue_client("raftkv client", validity)?
        .write(dir, "client")?;
    Ok(ca)
}

/// `raftkv certs`: writes the files and prints how to use them.
///
/// # Errors
/// A [`CertError`].
pub fn run(args: &CertsArgs) -> Result<String, CertError> {
    if args.days == 0 {
        return Err(CertError::Args("--days must be at least 1".into()));
    }
    write_cluster(
        &args.out,
        args.nodes,
        &args.hosts,
        Validity::days_from_now(args.days),
    )?;
    let paths = CertPaths::new(&args.out);
    Ok(format!(
        "wrote a CA and certificates for nodes 1 to {n} (hosts {hosts}, {days} days) in {dir}\n\
         node i: --peer-cert {cert} --peer-key {key} --peer-ca {ca}\n\
         client API: --client-cert / --client-key of a node, --client-ca {ca} to require \
         client certificates ({client} and its key are one)",
        n = args.nodes,
        hosts = args.hosts.join(","),
        days = args.days,
        dir = args.out.display(),
        cert = paths
            .node_cert(1)
            .display()
            .to_string()
            .replace("node-1", "node-<i>"),
        key = paths
            .node_key(1)
            .display()
            .to_string()
            .replace("node-1", "node-<i>"),
        ca = paths.ca().display(),
        client = paths.client_cert().display(),
    ))
}
