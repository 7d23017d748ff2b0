//! Which node a certificate speaks for.
//!
//! A node's certificate names it with exactly one URI subject alternative
//! name `raftkv://node/<id>` ([`identity_uri`]). The host names and IP
//! addresses in the same certificate are where the node may be reached
//! (checked against the peer URL, as for any TLS server); the URI is who
//! it is. The two are kept apart because they differ: a local test
//! cluster runs every node on 127.0.0.1, so an address cannot tell nodes apart,
//! and a node that moves keeps its id. A URI SAN is where SPIFFE and
//! service meshes put a workload's identity; the common name is
//! deprecated for identity (RFC 6125) and ignored here.
//!
//! The peer server refuses, at the handshake, a client certificate that
//! names no node (`RequireNodeIdentity`); the transport then refuses
//! every request or message whose sender is not that node, and a sender
//! refuses a server whose certificate names another node than the one it
//! meant to reach.

use std::sync::Arc;

use raft_core::NodeId;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// The prefix of a node identity URI.
pub(crate) const IDENTITY_PREFIX: &str = "raftkv://node/";

/// The identity URI of node `id`: `raftkv://node/<id>`.
pub fn identity_uri(id: NodeId) -> String {
    format!("{IDENTITY_PREFIX}{id}")
}

/// Why a certificate names no node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The certificate is not X.509 DER.
    #[error("the certificate does not parse: {0}")]
    Unparsable(String),
    /// No `raftkv://node/<id>` URI among its subject alternative names.
    #[error(
        "the certificate names no node (no {IDENTITY_PREFIX}<id> URI subject alternative name)"
    )]
    Missing,
    /// More than one node identity URI.
    #[error("the certificate names more than one node: {0}")]
    Ambiguous(String),
    /// A node identity URI whose id is not a positive integer.
    #[error("{0:?} is not a node identity like {IDENTITY_PREFIX}1")]
    Malformed(String),
}

/// The node a certificate (DER) speaks for.
///
/// # Errors
/// An [`IdentityError`] unless exactly one well-formed node identity URI
/// is among the certificate's subject alternative names.
pub fn node_identity(cert: &CertificateDer<'_>) -> Result<NodeId, IdentityError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| IdentityError::Unparsable(e.to_string()))?;
    let san = parsed
        .subject_alternative_name()
        .map_err(|e| IdentityError::Unparsable(e.to_string()))?;
    let uris: Vec<&str> = san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri) => Some(*uri),
            _ => None,
        })
        .filter(|uri| uri.starts_with(IDENTITY_PREFIX))
        .collect();
    match uris[..] {
        [] => Err(IdentityError::Missing),
        [uri] => parse_id(&uri[IDENTITY_PREFIX.len()..])
            .ok_or_else(|| IdentityError::Malformed(uri.to_string())),
        _ => Err(IdentityError::Ambiguous(uris.join(", "))),
    }
}

/// A decimal node id in its one canonical spelling (no sign, no leading
/// zero), so that one node has exactly one identity URI.
fn parse_id(digits: &str) -> Option<NodeId> {
    if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok().and_then(NodeId::new)
}

/// Refuses a certificate outside its validity period, saying when it
/// ends or ended; a node with one would be refused by every peer.
///
/// # Errors
/// The reason, as text.
pub(crate) fn check_valid_now(cert: &CertificateDer<'_>) -> Result<(), String> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert).map_err(|e| format!("does not parse: {e}"))?;
    let validity = parsed.validity();
    if validity.is_valid() {
        Ok(())
    } else {
        Err(format!(
            "the certificate is valid from {} to {}, not now",
            validity.not_before, validity.not_after
        ))
    }
}

/// A client certificate verifier that accepts what `inner` (the CA check)
/// accepts and names exactly one node, so a certificate of the right CA
/// that is not a node's (a client-API certificate, say) is refused at the
/// handshake.
#[derive(Debug)]
pub(crate) struct RequireNodeIdentity {
    pub(crate) inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for RequireNodeIdentity {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        node_identity(end_entity).map_err(|e| {
            rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
                Arc::new(e),
            )))
        })?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
