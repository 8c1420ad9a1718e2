//! How often mldeploy looks again at something AWS is still doing (a rollout, a delete, a
//! certificate): every 2 s, as AWS's own waiters look no faster. The sandbox, whose clock runs
//! faster than AWS's, sets `MLDEPLOY_POLL_SECONDS` so that mldeploy sees its scaled events; it
//! is not a setting for users.

use std::time::Duration;

/// The pause between two looks.
pub fn interval() -> Duration {
    std::env::var("MLDEPLOY_POLL_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 60.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(2))
}
