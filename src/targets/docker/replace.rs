//! How the Docker target replaces a release: the new container first runs as a candidate on an
//! ephemeral port, where `ready_path` and the smoke test are checked; only then is the old one
//! stopped and the new release started on `target.host_port`. Until that point the old container
//! serves untouched; if anything fails it keeps (or goes back to) serving.

use std::collections::HashMap;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::containers::{self, ProjectContainer, Spec};
use crate::config::Config;
use crate::exit::{self, ExitStatus};
use crate::image::engine::Engine;
use crate::model::FromRegistry;
use crate::smoke;
use crate::undo::Undo;

/// The least time the final container gets to answer once it holds the host port.
const CUTOVER_READY: Duration = Duration::from_secs(60);

/// The new release's container, first as a candidate on an ephemeral port: the image, the
/// environment (the ECS contract: MODEL_BUCKET_NAME, MODEL_PATH, then `service.environment`),
/// and the labels that make it the project's release and say what it serves, a hash of the
/// environment among them.
pub(crate) fn candidate(
    config: &Config,
    image: &str,
    model_path: Option<&str>,
    version: Option<&str>,
    registry: Option<&FromRegistry>,
    release: u32,
) -> Spec {
    let mut env = Vec::new();
    if let (Some(model), Some(path)) = (&config.model, model_path) {
        env.push(format!("MODEL_BUCKET_NAME={}", model.bucket));
        env.push(format!("MODEL_PATH={path}"));
    }
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
        (containers::PROJECT_LABEL.to_string(), project.to_string()),
        (containers::RELEASE_LABEL.to_string(), release.to_string()),
        (containers::ENV_LABEL.to_string(), env_hash),
    ]);
    if let Some(path) = model_path {
        labels.insert(containers::MODEL_PATH_LABEL.to_string(), path.to_string());
    }
    if let Some(v) = version {
        labels.insert(containers::MODEL_VERSION_LABEL.to_string(), v.to_string());
    }
    if let Some(r) = registry {
        labels.insert(containers::REGISTRY_MODEL_LABEL.to_string(), r.name.clone());
        if let Some(alias) = &r.alias {
            labels.insert(containers::MODEL_ALIAS_LABEL.to_string(), alias.clone());
        }
    }
    Spec {
        name: format!("{project}-{release}-candidate"),
        image: image.to_string(),
        env,
        labels,
        container_port: config.service.port,
        host_port: None,
        network: None,
        restart: false,
        log: containers::log_config(&config.target),
    }
}

/// Replaces the serving release with `spec`: behind the proxy (`cutover`) unless
/// `target.proxy` = false, else in place on the host port; then removes the images no kept
/// release uses.
pub(crate) async fn replace(
    engine: &Engine,
    config: &Config,
    spec: Spec,
    existing: &[ProjectContainer],
    timeout: Duration,
    printer: &crate::output::Printer,
) -> anyhow::Result<Option<crate::gate::GateReport>> {
    let gate = match &config.target.proxy_image {
        Some(image) => {
            super::cutover::replace(engine, config, image, spec, existing, timeout, printer).await?
        }
        None => {
            in_place(engine, config, spec, existing, timeout, printer).await?;
            None
        }
    };
    let pruned = containers::prune_images(engine, &config.project.name).await?;
    if !pruned.is_empty() {
        printer.info(format!(
            "Removed {} image(s) no kept release uses: {}",
            pruned.len(),
            pruned.join(", ")
        ));
    }
    Ok(gate)
}

/// What a release runs: its image and model (for the workers) and its number.
pub(crate) struct Release<'a> {
    pub image: &'a str,
    /// The workers' own images (`workers::own_images`), by worker name.
    pub own_images: &'a std::collections::BTreeMap<String, String>,
    pub model_path: Option<&'a str>,
    pub number: u32,
}

/// Carries a release out: its workers are started beside the running ones and must stay up,
/// then the model API is replaced by `spec` (None: it already serves); when that fails, the
/// started workers are taken back and the old ones never stopped. Once it serves, the old
/// workers stop. Returns the model gate's report and what became of each worker.
pub(crate) async fn release(
    engine: &Engine,
    config: &Config,
    release: &Release<'_>,
    spec: Option<(Spec, &[ProjectContainer])>,
    timeout: Duration,
    printer: &crate::output::Printer,
) -> anyhow::Result<(Option<crate::gate::GateReport>, Vec<String>)> {
    let mut rollout = super::workers::start(
        engine,
        config,
        release.image,
        release.own_images,
        release.model_path,
        release.number,
        printer,
    )
    .await?;
    let gate = match spec {
        None => None,
        Some((spec, existing)) => {
            match replace(engine, config, spec, existing, timeout, printer).await {
                Ok(gate) => gate,
                Err(e) => {
                    super::workers::undo(engine, &mut rollout).await;
                    return Err(e);
                }
            }
        }
    };
    super::workers::finish(engine, config, &mut rollout, printer).await?;
    Ok((gate, rollout.describe()))
}

/// Starts `spec` as a candidate, checks it, and moves the host port to it in place of the
/// running containers of `existing`; once the new one answers, the old ones are kept stopped
/// (the newest `target.keep_releases`) or removed. Users' requests fail between the old one stopping
/// and the new one answering on the port.
/// On any failure the old container keeps, or goes back to, serving.
async fn in_place(
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
        .get(containers::RELEASE_LABEL)
        .cloned()
        .unwrap_or_default();
    let serving: Vec<&ProjectContainer> = existing.iter().filter(|c| c.running).collect();
    let url = containers::url(engine, config.target.host_port);
    // The candidate, on a port of the engine's choosing, while the old container serves.
    printer.info(format!("Starting {} from {}", spec.name, spec.image));
    // Each change below records how to take it back if the command is interrupted, before it
    // is made (by name: an interrupt during a start leaves no container behind).
    let undo = Undo::begin();
    {
        let (e, name) = (engine.clone(), spec.name.clone());
        undo.push(format!("removed {}", spec.name), move || async move {
            containers::remove_if_there(&e, &name).await
        });
    }
    let (candidate, port) = containers::start(engine, &spec).await?;
    let candidate_url = containers::url(engine, port);
    let checked = async {
        containers::wait_ready(
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
            None,
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
        undo.finish();
        let lines = containers::last_lines(engine, &candidate).await;
        containers::remove(engine, &candidate).await?;
        return Err(e.context(exit::Classified {
            status: ExitStatus::Failed,
            message: format!(
                "the new container failed its checks and was removed; {keeps}. Its last lines:\n{lines}"
            ),
        }));
    }

    // The cut-over: the old container stops (kept until the new one answers), the new release
    // takes the host port. A proxy from before `target.proxy` = false gives the port up.
    if let Some(proxy) = super::proxy::find(engine, project).await? {
        printer.warn(format!(
            "target.proxy = false: removing the proxy {} so the new release can take port {}",
            super::proxy::container_name(project),
            config.target.host_port
        ));
        containers::remove(engine, &proxy.id).await?;
    }
    for c in &serving {
        // Recorded first: an interrupt while it stops still starts it again.
        let (e, id) = (engine.clone(), c.id.clone());
        undo.push(format!("started {} again", c.name), move || async move {
            containers::start_again(&e, &id).await
        });
        containers::stop(engine, &c.id).await?;
    }
    let final_spec = Spec {
        name: format!("{project}-{release}"),
        host_port: Some(config.target.host_port),
        restart: true,
        ..spec
    };
    {
        let (e, name) = (engine.clone(), final_spec.name.clone());
        undo.push(format!("removed {}", final_spec.name), move || async move {
            containers::remove_if_there(&e, &name).await
        });
    }
    let taken = match containers::start(engine, &final_spec).await {
        Ok((id, _)) => {
            let ready = containers::wait_ready(
                engine,
                &id,
                &url,
                &config.service.ready_path,
                config.service.port,
                CUTOVER_READY.max(timeout),
            )
            .await;
            if ready.is_err() {
                containers::remove(engine, &id).await?;
            }
            ready
        }
        Err(e) => Err(e),
    };
    undo.finish();
    if let Err(e) = taken {
        for c in &serving {
            containers::start_again(engine, &c.id).await?;
        }
        containers::remove(engine, &candidate).await?;
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
    containers::remove(engine, &candidate).await?;
    containers::keep_newest(engine, existing, config.target.keep_releases).await
}
