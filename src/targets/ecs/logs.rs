//! The service's CloudWatch log group, `/ecs/<name>`, tagged, with its retention converged.

use aws_sdk_cloudwatchlogs::types::LogGroup;
use aws_sdk_cloudwatchlogs::Client;

use super::step::Plan;
use super::Planned;
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

/// What the log group needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogGroupStep {
    Create { retention_days: i32 },
    SetRetention { retention_days: i32 },
}

/// Decides, from what [`find_group`] found, what the log group `name` needs.
pub fn plan_for(
    name: &str,
    found: Option<&LogGroup>,
    retention_days: i32,
) -> Planned<LogGroupStep, ()> {
    match found {
        None => Planned::change(
            Change::new("log group", name, Action::Create)
                .because(format!("{retention_days}-day retention")),
            (),
            LogGroupStep::Create { retention_days },
        ),
        Some(group) if group.retention_in_days() == Some(retention_days) => {
            Planned::keep(Change::new("log group", name, Action::Keep), ())
        }
        Some(group) => {
            let before = group
                .retention_in_days()
                .map(|d| format!("{d} days"))
                .unwrap_or_else(|| "never expire".into());
            Planned::change(
                Change::new("log group", name, Action::Update)
                    .because(format!("retention {before} -> {retention_days} days")),
                (),
                LogGroupStep::SetRetention { retention_days },
            )
        }
    }
}

/// Decides the log group: created when missing, its retention set when it differs; returns
/// its name.
pub async fn decide<'a>(
    logs: &'a Client,
    project: &'a str,
    retention_days: i32,
    plan: &mut Plan<'a>,
) -> anyhow::Result<String> {
    let name = log_group_name(project);
    let planned = plan_for(
        &name,
        find_group(logs, &name).await?.as_ref(),
        retention_days,
    );
    let group = name.clone();
    plan.add(planned, move |step| async move {
        apply(logs, project, &group, step).await
    });
    Ok(name)
}

async fn apply(
    logs: &Client,
    project: &str,
    name: &str,
    step: LogGroupStep,
) -> anyhow::Result<Option<()>> {
    match step {
        LogGroupStep::Create { retention_days } => {
            logs.create_log_group()
                .log_group_name(name)
                .tags(crate::aws::tags::PROJECT_TAG, project)
                .send()
                .await
                .map_err(|e| call_error("logs:CreateLogGroup", e))?;
            set_retention(logs, name, retention_days).await?;
        }
        LogGroupStep::SetRetention { retention_days } => {
            set_retention(logs, name, retention_days).await?;
        }
    }
    Ok(None)
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

pub async fn delete_group(logs: &Client, name: &str) -> anyhow::Result<()> {
    logs.delete_log_group()
        .log_group_name(name)
        .send()
        .await
        .map_err(|e| call_error("logs:DeleteLogGroup", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_group_is_created_kept_or_has_its_retention_set() {
        let created = plan_for("/ecs/p", None, 30);
        assert_eq!(
            created.step,
            Some(LogGroupStep::Create { retention_days: 30 })
        );
        let group = |days: Option<i32>| LogGroup::builder().set_retention_in_days(days).build();
        assert_eq!(plan_for("/ecs/p", Some(&group(Some(30))), 30).step, None);
        let never = plan_for("/ecs/p", Some(&group(None)), 7);
        assert_eq!(
            never.step,
            Some(LogGroupStep::SetRetention { retention_days: 7 })
        );
        assert_eq!(
            never.changes[0].detail.as_deref(),
            Some("retention never expire -> 7 days")
        );
    }
}
