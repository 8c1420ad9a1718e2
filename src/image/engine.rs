//! The connection to the Docker engine: `DOCKER_HOST` honoured, the API version negotiated with
//! the daemon (Debian's 20.10 speaks 1.41), and "unreachable" reported as an environment error.

use std::time::Duration;

use bollard::Docker;

use crate::exit::{self, Classify, ExitStatus};

pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// Builds of large contexts and pushes of large layers take longer than bollard's 2-minute default.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// The engine mldeploy talks to, and how to reach it.
#[derive(Debug, Clone)]
pub struct Engine {
    pub docker: Docker,
    /// `DOCKER_HOST`, or the default socket.
    pub host: String,
    /// The negotiated API version, like "1.41".
    pub api_version: String,
}

impl Engine {
    pub async fn connect() -> anyhow::Result<Engine> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let hint = unreachable_hint(&host);
        let docker = Docker::connect_with_host(&host)
            .classify_with(ExitStatus::Environment, || {
                format!("cannot use the Docker engine at {host}: {hint}")
            })?
            .with_timeout(REQUEST_TIMEOUT);
        let docker = docker
            .negotiate_version()
            .await
            .classify_with(ExitStatus::Environment, || {
                format!("the Docker engine at {host} is not reachable: {hint}")
            })?;
        let api_version = docker.client_version().to_string();
        Ok(Engine {
            docker,
            host,
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
        self.host.strip_prefix("unix://")
    }

    /// The plain-HTTP address when the engine is reached over TCP without TLS.
    pub fn http_address(&self) -> Option<String> {
        if std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty()) {
            return None;
        }
        let rest = self
            .host
            .strip_prefix("tcp://")
            .or_else(|| self.host.strip_prefix("http://"))?;
        Some(format!("http://{rest}"))
    }
}

fn unreachable_hint(host: &str) -> String {
    if host == DEFAULT_HOST {
        "start the engine (`sudo systemctl start docker`, or `sudo dockerd &`), or set DOCKER_HOST to one that runs".into()
    } else {
        format!("check that an engine listens there, or unset DOCKER_HOST (now {host}) to use the local one")
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
                engine.host,
                unreachable_hint(&engine.host)
            ),
        })
    } else {
        anyhow::Error::new(err).context(format!("{doing} failed"))
    }
}
