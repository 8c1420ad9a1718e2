//! What `up` would do to a Docker host's workers, for `plan`: the same comparison `start`
//! makes (the image, command, environment and model each worker's containers run), with the
//! image the engine has; a worker whose own image is not built yet would be started anew.

use super::workers::{list, wanted};
use crate::config::{Config, WorkerImage};
use crate::image::build;
use crate::image::engine::Engine;
use crate::targets::{Action, Change};

/// One change per worker: Keep when its running containers already run what the release
/// wants, else Update (started beside the running ones before the model API is replaced).
/// `image` is the project's image the engine has, None when it would be built.
pub async fn planned(
    engine: &Engine,
    config: &Config,
    image: Option<&str>,
    model_path: Option<&str>,
) -> anyhow::Result<Vec<Change>> {
    let existing = match config.workers.is_empty() {
        true => Vec::new(),
        false => list(engine, &config.project.name).await?,
    };
    let mut changes = Vec::new();
    for worker in &config.workers {
        let command = match worker.command.is_empty() {
            true => "the image's command".to_string(),
            false => worker.command.join(" "),
        };
        let update = Change::new("worker", &worker.name, Action::Update).because(format!(
            "{} container(s) running {command}, started before the model API is replaced",
            worker.desired_count
        ));
        let own = match &worker.image {
            None => image.map(str::to_string),
            Some(WorkerImage::Ref(reference)) => Some(reference.clone()),
            Some(WorkerImage::Build(own)) => {
                let plan = build::plan(&config.with_own_image(own)).await?;
                build::inspect_local(engine, &plan.local_ref)
                    .await?
                    .map(|_| plan.local_ref)
            }
        };
        let Some(own) = own else {
            changes.push(update);
            continue;
        };
        let want = wanted(config, worker, &own, model_path);
        let running: Vec<_> = existing
            .iter()
            .filter(|w| w.worker == worker.name && w.running)
            .collect();
        let count = usize::try_from(worker.desired_count).unwrap_or(usize::MAX);
        let same = running.len() == count
            && running
                .iter()
                .all(|w| w.spec.as_deref() == Some(&want.hash));
        changes.push(match same {
            true => Change::new("worker", &worker.name, Action::Keep)
                .because("its containers run this image, command, environment and model"),
            false => update,
        });
    }
    Ok(changes)
}
