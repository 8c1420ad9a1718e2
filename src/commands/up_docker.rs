//! `mldeploy up` on the Docker-host target: check the model, take the deploy lock, build the image
//! on the engine, start it as a candidate on an ephemeral port, wait for `ready_path` and run the
//! smoke test there, and only then move `target.host_port` to it. Until that point the old
//! container serves untouched; if anything fails it keeps (or goes back to) serving, and `up`
//! exits 1 with the new container's last lines.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::up::{require_model, ModelChoice};
use super::Session;
use crate::cli::UpArgs;
use crate::config::Config;
use crate::exit::{self, ExitStatus};
use crate::image::{build, engine::Engine};
use crate::smoke::{self, SmokeCheck};
use crate::target::docker::{self, ProjectContainer, Spec};

/// The least time the final container gets to answer once it holds the host port.
const CUTOVER_READY: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize)]
pub struct DockerUpReport {
    pub dry_run: bool,
    pub target: &'static str,
    pub url: String,
    pub image: String,
    pub container: String,
    pub release: u32,
    pub model_version: Option<String>,
    pub model_path: String,
    /// The containers this run replaced.
    pub replaced: Vec<String>,
    pub smoke: Vec<SmokeCheck>,
}

impl fmt::Display for DockerUpReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = self
            .model_version
            .as_deref()
            .map(|v| format!("model version {v}"))
            .unwrap_or_else(|| "the model".into());
        if self.dry_run {
            return write!(
                f,
                "Would build {} and run it as {} with {version} ({}) at {}{}. Nothing was changed.",
                self.image,
                self.container,
                self.model_path,
                self.url,
                if self.replaced.is_empty() {
                    String::new()
                } else {
                    format!(", replacing {}", self.replaced.join(", "))
                }
            );
        }
        writeln!(
            f,
            "{} serves {version} ({}) at {}",
            self.container, self.model_path, self.url
        )?;
        write!(
            f,
            "  image {}, release {}, {}, smoke test passed ({} request(s))",
            self.image,
            self.release,
            if self.replaced.is_empty() {
                "nothing replaced".to_string()
            } else {
                format!("replaced {}", self.replaced.join(", "))
            },
            self.smoke.len()
        )
    }
}

pub(crate) async fn run(
    session: &Session<'_>,
    args: &UpArgs,
    config: &Config,
    choice: ModelChoice,
    dry_run: bool,
) -> anyhow::Result<ExitStatus> {
    let printer = session.printer;
    refuse_secrets(config)?;
    let aws = session.aws(config).await?;
    let s3 = aws.s3();
    let (model, version) = require_model(&s3, config, choice, printer).await?;
    let project = config.project.name.as_str();
    let engine = Engine::connect().await?;
    let existing = docker::containers(&engine, project).await?;
    let serving: Vec<&ProjectContainer> = existing.iter().filter(|c| c.running).collect();
    let release = existing.iter().map(|c| c.release).max().unwrap_or(0) + 1;
    let plan = build::plan(config).await?;
    let url = docker::url(&engine, config.target.host_port);

    let mut report = DockerUpReport {
        dry_run,
        target: "docker",
        url: url.clone(),
        image: plan.local_ref.clone(),
        container: format!("{project}-{release}"),
        release,
        model_version: version.clone(),
        model_path: model.path.clone(),
        replaced: serving.iter().map(|c| c.name.clone()).collect(),
        smoke: Vec::new(),
    };
    if dry_run {
        printer.result(&report)?;
        return Ok(ExitStatus::Success);
    }

    let held = session
        .take_lock(&s3, config, "up", args.deploy.force_unlock)
        .await?;
    let built = build::build(&engine, config, plan, printer).await?;
    let timeout = args.deploy.timeout;

    let spec = candidate(
        config,
        &built.image,
        &model.path,
        version.as_deref(),
        release,
    );
    // Nothing changed: the same image, model and environment already serve. Still ask it.
    let unchanged = serving.iter().find(|c| {
        c.image == built.image
            && c.model_path.as_deref() == Some(model.path.as_str())
            && c.env_hash.as_ref() == spec.labels.get(docker::ENV_LABEL)
    });
    if let Some(c) = unchanged {
        printer.info(format!("{} already serves this image and model", c.name));
        report.container = c.name.clone();
        report.release = c.release;
        report.replaced.clear();
    } else {
        replace(&engine, config, spec, &existing, timeout, printer).await?;
    }
    report.smoke = smoke::run(
        &url,
        &config.service.ready_path,
        config.smoke.as_ref(),
        timeout,
        printer,
    )
    .await?;
    held.release().await?;
    printer.result(&report)?;
    Ok(ExitStatus::Success)
}

/// The new release's container, first as a candidate on an ephemeral port: the image, the
/// environment (the ECS contract: MODEL_BUCKET_NAME, MODEL_PATH, then `service.environment`),
/// and the labels that make it the project's release and say what it serves, a hash of the
/// environment among them.
pub(crate) fn candidate(
    config: &Config,
    image: &str,
    model_path: &str,
    version: Option<&str>,
    release: u32,
) -> Spec {
    let mut env = vec![
        format!("MODEL_BUCKET_NAME={}", config.model.bucket),
        format!("MODEL_PATH={model_path}"),
    ];
    env.extend(
        config
            .service
            .environment
            .iter()
            .map(|(k, v)| format!("{k}={v}")),
    );
    let env_hash = format!("{:x}", Sha256::digest(env.join("\n").as_bytes()))[..16].to_string();
    let project = config.project.name.as_str();
    let mut labels = HashMap::from([
        (docker::PROJECT_LABEL.to_string(), project.to_string()),
        (docker::MODEL_PATH_LABEL.to_string(), model_path.to_string()),
        (docker::RELEASE_LABEL.to_string(), release.to_string()),
        (docker::ENV_LABEL.to_string(), env_hash),
    ]);
    if let Some(v) = version {
        labels.insert(docker::MODEL_VERSION_LABEL.to_string(), v.to_string());
    }
    Spec {
        name: format!("{project}-{release}-candidate"),
        image: image.to_string(),
        env,
        labels,
        container_port: config.service.port,
        host_port: None,
        restart: false,
    }
}

/// Secrets are read by ECS for its tasks; a Docker engine has no such reader here.
pub(crate) fn refuse_secrets(config: &Config) -> anyhow::Result<()> {
    if config.service.secrets.is_empty() {
        return Ok(());
    }
    Err(exit::error(
        ExitStatus::Usage,
        "service.secrets needs the ECS target, which reads Secrets Manager and SSM for the task; on the docker target pass values through the engine or service.environment",
    ))
}

/// Starts `spec` as a candidate, checks it, and moves the host port to it in place of the
/// running containers of `existing`; once the new one answers, the old ones are kept stopped
/// (the newest `KEPT_RELEASES`) or removed.
/// On any failure the old container keeps, or goes back to, serving.
pub(crate) async fn replace(
    engine: &Engine,
    config: &Config,
    spec: Spec,
    existing: &[ProjectContainer],
    timeout: Duration,
    printer: &crate::output::Printer,
) -> anyhow::Result<()> {
    let project = config.project.name.as_str();
    let release = spec
        .labels
        .get(docker::RELEASE_LABEL)
        .cloned()
        .unwrap_or_default();
    let serving: Vec<&ProjectContainer> = existing.iter().filter(|c| c.running).collect();
    let url = docker::url(engine, config.target.host_port);
    // The candidate, on a port of the engine's choosing, while the old container serves.
    printer.info(format!("Starting {} from {}", spec.name, spec.image));
    let (candidate, port) = docker::start(engine, &spec).await?;
    let candidate_url = docker::url(engine, port);
    let checked = async {
        docker::wait_ready(
            engine,
            &candidate,
            &candidate_url,
            &config.service.ready_path,
            config.service.port,
            timeout,
        )
        .await?;
        printer.info(format!("{} is ready on port {port}", spec.name));
        smoke::run(
            &candidate_url,
            &config.service.ready_path,
            config.smoke.as_ref(),
            timeout,
            printer,
        )
        .await
    }
    .await;
    let keeps = match serving.first() {
        Some(c) => format!("{} keeps serving", c.name),
        None => "nothing served before".to_string(),
    };
    if let Err(e) = checked {
        let lines = docker::last_lines(engine, &candidate).await;
        docker::remove(engine, &candidate).await?;
        return Err(e.context(exit::Classified {
            status: ExitStatus::Failed,
            message: format!(
                "the new container failed its checks and was removed; {keeps}. Its last lines:\n{lines}"
            ),
        }));
    }

    // The cut-over: the old container stops (kept until the new one answers), the new release
    // takes the host port.
    for c in &serving {
        docker::stop(engine, &c.id).await?;
    }
    let final_spec = Spec {
        name: format!("{project}-{release}"),
        host_port: Some(config.target.host_port),
        restart: true,
        ..spec
    };
    let taken = match docker::start(engine, &final_spec).await {
        Ok((id, _)) => {
            let ready = docker::wait_ready(
                engine,
                &id,
                &url,
                &config.service.ready_path,
                config.service.port,
                CUTOVER_READY.max(timeout),
            )
            .await;
            if ready.is_err() {
                docker::remove(engine, &id).await?;
            }
            ready
        }
        Err(e) => Err(e),
    };
    if let Err(e) = taken {
        for c in &serving {
            docker::start_again(engine, &c.id).await?;
        }
        docker::remove(engine, &candidate).await?;
        let back = match serving.first() {
            Some(c) => format!("{} serves again", c.name),
            None => "nothing serves".to_string(),
        };
        return Err(e.context(exit::Classified {
            status: ExitStatus::Failed,
            message: format!(
                "the new container could not take port {}; {back}",
                config.target.host_port
            ),
        }));
    }
    docker::remove(engine, &candidate).await?;
    // The replaced releases stay, stopped, as what `history` lists and `rollback` goes back to;
    // only the newest few, and never a leftover candidate.
    let mut kept = 0;
    for c in existing {
        if c.name.ends_with("-candidate") || kept >= docker::KEPT_RELEASES {
            docker::remove(engine, &c.id).await?;
        } else {
            kept += 1;
        }
    }
    Ok(())
}
