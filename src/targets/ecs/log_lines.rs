//! `logs` on ECS: the service's lines from CloudWatch Logs (`/ecs/<name>`, where the task
//! definition's awslogs driver sends them), oldest first, each with the task it came from.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::logs::{find_group, log_group_name};
use crate::aws::call_error;
use crate::exit::{self, ExitStatus};
use crate::reports::{LogLine, LogsReport};
use crate::session::Ctx;

/// Pause between looks with `--follow`.
const POLL: Duration = Duration::from_secs(2);

/// The lines since `since`; with `follow`, printed as they come until interrupted.
pub async fn read(ctx: &Ctx<'_>, since: Duration, follow: bool) -> anyhow::Result<LogsReport> {
    let logs = ctx.aws().await?.logs();
    let group = log_group_name(ctx.project());
    if find_group(&logs, &group).await?.is_none() {
        return Err(exit::error(
            ExitStatus::Environment,
            format!(
                "there is no log group {group}: nothing is deployed for {} (run `mldeploy up`)",
                ctx.project()
            ),
        ));
    }
    let since = SystemTime::now().checked_sub(since).unwrap_or(UNIX_EPOCH);
    let mut from = millis(since);
    let mut seen = HashSet::new();
    let first = fetch(&logs, &group, from, &mut seen).await?;
    if !follow {
        return Ok(LogsReport {
            log_group: group,
            lines: first.into_iter().map(|(_, l)| l).collect(),
        });
    }
    let mut batch = first;
    loop {
        for (at, line) in batch {
            ctx.printer.line(&line);
            from = from.max(at);
        }
        tokio::time::sleep(POLL).await;
        batch = fetch(&logs, &group, from, &mut seen).await?;
    }
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Every event of the group from `from_ms` on that is not in `seen`, oldest first.
async fn fetch(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    from_ms: i64,
    seen: &mut HashSet<String>,
) -> anyhow::Result<Vec<(i64, LogLine)>> {
    let mut lines = Vec::new();
    let mut pages = logs
        .filter_log_events()
        .log_group_name(group)
        .start_time(from_ms)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| call_error("logs:FilterLogEvents", e))?;
        for e in page.events() {
            let id = e.event_id().unwrap_or_default().to_string();
            if !seen.insert(id) {
                continue;
            }
            let at = e.timestamp().unwrap_or_default();
            let time = aws_smithy_types::DateTime::from_millis(at)
                .fmt(aws_smithy_types::date_time::Format::DateTime)
                .unwrap_or_default();
            // awslogs streams are `<prefix>/<container>/<task id>`.
            let task = e
                .log_stream_name()
                .and_then(|s| s.rsplit('/').next())
                .unwrap_or("?")
                .to_string();
            let message = e.message().unwrap_or_default().trim_end().to_string();
            lines.push((
                at,
                LogLine {
                    time,
                    task,
                    message,
                },
            ));
        }
    }
    lines.sort_by_key(|(at, _)| *at);
    Ok(lines)
}
