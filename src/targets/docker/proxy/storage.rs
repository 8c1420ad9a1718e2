//! The proxy's Docker network (the one it reaches the releases on) and its data volume (Caddy's
//! certificates), made, listed and removed.

use std::collections::HashMap;

use bollard::models::NetworkCreateRequest;

use super::{network_name, volume_name};
use crate::image::engine::{engine_error, Engine};
use crate::targets::docker::containers::{self, PROJECT_LABEL};

/// The project's network, made when missing.
pub async fn ensure_network(engine: &Engine, project: &str) -> anyhow::Result<String> {
    let name = network_name(project);
    if engine.docker.inspect_network(&name, None).await.is_ok() {
        return Ok(name);
    }
    engine
        .docker
        .create_network(NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            labels: Some(HashMap::from([(
                PROJECT_LABEL.to_string(),
                project.to_string(),
            )])),
            ..Default::default()
        })
        .await
        .map_err(|e| engine_error(e, engine, &format!("creating the network {name}")))?;
    Ok(name)
}

/// The networks labelled as the project's (for `destroy`).
pub async fn networks(engine: &Engine, project: &str) -> anyhow::Result<Vec<(String, String)>> {
    let filters = containers::project_filters(project);
    let options = bollard::query_parameters::ListNetworksOptionsBuilder::default()
        .filters(&filters)
        .build();
    let list = engine
        .docker
        .list_networks(Some(options))
        .await
        .map_err(|e| engine_error(e, engine, "listing the project's networks"))?;
    Ok(list
        .into_iter()
        .map(|n| (n.id.unwrap_or_default(), n.name.unwrap_or_default()))
        .collect())
}

pub async fn remove_network(engine: &Engine, id: &str) -> anyhow::Result<()> {
    engine
        .docker
        .remove_network(id)
        .await
        .map_err(|e| engine_error(e, engine, "removing the project's network"))
}

/// The volume Caddy keeps its certificates and ACME account in, made when missing.
pub(super) async fn ensure_volume(engine: &Engine, project: &str) -> anyhow::Result<String> {
    let name = volume_name(project);
    if engine.docker.inspect_volume(&name).await.is_ok() {
        return Ok(name);
    }
    engine
        .docker
        .create_volume(bollard::models::VolumeCreateRequest {
            name: Some(name.clone()),
            labels: Some(HashMap::from([(
                PROJECT_LABEL.to_string(),
                project.to_string(),
            )])),
            ..Default::default()
        })
        .await
        .map_err(|e| engine_error(e, engine, &format!("creating the volume {name}")))?;
    Ok(name)
}

/// The volumes labelled as the project's (for `destroy`).
pub async fn volumes(engine: &Engine, project: &str) -> anyhow::Result<Vec<String>> {
    let filters = containers::project_filters(project);
    let options = bollard::query_parameters::ListVolumesOptionsBuilder::default()
        .filters(&filters)
        .build();
    let list = engine
        .docker
        .list_volumes(Some(options))
        .await
        .map_err(|e| engine_error(e, engine, "listing the project's volumes"))?;
    Ok(list
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect())
}

pub async fn remove_volume(engine: &Engine, name: &str) -> anyhow::Result<()> {
    engine
        .docker
        .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
        .await
        .map_err(|e| engine_error(e, engine, "removing the proxy's volume"))
}
