//! TLS with rustls (TLS 1.3 only, ring as the crypto provider).
//!
//! - [`PeerTls`]: mutual TLS on the peer port. The peer server requires a
//!   client certificate signed by the CA that names a node
//!   ([`identity`]); the senders (message batches and snapshots) present
//!   this node's certificate and check that the server's is valid for the
//!   URL's host and names the node they meant to reach. The transport
//!   then binds each request to the node its certificate names.
//! - [`ServerTls`]: TLS on another port of the same process (a client
//!   API), with client certificates required when a CA is given.
//! - [`https_client_config`]: a client of such a port over HTTPS.
//! - [`TlsFlags`]: which files a node's TLS flags give, and errors that
//!   name the flag to fix.
//!
//! Every rustls configuration is built here.
//!
//! They work on any tokio byte stream, so a later transport (a streaming
//! protocol, HTTP/2) keeps them as they are.

mod flags;
pub(crate) mod identity;

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

pub use self::flags::{TlsFlags, TlsFlagsError};
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
    /// The CA that signs the other side's certificates (required by
    /// [`PeerTls`]; elsewhere it typically turns client certificates on).
    pub ca: Option<PathBuf>,
}

/// Which of the [`TlsFiles`] an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFile {
    /// [`TlsFiles::cert`].
    Cert,
    /// [`TlsFiles::key`].
    Key,
    /// [`TlsFiles::ca`].
    Ca,
}

impl std::fmt::Display for TlsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsFile::Cert => "certificate",
            TlsFile::Key => "key",
            TlsFile::Ca => "CA",
        })
    }
}

/// Why a TLS configuration could not be built. Every variant says which
/// file is at fault, so an application can name its flag or setting
/// instead (the messages name the file's role and path).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("{file} {}: {source}", path.display())]
    Read {
        /// Which file.
        file: TlsFile,
        /// Its path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file is not the PEM expected.
    #[error("{file} {}: {reason}", path.display())]
    Pem {
        /// Which file.
        file: TlsFile,
        /// Its path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Mutual TLS needs [`TlsFiles::ca`].
    #[error("mutual TLS needs the CA of the other nodes' certificates")]
    MissingCa,
    /// The certificate names another node.
    #[error("certificate {}: it is node {found}'s certificate, not node {expected}'s", path.display())]
    WrongNode {
        /// The certificate file.
        path: PathBuf,
        /// The node it names.
        found: NodeId,
        /// The node it was loaded for.
        expected: NodeId,
    },
    /// The certificate names no node.
    #[error("certificate {}: {source}", path.display())]
    Identity {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong.
        source: IdentityError,
    },
    /// rustls refused the files: a key that does not match the
    /// certificate (`file` is `None`: the combination), a CA it cannot use.
    #[error("{}: {reason}", file.map_or("certificate, key and CA".to_string(), |f| f.to_string()))]
    Config {
        /// The file at fault, if one alone is.
        file: Option<TlsFile>,
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

fn read(file: TlsFile, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        file,
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(file: TlsFile, path: &Path, reason: impl ToString) -> TlsError {
    TlsError::Pem {
        file,
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Every certificate in a PEM file, in order.
fn load_certs(file: TlsFile, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(file, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(file, path, e))?;
    if certs.is_empty() {
        return Err(pem_error(
            file,
            path,
            "no certificate (BEGIN CERTIFICATE) in the file",
        ));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let file = TlsFile::Key;
    let pem = read(file, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            pem_error(file, path, "no private key (BEGIN PRIVATE KEY) in the file")
        }
        e => pem_error(file, path, e),
    })
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let file = TlsFile::Ca;
    let mut roots = RootCertStore::empty();
    for cert in load_certs(file, path)? {
        roots
            .add(cert)
            .map_err(|e| pem_error(file, path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// A rustls refusal, blamed on `file` (or on the combination).
fn config_error(file: Option<TlsFile>) -> impl Fn(rustls::Error) -> TlsError {
    move |e| TlsError::Config {
        file,
        reason: e.to_string(),
    }
}

/// The CA's certificate verifier of client certificates.
fn client_verifier(
    roots: Arc<RootCertStore>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    WebPkiClientVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| TlsError::Config {
            file: Some(TlsFile::Ca),
            reason: e.to_string(),
        })
}

impl TlsFiles {
    /// The certificate chain and private key, the certificate checked to
    /// be valid now.
    fn load_cert_and_key(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        let chain = load_certs(TlsFile::Cert, &self.cert)?;
        let key = load_key(&self.key)?;
        if let Err(reason) = identity::check_valid_now(&chain[0]) {
            return Err(pem_error(TlsFile::Cert, &self.cert, reason));
        }
        Ok((chain, key))
    }
}

fn server_builder() -> Result<rustls::ConfigBuilder<ServerConfig, rustls::WantsVerifier>, TlsError>
{
    ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error(None))
}

/// The certificate chain and key of `files`, checked to name node `id`
/// and to be valid now.
fn load_node_identity(
    files: &TlsFiles,
    id: NodeId,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let (chain, key) = files.load_cert_and_key()?;
    let path = || files.cert.clone();
    match node_identity(&chain[0]) {
        Ok(found) if found == id => Ok((chain, key)),
        Ok(found) => Err(TlsError::WrongNode {
            path: path(),
            found,
            expected: id,
        }),
        Err(source) => Err(TlsError::Identity {
            path: path(),
            source,
        }),
    }
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
    /// A [`TlsError`] naming the file to fix: unreadable or not PEM, no
    /// CA, a certificate that is expired or names another node, a key
    /// that does not match.
    pub fn load(id: NodeId, files: &TlsFiles) -> Result<PeerTls, TlsError> {
        let Some(ca) = &files.ca else {
            return Err(TlsError::MissingCa);
        };
        let (chain, key) = load_node_identity(files, id)?;
        let roots = Arc::new(load_roots(ca)?);
        let inner = client_verifier(Arc::clone(&roots))?;
        let verifier = Arc::new(RequireNodeIdentity { inner });
        let server = server_builder()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(config_error(None))?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config_error(None))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(config_error(None))?;
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

/// TLS on another port of the process, such as a client API: this
/// endpoint's certificate, and client certificates of the CA required
/// when [`TlsFiles::ca`] is given (any client otherwise). Cheap to clone.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads the certificate and key, and the CA of client certificates
    /// if they are required.
    ///
    /// # Errors
    /// A [`TlsError`] naming the file to fix.
    pub fn load(files: &TlsFiles) -> Result<ServerTls, TlsError> {
        let (chain, key) = files.load_cert_and_key()?;
        let builder = server_builder()?;
        let builder = match &files.ca {
            Some(ca) => {
                builder.with_client_cert_verifier(client_verifier(Arc::new(load_roots(ca)?))?)
            }
            None => builder.with_no_client_auth(),
        };
        let server = builder
            .with_single_cert(chain, key)
            .map_err(config_error(None))?;
        Ok(ServerTls {
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
/// a TLS port, and for tests.
///
/// # Errors
/// A [`TlsError`].
pub fn https_client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = load_roots(ca)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error(None))?
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => {
            let chain = load_certs(TlsFile::Cert, cert)?;
            let key = load_key(key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(config_error(None))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
