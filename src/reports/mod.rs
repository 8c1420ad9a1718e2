//! What each command reports: one type per command, the same JSON shape on every target (a
//! `target` field says which, target-only fields sit beside the shared ones), and `Display` for
//! people. The Printer prints them; nothing else writes a result.

pub mod destroy;
pub mod history;
pub mod logs;
pub mod rollback;
pub mod run;
pub mod status;
pub mod up;

pub use destroy::DestroyReport;
pub use history::HistoryReport;
pub use logs::{LogLine, LogsReport};
pub use rollback::RollbackReport;
pub use run::{RunLine, RunReport};
pub use status::StatusReport;
pub use up::UpReport;

/// `arn:...:task-definition/housing:7` -> `housing:7`.
pub fn short_task_definition(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}
