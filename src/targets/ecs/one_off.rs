//! One-off tasks: a command run once as a task of a service's release (`mldeploy run`, and
//! `[deploy] release_command` before a release rolls out), its output streamed from CloudWatch
//! Logs as it comes, and its end as ECS reports it: the container's exit code, or why the task
//! could not start.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, LaunchType, NetworkConfiguration,
    PropagateTags, TaskOverride,
};

use crate::aws::{call_error, returned, Aws};
use crate::exit::{self, ExitStatus};
use crate::reports::short_task_definition;

/// Where and what to run.
#[derive(Debug, Clone)]
pub struct OneOff {
    pub cluster: String,
    /// The task definition (ARN) whose image, environment, secrets and roles the task has.
    pub task_definition: String,
    /// Exec form: replaces the container's command.
    pub command: Vec<String>,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub public_ip: bool,
    /// ECS's startedBy: who started it, shown by DescribeTasks ([`RUN`] or [`RELEASE`]).
    pub started_by: &'static str,
    pub timeout: Duration,
}

/// How the task ended.
#[derive(Debug, Clone)]
pub struct Ended {
    pub task_id: String,
    /// The container's exit code; None when it never ran (ECS's reason says why).
    pub exit_code: Option<i32>,
    /// ECS's stoppedReason, with the container's own reason when it has one.
    pub reason: String,
    /// The command's last lines, oldest first.
    pub last_lines: Vec<String>,
}

/// ECS's startedBy of the tasks `mldeploy run` and `[deploy] release_command` start.
pub const RUN: &str = "mldeploy-run";
pub const RELEASE: &str = "mldeploy-release";

/// Stops the one-off tasks mldeploy started in the cluster that still run (a `run` killed before
/// it could stop its own): ECS refuses to delete a cluster with tasks
/// (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteCluster.html,
/// ClusterContainsTasksException). Tasks someone else started are left alone. Returns how many.
pub async fn stop_leftovers(ecs: &aws_sdk_ecs::Client, cluster: &str) -> anyhow::Result<usize> {
    let pages: Vec<_> = crate::all_pages!(ecs.list_tasks().cluster(cluster), "ecs:ListTasks")?;
    let arns: Vec<String> = pages
        .into_iter()
        .flat_map(|p| p.task_arns.unwrap_or_default())
        .collect();
    let mut stopped = 0;
    // DescribeTasks takes up to 100 tasks.
    for chunk in arns.chunks(100) {
        let described = ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| call_error("ecs:DescribeTasks", e))?;
        for task in described.tasks() {
            let ours = matches!(task.started_by(), Some(RUN | RELEASE));
            if let (true, Some(arn)) = (ours, task.task_arn()) {
                stop(ecs, cluster, arn, "mldeploy destroy deletes the cluster").await?;
                stopped += 1;
            }
        }
    }
    Ok(stopped)
}

/// How many of the command's last lines [`Ended`] keeps.
const LAST_LINES: usize = 20;

/// The awslogs stream a task's container writes to, from its task definition.
#[derive(Debug, Clone)]
struct LogStream {
    group: String,
    /// `<prefix>/<container>/`: the task id completes it.
    prefix: Option<String>,
}

/// Starts the task, prints each line of its output with `line` as it comes, and waits for it to
/// stop. A task still running at the timeout is stopped (exit 1). While it runs, an interrupt
/// stops it (see [`crate::undo`]).
pub async fn run(
    aws: &Aws,
    one: &OneOff,
    step: &dyn Fn(&str),
    line: &mut dyn FnMut(&str),
) -> anyhow::Result<Ended> {
    let ecs = aws.ecs();
    let (container, stream) = container_of(&ecs, &one.task_definition).await?;
    let network = NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .set_subnets(Some(one.subnets.clone()))
                .set_security_groups(Some(one.security_groups.clone()))
                .assign_public_ip(if one.public_ip {
                    AssignPublicIp::Enabled
                } else {
                    AssignPublicIp::Disabled
                })
                .build()
                .map_err(|e| anyhow::anyhow!("the task's network configuration: {e}"))?,
        )
        .build();
    let out = ecs
        .run_task()
        .cluster(&one.cluster)
        .task_definition(&one.task_definition)
        .launch_type(LaunchType::Fargate)
        .count(1)
        .started_by(one.started_by)
        .propagate_tags(PropagateTags::TaskDefinition)
        .network_configuration(network)
        .overrides(
            TaskOverride::builder()
                .container_overrides(
                    ContainerOverride::builder()
                        .name(&container)
                        .set_command(Some(one.command.clone()))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .map_err(|e| call_error("ecs:RunTask", e))?;
    if let Some(failure) = out.failures().first() {
        return Err(exit::error(
            ExitStatus::Failed,
            format!(
                "ECS could not start the task: {} ({})",
                failure.reason().unwrap_or("no reason given"),
                failure.detail().or(failure.arn()).unwrap_or("no detail")
            ),
        ));
    }
    let task = returned(out.tasks().first(), "ecs:RunTask", "task")?;
    let arn = returned(task.task_arn(), "ecs:RunTask", "task ARN")?.to_string();
    let task_id = arn.rsplit('/').next().unwrap_or(&arn).to_string();
    step(&format!(
        "Started task {task_id} of {}",
        short_task_definition(&one.task_definition)
    ));
    let undo = crate::undo::Undo::begin();
    {
        let (ecs, cluster, arn) = (ecs.clone(), one.cluster.clone(), arn.clone());
        undo.push(format!("stopped task {task_id}"), move || async move {
            stop(&ecs, &cluster, &arn, "mldeploy run was interrupted").await
        });
    }
    let ended = follow(aws, one, &arn, &task_id, &container, stream, step, line).await;
    undo.finish();
    ended
}

/// Polls the task until it stops, printing its new lines as they come.
#[allow(clippy::too_many_arguments)] // one call site; each is a different thing of the task
async fn follow(
    aws: &Aws,
    one: &OneOff,
    arn: &str,
    task_id: &str,
    container: &str,
    stream: Option<LogStream>,
    step: &dyn Fn(&str),
    line: &mut dyn FnMut(&str),
) -> anyhow::Result<Ended> {
    let (ecs, logs) = (aws.ecs(), aws.logs());
    let mut stream = stream.map(|s| Reader::new(s, container, task_id));
    let mut last: VecDeque<String> = VecDeque::new();
    let start = Instant::now();
    let mut state = String::new();
    loop {
        let described = ecs
            .describe_tasks()
            .cluster(&one.cluster)
            .tasks(arn)
            .send()
            .await
            .map_err(|e| call_error("ecs:DescribeTasks", e))?;
        let task = returned(described.tasks().first(), "ecs:DescribeTasks", "task")?;
        let now = task.last_status().unwrap_or("UNKNOWN").to_string();
        if let Some(reader) = stream.as_mut() {
            for text in reader.read(&logs).await? {
                line(&text);
                last.push_back(text);
                if last.len() > LAST_LINES {
                    last.pop_front();
                }
            }
        }
        if now != state {
            step(&format!(
                "  task {}: {now}",
                &task_id[..task_id.len().min(8)]
            ));
            state = now;
        }
        if state == "STOPPED" {
            let c = task
                .containers()
                .iter()
                .find(|c| c.name() == Some(container));
            let mut reason = task
                .stopped_reason()
                .unwrap_or("no reason given")
                .to_string();
            if let Some(why) = c.and_then(|c| c.reason()) {
                reason = format!("{reason}: {why}");
            }
            return Ok(Ended {
                task_id: task_id.to_string(),
                exit_code: c.and_then(|c| c.exit_code()),
                reason,
                last_lines: last.into_iter().collect(),
            });
        }
        if start.elapsed() >= one.timeout {
            let why = format!(
                "--timeout of {} passed",
                crate::targets::ecs::watcher::human_duration(one.timeout)
            );
            stop(&ecs, &one.cluster, arn, &format!("mldeploy: {why}")).await?;
            return Err(exit::error(
                ExitStatus::Failed,
                format!("the command had not ended when the {why}, so its task {task_id} was stopped; raise --timeout for a longer one"),
            ));
        }
        tokio::time::sleep(crate::aws::poll::interval()).await;
    }
}

/// Asks ECS to stop the task (SIGTERM, then SIGKILL after the stop timeout).
async fn stop(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    arn: &str,
    reason: &str,
) -> anyhow::Result<()> {
    ecs.stop_task()
        .cluster(cluster)
        .task(arn)
        .reason(reason)
        .send()
        .await
        .map_err(|e| call_error("ecs:StopTask", e))?;
    Ok(())
}

/// The task definition's first container (the one mldeploy renders) and its awslogs stream.
async fn container_of(
    ecs: &aws_sdk_ecs::Client,
    task_definition: &str,
) -> anyhow::Result<(String, Option<LogStream>)> {
    let out = ecs
        .describe_task_definition()
        .task_definition(task_definition)
        .send()
        .await
        .map_err(|e| call_error("ecs:DescribeTaskDefinition", e))?;
    let td = returned(
        out.task_definition(),
        "ecs:DescribeTaskDefinition",
        "task definition",
    )?;
    let container = returned(
        td.container_definitions().first(),
        "ecs:DescribeTaskDefinition",
        "container definition",
    )?;
    let name = returned(
        container.name(),
        "ecs:DescribeTaskDefinition",
        "container name",
    )?
    .to_string();
    let stream = container.log_configuration().and_then(|config| {
        if config.log_driver().as_str() != "awslogs" {
            return None;
        }
        let options = config.options()?;
        Some(LogStream {
            group: options.get("awslogs-group")?.clone(),
            prefix: options.get("awslogs-stream-prefix").cloned(),
        })
    });
    Ok((name, stream))
}

/// Reads a task's log stream from where the last read left off.
struct Reader {
    group: String,
    stream: String,
    token: Option<String>,
}

impl Reader {
    /// The stream `<prefix>/<container>/<task id>`, or the task id without a prefix, as the
    /// awslogs driver names it.
    fn new(stream: LogStream, container: &str, task_id: &str) -> Reader {
        let name = match stream.prefix {
            Some(prefix) => format!("{prefix}/{container}/{task_id}"),
            None => task_id.to_string(),
        };
        Reader {
            group: stream.group,
            stream: name,
            token: None,
        }
    }

    /// The lines written since the last read; none while the stream does not exist yet.
    async fn read(&mut self, logs: &aws_sdk_cloudwatchlogs::Client) -> anyhow::Result<Vec<String>> {
        let mut lines = Vec::new();
        loop {
            let got = logs
                .get_log_events()
                .log_group_name(&self.group)
                .log_stream_name(&self.stream)
                .start_from_head(true)
                .set_next_token(self.token.clone())
                .send()
                .await;
            let out = match got {
                Ok(out) => out,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    return Ok(lines)
                }
                Err(e) => return Err(call_error("logs:GetLogEvents", e)),
            };
            lines.extend(
                out.events()
                    .iter()
                    .filter_map(|e| e.message())
                    .map(|m| m.trim_end_matches(['\n', '\r']).to_string()),
            );
            // The same token back means the end of the stream for now (GetLogEvents).
            let next = out.next_forward_token().map(str::to_string);
            let done = next.is_none() || next == self.token;
            self.token = next;
            if done || out.events().is_empty() {
                return Ok(lines);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tasks_stream_is_named_as_the_awslogs_driver_names_it() {
        let with = Reader::new(
            LogStream {
                group: "/ecs/p".into(),
                prefix: Some("p-scorer".into()),
            },
            "scorer",
            "abc",
        );
        assert_eq!(with.stream, "p-scorer/scorer/abc");
        let without = Reader::new(
            LogStream {
                group: "/ecs/p".into(),
                prefix: None,
            },
            "scorer",
            "abc",
        );
        assert_eq!(without.stream, "abc");
        assert_eq!(
            short_task_definition("arn:aws:ecs:us-east-1:1:task-definition/p:7"),
            "p:7"
        );
    }
}
