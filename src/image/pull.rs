//! Pulling an image onto an engine, as `docker pull` does: with the registry's login when one
//! is needed (ECR's, for a Docker host that runs what `target.build = "local"` pushed), and an
//! error that says which engine could not get which image.

use bollard::auth::DockerCredentials;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;

use super::ecr::RegistryLogin;
use super::engine::Engine;
use crate::exit::{self, ExitStatus};

/// Pulls `reference` (`repo:tag` or `repo@digest`) onto `engine`.
pub async fn pull(
    engine: &Engine,
    reference: &str,
    login: Option<&RegistryLogin>,
) -> anyhow::Result<()> {
    let options = CreateImageOptionsBuilder::default()
        .from_image(reference)
        .build();
    let credentials = login.map(|l| DockerCredentials {
        username: Some(l.username.clone()),
        password: Some(l.password.clone()),
        serveraddress: Some(l.server.clone()),
        ..Default::default()
    });
    let mut steps = engine.docker.create_image(Some(options), None, credentials);
    while let Some(step) = steps.next().await {
        step.map_err(|e| {
            exit::error(
                ExitStatus::Environment,
                format!("the engine at {} cannot pull {reference}: {e}", engine.host),
            )
        })?;
    }
    Ok(())
}
