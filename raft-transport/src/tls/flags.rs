//! TLS files named by command-line flags (or settings): which
//! combinations are complete, and configuration errors that name the flag
//! to fix instead of the file's role. Every node binary with TLS flags
//! needs both, so they live here rather than in each one.

use std::path::Path;

use super::{TlsError, TlsFile, TlsFiles};

/// The names of the three flags (or settings) that give one endpoint's
/// [`TlsFiles`], e.g. `--peer-cert`, `--peer-key`, `--peer-ca`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsFlags {
    /// The flag naming [`TlsFiles::cert`].
    pub cert: &'static str,
    /// The flag naming [`TlsFiles::key`].
    pub key: &'static str,
    /// The flag naming [`TlsFiles::ca`].
    pub ca: &'static str,
}

/// A combination of TLS flags that is not a configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsFlagsError {
    /// Mutual TLS needs all three files, and only some were given.
    #[error("{cert}, {key} and {ca} go together: give all three or none")]
    Incomplete {
        /// [`TlsFlags::cert`].
        cert: &'static str,
        /// [`TlsFlags::key`].
        key: &'static str,
        /// [`TlsFlags::ca`].
        ca: &'static str,
    },
    /// A certificate without its key (or the reverse), or a CA without
    /// either.
    #[error("{cert} and {key} go together, and {ca} needs both")]
    Unpaired {
        /// [`TlsFlags::cert`].
        cert: &'static str,
        /// [`TlsFlags::key`].
        key: &'static str,
        /// [`TlsFlags::ca`].
        ca: &'static str,
    },
}

impl TlsFlags {
    /// The files of mutual TLS ([`PeerTls`](super::PeerTls)): all three
    /// flags or none (`Ok(None)`: no TLS).
    ///
    /// # Errors
    /// [`TlsFlagsError::Incomplete`] for one or two of them.
    pub fn mutual(
        &self,
        cert: Option<&Path>,
        key: Option<&Path>,
        ca: Option<&Path>,
    ) -> Result<Option<TlsFiles>, TlsFlagsError> {
        match (cert, key, ca) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), Some(ca)) => Ok(Some(TlsFiles {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                ca: Some(ca.to_path_buf()),
            })),
            _ => Err(TlsFlagsError::Incomplete {
                cert: self.cert,
                key: self.key,
                ca: self.ca,
            }),
        }
    }

    /// The files of a TLS server ([`ServerTls`](super::ServerTls)): a
    /// certificate and its key, and a CA if client certificates are
    /// required; or none of them (`Ok(None)`: no TLS).
    ///
    /// # Errors
    /// [`TlsFlagsError::Unpaired`] for a certificate without its key, a
    /// key without its certificate, or a CA alone.
    pub fn server(
        &self,
        cert: Option<&Path>,
        key: Option<&Path>,
        ca: Option<&Path>,
    ) -> Result<Option<TlsFiles>, TlsFlagsError> {
        match (cert, key, ca) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), ca) => Ok(Some(TlsFiles {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                ca: ca.map(Path::to_path_buf),
            })),
            _ => Err(TlsFlagsError::Unpaired {
                cert: self.cert,
                key: self.key,
                ca: self.ca,
            }),
        }
    }

    /// `e` in one line that names the flag to fix (`--peer-key
    /// n1-key.pem: ...`) instead of the file's role.
    pub fn describe(&self, e: &TlsError) -> String {
        let Self { cert, key, ca } = *self;
        let flag = |file: &TlsFile| match file {
            TlsFile::Cert => cert,
            TlsFile::Key => key,
            TlsFile::Ca => ca,
        };
        match e {
            TlsError::Read { file, path, source } => {
                format!("{} {}: {source}", flag(file), path.display())
            }
            TlsError::Pem { file, path, reason } => {
                format!("{} {}: {reason}", flag(file), path.display())
            }
            TlsError::MissingCa => format!("{ca} is required with {cert} and {key}"),
            TlsError::WrongNode {
                path,
                found,
                expected,
            } => format!(
                "{cert} {}: it is node {found}'s certificate, not node {expected}'s",
                path.display()
            ),
            TlsError::Identity { path, source } => format!("{cert} {}: {source}", path.display()),
            TlsError::Config {
                file: Some(file),
                reason,
            } => format!("{}: {reason}", flag(file)),
            TlsError::Config { file: None, reason } => format!("{cert}, {key}, {ca}: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const PEER: TlsFlags = TlsFlags {
        cert: "--peer-cert",
        key: "--peer-key",
        ca: "--peer-ca",
    };

    fn p(s: &str) -> Option<&Path> {
        Some(Path::new(s))
    }

    #[test]
    fn mutual_tls_takes_all_three_files_or_none() {
        assert_eq!(PEER.mutual(None, None, None), Ok(None));
        let files = PEER.mutual(p("c"), p("k"), p("ca")).unwrap().unwrap();
        assert_eq!(files.ca, Some(PathBuf::from("ca")));
        for (cert, key, ca) in [
            (p("c"), p("k"), None),
            (p("c"), None, p("ca")),
            (None, None, p("ca")),
        ] {
            let e = PEER.mutual(cert, key, ca).unwrap_err();
            assert!(matches!(e, TlsFlagsError::Incomplete { .. }), "{e}");
            assert!(e.to_string().contains("--peer-key"), "{e}");
        }
    }

    #[test]
    fn a_server_needs_a_certificate_with_its_key_and_a_ca_only_beside_them() {
        assert_eq!(PEER.server(None, None, None), Ok(None));
        assert_eq!(PEER.server(p("c"), p("k"), None).unwrap().unwrap().ca, None);
        assert!(PEER.server(p("c"), p("k"), p("ca")).unwrap().is_some());
        for (cert, key, ca) in [
            (p("c"), None, None),
            (None, p("k"), None),
            (None, None, p("ca")),
        ] {
            let e = PEER.server(cert, key, ca).unwrap_err();
            assert!(matches!(e, TlsFlagsError::Unpaired { .. }), "{e}");
        }
    }

    #[test]
    fn configuration_errors_name_the_flag_of_the_file_at_fault() {
        let read = TlsError::Read {
            file: TlsFile::Key,
            path: "n1-key.pem".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(PEER.describe(&read).starts_with("--peer-key n1-key.pem: "));
        let config = TlsError::Config {
            file: Some(TlsFile::Ca),
            reason: "no roots".into(),
        };
        assert_eq!(PEER.describe(&config), "--peer-ca: no roots");
        let missing = PEER.describe(&TlsError::MissingCa);
        assert_eq!(
            missing,
            "--peer-ca is required with --peer-cert and --peer-key"
        );
        for e in [read, config, TlsError::MissingCa] {
            assert_eq!(PEER.describe(&e).lines().count(), 1);
        }
    }
}
