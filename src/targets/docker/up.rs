//! `up` on the Docker target: build the image on the engine, then replace the serving container
//! through a candidate (see `replace`), unless the same image, model and environment already
//! serve.

use super::containers::{self, ProjectContainer};
use super::{replace, Docker, DockerDeployed};
use crate::config::TargetKind;
use crate::image::build::{self, ImagePlan};
use crate::reports::up::{DockerUp, UpOn, UpReport};
use crate::session::Ctx;
use crate::targets::{Action, Applied, Change, Deploy};

/// What `up` reads before the lock: the project's containers and the image the context makes.
#[derive(Debug)]
pub struct Checked {
    existing: Vec<ProjectContainer>,
    image: ImagePlan,
}

pub async fn check(docker: &Docker, ctx: &Ctx<'_>) -> anyhow::Result<Checked> {
    let existing = containers::containers(&docker.engine, ctx.project()).await?;
    let image = build::plan(&ctx.config).await?;
    Ok(Checked { existing, image })
}

/// The report as it stands before anything runs: the next release, replacing what serves.
fn report(docker: &Docker, ctx: &Ctx<'_>, deploy: &Deploy<'_>, checked: &Checked) -> UpReport {
    let project = ctx.project();
    let release = next_release(&checked.existing);
    UpReport {
        dry_run: false,
        target: TargetKind::Docker,
        url: super::proxy::Site::of(&ctx.config).url(&docker.engine.published_host),
        image: checked.image.local_ref.clone(),
        model_version: deploy.version.map(str::to_string),
        model_path: deploy.model.map(|m| m.path.clone()),
        smoke: Vec::new(),
        gate: None,
        promoted_from: None,
        changes: Vec::new(),
        cost: None,
        on: UpOn::Docker(DockerUp {
            container: format!("{project}-{release}"),
            release,
            replaced: serving(&checked.existing).map(|c| c.name.clone()).collect(),
            workers: Vec::new(),
        }),
    }
}

pub async fn plan(
    docker: &Docker,
    ctx: &Ctx<'_>,
    deploy: &Deploy<'_>,
    checked: Checked,
) -> anyhow::Result<UpReport> {
    let mut report = report(docker, ctx, deploy, &checked);
    report.dry_run = true;
    let local = build::inspect_local(&docker.engine, &checked.image.local_ref).await?;
    report.changes.push(match local {
        Some(_) => Change::new("image", &checked.image.local_ref, Action::Keep)
            .because("on the engine already"),
        None if ctx.config.target.build_locally => {
            Change::new("image", &checked.image.local_ref, Action::Create).because(format!(
                "build here, push to ECR, pull on {}",
                docker.engine.host
            ))
        }
        None => Change::new("image", &checked.image.local_ref, Action::Create)
            .because(format!("build on {}", docker.engine.host)),
    });
    // The same decision as `apply`'s, for the image the engine has (a build to come is new).
    let candidate = replace::candidate(
        &ctx.config,
        &checked.image.local_ref,
        deploy.model.map(|m| m.path.as_str()),
        deploy.version,
        deploy.model.and_then(|m| m.registry.as_ref()),
        next_release(&checked.existing),
    );
    let serves = local
        .as_ref()
        .and_then(|_| already_serves(&checked.existing, &candidate));
    if let Some(command) = &ctx.config.deploy.release_command {
        report.changes.push(match serves {
            Some(_) => Change::new("release command", command.join(" "), Action::Keep)
                .because("the release is unchanged"),
            None => Change::new("release command", command.join(" "), Action::Update)
                .because("runs once in a container of the new image before it serves"),
        });
    }
    if let (Some(c), UpOn::Docker(d)) = (serves, &mut report.on) {
        report.changes.push(
            Change::new("container", &c.name, Action::Keep)
                .because("already serves this image, model and environment"),
        );
        d.container = c.name.clone();
        d.release = c.release;
        d.replaced.clear();
    } else if let UpOn::Docker(d) = &report.on {
        report.changes.push(
            Change::new("container", &d.container, Action::Create).because(format!(
                "{} on port {}",
                deploy.model.map_or("no model", |m| m.path.as_str()),
                ctx.config.target.host_port
            )),
        );
        for old in &d.replaced {
            report.changes.push(
                Change::new("container", old, Action::Update).because("stopped, kept for rollback"),
            );
        }
    }
    let image = local.as_ref().map(|_| checked.image.local_ref.as_str());
    let model_path = deploy.model.map(|m| m.path.as_str());
    report
        .changes
        .extend(super::worker_plan::planned(&docker.engine, &ctx.config, image, model_path).await?);
    Ok(report)
}

pub async fn apply(
    docker: &Docker,
    ctx: &Ctx<'_>,
    deploy: &Deploy<'_>,
    checked: Checked,
) -> anyhow::Result<Applied<DockerDeployed, UpReport>> {
    let mut report = report(docker, ctx, deploy, &checked);
    let Checked { existing, image } = checked;
    let image_ref = match ctx.config.target.build_locally {
        false => {
            let built = build::build(&docker.engine, &ctx.config, image, ctx.printer).await?;
            let s3 = ctx.aws().await?.s3();
            crate::model_fit::check_image(
                &docker.engine,
                &s3,
                &ctx.config,
                deploy.model,
                &built.image,
                ctx.printer,
            )
            .await?;
            built.image
        }
        true => built_here_and_pulled(docker, ctx, deploy).await?,
    };
    report.image = image_ref.clone();
    let own_images = super::workers::own_images(&docker.engine, ctx).await?;
    let release = next_release(&existing);
    let spec = replace::candidate(
        &ctx.config,
        &image_ref,
        deploy.model.map(|m| m.path.as_str()),
        deploy.version,
        deploy.model.and_then(|m| m.registry.as_ref()),
        release,
    );
    let mut gate = None;
    // Nothing changed: the same image, model and environment already serve. Still ask it.
    let unchanged = already_serves(&existing, &spec);
    if let (Some(c), UpOn::Docker(d)) = (unchanged, &mut report.on) {
        ctx.printer
            .info(format!("{} already serves this image and model", c.name));
        if let Some(image) = &ctx.config.target.proxy_image {
            super::cutover::converge_proxy(&docker.engine, &ctx.config, image, c, ctx.printer)
                .await?;
        }
        d.container = c.name.clone();
        d.release = c.release;
        d.replaced.clear();
        // The model API serves as it was; its workers may still have changed.
        let at = replace::Release {
            image: &image_ref,
            own_images: &own_images,
            model_path: deploy.model.map(|m| m.path.as_str()),
            number: c.release,
        };
        let (_, workers) = replace::release(
            &docker.engine,
            &ctx.config,
            &at,
            None,
            deploy.flags.timeout,
            ctx.printer,
        )
        .await?;
        d.workers = workers;
    } else {
        if let Some(command) = &ctx.config.deploy.release_command {
            super::one_off::release_command(
                &docker.engine,
                ctx.project(),
                &spec,
                command,
                deploy.flags.timeout,
                ctx.printer,
            )
            .await?;
        }
        let at = replace::Release {
            image: &image_ref,
            own_images: &own_images,
            model_path: deploy.model.map(|m| m.path.as_str()),
            number: release,
        };
        let (replaced, workers) = replace::release(
            &docker.engine,
            &ctx.config,
            &at,
            Some((spec, &existing)),
            deploy.flags.timeout,
            ctx.printer,
        )
        .await?;
        gate = replaced;
        if let UpOn::Docker(d) = &mut report.on {
            d.workers = workers;
        }
    }
    Ok(Applied {
        deployed: DockerDeployed {
            url: report.url.clone(),
            gate,
        },
        report,
    })
}

/// `target.build = "local"`: the project's image built here, pushed and pulled on the host
/// (`local_build`), its model checked against what the image holds; the reference is
/// `<repository>@<digest>`.
async fn built_here_and_pulled(
    docker: &Docker,
    ctx: &Ctx<'_>,
    deploy: &Deploy<'_>,
) -> anyhow::Result<String> {
    let aws = ctx.aws().await?;
    let pulled =
        super::local_build::build_push_pull(&docker.engine, aws, &ctx.config, ctx.printer).await?;
    crate::model_fit::check_image(
        &pulled.here,
        &aws.s3(),
        &ctx.config,
        deploy.model,
        &format!("{}:{}", pulled.pushed.repository, pulled.pushed.tag),
        ctx.printer,
    )
    .await?;
    Ok(pulled.reference)
}

/// The one decision of a Docker `up`, which its plan and its apply both make: the serving
/// release that already runs `spec`'s image, model and environment (nothing to replace), or
/// None (replace it).
fn already_serves<'a>(
    existing: &'a [ProjectContainer],
    spec: &containers::Spec,
) -> Option<&'a ProjectContainer> {
    serving(existing).find(|c| {
        c.image == spec.image
            && c.model_path.as_ref() == spec.labels.get(containers::MODEL_PATH_LABEL)
            && c.env_hash.as_ref() == spec.labels.get(containers::ENV_LABEL)
    })
}

fn serving(existing: &[ProjectContainer]) -> impl Iterator<Item = &ProjectContainer> {
    existing.iter().filter(|c| c.running)
}

/// The release number the next container gets.
pub(super) fn next_release(existing: &[ProjectContainer]) -> u32 {
    existing.iter().map(|c| c.release).max().unwrap_or(0) + 1
}
