//! One module per subcommand. Each is written once for every target (`targets::Target`) and
//! reads as its steps: preflight -> model check -> lock -> plan (a dry run stops here) -> apply
//! -> verify -> report. It returns the exit status of what it did.

pub mod build;
pub mod destroy;
pub mod history;
pub mod iam_policy;
pub mod init;
pub mod logs;
mod model_choice;
pub mod promote;
pub mod push;
pub mod rollback;
pub mod run;
pub mod shell;
pub mod status;
pub mod up;

pub use crate::session::Session;
