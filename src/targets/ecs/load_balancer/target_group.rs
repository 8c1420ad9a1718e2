//! The target group `<name>`: ip targets on the container port, health-checked on
//! `service.health_check_path` every 30 s.

use aws_sdk_elasticloadbalancingv2::types::{Matcher, ProtocolEnum, TargetGroup, TargetTypeEnum};
use aws_sdk_elasticloadbalancingv2::Client;

use super::{not_ours, Listening, HEALTH_CHECK_INTERVAL_SECONDS};
use crate::aws::call_error;
use crate::aws::tags;
use crate::exit::{self, ExitStatus};
use crate::targets::ecs::{Id, Planned};
use crate::targets::{Action, Change};

/// What the target group needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetGroupStep {
    Create,
    /// Set its health check to the configured path and interval.
    SetHealthCheck {
        arn: String,
    },
}

/// Decides, from the target group found (with whether it is the project's), what it needs. A
/// port, VPC or target type that differs cannot change in place, and is refused.
pub fn plan(
    name: &str,
    found: Option<(&TargetGroup, bool)>,
    vpc: &Id,
    listening: &Listening<'_>,
) -> anyhow::Result<Planned<TargetGroupStep>> {
    let port = i32::from(listening.container_port);
    let Some((tg, ours)) = found else {
        return Ok(Planned::change(
            Change::new("target group", name, Action::Create).because(format!(
                "ip targets on port {port}, health check {} every {HEALTH_CHECK_INTERVAL_SECONDS} s",
                listening.health_check_path
            )),
            Id::AfterApply,
            TargetGroupStep::Create,
        ));
    };
    if !ours {
        return Err(not_ours("target group", name, name));
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
    let mut what = Vec::new();
    if tg.health_check_path() != Some(listening.health_check_path) {
        what.push(format!("health check path {}", listening.health_check_path));
    }
    if tg.health_check_interval_seconds() != Some(HEALTH_CHECK_INTERVAL_SECONDS) {
        what.push(format!(
            "health check every {HEALTH_CHECK_INTERVAL_SECONDS} s"
        ));
    }
    Ok(if what.is_empty() {
        Planned::keep(
            Change::new("target group", name, Action::Keep),
            Id::Known(arn),
        )
    } else {
        Planned::change(
            Change::new("target group", name, Action::Update).because(what.join(", ")),
            Id::Known(arn.clone()),
            TargetGroupStep::SetHealthCheck { arn },
        )
    })
}

pub async fn apply(
    elb: &Client,
    name: &str,
    vpc: &Id,
    listening: &Listening<'_>,
    step: TargetGroupStep,
) -> anyhow::Result<Option<Id>> {
    match step {
        TargetGroupStep::SetHealthCheck { arn } => {
            elb.modify_target_group()
                .target_group_arn(&arn)
                .health_check_path(listening.health_check_path)
                .health_check_interval_seconds(HEALTH_CHECK_INTERVAL_SECONDS)
                .send()
                .await
                .map_err(|e| call_error("elasticloadbalancing:ModifyTargetGroup", e))?;
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
                .health_check_interval_seconds(HEALTH_CHECK_INTERVAL_SECONDS)
                .matcher(Matcher::builder().http_code("200").build())
                .tags(tags::elbv2(name))
                .send()
                .await
                .map_err(|e| call_error("elasticloadbalancing:CreateTargetGroup", e))?;
            Ok(Some(Id::Known(
                out.target_groups
                    .unwrap_or_default()
                    .into_iter()
                    .next()
                    .and_then(|t| t.target_group_arn)
                    .unwrap_or_default(),
            )))
        }
    }
}
