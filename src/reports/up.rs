//! `up`'s report (and `plan`'s): what serves now, or what would change.

use std::fmt;

use serde::Serialize;

use super::short_task_definition;
use crate::config::TargetKind;
use crate::smoke::SmokeCheck;
use crate::targets::{Action, Change, Verified};

/// What `up` did (or, for a plan, would do); `--output json` prints it as one object.
#[derive(Debug, Serialize)]
pub struct UpReport {
    pub dry_run: bool,
    pub target: TargetKind,
    pub url: String,
    pub image: String,
    pub model_version: Option<String>,
    /// None for a project without `[model]`.
    pub model_path: Option<String>,
    /// The smoke test's requests, each as it was answered.
    pub smoke: Vec<SmokeCheck>,
    /// What the model gate compared, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<crate::gate::GateReport>,
    /// `promote`: the environment and revision the release came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
    /// Every step, with `create`, `update` (and why) or `keep`.
    pub changes: Vec<Change>,
    /// A plan's estimate of the stack's monthly cost (ECS only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::cost::Estimate>,
    #[serde(flatten)]
    pub on: UpOn,
}

/// What only one target reports.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum UpOn {
    Ecs(EcsUp),
    Docker(DockerUp),
}

#[derive(Debug, Serialize)]
pub struct EcsUp {
    pub task_definition: String,
    pub cluster: String,
    pub service: String,
    /// The deployment this run opened and watched; null when nothing needed deploying.
    pub deployment_id: Option<String>,
    pub healthy_targets: usize,
}

#[derive(Debug, Serialize)]
pub struct DockerUp {
    pub container: String,
    pub release: u32,
    /// The containers this run replaced.
    pub replaced: Vec<String>,
    /// What became of each worker: "<worker>: started <container>" or "<worker>: unchanged".
    pub workers: Vec<String>,
}

impl UpReport {
    /// Records what the checks after the deployment saw.
    pub fn verified(mut self, verified: Verified) -> UpReport {
        if let (UpOn::Ecs(ecs), Some(n)) = (&mut self.on, verified.healthy_targets) {
            ecs.healthy_targets = n;
        }
        self.smoke = verified.smoke;
        self.gate = verified.gate;
        self
    }
}

/// The plan: each step, then the counts.
pub(crate) fn write_plan(f: &mut fmt::Formatter<'_>, changes: &[Change]) -> fmt::Result {
    let count = |a: Action| changes.iter().filter(|c| c.action == a).count();
    for c in changes {
        writeln!(f, "  {c}")?;
    }
    let deletes = match count(Action::Delete) {
        0 => String::new(),
        n => format!(", {n} to delete"),
    };
    write!(
        f,
        "Plan: {} to create, {} to update{deletes}, {} unchanged. Nothing was changed.",
        count(Action::Create),
        count(Action::Update),
        count(Action::Keep)
    )
}

impl fmt::Display for UpReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dry_run {
            write_plan(f, &self.changes)?;
            if let Some(cost) = &self.cost {
                write!(f, "\n{cost}")?;
            }
            return Ok(());
        }
        let who = match &self.on {
            UpOn::Ecs(e) => &e.service,
            UpOn::Docker(d) => &d.container,
        };
        match (&self.model_version, &self.model_path) {
            (_, None) => writeln!(f, "{who} serves at {} (no model)", self.url)?,
            (Some(v), Some(path)) => {
                writeln!(f, "{who} serves model version {v} ({path}) at {}", self.url)?
            }
            (None, Some(path)) => writeln!(f, "{who} serves the model ({path}) at {}", self.url)?,
        }
        if let Some(from) = &self.promoted_from {
            writeln!(f, "  promoted from {from}: image {}", self.image)?;
        }
        let requests = self.smoke.len();
        match &self.on {
            UpOn::Ecs(e) => write!(
                f,
                "  task definition {}, {} healthy target(s), {}, smoke test passed ({requests} request(s))",
                short_task_definition(&e.task_definition),
                e.healthy_targets,
                match &e.deployment_id {
                    Some(id) => format!("deployment {id} completed"),
                    None => "nothing needed deploying".to_string(),
                },
            ),
            UpOn::Docker(d) => {
                write!(
                    f,
                    "  image {}, release {}, {}, smoke test passed ({requests} request(s))",
                    self.image,
                    d.release,
                    if d.replaced.is_empty() {
                        "nothing replaced".to_string()
                    } else {
                        format!("replaced {}", d.replaced.join(", "))
                    },
                )?;
                for w in &d.workers {
                    write!(f, "\n  worker {w}")?;
                }
                Ok(())
            }
        }
    }
}
