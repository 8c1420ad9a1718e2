//! A project without `[model]` (a tracking server, a feature API): it deploys like any other,
//! its tasks get no model variables and its roles read no bucket, the model flags are refused
//! before anything changes, and status, history and destroy say nothing of a model.

use crate::support::*;

/// `project`'s mldeploy.toml without [model]: its deploy lock in `bucket`, a smoke test, and
/// `extra` appended.
fn without_model(project: &Project, bucket: &str, extra: &str) {
    project.write(
        "mldeploy.toml",
        &format!(
            "[project]\nname = \"{}\"\n[lock]\nbucket = \"{bucket}\"\n[smoke]\npath = \"/cgi-bin/predict\"\nbody = '{{\"features\": [[1.0]]}}'\n[service]\nport = {APP_PORT}\n{extra}",
            project.name
        ),
    );
}

/// The model flags of `up`, `plan` and `rollback` are exit 2 naming the flag, before any call.
fn model_flags_are_refused(project: &Project) {
    for args in [
        &["up", "--model-version", "6"][..],
        &["plan", "--model-path", "m/6"],
        &["rollback", "--model-version", "6"],
    ] {
        let run = project.mldeploy(args);
        run.expect_code(2);
        assert_says(&run.stderr, &[args[1], "has no [model]", "serves no model"]);
    }
}

#[test]
fn on_ecs_a_project_without_a_model_deploys_with_no_model_variables_or_model_reads() {
    require_sandbox();
    let project = Project::new("it-nm");
    let name = project.name.clone();
    let bucket = bucket_with(&["unrelated/object"]);
    without_model(&project, &bucket, "[workers.janitor]\ncommand = [\"/bin/busybox\", \"sh\", \"-c\", \"while true; do /bin/busybox sleep 5; done\"]\n");
    model_flags_are_refused(&project);
    assert_eq!(revisions(&name), 0, "a refused flag registered nothing");

    let plan = project.mldeploy(&["plan"]);
    plan.expect_code(0);
    assert_says(&plan.stdout, &["task definition", "no model"]);

    let up = project.mldeploy(&["up"]);
    up.expect_code(0);
    assert_says(&up.stdout, &["serves at", "(no model)"]);

    // Neither the model API's task nor the worker's is told of a model.
    for family in [name.clone(), format!("{name}-janitor")] {
        let container = aws(&[
            "ecs",
            "describe-task-definition",
            "--task-definition",
            &family,
        ])
        .json()["taskDefinition"]["containerDefinitions"][0]
            .clone();
        let names: Vec<&str> = container["environment"]
            .as_array()
            .map(|e| e.iter().filter_map(|v| v["name"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            !names.contains(&"MODEL_PATH") && !names.contains(&"MODEL_BUCKET_NAME"),
            "{family}: {names:?}"
        );
    }
    // The task role may read nothing: it has no inline policy.
    let role = format!("{name}-task");
    let policies = aws(&["iam", "list-role-policies", "--role-name", &role]).json();
    assert_eq!(policies["PolicyNames"], serde_json::json!([]), "{role}");

    let status = project.mldeploy(&["status", "--output", "json"]);
    status.expect_code(0);
    assert_eq!(status.json()["model_path"], serde_json::Value::Null);
    let text = project.mldeploy(&["status"]);
    assert_says(&text.stdout, &["no model"]);

    let history = project.mldeploy(&["history", "--output", "json"]);
    history.expect_code(0);
    let releases = history.json()["releases"].clone();
    assert_eq!(
        releases[0]["model_path"],
        serde_json::Value::Null,
        "{releases}"
    );

    // Nothing changed: a second up deploys nothing; the lock lived in lock.bucket.
    let again = project.mldeploy(&["up"]);
    again.expect_code(0);
    assert_says(&again.stdout, &["nothing needed deploying"]);
    assert!(!lock_exists(&bucket, &name), "the lock was released");

    let destroy = project.mldeploy(&["destroy", "--yes"]);
    destroy.expect_code(0);
    assert!(
        !destroy.stdout.contains("model artifacts"),
        "no model to keep: {}",
        destroy.stdout
    );
    assert_ne!(service_of(&name)["status"], "ACTIVE");
    assert_eq!(revisions(&name), 0);
    assert_eq!(revisions(&format!("{name}-janitor")), 0);
}

#[test]
fn on_a_docker_host_a_project_without_a_model_deploys_and_rolls_back_by_release() {
    let (project, bucket, port) = crate::docker_target::on_docker("it-nmd");
    let config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    let target = &config[config.find("[target]").unwrap()..];
    without_model(&project, &bucket, target);
    model_flags_are_refused(&project);

    project.mldeploy(&["up"]).expect_code(0);
    let first = crate::docker_target::predict_on(port);
    assert!(
        first.contains("\"model_path\": \"\""),
        "no MODEL_PATH: {first}"
    );
    // A second release (another answer), then back to the first by its release number.
    project.predict(r#"echo '{"prediction": 2, "model_path": ""}'"#);
    project.mldeploy(&["up"]).expect_code(0);
    assert!(crate::docker_target::predict_on(port).contains("\"prediction\": 2"));
    let status = project.mldeploy(&["status", "--output", "json"]);
    status.expect_code(0);
    assert_eq!(status.json()["model_path"], serde_json::Value::Null);

    let back = project.mldeploy(&["rollback", "--to-revision", "1"]);
    back.expect_code(0);
    assert_eq!(crate::docker_target::predict_on(port), first);
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}
