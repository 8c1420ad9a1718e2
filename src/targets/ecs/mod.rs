//! The ECS Fargate target: one module per AWS resource (find by tag; plan a step as a value; apply
//! it; delete), the task definition, the rollout watcher, and [`Ecs`], which puts them together
//! as a [`Target`]. [`step`] holds [`Id`] and the one place a dry run stops.

pub mod autoscaling;
pub mod cluster;
pub mod deployments;
pub mod domain;
pub mod iam;
pub mod inventory;
pub mod load_balancer;
pub mod log_lines;
pub mod logs;
pub mod network;
pub mod one_off;
pub mod preflight;
pub mod promote;
pub mod promote_workers;
pub mod release;
pub mod release_command;
pub mod release_record;
pub mod releases;
pub mod rollback;
pub mod run_command;
pub mod security;
pub mod service;
pub mod stack;
pub mod status;
pub mod step;
pub mod task_definition;
pub mod teardown;
pub mod traffic_shift;
pub mod up;
pub mod verify;
pub mod wait;
pub mod watcher;
pub mod worker_rollback;
pub mod workers;

use std::time::{Duration, Instant};

pub use crate::aws::tags::PROJECT_TAG;
use crate::config::TargetKind;
use crate::reports::{
    HistoryReport, LogsReport, RollbackReport, RunReport, StatusReport, UpReport,
};
use crate::session::Ctx;
use crate::targets::inventory::{Found, Kind};
use crate::targets::{Applied, Deploy, Target, Verified};
use crate::targets::{RollbackTo, Rollout};
pub use step::{Id, Plan, Planned};

/// What every converge step needs: the project, and whether to apply the steps planned.
#[derive(Debug, Clone)]
pub struct Converge {
    pub project: String,
    /// Plan only: look, decide, and report, but change nothing.
    pub dry_run: bool,
}

/// What `up` or `rollback` deployed on ECS, for the watch and the smoke test.
#[derive(Debug)]
pub struct EcsDeployed {
    /// The service as it was deployed; a rollback after a failed smoke test reuses it.
    pub spec: service::ServiceSpec,
    pub deployed: service::Deployed,
    /// The service's URL, where the smoke test goes.
    pub url: String,
    /// The load balancer, when the URL names the service's domain.
    pub via: Option<crate::smoke::Via>,
    /// Whether a blue/green, canary or linear deployment runs `[gate]` (`up`), or only the smoke
    /// test (`rollback`, which asks for an older revision on purpose).
    pub gated: bool,
    /// The workers' services as this run left them: watched after the service, and taken back
    /// with it when the release fails.
    pub workers: Vec<workers::WorkerDeployed>,
}

/// AWS ECS Fargate behind a load balancer. AWS is reached through the command's [`Ctx`].
pub struct Ecs;

impl Target for Ecs {
    type Prepared = up::Template;
    type Checked = up::Checked;
    type Chosen = rollback::Chosen;
    type Deployed = EcsDeployed;

    fn preflight(_ctx: &Ctx<'_>) -> anyhow::Result<()> {
        Ok(())
    }

    fn prepare(ctx: &Ctx<'_>) -> anyhow::Result<up::Template> {
        up::prepare(&ctx.config, ctx.printer)
    }

    async fn connect(_ctx: &Ctx<'_>) -> anyhow::Result<Ecs> {
        Ok(Ecs)
    }

    async fn check(&self, ctx: &Ctx<'_>, template: up::Template) -> anyhow::Result<up::Checked> {
        up::check(ctx, template).await
    }

    async fn plan(
        &self,
        ctx: &Ctx<'_>,
        deploy: &Deploy<'_>,
        checked: up::Checked,
    ) -> anyhow::Result<UpReport> {
        Ok(up::converge(ctx, deploy, checked, true).await?.0)
    }

    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        deploy: &Deploy<'_>,
        checked: up::Checked,
    ) -> anyhow::Result<Applied<EcsDeployed, UpReport>> {
        let (report, deployed) = up::converge(ctx, deploy, checked, false).await?;
        Ok(Applied { deployed, report })
    }

    async fn choose(
        &self,
        ctx: &Ctx<'_>,
        args: &RollbackTo,
    ) -> anyhow::Result<(rollback::Chosen, RollbackReport)> {
        rollback::choose(ctx, args).await
    }

    async fn apply_rollback(
        &self,
        ctx: &Ctx<'_>,
        chosen: rollback::Chosen,
        report: RollbackReport,
        flags: &Rollout,
    ) -> anyhow::Result<Applied<EcsDeployed, RollbackReport>> {
        rollback::apply(ctx, chosen, report, flags).await
    }

    async fn verify(
        &self,
        ctx: &Ctx<'_>,
        deployed: &EcsDeployed,
        flags: &Rollout,
    ) -> anyhow::Result<Verified> {
        let aws = ctx.aws().await?;
        let (ecs, elb) = (aws.ecs(), aws.elbv2());
        let project = ctx.project();
        let cv = Converge {
            project: project.to_string(),
            dry_run: false,
        };
        // Behind a production rule (blue/green, canary, linear), the serving tasks may be in
        // either target group: the watch counts the one production traffic goes to.
        let production_rule = service::describe(&ecs, &deployed.spec.cluster, project)
            .await?
            .as_ref()
            .and_then(service::production_rule)
            .map(str::to_string);
        let serving_group = match &production_rule {
            Some(rule) => load_balancer::rules::production_target_group(&elb, rule).await?,
            None => None,
        };
        let watch = watcher::Watch {
            ecs: &ecs,
            elb: &elb,
            cluster: &deployed.spec.cluster,
            service: project,
            deployment_id: deployed
                .deployed
                .deployment_id
                .as_deref()
                .unwrap_or_default(),
            target_group_arn: serving_group.as_deref().or(deployed
                .spec
                .target
                .as_ref()
                .map(|t| t.target_group_arn.as_str())),
            timeout: flags.timeout,
            poll: crate::aws::poll::interval(),
        };
        let logs = aws.logs();
        let verified = verify::Verify {
            ecs: &ecs,
            elb: &elb,
            logs: &logs,
            cv: &cv,
            spec: &deployed.spec,
            watch,
            deployed: &deployed.deployed,
            url: &deployed.url,
            via: deployed.via.as_ref(),
            gated: deployed.gated,
            production_rule: production_rule.as_deref(),
            config: &ctx.config,
            flags,
        }
        .run(ctx.printer)
        .await;
        // One release across the services: a failure of any takes back every one it changed.
        let release = release::Release {
            ecs: &ecs,
            elb: &elb,
            logs: Some(&logs),
            cv: &cv,
            timeout: flags.timeout,
            poll: crate::aws::poll::interval(),
            no_rollback: flags.no_rollback,
        };
        let workers: Vec<release::Changed> = deployed
            .workers
            .iter()
            .map(|w| release::Changed {
                name: &w.service,
                spec: &w.spec,
                deployed: &w.deployed,
            })
            .collect();
        let verified = match verified {
            Ok(verified) => verified,
            // The service took itself back already (or ECS did); its workers follow.
            Err(failed) if !workers.is_empty() => {
                let who = format!("the model API ({project})");
                return Err(release.take_back(failed, &who, &workers, ctx.printer).await);
            }
            Err(failed) => return Err(failed),
        };
        if let Err((who, failed)) = release.watch_workers(&deployed.workers, ctx.printer).await {
            let web = release::Changed {
                name: project,
                spec: &deployed.spec,
                deployed: &deployed.deployed,
            };
            let every: Vec<release::Changed> = std::iter::once(web).chain(workers).collect();
            let who = format!("worker {who}");
            return Err(release.take_back(failed, &who, &every, ctx.printer).await);
        }
        // A successful blue/green, canary or linear deployment left production in the other
        // target group: the requests-per-target metric follows it.
        if let (Some(rule), Some(wanted)) = (&production_rule, &ctx.config.service.autoscaling) {
            autoscaling::follow_live_group(
                &aws.autoscaling(),
                &elb,
                &cv,
                rule,
                wanted,
                ctx.printer,
            )
            .await?;
        }
        release_record::after_release(&aws.s3(), &ctx.config, deployed, ctx.printer).await;
        Ok(verified)
    }

    async fn status(&self, ctx: &Ctx<'_>) -> anyhow::Result<StatusReport> {
        let aws = ctx.aws().await?;
        status::look(aws, &ctx.config).await
    }

    async fn releases(&self, ctx: &Ctx<'_>, limit: Option<usize>) -> anyhow::Result<HistoryReport> {
        let ecs = ctx.aws().await?.ecs();
        let project = ctx.project();
        let serving = service::describe(&ecs, project, project)
            .await?
            .and_then(|s| s.task_definition().map(str::to_string));
        let revisions = releases::list(
            &ecs,
            project,
            ctx.config.model_path_template(),
            serving.as_deref(),
            limit,
        )
        .await?;
        let mut releases: Vec<_> = revisions.into_iter().map(|r| r.release).collect();
        if !ctx.config.workers.is_empty() {
            let s3 = ctx.aws().await?.s3();
            // The records only add the workers' revisions: without them, history still stands.
            match release_record::newest(&s3, &ctx.config.lock.bucket, project).await {
                Ok(records) => release_record::annotate(&mut releases, &records, project),
                Err(e) => ctx.printer.warn(format!(
                    "the workers' revisions are not shown: the release records in s3://{}/.mldeploy/{project}/releases/ could not be read: {e:#}",
                    ctx.config.lock.bucket
                )),
            }
        }
        Ok(HistoryReport {
            target: TargetKind::Ecs,
            family: project.to_string(),
            serving,
            releases,
        })
    }

    async fn logs(
        &self,
        ctx: &Ctx<'_>,
        since: Duration,
        follow: bool,
        service: Option<&str>,
    ) -> anyhow::Result<LogsReport> {
        log_lines::read(ctx, since, follow, service).await
    }

    async fn run_once(
        &self,
        ctx: &Ctx<'_>,
        service: Option<&str>,
        command: &[String],
        timeout: Duration,
    ) -> anyhow::Result<RunReport> {
        run_command::run(ctx, service, command, timeout).await
    }

    async fn inventory(&self, ctx: &Ctx<'_>) -> anyhow::Result<Vec<Found>> {
        let service = &ctx.config.service;
        let domain = inventory::Domain {
            name: service.domain.as_deref(),
            zone_id: service.hosted_zone_id.as_deref(),
        };
        let workers: Vec<String> = ctx
            .config
            .workers
            .iter()
            .map(|w| w.service_name(ctx.project()))
            .collect();
        let aws = ctx.aws().await?;
        let mut found = inventory::find(
            aws,
            ctx.project(),
            ctx.config.model_path_template(),
            domain,
            &workers,
        )
        .await?;
        // The release records beside the lock: a bucket that is gone has none.
        let bucket = &ctx.config.lock.bucket;
        match release_record::count(&aws.s3(), bucket, ctx.project()).await {
            Ok(0) => {}
            Ok(n) => found.push(Found::new(
                Kind::ReleaseRecords,
                format!("s3://{bucket}/.mldeploy/{}/releases/ ({n})", ctx.project()),
                bucket,
                true,
            )),
            Err(e) => ctx.printer.warn(format!(
                "the release records in s3://{bucket}/.mldeploy/{}/releases/ could not be listed, so they are left: {e:#}",
                ctx.project()
            )),
        }
        Ok(found)
    }

    async fn delete(&self, ctx: &Ctx<'_>, item: &Found, deadline: Instant) -> anyhow::Result<()> {
        let printer = ctx.printer;
        let waiting = |code: &str, why: &str| {
            // EC2's DependencyViolation after a service is gone is a stopped task's interface.
            let hint = if code == "DependencyViolation" {
                " (a stopped task's network interface keeps its subnet and security group for minutes)"
            } else {
                ""
            };
            printer.info(format!(
                "  waiting to delete {item}: AWS says \"{why}\"{hint}; trying every {} s until the --timeout",
                crate::aws::poll::interval().as_secs_f64()
            ))
        };
        let wait = wait::Wait {
            until: deadline,
            waiting: &waiting,
        };
        teardown::delete(ctx.aws().await?, ctx.project(), item, &wait).await
    }
}
