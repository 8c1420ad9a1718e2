//! `mldeploy up` (and `plan`, its dry run), on any target: refuse what can be refused without a
//! call, check the model version in S3, read what must be checked before the lock, then either
//! print the plan or take the deploy lock, apply, verify (watch, smoke test, undo) and report.

use super::model_choice::{chosen_model, model_choice};
use crate::cli::UpArgs;
use crate::exit::ExitStatus;
use crate::session::{Ctx, Session};
use crate::targets::{Deploy, Target};

pub async fn run(
    session: &Session<'_>,
    args: &UpArgs,
    dry_run: bool,
) -> anyhow::Result<ExitStatus> {
    let ctx = session.project()?;
    crate::with_target!(ctx.config.target.kind, T => up::<T>(&ctx, args, dry_run).await)
}

async fn up<T: Target>(ctx: &Ctx<'_>, args: &UpArgs, dry_run: bool) -> anyhow::Result<ExitStatus> {
    let choice = model_choice(&ctx.config, &args.model)?;
    let rollout = args.deploy.rollout();
    T::preflight(ctx)?;
    let prepared = T::prepare(ctx)?;
    let chosen = chosen_model(ctx, choice).await?;
    let target = T::connect(ctx).await?;
    let checked = target.check(ctx, prepared).await?;
    let deploy = Deploy {
        model: chosen.as_ref().map(|(model, _)| model),
        version: chosen.as_ref().and_then(|(_, version)| version.as_deref()),
        force: args.force,
        flags: &rollout,
        promoted: None,
    };
    if dry_run {
        let plan = target.plan(ctx, &deploy, checked).await?;
        ctx.printer.result(&plan)?;
        return Ok(ExitStatus::Success);
    }
    let held = ctx
        .take_lock("up", args.deploy.force_unlock.as_deref())
        .await?;
    let applied = target.apply(ctx, &deploy, checked).await?;
    let verified = target.verify(ctx, &applied.deployed, &rollout).await?;
    crate::registry::set_deployed_alias(ctx.config.model.as_ref(), deploy.model, ctx.printer).await;
    ctx.release(held).await?;
    ctx.printer.result(&applied.report.verified(verified))?;
    Ok(ExitStatus::Success)
}
