//! `mldeploy push`: build when needed, push to ECR, print `<repositoryUri>:<tag>@<digest>`.

use super::Session;
use crate::cli::PushArgs;
use crate::exit::ExitStatus;
use crate::image::{engine::Engine, push};

pub async fn run(session: &Session<'_>, args: &PushArgs) -> anyhow::Result<ExitStatus> {
    let ctx = session.project()?;
    let (config, aws) = (&ctx.config, ctx.aws().await?);
    let engine = Engine::connect().await?;
    session.printer.detail(format!(
        "Docker engine {} (API {})",
        engine.host, engine.api_version
    ));
    let report = push::push(
        &engine,
        aws,
        config,
        session.printer,
        args.rebuild,
        &|_, _| Ok(()),
    )
    .await?;
    session.printer.result(&report)?;
    Ok(ExitStatus::Success)
}
