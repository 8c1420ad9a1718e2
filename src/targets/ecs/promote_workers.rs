//! `promote` for workers that run an image of their own (`[workers.<name>.image]`): the image
//! each runs in the source environment goes to the target as it is, by digest (copied into the
//! target's ECR repository like the model API's), so the target runs exactly what was tested.

use std::collections::BTreeMap;

use super::promote::{copy_in, split_image, tag_of, Promoted, Source};
use super::task_definition;
use crate::config::{Config, WorkerImage as Configured};
use crate::exit::{self, ExitStatus};
use crate::output::Printer;
use crate::reports::status::WorkerStatus;
use crate::targets::Change;

/// What a source worker runs.
#[derive(Debug, Clone)]
pub enum WorkerImage {
    /// Built by `up` and pushed to the source's ECR repository: copied by digest.
    Built {
        repository: String,
        digest: String,
        tag: String,
    },
    /// A prebuilt `ref`: run as it is named.
    Named(String),
}

/// The image each worker of `config` with one of its own runs in the environment `env`, read
/// from the revisions `workers` (the source's status, judged healthy) name. A worker without a
/// service there, or whose image ECR no longer holds, cannot be promoted: exit 1 saying to
/// deploy `env` first.
pub async fn serving(
    ecs: &aws_sdk_ecs::Client,
    ecr: &aws_sdk_ecr::Client,
    config: &Config,
    workers: &[WorkerStatus],
    env: &str,
) -> anyhow::Result<BTreeMap<String, WorkerImage>> {
    let mut images = BTreeMap::new();
    for worker in &config.workers {
        let Some(configured) = &worker.image else {
            continue;
        };
        let status = workers.iter().find(|w| w.worker == worker.name);
        let name = status.map_or_else(|| worker.name.clone(), |w| w.service.clone());
        let redeploy = format!("deploy {env} with `mldeploy up --env {env}`, then promote");
        let running = status.and_then(|w| w.task_definition.clone());
        let spec = match &running {
            Some(arn) => task_definition::registered(ecs, arn).await?,
            None => None,
        };
        let Some(image) = spec
            .as_ref()
            .and_then(|s| s.container())
            .map(|c| c.image.clone())
        else {
            return Err(exit::error(
                ExitStatus::Failed,
                format!(
                    "{env} runs no worker {} (service {name}): {redeploy}",
                    worker.name
                ),
            ));
        };
        let found = match configured {
            Configured::Ref(_) => WorkerImage::Named(image),
            Configured::Build(_) => {
                let Some((_, repository, digest)) = split_image(&image) else {
                    return Err(exit::error(
                        ExitStatus::Failed,
                        format!("{env}'s worker {} runs {image:?}, not an ECR image by digest: {redeploy}", worker.name),
                    ));
                };
                let Some(tag) = tag_of(ecr, &repository, &digest).await? else {
                    return Err(exit::error(
                        ExitStatus::Environment,
                        format!("{env}'s worker {} runs {image}, but ECR repository {repository} no longer holds it: {redeploy}", worker.name),
                    ));
                };
                WorkerImage::Built {
                    repository,
                    digest,
                    tag,
                }
            }
        };
        images.insert(worker.name.clone(), found);
    }
    Ok(images)
}

/// Every worker of `config` (the environment promoted to) with an image of its own must run in
/// the source: one that does not is exit 2 naming it, before anything changes.
pub fn check(config: &Config, promoted: &Promoted) -> anyhow::Result<()> {
    match config
        .workers
        .iter()
        .find(|w| w.image.is_some() && !promoted.workers.contains_key(&w.name))
    {
        Some(worker) => Err(exit::error(
            ExitStatus::Usage,
            format!(
                "[workers.{}.image]: {} runs no worker {} with an image of its own to promote; deploy this environment with `mldeploy up`",
                worker.name, promoted.env, worker.name
            ),
        )),
        None => Ok(()),
    }
}

/// Each worker's image in this environment, by worker name: the source's, copied by digest
/// into this environment's repository (in a plan, said and not done), or a `ref` as it is.
pub async fn ensure(
    aws: &crate::aws::Aws,
    config: &Config,
    promoted: &Promoted,
    dry_run: bool,
    changes: &mut Vec<Change>,
    printer: &Printer,
) -> anyhow::Result<BTreeMap<String, String>> {
    check(config, promoted)?;
    let mut images = BTreeMap::new();
    for worker in config.workers.iter().filter(|w| w.image.is_some()) {
        let image = match promoted.workers.get(&worker.name) {
            None => continue,
            Some(WorkerImage::Named(image)) => image.clone(),
            Some(WorkerImage::Built {
                repository,
                digest,
                tag,
            }) => {
                let source = Source {
                    repository,
                    digest,
                    tag,
                };
                let name = Some(worker.name.as_str());
                copy_in(
                    aws, config, promoted, &source, name, dry_run, changes, printer,
                )
                .await?
            }
        };
        images.insert(worker.name.clone(), image);
    }
    Ok(images)
}
