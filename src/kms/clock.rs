//! The KMS layer's clock: wall time. A build with the `test-clock` feature (the test
//! suite's) moves it by `KMSTOKEN_CLOCK_OFFSET` seconds, so that deletion windows and
//! rotation periods can be crossed without waiting; no other build reads that variable.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const DAY: i64 = 86_400;

/// Seconds since the epoch, as the KMS layer sees them.
pub fn now() -> i64 {
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    wall.saturating_add(offset())
}

#[cfg(feature = "test-clock")]
fn offset() -> i64 {
    std::env::var("KMSTOKEN_CLOCK_OFFSET").ok().and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(0)
}

#[cfg(not(feature = "test-clock"))]
fn offset() -> i64 {
    0
}

/// ISO-8601 UTC (`2026-11-24T00:00:00Z`), as CloudTrail and the aws CLI print times.
pub fn iso8601(secs: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc() {
        assert_eq!(super::iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::iso8601(1_795_478_400), "2026-11-24T00:00:00Z");
    }
}
