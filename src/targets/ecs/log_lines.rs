//! `logs` on ECS: the service's lines from CloudWatch Logs (`/ecs/<name>`, where the task
//! definition's awslogs driver sends them), oldest first, each with the task it came from.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::logs::{find_group, log_group_name};
use crate::aws::call_error;
use crate::exit::{self, ExitStatus};
use crate::reports::{LogLine, LogsReport};
use crate::session::Ctx;

/// Pause between looks with `--follow`.
const POLL: Duration = Duration::from_secs(2);
/// How far back each look with `--follow` reaches behind the newest line printed: CloudWatch
/// Logs may store an event after a newer one, so the newest timestamp alone would skip it.
const LATE: i64 = 60_000;

/// Whose lines a read takes: every service's, or the streams of one (`<prefix>/`), and whether
/// each line names its service.
struct Streams {
    prefix: Option<String>,
    named: bool,
}

/// `--service NAME`: the model API's streams (`<project>/...`) or a worker's
/// (`<project>-<worker>/...`); an unknown name is exit 2 listing the project's services.
fn streams(config: &crate::config::Config, service: Option<&str>) -> anyhow::Result<Streams> {
    let project = config.project.name.as_str();
    let named = !config.workers.is_empty();
    let prefix = match (service, config.service_named(service)?) {
        (None, _) => None,
        (Some(_), None) => Some(format!("{project}/")),
        (Some(_), Some(w)) => Some(format!("{}/", w.service_name(project))),
    };
    Ok(Streams { prefix, named })
}

/// The lines since `since`; with `follow`, printed as they come until interrupted.
pub async fn read(
    ctx: &Ctx<'_>,
    since: Duration,
    follow: bool,
    service: Option<&str>,
) -> anyhow::Result<LogsReport> {
    let streams = streams(&ctx.config, service)?;
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
    let from = millis(since);
    let mut seen = Seen::default();
    let first = fetch(&logs, &group, &streams, from, &mut seen).await?;
    if !follow {
        return Ok(LogsReport {
            log_group: group,
            lines: first.into_iter().map(|(_, l)| l).collect(),
        });
    }
    let mut batch = first;
    loop {
        for (_, line) in batch {
            ctx.printer.line(&line);
        }
        // Only the ids of the last minute's events are kept: a follow that runs for days
        // holds what one minute of lines needs, not every id it printed.
        let from = seen.newest.saturating_sub(LATE).max(from);
        seen.forget_before(from);
        tokio::time::sleep(POLL).await;
        batch = fetch(&logs, &group, &streams, from, &mut seen).await?;
    }
}

/// The events already printed, by id with their timestamps, and the newest timestamp.
#[derive(Debug, Default)]
struct Seen {
    ids: HashMap<String, i64>,
    newest: i64,
}

impl Seen {
    /// False when `id` was printed already.
    fn insert(&mut self, id: String, at: i64) -> bool {
        self.newest = self.newest.max(at);
        self.ids.insert(id, at).is_none()
    }

    /// Forgets events older than `from_ms`: a look that starts there cannot return them.
    fn forget_before(&mut self, from_ms: i64) {
        self.ids.retain(|_, at| *at >= from_ms);
    }
}

/// What a task wrote that says why it failed: the last `n` of its lines that read like an error
/// (an exception, a traceback, a refusal), else its last `n` lines, from its awslogs stream
/// `<project>/<project>/<task id>` (the built-in template's prefix and container name). Empty
/// when the stream is not there (another template's names, or a task that never started).
pub async fn telling_lines_of_task(
    logs: &aws_sdk_cloudwatchlogs::Client,
    project: &str,
    task_id: &str,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let stream = format!("{project}/{project}/{task_id}");
    telling_lines_in_stream(logs, project, &stream, n).await
}

/// [`telling_lines_of_task`] for the log stream `stream` of the project's log group (a
/// worker's task writes to `<project>-<worker>/<worker>/<task id>`).
pub async fn telling_lines_in_stream(
    logs: &aws_sdk_cloudwatchlogs::Client,
    project: &str,
    stream: &str,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let got = logs
        .get_log_events()
        .log_group_name(log_group_name(project))
        .log_stream_name(stream)
        .start_from_head(true)
        .limit(TASK_LINES_READ)
        .send()
        .await;
    match got {
        Ok(out) => {
            let lines: Vec<String> = out
                .events()
                .iter()
                .filter_map(|e| e.message())
                .map(|m| m.trim_end().to_string())
                .filter(|m| !m.is_empty())
                .collect();
            Ok(telling(&lines, n))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(Vec::new())
        }
        Err(e) => Err(call_error("logs:GetLogEvents", e)),
    }
}

/// How many of a stopped task's first lines are read for the telling ones.
const TASK_LINES_READ: i32 = 1000;

/// Words of a line that says something failed; an app's health-check access lines say none.
const TELLING: [&str; 9] = [
    "error",
    "exception",
    "traceback",
    "fatal",
    "panic",
    "denied",
    "refused",
    "cannot",
    "failed",
];

/// The last `n` lines that read like an error, else the last `n` lines.
fn telling(lines: &[String], n: usize) -> Vec<String> {
    let errors: Vec<&String> = lines
        .iter()
        .filter(|l| {
            let lower = l.to_lowercase();
            TELLING.iter().any(|w| lower.contains(w))
        })
        .collect();
    let chosen: Vec<&String> = if errors.is_empty() {
        lines.iter().collect()
    } else {
        errors
    };
    let skip = chosen.len().saturating_sub(n);
    chosen.into_iter().skip(skip).cloned().collect()
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
    streams: &Streams,
    from_ms: i64,
    seen: &mut Seen,
) -> anyhow::Result<Vec<(i64, LogLine)>> {
    let mut lines = Vec::new();
    let mut pages = logs
        .filter_log_events()
        .log_group_name(group)
        .set_log_stream_name_prefix(streams.prefix.clone())
        .start_time(from_ms)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| call_error("logs:FilterLogEvents", e))?;
        for e in page.events() {
            let id = e.event_id().unwrap_or_default().to_string();
            let at = e.timestamp().unwrap_or_default();
            if !seen.insert(id, at) {
                continue;
            }
            let time = aws_smithy_types::DateTime::from_millis(at)
                .fmt(aws_smithy_types::date_time::Format::DateTime)
                .unwrap_or_default();
            // awslogs streams are `<prefix>/<container>/<task id>`; the container is named for
            // the project (the model API's) or the worker.
            let stream = e.log_stream_name().unwrap_or("?");
            let task = stream.rsplit('/').next().unwrap_or("?").to_string();
            let service = streams
                .named
                .then(|| stream.split('/').nth(1).unwrap_or("?").to_string());
            let message = e.message().unwrap_or_default().trim_end().to_string();
            lines.push((
                at,
                LogLine {
                    time,
                    task,
                    service,
                    message,
                },
            ));
        }
    }
    lines.sort_by_key(|(at, _)| *at);
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::{telling, Seen, LATE};

    #[test]
    fn a_follow_remembers_only_the_last_minute_of_ids() {
        let mut seen = Seen::default();
        // A day of one event a second.
        for i in 0..86_400i64 {
            assert!(seen.insert(format!("e{i}"), i * 1000));
            seen.forget_before(seen.newest - LATE);
        }
        assert!(seen.ids.len() <= 61, "{} ids kept", seen.ids.len());
        // A repeat within the window is still recognised.
        assert!(!seen.insert("e86399".into(), 86_399_000));
    }

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn the_errors_are_told_and_the_health_checks_are_not() {
        let all = lines(
            "INFO: started\nERROR cannot load the model from s3://b/m/2\nTraceback (most recent call last):\n  File \"main.py\"\nbotocore.exceptions.ClientError: An error occurred (AccessDenied)\nINFO: GET /health 200 OK\nINFO: GET /ready 503 Service Unavailable",
        );
        assert_eq!(
            telling(&all, 2),
            [
                "Traceback (most recent call last):",
                "botocore.exceptions.ClientError: An error occurred (AccessDenied)"
            ]
        );
    }

    #[test]
    fn without_errors_the_last_lines_are_told() {
        let all = lines("one\ntwo\nthree");
        assert_eq!(telling(&all, 2), ["two", "three"]);
        assert!(telling(&[], 2).is_empty());
    }
}
