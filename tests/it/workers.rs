//! Workers beside the model API on ECS: services with no load balancer, deployed in the same
//! release as it. A model change redeploys the services that read the model and only those; a
//! worker whose new revision crash-loops takes the whole release back; a worker removed from the
//! file is deleted; destroy leaves nothing of any of them.

use crate::support::*;

/// A worker that says what it was started with and then waits, as a queue consumer does.
fn waiting(says: &str) -> String {
    format!(
        r#"["/bin/busybox", "sh", "-c", "echo {says} $MODEL_PATH; while true; do /bin/busybox sleep 5; done"]"#
    )
}

/// The worker's service as awscli describes it; Null when there is none.
fn worker_service(project: &str, worker: &str) -> serde_json::Value {
    service_in(project, &format!("{project}-{worker}"))
}

/// `family:revision` the worker's service runs.
fn worker_revision(project: &str, worker: &str) -> String {
    let svc = worker_service(project, worker);
    svc["taskDefinition"]
        .as_str()
        .unwrap_or_else(|| panic!("no service for worker {worker}: {svc}"))
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

/// The first container of the task definition `family:revision`.
fn container_of(revision: &str) -> serde_json::Value {
    aws(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        revision,
    ])
    .json()["taskDefinition"]["containerDefinitions"][0]
        .clone()
}

fn env_of(container: &serde_json::Value, name: &str) -> Option<String> {
    container["environment"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
        .map(str::to_string)
}

/// The worker's scalable target in Application Auto Scaling; Null when none is registered.
fn scalable_target(project: &str, worker: &str) -> serde_json::Value {
    aws(&[
        "application-autoscaling",
        "describe-scalable-targets",
        "--service-namespace",
        "ecs",
        "--resource-ids",
        &format!("service/{project}/{project}-{worker}"),
    ])
    .json()["ScalableTargets"][0]
        .clone()
}

fn role_exists(role: &str) -> bool {
    aws(&["iam", "get-role", "--role-name", role]).code == 0
}

#[test]
fn a_model_api_and_three_workers_go_forward_and_back_as_one_release() {
    let (project, bucket) = deployable("it-wk");
    let name = project.name.clone();
    // The file is in the build context: editing it would change the image of every service.
    project.write(".dockerignore", "mldeploy.toml\n");
    let workers = format!(
        "[workers.scorer]\ncommand = {}\ncpu = 512\nmemory = 1024\n[workers.refresher]\ncommand = {}\n[workers.feeder]\ncommand = {}\nmodel = false\nenvironment = {{ SOURCE = \"s3://inputs\" }}\n[workers.feeder.autoscaling]\nmin_count = 1\nmax_count = 3\nmetric = \"memory\"\n",
        waiting("scoring"),
        waiting("refreshing"),
        waiting("feeding"),
    );
    project.append_config(&workers);
    let plan = project.mldeploy(&["plan"]);
    plan.expect_code(0);
    assert_says(
        &plan.stdout,
        &[
            &format!("{name}-scorer"),
            &format!("{name}-feeder"),
            &format!("IAM role {name}-scorer-task"),
            "Fargate, worker scorer",
        ],
    );
    project.mldeploy(&["up"]).expect_code(0);

    // Each worker: its own family, size, role and log stream prefix; no port, no health check.
    let scorer = container_of(&worker_revision(&name, "scorer"));
    assert_eq!(worker_revision(&name, "scorer"), format!("{name}-scorer:1"));
    assert_eq!(
        scorer["command"][3].as_str().unwrap().split(';').next(),
        Some("echo scoring $MODEL_PATH")
    );
    assert!(
        scorer["portMappings"]
            .as_array()
            .is_none_or(|p| p.is_empty()),
        "{scorer}"
    );
    assert!(scorer["healthCheck"].is_null(), "{scorer}");
    assert_eq!(
        scorer["logConfiguration"]["options"]["awslogs-stream-prefix"],
        format!("{name}-scorer")
    );
    assert_eq!(
        env_of(&scorer, "MODEL_PATH").as_deref(),
        Some(format!("mlflow/models/{name}/6").as_str())
    );
    let scorer_td = aws(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        &format!("{name}-scorer:1"),
    ])
    .json();
    assert_eq!(scorer_td["taskDefinition"]["cpu"], "512");
    assert!(scorer_td["taskDefinition"]["taskRoleArn"]
        .as_str()
        .unwrap()
        .ends_with(&format!("role/mldeploy/{name}/workers/{name}-scorer-task")));
    // The worker without the model: no model variables, no policy on its role.
    let feeder = container_of(&worker_revision(&name, "feeder"));
    assert_eq!(env_of(&feeder, "MODEL_PATH"), None);
    assert_eq!(env_of(&feeder, "SOURCE").as_deref(), Some("s3://inputs"));
    let policies = aws(&[
        "iam",
        "list-role-policies",
        "--role-name",
        &format!("{name}-feeder-task"),
    ]);
    assert_eq!(policies.json()["PolicyNames"], serde_json::json!([]));
    for worker in ["scorer", "refresher", "feeder"] {
        let svc = worker_service(&name, worker);
        assert_eq!(svc["runningCount"], 1, "{worker}: {svc}");
        assert!(
            svc["loadBalancers"].as_array().is_none_or(|l| l.is_empty()),
            "{svc}"
        );
    }
    // The feeder's count is the autoscaler's, on its memory.
    let feeder_scaling = scalable_target(&name, "feeder");
    assert_eq!(
        (
            feeder_scaling["MinCapacity"].as_i64(),
            feeder_scaling["MaxCapacity"].as_i64()
        ),
        (Some(1), Some(3)),
        "{feeder_scaling}"
    );
    assert!(scalable_target(&name, "scorer").is_null());
    let status = project.mldeploy(&["status", "--output", "json"]);
    status.expect_code(0);
    let listed = status.json()["workers"].clone();
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["state"] == "healthy"),
        "{listed}"
    );

    // logs: every service's lines, each with its service; --service one's only.
    let all = eventually(60, "every worker's first line in CloudWatch Logs", || {
        let run = project.mldeploy(&["logs", "--since", "10m"]);
        (run.code == 0 && run.stdout.contains("scoring") && run.stdout.contains("feeding"))
            .then_some(run.stdout)
    });
    assert!(
        all.lines()
            .any(|l| l.contains(" scorer [") && l.contains("scoring mlflow/models/")),
        "{all}"
    );
    assert!(
        all.lines()
            .any(|l| l.contains(" feeder [") && l.ends_with("feeding")),
        "{all}"
    );
    let one = project.mldeploy(&["logs", "--service", "scorer", "--since", "10m"]);
    one.expect_code(0);
    assert!(
        one.stdout.contains("scoring") && !one.stdout.contains("feeding"),
        "{}",
        one.stdout
    );
    let unknown = project.mldeploy(&["logs", "--service", "nope"]);
    unknown.expect_code(2);
    assert_says(
        &unknown.stderr,
        &["--service nope", "scorer", "feeder", &name],
    );

    // A model change redeploys the model API and the workers that read the model, not the other.
    project
        .mldeploy(&["up", "--model-version", "7"])
        .expect_code(0);
    assert_eq!(serving(&name).0, format!("{name}:2"));
    assert_eq!(worker_revision(&name, "scorer"), format!("{name}-scorer:2"));
    assert_eq!(
        worker_revision(&name, "refresher"),
        format!("{name}-refresher:2")
    );
    assert_eq!(worker_revision(&name, "feeder"), format!("{name}-feeder:1"));

    // A scorer that cannot start takes the whole release back: the model API serves 7 again.
    let config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    project.write(
        "mldeploy.toml",
        &config.replacen(
            &waiting("scoring"),
            r#"["/bin/busybox", "sh", "-c", "echo cannot score >&2; exit 3"]"#,
            1,
        ),
    );
    let failed = project.mldeploy(&["up", "--model-version", "6"]);
    failed.expect_code(1);
    assert_says(
        &failed.stderr,
        &[
            "worker scorer",
            "exit code 3",
            "cannot score",
            "worker scorer failed, so the release was taken back",
            &format!("{name} runs {name}:2 again"),
            &format!("{name}-scorer runs {name}-scorer:2 again"),
        ],
    );
    assert_eq!(serving(&name).0, format!("{name}:2"));
    assert_eq!(worker_revision(&name, "scorer"), format!("{name}-scorer:2"));
    assert_eq!(
        worker_revision(&name, "refresher"),
        format!("{name}-refresher:2")
    );
    let answer = predict_through(&format!("http://{}", load_balancer_dns(&name)));
    assert!(
        answer.stdout.contains(&format!("mlflow/models/{name}/7")),
        "{}",
        answer.stdout
    );

    // rollback moves the model API and the workers that read the model back together: each
    // runs what it ran (not the scorer that failed) with model 6; the other is left as it is.
    let back = project.mldeploy(&["rollback", "--model-version", "6"]);
    back.expect_code(0);
    assert_says(&back.stdout, &["worker scorer:", "worker refresher:"]);
    let six = format!("mlflow/models/{name}/6");
    assert_eq!(
        env_of(&container_of(&serving(&name).0), "MODEL_PATH"),
        Some(six.clone())
    );
    for worker in ["scorer", "refresher"] {
        let runs = container_of(&worker_revision(&name, worker));
        assert_eq!(env_of(&runs, "MODEL_PATH"), Some(six.clone()), "{worker}");
        assert!(
            runs["command"][3].as_str().unwrap().contains("while true"),
            "{runs}"
        );
        assert_eq!(worker_service(&name, worker)["runningCount"], 1, "{worker}");
    }
    assert_eq!(worker_revision(&name, "feeder"), format!("{name}-feeder:1"));

    // history: each release with the revision every worker ran in it.
    let history = project.mldeploy(&["history", "--output", "json"]);
    history.expect_code(0);
    let releases = history.json()["releases"].clone();
    let row = |serving: bool, revision: String| {
        releases
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                r["serving"] == serving
                    && r["task_definition"].as_str().unwrap().ends_with(&revision)
            })
            .unwrap_or_else(|| panic!("no release {revision}: {releases}"))
            .clone()
    };
    let now = row(true, serving(&name).0);
    assert_eq!(
        now["workers"]["scorer"],
        worker_revision(&name, "scorer"),
        "{now}"
    );
    assert_eq!(
        now["workers"]["feeder"],
        format!("{name}-feeder:1"),
        "{now}"
    );
    let seven = row(false, format!("{name}:2"));
    assert_eq!(
        seven["workers"]["scorer"],
        format!("{name}-scorer:2"),
        "{seven}"
    );
    assert_eq!(
        seven["workers"]["refresher"],
        format!("{name}-refresher:2"),
        "{seven}"
    );
    assert_says(&project.mldeploy(&["history"]).stdout, &["workers: feeder"]);

    // A worker removed from the file is deleted by the next up, with its revisions and role.
    project.write(
        "mldeploy.toml",
        &config.replacen(
            &format!("[workers.refresher]\ncommand = {}\n", waiting("refreshing")),
            "",
            1,
        ),
    );
    let plan = project.mldeploy(&["plan", "--model-version", "7"]);
    plan.expect_code(0);
    assert_says(
        &plan.stdout,
        &[&format!("{name}-refresher"), "no [workers.refresher]"],
    );
    project
        .mldeploy(&["up", "--model-version", "7"])
        .expect_code(0);
    assert!(
        worker_service(&name, "refresher")["status"] != "ACTIVE",
        "the removed worker's service is still active"
    );
    assert_eq!(revisions(&format!("{name}-refresher")), 0);
    assert!(!role_exists(&format!("{name}-refresher-task")));

    // destroy removes every service, revision and role of the project's.
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
    for worker in ["scorer", "feeder"] {
        assert!(
            worker_service(&name, worker)["status"] != "ACTIVE",
            "{worker}"
        );
        assert_eq!(revisions(&format!("{name}-{worker}")), 0, "{worker}");
        assert!(!role_exists(&format!("{name}-{worker}-task")), "{worker}");
    }
    assert!(scalable_target(&name, "feeder").is_null());
    let records = aws(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        &bucket,
        "--prefix",
        &format!(".mldeploy/{name}/releases/"),
    ]);
    assert!(
        !records.stdout.contains("\"Key\""),
        "destroy leaves no release record: {}",
        records.stdout
    );
}

#[test]
fn a_worker_with_a_load_balancer_key_or_a_bad_name_is_refused_before_any_call() {
    let (project, _bucket) = deployable("it-wk-bad");
    // Keys are checked first: a load-balancer key is told as such.
    project.append_config("[workers.feeder]\nport = 8080\ncommand = [\"x\"]\n");
    let run = project.mldeploy(&["plan"]);
    run.expect_code(2);
    assert_says(
        &run.stderr,
        &[
            "`workers.feeder.port`: a worker has no `port`",
            "no load balancer",
            "takes command, cpu",
        ],
    );
    // Then every table's values, all at once: a bad name, a command that is not a list.
    let config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    project.write(
        "mldeploy.toml",
        &config.replace(
            "[workers.feeder]\nport = 8080\ncommand = [\"x\"]\n",
            "[workers.Scorer]\ncommand = [\"x\"]\n[workers.feeder]\ncommand = \"python -m feeder\"\n",
        ),
    );
    let run = project.mldeploy(&["plan"]);
    run.expect_code(2);
    assert_says(&run.stderr, &["workers.feeder.command", "sequence"]);
    let config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    project.write(
        "mldeploy.toml",
        &config.replace(
            "command = \"python -m feeder\"",
            "command = [\"python\"]\ncpu = 300",
        ),
    );
    let run = project.mldeploy(&["plan"]);
    run.expect_code(2);
    assert_says(
        &run.stderr,
        &[
            "[workers.Scorer]: the worker's name",
            "lowercase letters",
            "`workers.feeder.cpu` = 300 is not a Fargate size",
        ],
    );
    // Nothing was made.
    let clusters = aws(&["ecs", "describe-clusters", "--clusters", &project.name]).json();
    assert_eq!(clusters["clusters"], serde_json::json!([]), "{clusters}");
}

#[test]
fn a_change_of_a_workers_own_image_redeploys_only_that_worker_and_rollback_keeps_it() {
    let (project, _bucket) = deployable("it-wki");
    let name = project.name.clone();
    // The worker's context is not the project's: a change in it leaves the project's image.
    project.write(".dockerignore", "mldeploy.toml\nscorer\n");
    own_image(&project, "first");
    project.append_config(&format!(
        "[workers.scorer]\ncommand = [\"/bin/busybox\", \"sh\", \"-c\", \"cat /msg.txt; echo $MODEL_PATH; while true; do /bin/busybox sleep 5; done\"]\n[workers.scorer.image]\ncontext = \"scorer\"\n[workers.plain]\ncommand = {}\n",
        waiting("plain")
    ));
    project.mldeploy(&["up"]).expect_code(0);
    let web = serving(&name).0;
    let plain = worker_revision(&name, "plain");
    let scorer = container_of(&worker_revision(&name, "scorer"));
    let web_image = container_of(&web)["image"].clone();
    assert_ne!(scorer["image"], web_image, "the scorer runs its own image");
    assert_eq!(container_of(&plain)["image"], web_image);

    // Only the scorer's image changes: only the scorer gets a new revision.
    own_image(&project, "second");
    let up = project.mldeploy(&["up"]);
    up.expect_code(0);
    assert_eq!(serving(&name).0, web, "the model API was not redeployed");
    assert_eq!(worker_revision(&name, "plain"), plain);
    assert_eq!(worker_revision(&name, "scorer"), format!("{name}-scorer:2"));
    let second = container_of(&format!("{name}-scorer:2"))["image"].clone();
    assert_ne!(second, scorer["image"]);

    // A model rollback moves the scorer to the model, on its own image still.
    project
        .mldeploy(&["rollback", "--model-version", "7"])
        .expect_code(0);
    let moved = container_of(&worker_revision(&name, "scorer"));
    assert_eq!(moved["image"], second, "the scorer keeps its own image");
    assert_eq!(
        env_of(&moved, "MODEL_PATH").as_deref(),
        Some(format!("mlflow/models/{name}/7").as_str())
    );
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}
