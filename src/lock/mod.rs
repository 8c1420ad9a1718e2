//! The deploy lock: one S3 object per project, `s3://<lock bucket>/.mldeploy/<name>/lock` (the
//! lock bucket is `[lock] bucket`, else `model.bucket`), created with a conditional put
//! (`If-None-Match: *`), so two deploys can never both hold it.
//!
//! The object says who holds it (host, user, CI run, command), since when, and until when its
//! lease runs. The holder renews the lease while it works ([`heartbeat`]), so a lock whose run
//! died goes stale within one lease wherever that run was. A held lock makes `up`, `rollback`
//! and `destroy` exit 4 naming the holder and the lock's id; a stale one is broken only on
//! request, by id (`--force-unlock <id>`, as Terraform's force-unlock). Breaking and releasing
//! delete only the object that was read (`If-Match` its ETag), so two runs breaking one stale
//! lock cannot both go on. Locks this process holds are recorded so that `main` can release them
//! after an interrupt, when the command's future has been dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::aws::call_error;
use crate::exit::{self, ExitStatus};

mod heartbeat;
mod holder;
pub use holder::{ci_run, Holder};
use holder::{unix_now, utc};

/// How long a lock stays valid after its holder's last renewal: a run that dies without
/// releasing leaves a lock that is stale this long after.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

pub fn lock_key(project: &str) -> String {
    format!(".mldeploy/{project}/lock")
}

/// What the holder's heartbeat and `main` share about a held lock.
#[derive(Debug, Default)]
struct Lease {
    /// Seconds since the Unix epoch when the lease runs out, as last renewed.
    expires_at: AtomicU64,
    /// Another run broke the lock (or it vanished) while this one held it.
    lost: AtomicBool,
}

/// A lock this process holds; its lease is renewed until it is released.
#[derive(Debug)]
pub struct DeployLock {
    s3: Client,
    bucket: String,
    key: String,
    pub holder: Holder,
    lease: Arc<Lease>,
    heartbeat: tokio::task::AbortHandle,
}

/// A lock this process holds, for `main`: where it is, its id, its lease and its heartbeat.
struct Held {
    s3: Client,
    bucket: String,
    key: String,
    id: String,
    lease: Arc<Lease>,
    heartbeat: tokio::task::AbortHandle,
}
static HELD: Mutex<Vec<Held>> = Mutex::new(Vec::new());

/// Takes the project's lock, or exits 4 naming who holds it. With `force_unlock`, the lock whose
/// id that is is deleted first (and its holder returned, to be named) before one conditional
/// attempt; a lock with another id is left alone and refused.
pub async fn acquire(
    s3: &Client,
    bucket: &str,
    project: &str,
    command: &str,
    lease: Duration,
    force_unlock: Option<&str>,
) -> anyhow::Result<(DeployLock, Option<Holder>)> {
    let key = lock_key(project);
    let location = format!("s3://{bucket}/{key}");
    let mut broken = None;
    if let Some(wanted) = force_unlock {
        if let Some((bytes, etag)) = read_object(s3, bucket, &key).await? {
            let holder: Option<Holder> = serde_json::from_slice(&bytes).ok();
            let id = match &holder {
                Some(h) => h.id.clone(),
                None => object_id(etag.as_deref()),
            };
            if id != wanted {
                let who = holder
                    .as_ref()
                    .map(Holder::describe)
                    .unwrap_or_else(|| "an object that is not an mldeploy lock".into());
                return Err(exit::error(
                    ExitStatus::Locked,
                    format!("--force-unlock {wanted}: the deploy lock {location} has the id {id} (held by {who}), so nothing was broken. Check that run is gone, then pass --force-unlock {id}"),
                ));
            }
            // Only the object that was read: if another run broke it and took the lock meanwhile,
            // its lock stays, and this run is refused like any other.
            if !delete_if_unchanged(s3, bucket, &key, etag).await? {
                return Err(exit::error(
                    ExitStatus::Locked,
                    format!("the deploy lock {location} changed while it was being broken: another run took it. Run again to see who holds it"),
                ));
            }
            broken = holder;
        }
    }
    let holder = Holder::new(command, lease);
    let put = s3
        .put_object()
        .bucket(bucket)
        .key(&key)
        .if_none_match("*")
        .content_type("application/json")
        .body(ByteStream::from(serde_json::to_vec_pretty(&holder)?))
        .send()
        .await;
    match put {
        Ok(out) => {
            let state = Arc::new(Lease::default());
            state.expires_at.store(holder.expires_at, Ordering::SeqCst);
            let beat = heartbeat::start(
                s3.clone(),
                bucket.to_string(),
                key.clone(),
                holder.clone(),
                out.e_tag,
                lease,
                state.clone(),
            );
            if let Ok(mut held) = HELD.lock() {
                held.push(Held {
                    s3: s3.clone(),
                    bucket: bucket.to_string(),
                    key: key.clone(),
                    id: holder.id.clone(),
                    lease: state.clone(),
                    heartbeat: beat.clone(),
                });
            }
            Ok((
                DeployLock {
                    s3: s3.clone(),
                    bucket: bucket.to_string(),
                    key,
                    holder,
                    lease: state,
                    heartbeat: beat,
                },
                broken,
            ))
        }
        Err(e) if is_precondition_failed(&e) => Err(refusal(s3, bucket, &key).await?),
        Err(e) if e.as_service_error().is_some_and(|s| s.code() == Some("NoSuchBucket")) => Err(exit::error(
            ExitStatus::Environment,
            format!("the lock bucket {bucket} does not exist, so the deploy lock cannot be taken (lock.bucket, else model.bucket, in mldeploy.toml)"),
        )),
        Err(e) => Err(call_error("s3:PutObject", e)),
    }
}

/// Whether the lock's bucket exists (S3 answers HeadBucket with 404 for one that does not).
pub async fn bucket_exists(s3: &Client, bucket: &str) -> anyhow::Result<bool> {
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
        Err(e) => Err(call_error("s3:HeadBucket", e)),
    }
}

/// Why the lock cannot be taken: who holds it, and whether it is stale.
async fn refusal(s3: &Client, bucket: &str, key: &str) -> anyhow::Result<anyhow::Error> {
    let location = format!("s3://{bucket}/{key}");
    Ok(match read_lock(s3, bucket, key).await? {
        Some((other, _)) if other.is_gone_from_this_host() => exit::error(
            ExitStatus::Locked,
            format!(
                "the deploy lock {location} is stale: held by {}, which ran on this host and is no longer running. Pass --force-unlock {} to break it",
                other.describe(),
                other.id
            ),
        ),
        Some((other, _)) if other.is_expired() => exit::error(
            ExitStatus::Locked,
            format!(
                "the deploy lock {location} is stale: held by {}, whose lease ran out at {} (that run stopped renewing it). If it is gone, pass --force-unlock {}",
                other.describe(),
                utc(other.expires_at),
                other.id
            ),
        ),
        Some((other, _)) => exit::error(
            ExitStatus::Locked,
            format!(
                "another deploy holds the lock {location}: {}, lease renewed until {}. Wait for it; if that run is gone, its lease runs out by then and --force-unlock {} breaks it",
                other.describe(),
                utc(other.expires_at),
                other.id
            ),
        ),
        None => exit::error(
            ExitStatus::Locked,
            format!("another deploy took the lock {location} at the same moment; try again"),
        ),
    })
}

/// The id `--force-unlock` takes for an object that is not a lock: its ETag, unquoted.
fn object_id(etag: Option<&str>) -> String {
    etag.unwrap_or("-").trim_matches('"').to_string()
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
            format!(
                "s3://{bucket}/{key} exists but is not an mldeploy lock ({e}); remove it, or pass --force-unlock {}",
                object_id(etag.as_deref())
            ),
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
    /// Stops renewing the lease and releases the lock if it is still this process's. Returns a
    /// warning when another run broke it while this one held it. When releasing fails, the lock
    /// stays recorded, so that `main` tries once more and says what became of it.
    pub async fn release(self) -> anyhow::Result<Option<String>> {
        self.heartbeat.abort();
        release_if_ours(&self.s3, &self.bucket, &self.key, &self.holder.id).await?;
        forget(&self.key, &self.holder.id);
        Ok(self.lease.lost.load(Ordering::SeqCst).then(|| {
            format!(
                "the deploy lock s3://{}/{} was broken by another run while this one held it (with --force-unlock {}): check what that run changed",
                self.bucket, self.key, self.holder.id
            )
        }))
    }
}

/// Deletes the lock if it is still `id`'s. A renewal that was in flight when the heartbeat
/// stopped may land between the read and the delete: then it is read again.
async fn release_if_ours(s3: &Client, bucket: &str, key: &str, id: &str) -> anyhow::Result<()> {
    for _ in 0..3 {
        match read_lock(s3, bucket, key).await? {
            // Conditional, so a lock another run took after breaking ours is never deleted.
            Some((current, etag)) if current.id == id => {
                if delete_if_unchanged(s3, bucket, key, etag).await? {
                    return Ok(());
                }
            }
            _ => return Ok(()), // broken by --force-unlock elsewhere, or already gone
        }
    }
    anyhow::bail!("the lock kept changing while it was being released")
}

fn forget(key: &str, id: &str) {
    if let Ok(mut held) = HELD.lock() {
        held.retain(|h| !(h.key == key && h.id == id));
    }
}

/// What became of a lock this process still held when it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    /// Released: `s3://bucket/key`.
    Released(String),
    /// Could not be released; it goes stale when its lease runs out at `expires_at`.
    Kept {
        location: String,
        id: String,
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
                id,
                expires_at,
                reason,
            } => write!(
                f,
                "could not release the deploy lock {location} ({reason}); its lease runs out at {}, and the next run reports it as stale then (on this host, at once): pass --force-unlock {id}",
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
    let held: Vec<Held> = HELD
        .lock()
        .map(|mut h| std::mem::take(&mut *h))
        .unwrap_or_default();
    let mut leftovers = Vec::new();
    for h in held {
        h.heartbeat.abort();
        let location = format!("s3://{}/{}", h.bucket, h.key);
        let outcome = tokio::time::timeout(
            RELEASE_WAIT,
            release_if_ours(&h.s3, &h.bucket, &h.key, &h.id),
        )
        .await;
        let kept = |reason: String| Leftover::Kept {
            location: location.clone(),
            id: h.id.clone(),
            expires_at: h.lease.expires_at.load(Ordering::SeqCst),
            reason,
        };
        leftovers.push(match outcome {
            Ok(Ok(())) => Leftover::Released(location.clone()),
            Ok(Err(e)) => kept(format!("{e}")),
            Err(_) => kept(format!(
                "AWS did not answer within {} s",
                RELEASE_WAIT.as_secs()
            )),
        });
    }
    leftovers
}

#[cfg(test)]
mod tests;
