//! Unit tests of parsing and validating mldeploy.toml.

use super::raw::SCHEMA;
use super::*;

fn project_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    dir
}

const GOOD: &str = r#"
[project]
name = "housing"
region = "us-east-1"

[model]
bucket = "my-models"
path = "mlflow/models/california-housing/{version}"
version = 6

[service]
port = 8080
cpu = 512
memory = 2048
"#;

fn parse_in(dir: &Path, text: &str) -> Result<Config, ConfigError> {
    parse(text, &dir.join(FILE_NAME))
}

fn only_problem(err: ConfigError) -> Problem {
    assert_eq!(err.problems.len(), 1, "{err}");
    err.problems.into_iter().next().unwrap()
}

#[test]
fn a_good_file_loads_with_defaults_filled_in() {
    let dir = project_dir();
    let c = parse_in(dir.path(), GOOD).unwrap();
    assert_eq!(c.project.name, "housing");
    assert_eq!(c.model.as_ref().unwrap().version.as_deref(), Some("6"));
    assert_eq!(c.service.health_check_path, "/health");
    assert_eq!(c.service.ready_path, "/ready");
    assert_eq!(c.service.desired_count, 1);
    assert_eq!(c.image.keep_images, 30);
    assert_eq!(c.image.dockerfile, dir.path().join("./Dockerfile"));
    assert!(c.smoke.is_none());
    assert_eq!(
        c.lock.bucket, "my-models",
        "the lock lives in the model bucket"
    );
    assert_eq!(c.lock.lease, crate::lock::DEFAULT_LEASE);
}

#[test]
fn the_lock_may_live_elsewhere_with_a_lease_of_10s_to_1h() {
    let dir = project_dir();
    let c = parse_in(
        dir.path(),
        &format!("{GOOD}\n[lock]\nbucket = \"deploy-locks\"\nlease = \"30s\"\n"),
    )
    .unwrap();
    assert_eq!(c.lock.bucket, "deploy-locks");
    assert_eq!(c.lock.lease, std::time::Duration::from_secs(30));
    for (lease, says) in [
        ("5s", "between 10s and 1h"),
        ("2h", "between 10s and 1h"),
        ("soon", "not a duration"),
    ] {
        let text = format!("{GOOD}\n[lock]\nlease = \"{lease}\"\n");
        let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
        assert_eq!(p.key.as_deref(), Some("lock.lease"));
        assert!(p.message.contains(says), "{lease}: {}", p.message);
    }
    let text = format!("{GOOD}\n[lock]\nbucket = \"No_Such\"\n");
    let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
    assert_eq!(p.key.as_deref(), Some("lock.bucket"));
}

#[test]
fn an_unknown_key_names_its_line_and_the_closest_known_key() {
    let dir = project_dir();
    let text = GOOD.replace("[service]\n", "[image]\ncontxt = \".\"\n\n[service]\n");
    let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
    assert_eq!(p.key.as_deref(), Some("image.contxt"));
    assert_eq!(p.line, Some(12));
    assert!(
        p.message.contains("did you mean `image.context`?"),
        "{}",
        p.message
    );
}

#[test]
fn an_unknown_table_is_reported_too() {
    let dir = project_dir();
    let text = format!("{GOOD}\n[servcie]\nport = 1\n");
    let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
    assert_eq!(p.key.as_deref(), Some("servcie"));
    assert!(
        p.message.contains("did you mean `service`?"),
        "{}",
        p.message
    );
}

#[test]
fn missing_required_keys_are_all_listed() {
    let dir = project_dir();
    let err = parse_in(dir.path(), "[model]\n[service]\nport = 80\n").unwrap_err();
    let keys: Vec<_> = err.problems.iter().filter_map(|p| p.key.clone()).collect();
    assert_eq!(keys, ["project.name", "model.bucket", "model.path"]);
    assert!(err
        .to_string()
        .contains("missing required key `project.name`"));
}

const NO_MODEL: &str = r#"
[project]
name = "tracking"

[lock]
bucket = "team-deploys"

[service]
port = 5000

[workers.janitor]
command = ["gc"]
"#;

#[test]
fn a_project_without_a_model_table_serves_none_and_its_workers_read_none() {
    let dir = project_dir();
    let c = parse_in(dir.path(), NO_MODEL).unwrap();
    assert!(c.model.is_none());
    assert_eq!(c.lock.bucket, "team-deploys");
    assert!(
        !c.workers[0].model,
        "a worker reads the model only when there is one"
    );
    assert_eq!(c.model_path_template(), "");
    let flag = c.model_for("--model-version").unwrap_err();
    assert_eq!(
        crate::exit::status_of(&flag),
        crate::exit::ExitStatus::Usage
    );
    assert!(
        flag.to_string()
            .starts_with("--model-version: tracking has no [model]"),
        "{flag}"
    );
    // Without a model, the names mldeploy would set for it are the user's.
    let own = NO_MODEL.replace(
        "port = 5000",
        "port = 5000\nenvironment = { MODEL_PATH = \"x\" }",
    );
    assert!(parse_in(dir.path(), &own).is_ok());
}

#[test]
fn without_a_model_the_lock_bucket_is_required_and_a_worker_cannot_ask_for_the_model() {
    let dir = project_dir();
    let no_lock = NO_MODEL.replace("[lock]\nbucket = \"team-deploys\"\n", "");
    let p = only_problem(parse_in(dir.path(), &no_lock).unwrap_err());
    assert_eq!(p.key.as_deref(), Some("lock.bucket"));
    assert!(p.message.contains("without [model]"), "{}", p.message);

    let asks = NO_MODEL.replace("command = [\"gc\"]", "command = [\"gc\"]\nmodel = true");
    let p = only_problem(parse_in(dir.path(), &asks).unwrap_err());
    assert_eq!(p.key.as_deref(), Some("workers.janitor.model"));
    assert!(p.message.contains("needs a [model] table"), "{}", p.message);
}

#[test]
fn a_wrong_type_names_the_key_and_line() {
    let dir = project_dir();
    let text = GOOD.replace("port = 8080", "port = \"eighty\"");
    let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
    assert_eq!(p.key.as_deref(), Some("service.port"));
    assert_eq!(p.line, Some(12));
}

#[test]
fn invalid_toml_names_the_line() {
    let dir = project_dir();
    let p = only_problem(parse_in(dir.path(), "[project]\nname = \n").unwrap_err());
    assert_eq!(p.line, Some(2));
    assert!(p.message.starts_with("not valid TOML"), "{}", p.message);
}

#[test]
fn project_names_follow_the_strictest_aws_rule() {
    assert!(check_project_name("california-housing").is_ok());
    assert!(check_project_name("a-name-that-is-much-longer-than-32")
        .unwrap_err()
        .contains("32"));
    assert!(check_project_name("Housing").unwrap_err().contains("'H'"));
    assert!(check_project_name("house_prices")
        .unwrap_err()
        .contains("'_'"));
    assert!(check_project_name("-housing").is_err());
    assert!(check_project_name("a--b").unwrap_err().contains("ECR"));
    assert!(check_project_name("internal-api").is_err());
}

#[test]
fn a_model_path_or_bucket_that_would_widen_the_task_role_is_refused() {
    let dir = project_dir();
    for (from, to, key, says) in [
        ("/{version}\"", "/*/{version}\"", "model.path", "wildcard"),
        (
            "path = \"mlflow/models/california-housing/{version}\"",
            "path = \"{version}\"",
            "model.path",
            "whole bucket",
        ),
        ("bucket = \"", "bucket = \"*", "model.bucket", "wildcard"),
    ] {
        let text = GOOD.replacen(from, to, 1);
        assert_ne!(text, GOOD, "{from}");
        let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
        assert_eq!(p.key.as_deref(), Some(key), "{to}");
        assert!(p.message.contains(says), "{}", p.message);
    }
}

#[test]
fn health_timings_are_checked_against_what_aws_allows_naming_the_key() {
    let dir = project_dir();
    for (extra, key, says) in [
        (
            "health_check_interval = \"4s\"",
            "service.health_check_interval",
            "between 5 s and 300 s",
        ),
        (
            "health_check_interval = \"ten\"",
            "service.health_check_interval",
            "is not a duration",
        ),
        (
            "healthy_threshold = 1",
            "service.healthy_threshold",
            "between 2 and 10",
        ),
        (
            "unhealthy_threshold = 11",
            "service.unhealthy_threshold",
            "between 2 and 10",
        ),
        (
            "deregistration_delay = \"2h\"",
            "service.deregistration_delay",
            "between 0 s and 3600 s",
        ),
        (
            "model_load_time = \"-1s\"",
            "service.model_load_time",
            "is not a duration",
        ),
        (
            "ready_check_interval = \"301s\"",
            "service.ready_check_interval",
            "between 5 s and 300 s",
        ),
        (
            "ready_check_retries = 0",
            "service.ready_check_retries",
            "between 1 and 10",
        ),
        (
            "ready_check = false\nready_check_command = [\"/app/check\"]",
            "service.ready_check_command",
            "`service.ready_check` = false turns it off",
        ),
        (
            "ready_check_command = []",
            "service.ready_check_command",
            "must start with the program to run",
        ),
        (
            "ready_check_command = [\"wget -q http://127.0.0.1/ready\"]",
            "service.ready_check_command",
            "for a shell command write [\"/bin/sh\", \"-c\", \"...\"]",
        ),
    ] {
        let p = only_problem(parse_in(dir.path(), &format!("{GOOD}{extra}\n")).unwrap_err());
        assert_eq!(p.key.as_deref(), Some(key), "{extra}");
        assert!(p.message.contains(says), "{}", p.message);
    }
    let c = parse_in(dir.path(), GOOD).unwrap();
    assert_eq!(c.service.health, crate::config::Health::default());
}

#[test]
fn https_needs_a_domain_and_its_certificate_together() {
    let dir = project_dir();
    let cert = "certificate_arn = \"arn:aws:acm:us-east-1:1:certificate/x\"\n";
    for (extra, key, says) in [
        (
            cert.to_string(),
            "service.certificate_arn",
            "needs `service.domain`",
        ),
        (
            "domain = \"models.example.com\"\n".to_string(),
            "service.domain",
            "needs `service.certificate_arn`",
        ),
        (
            format!("{cert}domain = \"models_1.example.com\"\n"),
            "service.domain",
            "is not a DNS name",
        ),
        (
            format!("{cert}domain = \"localhost\"\n"),
            "service.domain",
            "is not a DNS name",
        ),
        (
            "hosted_zone_id = \"Z1\"\n".to_string(),
            "service.hosted_zone_id",
            "needs `service.domain`",
        ),
        (
            "domain = \"m.example.com\"\nhosted_zone_id = \"z-1\"\n".to_string(),
            "service.hosted_zone_id",
            "is not a Route 53 hosted zone id",
        ),
    ] {
        let p = only_problem(parse_in(dir.path(), &format!("{GOOD}{extra}")).unwrap_err());
        assert_eq!(p.key.as_deref(), Some(key), "{extra}");
        assert!(p.message.contains(says), "{}", p.message);
    }
    let both = format!("{GOOD}{cert}domain = \"Models.Example.com\"\n");
    let c = parse_in(dir.path(), &both).unwrap();
    assert_eq!(c.service.domain.as_deref(), Some("models.example.com"));
    // A hosted zone stands in for the certificate: mldeploy requests one through it.
    let zoned = format!("{GOOD}domain = \"m.example.com\"\nhosted_zone_id = \"Z1\"\n");
    let c = parse_in(dir.path(), &zoned).unwrap();
    assert_eq!(c.service.certificate_arn, None);
    assert_eq!(c.service.hosted_zone_id.as_deref(), Some("Z1"));
}

#[test]
fn a_model_path_without_version_is_refused() {
    let dir = project_dir();
    let text = GOOD.replace("/{version}\"", "/latest\"");
    let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
    assert_eq!(p.key.as_deref(), Some("model.path"));
    assert!(p.message.contains("{version}"));
    assert_eq!(p.line, Some(8));
}

#[test]
fn a_registry_needs_an_http_uri_and_a_name_and_takes_a_prefix_without_version() {
    let dir = project_dir();
    let with = |lines: &str| GOOD.replace("version = 6\n", &format!("version = 6\n{lines}"));
    let ok = parse_in(
        dir.path(),
        &with("registry = \"http://127.0.0.1:5557\"\nname = \"housing\"\n")
            .replace("/{version}\"", "/\""),
    )
    .unwrap();
    assert_eq!(
        ok.model.as_ref().unwrap().path,
        "mlflow/models/california-housing/"
    );
    assert_eq!(
        ok.model.as_ref().unwrap().registry.as_ref().unwrap().name,
        "housing"
    );
    for (lines, key, says) in [
        (
            "registry = \"mlflow.example.com\"\nname = \"h\"\n",
            "model.registry",
            "http://",
        ),
        (
            "registry = \"https://m.example.com\"\n",
            "model.registry",
            "model.name",
        ),
        ("name = \"h\"\n", "model.name", "model.registry"),
        (
            "registry = \"https://m.example.com\"\nname = \"h\"\nset_alias = \"v3\"\n",
            "model.set_alias",
            "reserved",
        ),
        (
            "registry = \"https://m.example.com\"\nname = \"h\"\nset_alias = \"a b\"\n",
            "model.set_alias",
            "not an alias",
        ),
    ] {
        let p = only_problem(parse_in(dir.path(), &with(lines)).unwrap_err());
        assert_eq!(p.key.as_deref(), Some(key), "{lines}");
        assert!(p.message.contains(says), "{lines}: {}", p.message);
    }
}

#[test]
fn a_cpu_memory_pair_fargate_lacks_lists_the_valid_memory() {
    let dir = project_dir();
    let text = GOOD.replace("cpu = 512\nmemory = 2048", "cpu = 256\nmemory = 4096");
    let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
    assert_eq!(p.key.as_deref(), Some("service.memory"));
    assert!(
        p.message.ends_with("valid: 512, 1024, 2048"),
        "{}",
        p.message
    );

    let text = GOOD.replace("cpu = 512", "cpu = 300");
    let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
    assert!(p.message.contains("256, 512, 1024"), "{}", p.message);

    let text = GOOD.replace("memory = 2048", "memory = 5000");
    let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
    assert!(
        p.message.ends_with("valid: 1024, 2048, 3072, 4096"),
        "{}",
        p.message
    );

    let text = GOOD.replace("cpu = 512\nmemory = 2048", "cpu = 1024\nmemory = 5000");
    let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
    assert!(
        p.message.contains("2048 to 8192 in steps of 1024"),
        "{}",
        p.message
    );
}

#[test]
fn a_missing_context_or_dockerfile_is_named() {
    let dir = project_dir();
    let text = GOOD.replace("[service]\n", "[image]\ncontext = \"app\"\n\n[service]\n");
    let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
    assert_eq!(p.key.as_deref(), Some("image.context"));
    assert!(p.message.contains("app"));

    std::fs::create_dir(dir.path().join("app")).unwrap();
    let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
    assert_eq!(p.key.as_deref(), Some("image.dockerfile"));
    assert!(p.message.contains("app/Dockerfile"), "{}", p.message);
}

#[test]
fn every_schema_key_is_read_by_the_typed_config() {
    // deny_unknown_fields on the Raw structs refuses any key the schema allows but the
    // structs forget; this file sets every key in SCHEMA.
    let dir = project_dir();
    let text = r#"
[project]
name = "p1"
region = "eu-west-1"
profile = "ml-prod"
[image]
context = "."
dockerfile = "Dockerfile"
platform = "linux/amd64"
target = "runtime"
keep_images = 5
[image.build_args]
PYTHON = "3.11"
[model]
bucket = "b-1"
path = "m/{version}"
version = "7"
registry = "https://mlflow.example.com"
name = "housing"
set_alias = "production"
[service]
port = 80
cpu = 1024
memory = 2048
desired_count = 2
health_check_path = "/h"
ready_path = "/r"
certificate_arn = "arn:aws:acm:eu-west-1:1:certificate/x"
domain = "Models.Example.com."
hosted_zone_id = "/hostedzone/Z0123ABC"
health_check_interval = "15s"
healthy_threshold = 3
unhealthy_threshold = 4
deregistration_delay = "0s"
model_load_time = "5m"
ready_check_interval = "20s"
ready_check_retries = 5
ready_check = true
ready_check_command = ["/app/healthcheck", "--port", "80"]
log_retention_days = 14
task_definition_template = "Dockerfile"
[service.autoscaling]
min_count = 1
max_count = 6
metric = "requests"
target = 500.0
scale_in_cooldown = "10m"
scale_out_cooldown = "30s"
[service.environment]
LOG_LEVEL = "info"
[service.secrets]
DB_PASSWORD = "arn:aws:secretsmanager:eu-west-1:1:secret:db-AbCdEf"
[network]
subnets = ["subnet-1", "subnet-2"]
security_groups = ["sg-1"]
allow_from = ["10.0.0.0/8", "2001:db8::/32"]
load_balancer = "internal"
[target]
kind = "ecs"
host_port = 9000
proxy = true
proxy_image = "ghcr.io/acme/caddy:2.8"
drain = "30s"
keep_releases = 3
https_port = 8443
acme_ca = "https://acme.internal/directory"
acme_ca_root = "gate.jsonl"
acme_email = "ops@example.com"
build = "local"
log_max_size = "5m"
log_files = 4
[lock]
bucket = "locks-1"
lease = "1m"
[smoke]
path = "/predict"
method = "post"
body = "{}"
expect_status = 200
[deploy]
strategy = "canary"
bake_time = "10m"
canary_percent = 12.5
canary_bake_time = "3m"
linear_step_percent = 20
linear_step_bake_time = "2m"
check_interval = "15s"
release_command = ["python", "migrate.py"]
[gate]
requests = [{ path = "/predict", body = { features = [1.0] } }]
requests_file = "gate.jsonl"
value = "/prediction"
tolerance = 0.1
max_failure_share = 0.05
max_p95 = "250ms"
max_p95_ratio = 1.5
[workers.scorer]
command = ["python", "-m", "scorer"]
cpu = 512
memory = 1024
desired_count = 2
environment = { QUEUE = "scoring" }
secrets = { TOKEN = "arn:aws:secretsmanager:eu-west-1:1:secret:t-AbCdEf" }
model = false
[workers.scorer.autoscaling]
min_count = 1
max_count = 4
metric = "memory"
target = 60
scale_in_cooldown = "2m"
scale_out_cooldown = "30s"
[workers.scorer.image]
context = "."
dockerfile = "Dockerfile"
build_args = { STAGE = "scorer" }
platform = "linux/arm64"
target = "scorer"
[workers.fetcher]
image = { ref = "ghcr.io/acme/fetcher:1.2" }
"#;
    std::fs::write(
        dir.path().join("gate.jsonl"),
        "{\"method\": \"put\", \"path\": \"/p\", \"body\": \"raw\"}\n\n{\"path\": \"/ready\"}\n",
    )
    .unwrap();
    let c = parse_in(dir.path(), text).unwrap();
    let table: toml::Table = toml::from_str(text).unwrap();
    let mut set_here: Vec<String> = Vec::new();
    // Each worker's table is the schema's `workers.*`.
    let mut tables: Vec<(&str, &toml::Value)> = Vec::new();
    for (t, keys) in &table {
        match t.as_str() {
            "workers" => tables.extend(keys.as_table().unwrap().values().map(|w| ("workers.*", w))),
            _ => tables.push((t.as_str(), keys)),
        }
    }
    for (t, keys) in tables {
        // A free-form table counts as its key, not its entries; a table of known keys as both.
        for (k, v) in keys.as_table().unwrap() {
            set_here.push(format!("{t}.{k}"));
            let nested = format!("{t}.{k}");
            let known = SCHEMA
                .iter()
                .any(|(name, keys)| *name == nested && !keys.contains(&"*"));
            if let (true, Some(inner)) = (known, v.as_table()) {
                set_here.extend(inner.keys().map(|i| format!("{nested}.{i}")));
            }
        }
    }
    let mut listed: Vec<String> = SCHEMA
        .iter()
        .flat_map(|(t, keys)| {
            keys.iter()
                .filter(|k| **k != "*")
                .map(move |k| format!("{t}.{k}"))
        })
        .collect();
    // The private tasks' keys make mldeploy's own network, which network.subnets rules out.
    let private = format!("{GOOD}[network]\ntasks = \"private\"\negress = \"endpoints\"\n");
    let p = parse_in(dir.path(), &private).unwrap();
    assert_eq!(
        p.tasks_network,
        crate::config::TasksNetwork::Private(crate::config::Egress::Endpoints)
    );
    set_here.extend(["network.tasks".to_string(), "network.egress".to_string()]);
    set_here.sort();
    set_here.dedup();
    listed.sort();
    assert_eq!(set_here, listed, "this test must set every key in SCHEMA");
    assert_eq!(c.image.build_args["PYTHON"], "3.11");
    let scorer = &c.workers[1];
    assert_eq!(
        c.workers[0].image,
        Some(WorkerImage::Ref("ghcr.io/acme/fetcher:1.2".into()))
    );
    match &scorer.image {
        Some(WorkerImage::Build(image)) => {
            assert_eq!(image.build_args["STAGE"], "scorer");
            assert_eq!(image.target.as_deref(), Some("scorer"));
            assert_eq!(image.platform.as_deref(), Some("linux/arm64"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        (
            scorer.name.as_str(),
            scorer.cpu,
            scorer.memory,
            scorer.desired_count,
            scorer.model
        ),
        ("scorer", 512, 1024, 2, false)
    );
    assert_eq!(scorer.command, ["python", "-m", "scorer"]);
    let scaling = scorer.autoscaling.as_ref().unwrap();
    assert_eq!(
        (scaling.min_count, scaling.max_count, scaling.metric),
        (1, 4, crate::config::Metric::Memory)
    );
    assert_eq!(scorer.environment["QUEUE"], "scoring");
    assert!(scorer.secrets["TOKEN"].ends_with(":secret:t-AbCdEf"));
    assert_eq!(c.smoke.unwrap().method, "POST");
    assert_eq!(c.image.keep_images, 5);
    assert_eq!(
        c.target.proxy_image.as_deref(),
        Some("ghcr.io/acme/caddy:2.8")
    );
    assert_eq!(c.target.drain, std::time::Duration::from_secs(30));
    assert_eq!(c.target.keep_releases, 3);
    assert_eq!(c.target.https_port, 8443);
    assert!(c.target.build_locally);
    assert_eq!(c.target.log_max_size, "5m");
    assert_eq!(c.target.log_files, 4);
    assert_eq!(
        c.service.ready_check,
        crate::config::ReadyCheckSetting::Command(
            ["/app/healthcheck", "--port", "80"]
                .map(String::from)
                .to_vec()
        )
    );
    assert_eq!(c.target.acme.directory, "https://acme.internal/directory");
    assert_eq!(c.target.acme.email.as_deref(), Some("ops@example.com"));
    assert!(c
        .target
        .acme
        .ca_root
        .as_ref()
        .unwrap()
        .ends_with("gate.jsonl"));
    assert_eq!(c.service.environment["LOG_LEVEL"], "info");
    assert_eq!(c.service.log_retention_days, 14);
    assert_eq!(c.allow_from, ["10.0.0.0/8", "2001:db8::/32"]);
    assert!(c.internal_load_balancer);
    assert_eq!(
        c.service.autoscaling,
        Some(crate::config::Autoscaling {
            min_count: 1,
            max_count: 6,
            metric: crate::config::Metric::Requests,
            target: 500.0,
            scale_in_cooldown: 600,
            scale_out_cooldown: 30,
        })
    );
    assert_eq!(c.service.domain.as_deref(), Some("models.example.com"));
    assert_eq!(c.service.hosted_zone_id.as_deref(), Some("Z0123ABC"));
    assert_eq!(
        c.service.health,
        crate::config::Health {
            check_interval: 15,
            healthy_threshold: 3,
            unhealthy_threshold: 4,
            deregistration_delay: 0,
            model_load_time: 300,
            ready_check_interval: 20,
            ready_check_retries: 5,
        }
    );
    assert_eq!(
        c.model.as_ref().unwrap().registry,
        Some(crate::config::ModelRegistry {
            uri: "https://mlflow.example.com".into(),
            name: "housing".into(),
            set_alias: Some("production".into()),
        })
    );
    assert_eq!(c.lock.lease, std::time::Duration::from_secs(60));
    assert_eq!(
        c.deploy,
        crate::config::Deploy {
            strategy: crate::config::Strategy::Canary {
                percent: 12.5,
                bake_minutes: 3
            },
            bake_minutes: 10,
            check_interval: std::time::Duration::from_secs(15),
            release_command: Some(vec!["python".into(), "migrate.py".into()]),
        }
    );
    let gate = c.gate.unwrap();
    let requests: Vec<_> = gate
        .requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str(), r.body.as_deref()))
        .collect();
    assert_eq!(
        requests,
        [
            ("POST", "/predict", Some(r#"{"features":[1.0]}"#)),
            ("PUT", "/p", Some("raw")),
            ("GET", "/ready", None)
        ]
    );
    assert_eq!(
        (gate.tolerance, gate.max_failure_share, gate.max_p95_ratio),
        (0.1, 0.05, 1.5)
    );
    assert_eq!(gate.max_p95, Some(std::time::Duration::from_millis(250)));
}

#[test]
fn deploy_and_gate_keys_are_checked_against_what_ecs_takes() {
    let dir = project_dir();
    std::fs::write(
        dir.path().join("bad.jsonl"),
        "{\"path\": \"/p\"}\nnot json\n",
    )
    .unwrap();
    let err = parse_in(
        dir.path(),
        &format!(
            "{GOOD}[deploy]\nstrategy = \"red_black\"\nbake_time = \"90s\"\ncanary_percent = 0.05\nlinear_step_percent = 2\nrelease_command = [\" \"]\n[gate]\nrequests_file = \"bad.jsonl\"\nvalue = \"prediction\"\ntolerance = 2\nmax_p95 = \"fast\"\n"
        ),
    )
    .unwrap_err();
    let text = err.to_string();
    for expected in [
        "`deploy.strategy` = \"red_black\" is not one of",
        "`deploy.bake_time` = \"90s\" must be whole minutes",
        "`deploy.canary_percent` = 0.05 must be a multiple of 0.1 from 0.1 to 100",
        "`deploy.linear_step_percent` = 2 must be a multiple of 0.1 from 3 to 100",
        "`deploy.release_command` must start with the program to run",
        "bad.jsonl:2: not a request",
        "`gate.value` = \"prediction\" must be a JSON pointer",
        "`gate.tolerance` = 2 must be between 0 and 1",
        "`gate.max_p95` = \"fast\" is not a duration",
        "[gate] runs while a blue/green, canary or linear deployment",
    ] {
        assert!(text.contains(expected), "{expected:?} missing in:\n{text}");
    }
    let docker = parse_in(
        dir.path(),
        &format!("{GOOD}[target]\nkind = \"docker\"\n[deploy]\nstrategy = \"blue_green\"\n[gate]\nvalue = \"/p\"\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(docker.contains("needs ECS's load balancer"), "{docker}");
    assert!(docker.contains("[gate] needs sample requests"), "{docker}");
    // Behind the Docker target's proxy the gate needs no strategy; without the proxy it has
    // nothing holding users back.
    let gate = "[gate]\nrequests = [{ path = \"/p\" }]\nvalue = \"/p\"\n";
    let proxied = parse_in(
        dir.path(),
        &format!("{GOOD}[target]\nkind = \"docker\"\n{gate}"),
    );
    assert!(proxied.unwrap().gate.is_some());
    let bare = parse_in(
        dir.path(),
        &format!("{GOOD}[target]\nkind = \"docker\"\nproxy = false\n{gate}"),
    )
    .unwrap_err()
    .to_string();
    assert!(bare.contains("[gate] runs while"), "{bare}");
}

#[test]
fn secrets_must_be_secret_or_parameter_arns_and_not_plain_environment() {
    assert_eq!(
        secret_resource("arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf:password::"),
        Some(SecretResource::Secret(
            "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf".into()
        ))
    );
    assert_eq!(
        secret_resource("arn:aws:ssm:us-east-1:1:parameter/prod/api-key"),
        Some(SecretResource::Parameter(
            "arn:aws:ssm:us-east-1:1:parameter/prod/api-key".into()
        ))
    );
    for bad in [
        "db-password",
        "arn:aws:s3:::bucket/key",
        "arn:aws:ssm:us-east-1:1:parameter/",
    ] {
        assert_eq!(secret_resource(bad), None, "{bad}");
    }
    let dir = project_dir();
    let err = parse_in(
            dir.path(),
            &format!("{GOOD}[service.environment]\nTOKEN = \"x\"\n[service.secrets]\nTOKEN = \"arn:aws:ssm:us-east-1:1:parameter/t\"\nKEY = \"hunter2\"\n"),
        )
        .unwrap_err();
    let messages: Vec<&str> = err.problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("`service.secrets.TOKEN` names a variable that is already set (in [service.environment])")), "{messages:?}");
    assert!(
        messages.iter().any(|m| m.contains(
            "`service.secrets.KEY` is not a Secrets Manager secret or SSM parameter ARN"
        )),
        "{messages:?}"
    );
    assert!(
        !err.to_string().contains("hunter2"),
        "a pasted secret is never echoed: {err}"
    );
}

#[test]
fn the_target_is_ecs_or_docker_and_the_host_port_defaults_to_the_service_port() {
    let dir = project_dir();
    let c = parse_in(dir.path(), GOOD).unwrap();
    assert_eq!(c.target.kind, TargetKind::Ecs);
    assert_eq!(c.target.host_port, c.service.port);
    let c = parse_in(dir.path(), &format!("{GOOD}[target]\nkind = \"docker\"\n")).unwrap();
    assert_eq!(c.target.kind, TargetKind::Docker);
    let p = only_problem(
        parse_in(dir.path(), &format!("{GOOD}[target]\nkind = \"k8s\"\n")).unwrap_err(),
    );
    assert_eq!(p.key.as_deref(), Some("target.kind"));
    assert!(p.message.contains("\"ecs\" or \"docker\""), "{}", p.message);
}

#[test]
fn the_docker_target_runs_a_caddy_proxy_unless_told_not_to() {
    let dir = project_dir();
    let c = parse_in(dir.path(), GOOD).unwrap();
    assert_eq!(c.target.proxy_image.as_deref(), Some("caddy:2"));
    assert_eq!(c.target.drain, std::time::Duration::from_secs(10));
    let off = parse_in(
        dir.path(),
        &format!("{GOOD}[target]\nproxy = false\ndrain = \"0s\"\n"),
    )
    .unwrap();
    assert_eq!(off.target.proxy_image, None);
    assert!(off.target.drain.is_zero());
    let problem = |target: &str| {
        only_problem(parse_in(dir.path(), &format!("{GOOD}[target]\n{target}")).unwrap_err())
    };
    let p = problem("proxy = false\nproxy_image = \"caddy:2\"\n");
    assert_eq!(p.key.as_deref(), Some("target.proxy_image"));
    assert!(
        p.message.contains("`target.proxy` = false"),
        "{}",
        p.message
    );
    let p = problem("drain = \"forever\"\n");
    assert_eq!(p.key.as_deref(), Some("target.drain"));
    let p = problem("proxy_image = \"caddy 2\"\n");
    assert_eq!(p.key.as_deref(), Some("target.proxy_image"));
    assert_eq!(c.target.keep_releases, 5);
    let p = problem("keep_releases = 0\n");
    assert_eq!(p.key.as_deref(), Some("target.keep_releases"));
    assert_eq!(
        (c.target.log_max_size.as_str(), c.target.log_files),
        ("10m", 3)
    );
    for size in ["10", "10mb", "0m", "-1m", "1.5m", "m"] {
        let p = problem(&format!("log_max_size = \"{size}\"\n"));
        assert_eq!(p.key.as_deref(), Some("target.log_max_size"), "{size}");
        assert!(p.message.contains("like \"10m\""), "{}", p.message);
    }
    let p = problem("log_files = 0\n");
    assert_eq!(p.key.as_deref(), Some("target.log_files"));
    assert_eq!(c.target.acme.directory, crate::config::LETS_ENCRYPT);
    let p = problem("acme_ca_root = \"pebble.pem\"\n");
    assert_eq!(p.key.as_deref(), Some("target.acme_ca_root"));
    assert!(p.message.contains("no such file"), "{}", p.message);
    assert!(!c.target.build_locally);
    let p = problem("build = \"laptop\"\n");
    assert_eq!(p.key.as_deref(), Some("target.build"));
    let p = problem("acme_ca = \"http://acme\"\n");
    assert_eq!(p.key.as_deref(), Some("target.acme_ca"));
    // A domain alone is enough on the Docker target (ACME), not on ECS.
    let with_domain = GOOD.replace(
        "[service]\n",
        "[service]\ndomain = \"models.example.com\"\n",
    );
    let docker = parse_in(
        dir.path(),
        &format!("{with_domain}[target]\nkind = \"docker\"\n"),
    )
    .unwrap();
    assert_eq!(docker.service.domain.as_deref(), Some("models.example.com"));
    let p = only_problem(parse_in(dir.path(), &with_domain).unwrap_err());
    assert_eq!(p.key.as_deref(), Some("service.domain"));
}

#[test]
fn extra_security_groups_need_subnets_ids_and_room() {
    let dir = project_dir();
    let problem = |network: &str| {
        only_problem(parse_in(dir.path(), &format!("{GOOD}[network]\n{network}")).unwrap_err())
    };
    let p = problem("security_groups = [\"sg-1\"]\n");
    assert_eq!(p.key.as_deref(), Some("network.security_groups"));
    assert!(
        p.message.contains("needs `network.subnets`"),
        "{}",
        p.message
    );
    let subnets = "subnets = [\"subnet-1\", \"subnet-2\"]\n";
    let p = problem(&format!("{subnets}security_groups = [\"default\"]\n"));
    assert!(
        p.message
            .contains("\"default\", which is not a security group id"),
        "{}",
        p.message
    );
    let p = problem(&format!(
        "{subnets}security_groups = [\"sg-1\", \"sg-2\", \"sg-3\", \"sg-4\", \"sg-5\"]\n"
    ));
    assert!(p.message.contains("so at most 4"), "{}", p.message);
    let ok = parse_in(
        dir.path(),
        &format!("{GOOD}[network]\n{subnets}security_groups = [\"sg-1\"]\n"),
    )
    .unwrap();
    assert_eq!(ok.security_groups, ["sg-1"]);
}

#[test]
fn named_subnets_must_be_subnet_ids_and_at_least_two() {
    let dir = project_dir();
    let p = only_problem(
        parse_in(
            dir.path(),
            &format!("{GOOD}[network]\nsubnets = [\"subnet-1\"]\n"),
        )
        .unwrap_err(),
    );
    assert!(p.message.contains("at least two subnets"), "{}", p.message);
    let p = only_problem(
        parse_in(
            dir.path(),
            &format!("{GOOD}[network]\nsubnets = [\"vpc-1\", \"subnet-2\"]\n"),
        )
        .unwrap_err(),
    );
    assert!(
        p.message.contains("\"vpc-1\", which is not a subnet id"),
        "{}",
        p.message
    );
}

#[test]
fn mldeploys_own_environment_and_odd_retentions_are_refused() {
    let dir = project_dir();
    let text =
        format!("{GOOD}log_retention_days = 10\n[service.environment]\nMODEL_PATH = \"x\"\n");
    let err = parse_in(dir.path(), &text).unwrap_err();
    let keys: Vec<_> = err
        .problems
        .iter()
        .filter_map(|p| p.key.as_deref())
        .collect();
    assert_eq!(
        keys,
        ["service.environment", "service.log_retention_days"],
        "{err}"
    );
}

const TWO_ENVS: &str = r#"
[project]
name = "housing"

[model]
bucket = "my-models"
path = "mlflow/models/california-housing/{version}"

[service]
port = 8080
cpu = 512
memory = 2048

[env.staging]
model = { bucket = "staging-models" }

[env.prod.service]
cpu = 1024
memory = 4096
"#;

#[test]
fn an_environment_is_merged_over_the_base_and_named_into_its_stack() {
    let dir = project_dir();
    let file = dir.path().join(FILE_NAME);
    let base = parse(TWO_ENVS, &file).unwrap();
    assert_eq!(base.project.name, "housing");
    assert_eq!(base.env, None);
    let prod = parse_env(TWO_ENVS, &file, Some("prod")).unwrap();
    assert_eq!(prod.project.name, "housing-prod");
    assert_eq!(prod.env.as_deref(), Some("prod"));
    assert_eq!((prod.service.cpu, prod.service.memory), (1024, 4096));
    assert_eq!(prod.model.as_ref().unwrap().bucket, "my-models");
    assert_eq!(prod.lock.bucket, "my-models");
    let staging = parse_env(TWO_ENVS, &file, Some("staging")).unwrap();
    assert_eq!(staging.model.as_ref().unwrap().bucket, "staging-models");
    assert_eq!(
        staging.model.as_ref().unwrap().path,
        "mlflow/models/california-housing/{version}"
    );
    assert_eq!(staging.service.cpu, 512);
    let p = only_problem(parse_env(TWO_ENVS, &file, Some("qa")).unwrap_err());
    assert!(p.message.contains("no [env.qa]"), "{}", p.message);
    assert!(
        p.message.contains("environments: prod, staging"),
        "{}",
        p.message
    );
}

#[test]
fn a_bad_key_or_value_in_an_environment_names_it_and_its_line() {
    let dir = project_dir();
    let file = dir.path().join(FILE_NAME);
    let unknown = TWO_ENVS.replace("cpu = 1024\n", "cpu = 1024\nprot = 80\n");
    let p = only_problem(parse(&unknown, &file).unwrap_err());
    assert_eq!(p.key.as_deref(), Some("env.prod.service.prot"));
    assert!(p.message.starts_with("[env.prod] "), "{}", p.message);
    assert!(p.message.contains("service.port"), "{}", p.message);
    assert_eq!(p.line, Some(19));
    // A value only the environment sets is judged after the merge, at its line there.
    let bad = TWO_ENVS.replace("cpu = 1024\n", "cpu = 1000\n");
    assert!(parse(&bad, &file).is_ok(), "the base file alone is fine");
    let p = only_problem(parse_env(&bad, &file, Some("prod")).unwrap_err());
    assert_eq!(p.key.as_deref(), Some("service.cpu"));
    assert!(
        p.message.starts_with("[env.prod] `service.cpu` = 1000"),
        "{}",
        p.message
    );
    assert_eq!(p.line, Some(18));
    let long = TWO_ENVS.replace("\"housing\"", "\"a-project-named-at-length-28\"");
    let p = only_problem(parse_env(&long, &file, Some("staging")).unwrap_err());
    assert_eq!(p.key.as_deref(), Some("project.name"));
    assert!(p.message.contains("32 characters"), "{}", p.message);
    assert!(p.message.contains("with --env staging"), "{}", p.message);
    let p = only_problem(
        parse(
            &TWO_ENVS.replace("[env.prod.service]", "[env.Prod.service]"),
            &file,
        )
        .unwrap_err(),
    );
    assert!(
        p.message.contains("not an environment name"),
        "{}",
        p.message
    );
}

#[test]
fn autoscaling_bounds_metric_target_and_cooldowns_are_checked_with_their_keys() {
    let dir = project_dir();
    let text = format!(
        "{GOOD}desired_count = 8\n[service.autoscaling]\nmin_count = 3\nmax_count = 2\nmetric = \"gpu\"\nscale_in_cooldown = \"2h\"\n"
    );
    let err = parse_in(dir.path(), &text).unwrap_err();
    let mut keys: Vec<_> = err
        .problems
        .iter()
        .filter_map(|p| p.key.as_deref())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "service.autoscaling.metric",
            "service.autoscaling.min_count",
            "service.autoscaling.scale_in_cooldown",
            "service.desired_count",
        ],
        "{err}"
    );
    let text = format!(
        "{GOOD}[service.autoscaling]\nmin_count = 1\nmax_count = 4\nmetric = \"requests\"\n"
    );
    let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
    assert!(
        p.message.contains("required with metric = \"requests\""),
        "{}",
        p.message
    );
    let text = format!("{GOOD}[service.autoscaling]\nmax_count = 4\n");
    let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
    assert_eq!(p.key.as_deref(), Some("service.autoscaling.min_count"));
    let text = format!("{GOOD}[service.autoscaling]\nmin_count = 1\nmax_count = 4\ntarget = 150\n");
    let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
    assert!(p.message.contains("at most 100"), "{}", p.message);
    let text = format!("{GOOD}[service.autoscaling]\nmin_count = 1\nmax_count = 4\n");
    let a = parse_in(dir.path(), &text)
        .unwrap()
        .service
        .autoscaling
        .unwrap();
    assert_eq!(
        (a.metric, a.target, a.scale_in_cooldown),
        (crate::config::Metric::Cpu, 70.0, 300)
    );
}

#[test]
fn allow_from_takes_cidr_ranges_and_defaults_to_everyone() {
    let dir = project_dir();
    assert_eq!(
        parse_in(dir.path(), GOOD).unwrap().allow_from,
        ["0.0.0.0/0"]
    );
    for bad in ["[\"10.0.0.0\"]", "[\"10.0.0.0/33\"]", "[\"office\"]", "[]"] {
        let text = format!("{GOOD}[network]\nallow_from = {bad}\n");
        let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
        assert_eq!(
            p.key.as_deref(),
            Some("network.allow_from"),
            "{bad}: {}",
            p.message
        );
    }
}

#[test]
fn private_tasks_take_an_egress_and_refuse_named_subnets() {
    let dir = project_dir();
    let nat = format!("{GOOD}[network]\ntasks = \"private\"\n");
    assert_eq!(
        parse_in(dir.path(), &nat).unwrap().tasks_network,
        crate::config::TasksNetwork::Private(crate::config::Egress::Nat)
    );
    for (table, key) in [
        ("tasks = \"hidden\"", "network.tasks"),
        ("load_balancer = \"private\"", "network.load_balancer"),
        ("tasks = \"private\"\negress = \"vpn\"", "network.egress"),
        ("egress = \"nat\"", "network.egress"),
        (
            "tasks = \"private\"\nsubnets = [\"subnet-1\", \"subnet-2\"]",
            "network.tasks",
        ),
    ] {
        let text = format!("{GOOD}[network]\n{table}\n");
        let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
        assert_eq!(p.key.as_deref(), Some(key), "{table}: {}", p.message);
    }
}

#[test]
fn a_workers_bad_name_size_command_and_environment_are_each_named_by_table_and_key() {
    let dir = project_dir();
    let text = format!(
        "{GOOD}[workers.Scorer]\n[workers.feeder]\ncommand = [\"\"]\ncpu = 300\nenvironment = {{ MODEL_PATH = \"x\" }}\n[workers.free]\nmodel = false\nenvironment = {{ MODEL_PATH = \"mine\" }}\n"
    );
    let err = parse_in(dir.path(), &text).unwrap_err();
    let keys: Vec<_> = err.problems.iter().filter_map(|p| p.key.clone()).collect();
    assert_eq!(
        keys,
        [
            "workers.Scorer",
            "workers.feeder.command",
            "workers.feeder.cpu",
            "workers.feeder.environment"
        ],
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("may hold only lowercase letters"), "{text}");
    assert!(
        text.contains("`workers.feeder.cpu` = 300 is not a Fargate size"),
        "{text}"
    );
    assert!(
        text.contains("`workers.feeder.environment.MODEL_PATH` is set by mldeploy"),
        "{text}"
    );
}

#[test]
fn a_worker_takes_no_load_balancer_key_and_no_environments_name() {
    let dir = project_dir();
    let err = parse_in(
        dir.path(),
        &format!("{GOOD}[workers.feeder]\nport = 8080\n"),
    )
    .unwrap_err();
    let p = only_problem(err);
    assert_eq!(p.key.as_deref(), Some("workers.feeder.port"));
    assert!(
        p.message.contains("a worker has no `port`"),
        "{}",
        p.message
    );
    let text = format!("{GOOD}[workers.staging]\n[env.staging]\nmodel = {{ bucket = \"b-2\" }}\n");
    let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
    assert_eq!(p.key.as_deref(), Some("workers.staging"));
    assert!(p.message.contains("also an environment's"), "{}", p.message);
    // A typo in a worker's key is suggested under the worker's own name.
    let p = only_problem(
        parse_in(
            dir.path(),
            &format!("{GOOD}[workers.feeder]\ncomand = [\"x\"]\n"),
        )
        .unwrap_err(),
    );
    assert!(
        p.message.contains("did you mean `workers.feeder.command`?"),
        "{}",
        p.message
    );
}

#[test]
fn a_worker_defaults_to_one_small_task_reading_the_model() {
    let dir = project_dir();
    let c = parse_in(dir.path(), &format!("{GOOD}[workers.scorer]\n")).unwrap();
    let w = &c.workers[0];
    assert_eq!(
        (w.cpu, w.memory, w.desired_count, w.model),
        (256, 512, 1, true)
    );
    assert!(w.command.is_empty());
    assert_eq!(w.service_name("housing"), "housing-scorer");
}

#[test]
fn a_worker_scales_on_cpu_or_memory_but_not_on_requests() {
    let dir = project_dir();
    let text = format!(
        "{GOOD}[workers.scorer]\ndesired_count = 9\n[workers.scorer.autoscaling]\nmin_count = 1\nmax_count = 4\nmetric = \"requests\"\n"
    );
    let err = parse_in(dir.path(), &text).unwrap_err();
    let keys: Vec<_> = err.problems.iter().filter_map(|p| p.key.clone()).collect();
    assert_eq!(
        keys,
        [
            "workers.scorer.desired_count",
            "workers.scorer.autoscaling.metric"
        ],
        "{err}"
    );
    assert!(err.to_string().contains("a worker has none"), "{err}");
}

#[test]
fn a_workers_own_image_is_a_build_or_a_ref_and_its_problems_name_its_keys() {
    let dir = project_dir();
    std::fs::create_dir(dir.path().join("scorer")).unwrap();
    std::fs::write(dir.path().join("scorer/Dockerfile"), "FROM scratch\n").unwrap();
    let with = |table: &str| {
        format!("{GOOD}[workers.scorer]\ncommand = [\"score\"]\n[workers.scorer.image]\n{table}")
    };
    let c = parse_in(dir.path(), &with("context = \"scorer\"\n")).unwrap();
    match &c.workers[0].image {
        Some(WorkerImage::Build(image)) => {
            assert_eq!(
                image.dockerfile,
                dir.path().join("scorer").join("Dockerfile")
            )
        }
        other => panic!("{other:?}"),
    }
    let c = parse_in(dir.path(), &with("ref = \"ghcr.io/org/scorer:1.4\"\n")).unwrap();
    assert_eq!(
        c.workers[0].image,
        Some(WorkerImage::Ref("ghcr.io/org/scorer:1.4".into()))
    );
    for (table, key, says) in [
        (
            "ref = \"a:1\"\ncontext = \"scorer\"\n",
            "workers.scorer.image.ref",
            "remove either",
        ),
        (
            "ref = \"a b\"\n",
            "workers.scorer.image.ref",
            "not an image reference",
        ),
        (
            "context = \"nowhere\"\n",
            "workers.scorer.image.context",
            "does not exist",
        ),
        ("", "workers.scorer.image", "is empty"),
    ] {
        let p = only_problem(parse_in(dir.path(), &with(table)).unwrap_err());
        assert_eq!(p.key.as_deref(), Some(key), "{table}: {}", p.message);
        assert!(p.message.contains(says), "{table}: {}", p.message);
    }
}
