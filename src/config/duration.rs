//! Durations as mldeploy.toml and the command line write them: `90` (seconds), `90s`, `15m`,
//! `1h`, `1m30s`, in whole seconds. Here, with the configuration, so `cli` reads config's parsing
//! and not the other way round.

/// Whole seconds in `90` (seconds), `90s`, `15m`, `1h`, `1m30s` or `1h 30m` (humantime's forms,
/// which is how mldeploy prints durations); None for anything else or a fraction of a second.
pub fn whole_seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let d = humantime::parse_duration(text).ok()?;
    (d.subsec_nanos() == 0).then_some(d.as_secs())
}

/// `90`, `90s`, `15m`, `1h`, `1m30s` -> a duration of whole seconds, more than none.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let seconds = whole_seconds(text).ok_or_else(|| {
        format!(
            "{:?} is not a duration like 90s, 15m, 1h or 1m30s",
            text.trim()
        )
    })?;
    if seconds == 0 {
        return Err("the timeout must be more than 0".into());
    }
    Ok(std::time::Duration::from_secs(seconds))
}
