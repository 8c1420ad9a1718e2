//! `rollback` moves the workers with the model API: each runs what it runs now with the image the
//! model API goes back to and, when it reads the model, the same `MODEL_PATH` (the way the model
//! API's own `--model-version` rollback changes only the model): an existing revision of its
//! family that is exactly that, else a new one. Not "the revision it ran back then": a worker
//! revision that ECS completed may have failed mldeploy's checks after (it kept exiting), and
//! its command was the one at fault. A worker already there, or without a service, is left.

use aws_sdk_ecs::types::Service;

use super::releases;
use super::service::{self, short_task_definition, RunningShape};
use super::task_definition::{self, ReleaseTags, TaskSpec};
use super::workers::WorkerDeployed;
use super::Converge;
use crate::config::Config;
use crate::targets::Change;

/// What the model API goes back to: the image and the model path every worker follows.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub image: &'a str,
    pub model_path: Option<&'a str>,
    /// The new revision's tags, when one must be registered.
    pub tags: &'a ReleaseTags,
}

/// One worker's part of the rollback.
#[derive(Debug)]
pub struct Choice {
    pub worker: String,
    pub service_name: String,
    service: Service,
    shape: RunningShape,
    /// The revision it runs now.
    pub from: String,
    wanted: Wanted,
}

#[derive(Debug)]
enum Wanted {
    Existing(String),
    New(Box<TaskSpec>),
}

pub use crate::reports::rollback::WorkerMove;

impl Choice {
    pub fn describe(&self) -> WorkerMove {
        WorkerMove {
            worker: self.worker.clone(),
            task_definition: match &self.wanted {
                Wanted::Existing(arn) => short_task_definition(arn).to_string(),
                Wanted::New(spec) => format!("{}:(next)", spec.family),
            },
            previous_task_definition: short_task_definition(&self.from).to_string(),
        }
    }
}

/// Each worker of the file whose revision must change for the model API's `target`.
pub async fn choose(
    ecs: &aws_sdk_ecs::Client,
    config: &Config,
    target: &Target<'_>,
) -> anyhow::Result<Vec<Choice>> {
    let project = config.project.name.as_str();
    let mut choices = Vec::new();
    for worker in &config.workers {
        let name = worker.service_name(project);
        let Some(svc) = service::describe(ecs, project, &name).await? else {
            continue;
        };
        let from = svc.task_definition().unwrap_or_default().to_string();
        let current =
            releases::describe(ecs, from.clone(), config.model_path_template(), Some(&from))
                .await?;
        // A worker with its own image keeps it: it follows only the model back.
        let mut spec = match worker.image {
            Some(_) => current.spec.clone(),
            None => current.spec.clone().with_image(target.image),
        };
        if let (true, Some(path)) = (worker.model, target.model_path) {
            spec = spec.with_env("MODEL_PATH", path);
        }
        if spec == current.spec {
            continue;
        }
        let revisions =
            releases::list(ecs, &name, config.model_path_template(), Some(&from), None).await?;
        let wanted = match revisions.iter().find(|r| r.spec == spec) {
            Some(r) => Wanted::Existing(r.release.task_definition.clone()),
            None => Wanted::New(Box::new(spec)),
        };
        choices.push(Choice {
            worker: worker.name.clone(),
            service_name: name,
            shape: RunningShape::of(&svc)?,
            service: svc,
            from,
            wanted,
        });
    }
    Ok(choices)
}

/// Registers each new revision and points each worker's service at its revision.
pub async fn apply(
    ecs: &aws_sdk_ecs::Client,
    cv: &Converge,
    choices: Vec<Choice>,
    tags: &ReleaseTags,
    changes: &mut Vec<Change>,
) -> anyhow::Result<Vec<WorkerDeployed>> {
    let mut deployed = Vec::new();
    for choice in choices {
        let td = match &choice.wanted {
            Wanted::Existing(arn) => arn.clone(),
            Wanted::New(spec) => {
                task_definition::ensure_registered(ecs, cv, spec, tags, None, changes)
                    .await?
                    .applied("worker task definition")?
                    .to_string()
            }
        };
        let spec = choice.shape.spec(&cv.project, &td);
        let done = service::ensure_named(
            ecs,
            cv,
            &choice.service_name,
            &spec,
            Some(choice.service),
            changes,
        )
        .await?;
        deployed.push(WorkerDeployed {
            worker: choice.worker,
            service: choice.service_name,
            spec,
            deployed: done,
        });
    }
    Ok(deployed)
}
