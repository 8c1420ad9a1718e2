//! The California-housing example (examples/california-housing) end to end, on both targets: an
//! XGBoost model trained twice with MLflow into the sandbox's tracking server and S3, served by
//! its FastAPI app built on the offline Python base (scripts/example-base), deployed, asked for
//! predictions, rolled back, and reported on; and a task role that cannot read the model.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use crate::support::*;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/california-housing");
/// Two rows of the California-housing schema.
const ROWS: &str = r#"{"features": [[8.3252, 41.0, 6.98, 1.02, 322.0, 2.56, 37.88, -122.23], [2.0, 20.0, 4.5, 1.1, 900.0, 3.2, 34.0, -118.3]]}"#;

/// The base image and the two trained versions, made once for the whole test binary.
pub struct Trained {
    pub base: String,
    pub bucket: String,
    /// The MLflow registered model (and experiment) the versions are in.
    pub model: String,
}

/// Builds the base (when the engine lacks it) and trains versions 1 and 2 with the example's
/// train.py in it, registering them with the sandbox's MLflow and exporting them to a new bucket.
pub fn trained() -> &'static Trained {
    static TRAINED: OnceLock<Trained> = OnceLock::new();
    TRAINED.get_or_init(|| {
        require_sandbox();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/example-base");
        let built = Run::of(Command::new(script));
        built.expect_code(0);
        let base = built.stdout.trim().to_string();
        let bucket = unique_name("it-housing");
        aws(&["s3api", "create-bucket", "--bucket", &bucket]).expect_code(0);
        let model = unique_name("housing");
        for version in ["1", "2"] {
            let estimators = if version == "1" { "20" } else { "60" };
            let mut cmd = Command::new("docker");
            cmd.args(["run", "--rm", "--network", "host", "-v"])
                .arg(format!("{EXAMPLE}:/example:ro"))
                .args(["-w", "/tmp"])
                .args(["-e", "AWS_ENDPOINT_URL", "-e", "AWS_ACCESS_KEY_ID"])
                .args(["-e", "AWS_SECRET_ACCESS_KEY", "-e", "AWS_DEFAULT_REGION"])
                .args(["-e", "GIT_PYTHON_REFRESH=quiet", "-e"])
                .arg(format!("MLFLOW_TRACKING_URI={}", mlflow_uri()))
                .arg(&base)
                .args(["python3", "/example/train.py", "--generated-data"])
                .args(["--bucket", &bucket, "--version", version])
                .args(["--registered-model", &model, "--n-estimators", estimators]);
            let run = Run::of(cmd);
            run.expect_code(0);
            assert_says(
                &run.stdout,
                &[&format!(
                    "registered {model} as MLflow model version {version}"
                )],
            );
        }
        Trained {
            base,
            bucket,
            model,
        }
    })
}

/// The sandbox's MLflow tracking server (`scripts/sandbox mlflow`).
pub fn mlflow_uri() -> String {
    std::env::var("SANDBOX_MLFLOW_URI")
        .expect("`scripts/sandbox env` sets SANDBOX_MLFLOW_URI; run scripts/test")
}

/// A project made of the example's app, Dockerfile and requirements, with an mldeploy.toml for
/// the sandbox: the trained bucket, the offline base, and `extra` appended. With `registry`, its
/// versions are the MLflow registry's (stored under mlflow/experiments/), else the versions
/// train.py exported to mlflow/models/california-housing/<version>.
pub fn example_project(prefix: &str, registry: bool, extra: &str) -> Project {
    let trained = trained();
    let project = Project::new(prefix);
    let dir = project.path();
    for stale in ["bin", "app"] {
        std::fs::remove_dir_all(dir.join(stale)).unwrap();
    }
    copy_tree(&Path::new(EXAMPLE).join("app"), &dir.join("app"));
    for file in ["Dockerfile", "requirements.txt", ".dockerignore"] {
        std::fs::copy(Path::new(EXAMPLE).join(file), dir.join(file)).unwrap();
    }
    let config = format!(
        r#"[project]
name = "{name}"

[image.build_args]
BASE = "{base}"

[model]
bucket = "{bucket}"
{source}
version = 2

[service]
port = 80
desired_count = 1
health_check_path = "/health"
ready_path = "/ready"
# The app starts in wall seconds (Python imports, the model's download), which the sandbox's
# clock (an AWS second lasts 20 ms) makes many minutes: the load time a slow model would get.
model_load_time = "20m"
ready_check_interval = "120s"
ready_check_retries = 10
[service.environment]
LOG_LEVEL = "info"

[smoke]
path = "/predict"
body = '{{"features": [[8.3252, 41.0, 6.98, 1.02, 322.0, 2.56, 37.88, -122.23]]}}'
{extra}"#,
        name = project.name,
        base = trained.base,
        bucket = trained.bucket,
        source = if registry {
            format!(
                "registry = \"{}\"\nname = \"{}\"\npath = \"mlflow/experiments/\"",
                mlflow_uri(),
                trained.model
            )
        } else {
            "path = \"mlflow/models/california-housing/{version}\"".to_string()
        },
    );
    std::fs::write(dir.join("mldeploy.toml"), config).unwrap();
    project
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "__pycache__" {
                copy_tree(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// POST /predict at `url` with two rows, through curl; the predictions as numbers.
fn predictions(url: &str) -> (Vec<f64>, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "-X", "POST"])
        .args(["-H", "Content-Type: application/json", "-d", ROWS])
        .arg(format!("{url}/predict"));
    let run = Run::of(cmd);
    run.expect_code(0);
    let answer: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("/predict answered no JSON ({e}): {}", run.stdout));
    let numbers: Vec<f64> = answer["predictions"]
        .as_array()
        .unwrap_or_else(|| panic!("no predictions in {answer}"))
        .iter()
        .map(|p| {
            p.as_f64()
                .unwrap_or_else(|| panic!("a prediction that is not a number: {answer}"))
        })
        .collect();
    assert_eq!(numbers.len(), 2, "{answer}");
    assert!(
        numbers.iter().all(|n| n.is_finite() && *n > 0.0),
        "{answer}"
    );
    (
        numbers,
        answer["model_path"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// What /ready says the app serves.
fn ready_model(url: &str) -> String {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10"])
        .arg(format!("{url}/ready"));
    let run = Run::of(cmd);
    run.expect_code(0);
    let ready: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("/ready answered no JSON ({e}): {}", run.stdout));
    ready["model_path"].as_str().unwrap_or_default().to_string()
}

/// up version 2, predictions, rollback to 1, different predictions, and `status` and `history`
/// agreeing with what the app's /ready says.
fn deploy_predict_roll_back(project: &Project, url_of: impl Fn(&serde_json::Value) -> String) {
    let up = project.mldeploy(&[
        "up",
        "--model-version",
        "2",
        "--timeout",
        "10m",
        "--output",
        "json",
    ]);
    up.expect_code(0);
    // The model's MLmodel names xgboost and Python 3.11; the image has both.
    assert_says(
        &up.stderr,
        &["Model and image agree: Python 3.11", "xgboost"],
    );
    let report = up.json();
    assert_eq!(report["model_version"], "2", "{report}");
    let v2 = report["model_path"].as_str().unwrap().to_string();
    let url = url_of(&report);
    let (second, served) = predictions(&url);
    assert_eq!(served, v2);

    let back = project.mldeploy(&[
        "rollback",
        "--model-version",
        "1",
        "--timeout",
        "10m",
        "--output",
        "json",
    ]);
    back.expect_code(0);
    let v1 = back.json()["model_path"].as_str().unwrap().to_string();
    assert_ne!(v1, v2);
    let (first, served) = predictions(&url);
    assert_eq!(served, v1);
    assert_ne!(first, second, "versions 1 and 2 predict the same");
    let ready = ready_model(&url);
    assert_eq!(ready, v1);

    let status = project.mldeploy(&["status", "--output", "json"]);
    status.expect_code(0);
    let status = status.json();
    assert_eq!(status["model_version"], "1", "{status}");
    assert_eq!(status["model_path"], ready, "{status}");
    let history = project.mldeploy(&["history", "--output", "json"]);
    history.expect_code(0);
    let history = history.json();
    let serving: Vec<&serde_json::Value> = history["releases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["serving"] == true)
        .collect();
    assert_eq!(serving.len(), 1, "{history}");
    assert_eq!(serving[0]["model_version"], "1", "{history}");
    assert_eq!(serving[0]["model_path"], ready, "{history}");
}

#[test]
fn the_example_serves_trained_versions_on_ecs_and_rolls_back() {
    // Versions from the MLflow registry train.py registered them in.
    let project = example_project("it-execs", true, "");
    let model = &trained().model;
    deploy_predict_roll_back(&project, |report| {
        report["url"].as_str().unwrap().to_string()
    });
    let status = project.mldeploy(&["status"]);
    assert_says(&status.stdout, &[&format!("registry model {model}")]);
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}

/// A Docker host has no task role: a container gets the sandbox's endpoint and keys (as a VM's
/// containers get its instance profile or keys), as environment lines of a TOML table.
fn sandbox_credentials() -> String {
    format!(
        "AWS_ENDPOINT_URL = \"http://169.254.170.2:{}\"\nAWS_ACCESS_KEY_ID = \"testing\"\nAWS_SECRET_ACCESS_KEY = \"testing\"\nAWS_DEFAULT_REGION = \"us-east-1\"\n",
        sandbox_aws_port()
    )
}

/// The example on the Docker target, published on a free port; returns (project, port).
fn example_on_docker(prefix: &str) -> (Project, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let extra = format!(
        "{}[target]\nkind = \"docker\"\nhost_port = {port}\nproxy_image = \"{proxy}\"\ndrain = \"1s\"\n",
        sandbox_credentials(),
        proxy = std::env::var("SANDBOX_PROXY_IMAGE").expect("set by `scripts/sandbox env`"),
    );
    let project = example_project(prefix, false, "");
    let config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    let config = config.replace(
        "LOG_LEVEL = \"info\"\n",
        &format!("LOG_LEVEL = \"info\"\n{extra}"),
    );
    std::fs::write(project.path().join("mldeploy.toml"), config).unwrap();
    (project, port)
}

#[test]
fn the_example_serves_trained_versions_on_the_docker_target_and_rolls_back() {
    let (project, port) = example_on_docker("it-exdk");
    // The example's batch scorer beside the API: rows under the model's prefix, scored every 2 s.
    let inputs = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(inputs.path(), ROWS).unwrap();
    let key = "mlflow/models/california-housing/batch/inputs.json";
    let bucket = &trained().bucket;
    aws(&[
        "s3",
        "cp",
        "--quiet",
        inputs.path().to_str().unwrap(),
        &format!("s3://{bucket}/{key}"),
    ])
    .expect_code(0);
    project.append_config(&format!(
        "[workers.scorer]\ncommand = [\"python3\", \"-m\", \"app.score_batch\"]\n[workers.scorer.environment]\nINPUTS_KEY = \"{key}\"\nSCORE_EVERY = \"2\"\n{}",
        sandbox_credentials()
    ));
    deploy_predict_roll_back(&project, |_| format!("http://127.0.0.1:{port}"));
    let (_, serving) = predictions(&format!("http://127.0.0.1:{port}"));
    let scored = eventually(120, "the scorer's lines", || {
        let logs = project.mldeploy(&["logs", "--service", "scorer", "--since", "10m"]);
        let line = format!("(model {serving})");
        (logs.stdout.contains("score 1 ") && logs.stdout.contains(&line)).then_some(logs.stdout)
    });
    assert_says(&scored, &["scorer", "score 0 "]);
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}

#[test]
fn a_model_saved_with_another_xgboost_major_version_is_refused_before_anything_runs() {
    let (project, _) = example_on_docker("it-exfit");
    let bucket = &trained().bucket;
    // Version 3: version 2's files, saved (its requirements say) with xgboost 1.7.6.
    let from = format!("s3://{bucket}/mlflow/models/california-housing/2/");
    let to = format!("s3://{bucket}/mlflow/models/california-housing/3/");
    aws(&["s3", "cp", "--recursive", "--quiet", &from, &to]).expect_code(0);
    let requirements = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(requirements.path(), "mlflow==3.17.2\nxgboost==1.7.6\n").unwrap();
    aws(&[
        "s3",
        "cp",
        "--quiet",
        requirements.path().to_str().unwrap(),
        &format!("{to}requirements.txt"),
    ])
    .expect_code(0);
    let run = project.mldeploy(&["up", "--model-version", "3"]);
    run.expect_code(2);
    assert_says(
        &run.stderr,
        &[
            "cannot load model version 3",
            "model needs xgboost 1.x, image has xgboost",
            "3.2.0",
        ],
    );
    let label = format!("label=mldeploy.project={}", project.name);
    assert!(
        docker(&["ps", "-aq", "--filter", &label])
            .stdout
            .trim()
            .is_empty(),
        "a container was started for a model the image cannot load"
    );
}

/// The port of the sandbox's AWS endpoint (AWS_ENDPOINT_URL's).
fn sandbox_aws_port() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_task_role_that_cannot_read_the_model_fails_the_deploy_with_the_apps_access_denied() {
    let project = example_project("it-exdeny", false, "");
    project
        .mldeploy(&["up", "--model-version", "2", "--timeout", "10m"])
        .expect_code(0);
    // The task role loses its read of the model, as a hand edit in the console would do it
    // (`up` would put the policy back: a rollback converges nothing but the service). The
    // rollback's tasks cannot load the model.
    let role = format!("{}-task", project.name);
    aws(&[
        "iam",
        "delete-role-policy",
        "--role-name",
        &role,
        "--policy-name",
        "mldeploy-model-read",
    ])
    .expect_code(0);
    let failed = project.mldeploy(&["rollback", "--model-version", "1", "--timeout", "10m"]);
    failed.expect_code(1);
    let all = format!("{}{}", failed.stdout, failed.stderr);
    assert_says(&all, &["the app said", "AccessDenied"]);
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}

#[test]
fn what_the_image_holds_is_learned_once_per_image_and_then_read_from_the_cache() {
    let (project, _) = example_on_docker("it-excache");
    let cache = tempfile::tempdir().unwrap();
    let up = |args: &[&str]| {
        let mut cmd = mldeploy_cmd();
        cmd.arg("-C")
            .arg(project.path())
            .args(args)
            .env("XDG_CACHE_HOME", cache.path());
        Run::of(cmd)
    };
    up(&["up", "--model-version", "2"]).expect_code(0);
    let dir = cache.path().join("mldeploy/image-facts");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no cache at {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one image, one answer: {files:?}");
    // The next up of the same image reads the cache and runs nothing in the image: an answer
    // planted there is the one it judges by.
    let mut facts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert!(
        facts["python"].as_str().unwrap().starts_with("3.11"),
        "{facts}"
    );
    facts["packages"]["xgboost-cpu"] = "9.9.9".into();
    std::fs::write(&files[0], facts.to_string()).unwrap();
    let again = up(&["up", "--force", "--model-version", "2"]);
    again.expect_code(2);
    assert_says(&again.stderr, &["image has xgboost-cpu 9.9.9"]);
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}
