//! Pacing snapshot bodies: a token bucket, its arithmetic pure (the clock
//! is an argument) and a thin async wrapper that sleeps as it says.
//!
//! Tokens are bytes. They accrue at `rate` per second up to `burst`; taking
//! more than there are drives the count negative and returns how long to
//! wait until it is back at zero, so a sender that waits as told never has
//! sent more than `burst + rate × elapsed` bytes. The bucket starts full.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The largest burst: one snapshot chunk, so a paced send never sends
/// more than a chunk ahead of its rate.
pub(crate) const MAX_BURST_BYTES: u64 = 256 << 10;

/// A token bucket of bytes.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    /// Bytes per second; at least 1.
    rate: f64,
    /// The most tokens held.
    burst: f64,
    /// Invariant: `tokens <= burst`; negative while a wait is owed.
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `rate` bytes per second. The burst is a tenth of a
    /// second of rate, at most [`MAX_BURST_BYTES`], so a small limit is
    /// honoured over short transfers too.
    pub(crate) fn new(rate: u64, now: Instant) -> TokenBucket {
        let rate = rate.max(1);
        let burst = (rate / 10).clamp(1, MAX_BURST_BYTES) as f64;
        TokenBucket {
            rate: rate as f64,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// The burst, in bytes.
    #[cfg(test)]
    pub(crate) fn burst(&self) -> u64 {
        self.burst as u64
    }

    /// Takes `bytes` at `now`; returns how long to wait before sending
    /// them (zero if the bucket held them).
    pub(crate) fn take(&mut self, bytes: u64, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// A bucket shared by every snapshot send of a transport: the limit is
/// the node's, however many snapshots are in flight.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    bucket: Mutex<TokenBucket>,
}

impl RateLimiter {
    /// `rate` bytes per second.
    pub(crate) fn new(rate: u64) -> RateLimiter {
        RateLimiter {
            bucket: Mutex::new(TokenBucket::new(rate, Instant::now())),
        }
    }

    /// The rate, in bytes per second.
    pub(crate) fn rate(&self) -> u64 {
        self.bucket.lock().rate as u64
    }

    /// Returns once `bytes` may be sent.
    pub(crate) async fn acquire(&self, bytes: u64) {
        let wait = self.bucket.lock().take(bytes, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `total` bytes in `chunk`s through `bucket`, each as soon as it
    /// may go, on a clock that only moves by the waits; returns the time
    /// the last chunk went out.
    fn paced(bucket: &mut TokenBucket, start: Instant, total: u64, chunk: u64) -> Duration {
        let mut now = start;
        let mut sent = 0;
        while sent < total {
            let n = chunk.min(total - sent);
            now += bucket.take(n, now);
            sent += n;
            // Never ahead of the rate by more than the burst.
            let allowed = bucket.burst() as f64 + bucket.rate * (now - start).as_secs_f64();
            assert!(sent as f64 <= allowed + 1.0, "{sent} > {allowed}");
        }
        now - start
    }

    #[test]
    fn a_paced_transfer_takes_its_bytes_over_the_rate_within_ten_percent() {
        for (rate, total, chunk) in [
            (1 << 20, 10 << 20, 256 << 10),
            (100_000, 1_000_000, 65_536),
            (5_000, 50_000, 1_000),
            (1 << 30, 4 << 30, 256 << 10),
        ] {
            let start = Instant::now();
            let mut bucket = TokenBucket::new(rate, start);
            let took = paced(&mut bucket, start, total, chunk).as_secs_f64();
            let ideal = total as f64 / rate as f64;
            assert!(
                took >= ideal * 0.9,
                "rate {rate}: {took} s < 90% of {ideal} s"
            );
            assert!(
                took <= ideal * 1.1,
                "rate {rate}: {took} s > 110% of {ideal} s"
            );
        }
    }

    #[test]
    fn the_bucket_starts_full_refills_at_the_rate_and_caps_at_the_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1000, start);
        assert_eq!(bucket.burst(), 100);
        assert_eq!(bucket.take(100, start), Duration::ZERO, "full at the start");
        assert_eq!(bucket.take(50, start), Duration::from_millis(50));
        // After a long idle the bucket holds the burst, not more.
        let later = start + Duration::from_secs(60);
        assert_eq!(bucket.take(100, later), Duration::ZERO);
        assert_eq!(bucket.take(1, later), Duration::from_millis(1));
    }

    #[test]
    fn a_clock_going_backwards_never_mints_tokens() {
        let start = Instant::now() + Duration::from_secs(10);
        let mut bucket = TokenBucket::new(1000, start);
        bucket.take(100, start);
        let wait = bucket.take(100, start - Duration::from_secs(5));
        assert_eq!(wait, Duration::from_millis(100));
    }

    #[test]
    fn a_zero_rate_is_one_byte_per_second() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(0, start);
        assert_eq!(bucket.take(1, start), Duration::ZERO);
        assert_eq!(bucket.take(2, start), Duration::from_secs(2));
    }
}
