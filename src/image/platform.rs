//! Image platforms: what an image was built for (`os/architecture[/variant]`), read from the
//! engine's record of a local image or, for an image only the registry holds, from the registry
//! through the engine; and which of them Fargate runs (`runtimePlatform.cpuArchitecture`).

use std::fmt;

use bollard::auth::DockerCredentials;
use bollard::models::ImageInspect;
use serde::{Serialize, Serializer};

use super::ecr::RegistryLogin;
use super::engine::{engine_error, Engine};
use crate::exit::{self, ExitStatus};

/// An image's platform, as Docker and OCI name it: `linux/amd64`, `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// Fargate's CPU architectures (`runtimePlatform.cpuArchitecture`); X86_64 when a task
/// definition names none (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RuntimePlatform.html).
pub const FARGATE_X86_64: &str = "X86_64";
pub const FARGATE_ARM64: &str = "ARM64";

impl Platform {
    /// Reads `os/architecture[/variant]`, as `image.platform` and `docker build --platform` take it.
    pub fn parse(text: &str) -> Option<Platform> {
        let mut parts = text.trim().split('/');
        let os = parts.next().filter(|s| !s.is_empty())?;
        let architecture = parts.next().filter(|s| !s.is_empty())?;
        let variant = parts.next().map(str::to_string);
        if parts.next().is_some() || variant.as_deref() == Some("") {
            return None;
        }
        Some(Platform {
            os: os.to_ascii_lowercase(),
            architecture: normalize_architecture(architecture),
            variant,
        })
    }

    /// The platform the engine recorded for a local image.
    pub fn of_local(image: &ImageInspect) -> Option<Platform> {
        Some(Platform {
            os: image.os.clone().filter(|s| !s.is_empty())?,
            architecture: normalize_architecture(image.architecture.as_deref()?),
            variant: image.variant.clone().filter(|s| !s.is_empty()),
        })
    }

    /// Whether an image built for `self` is what `wanted` asked for: the same OS and
    /// architecture, and the same variant when `wanted` names one.
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && (wanted.variant.is_none() || wanted.variant == self.variant)
    }

    /// The Fargate CPU architecture that runs this image, or None when Fargate runs no such
    /// image (Fargate's Linux tasks run linux/amd64 and linux/arm64 images).
    pub fn fargate_architecture(&self) -> Option<&'static str> {
        match (self.os.as_str(), self.architecture.as_str()) {
            ("linux", "amd64") => Some(FARGATE_X86_64),
            ("linux", "arm64") => Some(FARGATE_ARM64),
            _ => None,
        }
    }
}

/// The names Go and OCI use for what other tools call x86_64 and aarch64.
fn normalize_architecture(arch: &str) -> String {
    match arch.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        other => other.to_string(),
    }
}

/// The platform Fargate's CPU architecture pulls: what its image must be built for.
pub fn for_fargate(cpu_architecture: &str) -> &'static str {
    if cpu_architecture.eq_ignore_ascii_case(FARGATE_ARM64) {
        "linux/arm64"
    } else {
        "linux/amd64"
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl Serialize for Platform {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The platform of an image the registry holds and the engine does not, read by the engine
/// from the image's manifest and configuration (Docker's distribution inspect).
pub async fn of_remote(
    engine: &Engine,
    reference: &str,
    login: &RegistryLogin,
) -> anyhow::Result<Platform> {
    let credentials = DockerCredentials {
        username: Some(login.username.clone()),
        password: Some(login.password.clone()),
        serveraddress: Some(login.server.clone()),
        ..Default::default()
    };
    let inspected = engine
        .docker
        .inspect_registry_image(reference, Some(credentials))
        .await
        .map_err(|e| engine_error(e, engine, &format!("reading the platform of {reference}")))?;
    let platforms: Vec<Platform> = inspected
        .platforms
        .iter()
        .filter_map(|p| {
            Some(Platform {
                os: p.os.clone().filter(|s| !s.is_empty())?,
                architecture: normalize_architecture(p.architecture.as_deref()?),
                variant: p.variant.clone().filter(|s| !s.is_empty()),
            })
        })
        .collect();
    match platforms.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(exit::error(
            ExitStatus::Failed,
            format!("the registry names no platform for {reference}: rebuild it with `mldeploy push --rebuild`"),
        )),
        many => Err(exit::error(
            ExitStatus::Usage,
            format!(
                "{reference} is a multi-platform image ({}): mldeploy deploys single-platform images it builds; set image.platform",
                many.iter().map(Platform::to_string).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_read_as_docker_writes_them() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!((p.os.as_str(), p.architecture.as_str()), ("linux", "arm64"));
        assert_eq!(p.variant.as_deref(), Some("v8"));
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        for bad in ["", "linux", "linux/", "/amd64", "linux/arm64/", "a/b/c/d"] {
            assert_eq!(Platform::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_variant_matters_only_when_asked_for() {
        let built = Platform::parse("linux/arm64/v8").unwrap();
        assert!(built.satisfies(&Platform::parse("linux/arm64").unwrap()));
        assert!(built.satisfies(&Platform::parse("linux/arm64/v8").unwrap()));
        assert!(!built.satisfies(&Platform::parse("linux/arm64/v7").unwrap()));
        assert!(!built.satisfies(&Platform::parse("linux/amd64").unwrap()));
    }

    #[test]
    fn fargate_runs_linux_amd64_and_arm64_only() {
        let arch = |p: &str| Platform::parse(p).unwrap().fargate_architecture();
        assert_eq!(arch("linux/amd64"), Some("X86_64"));
        assert_eq!(arch("linux/arm64/v8"), Some("ARM64"));
        assert_eq!(arch("linux/arm/v7"), None);
        assert_eq!(arch("linux/s390x"), None);
        assert_eq!(arch("windows/amd64"), None);
        assert_eq!(for_fargate("ARM64"), "linux/arm64");
        assert_eq!(for_fargate("X86_64"), "linux/amd64");
    }
}
