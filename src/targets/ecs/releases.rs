//! The project's releases: the revisions of its task-definition family, newest first, each with
//! what `up` recorded as tags when it registered it (model version and path, image, git commit,
//! CI run). `history` prints them; `rollback` picks its target among them.

use aws_sdk_ecs::types::{SortOrder, TaskDefinitionField, TaskDefinitionStatus};
use aws_sdk_ecs::Client;
use futures_util::{StreamExt, TryStreamExt};

use super::task_definition::TaskSpec;
use crate::aws::call_error;

/// How many revisions are described at once.
const CONCURRENT_DESCRIBES: usize = 4;

pub use crate::reports::history::Release;

/// A release and its task definition, for comparing with a wanted one.
#[derive(Debug, Clone)]
pub struct Revision {
    pub release: Release,
    pub spec: TaskSpec,
}

/// The ACTIVE revisions of `family`, newest first, at most `limit` of them (all with None).
/// `serving` marks the one the service runs.
pub async fn list(
    ecs: &Client,
    family: &str,
    serving: Option<&str>,
    limit: Option<usize>,
) -> anyhow::Result<Vec<Revision>> {
    let mut arns: Vec<String> = Vec::new();
    let mut pages = ecs
        .list_task_definitions()
        .family_prefix(family)
        .status(TaskDefinitionStatus::Active)
        .sort(SortOrder::Desc)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| call_error("ecs:ListTaskDefinitions", e))?;
        // A family prefix also matches longer families ("app" finds "app-v2"): keep ours.
        arns.extend(
            page.task_definition_arns()
                .iter()
                .filter(|a| family_of(a) == Some(family))
                .cloned(),
        );
        if limit.is_some_and(|n| arns.len() >= n) {
            break;
        }
    }
    if let Some(n) = limit {
        arns.truncate(n);
    }
    let mut revisions: Vec<Revision> = futures_util::stream::iter(arns)
        .map(|arn| describe(ecs, arn, serving))
        .buffered(CONCURRENT_DESCRIBES)
        .try_collect()
        .await?;
    revisions.sort_by(|a, b| b.release.revision.cmp(&a.release.revision));
    Ok(revisions)
}

/// One revision with its tags.
pub async fn describe(
    ecs: &Client,
    arn: String,
    serving: Option<&str>,
) -> anyhow::Result<Revision> {
    let out = ecs
        .describe_task_definition()
        .task_definition(&arn)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(|e| call_error("ecs:DescribeTaskDefinition", e))?;
    let td = out
        .task_definition()
        .ok_or_else(|| anyhow::anyhow!("ecs:DescribeTaskDefinition returned nothing for {arn}"))?;
    let tag = |key: &str| crate::aws::tags::value_of(out.tags(), key).map(str::to_string);
    let spec = TaskSpec::from_registered(td);
    let arn = td.task_definition_arn().unwrap_or(&arn).to_string();
    let ours = family_of(&arn).is_some_and(|f| tag(super::PROJECT_TAG).as_deref() == Some(f));
    let release = Release {
        revision: td.revision(),
        serving: serving == Some(arn.as_str()),
        task_definition: arn,
        model_version: tag("mldeploy:model-version"),
        // A revision registered by hand has no tags: read what it runs instead.
        model_path: tag("mldeploy:model-path")
            .or_else(|| spec.env("MODEL_PATH").map(str::to_string)),
        image: tag("mldeploy:image").or_else(|| spec.container().map(|c| c.image.clone())),
        created: td
            .registered_at()
            .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
        git_commit: tag("mldeploy:git-commit"),
        ci_run: tag("mldeploy:ci-run"),
        ours,
    };
    Ok(Revision { release, spec })
}

/// `arn:...:task-definition/housing:7` -> `housing`.
pub fn family_of(arn: &str) -> Option<&str> {
    arn.rsplit('/')
        .next()
        .and_then(|fr| fr.rsplit_once(':'))
        .map(|(f, _)| f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_family_is_read_from_the_arn() {
        assert_eq!(
            family_of("arn:aws:ecs:us-east-1:1:task-definition/housing-v2:7"),
            Some("housing-v2")
        );
        assert_eq!(family_of("housing:7"), Some("housing"));
        assert_eq!(family_of("housing"), None);
    }
}
