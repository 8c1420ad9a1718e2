//! `mldeploy logs`, on any target: the service's lines, oldest first, each with the task or
//! container it came from; `--follow` keeps printing new ones until interrupted (with
//! `--output json`, one JSON object per line).

use crate::cli::LogsArgs;
use crate::exit::ExitStatus;
use crate::session::{Ctx, Session};
use crate::targets::Target;

pub async fn run(session: &Session<'_>, args: &LogsArgs) -> anyhow::Result<ExitStatus> {
    let ctx = session.project()?;
    crate::with_target!(ctx.config.target.kind, T => logs::<T>(&ctx, args).await)
}

async fn logs<T: Target>(ctx: &Ctx<'_>, args: &LogsArgs) -> anyhow::Result<ExitStatus> {
    let target = T::connect(ctx).await?;
    let report = target
        .logs(ctx, args.since, args.follow, args.service.as_deref())
        .await?;
    if !args.follow {
        ctx.printer.result(&report)?;
    }
    Ok(ExitStatus::Success)
}
