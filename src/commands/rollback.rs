//! `mldeploy rollback`, on any target: serve another model version with the serving image, or
//! go back to an earlier release as it was. Everything is checked before anything changes (the
//! release exists, its model is in S3, its image is where the target pulls it); then it is
//! deployed, watched and smoke-tested like `up`, under the same deploy lock, with the same exit
//! codes.

use crate::cli::RollbackArgs;
use crate::exit::ExitStatus;
use crate::session::{Ctx, Session};
use crate::targets::Target;

pub async fn run(session: &Session<'_>, args: &RollbackArgs) -> anyhow::Result<ExitStatus> {
    let ctx = session.project()?;
    crate::with_target!(ctx.config.target.kind, T => rollback::<T>(&ctx, args).await)
}

async fn rollback<T: Target>(ctx: &Ctx<'_>, args: &RollbackArgs) -> anyhow::Result<ExitStatus> {
    // A project without [model] has no version to go to: refused before any call.
    if args.model_version.is_some() {
        ctx.config.model_for("--model-version")?;
    }
    T::preflight(ctx)?;
    let target = T::connect(ctx).await?;
    let (chosen, report) = target.choose(ctx, &args.to()).await?;
    let rollout = args.deploy.rollout();
    if args.deploy.dry_run {
        ctx.printer.result(&report)?;
        return Ok(ExitStatus::Success);
    }
    let held = ctx
        .take_lock("rollback", args.deploy.force_unlock.as_deref())
        .await?;
    let applied = target.apply_rollback(ctx, chosen, report, &rollout).await?;
    let verified = target.verify(ctx, &applied.deployed, &rollout).await?;
    ctx.release(held).await?;
    ctx.printer.result(&applied.report.verified(verified))?;
    Ok(ExitStatus::Success)
}
