//! The validator of [target]: where the service runs (ECS, or a Docker host behind its proxy),
//! like those in `validate`: it destructures its raw table without `..` and reports every
//! problem with its key.

use std::path::Path;

use super::diagnostics::Report;
use super::raw::RawTarget;
use super::{Target, TargetKind};

pub(super) fn validate_target(
    raw: RawTarget,
    port: u16,
    base: &Path,
    report: &mut Report<'_>,
) -> Target {
    let RawTarget {
        kind,
        host_port,
        proxy,
        proxy_image,
        drain,
        keep_releases,
        https_port,
        acme_ca,
        acme_ca_root,
        acme_email,
        build,
        log_max_size,
        log_files,
    } = raw;
    let kind = match kind.as_deref() {
        None | Some("ecs") => TargetKind::Ecs,
        Some("docker") => TargetKind::Docker,
        Some(other) => {
            report.add(
                "target.kind",
                format!("`target.kind` = {other:?} is not a target: \"ecs\" or \"docker\""),
            );
            TargetKind::Ecs
        }
    };
    let host_port = host_port.unwrap_or(port);
    if host_port == 0 {
        report.add(
            "target.host_port",
            "`target.host_port` must be a port, 1 to 65535".to_string(),
        );
    }
    let proxy_image = match (proxy.unwrap_or(true), proxy_image) {
        (false, Some(_)) => {
            report.add(
                "target.proxy_image",
                "`target.proxy_image` names the proxy's image, but `target.proxy` = false runs no proxy: remove one of them".to_string(),
            );
            None
        }
        (false, None) => None,
        (true, Some(image)) if image.trim().is_empty() || image.contains(char::is_whitespace) => {
            report.add(
                "target.proxy_image",
                format!(
                    "`target.proxy_image` = {image:?} is not an image reference (like \"caddy:2\")"
                ),
            );
            None
        }
        (true, image) => Some(image.unwrap_or_else(|| super::DEFAULT_PROXY_IMAGE.to_string())),
    };
    let drain = match drain {
        None => super::DEFAULT_DRAIN,
        Some(text) => match super::health::parse_seconds(&text) {
            Some(s) if s <= 3600 => std::time::Duration::from_secs(u64::from(s)),
            _ => {
                report.add(
                    "target.drain",
                    format!("`target.drain` = {text:?} must be a duration from \"0s\" to \"1h\""),
                );
                super::DEFAULT_DRAIN
            }
        },
    };
    let keep_releases = match keep_releases {
        None => 5,
        Some(n @ 1..=50) => n as usize,
        Some(n) => {
            report.add(
                "target.keep_releases",
                format!("`target.keep_releases` = {n} must be from 1 to 50"),
            );
            5
        }
    };
    let https_port = https_port.unwrap_or(443);
    if https_port == 0 || https_port == host_port {
        report.add(
            "target.https_port",
            format!("`target.https_port` = {https_port} must be a port, 1 to 65535, other than `target.host_port` (HTTP, redirected to it)"),
        );
    }
    if let Some(url) = &acme_ca {
        if !url.starts_with("https://") {
            report.add(
                "target.acme_ca",
                format!("`target.acme_ca` = {url:?} is not an ACME directory URL (https://..., like {:?})", super::LETS_ENCRYPT),
            );
        }
    }
    if let Some(email) = &acme_email {
        if !email.contains('@') || email.contains(char::is_whitespace) {
            report.add(
                "target.acme_email",
                format!("`target.acme_email` = {email:?} is not an email address"),
            );
        }
    }
    let ca_root = acme_ca_root.map(|file| {
        let path = base.join(&file);
        if !path.is_file() {
            report.add(
                "target.acme_ca_root",
                format!(
                    "`target.acme_ca_root` = {file:?}: no such file in the project ({})",
                    path.display()
                ),
            );
        }
        path
    });
    let build_locally = match build.as_deref() {
        None | Some("remote") => false,
        Some("local") => true,
        Some(other) => {
            report.add(
                "target.build",
                format!("`target.build` = {other:?} is not \"remote\" (on the Docker target's engine) or \"local\" (here, pushed to ECR and pulled there)"),
            );
            false
        }
    };
    // The json-file driver's rotation (Docker's documentation, "JSON File logging driver":
    // max-size is a positive integer with k, m or g; max-file counts the files kept).
    let log_max_size = match log_max_size {
        None => super::DEFAULT_LOG_MAX_SIZE.to_string(),
        Some(size) if is_docker_size(&size) => size,
        Some(size) => {
            report.add(
                "target.log_max_size",
                format!("`target.log_max_size` = {size:?} is not a size as Docker writes it: a whole number and k, m or g, like \"10m\""),
            );
            super::DEFAULT_LOG_MAX_SIZE.to_string()
        }
    };
    let log_files = match log_files {
        None => super::DEFAULT_LOG_FILES,
        Some(n @ 1..=100) => n,
        Some(n) => {
            report.add(
                "target.log_files",
                format!("`target.log_files` = {n} must be from 1 to 100"),
            );
            super::DEFAULT_LOG_FILES
        }
    };
    Target {
        kind,
        host_port,
        proxy_image,
        drain,
        keep_releases,
        log_max_size,
        log_files,
        build_locally,
        https_port,
        acme: super::Acme {
            directory: acme_ca.unwrap_or_else(|| super::LETS_ENCRYPT.to_string()),
            email: acme_email,
            ca_root,
        },
    }
}

/// "10m", "500k", "1g": a positive whole number and Docker's unit letter.
fn is_docker_size(size: &str) -> bool {
    let Some(number) = size.strip_suffix(['k', 'm', 'g']) else {
        return false;
    };
    !number.is_empty()
        && !number.starts_with('0')
        && number.len() <= 12
        && number.bytes().all(|b| b.is_ascii_digit())
}
