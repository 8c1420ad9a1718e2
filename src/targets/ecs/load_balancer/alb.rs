//! The Application Load Balancer itself: internet-facing (or internal, with
//! `network.load_balancer`), in the project's public subnets, behind the `<name>-alb` security
//! group. AWS cannot change a load balancer's scheme: one of the other scheme is refused before
//! anything changes.

use aws_sdk_elasticloadbalancingv2::types::{
    LoadBalancer as Alb, LoadBalancerSchemeEnum, LoadBalancerTypeEnum,
};
use aws_sdk_elasticloadbalancingv2::Client;

use super::not_ours;
use crate::aws::tags;
use crate::aws::{call_error, returned};
use crate::targets::ecs::network::Network;
use crate::targets::ecs::security::SecurityGroups;
use crate::targets::ecs::{Id, Planned};
use crate::targets::{Action, Change};

/// What the load balancer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlbStep {
    Create,
    /// Put it behind the project's ALB group only.
    SetSecurityGroup {
        arn: String,
    },
}

/// Decides, from the load balancer found (with whether it is the project's), what it needs.
/// What later steps know of it: its ARN, its DNS name, and the hosted zone Route 53 knows it by.
pub fn plan(
    name: &str,
    found: Option<(&Alb, bool)>,
    group: &Id,
    internal: bool,
) -> anyhow::Result<Planned<AlbStep, (Id, Id, Id)>> {
    let scheme = if internal {
        LoadBalancerSchemeEnum::Internal
    } else {
        LoadBalancerSchemeEnum::InternetFacing
    };
    let Some((lb, ours)) = found else {
        return Ok(Planned::change(
            Change::new("load balancer", name, Action::Create)
                .because(format!("{scheme}, in both public subnets")),
            (Id::after_apply(), Id::after_apply(), Id::after_apply()),
            AlbStep::Create,
        ));
    };
    if !ours {
        return Err(not_ours("load balancer", name, name));
    }
    if let Some(current) = lb.scheme().filter(|s| **s != scheme) {
        return Err(crate::exit::error(
            crate::exit::ExitStatus::Usage,
            format!(
                "network.load_balancer asks for an {scheme} load balancer, and {name} is {current}: AWS cannot change a load balancer's scheme. Run `mldeploy destroy` and `mldeploy up` to make it anew (its DNS name changes), or set network.load_balancer back"
            ),
        ));
    }
    let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    let dns_name = lb.dns_name().unwrap_or_default().to_string();
    let mut current: Vec<&str> = lb.security_groups().iter().map(String::as_str).collect();
    current.sort();
    let zone_id = lb
        .canonical_hosted_zone_id()
        .unwrap_or_default()
        .to_string();
    let found = (
        Id::Known(arn.clone()),
        Id::Known(dns_name.clone()),
        Id::Known(zone_id),
    );
    Ok(match group.known() {
        Some(group) if current == [group] => Planned::keep(
            Change::new("load balancer", name, Action::Keep).because(dns_name),
            found,
        ),
        _ => Planned::change(
            Change::new("load balancer", name, Action::Update)
                .because(format!("security group {group}")),
            found,
            AlbStep::SetSecurityGroup { arn },
        ),
    })
}

pub async fn apply(
    elb: &Client,
    name: &str,
    network: &Network,
    groups: &SecurityGroups,
    internal: bool,
    step: AlbStep,
) -> anyhow::Result<Option<(Id, Id, Id)>> {
    let group = groups.alb.applied("load balancer's security group")?;
    match step {
        AlbStep::SetSecurityGroup { arn } => {
            elb.set_security_groups()
                .load_balancer_arn(&arn)
                .security_groups(group)
                .send()
                .await
                .map_err(|e| call_error("elasticloadbalancing:SetSecurityGroups", e))?;
            Ok(None)
        }
        AlbStep::Create => {
            let subnets = network
                .subnet_ids
                .iter()
                .map(|s| s.applied("subnet").map(str::to_string))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let out = elb
                .create_load_balancer()
                .name(name)
                .r#type(LoadBalancerTypeEnum::Application)
                .scheme(if internal {
                    LoadBalancerSchemeEnum::Internal
                } else {
                    LoadBalancerSchemeEnum::InternetFacing
                })
                .set_subnets(Some(subnets))
                .security_groups(group)
                .tags(tags::elbv2(name))
                .send()
                .await
                .map_err(|e| call_error("elasticloadbalancing:CreateLoadBalancer", e))?;
            let lb = out
                .load_balancers
                .unwrap_or_default()
                .into_iter()
                .next()
                .ok_or_else(|| anyhow::anyhow!("{CREATE} returned no load balancer"))?;
            Ok(Some((
                Id::Known(returned(lb.load_balancer_arn, CREATE, "load balancer ARN")?),
                Id::Known(returned(lb.dns_name, CREATE, "DNS name")?),
                Id::Known(returned(
                    lb.canonical_hosted_zone_id,
                    CREATE,
                    "canonical hosted zone id",
                )?),
            )))
        }
    }
}

const CREATE: &str = "elasticloadbalancing:CreateLoadBalancer";
