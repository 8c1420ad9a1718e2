//! `mldeploy destroy`, on any target: remove everything mldeploy created for the project, and
//! nothing else. It finds the resources, prints them as a plan, asks (or needs `--yes` without a
//! terminal), takes the deploy lock, deletes in dependency order, goes on past a failure and
//! reports what is left, so the next run finishes. Model artifacts in S3 are never touched.

use std::io::IsTerminal;
use std::time::Instant;

use crate::cli::DestroyArgs;
use crate::exit::{self, ExitStatus};
use crate::model;
use crate::reports::destroy::{DestroyReport, Failure};
use crate::session::{Ctx, Session};
use crate::targets::inventory::{Found, Kind};
use crate::targets::Target;

pub async fn run(session: &Session<'_>, args: &DestroyArgs) -> anyhow::Result<ExitStatus> {
    let ctx = session.project()?;
    crate::with_target!(ctx.config.target.kind, T => destroy::<T>(&ctx, args).await)
}

async fn destroy<T: Target>(ctx: &Ctx<'_>, args: &DestroyArgs) -> anyhow::Result<ExitStatus> {
    let printer = ctx.printer;
    let project = ctx.project().to_string();
    // The lock lives in S3 whatever the target: load AWS (and say the region) first.
    ctx.aws().await?;
    let target = T::connect(ctx).await?;
    let found = target.inventory(ctx).await?;
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
        models_kept: ctx
            .config
            .model
            .as_ref()
            .map(|m| format!("s3://{}/{}", m.bucket, model::prefix_of(&m.path))),
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
    confirm(printer, args, &project, delete.len())?;

    let held = ctx
        .take_lock_unless_bucket_gone("destroy", args.force_unlock.as_deref())
        .await?;
    let deadline = Instant::now() + args.timeout;
    for r in delete {
        match target.delete(ctx, &r, deadline).await {
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
    if let Some(held) = held {
        ctx.release(held).await?;
    }
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

/// On a terminal, asks for the project name; without one, `--yes` is the only way on.
fn confirm(
    printer: &crate::output::Printer,
    args: &DestroyArgs,
    project: &str,
    count: usize,
) -> anyhow::Result<()> {
    if args.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(exit::error(
            ExitStatus::Usage,
            format!("destroy would delete {count} resource(s) and there is no terminal to confirm on: pass --yes to delete them (see the plan above, or --dry-run); nothing was deleted"),
        ));
    }
    let answer = printer.ask(format!(
        "Type the project name ({project}) to delete these {count} resource(s): "
    ));
    if answer.trim() != project {
        return Err(exit::error(
            ExitStatus::Usage,
            "not confirmed; nothing was deleted",
        ));
    }
    Ok(())
}
