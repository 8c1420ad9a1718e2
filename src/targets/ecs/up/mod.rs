//! `up` on ECS: converge the stack (network, security groups, load balancer, roles, log group,
//! cluster), register a revision when something changed, and create or update the service. A
//! plan runs the same steps with nothing changed, so it shows what `up` would do.

use super::domain::{self, alias, Zone};
use super::load_balancer;
use super::network::{self, Network};
use super::service::{self, ServiceSpec};
use super::task_definition::{self, ReleaseTags};
use super::{
    autoscaling, iam, promote, release_command, security, stack, workers, Converge, EcsDeployed,
};
use crate::config::{Config, TargetKind};
use crate::image::health_check::ReadyCommand;
use crate::image::platform::FARGATE_ARM64;
use crate::lock;
use crate::reports::up::{EcsUp, UpOn, UpReport};
use crate::session::Ctx;
use crate::targets::{Action, Change, Deploy};

mod image;
mod template;
mod worker_images;

use image::{image_beside_stack, planned_image};
use template::{accept_platform, architecture_for, task_inputs};
pub use template::{prepare, Template};

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
        &config.all_secrets().collect::<Vec<_>>(),
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
    let worker_images = match deploy.promoted {
        Some(from) => {
            super::promote_workers::ensure(aws, config, from, dry_run, &mut changes, printer)
                .await?
        }
        None => worker_images::worker_images(ctx, aws, &template, dry_run, &mut changes).await?,
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
        deploy.model.map(|m| m.path.clone()),
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
        registry: deploy.model.and_then(|m| m.registry.clone()),
        model_path: deploy.model.map(|m| m.path.clone()),
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
    let subnets: Vec<String> = net
        .task_subnet_ids
        .iter()
        .map(|s| cv.text(s, "subnet"))
        .collect::<anyhow::Result<_>>()?;
    let security_groups: Vec<String> =
        std::iter::once(cv.text(&groups.tasks, "tasks' security group")?)
            .chain(config.security_groups.iter().cloned())
            .collect();
    if let Some(command) = config.deploy.release_command.as_deref() {
        let cluster_name = cv.text(&cluster, "cluster")?;
        let release = release_command::Release {
            command,
            task_definition: td.known(),
            serving: serving.as_deref(),
            force: deploy.force,
            cluster: &cluster_name,
            subnets: &subnets,
            security_groups: &security_groups,
            public_ip: net.public_ip,
            until,
        };
        release_command::run(aws, &cv, printer, &release, &mut changes).await?;
    }
    // With autoscaling (mldeploy's, or one registered by someone else) the desired count is the
    // autoscaler's: `up` sets it for a new service, or raises it to the minimum.
    let scaling = aws.autoscaling();
    let scaled = autoscaling::resource_id(&project, &project);
    let (registered, desired_count) = autoscaling::before_deploy(
        &scaling,
        &scaled,
        existing.as_ref(),
        config.service.autoscaling.as_ref(),
        config.service.desired_count,
    )
    .await?;
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
        desired_count,
        // The groups as ECS wires them now (it swaps them after every blue/green, canary or
        // linear deployment); a rolling service deploys where production traffic goes.
        target: Some(service::LbTarget {
            target_group_arn: wiring.0.clone(),
            container_name: project.clone(),
            container_port: config.service.port,
        }),
        subnets,
        security_groups,
        public_ip: net.public_ip,
        force: deploy.force,
        grace_period: i32::try_from(config.service.health.model_load_time).ok(),
        rollout: Some(rollout),
    };
    let deployed = service::ensure(&ecs, &cv, &service_spec, existing, &mut changes).await?;
    let placement = workers::Placement {
        cluster: service_spec.cluster.clone(),
        cluster_exists: cluster.known().is_some(),
        subnets: service_spec.subnets.clone(),
        security_groups: service_spec.security_groups.clone(),
        public_ip: service_spec.public_ip,
        force: deploy.force,
    };
    let removing = |code: &str, why: &str| {
        printer.info(format!(
            "  waiting to delete a removed worker: AWS says \"{why}\" ({code})"
        ))
    };
    let wait = super::wait::Wait {
        until,
        waiting: &removing,
    };
    let workers = workers::ensure(
        aws,
        &cv,
        config,
        &spec,
        &release,
        &roles,
        &placement,
        &wait,
        &worker_images,
        &mut changes,
    )
    .await?;
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
        "service",
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
        model_path: deploy.model.map(|m| m.path.clone()),
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
            workers,
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
