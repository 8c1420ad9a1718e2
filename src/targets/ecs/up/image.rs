//! The image of `up`: built and pushed beside the stack (or found, for a promote), its platform
//! accepted and its container health check decided before the task definition is registered.

use super::template::architecture_for;
use super::template::{accept_platform, Template};
use crate::config::{Config, ReadyCheckSetting};
use crate::image::health_check::{self, ReadyCommand};
use crate::image::platform::{self, for_fargate, Platform};
use crate::image::{build, ecr, engine::Engine, push};
use crate::model;
use crate::model_fit;
use crate::session::Ctx;
use crate::targets::ecs::stack;
use crate::targets::{Action, Change};

/// Builds and pushes the image while the stack that does not need it is made, as Terraform
/// walks independent parts of its graph at once: on a first `up` the load balancer, which AWS
/// takes minutes to provision, is on its way while the image builds. The image's platform is
/// accepted before either starts, so a template that cannot run the image changes nothing. When
/// one branch fails the other stops cleanly: the stack after the AWS call under way, the build or
/// push at once (an unfinished push leaves only layers no image names); a re-run converges.
pub(super) async fn image_beside_stack(
    ctx: &Ctx<'_>,
    model: Option<&model::ModelVersion>,
    template: &Template,
    inputs: stack::Inputs<'_>,
    changes: &mut Vec<Change>,
) -> anyhow::Result<(
    (String, Option<String>, Option<Platform>),
    ReadyCommand,
    stack::Stack,
)> {
    let (aws, config, printer) = (inputs.aws, &ctx.config, ctx.printer);
    let engine = Engine::connect().await?;
    let wanted = build::wanted_platform(&engine, config).await?;
    accept_platform(config, template, &config.project.name, &wanted.0)?;
    printer.info(
        "Making the network, load balancer, roles, log group and cluster while the image is built and pushed",
    );
    let halt = stack::Halt::default();
    let accept =
        |image: &str, platform: &Platform| accept_platform(config, template, image, platform);
    let image = async {
        let checked = async {
            let pushed = push::push(&engine, aws, config, printer, false, &accept).await?;
            // The model must load in the image, and the container health check must be able to
            // run in it: checked where the image was built, before anything runs it.
            let local = format!("{}:{}", pushed.repository, pushed.tag);
            model_fit::check_image(&engine, &aws.s3(), config, model, &local, printer).await?;
            let ready = ready_command_for(&engine, &local, config, printer).await?;
            Ok::<_, anyhow::Error>((pushed, ready))
        }
        .await;
        if checked.is_err() {
            halt.set();
        }
        checked
    };
    let stack = stack::ensure(inputs, &halt, changes);
    tokio::pin!(image, stack);
    let (pushed, stack) = tokio::select! {
        pushed = &mut image => (pushed, stack.await),
        made = &mut stack => match made {
            Err(e) => return Err(e),
            Ok(made) => (image.await, Ok(made)),
        },
    };
    let (pushed, ready) = match (pushed, stack.as_ref()) {
        (Err(e), Err(also)) if !also.is::<stack::Halted>() => {
            printer.warn(format!("the stack failed too: {also:#}"));
            Err(e)
        }
        (pushed, _) => pushed,
    }?;
    let stack = stack?;
    Ok((
        (
            format!("{}@{}", pushed.repository, pushed.digest),
            pushed.git_commit,
            Some(pushed.platform),
        ),
        ready,
        stack,
    ))
}

/// The container health check for the image built here (`local`), said when it is not the
/// template's own; exit 2 when none can run in it.
pub(super) async fn ready_command_for(
    engine: &Engine,
    local: &str,
    config: &Config,
    printer: &crate::output::Printer,
) -> anyhow::Result<ReadyCommand> {
    let setting = &config.service.ready_check;
    let decided = health_check::decide_for_image(
        engine,
        local,
        setting,
        config.service.port,
        &config.service.ready_path,
    )
    .await?;
    Ok(match decided {
        None => {
            printer.info(format!(
                "{local} is not on this engine, so whether the container health check can run in it was not checked"
            ));
            ReadyCommand::from_setting(setting)
        }
        Some(ReadyCommand::Exec(command)) if *setting == ReadyCheckSetting::Auto => {
            printer.info(format!(
                "The image has no /bin/sh with wget, curl or python3: the container health check runs {:?} (exec form)",
                command.join(" ")
            ));
            ReadyCommand::Exec(command)
        }
        Some(ReadyCommand::Off) => {
            printer.info(
                "No container health check (service.ready_check = false): the load balancer's check alone judges the tasks",
            );
            ReadyCommand::Off
        }
        Some(ready) => ready,
    })
}

/// For a plan: the image `up` would deploy and its platform when it can be known without
/// building or pushing anything (a local image, or ECR's read through the engine).
pub(super) async fn planned_image(
    aws: &crate::aws::Aws,
    config: &Config,
    template: &Template,
    changes: &mut Vec<Change>,
) -> anyhow::Result<(String, Option<String>, Option<Platform>)> {
    let plan = build::plan(config).await?;
    let client = aws.ecr();
    let repo = ecr::describe(&client, &config.project.name).await?;
    let digest = match &repo {
        Some((uri, _)) => ecr::digest_for_tag(&client, &config.project.name, &plan.tag)
            .await?
            .map(|d| format!("{uri}@{d}")),
        None => None,
    };
    if repo.is_none() {
        changes.push(Change::new(
            "ECR repository",
            &config.project.name,
            Action::Create,
        ));
    }
    let platform = known_platform(&client, &plan.local_ref, digest.as_deref()).await?;
    if let Some(platform) = &platform {
        accept_platform(config, template, &plan.local_ref, platform)?;
    }
    let image = match digest {
        Some(image) => {
            changes.push(Change::new("image", &plan.tag, Action::Keep).because("in ECR already"));
            image
        }
        None => {
            let runs = match &platform {
                Some(p) => p.to_string(),
                None => format!(
                    "{} until it is built",
                    for_fargate(architecture_for(config, None))
                ),
            };
            changes.push(
                Change::new("image", &plan.tag, Action::Create)
                    .because(format!("build and push; {runs}")),
            );
            format!("{}:{}", config.project.name, plan.tag)
        }
    };
    Ok((image, plan.git_commit, platform))
}

/// The platform of the image a plan would deploy, when an engine is there to say: its local
/// copy, or what ECR holds. None without an engine or an image.
pub(super) async fn known_platform(
    ecr_client: &aws_sdk_ecr::Client,
    local_ref: &str,
    remote: Option<&str>,
) -> anyhow::Result<Option<Platform>> {
    let Ok(engine) = Engine::connect().await else {
        return Ok(None);
    };
    if let Some(image) = build::inspect_local(&engine, local_ref).await? {
        return Ok(Platform::of_local(&image));
    }
    let Some(remote) = remote else {
        return Ok(None);
    };
    let login = ecr::registry_login(ecr_client).await?;
    Ok(Some(platform::of_remote(&engine, remote, &login).await?))
}
