//! `rollback` on ECS: the revision to serve, from the family's active revisions (an existing one
//! when one is exactly what was asked, else a new one to register), checked before anything
//! changes; then the service is pointed at it, keeping everything else as it runs.

use aws_sdk_ecs::types::Service;

use super::deployments;
use super::releases::{self, Release, Revision};
use super::service::{self, short_task_definition, RunningShape};
use super::task_definition::{self, ReleaseTags, TaskSpec};
use super::{load_balancer, worker_rollback, Converge, EcsDeployed};
use crate::config::TargetKind;
use crate::exit::{self, ExitStatus};
use crate::lock;
use crate::model;
use crate::reports::history::RegistryInfo;
use crate::reports::rollback::{EcsRollback, RollbackOn, RollbackReport};
use crate::session::Ctx;
use crate::targets::Applied;
use crate::targets::{RollbackTo, Rollout};

/// The revision to serve: one that exists, or a new one to register.
#[derive(Debug)]
enum Wanted {
    Existing(Revision),
    New { spec: TaskSpec, tags: ReleaseTags },
}

/// What `rollback` resolved: the service as it runs, and what it will run.
#[derive(Debug)]
pub struct Chosen {
    service: Service,
    shape: RunningShape,
    wanted: Wanted,
    /// The load balancer, when the service's URL names its domain.
    via: Option<crate::smoke::Via>,
    /// The workers that go back with it, and the tags of a revision registered for one.
    workers: Vec<worker_rollback::Choice>,
    worker_tags: ReleaseTags,
}

pub async fn choose(ctx: &Ctx<'_>, args: &RollbackTo) -> anyhow::Result<(Chosen, RollbackReport)> {
    let config = &ctx.config;
    let aws = ctx.aws().await?;
    let (ecs, elb, s3) = (aws.ecs(), aws.elbv2(), aws.s3());
    let project = config.project.name.clone();

    let svc = service::require(&ecs, &project, &aws.region).await?;
    let shape = RunningShape::of(&svc)?;
    let serving = svc.task_definition().unwrap_or_default().to_string();
    let revisions = releases::list(
        &ecs,
        &project,
        config.model_path_template(),
        Some(&serving),
        None,
    )
    .await?;
    let current = match revisions.iter().find(|r| r.release.serving) {
        Some(r) => r.clone(),
        // The serving revision may have been deregistered by hand: it still describes.
        None => {
            releases::describe(
                &ecs,
                serving.clone(),
                config.model_path_template(),
                Some(&serving),
            )
            .await?
        }
    };

    let wanted = match (&args.model_version, args.to_revision) {
        (Some(version), _) => {
            let model = config.model_for("--model-version")?;
            let model = crate::registry::require_version(model, &s3, version).await?;
            let spec = current.spec.clone().with_env("MODEL_PATH", &model.path);
            match revisions.iter().find(|r| r.spec == spec) {
                Some(r) => Wanted::Existing(r.clone()),
                None => Wanted::New {
                    spec,
                    tags: ReleaseTags {
                        model_version: Some(model.version.clone()),
                        registry: model.registry.clone(),
                        model_path: Some(model.path),
                        image: current.release.image.clone().unwrap_or_default(),
                        git_commit: current.release.git_commit.clone(),
                        ci_run: lock::ci_run(),
                        promoted_from: None,
                    },
                },
            }
        }
        (None, Some(revision)) => Wanted::Existing(
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
        (None, None) => {
            Wanted::Existing(served_before(ctx, &ecs, &project, &serving, &revisions).await?)
        }
    };
    // What the target serves: an existing release, or the one a new revision would be.
    let (registered, release) = match &wanted {
        Wanted::Existing(r) => (false, r.release.clone()),
        Wanted::New { tags, .. } => (
            true,
            Release {
                revision: 0,
                task_definition: format!("{project}:(next)"),
                model_version: tags.model_version.clone(),
                model_path: tags.model_path.clone(),
                image: Some(tags.image.clone()),
                created: None,
                git_commit: tags.git_commit.clone(),
                ci_run: tags.ci_run.clone(),
                promoted_from: None,
                serving: false,
                ours: true,
                warning: None,
                registry: tags.registry.as_ref().map(RegistryInfo::of),
                workers: Default::default(),
            },
        ),
    };
    // Never go back to a model that is gone from S3 (--model-version checked its path already).
    if let (None, Some(path), Some(model)) =
        (&args.model_version, &release.model_path, &config.model)
    {
        let what = format!(
            "{} serves the model at {path}, which is gone",
            short_task_definition(&release.task_definition)
        );
        model::require_path(&s3, &model.bucket, path, &what).await?;
    }
    if let Some(image) = &release.image {
        require_image(&aws.ecr(), &project, image).await?;
    }
    let group = shape
        .target
        .as_ref()
        .map(|t| t.target_group_arn.as_str())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "service {project} is behind no load balancer; mldeploy did not create it this way"
            )
        })?;
    let dns = load_balancer::dns_name_for_target_group(&elb, group).await?;
    // The workers follow the model API's image and model back.
    let worker_tags = match &wanted {
        Wanted::New { tags, .. } => tags.clone(),
        Wanted::Existing(r) => ReleaseTags {
            model_version: r.release.model_version.clone(),
            registry: None,
            model_path: r.release.model_path.clone(),
            image: r.release.image.clone().unwrap_or_default(),
            git_commit: r.release.git_commit.clone(),
            ci_run: lock::ci_run(),
            promoted_from: None,
        },
    };
    let workers = match &release.image {
        Some(image) => {
            let target = worker_rollback::Target {
                image,
                model_path: release.model_path.as_deref(),
                tags: &worker_tags,
            };
            worker_rollback::choose(&ecs, config, &target).await?
        }
        None => Vec::new(),
    };
    let report = RollbackReport {
        dry_run: args.dry_run,
        target: TargetKind::Ecs,
        url: dns
            .as_deref()
            .map(|d| load_balancer::url(d, config.service.domain.as_deref())),
        model_version: release.model_version,
        model_path: release.model_path,
        image: release.image,
        smoke: Vec::new(),
        on: RollbackOn::Ecs(EcsRollback {
            cluster: project.clone(),
            service: project,
            task_definition: release.task_definition,
            previous_task_definition: serving,
            registered,
            deployment_id: None,
            healthy_targets: 0,
            workers: workers
                .iter()
                .map(worker_rollback::Choice::describe)
                .collect(),
        }),
    };
    Ok((
        Chosen {
            service: svc,
            shape,
            wanted,
            via: dns
                .as_deref()
                .and_then(|d| load_balancer::via(d, config.service.domain.as_deref())),
            workers,
            worker_tags,
        },
        report,
    ))
}

/// Registers the chosen revision when it is new, and points the service at it.
pub async fn apply(
    ctx: &Ctx<'_>,
    chosen: Chosen,
    mut report: RollbackReport,
    flags: &Rollout,
) -> anyhow::Result<Applied<EcsDeployed, RollbackReport>> {
    let ecs = ctx.aws().await?.ecs();
    let project = ctx.project().to_string();
    let cv = Converge {
        project: project.clone(),
        dry_run: false,
    };
    let mut changes = Vec::new();
    let td = match &chosen.wanted {
        Wanted::Existing(r) => r.release.task_definition.clone(),
        Wanted::New { spec, tags } => {
            task_definition::ensure_registered(&ecs, &cv, spec, tags, None, &mut changes)
                .await?
                .applied("task definition")?
                .to_string()
        }
    };
    let spec = chosen.shape.spec(&project, &td);
    let Chosen {
        service: chosen_service,
        via,
        workers: worker_choices,
        worker_tags,
        ..
    } = chosen;
    // During a blue/green, canary or linear deployment's traffic shift or bake, the revision
    // asked for may still run beside the new one: moving traffic back is the whole rollback.
    if let Some(arn) =
        super::traffic_shift::still_running_beside(&ecs, &project, &project, &td).await?
    {
        ctx.printer.info(format!(
            "{} still runs beside the new revision (the deployment's bake): moving production traffic back to it",
            short_task_definition(&td)
        ));
        let took = super::traffic_shift::roll_back(
            &ecs,
            &arn,
            flags.timeout,
            crate::aws::poll::interval(),
        )
        .await?;
        ctx.printer.info(format!(
            "ECS moved production traffic back in {}",
            super::watcher::human_duration(took)
        ));
        if let RollbackOn::Ecs(e) = &mut report.on {
            e.task_definition = td;
        }
        let workers =
            worker_rollback::apply(&ecs, &cv, worker_choices, &worker_tags, &mut changes).await?;
        let url = report.url.clone().unwrap_or_default();
        return Ok(Applied {
            deployed: EcsDeployed {
                spec,
                deployed: service::Deployed {
                    deployment_id: None,
                    previous_task_definition: None,
                    waited_for_iam: None,
                },
                url,
                via,
                gated: false,
                workers,
            },
            report,
        });
    }
    let deployed = service::ensure(&ecs, &cv, &spec, Some(chosen_service), &mut changes).await?;
    let workers =
        worker_rollback::apply(&ecs, &cv, worker_choices, &worker_tags, &mut changes).await?;
    for c in &changes {
        ctx.printer.info(format!("  {c}"));
    }
    if let RollbackOn::Ecs(e) = &mut report.on {
        e.task_definition = td;
        e.deployment_id = deployed.deployment_id.clone();
    }
    let url = report.url.clone().unwrap_or_default();
    Ok(Applied {
        deployed: EcsDeployed {
            spec,
            deployed,
            url,
            via,
            gated: false,
            workers,
        },
        report,
    })
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

/// The release that served before the serving one, from ECS's deployment history (a rollback
/// makes "the next lower revision" the wrong answer), said so; refused when ECS remembers none
/// or when it is no longer an active revision that ECS could deploy.
async fn served_before(
    ctx: &Ctx<'_>,
    ecs: &aws_sdk_ecs::Client,
    project: &str,
    serving: &str,
    revisions: &[Revision],
) -> anyhow::Result<Revision> {
    let served = deployments::served(ecs, project, project).await?;
    let Some(previous) = deployments::before(&served, serving) else {
        return Err(exit::error(
            ExitStatus::Usage,
            format!(
                "ECS's deployment history (it keeps 90 days) holds no release that served before {}; name one with --model-version or --to-revision; active: {}",
                short_task_definition(serving),
                listing(revisions)
            ),
        ));
    };
    let Some(revision) = revisions
        .iter()
        .find(|r| r.release.task_definition == previous)
    else {
        return Err(exit::error(
            ExitStatus::Usage,
            format!(
                "{} served before {}, but it is no longer an active revision, so ECS cannot deploy it again; name another with --to-revision or --model-version; active: {}",
                short_task_definition(previous),
                short_task_definition(serving),
                listing(revisions)
            ),
        ));
    };
    ctx.printer.info(format!(
        "Going back to {}, which served before {} (ECS's deployment history)",
        short_task_definition(previous),
        short_task_definition(serving)
    ));
    Ok(revision.clone())
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
