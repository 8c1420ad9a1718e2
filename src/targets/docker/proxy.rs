//! The Docker target's reverse proxy: one Caddy container per project that owns the host port
//! and forwards to the serving release over the project's own Docker network. Its routes change
//! through Caddy's admin API (`caddy reload`, run in the container, so it works over any
//! engine transport), which swaps the configuration without dropping a connection; a second
//! route, taken only by requests that carry the deploy's secret header, reaches a new release
//! before any user request does.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, NetworkCreateRequest, PortBinding};
use bollard::query_parameters::{CreateImageOptionsBuilder, ListContainersOptionsBuilder};
use futures_util::StreamExt;
use serde_json::json;

use super::containers::{self, PROJECT_LABEL, ROLE_LABEL};
use crate::config::Config;
use crate::exit::{self, ExitStatus};
use crate::image::engine::{engine_error, Engine};

/// Where mldeploy writes the proxy's configuration in its container.
const CONFIG_DIR: &str = "/etc/mldeploy";
const CONFIG_FILE: &str = "caddy.json";
/// The header a request carries to reach the release under test instead of the serving one.
pub const RELEASE_HEADER: &str = "X-Mldeploy-Release";
/// The proxy's own port inside its container.
const LISTEN_PORT: u16 = 80;

/// The network the proxy reaches the project's releases on.
pub fn network_name(project: &str) -> String {
    format!("{project}-releases")
}

pub fn container_name(project: &str) -> String {
    format!("{project}-proxy")
}

/// Where the proxy sends requests: the serving release, and the one under test with the header
/// value that reaches it.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    pub serving: Option<String>,
    pub candidate: Option<(String, String)>,
}

impl Routes {
    /// Caddy's JSON configuration for these routes, `port` being the releases' `service.port`.
    pub fn caddy_config(&self, port: u16) -> serde_json::Value {
        let upstream = |name: &str| json!([{ "handler": "reverse_proxy", "upstreams": [{ "dial": format!("{name}:{port}") }] }]);
        let mut routes = Vec::new();
        if let Some((token, name)) = &self.candidate {
            routes.push(json!({
                "match": [{ "header": { RELEASE_HEADER: [token] } }],
                "handle": upstream(name),
            }));
        }
        routes.push(match &self.serving {
            Some(name) => json!({ "handle": upstream(name) }),
            None => json!({ "handle": [{
                "handler": "static_response",
                "status_code": 503,
                "body": "no release serves yet\n",
            }] }),
        });
        json!({
            "admin": { "listen": "localhost:2019" },
            "apps": { "http": { "servers": { "mldeploy": {
                "listen": [format!(":{LISTEN_PORT}")],
                "routes": routes,
                "automatic_https": { "disable": true },
            } } } },
        })
    }
}

/// The project's proxy container: its id and whether it runs.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub id: String,
    pub running: bool,
}

pub async fn find(engine: &Engine, project: &str) -> anyhow::Result<Option<Proxy>> {
    let filters = HashMap::from([(
        "label",
        vec![
            format!("{PROJECT_LABEL}={project}"),
            format!("{ROLE_LABEL}=proxy"),
        ],
    )]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let list = engine
        .docker
        .list_containers(Some(options))
        .await
        .map_err(|e| engine_error(e, engine, "looking for the project's proxy"))?;
    Ok(list.into_iter().next().map(|c| Proxy {
        id: c.id.unwrap_or_default(),
        running: c.state.map(|s| s.to_string()).as_deref() == Some("running"),
    }))
}

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
    let filters = HashMap::from([("label", vec![format!("{PROJECT_LABEL}={project}")])]);
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

/// Starts the proxy on `target.host_port` with `routes`, pulling its image when the engine
/// lacks it. A stopped proxy is started again with the routes written anew.
pub async fn start(
    engine: &Engine,
    config: &Config,
    image: &str,
    network: &str,
    routes: &Routes,
    printer: &crate::output::Printer,
) -> anyhow::Result<Proxy> {
    let project = config.project.name.as_str();
    let host_port = config.target.host_port;
    if let Some(proxy) = find(engine, project).await? {
        upload(engine, &proxy.id, routes, config.service.port).await?;
        if !proxy.running {
            containers::start_created(engine, &container_name(project), &proxy.id, Some(host_port))
                .await?;
        }
        reload(engine, &proxy.id).await?;
        return Ok(Proxy {
            running: true,
            ..proxy
        });
    }
    pull_if_missing(engine, image, printer).await?;
    printer.info(format!(
        "Starting the proxy {} ({image}) on port {host_port}",
        container_name(project)
    ));
    let port_key = format!("{LISTEN_PORT}/tcp");
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec![
            "caddy".into(),
            "run".into(),
            "--config".into(),
            format!("{CONFIG_DIR}/{CONFIG_FILE}"),
        ]),
        labels: Some(HashMap::from([
            (PROJECT_LABEL.to_string(), project.to_string()),
            (ROLE_LABEL.to_string(), "proxy".to_string()),
        ])),
        exposed_ports: Some(vec![port_key.clone()]),
        host_config: Some(HostConfig {
            port_bindings: Some(HashMap::from([(
                port_key,
                Some(vec![PortBinding {
                    host_ip: None,
                    host_port: Some(host_port.to_string()),
                }]),
            )])),
            network_mode: Some(network.to_string()),
            restart_policy: Some(containers::restart_policy(true)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let name = container_name(project);
    let options = bollard::query_parameters::CreateContainerOptionsBuilder::default()
        .name(&name)
        .build();
    let created = engine
        .docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| engine_error(e, engine, &format!("creating the proxy {name}")))?;
    upload(engine, &created.id, routes, config.service.port).await?;
    containers::start_created(engine, &name, &created.id, Some(host_port)).await?;
    Ok(Proxy {
        id: created.id,
        running: true,
    })
}

/// Sends requests where `routes` say, without dropping a connection.
pub async fn route(
    engine: &Engine,
    proxy: &Proxy,
    routes: &Routes,
    service_port: u16,
) -> anyhow::Result<()> {
    upload(engine, &proxy.id, routes, service_port).await?;
    reload(engine, &proxy.id).await
}

/// Writes the configuration into the container: a tar archive unpacked at `/` holding
/// `etc/mldeploy/caddy.json` and its directories (the engine unpacks into a path that exists).
async fn upload(engine: &Engine, id: &str, routes: &Routes, port: u16) -> anyhow::Result<()> {
    let text = serde_json::to_vec_pretty(&routes.caddy_config(port))?;
    let mut archive = tar::Builder::new(Vec::new());
    let dir = CONFIG_DIR.trim_start_matches('/');
    for parent in ["etc", dir] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(0o755);
        header.set_mtime(0);
        header.set_cksum();
        archive.append_data(&mut header, parent, std::io::empty())?;
    }
    let mut header = tar::Header::new_gnu();
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    archive.append_data(&mut header, format!("{dir}/{CONFIG_FILE}"), text.as_slice())?;
    let options = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
        .path("/")
        .build();
    engine
        .docker
        .upload_to_container(
            id,
            Some(options),
            bollard::body_full(archive.into_inner()?.into()),
        )
        .await
        .map_err(|e| engine_error(e, engine, "writing the proxy's configuration"))
}

/// `caddy reload` in the proxy's container: Caddy loads the new configuration through its
/// admin API and keeps serving the old one until it has.
async fn reload(engine: &Engine, id: &str) -> anyhow::Result<()> {
    let exec = engine
        .docker
        .create_exec(
            id,
            bollard::exec::CreateExecOptions::<String> {
                cmd: Some(vec![
                    "caddy".into(),
                    "reload".into(),
                    "--config".into(),
                    format!("{CONFIG_DIR}/{CONFIG_FILE}"),
                    "--force".into(),
                ]),
                attach_stdout: Some(false),
                attach_stderr: Some(false),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| engine_error(e, engine, "asking the proxy to reload"))?;
    engine
        .docker
        .start_exec(
            &exec.id,
            Some(bollard::exec::StartExecOptions {
                detach: true,
                ..Default::default()
            }),
        )
        .await
        .map_err(|e| engine_error(e, engine, "asking the proxy to reload"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let state = engine
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(|e| engine_error(e, engine, "asking the proxy to reload"))?;
        if state.running != Some(true) {
            return match state.exit_code {
                Some(0) => Ok(()),
                code => Err(exit::error(
                    ExitStatus::Failed,
                    format!(
                        "the proxy refused its new routes (caddy reload exited {}); its last lines:\n{}",
                        code.unwrap_or(-1),
                        containers::last_lines(engine, id).await
                    ),
                )),
            };
        }
        if std::time::Instant::now() >= deadline {
            return Err(exit::error(
                ExitStatus::Failed,
                "the proxy did not load its new routes within 30s",
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Pulls `image` unless the engine has it, as `docker run` would.
async fn pull_if_missing(
    engine: &Engine,
    image: &str,
    printer: &crate::output::Printer,
) -> anyhow::Result<()> {
    if engine.docker.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    printer.info(format!("Pulling the proxy image {image}"));
    let options = CreateImageOptionsBuilder::default()
        .from_image(image)
        .build();
    let mut pull = engine.docker.create_image(Some(options), None, None);
    while let Some(step) = pull.next().await {
        step.map_err(|e| {
            exit::error(
                ExitStatus::Environment,
                format!(
                    "the engine at {} cannot pull the proxy image {image} ({e}): set target.proxy_image to an image it can pull, or target.proxy = false",
                    engine.host
                ),
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_candidate_route_comes_first_and_only_takes_its_header() {
        let routes = Routes {
            serving: Some("app-4".into()),
            candidate: Some(("secret".into(), "app-5".into())),
        };
        let config = routes.caddy_config(8080);
        let list = &config["apps"]["http"]["servers"]["mldeploy"]["routes"];
        assert_eq!(list[0]["match"][0]["header"][RELEASE_HEADER][0], "secret");
        assert_eq!(list[0]["handle"][0]["upstreams"][0]["dial"], "app-5:8080");
        assert_eq!(list[1]["handle"][0]["upstreams"][0]["dial"], "app-4:8080");
        assert!(list[1].get("match").is_none());
        let empty = Routes::default().caddy_config(8080);
        let only = &empty["apps"]["http"]["servers"]["mldeploy"]["routes"];
        assert_eq!(only[0]["handle"][0]["status_code"], 503);
    }
}
