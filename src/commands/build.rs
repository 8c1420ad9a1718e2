//! `mldeploy build`: build the project's image and print its local reference.

use super::Session;
use crate::exit::ExitStatus;
use crate::image::{build, engine::Engine};

pub async fn run(session: &Session<'_>) -> anyhow::Result<ExitStatus> {
    let config = session.config()?;
    let plan = build::plan(&config).await?;
    let engine = Engine::connect().await?;
    session.printer.detail(format!(
        "Docker engine {} (API {})",
        engine.host, engine.api_version
    ));
    let built = build::build(&engine, &config, plan, session.printer).await?;
    session.printer.result(&built)?;
    Ok(ExitStatus::Success)
}
