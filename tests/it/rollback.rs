//! `rollback`, `status` and `history` end to end against the sandbox, whose ECS runs the tasks
//! as containers behind a load balancer that answers.

use crate::support::*;

fn status(project: &Project) -> (i32, serde_json::Value) {
    let run = project.mldeploy(&["status", "--output", "json"]);
    (run.code, run.json())
}

fn history(project: &Project) -> serde_json::Value {
    let run = project.mldeploy(&["history", "--output", "json"]);
    run.expect_code(0);
    run.json()
}

/// (revision, model version, serving) of each release, newest first.
fn releases(project: &Project) -> Vec<(i64, String, bool)> {
    history(project)["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["revision"].as_i64().unwrap(),
                r["model_version"].as_str().unwrap_or("-").to_string(),
                r["serving"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn rollback_to_a_model_version_serves_it_and_status_and_history_say_so() {
    let (project, bucket) = deployable("it-rbversion");
    project.mldeploy(&["up"]).expect_code(0);
    let name = &project.name;

    let run = project.mldeploy(&["rollback", "--model-version", "7", "--output", "json"]);
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["model_version"], "7");
    assert_eq!(
        report["registered"], true,
        "no release served 7 yet: {report}"
    );
    assert_eq!(
        report["previous_task_definition"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next(),
        Some(format!("{name}:1").as_str())
    );
    assert_eq!(report["smoke"].as_array().unwrap().len(), 2);
    assert!(!lock_exists(&bucket, name));

    let (code, now) = status(&project);
    assert_eq!(code, 0, "{now}");
    assert_eq!(now["healthy"], true);
    assert_eq!(now["model_version"], "7");
    assert_eq!(now["model_path"], format!("mlflow/models/{name}/7"));
    assert_eq!(now["running"], 1);
    assert_eq!(now["desired"], 1);
    assert_eq!(now["targets"]["healthy"], 1);
    assert!(now["image"].as_str().unwrap().contains("@sha256:"), "{now}");
    let url = now["url"].as_str().unwrap();
    assert!(
        predict_through(url)
            .stdout
            .contains(&format!("mlflow/models/{name}/7")),
        "the load balancer reaches version 7"
    );

    // Back to 6: the revision that served it is reused, not registered again.
    let back = project.mldeploy(&["rollback", "--model-version", "6", "--output", "json"]);
    back.expect_code(0);
    let back = back.json();
    assert_eq!(back["registered"], false, "{back}");
    assert!(back["task_definition"]
        .as_str()
        .unwrap()
        .ends_with(&format!("{name}:1")));
    assert_eq!(
        releases(&project),
        [(2, "7".to_string(), false), (1, "6".to_string(), true)]
    );
    assert!(predict_through(url)
        .stdout
        .contains(&format!("mlflow/models/{name}/6")));
}

#[test]
fn rollback_to_a_missing_version_exits_2_lists_the_versions_and_changes_nothing() {
    let (project, bucket) = deployable("it-rbmissing");
    project.mldeploy(&["up"]).expect_code(0);
    let run = project.mldeploy(&["rollback", "--model-version", "99"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("model version 99 does not exist")
            && run.stderr.contains("versions present (newest first): 7, 6"),
        "{}",
        run.stderr
    );
    assert_eq!(serving(&project.name), (format!("{}:1", project.name), 1));
    assert_eq!(revisions(&project.name), 1, "no revision was registered");
    assert!(!lock_exists(&bucket, &project.name), "no lock was taken");

    // One release has served: ECS's history holds none before it.
    let none = project.mldeploy(&["rollback"]);
    none.expect_code(2);
    assert_says(
        &none.stderr,
        &[
            &format!("holds no release that served before {}:1", project.name),
            "--to-revision",
        ],
    );
    assert_eq!(serving(&project.name), (format!("{}:1", project.name), 1));
}

#[test]
fn rollback_goes_back_to_the_release_before_and_to_revision_restores_image_and_model() {
    let (project, _) = deployable("it-rbrevision");
    project.mldeploy(&["up"]).expect_code(0);
    let first_image = status(&project).1["image"].as_str().unwrap().to_string();
    // A new image and a new model version: release 2.
    project.serve("/ready", "ready, second build");
    project
        .mldeploy(&["up", "--model-version", "7"])
        .expect_code(0);
    let second_image = status(&project).1["image"].as_str().unwrap().to_string();
    assert_ne!(first_image, second_image);

    let plan = project.mldeploy(&["rollback", "--dry-run"]);
    plan.expect_code(0);
    assert!(
        plan.stdout
            .contains(&format!("Would deploy {}:1", project.name))
            && plan.stdout.contains("Nothing was changed"),
        "{}",
        plan.stdout
    );
    assert_eq!(
        serving(&project.name).0,
        format!("{}:2", project.name),
        "a dry run changes nothing"
    );

    let back = project.mldeploy(&["rollback"]);
    back.expect_code(0);
    assert_says(
        &back.stderr,
        &[&format!(
            "Going back to {name}:1, which served before {name}:2",
            name = project.name
        )],
    );
    let (code, now) = status(&project);
    assert_eq!(code, 0);
    assert_eq!(now["image"], first_image.as_str(), "release 1's image");
    assert_eq!(now["model_version"], "6", "release 1's model");

    // Undo: what served before release 1 now is release 2, from ECS's deployment history, not
    // "the next lower revision" (there is none below 1).
    let undo = project.mldeploy(&["rollback"]);
    undo.expect_code(0);
    assert_says(
        &undo.stderr,
        &[&format!(
            "Going back to {name}:2, which served before {name}:1",
            name = project.name
        )],
    );
    let now = status(&project).1;
    assert_eq!(now["image"], second_image.as_str());
    assert_eq!(now["model_version"], "7");

    project
        .mldeploy(&["rollback", "--to-revision", "1"])
        .expect_code(0);
    assert_eq!(serving(&project.name).0, format!("{}:1", project.name));

    let missing = project.mldeploy(&["rollback", "--to-revision", "9"]);
    missing.expect_code(2);
    assert!(
        missing.stderr.contains(&format!(
            "--to-revision 9: {}:9 is not an active revision; active: 2 (model 7), 1 (model 6)",
            project.name
        )),
        "{}",
        missing.stderr
    );
}

#[test]
fn status_exits_3_when_nothing_is_deployed() {
    let (project, _) = deployable("it-stnothing");
    let run = project.mldeploy(&["status"]);
    run.expect_code(3);
    assert!(
        run.stderr
            .contains(&format!("nothing is deployed for {}", project.name))
            && run.stderr.contains("Run `mldeploy up` first"),
        "{}",
        run.stderr
    );
    let history = project.mldeploy(&["history"]);
    history.expect_code(0);
    assert!(
        history.stdout.contains("no releases yet"),
        "{}",
        history.stdout
    );
}

#[test]
fn status_exits_1_while_a_target_fails_its_health_check_and_wait_sees_it_recover() {
    let (project, _) = deployable("it-stdegraded");
    // A longer grace period than the default. On the sandbox's scaled clock (0.02) "10m" is
    // 12 s of wall time, so ECS may already replace the broken task when the check fails: the
    // test wants that (status --wait sees it recover), and the failing target is seen either
    // way, for at least the deregistration delay and the replacement's start.
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{config}model_load_time = \"10m\"\n")).unwrap();
    project.mldeploy(&["up"]).expect_code(0);
    // Break the running task's health check from inside its container: ECS replaces it.
    let tasks = aws(&[
        "ecs",
        "list-tasks",
        "--cluster",
        &project.name,
        "--service-name",
        &project.name,
    ]);
    let task = tasks.json()["taskArns"][0].as_str().unwrap().to_string();
    let containers = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=mldeploy.sandbox.task={task}"),
    ]);
    let container = containers.stdout.trim();
    assert!(!container.is_empty(), "the task runs as a container");
    docker(&["exec", container, "/bin/busybox", "rm", "/app/health"]).expect_code(0);
    let degraded = eventually(20, "status to report the failing target", || {
        let (code, now) = status(&project);
        (now["state"] == "degraded").then_some((code, now))
    });
    assert_eq!(degraded.0, 1, "{}", degraded.1);
    assert_eq!(degraded.1["healthy"], false);
    assert!(
        degraded.1["reason"]
            .as_str()
            .unwrap()
            .contains("Health checks failed with these codes: [404]"),
        "{}",
        degraded.1
    );
    let waited = project.mldeploy(&["status", "--wait", "--timeout", "60s"]);
    waited.expect_code(0);
    assert!(
        waited.stdout.contains(": healthy - serves model version 6"),
        "{}",
        waited.stdout
    );
}

#[test]
fn rollback_to_a_release_whose_image_expired_from_ecr_exits_2_and_changes_nothing() {
    let (project, bucket) = deployable("it-rbexpired");
    project.mldeploy(&["up"]).expect_code(0);
    let first = status(&project).1["image"].as_str().unwrap().to_string();
    project.serve("/ready", "ready, second build");
    project
        .mldeploy(&["up", "--model-version", "7"])
        .expect_code(0);
    // ECR's lifecycle policy expires the first image.
    let digest = first.split_once('@').unwrap().1;
    aws(&[
        "ecr",
        "batch-delete-image",
        "--repository-name",
        &project.name,
        "--image-ids",
        &format!("imageDigest={digest}"),
    ])
    .expect_code(0);
    let run = project.mldeploy(&["rollback", "--to-revision", "1"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains(&format!(
            "the image of that release, {first}, is no longer in ECR"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(serving(&project.name).0, format!("{}:2", project.name));
    assert!(!lock_exists(&bucket, &project.name));
    // The release whose image is still there is fine.
    project
        .mldeploy(&["rollback", "--model-version", "6"])
        .expect_code(0);
}
