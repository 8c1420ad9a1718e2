//! The rollout watcher: follows the deployment this run opened, by its id, until it is done,
//! fails, or the deadline passes, and never calls a rolled-back deployment a success.
//!
//! Done means: our deployment is PRIMARY with rolloutState COMPLETED, the only deployment left,
//! running = desired, and as many healthy targets as desired in the target group. Failed means,
//! as soon as it is known: rolloutState FAILED; our deployment gone or replaced (the circuit
//! breaker rolled back); tasks of our deployment keep stopping. Each look is one [`Snapshot`],
//! judged by a pure function, so every path is tested with scripted snapshots and SDK answers.

use std::time::{Duration, Instant};

use aws_sdk_ecs::types::DesiredStatus;

use super::service::{describe, short_task_definition};
use crate::aws::call_error;
use crate::exit::{self, ExitStatus};
use crate::output::Printer;

/// How many stopped tasks of our deployment mean "they keep stopping".
pub const STOPPED_TASKS_LIMIT: usize = 3;

pub use crate::reports::status::{DeploymentView, StoppedTask};

/// Everything one look at the service shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub deployments: Vec<DeploymentView>,
    /// A worker: no target group, so no target health to count (ECS's own rollout state then
    /// stands for the tasks' health: running, and healthy where the container has a check).
    pub no_load_balancer: bool,
    pub healthy_targets: usize,
    pub unhealthy_targets: Vec<String>,
    pub stopped: Vec<StoppedTask>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Done,
    Failed(String),
    /// Still going; says what it is waiting for.
    Waiting(String),
}

/// Judges one snapshot for the deployment `ours`. Every failure names the latest stopped tasks
/// of our deployment, with their reasons and exit codes, when there are any.
pub fn judge(ours: &str, snap: &Snapshot) -> Verdict {
    match failure(ours, snap) {
        Some(reason) => Verdict::Failed(format!("{reason}{}", stopped_summary(snap))),
        None => progress(ours, snap),
    }
}

/// Why our deployment has failed, if it has.
fn failure(ours: &str, snap: &Snapshot) -> Option<String> {
    let primary = snap.deployments.iter().find(|d| d.status == "PRIMARY");
    let Some(d) = snap.deployments.iter().find(|d| d.id == ours) else {
        let serving = primary
            .map(|p| short_task_definition(&p.task_definition))
            .unwrap_or("nothing");
        return Some(format!(
            "ECS rolled the deployment back: deployment {ours} is gone and {serving} serves again (the circuit breaker stopped it)"
        ));
    };
    if d.rollout_state == "FAILED" {
        let back = primary
            .filter(|p| p.id != d.id)
            .map(|p| {
                format!(
                    "; ECS rolled back to {}",
                    short_task_definition(&p.task_definition)
                )
            })
            .unwrap_or_default();
        return Some(format!(
            "deployment {ours} failed: {}{back}",
            d.rollout_reason
        ));
    }
    if d.status != "PRIMARY" {
        let other = primary
            .map(|p| format!("{} ({})", p.id, short_task_definition(&p.task_definition)))
            .unwrap_or_default();
        return Some(format!(
            "deployment {ours} was replaced by {other} before it completed"
        ));
    }
    if snap.stopped.len() >= STOPPED_TASKS_LIMIT {
        return Some(format!(
            "tasks of deployment {ours} keep stopping ({} stopped)",
            snap.stopped.len()
        ));
    }
    None
}

/// ". Latest stopped tasks: task t1: reason (exit code 3); ..." or nothing.
fn stopped_summary(snap: &Snapshot) -> String {
    if snap.stopped.is_empty() {
        return String::new();
    }
    let latest: Vec<String> = snap
        .stopped
        .iter()
        .take(STOPPED_TASKS_LIMIT)
        .map(|t| match t.exit_code {
            Some(code) => format!("task {}: {} (exit code {code})", t.id, t.reason),
            None => format!("task {}: {}", t.id, t.reason),
        })
        .collect();
    format!(". Latest stopped tasks: {}", latest.join("; "))
}

/// Done, or what it is still waiting for; only for a deployment that has not failed.
fn progress(ours: &str, snap: &Snapshot) -> Verdict {
    let Some(d) = snap.deployments.iter().find(|d| d.id == ours) else {
        return Verdict::Waiting(format!("deployment {ours}"));
    };
    let others = snap.deployments.len() - 1;
    let healthy_enough =
        snap.no_load_balancer || snap.healthy_targets >= usize::try_from(d.desired).unwrap_or(0);
    if d.rollout_state == "COMPLETED" && d.running == d.desired && others == 0 && healthy_enough {
        return Verdict::Done;
    }
    let mut what = format!(
        "{} {}: {}/{} running, {} pending",
        short_task_definition(&d.task_definition),
        d.rollout_state,
        d.running,
        d.desired,
        d.pending,
    );
    if !snap.no_load_balancer {
        what.push_str(&format!(
            ", {}/{} healthy targets",
            snap.healthy_targets, d.desired
        ));
    }
    if others > 0 {
        what.push_str(&format!(", {others} older deployment(s) draining"));
    }
    if let Some(unhealthy) = snap.unhealthy_targets.first() {
        what.push_str(&format!(", unhealthy: {unhealthy}"));
    }
    Verdict::Waiting(what)
}

/// What is being watched, and how long to wait.
#[derive(Clone, Copy)]
pub struct Watch<'a> {
    pub ecs: &'a aws_sdk_ecs::Client,
    pub elb: &'a aws_sdk_elasticloadbalancingv2::Client,
    pub cluster: &'a str,
    pub service: &'a str,
    pub deployment_id: &'a str,
    /// The target group whose health counts; None for a worker.
    pub target_group_arn: Option<&'a str>,
    pub timeout: Duration,
    pub poll: Duration,
}

/// The last snapshot of a finished rollout.
#[derive(Debug, Clone)]
pub struct Rollout {
    pub snapshot: Snapshot,
    pub waited: Duration,
}

impl Watch<'_> {
    /// Polls until the verdict is in. Failure and timeout are exit 1 with the reason.
    pub async fn run(&self, printer: &Printer) -> anyhow::Result<Rollout> {
        let start = Instant::now();
        let line = printer.spinner();
        let mut last = String::new();
        loop {
            let snap = self.snapshot().await?;
            match judge(self.deployment_id, &snap) {
                Verdict::Done => {
                    line.finish();
                    return Ok(Rollout {
                        snapshot: snap,
                        waited: start.elapsed(),
                    });
                }
                Verdict::Failed(reason) => {
                    line.finish();
                    return Err(exit::error(ExitStatus::Failed, reason));
                }
                Verdict::Waiting(what) => {
                    if what != last {
                        line.status(&format!("  {what}"));
                        last = what;
                    }
                    if start.elapsed() >= self.timeout {
                        line.finish();
                        return Err(exit::error(
                            ExitStatus::Failed,
                            format!(
                                "timed out after {} waiting for deployment {} to complete; it was at {last}. Raise --timeout, or check `mldeploy status`",
                                human_duration(self.timeout),
                                self.deployment_id
                            ),
                        ));
                    }
                }
            }
            tokio::time::sleep(
                self.poll
                    .min(self.timeout.saturating_sub(start.elapsed()))
                    .max(Duration::from_millis(10)),
            )
            .await;
        }
    }

    /// One look: the service's deployments, the target group's health, our stopped tasks.
    pub async fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let service = describe(self.ecs, self.cluster, self.service)
            .await?
            .ok_or_else(|| {
                exit::error(
                    ExitStatus::Failed,
                    format!(
                        "service {} disappeared while its deployment was watched",
                        self.service
                    ),
                )
            })?;
        self.snapshot_of(&service).await
    }

    /// One look at the service as just described (`status` has it already): its target
    /// health and stopped tasks are read now.
    pub async fn snapshot_of(
        &self,
        service: &aws_sdk_ecs::types::Service,
    ) -> anyhow::Result<Snapshot> {
        let deployments = service
            .deployments()
            .iter()
            .map(|d| DeploymentView {
                id: d.id().unwrap_or_default().to_string(),
                status: d.status().unwrap_or_default().to_string(),
                rollout_state: d
                    .rollout_state()
                    .map(|r| r.as_str().to_string())
                    .unwrap_or_default(),
                rollout_reason: d.rollout_state_reason().unwrap_or_default().to_string(),
                task_definition: d.task_definition().unwrap_or_default().to_string(),
                desired: d.desired_count(),
                running: d.running_count(),
                pending: d.pending_count(),
            })
            .collect();

        let descriptions = match self.target_group_arn {
            Some(group) => self
                .elb
                .describe_target_health()
                .target_group_arn(group)
                .send()
                .await
                .map_err(|e| call_error("elasticloadbalancing:DescribeTargetHealth", e))?
                .target_health_descriptions
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let mut healthy_targets = 0;
        let mut unhealthy_targets = Vec::new();
        for t in &descriptions {
            let state = t
                .target_health()
                .and_then(|h| h.state())
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            let id = t
                .target()
                .and_then(|t| t.id())
                .unwrap_or_default()
                .to_string();
            match state.as_str() {
                "healthy" => healthy_targets += 1,
                "unhealthy" => {
                    let why = t
                        .target_health()
                        .and_then(|h| h.description())
                        .unwrap_or("failing health checks");
                    unhealthy_targets.push(format!("{id}: {why}"));
                }
                _ => {}
            }
        }

        let stopped = self.stopped_tasks().await?;
        Ok(Snapshot {
            deployments,
            no_load_balancer: self.target_group_arn.is_none(),
            healthy_targets,
            unhealthy_targets,
            stopped,
        })
    }

    /// The deployment's stopped tasks, newest first.
    pub async fn stopped_tasks(&self) -> anyhow::Result<Vec<StoppedTask>> {
        let arns = self
            .ecs
            .list_tasks()
            .cluster(self.cluster)
            .service_name(self.service)
            .desired_status(DesiredStatus::Stopped)
            .send()
            .await
            .map_err(|e| call_error("ecs:ListTasks", e))?
            .task_arns
            .unwrap_or_default();
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        let tasks = self
            .ecs
            .describe_tasks()
            .cluster(self.cluster)
            .set_tasks(Some(arns))
            .send()
            .await
            .map_err(|e| call_error("ecs:DescribeTasks", e))?
            .tasks
            .unwrap_or_default();
        let mut mine: Vec<_> = tasks
            .into_iter()
            .filter(|t| t.started_by() == Some(self.deployment_id))
            .collect();
        // Newest first: the latest reasons are the ones worth showing.
        mine.sort_by(|a, b| {
            b.stopped_at()
                .map(|t| t.secs())
                .cmp(&a.stopped_at().map(|t| t.secs()))
        });
        Ok(mine
            .into_iter()
            .map(|t| StoppedTask {
                id: t
                    .task_arn()
                    .and_then(|a| a.rsplit('/').next())
                    .unwrap_or_default()
                    .to_string(),
                reason: t.stopped_reason().unwrap_or("stopped").to_string(),
                exit_code: t.containers().iter().find_map(|c| c.exit_code()),
            })
            .collect())
    }
}

pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests;
