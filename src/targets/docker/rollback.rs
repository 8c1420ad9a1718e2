//! `rollback` and `history` on the Docker target. A release there is a container: the one
//! serving, and the newest replaced ones kept stopped. `rollback` checks the model in S3 and the
//! image on the engine first, then goes through the same candidate, smoke test and cut-over as
//! `up`.

use super::containers::{self, ProjectContainer};
use super::{replace, Docker, DockerDeployed};
use crate::config::TargetKind;
use crate::exit::{self, ExitStatus};
use crate::image::build;
use crate::model::{self, FromRegistry};
use crate::reports::history::{RegistryInfo, Release};
use crate::reports::rollback::{RollbackOn, RollbackReport};
use crate::reports::up::DockerUp;
use crate::reports::HistoryReport;
use crate::session::Ctx;
use crate::targets::Applied;
use crate::targets::{RollbackTo, Rollout};

/// What `rollback` resolved: the release to start, or that it serves already.
#[derive(Debug)]
pub struct Chosen {
    existing: Vec<ProjectContainer>,
    image: String,
    /// None for a project without `[model]`.
    model_path: Option<String>,
    version: Option<String>,
    registry: Option<FromRegistry>,
    release: u32,
    /// The serving container already runs this image and model.
    unchanged: Option<String>,
}

pub async fn releases(docker: &Docker, ctx: &Ctx<'_>) -> anyhow::Result<HistoryReport> {
    let found = containers::containers(&docker.engine, ctx.project()).await?;
    Ok(HistoryReport {
        target: TargetKind::Docker,
        family: ctx.project().to_string(),
        serving: found.iter().find(|c| c.running).map(|c| c.name.clone()),
        releases: found.iter().map(release_of).collect(),
    })
}

fn release_of(c: &ProjectContainer) -> Release {
    Release {
        revision: i32::try_from(c.release).unwrap_or(i32::MAX),
        task_definition: c.name.clone(),
        model_version: c.model_version.clone(),
        model_path: c.model_path.clone(),
        image: Some(c.image.clone()),
        created: c.created.clone(),
        git_commit: None,
        ci_run: None,
        promoted_from: None,
        serving: c.running,
        ours: true,
        warning: None,
        registry: c.registry.as_ref().map(RegistryInfo::of),
        workers: Default::default(),
    }
}

pub async fn choose(
    docker: &Docker,
    ctx: &Ctx<'_>,
    args: &RollbackTo,
) -> anyhow::Result<(Chosen, RollbackReport)> {
    let config = &ctx.config;
    let s3 = ctx.aws().await?.s3();
    let project = ctx.project();
    let engine = &docker.engine;
    let existing = containers::containers(engine, project).await?;
    let Some(serving) = existing.iter().find(|c| c.running) else {
        return Err(exit::error(
            ExitStatus::Environment,
            format!(
                "nothing serves {project} on the Docker engine at {}: run `mldeploy up` first",
                engine.host
            ),
        ));
    };
    let kept = || {
        existing
            .iter()
            .map(|c| {
                format!(
                    "{} (model {})",
                    c.release,
                    c.model_version.as_deref().unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };

    // What to serve: (image, model path, model version, where in the registry).
    let (image, model_path, version, registry) = match (&args.model_version, args.to_revision) {
        (Some(v), _) => {
            let model = config.model_for("--model-version")?;
            let m = crate::registry::require_version(model, &s3, v).await?;
            (
                serving.image.clone(),
                Some(m.path),
                Some(m.version),
                m.registry,
            )
        }
        (None, Some(r)) => {
            let c = existing
                .iter()
                .find(|c| i64::from(c.release) == i64::from(r))
                .ok_or_else(|| {
                    exit::error(
                        ExitStatus::Usage,
                        format!("--to-revision {r}: release {r} of {project} is not kept on this engine; kept: {}", kept()),
                    )
                })?;
            from_release(c, config)?
        }
        (None, None) => {
            let c = existing
                .iter()
                .filter(|c| c.release < serving.release)
                .max_by_key(|c| c.release)
                .ok_or_else(|| {
                    exit::error(
                        ExitStatus::Usage,
                        format!("there is no release before {} to go back to; kept: {}. Name one with --model-version or --to-revision", serving.name, kept()),
                    )
                })?;
            from_release(c, config)?
        }
    };
    let what = match &model_path {
        Some(path) => format!(
            "the release with {}",
            model::describe(version.as_deref(), Some(path))
        ),
        None => "the release".to_string(),
    };
    if let (Some(model), Some(path)) = (&config.model, &model_path) {
        model::require_path(
            &s3,
            &model.bucket,
            path,
            &format!("{what} serves a model that is gone"),
        )
        .await?;
    }
    if build::inspect_local(engine, &image).await?.is_none() {
        return Err(exit::error(
            ExitStatus::Usage,
            format!("{what}: its image {image} is no longer on the engine; rebuild it with `mldeploy up` from that commit"),
        ));
    }

    let release = super::up::next_release(&existing);
    let unchanged =
        (serving.image == image && serving.model_path == model_path).then(|| serving.name.clone());
    let report = RollbackReport {
        dry_run: args.dry_run,
        target: TargetKind::Docker,
        url: Some(super::proxy::Site::of(config).url(&engine.published_host)),
        model_version: version.clone(),
        model_path: model_path.clone(),
        image: Some(image.clone()),
        smoke: Vec::new(),
        on: RollbackOn::Docker(DockerUp {
            container: match &unchanged {
                Some(name) => name.clone(),
                None => format!("{project}-{release}"),
            },
            release: if unchanged.is_some() {
                serving.release
            } else {
                release
            },
            replaced: if unchanged.is_some() {
                Vec::new()
            } else {
                vec![serving.name.clone()]
            },
            workers: Vec::new(),
        }),
    };
    let chosen = Chosen {
        existing,
        image,
        model_path,
        version,
        registry,
        release,
        unchanged,
    };
    Ok((chosen, report))
}

pub async fn apply(
    docker: &Docker,
    ctx: &Ctx<'_>,
    chosen: Chosen,
    report: RollbackReport,
    flags: &Rollout,
) -> anyhow::Result<Applied<DockerDeployed, RollbackReport>> {
    let mut report = report;
    // The workers go back with the model API: its image and model (kept containers that ran
    // them start again), started and up before it is replaced.
    let release = match &chosen.unchanged {
        Some(name) => chosen
            .existing
            .iter()
            .find(|c| &c.name == name)
            .map_or(chosen.release, |c| c.release),
        None => chosen.release,
    };
    let own_images = super::workers::own_images(&docker.engine, ctx).await?;
    let at = replace::Release {
        image: &chosen.image,
        own_images: &own_images,
        model_path: chosen.model_path.as_deref(),
        number: release,
    };
    let spec = match &chosen.unchanged {
        Some(name) => {
            ctx.printer
                .info(format!("{name} already serves this image and model"));
            None
        }
        None => Some((
            replace::candidate(
                &ctx.config,
                &chosen.image,
                chosen.model_path.as_deref(),
                chosen.version.as_deref(),
                chosen.registry.as_ref(),
                chosen.release,
            ),
            chosen.existing.as_slice(),
        )),
    };
    let (gate, workers) = replace::release(
        &docker.engine,
        &ctx.config,
        &at,
        spec,
        flags.timeout,
        ctx.printer,
    )
    .await?;
    if let RollbackOn::Docker(d) = &mut report.on {
        d.workers = workers;
    }
    Ok(Applied {
        deployed: DockerDeployed {
            url: report.url.clone().unwrap_or_default(),
            gate,
        },
        report,
    })
}

/// What a release serves: its image, model path (None for a project without `[model]`),
/// model version and where in the registry that came from.
type Served = (String, Option<String>, Option<String>, Option<FromRegistry>);

/// What a kept release serves.
fn from_release(c: &ProjectContainer, config: &crate::config::Config) -> anyhow::Result<Served> {
    if config.model.is_some() && c.model_path.is_none() {
        return Err(exit::error(
            ExitStatus::Usage,
            format!(
                "release {} ({}) records no model path, so it served no model; {} serves one now ([model])",
                c.release, c.name, config.project.name
            ),
        ));
    }
    let path = c.model_path.clone().filter(|_| config.model.is_some());
    Ok((
        c.image.clone(),
        path,
        c.model_version.clone(),
        c.registry.clone(),
    ))
}
