//! Model versions and the deploy lock against moto's S3.

use std::time::Duration;

use mldeploy::aws::Aws;
use mldeploy::exit::{status_of, ExitStatus};
use mldeploy::{lock, model};

use crate::support::{bucket_with, require_sandbox, unique_name};

async fn s3() -> aws_sdk_s3::Client {
    require_sandbox();
    Aws::load(None, None, None).await.unwrap().s3()
}

const TEMPLATE: &str = "mlflow/models/housing/{version}";

#[tokio::test]
async fn a_version_exists_only_with_its_mlmodel_file() {
    let s3 = s3().await;
    let bucket = bucket_with(&[
        "mlflow/models/housing/3/MLmodel",
        "mlflow/models/housing/10/MLmodel",
        "mlflow/models/housing/10/model.xgb",
        "mlflow/models/housing/7/model.xgb",
        "mlflow/models/other/11/MLmodel",
    ]);
    let found = model::require_version(&s3, &bucket, TEMPLATE, "10")
        .await
        .unwrap();
    assert_eq!(found.path, "mlflow/models/housing/10");

    let versions = model::list_versions(&s3, &bucket, TEMPLATE).await.unwrap();
    let names: Vec<_> = versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(names, ["10", "3"], "newest first, and 7 has no MLmodel");

    let err = model::require_version(&s3, &bucket, TEMPLATE, "7")
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), ExitStatus::Usage);
    let text = format!("{err:#}");
    assert!(
        text.contains(&format!(
            "s3://{bucket}/mlflow/models/housing/7/MLmodel is missing"
        )),
        "{text}"
    );
    assert!(
        text.contains("versions present (newest first): 10, 3"),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_model_bucket_is_an_environment_error() {
    let s3 = s3().await;
    let err = model::require_version(&s3, &unique_name("it-nobucket"), TEMPLATE, "1")
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), ExitStatus::Environment);
    assert!(
        format!("{err:#}").contains("does not exist (model.bucket"),
        "{err:#}"
    );
}

#[tokio::test]
async fn a_held_lock_refuses_a_second_deploy_naming_the_holder() {
    let s3 = s3().await;
    let bucket = bucket_with(&[]);
    let (held, broken) = lock::acquire(&s3, &bucket, "housing", "up", lock::DEFAULT_LEASE, None)
        .await
        .unwrap();
    assert!(broken.is_none());

    let err = lock::acquire(
        &s3,
        &bucket,
        "housing",
        "rollback",
        lock::DEFAULT_LEASE,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(status_of(&err), ExitStatus::Locked);
    let text = format!("{err:#}");
    assert!(text.contains("another deploy holds the lock"), "{text}");
    assert!(
        text.contains(&held.holder.host) && text.contains("`mldeploy up`"),
        "{text}"
    );

    // Another project's lock is independent.
    let (other, _) = lock::acquire(&s3, &bucket, "fraud", "up", lock::DEFAULT_LEASE, None)
        .await
        .unwrap();
    other.release().await.unwrap();

    held.release().await.unwrap();
    let (again, _) = lock::acquire(&s3, &bucket, "housing", "up", lock::DEFAULT_LEASE, None)
        .await
        .unwrap();
    again.release().await.unwrap();
    assert!(lock::read_holder(&s3, &bucket, &lock::lock_key("housing"))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn of_many_simultaneous_deploys_exactly_one_gets_the_lock() {
    let s3 = s3().await;
    let bucket = bucket_with(&[]);
    let attempts = (0..8).map(|_| {
        let (s3, bucket) = (s3.clone(), bucket.clone());
        tokio::spawn(async move {
            lock::acquire(&s3, &bucket, "race", "up", lock::DEFAULT_LEASE, None).await
        })
    });
    let mut won = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => won += 1,
            Err(e) => assert_eq!(status_of(&e), ExitStatus::Locked, "{e:#}"),
        }
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn a_stale_lock_is_reported_and_broken_only_on_request() {
    let s3 = s3().await;
    let bucket = bucket_with(&[]);
    let (stale, _) = lock::acquire(&s3, &bucket, "housing", "up", Duration::from_secs(0), None)
        .await
        .unwrap();
    let err = lock::acquire(&s3, &bucket, "housing", "up", lock::DEFAULT_LEASE, None)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), ExitStatus::Locked);
    assert!(
        format!("{err:#}").contains("is stale") && format!("{err:#}").contains("--force-unlock"),
        "{err:#}"
    );

    // Only by its id: another id breaks nothing.
    let err = lock::acquire(
        &s3,
        &bucket,
        "housing",
        "up",
        lock::DEFAULT_LEASE,
        Some("0-0-0"),
    )
    .await
    .unwrap_err();
    assert_eq!(status_of(&err), ExitStatus::Locked);
    let text = format!("{err:#}");
    assert!(
        text.contains("nothing was broken") && text.contains(&stale.holder.id),
        "{text}"
    );
    let (mine, broken) = lock::acquire(
        &s3,
        &bucket,
        "housing",
        "up",
        lock::DEFAULT_LEASE,
        Some(&stale.holder.id),
    )
    .await
    .unwrap();
    assert!(
        broken.is_some(),
        "the broken holder is returned so it can be reported"
    );
    let current = lock::read_holder(&s3, &bucket, &lock::lock_key("housing"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.id, mine.holder.id);
    mine.release().await.unwrap();
    assert!(lock::read_holder(&s3, &bucket, &lock::lock_key("housing"))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn force_unlock_breaks_an_object_that_is_not_a_lock() {
    let s3 = s3().await;
    let bucket = bucket_with(&[]);
    let put = s3
        .put_object()
        .bucket(&bucket)
        .key(lock::lock_key("junk"))
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"not json"))
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().trim_matches('"').to_string();
    let err = lock::acquire(&s3, &bucket, "junk", "up", lock::DEFAULT_LEASE, None)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("is not an mldeploy lock")
            && format!("{err:#}").contains(&format!("--force-unlock {etag}")),
        "{err:#}"
    );
    let (held, broken) =
        lock::acquire(&s3, &bucket, "junk", "up", lock::DEFAULT_LEASE, Some(&etag))
            .await
            .unwrap();
    assert!(broken.is_none(), "no holder to name");
    held.release().await.unwrap();
}

#[tokio::test]
async fn a_held_lock_is_renewed_while_held_and_never_after_release() {
    let s3 = s3().await;
    let bucket = bucket_with(&[]);
    let key = lock::lock_key("beat");
    let lease = Duration::from_secs(4);
    let (held, _) = lock::acquire(&s3, &bucket, "beat", "up", lease, None)
        .await
        .unwrap();
    let first = held.holder.expires_at;
    // Past the first lease: without renewals it would be stale by now.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let now = lock::read_holder(&s3, &bucket, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.id, held.holder.id);
    assert!(
        now.expires_at > first + 1,
        "renewed: {} then {}",
        first,
        now.expires_at
    );
    let err = lock::acquire(&s3, &bucket, "beat", "rollback", lease, None)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("another deploy holds"),
        "{err:#}"
    );

    assert_eq!(held.release().await.unwrap(), None, "nobody broke it");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        lock::read_holder(&s3, &bucket, &key)
            .await
            .unwrap()
            .is_none(),
        "no renewal brought the released lock back"
    );
}

#[tokio::test]
async fn a_lock_broken_while_held_is_said_so_at_release_and_the_new_holder_keeps_it() {
    let s3 = s3().await;
    let bucket = bucket_with(&[]);
    let key = lock::lock_key("broken");
    let lease = Duration::from_secs(4);
    let (first, _) = lock::acquire(&s3, &bucket, "broken", "up", lease, None)
        .await
        .unwrap();
    let (second, broke) =
        lock::acquire(&s3, &bucket, "broken", "up", lease, Some(&first.holder.id))
            .await
            .unwrap();
    assert_eq!(broke.map(|h| h.id), Some(first.holder.id.clone()));
    // The first run's next renewal finds the lock is not the one it wrote.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let warning = first.release().await.unwrap().expect("a warning");
    assert!(warning.contains("was broken by another run"), "{warning}");
    let current = lock::read_holder(&s3, &bucket, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        current.id, second.holder.id,
        "the first run left the second's lock alone"
    );
    second.release().await.unwrap();
}
