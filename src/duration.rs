//! Durations from settings given in seconds, shared by the modules that
//! read such settings (the LLM backends' timeouts and backoff, the
//! evaluators' time limits). It depends on nothing else in seki.

use std::time::Duration;

/// A number of seconds from a setting as a [`Duration`]: negative and NaN
/// give zero, and anything over about 30 years (which `Duration` or an
/// `Instant` plus it could not hold) saturates there.
pub fn secs(x: f64) -> Duration {
    const MAX: f64 = 1e9;
    Duration::try_from_secs_f64(if x.is_nan() { 0.0 } else { x.clamp(0.0, MAX) })
        .unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_in_seconds_never_panic() {
        assert_eq!(secs(1.5), Duration::from_millis(1500));
        assert_eq!(secs(-3.0), Duration::ZERO);
        assert_eq!(secs(f64::NAN), Duration::ZERO);
        assert_eq!(secs(1e300), Duration::from_secs(1_000_000_000));
        assert_eq!(secs(f64::INFINITY), Duration::from_secs(1_000_000_000));
        // An instant plus the longest such duration is representable.
        assert!(std::time::Instant::now().checked_add(secs(1e300)).is_some());
    }
}
