//! The Docker target's reverse proxy: one Caddy container per project that owns the host port
//! and forwards to the serving release over the project's own Docker network. Its routes change
//! through Caddy's admin API (`caddy reload`, run in the container, so it works over any
//! engine transport), which swaps the configuration without dropping a connection; a second
//! route, taken only by requests that carry the deploy's secret header, reaches a new release
//! before any user request does.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};

use super::containers::{self, PROJECT_LABEL, ROLE_LABEL};
use crate::config::Config;
use crate::exit::{self, ExitStatus};
use crate::image::engine::{engine_error, Engine};

mod site;
mod storage;
pub use site::{Https, Routes, Site};
use storage::ensure_volume;
pub use storage::{ensure_network, networks, remove_network, remove_volume, volumes};

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

/// The project's proxy container: its id and whether it runs.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub id: String,
    pub running: bool,
    /// The host ports it publishes, as its label records them.
    pub ports: String,
}

pub async fn find(engine: &Engine, project: &str) -> anyhow::Result<Option<Proxy>> {
    let list =
        containers::in_role(engine, project, "proxy", "looking for the project's proxy").await?;
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
    use super::*;

    #[test]
    fn the_kernel_release_is_read_from_the_engines_kernel_version() {
        assert_eq!(kernel_release("6.18.44-fc-v1300"), Some((6, 18)));
        assert_eq!(kernel_release("5.10.0-28-amd64"), Some((5, 10)));
        assert_eq!(kernel_release("5.14"), Some((5, 14)));
        assert_eq!(kernel_release("unknown"), None);
    }
}
