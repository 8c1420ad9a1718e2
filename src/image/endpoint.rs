//! Where the Docker engine is and how to reach it, found the way the docker CLI finds it:
//! `DOCKER_HOST` (with `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` for TLS), else the context
//! `DOCKER_CONTEXT` names, else the current context of the CLI's configuration, else the local
//! socket. Contexts are read from the CLI's own store (`contexts/meta/<sha256 of the name>/meta.json`,
//! TLS files under `contexts/tls/<same>/docker/`), so `docker context use` works for mldeploy too.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use super::ssh_dial::SshDestination;
use crate::exit::{self, ExitStatus};

pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// How the engine is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A unix socket on this machine.
    Unix(String),
    /// Plain TCP (`tcp://host:port` without TLS): only sensible on a private network.
    Tcp,
    /// TCP with TLS, certificates (`ca.pem`, `cert.pem`, `key.pem`) from this directory.
    Tls(PathBuf),
    /// The user's own ssh client, running `docker system dial-stdio` on the far side.
    Ssh(SshDestination),
}

/// The engine's address and what named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix:///...`, `tcp://host:port` or `ssh://[user@]host[:port]`.
    pub host: String,
    pub transport: Transport,
    /// Where the address came from: `DOCKER_HOST`, `docker context NAME`, or the default.
    pub source: String,
}

impl Endpoint {
    /// The engine the environment names, as the docker CLI would pick it.
    pub fn from_environment() -> anyhow::Result<Endpoint> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if let Some(host) = var("DOCKER_HOST") {
            let tls = var("DOCKER_TLS_VERIFY").map(|_| cert_dir(var("DOCKER_CERT_PATH")));
            return Endpoint::of(&host, tls, "DOCKER_HOST".into());
        }
        let config = config_dir();
        let context = match var("DOCKER_CONTEXT") {
            Some(name) => Some(name),
            None => current_context(&config),
        };
        match context.filter(|name| name != "default") {
            Some(name) => Endpoint::of_context(&config, &name),
            None => Endpoint::of(DEFAULT_HOST, None, "the default socket".into()),
        }
    }

    /// This machine's own engine, whatever DOCKER_HOST names (`target.build = "local"`).
    pub fn local() -> anyhow::Result<Endpoint> {
        Endpoint::of(DEFAULT_HOST, None, "this machine's engine".into())
    }

    fn of(host: &str, tls: Option<PathBuf>, source: String) -> anyhow::Result<Endpoint> {
        let transport = match host.split_once("://").map(|(scheme, _)| scheme) {
            Some("unix") => Transport::Unix(host["unix://".len()..].to_string()),
            Some("ssh") => match SshDestination::parse(host) {
                Some(destination) => Transport::Ssh(destination),
                None => {
                    return Err(exit::error(
                        ExitStatus::Usage,
                        format!("{source} is {host:?}, which is not ssh://[user@]host[:port]"),
                    ))
                }
            },
            Some("tcp" | "http") => tls.map_or(Transport::Tcp, Transport::Tls),
            Some("https") => Transport::Tls(tls.unwrap_or_else(|| cert_dir(None))),
            _ => {
                return Err(exit::error(
                    ExitStatus::Usage,
                    format!(
                        "{source} is {host:?}, which names no engine mldeploy can reach: use unix:///path, tcp://host:port (with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH for TLS) or ssh://[user@]host[:port]"
                    ),
                ))
            }
        };
        Ok(Endpoint {
            host: host.to_string(),
            transport,
            source,
        })
    }

    /// A context of the docker CLI's store: its docker endpoint, with TLS when the context
    /// carries TLS files.
    fn of_context(config: &Path, name: &str) -> anyhow::Result<Endpoint> {
        let id = format!("{:x}", Sha256::digest(name.as_bytes()));
        let meta_path = config.join("contexts/meta").join(&id).join("meta.json");
        let text = std::fs::read_to_string(&meta_path).map_err(|e| {
            exit::error(
                ExitStatus::Environment,
                format!(
                    "the docker context {name:?} is not in {} ({e}): `docker context ls` lists the contexts there; `docker context use default` goes back to the local engine",
                    config.join("contexts").display()
                ),
            )
        })?;
        let meta: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("reading the docker context {}", meta_path.display()))?;
        let docker = &meta["Endpoints"]["docker"];
        let host = docker["Host"].as_str().ok_or_else(|| {
            exit::error(
                ExitStatus::Environment,
                format!(
                    "the docker context {name:?} names no docker endpoint ({})",
                    meta_path.display()
                ),
            )
        })?;
        let tls_dir = config.join("contexts/tls").join(&id).join("docker");
        let tls = tls_dir.join("ca.pem").is_file().then_some(tls_dir);
        Endpoint::of(host, tls, format!("docker context {name}"))
    }

    /// What to tell a user about how the engine was reached: "ssh://vm (DOCKER_HOST, over ssh)".
    pub fn describe(&self) -> String {
        let how = match &self.transport {
            Transport::Unix(_) => "a local socket".to_string(),
            Transport::Tcp => "plain TCP".to_string(),
            Transport::Tls(dir) => format!("TLS with the certificates in {}", dir.display()),
            Transport::Ssh(_) => "ssh, with your ssh client's configuration and agent".to_string(),
        };
        format!("{} ({}, over {how})", self.host, self.source)
    }

    /// The host name of a remote engine, for the ports it publishes; None for a local socket.
    /// `ssh://user@vm:2222` gives `vm`; an ssh alias is what `ssh -G` resolves it to.
    pub fn remote_host(&self) -> Option<String> {
        match &self.transport {
            Transport::Unix(_) => None,
            Transport::Ssh(d) => Some(
                ssh_hostname(d.user.as_deref(), &d.host, d.port).unwrap_or_else(|| d.host.clone()),
            ),
            Transport::Tcp | Transport::Tls(_) => {
                let rest = self
                    .host
                    .split_once("://")
                    .map_or(self.host.as_str(), |(_, r)| r);
                let authority = rest.split('/').next().unwrap_or(rest);
                Some(split_port(authority).0.to_string())
            }
        }
    }
}

/// `host:port` and `[v6]:port` into the host and the port, if any.
fn split_port(hostport: &str) -> (&str, Option<&str>) {
    if let Some(rest) = hostport.strip_prefix('[') {
        if let Some((host, after)) = rest.split_once(']') {
            return (host, after.strip_prefix(':'));
        }
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (hostport, None),
    }
}

/// The host name an ssh destination resolves to through the user's ssh configuration
/// (`HostName` of an alias), as `ssh -G` prints it; None when ssh cannot say.
fn ssh_hostname(user: Option<&str>, host: &str, port: Option<u16>) -> Option<String> {
    let mut command = std::process::Command::new("ssh");
    command.arg("-G");
    if let Some(port) = port {
        command.args(["-p", &port.to_string()]);
    }
    command.arg(match user {
        Some(user) => format!("{user}@{host}"),
        None => host.to_string(),
    });
    let output = command.output().ok().filter(|o| o.status.success())?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("hostname ").map(str::to_string))
}

/// The docker CLI's configuration directory: `DOCKER_CONFIG`, else `~/.docker`.
fn config_dir() -> PathBuf {
    match std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => home().join(".docker"),
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// `DOCKER_CERT_PATH`, else the CLI's configuration directory (where `docker --tlsverify` looks).
fn cert_dir(path: Option<String>) -> PathBuf {
    path.map(PathBuf::from).unwrap_or_else(config_dir)
}

/// The context `docker context use` chose: `currentContext` in the CLI's config.json.
fn current_context(config: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config.join("config.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["currentContext"]
        .as_str()
        .filter(|name| !name.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(host: &str, tls: Option<&str>) -> Endpoint {
        Endpoint::of(host, tls.map(PathBuf::from), "DOCKER_HOST".into()).expect("an endpoint")
    }

    #[test]
    fn schemes_pick_the_transport() {
        assert_eq!(
            endpoint("unix:///run/docker.sock", None).transport,
            Transport::Unix("/run/docker.sock".into())
        );
        assert_eq!(
            endpoint("tcp://10.0.0.5:2375", None).transport,
            Transport::Tcp
        );
        assert_eq!(
            endpoint("tcp://10.0.0.5:2376", Some("/certs")).transport,
            Transport::Tls("/certs".into())
        );
        assert!(matches!(
            endpoint("ssh://deploy@vm", None).transport,
            Transport::Ssh(SshDestination { ref host, .. }) if host == "vm"
        ));
        let err = Endpoint::of("npipe:////./pipe/docker", None, "DOCKER_HOST".into())
            .expect_err("a pipe is refused");
        assert!(err.to_string().contains("DOCKER_HOST"), "{err}");
    }

    #[test]
    fn the_remote_host_is_the_address_without_user_or_port() {
        assert_eq!(
            endpoint("unix:///var/run/docker.sock", None).remote_host(),
            None
        );
        assert_eq!(
            endpoint("tcp://10.0.0.5:2376", Some("/c"))
                .remote_host()
                .as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(
            endpoint("tcp://[::1]:2376", None).remote_host().as_deref(),
            Some("::1")
        );
    }

    #[test]
    fn a_context_is_read_from_the_clis_store() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let id = format!("{:x}", Sha256::digest(b"remote"));
        let meta = dir.path().join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta).expect("the meta directory");
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"remote","Metadata":{},"Endpoints":{"docker":{"Host":"tcp://10.0.0.5:2376","SkipTLSVerify":false}}}"#,
        )
        .expect("meta.json");
        let plain = Endpoint::of_context(dir.path(), "remote").expect("the context");
        assert_eq!(plain.transport, Transport::Tcp);
        assert_eq!(plain.source, "docker context remote");
        let tls = dir.path().join("contexts/tls").join(&id).join("docker");
        std::fs::create_dir_all(&tls).expect("the tls directory");
        std::fs::write(tls.join("ca.pem"), "").expect("ca.pem");
        assert_eq!(
            Endpoint::of_context(dir.path(), "remote")
                .expect("the context")
                .transport,
            Transport::Tls(tls)
        );
        let missing = Endpoint::of_context(dir.path(), "gone").expect_err("no such context");
        assert!(missing.to_string().contains("\"gone\""), "{missing}");
    }
}
