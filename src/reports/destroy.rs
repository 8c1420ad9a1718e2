//! `destroy`'s report: what was deleted (or would be), what was left and why.

use std::fmt;

use serde::Serialize;

use crate::aws::tags::PROJECT_TAG;
use crate::targets::inventory::Found;

#[derive(Debug, Serialize)]
pub struct DestroyReport {
    pub dry_run: bool,
    pub project: String,
    /// Deleted (or, in a dry run, to be deleted), in order.
    pub deleted: Vec<Found>,
    /// Found under the project's names but without its tag: never deleted.
    pub not_ours: Vec<Found>,
    /// Kept on request (`--keep-logs`, `--keep-images`).
    pub kept: Vec<Found>,
    /// Deletes that failed, with the reason; the next run tries them again.
    pub failed: Vec<Failure>,
    /// The model artifacts, which mldeploy never deletes (None without `[model]`).
    pub models_kept: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Failure {
    pub resource: Found,
    pub error: String,
}

impl fmt::Display for DestroyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.deleted.is_empty() && self.failed.is_empty() {
            write!(f, "{}: nothing to destroy", self.project)?;
        } else if self.dry_run {
            write!(
                f,
                "{}: would delete {} resource(s); nothing was deleted",
                self.project,
                self.deleted.len()
            )?;
            for r in &self.deleted {
                write!(f, "\n  delete {r}")?;
            }
        } else {
            write!(
                f,
                "{}: deleted {} resource(s)",
                self.project,
                self.deleted.len()
            )?;
        }
        for r in &self.not_ours {
            write!(
                f,
                "\n  left {r}: it lacks the {PROJECT_TAG}={} tag, so mldeploy did not create it",
                self.project
            )?;
        }
        for r in &self.kept {
            write!(f, "\n  kept {r} (as asked)")?;
        }
        for failure in &self.failed {
            write!(f, "\n  NOT deleted {}: {}", failure.resource, failure.error)?;
        }
        if let Some(models) = &self.models_kept {
            write!(
                f,
                "\n  kept {models} (mldeploy never deletes model artifacts)"
            )?;
        }
        Ok(())
    }
}
