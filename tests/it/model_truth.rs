//! Which model serves: read from the `MODEL_PATH` the serving revision runs and from what the
//! app says, never from tags alone.

use crate::support::*;

/// A readiness answer that names the model the container loaded: `$MODEL_PATH`, as the example
/// app's /ready does.
fn ready_names_its_model(project: &Project) {
    use std::os::unix::fs::PermissionsExt;
    project.write(
        "app/cgi-bin/ready",
        "#!/bin/busybox sh\necho \"Content-Type: application/json\"\necho\necho \"{\\\"status\\\": \\\"ready\\\", \\\"model_path\\\": \\\"$MODEL_PATH\\\"}\"\n",
    );
    std::fs::set_permissions(
        project.path().join("app/cgi-bin/ready"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    let config = config.replace(
        "[service]\n",
        "[service]\nready_path = \"/cgi-bin/ready\"\n",
    );
    project.write("mldeploy.toml", &config);
}

/// Registers a copy of the serving revision, tags and all, with another MODEL_PATH, and points
/// the service at it: what tools that clone the serving task definition do.
fn clone_serving_with_model_path(project: &str, model_path: &str) -> String {
    let service = service_of(project);
    let serving = service["taskDefinition"].as_str().unwrap();
    let described = aws(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        serving,
        "--include",
        "TAGS",
    ])
    .expect_code(0)
    .json();
    let mut td = described["taskDefinition"].clone();
    for env in td["containerDefinitions"][0]["environment"]
        .as_array_mut()
        .unwrap()
    {
        if env["name"] == "MODEL_PATH" {
            env["value"] = model_path.into();
        }
    }
    td["tags"] = described["tags"].clone();
    let arn = register_copy(td);
    aws(&[
        "ecs",
        "update-service",
        "--cluster",
        project,
        "--service",
        project,
        "--task-definition",
        &arn,
    ])
    .expect_code(0);
    arn
}

#[test]
fn a_clone_with_copied_tags_is_reported_as_the_model_it_runs() {
    let (project, _) = deployable("it-truth");
    ready_names_its_model(&project);
    project.mldeploy(&["up"]).expect_code(0);
    let status = project.mldeploy(&["status", "--output", "json"]);
    status.expect_code(0);
    assert_eq!(status.json()["model_version"], "6");
    assert!(
        status.json().get("model_warning").is_none(),
        "{}",
        status.stdout
    );

    // Its tags say version 6; it runs version 7.
    let seven = format!("mlflow/models/{}/7", project.name);
    clone_serving_with_model_path(&project.name, &seven);
    let settled = eventually(60, "the clone to serve", || {
        let run = project.mldeploy(&["status", "--output", "json"]);
        (run.code == 0).then_some(run)
    });
    let json = settled.json();
    assert_eq!(json["model_version"], "7", "{}", settled.stdout);
    assert_eq!(json["model_path"], seven.as_str());
    let warning = json["model_warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("its tags say model version 6") && warning.contains(&seven),
        "{warning}"
    );

    let history = project.mldeploy(&["history", "--output", "json"]);
    history.expect_code(0);
    let serving = history.json()["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["serving"] == true)
        .cloned()
        .unwrap();
    assert_eq!(serving["model_version"], "7");
    assert!(serving["warning"].as_str().is_some(), "{serving}");
    let text = project.mldeploy(&["history"]);
    assert_says(&text.stdout, &["! its tags say model version 6"]);
}

#[test]
fn an_app_that_says_it_serves_another_model_makes_status_exit_1() {
    let (project, _) = deployable("it-liar");
    project.serve(
        "/ready",
        r#"{"status": "ready", "model_path": "mlflow/models/elsewhere/9"}"#,
    );
    project.mldeploy(&["up"]).expect_code(0);
    let run = project.mldeploy(&["status"]);
    run.expect_code(1);
    assert_says(
        &run.stdout,
        &[
            "serving another model",
            "says it serves mlflow/models/elsewhere/9",
            &format!("runs MODEL_PATH mlflow/models/{}/6", project.name),
        ],
    );
}
