//! Teardown, for `destroy`: delete one resource of the inventory (`inventory::find` lists them in
//! the order they must go). Only a resource carrying this project's tag is ever deleted. Deletes
//! wait where AWS needs it (a service draining, a load balancer going, network interfaces
//! releasing a security group) until the deadline.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{service, PROJECT_TAG};
use crate::aws::{call_error, Aws};
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
async fn while_busy<T, E, R, Fut>(
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
async fn until_gone<Fut>(
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
        Kind::Service => {
            let ecs = aws.ecs();
            let cluster = item.name.as_str();
            ecs.update_service()
                .cluster(cluster)
                .service(cluster)
                .desired_count(0)
                .send()
                .await
                .map_err(|e| call_error("ecs:UpdateService", e))?;
            ecs.delete_service()
                .cluster(cluster)
                .service(cluster)
                .force(true)
                .send()
                .await
                .map_err(|e| call_error("ecs:DeleteService", e))?;
            until_gone(&format!("{item} (draining)"), deadline, || async {
                Ok(service::describe(&ecs, cluster, cluster).await?.is_none())
            })
            .await?;
        }
        Kind::Listener => {
            aws.elbv2()
                .delete_listener()
                .listener_arn(id)
                .send()
                .await
                .map_err(|e| call_error("elasticloadbalancing:DeleteListener", e))?;
        }
        Kind::LoadBalancer => {
            let elb = aws.elbv2();
            elb.delete_load_balancer()
                .load_balancer_arn(id)
                .send()
                .await
                .map_err(|e| call_error("elasticloadbalancing:DeleteLoadBalancer", e))?;
            until_gone(&item.to_string(), deadline, || async {
                match elb
                    .describe_load_balancers()
                    .load_balancer_arns(id)
                    .send()
                    .await
                {
                    Ok(out) => Ok(out.load_balancers().is_empty()),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_load_balancer_not_found_exception()) =>
                    {
                        Ok(true)
                    }
                    Err(e) => Err(call_error("elasticloadbalancing:DescribeLoadBalancers", e)),
                }
            })
            .await?;
        }
        Kind::TargetGroup => {
            let elb = aws.elbv2();
            while_busy(deadline, || {
                elb.delete_target_group().target_group_arn(id).send()
            })
            .await
            .map_err(|e| call_error("elasticloadbalancing:DeleteTargetGroup", e))?;
        }
        Kind::TaskDefinition => {
            aws.ecs()
                .deregister_task_definition()
                .task_definition(id)
                .send()
                .await
                .map_err(|e| call_error("ecs:DeregisterTaskDefinition", e))?;
        }
        Kind::Cluster => {
            let ecs = aws.ecs();
            while_busy(deadline, || ecs.delete_cluster().cluster(id).send())
                .await
                .map_err(|e| call_error("ecs:DeleteCluster", e))?;
        }
        Kind::LogGroup => {
            aws.logs()
                .delete_log_group()
                .log_group_name(id)
                .send()
                .await
                .map_err(|e| call_error("logs:DeleteLogGroup", e))?;
        }
        Kind::Role => {
            let iam_client = aws.iam();
            let inline: Vec<_> = crate::all_pages!(
                iam_client.list_role_policies().role_name(id),
                "iam:ListRolePolicies"
            )?;
            for policy in inline.iter().flat_map(|page| page.policy_names()) {
                iam_client
                    .delete_role_policy()
                    .role_name(id)
                    .policy_name(policy)
                    .send()
                    .await
                    .map_err(|e| call_error("iam:DeleteRolePolicy", e))?;
            }
            let attached: Vec<_> = crate::all_pages!(
                iam_client.list_attached_role_policies().role_name(id),
                "iam:ListAttachedRolePolicies"
            )?;
            for policy in attached.iter().flat_map(|page| page.attached_policies()) {
                iam_client
                    .detach_role_policy()
                    .role_name(id)
                    .policy_arn(policy.policy_arn().unwrap_or_default())
                    .send()
                    .await
                    .map_err(|e| call_error("iam:DetachRolePolicy", e))?;
            }
            iam_client
                .delete_role()
                .role_name(id)
                .send()
                .await
                .map_err(|e| call_error("iam:DeleteRole", e))?;
        }
        Kind::SecurityGroup => {
            let ec2 = aws.ec2();
            while_busy(deadline, || ec2.delete_security_group().group_id(id).send())
                .await
                .map_err(|e| call_error("ec2:DeleteSecurityGroup", e))?;
        }
        Kind::Subnet => {
            let ec2 = aws.ec2();
            while_busy(deadline, || ec2.delete_subnet().subnet_id(id).send())
                .await
                .map_err(|e| call_error("ec2:DeleteSubnet", e))?;
        }
        Kind::RouteTable => {
            let ec2 = aws.ec2();
            let tables = ec2
                .describe_route_tables()
                .route_table_ids(id)
                .send()
                .await
                .map_err(|e| call_error("ec2:DescribeRouteTables", e))?;
            for assoc in tables.route_tables().iter().flat_map(|t| t.associations()) {
                if assoc.main() == Some(true) {
                    continue;
                }
                if let Some(assoc_id) = assoc.route_table_association_id() {
                    ec2.disassociate_route_table()
                        .association_id(assoc_id)
                        .send()
                        .await
                        .map_err(|e| call_error("ec2:DisassociateRouteTable", e))?;
                }
            }
            while_busy(deadline, || {
                ec2.delete_route_table().route_table_id(id).send()
            })
            .await
            .map_err(|e| call_error("ec2:DeleteRouteTable", e))?;
        }
        Kind::InternetGateway => {
            let ec2 = aws.ec2();
            if let Some(vpc) = &item.parent {
                while_busy(deadline, || {
                    ec2.detach_internet_gateway()
                        .internet_gateway_id(id)
                        .vpc_id(vpc)
                        .send()
                })
                .await
                .map_err(|e| call_error("ec2:DetachInternetGateway", e))?;
            }
            ec2.delete_internet_gateway()
                .internet_gateway_id(id)
                .send()
                .await
                .map_err(|e| call_error("ec2:DeleteInternetGateway", e))?;
        }
        Kind::Vpc => {
            let ec2 = aws.ec2();
            while_busy(deadline, || ec2.delete_vpc().vpc_id(id).send())
                .await
                .map_err(|e| call_error("ec2:DeleteVpc", e))?;
        }
        Kind::Container | Kind::Image => {
            anyhow::bail!("{item} is the Docker target's: the ECS target does not delete it")
        }
        Kind::Repository => {
            aws.ecr()
                .delete_repository()
                .repository_name(id)
                .force(true)
                .send()
                .await
                .map_err(|e| call_error("ecr:DeleteRepository", e))?;
        }
    }
    Ok(())
}
