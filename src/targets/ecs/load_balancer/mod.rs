//! The Application Load Balancer `<name>`, its target group `<name>` (target type ip, health check
//! on `service.health_check_path` every 30 s) and its listeners: HTTP :80 forwarding to the target
//! group, or, with a certificate, HTTPS :443 forwarding and HTTP :80 redirecting to it.

use aws_sdk_elasticloadbalancingv2::types::{LoadBalancer as Alb, TargetGroup};
use aws_sdk_elasticloadbalancingv2::Client;

use super::wait::{until_gone, while_busy, Wait};

use super::network::Network;
use super::security::SecurityGroups;
use super::{Id, Plan};
use crate::aws::call_error;
use crate::aws::tags;
use crate::exit::{self, ExitStatus};

mod alb;
mod listeners;
pub mod rules;
mod target_group;

/// What the service is attached to, and where users reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancer {
    pub arn: Id,
    /// Known once the load balancer exists.
    pub dns_name: Id,
    /// The hosted zone Route 53 knows the load balancer by (for an alias to it).
    pub canonical_zone_id: Id,
    pub target_group_arn: Id,
    /// The target group production traffic goes to now (see [`rules::serving_target_group`]).
    pub serving_target_group: Id,
    /// The alternate target group and the listener rules ECS shifts traffic with, for a
    /// blue/green, canary or linear deployment.
    pub shift: Option<rules::Shift>,
}

/// What the load balancer needs to know about the service.
#[derive(Debug, Clone)]
pub struct Listening<'a> {
    pub container_port: u16,
    pub health_check_path: &'a str,
    /// The HTTPS listener's certificate: `service.certificate_arn`, or the one `up` requested
    /// (not known yet in a plan that requests it).
    pub certificate: Option<Id>,
    /// The health check and draining the target group keeps.
    pub health: crate::config::Health,
    /// With a traffic-shifting strategy: a second target group and the two listener rules.
    pub strategy: crate::config::Strategy,
    /// `network.load_balancer = "internal"`: private addresses only.
    pub internal: bool,
}

impl Listening<'_> {
    /// The ports the load balancer listens on (and its security group opens).
    pub fn ports(&self) -> Vec<u16> {
        if self.certificate.is_some() {
            vec![80, 443]
        } else {
            vec![80]
        }
    }
}

/// The DNS name of the load balancer a target group serves, if it serves one.
pub async fn dns_name_for_target_group(
    elb: &Client,
    target_group_arn: &str,
) -> anyhow::Result<Option<String>> {
    let groups = elb
        .describe_target_groups()
        .target_group_arns(target_group_arn)
        .send()
        .await
        .map_err(|e| call_error("elasticloadbalancing:DescribeTargetGroups", e))?;
    let Some(lb_arn) = groups
        .target_groups()
        .first()
        .and_then(|g| g.load_balancer_arns().first())
    else {
        return Ok(None);
    };
    let lbs = elb
        .describe_load_balancers()
        .load_balancer_arns(lb_arn)
        .send()
        .await
        .map_err(|e| call_error("elasticloadbalancing:DescribeLoadBalancers", e))?;
    Ok(lbs
        .load_balancers()
        .first()
        .and_then(|lb| lb.dns_name())
        .map(str::to_string))
}

/// The service's URL: `https://<service.domain>` when one is configured (its certificate is for
/// it), else the load balancer's own name over HTTP.
pub fn url(dns_name: &str, domain: Option<&str>) -> String {
    match domain {
        Some(domain) => format!("https://{domain}"),
        None => format!("http://{dns_name}"),
    }
}

/// How the smoke test reaches the domain: through the load balancer, whatever DNS says yet.
pub fn via(dns_name: &str, domain: Option<&str>) -> Option<crate::smoke::Via> {
    domain.map(|domain| crate::smoke::Via {
        host: domain.to_string(),
        load_balancer: dns_name.to_string(),
    })
}

/// The load balancer named `name`, when there is one (names are unique in a region).
pub async fn find_alb(elb: &Client, name: &str) -> anyhow::Result<Option<Alb>> {
    match elb.describe_load_balancers().names(name).send().await {
        Ok(out) => Ok(out.load_balancers.unwrap_or_default().into_iter().next()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_load_balancer_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(call_error("elasticloadbalancing:DescribeLoadBalancers", e)),
    }
}

/// The target group named `name`, when there is one (names are unique in a region).
pub async fn find_target_group(elb: &Client, name: &str) -> anyhow::Result<Option<TargetGroup>> {
    match elb.describe_target_groups().names(name).send().await {
        Ok(out) => Ok(out.target_groups.unwrap_or_default().into_iter().next()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_target_group_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(call_error("elasticloadbalancing:DescribeTargetGroups", e)),
    }
}

/// Every listener of the load balancer, all pages read.
pub async fn listeners(
    elb: &Client,
    lb_arn: &str,
) -> anyhow::Result<Vec<aws_sdk_elasticloadbalancingv2::types::Listener>> {
    let pages: Vec<_> = crate::all_pages!(
        elb.describe_listeners().load_balancer_arn(lb_arn),
        "elasticloadbalancing:DescribeListeners"
    )?;
    Ok(pages
        .into_iter()
        .flat_map(|p| p.listeners.unwrap_or_default())
        .collect())
}

pub async fn is_ours(elb: &Client, arn: &str, project: &str) -> anyhow::Result<bool> {
    let out = elb
        .describe_tags()
        .resource_arns(arn)
        .send()
        .await
        .map_err(|e| call_error("elasticloadbalancing:DescribeTags", e))?;
    Ok(out
        .tag_descriptions()
        .iter()
        .any(|d| tags::is_ours(d.tags(), project)))
}

pub(super) fn not_ours(kind: &str, name: &str, project: &str) -> anyhow::Error {
    exit::error(
        ExitStatus::Environment,
        format!(
            "{}: mldeploy will not take over a {kind} it did not create",
            tags::not_ours(&format!("{kind} {name}"), project)
        ),
    )
}

/// What was found, with whether it carries the project's tag (ELB keeps tags apart).
async fn with_ownership<T>(
    elb: &Client,
    project: &str,
    found: Option<T>,
    arn: impl Fn(&T) -> Option<&str>,
) -> anyhow::Result<Option<(T, bool)>> {
    match found {
        Some(resource) => {
            let ours = is_ours(elb, arn(&resource).unwrap_or_default(), project).await?;
            Ok(Some((resource, ours)))
        }
        None => Ok(None),
    }
}

/// Decides the load balancer, its target group(s), listeners and (with a traffic-shifting
/// strategy) its listener rules into `plan`. What the plan creates is known by its ids once
/// the steps that create it ran.
pub async fn decide<'a>(
    elb: &'a Client,
    project: &'a str,
    network: &'a Network,
    groups: &'a SecurityGroups,
    listening: &'a Listening<'a>,
    plan: &mut Plan<'a>,
) -> anyhow::Result<LoadBalancer> {
    let name = project;
    let found = with_ownership(elb, name, find_alb(elb, name).await?, |lb| {
        lb.load_balancer_arn()
    })
    .await?;
    let planned = alb::plan(
        name,
        found.as_ref().map(|(lb, o)| (lb, *o)),
        &groups.alb,
        listening.internal,
    )?;
    let internal = listening.internal;
    let (arn, dns_name, canonical_zone_id) = plan.add(planned, move |step| {
        alb::apply(elb, name, network, groups, internal, step)
    });

    let target_group_arn =
        decide_target_group(elb, project, name.to_string(), network, listening, plan).await?;
    let alternate = match listening.strategy.shifts_traffic() {
        true => Some(
            decide_target_group(
                elb,
                project,
                alternate_target_group_name(name),
                network,
                listening,
                plan,
            )
            .await?,
        ),
        false => None,
    };

    let existing = match arn.known() {
        Some(arn) => listeners(elb, arn).await?,
        None => Vec::new(),
    };
    let forwarding = rules::forwarding_port(listening).0;
    let mut forwarding_listener = Id::after_apply();
    for (port, planned) in listeners::plan(name, &existing, &target_group_arn, listening) {
        let (lb, tg) = (arn.clone(), target_group_arn.clone());
        let listener = plan.add(planned, move |step| async move {
            listeners::apply(elb, name, &lb, &tg, listening, step).await
        });
        if port == forwarding {
            forwarding_listener = listener;
        }
    }
    // Where production traffic goes now: the production rule's favourite once a blue/green,
    // canary or linear deployment made the rule (it alternates between the two groups), else
    // the target group. A rolling service keeps deploying there after a switch from blue/green.
    let serving_target_group = match arn.known() {
        Some(lb) => rules::serving_target_group(elb, lb, listening)
            .await?
            .map(Id::Known)
            .unwrap_or_else(|| target_group_arn.clone()),
        None => target_group_arn.clone(),
    };
    let shift = match alternate {
        Some(alternate) => {
            // New rules forward to the group production uses now: ECS alternates the two.
            let alternate_serves = serving_target_group == alternate;
            let at = rules::At {
                lb: &arn,
                listener: forwarding_listener,
                groups: (target_group_arn.clone(), alternate),
                alternate_serves,
            };
            Some(rules::decide(elb, project, at, listening, plan).await?)
        }
        None => None,
    };
    Ok(LoadBalancer {
        arn,
        dns_name,
        canonical_zone_id,
        target_group_arn,
        serving_target_group,
        shift,
    })
}

/// The alternate target group of a blue/green, canary or linear deployment: `<name>-alt`, within
/// ELB's 32 characters.
pub fn alternate_target_group_name(project: &str) -> String {
    let base: String = project.chars().take(28).collect();
    format!("{}-alt", base.trim_end_matches('-'))
}

/// Finds the target group `name` and decides what it needs.
async fn decide_target_group<'a>(
    elb: &'a Client,
    project: &'a str,
    name: String,
    network: &'a Network,
    listening: &'a Listening<'a>,
    plan: &mut Plan<'a>,
) -> anyhow::Result<Id> {
    let found = with_ownership(elb, project, find_target_group(elb, &name).await?, |tg| {
        tg.target_group_arn()
    })
    .await?;
    let delay = match &found {
        Some((tg, true)) => {
            target_group::deregistration_delay(elb, tg.target_group_arn().unwrap_or_default())
                .await?
        }
        _ => None,
    };
    let planned = target_group::plan(
        project,
        &name,
        found.as_ref().map(|(tg, o)| (tg, *o, delay)),
        &network.vpc_id,
        listening,
    )?;
    Ok(plan.add(planned, move |step| async move {
        target_group::apply(elb, project, &name, &network.vpc_id, listening, step).await
    }))
}

pub async fn delete_listener(elb: &Client, arn: &str) -> anyhow::Result<()> {
    elb.delete_listener()
        .listener_arn(arn)
        .send()
        .await
        .map_err(|e| call_error("elasticloadbalancing:DeleteListener", e))?;
    Ok(())
}

/// Deletes the load balancer and waits until it is gone (its target group stays in use until then).
pub async fn delete_load_balancer(elb: &Client, arn: &str, wait: &Wait<'_>) -> anyhow::Result<()> {
    elb.delete_load_balancer()
        .load_balancer_arn(arn)
        .send()
        .await
        .map_err(|e| call_error("elasticloadbalancing:DeleteLoadBalancer", e))?;
    until_gone(&format!("load balancer {arn}"), wait, || async {
        match elb
            .describe_load_balancers()
            .load_balancer_arns(arn)
            .send()
            .await
        {
            Ok(out) => Ok(out.load_balancers().is_empty()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_load_balancer_not_found_exception()) =>
            {
                Ok(true)
            }
            Err(e) => Err(call_error("elasticloadbalancing:DescribeLoadBalancers", e)),
        }
    })
    .await
}

pub async fn delete_target_group(elb: &Client, arn: &str, wait: &Wait<'_>) -> anyhow::Result<()> {
    while_busy(wait, || {
        elb.delete_target_group().target_group_arn(arn).send()
    })
    .await
    .map_err(|e| call_error("elasticloadbalancing:DeleteTargetGroup", e))?;
    Ok(())
}
