//! One release across the project's services: after the model API's deployment is seen through,
//! every worker deployment this run opened is watched to its end; when any service of the
//! release fails, every service the release changed goes back to the revision it ran before,
//! and the error names the service that failed.

use std::time::{Duration, Instant};

use super::service::{self, Deployed, ServiceSpec};
use super::watcher::{human_duration, Watch};
use super::workers::WorkerDeployed;
use super::Converge;
use crate::exit::{self, ExitStatus};
use crate::output::Printer;

/// How long a worker's tasks must keep running once ECS called its deployment COMPLETED. ECS
/// completes a rolling deployment once the new tasks reached RUNNING (and are healthy, where a
/// health check applies): the circuit breaker's first stage counts tasks that fail to reach
/// RUNNING (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html).
/// A worker has no load balancer and, usually, no health check, so a process that exits right
/// after it started would pass; a worker is healthy when it runs and does not restart.
pub const WORKER_SETTLE: Duration = Duration::from_secs(30);
/// How many of a stopped worker task's lines a failure shows.
const APP_LINES: usize = 6;

/// What the watch of the workers needs of the run.
pub struct Release<'a> {
    pub ecs: &'a aws_sdk_ecs::Client,
    pub elb: &'a aws_sdk_elasticloadbalancingv2::Client,
    /// Where a failed worker's lines are read; None leaves them out.
    pub logs: Option<&'a aws_sdk_cloudwatchlogs::Client>,
    pub cv: &'a Converge,
    pub timeout: Duration,
    pub poll: Duration,
    /// `--no-rollback`: a failed release stays as it is.
    pub no_rollback: bool,
}

/// A service this release changed, and the revision it ran before.
#[derive(Debug, Clone)]
pub struct Changed<'a> {
    pub name: &'a str,
    pub spec: &'a ServiceSpec,
    pub deployed: &'a Deployed,
}

impl Changed<'_> {
    /// The revision to go back to: the one before, when this run opened a deployment of another.
    fn previous(&self) -> Option<&str> {
        self.deployed.deployment_id.as_ref()?;
        self.deployed
            .previous_task_definition
            .as_deref()
            .filter(|p| *p != self.spec.task_definition_arn)
    }
}

impl Release<'_> {
    /// Watches the worker deployments this run opened, all at once; the first that fails is the
    /// error, named by its worker.
    pub async fn watch_workers(
        &self,
        workers: &[WorkerDeployed],
        printer: &Printer,
    ) -> Result<(), (String, anyhow::Error)> {
        let watches = workers.iter().filter_map(|w| {
            let id = w.deployed.deployment_id.as_deref()?;
            Some(async move {
                self.watch_worker(w, id, printer).await.map_err(|e| {
                    let status = exit::status_of(&e);
                    let named = exit::error(status, format!("worker {}: {e:#}", w.worker));
                    (w.worker.clone(), named)
                })
            })
        });
        futures_util::future::try_join_all(watches).await?;
        Ok(())
    }

    /// One worker's deployment: ECS's verdict, then the settle window, with what the app said
    /// when it fails.
    async fn watch_worker(
        &self,
        w: &WorkerDeployed,
        id: &str,
        printer: &Printer,
    ) -> anyhow::Result<()> {
        printer.info(format!(
            "Watching worker {}'s deployment {id} ({})",
            w.worker,
            service::short_task_definition(&w.spec.task_definition_arn)
        ));
        let watch = self.watch(&w.spec.cluster, &w.service, id);
        let rollout = match watch.run(printer).await {
            Ok(rollout) => rollout,
            Err(failed) => return Err(self.with_app_lines(w, &watch, failed).await),
        };
        if let Err(failed) = settle(&watch).await {
            return Err(self.with_app_lines(w, &watch, failed).await);
        }
        printer.info(format!(
            "Worker {}'s deployment completed in {}, and its tasks kept running for {}",
            w.worker,
            human_duration(rollout.waited),
            human_duration(WORKER_SETTLE)
        ));
        Ok(())
    }

    /// `failed` with the last telling lines of the newest stopped task of the worker.
    async fn with_app_lines(
        &self,
        w: &WorkerDeployed,
        watch: &Watch<'_>,
        failed: anyhow::Error,
    ) -> anyhow::Error {
        let Some(logs) = self.logs else {
            return failed;
        };
        let Some(task) = watch
            .stopped_tasks()
            .await
            .ok()
            .and_then(|t| t.into_iter().next())
        else {
            return failed;
        };
        let stream = format!("{}/{}/{}", w.service, w.worker, task.id);
        let lines =
            super::log_lines::telling_lines_in_stream(logs, &self.cv.project, &stream, APP_LINES)
                .await
                .unwrap_or_default();
        if lines.is_empty() {
            return failed;
        }
        let shown: Vec<String> = lines.iter().map(|l| format!("    {l}")).collect();
        exit::error(
            exit::status_of(&failed),
            format!(
                "{failed:#}\n  the worker said (task {}; all its lines: `mldeploy logs`):\n{}",
                task.id,
                shown.join("\n")
            ),
        )
    }

    fn watch<'b>(&'b self, cluster: &'b str, name: &'b str, id: &'b str) -> Watch<'b> {
        Watch {
            ecs: self.ecs,
            elb: self.elb,
            cluster,
            service: name,
            deployment_id: id,
            target_group_arn: None,
            timeout: self.timeout,
            poll: self.poll,
        }
    }

    /// Takes every changed service back to the revision it ran before (those ECS's circuit
    /// breaker rolled back already are kept as they are), and returns `failed` with what was
    /// done: every line names a service.
    pub async fn take_back(
        &self,
        failed: anyhow::Error,
        who: &str,
        changed: &[Changed<'_>],
        printer: &Printer,
    ) -> anyhow::Error {
        let status = match exit::status_of(&failed) {
            ExitStatus::Success => ExitStatus::Failed,
            s => s,
        };
        if self.no_rollback {
            return failed.context(exit::Classified {
                status,
                message: format!(
                    "{who} failed; with --no-rollback every service keeps what this run deployed"
                ),
            });
        }
        printer.warn(format!("{failed:#}"));
        let mut said = Vec::new();
        for c in changed {
            let Some(previous) = c.previous() else {
                if c.deployed.deployment_id.is_some()
                    && c.deployed.previous_task_definition.is_none()
                {
                    said.push(format!(
                        "{} is new in this release and keeps running {} (nothing ran before it)",
                        c.name,
                        service::short_task_definition(&c.spec.task_definition_arn)
                    ));
                }
                continue;
            };
            let back = service::short_task_definition(previous).to_string();
            printer.info(format!("Taking {} back to {back}", c.name));
            match self.redeploy(c, previous, printer).await {
                Ok(()) => said.push(format!("{} runs {back} again", c.name)),
                Err(e) => said.push(format!(
                    "{} could not be taken back to {back} ({e:#}); run `mldeploy up` with the release that served before",
                    c.name
                )),
            }
        }
        let message = if said.is_empty() {
            format!("{who} failed")
        } else {
            format!(
                "{who} failed, so the release was taken back: {}",
                said.join("; ")
            )
        };
        failed.context(exit::Classified { status, message })
    }

    async fn redeploy(
        &self,
        c: &Changed<'_>,
        previous: &str,
        printer: &Printer,
    ) -> anyhow::Result<()> {
        let watch = Watch {
            target_group_arn: c.spec.target.as_ref().map(|t| t.target_group_arn.as_str()),
            ..self.watch(&c.spec.cluster, c.name, "")
        };
        redeploy(self.cv, c.name, c.spec, previous, watch, printer).await
    }
}

/// Points the service `name` (deployed as `spec`) at `previous` again and watches the deployment
/// that opens, with `watch`'s target group and timing: how a failed smoke test or a failed
/// release is taken back.
pub async fn redeploy(
    cv: &Converge,
    name: &str,
    spec: &ServiceSpec,
    previous: &str,
    watch: Watch<'_>,
    printer: &Printer,
) -> anyhow::Result<()> {
    let spec = ServiceSpec {
        task_definition_arn: previous.to_string(),
        force: false,
        ..spec.clone()
    };
    let existing = service::describe(watch.ecs, &spec.cluster, name).await?;
    let deployed =
        service::ensure_named(watch.ecs, cv, name, &spec, existing, &mut Vec::new()).await?;
    let Some(id) = deployed.deployment_id else {
        return Ok(());
    };
    printer.info(format!("Watching deployment {id}"));
    Watch {
        deployment_id: &id,
        ..watch
    }
    .run(printer)
    .await?;
    Ok(())
}

/// Fails when a task of the watched deployment stops within [`WORKER_SETTLE`] (on the sandbox's
/// clock): the worker started and exited, and ECS is replacing it.
async fn settle(watch: &Watch<'_>) -> anyhow::Result<()> {
    let until = Instant::now() + crate::aws::clock::scaled(WORKER_SETTLE);
    loop {
        if let Some(task) = watch.stopped_tasks().await?.into_iter().next() {
            let code = task
                .exit_code
                .map(|c| format!(" (exit code {c})"))
                .unwrap_or_default();
            return Err(exit::error(
                ExitStatus::Failed,
                format!(
                    "task {} of deployment {} stopped after it started: {}{code}; the worker does not keep running (ECS starts it again and again)",
                    task.id, watch.deployment_id, task.reason
                ),
            ));
        }
        if Instant::now() >= until {
            return Ok(());
        }
        tokio::time::sleep(
            watch
                .poll
                .min(until.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(10)),
        )
        .await;
    }
}
