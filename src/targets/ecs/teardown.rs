//! Teardown, for `destroy`: which module deletes each resource of the inventory
//! (`inventory::find` lists them in the order they must go), and the waiting the deletes share
//! (a service draining, a load balancer going, network interfaces releasing a security group),
//! until the deadline. Only a resource carrying this project's tag is ever deleted.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::PROJECT_TAG;
use super::{cluster, iam, load_balancer, logs, network, security, service, task_definition};
use crate::aws::Aws;
use crate::targets::inventory::{Found, Kind};

/// Pause between tries of a delete that waits for a dependency to go.
const POLL: Duration = Duration::from_secs(2);

/// Error codes that mean "not yet: something still depends on it".
const BUSY: &[&str] = &[
    "DependencyViolation",
    "ResourceInUse",
    "ResourceInUseException",
    "ClusterContainsServicesException",
    "ClusterContainsTasksException",
];

/// Retries a call while AWS answers that something still depends on the resource.
pub async fn while_busy<T, E, R, Fut>(
    deadline: Instant,
    mut call: impl FnMut() -> Fut,
) -> Result<T, SdkError<E, R>>
where
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata,
{
    loop {
        match call().await {
            Err(e)
                if Instant::now() < deadline
                    && e.as_service_error()
                        .and_then(|s| s.code())
                        .is_some_and(|c| BUSY.contains(&c)) =>
            {
                tokio::time::sleep(POLL).await
            }
            other => return other,
        }
    }
}

/// Waits until `gone` says so, or the deadline passes (then says what it waited for).
pub async fn until_gone<Fut>(
    what: &str,
    deadline: Instant,
    mut gone: impl FnMut() -> Fut,
) -> anyhow::Result<()>
where
    Fut: Future<Output = anyhow::Result<bool>>,
{
    while !gone().await? {
        if Instant::now() >= deadline {
            anyhow::bail!("{what} was still there at the deadline");
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// Deletes one resource (never one without our tag), waiting where AWS needs it.
pub async fn delete(aws: &Aws, item: &Found, deadline: Instant) -> anyhow::Result<()> {
    anyhow::ensure!(item.ours, "{item} lacks the {PROJECT_TAG} tag: not deleted");
    let id = item.id.as_str();
    match item.kind {
        // The service is named for the project, and so is its cluster.
        Kind::Service => service::delete(&aws.ecs(), &item.name, &item.name, deadline).await,
        Kind::Listener => load_balancer::delete_listener(&aws.elbv2(), id).await,
        Kind::LoadBalancer => load_balancer::delete_load_balancer(&aws.elbv2(), id, deadline).await,
        Kind::TargetGroup => load_balancer::delete_target_group(&aws.elbv2(), id, deadline).await,
        Kind::TaskDefinition => task_definition::deregister(&aws.ecs(), id).await,
        Kind::Cluster => cluster::delete(&aws.ecs(), id, deadline).await,
        Kind::LogGroup => logs::delete_group(&aws.logs(), id).await,
        Kind::Role => iam::delete_role(&aws.iam(), id).await,
        Kind::SecurityGroup => security::delete_group(&aws.ec2(), id, deadline).await,
        Kind::Subnet => network::delete_subnet(&aws.ec2(), id, deadline).await,
        Kind::RouteTable => network::delete_route_table(&aws.ec2(), id, deadline).await,
        Kind::InternetGateway => {
            let vpc = item.parent.as_deref();
            network::delete_internet_gateway(&aws.ec2(), id, vpc, deadline).await
        }
        Kind::Vpc => network::delete_vpc(&aws.ec2(), id, deadline).await,
        Kind::Repository => crate::image::ecr::delete_repository(&aws.ecr(), id).await,
        Kind::Container | Kind::Image => {
            anyhow::bail!("{item} is the Docker target's: the ECS target does not delete it")
        }
    }
}
