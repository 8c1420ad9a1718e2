//! Teardown, for `destroy`: which module deletes each resource of the inventory
//! (`inventory::find` lists them in the order they must go), and the waiting the deletes share
//! (a service draining, a load balancer going, network interfaces releasing a security group),
//! until the deadline. Only a resource carrying this project's tag is ever deleted.

use std::future::Future;
use std::time::Instant;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::PROJECT_TAG;
use super::{cluster, iam, load_balancer, logs, network, security, service, task_definition};
use crate::aws::Aws;
use crate::targets::inventory::{Found, Kind};

/// Error codes that mean "not yet: something still depends on it".
const BUSY: &[&str] = &[
    "DependencyViolation",
    // An Elastic IP address a NAT gateway being deleted still holds.
    "InvalidIPAddress.InUse",
    "ResourceInUse",
    "ResourceInUseException",
    "ClusterContainsServicesException",
    "ClusterContainsTasksException",
];

/// How long a delete may wait, and whom to tell, once, what it waits for.
pub struct Wait<'a> {
    pub until: Instant,
    /// Called with AWS's error code and message the first time a delete has to wait.
    pub waiting: &'a (dyn Fn(&str, &str) + Send + Sync),
}

/// Retries a call while AWS answers that something still depends on the resource (a stopped
/// task's network interface keeps its security group and subnet for minutes), saying so once.
pub async fn while_busy<T, E, R, Fut>(
    wait: &Wait<'_>,
    mut call: impl FnMut() -> Fut,
) -> Result<T, SdkError<E, R>>
where
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata,
{
    let mut said = false;
    loop {
        match call().await {
            Err(e)
                if Instant::now() < wait.until
                    && e.as_service_error()
                        .and_then(|s| s.code())
                        .is_some_and(|c| BUSY.contains(&c)) =>
            {
                if !said {
                    let service = e.as_service_error();
                    let code = service.and_then(|s| s.code()).unwrap_or_default();
                    (wait.waiting)(code, service.and_then(|s| s.message()).unwrap_or(code));
                    said = true;
                }
                tokio::time::sleep(crate::aws::poll::interval()).await
            }
            other => return other,
        }
    }
}

/// Waits until `gone` says so, or the deadline passes (then says what it waited for).
pub async fn until_gone<Fut>(
    what: &str,
    wait: &Wait<'_>,
    mut gone: impl FnMut() -> Fut,
) -> anyhow::Result<()>
where
    Fut: Future<Output = anyhow::Result<bool>>,
{
    while !gone().await? {
        if Instant::now() >= wait.until {
            anyhow::bail!("{what} was still there at the deadline");
        }
        tokio::time::sleep(crate::aws::poll::interval()).await;
    }
    Ok(())
}

/// Deletes one resource (never one without our tag), waiting where AWS needs it.
pub async fn delete(aws: &Aws, project: &str, item: &Found, wait: &Wait<'_>) -> anyhow::Result<()> {
    anyhow::ensure!(item.ours, "{item} lacks the {PROJECT_TAG} tag: not deleted");
    let id = item.id.as_str();
    match item.kind {
        Kind::DnsRecord => {
            let lb_dns = item.parent.as_deref().unwrap_or_default();
            super::domain::alias::delete(&aws.route53(), id, &item.name, project, lb_dns).await
        }
        Kind::Certificate => {
            let zone = item.parent.as_deref();
            super::domain::certificate::delete(&aws.acm(), &aws.route53(), id, zone, wait).await
        }
        // The service is named for the project, and so is its cluster.
        Kind::VpcEndpoint => network::endpoints::delete(&aws.ec2(), id).await,
        Kind::NatGateway => network::nat::delete(&aws.ec2(), id, wait).await,
        Kind::Address => network::nat::release(&aws.ec2(), id, wait).await,
        Kind::Autoscaling => super::autoscaling::deregister(&aws.autoscaling(), id).await,
        Kind::Service => service::delete(&aws.ecs(), project, &item.name, wait).await,
        Kind::Listener => load_balancer::delete_listener(&aws.elbv2(), id).await,
        Kind::LoadBalancer => load_balancer::delete_load_balancer(&aws.elbv2(), id, wait).await,
        Kind::TargetGroup => load_balancer::delete_target_group(&aws.elbv2(), id, wait).await,
        Kind::TaskDefinition => task_definition::deregister(&aws.ecs(), id).await,
        Kind::Cluster => cluster::delete(&aws.ecs(), id, wait).await,
        Kind::LogGroup => logs::delete_group(&aws.logs(), id).await,
        Kind::Role => iam::delete_role(&aws.iam(), id).await,
        Kind::SecurityGroup => security::delete_group(&aws.ec2(), id, wait).await,
        Kind::Subnet => network::delete_subnet(&aws.ec2(), id, wait).await,
        Kind::RouteTable => network::delete_route_table(&aws.ec2(), id, wait).await,
        Kind::InternetGateway => {
            let vpc = item.parent.as_deref();
            network::delete_internet_gateway(&aws.ec2(), id, vpc, wait).await
        }
        Kind::Vpc => network::delete_vpc(&aws.ec2(), id, wait).await,
        Kind::Repository => crate::image::ecr::delete_repository(&aws.ecr(), id).await,
        Kind::Container | Kind::Image | Kind::Network | Kind::Volume => {
            anyhow::bail!("{item} is the Docker target's: the ECS target does not delete it")
        }
    }
}
