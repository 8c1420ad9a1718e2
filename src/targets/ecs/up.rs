//! `up` on ECS: converge the stack (network, security groups, load balancer, roles, log group,
//! cluster), register a revision when something changed, and create or update the service. A
//! plan runs the same steps with nothing changed, so it shows what `up` would do.

use super::domain::{self, alias, Zone};
use super::load_balancer;
use super::network::{self, Network};
use super::service::{self, ServiceSpec};
use super::task_definition::{self, ReleaseTags, TaskInputs};
use super::{autoscaling, iam, promote, security, stack, Converge, EcsDeployed};
use crate::config::{Config, ReadyCheckSetting, TargetKind};
use crate::exit::{self, ExitStatus};
use crate::image::health_check::{self, ReadyCommand};
use crate::image::platform::{self, for_fargate, Platform, FARGATE_ARM64, FARGATE_X86_64};
use crate::image::{build, ecr, engine::Engine, push};
use crate::lock;
use crate::model;
use crate::model_fit;
use crate::reports::up::{EcsUp, UpOn, UpReport};
use crate::session::Ctx;
use crate::targets::{Action, Change, Deploy};

/// The task-definition template, read once: checked before any call, rendered by `converge`.
#[derive(Debug)]
pub struct Template {
    text: String,
    /// What errors call it: the project's file, or the built-in one.
    name: String,
}

/// What `up` reads before the lock: the subnets and groups `[network]` names, checked, the
/// hosted zone, checked to hold the domain, and the template.
#[derive(Debug)]
pub struct Checked {
    pub named_network: Option<Network>,
    pub changes: Vec<Change>,
    /// `service.hosted_zone_id`'s zone.
    pub zone: Option<Zone>,
    /// The customer managed KMS keys `service.secrets` are encrypted with.
    pub secret_keys: Vec<String>,
    template: Template,
}

/// Reads the project's template and renders it with placeholder values: one that cannot become
/// a task definition is refused before any call is made. Warns when its container health check
/// would let ECS stop a task still loading its model.
pub fn prepare(config: &Config, printer: &crate::output::Printer) -> anyhow::Result<Template> {
    let (text, name) = read_template(config)?;
    let spec = task_definition::render(&text, &name, &placeholder_inputs(config, None))?;
    if let Some(trap) = loading_trap(&spec, &config.service.health) {
        printer.warn(format!(
            "{name}: {trap}. Raise the health check's startPeriod, interval or retries, or lower service.model_load_time if the model loads faster"
        ));
    }
    Ok(Template { text, name })
}

/// The container health check's trap for a loading task, with ECS's defaults for what the
/// task definition leaves out (interval 30 s, 3 retries, no start period).
fn loading_trap(
    spec: &task_definition::TaskSpec,
    health: &crate::config::Health,
) -> Option<String> {
    let check = spec.container_definitions.first()?.health_check.as_ref()?;
    let seconds =
        |v: Option<i32>, default: u32| v.and_then(|n| u32::try_from(n).ok()).unwrap_or(default);
    health.loading_trap(
        seconds(check.interval, 30),
        seconds(check.retries, 3),
        seconds(check.start_period, 0),
    )
}

/// The template's inputs with placeholder roles, image and model: for checks before any call.
fn placeholder_inputs(config: &Config, image: Option<&Platform>) -> TaskInputs {
    let architecture = image.and_then(Platform::fargate_architecture);
    let mut inputs = task_inputs(
        config,
        format!("{}@sha256:{}", config.project.name, "0".repeat(64)),
        model::path_for(&config.model.path, "0"),
        "arn:aws:iam::000000000000:role/execution".into(),
        "arn:aws:iam::000000000000:role/task".into(),
        "/ecs/check".into(),
        "us-east-1".into(),
        architecture.unwrap_or(FARGATE_X86_64),
    );
    inputs.image_platform = image.cloned();
    inputs
}

/// Refuses, before anything in AWS changes, an image Fargate cannot run: one built for a
/// platform Fargate has no tasks for, or one the template runs on another CPU architecture.
fn accept_platform(
    config: &Config,
    template: &Template,
    image: &str,
    platform: &Platform,
) -> anyhow::Result<()> {
    if platform.fargate_architecture().is_none() {
        return Err(exit::error(
            ExitStatus::Usage,
            format!(
                "{image} is a {platform} image; Fargate runs linux/amd64 and linux/arm64 images only. Build for one of them (image.platform)"
            ),
        ));
    }
    task_definition::render(
        &template.text,
        &template.name,
        &placeholder_inputs(config, Some(platform)),
    )
    .map(|_| ())
}

/// Subnets named in [network] are checked before anything changes, like the model version; so
/// are the hosted zone and the record at the domain, and what `preflight` checks (certificate,
/// secrets, the model bucket's region).
pub async fn check(ctx: &Ctx<'_>, template: Template) -> anyhow::Result<Checked> {
    let config = &ctx.config;
    let mut changes = Vec::new();
    let secret_keys = super::preflight::check(ctx.aws().await?, config, ctx.printer).await?;
    let zone = match (&config.service.hosted_zone_id, &config.service.domain) {
        (Some(id), Some(domain)) => Some(check_domain(ctx, id, domain).await?),
        _ => None,
    };
    if config.subnets.is_empty() {
        return Ok(Checked {
            named_network: None,
            changes,
            zone,
            secret_keys,
            template,
        });
    }
    let aws = ctx.aws().await?;
    let ec2 = aws.ec2();
    let net = network::existing(&ec2, &config.subnets, &mut changes).await?;
    let vpc = net.vpc_id.applied("VPC of network.subnets")?;
    network::egress::check(
        &ec2,
        &aws.region,
        vpc,
        &config.subnets,
        &config.service.secrets,
    )
    .await?;
    security::existing_for_tasks(&ec2, &config.security_groups, vpc, &mut changes).await?;
    Ok(Checked {
        named_network: Some(net),
        changes,
        zone,
        secret_keys,
        template,
    })
}

/// The zone must hold the domain, and a record already at the domain must be the project's or
/// point at its load balancer: both are refused before anything changes.
async fn check_domain(ctx: &Ctx<'_>, zone_id: &str, domain: &str) -> anyhow::Result<Zone> {
    let aws = ctx.aws().await?;
    let r53 = aws.route53();
    let (zone, private) = domain::zone(&r53, zone_id, domain).await?;
    // ACM looks the validation record up in public DNS
    // (https://docs.aws.amazon.com/acm/latest/userguide/dns-validation.html); a private hosted
    // zone answers only inside its VPCs, so a certificate validated through it would stay
    // PENDING_VALIDATION until the --timeout.
    if private && ctx.config.service.certificate_arn.is_none() {
        return Err(crate::exit::error(
            crate::exit::ExitStatus::Usage,
            format!("`service.hosted_zone_id` = {zone_id:?} is a private hosted zone: ACM cannot validate a certificate for {domain} through it (it looks the validation record up in public DNS). Give `service.certificate_arn` (a certificate issued another way, e.g. validated in the public zone of the same name), or use a public hosted zone"),
        ));
    }
    let at = alias::find(&r53, &zone.id, domain).await?;
    let lb = load_balancer::find_alb(&aws.elbv2(), ctx.project())
        .await?
        .as_ref()
        .and_then(alias::Pointee::of);
    alias::refuse_foreign(ctx.project(), domain, &zone, &at, lb.as_ref())?;
    Ok(zone)
}

/// Converges everything and deploys; with `dry_run`, decides the same and changes nothing.
pub async fn converge(
    ctx: &Ctx<'_>,
    deploy: &Deploy<'_>,
    checked: Checked,
    dry_run: bool,
) -> anyhow::Result<(UpReport, EcsDeployed)> {
    let (config, printer) = (&ctx.config, ctx.printer);
    let aws = ctx.aws().await?;
    let project = config.project.name.clone();
    let Checked {
        named_network,
        mut changes,
        zone,
        secret_keys,
        template,
    } = checked;
    let until = std::time::Instant::now() + deploy.flags.timeout;
    let cv = Converge {
        project: project.clone(),
        dry_run,
    };
    let inputs = stack::Inputs {
        aws,
        config,
        printer,
        cv: &cv,
        named_network,
        zone: zone.as_ref(),
        until,
        secret_keys: &secret_keys,
    };
    // The container health check: read from the image that was built here, else what the
    // configuration says (a promoted image passed this check where it was first deployed).
    let mut ready = ReadyCommand::from_setting(&config.service.ready_check);
    let ((image, git_commit, platform), stack) = match deploy.promoted {
        Some(from) => {
            // Its platform was accepted by the environment it serves in; this one's template
            // must run it too, before anything changes.
            accept_platform(config, &template, &from.describe(), &from.platform)?;
            let image =
                promote::ensure_image(aws, config, from, dry_run, &mut changes, printer).await?;
            let stack = stack::ensure(inputs, &stack::Halt::default(), &mut changes).await?;
            (
                (image, from.git_commit.clone(), Some(from.platform.clone())),
                stack,
            )
        }
        None if dry_run => {
            let image = planned_image(aws, config, &template, &mut changes).await?;
            let stack = stack::ensure(inputs, &stack::Halt::default(), &mut changes).await?;
            (image, stack)
        }
        None => {
            let (built, checked, stack) =
                image_beside_stack(ctx, deploy.model, &template, inputs, &mut changes).await?;
            ready = checked;
            (built, stack)
        }
    };
    let stack::Stack {
        net,
        groups,
        lb,
        roles,
        log_group,
        cluster,
    } = stack;
    let domain = config.service.domain.as_deref();
    let ecs = aws.ecs();

    let architecture = architecture_for(config, platform.as_ref());
    let mut inputs = task_inputs(
        config,
        image.clone(),
        deploy.model.path.clone(),
        cv.text(&roles.execution_arn, "execution role")?,
        cv.text(&roles.task_arn, "task role")?,
        log_group,
        aws.region.clone(),
        architecture,
    );
    inputs.image_platform = platform;
    let mut spec = task_definition::render(&template.text, &template.name, &inputs)?;
    spec.set_ready_command(&ready);
    let existing = match cluster.known() {
        Some(cluster) => service::describe(&ecs, cluster, &project).await?,
        None => None,
    };
    let serving = existing
        .as_ref()
        .and_then(|s| s.task_definition().map(str::to_string));
    let release = ReleaseTags {
        model_version: deploy.version.map(str::to_string),
        registry: deploy.model.registry.clone(),
        model_path: deploy.model.path.clone(),
        image: image.clone(),
        git_commit,
        ci_run: lock::ci_run(),
        promoted_from: deploy.promoted.map(promote::Promoted::describe),
    };
    let td = task_definition::ensure_registered(
        &ecs,
        &cv,
        &spec,
        &release,
        serving.as_deref(),
        &mut changes,
    )
    .await?;
    if let Some(changed) = roles.changed_at {
        let settled = changed + crate::aws::clock::scaled(iam::IAM_SETTLE);
        let left = settled.saturating_duration_since(std::time::Instant::now());
        if !left.is_zero() {
            printer.info(format!(
                "Waiting {} s for IAM to make the changed role usable (IAM is eventually consistent; ECS cannot assume a role seconds old)",
                left.as_secs().max(1)
            ));
            tokio::time::sleep(left).await;
        }
    }
    // With autoscaling (mldeploy's, or one registered by someone else) the desired count is the
    // autoscaler's: `up` sets it for a new service, or raises it to the minimum.
    let scaling = aws.autoscaling();
    let scaled = autoscaling::resource_id(&project, &project);
    let registered = match &existing {
        Some(_) => autoscaling::registered(&scaling, &scaled).await?,
        None => None,
    };
    let min_count = config
        .service
        .autoscaling
        .as_ref()
        .map(|a| a.min_count)
        .or_else(|| {
            registered
                .as_ref()
                .map(|r| u32::try_from(r.min_count).unwrap_or(0))
        });
    let mut rollout = rollout(config, &cv, &lb, &roles, deploy.flags.timeout)?;
    let wiring = {
        let primary = cv.text(&lb.target_group_arn, "target group")?;
        let serving = cv.text(&lb.serving_target_group, "target group")?;
        match rollout.shift.as_mut() {
            Some(shift) => {
                let alternate = shift.alternate_target_group_arn.clone();
                let wiring = service::rollout::live_wiring(
                    existing.as_ref(),
                    (&primary, &alternate),
                    &serving,
                );
                shift.alternate_target_group_arn = wiring.1.clone();
                wiring
            }
            None => (serving, String::new()),
        }
    };
    let service_spec = ServiceSpec {
        cluster: cv.text(&cluster, "cluster")?,
        task_definition_arn: cv.text(&td, "task definition")?,
        desired_count: autoscaling::desired_count(
            config.service.desired_count,
            existing.as_ref().map(|s| s.desired_count()),
            min_count,
        ),
        // The groups as ECS wires them now (it swaps them after every blue/green, canary or
        // linear deployment); a rolling service deploys where production traffic goes.
        target_group_arn: wiring.0.clone(),
        container_name: project.clone(),
        container_port: config.service.port,
        subnets: net
            .task_subnet_ids
            .iter()
            .map(|s| cv.text(s, "subnet"))
            .collect::<anyhow::Result<_>>()?,
        security_groups: std::iter::once(cv.text(&groups.tasks, "tasks' security group")?)
            .chain(config.security_groups.iter().cloned())
            .collect(),
        public_ip: net.public_ip,
        force: deploy.force,
        grace_period: i32::try_from(config.service.health.model_load_time).ok(),
        rollout: Some(rollout),
    };
    let deployed = service::ensure(&ecs, &cv, &service_spec, existing, &mut changes).await?;
    if let Some(waited) = deployed.waited_for_iam {
        printer.info(format!(
            "ECS could not use the service's roles for {} yet (IAM is eventually consistent); it could after retries",
            super::watcher::human_duration(waited)
        ));
    }
    // The rules on the listener that no longer forwards go once the service names the new ones.
    if let (false, Some(shift)) = (dry_run, &lb.shift) {
        load_balancer::rules::remove_stale(&aws.elbv2(), &shift.stale).await?;
    }
    let label = match (lb.arn.known(), lb.serving_target_group.known()) {
        (Some(lb), Some(group)) => autoscaling::resource_label(lb, group),
        _ => None,
    };
    autoscaling::ensure(
        &scaling,
        &cv,
        &scaled,
        config.service.autoscaling.as_ref(),
        label,
        registered,
        &mut changes,
    )
    .await?;
    let dns_name = lb.dns_name.to_string();
    let url = load_balancer::url(&dns_name, domain);
    let report = UpReport {
        dry_run,
        target: TargetKind::Ecs,
        url: url.clone(),
        image,
        model_version: deploy.version.map(str::to_string),
        model_path: deploy.model.path.clone(),
        smoke: Vec::new(),
        gate: None,
        promoted_from: release.promoted_from.clone(),
        changes,
        cost: dry_run.then(|| {
            crate::cost::estimate(&crate::cost::Inputs::of(
                config,
                &aws.region,
                architecture == FARGATE_ARM64,
                net.subnet_ids.len(),
                net.task_subnet_ids.len(),
            ))
        }),
        on: UpOn::Ecs(EcsUp {
            task_definition: service_spec.task_definition_arn.clone(),
            cluster: project.clone(),
            service: project,
            deployment_id: deployed.deployment_id.clone(),
            healthy_targets: 0,
        }),
    };
    if !dry_run {
        for c in report.changes.iter().filter(|c| c.action != Action::Keep) {
            printer.info(format!("  {c}"));
        }
    }
    Ok((
        report,
        EcsDeployed {
            spec: service_spec,
            deployed,
            url,
            via: load_balancer::via(&dns_name, domain),
            gated: true,
        },
    ))
}

/// The deployment settings `[deploy]` asks for, with the resources the stack made for them.
fn rollout(
    config: &Config,
    cv: &super::Converge,
    lb: &load_balancer::LoadBalancer,
    roles: &iam::Roles,
    timeout: std::time::Duration,
) -> anyhow::Result<service::Rollout> {
    let shift = match (&lb.shift, &roles.infrastructure_arn) {
        (Some(shift), Some(role)) => Some(service::ShiftResources {
            alternate_target_group_arn: cv
                .text(&shift.alternate_target_group_arn, "alternate target group")?,
            production_rule_arn: cv.text(&shift.production_rule, "production listener rule")?,
            test_rule_arn: cv.text(&shift.test_rule, "test listener rule")?,
            role_arn: cv.text(role, "load balancer infrastructure role")?,
        }),
        _ => None,
    };
    Ok(service::Rollout {
        strategy: config.deploy.strategy,
        bake_minutes: config.deploy.bake_minutes,
        shift,
        hook_timeout_minutes: i32::try_from(timeout.as_secs().div_ceil(60)).unwrap_or(i32::MAX),
    })
}

/// Builds and pushes the image while the stack that does not need it is made, as Terraform
/// walks independent parts of its graph at once: on a first `up` the load balancer, which AWS
/// takes minutes to provision, is on its way while the image builds. The image's platform is
/// accepted before either starts, so a template that cannot run the image changes nothing. When
/// one branch fails the other stops cleanly: the stack after the AWS call under way, the build or
/// push at once (an unfinished push leaves only layers no image names); a re-run converges.
async fn image_beside_stack(
    ctx: &Ctx<'_>,
    model: &model::ModelVersion,
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
            model_fit::check_image(
                &engine,
                &aws.s3(),
                &config.model.bucket,
                model,
                &local,
                printer,
            )
            .await?;
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
async fn ready_command_for(
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

/// The project's task-definition template, or the built-in one, with the name errors use.
fn read_template(config: &Config) -> anyhow::Result<(String, String)> {
    Ok(match &config.service.task_definition_template {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|e| {
                exit::error(
                    ExitStatus::Usage,
                    format!("cannot read {}: {e}", path.display()),
                )
            })?,
            path.display().to_string(),
        ),
        None => (
            task_definition::DEFAULT_TEMPLATE.to_string(),
            task_definition::DEFAULT_TEMPLATE_NAME.to_string(),
        ),
    })
}

#[allow(clippy::too_many_arguments)] // one per template input mldeploy computes
fn task_inputs(
    config: &Config,
    image: String,
    model_path: String,
    execution_role_arn: String,
    task_role_arn: String,
    log_group: String,
    region: String,
    cpu_architecture: &str,
) -> TaskInputs {
    TaskInputs {
        project: config.project.name.clone(),
        container_name: config.project.name.clone(),
        image,
        cpu: config.service.cpu,
        memory: config.service.memory,
        port: config.service.port,
        ready_path: config.service.ready_path.clone(),
        model_bucket: config.model.bucket.clone(),
        model_path,
        environment: config.service.environment.clone(),
        secrets: config.service.secrets.clone(),
        execution_role_arn,
        task_role_arn,
        log_group,
        region,
        cpu_architecture: cpu_architecture.to_string(),
        ready_check: (&config.service.health).into(),
        image_platform: None,
    }
}

/// The Fargate architecture for the image: its own, or, in a plan whose image is not built
/// yet, the one `image.platform` asks for, else Fargate's default (the plan says so).
fn architecture_for(config: &Config, image: Option<&Platform>) -> &'static str {
    image
        .and_then(Platform::fargate_architecture)
        .or_else(|| {
            config
                .image
                .platform
                .as_deref()
                .and_then(Platform::parse)
                .and_then(|p| p.fargate_architecture())
        })
        .unwrap_or(FARGATE_X86_64)
}

/// For a plan: the image `up` would deploy and its platform when it can be known without
/// building or pushing anything (a local image, or ECR's read through the engine).
async fn planned_image(
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
async fn known_platform(
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
