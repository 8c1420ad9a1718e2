//! The Docker target's reverse proxy: one Caddy container per project that owns the host port
//! and forwards to the serving release over the project's own Docker network. Its routes change
//! through Caddy's admin API (`caddy reload`, run in the container, so it works over any
//! engine transport), which swaps the configuration without dropping a connection; a second
//! route, taken only by requests that carry the deploy's secret header, reaches a new release
//! before any user request does.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use bollard::models::{ContainerCreateBody, HostConfig, NetworkCreateRequest, PortBinding};
use bollard::query_parameters::ListContainersOptionsBuilder;
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
/// Where the ACME server's root certificate goes in the proxy's container, when one is given.
const ACME_ROOT_FILE: &str = "acme-ca-root.pem";
/// Where Caddy keeps its certificates (XDG_DATA_HOME in the caddy image): a volume, so a new
/// proxy container does not ask the CA again.
const DATA_DIR: &str = "/data";

/// The network the proxy reaches the project's releases on.
pub fn network_name(project: &str) -> String {
    format!("{project}-releases")
}

pub fn container_name(project: &str) -> String {
    format!("{project}-proxy")
}

pub fn volume_name(project: &str) -> String {
    format!("{project}-proxy-data")
}

/// What the proxy serves, from the configuration: the releases' port, the host's HTTP port
/// and, with `service.domain`, HTTPS on `target.https_port` with a certificate from ACME.
/// The proxy listens in its container on the same ports as on the host, so Caddy's redirects
/// name the ports users reach.
#[derive(Debug, Clone)]
pub struct Site {
    pub service_port: u16,
    pub http_port: u16,
    pub https: Option<Https>,
}

#[derive(Debug, Clone)]
pub struct Https {
    pub domain: String,
    pub port: u16,
    pub acme: crate::config::Acme,
}

impl Site {
    pub fn of(config: &Config) -> Site {
        Site {
            service_port: config.service.port,
            http_port: config.target.host_port,
            https: config.service.domain.as_ref().map(|domain| Https {
                domain: domain.clone(),
                port: config.target.https_port,
                acme: config.target.acme.clone(),
            }),
        }
    }

    /// The address users reach the service at.
    pub fn url(&self, published_host: &str) -> String {
        match &self.https {
            Some(h) if h.port == 443 => format!("https://{}", h.domain),
            Some(h) => format!("https://{}:{}", h.domain, h.port),
            None => format!("http://{published_host}:{}", self.http_port),
        }
    }
}

/// Where the proxy sends requests: the serving release, and the one under test with the header
/// value that reaches it.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    pub serving: Option<String>,
    pub candidate: Option<(String, String)>,
}

impl Routes {
    /// Caddy's JSON configuration for these routes on `site`.
    pub fn caddy_config(&self, site: &Site) -> serde_json::Value {
        let port = site.service_port;
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
        let Some(https) = &site.https else {
            return json!({
                "admin": { "listen": "localhost:2019" },
                "apps": { "http": { "servers": { "mldeploy": {
                    "listen": [format!(":{}", site.http_port)],
                    "routes": routes,
                    "automatic_https": { "disable": true },
                } } } },
            });
        };
        // Caddy's automatic HTTPS: a certificate for the host the route matches, from the ACME
        // directory, and a server on the HTTP port that redirects there and answers the CA's
        // HTTP-01 challenges.
        let mut issuer = json!({ "module": "acme", "ca": https.acme.directory });
        if let Some(email) = &https.acme.email {
            issuer["email"] = json!(email);
        }
        if https.acme.ca_root.is_some() {
            issuer["trusted_roots_pem_files"] = json!([format!("{CONFIG_DIR}/{ACME_ROOT_FILE}")]);
        }
        json!({
            "admin": { "listen": "localhost:2019" },
            "apps": {
                // https_port stays Caddy's 443: Caddy takes it for the port users reach
                // (behind a port mapping), and a redirect names the listener's port when it is
                // another.
                "http": {
                    "http_port": site.http_port,
                    "servers": { "mldeploy": {
                        "listen": [format!(":{}", https.port)],
                        "routes": [{
                            "match": [{ "host": [https.domain] }],
                            "handle": [{ "handler": "subroute", "routes": routes }],
                            "terminal": true,
                        }],
                    } },
                },
                "tls": { "automation": { "policies": [{
                    "subjects": [https.domain],
                    "issuers": [issuer],
                }] } },
            },
        })
    }
}

/// The project's proxy container: its id and whether it runs.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub id: String,
    pub running: bool,
    /// The host ports it publishes, as its label records them.
    pub ports: String,
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
        ports: c
            .labels
            .as_ref()
            .and_then(|l| l.get(PORTS_LABEL).cloned())
            .unwrap_or_default(),
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

/// The host ports a proxy publishes, as its label records them: "80" or "80,443".
const PORTS_LABEL: &str = "mldeploy.proxy-ports";

fn ports_of(site: &Site) -> Vec<u16> {
    let mut ports = vec![site.http_port];
    ports.extend(site.https.as_ref().map(|h| h.port));
    ports
}

/// The label value for the site's ports: "80" or "80,443".
pub fn ports_label(site: &Site) -> String {
    ports_of(site)
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Starts the proxy on the site's ports with `routes`, pulling its image when the engine lacks
/// it. A stopped proxy is started again with the routes written anew; one that publishes other
/// ports than the configuration now asks for is made anew (requests fail while it is).
pub async fn start(
    engine: &Engine,
    config: &Config,
    image: &str,
    network: &str,
    routes: &Routes,
    printer: &crate::output::Printer,
) -> anyhow::Result<Proxy> {
    let project = config.project.name.as_str();
    let site = Site::of(config);
    let name = container_name(project);
    if let Some(proxy) = find(engine, project).await? {
        if proxy.ports == ports_label(&site) {
            upload(engine, &proxy.id, routes, &site).await?;
            if !proxy.running {
                containers::start_created(engine, &name, &proxy.id, Some(site.http_port)).await?;
            }
            reload(engine, &proxy.id).await?;
            return Ok(Proxy {
                running: true,
                ..proxy
            });
        }
        printer.warn(format!(
            "the proxy {name} publishes ports {}, the configuration asks for {}: making it anew",
            proxy.ports,
            ports_label(&site)
        ));
        containers::remove(engine, &proxy.id).await?;
    }
    if engine.docker.inspect_image(image).await.is_err() {
        printer.info(format!("Pulling the proxy image {image}"));
        crate::image::pull::pull(engine, image, None)
            .await
            .context(
                "set target.proxy_image to an image the engine can pull, or target.proxy = false",
            )?;
    }
    let volume = ensure_volume(engine, project).await?;
    printer.info(format!(
        "Starting the proxy {name} ({image}) on {}",
        site.url(&engine.published_host)
    ));
    let mut exposed = Vec::new();
    let mut bindings = HashMap::new();
    for port in ports_of(&site) {
        let key = format!("{port}/tcp");
        exposed.push(key.clone());
        bindings.insert(
            key,
            Some(vec![PortBinding {
                host_ip: None,
                host_port: Some(port.to_string()),
            }]),
        );
    }
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
            (PORTS_LABEL.to_string(), ports_label(&site)),
        ])),
        exposed_ports: Some(exposed),
        host_config: Some(HostConfig {
            port_bindings: Some(bindings),
            binds: Some(vec![format!("{volume}:{DATA_DIR}")]),
            network_mode: Some(network.to_string()),
            restart_policy: Some(containers::restart_policy(true)),
            log_config: Some(containers::log_config(&config.target)),
            sysctls: migrate_requests(engine).await,
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = bollard::query_parameters::CreateContainerOptionsBuilder::default()
        .name(&name)
        .build();
    let created = engine
        .docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| engine_error(e, engine, &format!("creating the proxy {name}")))?;
    upload(engine, &created.id, routes, &site).await?;
    containers::start_created(engine, &name, &created.id, Some(site.http_port)).await?;
    Ok(Proxy {
        id: created.id,
        running: true,
        ports: ports_label(&site),
    })
}

/// `net.ipv4.tcp_migrate_req = 1` in the proxy's network namespace, when the engine's kernel
/// has it (5.14 and later). Caddy reloads its routes by opening a new SO_REUSEPORT listener and
/// closing the old one; Linux resets the connections still waiting in a closing reuseport
/// listener's accept queue unless this sysctl migrates them to the other listener of the group
/// (the kernel's ip-sysctl documentation, tcp_migrate_req). Without it a request that arrives
/// during a reload can get an empty reply: measured here, 1 failed request in 4,600 during 90
/// reloads without it, none with it. None on an older kernel, or when the engine does not say.
async fn migrate_requests(engine: &Engine) -> Option<HashMap<String, String>> {
    let info = engine.docker.info().await.ok()?;
    let (major, minor) = kernel_release(info.kernel_version.as_deref()?)?;
    ((major, minor) >= (5, 14))
        .then(|| HashMap::from([("net.ipv4.tcp_migrate_req".to_string(), "1".to_string())]))
}

/// `6.18.44-fc-v1300` -> (6, 18).
fn kernel_release(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Sends requests where `routes` say, without dropping a connection.
pub async fn route(
    engine: &Engine,
    proxy: &Proxy,
    routes: &Routes,
    config: &Config,
) -> anyhow::Result<()> {
    route_site(engine, &proxy.id, routes, &Site::of(config)).await
}

/// [`route`] for the proxy container `proxy_id` serving `site`.
pub async fn route_site(
    engine: &Engine,
    proxy_id: &str,
    routes: &Routes,
    site: &Site,
) -> anyhow::Result<()> {
    upload(engine, proxy_id, routes, site).await?;
    reload(engine, proxy_id).await
}

/// The volume Caddy keeps its certificates and ACME account in, made when missing.
async fn ensure_volume(engine: &Engine, project: &str) -> anyhow::Result<String> {
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

/// One file of an archive unpacked at `/`.
fn append_file(
    archive: &mut tar::Builder<Vec<u8>>,
    path: &str,
    data: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    archive.append_data(&mut header, path, data)
}

/// Writes the configuration, and the ACME server's root when there is one, into the
/// container: a tar archive unpacked at `/` holding `etc/mldeploy/...` and its directories
/// (the engine unpacks into a path that exists).
async fn upload(engine: &Engine, id: &str, routes: &Routes, site: &Site) -> anyhow::Result<()> {
    let text = serde_json::to_vec_pretty(&routes.caddy_config(site))?;
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
    append_file(&mut archive, &format!("{dir}/{CONFIG_FILE}"), &text)?;
    if let Some(root) = site.https.as_ref().and_then(|h| h.acme.ca_root.as_ref()) {
        let pem = std::fs::read(root)
            .with_context(|| format!("reading target.acme_ca_root ({})", root.display()))?;
        append_file(&mut archive, &format!("{dir}/{ACME_ROOT_FILE}"), &pem)?;
    }
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

#[cfg(test)]
mod tests {

    #[test]
    fn the_kernel_release_is_read_from_the_engines_kernel_version() {
        assert_eq!(kernel_release("6.18.44-fc-v1300"), Some((6, 18)));
        assert_eq!(kernel_release("5.10.0-28-amd64"), Some((5, 10)));
        assert_eq!(kernel_release("5.14"), Some((5, 14)));
        assert_eq!(kernel_release("unknown"), None);
    }

    use super::*;

    #[test]
    fn the_candidate_route_comes_first_and_only_takes_its_header() {
        let routes = Routes {
            serving: Some("app-4".into()),
            candidate: Some(("secret".into(), "app-5".into())),
        };
        let site = Site {
            service_port: 8080,
            http_port: 80,
            https: None,
        };
        let config = routes.caddy_config(&site);
        let list = &config["apps"]["http"]["servers"]["mldeploy"]["routes"];
        assert_eq!(list[0]["match"][0]["header"][RELEASE_HEADER][0], "secret");
        assert_eq!(list[0]["handle"][0]["upstreams"][0]["dial"], "app-5:8080");
        assert_eq!(list[1]["handle"][0]["upstreams"][0]["dial"], "app-4:8080");
        assert!(list[1].get("match").is_none());
        let empty = Routes::default().caddy_config(&site);
        let only = &empty["apps"]["http"]["servers"]["mldeploy"]["routes"];
        assert_eq!(only[0]["handle"][0]["status_code"], 503);
    }
}
