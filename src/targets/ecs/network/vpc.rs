//! The project's VPC: created with DNS support and hostnames on, and repaired when they are off.

use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, VpcAttributeName};
use aws_sdk_ec2::Client;

use crate::targets::ecs::wait::{while_busy, Wait};

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
    let ids: Vec<String> = find_vpcs(ec2, project)
        .await?
        .iter()
        .filter_map(|v| v.vpc_id().map(str::to_string))
        .collect();
    let mut ranked = rank(ec2, ids).await?;
    let twins = ranked.split_off(ranked.len().min(1));
    let ids: Vec<String> = ranked.into_iter().map(|(id, _)| id).collect();
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
    let vpc = cv
        .carry_out(planned, changes, |step| apply_vpc(ec2, project, step))
        .await?;
    for planned in plan_twins(project, &twins) {
        cv.carry_out(planned, changes, |id| delete_twin(ec2, id))
            .await?;
    }
    Ok(vpc)
}

/// The project's VPCs, the one to use first: the one holding the most subnets, then the lowest
/// id. A CreateVpc whose answer was lost and that was retried leaves two tagged VPCs, the run
/// going on in the second; the first stays empty. Subnets are counted only when there are two.
async fn rank(ec2: &Client, mut ids: Vec<String>) -> anyhow::Result<Vec<(String, usize)>> {
    ids.sort();
    if ids.len() < 2 {
        return Ok(ids.into_iter().map(|id| (id, 0)).collect());
    }
    let mut ranked = Vec::new();
    for id in ids {
        let pages: Vec<_> = crate::all_pages!(
            ec2.describe_subnets().filters(super::filter("vpc-id", &id)),
            "ec2:DescribeSubnets"
        )?;
        let subnets: usize = pages.iter().map(|p| p.subnets().len()).sum();
        ranked.push((id, subnets));
    }
    // Stable: among equals, the lowest id stays first.
    ranked.sort_by_key(|r| std::cmp::Reverse(r.1));
    Ok(ranked)
}

/// Decides what becomes of the project's other VPCs: an empty one (nothing can be in it that
/// anyone uses) is deleted; one holding subnets is left, and said so (`destroy` removes it).
pub fn plan_twins(project: &str, twins: &[(String, usize)]) -> Vec<Planned<String, ()>> {
    twins
        .iter()
        .map(|(id, subnets)| {
            let name = format!("{project} ({id})");
            if *subnets == 0 {
                Planned::change(
                    Change::new("VPC", name, Action::Delete)
                        .because("an empty second VPC of the project's, as a retried CreateVpc leaves"),
                    (),
                    id.clone(),
                )
            } else {
                Planned::keep(
                    Change::new("VPC", name, Action::Keep).because(format!(
                        "a second VPC of the project's, holding {subnets} subnet(s): left as it is; `mldeploy destroy` removes it"
                    )),
                    (),
                )
            }
        })
        .collect()
}

async fn delete_twin(ec2: &Client, id: String) -> anyhow::Result<Option<()>> {
    ec2.delete_vpc()
        .vpc_id(&id)
        .send()
        .await
        .map_err(|e| call_error("ec2:DeleteVpc", e))?;
    Ok(None)
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
            Id::after_apply(),
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
pub async fn delete(ec2: &Client, id: &str, wait: &Wait<'_>) -> anyhow::Result<()> {
    while_busy(wait, || ec2.delete_vpc().vpc_id(id).send())
        .await
        .map_err(|e| call_error("ec2:DeleteVpc", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_empty_second_vpc_is_deleted() {
        let planned = plan_twins("p", &[("vpc-2".into(), 0), ("vpc-3".into(), 2)]);
        assert_eq!(planned[0].step.as_deref(), Some("vpc-2"));
        assert_eq!(planned[0].changes[0].action, Action::Delete);
        assert_eq!(planned[1].step, None);
        assert!(planned[1].changes[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("holding 2 subnet(s)")));
    }

    #[test]
    fn a_vpc_is_created_kept_or_has_its_dns_turned_on() {
        let new = plan_vpc("p", None, Vec::new());
        assert_eq!(new.step, Some(VpcStep::Create));
        assert!(new.found.is_new());
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
