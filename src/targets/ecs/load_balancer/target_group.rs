//! The target group `<name>` (and, for blue/green, canary and linear deployments, its alternate
//! `<name>-alt`): ip targets on the container port, health-checked on
//! `service.health_check_path` at `[service]`'s interval and thresholds, draining deregistered
//! targets for `service.deregistration_delay`.

use aws_sdk_elasticloadbalancingv2::types::{
    Matcher, ProtocolEnum, TargetGroup, TargetGroupAttribute, TargetTypeEnum,
};
use aws_sdk_elasticloadbalancingv2::Client;

use super::{not_ours, Listening};
use crate::aws::call_error;
use crate::aws::tags;
use crate::config::Health;
use crate::exit::{self, ExitStatus};
use crate::targets::ecs::{Id, Planned};
use crate::targets::{Action, Change};

const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";

/// What the target group needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetGroupStep {
    Create,
    /// Set its health check and draining to the configured ones.
    Converge {
        arn: String,
    },
}

/// The target group's deregistration delay, in seconds, when it says.
pub async fn deregistration_delay(elb: &Client, arn: &str) -> anyhow::Result<Option<u32>> {
    let out = elb
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| call_error("elasticloadbalancing:DescribeTargetGroupAttributes", e))?;
    Ok(out
        .attributes()
        .iter()
        .find(|a| a.key() == Some(DEREGISTRATION_DELAY))
        .and_then(|a| a.value())
        .and_then(|v| v.parse().ok()))
}

/// How the group's health check and draining differ from `health`, in words.
fn drift(tg: &TargetGroup, delay: Option<u32>, path: &str, health: &Health) -> Vec<String> {
    let mut what = Vec::new();
    if tg.health_check_path() != Some(path) {
        what.push(format!("health check path {path}"));
    }
    let found = |v: Option<i32>| v.and_then(|n| u32::try_from(n).ok());
    for (name, found, wanted, unit) in [
        (
            "health check every",
            found(tg.health_check_interval_seconds()),
            health.check_interval,
            " s",
        ),
        (
            "timeout",
            found(tg.health_check_timeout_seconds()),
            health.check_timeout(),
            " s",
        ),
        (
            "healthy after",
            found(tg.healthy_threshold_count()),
            health.healthy_threshold,
            "",
        ),
        (
            "unhealthy after",
            found(tg.unhealthy_threshold_count()),
            health.unhealthy_threshold,
            "",
        ),
        (
            "deregistration delay",
            delay,
            health.deregistration_delay,
            " s",
        ),
    ] {
        if found != Some(wanted) {
            let before = found
                .map(|n| format!("{n}{unit}"))
                .unwrap_or_else(|| "unset".into());
            what.push(format!("{name} {before} -> {wanted}{unit}"));
        }
    }
    what
}

/// Decides, from the target group found (with whether it is the project's and its
/// deregistration delay), what it needs. A port, VPC or target type that differs cannot change
/// in place, and is refused.
pub fn plan(
    project: &str,
    name: &str,
    found: Option<(&TargetGroup, bool, Option<u32>)>,
    vpc: &Id,
    listening: &Listening<'_>,
) -> anyhow::Result<Planned<TargetGroupStep>> {
    let port = i32::from(listening.container_port);
    let health = &listening.health;
    let Some((tg, ours, delay)) = found else {
        return Ok(Planned::change(
            Change::new("target group", name, Action::Create).because(format!(
                "ip targets on port {port}, health check {} every {} s, healthy after {}, draining {} s",
                listening.health_check_path,
                health.check_interval,
                health.healthy_threshold,
                health.deregistration_delay
            )),
            Id::after_apply(),
            TargetGroupStep::Create,
        ));
    };
    if !ours {
        return Err(not_ours("target group", name, project));
    }
    if tg.port() != Some(port)
        || tg.vpc_id() != vpc.known()
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
    let arn = tg.target_group_arn().unwrap_or_default().to_string();
    let what = drift(tg, delay, listening.health_check_path, health);
    Ok(if what.is_empty() {
        Planned::keep(
            Change::new("target group", name, Action::Keep),
            Id::Known(arn),
        )
    } else {
        Planned::change(
            Change::new("target group", name, Action::Update).because(what.join(", ")),
            Id::Known(arn.clone()),
            TargetGroupStep::Converge { arn },
        )
    })
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

async fn set_deregistration_delay(elb: &Client, arn: &str, health: &Health) -> anyhow::Result<()> {
    elb.modify_target_group_attributes()
        .target_group_arn(arn)
        .attributes(
            TargetGroupAttribute::builder()
                .key(DEREGISTRATION_DELAY)
                .value(health.deregistration_delay.to_string())
                .build(),
        )
        .send()
        .await
        .map_err(|e| call_error("elasticloadbalancing:ModifyTargetGroupAttributes", e))?;
    Ok(())
}

pub async fn apply(
    elb: &Client,
    project: &str,
    name: &str,
    vpc: &Id,
    listening: &Listening<'_>,
    step: TargetGroupStep,
) -> anyhow::Result<Option<Id>> {
    let health = &listening.health;
    match step {
        TargetGroupStep::Converge { arn } => {
            elb.modify_target_group()
                .target_group_arn(&arn)
                .health_check_path(listening.health_check_path)
                .health_check_interval_seconds(to_i32(health.check_interval))
                .health_check_timeout_seconds(to_i32(health.check_timeout()))
                .healthy_threshold_count(to_i32(health.healthy_threshold))
                .unhealthy_threshold_count(to_i32(health.unhealthy_threshold))
                .send()
                .await
                .map_err(|e| call_error("elasticloadbalancing:ModifyTargetGroup", e))?;
            set_deregistration_delay(elb, &arn, health).await?;
            Ok(None)
        }
        TargetGroupStep::Create => {
            let out = elb
                .create_target_group()
                .name(name)
                .protocol(ProtocolEnum::Http)
                .port(i32::from(listening.container_port))
                .vpc_id(vpc.applied("VPC")?)
                .target_type(TargetTypeEnum::Ip)
                .health_check_path(listening.health_check_path)
                .health_check_interval_seconds(to_i32(health.check_interval))
                .health_check_timeout_seconds(to_i32(health.check_timeout()))
                .healthy_threshold_count(to_i32(health.healthy_threshold))
                .unhealthy_threshold_count(to_i32(health.unhealthy_threshold))
                .matcher(Matcher::builder().http_code("200").build())
                .tags(tags::elbv2(project))
                .send()
                .await
                .map_err(|e| call_error("elasticloadbalancing:CreateTargetGroup", e))?;
            let arn = out
                .target_groups
                .unwrap_or_default()
                .into_iter()
                .next()
                .and_then(|t| t.target_group_arn)
                .unwrap_or_default();
            // CreateTargetGroup takes no attributes; a re-run converges it if this fails.
            set_deregistration_delay(elb, &arn, health).await?;
            Ok(Some(Id::Known(arn)))
        }
    }
}
