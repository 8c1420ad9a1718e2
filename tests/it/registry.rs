//! The MLflow model registry as the source of versions, against the sandbox's real MLflow
//! tracking server: a registered version, an alias, what an unknown one lists, a registry that
//! cannot be reached, a version stored outside the model bucket, and `model.set_alias` moved
//! only by a deploy that succeeded. On the Docker target, whose deploys take seconds.

use std::process::Command;

use crate::docker_target::{on_docker, predict_on};
use crate::example::mlflow_uri;
use crate::support::*;

/// One call to the sandbox's MLflow REST API, through curl; its JSON answer.
fn mlflow(method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "-X", method])
        .args(["-H", "Content-Type: application/json", "-d"])
        .arg(body.to_string())
        .arg(format!("{}/api/2.0/mlflow/{path}", mlflow_uri()));
    let run = Run::of(cmd);
    run.expect_code(0);
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("MLflow answered no JSON to {path} ({e}): {}", run.stdout))
}

/// Registers `name` with one version per source, in order (versions 1, 2, ...).
fn register(name: &str, sources: &[String]) {
    mlflow(
        "POST",
        "registered-models/create",
        serde_json::json!({"name": name}),
    );
    for source in sources {
        let made = mlflow(
            "POST",
            "model-versions/create",
            serde_json::json!({"name": name, "source": source}),
        );
        assert!(made["model_version"]["version"].is_string(), "{made}");
    }
}

fn set_alias(name: &str, alias: &str, version: &str) {
    mlflow(
        "POST",
        "registered-models/alias",
        serde_json::json!({"name": name, "alias": alias, "version": version}),
    );
}

/// The version an alias points at now, if any.
fn alias_target(name: &str, alias: &str) -> Option<String> {
    let path = format!("registered-models/alias?name={name}&alias={alias}");
    let answer = mlflow("GET", &path, serde_json::json!({}));
    answer["model_version"]["version"]
        .as_str()
        .map(str::to_string)
}

/// A Docker-target project whose versions come from a new registered model: version 1 is the
/// fixture's model 6, version 2 its model 7; `champion` points at 2. `up` sets `production`.
fn registered(prefix: &str) -> (Project, String, u16) {
    let (project, bucket, port) = on_docker(prefix);
    let name = unique_name("reg");
    let sources: Vec<String> = ["6", "7"]
        .iter()
        .map(|v| format!("s3://{bucket}/mlflow/models/{}/{v}", project.name))
        .collect();
    register(&name, &sources);
    set_alias(&name, "champion", "2");
    let config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    let config = config.replace(
        &format!("path = \"mlflow/models/{}/{{version}}\"\nversion = 6\n", project.name),
        &format!(
            "path = \"mlflow/models/{}/\"\nregistry = \"{}\"\nname = \"{name}\"\nset_alias = \"production\"\n",
            project.name,
            mlflow_uri()
        ),
    );
    assert!(config.contains("registry = "), "{config}");
    std::fs::write(project.path().join("mldeploy.toml"), config).unwrap();
    (project, name, port)
}

#[test]
fn registry_versions_and_aliases_deploy_and_status_and_history_show_them() {
    let (project, name, port) = registered("it-reg");
    let model = |v: &str| format!("mlflow/models/{}/{v}", project.name);

    let first = project.mldeploy(&["up", "--model-version", "1", "--output", "json"]);
    first.expect_code(0);
    assert_eq!(first.json()["model_version"], "1");
    assert!(
        predict_on(port).contains(&model("6")),
        "registry version 1 is model 6"
    );
    assert_says(
        &first.stderr,
        &[&format!("version 1 of {name}"), "production"],
    );
    assert_eq!(alias_target(&name, "production").as_deref(), Some("1"));

    let status = project.mldeploy(&["status", "--output", "json"]);
    status.expect_code(0);
    let status = status.json();
    assert_eq!(status["registry"]["name"], name.as_str(), "{status}");
    assert_eq!(
        status["registry"]["aliases"],
        serde_json::json!(["production"])
    );

    let second = project.mldeploy(&["up", "--model-alias", "champion"]);
    second.expect_code(0);
    assert!(
        predict_on(port).contains(&model("7")),
        "champion is version 2, model 7"
    );
    assert_eq!(alias_target(&name, "production").as_deref(), Some("2"));
    let history = project.mldeploy(&["history", "--output", "json"]);
    history.expect_code(0);
    let history = history.json();
    let serving = history["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["serving"] == true)
        .unwrap_or_else(|| panic!("nothing serves in {history}"));
    assert_eq!(serving["model_version"], "2", "{history}");
    assert_eq!(serving["registry"]["deployed_by"], "champion", "{history}");
    let mut aliases: Vec<String> = serving["registry"]["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    aliases.sort();
    assert_eq!(aliases, ["champion", "production"]);
    let text = project.mldeploy(&["history"]);
    assert_says(
        &text.stdout,
        &[
            &format!("registry model {name}, aliases"),
            "deployed by alias champion",
        ],
    );
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}

#[test]
fn an_unknown_alias_or_version_exits_2_listing_what_the_registry_has() {
    let (project, name, _) = registered("it-regunk");
    let alias = project.mldeploy(&["up", "--model-alias", "nope"]);
    alias.expect_code(2);
    assert_says(
        &alias.stderr,
        &[
            "no alias \"nope\"",
            &name,
            "versions it has: 2, 1",
            "champion -> 2",
        ],
    );
    let version = project.mldeploy(&["up", "--model-version", "9"]);
    version.expect_code(2);
    assert_says(&version.stderr, &["no version 9", "versions it has: 2, 1"]);
    // Nothing was deployed, and no alias moved.
    assert_eq!(alias_target(&name, "production"), None);
    assert!(docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=mldeploy.project={}", project.name)
    ])
    .stdout
    .trim()
    .is_empty());
}

#[test]
fn a_registry_that_cannot_be_reached_exits_3_naming_it() {
    let (project, _, _) = registered("it-regdown");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    let config = config.replace(&mlflow_uri(), &uri);
    std::fs::write(project.path().join("mldeploy.toml"), config).unwrap();
    let run = project.mldeploy(&["up", "--model-version", "1"]);
    run.expect_code(3);
    assert_says(&run.stderr, &["cannot reach the MLflow registry", &uri]);
}

#[test]
fn a_version_stored_outside_the_model_bucket_is_refused_naming_both() {
    let (project, name, _) = registered("it-regout");
    mlflow(
        "POST",
        "model-versions/create",
        serde_json::json!({"name": name, "source": "s3://someone-elses-bucket/models/3"}),
    );
    let run = project.mldeploy(&["up", "--model-version", "3"]);
    run.expect_code(2);
    assert_says(
        &run.stderr,
        &[
            "version 3 of",
            "s3://someone-elses-bucket/models/3",
            "not under s3://",
        ],
    );
}

#[test]
fn a_deploy_that_fails_moves_no_alias() {
    let (project, name, _) = registered("it-regfail");
    project
        .mldeploy(&["up", "--model-version", "1"])
        .expect_code(0);
    assert_eq!(alias_target(&name, "production").as_deref(), Some("1"));
    // Model 7 (registry version 2) makes the app's predictions fail.
    project.predict(&format!(
        "case \"$MODEL_PATH\" in */7) exit 1 ;; esac\n{PREDICT_JSON}"
    ));
    let failed = project.mldeploy(&["up", "--model-version", "2"]);
    failed.expect_code(1);
    assert_eq!(
        alias_target(&name, "production").as_deref(),
        Some("1"),
        "a failed deploy moved the alias"
    );
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}
