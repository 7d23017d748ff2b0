//! TLS for raftkv's two ports, with rustls (TLS 1.3 only, ring as the
//! crypto provider): every rustls configuration is built here.
//!
//! - [`PeerTls`]: mutual TLS on the peer port. The peer server requires a
//!   client certificate signed by `--peer-ca` that names a node
//!   ([`identity`]); the senders (message batches and snapshots) present
//!   this node's certificate and check that the server's is valid for the
//!   URL's host and names the node they meant to reach. The transport
//!   then binds each request to the node its certificate names.
//! - [`ClientApiTls`]: TLS on the client API, with client certificates
//!   required when `--client-ca` is given.
//! - [`https_client_config`]: a client of the client API over HTTPS.
//!
//! All of them work on any tokio byte stream, so a later transport (a
//! streaming protocol, HTTP/2) keeps them as they are.

pub mod identity;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use raft_core::NodeId;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

use self::identity::{IdentityError, RequireNodeIdentity, node_identity};
use crate::peer_url::PeerUrl;

/// How long a TLS handshake may take, on either side.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The PEM files of one TLS endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, this endpoint's certificate first.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The CA that signs the other side's certificates (required on the
    /// peer port; on the client API, it turns client certificates on).
    pub ca: Option<PathBuf>,
}

/// Which port's flags a file came from, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Port {
    Peer,
    Client,
}

impl Port {
    fn flags(self) -> [&'static str; 3] {
        match self {
            Port::Peer => ["--peer-cert", "--peer-key", "--peer-ca"],
            Port::Client => ["--client-cert", "--client-key", "--client-ca"],
        }
    }
}

/// Why a TLS configuration could not be built. Every message names the
/// flag and file to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("{flag} {}: {source}", path.display())]
    Read {
        /// The flag that named it.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not the PEM expected.
    #[error("{flag} {}: {reason}", path.display())]
    Pem {
        /// The flag that named it.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The peer port needs a CA.
    #[error("--peer-ca is required with --peer-cert and --peer-key")]
    MissingCa,
    /// This node's certificate names no node, or the wrong one.
    #[error("--peer-cert {}: {reason}", path.display())]
    Identity {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the combination (a key that does not match the
    /// certificate, a CA it cannot use).
    #[error("{flags}: {reason}")]
    Config {
        /// The flags involved.
        flags: String,
        /// rustls's reason.
        reason: String,
    },
}

/// Why a TLS handshake failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The handshake failed: an alert, a certificate refused, the
    /// connection closed.
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] std::io::Error),
    /// The handshake did not finish in time.
    #[error("TLS handshake timed out after {0:?}")]
    Timeout(Duration),
    /// The other side presented no certificate.
    #[error("the other side presented no certificate")]
    NoCertificate,
    /// Its certificate names no node.
    #[error("{0}")]
    Identity(#[from] IdentityError),
    /// The server is another node than the one meant.
    #[error("the server at {url} is node {found}, not node {expected}")]
    WrongNode {
        /// The URL connected to.
        url: String,
        /// The node meant.
        expected: NodeId,
        /// The node its certificate names.
        found: NodeId,
    },
    /// The URL's host cannot be checked against a certificate.
    #[error("{0:?} is not a host name or IP address a certificate can name")]
    ServerName(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        flag,
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(flag: &'static str, path: &Path, reason: impl ToString) -> TlsError {
    TlsError::Pem {
        flag,
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Every certificate in a PEM file, in order.
fn load_certs(flag: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(flag, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(flag, path, e))?;
    if certs.is_empty() {
        return Err(pem_error(
            flag,
            path,
            "no certificate (BEGIN CERTIFICATE) in the file",
        ));
    }
    Ok(certs)
}

fn load_key(flag: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(flag, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            pem_error(flag, path, "no private key (BEGIN PRIVATE KEY) in the file")
        }
        e => pem_error(flag, path, e),
    })
}

fn load_roots(flag: &'static str, path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(flag, path)? {
        roots
            .add(cert)
            .map_err(|e| pem_error(flag, path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// Builds rustls configurations; `flags` name what is being configured.
fn config_error(flags: &str) -> impl Fn(rustls::Error) -> TlsError + '_ {
    move |e| TlsError::Config {
        flags: flags.to_string(),
        reason: e.to_string(),
    }
}

/// The certificate chain and key of `files`, checked to name node `id`
/// when `id` is given, and to be valid now.
fn load_identity(
    port: Port,
    files: &TlsFiles,
    id: Option<NodeId>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let [cert_flag, key_flag, _] = port.flags();
    let chain = load_certs(cert_flag, &files.cert)?;
    let key = load_key(key_flag, &files.key)?;
    if let Err(reason) = identity::check_valid_now(&chain[0]) {
        return Err(pem_error(cert_flag, &files.cert, reason));
    }
    if let Some(id) = id {
        let identity_error = |reason: String| TlsError::Identity {
            path: files.cert.clone(),
            reason,
        };
        match node_identity(&chain[0]) {
            Ok(found) if found == id => {}
            Ok(found) => {
                return Err(identity_error(format!(
                    "it is node {found}'s certificate, not --id {id}'s"
                )));
            }
            Err(e) => return Err(identity_error(e.to_string())),
        }
    }
    Ok((chain, key))
}

/// Mutual TLS of the peer port for node `id`. Cheap to clone.
#[derive(Clone)]
pub struct PeerTls {
    id: NodeId,
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTls")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl PeerTls {
    /// Loads node `id`'s certificate, key and CA.
    ///
    /// # Errors
    /// A [`TlsError`] naming the flag and file to fix: unreadable or not
    /// PEM, no CA, a certificate that is expired or names another node, a
    /// key that does not match.
    pub fn load(id: NodeId, files: &TlsFiles) -> Result<PeerTls, TlsError> {
        let ca = files.ca.as_deref().ok_or(TlsError::MissingCa)?;
        let (chain, key) = load_identity(Port::Peer, files, Some(id))?;
        let roots = Arc::new(load_roots("--peer-ca", ca)?);
        let flags = "--peer-cert, --peer-key, --peer-ca";
        let inner = WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), provider())
            .build()
            .map_err(|e| TlsError::Config {
                flags: "--peer-ca".into(),
                reason: e.to_string(),
            })?;
        let verifier = Arc::new(RequireNodeIdentity { inner });
        let server = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config_error(flags))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(config_error(flags))?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config_error(flags))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(config_error(flags))?;
        Ok(PeerTls {
            id,
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }

    /// The node this configuration is for.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The server side of a handshake: the stream, and the node the
    /// client's certificate names.
    ///
    /// # Errors
    /// A [`HandshakeError`]: the client presented no certificate, one not
    /// signed by the CA, expired, or naming no node, or it timed out.
    pub async fn accept<IO>(
        &self,
        io: IO,
    ) -> Result<(server::TlsStream<IO>, NodeId), HandshakeError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let stream = with_timeout(self.acceptor.accept(io)).await?;
        let id = match stream.get_ref().1.peer_certificates() {
            Some([end_entity, ..]) => node_identity(end_entity)?,
            _ => return Err(HandshakeError::NoCertificate),
        };
        Ok((stream, id))
    }

    /// The client side of a handshake with node `expected` at `url`: the
    /// server's certificate must be valid for the URL's host and name
    /// `expected`.
    ///
    /// # Errors
    /// A [`HandshakeError`].
    pub async fn connect<IO>(
        &self,
        io: IO,
        url: &PeerUrl,
        expected: NodeId,
    ) -> Result<client::TlsStream<IO>, HandshakeError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(url.host().to_string())
            .map_err(|_| HandshakeError::ServerName(url.host().to_string()))?;
        let stream = with_timeout(self.connector.connect(name, io)).await?;
        let found = match stream.get_ref().1.peer_certificates() {
            Some([end_entity, ..]) => node_identity(end_entity)?,
            _ => return Err(HandshakeError::NoCertificate),
        };
        if found != expected {
            return Err(HandshakeError::WrongNode {
                url: url.to_string(),
                expected,
                found,
            });
        }
        Ok(stream)
    }
}

async fn with_timeout<T>(
    handshake: impl Future<Output = std::io::Result<T>>,
) -> Result<T, HandshakeError> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
        .await
        .map_err(|_| HandshakeError::Timeout(HANDSHAKE_TIMEOUT))?
        .map_err(HandshakeError::Tls)
}

/// TLS of the client API. Cheap to clone.
#[derive(Clone)]
pub struct ClientApiTls {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for ClientApiTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientApiTls").finish_non_exhaustive()
    }
}

impl ClientApiTls {
    /// Loads the client API's certificate and key, and the CA of client
    /// certificates if client certificates are required.
    ///
    /// # Errors
    /// A [`TlsError`] naming the flag and file to fix.
    pub fn load(files: &TlsFiles) -> Result<ClientApiTls, TlsError> {
        let (chain, key) = load_identity(Port::Client, files, None)?;
        let flags = "--client-cert, --client-key, --client-ca";
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config_error(flags))?;
        let builder = match &files.ca {
            Some(ca) => {
                let roots = Arc::new(load_roots("--client-ca", ca)?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(|e| TlsError::Config {
                        flags: "--client-ca".into(),
                        reason: e.to_string(),
                    })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let server = builder
            .with_single_cert(chain, key)
            .map_err(config_error(flags))?;
        Ok(ClientApiTls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
        })
    }

    /// The server side of a handshake.
    ///
    /// # Errors
    /// A [`HandshakeError`].
    pub async fn accept<IO>(&self, io: IO) -> Result<server::TlsStream<IO>, HandshakeError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        with_timeout(self.acceptor.accept(io)).await
    }
}

/// A rustls client configuration trusting the CA in `ca`, presenting
/// `identity` (certificate and key files) if given: for HTTPS clients of
/// the client API, and for tests.
///
/// # Errors
/// A [`TlsError`].
pub fn https_client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = load_roots("CA", ca)?;
    let flags = "client certificate";
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error(flags))?
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => {
            let chain = load_certs("certificate", cert)?;
            let key = load_key("key", key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(config_error(flags))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
