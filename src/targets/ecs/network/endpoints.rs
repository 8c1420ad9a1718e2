//! The private tasks' VPC endpoints (`network.egress = "endpoints"`): what a Fargate task in a
//! subnet without a way to the internet needs to start
//! (https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html,
//! https://repost.aws/knowledge-center/ecs-fargate-docker-timeout-error): S3's gateway endpoint
//! on the private route table (image layers, and the model), interface endpoints with private DNS
//! for ECR's API and registry and CloudWatch Logs, and Secrets Manager or SSM when
//! `service.secrets` names them. Each is tagged with the project and found by service name.

use aws_sdk_ec2::types::{ResourceType, VpcEndpoint, VpcEndpointType};
use aws_sdk_ec2::Client;

use super::{filter, project_filter, tagged};
use crate::aws::call_error;
use crate::targets::ecs::{Converge, Id, Planned};
use crate::targets::{Action, Change};

/// The interface endpoints every private task needs, by service (`com.amazonaws.<region>.<s>`).
const INTERFACES: [&str; 3] = ["ecr.api", "ecr.dkr", "logs"];

/// The services the endpoints are for: s3 (gateway) first, then the interfaces, then the
/// secret stores `secrets` (Secrets Manager or SSM ARNs) name.
pub fn services<'a>(secrets: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut stores: Vec<String> = secrets
        .filter_map(|arn| arn.split(':').nth(2).map(str::to_string))
        .filter(|s| s == "secretsmanager" || s == "ssm")
        .collect();
    stores.sort();
    stores.dedup();
    std::iter::once("s3".to_string())
        .chain(INTERFACES.iter().map(|s| s.to_string()))
        .chain(stores)
        .collect()
}

/// The project's endpoints in the VPC.
pub async fn find(ec2: &Client, project: &str, vpc: &str) -> anyhow::Result<Vec<VpcEndpoint>> {
    Ok(find_all(ec2, project, vpc)
        .await?
        .into_iter()
        // EC2 spells the states Deleted, Deleting, Failed; some emulators in lower case.
        .filter(|e| {
            !e.state().is_some_and(|s| {
                ["deleted", "deleting", "failed"]
                    .iter()
                    .any(|gone| s.as_str().eq_ignore_ascii_case(gone))
            })
        })
        .collect())
}

/// Where the endpoints go.
pub struct Placement<'a> {
    pub region: &'a str,
    pub vpc: &'a Id,
    pub route_table: &'a Id,
    pub subnets: &'a [Id],
    pub group: &'a Id,
}

/// Creates each endpoint of `services` the VPC lacks; keeps the others.
pub async fn ensure(
    ec2: &Client,
    cv: &Converge,
    at: &Placement<'_>,
    services: &[String],
    changes: &mut Vec<Change>,
) -> anyhow::Result<()> {
    let project = cv.project.as_str();
    let found = match at.vpc.known() {
        Some(vpc) => find(ec2, project, vpc).await?,
        None => Vec::new(),
    };
    for service in services {
        let name = format!("com.amazonaws.{}.{service}", at.region);
        let gateway = service == "s3";
        let planned = match found.iter().find(|e| e.service_name() == Some(name.as_str())) {
            Some(e) => Planned::keep(
                Change::new("VPC endpoint", &name, Action::Keep)
                    .because(e.vpc_endpoint_id().unwrap_or_default()),
                (),
            ),
            None => Planned::change(
                Change::new("VPC endpoint", &name, Action::Create).because(if gateway {
                    "gateway, on the private route table".to_string()
                } else {
                    "interface in the private subnets, private DNS; about 15 USD a month (us-east-1 prices)".to_string()
                }),
                (),
                (),
            ),
        };
        cv.carry_out(planned, changes, |()| async {
            let call = ec2
                .create_vpc_endpoint()
                .vpc_id(at.vpc.applied("VPC")?)
                .service_name(&name)
                .tag_specifications(tagged(ResourceType::VpcEndpoint, project, project));
            let call = if gateway {
                call.vpc_endpoint_type(VpcEndpointType::Gateway)
                    .route_table_ids(at.route_table.applied("private route table")?)
            } else {
                let subnets = at
                    .subnets
                    .iter()
                    .map(|s| s.applied("private subnet").map(str::to_string))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                call.vpc_endpoint_type(VpcEndpointType::Interface)
                    .set_subnet_ids(Some(subnets))
                    .security_group_ids(at.group.applied("endpoints' security group")?)
                    .private_dns_enabled(true)
            };
            call.send()
                .await
                .map_err(|e| call_error("ec2:CreateVpcEndpoint", e))?;
            Ok(Some(()))
        })
        .await?;
    }
    Ok(())
}

/// Waits until every endpoint of the project's in the VPC is `available`: an interface
/// endpoint is `pending` while AWS provisions its network interfaces, and a task cannot reach
/// the service through it until it is available
/// (https://docs.aws.amazon.com/vpc/latest/privatelink/create-interface-endpoint.html;
/// the states are VpcEndpoint.State in
/// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_VpcEndpoint.html). A failed
/// endpoint, or one still pending at `until`, is exit 1 with the way on.
pub async fn wait_available(
    ec2: &Client,
    project: &str,
    vpc: &str,
    until: std::time::Instant,
    printer: &crate::output::Printer,
) -> anyhow::Result<()> {
    let mut said = false;
    loop {
        let all = find_all(ec2, project, vpc).await?;
        let state = |e: &VpcEndpoint| e.state().map(|s| s.as_str().to_ascii_lowercase());
        if let Some(failed) = all
            .iter()
            .find(|e| matches!(state(e).as_deref(), Some("failed" | "rejected" | "expired")))
        {
            return Err(crate::exit::error(
                crate::exit::ExitStatus::Failed,
                format!(
                    "VPC endpoint {} ({}) is {}: {}. Delete it and run `mldeploy up` again to make a new one",
                    failed.vpc_endpoint_id().unwrap_or_default(),
                    failed.service_name().unwrap_or_default(),
                    state(failed).unwrap_or_default(),
                    failed
                        .last_error()
                        .and_then(|e| e.message())
                        .unwrap_or("AWS gives no reason")
                ),
            ));
        }
        let pending: Vec<&VpcEndpoint> = all
            .iter()
            .filter(|e| state(e).as_deref() != Some("available"))
            .filter(|e| !matches!(state(e).as_deref(), Some("deleting" | "deleted")))
            .collect();
        let Some(first) = pending.first() else {
            return Ok(());
        };
        let names: Vec<&str> = pending.iter().filter_map(|e| e.service_name()).collect();
        if std::time::Instant::now() >= until {
            return Err(crate::exit::error(
                crate::exit::ExitStatus::Failed,
                format!(
                    "VPC endpoint(s) {} still {} at the --timeout; run `mldeploy up` again to go on waiting",
                    names.join(", "),
                    state(first).unwrap_or_default()
                ),
            ));
        }
        if !said {
            printer.info(format!(
                "Waiting for the VPC endpoint(s) {} to be available (private tasks pull through them; on AWS this takes minutes)",
                names.join(", ")
            ));
            said = true;
        }
        tokio::time::sleep(crate::aws::poll::interval()).await;
    }
}

/// The project's endpoints in the VPC, whatever their state.
async fn find_all(ec2: &Client, project: &str, vpc: &str) -> anyhow::Result<Vec<VpcEndpoint>> {
    let pages: Vec<_> = crate::all_pages!(
        ec2.describe_vpc_endpoints()
            .filters(filter("vpc-id", vpc))
            .filters(project_filter(project)),
        "ec2:DescribeVpcEndpoints"
    )?;
    Ok(pages
        .into_iter()
        .flat_map(|p| p.vpc_endpoints.unwrap_or_default())
        .collect())
}

/// Deletes the endpoint.
pub async fn delete(ec2: &Client, id: &str) -> anyhow::Result<()> {
    ec2.delete_vpc_endpoints()
        .vpc_endpoint_ids(id)
        .send()
        .await
        .map_err(|e| call_error("ec2:DeleteVpcEndpoints", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_task_needs_s3_ecr_and_logs_and_the_stores_its_secrets_name() {
        let secrets = [
            "arn:aws:ssm:us-east-1:1:parameter/a".to_string(),
            "arn:aws:secretsmanager:us-east-1:1:secret:b".to_string(),
            "arn:aws:ssm:us-east-1:1:parameter/c".to_string(),
        ];
        assert_eq!(
            services(secrets.iter()),
            ["s3", "ecr.api", "ecr.dkr", "logs", "secretsmanager", "ssm"]
        );
        assert_eq!(services([].iter()), ["s3", "ecr.api", "ecr.dkr", "logs"]);
    }
}
