//! Peer URLs (`http://host:port`, or `https://host:port` for mutual TLS),
//! validated and resolved once.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

/// Why a peer URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerUrlError {
    /// Not a URL at all.
    #[error("{url:?} is not a URL like http://127.0.0.1:12379")]
    Malformed {
        /// The input.
        url: String,
    },
    /// A scheme other than `http` and `https`.
    #[error("{url:?}: only http:// and https:// peer URLs are supported")]
    Scheme {
        /// The input.
        url: String,
    },
    /// No explicit port.
    #[error("{url:?} has no port; write it like http://127.0.0.1:12379")]
    NoPort {
        /// The input.
        url: String,
    },
    /// Port 0, which no node listens on.
    #[error("{url:?} has port 0; a peer URL names the port its node listens on")]
    PortZero {
        /// The input.
        url: String,
    },
    /// A path, query or fragment after the authority.
    #[error("{url:?} has a path; a peer URL is only scheme, host and port")]
    HasPath {
        /// The input.
        url: String,
    },
    /// The host did not resolve.
    #[error("{url:?}: host does not resolve")]
    Unresolved {
        /// The input.
        url: String,
    },
}

/// How a peer is talked to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP: unauthenticated.
    Http,
    /// HTTP over mutual TLS.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A validated `http(s)://host:port` URL of a peer, with its resolved
/// address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerUrl {
    url: String,
    scheme: Scheme,
    /// `host:port` as written.
    authority: String,
    /// The host, without IPv6 brackets.
    host: String,
    addr: SocketAddr,
}

impl PeerUrl {
    /// Parses and resolves `url`.
    ///
    /// # Errors
    /// A [`PeerUrlError`] saying what is wrong with it.
    pub fn parse(url: &str) -> Result<PeerUrl, PeerUrlError> {
        let url = url.trim();
        let owned = || url.to_string();
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else if url.contains("://") {
            return Err(PeerUrlError::Scheme { url: owned() });
        } else {
            return Err(PeerUrlError::Malformed { url: owned() });
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['@', ' ']) {
            return Err(PeerUrlError::Malformed { url: owned() });
        }
        if authority.contains(['/', '?', '#']) {
            return Err(PeerUrlError::HasPath { url: owned() });
        }
        let Some((host, port)) = authority.rsplit_once(':') else {
            return Err(PeerUrlError::NoPort { url: owned() });
        };
        if host.is_empty() || host.ends_with(']') && !host.starts_with('[') {
            return Err(PeerUrlError::Malformed { url: owned() });
        }
        let Ok(port) = port.parse::<u16>() else {
            return Err(PeerUrlError::NoPort { url: owned() });
        };
        if port == 0 {
            return Err(PeerUrlError::PortZero { url: owned() });
        }
        let host_unbracketed = host.trim_start_matches('[').trim_end_matches(']');
        let addr = (host_unbracketed, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| PeerUrlError::Unresolved { url: owned() })?;
        Ok(PeerUrl {
            url: format!("{}://{authority}", scheme.as_str()),
            scheme,
            authority: authority.to_string(),
            host: host_unbracketed.to_string(),
            addr,
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// `host:port`, as written (the `Host` header of requests).
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The host name or IP address, without IPv6 brackets: what a peer's
    /// TLS certificate must name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The URL, normalised (no trailing slash).
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The resolved socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl fmt::Display for PeerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_url_parses_and_resolves() {
        let u = PeerUrl::parse("http://127.0.0.1:12379/").unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:12379");
        assert_eq!(u.addr(), "127.0.0.1:12379".parse().unwrap());
    }

    #[test]
    fn an_https_url_parses_with_its_host_for_certificates() {
        let u = PeerUrl::parse("https://localhost:12379").unwrap();
        assert_eq!(u.scheme(), Scheme::Https);
        assert_eq!(u.as_str(), "https://localhost:12379");
        assert_eq!(u.authority(), "localhost:12379");
        assert_eq!(u.host(), "localhost");
        let v6 = PeerUrl::parse("https://[::1]:12379").unwrap();
        assert_eq!(v6.host(), "::1");
        assert_ne!(
            PeerUrl::parse("http://127.0.0.1:1").unwrap(),
            PeerUrl::parse("https://127.0.0.1:1").unwrap()
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        assert!(matches!(
            PeerUrl::parse("127.0.0.1:1"),
            Err(PeerUrlError::Malformed { .. })
        ));
        assert!(matches!(
            PeerUrl::parse("ftp://127.0.0.1:1"),
            Err(PeerUrlError::Scheme { .. })
        ));
        assert!(matches!(
            PeerUrl::parse("http://127.0.0.1"),
            Err(PeerUrlError::NoPort { .. })
        ));
        assert!(matches!(
            PeerUrl::parse("http://127.0.0.1:99999"),
            Err(PeerUrlError::NoPort { .. })
        ));
        assert!(matches!(
            PeerUrl::parse("http://127.0.0.1:1/x"),
            Err(PeerUrlError::HasPath { .. })
        ));
        assert!(matches!(
            PeerUrl::parse("http://"),
            Err(PeerUrlError::Malformed { .. })
        ));
        assert!(matches!(
            PeerUrl::parse("http://127.0.0.1:0"),
            Err(PeerUrlError::PortZero { .. })
        ));
    }
}
