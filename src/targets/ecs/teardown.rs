//! Teardown, for `destroy`: find every resource of the project under the names DESIGN.md gives
//! and the `mldeploy:project` tag, in the order they must be deleted, and delete one. Only a
//! resource carrying this project's tag is ever deleted: a look-alike is found, reported and left.
//! Deletes wait where AWS needs it (a service draining, a load balancer going, network
//! interfaces releasing a security group) until the deadline.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{iam, logs, releases, security, service, PROJECT_TAG};
use crate::aws::{call_error, tags, Aws};
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

/// Everything of the project's that exists, in deletion order.
pub async fn find(aws: &Aws, project: &str) -> anyhow::Result<Vec<Found>> {
    let (ecs, elb, ec2) = (aws.ecs(), aws.elbv2(), aws.ec2());
    let mut found = Vec::new();

    if let Some(svc) = service::describe(&ecs, project, project).await? {
        let arn = svc.service_arn().unwrap_or_default().to_string();
        let listed = ecs
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .map_err(|e| call_error("ecs:ListTagsForResource", e))?;
        let ours = tags::is_ours(listed.tags(), project);
        found.push(Found::new(Kind::Service, project, arn, ours));
    }

    match elb.describe_load_balancers().names(project).send().await {
        Ok(out) => {
            for lb in out.load_balancers() {
                let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
                let ours = super::load_balancer::is_ours(&elb, &arn, project).await?;
                for l in super::load_balancer::listeners(&elb, &arn).await? {
                    let name = format!(
                        "{}:{}",
                        l.protocol().map(|p| p.as_str()).unwrap_or("?"),
                        l.port().unwrap_or_default()
                    );
                    found.push(Found::new(
                        Kind::Listener,
                        name,
                        l.listener_arn().unwrap_or_default(),
                        ours,
                    ));
                }
                found.push(Found::new(Kind::LoadBalancer, project, arn, ours));
            }
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_load_balancer_not_found_exception()) => {}
        Err(e) => return Err(call_error("elasticloadbalancing:DescribeLoadBalancers", e)),
    }
    match elb.describe_target_groups().names(project).send().await {
        Ok(out) => {
            for tg in out.target_groups() {
                let arn = tg.target_group_arn().unwrap_or_default().to_string();
                let ours = super::load_balancer::is_ours(&elb, &arn, project).await?;
                found.push(Found::new(Kind::TargetGroup, project, arn, ours));
            }
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_target_group_not_found_exception()) => {}
        Err(e) => return Err(call_error("elasticloadbalancing:DescribeTargetGroups", e)),
    }

    for r in releases::list(&ecs, project, None, None).await? {
        let name = service::short_task_definition(&r.release.task_definition).to_string();
        found.push(Found::new(
            Kind::TaskDefinition,
            name,
            r.release.task_definition,
            r.release.ours,
        ));
    }

    let clusters = ecs
        .describe_clusters()
        .clusters(project)
        .include(aws_sdk_ecs::types::ClusterField::Tags)
        .send()
        .await
        .map_err(|e| call_error("ecs:DescribeClusters", e))?;
    for c in clusters
        .clusters()
        .iter()
        .filter(|c| c.status() == Some("ACTIVE"))
    {
        let ours = tags::is_ours(c.tags(), project);
        found.push(Found::new(Kind::Cluster, project, project, ours));
    }

    let log_name = logs::log_group_name(project);
    if logs::find_group(&aws.logs(), &log_name).await?.is_some() {
        #[allow(deprecated)] // ListTagsForResource wants the ARN; this call takes the name.
        let listed = aws
            .logs()
            .list_tags_log_group()
            .log_group_name(&log_name)
            .send()
            .await
            .map_err(|e| call_error("logs:ListTagsLogGroup", e))?;
        let ours = tags::is_ours_map(listed.tags(), project);
        found.push(Found::new(Kind::LogGroup, &log_name, &log_name, ours));
    }

    let iam_client = aws.iam();
    for name in [
        iam::execution_role_name(project),
        iam::task_role_name(project),
    ] {
        match iam_client.get_role().role_name(&name).send().await {
            Ok(out) => {
                let ours = out.role().is_some_and(|r| tags::is_ours(r.tags(), project));
                found.push(Found::new(Kind::Role, &name, &name, ours));
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) => {}
            Err(e) => return Err(call_error("iam:GetRole", e)),
        }
    }

    // The tasks' group first: its rule names the load balancer's group.
    for name in [
        security::tasks_group_name(project),
        security::alb_group_name(project),
    ] {
        let groups = ec2
            .describe_security_groups()
            .filters(Filter::builder().name("group-name").values(&name).build())
            .send()
            .await
            .map_err(|e| call_error("ec2:DescribeSecurityGroups", e))?;
        for g in groups.security_groups() {
            let ours = tags::is_ours(g.tags(), project);
            found.push(Found::new(
                Kind::SecurityGroup,
                &name,
                g.group_id().unwrap_or_default(),
                ours,
            ));
        }
    }

    // The network: only what carries our tag is looked at, so nothing here is a look-alike.
    let ours_filter = || tags::ec2_filter(project);
    let vpcs = ec2
        .describe_vpcs()
        .filters(ours_filter())
        .send()
        .await
        .map_err(|e| call_error("ec2:DescribeVpcs", e))?;
    for vpc in vpcs.vpcs() {
        let vpc_id = vpc.vpc_id().unwrap_or_default().to_string();
        let in_vpc = || Filter::builder().name("vpc-id").values(&vpc_id).build();
        let subnets = ec2
            .describe_subnets()
            .filters(in_vpc())
            .filters(ours_filter())
            .send()
            .await
            .map_err(|e| call_error("ec2:DescribeSubnets", e))?;
        for s in subnets.subnets() {
            let id = s.subnet_id().unwrap_or_default();
            let name = tags::value_of(s.tags(), "Name").unwrap_or(id);
            found.push(Found::new(Kind::Subnet, name, id, true));
        }
        let tables = ec2
            .describe_route_tables()
            .filters(in_vpc())
            .filters(ours_filter())
            .send()
            .await
            .map_err(|e| call_error("ec2:DescribeRouteTables", e))?;
        for t in tables.route_tables() {
            let id = t.route_table_id().unwrap_or_default();
            found.push(Found::new(Kind::RouteTable, project, id, true));
        }
        let gateways = ec2
            .describe_internet_gateways()
            .filters(
                Filter::builder()
                    .name("attachment.vpc-id")
                    .values(&vpc_id)
                    .build(),
            )
            .filters(ours_filter())
            .send()
            .await
            .map_err(|e| call_error("ec2:DescribeInternetGateways", e))?;
        for g in gateways.internet_gateways() {
            let mut item = Found::new(
                Kind::InternetGateway,
                project,
                g.internet_gateway_id().unwrap_or_default(),
                true,
            );
            item.parent = Some(vpc_id.clone());
            found.push(item);
        }
        found.push(Found::new(Kind::Vpc, project, &vpc_id, true));
    }

    let ecr = aws.ecr();
    if let Some((_, arn)) = crate::image::ecr::describe(&ecr, project).await? {
        let listed = ecr
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .map_err(|e| call_error("ecr:ListTagsForResource", e))?;
        let ours = tags::is_ours(listed.tags(), project);
        found.push(Found::new(Kind::Repository, project, project, ours));
    }
    Ok(found)
}

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
            let inline: Vec<_> = iam_client
                .list_role_policies()
                .role_name(id)
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(|e| call_error("iam:ListRolePolicies", e))?;
            for policy in inline.iter().flat_map(|page| page.policy_names()) {
                iam_client
                    .delete_role_policy()
                    .role_name(id)
                    .policy_name(policy)
                    .send()
                    .await
                    .map_err(|e| call_error("iam:DeleteRolePolicy", e))?;
            }
            let attached: Vec<_> = iam_client
                .list_attached_role_policies()
                .role_name(id)
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(|e| call_error("iam:ListAttachedRolePolicies", e))?;
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
