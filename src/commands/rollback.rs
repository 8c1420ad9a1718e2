//! `mldeploy rollback`: serve another model version with the serving image, or go back to an
//! earlier release as it was. Everything is checked before anything changes (the model version,
//! or the release's model, must exist in S3); then the revision is deployed, watched and
//! smoke-tested like `up`, under the same deploy lock, with the same exit codes.

use std::fmt;

use serde::Serialize;

use super::verify::Verify;
use super::Session;
use crate::cli::RollbackArgs;
use crate::exit::{self, ExitStatus};
use crate::lock;
use crate::model;
use crate::smoke::SmokeCheck;
use crate::target::ecs::releases::{self, Revision};
use crate::target::ecs::service::{self, short_task_definition, Deployed, RunningShape};
use crate::target::ecs::task_definition::{self, ReleaseTags, TaskSpec};
use crate::target::ecs::watcher::Watch;
use crate::target::ecs::{load_balancer, Converge};

/// What `rollback` did, or would do.
#[derive(Debug, Serialize)]
pub struct RollbackReport {
    pub dry_run: bool,
    pub url: Option<String>,
    pub cluster: String,
    pub service: String,
    /// The revision that serves now (or would).
    pub task_definition: String,
    /// The revision that served before.
    pub previous_task_definition: String,
    /// Whether a new revision was registered (a model version no release served yet).
    pub registered: bool,
    pub model_version: Option<String>,
    pub model_path: Option<String>,
    pub image: Option<String>,
    /// The deployment this run opened; null when the target already served.
    pub deployment_id: Option<String>,
    pub healthy_targets: usize,
    pub smoke: Vec<SmokeCheck>,
}

impl fmt::Display for RollbackReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let model =
            crate::model::describe(self.model_version.as_deref(), self.model_path.as_deref());
        let target = short_task_definition(&self.task_definition);
        let previous = short_task_definition(&self.previous_task_definition);
        if self.dry_run {
            let how = if self.registered {
                "a new revision"
            } else {
                target
            };
            return write!(
                f,
                "Would deploy {how} with {model} and image {} in place of {previous}. Nothing was changed.",
                self.image.as_deref().unwrap_or("?")
            );
        }
        writeln!(
            f,
            "{} serves {model} at {}",
            self.service,
            self.url.as_deref().unwrap_or("(no load balancer)")
        )?;
        write!(
            f,
            "  task definition {target} (was {previous}), {} healthy target(s), smoke test passed ({} request(s))",
            self.healthy_targets,
            self.smoke.len()
        )
    }
}

/// The revision to serve: one that exists, or a new one to register.
enum Target {
    Existing(Revision),
    New { spec: TaskSpec, tags: ReleaseTags },
}

pub async fn run(session: &Session<'_>, args: &RollbackArgs) -> anyhow::Result<ExitStatus> {
    let printer = session.printer;
    let config = session.config()?;
    if config.target.kind == crate::config::TargetKind::Docker {
        return super::rollback_docker::rollback(session, args, &config).await;
    }
    let aws = session.aws(&config).await?;
    let (ecs, elb, s3) = (aws.ecs(), aws.elbv2(), aws.s3());
    let project = config.project.name.clone();
    let bucket = &config.model.bucket;

    let svc = service::require(&ecs, &project, &aws.region).await?;
    let shape = RunningShape::of(&svc)?;
    let serving = svc.task_definition().unwrap_or_default().to_string();
    let revisions = releases::list(&ecs, &project, Some(&serving), None).await?;
    let current = match revisions.iter().find(|r| r.release.serving) {
        Some(r) => r.clone(),
        // The serving revision may have been deregistered by hand: it still describes.
        None => releases::describe(&ecs, serving.clone(), Some(&serving)).await?,
    };

    let target = match (&args.model_version, args.to_revision) {
        (Some(version), _) => {
            let model =
                model::require_version(&s3, bucket, &config.model.path, version).await?;
            let spec = current.spec.clone().with_env("MODEL_PATH", &model.path);
            match revisions.iter().find(|r| r.spec == spec) {
                Some(r) => Target::Existing(r.clone()),
                None => Target::New {
                    spec,
                    tags: ReleaseTags {
                        model_version: Some(version.clone()),
                        model_path: model.path,
                        image: current.release.image.clone().unwrap_or_default(),
                        git_commit: current.release.git_commit.clone(),
                        ci_run: lock::ci_run(),
                    },
                },
            }
        }
        (None, Some(revision)) => Target::Existing(
            revisions
                .iter()
                .find(|r| r.release.revision == revision)
                .cloned()
                .ok_or_else(|| {
                    exit::error(
                        ExitStatus::Usage,
                        format!(
                            "--to-revision {revision}: {project}:{revision} is not an active revision; active: {}",
                            listing(&revisions)
                        ),
                    )
                })?,
        ),
        (None, None) => Target::Existing(
            revisions
                .iter()
                .filter(|r| r.release.revision < current.release.revision)
                .max_by_key(|r| r.release.revision)
                .cloned()
                .ok_or_else(|| {
                    exit::error(
                        ExitStatus::Usage,
                        format!(
                            "there is no release before {} to go back to; active: {}. Name one with --model-version or --to-revision",
                            short_task_definition(&serving),
                            listing(&revisions)
                        ),
                    )
                })?,
        ),
    };
    // What the target serves: an existing release, or the one a new revision would be.
    let (registered, release) = match &target {
        Target::Existing(r) => (false, r.release.clone()),
        Target::New { tags, .. } => (
            true,
            releases::Release {
                revision: 0,
                task_definition: format!("{project}:(next)"),
                model_version: tags.model_version.clone(),
                model_path: Some(tags.model_path.clone()),
                image: Some(tags.image.clone()),
                created: None,
                git_commit: tags.git_commit.clone(),
                ci_run: tags.ci_run.clone(),
                serving: false,
                ours: true,
            },
        ),
    };
    // Never go back to a model that is gone from S3 (--model-version checked its path already).
    if let (None, Some(path)) = (&args.model_version, &release.model_path) {
        let what = format!(
            "{} serves the model at {path}, which is gone",
            short_task_definition(&release.task_definition)
        );
        model::require_path(&s3, bucket, path, &what).await?;
    }
    if let Some(image) = &release.image {
        require_image(&aws.ecr(), &project, image).await?;
    }
    let target_arn = release.task_definition.clone();
    let dns = load_balancer::dns_name_for_target_group(&elb, &shape.target_group_arn).await?;
    let mut report = RollbackReport {
        dry_run: args.deploy.dry_run,
        url: dns.map(|d| load_balancer::url(&d, config.service.certificate_arn.as_deref())),
        cluster: project.clone(),
        service: project.clone(),
        task_definition: target_arn,
        previous_task_definition: serving.clone(),
        registered,
        model_version: release.model_version,
        model_path: release.model_path,
        image: release.image,
        deployment_id: None,
        healthy_targets: 0,
        smoke: Vec::new(),
    };
    if args.deploy.dry_run {
        printer.result(&report)?;
        return Ok(ExitStatus::Success);
    }

    let held = session
        .take_lock(&s3, &config, "rollback", args.deploy.force_unlock)
        .await?;
    let cv = Converge {
        project: project.clone(),
        dry_run: false,
    };
    let mut changes = Vec::new();
    let td = match &target {
        Target::Existing(r) => r.release.task_definition.clone(),
        Target::New { spec, tags } => {
            task_definition::ensure_registered(&ecs, &cv, spec, tags, None, &mut changes).await?
        }
    };
    report.task_definition = td.clone();
    let spec = shape.spec(&project, &td);
    let deployed: Deployed = service::ensure(&ecs, &cv, &spec, Some(svc), &mut changes).await?;
    for c in &changes {
        printer.info(format!("  {c}"));
    }
    report.deployment_id = deployed.deployment_id.clone();
    let watch = Watch {
        ecs: &ecs,
        elb: &elb,
        cluster: &project,
        service: &project,
        deployment_id: deployed.deployment_id.as_deref().unwrap_or_default(),
        target_group_arn: &shape.target_group_arn,
        timeout: args.deploy.timeout,
        poll: std::time::Duration::from_secs(2),
    };
    let url = report.url.clone().unwrap_or_default();
    let verified = Verify {
        ecs: &ecs,
        cv: &cv,
        spec: &spec,
        watch,
        deployed: &deployed,
        url: &url,
        config: &config,
        flags: &args.deploy,
    }
    .run(printer)
    .await?;
    report.healthy_targets = verified.healthy_targets;
    report.smoke = verified.smoke;
    held.release().await?;
    printer.result(&report)?;
    Ok(ExitStatus::Success)
}

/// Refuses an image of the project's repository that ECR no longer holds (its lifecycle policy
/// keeps the newest `image.keep_images`): ECS could not pull it, and the breaker would roll back.
/// Images from elsewhere are not checked.
async fn require_image(
    ecr: &aws_sdk_ecr::Client,
    project: &str,
    image: &str,
) -> anyhow::Result<()> {
    let Some((repository_uri, digest)) = image.split_once('@') else {
        return Ok(());
    };
    if repository_uri.rsplit('/').next() != Some(project) || !repository_uri.contains(".ecr.") {
        return Ok(());
    }
    if crate::image::ecr::has_digest(ecr, project, digest).await? {
        return Ok(());
    }
    Err(exit::error(
        ExitStatus::Usage,
        format!(
            "the image of that release, {image}, is no longer in ECR (its lifecycle policy keeps the newest images, image.keep_images): pick a newer release, or rebuild it with `mldeploy up` from that commit"
        ),
    ))
}

/// "5 (model 7), 4 (model 6), ..." for errors that list what there is.
fn listing(revisions: &[Revision]) -> String {
    if revisions.is_empty() {
        return "none".into();
    }
    revisions
        .iter()
        .map(|r| match &r.release.model_version {
            Some(v) => format!("{} (model {v})", r.release.revision),
            None => r.release.revision.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
