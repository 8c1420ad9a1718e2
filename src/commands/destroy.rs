//! `mldeploy destroy`: remove everything mldeploy created for the project, and nothing else.
//! It finds the resources, prints them as a plan, asks (or needs `--yes` without a terminal),
//! takes the deploy lock, deletes in dependency order, goes on past a failure and reports what
//! is left, so the next run finishes. Model artifacts in S3 are never touched.

use std::fmt;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Instant;

use serde::Serialize;

use super::Session;
use crate::cli::DestroyArgs;
use crate::config::TargetKind;
use crate::exit::{self, ExitStatus};
use crate::image::engine::Engine;
use crate::model;
use crate::target::docker;
use crate::target::ecs::teardown::{self, Found, Kind};
use crate::target::ecs::PROJECT_TAG;

#[derive(Debug, Serialize)]
pub struct DestroyReport {
    pub dry_run: bool,
    pub project: String,
    /// Deleted (or, in a dry run, to be deleted), in order.
    pub deleted: Vec<Found>,
    /// Found under the project's names but without its tag: never deleted.
    pub not_ours: Vec<Found>,
    /// Kept on request (`--keep-logs`, `--keep-images`).
    pub kept: Vec<Found>,
    /// Deletes that failed, with the reason; the next run tries them again.
    pub failed: Vec<Failure>,
    /// The model artifacts, which mldeploy never deletes.
    pub models_kept: String,
}

#[derive(Debug, Serialize)]
pub struct Failure {
    pub resource: Found,
    pub error: String,
}

impl fmt::Display for DestroyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.deleted.is_empty() && self.failed.is_empty() {
            write!(f, "{}: nothing to destroy", self.project)?;
        } else if self.dry_run {
            write!(
                f,
                "{}: would delete {} resource(s); nothing was deleted",
                self.project,
                self.deleted.len()
            )?;
            for r in &self.deleted {
                write!(f, "\n  delete {r}")?;
            }
        } else {
            write!(
                f,
                "{}: deleted {} resource(s)",
                self.project,
                self.deleted.len()
            )?;
        }
        for r in &self.not_ours {
            write!(
                f,
                "\n  left {r}: it lacks the {PROJECT_TAG}={} tag, so mldeploy did not create it",
                self.project
            )?;
        }
        for r in &self.kept {
            write!(f, "\n  kept {r} (as asked)")?;
        }
        for failure in &self.failed {
            write!(f, "\n  NOT deleted {}: {}", failure.resource, failure.error)?;
        }
        write!(
            f,
            "\n  kept {} (mldeploy never deletes model artifacts)",
            self.models_kept
        )
    }
}

pub async fn run(session: &Session<'_>, args: &DestroyArgs) -> anyhow::Result<ExitStatus> {
    let printer = session.printer;
    let config = session.config()?;
    let aws = session.aws(&config).await?;
    let project = config.project.name.clone();

    let docker_target = config.target.kind == TargetKind::Docker;
    let engine = if docker_target {
        Some(Engine::connect().await?)
    } else {
        None
    };
    let found = match &engine {
        Some(engine) => docker_resources(engine, &project).await?,
        None => teardown::find(&aws, &project).await?,
    };
    let keep = |r: &Found| {
        (args.keep_logs && r.kind == Kind::LogGroup)
            || (args.keep_images && r.kind == Kind::Repository)
    };
    let (mut delete, mut not_ours, mut kept) = (Vec::new(), Vec::new(), Vec::new());
    for r in found {
        if !r.ours {
            not_ours.push(r);
        } else if keep(&r) {
            kept.push(r);
        } else {
            delete.push(r);
        }
    }
    let mut report = DestroyReport {
        dry_run: args.dry_run,
        project: project.clone(),
        deleted: Vec::new(),
        not_ours,
        kept,
        failed: Vec::new(),
        models_kept: format!(
            "s3://{}/{}",
            config.model.bucket,
            model::prefix_of(&config.model.path)
        ),
    };
    if delete.is_empty() || args.dry_run {
        report.deleted = delete;
        printer.result(&report)?;
        return Ok(ExitStatus::Success);
    }

    printer.info(format!(
        "Plan: delete {} resource(s) of {project}, in this order:",
        delete.len()
    ));
    for r in &delete {
        printer.info(format!("  delete {r}"));
    }
    confirm(args, &project, delete.len())?;

    let held = session
        .take_lock(&aws.s3(), &config, "destroy", args.force_unlock)
        .await?;
    let deadline = Instant::now() + args.timeout;
    for r in delete {
        let outcome = match (&engine, r.kind) {
            (Some(engine), Kind::Container) => docker::remove(engine, &r.id).await,
            (Some(engine), Kind::Image) => docker::remove_image(engine, &r.id).await,
            _ => teardown::delete(&aws, &r, deadline).await,
        };
        match outcome {
            Ok(()) => {
                printer.info(format!("  deleted {r}"));
                report.deleted.push(r);
            }
            Err(e) => {
                printer.warn(format!("could not delete {r}: {e:#}"));
                report.failed.push(Failure {
                    resource: r,
                    error: format!("{e:#}"),
                });
            }
        }
    }
    // Releasing the lock deletes the lock object, the last thing mldeploy keeps in the bucket.
    held.release().await?;
    printer.result(&report)?;
    if report.failed.is_empty() {
        Ok(ExitStatus::Success)
    } else {
        Err(exit::error(
            ExitStatus::Failed,
            format!(
                "{} resource(s) could not be deleted (listed above); run `mldeploy destroy` again to finish",
                report.failed.len()
            ),
        ))
    }
}

/// The Docker target's resources: the project's containers, then its images (all labelled).
async fn docker_resources(engine: &Engine, project: &str) -> anyhow::Result<Vec<Found>> {
    let mut found: Vec<Found> = docker::containers(engine, project)
        .await?
        .into_iter()
        .map(|c| Found::new(Kind::Container, c.name, c.id, true))
        .collect();
    for (id, name) in docker::images(engine, project).await? {
        found.push(Found::new(Kind::Image, name, id, true));
    }
    Ok(found)
}

/// On a terminal, asks for the project name; without one, `--yes` is the only way on.
fn confirm(args: &DestroyArgs, project: &str, count: usize) -> anyhow::Result<()> {
    if args.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(exit::error(
            ExitStatus::Usage,
            format!("destroy would delete {count} resource(s) and there is no terminal to confirm on: pass --yes to delete them (see the plan above, or --dry-run); nothing was deleted"),
        ));
    }
    eprint!("Type the project name ({project}) to delete these {count} resource(s): ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).ok();
    if answer.trim() != project {
        return Err(exit::error(
            ExitStatus::Usage,
            "not confirmed; nothing was deleted",
        ));
    }
    Ok(())
}
