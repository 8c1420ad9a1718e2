//! `mldeploy promote --from staging --to prod`: deploy to one environment exactly what serves
//! healthy in another — its image, by digest (copied into the target's ECR repository when it is
//! not there), and its model version, checked in the target's bucket or registry — through the
//! same checks, strategy, lock, watch and smoke test as `up`. History records where it came from.

use super::model_choice::{chosen_model, ModelChoice};
use crate::cli::PromoteArgs;
use crate::config::TargetKind;
use crate::exit::{self, ExitStatus};
use crate::session::{Ctx, Session};
use crate::targets::ecs::{promote, Ecs};
use crate::targets::{Deploy, Target};

pub async fn run(session: &Session<'_>, args: &PromoteArgs) -> anyhow::Result<ExitStatus> {
    if args.from == args.to {
        return Err(exit::error(
            ExitStatus::Usage,
            format!(
                "--from and --to both name {}: promote moves a release between two environments",
                args.from
            ),
        ));
    }
    let rollout = args.deploy.rollout();
    let from = session.project_in(Some(&args.from))?;
    let to = session.project_in(Some(&args.to))?;
    for (flag, ctx) in [("--from", &from), ("--to", &to)] {
        if ctx.config.target.kind != TargetKind::Ecs {
            return Err(exit::error(
                ExitStatus::Usage,
                format!(
                    "{flag} {}: that environment deploys to the Docker target (target.kind); promote copies an ECR image between ECS environments",
                    ctx.config.env.as_deref().unwrap_or_default(),
                ),
            ));
        }
    }
    Ecs::preflight(&to)?;
    let template = Ecs::prepare(&to)?;
    let source = promote::source(&from, &args.from).await?;
    from.printer.info(format!(
        "{} serves {} with image {}@{} ({}): healthy",
        source.describe(),
        crate::model::describe(
            source.model_version.as_deref(),
            source.model_path.as_deref()
        ),
        source.repository,
        source.digest,
        source.platform
    ));
    crate::targets::ecs::promote_workers::check(&to.config, &source)?;
    let choice = model_of(&source, &to)?;
    let chosen = chosen_model(&to, choice).await?;
    let checked = Ecs.check(&to, template).await?;
    let deploy = Deploy {
        model: chosen.as_ref().map(|(model, _)| model),
        version: chosen.as_ref().and_then(|(_, version)| version.as_deref()),
        force: false,
        flags: &rollout,
        promoted: Some(&source),
    };
    if args.deploy.dry_run {
        let plan = Ecs.plan(&to, &deploy, checked).await?;
        to.printer.result(&plan)?;
        return Ok(ExitStatus::Success);
    }
    let held = to
        .take_lock("promote", args.deploy.force_unlock.as_deref())
        .await?;
    let applied = Ecs.apply(&to, &deploy, checked).await?;
    let verified = Ecs.verify(&to, &applied.deployed, &rollout).await?;
    crate::registry::set_deployed_alias(to.config.model.as_ref(), deploy.model, to.printer).await;
    to.release(held).await?;
    to.printer.result(&applied.report.verified(verified))?;
    Ok(ExitStatus::Success)
}

/// The model the source serves, as the target names it: the same version (of the same
/// registered model, when the source's came from a registry), else the same key prefix.
fn model_of(source: &promote::Promoted, to: &Ctx<'_>) -> anyhow::Result<Option<ModelChoice>> {
    let env = to.config.env.as_deref().unwrap_or_default();
    let Some(model) = &to.config.model else {
        return Ok(None);
    };
    let registry = model.registry.as_ref().map(|r| r.name.as_str());
    match (&source.registry_model, registry) {
        (Some(from), Some(name)) if from.name != name => {
            return Err(exit::error(
                ExitStatus::Usage,
                format!(
                    "{} serves a version of registered model {}, but {env} deploys versions of {name} (model.name): promote moves one model's versions",
                    source.env, from.name
                ),
            ))
        }
        (Some(from), None) => {
            return Err(exit::error(
                ExitStatus::Usage,
                format!(
                    "{} serves a version of registered model {}, but {env} has no model.registry to find it in",
                    source.env, from.name
                ),
            ))
        }
        (None, Some(name)) if source.model_version.is_some() => {
            return Err(exit::error(
                ExitStatus::Usage,
                format!(
                    "{} serves a model version of its bucket, but {env}'s versions are those of registered model {name}: give both environments the same model source",
                    source.env
                ),
            ))
        }
        _ => {}
    }
    Ok(match (&source.model_version, &source.model_path) {
        (Some(v), _) => Some(ModelChoice::Version(v.clone())),
        (None, Some(path)) => Some(ModelChoice::Path(path.clone())),
        (None, None) => {
            return Err(exit::error(
                ExitStatus::Usage,
                format!(
                    "{} serves no model, but {env} has a [model]: give both environments the same model settings",
                    source.env
                ),
            ))
        }
    })
}
