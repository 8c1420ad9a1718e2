//! `logs`' report: the service's lines, oldest first, each with the task or container that
//! wrote it.

use std::fmt;

use serde::Serialize;

/// One line of the service's output.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// When the container wrote it, RFC 3339.
    pub time: String,
    /// The id of the task that wrote it.
    pub task: String,
    /// The service that wrote it, in a project of several (the model API's name, or a
    /// worker's); absent in a project of one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
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
        match &self.service {
            Some(service) => write!(f, "{} {service} [{short}] {}", self.time, self.message),
            None => write!(f, "{} [{short}] {}", self.time, self.message),
        }
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
