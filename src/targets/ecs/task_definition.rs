//! The task definition: rendered from `templates/task-definition.json` (embedded; a project may
//! point at its own copy) with minijinja, read into a typed [`TaskSpec`], and compared with the
//! revision that serves so that a new revision is registered only when something changed.
//!
//! The spec holds the fields mldeploy maps to and from the ECS API. A template field outside it
//! is refused by name before any AWS call, rather than dropped without a word.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, HealthCheck, KeyValuePair, LogConfiguration, LogDriver,
    NetworkMode, PortMapping, Secret, TaskDefinition, TransportProtocol,
};
use serde::{Deserialize, Serialize};

use crate::aws::call_error;
use crate::config::fargate_memory_options;
use crate::exit::{self, ExitStatus};
use crate::targets::{Action, Change};

/// The template mldeploy ships; `mldeploy init` users start from it.
pub const DEFAULT_TEMPLATE: &str = include_str!("../../../templates/task-definition.json");
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
    pub model_bucket: String,
    pub model_path: String,
    pub environment: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    pub execution_role_arn: String,
    pub task_role_arn: String,
    pub log_group: String,
    pub region: String,
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
    pub container_definitions: Vec<ContainerSpec>,
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

/// The first line of the rendered output that holds `"field"`, numbered from 1, and its text.
fn line_of<'a>(rendered: &'a str, field: &str) -> (usize, &'a str) {
    let quoted = format!("\"{field}\"");
    rendered
        .lines()
        .enumerate()
        .find(|(_, line)| line.contains(&quoted))
        .map(|(n, line)| (n + 1, line.trim()))
        .unwrap_or((0, ""))
}

/// ECS's limits on a container health check: (field, least, most).
const HEALTH_RANGES: &[(&str, i32, i32)] = &[
    ("interval", 5, 300),
    ("timeout", 2, 120),
    ("retries", 1, 10),
    ("startPeriod", 0, 300),
];

impl TaskSpec {
    /// What ECS would refuse, or what would take the task out of mldeploy's hands: the field
    /// (to find its line) and the problem.
    fn check(&self, inputs: &TaskInputs) -> Result<(), (&'static str, String)> {
        if self.family != inputs.project {
            return Err((
                "family",
                format!(
                    "family is {:?}; mldeploy manages the family named after the project, {:?}",
                    self.family, inputs.project
                ),
            ));
        }
        if self.network_mode != "awsvpc" {
            return Err((
                "networkMode",
                format!(
                    "networkMode is {:?}; Fargate needs \"awsvpc\"",
                    self.network_mode
                ),
            ));
        }
        if !self.requires_compatibilities.iter().any(|c| c == "FARGATE") {
            return Err((
                "requiresCompatibilities",
                "requiresCompatibilities must include \"FARGATE\"".into(),
            ));
        }
        for (field, input, value, expected) in [
            (
                "executionRoleArn",
                "execution_role_arn",
                &self.execution_role_arn,
                &inputs.execution_role_arn,
            ),
            (
                "taskRoleArn",
                "task_role_arn",
                &self.task_role_arn,
                &inputs.task_role_arn,
            ),
        ] {
            if value != expected {
                return Err((
                    field,
                    format!("{field} is {value:?}; it must be the role mldeploy manages, {{{{ {input} }}}} ({expected})"),
                ));
            }
        }
        let cpu = self.cpu.trim().parse::<u32>();
        let memory = self.memory.trim().parse::<u32>();
        match (cpu, memory) {
            (Ok(cpu), Ok(memory))
                if fargate_memory_options(cpu).is_some_and(|m| m.contains(&memory)) => {}
            (Ok(cpu), Ok(memory)) if fargate_memory_options(cpu).is_some() => {
                return Err((
                    "memory",
                    format!("memory {memory} MiB does not go with cpu {cpu} on Fargate; service.memory in the README lists the sizes it offers"),
                ))
            }
            _ => {
                return Err((
                    "cpu",
                    format!("cpu {:?} with memory {:?} is not a Fargate task size (cpu 256, 512, 1024, 2048, 4096, 8192 or 16384 units, memory in MiB)", self.cpu, self.memory),
                ))
            }
        }
        let Some(container) = self
            .container_definitions
            .iter()
            .find(|c| c.name == inputs.container_name)
        else {
            return Err((
                "containerDefinitions",
                format!(
                    "no container is named {:?}; the load balancer sends traffic to that container",
                    inputs.container_name
                ),
            ));
        };
        if !container
            .port_mappings
            .iter()
            .any(|p| p.container_port == inputs.port)
        {
            return Err((
                "portMappings",
                format!(
                    "container {:?} maps no containerPort {}: service.port, where the load balancer sends traffic",
                    container.name, inputs.port
                ),
            ));
        }
        if let Some(health) = &container.health_check {
            if !matches!(
                health.command.first().map(String::as_str),
                Some("CMD" | "CMD-SHELL" | "NONE")
            ) {
                return Err((
                    "healthCheck",
                    "healthCheck.command must start with \"CMD\", \"CMD-SHELL\" or \"NONE\"".into(),
                ));
            }
            let values = [
                health.interval,
                health.timeout,
                health.retries,
                health.start_period,
            ];
            for ((field, least, most), value) in HEALTH_RANGES.iter().zip(values) {
                if let Some(v) = value.filter(|v| !(*least..=*most).contains(v)) {
                    return Err((
                        field,
                        format!("healthCheck.{field} is {v}; ECS takes {least} to {most}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Lists in a stable order, so two specs that mean the same compare equal.
    fn normalized(mut self) -> TaskSpec {
        for c in &mut self.container_definitions {
            c.environment.sort();
            c.secrets.sort();
            c.port_mappings.sort();
        }
        self
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

    /// The spec of a registered revision, for comparison.
    pub fn from_registered(td: &TaskDefinition) -> TaskSpec {
        let containers = td
            .container_definitions()
            .iter()
            .map(|c| ContainerSpec {
                name: c.name().unwrap_or_default().to_string(),
                image: c.image().unwrap_or_default().to_string(),
                essential: c.essential().unwrap_or(true),
                command: c.command().to_vec(),
                entry_point: c.entry_point().to_vec(),
                port_mappings: c
                    .port_mappings()
                    .iter()
                    .map(|p| PortSpec {
                        container_port: p
                            .container_port()
                            .and_then(|p| u16::try_from(p).ok())
                            .unwrap_or(0),
                        protocol: p
                            .protocol()
                            .map(|p| p.as_str().to_string())
                            .unwrap_or_else(tcp),
                    })
                    .collect(),
                environment: c
                    .environment()
                    .iter()
                    .map(|e| NameValue {
                        name: e.name().unwrap_or_default().to_string(),
                        value: e.value().unwrap_or_default().to_string(),
                    })
                    .collect(),
                secrets: c
                    .secrets()
                    .iter()
                    .map(|s| SecretSpec {
                        name: s.name().to_string(),
                        value_from: s.value_from().to_string(),
                    })
                    .collect(),
                health_check: c.health_check().map(|h| HealthSpec {
                    command: h.command().to_vec(),
                    interval: h.interval(),
                    timeout: h.timeout(),
                    retries: h.retries(),
                    start_period: h.start_period(),
                }),
                log_configuration: c.log_configuration().map(|l| LogSpec {
                    log_driver: l.log_driver().as_str().to_string(),
                    options: l
                        .options()
                        .map(|o| o.clone().into_iter().collect())
                        .unwrap_or_default(),
                }),
            })
            .collect();
        TaskSpec {
            family: td.family().unwrap_or_default().to_string(),
            network_mode: td
                .network_mode()
                .map(|m| m.as_str().to_string())
                .unwrap_or_default(),
            requires_compatibilities: td
                .requires_compatibilities()
                .iter()
                .map(|c| c.as_str().to_string())
                .collect(),
            cpu: td.cpu().unwrap_or_default().to_string(),
            memory: td.memory().unwrap_or_default().to_string(),
            execution_role_arn: td.execution_role_arn().unwrap_or_default().to_string(),
            task_role_arn: td.task_role_arn().unwrap_or_default().to_string(),
            container_definitions: containers,
        }
        .normalized()
    }

    /// The container definitions for RegisterTaskDefinition.
    pub fn sdk_containers(&self) -> anyhow::Result<Vec<ContainerDefinition>> {
        self.container_definitions
            .iter()
            .map(|c| {
                let mut b = ContainerDefinition::builder()
                    .name(&c.name)
                    .image(&c.image)
                    .essential(c.essential)
                    .set_command((!c.command.is_empty()).then(|| c.command.clone()))
                    .set_entry_point((!c.entry_point.is_empty()).then(|| c.entry_point.clone()));
                for p in &c.port_mappings {
                    b = b.port_mappings(
                        PortMapping::builder()
                            .container_port(i32::from(p.container_port))
                            .protocol(TransportProtocol::from(p.protocol.as_str()))
                            .build(),
                    );
                }
                for e in &c.environment {
                    b = b.environment(
                        KeyValuePair::builder()
                            .name(&e.name)
                            .value(&e.value)
                            .build(),
                    );
                }
                for s in &c.secrets {
                    b = b.secrets(
                        Secret::builder()
                            .name(&s.name)
                            .value_from(&s.value_from)
                            .build()?,
                    );
                }
                if let Some(h) = &c.health_check {
                    b = b.health_check(
                        HealthCheck::builder()
                            .set_command(Some(h.command.clone()))
                            .set_interval(h.interval)
                            .set_timeout(h.timeout)
                            .set_retries(h.retries)
                            .set_start_period(h.start_period)
                            .build()?,
                    );
                }
                if let Some(l) = &c.log_configuration {
                    b = b.log_configuration(
                        LogConfiguration::builder()
                            .log_driver(LogDriver::from(l.log_driver.as_str()))
                            .set_options(Some(l.options.clone().into_iter().collect()))
                            .build()?,
                    );
                }
                Ok(b.build())
            })
            .collect()
    }

    pub fn sdk_network_mode(&self) -> NetworkMode {
        NetworkMode::from(self.network_mode.as_str())
    }

    pub fn sdk_compatibilities(&self) -> Vec<Compatibility> {
        self.requires_compatibilities
            .iter()
            .map(|c| Compatibility::from(c.as_str()))
            .collect()
    }
}

/// What a release was, recorded as tags on its revision (what `history` reads back).
#[derive(Debug, Clone, Default)]
pub struct ReleaseTags {
    pub model_version: Option<String>,
    pub model_path: String,
    pub image: String,
    pub git_commit: Option<String>,
    pub ci_run: Option<String>,
}

impl ReleaseTags {
    fn tags(&self, project: &str) -> Vec<aws_sdk_ecs::types::Tag> {
        let pairs = [
            Some((super::PROJECT_TAG, project.to_string())),
            self.model_version
                .clone()
                .map(|v| ("mldeploy:model-version", v)),
            Some(("mldeploy:model-path", self.model_path.clone())),
            Some(("mldeploy:image", self.image.clone())),
            self.git_commit.clone().map(|c| ("mldeploy:git-commit", c)),
            self.ci_run.clone().map(|c| ("mldeploy:ci-run", c)),
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
/// the ARN of the revision to deploy.
pub async fn ensure_registered(
    ecs: &aws_sdk_ecs::Client,
    cv: &super::Converge,
    spec: &TaskSpec,
    release: &ReleaseTags,
    serving: Option<&str>,
    changes: &mut Vec<Change>,
) -> anyhow::Result<String> {
    if let Some(arn) = serving {
        let current = ecs
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
            .map_err(|e| call_error("ecs:DescribeTaskDefinition", e))?
            .task_definition
            .map(|td| TaskSpec::from_registered(&td));
        if current.as_ref() == Some(spec) {
            changes.push(
                Change::new(
                    "task definition",
                    super::service::short_task_definition(arn),
                    Action::Keep,
                )
                .because("unchanged"),
            );
            return Ok(arn.to_string());
        }
    }
    let what = format!("image {}, MODEL_PATH {}", release.image, release.model_path);
    if cv.dry_run {
        changes.push(
            Change::new(
                "task definition",
                format!("{}:(next)", spec.family),
                Action::Create,
            )
            .because(what),
        );
        return Ok(super::network::TO_BE_CREATED.to_string());
    }
    let out = ecs
        .register_task_definition()
        .family(&spec.family)
        .network_mode(spec.sdk_network_mode())
        .set_requires_compatibilities(Some(spec.sdk_compatibilities()))
        .cpu(&spec.cpu)
        .memory(&spec.memory)
        .execution_role_arn(&spec.execution_role_arn)
        .task_role_arn(&spec.task_role_arn)
        .set_container_definitions(Some(spec.sdk_containers()?))
        .set_tags(Some(release.tags(&cv.project)))
        .send()
        .await
        .map_err(|e| call_error("ecs:RegisterTaskDefinition", e))?;
    let arn = out
        .task_definition
        .and_then(|td| td.task_definition_arn)
        .ok_or_else(|| anyhow::anyhow!("ecs:RegisterTaskDefinition returned no ARN"))?;
    changes.push(
        Change::new(
            "task definition",
            super::service::short_task_definition(&arn),
            Action::Create,
        )
        .because(what),
    );
    Ok(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> TaskInputs {
        TaskInputs {
            project: "housing".into(),
            container_name: "housing".into(),
            image: "123.dkr.ecr.us-east-1.amazonaws.com/housing@sha256:aa".into(),
            cpu: 512,
            memory: 1024,
            port: 8080,
            ready_path: "/ready".into(),
            model_bucket: "models".into(),
            model_path: "mlflow/models/housing/6".into(),
            environment: BTreeMap::from([("LOG_LEVEL".into(), "info \"quoted\"".into())]),
            secrets: BTreeMap::from([(
                "API_KEY".into(),
                "arn:aws:secretsmanager:us-east-1:1:secret:k".into(),
            )]),
            execution_role_arn: "arn:aws:iam::1:role/housing-execution".into(),
            task_role_arn: "arn:aws:iam::1:role/housing-task".into(),
            log_group: "/ecs/housing".into(),
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn the_default_template_renders_the_model_contract_health_check_and_logs() {
        let spec = render(DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_NAME, &inputs()).unwrap();
        assert_eq!(spec.cpu, "512");
        assert_eq!(spec.env("MODEL_BUCKET_NAME"), Some("models"));
        assert_eq!(spec.env("MODEL_PATH"), Some("mlflow/models/housing/6"));
        assert_eq!(
            spec.env("LOG_LEVEL"),
            Some("info \"quoted\""),
            "values are JSON-escaped"
        );
        let c = spec.container().unwrap();
        assert_eq!(
            c.secrets[0].value_from,
            "arn:aws:secretsmanager:us-east-1:1:secret:k"
        );
        let health = c.health_check.as_ref().unwrap();
        assert!(
            health.command[1].contains("http://127.0.0.1:8080/ready"),
            "{:?}",
            health.command
        );
        let logs = c.log_configuration.as_ref().unwrap();
        assert_eq!(logs.log_driver, "awslogs");
        assert_eq!(logs.options["awslogs-group"], "/ecs/housing");
        assert_eq!(
            c.port_mappings,
            [PortSpec {
                container_port: 8080,
                protocol: "tcp".into()
            }]
        );
    }

    #[test]
    fn without_secrets_the_list_is_empty_and_valid() {
        let mut i = inputs();
        i.secrets.clear();
        let spec = render(DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_NAME, &i).unwrap();
        assert!(spec.container().unwrap().secrets.is_empty());
    }

    #[test]
    fn a_field_mldeploy_cannot_map_is_refused_by_name() {
        let template = DEFAULT_TEMPLATE.replace(
            "\"essential\": true,",
            "\"essential\": true, \"ulimits\": [],",
        );
        let err = render(&template, "my-task.json", &inputs()).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("my-task.json") && text.contains("unknown field `ulimits`"),
            "{text}"
        );
        assert_eq!(exit::status_of(&err), ExitStatus::Usage);
    }

    #[test]
    fn invalid_json_and_undefined_variables_name_the_line() {
        let err = render("{\n  \"family\": {{ project }},\n}", "t.json", &inputs()).unwrap_err();
        assert!(
            format!("{err:#}").contains("at line 2 of the output"),
            "{err:#}"
        );
        let err = render("{\n\n {{ no_such_input }} }", "t.json", &inputs()).unwrap_err();
        assert!(format!("{err:#}").starts_with("t.json:3:"), "{err:#}");
    }

    /// The refusal of the default template with `from` replaced by `to`.
    fn refusal(from: &str, to: &str) -> String {
        let template = DEFAULT_TEMPLATE.replacen(from, to, 1);
        assert_ne!(template, DEFAULT_TEMPLATE, "{from:?} is in the template");
        let err = render(&template, "t.json", &inputs()).unwrap_err();
        assert_eq!(exit::status_of(&err), ExitStatus::Usage);
        format!("{err:#}")
    }

    #[test]
    fn a_template_that_takes_the_task_out_of_mldeploys_hands_is_refused_with_its_line() {
        let text = refusal(
            "\"taskRoleArn\": {{ task_role_arn | tojson }}",
            "\"taskRoleArn\": \"arn:aws:iam::1:role/admin\"",
        );
        assert!(
            text.contains("taskRoleArn is \"arn:aws:iam::1:role/admin\""),
            "{text}"
        );
        assert!(
            text.contains(
                "(line 8 of the output: `\"taskRoleArn\": \"arn:aws:iam::1:role/admin\",`)"
            ),
            "{text}"
        );
        let text = refusal(
            "\"family\": {{ project | tojson }}",
            "\"family\": \"other\"",
        );
        assert!(
            text.contains("family is \"other\"") && text.contains("line 2"),
            "{text}"
        );
        let text = refusal("\"memory\": \"{{ memory }}\"", "\"memory\": \"3000\"");
        assert!(
            text.contains("memory 3000 MiB does not go with cpu 512"),
            "{text}"
        );
        let text = refusal("\"cpu\": \"{{ cpu }}\"", "\"cpu\": \"300\"");
        assert!(text.contains("not a Fargate task size"), "{text}");
        let text = refusal("\"containerPort\": {{ port }}", "\"containerPort\": 9999");
        assert!(text.contains("maps no containerPort 8080"), "{text}");
        let text = refusal(
            "\"name\": {{ container_name | tojson }}",
            "\"name\": \"sidecar\"",
        );
        assert!(text.contains("no container is named \"housing\""), "{text}");
        let text = refusal("\"retries\": 3", "\"retries\": 11");
        assert!(
            text.contains("healthCheck.retries is 11; ECS takes 1 to 10"),
            "{text}"
        );
        assert!(text.contains("`\"retries\": 11,`"), "{text}");
    }

    #[test]
    fn a_spec_survives_the_trip_through_the_sdk_types() {
        let spec = render(DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_NAME, &inputs()).unwrap();
        let registered = TaskDefinition::builder()
            .family(&spec.family)
            .network_mode(spec.sdk_network_mode())
            .set_requires_compatibilities(Some(spec.sdk_compatibilities()))
            .cpu(&spec.cpu)
            .memory(&spec.memory)
            .execution_role_arn(&spec.execution_role_arn)
            .task_role_arn(&spec.task_role_arn)
            .set_container_definitions(Some(spec.sdk_containers().unwrap()))
            .build();
        assert_eq!(TaskSpec::from_registered(&registered), spec);
    }
}
