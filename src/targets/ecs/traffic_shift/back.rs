//! Moving production traffic back while the old revision still runs beside the new one (the
//! production shift or the bake): found from the service's newest deployment, and done by
//! stopping that deployment with ROLLBACK, waited for until ECS says the old revision serves.

use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{
    ServiceDeploymentLifecycleStage, ServiceDeploymentStatus, StopServiceDeploymentStopType,
};
use aws_sdk_ecs::Client;

use super::{revision_task_definition, service_deployment};
use crate::aws::call_error;
use crate::exit::{self, ExitStatus};

/// The service deployment in progress whose old revision (still running beside the new one: the
/// production shift or the bake) runs `task_definition`: a rollback to it needs only to move the
/// traffic back. None when there is none.
pub async fn still_running_beside(
    ecs: &Client,
    cluster: &str,
    service: &str,
    task_definition: &str,
) -> anyhow::Result<Option<String>> {
    let Some(newest) =
        crate::targets::ecs::deployments::newest(ecs, cluster, service, None).await?
    else {
        return Ok(None);
    };
    if newest.status() != Some(&ServiceDeploymentStatus::InProgress) {
        return Ok(None);
    }
    let arn = crate::aws::returned(
        newest.service_deployment_arn(),
        "ecs:ListServiceDeployments",
        "service deployment ARN",
    )?;
    let Some(d) = service_deployment(ecs, arn).await? else {
        return Ok(None);
    };
    let beside = matches!(
        d.lifecycle_stage(),
        Some(
            ServiceDeploymentLifecycleStage::ProductionTrafficShift
                | ServiceDeploymentLifecycleStage::PostProductionTrafficShift
                | ServiceDeploymentLifecycleStage::BakeTime
        )
    );
    let Some(source) = d.source_service_revisions().first().and_then(|r| r.arn()) else {
        return Ok(None);
    };
    if !beside {
        return Ok(None);
    }
    let runs = revision_task_definition(ecs, source).await?;
    Ok((runs.as_deref() == Some(task_definition)).then(|| arn.to_string()))
}

/// Stops the service deployment with ROLLBACK and waits for ECS to say the old revision serves
/// again (ROLLBACK_SUCCESSFUL); exit 1 when it says otherwise or takes longer than `timeout`.
pub async fn roll_back(
    ecs: &Client,
    arn: &str,
    timeout: Duration,
    poll: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    ecs.stop_service_deployment()
        .service_deployment_arn(arn)
        .stop_type(StopServiceDeploymentStopType::Rollback)
        .send()
        .await
        .map_err(|e| call_error("ecs:StopServiceDeployment", e))?;
    loop {
        let status = service_deployment(ecs, arn)
            .await?
            .and_then(|d| d.status().cloned());
        match status {
            Some(ServiceDeploymentStatus::RollbackSuccessful) => return Ok(start.elapsed()),
            Some(
                ServiceDeploymentStatus::RollbackFailed
                | ServiceDeploymentStatus::Stopped
                | ServiceDeploymentStatus::Successful,
            ) => {
                return Err(exit::error(
                    ExitStatus::Failed,
                    format!(
                        "ECS ended the rollback {}; run `mldeploy status` to see what serves",
                        status.map(|s| s.as_str().to_string()).unwrap_or_default()
                    ),
                ))
            }
            _ => {}
        }
        if start.elapsed() >= timeout {
            return Err(exit::error(
                ExitStatus::Failed,
                "ECS did not finish moving traffic back within --timeout; run `mldeploy status` to see what serves",
            ));
        }
        tokio::time::sleep(poll).await;
    }
}
