//! Retry policy for remote calls: which failures are retried, and how long to
//! wait before the next try (exponential backoff with jitter, or the
//! server's `Retry-After`).

use crate::duration::secs;
use std::time::Duration;

/// What went wrong with one try.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// An HTTP error status, with the server's message and its `Retry-After`.
    Status {
        /// Status code.
        status: u16,
        /// The server's message.
        message: String,
        /// `Retry-After`, when the server sent one.
        retry_after: Option<Duration>,
    },
    /// The connection failed (refused, reset, closed early).
    Connection(String),
    /// The request took longer than the timeout.
    Timeout(Duration),
    /// The reply arrived but is not a usable completion (truncated, not JSON).
    BadReply(String),
}

impl Failure {
    /// Whether another try may succeed: 429, 5xx, connection errors,
    /// timeouts and malformed (e.g. truncated) replies. Other 4xx fail at once.
    pub fn retryable(&self) -> bool {
        match self {
            Failure::Status { status, .. } => *status == 429 || *status >= 500,
            Failure::Connection(_) | Failure::Timeout(_) | Failure::BadReply(_) => true,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status {
                status, message, ..
            } => write!(f, "HTTP {status}: {message}"),
            Failure::Connection(m) => write!(f, "connection failed: {m}"),
            Failure::Timeout(d) => write!(f, "no reply within {:.1} s", d.as_secs_f64()),
            Failure::BadReply(m) => write!(f, "malformed reply: {m}"),
        }
    }
}

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Longest delay (also caps `Retry-After`).
    pub max: Duration,
}

impl Backoff {
    /// The delay before retry number `retry` (0-based) after `failure`:
    /// the server's `Retry-After` when given (capped at `max`), else
    /// `initial * 2^retry` capped at `max`, scaled by a jitter factor in
    /// [0.5, 1.0] drawn from `unit` (a number in [0, 1)).
    pub fn delay(&self, retry: u32, failure: &Failure, unit: f64) -> Duration {
        if let Failure::Status {
            retry_after: Some(d),
            ..
        } = failure
        {
            return (*d).min(self.max);
        }
        let base = self.initial.as_secs_f64() * 2f64.powi(retry.min(30) as i32);
        let capped = base.min(self.max.as_secs_f64());
        secs(capped * (0.5 + 0.5 * unit.clamp(0.0, 1.0)))
    }
}

/// Parse a `Retry-After` header: delay seconds, or an HTTP date (relative to
/// `now`, seconds since the Unix epoch) in any of the three forms HTTP
/// allows: `Sun, 06 Nov 1994 08:49:37 GMT` (the usual one),
/// `Sunday, 06-Nov-94 08:49:37 GMT` (RFC 850) and `Sun Nov  6 08:49:37 1994`
/// (C's asctime). A date in the past means "now".
pub fn parse_retry_after(value: &str, now_unix: i64) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && (0.0..=1e9).contains(&secs))
            .then(|| Duration::from_secs_f64(secs));
    }
    let at = http_date(v)?;
    Some(Duration::from_secs(
        at.saturating_sub(now_unix).max(0) as u64
    ))
}

/// Seconds since the Unix epoch of an HTTP date (see [`parse_retry_after`]).
fn http_date(v: &str) -> Option<i64> {
    let cleaned = v.replace([',', '-'], " ");
    let t: Vec<&str> = cleaned.split_whitespace().collect();
    let month = |m: &str| -> Option<time::Month> {
        const NAMES: [&str; 12] = [
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ];
        let i = NAMES.iter().position(|n| m.eq_ignore_ascii_case(n))?;
        time::Month::try_from(i as u8 + 1).ok()
    };
    let (day, mon, year, clock) = match t.as_slice() {
        // IMF-fixdate and RFC 850 (two-digit year).
        [_, d, m, y, c, gmt] if gmt.eq_ignore_ascii_case("GMT") => {
            let y: i32 = y.parse().ok()?;
            let y = match (y, y < 100) {
                (y, true) if y < 70 => 2000 + y,
                (y, true) => 1900 + y,
                (y, false) => y,
            };
            (d.parse::<u8>().ok()?, month(m)?, y, *c)
        }
        // asctime.
        [_, m, d, c, y] => (d.parse::<u8>().ok()?, month(m)?, y.parse().ok()?, *c),
        _ => return None,
    };
    let hms: Vec<u8> = clock
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [h, mi, se] = hms.as_slice() else {
        return None;
    };
    let date = time::Date::from_calendar_date(year, mon, day).ok()?;
    let time = time::Time::from_hms(*h, *mi, *se).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// A jitter source: SplitMix64 over a seed from the clock and a counter.
#[derive(Debug)]
pub struct Jitter(std::sync::atomic::AtomicU64);

impl Default for Jitter {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5EED);
        Jitter(std::sync::atomic::AtomicU64::new(seed))
    }
}

impl Jitter {
    /// A number in [0, 1).
    pub fn unit(&self) -> f64 {
        let x = self
            .0
            .fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::Relaxed);
        let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: u16, ra: Option<u64>) -> Failure {
        Failure::Status {
            status: s,
            message: "m".into(),
            retry_after: ra.map(Duration::from_secs),
        }
    }

    #[test]
    fn which_failures_retry() {
        assert!(status(429, None).retryable());
        assert!(status(500, None).retryable());
        assert!(status(503, None).retryable());
        assert!(!status(400, None).retryable());
        assert!(!status(401, None).retryable());
        assert!(!status(404, None).retryable());
        assert!(Failure::Timeout(Duration::from_secs(1)).retryable());
        assert!(Failure::Connection("reset".into()).retryable());
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let b = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
        };
        let f = status(500, None);
        assert_eq!(
            b.delay(0, &f, 0.999_999),
            Duration::from_secs_f64(0.999_999_5)
        );
        assert_eq!(b.delay(0, &f, 0.0), Duration::from_millis(500));
        assert_eq!(b.delay(2, &f, 0.0), Duration::from_secs(2));
        assert_eq!(b.delay(9, &f, 0.0), Duration::from_secs(5));
        // Retry-After wins over the schedule, capped at max.
        assert_eq!(
            b.delay(0, &status(429, Some(3)), 0.0),
            Duration::from_secs(3)
        );
        assert_eq!(
            b.delay(0, &status(429, Some(99)), 0.0),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("2", 0), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 0.5 ", 0),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1_445_412_470),
            Some(Duration::from_secs(10))
        );
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(parse_retry_after("-1", 0), None);
        // The two older date forms HTTP allows, and a date in the past.
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", 1_445_412_470),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:28:00 2015", 1_445_412_470),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed Oct  1 07:28:00 2015", 1_443_684_470),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 2_000_000_000),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("Wed, 32 Oct 2015 07:28:00 GMT", 0), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 25:28:00 GMT", 0), None);
        // Absurd delays are not honoured (the backoff applies instead).
        assert_eq!(parse_retry_after("1e300", 0), None);
    }

    #[test]
    fn jitter_is_in_range_and_varies() {
        let j = Jitter::default();
        let xs: Vec<f64> = (0..100).map(|_| j.unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(xs.windows(2).any(|w| w[0] != w[1]));
    }
}
