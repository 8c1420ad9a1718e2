//! The part of the ECS stack that does not depend on the image (certificate, network, security
//! groups, load balancer, domain alias, roles, log group, cluster), converged step by step, so
//! that a first `up` can make it while the image is built and pushed.

use std::sync::atomic::{AtomicBool, Ordering};

use super::domain::{alias, certificate, Zone};
use super::load_balancer::{self, Listening, LoadBalancer};
use super::network::{self, Network};
use super::security::{self, SecurityGroups};
use super::step::Plan;
use super::{cluster, iam, logs, Converge, Id};
use crate::aws::Aws;
use crate::config::{Config, Egress, TasksNetwork};
use crate::model;
use crate::output::Printer;
use crate::targets::Change;

/// What the rest of `up` (task definition, service) builds on.
#[derive(Debug)]
pub struct Stack {
    pub net: Network,
    pub groups: SecurityGroups,
    pub lb: LoadBalancer,
    pub roles: iam::Roles,
    pub log_group: String,
    pub cluster: Id,
}

/// What the stack's steps read: the project, its checked network and zone, and how long `up`
/// may take.
pub struct Inputs<'a> {
    pub aws: &'a Aws,
    pub config: &'a Config,
    pub printer: &'a Printer,
    pub cv: &'a Converge,
    pub named_network: Option<Network>,
    pub zone: Option<&'a Zone>,
    pub until: std::time::Instant,
    /// The customer managed KMS keys `service.secrets` are encrypted with (the preflight's).
    pub secret_keys: &'a [String],
}

/// Set by the branch running beside the stack when it fails: the stack finishes the step under
/// way (an AWS call is not cut in half) and starts no other.
#[derive(Debug, Default)]
pub struct Halt(AtomicBool);

impl Halt {
    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.0.load(Ordering::SeqCst) {
            anyhow::bail!(Halted);
        }
        Ok(())
    }
}

/// The stack stopped between two steps because the branch beside it failed.
#[derive(Debug)]
pub struct Halted;

impl std::fmt::Display for Halted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped between two steps because the image failed")
    }
}

impl std::error::Error for Halted {}

/// Converges the stack, one step after the other, checking `halt` between them.
pub async fn ensure(
    input: Inputs<'_>,
    halt: &Halt,
    changes: &mut Vec<Change>,
) -> anyhow::Result<Stack> {
    let Inputs {
        aws,
        config,
        printer,
        cv,
        named_network,
        zone,
        until,
        secret_keys,
    } = input;
    // A requested certificate validates while the network is made; the listener waits for it.
    let domain = config.service.domain.as_deref();
    let (certificate, pending) = match (&config.service.certificate_arn, zone, domain) {
        (Some(arn), _, _) => (Some(Id::Known(arn.clone())), false),
        (None, Some(zone), Some(domain)) => {
            let (id, pending) =
                certificate::ensure(&aws.acm(), &aws.route53(), cv, domain, zone, until, changes)
                    .await?;
            (Some(id), pending)
        }
        _ => (None, false),
    };
    halt.check()?;
    let ec2 = aws.ec2();
    let net = match named_network {
        Some(net) => net,
        None => network::ensure(&ec2, cv, config.tasks_network, until, changes).await?,
    };
    halt.check()?;
    let listening = Listening {
        container_port: config.service.port,
        health_check_path: &config.service.health_check_path,
        certificate,
        health: config.service.health,
        strategy: config.deploy.strategy,
        internal: config.internal_load_balancer,
    };
    let groups = security::ensure(
        &ec2,
        cv,
        &net.vpc_id,
        &listening.ports(),
        &config.allow_from,
        config.service.port,
        config.tasks_network == TasksNetwork::Private(Egress::Endpoints),
        changes,
    )
    .await?;
    if let (Some(group), Some(table)) = (&groups.endpoints, &net.private_route_table) {
        let services = network::endpoints::services(config.all_secrets());
        let at = network::endpoints::Placement {
            region: &aws.region,
            vpc: &net.vpc_id,
            route_table: table,
            subnets: &net.task_subnet_ids,
            group,
        };
        network::endpoints::ensure(&ec2, cv, &at, &services, changes).await?;
    }
    let endpoints_vpc = match (&groups.endpoints, cv.dry_run) {
        (Some(_), false) => net.vpc_id.known().map(str::to_string),
        _ => None,
    };
    halt.check()?;
    // From the load balancer on, the stack is a plan value: decided first (reads only), then
    // carried out in order, each step reading the ids of what an earlier one created.
    let (acm, elb, r53) = (aws.acm(), aws.elbv2(), aws.route53());
    let (iam_client, logs_client, ecs) = (aws.iam(), aws.logs(), aws.ecs());
    let mut plan = Plan::default();
    if let (Some(Id::Known(arn)), true, Some(zone), Some(domain)) =
        (&listening.certificate, pending, zone, domain)
    {
        let acm = &acm;
        plan.then(move || async move {
            printer.info(format!(
                "Waiting for ACM to issue the certificate for {domain} (validated through its DNS record in zone {}; on AWS this takes minutes)",
                zone.name
            ));
            certificate::issued(acm, arn, domain, zone, until).await
        });
    }
    let lb = load_balancer::decide(&elb, &cv.project, &net, &groups, &listening, &mut plan).await?;
    let secrets: Vec<_> = config
        .all_secrets()
        .filter_map(|arn| crate::config::secret_resource(arn))
        .collect();
    if let (Some(zone), Some(domain)) = (zone, domain) {
        let lb_at = (lb.dns_name.clone(), lb.canonical_zone_id.clone());
        alias::decide(&r53, &cv.project, zone, domain, lb_at, &mut plan).await?;
    }
    let mut roles = iam::decide(
        &iam_client,
        &cv.project,
        &aws.region,
        config
            .model
            .as_ref()
            .map(|m| (m.bucket.as_str(), model::prefix_of(&m.path))),
        &secrets,
        secret_keys,
        &worker_pulls(config),
        config.deploy.strategy.shifts_traffic(),
        &config
            .workers
            .iter()
            .map(|w| iam::WorkerRole {
                worker: w.name.clone(),
                reads_model: w.model,
            })
            .collect::<Vec<_>>(),
        &mut plan,
    )
    .await?;
    let retention = config.service.log_retention_days;
    let log_group = logs::decide(&logs_client, &cv.project, retention, &mut plan).await?;
    let cluster = cluster::decide(&ecs, &cv.project, &mut plan).await?;
    changes.extend(match cv.dry_run {
        true => plan.discard(),
        false => plan.apply_checking(&|| halt.check()).await?,
    });
    if roles.changing && !cv.dry_run {
        roles.changed_at = Some(std::time::Instant::now());
    }
    // Last, so the endpoints provision while the rest is made: a task cannot pull through one
    // that is still pending.
    if let Some(vpc) = endpoints_vpc {
        network::endpoints::wait_available(&ec2, &cv.project, &vpc, until, printer).await?;
        halt.check()?;
    }
    Ok(Stack {
        net,
        groups,
        lb,
        roles,
        log_group,
        cluster,
    })
}

/// The ECR repositories of workers' prebuilt images (`[workers.<name>.image] ref`) beside the
/// project's: the execution role pulls from them too.
fn worker_pulls(config: &crate::config::Config) -> Vec<String> {
    let mut arns: Vec<String> = config
        .workers
        .iter()
        .filter_map(|w| match &w.image {
            Some(crate::config::WorkerImage::Ref(r)) => crate::image::ecr::repository_arn_of(r),
            _ => None,
        })
        .collect();
    arns.sort();
    arns.dedup();
    arns
}
