//! The ECS Fargate target: one module per AWS resource (find by tag, ensure, delete).

pub mod cluster;
pub mod iam;
pub mod load_balancer;
pub mod logs;
pub mod network;
pub mod releases;
pub mod security;
pub mod service;
pub mod task_definition;
pub mod teardown;
pub mod watcher;

/// The tag on everything mldeploy creates for a project; destroy deletes nothing without it.
pub const PROJECT_TAG: &str = crate::image::ecr::PROJECT_TAG;

/// What every converge step needs: the project, the clients, and whether to change anything.
#[derive(Debug, Clone)]
pub struct Converge {
    pub project: String,
    /// Plan only: look, decide, and report, but change nothing.
    pub dry_run: bool,
}
