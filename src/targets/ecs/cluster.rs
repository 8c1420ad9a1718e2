//! The ECS cluster `<name>`: created tagged when missing. A cluster of that name that mldeploy
//! did not create is used as it is, and never deleted by `destroy`.

use aws_sdk_ecs::types::Cluster;
use aws_sdk_ecs::Client;

use super::Converge;
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

pub async fn ensure(
    ecs: &Client,
    cv: &Converge,
    changes: &mut Vec<Change>,
) -> anyhow::Result<String> {
    let name = cv.project.as_str();
    if let Some(cluster) = find(ecs, name).await? {
        let ours = tags::is_ours(cluster.tags(), name);
        let change = Change::new("ECS cluster", name, Action::Keep);
        changes.push(if ours {
            change
        } else {
            change.because("not created by mldeploy: used as it is")
        });
        return Ok(cluster.cluster_arn().unwrap_or(name).to_string());
    }
    changes.push(Change::new("ECS cluster", name, Action::Create));
    if cv.dry_run {
        return Ok(super::network::TO_BE_CREATED.to_string());
    }
    let created = ecs
        .create_cluster()
        .cluster_name(name)
        .tags(tags::ecs(name))
        .send()
        .await
        .map_err(|e| call_error("ecs:CreateCluster", e))?;
    Ok(created
        .cluster
        .and_then(|c| c.cluster_arn)
        .unwrap_or_else(|| name.to_string()))
}
