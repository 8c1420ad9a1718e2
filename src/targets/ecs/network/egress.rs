//! Whether tasks in the subnets `[network]` names can start: Fargate pulls the image and writes
//! the logs from the task's subnet, so its route table must send 0.0.0.0/0 to an internet
//! gateway (the tasks get public IPs there) or a NAT gateway, or the VPC must have the endpoints
//! a private task needs (https://repost.aws/knowledge-center/ecs-fargate-pull-container-error,
//! https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html). A subnet that
//! cannot is refused before anything changes, naming what it lacks.

use aws_sdk_ec2::types::{RouteTable, VpcEndpoint};
use aws_sdk_ec2::Client;

use super::{endpoints, filter};
use crate::aws::call_error;
use crate::exit::{self, ExitStatus};

/// The route table a subnet uses: its own association, else its VPC's main table.
async fn table_of(ec2: &Client, vpc: &str, subnet: &str) -> anyhow::Result<Option<RouteTable>> {
    for filters in [
        vec![filter("association.subnet-id", subnet)],
        vec![filter("vpc-id", vpc), filter("association.main", "true")],
    ] {
        let out = ec2
            .describe_route_tables()
            .set_filters(Some(filters))
            .send()
            .await
            .map_err(|e| call_error("ec2:DescribeRouteTables", e))?;
        if let Some(t) = out.route_tables.unwrap_or_default().into_iter().next() {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

/// What a subnet with this route table lacks to start a task, given the VPC's endpoints and
/// the services (`endpoints::services`) a task needs; empty when it lacks nothing.
fn missing(
    table: Option<&RouteTable>,
    vpc_endpoints: &[VpcEndpoint],
    region: &str,
    services: &[String],
) -> Vec<String> {
    let default = table.and_then(super::routes::default_route);
    let out = default.is_some_and(|r| {
        r.gateway_id().is_some_and(|g| g.starts_with("igw-")) || r.nat_gateway_id().is_some()
    });
    if out {
        return Vec::new();
    }
    let table_id = table.and_then(|t| t.route_table_id());
    services
        .iter()
        .filter(|service| {
            let name = format!("com.amazonaws.{region}.{service}");
            !vpc_endpoints.iter().any(|e| {
                e.service_name() == Some(name.as_str())
                    && if service.as_str() == "s3" {
                        table_id.is_some_and(|t| e.route_table_ids().iter().any(|r| r == t))
                    } else {
                        e.private_dns_enabled() == Some(true)
                    }
            })
        })
        .map(|s| {
            if s == "s3" {
                "an S3 gateway endpoint on its route table".to_string()
            } else {
                format!("a {s} interface endpoint with private DNS")
            }
        })
        .collect()
}

/// Refuses a named subnet from which a task could not reach ECR, S3, CloudWatch Logs and its
/// secret stores.
pub async fn check(
    ec2: &Client,
    region: &str,
    vpc: &str,
    subnets: &[String],
    secrets: &[&String],
) -> anyhow::Result<()> {
    let pages: Vec<_> = crate::all_pages!(
        ec2.describe_vpc_endpoints().filters(filter("vpc-id", vpc)),
        "ec2:DescribeVpcEndpoints"
    )?;
    let vpc_endpoints: Vec<VpcEndpoint> = pages
        .into_iter()
        .flat_map(|p| p.vpc_endpoints.unwrap_or_default())
        .filter(|e| {
            e.state()
                .is_some_and(|s| s.as_str().eq_ignore_ascii_case("available"))
        })
        .collect();
    let services = endpoints::services(secrets.iter().copied());
    for subnet in subnets {
        let table = table_of(ec2, vpc, subnet).await?;
        let lacks = missing(table.as_ref(), &vpc_endpoints, region, &services);
        if !lacks.is_empty() {
            return Err(exit::error(
                ExitStatus::Usage,
                format!(
                    "network.subnets: a task in {subnet} could not start: its route table sends 0.0.0.0/0 to no internet or NAT gateway, and the VPC lacks {}. Give the subnet a NAT gateway route, add those endpoints, or name other subnets",
                    lacks.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::Route;

    fn table(route: Option<Route>) -> RouteTable {
        let mut t = RouteTable::builder().route_table_id("rtb-1");
        if let Some(r) = route {
            t = t.routes(r);
        }
        t.build()
    }

    fn endpoint(service: &str, table: Option<&str>) -> VpcEndpoint {
        let e = VpcEndpoint::builder().service_name(format!("com.amazonaws.r.{service}"));
        match table {
            Some(t) => e.route_table_ids(t).build(),
            None => e.private_dns_enabled(true).build(),
        }
    }

    #[test]
    fn a_subnet_goes_out_through_a_gateway_or_has_every_endpoint() {
        let services = endpoints::services([].iter());
        let igw = Route::builder()
            .destination_cidr_block("0.0.0.0/0")
            .gateway_id("igw-1")
            .build();
        let nat = Route::builder()
            .destination_cidr_block("0.0.0.0/0")
            .nat_gateway_id("nat-1")
            .build();
        assert!(missing(Some(&table(Some(igw))), &[], "r", &services).is_empty());
        assert!(missing(Some(&table(Some(nat))), &[], "r", &services).is_empty());
        let isolated = table(None);
        assert_eq!(missing(Some(&isolated), &[], "r", &services).len(), 4);
        let some = [endpoint("s3", Some("rtb-1")), endpoint("ecr.api", None)];
        assert_eq!(
            missing(Some(&isolated), &some, "r", &services),
            [
                "a ecr.dkr interface endpoint with private DNS",
                "a logs interface endpoint with private DNS"
            ]
        );
        let all = [
            endpoint("s3", Some("rtb-1")),
            endpoint("ecr.api", None),
            endpoint("ecr.dkr", None),
            endpoint("logs", None),
        ];
        assert!(missing(Some(&isolated), &all, "r", &services).is_empty());
        // S3's gateway endpoint on another table does not serve this subnet.
        let elsewhere = [endpoint("s3", Some("rtb-2"))];
        assert!(missing(Some(&isolated), &elsewhere, "r", &services)
            .contains(&"an S3 gateway endpoint on its route table".to_string()));
    }
}
