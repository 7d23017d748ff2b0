//! What the transport counts: plain atomics, written with one relaxed
//! increment on the hot path and read with getters, so an application
//! renders them in whatever exposition it uses, under its own names.

use std::sync::atomic::{AtomicU64, Ordering};

/// The connections of one listening port, as an
/// [`Admission`](crate::Admission) counts them.
#[derive(Debug, Default)]
pub struct ConnectionMetrics {
    refused: AtomicU64,
    open: AtomicU64,
}

impl ConnectionMetrics {
    /// Connections refused because the port was at its cap.
    pub fn refused(&self) -> u64 {
        get(&self.refused)
    }

    /// Gauge: connections open now.
    pub fn open(&self) -> u64 {
        get(&self.open)
    }

    pub(crate) fn refused_one(&self) {
        add(&self.refused, 1);
    }

    pub(crate) fn opened(&self) {
        add(&self.open, 1);
    }

    pub(crate) fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

fn get(metric: &AtomicU64) -> u64 {
    metric.load(Ordering::Relaxed)
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}
