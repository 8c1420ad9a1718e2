//! Workers' own images (`[workers.<name>.image]`): each built from its context and pushed to the
//! project's ECR repository beside the project's image (a tag of its own: its context's hash),
//! or its prebuilt `ref`, as its task definition names it. Its platform must be the one the
//! task definition runs, like the project's image; in a plan, nothing is built or pushed.

use std::collections::BTreeMap;

use super::image::planned_image;
use super::template::{accept_platform, Template};
use crate::config::WorkerImage;
use crate::image::platform::Platform;
use crate::image::{engine::Engine, push};
use crate::session::Ctx;
use crate::targets::Change;

/// The image each worker with its own runs, by worker name: `<repository>@<digest>` of a build
/// (in a plan, its tag when it is not pushed yet), or its `ref`.
pub(super) async fn worker_images(
    ctx: &Ctx<'_>,
    aws: &crate::aws::Aws,
    template: &Template,
    dry_run: bool,
    changes: &mut Vec<Change>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let config = &ctx.config;
    let mut images = BTreeMap::new();
    let mut engine = None;
    for worker in &config.workers {
        let image = match &worker.image {
            None => continue,
            Some(WorkerImage::Ref(reference)) => reference.clone(),
            Some(WorkerImage::Build(image)) => {
                // The project's build and push, for the worker's image table.
                let own = config.with_own_image(image);
                if dry_run {
                    planned_image(aws, &own, template, changes).await?.0
                } else {
                    if engine.is_none() {
                        engine = Some(Engine::connect().await?);
                    }
                    let Some(engine) = engine.as_ref() else {
                        continue;
                    };
                    ctx.printer
                        .info(format!("Worker {}: its own image", worker.name));
                    let accept = |image: &str, platform: &Platform| {
                        accept_platform(config, template, image, platform)
                    };
                    let pushed = push::push(engine, aws, &own, ctx.printer, false, &accept).await?;
                    format!("{}@{}", pushed.repository, pushed.digest)
                }
            }
        };
        images.insert(worker.name.clone(), image);
    }
    Ok(images)
}
