//! The pipeline fallback, for a peer of the previous version: it answers
//! a stream request `404` (it knows only `POST /raft/batch`), so a lane
//! posts its messages as batches instead, one request at a time on a
//! kept-alive connection, as that version's sender did, and tries a
//! stream again after [`RETRY_STREAMS_AFTER`]. So a rolling upgrade keeps
//! every pair of nodes talking both ways.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::StatusCode;
use hyper::client::conn::http1::SendRequest;
use raft_core::{Message, NodeId};
use tokio::time::{Instant, timeout};

use super::sender::{SendError, check_response, connect, request};
use super::{BATCH_PATH, Shared};
use crate::peer_url::PeerUrl;

/// How long a lane posts batches before it asks for a stream again.
pub(super) const RETRY_STREAMS_AFTER: Duration = Duration::from_secs(60);
/// How long one batch request may take, response included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// True if `e` is a peer of the previous version refusing a stream.
pub(super) fn is_older_peer(e: &SendError) -> bool {
    matches!(e, SendError::Refused { status, .. } if *status == StatusCode::NOT_FOUND)
}

/// A lane posting batches to an older peer.
pub(super) struct BatchFallback {
    conn: Option<SendRequest<Full<Bytes>>>,
    /// When to try a stream again.
    until: Instant,
}

impl BatchFallback {
    /// Posting batches from `now` for [`RETRY_STREAMS_AFTER`].
    pub(super) fn new(now: Instant) -> BatchFallback {
        BatchFallback {
            conn: None,
            until: now + RETRY_STREAMS_AFTER,
        }
    }

    /// Whether batches are still to be posted at `now`.
    pub(super) fn active(&self, now: Instant) -> bool {
        now < self.until
    }

    /// Posts `batch` to peer `to` and waits for its answer.
    pub(super) async fn post(
        &mut self,
        shared: &Shared,
        to: NodeId,
        url: &PeerUrl,
        batch: &[Message],
    ) -> Result<(), SendError> {
        if self.conn.as_ref().is_some_and(SendRequest::is_closed) {
            self.conn = None;
        }
        let sender = match &mut self.conn {
            Some(sender) => sender,
            None => self.conn.insert(connect(shared, to, url).await?),
        };
        let body = Full::new(raft_proto::encode_batch(batch));
        let req = request(shared, to, url, BATCH_PATH, body)?;
        let exchange = async {
            sender.ready().await.map_err(SendError::Http)?;
            let response = sender.send_request(req).await.map_err(SendError::Http)?;
            check_response(response).await
        };
        let result = match timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Timeout(REQUEST_TIMEOUT)),
        };
        if result.is_err() {
            self.conn = None;
        }
        result
    }
}
