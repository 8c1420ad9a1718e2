//! The ECS cluster `<name>`: created tagged when missing. A cluster of that name that mldeploy
//! did not create is used as it is, and never deleted by `destroy`.

use aws_sdk_ecs::types::Cluster;
use aws_sdk_ecs::Client;

use super::step::Plan;
use super::{Id, Planned};
use crate::aws::call_error;
use crate::aws::tags;
use crate::targets::{Action, Change};

/// The ACTIVE cluster named `name`, with its tags, when there is one.
pub async fn find(ecs: &Client, name: &str) -> anyhow::Result<Option<Cluster>> {
    let out = ecs
        .describe_clusters()
        .clusters(name)
        .include(aws_sdk_ecs::types::ClusterField::Tags)
        .send()
        .await
        .map_err(|e| call_error("ecs:DescribeClusters", e))?;
    Ok(out
        .clusters
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.status() == Some("ACTIVE")))
}

/// Decides, from what [`find`] found, what the cluster `name` needs: nothing, or to be created.
pub fn plan_for(name: &str, found: Option<&Cluster>) -> Planned<()> {
    let Some(cluster) = found else {
        return Planned::change(
            Change::new("ECS cluster", name, Action::Create),
            Id::after_apply(),
            (),
        );
    };
    let change = Change::new("ECS cluster", name, Action::Keep);
    let change = if tags::is_ours(cluster.tags(), name) {
        change
    } else {
        change.because("not created by mldeploy: used as it is")
    };
    Planned::keep(
        change,
        Id::Known(cluster.cluster_arn().unwrap_or(name).to_string()),
    )
}

/// Decides the cluster: created when missing. Its ARN, or [`Id::AfterApply`] when the plan
/// creates it.
pub async fn decide<'a>(ecs: &'a Client, name: &'a str, plan: &mut Plan<'a>) -> anyhow::Result<Id> {
    let planned = plan_for(name, find(ecs, name).await?.as_ref());
    Ok(plan.add(planned, move |()| create(ecs, name)))
}

async fn create(ecs: &Client, name: &str) -> anyhow::Result<Option<Id>> {
    let created = ecs
        .create_cluster()
        .cluster_name(name)
        .tags(tags::ecs(name))
        .send()
        .await
        .map_err(|e| call_error("ecs:CreateCluster", e))?;
    Ok(Some(Id::Known(
        created
            .cluster
            .and_then(|c| c.cluster_arn)
            .unwrap_or_else(|| name.to_string()),
    )))
}

/// Deletes the cluster, waiting while its services and tasks are still going; mldeploy's own
/// one-off tasks still running are stopped first.
pub async fn delete(ecs: &Client, arn: &str, wait: &super::wait::Wait<'_>) -> anyhow::Result<()> {
    super::one_off::stop_leftovers(ecs, arn).await?;
    super::wait::while_busy(wait, || ecs.delete_cluster().cluster(arn).send())
        .await
        .map_err(|e| call_error("ecs:DeleteCluster", e))?;
    Ok(())
}
