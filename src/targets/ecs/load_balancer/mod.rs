//! The Application Load Balancer `<name>`, its target group `<name>` (target type ip, health check
//! on `service.health_check_path` every 30 s) and its listeners: HTTP :80 forwarding to the target
//! group, or, with a certificate, HTTPS :443 forwarding and HTTP :80 redirecting to it.

use aws_sdk_elasticloadbalancingv2::types::{
    Action as ListenerAction, ActionTypeEnum, Certificate, Listener, LoadBalancer as Alb,
    LoadBalancerSchemeEnum, LoadBalancerTypeEnum, Matcher, ProtocolEnum, RedirectActionConfig,
    RedirectActionStatusCodeEnum, TargetGroup, TargetTypeEnum,
};
use aws_sdk_elasticloadbalancingv2::Client;

use super::network::{Network, TO_BE_CREATED};
use super::security::SecurityGroups;
use super::Converge;
use crate::aws::call_error;
use crate::aws::tags;
use crate::exit::{self, ExitStatus};
use crate::targets::{Action, Change};

pub const HEALTH_CHECK_INTERVAL_SECONDS: i32 = 30;

/// What the service is attached to, and where users reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancer {
    pub arn: String,
    pub dns_name: String,
    pub target_group_arn: String,
}

/// What the load balancer needs to know about the service.
#[derive(Debug, Clone)]
pub struct Listening<'a> {
    pub container_port: u16,
    pub health_check_path: &'a str,
    pub certificate_arn: Option<&'a str>,
}

impl Listening<'_> {
    /// The ports the load balancer listens on (and its security group opens).
    pub fn ports(&self) -> Vec<u16> {
        if self.certificate_arn.is_some() {
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

/// The service's URL: HTTPS when a certificate is configured, else HTTP.
pub fn url(dns_name: &str, certificate_arn: Option<&str>) -> String {
    let scheme = if certificate_arn.is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{dns_name}")
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

fn not_ours(kind: &str, name: &str, project: &str) -> anyhow::Error {
    exit::error(
        ExitStatus::Environment,
        format!(
            "{}: mldeploy will not take over a {kind} it did not create",
            tags::not_ours(&format!("{kind} {name}"), project)
        ),
    )
}

pub async fn ensure(
    elb: &Client,
    cv: &Converge,
    network: &Network,
    groups: &SecurityGroups,
    listening: &Listening<'_>,
    changes: &mut Vec<Change>,
) -> anyhow::Result<LoadBalancer> {
    let (arn, dns_name) = ensure_alb(elb, cv, network, groups, changes).await?;
    let target_group_arn =
        ensure_target_group(elb, cv, &network.vpc_id, listening, changes).await?;
    ensure_listeners(elb, cv, &arn, &target_group_arn, listening, changes).await?;
    Ok(LoadBalancer {
        arn,
        dns_name,
        target_group_arn,
    })
}

async fn ensure_alb(
    elb: &Client,
    cv: &Converge,
    network: &Network,
    groups: &SecurityGroups,
    changes: &mut Vec<Change>,
) -> anyhow::Result<(String, String)> {
    let name = cv.project.as_str();
    if let Some(lb) = find_alb(elb, name).await? {
        let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
        if !is_ours(elb, &arn, name).await? {
            return Err(not_ours("load balancer", name, name));
        }
        let mut current: Vec<&str> = lb.security_groups().iter().map(String::as_str).collect();
        current.sort();
        if current == [groups.alb.as_str()] {
            changes.push(
                Change::new("load balancer", name, Action::Keep)
                    .because(lb.dns_name().unwrap_or_default()),
            );
        } else {
            if !cv.dry_run {
                elb.set_security_groups()
                    .load_balancer_arn(&arn)
                    .security_groups(&groups.alb)
                    .send()
                    .await
                    .map_err(|e| call_error("elasticloadbalancing:SetSecurityGroups", e))?;
            }
            changes.push(
                Change::new("load balancer", name, Action::Update)
                    .because(format!("security group {}", groups.alb)),
            );
        }
        return Ok((arn, lb.dns_name().unwrap_or_default().to_string()));
    }
    changes.push(
        Change::new("load balancer", name, Action::Create)
            .because("internet-facing, in both public subnets"),
    );
    if cv.dry_run {
        return Ok((TO_BE_CREATED.to_string(), TO_BE_CREATED.to_string()));
    }
    let out = elb
        .create_load_balancer()
        .name(name)
        .r#type(LoadBalancerTypeEnum::Application)
        .scheme(LoadBalancerSchemeEnum::InternetFacing)
        .set_subnets(Some(network.subnet_ids.clone()))
        .security_groups(&groups.alb)
        .tags(tags::elbv2(name))
        .send()
        .await
        .map_err(|e| call_error("elasticloadbalancing:CreateLoadBalancer", e))?;
    let lb = out
        .load_balancers
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| {
            anyhow::anyhow!("elasticloadbalancing:CreateLoadBalancer returned no load balancer")
        })?;
    Ok((
        lb.load_balancer_arn.unwrap_or_default(),
        lb.dns_name.unwrap_or_default(),
    ))
}

async fn ensure_target_group(
    elb: &Client,
    cv: &Converge,
    vpc_id: &str,
    listening: &Listening<'_>,
    changes: &mut Vec<Change>,
) -> anyhow::Result<String> {
    let name = cv.project.as_str();
    let port = i32::from(listening.container_port);
    if let Some(tg) = find_target_group(elb, name).await? {
        let arn = tg.target_group_arn().unwrap_or_default().to_string();
        if !is_ours(elb, &arn, name).await? {
            return Err(not_ours("target group", name, name));
        }
        if tg.port() != Some(port)
            || tg.vpc_id() != Some(vpc_id)
            || tg.target_type() != Some(&TargetTypeEnum::Ip)
        {
            return Err(exit::error(
                ExitStatus::Usage,
                format!(
                    "target group {name} routes to port {} in {}, and service.port is now {port}: a target group's port cannot change in place. Run `mldeploy destroy` and `mldeploy up` to replace it, or set service.port back",
                    tg.port().unwrap_or_default(),
                    tg.vpc_id().unwrap_or_default()
                ),
            ));
        }
        let mut what = Vec::new();
        if tg.health_check_path() != Some(listening.health_check_path) {
            what.push(format!("health check path {}", listening.health_check_path));
        }
        if tg.health_check_interval_seconds() != Some(HEALTH_CHECK_INTERVAL_SECONDS) {
            what.push(format!(
                "health check every {HEALTH_CHECK_INTERVAL_SECONDS} s"
            ));
        }
        if what.is_empty() {
            changes.push(Change::new("target group", name, Action::Keep));
        } else {
            if !cv.dry_run {
                elb.modify_target_group()
                    .target_group_arn(&arn)
                    .health_check_path(listening.health_check_path)
                    .health_check_interval_seconds(HEALTH_CHECK_INTERVAL_SECONDS)
                    .send()
                    .await
                    .map_err(|e| call_error("elasticloadbalancing:ModifyTargetGroup", e))?;
            }
            changes
                .push(Change::new("target group", name, Action::Update).because(what.join(", ")));
        }
        return Ok(arn);
    }
    changes.push(
        Change::new("target group", name, Action::Create).because(format!(
            "ip targets on port {port}, health check {} every {HEALTH_CHECK_INTERVAL_SECONDS} s",
            listening.health_check_path
        )),
    );
    if cv.dry_run {
        return Ok(TO_BE_CREATED.to_string());
    }
    let out = elb
        .create_target_group()
        .name(name)
        .protocol(ProtocolEnum::Http)
        .port(port)
        .vpc_id(vpc_id)
        .target_type(TargetTypeEnum::Ip)
        .health_check_path(listening.health_check_path)
        .health_check_interval_seconds(HEALTH_CHECK_INTERVAL_SECONDS)
        .matcher(Matcher::builder().http_code("200").build())
        .tags(tags::elbv2(name))
        .send()
        .await
        .map_err(|e| call_error("elasticloadbalancing:CreateTargetGroup", e))?;
    Ok(out
        .target_groups
        .unwrap_or_default()
        .into_iter()
        .next()
        .and_then(|t| t.target_group_arn)
        .unwrap_or_default())
}

/// The listeners wanted: (port, protocol, default action).
fn wanted_listeners(
    target_group_arn: &str,
    listening: &Listening<'_>,
) -> Vec<(i32, ProtocolEnum, ListenerAction)> {
    let forward = ListenerAction::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(target_group_arn)
        .build();
    match listening.certificate_arn {
        None => vec![(80, ProtocolEnum::Http, forward)],
        Some(_) => {
            let redirect = ListenerAction::builder()
                .r#type(ActionTypeEnum::Redirect)
                .redirect_config(
                    RedirectActionConfig::builder()
                        .protocol("HTTPS")
                        .port("443")
                        .status_code(RedirectActionStatusCodeEnum::Http301)
                        .build(),
                )
                .build();
            vec![
                (443, ProtocolEnum::Https, forward),
                (80, ProtocolEnum::Http, redirect),
            ]
        }
    }
}

fn same_action(listener: &Listener, wanted: &ListenerAction) -> bool {
    let Some(current) = listener.default_actions().first() else {
        return false;
    };
    current.r#type() == wanted.r#type()
        && current.target_group_arn() == wanted.target_group_arn()
        && current.redirect_config().and_then(|r| r.protocol())
            == wanted.redirect_config().and_then(|r| r.protocol())
}

async fn ensure_listeners(
    elb: &Client,
    cv: &Converge,
    lb_arn: &str,
    target_group_arn: &str,
    listening: &Listening<'_>,
    changes: &mut Vec<Change>,
) -> anyhow::Result<()> {
    let existing = if lb_arn == TO_BE_CREATED {
        Vec::new()
    } else {
        listeners(elb, lb_arn).await?
    };
    for (port, protocol, action) in wanted_listeners(target_group_arn, listening) {
        let label = format!("{}:{port}", protocol.as_str());
        let what = match action.r#type() {
            Some(ActionTypeEnum::Redirect) => "redirect to HTTPS:443".to_string(),
            _ => format!("forward to target group {}", cv.project),
        };
        let current = existing.iter().find(|l| l.port() == Some(port));
        let certificate = listening
            .certificate_arn
            .filter(|_| protocol == ProtocolEnum::Https);
        match current {
            Some(l) if same_action(l, &action) && l.protocol() == Some(&protocol) => {
                changes.push(Change::new("listener", label, Action::Keep).because(what));
            }
            Some(l) => {
                if !cv.dry_run {
                    elb.modify_listener()
                        .listener_arn(l.listener_arn().unwrap_or_default())
                        .protocol(protocol.clone())
                        .set_certificates(
                            certificate
                                .map(|c| vec![Certificate::builder().certificate_arn(c).build()]),
                        )
                        .default_actions(action)
                        .send()
                        .await
                        .map_err(|e| call_error("elasticloadbalancing:ModifyListener", e))?;
                }
                changes.push(Change::new("listener", label, Action::Update).because(what));
            }
            None => {
                if !cv.dry_run {
                    elb.create_listener()
                        .load_balancer_arn(lb_arn)
                        .port(port)
                        .protocol(protocol.clone())
                        .set_certificates(
                            certificate
                                .map(|c| vec![Certificate::builder().certificate_arn(c).build()]),
                        )
                        .default_actions(action)
                        .tags(tags::elbv2(&cv.project))
                        .send()
                        .await
                        .map_err(|e| call_error("elasticloadbalancing:CreateListener", e))?;
                }
                changes.push(Change::new("listener", label, Action::Create).because(what));
            }
        }
    }
    Ok(())
}
