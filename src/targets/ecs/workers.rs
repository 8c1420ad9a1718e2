//! The project's workers on ECS: one service `<project>-<worker>` each, on the project's cluster,
//! subnets and tasks' security group, with no load balancer. Each has its own task definition
//! family `<project>-<worker>` (the service's revision with the worker's command, size,
//! environment and secrets, its own task role and log stream prefix, and no port or health
//! check of the model API's), registered only when it changed, and deployed with the circuit
//! breaker like the service. A worker the file no longer names is deleted by `up`.

use std::collections::BTreeSet;

use aws_sdk_ecs::Client;

use super::service::{self, Deployed, Rollout, ServiceSpec};
use super::task_definition::{self, NameValue, ReleaseTags, SecretSpec, TaskSpec};
use super::wait::Wait;
use super::{autoscaling, iam, releases, Converge};
use crate::aws::tags;
use crate::config::{Config, Worker};
use crate::targets::{Action, Change};

/// A worker's service as `up` deployed it, for the watch and for taking the release back.
#[derive(Debug, Clone)]
pub struct WorkerDeployed {
    /// The worker's name in `[workers.<name>]`.
    pub worker: String,
    /// Its ECS service, `<project>-<worker>`.
    pub service: String,
    pub spec: ServiceSpec,
    pub deployed: Deployed,
}

/// Where the project's tasks run: what every worker's service shares with the model API's.
#[derive(Debug, Clone)]
pub struct Placement {
    pub cluster: String,
    /// False in a dry run that creates the cluster: there is nothing in it to find yet.
    pub cluster_exists: bool,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub public_ip: bool,
    /// `up --force`: a new deployment of each worker too.
    pub force: bool,
}

/// The worker's task definition: the model API's rendered revision (its image, execution role,
/// platform and log group) with the worker's own command, size, environment, secrets and role.
pub fn task_spec(web: &TaskSpec, project: &str, worker: &Worker, task_role_arn: &str) -> TaskSpec {
    let family = worker.service_name(project);
    let mut spec = web.clone();
    spec.family = family.clone();
    spec.cpu = worker.cpu.to_string();
    spec.memory = worker.memory.to_string();
    spec.task_role_arn = task_role_arn.to_string();
    spec.container_definitions.truncate(1);
    if let Some(container) = spec.container_definitions.first_mut() {
        let model: Vec<NameValue> = container
            .environment
            .iter()
            .filter(|e| worker.model && crate::config::RESERVED_ENV.contains(&e.name.as_str()))
            .cloned()
            .collect();
        container.name = worker.name.clone();
        container.command = worker.command.clone();
        container.port_mappings.clear();
        container.health_check = None;
        container.environment = model
            .into_iter()
            .chain(worker.environment.iter().map(|(name, value)| NameValue {
                name: name.clone(),
                value: value.clone(),
            }))
            .collect();
        container.secrets = worker
            .secrets
            .iter()
            .map(|(name, arn)| SecretSpec {
                name: name.clone(),
                value_from: arn.clone(),
            })
            .collect();
        if let Some(log) = container.log_configuration.as_mut() {
            if log.options.contains_key("awslogs-stream-prefix") {
                log.options
                    .insert("awslogs-stream-prefix".to_string(), family.clone());
            }
        }
    }
    spec.normalized()
}

/// Registers each worker's revision when it changed, and creates or updates its service; then
/// deletes the services of workers the file no longer names. In a dry run, decides the same and
/// changes nothing.
#[allow(clippy::too_many_arguments)] // the release's parts every worker shares
pub async fn ensure(
    aws: &crate::aws::Aws,
    cv: &Converge,
    config: &Config,
    web: &TaskSpec,
    release: &ReleaseTags,
    roles: &iam::Roles,
    at: &Placement,
    wait: &Wait<'_>,
    images: &std::collections::BTreeMap<String, String>,
    changes: &mut Vec<Change>,
) -> anyhow::Result<Vec<WorkerDeployed>> {
    let project = cv.project.as_str();
    let ecs = &aws.ecs();
    let scaling = aws.autoscaling();
    let mut deployed = Vec::new();
    for worker in &config.workers {
        let name = worker.service_name(project);
        let role = match roles.workers.get(&worker.name) {
            Some(id) => cv.text(id, "worker task role")?,
            None => anyhow::bail!(
                "internal error: no task role was made for worker {}; please report this",
                worker.name
            ),
        };
        let mut spec = task_spec(web, project, worker, &role);
        // A worker with its own image runs it; the others the project's.
        if let Some(image) = images.get(&worker.name) {
            spec = spec.with_image(image);
        }
        let existing = match at.cluster_exists {
            true => service::describe(ecs, &at.cluster, &name).await?,
            false => None,
        };
        // With autoscaling the desired count is the autoscaler's, as for the model API.
        // `service/<cluster name>/<service name>`: the cluster is named for the project (the
        // placement holds its ARN, which ECS's calls take and Application Auto Scaling's do not).
        let scaled = autoscaling::resource_id(project, &name);
        let (registered, desired_count) = autoscaling::before_deploy(
            &scaling,
            &scaled,
            existing.as_ref(),
            worker.autoscaling.as_ref(),
            worker.desired_count,
        )
        .await?;
        let serving = existing
            .as_ref()
            .and_then(|s| s.task_definition().map(str::to_string));
        let td = task_definition::ensure_registered(
            ecs,
            cv,
            &spec,
            release,
            serving.as_deref(),
            changes,
        )
        .await?;
        let service_spec = ServiceSpec {
            cluster: at.cluster.clone(),
            task_definition_arn: cv.text(&td, "worker task definition")?,
            desired_count,
            target: None,
            subnets: at.subnets.clone(),
            security_groups: at.security_groups.clone(),
            public_ip: at.public_ip,
            force: at.force,
            grace_period: None,
            rollout: Some(Rollout::rolling()),
        };
        let done = service::ensure_named(ecs, cv, &name, &service_spec, existing, changes).await?;
        let table = format!("workers.{}", worker.name);
        let wanted = worker.autoscaling.as_ref();
        autoscaling::ensure(
            &scaling, cv, &table, &scaled, wanted, None, registered, changes,
        )
        .await?;
        deployed.push(WorkerDeployed {
            worker: worker.name.clone(),
            service: name,
            spec: service_spec,
            deployed: done,
        });
    }
    if at.cluster_exists {
        remove_stale(aws, cv, config, &at.cluster, wait, changes).await?;
    }
    Ok(deployed)
}

/// The worker services in the project's cluster, which exists (every service there but the
/// model API's).
pub async fn services_in_cluster(ecs: &Client, project: &str) -> anyhow::Result<Vec<String>> {
    let pages: Vec<_> =
        crate::all_pages!(ecs.list_services().cluster(project), "ecs:ListServices")?;
    let mut names: Vec<String> = pages
        .iter()
        .flat_map(|p| p.service_arns())
        .filter_map(|arn| arn.rsplit('/').next())
        .filter(|name| *name != project && name.starts_with(&format!("{project}-")))
        .map(str::to_string)
        .collect();
    names.sort();
    Ok(names)
}

/// The worker names whose services are in the cluster but not in the file: deleted, with
/// their task definitions and roles, so a removed worker stops running.
async fn remove_stale(
    aws: &crate::aws::Aws,
    cv: &Converge,
    config: &Config,
    cluster: &str,
    wait: &Wait<'_>,
    changes: &mut Vec<Change>,
) -> anyhow::Result<()> {
    let (ecs, scaling, iam_client) = (&aws.ecs(), &aws.autoscaling(), &aws.iam());
    let project = cv.project.as_str();
    let wanted: BTreeSet<String> = config
        .workers
        .iter()
        .map(|w| w.service_name(project))
        .collect();
    for name in services_in_cluster(ecs, project).await? {
        if wanted.contains(&name) {
            continue;
        }
        let Some(found) = service::describe(ecs, cluster, &name).await? else {
            continue;
        };
        let arn = crate::aws::returned(found.service_arn(), "ecs:DescribeServices", "service ARN")?;
        if !service::is_ours(ecs, arn, project).await? {
            continue;
        }
        let revisions = releases::arns(ecs, &name, None).await?;
        let role = iam::worker_role_name(project, name.trim_start_matches(&format!("{project}-")));
        changes.push(
            Change::new("ECS service", &name, Action::Delete).because(format!(
                "no [workers.{}] in {}; with its {} task definition(s) and role {role}",
                name.trim_start_matches(&format!("{project}-")),
                crate::config::FILE_NAME,
                revisions.len()
            )),
        );
        let scaled = autoscaling::resource_id(project, &name);
        let registered = autoscaling::registered(scaling, &scaled).await?;
        if cv.dry_run {
            continue;
        }
        // The autoscaler stops moving the count first, as `destroy` does it.
        if registered.is_some_and(|r| r.ours()) {
            autoscaling::deregister(scaling, &scaled).await?;
        }
        service::delete(ecs, cluster, &name, wait).await?;
        for arn in &revisions {
            task_definition::deregister(ecs, arn).await?;
        }
        if let Some(found) = iam::find_role(iam_client, &role).await? {
            if tags::is_ours(found.tags(), project) {
                iam::delete_role(iam_client, &role).await?;
            }
        }
    }
    Ok(())
}

/// Whether a worker's revision carries the project's tag (`up` registers them with it).
pub async fn revision_is_ours(ecs: &Client, arn: &str, project: &str) -> anyhow::Result<bool> {
    let out = ecs
        .describe_task_definition()
        .task_definition(arn)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(|e| crate::aws::call_error("ecs:DescribeTaskDefinition", e))?;
    Ok(tags::value_of(out.tags(), super::PROJECT_TAG) == Some(project))
}
