//! The Docker-host target: the service as one container on the engine `DOCKER_HOST` names (a
//! laptop, a single VM), labelled as the project's, restarted unless stopped, published on
//! `target.host_port`, with the same `MODEL_BUCKET_NAME` / `MODEL_PATH` contract as on ECS.
//! This module starts, checks, stops and removes containers; `replace` decides.

use std::collections::HashMap;
use std::time::{Duration, Instant};

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

use crate::exit::{self, ExitStatus};
use crate::image::engine::{engine_error, Engine};
use crate::smoke::{Answer, Prober, SmokeRequest};

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
            let labels = c.labels.unwrap_or_default();
            ProjectContainer {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                image: c.image.unwrap_or_default(),
                release: labels
                    .get(RELEASE_LABEL)
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(0),
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

/// Waits until the container answers `ready_path` with 2xx on `port`. Fails at once when it
/// exits (with its last lines) or when it listens on loopback only, which no one outside it
/// can reach; fails at the deadline saying what it last saw.
pub async fn wait_ready(
    engine: &Engine,
    id: &str,
    base_url: &str,
    ready_path: &str,
    container_port: u16,
    deadline: Duration,
) -> anyhow::Result<()> {
    wait_ready_through(
        &Prober::new(None)?,
        engine,
        id,
        base_url,
        ready_path,
        container_port,
        deadline,
    )
    .await
}

/// [`wait_ready`] with a given client: one that sends the proxy's release header, say.
pub async fn wait_ready_through(
    prober: &Prober,
    engine: &Engine,
    id: &str,
    base_url: &str,
    ready_path: &str,
    container_port: u16,
    deadline: Duration,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let url = format!("{base_url}{ready_path}");
    let request = SmokeRequest::ready(ready_path);
    loop {
        let inspect = engine
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| engine_error(e, engine, "inspecting the new container"))?;
        let state = inspect.state.clone().unwrap_or_default();
        // A container that was restarted shows exit code 0 while it runs again: its last exit's
        // code is in the engine's events.
        let last_exit = match inspect.restart_count.unwrap_or(0) > 0 {
            true => last_exit_code(engine, id, inspect.created.as_deref()).await,
            false => None,
        };
        if let Some(exited) = exited_before_ready(&inspect, last_exit) {
            return Err(exit::error(
                ExitStatus::Failed,
                format!(
                    "the new container {exited} before it was ready; its last lines:\n{}",
                    last_lines(engine, id).await
                ),
            ));
        }
        let answer = prober.send(&url, &request).await;
        // Nothing answers on the port (directly), or the proxy cannot reach the app (502): an
        // app bound to loopback inside its container is the likely reason, and can be read.
        let unanswered = matches!(
            answer,
            Answer::Unreachable(_) | Answer::Http { status: 502, .. }
        );
        if let Some(listening) = state
            .pid
            .filter(|_| unanswered && engine.socket_path().is_some())
            .and_then(|pid| loopback_only(pid, container_port))
        {
            return Err(exit::error(
                ExitStatus::Failed,
                format!(
                    "the app listens on {listening} inside the container, so nothing outside the container can reach it: bind 0.0.0.0:{container_port} instead (uvicorn: --host 0.0.0.0; Flask: app.run(host=\"0.0.0.0\"))"
                ),
            ));
        }
        let last = match answer {
            Answer::Http { status, .. } if (200..300).contains(&status) => return Ok(()),
            // The candidate is asked over plain HTTP: no certificate comes into it.
            Answer::Untrusted(why) => why,
            Answer::Http { status, body, .. } => {
                format!("GET {url} answered {status}: {}", body.trim())
            }
            Answer::Unreachable(why) => format!("GET {url}: {why}"),
        };
        if start.elapsed() >= deadline {
            return Err(exit::error(
                ExitStatus::Failed,
                format!(
                    "the new container was not ready within {}s; last: {last}; its last lines:\n{}",
                    deadline.as_secs(),
                    last_lines(engine, id).await
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How a new container that is not up and steady went down, if it did: it stopped, or it
/// exited and its restart policy started it again. A container under `unless-stopped` looks
/// running between restarts (Running stays true while Restarting is set), so the engine's
/// restart count and Restarting flag say what "running" alone hides: a new container has
/// restarted only if its process ended.
/// `last_exit` is the code of its last exit when known from the engine's events.
pub fn exited_before_ready(
    inspect: &bollard::models::ContainerInspectResponse,
    last_exit: Option<i64>,
) -> Option<String> {
    let state = inspect.state.as_ref()?;
    let restarts = inspect.restart_count.unwrap_or(0);
    let restarting = state.restarting == Some(true);
    let running = state.running == Some(true);
    if running && !restarting && restarts == 0 {
        return None;
    }
    let code = last_exit.or(state.exit_code).unwrap_or_default();
    let oom = if state.oom_killed == Some(true) {
        ", killed for using more than its memory limit"
    } else {
        ""
    };
    Some(if restarts > 0 || restarting {
        format!(
            "exited (exit code {code}{oom}) and was restarted {} time(s): it is crash-looping",
            restarts.max(1)
        )
    } else {
        format!("exited (exit code {code}{oom})")
    })
}

/// The exit code of the container's last exit, from the engine's `die` events since it was
/// created (`created`, RFC 3339); None when the engine keeps no such event.
async fn last_exit_code(engine: &Engine, id: &str, created: Option<&str>) -> Option<i64> {
    let since = created
        .and_then(|c| humantime::parse_rfc3339(c).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs().saturating_sub(1))
        .unwrap_or(0);
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs()
        + 1;
    let options = bollard::query_parameters::EventsOptions {
        since: Some(since.to_string()),
        until: Some(until.to_string()),
        filters: Some(HashMap::from([
            ("container".to_string(), vec![id.to_string()]),
            ("event".to_string(), vec!["die".to_string()]),
        ])),
    };
    let mut events = engine.docker.events(Some(options));
    let mut code = None;
    while let Some(Ok(event)) = events.next().await {
        code = event
            .actor
            .and_then(|a| a.attributes)
            .and_then(|a| a.get("exitCode").and_then(|c| c.parse().ok()))
            .or(code);
    }
    code
}

/// When the process `pid` listens on `port` on a loopback address only, that address. Read from
/// the host's /proc, so it works whatever the image holds (a local engine only).
pub fn loopback_only(pid: i64, port: u16) -> Option<String> {
    let mut text = String::new();
    for table in ["tcp", "tcp6"] {
        if let Ok(t) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) {
            text.push_str(&t);
        }
    }
    listening_on_loopback_only(&text, port)
}

/// The same, over the text of /proc/net/tcp and tcp6 (tested on its own).
pub fn listening_on_loopback_only(tables: &str, port: u16) -> Option<String> {
    let port_hex = format!("{port:04X}");
    let mut loopback = None;
    for line in tables.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st ...; st 0A is LISTEN.
        let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
            continue;
        };
        let Some((addr, p)) = local.split_once(':') else {
            continue;
        };
        if *state != "0A" || p != port_hex {
            continue;
        }
        match addr {
            "0100007F" => loopback = Some(format!("127.0.0.1:{port}")),
            "00000000000000000000000001000000" => loopback = Some(format!("[::1]:{port}")),
            _ => return None, // listening on a reachable address too
        }
    }
    loopback
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    #[test]
    fn a_crash_looping_container_that_looks_running_is_caught() {
        use bollard::models::{ContainerInspectResponse, ContainerState};
        let inspect = |running, restarting, restarts, exit_code| ContainerInspectResponse {
            state: Some(ContainerState {
                running: Some(running),
                restarting: Some(restarting),
                exit_code: Some(exit_code),
                ..Default::default()
            }),
            restart_count: Some(restarts),
            ..Default::default()
        };
        assert_eq!(exited_before_ready(&inspect(true, false, 0, 0), None), None);
        // Between restarts the engine reports Running with Restarting set.
        assert_eq!(
            exited_before_ready(&inspect(true, true, 1, 3), None).as_deref(),
            Some("exited (exit code 3) and was restarted 1 time(s): it is crash-looping")
        );
        // Restarted and up again for the moment (exit code 0 while it runs): still a crash
        // loop, with the code of its last exit from the engine's events.
        assert_eq!(
            exited_before_ready(&inspect(true, false, 2, 0), Some(3)).as_deref(),
            Some("exited (exit code 3) and was restarted 2 time(s): it is crash-looping")
        );
        assert_eq!(
            exited_before_ready(&inspect(false, false, 0, 1), None).as_deref(),
            Some("exited (exit code 1)")
        );
    }

    #[test]
    fn a_listener_on_loopback_only_is_found() {
        let tables = format!("{HEADER}   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n");
        assert_eq!(
            listening_on_loopback_only(&tables, 8080),
            Some("127.0.0.1:8080".into())
        );
        assert_eq!(
            listening_on_loopback_only(&tables, 80),
            None,
            "another port"
        );
    }

    #[test]
    fn a_listener_on_every_address_is_reachable() {
        let tables = format!(
            "{HEADER}   0: 0100007F:1F90 00000000:0000 0A 0 0 0 0 0 1\n   1: 00000000:1F90 00000000:0000 0A 0 0 0 0 0 2\n"
        );
        assert_eq!(listening_on_loopback_only(&tables, 8080), None);
    }
}
