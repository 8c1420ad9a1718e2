//! `mldeploy.toml` -> a validated [`Config`]. Every check happens here, before any call to Docker
//! or AWS, and every problem names the file, the line, the key and what would be valid. All
//! problems are reported at once, as a usage error (exit 2).
//!
//! `raw` holds the TOML shapes, `diagnostics` how a problem is told, `validate` and `service`
//! one validator per table, `limits` the AWS and Fargate limits they check against.

mod autoscaling;
mod deploy;
mod diagnostics;
pub mod duration;
pub mod environments;
mod health;
mod limits;
mod raw;
mod raw_workers;
pub mod schema;
mod service;
mod target;
mod validate;
mod workers;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::exit::{self, ExitStatus};
pub use autoscaling::{Autoscaling, Metric};
pub use deploy::{Deploy, Gate, GateRequest, Strategy};
use diagnostics::{walk_keys, Positions};
pub use diagnostics::{ConfigError, Problem};
pub use health::{Health, MAX_START_PERIOD};
pub use limits::{
    check_project_name, fargate_memory_options, secret_resource, SecretResource,
    LOG_RETENTION_DAYS, MAX_EXTRA_SECURITY_GROUPS, RESERVED_ENV,
};
use raw::RawConfig;
use serde::Deserialize;
pub use workers::{Worker, WorkerImage, MAX_WORKER_NAME};

pub const FILE_NAME: &str = "mldeploy.toml";

/// A validated configuration; paths are absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// The mldeploy.toml this came from.
    pub file: PathBuf,
    pub project: Project,
    pub image: Image,
    /// `[model]`: None for a project that serves no model (a tracking server, a feature API).
    pub model: Option<Model>,
    pub service: Service,
    pub smoke: Option<Smoke>,
    /// Existing subnets to use instead of creating a VPC; empty when mldeploy makes the network.
    pub subnets: Vec<String>,
    /// Existing security groups the tasks get beside `<name>-tasks` (to reach a database, say);
    /// only with `subnets`. Checked, never modified.
    pub security_groups: Vec<String>,
    /// `network.allow_from`: the CIDR ranges the load balancer's listeners are open to (every
    /// address by default).
    pub allow_from: Vec<String>,
    /// `network.tasks` and `network.egress`: where the tasks run in the VPC mldeploy makes.
    pub tasks_network: TasksNetwork,
    /// `network.load_balancer = "internal"`: a load balancer with private addresses only.
    pub internal_load_balancer: bool,
    pub target: Target,
    pub lock: Lock,
    /// How ECS replaces the serving revision.
    pub deploy: Deploy,
    /// The model gate of blue/green, canary and linear deployments.
    pub gate: Option<Gate>,
    /// The environment merged over the base file (`--env`); `project.name` is then its stack's
    /// name, `<project>-<env>`.
    pub env: Option<String>,
    /// `[workers.<name>]`, in name order: services with no load balancer, in the same release.
    pub workers: Vec<Worker>,
}

/// Where the tasks run in the VPC mldeploy makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TasksNetwork {
    /// In the public subnets, with public IPs (the load balancer's subnets).
    #[default]
    Public,
    /// In private subnets of their own, without public IPs, reaching ECR, S3 and CloudWatch
    /// Logs through `Egress`.
    Private(Egress),
}

/// How private tasks reach AWS's services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// One NAT gateway (with its Elastic IP) in the first public subnet.
    Nat,
    /// VPC endpoints: S3's gateway endpoint, and interface endpoints for ECR's API and registry,
    /// CloudWatch Logs, and Secrets Manager or SSM when secrets name them.
    Endpoints,
}

/// Where the deploy lock lives and how long its lease is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// `lock.bucket`, else `model.bucket` (a project without `[model]` must set it).
    pub bucket: String,
    /// How long a lock outlives its holder's last renewal.
    pub lease: std::time::Duration,
}

/// Where the service runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: TargetKind,
    /// The Docker target's port on the engine's host (default: `service.port`).
    pub host_port: u16,
    /// The Docker target's reverse proxy in front of the releases (`target.proxy`, default on):
    /// the image it runs, or None for releases that publish `host_port` themselves.
    pub proxy_image: Option<String>,
    /// How long a replaced release keeps running after the proxy stopped sending it requests,
    /// so the ones in flight finish.
    pub drain: std::time::Duration,
    /// How many replaced releases the Docker target keeps, stopped, with their images.
    pub keep_releases: usize,
    /// The Docker target's HTTPS port on the engine's host, when `service.domain` is set.
    pub https_port: u16,
    pub acme: Acme,
    /// Where the Docker target builds: on its engine (`remote`, as `docker -H` does), or on
    /// this machine's, pushed to the project's ECR repository and pulled there (`local`).
    pub build_locally: bool,
    /// The Docker target's log rotation for every container it starts: the size a log file
    /// grows to (Docker's notation, "10m") and how many files are kept.
    pub log_max_size: String,
    pub log_files: u32,
}

/// Where the Docker target's proxy gets the certificate for `service.domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acme {
    /// The ACME directory URL (`target.acme_ca`; Let's Encrypt's by default).
    pub directory: String,
    /// `target.acme_email`: where the CA writes about the certificate.
    pub email: Option<String>,
    /// `target.acme_ca_root`: a PEM file (in the project) of the root that signed the ACME
    /// server's own HTTPS certificate, for a private CA.
    pub ca_root: Option<std::path::PathBuf>,
}

/// Let's Encrypt's production ACME directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

impl Config {
    /// The service `flag` names (`--service NAME`): None for the model API (named for the
    /// project, and the default), or the worker of that name. An unknown name is exit 2 listing
    /// the project's services.
    pub fn service_named(&self, flag: Option<&str>) -> anyhow::Result<Option<&Worker>> {
        let project = self.project.name.as_str();
        match flag {
            None => Ok(None),
            Some(name) if name == project => Ok(None),
            Some(name) => match self.workers.iter().find(|w| w.name == name) {
                Some(w) => Ok(Some(w)),
                None => {
                    let names: Vec<&str> = std::iter::once(project)
                        .chain(self.workers.iter().map(|w| w.name.as_str()))
                        .collect();
                    Err(exit::error(
                        ExitStatus::Usage,
                        format!(
                            "--service {name}: {project} has no such service; its services: {}",
                            names.join(", ")
                        ),
                    ))
                }
            },
        }
    }

    /// `[model]`, for what needs one (`what`: a flag, a command): a project without it is exit
    /// 2 naming `what`, since it serves no model.
    pub fn model_for(&self, what: &str) -> anyhow::Result<&Model> {
        self.model.as_ref().ok_or_else(|| {
            exit::error(
                ExitStatus::Usage,
                format!(
                    "{what}: {} has no [model] in {}, so it serves no model; remove {what}, or add a [model] table with its bucket and path",
                    self.project.name,
                    self.file.display()
                ),
            )
        })
    }

    /// `model.path`, the template a revision's model version is read from; "" without `[model]`
    /// (no version is read then).
    pub fn model_path_template(&self) -> &str {
        self.model.as_ref().map_or("", |m| m.path.as_str())
    }

    /// Every secret ARN a task of the project reads: the service's and its workers'.
    pub fn all_secrets(&self) -> impl Iterator<Item = &String> {
        self.secret_keys().into_iter().map(|(_, arn)| arn)
    }

    /// Every secret with the key that names it: `service.secrets.<NAME>`,
    /// `workers.<worker>.secrets.<NAME>`.
    pub fn secret_keys(&self) -> Vec<(String, &String)> {
        let service = self
            .service
            .secrets
            .iter()
            .map(|(name, arn)| (format!("service.secrets.{name}"), arn));
        let workers = self.workers.iter().flat_map(|w| {
            w.secrets
                .iter()
                .map(move |(name, arn)| (format!("workers.{}.secrets.{name}", w.name), arn))
        });
        service.chain(workers).collect()
    }

    /// On ECS a domain needs a certificate, or the zone to validate one in; the Docker target's
    /// proxy gets its own through ACME.
    pub fn ecs_domain_problem(&self) -> Option<&'static str> {
        let s = &self.service;
        (self.target.kind == TargetKind::Ecs
            && s.domain.is_some()
            && s.certificate_arn.is_none()
            && s.hosted_zone_id.is_none())
        .then_some("`service.domain` on the ECS target needs `service.certificate_arn` (an ACM certificate for it) or `service.hosted_zone_id` (the Route 53 zone that holds it: mldeploy then requests the certificate and validates it there); on the Docker target the proxy gets a certificate through ACME")
    }
}

/// The proxy image when `target.proxy_image` names none: Caddy, whose admin API changes the
/// upstream without a restart.
pub const DEFAULT_PROXY_IMAGE: &str = "caddy:2";
/// `target.drain` when unset.
pub const DEFAULT_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);
/// The Docker target's log rotation by default: three files of 10 MB, at most 30 MB a container
/// (Docker's json-file driver keeps everything, and fills the disk, without max-size).
pub const DEFAULT_LOG_MAX_SIZE: &str = "10m";
pub const DEFAULT_LOG_FILES: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// AWS ECS Fargate behind a load balancer.
    Ecs,
    /// One container on the Docker engine DOCKER_HOST names.
    Docker,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub region: Option<String>,
    /// The AWS profile (~/.aws/config) when `--profile` names none: an environment's account.
    pub profile: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The key prefix of a model version, with `{version}` in it; with a registry, the prefix
    /// its versions are stored under (`{version}` optional).
    pub path: String,
    pub version: Option<String>,
    /// The MLflow model registry versions come from, when there is one.
    pub registry: Option<ModelRegistry>,
}

/// `[model] registry`, `name` and `set_alias`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRegistry {
    /// The tracking server's URI.
    pub uri: String,
    /// The registered model.
    pub name: String,
    /// The alias `up` points at the version it deployed, once the deploy succeeded.
    pub set_alias: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub port: u16,
    pub cpu: u32,
    pub memory: u32,
    pub desired_count: u32,
    /// `[service.autoscaling]`: then `up` sets the desired count only for a new service, or
    /// one below `min_count`.
    pub autoscaling: Option<Autoscaling>,
    pub health_check_path: String,
    pub ready_path: String,
    /// Extra environment for the container (MODEL_BUCKET_NAME and MODEL_PATH are mldeploy's).
    pub environment: BTreeMap<String, String>,
    /// Environment names to Secrets Manager secret or SSM parameter ARNs: the task definition's
    /// `secrets` (`valueFrom`), and exactly what the execution role may read.
    pub secrets: BTreeMap<String, String>,
    /// An ACM certificate: HTTPS on 443, and HTTP redirected to it.
    pub certificate_arn: Option<String>,
    /// The name users call the service by (on the certificate): what the smoke test sends as
    /// SNI and Host, and verifies the certificate for, while connecting to the load balancer.
    pub domain: Option<String>,
    /// The Route 53 hosted zone that holds the domain: `up` keeps an alias record there pointing
    /// the domain at the load balancer and, without `certificate_arn`, requests an ACM
    /// certificate for the domain and validates it through the zone.
    pub hosted_zone_id: Option<String>,
    pub log_retention_days: i32,
    /// Health checks, draining and the model's load time.
    pub health: Health,
    /// The container health check: picked for the image, the user's command, or none.
    pub ready_check: ReadyCheckSetting,
    /// The project's own task-definition template; None for the built-in one.
    pub task_definition_template: Option<PathBuf>,
}

/// `service.ready_check` / `service.ready_check_command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyCheckSetting {
    /// The built-in check (wget, curl or python3 through /bin/sh), or one written for what the
    /// image has.
    Auto,
    /// The user's command, exec form.
    Command(Vec<String>),
    /// No container health check: the load balancer's check alone.
    Off,
}

#[derive(Debug, Clone)]
pub struct Smoke {
    pub path: String,
    pub method: String,
    pub body: Option<String>,
    pub expect_status: u16,
}

/// Loads and validates `<dir>/mldeploy.toml`, with environment `env` merged over it.
/// Where mldeploy.toml is for a project in `start`: there, or in the nearest parent that has
/// one (as cargo finds Cargo.toml); `start`'s own path when none has, for the error to name.
pub fn find(start: &Path) -> PathBuf {
    let absolute = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
    absolute
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|file| file.is_file())
        .map(|file| {
            // Keep a relative start relative when the file is right there: messages stay short.
            if file.parent() == Some(absolute.as_path()) {
                start.join(FILE_NAME)
            } else {
                file
            }
        })
        .unwrap_or_else(|| start.join(FILE_NAME))
}

/// Loads and validates `file`, with environment `env` merged over it.
pub fn load(file: &Path, env: Option<&str>) -> anyhow::Result<Config> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = file.parent().unwrap_or(Path::new(""));
            return Err(exit::error(
                ExitStatus::Usage,
                format!(
                    "no {FILE_NAME} in {} or its parents: run `mldeploy init` there, or point -C/--dir at the project or -f/--config at the file",
                    display_dir(dir)
                ),
            ));
        }
        Err(e) => {
            return Err(exit::error(
                ExitStatus::Usage,
                format!("cannot read {}: {e}", file.display()),
            ))
        }
    };
    parse_env(&text, file, env).map_err(|e| exit::error(ExitStatus::Usage, e.to_string()))
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
    parse_env(text, file, None)
}

/// [`parse`] with environment `env` merged over the base file (see [`environments`]).
pub fn parse_env(text: &str, file: &Path, env: Option<&str>) -> Result<Config, ConfigError> {
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

    if let Some(env) = env {
        if let Err(why) = environments::check_name(env) {
            return Err(fail(vec![Problem {
                key: None,
                line: None,
                message: format!("--env / MLDEPLOY_ENV: {why}"),
            }]));
        }
    }
    let values = match environments::merged(text, env) {
        Ok(values) => values,
        Err(problem) => return Err(fail(vec![problem])),
    };
    positions.env = env.map(str::to_string);
    // Deserialized from the text when no environment is merged: serde's errors then carry the
    // value's place in it.
    let parsed = match env {
        None => toml::from_str::<RawConfig>(text),
        Some(_) => RawConfig::deserialize(toml::Value::Table(values)),
    };
    let raw: RawConfig = match parsed {
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
    let mut raw = raw;
    if let (Some(env), Some(name)) = (env, raw.project.name.as_mut()) {
        *name = environments::stack_name(name, env);
    }
    let config = validate::config(raw, base, file, &positions, &mut problems).map(|mut c| {
        c.env = env.map(str::to_string);
        c
    });
    if let Some(env) = env {
        for p in problems
            .iter_mut()
            .filter(|p| p.key.as_deref() == Some("project.name"))
        {
            p.message.push_str(&format!(
                " (with --env {env} the stack is named `project.name`-{env}; shorten one of them)"
            ));
        }
    }
    if problems.is_empty() {
        config.ok_or_else(|| fail(Vec::new()))
    } else {
        Err(fail(problems))
    }
}
