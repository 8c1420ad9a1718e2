//! The Docker-host target: the service as one container on the engine `DOCKER_HOST` names (a
//! laptop, a single VM), labelled as the project's, restarted unless stopped, published on
//! `target.host_port`, with the same `MODEL_BUCKET_NAME` / `MODEL_PATH` contract as on ECS.
//! This module starts, stops and removes containers; `readiness` checks them; `replace` decides.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;
use serde::Serialize;

pub use super::readiness::{
    exited_before_ready, listening_on_loopback_only, loopback_only, wait_ready, wait_ready_through,
};
use crate::exit::{self, ExitStatus};
use crate::image::engine::{engine_error, Engine};

pub const PROJECT_LABEL: &str = "mldeploy.project";
pub const MODEL_VERSION_LABEL: &str = "mldeploy.model-version";
pub const MODEL_PATH_LABEL: &str = "mldeploy.model-path";
/// The registered model a release's version is of, and the alias it was deployed by.
pub const REGISTRY_MODEL_LABEL: &str = "mldeploy.registry-model";
pub const MODEL_ALIAS_LABEL: &str = "mldeploy.model-alias";
pub const RELEASE_LABEL: &str = "mldeploy.release";
/// A hash of the container's environment, so a changed `service.environment` deploys anew.
pub const ENV_LABEL: &str = "mldeploy.env-hash";
/// What a project's container is when it is not a release: `proxy`.
pub const ROLE_LABEL: &str = "mldeploy.role";

/// How many of a failed container's last log lines an error shows.
const LAST_LINES: usize = 20;

/// One of the project's containers.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectContainer {
    pub id: String,
    pub name: String,
    pub image: String,
    pub release: u32,
    pub model_version: Option<String>,
    pub model_path: Option<String>,
    /// Where in the model registry its version came from.
    #[serde(skip)]
    pub registry: Option<crate::model::FromRegistry>,
    #[serde(skip)]
    pub env_hash: Option<String>,
    pub running: bool,
    /// When the container was created, RFC 3339.
    pub created: Option<String>,
    /// The host port its service is published on, when it is.
    pub host_port: Option<u16>,
}

/// The engine's list filter for what carries the project's label.
pub fn project_filters(project: &str) -> HashMap<&'static str, Vec<String>> {
    HashMap::from([("label", vec![format!("{PROJECT_LABEL}={project}")])])
}

/// The project's containers of one role (`proxy`, a one-off `run`), running or not: they are
/// not releases, so [`containers`] leaves them out.
pub async fn in_role(
    engine: &Engine,
    project: &str,
    role: &str,
    doing: &str,
) -> anyhow::Result<Vec<bollard::models::ContainerSummary>> {
    let filters = HashMap::from([(
        "label",
        vec![
            format!("{PROJECT_LABEL}={project}"),
            format!("{ROLE_LABEL}={role}"),
        ],
    )]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    engine
        .docker
        .list_containers(Some(options))
        .await
        .map_err(|e| engine_error(e, engine, doing))
}

/// A listed container's name, without the engine's leading `/`.
pub fn name_of(c: &bollard::models::ContainerSummary) -> String {
    c.names
        .as_deref()
        .and_then(<[String]>::first)
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_default()
}

/// The release a container's labels record; 0 for one that records none.
pub fn release_of(labels: &HashMap<String, String>) -> u32 {
    labels
        .get(RELEASE_LABEL)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Every container labelled as the project's, running or not, newest release first.
pub async fn containers(engine: &Engine, project: &str) -> anyhow::Result<Vec<ProjectContainer>> {
    let filters = project_filters(project);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let list = engine
        .docker
        .list_containers(Some(options))
        .await
        .map_err(|e| engine_error(e, engine, "listing the project's containers"))?;
    let mut found: Vec<ProjectContainer> = list
        .into_iter()
        .filter(|c| {
            c.labels
                .as_ref()
                .is_none_or(|labels| !labels.contains_key(ROLE_LABEL))
        })
        .map(|c| {
            let name = name_of(&c);
            let labels = c.labels.unwrap_or_default();
            ProjectContainer {
                id: c.id.unwrap_or_default(),
                name,
                image: c.image.unwrap_or_default(),
                release: release_of(&labels),
                model_version: labels.get(MODEL_VERSION_LABEL).cloned(),
                model_path: labels.get(MODEL_PATH_LABEL).cloned(),
                registry: labels
                    .get(REGISTRY_MODEL_LABEL)
                    .map(|name| crate::model::FromRegistry {
                        name: name.clone(),
                        alias: labels.get(MODEL_ALIAS_LABEL).cloned(),
                    }),
                env_hash: labels.get(ENV_LABEL).cloned(),
                running: c.state.map(|s| s.to_string()) == Some("running".into()),
                created: c.created.and_then(|t| {
                    aws_smithy_types::DateTime::from_secs(t)
                        .fmt(aws_smithy_types::date_time::Format::DateTime)
                        .ok()
                }),
                host_port: c
                    .ports
                    .unwrap_or_default()
                    .iter()
                    .find_map(|p| p.public_port),
            }
        })
        .collect();
    found.sort_by_key(|c| std::cmp::Reverse(c.release));
    Ok(found)
}

/// A container to start.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub image: String,
    pub env: Vec<String>,
    pub labels: HashMap<String, String>,
    pub container_port: u16,
    /// None: an ephemeral port the engine picks (a candidate under test).
    pub host_port: Option<u16>,
    /// The network the proxy reaches it on; None: Docker's default bridge, published on a port.
    pub network: Option<String>,
    /// `unless-stopped`, for the container that serves.
    pub restart: bool,
    /// The log driver with its rotation (`log_config`).
    pub log: HostConfigLogConfig,
}

/// Every container mldeploy starts logs to rotated files: the json-file driver (which `docker
/// logs` and `mldeploy logs` read, on every engine version) with `max-size` and `max-file` from
/// `target.log_max_size` and `target.log_files`, so a chatty model cannot fill the host's disk.
pub fn log_config(target: &crate::config::Target) -> HostConfigLogConfig {
    HostConfigLogConfig {
        typ: Some("json-file".to_string()),
        config: Some(HashMap::from([
            ("max-size".to_string(), target.log_max_size.clone()),
            ("max-file".to_string(), target.log_files.to_string()),
        ])),
    }
}

/// Creates and starts the container; returns its id and the host port it is published on
/// (0 when it joins a network instead, where only the proxy reaches it).
pub async fn start(engine: &Engine, spec: &Spec) -> anyhow::Result<(String, u16)> {
    let port_key = format!("{}/tcp", spec.container_port);
    let binding = PortBinding {
        host_ip: None,
        host_port: Some(spec.host_port.map(|p| p.to_string()).unwrap_or_default()),
    };
    let port_bindings = match &spec.network {
        Some(_) => None,
        None => Some(HashMap::from([(port_key.clone(), Some(vec![binding]))])),
    };
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        env: Some(spec.env.clone()),
        labels: Some(spec.labels.clone()),
        exposed_ports: Some(vec![port_key.clone()]),
        host_config: Some(HostConfig {
            port_bindings,
            network_mode: spec.network.clone(),
            restart_policy: Some(restart_policy(spec.restart)),
            log_config: Some(spec.log.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = create_and_start(engine, &spec.name, body, spec.host_port).await?;
    if spec.network.is_some() {
        return Ok((id, 0));
    }
    let inspect = engine
        .docker
        .inspect_container(&id, None)
        .await
        .map_err(|e| engine_error(e, engine, "inspecting the new container"))?;
    let published = inspect
        .network_settings
        .and_then(|n| n.ports)
        .and_then(|p| p.get(&port_key).cloned().flatten())
        .and_then(|b| b.into_iter().find_map(|b| b.host_port))
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("the engine published no port for {}", spec.name))?;
    Ok((id, published))
}

pub fn restart_policy(restart: bool) -> RestartPolicy {
    RestartPolicy {
        name: Some(if restart {
            RestartPolicyNameEnum::UNLESS_STOPPED
        } else {
            RestartPolicyNameEnum::NO
        }),
        maximum_retry_count: None,
    }
}

/// Creates the container `name` from `body` and starts it; a host port someone else holds is
/// an environment error that names it.
pub async fn create_and_start(
    engine: &Engine,
    name: &str,
    body: ContainerCreateBody,
    host_port: Option<u16>,
) -> anyhow::Result<String> {
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    let created = engine
        .docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| engine_error(e, engine, &format!("creating container {name}")))?;
    start_created(engine, name, &created.id, host_port).await?;
    Ok(created.id)
}

/// Starts a created container; a host port someone else holds is an environment error.
pub async fn start_created(
    engine: &Engine,
    name: &str,
    id: &str,
    host_port: Option<u16>,
) -> anyhow::Result<()> {
    engine
        .docker
        .start_container(id, None)
        .await
        .map_err(|e| match e {
            bollard::errors::Error::DockerResponseServerError { message, .. }
                if message.contains("port is already allocated")
                    || message.contains("address already in use") =>
            {
                exit::error(
                    ExitStatus::Environment,
                    format!(
                        "port {} on the Docker host is taken by something else: free it, or set target.host_port",
                        host_port.unwrap_or_default()
                    ),
                )
            }
            e => engine_error(e, engine, &format!("starting container {name}")),
        })
}

pub async fn stop(engine: &Engine, id: &str) -> anyhow::Result<()> {
    let options = StopContainerOptionsBuilder::default().t(10).build();
    engine
        .docker
        .stop_container(id, Some(options))
        .await
        .map_err(|e| engine_error(e, engine, "stopping the old container"))
}

/// Starts a stopped container again; one that runs already is left as it is.
pub async fn start_again(engine: &Engine, id: &str) -> anyhow::Result<()> {
    match engine.docker.start_container(id, None).await {
        // 304 Not Modified: the container was running (Docker Engine API, ContainerStart).
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(()),
        other => other.map_err(|e| engine_error(e, engine, "starting the old container again")),
    }
}

pub async fn remove(engine: &Engine, id: &str) -> anyhow::Result<()> {
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    engine
        .docker
        .remove_container(id, Some(options))
        .await
        .map_err(|e| engine_error(e, engine, "removing a container"))
}

/// Removes the container `id_or_name` if it exists (an interrupted start may not have made it).
pub async fn remove_if_there(engine: &Engine, id_or_name: &str) -> anyhow::Result<()> {
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    match engine
        .docker
        .remove_container(id_or_name, Some(options))
        .await
    {
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        other => other.map_err(|e| engine_error(e, engine, "removing a container")),
    }
}

/// The ids of the images built for the project (labelled by `mldeploy build`).
pub async fn images(engine: &Engine, project: &str) -> anyhow::Result<Vec<(String, String)>> {
    let filters = project_filters(project);
    let options = bollard::query_parameters::ListImagesOptionsBuilder::default()
        .filters(&filters)
        .build();
    let list = engine
        .docker
        .list_images(Some(options))
        .await
        .map_err(|e| engine_error(e, engine, "listing the project's images"))?;
    Ok(list
        .into_iter()
        .map(|i| {
            let name = i.repo_tags.first().cloned().unwrap_or_else(|| i.id.clone());
            (i.id, name)
        })
        .collect())
}

/// Removes the project's images that none of its containers uses any more: those of releases
/// beyond the kept ones, and builds that never served (seed 003's `docker image prune`, by
/// hand, every few deploys). Returns the names removed; an image the engine will not remove
/// (a container of someone else's uses it) stays.
pub async fn prune_images(engine: &Engine, project: &str) -> anyhow::Result<Vec<String>> {
    let filters = project_filters(project);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let used: std::collections::HashSet<String> = engine
        .docker
        .list_containers(Some(options))
        .await
        .map_err(|e| engine_error(e, engine, "listing the project's containers"))?
        .into_iter()
        .filter_map(|c| c.image_id)
        .collect();
    let mut removed = Vec::new();
    for (id, name) in images(engine, project).await? {
        if used.contains(&id) {
            continue;
        }
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default().build();
        if engine
            .docker
            .remove_image(&id, Some(options), None)
            .await
            .is_ok()
        {
            removed.push(name);
        }
    }
    Ok(removed)
}

pub async fn remove_image(engine: &Engine, id: &str) -> anyhow::Result<()> {
    let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
        .force(true)
        .build();
    engine
        .docker
        .remove_image(id, Some(options), None)
        .await
        .map(|_| ())
        .map_err(|e| engine_error(e, engine, "removing an image"))
}

/// The container's last log lines, for an error.
pub async fn last_lines(engine: &Engine, id: &str) -> String {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&LAST_LINES.to_string())
        .build();
    let mut stream = engine.docker.logs(id, Some(options));
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&chunk.to_string());
    }
    text.trim_end().to_string()
}

/// The URL of a port the engine publishes: on loopback for a local engine, else on its host
/// (for ssh, the host name the user's ssh configuration resolves the destination to).
pub fn url(engine: &Engine, port: u16) -> String {
    format!("http://{}:{port}", engine.published_host)
}

/// The replaced releases of `existing` stay, stopped, as what `history` lists and `rollback`
/// goes back to: only the newest `keep`, and never a leftover candidate.
pub async fn keep_newest(
    engine: &Engine,
    existing: &[ProjectContainer],
    keep: usize,
) -> anyhow::Result<()> {
    let mut kept = 0;
    for c in existing {
        if c.name.ends_with("-candidate") || kept >= keep {
            remove(engine, &c.id).await?;
        } else {
            kept += 1;
        }
    }
    Ok(())
}

/// The container that stands for the service: the running one, else the newest release
/// (`containers` lists newest first).
pub fn current(containers: &[ProjectContainer]) -> Option<&ProjectContainer> {
    containers.iter().find(|c| c.running).or(containers.first())
}
