//! The security groups `[network]` names for the tasks, checked before anything changes.

use aws_sdk_ec2::Client;

use super::rules::rules_of;
use crate::aws::call_error;
use crate::exit::{self, ExitStatus};
use crate::targets::{Action, Change};

/// Checks the security groups `[network]` names for the tasks: they exist, they are in the
/// subnets' VPC, and none admits the whole internet (the tasks have public addresses, so such a
/// group would expose them past the load balancer). They are reported as kept, never modified.
pub async fn existing_for_tasks(
    ec2: &Client,
    group_ids: &[String],
    vpc_id: &str,
    changes: &mut Vec<Change>,
) -> anyhow::Result<()> {
    if group_ids.is_empty() {
        return Ok(());
    }
    let out = ec2
        .describe_security_groups()
        .set_group_ids(Some(group_ids.to_vec()))
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .and_then(|s| aws_smithy_types::error::metadata::ProvideErrorMetadata::code(s))
                == Some("InvalidGroup.NotFound")
            {
                exit::error(
                    ExitStatus::Environment,
                    format!(
                        "network.security_groups names a group this account and region do not have: {}",
                        group_ids.join(", ")
                    ),
                )
            } else {
                call_error("ec2:DescribeSecurityGroups", e)
            }
        })?;
    for group in out.security_groups() {
        let id = group.group_id().unwrap_or_default();
        let in_vpc = group.vpc_id().unwrap_or_default();
        if in_vpc != vpc_id {
            return Err(exit::error(
                ExitStatus::Usage,
                format!("network.security_groups: {id} is in {in_vpc}, but network.subnets are in {vpc_id}"),
            ));
        }
        if let Some(rule) = rules_of(group).iter().find(|r| r.is_world_open()) {
            return Err(exit::error(
                ExitStatus::Usage,
                format!(
                    "network.security_groups: {id} admits the whole internet ({}); the tasks have public addresses, so it would expose them past the load balancer. Name a group without 0.0.0.0/0 or ::/0 ingress",
                    rule.describe()
                ),
            ));
        }
        changes.push(
            Change::new("security group", id, Action::Keep)
                .because("named in [network], attached to the tasks"),
        );
    }
    Ok(())
}
