//! What `mldeploy.toml` may say, before validation: the schema of known keys (for unknown-key
//! errors and did-you-mean) and the raw TOML shapes serde reads. The validators in `validate`
//! destructure each raw table without `..`, so a key added here but never read fails to compile.

use std::collections::BTreeMap;

use serde::Deserialize;

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
            "log_retention_days",
            "task_definition_template",
            "autoscaling",
        ],
    ),
    (
        "service.autoscaling",
        &[
            "min_count",
            "max_count",
            "metric",
            "target",
            "scale_in_cooldown",
            "scale_out_cooldown",
        ],
    ),
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
        ],
    ),
    ("lock", &["bucket", "lease"]),
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

/// The keys that must be given.
pub(super) const REQUIRED: &[&str] = &["project.name", "model.bucket", "model.path"];

/// What the file says, before validation. Field names are the keys in SCHEMA.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) project: RawProject,
    #[serde(default)]
    pub(super) image: RawImage,
    #[serde(default)]
    pub(super) model: RawModel,
    /// `[env.<name>]`: checked by `walk_keys` and merged before this is read; not read here.
    #[serde(default, rename = "env")]
    pub(super) _env: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub(super) service: RawService,
    pub(super) smoke: Option<RawSmoke>,
    #[serde(default)]
    pub(super) network: RawNetwork,
    #[serde(default)]
    pub(super) target: RawTarget,
    #[serde(default)]
    pub(super) lock: RawLock,
    #[serde(default)]
    pub(super) deploy: RawDeploy,
    pub(super) gate: Option<RawGate>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeploy {
    pub(super) strategy: Option<String>,
    pub(super) bake_time: Option<String>,
    pub(super) canary_percent: Option<f64>,
    pub(super) canary_bake_time: Option<String>,
    pub(super) linear_step_percent: Option<f64>,
    pub(super) linear_step_bake_time: Option<String>,
    pub(super) check_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGate {
    pub(super) requests: Option<Vec<RawGateRequest>>,
    pub(super) requests_file: Option<String>,
    pub(super) value: Option<String>,
    pub(super) tolerance: Option<f64>,
    pub(super) max_failure_share: Option<f64>,
    pub(super) max_p95: Option<String>,
    pub(super) max_p95_ratio: Option<f64>,
}

/// One sample request: inline in [gate], or one line of its JSON-lines file. The body may be a
/// string or JSON (sent as JSON).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGateRequest {
    pub(super) method: Option<String>,
    pub(super) path: Option<String>,
    pub(super) body: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLock {
    pub(super) bucket: Option<String>,
    pub(super) lease: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    pub(super) kind: Option<String>,
    pub(super) host_port: Option<u16>,
    pub(super) proxy: Option<bool>,
    pub(super) proxy_image: Option<String>,
    pub(super) drain: Option<String>,
    pub(super) keep_releases: Option<u32>,
    pub(super) https_port: Option<u16>,
    pub(super) acme_ca: Option<String>,
    pub(super) acme_ca_root: Option<String>,
    pub(super) acme_email: Option<String>,
    pub(super) build: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    #[serde(default)]
    pub(super) subnets: Vec<String>,
    #[serde(default)]
    pub(super) security_groups: Vec<String>,
    pub(super) allow_from: Option<Vec<String>>,
    pub(super) tasks: Option<String>,
    pub(super) egress: Option<String>,
    pub(super) load_balancer: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProject {
    pub(super) name: Option<String>,
    pub(super) region: Option<String>,
    pub(super) profile: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImage {
    pub(super) context: Option<String>,
    pub(super) dockerfile: Option<String>,
    #[serde(default)]
    pub(super) build_args: BTreeMap<String, String>,
    pub(super) platform: Option<String>,
    pub(super) target: Option<String>,
    pub(super) keep_images: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawModel {
    pub(super) bucket: Option<String>,
    pub(super) path: Option<String>,
    pub(super) version: Option<VersionValue>,
    pub(super) registry: Option<String>,
    pub(super) name: Option<String>,
    pub(super) set_alias: Option<String>,
}

/// MLflow versions are numbers, but a string is accepted too.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum VersionValue {
    Number(u64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub(super) port: Option<u16>,
    pub(super) cpu: Option<u32>,
    pub(super) memory: Option<u32>,
    pub(super) desired_count: Option<u32>,
    pub(super) health_check_path: Option<String>,
    pub(super) ready_path: Option<String>,
    #[serde(default)]
    pub(super) environment: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) secrets: BTreeMap<String, String>,
    pub(super) certificate_arn: Option<String>,
    pub(super) domain: Option<String>,
    pub(super) hosted_zone_id: Option<String>,
    pub(super) health_check_interval: Option<String>,
    pub(super) healthy_threshold: Option<u32>,
    pub(super) unhealthy_threshold: Option<u32>,
    pub(super) deregistration_delay: Option<String>,
    pub(super) model_load_time: Option<String>,
    pub(super) ready_check_interval: Option<String>,
    pub(super) ready_check_retries: Option<u32>,
    pub(super) log_retention_days: Option<i32>,
    pub(super) task_definition_template: Option<String>,
    pub(super) autoscaling: Option<RawAutoscaling>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAutoscaling {
    pub(super) min_count: Option<u32>,
    pub(super) max_count: Option<u32>,
    pub(super) metric: Option<String>,
    pub(super) target: Option<f64>,
    pub(super) scale_in_cooldown: Option<String>,
    pub(super) scale_out_cooldown: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmoke {
    pub(super) path: Option<String>,
    pub(super) method: Option<String>,
    pub(super) body: Option<String>,
    pub(super) expect_status: Option<u16>,
}
