//! Workers on a Docker host: each `[workers.<name>]` as `desired_count` containers of the
//! release's image with the worker's command and environment, on the project's network (the
//! proxy's; Docker's default bridge without it), restarted unless stopped, publishing no port.
//! A release starts the workers that changed beside the ones running and, once they stay up,
//! stops the old ones (kept stopped, like replaced releases, for `rollback`); a worker that
//! does not stay up is removed and the old ones never stopped.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use sha2::{Digest, Sha256};

use super::containers::{self, PROJECT_LABEL, RELEASE_LABEL, ROLE_LABEL};
use crate::config::{Config, Worker, WorkerImage};
use crate::exit::{self, ExitStatus};
use crate::image::build;
use crate::image::engine::{engine_error, Engine};
use crate::output::Printer;

/// A worker container's role: `containers::containers` leaves it out (it is not a release).
pub const WORKER_ROLE: &str = "worker";
/// Which `[workers.<name>]` a container runs.
pub const WORKER_LABEL: &str = "mldeploy.worker";
/// A hash of what the container runs (image, command, environment): equal means unchanged.
const SPEC_LABEL: &str = "mldeploy.worker-spec";
/// How long a new worker must stay running, not restarting, to count as started: a worker
/// has no port to ask, so "up and not crash-looping" is its health (as on ECS without a
/// container health check).
const SETTLE: Duration = Duration::from_secs(5);

/// One of the project's worker containers.
#[derive(Debug, Clone)]
pub struct WorkerContainer {
    pub id: String,
    pub name: String,
    pub worker: String,
    /// The image it runs (the release's, or the worker's own).
    pub image: String,
    /// The release of the model API it was started with.
    pub release: u32,
    pub spec: Option<String>,
    pub running: bool,
    /// The engine's state: running, restarting, exited, ...
    pub state: String,
    pub model_path: Option<String>,
}

/// Every worker container of the project, running or not, newest first.
pub async fn list(engine: &Engine, project: &str) -> anyhow::Result<Vec<WorkerContainer>> {
    let found = containers::in_role(engine, project, WORKER_ROLE, "listing the workers").await?;
    let mut workers: Vec<WorkerContainer> = found
        .into_iter()
        .map(|c| {
            let name = containers::name_of(&c);
            let labels = c.labels.unwrap_or_default();
            let state = c.state.map(|s| s.to_string()).unwrap_or_default();
            WorkerContainer {
                id: c.id.unwrap_or_default(),
                name,
                worker: labels.get(WORKER_LABEL).cloned().unwrap_or_default(),
                image: c.image.unwrap_or_default(),
                release: containers::release_of(&labels),
                spec: labels.get(SPEC_LABEL).cloned(),
                running: state == "running",
                state,
                model_path: labels.get(containers::MODEL_PATH_LABEL).cloned(),
            }
        })
        .collect();
    workers.sort_by_key(|w| std::cmp::Reverse((w.release, sequence(&w.name))));
    Ok(workers)
}

/// The number a worker container's name ends with (`<project>-<worker>-<n>`).
fn sequence(name: &str) -> u32 {
    name.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// What a release's worker runs.
pub(super) struct Wanted<'a> {
    worker: &'a Worker,
    env: Vec<String>,
    model_path: Option<&'a str>,
    pub(super) hash: String,
}

pub(super) fn wanted<'a>(
    config: &Config,
    worker: &'a Worker,
    image: &str,
    model: Option<&'a str>,
) -> Wanted<'a> {
    let model_path = model.filter(|_| worker.model);
    let mut env = Vec::new();
    if let (Some(m), Some(path)) = (&config.model, model_path) {
        env.push(format!("MODEL_BUCKET_NAME={}", m.bucket));
        env.push(format!("MODEL_PATH={path}"));
    }
    env.extend(worker.environment.iter().map(|(k, v)| format!("{k}={v}")));
    let text = format!(
        "{image}\n{}\n{}",
        worker.command.join("\u{0}"),
        env.join("\n")
    );
    let hash = format!("{:x}", Sha256::digest(text.as_bytes()))[..16].to_string();
    Wanted {
        worker,
        env,
        model_path,
        hash,
    }
}

/// What a release did to the workers: what it started (new, or stopped ones started again)
/// and what those replace.
#[derive(Default)]
pub struct Rollout {
    pub started: Vec<Started>,
    pub replaced: Vec<WorkerContainer>,
    /// Workers whose running containers already run what the release wants.
    pub unchanged: Vec<String>,
    /// How an interrupt (Ctrl-C, SIGTERM) takes the started containers back, until the
    /// release is done (`finish`) or taken back (`undo`).
    record: Option<crate::undo::Undo>,
}

impl Rollout {
    /// What became of each worker, for the report.
    pub fn describe(&self) -> Vec<String> {
        let started = self
            .started
            .iter()
            .map(|s| format!("{}: started {}", s.worker, s.name));
        let unchanged = self.unchanged.iter().map(|w| format!("{w}: unchanged"));
        started.chain(unchanged).collect()
    }
}

#[derive(Debug)]
pub struct Started {
    pub worker: String,
    pub id: String,
    pub name: String,
    /// A kept container started again (stopped when the release is undone), not a new one.
    pub again: bool,
}

/// Starts the workers whose containers would change with `image` (or their own, in `own`) and
/// `model_path` (release `release`), beside the running ones, and waits until they stay up. A
/// worker that does not: everything started is taken back and the error (exit 1) names it,
/// with its last lines.
pub async fn start(
    engine: &Engine,
    config: &Config,
    image: &str,
    own: &BTreeMap<String, String>,
    model_path: Option<&str>,
    release: u32,
    printer: &Printer,
) -> anyhow::Result<Rollout> {
    let project = config.project.name.as_str();
    let existing = list(engine, project).await?;
    let mut rollout = Rollout::default();
    if config.workers.is_empty() {
        return Ok(rollout);
    }
    let record = crate::undo::Undo::begin();
    let network = match config.target.proxy_image {
        Some(_) => Some(super::proxy::ensure_network(engine, project).await?),
        None => None,
    };
    let mut next = existing
        .iter()
        .map(|w| sequence(&w.name))
        .max()
        .unwrap_or(0)
        + 1;
    for worker in &config.workers {
        let image = own.get(&worker.name).map_or(image, String::as_str);
        let want = wanted(config, worker, image, model_path);
        let mine = |w: &&WorkerContainer| w.worker == worker.name;
        let running: Vec<&WorkerContainer> =
            existing.iter().filter(mine).filter(|w| w.running).collect();
        let count = usize::try_from(worker.desired_count).unwrap_or(usize::MAX);
        if running.len() == count
            && running
                .iter()
                .all(|w| w.spec.as_deref() == Some(&want.hash))
        {
            rollout.unchanged.push(worker.name.clone());
            continue;
        }
        // Containers kept from an earlier release that ran the same (a rollback) start again.
        let mut kept = existing
            .iter()
            .filter(mine)
            .filter(|w| !w.running && w.spec.as_deref() == Some(&want.hash));
        for _ in 0..count {
            let started = match kept.next() {
                Some(w) => {
                    // Recorded first: an interrupt while it starts still stops it again.
                    let (e, id) = (engine.clone(), w.id.clone());
                    record.push(
                        format!("stopped worker {} again", w.name),
                        move || async move { containers::stop(&e, &id).await },
                    );
                    if let Err(e) = containers::start_again(engine, &w.id).await {
                        rollout.record = Some(record);
                        undo(engine, &mut rollout).await;
                        return Err(e);
                    }
                    Started {
                        worker: worker.name.clone(),
                        id: w.id.clone(),
                        name: w.name.clone(),
                        again: true,
                    }
                }
                None => {
                    let name = format!("{project}-{}-{next}", worker.name);
                    next += 1;
                    let (e, n) = (engine.clone(), name.clone());
                    record.push(format!("removed worker {name}"), move || async move {
                        containers::remove_if_there(&e, &n).await
                    });
                    let id = create(
                        engine,
                        config,
                        &want,
                        image,
                        release,
                        &name,
                        network.clone(),
                    )
                    .await;
                    let id = match id {
                        Ok(id) => id,
                        Err(e) => {
                            rollout.record = Some(record);
                            undo(engine, &mut rollout).await;
                            return Err(e);
                        }
                    };
                    Started {
                        worker: worker.name.clone(),
                        id,
                        name,
                        again: false,
                    }
                }
            };
            printer.info(format!(
                "Started worker {} ({})",
                started.worker, started.name
            ));
            rollout.started.push(started);
        }
        rollout.replaced.extend(running.into_iter().cloned());
    }
    rollout.record = Some(record);
    if let Err(e) = settle(engine, &rollout).await {
        undo(engine, &mut rollout).await;
        return Err(e);
    }
    Ok(rollout)
}

/// Each worker's own image on the engine (`[workers.<name>.image]`), by worker name: built
/// there like the project's (a build the engine has is used as it is), or, with
/// `target.build = "local"`, built here, pushed to the project's ECR repository under its
/// context's tag and pulled on the host by digest; a `ref` pulled when the engine does not have
/// it. A worker that runs the release's image has none.
pub async fn own_images(
    engine: &Engine,
    ctx: &crate::session::Ctx<'_>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let (config, printer) = (&ctx.config, ctx.printer);
    let mut images = BTreeMap::new();
    for worker in &config.workers {
        let image = match &worker.image {
            None => continue,
            Some(WorkerImage::Ref(reference)) => {
                if build::inspect_local(engine, reference).await?.is_none() {
                    printer.info(format!("Worker {}: pulling {reference}", worker.name));
                    crate::image::pull::pull(engine, reference, None).await?;
                }
                reference.clone()
            }
            Some(WorkerImage::Build(image)) => {
                let own = config.with_own_image(image);
                printer.info(format!("Worker {}: its own image", worker.name));
                if config.target.build_locally {
                    let aws = ctx.aws().await?;
                    super::local_build::build_push_pull(engine, aws, &own, printer)
                        .await?
                        .reference
                } else {
                    let plan = build::plan(&own).await?;
                    match build::inspect_local(engine, &plan.local_ref).await? {
                        Some(_) => plan.local_ref,
                        None => build::build(engine, &own, plan, printer).await?.image,
                    }
                }
            }
        };
        images.insert(worker.name.clone(), image);
    }
    Ok(images)
}

async fn create(
    engine: &Engine,
    config: &Config,
    want: &Wanted<'_>,
    image: &str,
    release: u32,
    name: &str,
    network: Option<String>,
) -> anyhow::Result<String> {
    let mut labels = HashMap::from([
        (PROJECT_LABEL.to_string(), config.project.name.clone()),
        (ROLE_LABEL.to_string(), WORKER_ROLE.to_string()),
        (WORKER_LABEL.to_string(), want.worker.name.clone()),
        (RELEASE_LABEL.to_string(), release.to_string()),
        (SPEC_LABEL.to_string(), want.hash.clone()),
    ]);
    if let Some(path) = want.model_path {
        labels.insert(containers::MODEL_PATH_LABEL.to_string(), path.to_string());
    }
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: (!want.worker.command.is_empty()).then(|| want.worker.command.clone()),
        env: Some(want.env.clone()),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: network,
            restart_policy: Some(containers::restart_policy(true)),
            log_config: Some(containers::log_config(&config.target)),
            ..Default::default()
        }),
        ..Default::default()
    };
    containers::create_and_start(engine, name, body, None).await
}

/// Waits [`SETTLE`] and checks each started container is running and has not restarted.
async fn settle(engine: &Engine, rollout: &Rollout) -> anyhow::Result<()> {
    if rollout.started.is_empty() {
        return Ok(());
    }
    tokio::time::sleep(SETTLE).await;
    for s in &rollout.started {
        let inspect = engine
            .docker
            .inspect_container(&s.id, None)
            .await
            .map_err(|e| engine_error(e, engine, &format!("inspecting worker {}", s.name)))?;
        let restarts = inspect.restart_count.unwrap_or(0);
        let state = inspect.state.unwrap_or_default();
        let running = state.running == Some(true) && state.restarting != Some(true);
        if running && restarts == 0 {
            continue;
        }
        let exit_code = state.exit_code.unwrap_or_default();
        let lines = containers::last_lines(engine, &s.id).await;
        return Err(exit::error(
            ExitStatus::Failed,
            format!(
                "worker {} ({}) did not stay up: it exited with code {exit_code} and restarted {restarts} time(s) in {} s; the release was taken back and the workers before it run on. Its last lines:\n{lines}",
                s.worker,
                s.name,
                SETTLE.as_secs()
            ),
        ));
    }
    Ok(())
}

/// Takes back what `start` did: new containers removed, kept ones stopped again. Best effort:
/// what fails is said by the error that caused the undo.
pub async fn undo(engine: &Engine, rollout: &mut Rollout) {
    for s in &rollout.started {
        let _ = match s.again {
            true => containers::stop(engine, &s.id).await,
            false => containers::remove(engine, &s.id).await,
        };
    }
    if let Some(record) = rollout.record.take() {
        record.finish();
    }
}

/// Once the release serves: stops the containers it replaced, and keeps of each worker only
/// the newest `keep` stopped ones (those of workers no longer in the file are removed).
pub async fn finish(
    engine: &Engine,
    config: &Config,
    rollout: &mut Rollout,
    printer: &Printer,
) -> anyhow::Result<()> {
    // The release serves: from here an interrupt leaves the new workers running.
    if let Some(record) = rollout.record.take() {
        record.finish();
    }
    for old in &rollout.replaced {
        containers::stop(engine, &old.id).await?;
    }
    let mut kept: BTreeMap<&str, usize> = BTreeMap::new();
    let existing = list(engine, &config.project.name).await?;
    for w in &existing {
        let known = config.workers.iter().any(|c| c.name == w.worker);
        let stopped = !w.running || rollout.replaced.iter().any(|r| r.id == w.id);
        if !stopped {
            continue;
        }
        let n = kept.entry(w.worker.as_str()).or_default();
        if known && *n < config.target.keep_releases {
            *n += 1;
            continue;
        }
        containers::remove(engine, &w.id).await?;
        if !known {
            printer.info(format!(
                "Removed {} (worker {} is no longer in the file)",
                w.name, w.worker
            ));
        }
    }
    // A worker removed from the file that still runs: stopped and removed.
    for w in existing.iter().filter(|w| w.running) {
        if !config.workers.iter().any(|c| c.name == w.worker) {
            containers::remove(engine, &w.id).await?;
            printer.info(format!(
                "Removed {} (worker {} is no longer in the file)",
                w.name, w.worker
            ));
        }
    }
    Ok(())
}
