//! The Docker-host target: the service as one container on the engine `DOCKER_HOST` names,
//! replaced through a candidate checked on an ephemeral port. [`Docker`] puts `containers`,
//! `replace`, `up` and `rollback` together as a [`Target`].

pub mod containers;
pub mod cutover;
pub mod local_build;
pub mod one_off;
pub mod proxy;
mod readiness;
pub mod replace;
pub mod rollback;
pub mod up;
pub mod usage;
pub mod worker_plan;
pub mod worker_status;
pub mod workers;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;

use crate::config::TargetKind;
use crate::exit::{self, ExitStatus};
use crate::image::engine::{engine_error, Engine};
use crate::reports::history::RegistryInfo;
use crate::reports::status::{DockerStatus, StatusOn};
use crate::reports::{
    HistoryReport, LogLine, LogsReport, RollbackReport, RunLine, RunReport, StatusReport, UpReport,
};
use crate::session::Ctx;
use crate::smoke::{self, Answer, Prober, SmokeRequest};
use crate::targets::inventory::{Found, Kind};
use crate::targets::{Applied, Deploy, Target, Verified};
use crate::targets::{RollbackTo, Rollout};

/// One container on a Docker engine.
pub struct Docker {
    pub engine: Engine,
}

/// What `up` or `rollback` started: the release on the host port.
#[derive(Debug)]
pub struct DockerDeployed {
    pub url: String,
    /// What the model gate compared before the proxy switched, with `[gate]`.
    pub gate: Option<crate::gate::GateReport>,
}

impl Docker {
    /// The project's newest container, or the error that nothing is deployed here.
    async fn current(&self, ctx: &Ctx<'_>) -> anyhow::Result<containers::ProjectContainer> {
        let found = containers::containers(&self.engine, ctx.project()).await?;
        containers::current(&found).cloned().ok_or_else(|| {
            exit::error(
                ExitStatus::Environment,
                format!(
                    "nothing is deployed for {} on the Docker engine at {}: run `mldeploy up --target docker` first",
                    ctx.project(),
                    self.engine.host
                ),
            )
        })
    }
}

impl Target for Docker {
    type Prepared = ();
    type Checked = up::Checked;
    type Chosen = rollback::Chosen;
    type Deployed = DockerDeployed;

    /// Secrets are read by ECS for its tasks; a Docker engine has no such reader here. Nor
    /// does it scale a worker's count.
    fn preflight(ctx: &Ctx<'_>) -> anyhow::Result<()> {
        for worker in &ctx.config.workers {
            let table = format!("workers.{}", worker.name);
            let refused = if !worker.secrets.is_empty() {
                Some(format!("`{table}.secrets` needs the ECS target, which reads Secrets Manager and SSM for the task; on the docker target pass values through `{table}.environment`"))
            } else if worker.autoscaling.is_some() {
                Some(format!("[{table}.autoscaling] needs the ECS target: a Docker host runs `{table}.desired_count` containers of it"))
            } else {
                None
            };
            if let Some(why) = refused {
                return Err(exit::error(ExitStatus::Usage, why));
            }
        }
        if ctx.config.service.secrets.is_empty() {
            return Ok(());
        }
        Err(exit::error(
            ExitStatus::Usage,
            "service.secrets needs the ECS target, which reads Secrets Manager and SSM for the task; on the docker target pass values through the engine or service.environment",
        ))
    }

    async fn connect(ctx: &Ctx<'_>) -> anyhow::Result<Docker> {
        let engine = Engine::connect().await?;
        ctx.printer.info(format!(
            "Docker engine {} (API {})",
            engine.endpoint.describe(),
            engine.api_version
        ));
        Ok(Docker { engine })
    }

    /// The image is built from the context, so there is nothing to read ahead.
    fn prepare(_ctx: &Ctx<'_>) -> anyhow::Result<()> {
        Ok(())
    }

    async fn check(&self, ctx: &Ctx<'_>, _prepared: ()) -> anyhow::Result<up::Checked> {
        up::check(self, ctx).await
    }

    async fn plan(
        &self,
        ctx: &Ctx<'_>,
        deploy: &Deploy<'_>,
        checked: up::Checked,
    ) -> anyhow::Result<UpReport> {
        up::plan(self, ctx, deploy, checked).await
    }

    async fn apply(
        &self,
        ctx: &Ctx<'_>,
        deploy: &Deploy<'_>,
        checked: up::Checked,
    ) -> anyhow::Result<Applied<DockerDeployed, UpReport>> {
        up::apply(self, ctx, deploy, checked).await
    }

    async fn choose(
        &self,
        ctx: &Ctx<'_>,
        args: &RollbackTo,
    ) -> anyhow::Result<(rollback::Chosen, RollbackReport)> {
        rollback::choose(self, ctx, args).await
    }

    async fn apply_rollback(
        &self,
        ctx: &Ctx<'_>,
        chosen: rollback::Chosen,
        report: RollbackReport,
        flags: &Rollout,
    ) -> anyhow::Result<Applied<DockerDeployed, RollbackReport>> {
        rollback::apply(self, ctx, chosen, report, flags).await
    }

    /// The candidate passed its checks before the cut-over; ask the release on the host port.
    async fn verify(
        &self,
        ctx: &Ctx<'_>,
        deployed: &DockerDeployed,
        flags: &Rollout,
    ) -> anyhow::Result<Verified> {
        let smoke = smoke::run(
            &deployed.url,
            None,
            &ctx.config.service.ready_path,
            ctx.config.smoke.as_ref(),
            flags.timeout,
            ctx.printer,
        )
        .await?;
        Ok(Verified {
            gate: deployed.gate.clone(),
            healthy_targets: None,
            smoke,
        })
    }

    /// The project's newest container, and whether it answers `ready_path`.
    async fn status(&self, ctx: &Ctx<'_>) -> anyhow::Result<StatusReport> {
        let c = self.current(ctx).await?;
        let ready_path = &ctx.config.service.ready_path;
        let url = proxy::Site::of(&ctx.config).url(&self.engine.published_host);
        let ready = format!("{url}{ready_path}");
        let usage = match c.running {
            true => Some(usage::of(&self.engine, &c.id).await),
            false => None,
        };
        let reason = if !c.running {
            Some(format!("container {} is not running", c.name))
        } else {
            match Prober::new(None)?
                .send(&ready, &SmokeRequest::ready(ready_path))
                .await
            {
                // Ready; and when its answer names the model it serves, the one it was given.
                Answer::Http { status, body, .. } if (200..300).contains(&status) => {
                    match (smoke::model_named(&body), &c.model_path) {
                        (Some(says), Some(runs)) if !crate::model::same_path(&says, runs) => {
                            Some(format!(
                                "the app at {url} says it serves {says}, but container {} runs MODEL_PATH {runs}",
                                c.name
                            ))
                        }
                        _ => None,
                    }
                }
                Answer::Http { status, .. } => Some(format!("GET {ready} answered {status}")),
                Answer::Unreachable(why) | Answer::Untrusted(why) => {
                    Some(format!("GET {ready}: {why}"))
                }
            }
        };
        // The worst decides: a worker that is not up makes the project unhealthy.
        let workers = worker_status::status(&self.engine, &ctx.config).await?;
        let reason = reason.or_else(|| {
            workers.iter().find_map(|w| {
                w.reason
                    .as_ref()
                    .map(|r| format!("worker {}: {r}", w.worker))
            })
        });
        Ok(StatusReport {
            healthy: reason.is_none(),
            target: TargetKind::Docker,
            reason,
            url: Some(url),
            image: Some(c.image.clone()),
            model_version: c.model_version.clone(),
            model_path: c.model_path.clone(),
            model_warning: None,
            registry: c.registry.as_ref().map(RegistryInfo::of),
            on: StatusOn::Docker(DockerStatus {
                engine: self.engine.host.clone(),
                usage,
                container: c.name.clone(),
                release: c.release,
                running: c.running,
                workers,
            }),
        })
    }

    async fn releases(
        &self,
        ctx: &Ctx<'_>,
        _limit: Option<usize>,
    ) -> anyhow::Result<HistoryReport> {
        rollback::releases(self, ctx).await
    }

    /// The engine's logs of the project's newest container and its workers' running ones
    /// (`--service` names one), each line with its container; in a project with workers, each
    /// line also names its service.
    async fn logs(
        &self,
        ctx: &Ctx<'_>,
        since: Duration,
        follow: bool,
        service: Option<&str>,
    ) -> anyhow::Result<LogsReport> {
        let project = ctx.project();
        let several = !ctx.config.workers.is_empty();
        let mut sources: Vec<(String, String, Option<String>)> = Vec::new();
        let worker = ctx.config.service_named(service)?;
        if worker.is_none() {
            let c = self.current(ctx).await?;
            sources.push((c.id, c.name, several.then(|| project.to_string())));
        }
        if service.is_none() || worker.is_some() {
            for w in workers::list(&self.engine, project).await? {
                let wanted = worker.is_none_or(|named| named.name == w.worker);
                if w.running && wanted {
                    sources.push((w.id, w.name, Some(w.worker)));
                }
            }
        }
        if let Some(named) = worker.filter(|_| sources.is_empty()) {
            worker_status::running(&self.engine, project, &named.name).await?;
        }
        let since = SystemTime::now()
            .checked_sub(since)
            .unwrap_or(UNIX_EPOCH)
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let options = bollard::query_parameters::LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .follow(follow)
            .since(i32::try_from(since).unwrap_or(0))
            .build();
        let names = sources
            .iter()
            .map(|(_, name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        // Every container's stream at once: with --follow they run until interrupted.
        let streams = sources.iter().map(|(id, name, service)| {
            let (name, service) = (name.clone(), service.clone());
            self.engine
                .docker
                .logs(id, Some(options.clone()))
                .map(move |chunk| (name.clone(), service.clone(), chunk))
        });
        let mut merged = futures_util::stream::select_all(streams.map(Box::pin));
        let mut lines = Vec::new();
        while let Some((name, service, chunk)) = merged.next().await {
            let chunk =
                chunk.map_err(|e| engine_error(e, &self.engine, "reading the container's logs"))?;
            for text in chunk.to_string().lines() {
                let (time, message) = text.split_once(' ').unwrap_or(("", text));
                let line = LogLine {
                    time: time.to_string(),
                    task: name.clone(),
                    service: service.clone(),
                    message: message.to_string(),
                };
                if follow {
                    ctx.printer.line(&line);
                } else {
                    lines.push(line);
                }
            }
        }
        // Docker's RFC 3339 timestamps with nanoseconds sort as text.
        lines.sort_by(|a, b| a.time.cmp(&b.time));
        Ok(LogsReport {
            log_group: format!("container {names}"),
            lines,
        })
    }

    async fn run_once(
        &self,
        ctx: &Ctx<'_>,
        // `run` checked the name before connecting: the model API's, or a worker's.
        service: Option<&str>,
        command: &[String],
        timeout: Duration,
    ) -> anyhow::Result<RunReport> {
        let current = self.current(ctx).await?;
        let printer = ctx.printer;
        let (like, service) = match ctx.config.service_named(service)? {
            None => (
                one_off::Like::of(&self.engine, &current.id, &current.image).await?,
                ctx.project().to_string(),
            ),
            Some(worker) => {
                let w = worker_status::running(&self.engine, ctx.project(), &worker.name).await?;
                let like = one_off::Like::of(&self.engine, &w.id, &w.image).await?;
                (like, worker.name.clone())
            }
        };
        printer.info(format!(
            "Running the command in a container of {} (release {}) like {service}'s",
            like.image, current.release
        ));
        let mut line = |text: &str| printer.line(&RunLine { line: text });
        let (task, exit_code) = one_off::run(
            &self.engine,
            ctx.project(),
            &like,
            command,
            timeout,
            &mut line,
        )
        .await?;
        Ok(RunReport {
            target: TargetKind::Docker,
            service,
            release: like.image.clone(),
            task,
            exit_code,
        })
    }

    /// The project's containers, then its images (all labelled as the project's).
    async fn inventory(&self, ctx: &Ctx<'_>) -> anyhow::Result<Vec<Found>> {
        let project = ctx.project();
        let mut found: Vec<Found> = containers::containers(&self.engine, project)
            .await?
            .into_iter()
            .map(|c| Found::new(Kind::Container, c.name, c.id, true))
            .collect();
        for w in workers::list(&self.engine, project).await? {
            found.push(Found::new(Kind::Container, w.name, w.id, true));
        }
        for (id, name) in one_off::leftovers(&self.engine, project).await? {
            found.push(Found::new(Kind::Container, name, id, true));
        }
        if let Some(proxy) = proxy::find(&self.engine, project).await? {
            found.push(Found::new(
                Kind::Container,
                proxy::container_name(project),
                proxy.id,
                true,
            ));
        }
        for (id, name) in containers::images(&self.engine, project).await? {
            found.push(Found::new(Kind::Image, name, id, true));
        }
        for (id, name) in proxy::networks(&self.engine, project).await? {
            found.push(Found::new(Kind::Network, name, id, true));
        }
        for name in proxy::volumes(&self.engine, project).await? {
            found.push(Found::new(Kind::Volume, name.clone(), name, true));
        }
        // What `target.build = "local"` pushed: the project's ECR repository, when it carries
        // the project's tag.
        if ctx.config.target.build_locally {
            let ecr = ctx.aws().await?.ecr();
            if let Some((_, arn)) = crate::image::ecr::describe(&ecr, project).await? {
                let ours = crate::image::ecr::has_project_tag(&ecr, &arn, project).await?;
                found.push(Found::new(Kind::Repository, project, project, ours));
            }
        }
        Ok(found)
    }

    async fn delete(&self, ctx: &Ctx<'_>, item: &Found, _deadline: Instant) -> anyhow::Result<()> {
        match item.kind {
            Kind::Container => containers::remove(&self.engine, &item.id).await,
            Kind::Image => containers::remove_image(&self.engine, &item.id).await,
            Kind::Network => proxy::remove_network(&self.engine, &item.id).await,
            Kind::Volume => proxy::remove_volume(&self.engine, &item.id).await,
            Kind::Repository => {
                crate::image::ecr::delete_repository(&ctx.aws().await?.ecr(), &item.id).await
            }
            other => Err(anyhow::anyhow!(
                "the Docker target has no {} to delete",
                other.describe()
            )),
        }
    }
}
