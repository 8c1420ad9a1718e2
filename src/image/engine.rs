//! The connection to the Docker engine the environment names (see `endpoint`): a local socket,
//! plain TCP, TLS or ssh; the API version negotiated with the daemon (Debian's 20.10 speaks
//! 1.41), and "unreachable" reported as an environment error that names the engine and how it
//! was reached.

use std::time::Duration;

use bollard::{Docker, API_DEFAULT_VERSION};

use super::endpoint::{Endpoint, Transport, DEFAULT_HOST};
use crate::exit::{self, Classify, ExitStatus};

/// Builds of large contexts and pushes of large layers take longer than bollard's 2-minute default.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// The engine mldeploy talks to, and how to reach it.
#[derive(Debug, Clone)]
pub struct Engine {
    pub docker: Docker,
    /// The engine's address: `unix:///...`, `tcp://...` or `ssh://...`.
    pub host: String,
    pub endpoint: Endpoint,
    /// Where the ports the engine publishes are reached: 127.0.0.1 for a local engine, else its host.
    pub published_host: String,
    /// The negotiated API version, like "1.41".
    pub api_version: String,
}

impl Engine {
    /// The engine the environment names, as the docker CLI picks it.
    pub async fn connect() -> anyhow::Result<Engine> {
        Engine::connect_to(Endpoint::from_environment()?).await
    }

    /// This machine's engine, whatever the environment names.
    pub async fn connect_local() -> anyhow::Result<Engine> {
        Engine::connect_to(Endpoint::local()?).await
    }

    pub async fn connect_to(endpoint: Endpoint) -> anyhow::Result<Engine> {
        let host = endpoint.host.clone();
        let hint = unreachable_hint(&endpoint);
        let timeout = REQUEST_TIMEOUT.as_secs();
        let docker = match &endpoint.transport {
            Transport::Unix(_) => Docker::connect_with_unix(&host, timeout, API_DEFAULT_VERSION),
            Transport::Tcp => Docker::connect_with_http(&host, timeout, API_DEFAULT_VERSION),
            Transport::Tls(dir) => Docker::connect_with_ssl(
                &host,
                &dir.join("key.pem"),
                &dir.join("cert.pem"),
                &dir.join("ca.pem"),
                timeout,
                API_DEFAULT_VERSION,
            ),
            Transport::Ssh(destination) => super::ssh_dial::connect(destination, timeout),
        }
        .classify_with(ExitStatus::Environment, || {
            format!(
                "cannot use the Docker engine at {}: {hint}",
                endpoint.describe()
            )
        })?;
        let docker = match docker.negotiate_version().await {
            Ok(docker) => docker,
            Err(e) => {
                // ssh's own words say more than a closed pipe: ask it once more, by hand.
                let why = match &endpoint.transport {
                    Transport::Ssh(destination) => format!(" ({})", destination.diagnose().await),
                    _ => String::new(),
                };
                return Err(e).classify_with(ExitStatus::Environment, || {
                    format!(
                        "the Docker engine at {} is not reachable{why}: {hint}",
                        endpoint.describe()
                    )
                });
            }
        };
        let api_version = docker.client_version().to_string();
        let published_host = match endpoint.remote_host() {
            Some(h) if h.contains(':') => format!("[{h}]"),
            Some(h) => h,
            None => "127.0.0.1".to_string(),
        };
        Ok(Engine {
            docker,
            host,
            endpoint,
            published_host,
            api_version,
        })
    }

    /// The platform the engine runs on, and builds for unless asked otherwise: `linux/amd64`.
    pub async fn platform(&self) -> anyhow::Result<super::platform::Platform> {
        let version = self
            .docker
            .version()
            .await
            .map_err(|e| engine_error(e, self, "asking the engine its platform"))?;
        let text = format!(
            "{}/{}",
            version.os.unwrap_or_default(),
            version.arch.unwrap_or_default()
        );
        super::platform::Platform::parse(&text).ok_or_else(|| {
            exit::error(
                ExitStatus::Environment,
                format!(
                    "the Docker engine at {} names no platform ({text:?})",
                    self.host
                ),
            )
        })
    }

    /// The unix socket path when the engine is reached through one.
    pub fn socket_path(&self) -> Option<&str> {
        match &self.endpoint.transport {
            Transport::Unix(path) => Some(path),
            _ => None,
        }
    }

    /// The plain-HTTP address when the engine is reached over TCP without TLS.
    pub fn http_address(&self) -> Option<String> {
        if self.endpoint.transport != Transport::Tcp {
            return None;
        }
        let rest = self
            .host
            .strip_prefix("tcp://")
            .or_else(|| self.host.strip_prefix("http://"))?;
        Some(format!("http://{rest}"))
    }
}

fn unreachable_hint(endpoint: &Endpoint) -> String {
    match &endpoint.transport {
        Transport::Unix(_) if endpoint.host == DEFAULT_HOST => {
            "start the engine (`sudo systemctl start docker`, or `sudo dockerd &`), or set DOCKER_HOST to one that runs".into()
        }
        Transport::Ssh(destination) => format!(
            "check that `{}` logs in without a prompt (a key in your agent or ssh config, the host in known_hosts) and that `docker` runs there for that user",
            destination.by_hand()
        ),
        Transport::Tls(dir) => format!(
            "check that an engine listens there with TLS and trusts the client certificate in {} (ca.pem, cert.pem, key.pem)",
            dir.display()
        ),
        _ => format!(
            "check that an engine listens there, or unset DOCKER_HOST and DOCKER_CONTEXT (now {}) to use the local one",
            endpoint.source
        ),
    }
}

/// An error from the engine in the middle of an operation: a lost connection is an environment
/// error (3) with the same hint as at start; anything else stays as it is.
pub fn engine_error(err: bollard::errors::Error, engine: &Engine, doing: &str) -> anyhow::Error {
    use bollard::errors::Error as E;
    let lost = matches!(
        err,
        E::HyperResponseError { .. }
            | E::IOError { .. }
            | E::RequestTimeoutError
            | E::HyperLegacyError { .. }
    );
    if lost {
        anyhow::Error::new(err).context(exit::Classified {
            status: ExitStatus::Environment,
            message: format!(
                "{doing}: lost the Docker engine at {}: {}",
                engine.endpoint.describe(),
                unreachable_hint(&engine.endpoint)
            ),
        })
    } else {
        anyhow::Error::new(err).context(format!("{doing} failed"))
    }
}
