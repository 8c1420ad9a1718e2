//! The service as ECS has it: found (ACTIVE, or still draining after a delete), checked to be the
//! project's, and read for what a rollback keeps (its shape), its production rule and its PRIMARY
//! deployment.

use aws_sdk_ecs::types::{AssignPublicIp, Service};
use aws_sdk_ecs::Client;

use super::ServiceSpec;
use crate::aws::call_error;
use crate::aws::tags;

/// The service as ECS has it, if it is ACTIVE.
/// A missing cluster is no service, not an error.
pub async fn describe(ecs: &Client, cluster: &str, name: &str) -> anyhow::Result<Option<Service>> {
    Ok(described(ecs, cluster, name)
        .await?
        .into_iter()
        .find(|s| s.status() == Some("ACTIVE")))
}

/// Whether ECS still describes the service as ACTIVE or DRAINING: a deleted service drains (its
/// tasks stop) before it is INACTIVE, and only then is it gone
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html).
pub(super) async fn still_there(ecs: &Client, cluster: &str, name: &str) -> anyhow::Result<bool> {
    Ok(described(ecs, cluster, name)
        .await?
        .iter()
        .any(|s| matches!(s.status(), Some("ACTIVE" | "DRAINING"))))
}

/// Every service ECS describes by the name, whatever its status.
async fn described(ecs: &Client, cluster: &str, name: &str) -> anyhow::Result<Vec<Service>> {
    let out = match ecs
        .describe_services()
        .cluster(cluster)
        .services(name)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_cluster_not_found_exception()) =>
        {
            return Ok(Vec::new())
        }
        Err(e) => return Err(call_error("ecs:DescribeServices", e)),
    };
    Ok(out.services.unwrap_or_default())
}

/// Whether the service carries the project's tag.
pub async fn is_ours(ecs: &Client, service_arn: &str, project: &str) -> anyhow::Result<bool> {
    let listed = ecs
        .list_tags_for_resource()
        .resource_arn(service_arn)
        .send()
        .await
        .map_err(|e| call_error("ecs:ListTagsForResource", e))?;
    Ok(tags::is_ours(listed.tags(), project))
}

/// The project's service, which `status` and `rollback` need: none is the environment's fault
/// (exit 3), with the way out.
pub async fn require(ecs: &Client, project: &str, region: &str) -> anyhow::Result<Service> {
    describe(ecs, project, project).await?.ok_or_else(|| {
        crate::exit::error(
            crate::exit::ExitStatus::Environment,
            format!("nothing is deployed for {project} in {region}: no ECS service {project} in cluster {project}. Run `mldeploy up` first"),
        )
    })
}

/// The spec of a service as it runs: what a rollback keeps while it changes the revision.
#[derive(Debug, Clone)]
pub struct RunningShape {
    /// Where its load balancer sends requests; None for a worker.
    pub target: Option<super::LbTarget>,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub public_ip: bool,
    pub desired_count: u32,
}

impl RunningShape {
    pub fn of(service: &Service) -> anyhow::Result<RunningShape> {
        let name = service.service_name().unwrap_or_default();
        let target = service.load_balancers().first().map(|lb| super::LbTarget {
            target_group_arn: lb.target_group_arn().unwrap_or_default().to_string(),
            container_name: lb.container_name().unwrap_or(name).to_string(),
            container_port: lb
                .container_port()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(80),
        });
        let vpc = service
            .network_configuration()
            .and_then(|n| n.awsvpc_configuration());
        Ok(RunningShape {
            target,
            subnets: vpc.map(|v| v.subnets().to_vec()).unwrap_or_default(),
            security_groups: vpc
                .map(|v| v.security_groups().to_vec())
                .unwrap_or_default(),
            public_ip: vpc.and_then(|v| v.assign_public_ip()) == Some(&AssignPublicIp::Enabled),
            desired_count: u32::try_from(service.desired_count()).unwrap_or(0),
        })
    }

    /// The service spec that keeps this shape and runs `task_definition_arn`.
    pub fn spec(&self, cluster: &str, task_definition_arn: &str) -> ServiceSpec {
        ServiceSpec {
            cluster: cluster.to_string(),
            task_definition_arn: task_definition_arn.to_string(),
            desired_count: self.desired_count,
            target: self.target.clone(),
            subnets: self.subnets.clone(),
            security_groups: self.security_groups.clone(),
            public_ip: self.public_ip,
            force: false,
            grace_period: None,
            rollout: None,
        }
    }
}

/// The production listener rule ECS shifts a blue/green, canary or linear service's traffic
/// with; None for a rolling service.
pub fn production_rule(service: &Service) -> Option<&str> {
    let strategy = service
        .deployment_configuration()
        .and_then(|c| c.strategy())
        .map(|s| s.as_str());
    if matches!(strategy, None | Some("ROLLING")) {
        return None;
    }
    service
        .load_balancers()
        .first()
        .and_then(|lb| lb.advanced_configuration())
        .and_then(|a| a.production_listener_rule())
}

/// The PRIMARY deployment's id.
pub fn primary(service: &Service) -> Option<String> {
    service
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
        .and_then(|d| d.id())
        .map(str::to_string)
}
