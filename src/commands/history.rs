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
    if let Some(aliases) = crate::registry::current_aliases(&ctx.config.model, ctx.printer).await {
        for r in &mut report.releases {
            if let (Some(info), Some(version)) = (&mut r.registry, &r.model_version) {
                info.aliases = aliases.get(version).cloned().unwrap_or_default();
            }
        }
    }
    ctx.printer.result(&report)?;
    Ok(ExitStatus::Success)
}
