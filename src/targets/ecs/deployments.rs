//! ECS's own record of what served: the service's deployments (ListServiceDeployments) and the
//! task definition each one's service revision ran (DescribeServiceRevisions). ECS keeps the
//! last 90 days. `rollback` with no target goes back to the release that served before the
//! current one, which after a rollback is not the next lower revision.

use aws_sdk_ecs::types::{ServiceDeploymentBrief, ServiceDeploymentStatus};
use aws_sdk_ecs::Client;

use crate::aws::call_error;

/// DescribeServiceRevisions takes at most this many ARNs a call.
const REVISIONS_PER_CALL: usize = 20;

/// The service's service deployments with `status` (all when None), every page read, newest
/// first by creation time. ListServiceDeployments documents no order and pages (20 by default)
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListServiceDeployments.html);
/// Terraform's provider likewise picks the deployment by its creation time, not its place.
pub async fn listed(
    ecs: &Client,
    cluster: &str,
    service: &str,
    status: Option<ServiceDeploymentStatus>,
) -> anyhow::Result<Vec<ServiceDeploymentBrief>> {
    let mut briefs = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = ecs
            .list_service_deployments()
            .cluster(cluster)
            .service(service)
            .set_status(status.clone().map(|s| vec![s]))
            .max_results(100)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| call_error("ecs:ListServiceDeployments", e))?;
        briefs.extend(page.service_deployments().iter().cloned());
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }
    sort_newest_first(&mut briefs, |d| d.created_at());
    Ok(briefs)
}

/// The newest of the service's service deployments with `status`.
pub async fn newest(
    ecs: &Client,
    cluster: &str,
    service: &str,
    status: Option<ServiceDeploymentStatus>,
) -> anyhow::Result<Option<ServiceDeploymentBrief>> {
    Ok(listed(ecs, cluster, service, status)
        .await?
        .into_iter()
        .next())
}

fn sort_newest_first(
    briefs: &mut [ServiceDeploymentBrief],
    when: impl Fn(&ServiceDeploymentBrief) -> Option<&aws_smithy_types::DateTime>,
) {
    briefs.sort_by(|a, b| {
        let key = |d| when(d).map(|t| (t.secs(), t.subsec_nanos()));
        key(b).cmp(&key(a))
    });
}

/// The task definitions the service's completed deployments served, newest first: the targets
/// of its SUCCESSFUL service deployments (a rolled-back one never served, and a rollback by
/// the circuit breaker makes no new deployment).
pub async fn served(ecs: &Client, cluster: &str, service: &str) -> anyhow::Result<Vec<String>> {
    let mut briefs = listed(
        ecs,
        cluster,
        service,
        Some(ServiceDeploymentStatus::Successful),
    )
    .await?;
    // Newest first by when each finished serving as the newest.
    sort_newest_first(&mut briefs, |d| d.finished_at().or(d.created_at()));
    let revisions: Vec<String> = briefs
        .iter()
        .filter_map(|d| d.target_service_revision_arn().map(str::to_string))
        .collect();
    let mut task_definitions = std::collections::HashMap::new();
    for chunk in revisions.chunks(REVISIONS_PER_CALL) {
        let out = ecs
            .describe_service_revisions()
            .set_service_revision_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| call_error("ecs:DescribeServiceRevisions", e))?;
        for r in out.service_revisions() {
            if let (Some(arn), Some(td)) = (r.service_revision_arn(), r.task_definition()) {
                task_definitions.insert(arn.to_string(), td.to_string());
            }
        }
    }
    Ok(revisions
        .iter()
        .filter_map(|arn| task_definitions.get(arn).cloned())
        .collect())
}

/// The release that served before `serving`: the newest served task definition that is not
/// the one serving now.
pub fn before<'a>(served: &'a [String], serving: &str) -> Option<&'a str> {
    served.iter().map(String::as_str).find(|td| *td != serving)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tds(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn after_a_rollback_undo_goes_back_to_what_served_before_it_not_to_a_lower_revision() {
        // up 1, up 2, up 3, rollback to 1: 1 serves; before it, 3 served.
        let served = tds(&["app:1", "app:3", "app:2", "app:1"]);
        assert_eq!(before(&served, "app:1"), Some("app:3"));
        // A forced redeploy of the same revision is not an earlier release.
        let served = tds(&["app:4", "app:4", "app:2"]);
        assert_eq!(before(&served, "app:4"), Some("app:2"));
    }

    #[test]
    fn with_one_release_there_is_nothing_before_it() {
        assert_eq!(before(&tds(&["app:1"]), "app:1"), None);
        assert_eq!(before(&[], "app:1"), None);
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;
    use aws_smithy_types::DateTime;

    #[test]
    fn the_newest_is_found_by_creation_time_whatever_order_ecs_lists_them_in() {
        let brief = |arn: &str, secs: i64| {
            ServiceDeploymentBrief::builder()
                .service_deployment_arn(arn)
                .created_at(DateTime::from_secs(secs))
                .build()
        };
        let mut briefs = vec![brief("a", 10), brief("c", 30), brief("b", 20)];
        sort_newest_first(&mut briefs, |d| d.created_at());
        let order: Vec<_> = briefs
            .iter()
            .map(|d| d.service_deployment_arn().unwrap_or_default())
            .collect();
        assert_eq!(order, ["c", "b", "a"]);
    }
}
