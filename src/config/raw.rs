//! What `mldeploy.toml` may say, before validation: the schema of known keys (for unknown-key
//! errors and did-you-mean) and the raw TOML shapes serde reads. The validators in `validate`
//! destructure each raw table without `..`, so a key added here but never read fails to compile.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

pub(super) use super::raw_workers::RawWorker;

/// The keys mldeploy knows, table by table. A `*` entry is a table of free-form string values.
pub(super) const SCHEMA: &[(&str, &[&str])] = &[
    ("project", &["name", "region", "profile"]),
    (
        "image",
        &[
            "context",
            "dockerfile",
            "build_args",
            "platform",
            "target",
            "keep_images",
        ],
    ),
    ("image.build_args", &["*"]),
    (
        "model",
        &["bucket", "path", "version", "registry", "name", "set_alias"],
    ),
    (
        "service",
        &[
            "port",
            "cpu",
            "memory",
            "desired_count",
            "health_check_path",
            "ready_path",
            "environment",
            "secrets",
            "certificate_arn",
            "domain",
            "hosted_zone_id",
            "health_check_interval",
            "healthy_threshold",
            "unhealthy_threshold",
            "deregistration_delay",
            "model_load_time",
            "ready_check_interval",
            "ready_check_retries",
            "ready_check",
            "ready_check_command",
            "log_retention_days",
            "task_definition_template",
            "autoscaling",
        ],
    ),
    ("service.autoscaling", AUTOSCALING_KEYS),
    ("service.environment", &["*"]),
    ("service.secrets", &["*"]),
    ("smoke", &["path", "method", "body", "expect_status"]),
    (
        "network",
        &[
            "subnets",
            "security_groups",
            "allow_from",
            "tasks",
            "egress",
            "load_balancer",
        ],
    ),
    (
        "target",
        &[
            "kind",
            "host_port",
            "proxy",
            "proxy_image",
            "drain",
            "keep_releases",
            "https_port",
            "acme_ca",
            "acme_ca_root",
            "acme_email",
            "build",
            "log_max_size",
            "log_files",
        ],
    ),
    ("lock", &["bucket", "lease"]),
    // `[workers.<name>]`: `walk_keys` reads every worker's table as `workers.*`.
    ("workers", &["*"]),
    (
        "workers.*",
        &[
            "command",
            "cpu",
            "memory",
            "desired_count",
            "environment",
            "secrets",
            "model",
            "autoscaling",
            "image",
        ],
    ),
    ("workers.*.autoscaling", AUTOSCALING_KEYS),
    (
        "workers.*.image",
        &[
            "context",
            "dockerfile",
            "build_args",
            "platform",
            "target",
            "ref",
        ],
    ),
    ("workers.*.image.build_args", &["*"]),
    ("workers.*.environment", &["*"]),
    ("workers.*.secrets", &["*"]),
    (
        "deploy",
        &[
            "strategy",
            "bake_time",
            "canary_percent",
            "canary_bake_time",
            "linear_step_percent",
            "linear_step_bake_time",
            "check_interval",
            "release_command",
        ],
    ),
    (
        "gate",
        &[
            "requests",
            "requests_file",
            "value",
            "tolerance",
            "max_failure_share",
            "max_p95",
            "max_p95_ratio",
        ],
    ),
];

/// The keys of an autoscaling table, the service's or a worker's.
const AUTOSCALING_KEYS: &[&str] = &[
    "min_count",
    "max_count",
    "metric",
    "target",
    "scale_in_cooldown",
    "scale_out_cooldown",
];

/// The keys that must be given.
pub(super) const REQUIRED: &[&str] = &["project.name", "model.bucket", "model.path"];

/// What the file says, before validation. Field names are the keys in SCHEMA.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(
    title = "mldeploy.toml",
    description = "mldeploy's configuration: one ML inference service, deployed to ECS Fargate or a Docker host."
)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    /// `[project]`: the project's name, and where it deploys.
    #[serde(default)]
    pub(super) project: RawProject,
    /// `[image]`: how the image is built.
    #[serde(default)]
    pub(super) image: RawImage,
    /// `[model]`: where model versions are (S3, or an MLflow registry); optional (a tracking server or a feature API serves none).
    #[serde(default)]
    pub(super) model: Option<RawModel>,
    /// `[env.<name>]`: checked by `walk_keys` and merged before this is read; not read here.
    #[serde(default, rename = "env")]
    #[schemars(skip)]
    pub(super) _env: Option<serde::de::IgnoredAny>,
    /// `[service]`: the service's size, checks, environment and domain.
    #[serde(default)]
    pub(super) service: RawService,
    /// `[smoke]`: the request `up` sends through the load balancer once the deployment is healthy.
    pub(super) smoke: Option<RawSmoke>,
    /// `[network]`: your subnets instead of a new VPC, private tasks, who may reach the load balancer.
    #[serde(default)]
    pub(super) network: RawNetwork,
    /// `[target]`: where the service runs: ECS Fargate (default) or a Docker host.
    #[serde(default)]
    pub(super) target: RawTarget,
    /// `[lock]`: where the deploy lock lives.
    #[serde(default)]
    pub(super) lock: RawLock,
    /// `[deploy]`: how ECS replaces the serving revision.
    #[serde(default)]
    pub(super) deploy: RawDeploy,
    /// `[gate]`: the model gate, with a traffic-shifting strategy: sample requests sent to both revisions.
    pub(super) gate: Option<RawGate>,
    /// `[workers.<name>]`: services beside the model API with no load balancer (queue consumers, batch scoring), deployed in the same release.
    #[serde(default)]
    pub(super) workers: BTreeMap<String, RawWorker>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Deploy")]
pub(super) struct RawDeploy {
    /// How a new revision replaces the serving one (default rolling).
    #[schemars(extend("enum" = ["rolling", "blue_green", "canary", "linear"]))]
    pub(super) strategy: Option<String>,
    /// Both revisions run this long after all traffic moved (0m-24h, whole minutes); `rollback` until then only moves traffic back.
    pub(super) bake_time: Option<String>,
    /// canary: the share of production traffic the new revision gets first (0.1-100, default 5).
    pub(super) canary_percent: Option<f64>,
    /// canary: how long that share runs before the rest moves (default 10m).
    pub(super) canary_bake_time: Option<String>,
    /// linear: the share added each step (3-100, default 10).
    pub(super) linear_step_percent: Option<f64>,
    /// linear: the time between steps (default 6m).
    pub(super) linear_step_bake_time: Option<String>,
    /// How often the new revision is checked while traffic moves and bakes.
    pub(super) check_interval: Option<String>,
    /// Run once with each new release before any service rolls out, in exec form (database migrations, `mlflow db upgrade`): when it fails, nothing rolls out.
    pub(super) release_command: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Gate")]
pub(super) struct RawGate {
    /// Sample requests, sent to both revisions.
    pub(super) requests: Option<Vec<RawGateRequest>>,
    /// A JSON-lines file of sample requests, one {"path", "method", "body"} per line, relative to this file.
    pub(super) requests_file: Option<String>,
    /// JSON pointer to the number (or array of numbers) compared, like "/prediction".
    pub(super) value: Option<String>,
    /// The largest relative change a new model version may make (default 0.05).
    pub(super) tolerance: Option<f64>,
    /// The share of answers that may fail or hold no number (default 0).
    pub(super) max_failure_share: Option<f64>,
    /// The new revision's p95 latency bound, like "500ms".
    pub(super) max_p95: Option<String>,
    /// The new revision's p95 against the serving one's (default 2).
    pub(super) max_p95_ratio: Option<f64>,
}

/// One sample request: inline in [gate], or one line of its JSON-lines file. The body may be a
/// string or JSON (sent as JSON).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "GateRequest")]
pub(super) struct RawGateRequest {
    /// HTTP method (default POST with a body, GET without).
    pub(super) method: Option<String>,
    /// The path requested, like "/predict".
    pub(super) path: Option<String>,
    /// The body: a string, or JSON (sent as JSON).
    pub(super) body: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Lock")]
pub(super) struct RawLock {
    /// The bucket the deploy lock lives in (default: model.bucket).
    pub(super) bucket: Option<String>,
    /// How long a dead run's lock lasts: 10s to 1h (default 2m).
    pub(super) lease: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Target")]
pub(super) struct RawTarget {
    /// Where the service runs: "ecs" (default) or "docker"; --target overrides it.
    #[schemars(extend("enum" = ["ecs", "docker"]))]
    pub(super) kind: Option<String>,
    /// Docker target: the port on the engine's host (default: service.port).
    pub(super) host_port: Option<u16>,
    /// Docker target: a Caddy proxy owns host_port and swaps releases without dropping a request (default true).
    pub(super) proxy: Option<bool>,
    /// Docker target: the proxy's image (default caddy:2, pulled when missing).
    pub(super) proxy_image: Option<String>,
    /// Docker target: how long a replaced release keeps running for requests in flight (default 10s).
    pub(super) drain: Option<String>,
    /// Docker target: replaced releases kept, stopped, for rollback (1-50, default 5).
    pub(super) keep_releases: Option<u32>,
    /// Docker target with service.domain: the HTTPS port (default 443); host_port redirects to it.
    pub(super) https_port: Option<u16>,
    /// Docker target: the ACME directory certificates come from (default: Let's Encrypt).
    pub(super) acme_ca: Option<String>,
    /// Docker target: a file in the project, the root certificate of a private ACME server's HTTPS.
    pub(super) acme_ca_root: Option<String>,
    /// Docker target: the ACME CA's contact for the certificate.
    pub(super) acme_email: Option<String>,
    /// Docker target: build on its engine ("remote", default) or here ("local"), pushed to ECR and pulled there by digest.
    #[schemars(extend("enum" = ["remote", "local"]))]
    pub(super) build: Option<String>,
    /// Docker target: the size a container's log file grows to before the engine rotates it, as Docker writes sizes ("10m", "500k", "1g"; default "10m").
    #[schemars(regex(pattern = r"^[1-9][0-9]*[kmg]$"))]
    pub(super) log_max_size: Option<String>,
    /// Docker target: how many log files each container keeps, the current one among them (1-100, default 3).
    pub(super) log_files: Option<u32>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Network")]
pub(super) struct RawNetwork {
    /// Existing subnets to deploy into instead of a new VPC: at least two, in two zones, in one VPC.
    #[serde(default)]
    pub(super) subnets: Vec<String>,
    /// With subnets: up to 4 more security groups for the tasks, in the subnets' VPC.
    #[serde(default)]
    pub(super) security_groups: Vec<String>,
    /// The CIDR ranges (IPv4 or IPv6) that may reach the load balancer (default everyone).
    pub(super) allow_from: Option<Vec<String>>,
    /// Without subnets: "public" (default) or "private" subnets of the VPC mldeploy makes for the tasks.
    #[schemars(extend("enum" = ["public", "private"]))]
    pub(super) tasks: Option<String>,
    /// How private tasks reach ECR, S3 and CloudWatch Logs: one NAT gateway ("nat", default) or VPC endpoints ("endpoints").
    #[schemars(extend("enum" = ["nat", "endpoints"]))]
    pub(super) egress: Option<String>,
    /// The load balancer's scheme: "internet-facing" (default) or "internal".
    #[schemars(extend("enum" = ["internet-facing", "internal"]))]
    pub(super) load_balancer: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Project")]
pub(super) struct RawProject {
    /// Required: 2-32 characters, lowercase letters, digits and hyphens; it names every resource.
    pub(super) name: Option<String>,
    /// The AWS region (default: the profile's or AWS_REGION).
    pub(super) region: Option<String>,
    /// The AWS profile when --profile names none.
    pub(super) profile: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Image")]
pub(super) struct RawImage {
    /// The build context, relative to this file (default ".").
    pub(super) context: Option<String>,
    /// The Dockerfile (default: Dockerfile in the context).
    pub(super) dockerfile: Option<String>,
    /// Build arguments.
    #[serde(default)]
    pub(super) build_args: BTreeMap<String, String>,
    /// The image's os/architecture; Fargate runs linux/amd64 and linux/arm64.
    pub(super) platform: Option<String>,
    /// The build stage to build.
    pub(super) target: Option<String>,
    /// How many images ECR's lifecycle policy keeps (default 30).
    pub(super) keep_images: Option<u32>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Model")]
pub(super) struct RawModel {
    /// Required: the S3 bucket holding model versions (only read; the deploy lock lives here unless lock.bucket names another).
    pub(super) bucket: Option<String>,
    /// Required: the key prefix of a version, with {version}, like "mlflow/models/housing/{version}".
    pub(super) path: Option<String>,
    /// The model version deployed when no flag names one.
    pub(super) version: Option<VersionValue>,
    /// An MLflow tracking URI: versions are the registered model's (MLFLOW_TRACKING_TOKEN is sent).
    pub(super) registry: Option<String>,
    /// With registry: the registered model's name.
    pub(super) name: Option<String>,
    /// With registry: an alias pointed at the version `up` deployed, once it succeeded.
    pub(super) set_alias: Option<String>,
}

/// MLflow versions are numbers, but a string is accepted too.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(super) enum VersionValue {
    Number(u64),
    Text(String),
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Service")]
pub(super) struct RawService {
    /// The container's port (default 80).
    pub(super) port: Option<u16>,
    /// Fargate CPU units: 256, 512, 1024, 2048, 4096, 8192 or 16384 (default 256).
    pub(super) cpu: Option<u32>,
    /// Memory in MiB, one Fargate offers for the cpu (default 512).
    pub(super) memory: Option<u32>,
    /// How many tasks run (default 1).
    pub(super) desired_count: Option<u32>,
    /// The load balancer's health check path (default /health).
    pub(super) health_check_path: Option<String>,
    /// The container's health check path, run in the container (default /ready).
    pub(super) ready_path: Option<String>,
    /// Extra environment variables (MODEL_BUCKET_NAME and MODEL_PATH are mldeploy's).
    #[serde(default)]
    pub(super) environment: BTreeMap<String, String>,
    /// Environment variables from Secrets Manager or SSM: full ARNs.
    #[serde(default)]
    pub(super) secrets: BTreeMap<String, String>,
    /// An ACM certificate: HTTPS on the load balancer, with domain.
    pub(super) certificate_arn: Option<String>,
    /// The name users call (with certificate_arn or hosted_zone_id; on the Docker target, HTTPS through ACME).
    pub(super) domain: Option<String>,
    /// The Route 53 zone holding domain: up keeps its alias record and requests the certificate.
    pub(super) hosted_zone_id: Option<String>,
    /// The load balancer's check interval: 5s-300s.
    pub(super) health_check_interval: Option<String>,
    /// Successes before a new task takes traffic: 2-10.
    pub(super) healthy_threshold: Option<u32>,
    /// Failures before a task is replaced: 2-10.
    pub(super) unhealthy_threshold: Option<u32>,
    /// How long an old task drains: 0s-1h.
    pub(super) deregistration_delay: Option<String>,
    /// The longest the app takes to load its model (up to 300s): the grace period and the container check's start period.
    pub(super) model_load_time: Option<String>,
    /// The container health check's interval: 5s-300s.
    pub(super) ready_check_interval: Option<String>,
    /// The container health check's retries: 1-10.
    pub(super) ready_check_retries: Option<u32>,
    /// The container health check (default true); false leaves a task's health to the load balancer's check alone.
    pub(super) ready_check: Option<bool>,
    /// The container health check as a command the image has, exec form: ["/app/healthcheck", "--port", "8080"].
    pub(super) ready_check_command: Option<Vec<String>>,
    /// A CloudWatch Logs retention in days: 1, 3, 5, 7, 14, 30, 60, 90, ... (default 7).
    pub(super) log_retention_days: Option<i32>,
    /// Your copy of templates/task-definition.json, relative to this file.
    pub(super) task_definition_template: Option<String>,
    /// `[service.autoscaling]`: Application Auto Scaling keeps the task count.
    pub(super) autoscaling: Option<RawAutoscaling>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Autoscaling")]
pub(super) struct RawAutoscaling {
    /// Required: the fewest tasks (desired_count must be within).
    pub(super) min_count: Option<u32>,
    /// Required: the most tasks, up to 5000.
    pub(super) max_count: Option<u32>,
    /// What is tracked: "cpu" (default), "memory", or "requests" per target per minute.
    #[schemars(extend("enum" = ["cpu", "memory", "requests"]))]
    pub(super) metric: Option<String>,
    /// The value kept: a percentage (default 70), or requests (required with requests).
    pub(super) target: Option<f64>,
    /// 0s-1h (default 300s).
    pub(super) scale_in_cooldown: Option<String>,
    /// 0s-1h (default 300s).
    pub(super) scale_out_cooldown: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Smoke")]
pub(super) struct RawSmoke {
    /// The path requested (default: service.ready_path).
    pub(super) path: Option<String>,
    /// GET, POST, PUT or HEAD (default POST with a body, GET without).
    pub(super) method: Option<String>,
    /// The request's body.
    pub(super) body: Option<String>,
    /// The status expected (default 200).
    pub(super) expect_status: Option<u16>,
}
