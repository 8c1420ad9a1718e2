//! The Docker-host target against the real engine: deploy, upgrade, a broken image that leaves
//! the old container serving, the loopback-binding diagnosis, status, logs and destroy.

use crate::support::*;

/// A project on the docker target, published on a free port; returns (project, bucket, port).
pub fn on_docker(prefix: &str) -> (Project, String, u16) {
    let (project, bucket) = deployable(prefix);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    // The proxy image the sandbox builds from Debian's caddy (caddy:2 cannot be pulled here).
    let proxy = std::env::var("SANDBOX_PROXY_IMAGE").expect("set by `scripts/sandbox env`");
    config.push_str(&format!(
        "[target]\nkind = \"docker\"\nhost_port = {port}\nproxy_image = \"{proxy}\"\ndrain = \"1s\"\n"
    ));
    std::fs::write(project.path().join("mldeploy.toml"), config).unwrap();
    (project, bucket, port)
}

pub fn predict_on(port: u16) -> String {
    predict_through(&format!("http://127.0.0.1:{port}")).stdout
}

/// The names of the project's running releases (its proxy aside).
fn running_of(project: &str) -> Vec<String> {
    let run = docker(&[
        "ps",
        "--filter",
        &format!("label=mldeploy.project={project}"),
        "--format",
        "{{.Names}}",
    ]);
    releases(&run.stdout)
}

/// The release containers among `docker ps` names: the project's proxy is not one.
fn releases(names: &str) -> Vec<String> {
    names
        .lines()
        .filter(|n| !n.ends_with("-proxy"))
        .map(str::to_string)
        .collect()
}

/// The names of the project's releases, running or not.
fn containers_of(project: &str) -> Vec<String> {
    let run = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=mldeploy.project={project}"),
        "--format",
        "{{.Names}}",
    ]);
    releases(&run.stdout)
}

#[test]
fn the_docker_target_deploys_upgrades_reports_and_destroys() {
    let (project, bucket, port) = on_docker("it-dk");
    let name = &project.name;
    let run = project.mldeploy(&["up", "--output", "json"]);
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["target"], "docker");
    assert_eq!(report["url"], format!("http://127.0.0.1:{port}"));
    assert_eq!(report["smoke"].as_array().unwrap().len(), 2);
    assert!(predict_on(port).contains(&format!("mlflow/models/{name}/6")));
    let restart = docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.RestartPolicy.Name}}",
        &format!("{name}-1"),
    ]);
    assert_eq!(restart.stdout.trim(), "unless-stopped");
    assert!(!lock_exists(&bucket, name));

    // Nothing changed: nothing replaced.
    let again = project.mldeploy(&["up", "--output", "json"]);
    again.expect_code(0);
    assert_eq!(again.json()["container"], format!("{name}-1"));

    let upgrade = project.mldeploy(&["up", "--model-version", "7", "--output", "json"]);
    upgrade.expect_code(0);
    assert_eq!(
        upgrade.json()["replaced"],
        serde_json::json!([format!("{name}-1")])
    );
    assert!(predict_on(port).contains(&format!("mlflow/models/{name}/7")));
    // The replaced release stays, stopped, for history and rollback.
    assert_eq!(
        containers_of(name),
        [format!("{name}-2"), format!("{name}-1")]
    );
    assert_eq!(running_of(name), [format!("{name}-2")]);

    let status = project.mldeploy(&["status", "--output", "json"]);
    status.expect_code(0);
    assert_eq!(status.json()["healthy"], true);
    assert_eq!(status.json()["model_version"], "7");
    // What `docker stats` shows, and the host's free disk where the engine keeps its data.
    let usage = &status.json()["usage"];
    assert!(usage["memory_bytes"].as_u64().unwrap() > 0, "{usage}");
    assert!(usage["cpu_percent"].as_f64().is_some(), "{usage}");
    assert!(usage["disk_free_bytes"].as_u64().unwrap() > 0, "{usage}");
    let logs = project.mldeploy(&["logs", "--output", "json"]);
    logs.expect_code(0);
    assert_eq!(logs.json()["log_group"], format!("container {name}-2"));

    // The proxy owns the host port; the releases publish none.
    let ports = docker(&["port", &format!("{name}-proxy")]);
    assert!(
        ports.stdout.contains(&format!(":{port}")),
        "{}",
        ports.stdout
    );
    assert!(docker(&["port", &format!("{name}-2")])
        .stdout
        .trim()
        .is_empty());

    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
    let left = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=mldeploy.project={name}"),
    ]);
    assert!(
        left.stdout.trim().is_empty(),
        "no container of the project is left, the proxy included"
    );
    let networks = docker(&[
        "network",
        "ls",
        "-q",
        "--filter",
        &format!("label=mldeploy.project={name}"),
    ]);
    assert!(
        networks.stdout.trim().is_empty(),
        "the project's network is removed"
    );
    let images = docker(&[
        "images",
        "-q",
        "--filter",
        &format!("label=mldeploy.project={name}"),
    ]);
    assert!(
        images.stdout.trim().is_empty(),
        "no image of the project is left"
    );
    project.mldeploy(&["status"]).expect_code(3);
    let never = project.mldeploy(&["destroy", "--yes"]);
    never.expect_code(0);
    assert!(never.stdout.contains("nothing to destroy"));
}

#[test]
fn an_image_that_never_gets_ready_leaves_the_old_container_serving() {
    let (project, _, port) = on_docker("it-dkbroken");
    let name = &project.name;
    project.mldeploy(&["up"]).expect_code(0);
    // The new build serves /health but never /ready, and says why.
    std::fs::remove_file(project.path().join("app/ready")).unwrap();
    project.write(
        "Dockerfile",
        &SERVING_DOCKERFILE.replace(
            "CMD [\"/bin/busybox\", \"httpd\"",
            "CMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo model download failed: access denied >&2; exec /bin/busybox httpd -f -p 0.0.0.0:8080 -h /app\"]\n#",
        ),
    );
    let run = project.mldeploy(&["up", "--model-version", "7", "--timeout", "5s"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("was not ready within 5s")
            && run.stderr.contains(&format!("{name}-1 keeps serving"))
            && run.stderr.contains("model download failed: access denied"),
        "{}",
        run.stderr
    );
    assert!(
        predict_on(port).contains(&format!("mlflow/models/{name}/6")),
        "the old one answers"
    );
    assert_eq!(containers_of(name), [format!("{name}-1")]);
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}

#[test]
fn an_app_bound_to_loopback_inside_its_container_is_diagnosed() {
    let (project, _, _) = on_docker("it-dkloopback");
    project.write(
        "Dockerfile",
        &SERVING_DOCKERFILE.replace("0.0.0.0:8080", "127.0.0.1:8080"),
    );
    let run = project.mldeploy(&["up", "--timeout", "60s"]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("the app listens on 127.0.0.1:8080 inside the container")
            && run.stderr.contains("bind 0.0.0.0:8080 instead"),
        "{}",
        run.stderr
    );
    assert!(
        containers_of(&project.name).is_empty(),
        "the candidate was removed"
    );
}

#[test]
fn rollback_and_history_on_the_docker_target() {
    let (project, _, port) = on_docker("it-dkrollback");
    let name = &project.name;
    project.mldeploy(&["up"]).expect_code(0);
    project
        .mldeploy(&["up", "--model-version", "7"])
        .expect_code(0);

    // Back to the release before: release 1's image and model, as release 3.
    let back = project.mldeploy(&["rollback", "--output", "json"]);
    back.expect_code(0);
    assert_eq!(back.json()["model_version"], "6");
    assert_eq!(back.json()["container"], format!("{name}-3"));
    assert!(predict_on(port).contains(&format!("mlflow/models/{name}/6")));

    let missing = project.mldeploy(&["rollback", "--model-version", "99"]);
    missing.expect_code(2);
    assert!(
        missing
            .stderr
            .contains("versions present (newest first): 7, 6"),
        "{}",
        missing.stderr
    );

    project
        .mldeploy(&["rollback", "--to-revision", "2"])
        .expect_code(0);
    assert!(predict_on(port).contains(&format!("mlflow/models/{name}/7")));

    let history = project.mldeploy(&["history", "--output", "json"]);
    history.expect_code(0);
    let releases: Vec<(i64, String, bool)> = history.json()["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["revision"].as_i64().unwrap(),
                r["model_version"].as_str().unwrap().to_string(),
                r["serving"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        releases,
        [
            (4, "7".to_string(), true),
            (3, "6".to_string(), false),
            (2, "7".to_string(), false),
            (1, "6".to_string(), false)
        ]
    );
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
    assert!(containers_of(name).is_empty());
}

#[test]
fn a_container_whose_app_says_it_serves_another_model_makes_status_exit_1() {
    let (project, _, _) = on_docker("it-dkliar");
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
            "unhealthy",
            "says it serves mlflow/models/elsewhere/9",
            &format!("runs MODEL_PATH mlflow/models/{}/6", project.name),
        ],
    );
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}

#[test]
fn images_of_releases_beyond_the_kept_ones_are_pruned() {
    let (project, _, _) = on_docker("it-dkprune");
    let name = &project.name;
    let config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    std::fs::write(
        project.path().join("mldeploy.toml"),
        config + "keep_releases = 1\n",
    )
    .unwrap();
    let image_of = |container: &str| {
        docker(&["inspect", "-f", "{{.Image}}", container])
            .stdout
            .trim()
            .to_string()
    };
    let images = || {
        let run = docker(&[
            "images",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=mldeploy.project={name}"),
        ]);
        let mut ids: Vec<String> = run.stdout.lines().map(str::to_string).collect();
        ids.sort();
        ids
    };
    project.mldeploy(&["up"]).expect_code(0);
    let first = image_of(&format!("{name}-1"));
    // Each change to the context is a new image, and a new release.
    project.write("app/build.txt", "2\n");
    project.mldeploy(&["up"]).expect_code(0);
    let second = image_of(&format!("{name}-2"));
    assert!(
        images().contains(&first),
        "release 1 is kept, with its image"
    );
    project.write("app/build.txt", "3\n");
    let third_up = project.mldeploy(&["up"]);
    third_up.expect_code(0);
    let third = image_of(&format!("{name}-3"));
    assert_eq!(
        containers_of(name),
        [format!("{name}-3"), format!("{name}-2")]
    );
    let mut expected = vec![second, third];
    expected.sort();
    assert_eq!(images(), expected, "release 1's image went with it");
    assert!(
        third_up
            .stderr
            .contains("Removed 1 image(s) no kept release uses"),
        "{}",
        third_up.stderr
    );
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}
