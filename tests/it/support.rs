//! Shared helpers: the mldeploy binary, fixture projects, and independent checks through the
//! real docker CLI and awscli against the one shared sandbox.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// Panics with the way out when the sandbox is not there: a test that needs it must not pass
/// without it.
pub fn require_sandbox() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1"),
        "this test needs the local sandbox: run scripts/test, or `scripts/sandbox up && eval \"$(scripts/sandbox env)\"` first"
    );
}

/// A project name no other test (or earlier run) uses.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let suffix = format!(
        "{}-{}-{}",
        std::process::id() % 100_000,
        nanos % 10_000,
        N.fetch_add(1, Ordering::SeqCst)
    );
    // A project name is at most 32 characters: the prefix gives way (the suffix is what makes
    // the name unique), so the hundredth name of a run is as valid as the first.
    let room = 32usize.saturating_sub(suffix.len() + 1);
    let prefix: String = prefix.chars().take(room).collect();
    format!("{}-{suffix}", prefix.trim_end_matches('-'))
}

/// The port the fixture image's web server listens on.
pub const APP_PORT: u16 = 8080;

/// A FROM-scratch image whose busybox httpd serves /app on [`APP_PORT`], as an inference
/// service would: the sandbox's ECS runs it for real and its load balancer asks it.
pub const SERVING_DOCKERFILE: &str = "FROM scratch\nCOPY bin /bin\nCOPY app /app\nEXPOSE 8080\nCMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"0.0.0.0:8080\", \"-h\", \"/app\"]\n";

/// What the fixture's predict endpoint prints: JSON naming the model it serves.
pub const PREDICT_JSON: &str = r#"echo "{\"prediction\": 4.526, \"model_path\": \"$MODEL_PATH\"}""#;

/// A Dockerfile whose third step fails, saying why on stderr, with exit code 7.
pub const FAILING_BUILD_DOCKERFILE: &str = "FROM scratch\nCOPY bin /bin\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo no model here >&2; exit 7\"]\n";

/// A project directory: a FROM-scratch image with the static busybox, a web server that answers
/// /health, /ready and POST /cgi-bin/predict, and a file unique to it.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub name: String,
}

impl Project {
    pub fn new(prefix: &str) -> Project {
        let name = unique_name(prefix);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        // The static busybox, also as the /bin/sh and /bin/wget that the task definition's
        // container health check runs (`CMD-SHELL wget ... /ready`).
        std::fs::create_dir(p.join("bin")).unwrap();
        for tool in ["busybox", "sh", "wget"] {
            std::fs::copy("/bin/busybox", p.join("bin").join(tool))
                .expect("the sandbox installs busybox-static at /bin/busybox");
        }
        std::fs::create_dir(p.join("app")).unwrap();
        std::fs::write(p.join("app/id.txt"), format!("{name}\n")).unwrap();
        std::fs::write(p.join("Dockerfile"), SERVING_DOCKERFILE).unwrap();
        let project = Project { dir, name };
        project.serve("/health", "ok");
        project.serve("/ready", "ready");
        project.predict(PREDICT_JSON);
        project.write_config("");
        project
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes mldeploy.toml with `extra` appended.
    pub fn write_config(&self, extra: &str) {
        let text = format!(
            "[project]\nname = \"{}\"\n\n[model]\nbucket = \"models\"\npath = \"m/{{version}}\"\n{extra}",
            self.name
        );
        std::fs::write(self.path().join("mldeploy.toml"), text).unwrap();
    }

    /// Adds `lines` at the end of mldeploy.toml (to its last table).
    pub fn append_config(&self, lines: &str) {
        let path = self.path().join("mldeploy.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(path, format!("{text}{lines}")).unwrap();
    }

    pub fn write(&self, rel: &str, content: &str) {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// Runs mldeploy in this project.
    pub fn mldeploy(&self, args: &[&str]) -> Run {
        let mut cmd = mldeploy_cmd();
        cmd.arg("-C").arg(self.path()).args(args);
        Run::of(cmd)
    }

    /// A static answer of the image's web server at `path`.
    pub fn serve(&self, path: &str, body: &str) {
        self.write(&format!("app{path}"), &format!("{body}\n"));
    }

    /// The image's POST /cgi-bin/predict: a busybox shell script's standard output after the
    /// header, with `$MODEL_PATH` in reach.
    pub fn predict(&self, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path().join("app/cgi-bin/predict");
        self.write(
            "app/cgi-bin/predict",
            &format!(
                "#!/bin/busybox sh\necho \"Content-Type: application/json\"\necho\n{script}\n"
            ),
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub fn repository(&self) -> String {
        format!("{REGISTRY}/{}", self.name)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        // Leave no images, services or containers of this test behind in the shared sandbox.
        // Repeated reference filters are OR'd: the local name and the ECR one.
        let refs = docker(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "--filter",
            &format!("reference={}:*", self.name),
            "--filter",
            &format!("reference=*/{}:*", self.name),
        ]);
        let all: Vec<String> = refs.stdout.lines().map(str::to_string).collect();
        if all.is_empty() {
            return; // never built, so never deployed
        }
        // Stop what the test deployed, so the shared sandbox does not keep running (and health
        // checking) every test's service until the end of the suite: the ECS service (the
        // sandbox stops its tasks), and any container of the project's image (the Docker
        // target's releases). The rest of the stack is moto's memory only.
        if std::path::Path::new(&self.path().join("mldeploy.toml")).exists() {
            // The model API's service and its workers' (`<name>-<worker>`), all in its cluster.
            let listed = aws(&["ecs", "list-services", "--cluster", &self.name]);
            let workers: Vec<String> = match listed.code {
                0 => listed.json()["serviceArns"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|arn| arn.as_str()?.rsplit('/').next().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            };
            for service in std::iter::once(self.name.clone()).chain(workers) {
                let _ = Command::new("aws")
                    .args(["ecs", "delete-service", "--force", "--cluster", &self.name])
                    .args(["--service", &service])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
        let label = format!("label=mldeploy.project={}", self.name);
        let containers = docker(&["ps", "-aq", "--filter", &label]);
        let ids: Vec<&str> = containers.stdout.split_whitespace().collect();
        if !ids.is_empty() {
            docker(&[&["rm", "-f"][..], &ids].concat());
        }
        let mut args = vec!["rmi", "-f"];
        args.extend(all.iter().map(String::as_str));
        docker(&args);
    }
}

pub fn mldeploy_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mldeploy"));
    cmd.env("NO_COLOR", "1").env_remove("CI");
    cmd
}

/// A finished process: exit code, stdout, stderr.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(mut cmd: Command) -> Run {
        let out: Output = cmd.output().expect("the command starts");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts the exit code, showing both streams when it is not the expected one.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// stdout as the one JSON object `--output json` promises.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}):\n{}", self.stdout))
    }
}

pub fn docker(args: &[&str]) -> Run {
    let mut cmd = Command::new("docker");
    cmd.args(args);
    Run::of(cmd)
}

/// awscli against the sandbox: an independent client to check what mldeploy did.
pub fn aws(args: &[&str]) -> Run {
    let mut cmd = Command::new("aws");
    cmd.args(args).args(["--output", "json"]);
    Run::of(cmd)
}

/// A Dockerfile whose RUN step never ends by itself: a command is in its build until it is
/// signalled or its engine goes away (the engine cancels the step when the client disconnects).
///
/// A step that ended on a timer made the tests that act while the build runs depend on how fast
/// the machine was: a `destroy` slower than the timer found the `up` done and its lock released.
/// Each file is unique (an `ENV` before the RUN), so no build can take the step from the cache.
pub fn slow_dockerfile() -> String {
    format!(
        "FROM scratch\nCOPY bin /bin\nENV MLDEPLOY_TEST_BUILD={}\nRUN [\"/bin/busybox\", \"sleep\", \"86400\"]\n",
        unique_name("slow")
    )
}

/// A run of mldeploy that was interrupted with SIGINT.
pub struct Interrupted {
    pub code: Option<i32>,
    /// stderr after the RUN step began.
    pub stderr: String,
    /// From the signal to the exit.
    pub took: Duration,
}

/// Runs `mldeploy <command>` in the project (with a [`slow_dockerfile`]), waits until the build's
/// RUN step starts, calls `while_running`, then sends SIGINT and waits for the exit.
pub fn interrupt_during_build(
    project: &Project,
    command: &str,
    while_running: impl FnOnce(),
) -> Interrupted {
    project.write("Dockerfile", &slow_dockerfile());
    interrupt_at(project, command, ": RUN", while_running)
}

/// Runs `mldeploy <command>` in the project, waits for a stderr line containing `marker`, calls
/// `while_running`, then sends SIGINT and waits for the exit.
pub fn interrupt_at(
    project: &Project,
    command: &str,
    marker: &str,
    while_running: impl FnOnce(),
) -> Interrupted {
    signal_at(project, command, marker, "INT", while_running)
}

/// Like [`interrupt_at`], with the signal named (`INT`, `TERM`).
pub fn signal_at(
    project: &Project,
    command: &str,
    marker: &str,
    signal: &str,
    while_running: impl FnOnce(),
) -> Interrupted {
    use std::io::{BufRead, BufReader, Read};
    let mut child = mldeploy_cmd()
        .arg("-C")
        .arg(project.path())
        .arg(command)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let mut seen = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 && !line.contains(marker) {
        seen.push_str(&line);
        line.clear();
    }
    assert!(line.contains(marker), "never printed {marker:?}:\n{seen}");
    // A check that fails here still signals the command, and shows what the command said after
    // the marker: that is where the reason is.
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(while_running));
    let start = Instant::now();
    Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    let code = child.wait().unwrap().code();
    let took = start.elapsed();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    if let Err(panic) = checked {
        eprintln!("mldeploy {command} exited {code:?}; after {marker:?} it said:\n{rest}");
        std::panic::resume_unwind(panic);
    }
    Interrupted {
        code,
        stderr: rest,
        took,
    }
}

/// A new S3 bucket holding an empty object at each key.
pub fn bucket_with(keys: &[&str]) -> String {
    bucket_in("us-east-1", keys)
}

/// [`bucket_with`] in `region` (its LocationConstraint).
pub fn bucket_in(region: &str, keys: &[&str]) -> String {
    let bucket = unique_name("it-models");
    let mut create = vec!["s3api", "create-bucket", "--bucket", &bucket];
    let constraint = format!("LocationConstraint={region}");
    if region != "us-east-1" {
        create.extend([
            "--create-bucket-configuration",
            &constraint,
            "--region",
            region,
        ]);
    }
    aws(&create).expect_code(0);
    let body = tempfile::NamedTempFile::new().unwrap();
    for key in keys {
        aws(&[
            "s3api",
            "put-object",
            "--bucket",
            &bucket,
            "--key",
            key,
            "--body",
            body.path().to_str().unwrap(),
        ])
        .expect_code(0);
    }
    bucket
}

/// Polls until `check` returns Some, or panics after `secs` seconds with `what`.
pub fn eventually<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "gave up after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A docker CLI config directory logged in to the sandbox registry with ECR's token, for pulls.
pub fn logged_in_docker_config() -> tempfile::TempDir {
    let config = tempfile::tempdir().unwrap();
    let password = aws(&["ecr", "get-login-password"]);
    password.expect_code(0);
    let mut cmd = Command::new("docker");
    cmd.arg("--config").arg(config.path()).args([
        "login",
        "--username",
        "AWS",
        "--password",
        password.stdout.trim(),
        REGISTRY,
    ]);
    Run::of(cmd).expect_code(0);
    config
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    walk(dir)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A project whose model bucket holds versions 6 and 7.
pub fn deployable(prefix: &str) -> (Project, String) {
    require_sandbox();
    let project = Project::new(prefix);
    let keys: Vec<String> = ["6", "7"]
        .iter()
        .map(|v| format!("mlflow/models/{}/{v}/MLmodel", project.name))
        .collect();
    let bucket = bucket_with(&keys.iter().map(String::as_str).collect::<Vec<_>>());
    std::fs::write(
        project.path().join("mldeploy.toml"),
        format!(
            "[project]\nname = \"{name}\"\n[model]\nbucket = \"{bucket}\"\npath = \"mlflow/models/{name}/{{version}}\"\nversion = 6\n[smoke]\npath = \"/cgi-bin/predict\"\nbody = '{{\"features\": [[8.3, 41.0]]}}'\n[service]\nport = {APP_PORT}\n",
            name = project.name
        ),
    )
    .unwrap();
    (project, bucket)
}

/// The lock id an exit-4 message tells to pass: the word after its last `--force-unlock`.
pub fn lock_id_in(stderr: &str) -> String {
    let (_, after) = stderr
        .rsplit_once("--force-unlock ")
        .unwrap_or_else(|| panic!("no --force-unlock <id> in:\n{stderr}"));
    after
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// Whether the project's deploy lock object exists in the bucket.
pub fn lock_exists(bucket: &str, project: &str) -> bool {
    let key = format!(".mldeploy/{project}/lock");
    aws(&["s3api", "head-object", "--bucket", bucket, "--key", &key]).code == 0
}

/// POST /cgi-bin/predict to `https://<domain>` with curl, reached as `route` says (`--resolve`
/// or `--connect-to`, and its value), verifying the certificate with the sandbox's CA.
pub fn predict_over_https(domain: &str, route: [&str; 2]) -> Run {
    let ca = format!("{}/ca.crt", std::env::var("SANDBOX_CA_DIR").unwrap());
    let mut curl = Command::new("curl");
    curl.args([
        "-sS",
        "--max-time",
        "10",
        "--cacert",
        &ca,
        "-X",
        "POST",
        "-d",
        "{}",
    ])
    .args(route)
    .arg(format!("https://{domain}/cgi-bin/predict"));
    Run::of(curl)
}

/// Puts a role's inline policy back as it is: a change, which IAM takes a while to apply.
pub fn rewrite_role_policy(role: &str, policy_name: &str) {
    // IAM applies this role's changes 5 wall seconds late: a window a test can act in with a
    // few awscli calls (each takes most of a second on a loaded machine).
    let delay = format!("Key=sandbox:iam-delay-seconds,Value={}", aws_seconds(5.0));
    aws(&["iam", "tag-role", "--role-name", role, "--tags", &delay]).expect_code(0);
    let policy = aws(&[
        "iam",
        "get-role-policy",
        "--role-name",
        role,
        "--policy-name",
        policy_name,
    ])
    .expect_code(0)
    .json()["PolicyDocument"]
        .to_string();
    aws(&[
        "iam",
        "put-role-policy",
        "--role-name",
        role,
        "--policy-name",
        policy_name,
        "--policy-document",
        &policy,
    ])
    .expect_code(0);
}

/// The sandbox's scale: how many wall seconds one AWS second lasts.
fn time_scale() -> f64 {
    std::env::var("SANDBOX_TIME_SCALE")
        .expect("`scripts/sandbox env` sets SANDBOX_TIME_SCALE")
        .parse()
        .unwrap()
}

/// Wall seconds for `aws` AWS seconds on the sandbox's clock.
pub fn wall(aws: f64) -> f64 {
    aws * time_scale()
}

/// AWS seconds on the sandbox's clock for `wall` wall seconds.
pub fn aws_seconds(wall: f64) -> f64 {
    wall / time_scale()
}

/// The DNS name of the project's load balancer, as awscli describes it.
pub fn load_balancer_dns(project: &str) -> String {
    aws(&["elbv2", "describe-load-balancers", "--names", project]).json()["LoadBalancers"][0]
        ["DNSName"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The inline policy of the project's task execution role, as IAM has it.
pub fn execution_role_policy(project: &str) -> serde_json::Value {
    aws(&[
        "iam",
        "get-role-policy",
        "--role-name",
        &format!("{project}-execution"),
        "--policy-name",
        "mldeploy-pull-and-log",
    ])
    .json()["PolicyDocument"]
        .clone()
}

/// POST /cgi-bin/predict through the load balancer, with curl: an independent client.
pub fn predict_through(url: &str) -> Run {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "-X", "POST", "-d", "{}"])
        .arg(format!("{url}/cgi-bin/predict"));
    Run::of(cmd)
}

/// What awscli's ec2 `command` lists with the project's tag, the list under `key`.
pub fn by_tag(command: &str, project: &str, key: &str) -> serde_json::Value {
    // DescribeNatGateways alone names its parameter Filter.
    let flag = if command == "describe-nat-gateways" {
        "--filter"
    } else {
        "--filters"
    };
    let run = aws(&[
        "ec2",
        command,
        flag,
        &format!("Name=tag:mldeploy:project,Values={project}"),
    ]);
    run.expect_code(0);
    run.json()[key].clone()
}

/// The project's ECS service as awscli describes it.
pub fn service_of(project: &str) -> serde_json::Value {
    service_in(project, project)
}

/// The service `name` of the project's cluster (a worker's) as awscli describes it; Null when
/// there is none.
pub fn service_in(project: &str, name: &str) -> serde_json::Value {
    aws(&[
        "ecs",
        "describe-services",
        "--cluster",
        project,
        "--services",
        name,
    ])
    .json()["services"][0]
        .clone()
}

/// The task definition the service runs, as `family:revision`, and how many deployments it has.
pub fn serving(project: &str) -> (String, usize) {
    let svc = service_of(project);
    let td = svc["taskDefinition"].as_str().unwrap();
    (
        td.rsplit('/').next().unwrap().to_string(),
        svc["deployments"].as_array().unwrap().len(),
    )
}

pub fn revisions(family: &str) -> usize {
    let run = aws(&["ecs", "list-task-definitions", "--family-prefix", family]);
    run.json()["taskDefinitionArns"].as_array().unwrap().len()
}

/// Asserts that `text` contains every one of `parts`, showing the whole text when one is missing.
pub fn assert_says(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "expected {part:?} in:\n{text}");
    }
}

/// Sends `signal` to an `up` waiting on a rollout that cannot complete, and checks that it exits
/// 130 naming the deployment in flight, with the lock released.
pub fn signal_during_rollout(signal: &str) {
    let (project, bucket) = deployable(&format!("it-fault-{}", signal.to_lowercase()));
    // A rollout that cannot complete: the targets never become healthy.
    std::fs::remove_file(project.path().join("app/health")).unwrap();
    let run = signal_at(&project, "up", "Watching deployment", signal, || {
        assert!(lock_exists(&bucket, &project.name), "up holds the lock")
    });
    assert_eq!(run.code, Some(130), "{}", run.stderr);
    assert_says(
        &run.stderr,
        &[
            "was still rolling out",
            &format!("({}:1)", project.name),
            "released the deploy lock",
        ],
    );
    assert!(!lock_exists(&bucket, &project.name), "the lock is gone");
}

/// A new Secrets Manager secret holding `value`, given to the project's service as
/// `[service.secrets] <env> = <arn>`; returns the ARN.
pub fn secret_in_config(project: &Project, env: &str, value: &str) -> String {
    secret_in_config_with(project, env, value, &[])
}

/// [`secret_in_config`], with more of create-secret's arguments (`--kms-key-id <key>`).
pub fn secret_in_config_with(project: &Project, env: &str, value: &str, extra: &[&str]) -> String {
    let name = unique_name("it-secret");
    let mut args = vec![
        "secretsmanager",
        "create-secret",
        "--name",
        &name,
        "--secret-string",
        value,
    ];
    args.extend_from_slice(extra);
    let arn = aws(&args).expect_code(0).json()["ARN"]
        .as_str()
        .unwrap()
        .to_string();
    let mut config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    config.push_str(&format!("[service.secrets]\n{env} = \"{arn}\"\n"));
    std::fs::write(project.path().join("mldeploy.toml"), config).unwrap();
    arn
}

/// Points the project (a [`deployable`] one, whose config ends in `[service]`) at its own copy
/// of the built-in task-definition template, edited.
pub fn with_template(project: &Project, edit: impl Fn(&str) -> String) {
    let default = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/task-definition.json"
    ))
    .unwrap();
    project.write("deploy/task-definition.json", &edit(&default));
    let mut config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    config.push_str("task_definition_template = \"deploy/task-definition.json\"\n");
    std::fs::write(project.path().join("mldeploy.toml"), config).unwrap();
}

/// An ACM certificate for `names`, signed by the sandbox's CA (which the sandbox's clients trust
/// through SSL_CERT_FILE) and imported into the sandbox's ACM: its ARN.
pub fn certificate_for(names: &[&str]) -> String {
    let ca = PathBuf::from(
        std::env::var("SANDBOX_CA_DIR").expect("`scripts/sandbox env` sets SANDBOX_CA_DIR"),
    );
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).display().to_string();
    let sans: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
    std::fs::write(
        p("ext"),
        format!(
            "subjectAltName={}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
            sans.join(",")
        ),
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let mut cmd = Command::new("openssl");
        cmd.args(args);
        Run::of(cmd).expect_code(0);
    };
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        &format!("/CN={}", names[0]),
        "-keyout",
        &p("key.pem"),
        "-out",
        &p("csr.pem"),
    ]);
    let serial = format!(
        "{}",
        std::process::id() as u64 * 1_000_003 + unique_name("s").len() as u64
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("csr.pem"),
        "-CA",
        &ca.join("ca.crt").display().to_string(),
        "-CAkey",
        &ca.join("ca.key").display().to_string(),
        "-set_serial",
        &serial,
        "-days",
        "30",
        "-extfile",
        &p("ext"),
        "-out",
        &p("cert.pem"),
    ]);
    let imported = aws(&[
        "acm",
        "import-certificate",
        "--certificate",
        &format!("fileb://{}", p("cert.pem")),
        "--private-key",
        &format!("fileb://{}", p("key.pem")),
        "--certificate-chain",
        &format!("fileb://{}", ca.join("ca.crt").display()),
    ]);
    imported.expect_code(0);
    imported.json()["CertificateArn"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The cluster's stopped tasks as awscli describes them (empty when there are none).
pub fn stopped_tasks(cluster: &str) -> Vec<serde_json::Value> {
    let listed = aws(&[
        "ecs",
        "list-tasks",
        "--cluster",
        cluster,
        "--desired-status",
        "STOPPED",
    ])
    .json();
    let arns: Vec<&str> = listed["taskArns"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    if arns.is_empty() {
        return Vec::new();
    }
    let mut args = vec!["ecs", "describe-tasks", "--cluster", cluster, "--tasks"];
    args.extend(arns);
    aws(&args).json()["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Registers, with awscli, a task definition as DescribeTaskDefinition returned it (edited by
/// the caller), without the fields only ECS sets: its new revision's ARN.
pub fn register_copy(mut task_definition: serde_json::Value) -> String {
    let fields = task_definition.as_object_mut().unwrap();
    for read_only in [
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
    ] {
        fields.remove(read_only);
    }
    let input = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(input.path(), task_definition.to_string()).unwrap();
    let registered = aws(&[
        "ecs",
        "register-task-definition",
        "--cli-input-json",
        &format!("file://{}", input.path().display()),
    ]);
    registered.expect_code(0);
    registered.json()["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Runs one of the sandbox's own checks, `tests/sandbox/<script>`, with the sandbox's Python.
pub fn sandbox_check(script: &str) -> Run {
    require_sandbox();
    let root = env!("CARGO_MANIFEST_DIR");
    let mut cmd = Command::new(format!("{root}/.sandbox/venv/bin/python"));
    cmd.arg(format!("{root}/tests/sandbox/{script}"));
    Run::of(cmd)
}

/// A worker image of its own, from `scorer/` (out of the project's context): busybox and a
/// message it prints.
pub fn own_image(project: &Project, message: &str) {
    std::fs::create_dir_all(project.path().join("scorer/bin")).unwrap();
    std::fs::copy("/bin/busybox", project.path().join("scorer/bin/busybox")).unwrap();
    project.write(
        "scorer/Dockerfile",
        "FROM scratch\nCOPY bin /bin\nCOPY msg.txt /msg.txt\n",
    );
    project.write("scorer/msg.txt", &format!("{message}\n"));
}
