//! One answer from a group's loop to one caller, awaited either from
//! async code or by blocking a thread, with a deadline either way.

use std::time::Duration;

/// The loop's end of a reply.
#[derive(Debug)]
pub(crate) enum Reply<T> {
    Async(tokio::sync::oneshot::Sender<T>),
    Blocking(crossbeam_channel::Sender<T>),
}

impl<T> Reply<T> {
    /// Answers; an answer nobody waits for any more is dropped.
    pub(crate) fn send(self, value: T) {
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(value);
            }
            Reply::Blocking(tx) => {
                let _ = tx.try_send(value);
            }
        }
    }

    /// True once the caller stopped waiting (timed out, or gave up).
    pub(crate) fn is_abandoned(&self) -> bool {
        match self {
            Reply::Async(tx) => tx.is_closed(),
            // A crossbeam sender cannot see its receiver go; such a
            // waiter is pruned when its entry is applied or the loop stops.
            Reply::Blocking(_) => false,
        }
    }
}

/// How a wait for an answer ended without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitError {
    /// The deadline passed.
    Timeout,
    /// The loop dropped the request unanswered (it stopped).
    Dropped,
}

/// A reply pair for async callers.
pub(crate) fn async_pair<T>() -> (Reply<T>, tokio::sync::oneshot::Receiver<T>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    (Reply::Async(tx), rx)
}

/// Awaits an async reply until `timeout`.
pub(crate) async fn wait_async<T>(
    rx: tokio::sync::oneshot::Receiver<T>,
    timeout: Duration,
) -> Result<T, WaitError> {
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(_)) => Err(WaitError::Dropped),
        Err(_) => Err(WaitError::Timeout),
    }
}

/// A reply pair for blocking callers.
pub(crate) fn blocking_pair<T>() -> (Reply<T>, crossbeam_channel::Receiver<T>) {
    let (tx, rx) = crossbeam_channel::bounded(1);
    (Reply::Blocking(tx), rx)
}

/// Blocks on a reply until `timeout`.
pub(crate) fn wait_blocking<T>(
    rx: &crossbeam_channel::Receiver<T>,
    timeout: Duration,
) -> Result<T, WaitError> {
    rx.recv_timeout(timeout).map_err(|e| match e {
        crossbeam_channel::RecvTimeoutError::Timeout => WaitError::Timeout,
        crossbeam_channel::RecvTimeoutError::Disconnected => WaitError::Dropped,
    })
}
