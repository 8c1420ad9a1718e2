//! The subnets `[network]` names, checked before anything changes: they exist, share one VPC,
//! and span two zones. They are the user's: reported as kept, never changed.

use aws_sdk_ec2::Client;

use super::Network;
use crate::aws::call_error;
use crate::exit::{self, ExitStatus};
use crate::targets::ecs::Id;
use crate::targets::{Action, Change};

/// The subnets `[network]` names, checked: they exist, share one VPC, and span two zones. They
/// are the user's: reported as kept, never changed.
pub async fn existing(
    ec2: &Client,
    subnet_ids: &[String],
    changes: &mut Vec<Change>,
) -> anyhow::Result<Network> {
    let out = ec2
        .describe_subnets()
        .set_subnet_ids(Some(subnet_ids.to_vec()))
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .and_then(|s| aws_smithy_types::error::metadata::ProvideErrorMetadata::code(s))
                == Some("InvalidSubnetID.NotFound")
            {
                exit::error(
                    ExitStatus::Environment,
                    format!(
                        "network.subnets names a subnet this account and region do not have: {}",
                        subnet_ids.join(", ")
                    ),
                )
            } else {
                call_error("ec2:DescribeSubnets", e)
            }
        })?;
    let subnets = out.subnets.unwrap_or_default();
    let mut vpcs: Vec<&str> = subnets.iter().filter_map(|s| s.vpc_id()).collect();
    vpcs.sort();
    vpcs.dedup();
    let [vpc] = vpcs.as_slice() else {
        return Err(exit::error(
            ExitStatus::Usage,
            format!(
                "network.subnets must all be in one VPC; they are in {}",
                vpcs.join(", ")
            ),
        ));
    };
    let mut zones: Vec<&str> = subnets
        .iter()
        .filter_map(|s| s.availability_zone())
        .collect();
    zones.sort();
    zones.dedup();
    if zones.len() < 2 {
        return Err(exit::error(
            ExitStatus::Usage,
            format!("network.subnets are all in {}: a load balancer needs subnets in two availability zones", zones.join(", ")),
        ));
    }
    for s in &subnets {
        let id = s.subnet_id().unwrap_or_default();
        changes.push(Change::new("subnet", id, Action::Keep).because(format!(
            "named in [network], {}",
            s.availability_zone().unwrap_or("?")
        )));
    }
    let ids: Vec<Id> = subnet_ids.iter().cloned().map(Id::Known).collect();
    Ok(Network {
        vpc_id: Id::Known(vpc.to_string()),
        task_subnet_ids: ids.clone(),
        subnet_ids: ids,
        public_ip: true,
        private_route_table: None,
    })
}
