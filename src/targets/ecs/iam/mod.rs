//! The two IAM roles, each with one inline policy scoped to this project. `<name>-execution` lets
//! ECS pull the project's image, write to its log group and read the secrets `[service.secrets]`
//! names, those only (narrower than AWS's managed AmazonECSTaskExecutionRolePolicy, which allows
//! every repository and log group). `<name>-task`
//! is what the container runs as: it reads objects under the model prefix of the model bucket,
//! and nothing else. With a blue/green, canary or linear deployment, `<name>-lb-infrastructure`
//! is what ECS assumes to shift traffic: the actions of AWS's
//! AmazonECSInfrastructureRolePolicyForLoadBalancers for Application Load Balancers, on this
//! project's load balancer, target groups and rules only.

use aws_sdk_iam::types::Role;
use aws_sdk_iam::Client;
use serde_json::Value;

use super::{Id, Plan, Planned};
use crate::aws::call_error;
use crate::aws::tags;
use crate::config::SecretResource;
use crate::exit::{self, ExitStatus};
use crate::targets::{Action, Change};

mod policies;
use policies::trust_policy;
pub use policies::{execution_policy, infrastructure_policy, model_read_policy};

pub const EXECUTION_POLICY_NAME: &str = "mldeploy-pull-and-log";
pub const MODEL_POLICY_NAME: &str = "mldeploy-model-read";
pub const INFRASTRUCTURE_POLICY_NAME: &str = "mldeploy-shift-traffic";

/// Who assumes the task roles, and who assumes the infrastructure role.
const TASKS: &str = "ecs-tasks.amazonaws.com";
const ECS: &str = "ecs.amazonaws.com";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    pub execution_arn: Id,
    pub task_arn: Id,
    /// `<name>-lb-infrastructure`, with a traffic-shifting strategy.
    pub infrastructure_arn: Option<Id>,
    /// Each worker's task role, `<name>-<worker>-task`, by worker name.
    pub workers: std::collections::BTreeMap<String, Id>,
    /// Whether the plan creates a role or changes its trust or policy.
    pub changing: bool,
    /// When this run did: IAM makes such a change usable only a while later (see
    /// [`IAM_SETTLE`]). Set once the plan is applied.
    pub changed_at: Option<std::time::Instant>,
}

/// How long mldeploy lets IAM settle after creating or changing a role, before ECS starts tasks
/// that use it. IAM is eventually consistent: "changes that I make are not always immediately
/// visible" (IAM troubleshooting guide), and a task started too soon stops with "ECS was unable
/// to assume the role". Waited only by runs that changed a role, counted from the change.
pub const IAM_SETTLE: std::time::Duration = std::time::Duration::from_secs(10);

pub fn execution_role_name(project: &str) -> String {
    format!("{project}-execution")
}

pub fn task_role_name(project: &str) -> String {
    format!("{project}-task")
}

/// A worker's task role: `<project>-<worker>-task`.
pub fn worker_role_name(project: &str, worker: &str) -> String {
    format!("{project}-{worker}-task")
}

/// The IAM path of the workers' task roles, `/mldeploy/<project>/workers/`: the deployer's
/// policy names them all by it, whatever workers the file names now or named before.
pub fn worker_role_path(project: &str) -> String {
    format!("/mldeploy/{project}/workers/")
}

/// A worker's task role as `up` wants it: reading the model like the service's, or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRole {
    pub worker: String,
    pub reads_model: bool,
}

pub fn infrastructure_role_name(project: &str) -> String {
    format!("{project}-lb-infrastructure")
}

/// IAM hands policy documents back URL-encoded.
fn decode_policy(text: &str) -> Option<Value> {
    let decoded = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()?;
    serde_json::from_str(&decoded).ok()
}

/// Decides the roles into `plan`: the execution and task roles, the load balancer's
/// infrastructure role when traffic shifts, and each worker's task role.
#[allow(clippy::too_many_arguments)] // what the three roles' policies are made of, one each
pub async fn decide<'a>(
    iam: &'a Client,
    project: &'a str,
    region: &str,
    model: Option<(&str, &str)>,
    secrets: &[SecretResource],
    secret_keys: &[String],
    pull_from: &[String],
    shifts_traffic: bool,
    workers: &[WorkerRole],
    plan: &mut Plan<'a>,
) -> anyhow::Result<Roles> {
    let mut pulls = format!("pull {project} from ECR, write /ecs/{project}");
    if !secrets.is_empty() {
        pulls.push_str(&format!(", read {} secret(s)", secrets.len()));
    }
    let execution = Wanted {
        name: execution_role_name(project),
        description: "mldeploy: ECS pulls the image and writes logs",
        policy_name: EXECUTION_POLICY_NAME,
        policy: Some(execution_policy(
            region,
            project,
            secrets,
            secret_keys,
            pull_from,
        )),
        grants: pulls,
        trusted: TASKS,
        path: None,
    };
    // The model bucket and prefix the roles that read the model may read; a project without
    // [model] gets roles that read nothing.
    let reads = |yes: bool| model.filter(|_| yes);
    let task = Wanted {
        name: task_role_name(project),
        description: "mldeploy: the service reads its model",
        policy_name: MODEL_POLICY_NAME,
        policy: model.map(|(bucket, prefix)| model_read_policy(region, bucket, prefix)),
        grants: match model {
            Some((bucket, prefix)) => format!("read s3://{bucket}/{prefix}*"),
            None => "no model to read".to_string(),
        },
        trusted: TASKS,
        path: None,
    };
    let (execution_arn, execution_changed) = decide_role(iam, project, execution, plan).await?;
    let (task_arn, task_changed) = decide_role(iam, project, task, plan).await?;
    let (infrastructure_arn, infrastructure_changed) = if shifts_traffic {
        let alternate = super::load_balancer::alternate_target_group_name(project);
        let infrastructure = Wanted {
            name: infrastructure_role_name(project),
            description: "mldeploy: ECS shifts traffic between the two target groups",
            policy_name: INFRASTRUCTURE_POLICY_NAME,
            policy: Some(infrastructure_policy(region, project, &alternate)),
            grants: format!(
                "ECS shifts {project}'s listener rules between {project} and {alternate}"
            ),
            trusted: ECS,
            path: None,
        };
        let (arn, changed) = decide_role(iam, project, infrastructure, plan).await?;
        (Some(arn), changed)
    } else {
        (None, false)
    };
    let mut worker_roles = std::collections::BTreeMap::new();
    let mut workers_changed = false;
    for worker in workers {
        let wanted = Wanted {
            name: worker_role_name(project, &worker.worker),
            description: "mldeploy: a worker of the project",
            policy_name: MODEL_POLICY_NAME,
            policy: reads(worker.reads_model)
                .map(|(bucket, prefix)| model_read_policy(region, bucket, prefix)),
            grants: match reads(worker.reads_model) {
                Some((bucket, prefix)) => {
                    format!("worker {} reads s3://{bucket}/{prefix}*", worker.worker)
                }
                None => format!("worker {}, no access to the model", worker.worker),
            },
            trusted: TASKS,
            path: Some(worker_role_path(project)),
        };
        let (arn, changed) = decide_role(iam, project, wanted, plan).await?;
        worker_roles.insert(worker.worker.clone(), arn);
        workers_changed |= changed;
    }
    Ok(Roles {
        execution_arn,
        task_arn,
        infrastructure_arn,
        workers: worker_roles,
        changing: execution_changed || task_changed || infrastructure_changed || workers_changed,
        changed_at: None,
    })
}

/// One role as mldeploy wants it: trusted by ECS tasks, with one inline policy.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub name: String,
    pub description: &'static str,
    pub policy_name: &'static str,
    /// The inline policy; None for a role that may do nothing (one found is removed).
    pub policy: Option<Value>,
    /// What the policy grants, in words, for the plan.
    pub grants: String,
    /// The service that assumes the role.
    pub trusted: &'static str,
    /// The IAM path a new role is created under (`/` when None): the deployer's policy names
    /// the workers' roles by theirs.
    pub path: Option<String>,
}

/// What one role needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleStep {
    /// Create the role (trusting ECS tasks), or it exists.
    pub create: bool,
    /// Replace its trust policy with ECS tasks only.
    pub set_trust: bool,
    /// Put the inline policy: it is missing or differs.
    pub put_policy: bool,
    /// Delete the inline policy: the role should have none.
    pub delete_policy: bool,
}

async fn decide_role<'a>(
    iam: &'a Client,
    project: &'a str,
    wanted: Wanted,
    plan: &mut Plan<'a>,
) -> anyhow::Result<(Id, bool)> {
    let role = find_role(iam, &wanted.name).await?;
    let policy = match &role {
        Some(_) => find_inline_policy(iam, &wanted.name, wanted.policy_name).await?,
        None => None,
    };
    let planned = plan_role(project, &wanted, role.as_ref(), policy.as_ref())?;
    let changing = planned.step.is_some();
    let id = plan.add(planned, move |step| async move {
        apply_role(iam, project, &wanted, step).await
    });
    Ok((id, changing))
}

/// Decides, from the role and inline policy found, what the role needs. A role of that name
/// that mldeploy did not create is refused.
pub fn plan_role(
    project: &str,
    wanted: &Wanted,
    role: Option<&Role>,
    policy: Option<&Value>,
) -> anyhow::Result<Planned<RoleStep>> {
    let name = wanted.name.as_str();
    let Some(role) = role else {
        return Ok(Planned::change(
            Change::new("IAM role", name, Action::Create).because(&wanted.grants),
            Id::after_apply(),
            RoleStep {
                create: true,
                set_trust: false,
                put_policy: wanted.policy.is_some(),
                delete_policy: false,
            },
        ));
    };
    if !tags::is_ours(role.tags(), project) {
        return Err(exit::error(
            ExitStatus::Environment,
            format!(
                "{}: mldeploy will not take over a role it did not create",
                tags::not_ours(&format!("IAM role {name}"), project)
            ),
        ));
    }
    let step = RoleStep {
        create: false,
        set_trust: role
            .assume_role_policy_document()
            .and_then(decode_policy)
            .as_ref()
            != Some(&trust_policy(wanted.trusted)),
        put_policy: wanted.policy.is_some() && policy != wanted.policy.as_ref(),
        delete_policy: wanted.policy.is_none() && policy.is_some(),
    };
    let mut what = Vec::new();
    if step.set_trust {
        what.push(format!("trust {} only", wanted.trusted));
    }
    if step.put_policy || step.delete_policy {
        what.push(wanted.grants.clone());
    }
    let found = Id::Known(role.arn.clone());
    Ok(if what.is_empty() {
        Planned::keep(Change::new("IAM role", name, Action::Keep), found)
    } else {
        Planned::change(
            Change::new("IAM role", name, Action::Update).because(what.join(", ")),
            found,
            step,
        )
    })
}

async fn apply_role(
    iam: &Client,
    project: &str,
    wanted: &Wanted,
    step: RoleStep,
) -> anyhow::Result<Option<Id>> {
    let name = wanted.name.as_str();
    let trust = trust_policy(wanted.trusted).to_string();
    let mut created = None;
    if step.create {
        let arn = iam
            .create_role()
            .role_name(name)
            .set_path(wanted.path.clone())
            .description(wanted.description)
            .assume_role_policy_document(&trust)
            .tags(tags::iam(project)?)
            .send()
            .await
            .map_err(|e| call_error("iam:CreateRole", e))?
            .role
            .map(|r| r.arn)
            .ok_or_else(|| anyhow::anyhow!("iam:CreateRole returned no role for {name}"))?;
        created = Some(Id::Known(arn));
    }
    if step.set_trust {
        iam.update_assume_role_policy()
            .role_name(name)
            .policy_document(&trust)
            .send()
            .await
            .map_err(|e| call_error("iam:UpdateAssumeRolePolicy", e))?;
    }
    if let (true, Some(policy)) = (step.put_policy, &wanted.policy) {
        iam.put_role_policy()
            .role_name(name)
            .policy_name(wanted.policy_name)
            .policy_document(policy.to_string())
            .send()
            .await
            .map_err(|e| call_error("iam:PutRolePolicy", e))?;
    }
    if step.delete_policy {
        iam.delete_role_policy()
            .role_name(name)
            .policy_name(wanted.policy_name)
            .send()
            .await
            .map_err(|e| call_error("iam:DeleteRolePolicy", e))?;
    }
    Ok(created)
}

/// The role's inline policy `policy_name`, decoded, when it has one.
async fn find_inline_policy(
    iam: &Client,
    role: &str,
    policy_name: &str,
) -> anyhow::Result<Option<Value>> {
    match iam
        .get_role_policy()
        .role_name(role)
        .policy_name(policy_name)
        .send()
        .await
    {
        Ok(out) => Ok(decode_policy(&out.policy_document)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(call_error("iam:GetRolePolicy", e)),
    }
}

/// The IAM role named `name`, when it exists.
pub async fn find_role(iam: &Client, name: &str) -> anyhow::Result<Option<Role>> {
    match iam.get_role().role_name(name).send().await {
        Ok(out) => Ok(out.role),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(call_error("iam:GetRole", e)),
    }
}

/// Deletes the role, after its inline policies and detaching its managed ones (IAM refuses to
/// delete a role that has any).
pub async fn delete_role(iam: &Client, name: &str) -> anyhow::Result<()> {
    let inline: Vec<_> = crate::all_pages!(
        iam.list_role_policies().role_name(name),
        "iam:ListRolePolicies"
    )?;
    for policy in inline.iter().flat_map(|page| page.policy_names()) {
        iam.delete_role_policy()
            .role_name(name)
            .policy_name(policy)
            .send()
            .await
            .map_err(|e| call_error("iam:DeleteRolePolicy", e))?;
    }
    let attached: Vec<_> = crate::all_pages!(
        iam.list_attached_role_policies().role_name(name),
        "iam:ListAttachedRolePolicies"
    )?;
    for policy in attached.iter().flat_map(|page| page.attached_policies()) {
        iam.detach_role_policy()
            .role_name(name)
            .policy_arn(policy.policy_arn().unwrap_or_default())
            .send()
            .await
            .map_err(|e| call_error("iam:DetachRolePolicy", e))?;
    }
    iam.delete_role()
        .role_name(name)
        .send()
        .await
        .map_err(|e| call_error("iam:DeleteRole", e))?;
    Ok(())
}

#[cfg(test)]
mod tests;
