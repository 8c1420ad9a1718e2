//! `mldeploy run` on ECS: the command as a one-off task of a service's current release, with the
//! service's task definition (image, environment, secrets, roles) and its network.

use std::time::Duration;

use aws_sdk_ecs::types::AssignPublicIp;

use super::one_off::{self, OneOff};
use super::service;
use crate::config::TargetKind;
use crate::exit::{self, ExitStatus};
use crate::reports::{short_task_definition, RunLine, RunReport};
use crate::session::Ctx;

/// Runs `command` as a task of `service`'s release (the model API's by default) and reports how
/// it ended. A task that stopped before its command ran is exit 1 with ECS's reason.
pub async fn run(
    ctx: &Ctx<'_>,
    service: Option<&str>,
    command: &[String],
    timeout: Duration,
) -> anyhow::Result<RunReport> {
    let project = ctx.project();
    let name = match ctx.config.service_named(service)? {
        Some(worker) => worker.service_name(project),
        None => project.to_string(),
    };
    let aws = ctx.aws().await?;
    let found = service::describe(&aws.ecs(), project, &name)
        .await?
        .ok_or_else(|| {
            exit::error(
                ExitStatus::Environment,
                format!("there is no ECS service {name} in cluster {project}: nothing of it is deployed (run `mldeploy up` first)"),
            )
        })?;
    let task_definition = crate::aws::returned(
        found.task_definition(),
        "ecs:DescribeServices",
        "task definition",
    )?
    .to_string();
    let vpc = found
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration())
        .ok_or_else(|| {
            anyhow::anyhow!("ECS service {name} has no awsvpc network configuration to run a task in; run `mldeploy up` to converge it")
        })?;
    let one = OneOff {
        cluster: project.to_string(),
        task_definition: task_definition.clone(),
        command: command.to_vec(),
        subnets: vpc.subnets().to_vec(),
        security_groups: vpc.security_groups().to_vec(),
        public_ip: vpc.assign_public_ip() == Some(&AssignPublicIp::Enabled),
        started_by: one_off::RUN,
        timeout,
    };
    let printer = ctx.printer;
    let step = |msg: &str| printer.info(msg);
    let mut line = |text: &str| printer.line(&RunLine { line: text });
    let ended = one_off::run(aws, &one, &step, &mut line).await?;
    let Some(exit_code) = ended.exit_code else {
        return Err(exit::error(
            ExitStatus::Failed,
            format!(
                "task {} stopped before the command ran: {}",
                ended.task_id, ended.reason
            ),
        ));
    };
    Ok(RunReport {
        target: TargetKind::Ecs,
        service: name,
        release: short_task_definition(&task_definition).to_string(),
        task: ended.task_id,
        exit_code,
    })
}
