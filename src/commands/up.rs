//! `mldeploy up` (and `plan`, its dry run): check the model version, take the deploy lock, build
//! and push the image, converge the stack, register a revision when something changed, deploy
//! it, and watch the rollout until the service is healthy or the reason it is not is known.

use std::fmt;

use serde::Serialize;

use super::verify::Verify;
use super::Session;
use crate::cli::UpArgs;
use crate::config::{Config, TargetKind};
use crate::exit::{self, ExitStatus};
use crate::image::{build, ecr, engine::Engine, push};
use crate::lock;
use crate::model::{self, ModelVersion};
use crate::smoke::SmokeCheck;
use crate::target::ecs::load_balancer::{self, Listening};
use crate::target::ecs::service::{self, ServiceSpec};
use crate::target::ecs::task_definition::{self, ReleaseTags, TaskInputs};
use crate::target::ecs::watcher::Watch;
use crate::target::ecs::{cluster, iam, logs, network, security, Converge};
use crate::target::{Action, Change};

/// What `up` did (or, for a plan, would do); `--output json` prints it as one object.
#[derive(Debug, Serialize)]
pub struct UpReport {
    pub dry_run: bool,
    pub url: String,
    pub image: String,
    pub task_definition: String,
    pub model_version: Option<String>,
    pub model_path: String,
    pub cluster: String,
    pub service: String,
    /// The deployment this run opened and watched; null when nothing needed deploying.
    pub deployment_id: Option<String>,
    pub healthy_targets: usize,
    /// The smoke test's requests through the load balancer, each as it was answered.
    pub smoke: Vec<SmokeCheck>,
    pub changes: Vec<Change>,
}

impl fmt::Display for UpReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |a: Action| self.changes.iter().filter(|c| c.action == a).count();
        if self.dry_run {
            for c in &self.changes {
                writeln!(f, "  {c}")?;
            }
            return write!(
                f,
                "Plan: {} to create, {} to update, {} unchanged. Nothing was changed.",
                count(Action::Create),
                count(Action::Update),
                count(Action::Keep)
            );
        }
        let version = self
            .model_version
            .as_deref()
            .map(|v| format!("model version {v}"))
            .unwrap_or_else(|| "the model".into());
        writeln!(
            f,
            "{} serves {version} ({}) at {}",
            self.service, self.model_path, self.url
        )?;
        write!(
            f,
            "  task definition {}, {} healthy target(s), {}, smoke test passed ({} request(s))",
            service::short_task_definition(&self.task_definition),
            self.healthy_targets,
            match &self.deployment_id {
                Some(id) => format!("deployment {id} completed"),
                None => "nothing needed deploying".to_string(),
            },
            self.smoke.len()
        )
    }
}

/// Which model to serve: a version of `model.path`, or an explicit key prefix.
pub(crate) enum ModelChoice {
    Version(String),
    Path(String),
}

pub(crate) fn model_choice(config: &Config, args: &UpArgs) -> anyhow::Result<ModelChoice> {
    if let Some(path) = &args.model_path {
        return Ok(ModelChoice::Path(path.trim_end_matches('/').to_string()));
    }
    match args.model_version.clone().or_else(|| config.model.version.clone()) {
        Some(v) => Ok(ModelChoice::Version(v)),
        None => Err(exit::error(
            ExitStatus::Usage,
            "no model version to serve: pass --model-version N (or --model-path), or set model.version in mldeploy.toml",
        )),
    }
}

pub async fn run(
    session: &Session<'_>,
    args: &UpArgs,
    dry_run: bool,
) -> anyhow::Result<ExitStatus> {
    let printer = session.printer;
    let config = session.config()?;
    let choice = model_choice(&config, args)?;
    if config.target.kind == TargetKind::Docker {
        return super::up_docker::run(session, args, &config, choice, dry_run).await;
    }
    let (template, template_name) = read_template(&config)?;
    // A template that cannot become a task definition is refused before any call is made.
    task_definition::render(
        &template,
        &template_name,
        &task_inputs(
            &config,
            format!("{}@sha256:{}", config.project.name, "0".repeat(64)),
            model::path_for(&config.model.path, "0"),
            "arn:aws:iam::000000000000:role/execution".into(),
            "arn:aws:iam::000000000000:role/task".into(),
            "/ecs/check".into(),
            "us-east-1".into(),
        ),
    )?;
    let aws = session.aws(&config).await?;
    let s3 = aws.s3();
    let project = config.project.name.clone();
    let (model, version) = require_model(&s3, &config, choice, printer).await?;

    // Subnets named in [network] are checked before anything changes, like the model version.
    let mut changes = Vec::new();
    let named_network = if config.subnets.is_empty() {
        None
    } else {
        let net = network::existing(&aws.ec2(), &config.subnets, &mut changes).await?;
        security::existing_for_tasks(
            &aws.ec2(),
            &config.security_groups,
            &net.vpc_id,
            &mut changes,
        )
        .await?;
        Some(net)
    };

    let held = if dry_run {
        None
    } else {
        Some(
            session
                .take_lock(&s3, &config, "up", args.deploy.force_unlock)
                .await?,
        )
    };

    let cv = Converge {
        project: project.clone(),
        dry_run,
    };
    let (image, git_commit) = if dry_run {
        planned_image(&aws, &config, &mut changes).await?
    } else {
        let engine = Engine::connect().await?;
        let pushed = push::push(&engine, &aws, &config, printer, false).await?;
        (
            format!("{}@{}", pushed.repository, pushed.digest),
            pushed.git_commit,
        )
    };

    let ec2 = aws.ec2();
    let net = match named_network {
        Some(net) => net,
        None => network::ensure(&ec2, &cv, &mut changes).await?,
    };
    let listening = Listening {
        container_port: config.service.port,
        health_check_path: &config.service.health_check_path,
        certificate_arn: config.service.certificate_arn.as_deref(),
    };
    let groups = security::ensure(
        &ec2,
        &cv,
        &net.vpc_id,
        &listening.ports(),
        config.service.port,
        &mut changes,
    )
    .await?;
    let elb = aws.elbv2();
    let lb = load_balancer::ensure(&elb, &cv, &net, &groups, &listening, &mut changes).await?;
    let roles = iam::ensure(
        &aws.iam(),
        &cv,
        &aws.region,
        &config.model.bucket,
        model::prefix_of(&config.model.path),
        &config
            .service
            .secrets
            .values()
            .filter_map(|arn| crate::config::secret_resource(arn))
            .collect::<Vec<_>>(),
        &mut changes,
    )
    .await?;
    let log_group = logs::ensure(
        &aws.logs(),
        &cv,
        config.service.log_retention_days,
        &mut changes,
    )
    .await?;
    let ecs = aws.ecs();
    let cluster = cluster::ensure(&ecs, &cv, &mut changes).await?;

    let spec = task_definition::render(
        &template,
        &template_name,
        &task_inputs(
            &config,
            image.clone(),
            model.path.clone(),
            roles.execution_arn,
            roles.task_arn,
            log_group,
            aws.region.clone(),
        ),
    )?;
    let existing = if cluster == network::TO_BE_CREATED {
        None
    } else {
        service::describe(&ecs, &cluster, &project).await?
    };
    let serving = existing
        .as_ref()
        .and_then(|s| s.task_definition().map(str::to_string));
    let release = ReleaseTags {
        model_version: version.clone(),
        model_path: model.path.clone(),
        image: image.clone(),
        git_commit,
        ci_run: lock::ci_run(),
    };
    let td = task_definition::ensure_registered(
        &ecs,
        &cv,
        &spec,
        &release,
        serving.as_deref(),
        &mut changes,
    )
    .await?;
    let task_groups: Vec<String> = std::iter::once(groups.tasks.clone())
        .chain(config.security_groups.iter().cloned())
        .collect();
    let service_spec = ServiceSpec {
        cluster: &cluster,
        task_definition_arn: &td,
        desired_count: config.service.desired_count,
        target_group_arn: &lb.target_group_arn,
        container_name: &project,
        container_port: config.service.port,
        subnets: &net.subnet_ids,
        security_groups: &task_groups,
        force: args.force,
    };
    let deployed = service::ensure(&ecs, &cv, &service_spec, existing, &mut changes).await?;

    let mut report = UpReport {
        dry_run,
        url: load_balancer::url(&lb.dns_name, config.service.certificate_arn.as_deref()),
        image,
        task_definition: td.clone(),
        model_version: version,
        model_path: model.path,
        cluster: project.clone(),
        service: project.clone(),
        deployment_id: deployed.deployment_id.clone(),
        healthy_targets: 0,
        smoke: Vec::new(),
        changes,
    };
    if dry_run {
        printer.result(&report)?;
        return Ok(ExitStatus::Success);
    }
    for c in report.changes.iter().filter(|c| c.action != Action::Keep) {
        printer.info(format!("  {c}"));
    }

    let watch = Watch {
        ecs: &ecs,
        elb: &elb,
        cluster: &cluster,
        service: &project,
        deployment_id: deployed.deployment_id.as_deref().unwrap_or_default(),
        target_group_arn: &lb.target_group_arn,
        timeout: args.deploy.timeout,
        poll: std::time::Duration::from_secs(2),
    };
    let verified = Verify {
        ecs: &ecs,
        cv: &cv,
        spec: &service_spec,
        watch,
        deployed: &deployed,
        url: &report.url,
        config: &config,
        flags: &args.deploy,
    }
    .run(printer)
    .await?;
    report.healthy_targets = verified.healthy_targets;
    report.smoke = verified.smoke;
    if let Some(held) = held {
        held.release().await?;
    }
    printer.result(&report)?;
    Ok(ExitStatus::Success)
}

/// Checks that the chosen model exists in S3, before anything changes; returns it and its
/// version (None for an explicit path).
pub(crate) async fn require_model(
    s3: &aws_sdk_s3::Client,
    config: &Config,
    choice: ModelChoice,
    printer: &crate::output::Printer,
) -> anyhow::Result<(ModelVersion, Option<String>)> {
    let model = match &choice {
        ModelChoice::Version(v) => {
            model::require_version(s3, &config.model.bucket, &config.model.path, v).await?
        }
        ModelChoice::Path(path) => {
            model::require_path(
                s3,
                &config.model.bucket,
                path,
                &format!("--model-path {path}"),
            )
            .await?;
            ModelVersion {
                version: String::new(),
                path: path.clone(),
            }
        }
    };
    printer.info(format!(
        "Model: s3://{}/{}",
        config.model.bucket, model.path
    ));
    let version = match choice {
        ModelChoice::Version(v) => Some(v),
        ModelChoice::Path(_) => None,
    };
    Ok((model, version))
}

/// The project's task-definition template, or the built-in one, with the name errors use.
fn read_template(config: &Config) -> anyhow::Result<(String, String)> {
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

fn task_inputs(
    config: &Config,
    image: String,
    model_path: String,
    execution_role_arn: String,
    task_role_arn: String,
    log_group: String,
    region: String,
) -> TaskInputs {
    TaskInputs {
        project: config.project.name.clone(),
        container_name: config.project.name.clone(),
        image,
        cpu: config.service.cpu,
        memory: config.service.memory,
        port: config.service.port,
        ready_path: config.service.ready_path.clone(),
        model_bucket: config.model.bucket.clone(),
        model_path,
        environment: config.service.environment.clone(),
        secrets: config.service.secrets.clone(),
        execution_role_arn,
        task_role_arn,
        log_group,
        region,
    }
}

/// For a plan: the image `up` would deploy, without building or pushing anything.
async fn planned_image(
    aws: &crate::aws::Aws,
    config: &Config,
    changes: &mut Vec<Change>,
) -> anyhow::Result<(String, Option<String>)> {
    let plan = build::plan(config).await?;
    let client = aws.ecr();
    let repo = ecr::describe(&client, &config.project.name).await?;
    let digest = match &repo {
        Some((uri, _)) => ecr::digest_for_tag(&client, &config.project.name, &plan.tag)
            .await?
            .map(|d| format!("{uri}@{d}")),
        None => None,
    };
    if repo.is_none() {
        changes.push(Change::new(
            "ECR repository",
            &config.project.name,
            Action::Create,
        ));
    }
    let image = match digest {
        Some(image) => {
            changes.push(Change::new("image", &plan.tag, Action::Keep).because("in ECR already"));
            image
        }
        None => {
            changes.push(Change::new("image", &plan.tag, Action::Create).because("build and push"));
            format!("{}:{}", config.project.name, plan.tag)
        }
    };
    Ok((image, plan.git_commit))
}
