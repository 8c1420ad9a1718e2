//! The project's network when `[network]` names no subnets: a VPC, two public subnets in two
//! availability zones, an internet gateway and a route table sending 0.0.0.0/0 to it. Each piece is
//! found by the project tag and created or repaired only where it is missing, so a run that
//! stopped half-way is finished by the next one.

use aws_sdk_ec2::types::{Filter, ResourceType, TagSpecification, Vpc};
use aws_sdk_ec2::Client;

use super::{Converge, Id, PROJECT_TAG};
use crate::aws::tags;
use crate::targets::Change;

pub mod egress;
pub mod endpoints;
mod named;
pub mod nat;
mod routes;
mod subnets;
mod vpc;
pub use named::existing;
use routes::{
    apply_internet_gateway, apply_route_table, plan_internet_gateway, plan_route_table, Way,
};
pub use routes::{delete_internet_gateway, delete_route_table};
pub use subnets::delete as delete_subnet;
use subnets::{create_or_repair_subnet, plan_subnets, two_zones, Tier};
pub use vpc::delete as delete_vpc;
use vpc::ensure_vpc;

pub const VPC_CIDR: &str = "10.0.0.0/16";

/// The network the service runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub vpc_id: Id,
    /// The load balancer's subnets.
    pub subnet_ids: Vec<Id>,
    /// The tasks' subnets: the same, or the private ones.
    pub task_subnet_ids: Vec<Id>,
    /// Whether the tasks get public IPs (in public subnets, to reach ECR).
    pub public_ip: bool,
    /// The private subnets' route table, for the S3 gateway endpoint.
    pub private_route_table: Option<Id>,
}

/// The private route table's name.
pub fn private_table_name(project: &str) -> String {
    format!("{project}-private")
}

fn tagged(kind: ResourceType, project: &str, name: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .tags(tags::ec2("Name", name))
        .tags(tags::ec2(PROJECT_TAG, project))
        .build()
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn project_filter(project: &str) -> Filter {
    tags::ec2_filter(project)
}

/// Finds or creates every piece of the project's network, reporting each in `changes`; with
/// private tasks, their subnets, route table and NAT gateway too (waited for until `until`).
pub async fn ensure(
    ec2: &Client,
    cv: &Converge,
    tasks: crate::config::TasksNetwork,
    until: std::time::Instant,
    changes: &mut Vec<Change>,
) -> anyhow::Result<Network> {
    let project = cv.project.as_str();
    let vpc = ensure_vpc(ec2, cv, changes).await?;
    let zones = two_zones(ec2).await?;
    let existing = match vpc.known() {
        Some(vpc_id) => {
            let pages: Vec<_> = crate::all_pages!(
                ec2.describe_subnets().filters(filter("vpc-id", vpc_id)),
                "ec2:DescribeSubnets"
            )?;
            pages
                .into_iter()
                .flat_map(|p| p.subnets.unwrap_or_default())
                .collect()
        }
        None => Vec::new(),
    };
    let mut used = Vec::new();
    let private = match tasks {
        crate::config::TasksNetwork::Private(_) => {
            plan_subnets(project, &vpc, &zones, &existing, Tier::Private, &mut used)?
        }
        crate::config::TasksNetwork::Public => Vec::new(),
    };
    let mut subnet_ids = Vec::new();
    for planned in plan_subnets(project, &vpc, &zones, &existing, Tier::Public, &mut used)? {
        let id = cv
            .carry_out(planned, changes, |step| {
                create_or_repair_subnet(ec2, project, &vpc, step)
            })
            .await?;
        subnet_ids.push(id);
    }
    let found: Vec<_> = crate::all_pages!(
        ec2.describe_internet_gateways()
            .filters(project_filter(project)),
        "ec2:DescribeInternetGateways"
    )?
    .into_iter()
    .flat_map(|p| p.internet_gateways.unwrap_or_default())
    .collect();
    let planned = plan_internet_gateway(project, &vpc, found.first());
    let igw = cv
        .carry_out(planned, changes, |step| {
            apply_internet_gateway(ec2, project, &vpc, step)
        })
        .await?;
    let tables = match vpc.known() {
        Some(vpc_id) => {
            let pages: Vec<_> = crate::all_pages!(
                ec2.describe_route_tables()
                    .filters(filter("vpc-id", vpc_id))
                    .filters(project_filter(project)),
                "ec2:DescribeRouteTables"
            )?;
            pages
                .into_iter()
                .flat_map(|p| p.route_tables.unwrap_or_default())
                .collect()
        }
        None => Vec::new(),
    };
    let private_name = private_table_name(project);
    let named = |name: &str| {
        tables
            .iter()
            .find(|t| crate::aws::tags::value_of(t.tags(), "Name").unwrap_or(project) == name)
    };
    let way = Way::InternetGateway(igw);
    let planned = plan_route_table(project, named(project), &way, &subnet_ids);
    cv.carry_out(planned, changes, |step| {
        apply_route_table(ec2, project, project, &vpc, &way, step)
    })
    .await?;
    let crate::config::TasksNetwork::Private(egress) = tasks else {
        // A NAT gateway of a stack whose tasks were private keeps costing: said in every plan.
        for nat in nat::find(ec2, project).await? {
            changes.push(
                Change::new("NAT gateway", project, crate::targets::Action::Keep).because(format!(
                    "{}, left from network.tasks = \"private\": the tasks no longer use it, it still costs {}; `mldeploy destroy` removes it",
                    nat.nat_gateway_id().unwrap_or_default(),
                    nat::COST
                )),
            );
        }
        return Ok(Network {
            vpc_id: vpc,
            task_subnet_ids: subnet_ids.clone(),
            subnet_ids,
            public_ip: true,
            private_route_table: None,
        });
    };
    let mut task_subnet_ids = Vec::new();
    for planned in private {
        let id = cv
            .carry_out(planned, changes, |step| {
                create_or_repair_subnet(ec2, project, &vpc, step)
            })
            .await?;
        task_subnet_ids.push(id);
    }
    let way = match egress {
        crate::config::Egress::Nat => {
            Way::NatGateway(nat::ensure(ec2, cv, &subnet_ids[0], until, changes).await?)
        }
        crate::config::Egress::Endpoints => Way::Nowhere,
    };
    let planned = plan_route_table(&private_name, named(&private_name), &way, &task_subnet_ids);
    let private_route_table = cv
        .carry_out(planned, changes, |step| {
            apply_route_table(ec2, project, &private_name, &vpc, &way, step)
        })
        .await?;
    Ok(Network {
        vpc_id: vpc,
        subnet_ids,
        task_subnet_ids,
        public_ip: false,
        private_route_table: Some(private_route_table),
    })
}

/// The VPCs that carry the project's tag, all pages read.
pub async fn find_vpcs(ec2: &Client, project: &str) -> anyhow::Result<Vec<Vpc>> {
    let pages: Vec<_> = crate::all_pages!(
        ec2.describe_vpcs().filters(project_filter(project)),
        "ec2:DescribeVpcs"
    )?;
    Ok(pages
        .into_iter()
        .flat_map(|p| p.vpcs.unwrap_or_default())
        .collect())
}
