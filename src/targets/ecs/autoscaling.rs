//! The service's autoscaling (`[service.autoscaling]`): Application Auto Scaling's scalable target
//! on the service's desired count (min and max tasks) and one target-tracking policy, named
//! [`POLICY`], which is how mldeploy knows the registration is its own. Registered, updated or
//! kept by `up`; deregistered (with its policy) when the table is removed, and by `destroy`. A
//! registration without mldeploy's policy was made by someone else and is left alone.

use aws_sdk_applicationautoscaling::types::{
    MetricType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
    TargetTrackingScalingPolicyConfiguration,
};
use aws_sdk_applicationautoscaling::Client;

use super::Converge;
use crate::aws::call_error;
use crate::config::{Autoscaling, Metric};
use crate::targets::{Action, Change};

pub use crate::reports::status::{Policy, Registered, TRACKING_POLICY as POLICY};

fn dimension() -> ScalableDimension {
    ScalableDimension::EcsServiceDesiredCount
}

/// `service/<cluster>/<service>`: how Application Auto Scaling names an ECS service.
pub fn resource_id(cluster: &str, service: &str) -> String {
    format!("service/{cluster}/{service}")
}

/// The scalable target on the service and mldeploy's policy; None when nothing is registered.
pub async fn registered(client: &Client, resource_id: &str) -> anyhow::Result<Option<Registered>> {
    let targets = client
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(resource_id)
        .scalable_dimension(dimension())
        .send()
        .await
        .map_err(|e| call_error("application-autoscaling:DescribeScalableTargets", e))?;
    let Some(target) = targets.scalable_targets().first() else {
        return Ok(None);
    };
    let policies = client
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id)
        .scalable_dimension(dimension())
        .policy_names(POLICY)
        .send()
        .await
        .map_err(|e| call_error("application-autoscaling:DescribeScalingPolicies", e))?;
    let policy = policies
        .scaling_policies()
        .iter()
        .find(|p| p.policy_name() == POLICY)
        .and_then(|p| p.target_tracking_scaling_policy_configuration())
        .map(|c| {
            let predefined = c.predefined_metric_specification();
            let metric_type = predefined.map(|m| m.predefined_metric_type().as_str().to_string());
            Policy {
                metric: metric_type.as_deref().and_then(Metric::of_predefined),
                metric_type,
                target: c.target_value(),
                scale_in_cooldown: c.scale_in_cooldown().unwrap_or(0),
                scale_out_cooldown: c.scale_out_cooldown().unwrap_or(0),
                resource_label: predefined.and_then(|m| m.resource_label().map(str::to_string)),
            }
        });
    Ok(Some(Registered {
        min_count: target.min_capacity(),
        max_count: target.max_capacity(),
        policy,
    }))
}

/// `app/<lb>/<id>/targetgroup/<tg>/<id>`: the resource label of requests per target, from the
/// load balancer's and the target group's ARNs.
pub fn resource_label(load_balancer_arn: &str, target_group_arn: &str) -> Option<String> {
    let lb = load_balancer_arn.split_once(":loadbalancer/")?.1;
    let tg = target_group_arn.split_once(":targetgroup/")?.1;
    Some(format!("{lb}/targetgroup/{tg}"))
}

/// The desired count `up` asks for: the configured one for a new service, else the service's
/// own (the autoscaler's to set) raised to the minimum when below it.
pub fn desired_count(configured: u32, current: Option<i32>, min_count: Option<u32>) -> u32 {
    match (current.and_then(|c| u32::try_from(c).ok()), min_count) {
        (Some(current), Some(min)) => current.max(min),
        _ => configured,
    }
}

/// What `up` reads of a service's autoscaling before it deploys: the registration found (for a
/// service that exists), and the desired count to ask for: `configured` for a new service, else
/// the autoscaler's own raised to the minimum (mldeploy's, or one registered by someone else).
pub async fn before_deploy(
    client: &Client,
    resource_id: &str,
    existing: Option<&aws_sdk_ecs::types::Service>,
    wanted: Option<&Autoscaling>,
    configured: u32,
) -> anyhow::Result<(Option<Registered>, u32)> {
    let registered = match existing {
        Some(_) => registered(client, resource_id).await?,
        None => None,
    };
    let min_count = wanted.map(|a| a.min_count).or_else(|| {
        registered
            .as_ref()
            .map(|r| u32::try_from(r.min_count).unwrap_or(0))
    });
    let desired = desired_count(configured, existing.map(|s| s.desired_count()), min_count);
    Ok((registered, desired))
}

/// Converges the registration and the policy to `wanted` (removing mldeploy's when the table
/// is gone); `label` is the requests metric's resource label.
#[allow(clippy::too_many_arguments)] // the registration's parts, as found and as wanted
pub async fn ensure(
    client: &Client,
    cv: &Converge,
    table: &str,
    resource_id: &str,
    wanted: Option<&Autoscaling>,
    label: Option<String>,
    found: Option<Registered>,
    changes: &mut Vec<Change>,
) -> anyhow::Result<()> {
    let name = format!("{resource_id} desired count");
    let Some(wanted) = wanted else {
        match found {
            Some(r) if r.ours() => {
                changes.push(
                    Change::new("autoscaling", &name, Action::Delete)
                        .because(format!("no [{table}.autoscaling] in mldeploy.toml")),
                );
                if !cv.dry_run {
                    deregister(client, resource_id).await?;
                }
            }
            Some(r) => changes.push(
                Change::new("autoscaling", &name, Action::Keep)
                    .because(format!("{}: left as it is", r.describe())),
            ),
            None => {}
        }
        return Ok(());
    };
    let (min, max) = (
        i32::try_from(wanted.min_count).unwrap_or(i32::MAX),
        i32::try_from(wanted.max_count).unwrap_or(i32::MAX),
    );
    let range = format!("{}-{} tasks", wanted.min_count, wanted.max_count);
    let target_change = match &found {
        None => Some(Change::new("autoscaling target", &name, Action::Create).because(range)),
        Some(r) if (r.min_count, r.max_count) != (min, max) => Some(
            Change::new("autoscaling target", &name, Action::Update)
                .because(format!("{}-{} -> {range}", r.min_count, r.max_count)),
        ),
        Some(_) => {
            changes.push(Change::new("autoscaling target", &name, Action::Keep).because(range));
            None
        }
    };
    if let Some(change) = target_change {
        changes.push(change);
        if !cv.dry_run {
            register(client, resource_id, min, max).await?;
        }
    }
    let config = policy_config(wanted, label)?;
    let policy = Policy {
        metric: Some(wanted.metric),
        metric_type: Some(wanted.metric.predefined().to_string()),
        target: wanted.target,
        scale_in_cooldown: i32::try_from(wanted.scale_in_cooldown).unwrap_or(i32::MAX),
        scale_out_cooldown: i32::try_from(wanted.scale_out_cooldown).unwrap_or(i32::MAX),
        resource_label: config
            .predefined_metric_specification()
            .and_then(|m| m.resource_label().map(str::to_string)),
    };
    let said = wanted.metric.describe(wanted.target);
    let current = found.and_then(|r| r.policy);
    let action = match &current {
        None => Action::Create,
        Some(p) if *p != policy => Action::Update,
        Some(_) => Action::Keep,
    };
    changes.push(Change::new("scaling policy", POLICY, action).because(said));
    if action != Action::Keep && !cv.dry_run {
        client
            .put_scaling_policy()
            .policy_name(POLICY)
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(resource_id)
            .scalable_dimension(dimension())
            .policy_type(aws_sdk_applicationautoscaling::types::PolicyType::TargetTrackingScaling)
            .target_tracking_scaling_policy_configuration(config)
            .send()
            .await
            .map_err(|e| call_error("application-autoscaling:PutScalingPolicy", e))?;
    }
    Ok(())
}

/// After a blue/green, canary or linear deployment succeeded: production is in the other target
/// group (ECS alternates them), so the requests-per-target policy's resource label is moved to
/// it; a label left on the idle group would count no requests and scale the service in.
pub async fn follow_live_group(
    client: &Client,
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    cv: &Converge,
    production_rule: &str,
    wanted: &Autoscaling,
    printer: &crate::output::Printer,
) -> anyhow::Result<()> {
    if wanted.metric != Metric::Requests {
        return Ok(());
    }
    let Some(group) =
        super::load_balancer::rules::production_target_group(elb, production_rule).await?
    else {
        return Ok(());
    };
    // The rule's ARN names its load balancer: listener-rule/app/<name>/<id>/<listener>/<rule>.
    let Some(lb) = load_balancer_of_rule(production_rule) else {
        return Ok(());
    };
    let id = resource_id(&cv.project, &cv.project);
    let found = registered(client, &id).await?;
    let mut changes = Vec::new();
    ensure(
        client,
        cv,
        "service",
        &id,
        Some(wanted),
        resource_label(&lb, &group),
        found,
        &mut changes,
    )
    .await?;
    for c in changes.iter().filter(|c| c.action != Action::Keep) {
        printer.info(format!("  {c} (it follows the live target group)"));
    }
    Ok(())
}

/// `arn:...:listener-rule/app/n/id/l/r` -> `arn:...:loadbalancer/app/n/id`.
fn load_balancer_of_rule(rule_arn: &str) -> Option<String> {
    let (prefix, rest) = rule_arn.split_once(":listener-rule/")?;
    let mut parts = rest.split('/');
    let (kind, name, id) = (parts.next()?, parts.next()?, parts.next()?);
    Some(format!("{prefix}:loadbalancer/{kind}/{name}/{id}"))
}

fn policy_config(
    wanted: &Autoscaling,
    label: Option<String>,
) -> anyhow::Result<TargetTrackingScalingPolicyConfiguration> {
    let metric = PredefinedMetricSpecification::builder()
        .predefined_metric_type(MetricType::from(wanted.metric.predefined()))
        .set_resource_label(label.filter(|_| wanted.metric == Metric::Requests))
        .build()?;
    Ok(TargetTrackingScalingPolicyConfiguration::builder()
        .target_value(wanted.target)
        .predefined_metric_specification(metric)
        .scale_in_cooldown(i32::try_from(wanted.scale_in_cooldown).unwrap_or(i32::MAX))
        .scale_out_cooldown(i32::try_from(wanted.scale_out_cooldown).unwrap_or(i32::MAX))
        .build()?)
}

async fn register(client: &Client, resource_id: &str, min: i32, max: i32) -> anyhow::Result<()> {
    client
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id)
        .scalable_dimension(dimension())
        .min_capacity(min)
        .max_capacity(max)
        .send()
        .await
        .map_err(|e| call_error("application-autoscaling:RegisterScalableTarget", e))?;
    Ok(())
}

/// Deregisters the scalable target; Application Auto Scaling deletes its policies with it.
pub async fn deregister(client: &Client, resource_id: &str) -> anyhow::Result<()> {
    match client
        .deregister_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id)
        .scalable_dimension(dimension())
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // Gone already: what deleting it wanted.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_object_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(call_error(
            "application-autoscaling:DeregisterScalableTarget",
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rules_arn_names_its_load_balancer() {
        assert_eq!(
            load_balancer_of_rule(
                "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/housing/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
            )
            .as_deref(),
            Some("arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/housing/50dc6c495c0c9188")
        );
        assert_eq!(
            load_balancer_of_rule("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/1"),
            None
        );
    }

    #[test]
    fn the_requests_label_joins_the_load_balancer_and_target_group() {
        assert_eq!(
            resource_label(
                "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/housing/50dc6c495c0c9188",
                "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/housing/943f017f100becff"
            )
            .as_deref(),
            Some("app/housing/50dc6c495c0c9188/targetgroup/housing/943f017f100becff")
        );
        assert_eq!(resource_label("nonsense", "x"), None);
    }

    #[test]
    fn up_sets_the_count_only_for_a_new_service_or_one_below_the_minimum() {
        assert_eq!(desired_count(2, None, Some(1)), 2, "a new service");
        assert_eq!(
            desired_count(2, Some(5), Some(1)),
            5,
            "the autoscaler's count"
        );
        assert_eq!(
            desired_count(2, Some(0), Some(1)),
            1,
            "raised to the minimum"
        );
        assert_eq!(
            desired_count(2, Some(5), None),
            2,
            "no autoscaling: the file's"
        );
    }
}
