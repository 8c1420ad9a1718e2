//! The project's releases: the revisions of its task-definition family, newest first. What a
//! revision serves is read from what it runs (the container's `MODEL_PATH`, its version through
//! `model.path`, and its image); the tags `up` recorded (git commit, CI run) add where it came
//! from, and a revision whose tags disagree with what it runs, or that mldeploy did not register,
//! carries a warning. `history` prints them; `rollback` picks its target among them.

use aws_sdk_ecs::types::{SortOrder, TaskDefinitionField, TaskDefinitionStatus};
use aws_sdk_ecs::Client;
use futures_util::{StreamExt, TryStreamExt};

use super::task_definition::TaskSpec;
use crate::aws::call_error;
use crate::reports::history::RegistryInfo;

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
    template: &str,
    serving: Option<&str>,
    limit: Option<usize>,
) -> anyhow::Result<Vec<Revision>> {
    let arns = arns(ecs, family, limit).await?;
    let mut revisions: Vec<Revision> = futures_util::stream::iter(arns)
        .map(|arn| describe(ecs, arn, template, serving))
        .buffered(CONCURRENT_DESCRIBES)
        .try_collect()
        .await?;
    revisions.sort_by_key(|r| std::cmp::Reverse(r.release.revision));
    Ok(revisions)
}

/// The ARNs of the ACTIVE revisions of exactly `family`, newest first, at most `limit`.
pub async fn arns(ecs: &Client, family: &str, limit: Option<usize>) -> anyhow::Result<Vec<String>> {
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
    Ok(arns)
}

/// One revision: what it runs, and its tags. `template` is `model.path`.
pub async fn describe(
    ecs: &Client,
    arn: String,
    template: &str,
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
    let runs = Runs {
        model_path: spec.env("MODEL_PATH").map(str::to_string),
        image: spec.container().map(|c| c.image.clone()),
    };
    let tagged = Runs {
        model_path: tag("mldeploy:model-path"),
        image: tag("mldeploy:image"),
    };
    let tagged_version = tag("mldeploy:model-version");
    let warning = warning(ours, &runs, &tagged, tagged_version.as_deref());
    // The version is read from the path through model.path; the tag says it only for the path
    // it was written with (model.path may have changed since).
    let model_version = runs
        .model_path
        .as_deref()
        .and_then(|p| crate::model::version_of(template, p))
        .or_else(|| {
            same_path(&tagged, &runs)
                .then_some(tagged_version)
                .flatten()
        });
    let release = Release {
        revision: td.revision(),
        serving: serving == Some(arn.as_str()),
        task_definition: arn,
        model_version,
        model_path: runs.model_path,
        image: runs.image,
        created: td
            .registered_at()
            .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
        git_commit: tag("mldeploy:git-commit"),
        ci_run: tag("mldeploy:ci-run"),
        promoted_from: tag(super::task_definition::PROMOTED_FROM_TAG),
        ours,
        warning,
        registry: tag(super::task_definition::REGISTRY_MODEL_TAG).map(|name| RegistryInfo {
            name,
            deployed_by: tag(super::task_definition::MODEL_ALIAS_TAG),
            aliases: Vec::new(),
        }),
        workers: Default::default(),
    };
    Ok(Revision { release, spec })
}

/// Whether the tags name the model path the revision runs (a trailing `/` aside).
fn same_path(tagged: &Runs, runs: &Runs) -> bool {
    let trimmed = |r: &Runs| {
        r.model_path
            .as_deref()
            .map(|p| p.trim_end_matches('/').to_string())
    };
    trimmed(tagged) == trimmed(runs)
}

/// What a revision runs, or what its tags say it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Runs {
    model_path: Option<String>,
    image: Option<String>,
}

/// Why a revision's record is not to be trusted as it stands, if it is not: tags that copy
/// another revision's (tools that clone the serving task definition do) disagree with what it
/// runs, and a revision without the project's tag was registered outside mldeploy.
fn warning(ours: bool, runs: &Runs, tagged: &Runs, tagged_version: Option<&str>) -> Option<String> {
    if !ours {
        return Some(
            "registered outside mldeploy (no mldeploy:project tag): reported as what it runs"
                .into(),
        );
    }
    let path_differs = tagged.model_path.is_some() && !same_path(tagged, runs);
    let image_differs = tagged.image.is_some() && tagged.image != runs.image;
    if !(path_differs || image_differs) {
        return None;
    }
    let says = crate::model::describe(tagged_version, tagged.model_path.as_deref());
    let mut what = format!(
        "its tags say {says}, but it runs MODEL_PATH {}",
        runs.model_path.as_deref().unwrap_or("(none)")
    );
    if image_differs {
        what.push_str(&format!(
            " and image {}",
            runs.image.as_deref().unwrap_or("(none)")
        ));
    }
    what.push_str(": reported as what it runs");
    Some(what)
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
