//! `mldeploy history`, on any target: the releases, newest first, and which one serves.

use crate::cli::HistoryArgs;
use crate::exit::ExitStatus;
use crate::session::{Ctx, Session};
use crate::targets::Target;

pub async fn run(session: &Session<'_>, args: &HistoryArgs) -> anyhow::Result<ExitStatus> {
    let ctx = session.project()?;
    crate::with_target!(ctx.config.target.kind, T => history::<T>(&ctx, args).await)
}

async fn history<T: Target>(ctx: &Ctx<'_>, args: &HistoryArgs) -> anyhow::Result<ExitStatus> {
    let target = T::connect(ctx).await?;
    let limit = (!args.all).then_some(args.limit);
    let mut report = target.releases(ctx, limit).await?;
    let releases = report
        .releases
        .iter_mut()
        .filter_map(|r| Some((r.registry.as_mut()?, r.model_version.as_deref())))
        .collect();
    crate::registry::fill_aliases(ctx.config.model.as_ref(), ctx.printer, releases).await;
    ctx.printer.result(&report)?;
    Ok(ExitStatus::Success)
}
