//! The project's VPC: created with DNS support and hostnames on, and repaired when they are off.

use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, VpcAttributeName};
use aws_sdk_ec2::Client;
use std::time::Instant;

use crate::targets::ecs::teardown::while_busy;

use super::{find_vpcs, tagged, VPC_CIDR};
use crate::aws::call_error;
use crate::targets::ecs::{Converge, Id, Planned};
use crate::targets::{Action, Change};

/// What the project's VPC needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VpcStep {
    /// Create it, with DNS support and hostnames on.
    Create,
    /// Turn these DNS attributes on: a run that lost AWS right after creating the VPC never did.
    EnableDns {
        id: String,
        attributes: Vec<VpcAttributeName>,
    },
}

pub async fn ensure_vpc(
    ec2: &Client,
    cv: &Converge,
    changes: &mut Vec<Change>,
) -> anyhow::Result<Id> {
    let project = cv.project.as_str();
    let mut ids: Vec<String> = find_vpcs(ec2, project)
        .await?
        .iter()
        .filter_map(|v| v.vpc_id().map(str::to_string))
        .collect();
    ids.sort();
    let dns_off = match ids.first() {
        // Both attributes are read at once: this runs on every `up`.
        Some(id) => {
            let on = futures_util::future::try_join_all(
                DNS_ATTRIBUTES
                    .iter()
                    .map(|a| dns_attribute(ec2, id, a.clone())),
            )
            .await?;
            DNS_ATTRIBUTES
                .into_iter()
                .zip(on)
                .filter(|(_, on)| !on)
                .map(|(a, _)| a)
                .collect()
        }
        None => Vec::new(),
    };
    let planned = plan_vpc(project, ids.first().map(String::as_str), dns_off);
    cv.carry_out(planned, changes, |step| apply_vpc(ec2, project, step))
        .await
}

/// Tasks resolve ECR, S3 and CloudWatch by name: the VPC needs both.
const DNS_ATTRIBUTES: [VpcAttributeName; 2] = [
    VpcAttributeName::EnableDnsSupport,
    VpcAttributeName::EnableDnsHostnames,
];

/// Decides, from the project's first VPC (if any) and which of its DNS attributes are off, what
/// the VPC needs.
pub fn plan_vpc(
    project: &str,
    found: Option<&str>,
    dns_off: Vec<VpcAttributeName>,
) -> Planned<VpcStep> {
    let Some(id) = found else {
        return Planned::change(
            Change::new("VPC", project, Action::Create).because(VPC_CIDR),
            Id::AfterApply,
            VpcStep::Create,
        );
    };
    let mut changes = vec![Change::new("VPC", project, Action::Keep).because(id)];
    changes.extend(dns_off.iter().map(|a| {
        Change::new("VPC DNS", project, Action::Update).because(format!("{} was off", a.as_str()))
    }));
    Planned {
        changes,
        found: Id::Known(id.to_string()),
        step: (!dns_off.is_empty()).then(|| VpcStep::EnableDns {
            id: id.to_string(),
            attributes: dns_off,
        }),
    }
}

async fn apply_vpc(ec2: &Client, project: &str, step: VpcStep) -> anyhow::Result<Option<Id>> {
    let (vpc, attributes, created) = match step {
        VpcStep::EnableDns { id, attributes } => (id, attributes, false),
        VpcStep::Create => {
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
            (vpc, DNS_ATTRIBUTES.to_vec(), true)
        }
    };
    for attribute in attributes {
        enable_dns(ec2, &vpc, attribute).await?;
    }
    Ok(created.then_some(Id::Known(vpc)))
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

/// Deletes the VPC, waiting while what is in it is still going.
pub async fn delete(ec2: &Client, id: &str, deadline: Instant) -> anyhow::Result<()> {
    while_busy(deadline, || ec2.delete_vpc().vpc_id(id).send())
        .await
        .map_err(|e| call_error("ec2:DeleteVpc", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vpc_is_created_kept_or_has_its_dns_turned_on() {
        let new = plan_vpc("p", None, Vec::new());
        assert_eq!(
            (new.step, new.found),
            (Some(VpcStep::Create), Id::AfterApply)
        );
        let kept = plan_vpc("p", Some("vpc-1"), Vec::new());
        assert_eq!(kept.step, None);
        let off = plan_vpc(
            "p",
            Some("vpc-1"),
            vec![VpcAttributeName::EnableDnsHostnames],
        );
        assert_eq!(off.changes.len(), 2, "the VPC, then its DNS");
        assert_eq!(
            off.step,
            Some(VpcStep::EnableDns {
                id: "vpc-1".into(),
                attributes: vec![VpcAttributeName::EnableDnsHostnames]
            })
        );
    }
}
