//! Switching a live service between rolling and blue/green, canary or linear, in the order AWS's
//! guides give (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/update-rolling-to-bluegreen.html,
//! https://docs.aws.amazon.com/AmazonECS/latest/developerguide/update-bluegreen-to-rolling.html):
//! wait until no deployment is in progress ("If a deployment is in progress, you can't migrate
//! it"); to a traffic-shifting strategy, first give the load balancer its advancedConfiguration
//! and let that rolling deployment finish; then change the strategy alone, which "the next time
//! you update the service" applies. The update that follows (the new revision) is then itself a
//! blue/green, canary or linear deployment, so the model gate runs on it.

use std::time::{Duration, Instant};

use aws_sdk_ecs::types::Service;
use aws_sdk_ecs::Client;

use super::{network_configuration, propagation, rollout, ServiceSpec};
use crate::aws::call_error;
use crate::exit::{self, ExitStatus};

/// A switch of strategy the update needs first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// From rolling to blue/green, canary or linear.
    ToShifting,
    /// From blue/green, canary or linear to rolling.
    ToRolling,
}

/// The switch between the service's strategy and the one `spec` asks for, if any.
pub fn needed(service: &Service, spec: &ServiceSpec) -> Option<Switch> {
    let wanted = spec.rollout.as_ref()?;
    let shifting_now = !matches!(
        service
            .deployment_configuration()
            .and_then(|c| c.strategy())
            .map(|s| s.as_str()),
        None | Some("ROLLING")
    );
    match (shifting_now, wanted.strategy.shifts_traffic()) {
        (false, true) => Some(Switch::ToShifting),
        (true, false) => Some(Switch::ToRolling),
        _ => None,
    }
}

/// Carries out the steps before the update itself; `budget` (the run's --timeout) bounds each
/// wait.
pub async fn prepare(
    ecs: &Client,
    name: &str,
    spec: &ServiceSpec,
    switch: Switch,
    budget: Duration,
) -> anyhow::Result<Option<Duration>> {
    let Some(wanted) = spec.rollout.as_ref() else {
        return Ok(None);
    };
    let mut waited_for_iam = None;
    until_settled(
        ecs,
        &spec.cluster,
        name,
        budget,
        "before its deployment strategy changes",
    )
    .await?;
    if switch == Switch::ToShifting {
        // The load balancer's advanced configuration, still rolling: a rolling deployment of
        // the revision that serves.
        let network = network_configuration(spec)?;
        let (done, waited) = propagation::through(propagation::UPDATE, || {
            ecs.update_service()
                .cluster(&spec.cluster)
                .service(name)
                .set_load_balancers(super::load_balancer(spec).map(|lb| vec![lb]))
                .network_configuration(network.clone())
                .force_new_deployment(true)
                .send()
        })
        .await;
        done.map_err(|e| call_error("ecs:UpdateService", e))?;
        waited_for_iam = waited;
        until_settled(
            ecs,
            &spec.cluster,
            name,
            budget,
            "after its load balancer's advanced configuration",
        )
        .await?;
    }
    // The strategy alone: no new revision, so no deployment; the next update uses it.
    let (done, _) = propagation::through(propagation::UPDATE, || {
        ecs.update_service()
            .cluster(&spec.cluster)
            .service(name)
            .deployment_configuration(rollout::deployment_configuration(wanted))
            .send()
    })
    .await;
    done.map_err(|e| call_error("ecs:UpdateService", e))?;
    Ok(waited_for_iam)
}

/// Waits until the service has one deployment and it is COMPLETED; a FAILED one is exit 1.
async fn until_settled(
    ecs: &Client,
    cluster: &str,
    name: &str,
    budget: Duration,
    when: &str,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let service = super::describe(ecs, cluster, name).await?.ok_or_else(|| {
            anyhow::anyhow!("ECS service {name} is gone; run `mldeploy up` again")
        })?;
        let deployments = service.deployments();
        let primary = deployments.iter().find(|d| d.status() == Some("PRIMARY"));
        let state = primary.and_then(|d| d.rollout_state()).map(|s| s.as_str());
        match state {
            Some("FAILED") => {
                return Err(exit::error(
                    ExitStatus::Failed,
                    format!(
                        "ECS service {name}'s deployment failed {when}: {}; run `mldeploy status` to see what serves",
                        primary
                            .and_then(|d| d.rollout_state_reason())
                            .unwrap_or("no reason given")
                    ),
                ))
            }
            Some("COMPLETED") if deployments.len() == 1 => return Ok(()),
            _ => {}
        }
        if start.elapsed() >= budget {
            return Err(exit::error(
                ExitStatus::Failed,
                format!(
                    "ECS service {name} still has a deployment in progress {when} at the --timeout; ECS carries on with it: run `mldeploy up` again once `mldeploy status` shows it finished"
                ),
            ));
        }
        tokio::time::sleep(crate::aws::poll::interval()).await;
    }
}
