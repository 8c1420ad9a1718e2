//! `[deploy] release_command` on ECS: run once as a task of the new release (its task
//! definition, on the service's network) after the revision is registered and before any
//! service rolls out. When it fails, nothing rolls out and `up` says why with its last lines.

use std::time::Instant;

use super::one_off::{self, OneOff};
use super::Converge;
use crate::exit::{self, ExitStatus};
use crate::output::Printer;
use crate::reports::short_task_definition;
use crate::targets::{Action, Change};

/// What the release command runs as and where.
pub struct Release<'a> {
    pub command: &'a [String],
    /// The new release's task definition, when it is registered (None in a plan that registers it).
    pub task_definition: Option<&'a str>,
    /// The task definition serving now, if any.
    pub serving: Option<&'a str>,
    /// `up --force`: deploy anew what already serves, so the command runs again.
    pub force: bool,
    pub cluster: &'a str,
    pub subnets: &'a [String],
    pub security_groups: &'a [String],
    pub public_ip: bool,
    pub until: Instant,
}

/// Runs the release command when the release is new (or forced); a plan only says it would.
pub async fn run(
    aws: &crate::aws::Aws,
    cv: &Converge,
    printer: &Printer,
    release: &Release<'_>,
    changes: &mut Vec<Change>,
) -> anyhow::Result<()> {
    let shown = release.command.join(" ");
    let new = release.force
        || release
            .task_definition
            .is_none_or(|td| Some(td) != release.serving);
    if !new {
        changes.push(
            Change::new("release command", shown, Action::Keep)
                .because("the release did not change, so it does not run"),
        );
        return Ok(());
    }
    let change = Change::new("release command", shown.clone(), Action::Update);
    let (false, Some(task_definition)) = (cv.dry_run, release.task_definition) else {
        changes
            .push(change.because("runs once with the new revision before any service rolls out"));
        return Ok(());
    };
    printer.info(format!(
        "Running the release command `{shown}` with {} before any service rolls out",
        short_task_definition(task_definition)
    ));
    let one = OneOff {
        cluster: release.cluster.to_string(),
        task_definition: task_definition.to_string(),
        command: release.command.to_vec(),
        subnets: release.subnets.to_vec(),
        security_groups: release.security_groups.to_vec(),
        public_ip: release.public_ip,
        started_by: one_off::RELEASE,
        timeout: release.until.saturating_duration_since(Instant::now()),
    };
    let step = |msg: &str| printer.info(msg);
    let mut line = |text: &str| printer.info(format!("  | {text}"));
    let ended = one_off::run(aws, &one, &step, &mut line)
        .await
        .map_err(|e| {
            e.context(format!(
                "the release command `{shown}` did not finish, so nothing rolled out"
            ))
        })?;
    let serving = match release.serving {
        Some(td) => format!("{} still serves", short_task_definition(td)),
        None => "nothing was deployed".to_string(),
    };
    let lines = if ended.last_lines.is_empty() {
        String::new()
    } else {
        format!(
            "; its last lines:\n  {}",
            ended.last_lines[ended.last_lines.len().saturating_sub(10)..].join("\n  ")
        )
    };
    match ended.exit_code {
        Some(0) => {
            changes.push(change.because(format!("exited 0 in task {}", ended.task_id)));
            Ok(())
        }
        Some(code) => Err(exit::error(
            ExitStatus::Failed,
            format!(
                "the release command `{shown}` exited with code {code} (task {}), so nothing rolled out: {serving}{lines}",
                ended.task_id
            ),
        )),
        None => Err(exit::error(
            ExitStatus::Failed,
            format!(
                "the release command `{shown}` could not run (task {}: {}), so nothing rolled out: {serving}",
                ended.task_id, ended.reason
            ),
        )),
    }
}
