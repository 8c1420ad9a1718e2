//! `status`'s report: what serves and whether it is healthy, with the reason when it is not.

use std::fmt;

use serde::Serialize;

use super::short_task_definition;
use crate::config::{Metric, TargetKind};

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
pub struct StatusReport {
    pub healthy: bool,
    pub target: TargetKind,
    /// Why it is not healthy, in words; null when it is.
    pub reason: Option<String>,
    pub url: Option<String>,
    pub image: Option<String>,
    pub model_version: Option<String>,
    pub model_path: Option<String>,
    /// Why the serving revision's record is not to be trusted as it stands (tags that disagree
    /// with what it runs, or a revision mldeploy did not register); absent when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_warning: Option<String>,
    /// Where in the model registry the serving version came from; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<crate::reports::history::RegistryInfo>,
    #[serde(flatten)]
    pub on: StatusOn,
}

/// What only one target reports.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum StatusOn {
    Ecs(EcsStatus),
    Docker(DockerStatus),
}

#[derive(Debug, Clone, Serialize)]
pub struct Targets {
    pub healthy: usize,
    /// Each unhealthy target with ALB's reason.
    pub unhealthy: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EcsStatus {
    pub state: State,
    pub cluster: String,
    pub service: String,
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub deployments: Vec<DeploymentView>,
    pub targets: Targets,
    /// The latest stopped tasks of the serving deployment.
    pub stopped_tasks: Vec<StoppedTask>,
    /// The newest service events first, each "<time> <message>".
    pub events: Vec<String>,
    /// A blue/green, canary or linear service: its traffic split, and the deployment under way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shift: Option<Box<ShiftStatus>>,
    /// The autoscaler's range and mldeploy's policy, when the service's count is scaled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Box<Registered>>,
    /// `[workers.<name>]`' services, in name order.
    pub workers: Vec<WorkerStatus>,
}

/// One worker's service: judged like the model API's, without a load balancer.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    /// Its name in `[workers.<name>]`.
    pub worker: String,
    /// Its ECS service, `<project>-<worker>`.
    pub service: String,
    pub state: State,
    /// Why it is not healthy; null when it is.
    pub reason: Option<String>,
    /// Its revision; null when the service does not exist.
    pub task_definition: Option<String>,
    /// The model it reads, when it reads one.
    pub model_path: Option<String>,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
}

/// Where a traffic-shifting service's production traffic goes, and how far its newest
/// deployment is.
#[derive(Debug, Clone, Serialize)]
pub struct ShiftStatus {
    /// `BLUE_GREEN`, `CANARY` or `LINEAR`.
    pub strategy: String,
    /// (target group name, share of production traffic in percent), as the production rule has it.
    pub traffic: Vec<(String, f64)>,
    /// The newest service deployment's lifecycle stage while it is in progress.
    pub stage: Option<String>,
    /// Seconds of bake time left, while it bakes.
    pub bake_left_seconds: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DockerStatus {
    /// The engine's address: `unix:///...`, `tcp://...` or `ssh://...`.
    pub engine: String,
    /// The running container's CPU and memory, and the host's free disk.
    pub usage: Option<Usage>,
    pub container: String,
    pub release: u32,
    pub running: bool,
    /// `[workers.<name>]`' containers, in name order.
    pub workers: Vec<DockerWorker>,
}

/// One worker on a Docker host: healthy when its `desired_count` containers run.
#[derive(Debug, Clone, Serialize)]
pub struct DockerWorker {
    pub worker: String,
    /// Its running containers.
    pub containers: Vec<String>,
    /// The model API's release it was started with; null when it has no container.
    pub release: Option<u32>,
    /// The model it reads, when it reads one.
    pub model_path: Option<String>,
    pub desired: u32,
    /// Why it is not healthy; null when it is.
    pub reason: Option<String>,
}

/// `status --all`: each environment's report, or why there is none.
#[derive(Debug, Serialize)]
pub struct AllStatus {
    pub environments: Vec<EnvStatus>,
}

#[derive(Debug, Serialize)]
pub struct EnvStatus {
    /// The environment; null for a file without environments.
    pub env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<StatusReport>,
    /// Why it could not be looked at (nothing deployed, AWS unreachable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl fmt::Display for AllStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self
            .environments
            .iter()
            .map(|e| {
                let name = e.env.as_deref().unwrap_or("(no environment)");
                let said = match (&e.report, &e.error) {
                    (Some(report), _) => report.to_string(),
                    (None, Some(error)) => error.clone(),
                    (None, None) => String::new(),
                };
                format!("{name:<12} {}", said.lines().next().unwrap_or_default())
            })
            .collect();
        write!(f, "{}", lines.join("\n"))
    }
}

impl StatusReport {
    /// Whether waiting longer can change the verdict: not once healthy, nor once failed.
    pub fn settled(&self) -> bool {
        self.healthy || matches!(&self.on, StatusOn::Ecs(e) if e.state == State::Failed)
    }

    /// One line for `--wait`'s progress.
    pub fn progress_line(&self) -> String {
        let state = match &self.on {
            StatusOn::Ecs(e) => e.state.to_string(),
            StatusOn::Docker(_) if self.healthy => "healthy".into(),
            StatusOn::Docker(_) => "unhealthy".into(),
        };
        format!("  {state}: {}", self.reason.as_deref().unwrap_or_default())
    }
}

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let model =
            crate::model::describe(self.model_version.as_deref(), self.model_path.as_deref());
        let url = self.url.as_deref().unwrap_or("(no load balancer)");
        let image = self.image.as_deref().unwrap_or("?");
        match &self.on {
            StatusOn::Docker(d) => {
                let state = if self.healthy { "healthy" } else { "unhealthy" };
                writeln!(f, "{}: {state} - serves {model} at {url}", d.container)?;
                if let Some(registry) = &self.registry {
                    writeln!(f, "  {}", registry.describe())?;
                }
                if let Some(reason) = &self.reason {
                    writeln!(f, "  why: {reason}")?;
                }
                if let Some(u) = &d.usage {
                    writeln!(f, "  {}", describe_usage(u))?;
                }
                write!(
                    f,
                    "  image {image}, release {}, on the engine at {}",
                    d.release, d.engine
                )?;
                if !d.workers.is_empty() {
                    write!(f, "\n  workers:")?;
                }
                for w in &d.workers {
                    let state = if w.reason.is_some() {
                        "unhealthy"
                    } else {
                        "healthy"
                    };
                    let release = w
                        .release
                        .map(|r| format!("release {r}"))
                        .unwrap_or("-".into());
                    write!(
                        f,
                        "\n    {:<20} {state}: {}/{} running, {release}, {}",
                        w.worker,
                        w.containers.len(),
                        w.desired,
                        w.model_path.as_deref().unwrap_or("no model")
                    )?;
                    if let Some(reason) = &w.reason {
                        write!(f, "\n      why: {reason}")?;
                    }
                }
                Ok(())
            }
            StatusOn::Ecs(e) => {
                // ECS may judge it healthy while the app says it serves another model.
                let state = if !self.healthy && e.state == State::Healthy {
                    "serving another model".to_string()
                } else {
                    e.state.to_string()
                };
                writeln!(f, "{}: {state} - serves {model} at {url}", e.service)?;
                if let Some(registry) = &self.registry {
                    writeln!(f, "  {}", registry.describe())?;
                }
                if let Some(reason) = &self.reason {
                    writeln!(f, "  why: {reason}")?;
                }
                if let Some(warning) = &self.model_warning {
                    writeln!(f, "  warning: {warning}")?;
                }
                writeln!(
                    f,
                    "  task definition {}, image {image}",
                    short_task_definition(&e.task_definition)
                )?;
                writeln!(
                    f,
                    "  tasks: {}/{} running, {} pending; targets: {} healthy, {} unhealthy",
                    e.running,
                    e.desired,
                    e.pending,
                    e.targets.healthy,
                    e.targets.unhealthy.len()
                )?;
                for t in &e.targets.unhealthy {
                    writeln!(f, "    unhealthy {t}")?;
                }
                writeln!(f, "  deployments:")?;
                for d in &e.deployments {
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
                if !e.stopped_tasks.is_empty() {
                    writeln!(f, "  latest stopped tasks:")?;
                    for t in &e.stopped_tasks {
                        match t.exit_code {
                            Some(code) => {
                                writeln!(f, "    {}: {} (exit code {code})", t.id, t.reason)?
                            }
                            None => writeln!(f, "    {}: {}", t.id, t.reason)?,
                        }
                    }
                }
                if let Some(scaling) = &e.autoscaling {
                    writeln!(f, "  autoscaling: {}", scaling.describe())?;
                }
                if let Some(shift) = &e.shift {
                    let split: Vec<String> = shift
                        .traffic
                        .iter()
                        .map(|(tg, share)| format!("{share:.1} % to {tg}"))
                        .collect();
                    writeln!(
                        f,
                        "  {} deployments: production traffic {}",
                        shift.strategy,
                        split.join(", ")
                    )?;
                    if let Some(stage) = &shift.stage {
                        let left = shift
                            .bake_left_seconds
                            .map(|s| format!(", {s} s of bake time left (`mldeploy rollback` moves traffic back until then)"))
                            .unwrap_or_default();
                        writeln!(f, "  deployment in progress: {stage}{left}")?;
                    }
                }
                if !e.workers.is_empty() {
                    writeln!(f, "  workers:")?;
                }
                for w in &e.workers {
                    let revision = w
                        .task_definition
                        .as_deref()
                        .map(short_task_definition)
                        .unwrap_or("(no service)");
                    let model = w.model_path.as_deref().unwrap_or("no model");
                    writeln!(
                        f,
                        "    {:<20} {}: {revision}, {}/{} running, {} pending, {model}",
                        w.worker, w.state, w.running, w.desired, w.pending
                    )?;
                    if let Some(reason) = &w.reason {
                        writeln!(f, "      why: {reason}")?;
                    }
                }
                write!(f, "  recent events:")?;
                for ev in &e.events {
                    write!(f, "\n    {ev}")?;
                }
                Ok(())
            }
        }
    }
}

/// "cpu 3.2 %, memory 12.0 MiB of 1.0 GiB, 40.1 GiB free on /var/lib/docker".
fn describe_usage(u: &Usage) -> String {
    use crate::output::human_bytes as bytes;
    let cpu = u
        .cpu_percent
        .map_or("cpu unknown".to_string(), |c| format!("cpu {c:.1} %"));
    let memory = match (u.memory_bytes, u.memory_limit_bytes) {
        (Some(used), Some(limit)) => format!("memory {} of {}", bytes(used), bytes(limit)),
        (Some(used), None) => format!("memory {}", bytes(used)),
        _ => "memory unknown".to_string(),
    };
    let disk = match (u.disk_free_bytes, &u.docker_root) {
        (Some(free), Some(root)) => format!("{} free on {root}", bytes(free)),
        _ => "free disk unknown (the engine's API does not report it over TCP)".to_string(),
    };
    format!("{cpu}, {memory}, {disk}")
}

/// One deployment of the service, as the watcher needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentView {
    pub id: String,
    pub status: String,
    pub rollout_state: String,
    pub rollout_reason: String,
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
}

/// A task of our deployment that stopped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoppedTask {
    pub id: String,
    pub reason: String,
    pub exit_code: Option<i32>,
}

/// The name of the target-tracking policy mldeploy puts on a service.
pub const TRACKING_POLICY: &str = "mldeploy-target-tracking";

/// What is registered for the service now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Registered {
    pub min_count: i32,
    pub max_count: i32,
    /// mldeploy's policy, when there is one.
    pub policy: Option<Policy>,
}

impl Registered {
    /// Whether mldeploy registered it (its policy is there).
    pub fn ours(&self) -> bool {
        self.policy.is_some()
    }

    /// "1-4 tasks, average CPU at 70 % (scale in after 300 s, out after 300 s)".
    pub fn describe(&self) -> String {
        let policy = match &self.policy {
            Some(p) => match p.metric {
                Some(m) => format!(
                    ", {} (scale in after {} s, out after {} s)",
                    m.describe(p.target),
                    p.scale_in_cooldown,
                    p.scale_out_cooldown
                ),
                None => format!(", policy {TRACKING_POLICY} on another metric"),
            },
            None => ", registered outside mldeploy".to_string(),
        };
        format!("{}-{} tasks{policy}", self.min_count, self.max_count)
    }
}

/// mldeploy's target-tracking policy as registered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    #[serde(skip)]
    pub metric: Option<Metric>,
    pub metric_type: Option<String>,
    pub target: f64,
    pub scale_in_cooldown: i32,
    pub scale_out_cooldown: i32,
    /// The load balancer's target group, for requests per target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_label: Option<String>,
}

/// What the serving container uses and what the Docker host has left.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Percent of one CPU (200 = two CPUs busy), as `docker stats` shows it.
    pub cpu_percent: Option<f64>,
    /// Memory in use without the page cache, and the container's limit (the host's memory when
    /// it has none).
    pub memory_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    /// Free space on the file system of the engine's data root, and that root.
    pub disk_free_bytes: Option<u64>,
    pub docker_root: Option<String>,
}
