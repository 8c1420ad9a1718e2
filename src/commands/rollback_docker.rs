//! `mldeploy rollback` and `history` on the Docker-host target. A release there is a container:
//! the one serving, and the newest replaced ones kept stopped. `rollback` checks the model in
//! S3 and the image on the engine first, then goes through the same candidate, smoke test and
//! cut-over as `up`, under the same lock.

use super::history::HistoryReport;
use super::up_docker::{candidate, refuse_secrets, replace, DockerUpReport};
use super::Session;
use crate::cli::RollbackArgs;
use crate::config::Config;
use crate::exit::{self, ExitStatus};
use crate::image::{build, engine::Engine};
use crate::model;
use crate::smoke;
use crate::target::docker::{self, ProjectContainer};
use crate::target::ecs::releases::Release;

pub async fn history(session: &Session<'_>, config: &Config) -> anyhow::Result<ExitStatus> {
    let engine = Engine::connect().await?;
    let containers = docker::containers(&engine, &config.project.name).await?;
    let report = HistoryReport {
        family: config.project.name.clone(),
        serving: containers
            .iter()
            .find(|c| c.running)
            .map(|c| c.name.clone()),
        releases: containers.iter().map(release_of).collect(),
    };
    session.printer.result(&report)?;
    Ok(ExitStatus::Success)
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
        serving: c.running,
        ours: true,
    }
}

pub async fn rollback(
    session: &Session<'_>,
    args: &RollbackArgs,
    config: &Config,
) -> anyhow::Result<ExitStatus> {
    let printer = session.printer;
    refuse_secrets(config)?;
    let aws = session.aws(config).await?;
    let s3 = aws.s3();
    let project = config.project.name.as_str();
    let engine = Engine::connect().await?;
    let existing = docker::containers(&engine, project).await?;
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

    // What to serve: (image, model path, model version).
    let (image, model_path, version) = match (&args.model_version, args.to_revision) {
        (Some(v), _) => {
            let m =
                model::require_version(&s3, &config.model.bucket, &config.model.path, v).await?;
            (serving.image.clone(), m.path, Some(v.clone()))
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
            from_release(c)?
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
            from_release(c)?
        }
    };
    let what = format!(
        "the release with {}",
        model::describe(version.as_deref(), Some(&model_path))
    );
    model::require_path(
        &s3,
        &config.model.bucket,
        &model_path,
        &format!("{what} serves a model that is gone"),
    )
    .await?;
    if build::inspect_local(&engine, &image).await?.is_none() {
        return Err(exit::error(
            ExitStatus::Usage,
            format!("{what}: its image {image} is no longer on the engine; rebuild it with `mldeploy up` from that commit"),
        ));
    }

    let release = existing.iter().map(|c| c.release).max().unwrap_or(0) + 1;
    let url = docker::url(&engine, config.target.host_port);
    let unchanged =
        serving.image == image && serving.model_path.as_deref() == Some(model_path.as_str());
    let mut report = DockerUpReport {
        dry_run: args.deploy.dry_run,
        target: "docker",
        url: url.clone(),
        image: image.clone(),
        container: if unchanged {
            serving.name.clone()
        } else {
            format!("{project}-{release}")
        },
        release: if unchanged { serving.release } else { release },
        model_version: version.clone(),
        model_path: model_path.clone(),
        replaced: if unchanged {
            Vec::new()
        } else {
            vec![serving.name.clone()]
        },
        smoke: Vec::new(),
    };
    if args.deploy.dry_run {
        printer.result(&report)?;
        return Ok(ExitStatus::Success);
    }
    let held = session
        .take_lock(&s3, config, "rollback", args.deploy.force_unlock)
        .await?;
    if unchanged {
        printer.info(format!(
            "{} already serves this image and model",
            serving.name
        ));
    } else {
        let spec = candidate(config, &image, &model_path, version.as_deref(), release);
        replace(
            &engine,
            config,
            spec,
            &existing,
            args.deploy.timeout,
            printer,
        )
        .await?;
    }
    report.smoke = smoke::run(
        &url,
        &config.service.ready_path,
        config.smoke.as_ref(),
        args.deploy.timeout,
        printer,
    )
    .await?;
    held.release().await?;
    printer.result(&report)?;
    Ok(ExitStatus::Success)
}

/// A kept release's image, model path and model version.
fn from_release(c: &ProjectContainer) -> anyhow::Result<(String, String, Option<String>)> {
    let path = c.model_path.clone().ok_or_else(|| {
        exit::error(
            ExitStatus::Usage,
            format!(
                "release {} ({}) records no model path; it was not started by mldeploy",
                c.release, c.name
            ),
        )
    })?;
    Ok((c.image.clone(), path, c.model_version.clone()))
}
