//! The task definition: rendered from `templates/task-definition.json` (embedded; a project may
//! point at its own copy) with minijinja, read into a typed [`TaskSpec`], and compared with the
//! revision that serves so that a new revision is registered only when something changed.
//!
//! The spec holds the fields mldeploy maps to and from the ECS API. A template field outside it
//! is refused by name before any AWS call, rather than dropped without a word (`checks`).
//! `sdk` maps a spec to and from the ECS API's types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Converge, Id, Planned};
use crate::aws::call_error;
use crate::exit::{self, ExitStatus};
use crate::image::platform::{Platform, FARGATE_X86_64};
use crate::targets::{Action, Change};

mod checks;
mod sdk;

use checks::line_of;

/// The template mldeploy ships; `mldeploy init` users start from it.
pub const DEFAULT_TEMPLATE: &str = include_str!("../../../../templates/task-definition.json");
pub const DEFAULT_TEMPLATE_NAME: &str = "templates/task-definition.json (built in)";

/// What the template is rendered with.
#[derive(Debug, Clone, Serialize)]
pub struct TaskInputs {
    pub project: String,
    pub container_name: String,
    /// `<repositoryUri>@<digest>`: a digest, so a revision always means one image.
    pub image: String,
    pub cpu: u32,
    pub memory: u32,
    pub port: u16,
    pub ready_path: String,
    /// The model's bucket and key prefix (`MODEL_BUCKET_NAME`, `MODEL_PATH`); None for a
    /// project without `[model]`, whose tasks get neither.
    pub model_bucket: Option<String>,
    pub model_path: Option<String>,
    pub environment: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    pub execution_role_arn: String,
    pub task_role_arn: String,
    pub log_group: String,
    pub region: String,
    /// The Fargate CPU architecture that runs the image: `X86_64` or `ARM64`.
    pub cpu_architecture: String,
    /// The container health check's timings (`ready_check.interval` and so on, in seconds).
    pub ready_check: ReadyCheck,
    /// What the image was built for. When known, the rendered task must run on the architecture
    /// it needs (the check before anything changes has no image yet, so it has none).
    #[serde(skip)]
    pub image_platform: Option<Platform>,
}

/// The container health check's timings, from `[service]`'s ready-check keys and the model's
/// load time (its start period).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReadyCheck {
    pub interval: u32,
    pub timeout: u32,
    pub retries: u32,
    pub start_period: u32,
}

impl From<&crate::config::Health> for ReadyCheck {
    fn from(h: &crate::config::Health) -> ReadyCheck {
        ReadyCheck {
            interval: h.ready_check_interval,
            timeout: h.ready_check_timeout(),
            retries: h.ready_check_retries,
            start_period: h.start_period(),
        }
    }
}

impl Default for ReadyCheck {
    fn default() -> ReadyCheck {
        ReadyCheck::from(&crate::config::Health::default())
    }
}

/// A Fargate task definition, as far as mldeploy reads and writes one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskSpec {
    pub family: String,
    pub network_mode: String,
    pub requires_compatibilities: Vec<String>,
    pub cpu: String,
    pub memory: String,
    pub execution_role_arn: String,
    pub task_role_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_platform: Option<RuntimePlatformSpec>,
    pub container_definitions: Vec<ContainerSpec>,
}

impl TaskSpec {
    /// Puts the container health check mldeploy decided for the image in the first container:
    /// an exec-form command (`CMD`, run without a shell) with the template's timings, or none.
    /// `Template` keeps what the template rendered.
    pub fn set_ready_command(&mut self, ready: &crate::image::health_check::ReadyCommand) {
        use crate::image::health_check::ReadyCommand;
        let Some(container) = self.container_definitions.first_mut() else {
            return;
        };
        match ready {
            ReadyCommand::Template => {}
            ReadyCommand::Off => container.health_check = None,
            ReadyCommand::Exec(command) => {
                let mut exec = vec!["CMD".to_string()];
                exec.extend(command.iter().cloned());
                match &mut container.health_check {
                    Some(check) => check.command = exec,
                    None => {
                        container.health_check = Some(HealthSpec {
                            command: exec,
                            interval: None,
                            timeout: None,
                            retries: None,
                            start_period: None,
                        })
                    }
                }
            }
        }
    }
}

/// Where Fargate runs the task: its CPU architecture (X86_64 when absent) and operating system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimePlatformSpec {
    pub cpu_architecture: Option<String>,
    pub operating_system_family: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    #[serde(default = "yes")]
    pub essential: bool,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub entry_point: Vec<String>,
    #[serde(default)]
    pub port_mappings: Vec<PortSpec>,
    #[serde(default)]
    pub environment: Vec<NameValue>,
    #[serde(default)]
    pub secrets: Vec<SecretSpec>,
    pub health_check: Option<HealthSpec>,
    pub log_configuration: Option<LogSpec>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSpec {
    pub container_port: u16,
    #[serde(default = "tcp")]
    pub protocol: String,
}

fn tcp() -> String {
    "tcp".into()
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretSpec {
    pub name: String,
    pub value_from: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthSpec {
    pub command: Vec<String>,
    pub interval: Option<i32>,
    pub timeout: Option<i32>,
    pub retries: Option<i32>,
    pub start_period: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogSpec {
    pub log_driver: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// Renders the template and reads it into a spec. Errors name the template and the line, and
/// are usage errors (exit 2): nothing has been called yet.
pub fn render(
    template: &str,
    template_name: &str,
    inputs: &TaskInputs,
) -> anyhow::Result<TaskSpec> {
    let usage = |msg: String| exit::error(ExitStatus::Usage, msg);
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("task-definition", template).map_err(|e| {
        usage(format!(
            "{template_name}:{}: {}",
            e.line().unwrap_or(0),
            e.detail().unwrap_or("invalid template")
        ))
    })?;
    let rendered = env
        .get_template("task-definition")
        .and_then(|t| t.render(minijinja::value::Serde(inputs)))
        .map_err(|e| {
            usage(format!(
                "{template_name}:{}: {}",
                e.line().unwrap_or(0),
                e.detail().unwrap_or(&e.to_string())
            ))
        })?;
    let spec: TaskSpec = serde_json::from_str(&rendered).map_err(|e| {
        let line = rendered.lines().nth(e.line().saturating_sub(1)).unwrap_or("").trim();
        usage(format!(
            "{template_name} rendered something that is not a task definition mldeploy can register, at line {} of the output (`{line}`): {e}",
            e.line()
        ))
    })?;
    if let Err((field, problem)) = spec.check(inputs) {
        let (line, text) = line_of(&rendered, field);
        return Err(usage(format!(
            "{template_name}: {problem} (line {line} of the output: `{text}`)"
        )));
    }
    Ok(spec.normalized())
}

impl TaskSpec {
    /// Lists in a stable order, so two specs that mean the same compare equal.
    pub fn normalized(mut self) -> TaskSpec {
        for c in &mut self.container_definitions {
            c.environment.sort();
            c.secrets.sort();
            c.port_mappings.sort();
        }
        self
    }

    /// The CPU architecture Fargate runs the task on: X86_64 when the task definition names
    /// none (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RuntimePlatform.html).
    pub fn cpu_architecture(&self) -> &str {
        self.runtime_platform
            .as_ref()
            .and_then(|p| p.cpu_architecture.as_deref())
            .unwrap_or(FARGATE_X86_64)
    }

    pub fn container(&self) -> Option<&ContainerSpec> {
        self.container_definitions.first()
    }

    /// The value of an environment variable of the first container.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.container()?
            .environment
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.value.as_str())
    }

    /// The same spec with the first container running `image`: how a worker follows the model
    /// API's image back in a rollback.
    pub fn with_image(mut self, image: &str) -> TaskSpec {
        if let Some(c) = self.container_definitions.first_mut() {
            c.image = image.to_string();
        }
        self
    }

    /// The same spec with one environment variable of the first container set (added when
    /// missing): how a rollback changes only the model path.
    pub fn with_env(mut self, name: &str, value: &str) -> TaskSpec {
        if let Some(c) = self.container_definitions.first_mut() {
            c.environment.retain(|e| e.name != name);
            c.environment.push(NameValue {
                name: name.to_string(),
                value: value.to_string(),
            });
        }
        self.normalized()
    }
}

/// The tag naming the registered model a release's version is of.
pub const REGISTRY_MODEL_TAG: &str = "mldeploy:registry-model";
/// The tag naming the registry alias a release was deployed by.
pub const MODEL_ALIAS_TAG: &str = "mldeploy:model-alias";

/// What a release was, recorded as tags on its revision (what `history` reads back).
#[derive(Debug, Clone, Default)]
pub struct ReleaseTags {
    pub model_version: Option<String>,
    /// The registered model the version is of, and the alias it was deployed by.
    pub registry: Option<crate::model::FromRegistry>,
    /// None for a project without `[model]`.
    pub model_path: Option<String>,
    pub image: String,
    pub git_commit: Option<String>,
    pub ci_run: Option<String>,
    /// `promote`: the environment and revision the release was promoted from.
    pub promoted_from: Option<String>,
}

/// The tag naming where a release was promoted from.
pub const PROMOTED_FROM_TAG: &str = "mldeploy:promoted-from";

impl ReleaseTags {
    fn tags(&self, project: &str) -> Vec<aws_sdk_ecs::types::Tag> {
        let pairs = [
            Some((super::PROJECT_TAG, project.to_string())),
            self.model_version
                .clone()
                .map(|v| ("mldeploy:model-version", v)),
            self.registry
                .as_ref()
                .map(|r| (REGISTRY_MODEL_TAG, r.name.clone())),
            self.registry
                .as_ref()
                .and_then(|r| r.alias.clone())
                .map(|a| (MODEL_ALIAS_TAG, a)),
            self.model_path.clone().map(|p| ("mldeploy:model-path", p)),
            Some(("mldeploy:image", self.image.clone())),
            self.git_commit.clone().map(|c| ("mldeploy:git-commit", c)),
            self.ci_run.clone().map(|c| ("mldeploy:ci-run", c)),
            self.promoted_from.clone().map(|p| (PROMOTED_FROM_TAG, p)),
        ];
        pairs
            .into_iter()
            .flatten()
            // Tag values are at most 256 characters.
            .map(|(k, v)| {
                aws_sdk_ecs::types::Tag::builder()
                    .key(k)
                    .value(v.chars().take(256).collect::<String>())
                    .build()
            })
            .collect()
    }
}

/// Registers the spec as a new revision unless `serving` already is exactly this spec. Returns
/// the ARN of the revision to deploy ([`Id::AfterApply`] in a dry run that would register one).
pub async fn ensure_registered(
    ecs: &aws_sdk_ecs::Client,
    cv: &Converge,
    spec: &TaskSpec,
    release: &ReleaseTags,
    serving: Option<&str>,
    changes: &mut Vec<Change>,
) -> anyhow::Result<Id> {
    let current = match serving {
        Some(arn) => ecs
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
            .map_err(|e| call_error("ecs:DescribeTaskDefinition", e))?
            .task_definition
            .map(|td| (arn, TaskSpec::from_registered(&td))),
        None => None,
    };
    let planned = plan(spec, release, current.as_ref().map(|(arn, td)| (*arn, td)));
    let registers = planned.step.is_some();
    let id = cv
        .carry_out(planned, changes, |()| {
            register(ecs, &cv.project, spec, release)
        })
        .await?;
    if let (true, Some(arn), Some(change)) = (registers, id.known(), changes.last_mut()) {
        // The plan can only say "(next)"; once registered, the change names the revision.
        change.name = super::service::short_task_definition(arn).to_string();
    }
    Ok(id)
}

/// Decides, from the revision serving (its ARN and spec), whether the spec needs registering.
pub fn plan(
    spec: &TaskSpec,
    release: &ReleaseTags,
    serving: Option<(&str, &TaskSpec)>,
) -> Planned<()> {
    match serving {
        Some((arn, current)) if current == spec => Planned::keep(
            Change::new(
                "task definition",
                super::service::short_task_definition(arn),
                Action::Keep,
            )
            .because("unchanged"),
            Id::Known(arn.to_string()),
        ),
        _ => Planned::change(
            Change::new(
                "task definition",
                format!("{}:(next)", spec.family),
                Action::Create,
            )
            .because(match spec.env("MODEL_PATH") {
                Some(path) => format!("image {}, MODEL_PATH {path}", release.image),
                // A worker that does not read the model.
                None => format!("image {}, no model", release.image),
            }),
            Id::after_apply(),
            (),
        ),
    }
}

async fn register(
    ecs: &aws_sdk_ecs::Client,
    project: &str,
    spec: &TaskSpec,
    release: &ReleaseTags,
) -> anyhow::Result<Option<Id>> {
    let out = ecs
        .register_task_definition()
        .family(&spec.family)
        .network_mode(spec.sdk_network_mode())
        .set_requires_compatibilities(Some(spec.sdk_compatibilities()))
        .cpu(&spec.cpu)
        .memory(&spec.memory)
        .execution_role_arn(&spec.execution_role_arn)
        .task_role_arn(&spec.task_role_arn)
        .set_runtime_platform(spec.sdk_runtime_platform())
        .set_container_definitions(Some(spec.sdk_containers()?))
        .set_tags(Some(release.tags(project)))
        .send()
        .await
        .map_err(|e| call_error("ecs:RegisterTaskDefinition", e))?;
    let arn = out
        .task_definition
        .and_then(|td| td.task_definition_arn)
        .ok_or_else(|| anyhow::anyhow!("ecs:RegisterTaskDefinition returned no ARN"))?;
    Ok(Some(Id::Known(arn)))
}

/// A registered revision, as a spec; None when ECS has none by that ARN.
pub async fn registered(ecs: &aws_sdk_ecs::Client, arn: &str) -> anyhow::Result<Option<TaskSpec>> {
    let td = ecs
        .describe_task_definition()
        .task_definition(arn)
        .send()
        .await
        .map_err(|e| call_error("ecs:DescribeTaskDefinition", e))?
        .task_definition;
    Ok(td.as_ref().map(TaskSpec::from_registered))
}

/// The `MODEL_PATH` a registered revision runs.
pub async fn model_path(ecs: &aws_sdk_ecs::Client, arn: &str) -> anyhow::Result<Option<String>> {
    Ok(registered(ecs, arn)
        .await?
        .and_then(|spec| spec.env("MODEL_PATH").map(str::to_string)))
}

pub async fn deregister(ecs: &aws_sdk_ecs::Client, arn: &str) -> anyhow::Result<()> {
    ecs.deregister_task_definition()
        .task_definition(arn)
        .send()
        .await
        .map_err(|e| call_error("ecs:DeregisterTaskDefinition", e))?;
    Ok(())
}

#[cfg(test)]
mod tests;
