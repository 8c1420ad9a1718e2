//! `target.build = "local"`: an image built on this machine's engine for the Docker host's
//! platform, pushed to the project's ECR repository and pulled on the host by digest. The
//! project's image goes this way, and so does a worker's own (its context's tag).

use crate::aws::Aws;
use crate::config::Config;
use crate::exit::{self, ExitStatus};
use crate::image::engine::Engine;
use crate::image::platform::Platform;
use crate::image::push::{self, PushReport};
use crate::image::{ecr, pull};
use crate::output::Printer;

/// What went to the host: `<repository>@<digest>` as it was pulled there, what was pushed, and
/// the engine here that built it.
pub struct Pulled {
    pub reference: String,
    pub pushed: PushReport,
    pub here: Engine,
}

/// Builds `config`'s image here (when ECR does not hold it already), pushes it, and pulls it
/// on `host` by digest. An image for another platform than the host's is exit 2 naming
/// `image.platform`.
pub async fn build_push_pull(
    host: &Engine,
    aws: &Aws,
    config: &Config,
    printer: &Printer,
) -> anyhow::Result<Pulled> {
    let here = Engine::connect_local().await?;
    let there = host.platform().await?;
    printer.info(format!(
        "Building on this machine's engine for {there}, to push to ECR and pull on {}",
        host.host
    ));
    let name = &host.host;
    let accept = |image: &str, platform: &Platform| {
        if *platform == there {
            return Ok(());
        }
        Err(exit::error(
            ExitStatus::Usage,
            format!(
                "{image} is for {platform}, but the Docker host at {name} runs {there}: set image.platform = \"{there}\""
            ),
        ))
    };
    let pushed = push::push(&here, aws, config, printer, false, &accept).await?;
    let reference = format!("{}@{}", pushed.repository, pushed.digest);
    printer.info(format!("Pulling {reference} on {}", host.host));
    let login = ecr::registry_login(&aws.ecr()).await?;
    pull::pull(host, &reference, Some(&login)).await?;
    Ok(Pulled {
        reference,
        pushed,
        here,
    })
}
