//! `rollback`'s report: what serves now (or would), and what served before.

use std::fmt;

use serde::Serialize;

use super::short_task_definition;
use crate::config::TargetKind;
use crate::smoke::SmokeCheck;
use crate::targets::Verified;

/// What `rollback` did, or would do.
#[derive(Debug, Serialize)]
pub struct RollbackReport {
    pub dry_run: bool,
    pub target: TargetKind,
    pub url: Option<String>,
    pub model_version: Option<String>,
    pub model_path: Option<String>,
    pub image: Option<String>,
    pub smoke: Vec<SmokeCheck>,
    #[serde(flatten)]
    pub on: RollbackOn,
}

/// What only one target reports.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum RollbackOn {
    Ecs(EcsRollback),
    Docker(super::up::DockerUp),
}

#[derive(Debug, Serialize)]
pub struct EcsRollback {
    pub cluster: String,
    pub service: String,
    /// The revision that serves now (or would).
    pub task_definition: String,
    /// The revision that served before.
    pub previous_task_definition: String,
    /// Whether a new revision was registered (a model version no release served yet).
    pub registered: bool,
    /// The deployment this run opened; null when the target already served.
    pub deployment_id: Option<String>,
    pub healthy_targets: usize,
    /// The workers that move with it, each from the revision it ran to the one it runs.
    pub workers: Vec<WorkerMove>,
}

impl RollbackReport {
    /// Records what the checks after the deployment saw.
    pub fn verified(mut self, verified: Verified) -> RollbackReport {
        if let (RollbackOn::Ecs(ecs), Some(n)) = (&mut self.on, verified.healthy_targets) {
            ecs.healthy_targets = n;
        }
        self.smoke = verified.smoke;
        self
    }
}

impl fmt::Display for RollbackReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let model =
            crate::model::describe(self.model_version.as_deref(), self.model_path.as_deref());
        let image = self.image.as_deref().unwrap_or("?");
        let url = self.url.as_deref().unwrap_or("(no load balancer)");
        let requests = self.smoke.len();
        match &self.on {
            RollbackOn::Ecs(e) => {
                let target = short_task_definition(&e.task_definition);
                let previous = short_task_definition(&e.previous_task_definition);
                if self.dry_run {
                    let how = if e.registered {
                        "a new revision"
                    } else {
                        target
                    };
                    write!(
                        f,
                        "Would deploy {how} with {model} and image {image} in place of {previous}."
                    )?;
                    for w in &e.workers {
                        write!(
                            f,
                            "\n  worker {}: {} in place of {}",
                            w.worker, w.task_definition, w.previous_task_definition
                        )?;
                    }
                    let sep = if e.workers.is_empty() { " " } else { "\n" };
                    return write!(f, "{sep}Nothing was changed.");
                }
                writeln!(f, "{} serves {model} at {url}", e.service)?;
                write!(
                    f,
                    "  task definition {target} (was {previous}), {} healthy target(s), smoke test passed ({requests} request(s))",
                    e.healthy_targets
                )?;
                for w in &e.workers {
                    write!(
                        f,
                        "\n  worker {}: {} (was {})",
                        w.worker, w.task_definition, w.previous_task_definition
                    )?;
                }
                Ok(())
            }
            RollbackOn::Docker(d) => {
                let replaced = if d.replaced.is_empty() {
                    "nothing".to_string()
                } else {
                    d.replaced.join(", ")
                };
                if self.dry_run {
                    return write!(
                        f,
                        "Would deploy {} with {model} and image {image} in place of {replaced}. Nothing was changed.",
                        d.container
                    );
                }
                writeln!(f, "{} serves {model} at {url}", d.container)?;
                write!(
                    f,
                    "  image {image}, release {}, replaced {replaced}, smoke test passed ({requests} request(s))",
                    d.release
                )?;
                for w in &d.workers {
                    write!(f, "\n  worker {w}")?;
                }
                Ok(())
            }
        }
    }
}

/// A worker's move, as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerMove {
    pub worker: String,
    /// `family:revision` it runs now (or would), and ran before; `(next)` for a new one.
    pub task_definition: String,
    pub previous_task_definition: String,
}
