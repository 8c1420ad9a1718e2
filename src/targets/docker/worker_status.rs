//! A Docker host's workers as they run, for `status`, `logs` and `run`: each worker's running
//! containers and why it is not healthy.

use super::workers::{list, WorkerContainer};
use crate::config::Config;
use crate::exit::{self, ExitStatus};
use crate::image::engine::Engine;
use crate::reports::status::DockerWorker;

/// Each worker of the file as it runs: its running containers, and why it is not healthy.
pub async fn status(engine: &Engine, config: &Config) -> anyhow::Result<Vec<DockerWorker>> {
    let existing = list(engine, &config.project.name).await?;
    Ok(config
        .workers
        .iter()
        .map(|worker| {
            let mine: Vec<&WorkerContainer> = existing
                .iter()
                .filter(|w| w.worker == worker.name)
                .collect();
            let running: Vec<&WorkerContainer> =
                mine.iter().copied().filter(|w| w.running).collect();
            let newest = running.first().or(mine.first());
            let reason = match (running.len(), newest) {
                (_, None) => Some("no container: run `mldeploy up`".to_string()),
                (0, Some(w)) => Some(format!("container {} is {}", w.name, w.state)),
                (n, _) if n < usize::try_from(worker.desired_count).unwrap_or(usize::MAX) => {
                    Some(format!("{n} of {} running", worker.desired_count))
                }
                _ => None,
            };
            DockerWorker {
                worker: worker.name.clone(),
                containers: running.iter().map(|w| w.name.clone()).collect(),
                release: newest.map(|w| w.release),
                model_path: newest.and_then(|w| w.model_path.clone()),
                desired: worker.desired_count,
                reason,
            }
        })
        .collect())
}

/// The running container of worker `name` (its newest), for `logs` and `run`.
pub async fn running(
    engine: &Engine,
    project: &str,
    name: &str,
) -> anyhow::Result<WorkerContainer> {
    list(engine, project)
        .await?
        .into_iter()
        .find(|w| w.worker == name && w.running)
        .ok_or_else(|| {
            exit::error(
                ExitStatus::Environment,
                format!("worker {name} of {project} runs no container on this engine: run `mldeploy up` first"),
            )
        })
}
