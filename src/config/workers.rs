//! `[workers.<name>]`: services beside the model API on the same cluster and network, with no
//! load balancer (queue consumers, batch scoring), deployed in the same release as it.

use std::collections::BTreeMap;

use super::diagnostics::Report;
use super::limits::RESERVED_ENV;
use super::raw::RawWorker;
use super::raw_workers::RawWorkerImage;
use super::service::{check_environment, check_size};

/// The longest worker name: `<project>-<name>-task` (its task role) stays within IAM's 64
/// characters with a 32-character project name, and `<project>-<name>` names its service, its
/// task definition family and its log streams.
pub const MAX_WORKER_NAME: usize = 20;

/// IAM role names are at most 64 characters
/// (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html).
const MAX_ROLE_NAME: usize = 64;

/// One validated `[workers.<name>]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Worker {
    pub name: String,
    /// Exec form; empty runs the image's own CMD.
    pub command: Vec<String>,
    pub cpu: u32,
    pub memory: u32,
    pub desired_count: u32,
    pub environment: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    /// Whether it gets `MODEL_BUCKET_NAME`/`MODEL_PATH` and read access to the model prefix.
    pub model: bool,
    /// `[workers.<name>.autoscaling]`, on CPU or memory: then `up` sets the desired count only
    /// for a new service, or one below `min_count`.
    pub autoscaling: Option<super::Autoscaling>,
    /// `[workers.<name>.image]`: its own image; None runs the project's.
    pub image: Option<WorkerImage>,
}

/// A worker's own image.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerImage {
    /// Built from its own context, like the project's (`keep_images` is the project's).
    Build(super::Image),
    /// A prebuilt image, pulled as it is named.
    Ref(String),
}

impl super::Config {
    /// The project as a worker's own image table builds it: that table in place of `[image]`,
    /// its platform defaulting to the project's. The project's build, push and tag then make
    /// the worker's image.
    pub fn with_own_image(&self, image: &super::Image) -> super::Config {
        let mut image = image.clone();
        image.platform = image.platform.or_else(|| self.image.platform.clone());
        super::Config {
            image,
            ..self.clone()
        }
    }
}

impl Worker {
    /// `<project>-<name>`: its ECS service, task definition family and log stream prefix.
    pub fn service_name(&self, project: &str) -> String {
        format!("{project}-{}", self.name)
    }
}

/// Every worker, in name order; problems name `workers.<name>` and the key.
/// `has_model`: whether the project has a `[model]`, which a worker's `model` defaults to;
/// `base`: the file's directory, which an image's context is relative to.
pub(super) fn validate(
    raw: BTreeMap<String, RawWorker>,
    project: &str,
    has_model: bool,
    base: &std::path::Path,
    report: &mut Report<'_>,
) -> Vec<Worker> {
    raw.into_iter()
        .map(|(name, worker)| validate_one(name, worker, project, has_model, base, report))
        .collect()
}

fn validate_one(
    name: String,
    raw: RawWorker,
    project: &str,
    has_model: bool,
    base: &std::path::Path,
    report: &mut Report<'_>,
) -> Worker {
    let RawWorker {
        command,
        cpu,
        memory,
        desired_count,
        environment,
        secrets,
        model,
        autoscaling,
        image,
    } = raw;
    let table = format!("workers.{name}");
    let image = image.and_then(|i| validate_image(i, &format!("{table}.image"), base, report));
    if let Err(why) = check_name(&name) {
        report.add(&table, format!("[{table}]: the worker's name {why}"));
    } else if report.positions.keys.contains_key(&format!("env.{name}")) {
        // `<project>-<name>` is that environment's stack: its task definition family and its
        // task role `<project>-<name>-task` would be the worker's.
        report.add(
            &table,
            format!("[{table}]: the worker's name is also an environment's ([env.{name}]), and both would be named {project}-{name} (task definition family, task role); rename the worker"),
        );
    } else {
        let role = format!("{project}-{name}-task");
        if role.len() > MAX_ROLE_NAME {
            report.add(
                &table,
                format!("[{table}]: its task role {role} would be {} characters, over IAM's {MAX_ROLE_NAME}; shorten the worker's or the project's name", role.len()),
            );
        }
    }
    let command = command.unwrap_or_default();
    if command
        .first()
        .is_some_and(|program| program.trim().is_empty())
    {
        report.add(
            &format!("{table}.command"),
            format!("`{table}.command` must start with the program to run, not an empty string (exec form: [\"python\", \"-m\", \"worker\"])"),
        );
    }
    let cpu = cpu.unwrap_or(256);
    let memory = memory.unwrap_or(512);
    check_size(&table, cpu, memory, report);
    if model == Some(true) && !has_model {
        report.add(
            &format!("workers.{name}.model"),
            format!("`workers.{name}.model = true` needs a [model] table: the project has no model for the worker to read; remove the key, or add [model]"),
        );
    }
    let model = model.unwrap_or(true) && has_model;
    // A worker without the model may set the names mldeploy would have set for it.
    let reserved: &[&str] = if model { &RESERVED_ENV } else { &[] };
    check_environment(&table, &environment, &secrets, reserved, report);
    let desired_count = desired_count.unwrap_or(1);
    let autoscaling =
        autoscaling.and_then(|a| super::autoscaling::validate(a, &table, desired_count, report));
    Worker {
        name,
        command,
        cpu,
        memory,
        desired_count,
        environment,
        secrets,
        model,
        autoscaling,
        image,
    }
}

/// `[workers.<name>.image]`: a build (its context, as `[image]`) or a prebuilt `ref`, not both.
fn validate_image(
    raw: RawWorkerImage,
    table: &str,
    base: &std::path::Path,
    report: &mut Report<'_>,
) -> Option<WorkerImage> {
    let RawWorkerImage {
        context,
        dockerfile,
        build_args,
        platform,
        target,
        reference,
    } = raw;
    let builds = context.is_some()
        || dockerfile.is_some()
        || !build_args.is_empty()
        || platform.is_some()
        || target.is_some();
    match reference {
        Some(r) if builds => {
            report.add(
                &format!("{table}.ref"),
                format!("`{table}.ref` = {r:?} is a prebuilt image, so [{table}] builds nothing: remove either `ref` or the build keys (context, dockerfile, build_args, platform, target)"),
            );
            None
        }
        Some(r) if r.trim().is_empty() || r.contains(char::is_whitespace) => {
            report.add(
                &format!("{table}.ref"),
                format!("`{table}.ref` = {r:?} is not an image reference: write one like \"ghcr.io/org/worker:1.4\""),
            );
            None
        }
        Some(r) => Some(WorkerImage::Ref(r)),
        None if !builds => {
            report.add(
                table,
                format!("[{table}] is empty: set `context` (and `dockerfile`) to build the worker's image, or `ref` to a prebuilt one; without the table the worker runs the project's image"),
            );
            None
        }
        None => {
            let raw = super::raw::RawImage {
                context,
                dockerfile,
                build_args,
                platform,
                target,
                keep_images: None,
            };
            Some(WorkerImage::Build(super::validate::validate_image(
                raw, base, table, report,
            )))
        }
    }
}

/// 1-20 lowercase letters, digits or `-`, starting with a letter or digit and not ending with
/// `-` (it becomes part of ECS, IAM and CloudWatch names, and a DNS label on the Docker target).
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_WORKER_NAME {
        return Err(format!(
            "must be 1 to {MAX_WORKER_NAME} characters long; {name:?} has {}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "{name:?} may hold only lowercase letters, digits and hyphens, not {c:?}"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Err(format!(
            "{name:?} must not start or end with a hyphen or hold two in a row"
        ));
    }
    Ok(())
}
