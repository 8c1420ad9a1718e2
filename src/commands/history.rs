//! `mldeploy history`: the releases, newest first, from the revisions of the project's
//! task-definition family and the tags `up` and `rollback` put on them, and which one serves.

use std::fmt;

use serde::Serialize;

use super::Session;
use crate::cli::HistoryArgs;
use crate::exit::ExitStatus;
use crate::target::ecs::releases::{self, Release};
use crate::target::ecs::service;

#[derive(Debug, Serialize)]
pub struct HistoryReport {
    pub family: String,
    /// The revision the service runs; null when nothing is deployed.
    pub serving: Option<String>,
    pub releases: Vec<Release>,
}

impl fmt::Display for HistoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.releases.is_empty() {
            return write!(f, "{}: no releases yet (run `mldeploy up`)", self.family);
        }
        writeln!(
            f,
            "{:>4}  {:<8} {:<20} {:<21} SOURCE",
            "REV", "MODEL", "IMAGE", "CREATED"
        )?;
        let last = self.releases.len() - 1;
        for (i, r) in self.releases.iter().enumerate() {
            let source = match (&r.git_commit, &r.ci_run) {
                (Some(c), Some(run)) => format!("{} ({run})", short(c, 7)),
                (Some(c), None) => short(c, 7).to_string(),
                (None, Some(run)) => run.clone(),
                (None, None) => "-".into(),
            };
            let line = format!(
                "{:>4}  {:<8} {:<20} {:<21} {:<22}{}",
                r.revision,
                r.model_version.as_deref().unwrap_or("-"),
                image_digest(r.image.as_deref()),
                r.created
                    .as_deref()
                    .map(|c| format!("{}Z", short(c, 19)))
                    .unwrap_or_else(|| "-".into()),
                source,
                if r.serving { " <- serving" } else { "" }
            );
            write!(f, "{}", line.trim_end())?;
            if i != last {
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

fn short(text: &str, n: usize) -> &str {
    text.get(..n).unwrap_or(text)
}

/// `repo@sha256:abcdef...` -> `sha256:abcdef123456` (enough to tell images apart).
fn image_digest(image: Option<&str>) -> String {
    match image {
        Some(i) => match i.rsplit_once('@') {
            Some((_, digest)) => short(digest, 19).to_string(),
            None => i.rsplit('/').next().unwrap_or(i).to_string(),
        },
        None => "-".into(),
    }
}

pub async fn run(session: &Session<'_>, args: &HistoryArgs) -> anyhow::Result<ExitStatus> {
    let config = session.config()?;
    if config.target.kind == crate::config::TargetKind::Docker {
        return super::rollback_docker::history(session, &config).await;
    }
    let aws = session.aws(&config).await?;
    let ecs = aws.ecs();
    let project = config.project.name.as_str();
    let serving = service::describe(&ecs, project, project)
        .await?
        .and_then(|s| s.task_definition().map(str::to_string));
    let limit = (!args.all).then_some(args.limit);
    let revisions = releases::list(&ecs, project, serving.as_deref(), limit).await?;
    let report = HistoryReport {
        family: project.to_string(),
        serving,
        releases: revisions.into_iter().map(|r| r.release).collect(),
    };
    session.printer.result(&report)?;
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_show_their_digest_and_the_serving_release_is_marked() {
        let release = |revision, serving| Release {
            revision,
            task_definition: format!("arn:aws:ecs:us-east-1:1:task-definition/app:{revision}"),
            model_version: Some(revision.to_string()),
            model_path: None,
            image: Some("1.dkr.ecr.us-east-1.amazonaws.com/app@sha256:0123456789abcdef0123".into()),
            created: Some("2026-11-24T12:00:00Z".into()),
            git_commit: Some("1a2b3c4d5e6f".into()),
            ci_run: None,
            serving,
            ours: true,
        };
        let text = HistoryReport {
            family: "app".into(),
            serving: None,
            releases: vec![release(2, true), release(1, false)],
        }
        .to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[1].contains("sha256:0123456789ab") && lines[1].ends_with("<- serving"),
            "{text}"
        );
        assert!(
            lines[2].contains("1a2b3c4") && !lines[2].contains("serving"),
            "{text}"
        );
    }
}
