//! The service's CloudWatch log group, `/ecs/<name>`, tagged, with its retention converged.

use aws_sdk_cloudwatchlogs::types::LogGroup;
use aws_sdk_cloudwatchlogs::Client;

use super::Converge;
use crate::aws::call_error;
use crate::targets::{Action, Change};

pub fn log_group_name(project: &str) -> String {
    format!("/ecs/{project}")
}

/// The log group named `name`, when it exists; every page of groups sharing its prefix is read.
pub async fn find_group(logs: &Client, name: &str) -> anyhow::Result<Option<LogGroup>> {
    let pages: Vec<_> = crate::all_pages!(
        logs.describe_log_groups().log_group_name_prefix(name),
        "logs:DescribeLogGroups"
    )?;
    Ok(pages
        .into_iter()
        .flat_map(|p| p.log_groups.unwrap_or_default())
        .find(|g| g.log_group_name() == Some(name)))
}

/// Creates the log group when missing and sets its retention when it differs.
pub async fn ensure(
    logs: &Client,
    cv: &Converge,
    retention_days: i32,
    changes: &mut Vec<Change>,
) -> anyhow::Result<String> {
    let name = log_group_name(&cv.project);
    match find_group(logs, &name).await? {
        None => {
            if !cv.dry_run {
                logs.create_log_group()
                    .log_group_name(&name)
                    .tags(crate::aws::tags::PROJECT_TAG, &cv.project)
                    .send()
                    .await
                    .map_err(|e| call_error("logs:CreateLogGroup", e))?;
                set_retention(logs, &name, retention_days).await?;
            }
            changes.push(
                Change::new("log group", &name, Action::Create)
                    .because(format!("{retention_days}-day retention")),
            );
        }
        Some(group) if group.retention_in_days() == Some(retention_days) => {
            changes.push(Change::new("log group", &name, Action::Keep));
        }
        Some(group) => {
            if !cv.dry_run {
                set_retention(logs, &name, retention_days).await?;
            }
            let before = group
                .retention_in_days()
                .map(|d| format!("{d} days"))
                .unwrap_or_else(|| "never expire".into());
            changes.push(
                Change::new("log group", &name, Action::Update)
                    .because(format!("retention {before} -> {retention_days} days")),
            );
        }
    }
    Ok(name)
}

async fn set_retention(logs: &Client, name: &str, days: i32) -> anyhow::Result<()> {
    logs.put_retention_policy()
        .log_group_name(name)
        .retention_in_days(days)
        .send()
        .await
        .map_err(|e| call_error("logs:PutRetentionPolicy", e))?;
    Ok(())
}
