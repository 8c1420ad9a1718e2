//! `mldeploy status`: what serves and whether it is healthy, on one screen or as one JSON object,
//! with an exit code a CI step can gate on: 0 healthy and stable, 1 deployed but not (rolling
//! out, degraded, failed), 3 nothing deployed or AWS unreachable. `--wait` polls until healthy,
//! failed, or the deadline.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Session;
use crate::cli::StatusArgs;
use crate::exit::ExitStatus;
use crate::target::ecs::load_balancer;
use crate::target::ecs::releases;
use crate::target::ecs::service::{self, short_task_definition, RunningShape};
use crate::target::ecs::watcher::{judge, DeploymentView, StoppedTask, Verdict, Watch};

/// How many of the service's events the report carries.
const EVENTS: usize = 5;
/// Pause between looks with `--wait`.
const POLL: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The only deployment is complete, every task runs and every target is healthy.
    Healthy,
    /// A deployment is under way (or ECS is rolling one back).
    RollingOut,
    /// Deployed and complete, but fewer tasks or healthy targets than desired.
    Degraded,
    /// The newest deployment failed.
    Failed,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Healthy => "healthy",
            State::RollingOut => "rolling out",
            State::Degraded => "degraded",
            State::Failed => "failed",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Targets {
    pub healthy: usize,
    /// Each unhealthy target with ALB's reason.
    pub unhealthy: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub healthy: bool,
    pub state: State,
    /// Why it is not healthy, in words; null when it is.
    pub reason: Option<String>,
    pub cluster: String,
    pub service: String,
    pub url: Option<String>,
    pub task_definition: String,
    pub image: Option<String>,
    pub model_version: Option<String>,
    pub model_path: Option<String>,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub deployments: Vec<DeploymentView>,
    pub targets: Targets,
    /// The latest stopped tasks of the serving deployment.
    pub stopped_tasks: Vec<StoppedTask>,
    /// The newest service events first, each "<time> <message>".
    pub events: Vec<String>,
}

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let model =
            crate::model::describe(self.model_version.as_deref(), self.model_path.as_deref());
        writeln!(
            f,
            "{}: {} - serves {model} at {}",
            self.service,
            self.state,
            self.url.as_deref().unwrap_or("(no load balancer)")
        )?;
        if let Some(reason) = &self.reason {
            writeln!(f, "  why: {reason}")?;
        }
        writeln!(
            f,
            "  task definition {}, image {}",
            short_task_definition(&self.task_definition),
            self.image.as_deref().unwrap_or("?")
        )?;
        writeln!(
            f,
            "  tasks: {}/{} running, {} pending; targets: {} healthy, {} unhealthy",
            self.running,
            self.desired,
            self.pending,
            self.targets.healthy,
            self.targets.unhealthy.len()
        )?;
        for t in &self.targets.unhealthy {
            writeln!(f, "    unhealthy {t}")?;
        }
        writeln!(f, "  deployments:")?;
        for d in &self.deployments {
            writeln!(
                f,
                "    {:<7} {} {} {}: {}/{} running, {} pending",
                d.status,
                d.id,
                short_task_definition(&d.task_definition),
                d.rollout_state,
                d.running,
                d.desired,
                d.pending
            )?;
        }
        if !self.stopped_tasks.is_empty() {
            writeln!(f, "  latest stopped tasks:")?;
            for t in &self.stopped_tasks {
                match t.exit_code {
                    Some(code) => writeln!(f, "    {}: {} (exit code {code})", t.id, t.reason)?,
                    None => writeln!(f, "    {}: {}", t.id, t.reason)?,
                }
            }
        }
        write!(f, "  recent events:")?;
        for e in &self.events {
            write!(f, "\n    {e}")?;
        }
        Ok(())
    }
}

pub async fn run(session: &Session<'_>, args: &StatusArgs) -> anyhow::Result<ExitStatus> {
    let config = session.config()?;
    if config.target.kind == crate::config::TargetKind::Docker {
        return docker_status(session, args, &config).await;
    }
    let aws = session.aws(&config).await?;
    let (ecs, elb) = (aws.ecs(), aws.elbv2());
    let project = config.project.name.as_str();
    let start = Instant::now();
    let mut last_line = String::new();
    let report = loop {
        let report = look(
            &ecs,
            &elb,
            project,
            &aws.region,
            config.service.certificate_arn.as_deref(),
        )
        .await?;
        let done = report.healthy || report.state == State::Failed;
        if !args.wait || done || start.elapsed() >= args.timeout {
            break report;
        }
        let line = format!(
            "  {}: {}",
            report.state,
            report.reason.as_deref().unwrap_or_default()
        );
        if line != last_line {
            session.printer.info(&line);
            last_line = line;
        }
        tokio::time::sleep(POLL.min(args.timeout.saturating_sub(start.elapsed()))).await;
    };
    session.printer.result(&report)?;
    Ok(if report.healthy {
        ExitStatus::Success
    } else {
        ExitStatus::Failed
    })
}

/// The Docker target's status: the project's newest running container, and whether it answers.
#[derive(Debug, Serialize)]
pub struct DockerStatusReport {
    pub healthy: bool,
    pub target: &'static str,
    pub url: String,
    pub container: String,
    pub image: String,
    pub release: u32,
    pub model_version: Option<String>,
    pub model_path: Option<String>,
    pub running: bool,
    /// Why it is not healthy; null when it is.
    pub reason: Option<String>,
}

impl fmt::Display for DockerStatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let model =
            crate::model::describe(self.model_version.as_deref(), self.model_path.as_deref());
        writeln!(
            f,
            "{}: {} - serves {model} at {}",
            self.container,
            if self.healthy { "healthy" } else { "unhealthy" },
            self.url
        )?;
        if let Some(reason) = &self.reason {
            writeln!(f, "  why: {reason}")?;
        }
        write!(f, "  image {}, release {}", self.image, self.release)
    }
}

async fn docker_status(
    session: &Session<'_>,
    args: &StatusArgs,
    config: &crate::config::Config,
) -> anyhow::Result<ExitStatus> {
    use crate::smoke::{Answer, Prober, SmokeRequest};
    use crate::target::docker;
    let engine = crate::image::engine::Engine::connect().await?;
    let prober = Prober::new()?;
    let start = Instant::now();
    let report = loop {
        let containers = docker::containers(&engine, &config.project.name).await?;
        let Some(c) = docker::current(&containers) else {
            return Err(crate::exit::error(
                ExitStatus::Environment,
                format!(
                    "nothing is deployed for {} on the Docker engine at {}: run `mldeploy up --target docker` first",
                    config.project.name, engine.host
                ),
            ));
        };
        let url = docker::url(&engine, config.target.host_port);
        let ready = format!("{url}{}", config.service.ready_path);
        let reason = if !c.running {
            Some(format!("container {} is not running", c.name))
        } else {
            match prober
                .send(&ready, &SmokeRequest::ready(&config.service.ready_path))
                .await
            {
                Answer::Http { status, .. } if (200..300).contains(&status) => None,
                Answer::Http { status, .. } => Some(format!("GET {ready} answered {status}")),
                Answer::Unreachable(why) => Some(format!("GET {ready}: {why}")),
            }
        };
        let report = DockerStatusReport {
            healthy: reason.is_none(),
            target: "docker",
            url,
            container: c.name.clone(),
            image: c.image.clone(),
            release: c.release,
            model_version: c.model_version.clone(),
            model_path: c.model_path.clone(),
            running: c.running,
            reason,
        };
        if !args.wait || report.healthy || start.elapsed() >= args.timeout {
            break report;
        }
        tokio::time::sleep(POLL).await;
    };
    session.printer.result(&report)?;
    Ok(if report.healthy {
        ExitStatus::Success
    } else {
        ExitStatus::Failed
    })
}

/// One look at the service.
pub async fn look(
    ecs: &aws_sdk_ecs::Client,
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    project: &str,
    region: &str,
    certificate_arn: Option<&str>,
) -> anyhow::Result<StatusReport> {
    let svc = service::require(ecs, project, region).await?;
    let shape = RunningShape::of(&svc)?;
    let serving = svc.task_definition().unwrap_or_default().to_string();
    let primary_id = service::primary(&svc).unwrap_or_default();
    let watch = Watch {
        ecs,
        elb,
        cluster: project,
        service: project,
        deployment_id: &primary_id,
        target_group_arn: &shape.target_group_arn,
        timeout: Duration::ZERO,
        poll: POLL,
    };
    let (snapshot, release, dns) = tokio::try_join!(
        watch.snapshot(),
        releases::describe(ecs, serving.clone(), Some(&serving)),
        load_balancer::dns_name_for_target_group(elb, &shape.target_group_arn),
    )?;
    let (state, reason) = assess(&primary_id, &snapshot);
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
        healthy: state == State::Healthy,
        state,
        reason,
        cluster: project.to_string(),
        service: project.to_string(),
        url: dns.map(|d| load_balancer::url(&d, certificate_arn)),
        task_definition: serving,
        image: release.release.image,
        model_version: release.release.model_version,
        model_path: release.release.model_path,
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
    })
}

/// The service's state from one snapshot, judged like the rollout watcher judges a deployment,
/// except that tasks stopped and replaced over a service's life do not count against it.
pub fn assess(
    primary_id: &str,
    snapshot: &crate::target::ecs::watcher::Snapshot,
) -> (State, Option<String>) {
    let mut snap = snapshot.clone();
    snap.stopped.clear();
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
    use crate::target::ecs::watcher::Snapshot;

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
}
