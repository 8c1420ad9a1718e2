//! A blue/green, canary or linear deployment, seen through: its service deployment followed stage
//! by stage; at the PAUSE hook after the test traffic shift (the new revision answers the test
//! route, no production request reaches it) the smoke test and the model gate run through the
//! test route, and mldeploy continues the deployment or rolls it back; while production traffic
//! moves and bakes, the new revision is checked again every `deploy.check_interval` and the
//! deployment stopped (rolled back, traffic moved back to the old revision) the moment a check
//! fails. Success is reported only once ECS says SUCCESSFUL.

use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{
    DeploymentLifecycleHookStatus, ServiceDeployment, ServiceDeploymentLifecycleStage,
    ServiceDeploymentStatus, StopServiceDeploymentStopType,
};
use aws_sdk_ecs::Client;

use super::load_balancer::rules::TEST_HEADER;
use super::service::short_task_definition;
use crate::aws::call_error;
use crate::config::Config;
use crate::exit::{self, ExitStatus};
use crate::gate::{self, GateReport, Outcome, Sample};
use crate::output::Printer;
use crate::smoke::{self, Prober, Via};

mod back;
pub use back::{roll_back, still_running_beside};

/// What the watch needs.
pub struct ShiftWatch<'a> {
    pub ecs: &'a Client,
    pub cluster: &'a str,
    pub service: &'a str,
    /// The task definition the deployment rolls out.
    pub task_definition: &'a str,
    /// The one that served before; None for a new service.
    pub previous: Option<&'a str>,
    pub url: &'a str,
    pub via: Option<&'a Via>,
    /// The test rule's header value.
    pub test_token: &'a str,
    pub config: &'a Config,
    /// The model gate to run: `[gate]` for `up`; none for a rollback, which asks for an older
    /// revision on purpose (its smoke test still runs).
    pub gate: Option<&'a crate::config::Gate>,
    /// Whether the new revision serves another model version than the old one.
    pub model_changed: bool,
    pub timeout: Duration,
    pub poll: Duration,
}

/// How it ended, when it succeeded.
#[derive(Debug)]
pub struct Shifted {
    pub waited: Duration,
    pub gate: Option<GateReport>,
}

/// What mldeploy decided at the hook, or during the bake.
enum Decision {
    Pending,
    Continued,
    RolledBack(String),
}

impl ShiftWatch<'_> {
    /// Follows the deployment to its end; exit 1 with the reason when it does not succeed.
    pub async fn run(&self, printer: &Printer) -> anyhow::Result<Shifted> {
        let start = Instant::now();
        let arn = self.find(start).await?;
        let test = Prober::with_header(self.via.cloned(), TEST_HEADER, self.test_token)?;
        let production = Prober::new(self.via.cloned())?;
        let mut stage = None;
        let mut decision = Decision::Pending;
        let mut report: Option<GateReport> = None;
        let mut baseline: Vec<Sample> = Vec::new();
        let mut next_check = Instant::now();
        let check_every =
            crate::aws::clock::scaled(self.config.deploy.check_interval).max(self.poll);
        loop {
            let d = self.describe(&arn).await?;
            let now_stage = d.lifecycle_stage().cloned();
            if now_stage != stage {
                if let Some(s) = &now_stage {
                    printer.info(format!("Deployment stage: {}", describe_stage(s)));
                }
                stage = now_stage;
                if stage == Some(ServiceDeploymentLifecycleStage::BakeTime) {
                    exit::note_for_interrupt(Some(self.baking_note()));
                }
            }
            match d.status() {
                Some(ServiceDeploymentStatus::Successful) => {
                    exit::note_for_interrupt(None);
                    return Ok(Shifted {
                        waited: start.elapsed(),
                        gate: report,
                    });
                }
                Some(
                    ServiceDeploymentStatus::RollbackSuccessful
                    | ServiceDeploymentStatus::RollbackFailed
                    | ServiceDeploymentStatus::Stopped,
                ) => {
                    exit::note_for_interrupt(None);
                    return Err(self.failed(&d, &decision, report.as_ref()));
                }
                _ => {}
            }
            let waiting = d
                .lifecycle_hook_details()
                .iter()
                .find(|h| h.status() == Some(&DeploymentLifecycleHookStatus::AwaitingAction));
            if let (Some(hook), Decision::Pending) = (waiting, &decision) {
                let hook_id = crate::aws::returned(
                    hook.hook_id(),
                    "ecs:DescribeServiceDeployments",
                    "lifecycle hook id",
                )?
                .to_string();
                printer.info(format!(
                    "The new revision ({}) answers the test route only; testing it before any production traffic moves",
                    short_task_definition(self.task_definition)
                ));
                let left = hook_left(hook.expires_at(), std::time::SystemTime::now());
                let verdict = self.at_hook(&production, &test, left, printer).await;
                let (action, next) = match verdict {
                    Ok((gated, samples)) => {
                        report = gated;
                        baseline = samples;
                        (
                            aws_sdk_ecs::types::DeploymentLifecycleHookAction::Continue,
                            Decision::Continued,
                        )
                    }
                    Err((why, gated)) => {
                        report = gated;
                        printer.warn(format!(
                            "{why}; rolling back: no production request reached the new revision"
                        ));
                        (
                            aws_sdk_ecs::types::DeploymentLifecycleHookAction::Rollback,
                            Decision::RolledBack(why),
                        )
                    }
                };
                let answered = self
                    .ecs
                    .continue_service_deployment()
                    .service_deployment_arn(&arn)
                    .hook_id(&hook_id)
                    .action(action)
                    .send()
                    .await;
                if let Err(e) = answered {
                    // The hook may have expired while mldeploy tested: ECS then took the hook's
                    // timeout action (ROLLBACK) itself and refuses the answer. Say that, and
                    // follow the rollback; any other refusal is an error.
                    let now = self.describe(&arn).await?;
                    let expired = now
                        .lifecycle_hook_details()
                        .iter()
                        .find(|h| h.hook_id() == Some(hook_id.as_str()))
                        .is_none_or(|h| {
                            h.status() != Some(&DeploymentLifecycleHookStatus::AwaitingAction)
                        });
                    if !expired {
                        return Err(call_error("ecs:ContinueServiceDeployment", e));
                    }
                    printer.warn(format!(
                        "the PAUSE hook expired before mldeploy answered it (its timeout is --timeout, rounded up to whole minutes): ECS took its timeout action and rolls {} back itself",
                        short_task_definition(self.task_definition)
                    ));
                    decision = Decision::RolledBack(match next {
                        Decision::RolledBack(why) => why,
                        _ => "its checks passed, but the PAUSE hook expired before mldeploy could continue the deployment; give it a longer --timeout".to_string(),
                    });
                    continue;
                }
                decision = next;
                next_check = Instant::now() + check_every;
            }
            let shifting = matches!(
                stage,
                Some(
                    ServiceDeploymentLifecycleStage::ProductionTrafficShift
                        | ServiceDeploymentLifecycleStage::PostProductionTrafficShift
                        | ServiceDeploymentLifecycleStage::BakeTime
                )
            );
            if shifting && matches!(decision, Decision::Continued) && Instant::now() >= next_check {
                next_check = Instant::now() + check_every;
                if let Err(why) = self.recheck(&test, &baseline).await {
                    printer.warn(format!(
                        "{why}; stopping the deployment: production traffic goes back to {}",
                        self.previous
                            .map(short_task_definition)
                            .unwrap_or("the revision before")
                    ));
                    self.ecs
                        .stop_service_deployment()
                        .service_deployment_arn(&arn)
                        .stop_type(StopServiceDeploymentStopType::Rollback)
                        .send()
                        .await
                        .map_err(|e| call_error("ecs:StopServiceDeployment", e))?;
                    decision = Decision::RolledBack(why);
                }
            }
            if start.elapsed() >= self.timeout {
                exit::note_for_interrupt(None);
                return Err(exit::error(
                    ExitStatus::Failed,
                    format!(
                        "the deployment of {} did not finish within --timeout {} (stage {}); ECS carries on with it. Run `mldeploy status` to see where it is",
                        short_task_definition(self.task_definition),
                        super::watcher::human_duration(self.timeout),
                        stage.as_ref().map(describe_stage).unwrap_or_else(|| "unknown".into())
                    ),
                ));
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// The service deployment that rolls out our task definition: the newest one, once ECS lists
    /// it with our revision.
    async fn find(&self, start: Instant) -> anyhow::Result<String> {
        loop {
            let newest =
                super::deployments::newest(self.ecs, self.cluster, self.service, None).await?;
            if let Some(newest) = &newest {
                let revision = crate::aws::returned(
                    newest.target_service_revision_arn(),
                    "ecs:ListServiceDeployments",
                    "target service revision ARN",
                )?;
                let runs = revision_task_definition(self.ecs, revision).await?;
                if runs.as_deref() == Some(self.task_definition) {
                    return Ok(crate::aws::returned(
                        newest.service_deployment_arn(),
                        "ecs:ListServiceDeployments",
                        "service deployment ARN",
                    )?
                    .to_string());
                }
            }
            if start.elapsed() >= self.timeout {
                return Err(exit::error(
                    ExitStatus::Failed,
                    format!(
                        "ECS listed no service deployment of {} within --timeout",
                        short_task_definition(self.task_definition)
                    ),
                ));
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    async fn describe(&self, arn: &str) -> anyhow::Result<ServiceDeployment> {
        service_deployment(self.ecs, arn)
            .await?
            .ok_or_else(|| anyhow::anyhow!("ECS no longer describes service deployment {arn}"))
    }

    /// The smoke test, then the model gate, through the test route. Ok with the gate's report and
    /// the old revision's answers (the baseline later checks compare with); Err with why not.
    async fn at_hook(
        &self,
        production: &Prober,
        test: &Prober,
        hook_left: Option<Duration>,
        printer: &Printer,
    ) -> Result<(Option<GateReport>, Vec<Sample>), (String, Option<GateReport>)> {
        // The smoke test gives up in time to answer the hook: past its expiry ECS rolls back on
        // its own and refuses mldeploy's answer.
        let deadline = match hook_left {
            Some(left) => self.timeout.min(left.mul_f64(0.8)),
            None => self.timeout.max(Duration::from_secs(60)),
        };
        let ready = &self.config.service.ready_path;
        if let Err(e) = smoke::run_through(
            test,
            self.url,
            ready,
            self.config.smoke.as_ref(),
            deadline,
            printer,
        )
        .await
        {
            return Err((
                format!("the new revision fails its smoke test through the test route: {e:#}"),
                None,
            ));
        }
        let Some(gate) = self.gate else {
            return Ok((None, Vec::new()));
        };
        let routes = gate::Routes {
            base_url: self.url,
            serving: self.previous.map(|_| production),
            new: test,
        };
        let samples = gate::sample(gate, &routes).await;
        let report = gate::judge(gate, &samples, self.model_changed);
        printer.info(format!(
            "Model gate: {} sample request(s), {} against {}",
            samples.len(),
            short_task_definition(self.task_definition),
            self.previous
                .map(short_task_definition)
                .unwrap_or("nothing serving")
        ));
        for line in report.lines() {
            printer.info(line);
        }
        if report.passed() {
            Ok((Some(report), samples))
        } else {
            let why = format!("the model gate failed: {}", report.failures.join("; "));
            Err((why, Some(report)))
        }
    }

    /// While production traffic moves and bakes: the gate's requests again on the new revision,
    /// against the old revision's answers at the hook (or the readiness check, without a gate).
    async fn recheck(&self, test: &Prober, baseline: &[Sample]) -> Result<(), String> {
        let Some(gate) = self.gate else {
            let ready = smoke::SmokeRequest::ready(&self.config.service.ready_path);
            let url = format!("{}{}", self.url.trim_end_matches('/'), ready.path);
            return match test.send(&url, &ready).await {
                smoke::Answer::Http { status, .. } if (200..300).contains(&status) => Ok(()),
                smoke::Answer::Http { status, body, .. } => Err(format!(
                    "the new revision's {} answered {status}: {}",
                    ready.path,
                    body.chars().take(200).collect::<String>()
                )),
                smoke::Answer::Unreachable(why) | smoke::Answer::Untrusted(why) => Err(format!(
                    "the new revision's {} did not answer: {why}",
                    ready.path
                )),
            };
        };
        let routes = gate::Routes {
            base_url: self.url,
            serving: None,
            new: test,
        };
        let fresh = gate::sample(gate, &routes).await;
        let paired: Vec<Sample> = fresh
            .into_iter()
            .zip(
                baseline
                    .iter()
                    .map(|b| b.serving.clone())
                    .chain(std::iter::repeat(None)),
            )
            .map(|(s, serving): (Sample, Option<Outcome>)| Sample { serving, ..s })
            .collect();
        let report = gate::judge(gate, &paired, self.model_changed);
        if report.passed() {
            Ok(())
        } else {
            Err(format!(
                "the new revision fails the model gate during the bake: {}",
                report.failures.join("; ")
            ))
        }
    }

    fn failed(
        &self,
        d: &ServiceDeployment,
        decision: &Decision,
        report: Option<&GateReport>,
    ) -> anyhow::Error {
        let new = short_task_definition(self.task_definition);
        let back = self.previous.map(short_task_definition);
        let status = d.status().map(|s| s.as_str()).unwrap_or("unknown");
        let serving = match (d.status(), back) {
            (Some(ServiceDeploymentStatus::RollbackSuccessful), Some(back)) => {
                format!("rolled back: {back} serves again")
            }
            (Some(ServiceDeploymentStatus::RollbackSuccessful), None) => "rolled back".to_string(),
            _ => format!(
                "the service deployment ended {status}; run `mldeploy status` to see what serves"
            ),
        };
        let why = match decision {
            Decision::RolledBack(why) => why.clone(),
            _ => d
                .status_reason()
                .map(|r| format!("ECS: {r}"))
                .unwrap_or_else(|| format!("ECS ended the deployment {status}")),
        };
        let mut message = format!("{new} was not deployed ({why}); {serving}");
        if let Some(report) = report.filter(|r| !r.passed()) {
            message.push_str("\nModel gate report:\n");
            message.push_str(&report.lines().join("\n"));
        }
        exit::error(ExitStatus::Failed, message)
    }

    fn baking_note(&self) -> String {
        format!(
            "the new revision {} serves all production traffic and is baking; {} still runs until the bake time ({} min) is over. `mldeploy rollback` moves traffic back to it in seconds; `mldeploy status` shows the time left",
            short_task_definition(self.task_definition),
            self.previous.map(short_task_definition).unwrap_or("the revision before"),
            self.config.deploy.bake_minutes
        )
    }
}

/// A lifecycle stage in words.
pub fn describe_stage(stage: &ServiceDeploymentLifecycleStage) -> String {
    let what = match stage {
        ServiceDeploymentLifecycleStage::ReconcileService => "reconciling the service",
        ServiceDeploymentLifecycleStage::PreScaleUp => "about to start the new revision",
        ServiceDeploymentLifecycleStage::ScaleUp => "starting the new revision's tasks",
        ServiceDeploymentLifecycleStage::PostScaleUp => "the new revision's tasks run",
        ServiceDeploymentLifecycleStage::TestTrafficShift => {
            "moving the test route to the new revision"
        }
        ServiceDeploymentLifecycleStage::PostTestTrafficShift => {
            "testing the new revision; no production traffic reaches it"
        }
        ServiceDeploymentLifecycleStage::ProductionTrafficShift => {
            "moving production traffic to the new revision"
        }
        ServiceDeploymentLifecycleStage::PostProductionTrafficShift => {
            "all production traffic on the new revision"
        }
        ServiceDeploymentLifecycleStage::BakeTime => "baking (the old revision still runs)",
        ServiceDeploymentLifecycleStage::CleanUp => "stopping the old revision",
        other => return other.as_str().to_string(),
    };
    format!("{} ({what})", stage.as_str())
}

/// How long a PAUSE hook that expires at `expires_at` still waits, from `now`.
fn hook_left(
    expires_at: Option<&aws_smithy_types::DateTime>,
    now: std::time::SystemTime,
) -> Option<Duration> {
    let expires = std::time::SystemTime::try_from(*expires_at?).ok()?;
    Some(expires.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The service deployment `arn`, as ECS describes it now; None when it describes none.
pub async fn service_deployment(
    ecs: &Client,
    arn: &str,
) -> anyhow::Result<Option<ServiceDeployment>> {
    let out = ecs
        .describe_service_deployments()
        .service_deployment_arns(arn)
        .send()
        .await
        .map_err(|e| call_error("ecs:DescribeServiceDeployments", e))?;
    Ok(out.service_deployments().first().cloned())
}

/// The task definition a service revision runs.
async fn revision_task_definition(ecs: &Client, revision: &str) -> anyhow::Result<Option<String>> {
    let described = ecs
        .describe_service_revisions()
        .service_revision_arns(revision)
        .send()
        .await
        .map_err(|e| call_error("ecs:DescribeServiceRevisions", e))?;
    Ok(described
        .service_revisions()
        .first()
        .and_then(|r| r.task_definition())
        .map(str::to_string))
}

#[cfg(test)]
mod hook_tests {
    use super::*;

    #[test]
    fn the_time_a_hook_has_left_is_read_from_its_expiry_and_never_negative() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let at = |secs| aws_smithy_types::DateTime::from_secs(secs);
        assert_eq!(
            hook_left(Some(&at(1_090)), now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(hook_left(Some(&at(900)), now), Some(Duration::ZERO));
        assert_eq!(hook_left(None, now), None);
    }
}
