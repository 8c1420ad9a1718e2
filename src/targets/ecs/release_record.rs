//! The record of each release that passed its checks: which revision every service ran, kept
//! beside the deploy lock (`s3://<lock bucket>/.mldeploy/<project>/releases/<ms>.json`), since
//! a release is several services' revisions and ECS keeps only each family's. `history` reads
//! them to show each worker's revision with the model API's; `destroy` deletes them.

use std::collections::BTreeMap;

use aws_sdk_s3::Client;
use serde::{Deserialize, Serialize};

use crate::aws::call_error;

/// How many records `history` reads: the newest, enough for its default listing.
const READ_AT_MOST: usize = 50;

/// One release: the revision (`family:revision`) of each service, by service name (the model
/// API under the project's name, each worker under its own).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// When it passed, RFC 3339.
    pub at: String,
    /// `up`, `rollback` or `promote`.
    pub by: String,
    pub services: BTreeMap<String, String>,
}

fn prefix(project: &str) -> String {
    format!(".mldeploy/{project}/releases/")
}

/// Writes `record` as the newest release.
pub async fn write(
    s3: &Client,
    bucket: &str,
    project: &str,
    record: &Record,
) -> anyhow::Result<()> {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let body = serde_json::to_vec_pretty(record)?;
    s3.put_object()
        .bucket(bucket)
        .key(format!("{}{millis:015}.json", prefix(project)))
        .content_type("application/json")
        .body(body.into())
        .send()
        .await
        .map_err(|e| call_error("s3:PutObject", e))?;
    Ok(())
}

/// The record keys, oldest first (their names are the times they were written, zero-padded).
async fn keys(s3: &Client, bucket: &str, project: &str) -> anyhow::Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix(project))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| call_error("s3:ListObjectsV2", e))?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    keys.sort();
    Ok(keys)
}

/// The newest records, newest first; a record that cannot be read is skipped.
pub async fn newest(s3: &Client, bucket: &str, project: &str) -> anyhow::Result<Vec<Record>> {
    let keys = keys(s3, bucket, project).await?;
    let reads = keys.iter().rev().take(READ_AT_MOST).map(|key| async move {
        let got = s3.get_object().bucket(bucket).key(key).send().await.ok()?;
        let bytes = got.body.collect().await.ok()?.into_bytes();
        serde_json::from_slice::<Record>(&bytes).ok()
    });
    Ok(futures_util::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect())
}

/// How many records the project has.
pub async fn count(s3: &Client, bucket: &str, project: &str) -> anyhow::Result<usize> {
    Ok(keys(s3, bucket, project).await?.len())
}

/// Each history row gets the workers' revisions of the newest record whose model API ran it.
pub fn annotate(
    releases: &mut [crate::reports::history::Release],
    records: &[Record],
    project: &str,
) {
    for release in releases {
        let short = crate::reports::short_task_definition(&release.task_definition);
        if let Some(record) = records
            .iter()
            .find(|r| r.services.get(project).map(String::as_str) == Some(short))
        {
            release.workers = record
                .services
                .iter()
                .filter(|(name, _)| name.as_str() != project)
                .map(|(name, revision)| (name.clone(), revision.clone()))
                .collect();
        }
    }
}

/// Writes the release `deployed` made once it passed its checks: the model API's and every
/// worker's revision (a worker this run did not move keeps the newest record's), in a project
/// with workers (without, the model API's revision is the release). A run that deployed
/// nothing is no release. A record that cannot be written is a warning: the release stands.
pub async fn after_release(
    s3: &Client,
    config: &crate::config::Config,
    deployed: &super::EcsDeployed,
    printer: &crate::output::Printer,
) {
    let moved = deployed.deployed.deployment_id.is_some()
        || deployed
            .workers
            .iter()
            .any(|w| w.deployed.deployment_id.is_some());
    if !moved || config.workers.is_empty() {
        return;
    }
    let project = config.project.name.as_str();
    let bucket = config.lock.bucket.as_str();
    let short = |arn: &str| crate::reports::short_task_definition(arn).to_string();
    let changed: BTreeMap<String, String> = std::iter::once((
        project.to_string(),
        short(&deployed.spec.task_definition_arn),
    ))
    .chain(
        deployed
            .workers
            .iter()
            .map(|w| (w.worker.clone(), short(&w.spec.task_definition_arn))),
    )
    .collect();
    let by = if deployed.gated { "up" } else { "rollback" };
    let written = async {
        let previous = latest(s3, bucket, project).await?;
        write(s3, bucket, project, &next(previous.as_ref(), by, changed)).await
    };
    if let Err(e) = written.await {
        printer.warn(format!(
            "the release is deployed, but its record in s3://{bucket}/{} was not written, so `history` will not show its workers' revisions: {e:#}",
            prefix(project)
        ));
    }
}

/// The newest record, when there is one.
async fn latest(s3: &Client, bucket: &str, project: &str) -> anyhow::Result<Option<Record>> {
    let Some(key) = keys(s3, bucket, project).await?.pop() else {
        return Ok(None);
    };
    let got = s3
        .get_object()
        .bucket(bucket)
        .key(&key)
        .send()
        .await
        .map_err(|e| call_error("s3:GetObject", e))?;
    let bytes = got.body.collect().await?.into_bytes();
    Ok(serde_json::from_slice(&bytes).ok())
}

/// Deletes every record of the project (`destroy`); returns how many there were.
pub async fn delete_all(s3: &Client, bucket: &str, project: &str) -> anyhow::Result<usize> {
    let keys = keys(s3, bucket, project).await?;
    for key in &keys {
        s3.delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| call_error("s3:DeleteObject", e))?;
    }
    Ok(keys.len())
}

/// The newest record's services with `changed` over them: a release that moved only some
/// services (a rollback) keeps the others' revisions.
pub fn next(previous: Option<&Record>, by: &str, changed: BTreeMap<String, String>) -> Record {
    let mut services = previous.map(|r| r.services.clone()).unwrap_or_default();
    services.extend(changed);
    Record {
        at: aws_smithy_types::DateTime::from(std::time::SystemTime::now())
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap_or_default(),
        by: by.to_string(),
        services,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_that_moved_some_services_keeps_the_others_revisions() {
        let first = next(
            None,
            "up",
            BTreeMap::from([
                ("p".to_string(), "p:1".to_string()),
                ("scorer".to_string(), "p-scorer:1".to_string()),
            ]),
        );
        let back = next(
            Some(&first),
            "rollback",
            BTreeMap::from([("p".to_string(), "p:2".to_string())]),
        );
        assert_eq!(back.services["p"], "p:2");
        assert_eq!(back.services["scorer"], "p-scorer:1");
        assert_eq!(back.by, "rollback");
        let text = serde_json::to_string(&back).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), back);
    }
}
