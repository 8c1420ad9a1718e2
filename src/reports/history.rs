//! `history`'s report: the releases, newest first, and which one serves.

use std::fmt;

use serde::Serialize;

use crate::config::TargetKind;

/// One revision of the family, as a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Release {
    pub revision: i32,
    pub task_definition: String,
    pub model_version: Option<String>,
    pub model_path: Option<String>,
    pub image: Option<String>,
    /// When the revision was registered, RFC 3339.
    pub created: Option<String>,
    pub git_commit: Option<String>,
    pub ci_run: Option<String>,
    /// The environment and revision `promote` brought it from; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
    /// Whether the service runs this revision now.
    pub serving: bool,
    /// Why this revision's record is not to be trusted as it stands: registered outside
    /// mldeploy, or tags that disagree with the `MODEL_PATH` it runs (which is what is reported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Whether it carries the project's tag: registered by mldeploy, so `destroy` may
    /// deregister it.
    #[serde(skip)]
    pub ours: bool,
    /// Where in the model registry its version came from; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistryInfo>,
    /// Each worker's revision in the newest release that ran this one (`family:revision`, by
    /// worker), from mldeploy's release records; absent without workers or a record.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub workers: std::collections::BTreeMap<String, String>,
}

/// A release's version as the model registry has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct RegistryInfo {
    /// The registered model.
    pub name: String,
    /// The alias it was deployed by (`--model-alias`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployed_by: Option<String>,
    /// The aliases pointing at its version in the registry now.
    pub aliases: Vec<String>,
}

impl RegistryInfo {
    pub fn of(from: &crate::model::FromRegistry) -> RegistryInfo {
        RegistryInfo {
            name: from.name.clone(),
            deployed_by: from.alias.clone(),
            aliases: Vec::new(),
        }
    }

    /// "registry model housing, aliases champion, production (deployed by alias champion)".
    pub fn describe(&self) -> String {
        let aliases = if self.aliases.is_empty() {
            "no aliases".to_string()
        } else {
            format!("aliases {}", self.aliases.join(", "))
        };
        let by = self
            .deployed_by
            .as_deref()
            .map(|a| format!(" (deployed by alias {a})"))
            .unwrap_or_default();
        format!("registry model {}, {aliases}{by}", self.name)
    }
}

#[derive(Debug, Serialize)]
pub struct HistoryReport {
    pub target: TargetKind,
    /// The task-definition family, or the Docker project's container name stem.
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
            if let Some(registry) = &r.registry {
                write!(f, "\n        {}", registry.describe())?;
            }
            if let Some(from) = &r.promoted_from {
                write!(f, "\n        promoted from {from}")?;
            }
            if !r.workers.is_empty() {
                let each: Vec<String> = r
                    .workers
                    .iter()
                    .map(|(w, rev)| format!("{w} {rev}"))
                    .collect();
                write!(f, "\n        workers: {}", each.join(", "))?;
            }
            if let Some(warning) = &r.warning {
                write!(f, "\n        ! {warning}")?;
            }
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
            promoted_from: None,
            serving,
            ours: true,
            warning: None,
            registry: None,
            workers: Default::default(),
        };
        let text = HistoryReport {
            target: TargetKind::Ecs,
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
