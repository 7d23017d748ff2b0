//! A cluster's list of peer URLs, one per member (member `i` is the
//! `i`-th), checked as a whole: every URL valid, no address twice however
//! it is written, and one scheme for all.

use std::net::SocketAddr;

use crate::peer_url::{PeerUrl, PeerUrlError};

/// Why a list of peer URLs cannot be a cluster's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterUrlsError {
    /// No URL at all.
    #[error(
        "no peer URLs: list every member's, e.g. http://127.0.0.1:12379,http://127.0.0.1:22379"
    )]
    Empty,
    /// A malformed URL.
    #[error(transparent)]
    BadUrl(#[from] PeerUrlError),
    /// One address twice, however it is written (`127.0.0.1` and
    /// `127.1`, a host name and its address, a trailing slash): the
    /// second member would be the first.
    #[error("the address {addr} is listed twice: {first} and {second}")]
    Duplicate {
        /// The address both resolve to.
        addr: SocketAddr,
        /// The first URL, as written.
        first: String,
        /// The second.
        second: String,
    },
    /// Some URLs `http://`, others `https://`.
    #[error("the list mixes http:// and https:// URLs: every member uses TLS or none does")]
    MixedSchemes,
}

/// Parses the peer URLs of every member of a cluster, in member order.
///
/// # Errors
/// A [`ClusterUrlsError`] naming the first problem.
pub fn parse_cluster_urls<S: AsRef<str>>(raw: &[S]) -> Result<Vec<PeerUrl>, ClusterUrlsError> {
    if raw.iter().all(|u| u.as_ref().trim().is_empty()) {
        return Err(ClusterUrlsError::Empty);
    }
    let mut urls: Vec<PeerUrl> = Vec::with_capacity(raw.len());
    for text in raw {
        let url = PeerUrl::parse(text.as_ref())?;
        if let Some(first) = urls.iter().find(|u| u.addr() == url.addr()) {
            return Err(ClusterUrlsError::Duplicate {
                addr: url.addr(),
                first: first.to_string(),
                second: text.as_ref().trim().to_string(),
            });
        }
        if urls.first().is_some_and(|u| u.scheme() != url.scheme()) {
            return Err(ClusterUrlsError::MixedSchemes);
        }
        urls.push(url);
    }
    Ok(urls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_written_two_ways_is_a_duplicate() {
        // What `localhost` resolves to here, as an IP address.
        let localhost = PeerUrl::parse("http://localhost:22379").unwrap().addr();
        for (first, second) in [
            ("http://127.0.0.1:12379".to_string(), "http://127.1:12379"),
            (
                "http://127.0.0.1:12379".to_string(),
                "http://127.0.0.1:12379/",
            ),
            (format!("http://{localhost}"), "http://localhost:22379"),
        ] {
            match parse_cluster_urls(&[first.as_str(), second]) {
                Err(e @ ClusterUrlsError::Duplicate { .. }) => {
                    assert_eq!(e.to_string().lines().count(), 1, "{e}")
                }
                other => panic!("{first} {second}: {other:?}"),
            }
        }
    }

    #[test]
    fn each_bad_list_gets_its_own_error() {
        let none: [&str; 0] = [];
        assert_eq!(parse_cluster_urls(&none), Err(ClusterUrlsError::Empty));
        assert_eq!(parse_cluster_urls(&[" "]), Err(ClusterUrlsError::Empty));
        let mixed = ["http://127.0.0.1:1", "https://127.0.0.1:2"];
        assert_eq!(
            parse_cluster_urls(&mixed),
            Err(ClusterUrlsError::MixedSchemes)
        );
        let bad = parse_cluster_urls(&["http://127.0.0.1:1", "127.0.0.1:2"]);
        assert!(matches!(bad, Err(ClusterUrlsError::BadUrl(_))), "{bad:?}");
        let good = parse_cluster_urls(&["https://127.0.0.1:1", "https://127.0.0.1:2"]).unwrap();
        assert_eq!(good.len(), 2);
    }
}
