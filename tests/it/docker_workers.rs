//! Workers on a Docker host, against the real engine: containers beside the model API in the
//! same release; a model change restarts the workers that read the model only; a worker that
//! crash-loops takes the release back (the API keeps serving the model it served); rollback
//! moves them with it; a worker removed from the file is removed; destroy leaves nothing.

use crate::docker_target::{on_docker, predict_on};
use crate::support::*;

/// A worker that says what it was started with and then waits, as a queue consumer does.
fn waiting(says: &str) -> String {
    format!(
        r#"["/bin/busybox", "sh", "-c", "echo {says} $MODEL_PATH; while true; do /bin/busybox sleep 1; done"]"#
    )
}

/// The running containers of `worker`: (name, MODEL_PATH).
fn running(project: &str, worker: &str) -> Vec<(String, Option<String>)> {
    let names = docker(&[
        "ps",
        "--filter",
        &format!("label=mldeploy.project={project}"),
        "--filter",
        &format!("label=mldeploy.worker={worker}"),
        "--format",
        "{{.Names}}",
    ]);
    names
        .stdout
        .lines()
        .map(|name| {
            let env = docker(&["inspect", "--format", "{{json .Config.Env}}", name]);
            let env: Vec<String> = serde_json::from_str(env.stdout.trim()).unwrap_or_default();
            let path = env
                .iter()
                .find_map(|e| e.strip_prefix("MODEL_PATH="))
                .map(str::to_string);
            (name.to_string(), path)
        })
        .collect()
}

/// Every container of the project, running or not.
fn all_of(project: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=mldeploy.project={project}"),
        "--format",
        "{{.Names}}",
    ])
    .stdout
    .lines()
    .map(str::to_string)
    .collect()
}

fn config_with(project: &Project, base: &str, workers: &str) {
    project.write("mldeploy.toml", &format!("{base}{workers}"));
}

#[test]
fn on_a_docker_host_workers_go_forward_and_back_with_the_model_api() {
    let (project, _bucket, port) = on_docker("it-dwk");
    let name = project.name.clone();
    // The feeder runs an image of its own, built on the engine from `scorer/`.
    project.write(".dockerignore", "mldeploy.toml\nscorer\n");
    own_image(&project, "fed");
    let base = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    let scorer = format!("[workers.scorer]\ncommand = {}\n", waiting("scoring"));
    let feeder = format!(
        "[workers.feeder]\ncommand = {}\nmodel = false\n[workers.feeder.image]\ncontext = \"scorer\"\n",
        waiting("feeding")
    );
    config_with(&project, &base, &format!("{scorer}{feeder}"));

    let plan = project.mldeploy(&["plan"]);
    plan.expect_code(0);
    assert_says(&plan.stdout, &["worker", "scorer", "feeder"]);

    let up = project.mldeploy(&["up"]);
    up.expect_code(0);
    assert_says(
        &up.stdout,
        &["worker scorer: started", "worker feeder: started"],
    );
    let path6 = format!("mlflow/models/{name}/6");
    let scorers = running(&name, "scorer");
    assert_eq!(scorers.len(), 1, "{scorers:?}");
    assert_eq!(scorers[0].1.as_deref(), Some(path6.as_str()));
    let feeders = running(&name, "feeder");
    assert_eq!(feeders.len(), 1);
    assert_eq!(feeders[0].1, None, "feeder has model = false");
    let image_of = |container: &str| {
        docker(&["inspect", "-f", "{{.Config.Image}}", container])
            .stdout
            .trim()
            .to_string()
    };
    let fed = image_of(&feeders[0].0);
    assert_ne!(
        fed,
        image_of(&scorers[0].0),
        "the feeder runs its own image"
    );
    assert_eq!(
        docker(&["exec", &feeders[0].0, "/bin/busybox", "cat", "/msg.txt"])
            .stdout
            .trim(),
        "fed"
    );

    let status = project.mldeploy(&["status", "--output", "json"]);
    status.expect_code(0);
    let workers = status.json()["workers"].clone();
    assert_eq!(workers.as_array().map(Vec::len), Some(2), "{workers}");
    assert!(
        workers
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["reason"].is_null()),
        "{workers}"
    );

    let logs = project.mldeploy(&["logs", "--service", "scorer", "--since", "10m"]);
    logs.expect_code(0);
    assert_says(&logs.stdout, &["scorer", &format!("scoring {path6}")]);
    assert!(!logs.stdout.contains("feeding"), "{}", logs.stdout);

    // A model change restarts the scorer with the new model; the feeder, which reads none, runs on.
    let up7 = project.mldeploy(&["up", "--model-version", "7"]);
    up7.expect_code(0);
    assert_says(
        &up7.stdout,
        &["worker scorer: started", "worker feeder: unchanged"],
    );
    let path7 = format!("mlflow/models/{name}/7");
    assert_eq!(
        running(&name, "scorer")[0].1.as_deref(),
        Some(path7.as_str())
    );
    assert_eq!(
        running(&name, "feeder"),
        feeders,
        "the feeder was not restarted"
    );
    let serving7 = predict_on(port);
    assert!(serving7.contains(&path7), "{serving7}");

    // A scorer that crash-loops: the release is taken back and says which worker failed.
    let scorers7 = running(&name, "scorer");
    config_with(
        &project,
        &base,
        &format!("[workers.scorer]\ncommand = [\"/bin/busybox\", \"sh\", \"-c\", \"echo broken; exit 3\"]\n{feeder}"),
    );
    let broken = project.mldeploy(&["up", "--model-version", "6"]);
    broken.expect_code(1);
    assert_says(
        &broken.stderr,
        &["worker scorer", "did not stay up", "broken"],
    );
    assert_eq!(
        predict_on(port),
        serving7,
        "the model API serves what it served"
    );
    assert_eq!(running(&name, "scorer"), scorers7, "the old scorer runs on");

    // Rollback moves the workers with the model API.
    config_with(&project, &base, &format!("{scorer}{feeder}"));
    let back = project.mldeploy(&["rollback", "--model-version", "6"]);
    back.expect_code(0);
    assert_eq!(
        running(&name, "scorer")[0].1.as_deref(),
        Some(path6.as_str())
    );
    assert!(predict_on(port).contains(&path6));

    // `run --service` runs like that worker: its image and environment.
    let run = project.mldeploy(&[
        "run",
        "--service",
        "feeder",
        "--",
        "/bin/busybox",
        "sh",
        "-c",
        "echo run ${MODEL_PATH:-none}",
    ]);
    run.expect_code(0);
    assert_says(&run.stdout, &["run none"]);

    // A worker removed from the file is removed. The model API already serves model 6: the
    // plan keeps its container, as `up` does.
    config_with(&project, &base, &scorer);
    let plan = project.mldeploy(&["plan", "--model-version", "6"]);
    plan.expect_code(0);
    assert_says(
        &plan.stdout,
        &[
            "already serves this image, model and environment",
            "its containers run this image, command, environment and model",
        ],
    );
    project
        .mldeploy(&["up", "--model-version", "6"])
        .expect_code(0);
    assert!(
        all_of(&name).iter().all(|c| !c.contains("-feeder-")),
        "{:?}",
        all_of(&name)
    );

    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
    assert_eq!(all_of(&name), Vec::<String>::new());
}
