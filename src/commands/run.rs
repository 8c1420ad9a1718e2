//! `mldeploy run`, on any target: a command once as a task of a service's current release (a
//! migration, a backfill, a shell-less check), its output streamed, its exit code the command's.

use crate::cli::RunArgs;
use crate::exit::ExitStatus;
use crate::session::{Ctx, Session};
use crate::targets::Target;

pub async fn run(session: &Session<'_>, args: &RunArgs) -> anyhow::Result<ExitStatus> {
    let ctx = session.project()?;
    crate::with_target!(ctx.config.target.kind, T => run_on::<T>(&ctx, args).await)
}

async fn run_on<T: Target>(ctx: &Ctx<'_>, args: &RunArgs) -> anyhow::Result<ExitStatus> {
    // A name that is no service is refused before the engine or AWS is asked.
    ctx.config.service_named(args.service.as_deref())?;
    let target = T::connect(ctx).await?;
    let report = target
        .run_once(ctx, args.service.as_deref(), &args.command, args.timeout)
        .await?;
    if ctx.printer.is_json() {
        ctx.printer.result(&report)?;
    } else {
        // stdout is the command's own output; how it ended goes beside the progress.
        ctx.printer.info(&report);
    }
    Ok(match u8::try_from(report.exit_code) {
        Ok(0) => ExitStatus::Success,
        Ok(code) => ExitStatus::Command(code),
        Err(_) => ExitStatus::Failed,
    })
}
