//! `run`: a command run once as a task (or container) of a service's release, and how it ended.

use std::fmt;

use serde::Serialize;

use crate::config::TargetKind;

/// One line the command wrote, as `--output json` prints it while the command runs.
#[derive(Debug, Serialize)]
pub struct RunLine<'a> {
    pub line: &'a str,
}

impl fmt::Display for RunLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.line)
    }
}

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub target: TargetKind,
    /// The service whose release ran it: the project's name (the model API) or a worker's.
    pub service: String,
    /// The release it ran as: the task definition revision (ECS) or the image (Docker).
    pub release: String,
    /// The ECS task id or the container's name.
    pub task: String,
    pub exit_code: i32,
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "The command exited with code {} (task {} of {}, {})",
            self.exit_code, self.task, self.service, self.release
        )
    }
}
