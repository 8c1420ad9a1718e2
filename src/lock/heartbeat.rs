//! The held lock's heartbeat: every quarter of the lease, the lock object is rewritten with its
//! lease pushed out, conditionally on being the object this run last wrote (`If-Match` its ETag:
//! S3's conditional writes, https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html,
//! answer 412 when the ETag differs and 404 when the object is gone), so a lock another run
//! broke, or one already released, is never written again. A renewal that fails for a moment is tried again at the next beat: three
//! more beats fit in the lease before the lock would go stale.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

use super::{is_precondition_failed, unix_now, Holder, Lease};

/// The shortest pause between renewals, whatever the lease.
const MIN_BEAT: Duration = Duration::from_secs(1);

pub(super) fn start(
    s3: Client,
    bucket: String,
    key: String,
    mut holder: Holder,
    mut etag: Option<String>,
    lease: Duration,
    state: Arc<Lease>,
) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep((lease / 4).max(MIN_BEAT)).await;
            holder.expires_at = unix_now() + lease.as_secs();
            let Ok(body) = serde_json::to_vec_pretty(&holder) else {
                return;
            };
            let put = s3
                .put_object()
                .bucket(&bucket)
                .key(&key)
                .set_if_match(etag.clone())
                .content_type("application/json")
                .body(ByteStream::from(body))
                .send()
                .await;
            match put {
                Ok(out) => {
                    etag = out.e_tag;
                    state.expires_at.store(holder.expires_at, Ordering::SeqCst);
                }
                // Replaced (broken and taken) or gone (broken, or released): not ours any more.
                Err(e)
                    if is_precondition_failed(&e)
                        || e.as_service_error()
                            .is_some_and(|s| s.meta().code() == Some("NoSuchKey")) =>
                {
                    state.lost.store(true, Ordering::SeqCst);
                    return;
                }
                Err(_) => continue,
            }
        }
    })
    .abort_handle()
}
