//! `mldeploy init`: a commented mldeploy.toml for the current directory, with the project name
//! from the directory and the port from the Dockerfile's EXPOSE.

use std::path::Path;

use serde::Serialize;

use super::Session;
use crate::cli::InitArgs;
use crate::config::{self, check_project_name};
use crate::exit::{self, ExitStatus};

const TEMPLATE: &str = r#"# mldeploy.toml: how `mldeploy` builds, pushes and deploys this service.
# Every key is checked before mldeploy calls Docker or AWS; `mldeploy --help` lists the commands.

[project]
# Names the ECR repository, the load balancer, the target group, the ECS cluster and service:
# 2 to 32 characters, lowercase letters, digits and hyphens.
name = "@NAME@"
# AWS region. --region overrides it; without either, the AWS environment (AWS_REGION) decides.
# region = "us-east-1"

[image]
# The build context and the Dockerfile, relative to this file. .dockerignore in the context is honoured.
context = "."
dockerfile = "Dockerfile"
# How many images the ECR lifecycle policy keeps.
# keep_images = 30
# platform = "linux/amd64"
# [image.build_args]
# PYTHON_VERSION = "3.11"

[model]
# The S3 bucket that holds the model versions. mldeploy reads it and never writes or deletes in it.
bucket = "@BUCKET@"
# Where one model version lives in the bucket; {version} becomes the version number.
path = "mlflow/models/@NAME@/{version}"
# The version to deploy when --model-version is not given.
# version = 1

[service]
# The port the container listens on@PORT_NOTE@.
port = @PORT@
# Fargate task size: CPU units and memory in MiB (256 CPU takes 512, 1024 or 2048 MiB).
cpu = 256
memory = 512
desired_count = 1
# Liveness (load balancer health check) and readiness (model loaded) endpoints.
health_check_path = "/health"
ready_path = "/ready"

# A request to check through the load balancer after each deploy.
# [smoke]
# path = "/predict"
# body = '{"features": [[8.3252, 41.0, 6.98, 1.02, 322.0, 2.56, 37.88, -122.23]]}'

# A worker: a service beside the model API with no load balancer (a queue consumer, a batch
# scorer), deployed in the same release. It runs the project's image with its own command.
# [workers.scorer]
# command = ["python", "-m", "scorer"]
# cpu = 256
# memory = 512
# desired_count = 1
# model = true   # MODEL_BUCKET_NAME/MODEL_PATH and read access to the model
# environment = { QUEUE = "scoring" }

# A command run once with each new release before any service rolls out (database migrations);
# when it fails, nothing rolls out. `mldeploy run -- CMD` runs one by hand.
# [deploy]
# release_command = ["python", "migrate.py"]
"#;

#[derive(Debug, Serialize)]
struct InitReport {
    file: String,
    project: String,
    port: u16,
    port_from: &'static str,
}

impl std::fmt::Display for InitReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)
    }
}

pub fn run(session: &Session<'_>, args: &InitArgs) -> anyhow::Result<ExitStatus> {
    let dir = session.dir();
    let file = dir.join(config::FILE_NAME);
    if file.exists() && !args.force {
        return Err(exit::error(
            ExitStatus::Usage,
            format!(
                "{} already exists: edit it, or pass --force to overwrite it",
                file.display()
            ),
        ));
    }
    let name = match &args.name {
        Some(name) => {
            check_project_name(name)
                .map_err(|why| exit::error(ExitStatus::Usage, format!("--name {name:?} {why}")))?;
            name.clone()
        }
        None => name_from_dir(&dir)?,
    };
    let bucket = args
        .bucket
        .clone()
        .unwrap_or_else(|| format!("{name}-models"));
    let exposed = std::fs::read_to_string(dir.join("Dockerfile"))
        .ok()
        .and_then(|d| exposed_port(&d));
    let (port, port_from, note) = match exposed {
        Some(p) => (p, "Dockerfile EXPOSE", " (from the Dockerfile's EXPOSE)"),
        None => (80, "default", ""),
    };
    let text = TEMPLATE
        .replace("@NAME@", &name)
        .replace("@BUCKET@", &bucket)
        .replace("@PORT@", &port.to_string())
        .replace("@PORT_NOTE@", note);
    std::fs::write(&file, text).map_err(|e| {
        exit::error(
            ExitStatus::Usage,
            format!("cannot write {}: {e}", file.display()),
        )
    })?;

    session.printer.info(format!(
        "Wrote {} for project {name}, port {port} ({port_from})",
        file.display()
    ));
    if args.bucket.is_none() {
        session.printer.info(format!(
            "Set model.bucket (now {bucket:?}) and model.path to where your model versions live"
        ));
    }
    session.printer.result(&InitReport {
        file: file.display().to_string(),
        project: name,
        port,
        port_from,
    })?;
    Ok(ExitStatus::Success)
}

/// The directory's name made valid for AWS: lowercase, other characters as hyphens, at most 32.
fn name_from_dir(dir: &Path) -> anyhow::Result<String> {
    let base = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let mut name = String::new();
    for c in base.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let mut name: String = name.trim_matches('-').chars().take(32).collect();
    name = name.trim_end_matches('-').to_string();
    check_project_name(&name).map_err(|why| {
        exit::error(
            ExitStatus::Usage,
            format!("the directory name gives the project name {name:?}, which {why}: pass --name"),
        )
    })?;
    Ok(name)
}

/// The first port a Dockerfile EXPOSEs (`EXPOSE 8080/tcp 9000` -> 8080).
fn exposed_port(dockerfile: &str) -> Option<u16> {
    dockerfile.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if !words.next()?.eq_ignore_ascii_case("EXPOSE") {
            return None;
        }
        words.find_map(|w| w.split('/').next()?.parse::<u16>().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_comes_from_the_first_expose() {
        assert_eq!(
            exposed_port("FROM x\nexpose 8080/tcp 9000\nEXPOSE 1\n"),
            Some(8080)
        );
        assert_eq!(exposed_port("FROM x\nCMD [\"serve\"]\n"), None);
    }

    #[test]
    fn directory_names_become_valid_project_names() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("California_Housing Model");
        std::fs::create_dir(&dir).unwrap();
        assert_eq!(name_from_dir(&dir).unwrap(), "california-housing-model");
    }

    #[test]
    fn the_template_is_a_valid_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let text = TEMPLATE
            .replace("@NAME@", "demo")
            .replace("@BUCKET@", "demo-models")
            .replace("@PORT@", "8080")
            .replace("@PORT_NOTE@", "");
        let c = config::parse(&text, &dir.path().join(config::FILE_NAME)).unwrap();
        assert_eq!(c.service.port, 8080);
        assert_eq!(
            c.model.as_ref().unwrap().path,
            "mlflow/models/demo/{version}"
        );
    }
}
