//! The project's network when `[network]` names no subnets: a VPC, two public subnets in two
//! availability zones, an internet gateway and a route table sending 0.0.0.0/0 to it. Each piece is
//! found by the project tag and created or repaired only where it is missing, so a run that
//! stopped half-way is finished by the next one.

use aws_sdk_ec2::types::{
    AttributeBooleanValue, Filter, ResourceType, TagSpecification, Vpc, VpcAttributeName,
};
use aws_sdk_ec2::Client;

use super::{Converge, PROJECT_TAG};
use crate::aws::call_error;
use crate::aws::tags;
use crate::exit::{self, ExitStatus};
use crate::targets::{Action, Change};

mod named;
pub use named::existing;

pub const VPC_CIDR: &str = "10.0.0.0/16";
/// The id reported for a resource a dry run would create.
pub const TO_BE_CREATED: &str = "(new)";

/// The network the service runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
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

/// Finds or creates every piece of the project's network, reporting each in `changes`.
pub async fn ensure(
    ec2: &Client,
    cv: &Converge,
    changes: &mut Vec<Change>,
) -> anyhow::Result<Network> {
    let project = cv.project.as_str();
    let vpc_id = ensure_vpc(ec2, cv, changes).await?;
    let zones = two_zones(ec2).await?;

    // Subnets: one per zone, each with a /24 of the VPC's range that no other subnet uses.
    let existing = if vpc_id == TO_BE_CREATED {
        Vec::new()
    } else {
        let pages: Vec<_> = crate::all_pages!(
            ec2.describe_subnets().filters(filter("vpc-id", &vpc_id)),
            "ec2:DescribeSubnets"
        )?;
        pages
            .into_iter()
            .flat_map(|p| p.subnets.unwrap_or_default())
            .collect()
    };
    let mut used: Vec<String> = existing
        .iter()
        .filter_map(|s| s.cidr_block().map(str::to_string))
        .collect();
    let mut subnet_ids = Vec::new();
    for zone in &zones {
        let ours = existing.iter().find(|s| {
            s.availability_zone() == Some(zone.as_str()) && tags::is_ours(s.tags(), project)
        });
        let name = format!("{project}-public-{zone}");
        match ours {
            Some(subnet) => {
                let id = subnet.subnet_id().unwrap_or_default().to_string();
                if subnet.map_public_ip_on_launch() == Some(true) {
                    changes.push(Change::new("subnet", &name, Action::Keep).because(&id));
                } else {
                    if !cv.dry_run {
                        map_public_ips(ec2, &id).await?;
                    }
                    changes.push(
                        Change::new("subnet", &name, Action::Update)
                            .because("assign public IPs on launch"),
                    );
                }
                subnet_ids.push(id);
            }
            None => {
                let cidr = (0..=255u8)
                    .map(|i| format!("10.0.{i}.0/24"))
                    .find(|c| !used.contains(c))
                    .ok_or_else(|| {
                        exit::error(
                            ExitStatus::Failed,
                            format!("VPC {vpc_id} has no free /24 left for a subnet"),
                        )
                    })?;
                used.push(cidr.clone());
                let id = if cv.dry_run {
                    TO_BE_CREATED.to_string()
                } else {
                    let out = ec2
                        .create_subnet()
                        .vpc_id(&vpc_id)
                        .cidr_block(&cidr)
                        .availability_zone(zone)
                        .tag_specifications(tagged(ResourceType::Subnet, project, &name))
                        .send()
                        .await
                        .map_err(|e| call_error("ec2:CreateSubnet", e))?;
                    let id = out.subnet.and_then(|s| s.subnet_id).unwrap_or_default();
                    map_public_ips(ec2, &id).await?;
                    id
                };
                changes.push(
                    Change::new("subnet", &name, Action::Create)
                        .because(format!("{cidr} in {zone}")),
                );
                subnet_ids.push(id);
            }
        }
    }

    let igw_id = ensure_internet_gateway(ec2, cv, &vpc_id, changes).await?;
    ensure_route_table(ec2, cv, &vpc_id, &igw_id, &subnet_ids, changes).await?;
    Ok(Network { vpc_id, subnet_ids })
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

async fn ensure_vpc(
    ec2: &Client,
    cv: &Converge,
    changes: &mut Vec<Change>,
) -> anyhow::Result<String> {
    let project = cv.project.as_str();
    let found = find_vpcs(ec2, project).await?;
    let mut ids: Vec<String> = found
        .iter()
        .filter_map(|v| v.vpc_id().map(str::to_string))
        .collect();
    ids.sort();
    if let Some(id) = ids.first() {
        changes.push(Change::new("VPC", project, Action::Keep).because(id));
        // A run that lost AWS right after creating the VPC never turned its DNS on. Both are
        // read at once: this runs on every `up`.
        let attributes = [
            VpcAttributeName::EnableDnsSupport,
            VpcAttributeName::EnableDnsHostnames,
        ];
        let on = futures_util::future::try_join_all(
            attributes.iter().map(|a| dns_attribute(ec2, id, a.clone())),
        )
        .await?;
        for (attribute, on) in attributes.into_iter().zip(on) {
            if !on {
                changes.push(
                    Change::new("VPC DNS", project, Action::Update)
                        .because(format!("{} was off", attribute.as_str())),
                );
                if !cv.dry_run {
                    enable_dns(ec2, id, attribute).await?;
                }
            }
        }
        return Ok(id.clone());
    }
    changes.push(Change::new("VPC", project, Action::Create).because(VPC_CIDR));
    if cv.dry_run {
        return Ok(TO_BE_CREATED.to_string());
    }
    let vpc = ec2
        .create_vpc()
        .cidr_block(VPC_CIDR)
        .tag_specifications(tagged(ResourceType::Vpc, project, project))
        .send()
        .await
        .map_err(|e| call_error("ec2:CreateVpc", e))?
        .vpc
        .and_then(|v| v.vpc_id)
        .ok_or_else(|| anyhow::anyhow!("ec2:CreateVpc returned no VPC id"))?;
    // Tasks resolve ECR, S3 and CloudWatch by name.
    for attribute in [
        VpcAttributeName::EnableDnsSupport,
        VpcAttributeName::EnableDnsHostnames,
    ] {
        enable_dns(ec2, &vpc, attribute).await?;
    }
    Ok(vpc)
}

/// Whether the VPC's DNS attribute (support or hostnames) is on.
async fn dns_attribute(
    ec2: &Client,
    vpc: &str,
    attribute: VpcAttributeName,
) -> anyhow::Result<bool> {
    let out = ec2
        .describe_vpc_attribute()
        .vpc_id(vpc)
        .attribute(attribute.clone())
        .send()
        .await
        .map_err(|e| call_error("ec2:DescribeVpcAttribute", e))?;
    let value = match attribute {
        VpcAttributeName::EnableDnsHostnames => out.enable_dns_hostnames,
        _ => out.enable_dns_support,
    };
    Ok(value.and_then(|v| v.value).unwrap_or(false))
}

/// Turns the VPC's DNS attribute (support or hostnames) on.
async fn enable_dns(ec2: &Client, vpc: &str, attribute: VpcAttributeName) -> anyhow::Result<()> {
    let on = AttributeBooleanValue::builder().value(true).build();
    let request = ec2.modify_vpc_attribute().vpc_id(vpc);
    let request = match attribute {
        VpcAttributeName::EnableDnsHostnames => request.enable_dns_hostnames(on),
        _ => request.enable_dns_support(on),
    };
    request
        .send()
        .await
        .map_err(|e| call_error("ec2:ModifyVpcAttribute", e))?;
    Ok(())
}

/// The first two available zones of the region, by name.
async fn two_zones(ec2: &Client) -> anyhow::Result<Vec<String>> {
    let out = ec2
        .describe_availability_zones()
        .filters(filter("state", "available"))
        .send()
        .await
        .map_err(|e| call_error("ec2:DescribeAvailabilityZones", e))?;
    let mut zones: Vec<String> = out
        .availability_zones
        .unwrap_or_default()
        .into_iter()
        .filter_map(|z| z.zone_name)
        .collect();
    zones.sort();
    zones.truncate(2);
    if zones.len() < 2 {
        return Err(exit::error(
            ExitStatus::Environment,
            format!(
                "a load balancer needs subnets in two availability zones, and this region offers {}: pick another region, or name existing subnets in [network]",
                zones.len()
            ),
        ));
    }
    Ok(zones)
}

async fn map_public_ips(ec2: &Client, subnet: &str) -> anyhow::Result<()> {
    ec2.modify_subnet_attribute()
        .subnet_id(subnet)
        .map_public_ip_on_launch(AttributeBooleanValue::builder().value(true).build())
        .send()
        .await
        .map_err(|e| call_error("ec2:ModifySubnetAttribute", e))?;
    Ok(())
}

async fn ensure_internet_gateway(
    ec2: &Client,
    cv: &Converge,
    vpc_id: &str,
    changes: &mut Vec<Change>,
) -> anyhow::Result<String> {
    let project = cv.project.as_str();
    let call = ec2
        .describe_internet_gateways()
        .filters(project_filter(project));
    let found: Vec<_> = crate::all_pages!(call, "ec2:DescribeInternetGateways")?
        .into_iter()
        .flat_map(|p| p.internet_gateways.unwrap_or_default())
        .collect();
    let (id, attached) = match found.first() {
        Some(igw) => {
            let id = igw.internet_gateway_id().unwrap_or_default().to_string();
            let attached = igw.attachments().iter().any(|a| a.vpc_id() == Some(vpc_id));
            (id, attached)
        }
        None => {
            let id = if cv.dry_run {
                TO_BE_CREATED.to_string()
            } else {
                ec2.create_internet_gateway()
                    .tag_specifications(tagged(ResourceType::InternetGateway, project, project))
                    .send()
                    .await
                    .map_err(|e| call_error("ec2:CreateInternetGateway", e))?
                    .internet_gateway
                    .and_then(|g| g.internet_gateway_id)
                    .unwrap_or_default()
            };
            changes.push(
                Change::new("internet gateway", project, Action::Create)
                    .because(format!("attached to {vpc_id}")),
            );
            (id, false)
        }
    };
    let created = found.is_empty();
    if attached {
        changes.push(Change::new("internet gateway", project, Action::Keep).because(&id));
    } else {
        if !cv.dry_run {
            ec2.attach_internet_gateway()
                .internet_gateway_id(&id)
                .vpc_id(vpc_id)
                .send()
                .await
                .map_err(|e| call_error("ec2:AttachInternetGateway", e))?;
        }
        if !created {
            changes.push(
                Change::new("internet gateway", project, Action::Update)
                    .because(format!("attach to {vpc_id}")),
            );
        }
    }
    Ok(id)
}

async fn ensure_route_table(
    ec2: &Client,
    cv: &Converge,
    vpc_id: &str,
    igw_id: &str,
    subnet_ids: &[String],
    changes: &mut Vec<Change>,
) -> anyhow::Result<()> {
    let project = cv.project.as_str();
    let found = if vpc_id == TO_BE_CREATED {
        Vec::new()
    } else {
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
    };
    let table = found.first();
    let id = match table {
        Some(t) => t.route_table_id().unwrap_or_default().to_string(),
        None if cv.dry_run => TO_BE_CREATED.to_string(),
        None => ec2
            .create_route_table()
            .vpc_id(vpc_id)
            .tag_specifications(tagged(ResourceType::RouteTable, project, project))
            .send()
            .await
            .map_err(|e| call_error("ec2:CreateRouteTable", e))?
            .route_table
            .and_then(|t| t.route_table_id)
            .unwrap_or_default(),
    };
    let mut missing = Vec::new();
    let has_default_route = table.is_some_and(|t| {
        t.routes().iter().any(|r| {
            r.destination_cidr_block() == Some("0.0.0.0/0") && r.gateway_id() == Some(igw_id)
        })
    });
    if !has_default_route {
        missing.push("route 0.0.0.0/0 to the internet gateway".to_string());
        if !cv.dry_run {
            ec2.create_route()
                .route_table_id(&id)
                .destination_cidr_block("0.0.0.0/0")
                .gateway_id(igw_id)
                .send()
                .await
                .map_err(|e| call_error("ec2:CreateRoute", e))?;
        }
    }
    for subnet in subnet_ids {
        let associated = table.is_some_and(|t| {
            t.associations()
                .iter()
                .any(|a| a.subnet_id() == Some(subnet.as_str()))
        });
        if !associated {
            missing.push(format!("associate {subnet}"));
            if !cv.dry_run {
                ec2.associate_route_table()
                    .route_table_id(&id)
                    .subnet_id(subnet)
                    .send()
                    .await
                    .map_err(|e| call_error("ec2:AssociateRouteTable", e))?;
            }
        }
    }
    let change = match (table, missing.is_empty()) {
        (None, _) => {
            Change::new("route table", project, Action::Create).because(missing.join(", "))
        }
        (Some(_), true) => Change::new("route table", project, Action::Keep).because(&id),
        (Some(_), false) => {
            Change::new("route table", project, Action::Update).because(missing.join(", "))
        }
    };
    changes.push(change);
    Ok(())
}
