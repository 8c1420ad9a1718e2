//! `mldeploy logs`: the service's lines from CloudWatch Logs (`/ecs/<name>`, where the task
//! definition's awslogs driver sends them), oldest first, each with the task it came from;
//! `--follow` keeps printing new ones until interrupted.

use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::Session;
use crate::aws::call_error;
use crate::cli::LogsArgs;
use crate::exit::{self, ExitStatus};
use crate::target::ecs::logs::log_group_name;

/// Pause between looks with `--follow`.
const POLL: Duration = Duration::from_secs(2);

/// One line of the service's output.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// When the container wrote it, RFC 3339.
    pub time: String,
    /// The id of the task that wrote it.
    pub task: String,
    pub message: String,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // ECS task ids are long hex; a container name is shown whole.
        let is_id = self.task.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        let short = if is_id {
            self.task.get(..8).unwrap_or(&self.task)
        } else {
            &self.task
        };
        write!(f, "{} [{short}] {}", self.time, self.message)
    }
}

#[derive(Debug, Serialize)]
pub struct LogsReport {
    pub log_group: String,
    pub lines: Vec<LogLine>,
}

impl fmt::Display for LogsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lines.is_empty() {
            return write!(f, "no lines in {} in that time", self.log_group);
        }
        let text: Vec<String> = self.lines.iter().map(LogLine::to_string).collect();
        write!(f, "{}", text.join("\n"))
    }
}

pub async fn run(session: &Session<'_>, args: &LogsArgs) -> anyhow::Result<ExitStatus> {
    if args.follow && session.printer.is_json() {
        return Err(exit::error(
            ExitStatus::Usage,
            "--follow prints lines as they come; --output json prints one object: use one of them",
        ));
    }
    let config = session.config()?;
    if config.target.kind == crate::config::TargetKind::Docker {
        return docker_logs(session, &config, args).await;
    }
    let aws = session.aws(&config).await?;
    let logs = aws.logs();
    let group = log_group_name(&config.project.name);
    let found = logs
        .describe_log_groups()
        .log_group_name_prefix(&group)
        .send()
        .await
        .map_err(|e| call_error("logs:DescribeLogGroups", e))?;
    if !found
        .log_groups()
        .iter()
        .any(|g| g.log_group_name() == Some(group.as_str()))
    {
        return Err(exit::error(
            ExitStatus::Environment,
            format!(
                "there is no log group {group}: nothing is deployed for {} (run `mldeploy up`)",
                config.project.name
            ),
        ));
    }
    let since = SystemTime::now()
        .checked_sub(args.since)
        .unwrap_or(UNIX_EPOCH);
    let mut from = millis(since);
    let mut seen = HashSet::new();
    let first = fetch(&logs, &group, from, &mut seen).await?;
    if !args.follow {
        session.printer.result(&LogsReport {
            log_group: group,
            lines: first.into_iter().map(|(_, l)| l).collect(),
        })?;
        return Ok(ExitStatus::Success);
    }
    let mut batch = first;
    loop {
        for (at, line) in batch {
            println!("{line}");
            from = from.max(at);
        }
        tokio::time::sleep(POLL).await;
        batch = fetch(&logs, &group, from, &mut seen).await?;
    }
}

/// The Docker target's logs: the engine's log of the project's newest container, each line with
/// the container it came from.
async fn docker_logs(
    session: &Session<'_>,
    config: &crate::config::Config,
    args: &LogsArgs,
) -> anyhow::Result<ExitStatus> {
    use futures_util::StreamExt;
    let engine = crate::image::engine::Engine::connect().await?;
    let containers = crate::target::docker::containers(&engine, &config.project.name).await?;
    let Some(c) = crate::target::docker::current(&containers) else {
        return Err(exit::error(
            ExitStatus::Environment,
            format!(
                "no container of {} on the Docker engine at {}: nothing is deployed there",
                config.project.name, engine.host
            ),
        ));
    };
    let since = millis(
        SystemTime::now()
            .checked_sub(args.since)
            .unwrap_or(UNIX_EPOCH),
    ) / 1000;
    let options = bollard::query_parameters::LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .follow(args.follow)
        .since(i32::try_from(since).unwrap_or(0))
        .build();
    let mut stream = engine.docker.logs(&c.id, Some(options));
    let mut lines = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            crate::image::engine::engine_error(e, &engine, "reading the container's logs")
        })?;
        for text in chunk.to_string().lines() {
            let (time, message) = text.split_once(' ').unwrap_or(("", text));
            let line = LogLine {
                time: time.to_string(),
                task: c.name.clone(),
                message: message.to_string(),
            };
            if args.follow {
                println!("{line}");
            } else {
                lines.push(line);
            }
        }
    }
    session.printer.result(&LogsReport {
        log_group: format!("container {}", c.name),
        lines,
    })?;
    Ok(ExitStatus::Success)
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
