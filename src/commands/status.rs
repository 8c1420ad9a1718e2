//! `mldeploy status`, on any target: what serves and whether it is healthy, on one screen or as
//! one JSON object, with an exit code a CI step can gate on: 0 healthy and stable, 1 deployed but
//! not (rolling out, degraded, failed), 3 nothing deployed or AWS unreachable. `--wait` polls
//! until healthy, failed, or the deadline.

use std::time::{Duration, Instant};

use crate::cli::StatusArgs;
use crate::exit::ExitStatus;
use crate::reports::status::{AllStatus, EnvStatus};
use crate::session::{Ctx, Session};
use crate::targets::Target;

/// Pause between looks with `--wait`.
const POLL: Duration = Duration::from_secs(2);

pub async fn run(session: &Session<'_>, args: &StatusArgs) -> anyhow::Result<ExitStatus> {
    if args.all {
        return all(session).await;
    }
    let ctx = session.project()?;
    crate::with_target!(ctx.config.target.kind, T => status::<T>(&ctx, args).await)
}

/// `--all`: every environment of the file (the base file when it has none), one line each; the
/// exit code is the worst of theirs (an environment not deployed is 3).
async fn all(session: &Session<'_>) -> anyhow::Result<ExitStatus> {
    let names = crate::config::environments::names_in(&session.config_file())?;
    let envs: Vec<Option<String>> = if names.is_empty() {
        vec![None]
    } else {
        names.into_iter().map(Some).collect()
    };
    let mut worst = ExitStatus::Success;
    let mut environments = Vec::new();
    for env in envs {
        let looked = async {
            let ctx = session.project_in(env.as_deref())?;
            let mut report = crate::with_target!(ctx.config.target.kind, T => {
                let target = T::connect(&ctx).await?;
                target.status(&ctx).await
            })?;
            with_aliases(&ctx, &mut report).await;
            anyhow::Ok(report)
        }
        .await;
        let (status, entry) = match looked {
            Ok(report) => (
                if report.healthy {
                    ExitStatus::Success
                } else {
                    ExitStatus::Failed
                },
                EnvStatus {
                    env,
                    report: Some(report),
                    error: None,
                },
            ),
            Err(e) => (
                crate::exit::status_of(&e),
                EnvStatus {
                    env,
                    report: None,
                    error: Some(format!("{e:#}")),
                },
            ),
        };
        if status.code() > worst.code() {
            worst = status;
        }
        environments.push(entry);
    }
    session.printer.result(&AllStatus { environments })?;
    Ok(worst)
}

/// The registry's aliases of the serving version, when it came from a registry.
async fn with_aliases(ctx: &Ctx<'_>, report: &mut crate::reports::StatusReport) {
    let releases = match (&mut report.registry, report.model_version.as_deref()) {
        (Some(info), version) => vec![(info, version)],
        (None, _) => Vec::new(),
    };
    crate::registry::fill_aliases(ctx.config.model.as_ref(), ctx.printer, releases).await;
}

async fn status<T: Target>(ctx: &Ctx<'_>, args: &StatusArgs) -> anyhow::Result<ExitStatus> {
    let target = T::connect(ctx).await?;
    let start = Instant::now();
    let mut last_line = String::new();
    let report = loop {
        let report = target.status(ctx).await?;
        if !args.wait || report.settled() || start.elapsed() >= args.timeout {
            break report;
        }
        let line = report.progress_line();
        if line != last_line {
            ctx.printer.info(&line);
            last_line = line;
        }
        tokio::time::sleep(POLL.min(args.timeout.saturating_sub(start.elapsed()))).await;
    };
    let mut report = report;
    with_aliases(ctx, &mut report).await;
    ctx.printer.result(&report)?;
    Ok(if report.healthy {
        ExitStatus::Success
    } else {
        ExitStatus::Failed
    })
}
