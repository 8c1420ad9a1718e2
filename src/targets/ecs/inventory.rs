//! What `destroy` finds of a project on ECS, in the order it must be deleted: each resource under
//! the name DESIGN.md gives it, looked up by its own module's `find`, with whether it carries the
//! project's tag. A look-alike without the tag is listed so `destroy` can say it left it.

use aws_sdk_ec2::types::Filter;

use super::domain::{alias, certificate};
use super::{cluster, iam, load_balancer, logs, network, releases, security, service};
use crate::aws::{call_error, tags, Aws};
use crate::targets::inventory::{Found, Kind};

/// The project's domain, as mldeploy.toml names it: its record and its certificate are looked
/// for only there.
#[derive(Debug, Clone, Copy)]
pub struct Domain<'a> {
    pub name: Option<&'a str>,
    pub zone_id: Option<&'a str>,
}

/// Everything of the project's that exists, in deletion order.
pub async fn find(
    aws: &Aws,
    project: &str,
    model_path: &str,
    domain: Domain<'_>,
    named_workers: &[String],
) -> anyhow::Result<Vec<Found>> {
    let (ecs, elb, ec2) = (aws.ecs(), aws.elbv2(), aws.ec2());
    let mut found = Vec::new();
    let alb = load_balancer::find_alb(&elb, project).await?;

    // The name first: users stop reaching the service before it goes.
    if let (Some(name), Some(zone_id)) = (domain.name, domain.zone_id) {
        let at = alias::find(&aws.route53(), zone_id, name).await?;
        if alias::anything(&at) {
            let lb_dns = alb.as_ref().and_then(|lb| lb.dns_name());
            let ours = alias::deletable(&at, project, lb_dns);
            let mut item = Found::new(Kind::DnsRecord, name, zone_id, ours);
            item.parent = lb_dns.map(str::to_string);
            found.push(item);
        }
    }

    let cluster = cluster::find(&ecs, project).await?;
    // The workers' services are in the project's cluster, named `<project>-<worker>`, whether or
    // not the file still names them.
    let running = match &cluster {
        Some(_) => super::workers::services_in_cluster(&ecs, project).await?,
        None => Vec::new(),
    };
    // The file's workers too: a destroy that stopped after their services went still finds
    // their revisions and roles.
    let mut workers: Vec<String> = running.iter().chain(named_workers).cloned().collect();
    workers.sort();
    workers.dedup();
    // The autoscaler stops moving the count before the service goes; one registered by
    // someone else (without mldeploy's policy) is listed and left alone.
    for service in std::iter::once(project).chain(running.iter().map(String::as_str)) {
        let scaled = super::autoscaling::resource_id(project, service);
        if let Some(r) = super::autoscaling::registered(&aws.autoscaling(), &scaled).await? {
            found.push(Found::new(
                Kind::Autoscaling,
                format!("{scaled} ({})", r.describe()),
                &scaled,
                r.ours(),
            ));
        }
    }
    for name in std::iter::once(project).chain(running.iter().map(String::as_str)) {
        if let Some(svc) = service::describe(&ecs, project, name).await? {
            let arn =
                crate::aws::returned(svc.service_arn(), "ecs:DescribeServices", "service ARN")?
                    .to_string();
            let ours = service::is_ours(&ecs, &arn, project).await?;
            found.push(Found::new(Kind::Service, name, arn, ours));
        }
    }
    if let Some(lb) = alb {
        let arn = crate::aws::returned(
            lb.load_balancer_arn(),
            "elasticloadbalancing:DescribeLoadBalancers",
            "load balancer ARN",
        )?
        .to_string();
        let ours = load_balancer::is_ours(&elb, &arn, project).await?;
        for l in load_balancer::listeners(&elb, &arn).await? {
            let name = format!(
                "{}:{}",
                l.protocol().map(|p| p.as_str()).unwrap_or("?"),
                l.port().unwrap_or_default()
            );
            let id = crate::aws::returned(
                l.listener_arn(),
                "elasticloadbalancing:DescribeListeners",
                "listener ARN",
            )?;
            found.push(Found::new(Kind::Listener, name, id, ours));
        }
        found.push(Found::new(Kind::LoadBalancer, project, arn, ours));
    }
    // After the listeners, whose rules forward to them (deleting a listener deletes its rules).
    for name in [
        project.to_string(),
        load_balancer::alternate_target_group_name(project),
    ] {
        if let Some(tg) = load_balancer::find_target_group(&elb, &name).await? {
            let arn = crate::aws::returned(
                tg.target_group_arn(),
                "elasticloadbalancing:DescribeTargetGroups",
                "target group ARN",
            )?
            .to_string();
            let ours = load_balancer::is_ours(&elb, &arn, project).await?;
            found.push(Found::new(Kind::TargetGroup, &name, arn, ours));
        }
    }
    // After the listeners: a load balancer's listener keeps its certificate in use.
    if let Some(name) = domain.name {
        for held in certificate::for_domain(&aws.acm(), name, project).await? {
            let mut item = Found::new(Kind::Certificate, name, held.arn, held.ours);
            item.parent = domain.zone_id.map(str::to_string);
            found.push(item);
        }
    }
    for r in releases::list(&ecs, project, model_path, None, None).await? {
        let name = service::short_task_definition(&r.release.task_definition).to_string();
        let (arn, ours) = (r.release.task_definition, r.release.ours);
        found.push(Found::new(Kind::TaskDefinition, name, arn, ours));
    }
    for family in &workers {
        for arn in releases::arns(&ecs, family, None).await? {
            let name = service::short_task_definition(&arn).to_string();
            let ours = super::workers::revision_is_ours(&ecs, &arn, project).await?;
            found.push(Found::new(Kind::TaskDefinition, name, arn, ours));
        }
    }
    if let Some(c) = cluster {
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
    let worker_roles = workers.iter().map(|service| format!("{service}-task"));
    for name in [
        iam::execution_role_name(project),
        iam::task_role_name(project),
        iam::infrastructure_role_name(project),
    ]
    .into_iter()
    .chain(worker_roles)
    {
        if let Some(role) = iam::find_role(&iam_client, &name).await? {
            let ours = tags::is_ours(role.tags(), project);
            found.push(Found::new(Kind::Role, &name, &name, ours));
        }
    }

    // A private tasks' way out goes before the groups and subnets it sits in.
    for vpc in network::find_vpcs(&ec2, project).await? {
        let vpc_id = crate::aws::returned(vpc.vpc_id(), "ec2:DescribeVpcs", "VPC id")?;
        for e in network::endpoints::find(&ec2, project, vpc_id).await? {
            let id = crate::aws::returned(
                e.vpc_endpoint_id(),
                "ec2:DescribeVpcEndpoints",
                "endpoint id",
            )?;
            let name = e.service_name().unwrap_or(id);
            found.push(Found::new(Kind::VpcEndpoint, name, id, true));
        }
    }
    for n in network::nat::find(&ec2, project).await? {
        let id = crate::aws::returned(
            n.nat_gateway_id(),
            "ec2:DescribeNatGateways",
            "NAT gateway id",
        )?;
        found.push(Found::new(Kind::NatGateway, project, id, true));
    }
    for a in network::nat::addresses(&ec2, project).await? {
        let id = crate::aws::returned(a.allocation_id(), "ec2:DescribeAddresses", "allocation id")?;
        let name = a.public_ip().unwrap_or(id);
        found.push(Found::new(Kind::Address, name, id, true));
    }

    // The endpoints' and tasks' groups first: their rules name the tasks' and load balancer's.
    for name in [
        security::endpoints_group_name(project),
        security::tasks_group_name(project),
        security::alb_group_name(project),
    ] {
        for g in security::find_groups(&ec2, None, &name).await? {
            let ours = tags::is_ours(g.tags(), project);
            let id = crate::aws::returned(
                g.group_id(),
                "ec2:DescribeSecurityGroups",
                "security group id",
            )?;
            found.push(Found::new(Kind::SecurityGroup, &name, id, ours));
        }
    }

    for vpc in network::find_vpcs(&ec2, project).await? {
        let vpc_id = crate::aws::returned(vpc.vpc_id(), "ec2:DescribeVpcs", "VPC id")?.to_string();
        found.extend(network_of(&ec2, project, &vpc_id).await?);
    }

    let ecr = aws.ecr();
    if let Some((_, arn)) = crate::image::ecr::describe(&ecr, project).await? {
        let ours = crate::image::ecr::has_project_tag(&ecr, &arn, project).await?;
        found.push(Found::new(Kind::Repository, project, project, ours));
    }
    Ok(found)
}

/// A tagged VPC's subnets, route tables and internet gateway, then the VPC. Only what carries
/// the project's tag is looked at, so nothing here is a look-alike.
async fn network_of(
    ec2: &aws_sdk_ec2::Client,
    project: &str,
    vpc_id: &str,
) -> anyhow::Result<Vec<Found>> {
    let mut found = Vec::new();
    let in_vpc = || Filter::builder().name("vpc-id").values(vpc_id).build();
    let subnets: Vec<_> = crate::all_pages!(
        ec2.describe_subnets()
            .filters(in_vpc())
            .filters(tags::ec2_filter(project)),
        "ec2:DescribeSubnets"
    )?;
    for s in subnets.iter().flat_map(|p| p.subnets()) {
        let id = crate::aws::returned(s.subnet_id(), "ec2:DescribeSubnets", "subnet id")?;
        let name = tags::value_of(s.tags(), "Name").unwrap_or(id);
        found.push(Found::new(Kind::Subnet, name, id, true));
    }
    let tables: Vec<_> = crate::all_pages!(
        ec2.describe_route_tables()
            .filters(in_vpc())
            .filters(tags::ec2_filter(project)),
        "ec2:DescribeRouteTables"
    )?;
    for t in tables.iter().flat_map(|p| p.route_tables()) {
        let id = crate::aws::returned(
            t.route_table_id(),
            "ec2:DescribeRouteTables",
            "route table id",
        )?;
        found.push(Found::new(Kind::RouteTable, project, id, true));
    }
    let gateways: Vec<_> = crate::all_pages!(
        ec2.describe_internet_gateways()
            .filters(
                Filter::builder()
                    .name("attachment.vpc-id")
                    .values(vpc_id)
                    .build(),
            )
            .filters(tags::ec2_filter(project)),
        "ec2:DescribeInternetGateways"
    )?;
    for g in gateways.iter().flat_map(|p| p.internet_gateways()) {
        let id = crate::aws::returned(
            g.internet_gateway_id(),
            "ec2:DescribeInternetGateways",
            "internet gateway id",
        )?;
        let mut item = Found::new(Kind::InternetGateway, project, id, true);
        item.parent = Some(vpc_id.to_string());
        found.push(item);
    }
    found.push(Found::new(Kind::Vpc, project, vpc_id, true));
    Ok(found)
}
