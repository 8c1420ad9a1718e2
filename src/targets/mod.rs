//! Where a service runs. Each target implements [`Target`]: the commands in `commands/` are
//! written once against it, and [`with_target!`] picks the implementation from `target.kind`.
//! A command reads as preflight -> model check -> lock -> plan (a dry run stops there) ->
//! apply -> verify -> report, whatever the target.

pub mod docker;
pub mod ecs;
pub mod inventory;
pub mod plan;

use std::time::{Duration, Instant};

pub use plan::{Action, Change};

use crate::model::ModelVersion;
use crate::reports::{
    HistoryReport, LogsReport, RollbackReport, RunReport, StatusReport, UpReport,
};
use crate::session::Ctx;
use crate::smoke::SmokeCheck;
use inventory::Found;

/// How a deploy or rollback is carried out, resolved from the command's flags (the targets
/// never read clap's argument structs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollout {
    /// How long to wait for the deployment and its smoke test.
    pub timeout: std::time::Duration,
    /// Keep a new revision that failed its smoke test instead of going back.
    pub no_rollback: bool,
    /// Print what would change, and change nothing.
    pub dry_run: bool,
}

/// What `rollback` goes back to: a model version with the serving image, a revision as it
/// was, or (neither) the release before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackTo {
    pub model_version: Option<String>,
    pub to_revision: Option<i32>,
    pub dry_run: bool,
}

/// What `up` deploys: a model of the bucket, and the image built from the project's context.
#[derive(Debug, Clone)]
pub struct Deploy<'a> {
    /// The model it serves; None for a project without `[model]`.
    pub model: Option<&'a ModelVersion>,
    /// The version asked for; None for an explicit `--model-path`.
    pub version: Option<&'a str>,
    /// `up --force`: deploy anew what already serves.
    pub force: bool,
    pub flags: &'a Rollout,
    /// `promote`: the release serving in another environment, deployed with its image as it is
    /// (copied by digest) instead of one built here. ECS only.
    pub promoted: Option<&'a ecs::promote::Promoted>,
}

/// What `apply` started, and the report that says so; `verify` sees it through.
#[derive(Debug)]
pub struct Applied<D, R> {
    pub deployed: D,
    pub report: R,
}

/// What a deployment that passed its checks looked like.
#[derive(Debug, Clone, Default)]
pub struct Verified {
    /// Healthy load-balancer targets, where the target has a load balancer.
    pub healthy_targets: Option<usize>,
    pub smoke: Vec<SmokeCheck>,
    /// The model gate's report, when a blue/green, canary or linear deployment ran it.
    pub gate: Option<crate::gate::GateReport>,
}

/// One place a service runs. Every method that changes something is preceded, in the commands,
/// by the checks that read only and by the deploy lock.
#[allow(async_fn_in_trait)] // dispatched statically (`with_target!`); never a trait object
pub trait Target: Sized {
    /// What `up` read from the project's files before any call (the task-definition template).
    type Prepared;
    /// What `up` read before taking the lock (named subnets, the engine's containers).
    type Checked;
    /// The release `rollback` resolved, checked to exist everywhere it must.
    type Chosen;
    /// What `apply` started, for `verify`.
    type Deployed;

    /// Refusals that need no call, for every command that deploys: a setting this target cannot
    /// honour is exit 2 before anything is asked of AWS or the engine.
    fn preflight(ctx: &Ctx<'_>) -> anyhow::Result<()>;

    /// `up`: reads and checks what it renders from the project's files (a template that cannot
    /// be registered is exit 2), before any call. `rollback` does not: it deploys a release as it
    /// was, whatever the files now hold.
    fn prepare(ctx: &Ctx<'_>) -> anyhow::Result<Self::Prepared>;

    /// Connects to what the target runs on (the Docker engine; AWS is loaded on first use).
    async fn connect(ctx: &Ctx<'_>) -> anyhow::Result<Self>;

    /// `up`: what must be read and checked before the lock is taken; changes nothing.
    async fn check(&self, ctx: &Ctx<'_>, prepared: Self::Prepared)
        -> anyhow::Result<Self::Checked>;

    /// `up --dry-run` and `plan`: every step `apply` would take; changes nothing.
    async fn plan(
        &self,
        ctx: &Ctx<'_>,
        deploy: &Deploy<'_>,
        checked: Self::Checked,
    ) -> anyhow::Result<UpReport>;

    /// `up`: builds, pushes, converges and deploys.
    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        deploy: &Deploy<'_>,
        checked: Self::Checked,
    ) -> anyhow::Result<Applied<Self::Deployed, UpReport>>;

    /// `rollback`: the release asked for, with its model checked in S3 and its image where the
    /// target pulls it; changes nothing. The report says what would serve.
    async fn choose(
        &self,
        ctx: &Ctx<'_>,
        args: &RollbackTo,
    ) -> anyhow::Result<(Self::Chosen, RollbackReport)>;

    /// `rollback`: deploys the chosen release; nothing is built or converged.
    async fn apply_rollback(
        &self,
        ctx: &Ctx<'_>,
        chosen: Self::Chosen,
        report: RollbackReport,
        flags: &Rollout,
    ) -> anyhow::Result<Applied<Self::Deployed, RollbackReport>>;

    /// Watches what `apply` started, smoke-tests it, and undoes it when that fails.
    async fn verify(
        &self,
        ctx: &Ctx<'_>,
        deployed: &Self::Deployed,
        flags: &Rollout,
    ) -> anyhow::Result<Verified>;

    /// One look at what serves and whether it is healthy.
    async fn status(&self, ctx: &Ctx<'_>) -> anyhow::Result<StatusReport>;

    /// The releases, newest first (`limit` of them, or all), and which one serves.
    async fn releases(&self, ctx: &Ctx<'_>, limit: Option<usize>) -> anyhow::Result<HistoryReport>;

    /// The lines since `since` of every service, or of `service` (the model API's, named for the
    /// project, or a worker's); with `follow`, printed as they come until interrupted.
    async fn logs(
        &self,
        ctx: &Ctx<'_>,
        since: Duration,
        follow: bool,
        service: Option<&str>,
    ) -> anyhow::Result<LogsReport>;

    /// `run`: `command` once as a task (ECS) or container (Docker) of `service`'s current
    /// release, each line of its output printed as it comes; how it ended. Past `timeout` it is
    /// stopped and the run fails.
    async fn run_once(
        &self,
        ctx: &Ctx<'_>,
        service: Option<&str>,
        command: &[String],
        timeout: Duration,
    ) -> anyhow::Result<RunReport>;

    /// Everything of the project's that exists on this target, in deletion order.
    async fn inventory(&self, ctx: &Ctx<'_>) -> anyhow::Result<Vec<Found>>;

    /// Deletes one resource of the inventory, waiting for what it depends on until `deadline`.
    async fn delete(&self, ctx: &Ctx<'_>, item: &Found, deadline: Instant) -> anyhow::Result<()>;
}

/// Evaluates `$body` with the type `$T` bound to the target that `$kind` (a `TargetKind`) names:
/// the one place that chooses between targets. `with_target!(kind, T => up::<T>(&ctx).await)`
#[macro_export]
macro_rules! with_target {
    ($kind:expr, $T:ident => $body:expr) => {
        match $kind {
            $crate::config::TargetKind::Ecs => {
                type $T = $crate::targets::ecs::Ecs;
                $body
            }
            $crate::config::TargetKind::Docker => {
                type $T = $crate::targets::docker::Docker;
                $body
            }
        }
    };
}
