//! `mldeploy.toml` -> a validated [`Config`]. Every check happens here, before any call to Docker
//! or AWS, and every problem names the file, the line, the key and what would be valid. All
//! problems are reported at once, as a usage error (exit 2).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::exit::{self, ExitStatus};

pub const FILE_NAME: &str = "mldeploy.toml";

/// The keys mldeploy knows, table by table. A `*` entry is a table of free-form string values.
const SCHEMA: &[(&str, &[&str])] = &[
    ("project", &["name", "region"]),
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
    ("model", &["bucket", "path", "version"]),
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
            "log_retention_days",
            "task_definition_template",
        ],
    ),
    ("service.environment", &["*"]),
    ("service.secrets", &["*"]),
    ("smoke", &["path", "method", "body", "expect_status"]),
    ("network", &["subnets", "security_groups"]),
    ("target", &["kind", "host_port"]),
];

const REQUIRED: &[&str] = &["project.name", "model.bucket", "model.path"];

/// A validated configuration; paths are absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// The mldeploy.toml this came from.
    pub file: PathBuf,
    pub project: Project,
    pub image: Image,
    pub model: Model,
    pub service: Service,
    pub smoke: Option<Smoke>,
    /// Existing subnets to use instead of creating a VPC; empty when mldeploy makes the network.
    pub subnets: Vec<String>,
    /// Existing security groups the tasks get beside `<name>-tasks` (to reach a database, say);
    /// only with `subnets`. Checked, never modified.
    pub security_groups: Vec<String>,
    pub target: Target,
}

/// Where the service runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: TargetKind,
    /// The Docker target's port on the engine's host (default: `service.port`).
    pub host_port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// AWS ECS Fargate behind a load balancer.
    Ecs,
    /// One container on the Docker engine DOCKER_HOST names.
    Docker,
}

/// The most security groups a Fargate task takes: five, one of them mldeploy's own.
pub const MAX_EXTRA_SECURITY_GROUPS: usize = 4;

#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub region: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Image {
    pub context: PathBuf,
    pub dockerfile: PathBuf,
    pub build_args: BTreeMap<String, String>,
    pub platform: Option<String>,
    pub target: Option<String>,
    /// How many images the ECR lifecycle policy keeps.
    pub keep_images: u32,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub bucket: String,
    /// The key prefix of a model version, with `{version}` in it.
    pub path: String,
    pub version: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub port: u16,
    pub cpu: u32,
    pub memory: u32,
    pub desired_count: u32,
    pub health_check_path: String,
    pub ready_path: String,
    /// Extra environment for the container (MODEL_BUCKET_NAME and MODEL_PATH are mldeploy's).
    pub environment: BTreeMap<String, String>,
    /// Environment names to Secrets Manager secret or SSM parameter ARNs: the task definition's
    /// `secrets` (`valueFrom`), and exactly what the execution role may read.
    pub secrets: BTreeMap<String, String>,
    /// An ACM certificate: HTTPS on 443, and HTTP redirected to it.
    pub certificate_arn: Option<String>,
    pub log_retention_days: i32,
    /// The project's own task-definition template; None for the built-in one.
    pub task_definition_template: Option<PathBuf>,
}

/// The retention periods CloudWatch Logs accepts.
pub const LOG_RETENTION_DAYS: [i32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// What a secret's `valueFrom` ARN lets the execution role read: the Secrets Manager secret
/// (without the `:json-key:version-stage:version-id` suffix ECS accepts) or the SSM parameter.
/// None when the text is neither.
pub fn secret_resource(arn: &str) -> Option<SecretResource> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() < 6 || parts[0] != "arn" || parts[3].is_empty() || parts[4].is_empty() {
        return None;
    }
    match parts[2] {
        "secretsmanager" if parts.len() >= 7 && parts[5] == "secret" && !parts[6].is_empty() => {
            Some(SecretResource::Secret(parts[..7].join(":")))
        }
        "ssm"
            if parts.len() == 6
                && parts[5].len() > "parameter/".len()
                && parts[5].starts_with("parameter/") =>
        {
            Some(SecretResource::Parameter(arn.to_string()))
        }
        _ => None,
    }
}

/// The resource a secret is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretResource {
    Secret(String),
    Parameter(String),
}

/// Environment names mldeploy sets itself.
pub const RESERVED_ENV: [&str; 2] = ["MODEL_BUCKET_NAME", "MODEL_PATH"];

#[derive(Debug, Clone)]
pub struct Smoke {
    pub path: String,
    pub method: String,
    pub body: Option<String>,
    pub expect_status: u16,
}

// What the file says, before validation. Field names are the keys in SCHEMA.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    project: RawProject,
    #[serde(default)]
    image: RawImage,
    #[serde(default)]
    model: RawModel,
    #[serde(default)]
    service: RawService,
    smoke: Option<RawSmoke>,
    #[serde(default)]
    network: RawNetwork,
    #[serde(default)]
    target: RawTarget,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    kind: Option<String>,
    host_port: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(default)]
    subnets: Vec<String>,
    #[serde(default)]
    security_groups: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    name: Option<String>,
    region: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    context: Option<String>,
    dockerfile: Option<String>,
    #[serde(default)]
    build_args: BTreeMap<String, String>,
    platform: Option<String>,
    target: Option<String>,
    keep_images: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    bucket: Option<String>,
    path: Option<String>,
    version: Option<VersionValue>,
}

/// MLflow versions are numbers, but a string is accepted too.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum VersionValue {
    Number(u64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    port: Option<u16>,
    cpu: Option<u32>,
    memory: Option<u32>,
    desired_count: Option<u32>,
    health_check_path: Option<String>,
    ready_path: Option<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    certificate_arn: Option<String>,
    log_retention_days: Option<i32>,
    task_definition_template: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmoke {
    path: Option<String>,
    method: Option<String>,
    body: Option<String>,
    expect_status: Option<u16>,
}

/// One thing wrong with the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: Option<String>,
    pub line: Option<usize>,
    pub message: String,
}

/// Every problem found in one file; its Display is what the user reads.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match self.problems.len() {
            1 => write!(f, "{file} is not valid:")?,
            n => write!(f, "{file} has {n} problems:")?,
        }
        for p in &self.problems {
            match p.line {
                Some(line) => write!(f, "\n  {file}:{line}: {}", p.message)?,
                None => write!(f, "\n  {file}: {}", p.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Where each key and its value stand in the text.
#[derive(Debug, Default)]
struct Positions {
    lines: Vec<usize>, // byte offset where each line starts
    keys: HashMap<String, (Range<usize>, Range<usize>)>, // dotted key -> (key span, value span)
}

impl Positions {
    fn line_of(&self, offset: usize) -> usize {
        match self.lines.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    fn key_line(&self, key: &str) -> Option<usize> {
        self.keys.get(key).map(|(k, _)| self.line_of(k.start))
    }

    /// The innermost key whose value holds this offset (for serde's type errors).
    fn key_at(&self, offset: usize) -> Option<&str> {
        self.keys
            .iter()
            .filter(|(_, (_, v))| v.start <= offset && offset < v.end.max(v.start + 1))
            .min_by_key(|(_, (_, v))| v.len())
            .map(|(k, _)| k.as_str())
    }
}

/// Loads and validates `<dir>/mldeploy.toml`.
pub fn load(dir: &Path) -> anyhow::Result<Config> {
    let file = dir.join(FILE_NAME);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(exit::error(
                ExitStatus::Usage,
                format!(
                "no {FILE_NAME} in {}: run `mldeploy init` there, or point -C/--dir at the project",
                display_dir(dir)
            ),
            ))
        }
        Err(e) => {
            return Err(exit::error(
                ExitStatus::Usage,
                format!("cannot read {}: {e}", file.display()),
            ))
        }
    };
    parse(&text, &file).map_err(|e| exit::error(ExitStatus::Usage, e.to_string()))
}

fn display_dir(dir: &Path) -> String {
    if dir.as_os_str().is_empty() {
        ".".to_string()
    } else {
        dir.display().to_string()
    }
}

/// Parses and validates the text of a config file; `file` names it in messages and anchors
/// relative paths.
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let fail = |problems| ConfigError {
        file: file.to_path_buf(),
        problems,
    };
    let mut positions = Positions {
        lines: std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect(),
        ..Default::default()
    };

    let table = match toml::de::DeTable::parse(text) {
        Ok(table) => table,
        Err(e) => {
            return Err(fail(vec![Problem {
                key: None,
                line: e.span().map(|s| positions.line_of(s.start)),
                message: format!("not valid TOML: {}", e.message().trim()),
            }]))
        }
    };
    let mut problems = Vec::new();
    walk_keys(table.get_ref(), "", &mut positions, &mut problems);
    if !problems.is_empty() {
        return Err(fail(problems));
    }

    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let key = e
                .span()
                .and_then(|s| positions.key_at(s.start))
                .map(str::to_string);
            let line = e.span().map(|s| positions.line_of(s.start));
            let message = match &key {
                Some(k) => format!("`{k}`: {}", e.message().trim()),
                None => e.message().trim().to_string(),
            };
            return Err(fail(vec![Problem { key, line, message }]));
        }
    };

    let base = file.parent().unwrap_or(Path::new("."));
    let config = validate(raw, base, file, &positions, &mut problems);
    if problems.is_empty() {
        config.ok_or_else(|| fail(Vec::new()))
    } else {
        Err(fail(problems))
    }
}

fn known_keys(table: &str) -> Option<&'static [&'static str]> {
    SCHEMA
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, keys)| *keys)
}

fn all_dotted_keys() -> impl Iterator<Item = String> {
    SCHEMA
        .iter()
        .flat_map(|(t, keys)| {
            keys.iter()
                .filter(|k| **k != "*")
                .map(move |k| format!("{t}.{k}"))
        })
        .chain(SCHEMA.iter().map(|(t, _)| t.to_string()))
}

/// Records every key's position and reports keys the schema does not know.
fn walk_keys(
    table: &toml::de::DeTable<'_>,
    prefix: &str,
    positions: &mut Positions,
    problems: &mut Vec<Problem>,
) {
    for (key, value) in table {
        let name = key.get_ref().as_ref();
        let dotted = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        positions
            .keys
            .insert(dotted.clone(), (key.span(), value.span()));

        let allowed = if prefix.is_empty() {
            known_keys(name).is_some()
        } else {
            match known_keys(prefix) {
                Some(keys) => keys.contains(&"*") || keys.contains(&name),
                None => true, // inside a free-form table: values are checked by type later
            }
        };
        if !allowed {
            let mut message = format!("`{dotted}` is not a known key");
            if let Some(suggestion) = closest_key(&dotted) {
                message.push_str(&format!("; did you mean `{suggestion}`?"));
            } else if let Some(keys) = known_keys(prefix) {
                message.push_str(&format!("; [{prefix}] takes: {}", keys.join(", ")));
            }
            problems.push(Problem {
                key: Some(dotted.clone()),
                line: Some(positions.line_of(key.span().start)),
                message,
            });
            continue;
        }
        if let toml::de::DeValue::Table(inner) = value.get_ref() {
            walk_keys(inner, &dotted, positions, problems);
        }
    }
}

/// The known key closest to an unknown one, when it is close enough to be a typo.
fn closest_key(unknown: &str) -> Option<String> {
    let (table, leaf) = unknown.rsplit_once('.').unwrap_or(("", unknown));
    all_dotted_keys()
        .map(|known| {
            let (ktable, kleaf) = known.rsplit_once('.').unwrap_or(("", &known));
            // A typo in the leaf within the same table counts more than a key in another table.
            let score =
                strsim::jaro_winkler(leaf, kleaf) + if ktable == table { 0.05 } else { 0.0 };
            (score, known)
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

fn validate(
    raw: RawConfig,
    base: &Path,
    file: &Path,
    pos: &Positions,
    problems: &mut Vec<Problem>,
) -> Option<Config> {
    let mut report = |key: &str, message: String| {
        problems.push(Problem {
            key: Some(key.to_string()),
            line: pos.key_line(key),
            message,
        })
    };

    let given: HashMap<&str, bool> = HashMap::from([
        ("project.name", raw.project.name.is_some()),
        ("model.bucket", raw.model.bucket.is_some()),
        ("model.path", raw.model.path.is_some()),
    ]);
    let present = |key: &str| given.get(key).copied().unwrap_or(true);
    for key in REQUIRED {
        if !present(key) {
            let (table, leaf) = key.split_once('.').unwrap_or(("", key));
            report(
                key,
                format!("missing required key `{key}` (`{leaf} = ...` under [{table}])"),
            );
        }
    }

    let name = raw.project.name.unwrap_or_default();
    if present("project.name") {
        if let Err(why) = check_project_name(&name) {
            report("project.name", format!("`project.name` = {name:?} {why}"));
        }
    }
    if let Some(region) = &raw.project.region {
        if !is_region_like(region) {
            report(
                "project.region",
                format!(
                    "`project.region` = {region:?} is not an AWS region name (like \"us-east-1\")"
                ),
            );
        }
    }

    let context = base.join(raw.image.context.as_deref().unwrap_or("."));
    let context_ok = context.is_dir();
    if !context_ok {
        report(
            "image.context",
            format!(
                "`image.context`: the build context directory {} does not exist",
                context.display()
            ),
        );
    }
    let dockerfile = match &raw.image.dockerfile {
        Some(d) => base.join(d),
        None => context.join("Dockerfile"),
    };
    if context_ok && !dockerfile.is_file() {
        let how = if raw.image.dockerfile.is_some() {
            "`image.dockerfile`"
        } else {
            "`image.dockerfile` (default: Dockerfile in the context)"
        };
        report(
            "image.dockerfile",
            format!(
                "{how}: the Dockerfile {} does not exist",
                dockerfile.display()
            ),
        );
    }
    let keep_images = raw.image.keep_images.unwrap_or(30);
    if keep_images == 0 {
        report(
            "image.keep_images",
            "`image.keep_images` must be at least 1".to_string(),
        );
    }

    let bucket = raw.model.bucket.unwrap_or_default();
    if present("model.bucket") {
        if bucket.contains(['*', '?']) {
            report(
                "model.bucket",
                format!(
                    "`model.bucket` = {bucket:?} has a wildcard: the task role may read one bucket, \
                     named exactly, so a service can never read another team's models"
                ),
            );
        } else if let Err(why) = check_bucket_name(&bucket) {
            report("model.bucket", format!("`model.bucket` = {bucket:?} {why}"));
        }
    }
    let model_path = raw.model.path.unwrap_or_default();
    if present("model.path") {
        if !model_path.contains("{version}") {
            report(
                "model.path",
                format!(
                    "`model.path` = {model_path:?} has no `{{version}}`: write where a version lives, \
                     like \"mlflow/models/<model>/{{version}}\""
                ),
            );
        } else if model_path.contains(['*', '?']) {
            report(
                "model.path",
                format!(
                    "`model.path` = {model_path:?} has a wildcard: the task role reads only the \
                     prefix before `{{version}}`, so write it out, like \"mlflow/models/<model>/{{version}}\""
                ),
            );
        } else if model_path.starts_with("{version}") {
            report(
                "model.path",
                format!(
                    "`model.path` = {model_path:?} starts with `{{version}}`: the task role would read \
                     the whole bucket; put the model's own prefix first, like \"mlflow/models/<model>/{{version}}\""
                ),
            );
        } else if model_path.starts_with('/') || model_path.starts_with("s3://") {
            report(
                "model.path",
                format!(
                    "`model.path` = {model_path:?} must be a key prefix inside model.bucket, without \
                     a leading \"/\" or \"s3://\""
                ),
            );
        }
    }
    let version = raw.model.version.map(|v| match v {
        VersionValue::Number(n) => n.to_string(),
        VersionValue::Text(s) => s,
    });
    if let Some(v) = &version {
        if v.is_empty() || v.contains('/') {
            report(
                "model.version",
                format!("`model.version` = {v:?} must be a non-empty name without \"/\""),
            );
        }
    }

    let cpu = raw.service.cpu.unwrap_or(256);
    let memory = raw.service.memory.unwrap_or(512);
    match fargate_memory_options(cpu) {
        None => report(
            "service.cpu",
            format!(
                "`service.cpu` = {cpu} is not a Fargate size; valid: {}",
                FARGATE_CPU.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
            ),
        ),
        Some(options) if !options.contains(&memory) => report(
            "service.memory",
            format!(
                "`service.memory` = {memory} is not offered by Fargate with service.cpu = {cpu}; valid: {}",
                format_memory_options(&options)
            ),
        ),
        Some(_) => {}
    }
    let port = raw.service.port.unwrap_or(80);
    if port == 0 {
        report(
            "service.port",
            "`service.port` must be between 1 and 65535".to_string(),
        );
    }
    let health_check_path = raw
        .service
        .health_check_path
        .unwrap_or_else(|| "/health".into());
    let ready_path = raw.service.ready_path.unwrap_or_else(|| "/ready".into());
    for (key, value) in [
        ("service.health_check_path", &health_check_path),
        ("service.ready_path", &ready_path),
    ] {
        if !value.starts_with('/') {
            report(key, format!("`{key}` = {value:?} must start with \"/\""));
        }
    }

    for name in raw.service.environment.keys() {
        if RESERVED_ENV.contains(&name.as_str()) {
            report(
                "service.environment",
                format!("`service.environment.{name}` is set by mldeploy from [model]; remove it"),
            );
        }
    }
    for (name, arn) in &raw.service.secrets {
        // A value here should be an ARN; it could be a pasted secret, so no message quotes it.
        if RESERVED_ENV.contains(&name.as_str()) || raw.service.environment.contains_key(name) {
            report(
                "service.secrets",
                format!("`service.secrets.{name}` names a variable that is already set ({}); a name is either plain environment or a secret", if RESERVED_ENV.contains(&name.as_str()) { "by mldeploy from [model]" } else { "in [service.environment]" }),
            );
        } else if secret_resource(arn).is_none() {
            report(
                "service.secrets",
                format!("`service.secrets.{name}` is not a Secrets Manager secret or SSM parameter ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name> or arn:aws:ssm:<region>:<account>:parameter/<name>); its value is not shown, in case it is the secret itself"),
            );
        }
    }
    if let Some(arn) = &raw.service.certificate_arn {
        if !arn.starts_with("arn:") || !arn.contains(":acm:") {
            report(
                "service.certificate_arn",
                format!("`service.certificate_arn` = {arn:?} is not an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)"),
            );
        }
    }
    let log_retention_days = raw.service.log_retention_days.unwrap_or(7);
    if !LOG_RETENTION_DAYS.contains(&log_retention_days) {
        report(
            "service.log_retention_days",
            format!(
                "`service.log_retention_days` = {log_retention_days} is not a CloudWatch retention; valid: {}",
                LOG_RETENTION_DAYS.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
            ),
        );
    }

    let subnets = raw.network.subnets;
    if !subnets.is_empty() {
        if let Some(bad) = subnets.iter().find(|s| !s.starts_with("subnet-")) {
            report(
                "network.subnets",
                format!("`network.subnets` holds {bad:?}, which is not a subnet id (subnet-...)"),
            );
        } else if subnets.len() < 2 {
            report(
                "network.subnets",
                "`network.subnets` needs at least two subnets, in two availability zones: a load balancer spans two".to_string(),
            );
        }
    }

    let security_groups = raw.network.security_groups;
    if let Some(bad) = security_groups.iter().find(|g| !g.starts_with("sg-")) {
        report(
            "network.security_groups",
            format!("`network.security_groups` holds {bad:?}, which is not a security group id (sg-...)"),
        );
    } else if !security_groups.is_empty() && subnets.is_empty() {
        report(
            "network.security_groups",
            "`network.security_groups` needs `network.subnets`: the groups belong to your VPC, and the VPC mldeploy creates has none of them".to_string(),
        );
    } else if security_groups.len() > MAX_EXTRA_SECURITY_GROUPS {
        report(
            "network.security_groups",
            format!(
                "`network.security_groups` names {} groups; a Fargate task takes five, one of them mldeploy's {}-tasks, so at most {MAX_EXTRA_SECURITY_GROUPS}",
                security_groups.len(),
                name
            ),
        );
    }

    let task_definition_template = raw
        .service
        .task_definition_template
        .as_deref()
        .map(|t| base.join(t));
    if let Some(template) = &task_definition_template {
        if !template.is_file() {
            report(
                "service.task_definition_template",
                format!(
                    "`service.task_definition_template`: {} does not exist (start from mldeploy's templates/task-definition.json)",
                    template.display()
                ),
            );
        }
    }

    let smoke = raw.smoke.map(|s| {
        let path = s.path.unwrap_or_else(|| ready_path.clone());
        if !path.starts_with('/') {
            report(
                "smoke.path",
                format!("`smoke.path` = {path:?} must start with \"/\""),
            );
        }
        let method = s.method.map(|m| m.to_ascii_uppercase()).unwrap_or_else(|| {
            if s.body.is_some() {
                "POST".into()
            } else {
                "GET".into()
            }
        });
        if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "HEAD") {
            report(
                "smoke.method",
                format!("`smoke.method` = {method:?} must be GET, POST, PUT or HEAD"),
            );
        }
        let expect_status = s.expect_status.unwrap_or(200);
        if !(100..=599).contains(&expect_status) {
            report(
                "smoke.expect_status",
                format!("`smoke.expect_status` = {expect_status} is not an HTTP status"),
            );
        }
        Smoke {
            path,
            method,
            body: s.body,
            expect_status,
        }
    });

    let kind = match raw.target.kind.as_deref() {
        None | Some("ecs") => TargetKind::Ecs,
        Some("docker") => TargetKind::Docker,
        Some(other) => {
            report(
                "target.kind",
                format!("`target.kind` = {other:?} is not a target: \"ecs\" or \"docker\""),
            );
            TargetKind::Ecs
        }
    };
    let host_port = raw.target.host_port.unwrap_or(port);
    if host_port == 0 {
        report(
            "target.host_port",
            "`target.host_port` must be a port, 1 to 65535".to_string(),
        );
    }

    Some(Config {
        file: file.to_path_buf(),
        project: Project {
            name,
            region: raw.project.region,
        },
        image: Image {
            context,
            dockerfile,
            build_args: raw.image.build_args,
            platform: raw.image.platform,
            target: raw.image.target,
            keep_images,
        },
        model: Model {
            bucket,
            path: model_path,
            version,
        },
        service: Service {
            port,
            cpu,
            memory,
            desired_count: raw.service.desired_count.unwrap_or(1),
            health_check_path,
            ready_path,
            environment: raw.service.environment,
            secrets: raw.service.secrets,
            certificate_arn: raw.service.certificate_arn,
            log_retention_days,
            task_definition_template,
        },
        smoke,
        subnets,
        security_groups,
        target: Target { kind, host_port },
    })
}

/// The project name becomes the ECR repository, the ALB and the target group: it must satisfy
/// all three (ALB and target-group names: at most 32 characters, letters, digits and hyphens, not
/// starting or ending with a hyphen; ECR: lowercase, no doubled separators).
pub fn check_project_name(name: &str) -> Result<(), String> {
    if name.len() < 2 || name.len() > 32 {
        return Err(format!(
            "must be 2 to 32 characters long (it names the load balancer and target group); it has {}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "may hold only lowercase letters, digits and hyphens, not {c:?}"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("must not start or end with a hyphen".to_string());
    }
    if name.contains("--") {
        return Err("must not contain two hyphens in a row (ECR refuses it)".to_string());
    }
    if name.starts_with("internal-") {
        return Err(
            "must not start with \"internal-\" (AWS reserves it for load balancers)".to_string(),
        );
    }
    Ok(())
}

/// S3's bucket naming rules (general purpose buckets).
fn check_bucket_name(bucket: &str) -> Result<(), String> {
    if bucket.len() < 3 || bucket.len() > 63 {
        return Err("must be 3 to 63 characters long".to_string());
    }
    if let Some(c) = bucket
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Err(format!(
            "may hold only lowercase letters, digits, dots and hyphens, not {c:?}"
        ));
    }
    let first_last_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_last_ok(bucket.chars().next()) || !first_last_ok(bucket.chars().last()) {
        return Err("must start and end with a letter or digit".to_string());
    }
    if bucket.contains("..") {
        return Err("must not contain two dots in a row".to_string());
    }
    Ok(())
}

fn is_region_like(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// Fargate's task sizes: CPU units.
const FARGATE_CPU: [u32; 7] = [256, 512, 1024, 2048, 4096, 8192, 16384];

/// The memory sizes (MiB) Fargate offers for a CPU size, or None if the CPU size is not offered.
pub fn fargate_memory_options(cpu: u32) -> Option<Vec<u32>> {
    let range =
        |from: u32, to: u32, step: u32| (from..=to).step_by(step as usize).collect::<Vec<_>>();
    Some(match cpu {
        256 => vec![512, 1024, 2048],
        512 => range(1024, 4096, 1024),
        1024 => range(2048, 8192, 1024),
        2048 => range(4096, 16384, 1024),
        4096 => range(8192, 30720, 1024),
        8192 => range(16384, 61440, 4096),
        16384 => range(32768, 122880, 8192),
        _ => return None,
    })
}

fn format_memory_options(options: &[u32]) -> String {
    if options.len() <= 4 {
        options
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        let step = options[1] - options[0];
        format!(
            "{} to {} in steps of {step}",
            options[0],
            options[options.len() - 1]
        )
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(c.model.version.as_deref(), Some("6"));
        assert_eq!(c.service.health_check_path, "/health");
        assert_eq!(c.service.ready_path, "/ready");
        assert_eq!(c.service.desired_count, 1);
        assert_eq!(c.image.keep_images, 30);
        assert_eq!(c.image.dockerfile, dir.path().join("./Dockerfile"));
        assert!(c.smoke.is_none());
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
        let err = parse_in(dir.path(), "[service]\nport = 80\n").unwrap_err();
        let keys: Vec<_> = err.problems.iter().filter_map(|p| p.key.clone()).collect();
        assert_eq!(keys, ["project.name", "model.bucket", "model.path"]);
        assert!(err
            .to_string()
            .contains("missing required key `project.name`"));
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
    fn a_model_path_without_version_is_refused() {
        let dir = project_dir();
        let text = GOOD.replace("/{version}\"", "/latest\"");
        let p = only_problem(parse_in(dir.path(), &text).unwrap_err());
        assert_eq!(p.key.as_deref(), Some("model.path"));
        assert!(p.message.contains("{version}"));
        assert_eq!(p.line, Some(8));
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
[service]
port = 80
cpu = 1024
memory = 2048
desired_count = 2
health_check_path = "/h"
ready_path = "/r"
certificate_arn = "arn:aws:acm:eu-west-1:1:certificate/x"
log_retention_days = 14
task_definition_template = "Dockerfile"
[service.environment]
LOG_LEVEL = "info"
[service.secrets]
DB_PASSWORD = "arn:aws:secretsmanager:eu-west-1:1:secret:db-AbCdEf"
[network]
subnets = ["subnet-1", "subnet-2"]
security_groups = ["sg-1"]
[target]
kind = "docker"
host_port = 9000
[smoke]
path = "/predict"
method = "post"
body = "{}"
expect_status = 200
"#;
        let c = parse_in(dir.path(), text).unwrap();
        let table: toml::Table = toml::from_str(text).unwrap();
        let mut set_here: Vec<String> = Vec::new();
        for (t, keys) in &table {
            // A free-form table counts as its key, not its entries.
            for k in keys.as_table().unwrap().keys() {
                set_here.push(format!("{t}.{k}"));
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
        set_here.sort();
        listed.sort();
        assert_eq!(set_here, listed, "this test must set every key in SCHEMA");
        assert_eq!(c.image.build_args["PYTHON"], "3.11");
        assert_eq!(c.smoke.unwrap().method, "POST");
        assert_eq!(c.image.keep_images, 5);
        assert_eq!(c.service.environment["LOG_LEVEL"], "info");
        assert_eq!(c.service.log_retention_days, 14);
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
}
