//! After a deployment is opened on ECS, by `up` or `rollback`: watch it to its end, smoke-test the
//! service through its load balancer, and when the smoke test fails redeploy the revision that
//! served before. A blue/green, canary or linear deployment is seen through by
//! [`super::traffic_shift`] instead, which tests the new revision before production traffic
//! reaches it. Success is reported only when all of it passed.

use std::time::Duration;

use super::service::{self, Deployed, ServiceSpec};
use super::watcher::{human_duration, Watch};
use super::Converge;
use crate::config::Config;
use crate::exit::{self, ExitStatus};
use crate::output::Printer;
use crate::smoke;
use crate::targets::Rollout;
use crate::targets::Verified;

/// The least time the smoke test gets, however much of `--timeout` the rollout used.
const SMOKE_MIN_DEADLINE: Duration = Duration::from_secs(60);
/// How many lines of a stopped task's output a failed rollout shows, and of how many tasks it
/// looks for some.
const APP_LINES: usize = 6;
const APP_LINES_TASKS: usize = 3;

/// A deployment to see through.
pub struct Verify<'a> {
    pub ecs: &'a aws_sdk_ecs::Client,
    pub elb: &'a aws_sdk_elasticloadbalancingv2::Client,
    /// Where the tasks' output goes: a failed rollout shows what the app last said.
    pub logs: &'a aws_sdk_cloudwatchlogs::Client,
    pub cv: &'a Converge,
    /// The service as it was deployed; a rollback after a failed smoke test reuses it.
    pub spec: &'a ServiceSpec,
    /// The watch of the deployment opened (its id is empty when nothing was deployed).
    pub watch: Watch<'a>,
    pub deployed: &'a Deployed,
    pub url: &'a str,
    /// The load balancer, when the URL names the service's domain.
    pub via: Option<&'a smoke::Via>,
    /// Whether a traffic-shifting deployment runs `[gate]`.
    pub gated: bool,
    /// The service's production listener rule when ECS shifts its traffic (blue/green, canary,
    /// linear): then the deployment is seen through by [`super::traffic_shift`].
    pub production_rule: Option<&'a str>,
    /// `service.ready_path` and `[smoke]`.
    pub config: &'a Config,
    /// `--timeout` and `--no-rollback`.
    pub flags: &'a Rollout,
}

impl Verify<'_> {
    /// Watches the deployment (when one was opened), then smoke-tests; exit 1 with the reason
    /// when either fails.
    pub async fn run(&self, printer: &Printer) -> anyhow::Result<Verified> {
        let mut waited = Duration::ZERO;
        let healthy_targets = match &self.deployed.deployment_id {
            Some(_) if self.production_rule.is_some() => {
                return self.run_shift(printer).await;
            }
            Some(id) => {
                printer.info(format!(
                    "Watching deployment {id} (timeout {})",
                    human_duration(self.flags.timeout)
                ));
                exit::note_for_interrupt(Some(in_flight_note(id, &self.spec.task_definition_arn)));
                let rollout = self.watch.run(printer).await;
                exit::note_for_interrupt(None);
                let rollout = match rollout {
                    Ok(rollout) => rollout,
                    Err(failed) => return Err(self.with_app_lines(failed).await),
                };
                waited = rollout.waited;
                printer.info(format!(
                    "Deployment {id} completed in {}",
                    human_duration(rollout.waited)
                ));
                rollout.snapshot.healthy_targets
            }
            None => {
                // Nothing deployed: report the service as it is, and say if it is not healthy.
                let snap = self.watch.snapshot().await?;
                let desired = self.spec.desired_count as usize;
                if snap.healthy_targets < desired {
                    printer.warn(format!(
                        "nothing needed deploying, but only {} of {desired} targets are healthy: see `mldeploy status`",
                        snap.healthy_targets
                    ));
                }
                snap.healthy_targets
            }
        };
        // Healthy targets are not yet a working service: ask it, through the load balancer.
        let deadline = self
            .flags
            .timeout
            .saturating_sub(waited)
            .max(SMOKE_MIN_DEADLINE);
        let (ready, configured) = (&self.config.service.ready_path, self.config.smoke.as_ref());
        match smoke::run(self.url, self.via, ready, configured, deadline, printer).await {
            Ok(smoke) => Ok(Verified {
                healthy_targets: Some(healthy_targets),
                smoke,
                gate: None,
            }),
            Err(failed) => Err(self.undo(failed, printer).await),
        }
    }

    /// A failed rollout's error with what the newest stopped task wrote that says why the app
    /// did not come up (a model it could not read, an exception at start-up) where ECS
    /// says only that health checks failed. The error stands as it is when they cannot be read.
    async fn with_app_lines(&self, failed: anyhow::Error) -> anyhow::Error {
        let Ok(stopped) = self.watch.stopped_tasks().await else {
            return failed;
        };
        for task in stopped.iter().take(APP_LINES_TASKS) {
            let lines = super::log_lines::telling_lines_of_task(
                self.logs,
                &self.cv.project,
                &task.id,
                APP_LINES,
            )
            .await
            .unwrap_or_default();
            if lines.is_empty() {
                continue;
            }
            let status = exit::status_of(&failed);
            let shown: Vec<String> = lines.iter().map(|l| format!("    {l}")).collect();
            return exit::error(
                status,
                format!(
                    "{failed:#}\n  the app said (task {}; all its lines: `mldeploy logs`):\n{}",
                    task.id,
                    shown.join("\n")
                ),
            );
        }
        failed
    }

    /// A traffic-shifting deployment: tested through the test route before production moves,
    /// then smoke-tested through production once ECS says it succeeded. ECS has rolled back
    /// whatever failed before that; nothing is redeployed here.
    async fn run_shift(&self, printer: &Printer) -> anyhow::Result<Verified> {
        let project = &self.cv.project;
        let token = super::load_balancer::rules::test_token(self.elb, project)
            .await?
            .ok_or_else(|| {
                exit::error(
                    ExitStatus::Environment,
                    format!("the load balancer {project} has no test listener rule (header {}); run `mldeploy up` to make it", super::load_balancer::rules::TEST_HEADER),
                )
            })?;
        let new = self.spec.task_definition_arn.as_str();
        let previous = self.deployed.previous_task_definition.as_deref();
        let model_changed = match previous {
            Some(previous) => {
                super::task_definition::model_path(self.ecs, previous).await?
                    != super::task_definition::model_path(self.ecs, new).await?
            }
            None => true,
        };
        printer.info(format!(
            "Watching {} deployment of {} (timeout {})",
            self.config.deploy.strategy.name(),
            service::short_task_definition(new),
            human_duration(self.flags.timeout)
        ));
        let shifted = super::traffic_shift::ShiftWatch {
            ecs: self.ecs,
            cluster: &self.spec.cluster,
            service: project,
            task_definition: new,
            previous,
            url: self.url,
            via: self.via,
            test_token: &token,
            config: self.config,
            gate: self.config.gate.as_ref().filter(|_| self.gated),
            model_changed,
            timeout: self.flags.timeout,
            poll: self.watch.poll,
        }
        .run(printer)
        .await?;
        printer.info(format!(
            "Deployment of {} completed in {}",
            service::short_task_definition(new),
            human_duration(shifted.waited)
        ));
        let production = match self.production_rule {
            Some(rule) => {
                super::load_balancer::rules::production_target_group(self.elb, rule).await?
            }
            None => None,
        };
        let snap = Watch {
            target_group_arn: production.as_deref().or(self.watch.target_group_arn),
            ..self.watch
        }
        .snapshot()
        .await?;
        let deadline = self
            .flags
            .timeout
            .saturating_sub(shifted.waited)
            .max(SMOKE_MIN_DEADLINE);
        let (ready, configured) = (&self.config.service.ready_path, self.config.smoke.as_ref());
        let smoke = smoke::run(self.url, self.via, ready, configured, deadline, printer)
            .await
            .map_err(|failed| {
                failed.context(exit::Classified {
                    status: ExitStatus::Failed,
                    message: format!(
                        "{} passed its checks through the test route but fails its smoke test through production; run `mldeploy rollback` to serve the revision before",
                        service::short_task_definition(new)
                    ),
                })
            })?;
        Ok(Verified {
            healthy_targets: Some(snap.healthy_targets),
            smoke,
            gate: shifted.gate,
        })
    }

    /// After a failed smoke test: redeploy the revision that served before, when this run
    /// replaced it and `--no-rollback` was not given. Returns the error the command ends with:
    /// the smoke test's, and what was done about it.
    async fn undo(&self, failed: anyhow::Error, printer: &Printer) -> anyhow::Error {
        let new = service::short_task_definition(&self.spec.task_definition_arn).to_string();
        let previous = match (&self.deployed.deployment_id, &self.deployed.previous_task_definition) {
            (None, _) => {
                return failed.context(exit::Classified {
                    status: ExitStatus::Failed,
                    message: format!("{new}, which was serving already, fails its smoke test"),
                })
            }
            (Some(_), None) => {
                return failed.context(exit::Classified {
                    status: ExitStatus::Failed,
                    message: format!("{new} fails its smoke test and nothing served before it to roll back to; it keeps serving"),
                })
            }
            (Some(_), Some(previous)) => previous.clone(),
        };
        if self.flags.no_rollback || previous == self.spec.task_definition_arn {
            let why = if self.flags.no_rollback {
                "--no-rollback"
            } else {
                "it is the revision that served before"
            };
            return failed.context(exit::Classified {
                status: ExitStatus::Failed,
                message: format!("{new} fails its smoke test and keeps serving ({why})"),
            });
        }
        let back = service::short_task_definition(&previous).to_string();
        printer.warn(format!("{failed:#}"));
        printer.info(format!("Rolling back to {back}, which served before"));
        match self.redeploy(&previous, printer).await {
            Ok(()) => failed.context(exit::Classified {
                status: ExitStatus::Failed,
                message: format!("{new} failed its smoke test; rolled back: {back} serves again"),
            }),
            Err(e) => failed.context(exit::Classified {
                status: ExitStatus::Failed,
                message: format!(
                    "{new} failed its smoke test, and rolling back to {back} failed too ({e:#}); run `mldeploy up` with the model version that served before"
                ),
            }),
        }
    }

    async fn redeploy(&self, previous: &str, printer: &Printer) -> anyhow::Result<()> {
        let name = self.cv.project.as_str();
        super::release::redeploy(self.cv, name, self.spec, previous, self.watch, printer).await
    }
}

/// What to say when an interrupt lands while a deployment rolls out.
fn in_flight_note(deployment_id: &str, task_definition: &str) -> String {
    format!(
        "deployment {deployment_id} ({}) was still rolling out: ECS carries on with it and its circuit breaker rolls it back if it fails. Run `mldeploy status --wait` to follow it",
        service::short_task_definition(task_definition)
    )
}
