//! The task-definition template of `up`: read once, checked with placeholder inputs before any
//! call, and the inputs it is rendered with.

use crate::config::Config;
use crate::exit::{self, ExitStatus};
use crate::image::platform::{Platform, FARGATE_X86_64};
use crate::model;
use crate::targets::ecs::task_definition::{self, TaskInputs};

/// The task-definition template, read once: checked before any call, rendered by `converge`.
#[derive(Debug)]
pub struct Template {
    pub(super) text: String,
    /// What errors call it: the project's file, or the built-in one.
    pub(super) name: String,
}

/// Reads the project's template and renders it with placeholder values: one that cannot become
/// a task definition is refused before any call is made. Warns when its container health check
/// would let ECS stop a task still loading its model.
pub fn prepare(config: &Config, printer: &crate::output::Printer) -> anyhow::Result<Template> {
    let (text, name) = read_template(config)?;
    let spec = task_definition::render(&text, &name, &placeholder_inputs(config, None))?;
    if let Some(trap) = loading_trap(&spec, &config.service.health) {
        printer.warn(format!(
            "{name}: {trap}. Raise the health check's startPeriod, interval or retries, or lower service.model_load_time if the model loads faster"
        ));
    }
    Ok(Template { text, name })
}

/// The container health check's trap for a loading task, with ECS's defaults for what the
/// task definition leaves out (interval 30 s, 3 retries, no start period).
pub(super) fn loading_trap(
    spec: &task_definition::TaskSpec,
    health: &crate::config::Health,
) -> Option<String> {
    let check = spec.container_definitions.first()?.health_check.as_ref()?;
    let seconds =
        |v: Option<i32>, default: u32| v.and_then(|n| u32::try_from(n).ok()).unwrap_or(default);
    health.loading_trap(
        seconds(check.interval, 30),
        seconds(check.retries, 3),
        seconds(check.start_period, 0),
    )
}

/// The template's inputs with placeholder roles, image and model: for checks before any call.
pub(super) fn placeholder_inputs(config: &Config, image: Option<&Platform>) -> TaskInputs {
    let architecture = image.and_then(Platform::fargate_architecture);
    let mut inputs = task_inputs(
        config,
        format!("{}@sha256:{}", config.project.name, "0".repeat(64)),
        config.model.as_ref().map(|m| model::path_for(&m.path, "0")),
        "arn:aws:iam::000000000000:role/execution".into(),
        "arn:aws:iam::000000000000:role/task".into(),
        "/ecs/check".into(),
        "us-east-1".into(),
        architecture.unwrap_or(FARGATE_X86_64),
    );
    inputs.image_platform = image.cloned();
    inputs
}

/// Refuses, before anything in AWS changes, an image Fargate cannot run: one built for a
/// platform Fargate has no tasks for, or one the template runs on another CPU architecture.
pub(super) fn accept_platform(
    config: &Config,
    template: &Template,
    image: &str,
    platform: &Platform,
) -> anyhow::Result<()> {
    if platform.fargate_architecture().is_none() {
        return Err(exit::error(
            ExitStatus::Usage,
            format!(
                "{image} is a {platform} image; Fargate runs linux/amd64 and linux/arm64 images only. Build for one of them (image.platform)"
            ),
        ));
    }
    task_definition::render(
        &template.text,
        &template.name,
        &placeholder_inputs(config, Some(platform)),
    )
    .map(|_| ())
}

/// The project's task-definition template, or the built-in one, with the name errors use.
pub(super) fn read_template(config: &Config) -> anyhow::Result<(String, String)> {
    Ok(match &config.service.task_definition_template {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|e| {
                exit::error(
                    ExitStatus::Usage,
                    format!("cannot read {}: {e}", path.display()),
                )
            })?,
            path.display().to_string(),
        ),
        None => (
            task_definition::DEFAULT_TEMPLATE.to_string(),
            task_definition::DEFAULT_TEMPLATE_NAME.to_string(),
        ),
    })
}

#[allow(clippy::too_many_arguments)] // one per template input mldeploy computes
pub(super) fn task_inputs(
    config: &Config,
    image: String,
    model_path: Option<String>,
    execution_role_arn: String,
    task_role_arn: String,
    log_group: String,
    region: String,
    cpu_architecture: &str,
) -> TaskInputs {
    TaskInputs {
        project: config.project.name.clone(),
        container_name: config.project.name.clone(),
        image,
        cpu: config.service.cpu,
        memory: config.service.memory,
        port: config.service.port,
        ready_path: config.service.ready_path.clone(),
        model_bucket: config.model.as_ref().map(|m| m.bucket.clone()),
        model_path,
        environment: config.service.environment.clone(),
        secrets: config.service.secrets.clone(),
        execution_role_arn,
        task_role_arn,
        log_group,
        region,
        cpu_architecture: cpu_architecture.to_string(),
        ready_check: (&config.service.health).into(),
        image_platform: None,
    }
}

/// The Fargate architecture for the image: its own, or, in a plan whose image is not built
/// yet, the one `image.platform` asks for, else Fargate's default (the plan says so).
pub(super) fn architecture_for(config: &Config, image: Option<&Platform>) -> &'static str {
    image
        .and_then(Platform::fargate_architecture)
        .or_else(|| {
            config
                .image
                .platform
                .as_deref()
                .and_then(Platform::parse)
                .and_then(|p| p.fargate_architecture())
        })
        .unwrap_or(FARGATE_X86_64)
}
