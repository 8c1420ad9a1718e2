//! Exit codes: what each outcome means to a CI job, decided in this one place.
//!
//! Code anywhere below `run()` marks an error with the outcome it stands for by attaching a
//! [`Classified`] context (`.classify(ExitStatus::Environment, "...")`); `main` finds the outermost
//! one with `anyhow::Error::downcast_ref` and exits with its code. An error nobody classified is a
//! failed operation (1).

use std::fmt;

/// Every way mldeploy can end, and the code a script sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    /// Done, or healthy.
    Success,
    /// The operation failed: a build step, a deployment, a smoke test, an unhealthy service.
    Failed,
    /// Bad usage or bad configuration: nothing was changed.
    Usage,
    /// The environment is not right: Docker or AWS unreachable, access denied, a named resource missing.
    Environment,
    /// Another deploy holds the lock.
    Locked,
    /// Interrupted by the user (Ctrl-C) or a termination signal.
    Interrupted,
    /// `run`: the command ended with this exit code of its own.
    Command(u8),
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failed => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Environment => 3,
            ExitStatus::Locked => 4,
            ExitStatus::Interrupted => 130,
            ExitStatus::Command(code) => code,
        }
    }
}

/// A message that also says which exit status it stands for. Attach it as context (or make it
/// the root error) so `main` can find it anywhere in the chain.
#[derive(Debug)]
pub struct Classified {
    pub status: ExitStatus,
    pub message: String,
}

impl fmt::Display for Classified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Classified {}

/// What to tell the user if the run is interrupted now: what was in flight and how to go on.
static INTERRUPT_NOTE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Sets (or, with None, clears) what an interrupt should say.
pub fn note_for_interrupt(note: Option<String>) {
    if let Ok(mut slot) = INTERRUPT_NOTE.lock() {
        *slot = note;
    }
}

/// What an interrupt should say, if anything is in flight.
pub fn interrupt_note() -> Option<String> {
    INTERRUPT_NOTE.lock().ok().and_then(|slot| slot.clone())
}

/// A new root error with an exit status.
pub fn error(status: ExitStatus, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Classified {
        status,
        message: message.into(),
    })
}

/// The status an error stands for: the outermost classification, else `Failed`.
pub fn status_of(err: &anyhow::Error) -> ExitStatus {
    err.downcast_ref::<Classified>()
        .map(|c| c.status)
        .unwrap_or(ExitStatus::Failed)
}

/// `.classify(status, msg)`: like anyhow's `.context(msg)`, and says which exit status it means.
pub trait Classify<T> {
    fn classify(self, status: ExitStatus, message: impl Into<String>) -> anyhow::Result<T>;
    fn classify_with<F: FnOnce() -> String>(self, status: ExitStatus, f: F) -> anyhow::Result<T>;
}

impl<T, E> Classify<T> for Result<T, E>
where
    E: Into<anyhow::Error>,
{
    fn classify(self, status: ExitStatus, message: impl Into<String>) -> anyhow::Result<T> {
        self.map_err(|e| {
            e.into().context(Classified {
                status,
                message: message.into(),
            })
        })
    }

    fn classify_with<F: FnOnce() -> String>(self, status: ExitStatus, f: F) -> anyhow::Result<T> {
        self.map_err(|e| {
            e.into().context(Classified {
                status,
                message: f(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn unclassified_errors_are_failures() {
        assert_eq!(status_of(&anyhow::anyhow!("boom")), ExitStatus::Failed);
    }

    #[test]
    fn classification_is_found_under_plain_context() {
        let err: anyhow::Result<()> = Err(error(ExitStatus::Usage, "bad key"));
        let err = err.context("loading mldeploy.toml").unwrap_err();
        assert_eq!(status_of(&err), ExitStatus::Usage);
        assert_eq!(format!("{err:#}"), "loading mldeploy.toml: bad key");
    }

    #[test]
    fn the_outermost_classification_wins() {
        let inner: anyhow::Result<()> = Err(error(ExitStatus::Failed, "inner"));
        let err = inner
            .classify(ExitStatus::Environment, "Docker is unreachable")
            .unwrap_err();
        assert_eq!(status_of(&err), ExitStatus::Environment);
        assert_eq!(ExitStatus::Environment.code(), 3);
        assert_eq!(ExitStatus::Interrupted.code(), 130);
    }
}
