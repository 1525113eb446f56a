//! Retry policy, apart from the client: which failures are worth another try, and how long to wait.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 8, base_delay: Duration::from_millis(200), max_delay: Duration::from_secs(20) }
    }
}

impl RetryPolicy {
    /// A short policy for the first contact, so a wrong URL fails in about a second.
    pub fn probe() -> Self {
        Self { max_attempts: 3, base_delay: Duration::from_millis(150), max_delay: Duration::from_secs(1) }
    }

    /// Delay before attempt `attempt + 1` (attempt counts from 1): exponential with full jitter,
    /// but never shorter than the server's Retry-After.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << attempt.min(16).saturating_sub(1));
        let cap = exp.min(self.max_delay);
        let jittered = cap.mul_f64(rand::rng().random_range(0.5..=1.0));
        match retry_after {
            Some(ra) => ra.min(Duration::from_secs(120)).max(jittered),
            None => jittered,
        }
    }
}

/// Whether an HTTP status is worth retrying.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Parses a Retry-After header given in seconds (the HTTP-date form is treated as absent).
pub fn parse_retry_after(v: Option<&str>) -> Option<Duration> {
    v.and_then(|s| s.trim().parse::<f64>().ok()).filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_respect_retry_after() {
        let p = RetryPolicy::default();
        assert!(p.delay(1, None) <= Duration::from_millis(200));
        assert!(p.delay(20, None) <= p.max_delay);
        assert!(p.delay(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
        assert_eq!(parse_retry_after(Some(" 2 ")), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert!(retryable_status(503) && retryable_status(429) && !retryable_status(400));
    }
}
