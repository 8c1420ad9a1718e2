//! `status` on ECS: one look at the service, judged the way the rollout watcher judges a
//! deployment: healthy, rolling out, degraded or failed, with the reason.

use std::time::Duration;

use super::load_balancer;
use super::releases;
use super::service::{self, RunningShape};
use super::watcher::{judge, Verdict, Watch};
use crate::config::{Config, TargetKind};
use crate::reports::status::{
    EcsStatus, ShiftStatus, State, StatusOn, StatusReport, Targets, WorkerStatus,
};

/// How many of the service's events the report carries.
const EVENTS: usize = 5;
/// How long `status` waits for the app's readiness answer before it goes without it.
const APP_WAIT: Duration = Duration::from_secs(3);

/// One look at the service, and at what its app says it serves.
pub async fn look(aws: &crate::aws::Aws, config: &Config) -> anyhow::Result<StatusReport> {
    let (ecs, elb, region) = (&aws.ecs(), &aws.elbv2(), aws.region.as_str());
    let project = config.project.name.as_str();
    let domain = config.service.domain.as_deref();
    let svc = service::require(ecs, project, region).await?;
    let shape = RunningShape::of(&svc)?;
    let serving = svc.task_definition().unwrap_or_default().to_string();
    let primary_id = service::primary(&svc).unwrap_or_default();
    let shift = shift_status(ecs, elb, &svc, project).await?;
    // Behind a production rule the serving tasks may be in either group: look at the one
    // production traffic goes to.
    let web_group = shape
        .target
        .as_ref()
        .map(|t| t.target_group_arn.clone())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "service {project} is behind no load balancer; mldeploy did not create it this way"
            )
        })?;
    let serving_group = shift
        .as_ref()
        .and_then(|(_, group)| group.clone())
        .unwrap_or_else(|| web_group.clone());
    let watch = Watch {
        ecs,
        elb,
        cluster: project,
        service: project,
        deployment_id: &primary_id,
        target_group_arn: Some(&serving_group),
        timeout: Duration::ZERO,
        poll: crate::aws::poll::interval(),
    };
    let (scaling, scaled) = (
        aws.autoscaling(),
        super::autoscaling::resource_id(project, project),
    );
    let (snapshot, release, dns, autoscaling, workers) = tokio::try_join!(
        watch.snapshot_of(&svc),
        releases::describe(
            ecs,
            serving.clone(),
            config.model_path_template(),
            Some(&serving)
        ),
        load_balancer::dns_name_for_target_group(elb, &web_group),
        super::autoscaling::registered(&scaling, &scaled),
        workers(ecs, elb, config),
    )?;
    let (state, mut reason) = assess(&primary_id, &snapshot);
    // The worst service decides: a failed or degraded worker makes the project unhealthy.
    let sick = workers.iter().find(|w| w.state != State::Healthy);
    if let (None, Some(w)) = (&reason, sick) {
        reason = Some(format!(
            "worker {} is {}: {}",
            w.worker,
            w.state,
            w.reason.as_deref().unwrap_or("see below")
        ));
    }
    let url = dns.as_deref().map(|d| load_balancer::url(d, domain));
    let via = dns.as_deref().and_then(|d| load_balancer::via(d, domain));
    let mut healthy = state == State::Healthy && sick.is_none();
    // What the app itself says it serves, when its readiness answer names it. Asked only of a
    // service ECS judges healthy: only then can the answer change the verdict.
    if let (true, Some(url), Some(runs)) = (healthy, &url, &release.release.model_path) {
        if let Some(says) = app_model(url, via, &config.service.ready_path).await {
            if !crate::model::same_path(&says, runs) {
                healthy = false;
                reason = Some(format!(
                    "the app at {url} says it serves {says}, but the service's revision runs MODEL_PATH {runs}"
                ));
            }
        }
    }
    let events = svc
        .events()
        .iter()
        .take(EVENTS)
        .map(|e| {
            let at = e
                .created_at()
                .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
                .unwrap_or_default();
            format!("{at} {}", e.message().unwrap_or_default())
        })
        .collect();
    Ok(StatusReport {
        healthy,
        target: TargetKind::Ecs,
        reason,
        url,
        model_warning: release.release.warning,
        image: release.release.image,
        model_version: release.release.model_version,
        model_path: release.release.model_path,
        registry: release.release.registry,
        on: StatusOn::Ecs(EcsStatus {
            state,
            cluster: project.to_string(),
            service: project.to_string(),
            task_definition: serving,
            desired: svc.desired_count(),
            running: svc.running_count(),
            pending: svc.pending_count(),
            deployments: snapshot.deployments.clone(),
            targets: Targets {
                healthy: snapshot.healthy_targets,
                unhealthy: snapshot.unhealthy_targets.clone(),
            },
            stopped_tasks: snapshot.stopped.iter().take(3).cloned().collect(),
            events,
            shift: shift.map(|(s, _)| Box::new(s)),
            autoscaling: autoscaling.map(Box::new),
            workers,
        }),
    })
}

/// Each worker of the file: its service judged like the model API's, without target health.
async fn workers(
    ecs: &aws_sdk_ecs::Client,
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    config: &Config,
) -> anyhow::Result<Vec<WorkerStatus>> {
    let project = config.project.name.as_str();
    let looks = config.workers.iter().map(|worker| async move {
        let name = worker.service_name(project);
        let Some(svc) = service::describe(ecs, project, &name).await? else {
            return Ok(WorkerStatus {
                worker: worker.name.clone(),
                service: name,
                state: State::Failed,
                reason: Some("its service does not exist: run `mldeploy up`".to_string()),
                task_definition: None,
                model_path: None,
                desired: 0,
                running: 0,
                pending: 0,
            });
        };
        let primary_id = service::primary(&svc).unwrap_or_default();
        let snapshot = Watch {
            ecs,
            elb,
            cluster: project,
            service: &name,
            deployment_id: &primary_id,
            target_group_arn: None,
            timeout: Duration::ZERO,
            poll: crate::aws::poll::interval(),
        }
        .snapshot_of(&svc)
        .await?;
        let (state, reason) = assess(&primary_id, &snapshot);
        let task_definition = svc.task_definition().map(str::to_string);
        let model_path = match (&task_definition, worker.model) {
            (Some(arn), true) => super::task_definition::model_path(ecs, arn).await?,
            _ => None,
        };
        Ok::<_, anyhow::Error>(WorkerStatus {
            worker: worker.name.clone(),
            service: name,
            state,
            reason,
            task_definition,
            model_path,
            desired: svc.desired_count(),
            running: svc.running_count(),
            pending: svc.pending_count(),
        })
    });
    futures_util::future::try_join_all(looks).await
}

/// A traffic-shifting service's split and newest deployment, with the target group production
/// traffic favours; None for a rolling service.
async fn shift_status(
    ecs: &aws_sdk_ecs::Client,
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    svc: &aws_sdk_ecs::types::Service,
    project: &str,
) -> anyhow::Result<Option<(ShiftStatus, Option<String>)>> {
    let Some(rule) = service::production_rule(svc) else {
        return Ok(None);
    };
    let strategy = svc
        .deployment_configuration()
        .and_then(|c| c.strategy())
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    let weights = load_balancer::rules::weights(elb, rule).await?;
    let total: i32 = weights.iter().map(|(_, w)| *w).sum();
    let traffic = weights
        .iter()
        .map(|(tg, w)| {
            let name = service::target_group_name(tg).to_string();
            let share = if total > 0 {
                f64::from(*w) * 100.0 / f64::from(total)
            } else {
                0.0
            };
            (name, share)
        })
        .collect();
    let favoured = load_balancer::rules::favoured(&weights);
    let (stage, bake_left_seconds) = newest_in_progress(ecs, project, svc).await?;
    Ok(Some((
        ShiftStatus {
            strategy,
            traffic,
            stage,
            bake_left_seconds,
        },
        favoured,
    )))
}

/// The newest service deployment's stage while it is in progress, and the bake time left while
/// it bakes (from when it entered the stage, ECS's updatedAt).
async fn newest_in_progress(
    ecs: &aws_sdk_ecs::Client,
    project: &str,
    svc: &aws_sdk_ecs::types::Service,
) -> anyhow::Result<(Option<String>, Option<u64>)> {
    use aws_sdk_ecs::types::{ServiceDeploymentLifecycleStage, ServiceDeploymentStatus};
    let newest = super::deployments::newest(
        ecs,
        project,
        project,
        Some(ServiceDeploymentStatus::InProgress),
    )
    .await?;
    let Some(arn) = newest.as_ref().and_then(|d| d.service_deployment_arn()) else {
        return Ok((None, None));
    };
    let Some(d) = super::traffic_shift::service_deployment(ecs, arn).await? else {
        return Ok((None, None));
    };
    let stage = d.lifecycle_stage().cloned();
    let left = match (&stage, d.updated_at()) {
        (Some(ServiceDeploymentLifecycleStage::BakeTime), Some(since)) => {
            let minutes = svc
                .deployment_configuration()
                .and_then(|c| c.bake_time_in_minutes())
                .unwrap_or(0);
            let bake = crate::aws::clock::scaled(Duration::from_secs(
                u64::try_from(minutes).unwrap_or(0) * 60,
            ));
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            let elapsed = (now - since.as_secs_f64()).max(0.0);
            // Whole seconds, at least 0.
            Some((bake.as_secs_f64() - elapsed).max(0.0).ceil() as u64)
        }
        _ => None,
    };
    Ok((
        stage.map(|s| super::traffic_shift::describe_stage(&s)),
        left,
    ))
}

/// The `model_path` the app's readiness answer names, when it answers with JSON that does (the
/// example app's `/ready` does); None when it cannot be asked or does not say.
pub async fn app_model(
    url: &str,
    via: Option<crate::smoke::Via>,
    ready_path: &str,
) -> Option<String> {
    let prober = crate::smoke::Prober::new(via).ok()?;
    let request = crate::smoke::SmokeRequest::ready(ready_path);
    let ready = format!("{url}{ready_path}");
    let asked = prober.send(&ready, &request);
    match tokio::time::timeout(APP_WAIT, asked).await.ok()? {
        crate::smoke::Answer::Http {
            status: 200, body, ..
        } => crate::smoke::model_named(&body),
        _ => None,
    }
}

/// The service's state from one snapshot, judged like the rollout watcher judges a deployment,
/// except that tasks stopped and replaced over a service's life do not count against it.
/// The primary deployment is the snapshot's own: the service, read a moment before, may name one
/// ECS has replaced since (a circuit breaker's rollback opens a new primary and leaves the failed
/// one ACTIVE), which would judge a service that is rolling back as failed for good.
pub fn assess(primary_id: &str, snapshot: &super::watcher::Snapshot) -> (State, Option<String>) {
    let mut snap = snapshot.clone();
    snap.stopped.clear();
    let primary_id = snap
        .deployments
        .iter()
        .find(|d| d.status == "PRIMARY")
        .map_or(primary_id, |d| d.id.as_str())
        .to_string();
    let primary_id = primary_id.as_str();
    match judge(primary_id, &snap) {
        Verdict::Done => (State::Healthy, None),
        Verdict::Failed(reason) => (State::Failed, Some(reason)),
        Verdict::Waiting(what) => {
            let primary = snap.deployments.iter().find(|d| d.id == primary_id);
            let settled = snap.deployments.len() == 1
                && primary.is_some_and(|d| d.rollout_state == "COMPLETED");
            if settled {
                (State::Degraded, Some(what))
            } else {
                (State::RollingOut, Some(what))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::ecs::watcher::Snapshot;
    use crate::targets::ecs::watcher::{DeploymentView, StoppedTask};

    fn deployment(id: &str, status: &str, state: &str, running: i32) -> DeploymentView {
        DeploymentView {
            id: id.into(),
            status: status.into(),
            rollout_state: state.into(),
            rollout_reason: "ECS deployment circuit breaker: tasks failed to start.".into(),
            task_definition: "arn:aws:ecs:us-east-1:1:task-definition/app:3".into(),
            desired: 2,
            running,
            pending: 0,
        }
    }

    #[test]
    fn a_complete_deployment_with_all_targets_healthy_is_healthy() {
        let snap = Snapshot {
            deployments: vec![deployment("d1", "PRIMARY", "COMPLETED", 2)],
            healthy_targets: 2,
            ..Default::default()
        };
        assert_eq!(assess("d1", &snap), (State::Healthy, None));
    }

    #[test]
    fn fewer_healthy_targets_than_desired_is_degraded_with_the_reason() {
        let snap = Snapshot {
            deployments: vec![deployment("d1", "PRIMARY", "COMPLETED", 2)],
            no_load_balancer: false,
            healthy_targets: 1,
            unhealthy_targets: vec!["10.0.0.9: Health checks failed with these codes: [500]".into()],
            // Tasks replaced over the service's life do not make it failed.
            stopped: (0..5)
                .map(|n| StoppedTask {
                    id: format!("t{n}"),
                    reason: "Essential container in task exited".into(),
                    exit_code: Some(1),
                })
                .collect(),
        };
        let (state, reason) = assess("d1", &snap);
        assert_eq!(state, State::Degraded);
        assert!(reason.unwrap().contains("[500]"));
    }

    #[test]
    fn a_deployment_under_way_is_rolling_out_and_a_failed_one_failed() {
        let mut snap = Snapshot {
            deployments: vec![
                deployment("d2", "PRIMARY", "IN_PROGRESS", 0),
                deployment("d1", "ACTIVE", "COMPLETED", 2),
            ],
            healthy_targets: 2,
            ..Default::default()
        };
        assert_eq!(assess("d2", &snap).0, State::RollingOut);
        snap.deployments[0].rollout_state = "FAILED".into();
        let (state, reason) = assess("d2", &snap);
        assert_eq!(state, State::Failed);
        assert!(reason.unwrap().contains("circuit breaker"));
    }

    #[test]
    fn a_primary_replaced_by_a_rollback_since_the_service_was_read_is_rolling_out_not_failed() {
        // The service named d2 as primary; by the snapshot the breaker had failed it and opened
        // d3 to roll back.
        let snap = Snapshot {
            deployments: vec![
                deployment("d3", "PRIMARY", "IN_PROGRESS", 0),
                deployment("d2", "ACTIVE", "FAILED", 0),
                deployment("d1", "ACTIVE", "COMPLETED", 2),
            ],
            healthy_targets: 2,
            ..Default::default()
        };
        assert_eq!(assess("d2", &snap).0, State::RollingOut);
        let mut done = snap.clone();
        done.deployments = vec![deployment("d3", "PRIMARY", "COMPLETED", 2)];
        assert_eq!(assess("d2", &done), (State::Healthy, None));
    }
}
