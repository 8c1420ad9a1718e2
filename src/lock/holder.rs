//! Who holds a deploy lock, stored as the lock object's JSON body: host, user, process, CI run,
//! command, since when and until when its lease runs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Who holds the lock; stored as the object's JSON body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    /// Unique per acquisition, so a release never deletes someone else's lock.
    pub id: String,
    pub host: String,
    pub user: String,
    pub pid: u32,
    pub command: String,
    pub ci_run: Option<String>,
    /// Seconds since the Unix epoch.
    pub acquired_at: u64,
    /// When the lease runs out unless the holder renews it (seconds since the Unix epoch).
    pub expires_at: u64,
    /// The holder's pid namespace (`/proc/self/ns/pid`), so that a pid is only looked up where it
    /// means the same process: containers may share a host name but not their pids.
    #[serde(default)]
    pub pid_namespace: Option<String>,
}

/// This process's pid namespace, like `pid:[4026531836]`, where /proc tells it.
pub(super) fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

impl Holder {
    pub(super) fn new(command: &str, lease: Duration) -> Holder {
        let now = unix_now();
        Holder {
            id: format!("{:x}-{:x}-{}", now, std::process::id(), nanos()),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            user: std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| "unknown".into()),
            pid: std::process::id(),
            command: command.to_string(),
            ci_run: ci_run(),
            acquired_at: now,
            expires_at: now + lease.as_secs(),
            pid_namespace: pid_namespace(),
        }
    }

    pub fn is_expired(&self) -> bool {
        unix_now() >= self.expires_at
    }

    /// Whether the holder ran on this host, in this pid namespace, and its process is gone
    /// (killed, or lost AWS before it could release): then the lock is stale before it expires.
    pub fn is_gone_from_this_host(&self) -> bool {
        let here = gethostname::gethostname().to_string_lossy().into_owned();
        if self.host != here
            || self.pid == std::process::id()
            || self.pid_namespace.is_none()
            || self.pid_namespace != pid_namespace()
        {
            return false;
        }
        // A live process with that pid that is not mldeploy is a reused pid: the holder is gone.
        match std::fs::read_to_string(format!("/proc/{}/cmdline", self.pid)) {
            Ok(cmdline) => !cmdline.contains("mldeploy"),
            Err(_) => std::path::Path::new("/proc/self").exists(),
        }
    }

    /// "alice@build-7 (`mldeploy up`, GitHub Actions run 42) since 12:01:07 UTC".
    pub fn describe(&self) -> String {
        let ci = self
            .ci_run
            .as_deref()
            .map(|c| format!(", {c}"))
            .unwrap_or_default();
        format!(
            "{}@{} (pid {}, `mldeploy {}`{ci}) since {}",
            self.user,
            self.host,
            self.pid,
            self.command,
            utc(self.acquired_at)
        )
    }
}

/// The CI run this process belongs to, from the variables common CI systems set.
pub fn ci_run() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(repo), Some(run)) = (var("GITHUB_REPOSITORY"), var("GITHUB_RUN_ID")) {
        return Some(format!("GitHub Actions {repo} run {run}"));
    }
    if let Some(url) = var("CI_JOB_URL")
        .or_else(|| var("BUILDKITE_BUILD_URL"))
        .or_else(|| var("BUILD_URL"))
    {
        return Some(format!("CI job {url}"));
    }
    var("CI").map(|_| "a CI job".to_string())
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn nanos() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// RFC 3339 in UTC.
pub(super) fn utc(secs: u64) -> String {
    aws_smithy_types::DateTime::from_secs(secs as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| secs.to_string())
}
