//! The Fargate service `<name>`: behind the target group, in the project's subnets with the tasks'
//! security group, deployed as `[deploy]` says (`rollout`). UpdateService is called only when
//! the task definition, the desired count, the subnets or security groups, the deployment
//! settings, or `--force` ask for it, and the id of the deployment this run opened is handed to
//! the rollout watcher.

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, LaunchType, NetworkConfiguration, PropagateTags, Service,
};
use aws_sdk_ecs::Client;

use super::wait::{until_gone, Wait};

use super::{Converge, Planned};
use crate::aws::call_error;
use crate::aws::tags;
use crate::targets::{Action, Change};

mod propagation;
pub mod rollout;
mod switch;
pub use rollout::{Rollout, ShiftResources};

mod found;
use found::still_there;
pub use found::{describe, is_ours, primary, production_rule, require, RunningShape};

/// Where and how the service runs.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    pub cluster: String,
    pub task_definition_arn: String,
    pub desired_count: u32,
    /// The target group the container is registered in; None for a worker, which has no load
    /// balancer.
    pub target: Option<LbTarget>,
    pub subnets: Vec<String>,
    /// `<name>-tasks` first, then the groups `[network]` names.
    pub security_groups: Vec<String>,
    /// Whether the tasks get public IPs: in public subnets they reach ECR through the internet
    /// gateway only with one; private tasks get none.
    pub public_ip: bool,
    /// Open a new deployment of the same task definition (the old `--force-new-deployment`).
    pub force: bool,
    /// How long ECS ignores a new task's failed load-balancer health checks (the model's load
    /// time); None keeps the service's.
    pub grace_period: Option<i32>,
    /// How ECS deploys; None keeps the service's settings and load balancer as they are (a
    /// rollback changes the revision only).
    pub rollout: Option<Rollout>,
}

/// Where the load balancer sends a service's requests: its target group, container and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbTarget {
    pub target_group_arn: String,
    pub container_name: String,
    pub container_port: u16,
}

/// What `ensure` did to the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// The deployment this run opened; None when nothing needed deploying.
    pub deployment_id: Option<String>,
    /// The task definition serving before this run; None for a new service.
    pub previous_task_definition: Option<String>,
    /// How long ECS refused the service's roles because IAM had not propagated them yet, when
    /// it did (see `propagation`).
    pub waited_for_iam: Option<std::time::Duration>,
}

/// Creates the service, or updates it when something changed. `existing` is the service as
/// [`describe`] found it (the caller needs it too, for the serving revision).
pub async fn ensure(
    ecs: &Client,
    cv: &Converge,
    spec: &ServiceSpec,
    existing: Option<Service>,
    changes: &mut Vec<Change>,
) -> anyhow::Result<Deployed> {
    ensure_named(ecs, cv, &cv.project, spec, existing, changes).await
}

/// [`ensure`] for the service `name` of the project (a worker's, `<project>-<worker>`).
pub async fn ensure_named(
    ecs: &Client,
    cv: &Converge,
    name: &str,
    spec: &ServiceSpec,
    existing: Option<Service>,
    changes: &mut Vec<Change>,
) -> anyhow::Result<Deployed> {
    let planned = plan(name, spec, existing);
    cv.carry_out(planned, changes, |step| {
        apply(ecs, &cv.project, name, spec, step)
    })
    .await
}

/// What the service needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceStep {
    Create,
    /// Update it to the spec. `serving` is its task definition before; `primary_before` its
    /// PRIMARY deployment, to tell whether the update opened a new one.
    Update {
        serving: String,
        primary_before: Option<String>,
        /// A change of strategy, made first in AWS's order (see `switch`).
        switch: Option<switch::Switch>,
    },
}

/// Decides, from the service found, whether it needs creating or updating, and why.
pub fn plan(
    name: &str,
    spec: &ServiceSpec,
    existing: Option<Service>,
) -> Planned<ServiceStep, Deployed> {
    let desired = i32::try_from(spec.desired_count).unwrap_or(i32::MAX);
    let Some(service) = existing else {
        return Planned::change(
            Change::new("ECS service", name, Action::Create).because(format!(
                "{} task(s) of {}",
                spec.desired_count,
                short_task_definition(&spec.task_definition_arn)
            )),
            Deployed {
                deployment_id: None,
                previous_task_definition: None,
                waited_for_iam: None,
            },
            ServiceStep::Create,
        );
    };
    let serving = service.task_definition().unwrap_or_default().to_string();
    let mut why = Vec::new();
    if serving != spec.task_definition_arn {
        why.push(format!(
            "{} -> {}",
            short_task_definition(&serving),
            short_task_definition(&spec.task_definition_arn)
        ));
    }
    if service.desired_count() != desired {
        why.push(format!(
            "desired count {} -> {desired}",
            service.desired_count()
        ));
    }
    if let Some(drift) = network_drift(&service, spec) {
        why.push(drift);
    }
    if let Some(grace) = spec.grace_period {
        let current = service.health_check_grace_period_seconds().unwrap_or(0);
        if current != grace {
            why.push(format!(
                "health-check grace period {current} s -> {grace} s"
            ));
        }
    }
    if let Some(drift) = spec
        .rollout
        .as_ref()
        .and_then(|r| rollout::drift(&service, r))
    {
        why.push(drift);
    }
    if spec.force {
        why.push("forced new deployment".to_string());
    }
    let found = Deployed {
        deployment_id: None,
        previous_task_definition: Some(serving.clone()),
        waited_for_iam: None,
    };
    let live = live_groups(&service);
    if why.is_empty() {
        return Planned::keep(
            Change::new("ECS service", name, Action::Keep)
                .because(format!("serving {}{live}", short_task_definition(&serving))),
            found,
        );
    }
    Planned::change(
        Change::new("ECS service", name, Action::Update)
            .because(format!("{}{live}", why.join(", "))),
        found,
        ServiceStep::Update {
            serving,
            primary_before: primary(&service),
            switch: switch::needed(&service, spec),
        },
    )
}

async fn apply(
    ecs: &Client,
    project: &str,
    name: &str,
    spec: &ServiceSpec,
    step: ServiceStep,
) -> anyhow::Result<Option<Deployed>> {
    let desired = i32::try_from(spec.desired_count).unwrap_or(i32::MAX);
    let (serving, primary_before, switch_waited) = match step {
        ServiceStep::Update {
            serving,
            mut primary_before,
            switch,
        } => {
            let mut waited = None;
            if let (Some(switch), Some(rollout)) = (switch, &spec.rollout) {
                let budget = std::time::Duration::from_secs(
                    u64::try_from(rollout.hook_timeout_minutes.max(1)).unwrap_or(15) * 60,
                );
                waited = switch::prepare(ecs, name, spec, switch, budget).await?;
                // The switch's own deployment is not this run's: only the update below opens
                // that, so it is told apart from the PRIMARY the switch left.
                primary_before = describe(ecs, &spec.cluster, name)
                    .await?
                    .as_ref()
                    .and_then(primary)
                    .or(primary_before);
            }
            (serving, primary_before, waited)
        }
        ServiceStep::Create => {
            let network = network_configuration(spec)?;
            let (created, waited_for_iam) = propagation::through(propagation::CREATE, || {
                ecs.create_service()
                    .cluster(&spec.cluster)
                    .service_name(name)
                    .task_definition(&spec.task_definition_arn)
                    .desired_count(desired)
                    .launch_type(LaunchType::Fargate)
                    .set_load_balancers(load_balancer(spec).map(|lb| vec![lb]))
                    .network_configuration(network.clone())
                    .deployment_configuration(rollout::deployment_configuration(
                        spec.rollout.as_ref().unwrap_or(&Rollout::rolling()),
                    ))
                    .set_health_check_grace_period_seconds(spec.grace_period)
                    .propagate_tags(PropagateTags::TaskDefinition)
                    .tags(tags::ecs(project))
                    .send()
            })
            .await;
            let created = created.map_err(|e| call_error("ecs:CreateService", e))?;
            return Ok(Some(Deployed {
                deployment_id: created.service.as_ref().and_then(primary),
                previous_task_definition: None,
                waited_for_iam,
            }));
        }
    };
    let network = network_configuration(spec)?;
    let (updated, waited_for_iam) = propagation::through(propagation::UPDATE, || {
        ecs.update_service()
            .cluster(&spec.cluster)
            .service(name)
            .task_definition(&spec.task_definition_arn)
            .desired_count(desired)
            .force_new_deployment(spec.force)
            .set_health_check_grace_period_seconds(spec.grace_period)
            .network_configuration(network.clone())
            .set_deployment_configuration(
                spec.rollout.as_ref().map(rollout::deployment_configuration),
            )
            .set_load_balancers(
                spec.rollout
                    .as_ref()
                    .and_then(|_| load_balancer(spec))
                    .map(|lb| vec![lb]),
            )
            .send()
    })
    .await;
    let updated = updated.map_err(|e| call_error("ecs:UpdateService", e))?;
    let after = updated.service.as_ref().and_then(primary);
    // A desired-count change alone opens no deployment: there is nothing new to watch for.
    let deployment_id = after.filter(|id| Some(id) != primary_before.as_ref());
    Ok(Some(Deployed {
        deployment_id,
        previous_task_definition: Some(serving),
        waited_for_iam: waited_for_iam.or(switch_waited),
    }))
}

/// "; live target group A, the next deployment starts in B" for a traffic-shifting service
/// (ECS alternates the two), else nothing.
fn live_groups(service: &Service) -> String {
    let Some(lb) = service.load_balancers().first() else {
        return String::new();
    };
    let Some(alternate) = lb
        .advanced_configuration()
        .and_then(|a| a.alternate_target_group_arn())
    else {
        return String::new();
    };
    format!(
        "; live target group {}, the next deployment starts in {}",
        target_group_name(lb.target_group_arn().unwrap_or_default()),
        target_group_name(alternate)
    )
}

/// `arn:...:targetgroup/housing-alt/0123` -> `housing-alt`.
pub fn target_group_name(arn: &str) -> &str {
    arn.split('/').nth(1).unwrap_or(arn)
}

fn load_balancer(spec: &ServiceSpec) -> Option<aws_sdk_ecs::types::LoadBalancer> {
    let target = spec.target.as_ref()?;
    Some(rollout::load_balancer(
        &target.target_group_arn,
        &target.container_name,
        target.container_port,
        spec.rollout.as_ref().and_then(|r| r.shift.as_ref()),
    ))
}

/// How the service's subnets or security groups differ from the spec, in words.
fn network_drift(service: &Service, spec: &ServiceSpec) -> Option<String> {
    let vpc = service
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration());
    let sorted = |items: &[String]| {
        let mut v = items.to_vec();
        v.sort();
        v
    };
    let (subnets, groups) = match vpc {
        Some(v) => (sorted(v.subnets()), sorted(v.security_groups())),
        None => (Vec::new(), Vec::new()),
    };
    let mut what = Vec::new();
    if subnets != sorted(&spec.subnets) {
        what.push(format!(
            "subnets {} -> {}",
            subnets.join(","),
            sorted(&spec.subnets).join(",")
        ));
    }
    if groups != sorted(&spec.security_groups) {
        what.push(format!(
            "security groups {} -> {}",
            groups.join(","),
            sorted(&spec.security_groups).join(",")
        ));
    }
    let public = vpc.and_then(|v| v.assign_public_ip()) == Some(&AssignPublicIp::Enabled);
    if public != spec.public_ip {
        what.push(if spec.public_ip {
            "public IPs for the tasks".to_string()
        } else {
            "no public IPs for the tasks".to_string()
        });
    }
    (!what.is_empty()).then(|| what.join(", "))
}

fn network_configuration(spec: &ServiceSpec) -> anyhow::Result<NetworkConfiguration> {
    Ok(NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .set_subnets(Some(spec.subnets.to_vec()))
                .set_security_groups(Some(spec.security_groups.to_vec()))
                // Public subnets without a NAT: tasks need a public address to pull from ECR.
                .assign_public_ip(if spec.public_ip {
                    AssignPublicIp::Enabled
                } else {
                    AssignPublicIp::Disabled
                })
                .build()?,
        )
        .build())
}

pub use crate::reports::short_task_definition;

/// Deletes the service: scaled to zero, deleted, and waited for until it has drained.
pub async fn delete(
    ecs: &Client,
    cluster: &str,
    name: &str,
    wait: &Wait<'_>,
) -> anyhow::Result<()> {
    ecs.update_service()
        .cluster(cluster)
        .service(name)
        .desired_count(0)
        .send()
        .await
        .map_err(|e| call_error("ecs:UpdateService", e))?;
    ecs.delete_service()
        .cluster(cluster)
        .service(name)
        .force(true)
        .send()
        .await
        .map_err(|e| call_error("ecs:DeleteService", e))?;
    until_gone(&format!("ECS service {name} (draining)"), wait, || async {
        Ok(!still_there(ecs, cluster, name).await?)
    })
    .await
}

#[cfg(test)]
mod tests;
