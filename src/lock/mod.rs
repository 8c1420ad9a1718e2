//! The deploy lock: one S3 object per project, `s3://<model.bucket>/.mldeploy/<name>/lock`,
//! created with a conditional put (`If-None-Match: *`), so two deploys can never both hold it.
//!
//! The object says who holds it (host, user, CI run, command), since when, and until when. A held
//! lock makes `up`, `rollback` and `destroy` exit 4 naming the holder; an expired one is reported
//! as stale and broken only on request (`--force-unlock`). Breaking and releasing delete only the
//! object that was read (`If-Match` its ETag), so two runs breaking one stale lock cannot both go
//! on. Locks this process holds are recorded so that `main` can release them after an interrupt,
//! when the command's future has been dropped.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};

use crate::aws::call_error;
use crate::exit::{self, ExitStatus};

/// How long a lock stays valid when its holder dies without releasing it.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60 * 60);

pub fn lock_key(project: &str) -> String {
    format!(".mldeploy/{project}/lock")
}

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
    pub expires_at: u64,
    /// The holder's pid namespace (`/proc/self/ns/pid`), so that a pid is only looked up where it
    /// means the same process: containers may share a host name but not their pids.
    #[serde(default)]
    pub pid_namespace: Option<String>,
}

/// This process's pid namespace, like `pid:[4026531836]`, where /proc tells it.
fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

impl Holder {
    fn new(command: &str, ttl: Duration) -> Holder {
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
            expires_at: now + ttl.as_secs(),
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

/// A lock this process holds.
#[derive(Debug)]
pub struct DeployLock {
    s3: Client,
    bucket: String,
    key: String,
    pub holder: Holder,
}

/// Locks this process holds: client, bucket, key, holder id, expiry.
type Held = (Client, String, String, String, u64);
static HELD: Mutex<Vec<Held>> = Mutex::new(Vec::new());

/// Takes the project's lock, or exits 4 naming who holds it. With `force_unlock`, an existing
/// lock is deleted first (and said so) before one conditional attempt.
pub async fn acquire(
    s3: &Client,
    bucket: &str,
    project: &str,
    command: &str,
    ttl: Duration,
    force_unlock: bool,
) -> anyhow::Result<(DeployLock, Option<Holder>)> {
    let key = lock_key(project);
    let mut broken = None;
    if force_unlock {
        if let Some((bytes, etag)) = read_object(s3, bucket, &key).await? {
            // Only the object that was read: if another run broke it and took the lock meanwhile,
            // its lock stays, and this run is refused like any other.
            if !delete_if_unchanged(s3, bucket, &key, etag).await? {
                return Err(exit::error(
                    ExitStatus::Locked,
                    format!("the deploy lock s3://{bucket}/{key} changed while it was being broken: another run took it. Run again to see who holds it"),
                ));
            }
            // An object that was not a lock at all is broken too, with no holder to name.
            broken = serde_json::from_slice(&bytes).ok();
        }
    }
    let holder = Holder::new(command, ttl);
    let body = serde_json::to_vec_pretty(&holder)?;
    let put = s3
        .put_object()
        .bucket(bucket)
        .key(&key)
        .if_none_match("*")
        .content_type("application/json")
        .body(ByteStream::from(body))
        .send()
        .await;
    match put {
        Ok(_) => {
            if let Ok(mut held) = HELD.lock() {
                held.push((
                    s3.clone(),
                    bucket.to_string(),
                    key.clone(),
                    holder.id.clone(),
                    holder.expires_at,
                ));
            }
            Ok((
                DeployLock {
                    s3: s3.clone(),
                    bucket: bucket.to_string(),
                    key,
                    holder,
                },
                broken,
            ))
        }
        Err(e) if is_precondition_failed(&e) => {
            let location = format!("s3://{bucket}/{key}");
            Err(match read_holder(s3, bucket, &key).await? {
                Some(other) if other.is_gone_from_this_host() => exit::error(
                    ExitStatus::Locked,
                    format!(
                        "the deploy lock {location} is stale: held by {}, which ran on this host and is no longer running (it expires at {}). Pass --force-unlock to break it",
                        other.describe(),
                        utc(other.expires_at)
                    ),
                ),
                Some(other) if other.is_expired() => exit::error(
                    ExitStatus::Locked,
                    format!(
                        "the deploy lock {location} is stale: held by {}, expired at {}. If that run is gone, pass --force-unlock",
                        other.describe(),
                        utc(other.expires_at)
                    ),
                ),
                Some(other) => exit::error(
                    ExitStatus::Locked,
                    format!(
                        "another deploy holds the lock {location}: {}, until {}. Wait for it, or pass --force-unlock if it is gone",
                        other.describe(),
                        utc(other.expires_at)
                    ),
                ),
                None => exit::error(
                    ExitStatus::Locked,
                    format!("another deploy took the lock {location} at the same moment; try again"),
                ),
            })
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.code() == Some("NoSuchBucket")) => Err(exit::error(
            ExitStatus::Environment,
            format!("the model bucket {bucket} does not exist, so the deploy lock cannot be taken (model.bucket in mldeploy.toml)"),
        )),
        Err(e) => Err(call_error("s3:PutObject", e)),
    }
}

fn is_precondition_failed<E: ProvideErrorMetadata, R>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> bool {
    e.as_service_error()
        .is_some_and(|s| s.code() == Some("PreconditionFailed"))
}

/// The current holder, or None when there is no lock.
pub async fn read_holder(s3: &Client, bucket: &str, key: &str) -> anyhow::Result<Option<Holder>> {
    Ok(read_lock(s3, bucket, key).await?.map(|(holder, _)| holder))
}

/// The current holder and the lock object's ETag, or None when there is no lock. An object that
/// is not a lock is reported (exit 4).
async fn read_lock(
    s3: &Client,
    bucket: &str,
    key: &str,
) -> anyhow::Result<Option<(Holder, Option<String>)>> {
    let Some((bytes, etag)) = read_object(s3, bucket, key).await? else {
        return Ok(None);
    };
    let holder = serde_json::from_slice(&bytes).map_err(|e| {
        exit::error(
            ExitStatus::Locked,
            format!("s3://{bucket}/{key} exists but is not an mldeploy lock ({e}); remove it or pass --force-unlock"),
        )
    })?;
    Ok(Some((holder, etag)))
}

/// The lock object's bytes and ETag, or None when there is none.
async fn read_object(
    s3: &Client,
    bucket: &str,
    key: &str,
) -> anyhow::Result<Option<(bytes::Bytes, Option<String>)>> {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => {
            let etag = out.e_tag.clone();
            Ok(Some((out.body.collect().await?.into_bytes(), etag)))
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
        Err(e) => Err(call_error("s3:GetObject", e)),
    }
}

/// Deletes the lock object only if it is still the one read (`If-Match` its ETag). True when it
/// is gone now (deleted, or already gone); false when another run replaced it meanwhile.
async fn delete_if_unchanged(
    s3: &Client,
    bucket: &str,
    key: &str,
    etag: Option<String>,
) -> anyhow::Result<bool> {
    match s3
        .delete_object()
        .bucket(bucket)
        .key(key)
        .set_if_match(etag)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if is_precondition_failed(&e) => Ok(false),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("NoSuchKey") => Ok(true),
        Err(e) => Err(call_error("s3:DeleteObject", e)),
    }
}

impl DeployLock {
    /// Releases the lock if it is still this process's. When that fails, the lock stays recorded,
    /// so that `main` tries once more and says what became of it.
    pub async fn release(self) -> anyhow::Result<()> {
        release_if_ours(&self.s3, &self.bucket, &self.key, &self.holder.id).await?;
        forget(&self.key, &self.holder.id);
        Ok(())
    }
}

async fn release_if_ours(s3: &Client, bucket: &str, key: &str, id: &str) -> anyhow::Result<()> {
    match read_lock(s3, bucket, key).await? {
        // Conditional, so a lock another run took after breaking ours is never deleted.
        Some((current, etag)) if current.id == id => {
            delete_if_unchanged(s3, bucket, key, etag).await?;
            Ok(())
        }
        _ => Ok(()), // broken by --force-unlock elsewhere, or already gone: not ours to delete
    }
}

fn forget(key: &str, id: &str) {
    if let Ok(mut held) = HELD.lock() {
        held.retain(|(_, _, k, i, _)| !(k == key && i == id));
    }
}

/// What became of a lock this process still held when it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    /// Released: `s3://bucket/key`.
    Released(String),
    /// Could not be released; it stays until `expires_at` or `--force-unlock`.
    Kept {
        location: String,
        expires_at: u64,
        reason: String,
    },
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Leftover::Released(location) => write!(f, "released the deploy lock {location}"),
            Leftover::Kept {
                location,
                expires_at,
                reason,
            } => write!(
                f,
                "could not release the deploy lock {location} ({reason}); it expires at {}, and the next run on this host reports it as stale: pass --force-unlock then",
                utc(*expires_at)
            ),
        }
    }
}

/// How long releasing one lock may take at exit, retries included.
const RELEASE_WAIT: Duration = Duration::from_secs(8);

/// Releases every lock this process still holds (after an interrupt or an error that skipped the
/// normal release), and says what became of each.
pub async fn release_all_held() -> Vec<Leftover> {
    let held: Vec<_> = HELD
        .lock()
        .map(|mut h| std::mem::take(&mut *h))
        .unwrap_or_default();
    let mut leftovers = Vec::new();
    for (s3, bucket, key, id, expires_at) in held {
        let location = format!("s3://{bucket}/{key}");
        let outcome =
            tokio::time::timeout(RELEASE_WAIT, release_if_ours(&s3, &bucket, &key, &id)).await;
        leftovers.push(match outcome {
            Ok(Ok(())) => Leftover::Released(location),
            Ok(Err(e)) => Leftover::Kept {
                location,
                expires_at,
                reason: format!("{e}"),
            },
            Err(_) => Leftover::Kept {
                location,
                expires_at,
                reason: format!("AWS did not answer within {} s", RELEASE_WAIT.as_secs()),
            },
        });
    }
    leftovers
}

fn unix_now() -> u64 {
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
fn utc(secs: u64) -> String {
    aws_smithy_types::DateTime::from_secs(secs as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| secs.to_string())
}

#[cfg(test)]
mod tests;
