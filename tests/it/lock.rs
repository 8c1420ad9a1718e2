//! The deploy lock through the binary: where it lives, its lease, and breaking it by its id.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::*;

/// Writes a lock held by a run on another host whose lease runs out `secs` from now.
pub fn lock_from_elsewhere(bucket: &str, project: &str, id: &str, secs: u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let holder = serde_json::json!({
        "id": id, "host": "runner-elsewhere", "user": "ci", "pid": 4242, "command": "up",
        "ci_run": "a CI job", "acquired_at": now, "expires_at": now + secs,
        "pid_namespace": "pid:[1]"
    });
    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), holder.to_string()).unwrap();
    let key = format!(".mldeploy/{project}/lock");
    aws(&[
        "s3api",
        "put-object",
        "--bucket",
        bucket,
        "--key",
        &key,
        "--body",
        body.path().to_str().unwrap(),
    ])
    .expect_code(0);
}

#[test]
fn a_lock_left_by_a_run_on_another_host_goes_stale_after_its_lease_and_breaks_only_by_its_id() {
    let (project, bucket) = deployable("it-lease");
    lock_from_elsewhere(&bucket, &project.name, "5f-10-77", 6);

    // Within its lease it is held: another host's process cannot be looked up from here.
    let held = project.mldeploy(&["up"]);
    held.expect_code(4);
    assert_says(
        &held.stderr,
        &[
            "another deploy holds the lock",
            "ci@runner-elsewhere",
            "lease renewed until",
            "--force-unlock 5f-10-77",
        ],
    );

    std::thread::sleep(Duration::from_secs(7));
    let stale = project.mldeploy(&["up"]);
    stale.expect_code(4);
    assert_says(
        &stale.stderr,
        &["is stale", "lease ran out", "--force-unlock 5f-10-77"],
    );

    // Another id breaks nothing.
    let wrong = project.mldeploy(&["up", "--force-unlock", "5f-10-78"]);
    wrong.expect_code(4);
    assert_says(
        &wrong.stderr,
        &["nothing was broken", "has the id 5f-10-77"],
    );
    assert!(lock_exists(&bucket, &project.name));

    let id = lock_id_in(&stale.stderr);
    let run = project.mldeploy(&["up", "--force-unlock", &id]);
    run.expect_code(0);
    assert_says(
        &run.stderr,
        &["broke the deploy lock held by ci@runner-elsewhere"],
    );
    assert!(
        !lock_exists(&bucket, &project.name),
        "released after the up"
    );
}

#[test]
fn lock_bucket_puts_the_lock_outside_the_model_bucket() {
    let (project, models) = deployable("it-lockbucket");
    let locks = bucket_with(&[]);
    let config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    project.write(
        "mldeploy.toml",
        &format!("{config}[lock]\nbucket = \"{locks}\"\n"),
    );
    let run = interrupt_during_build(&project, "up", || {
        assert!(
            lock_exists(&locks, &project.name),
            "the lock is in lock.bucket"
        );
        assert!(
            !lock_exists(&models, &project.name),
            "and not in the model bucket"
        );
    });
    assert_eq!(run.code, Some(130), "{}", run.stderr);
    assert!(
        !lock_exists(&locks, &project.name),
        "released at the interrupt"
    );
}
