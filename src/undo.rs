//! What an interrupted command leaves behind, undone: while `up`, `rollback` or `promote`
//! replaces a Docker release, each step that changes the host (a container started, the old one
//! stopped, the proxy's routes changed) records how to take it back, and `run` records how to
//! stop the one-off task it started. When Ctrl-C or SIGTERM ends the command (main drops the
//! running future, so no error path runs), `undo_pending` takes the steps back newest first: the
//! half-made release is removed and the previous one serves; the task stops. Work that ends by
//! itself, well or not, forgets its steps (`Undo::finish`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

type StepFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
type Step = Box<dyn FnOnce() -> StepFuture + Send>;

/// One replacement's steps, each with what undoing it says.
type Steps = Vec<(String, Step)>;

/// The steps of the replacements under way, by id (one at a time in practice).
static PENDING: Mutex<Vec<(u64, Steps)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// How long undoing one step may take: an engine or API that does not answer must not hold the exit.
const STEP_WAIT: Duration = Duration::from_secs(30);

/// The undo record of one replacement. Dropping it (as an interrupt does) keeps its steps for
/// `undo_pending`; `finish` forgets them.
pub struct Undo {
    id: u64,
}

impl Undo {
    pub fn begin() -> Undo {
        let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut pending) = PENDING.lock() {
            pending.push((id, Vec::new()));
        }
        Undo { id }
    }

    /// Records how to take back a step just made; `what` is said when it is undone.
    pub fn push<F, Fut>(&self, what: impl Into<String>, step: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let step: Step = Box::new(move || Box::pin(step()));
        if let Ok(mut pending) = PENDING.lock() {
            if let Some((_, steps)) = pending.iter_mut().find(|(id, _)| *id == self.id) {
                steps.push((what.into(), step));
            }
        }
    }

    /// The replacement ended by itself (its own error paths put things back): nothing to undo.
    pub fn finish(self) {
        if let Ok(mut pending) = PENDING.lock() {
            pending.retain(|(id, _)| *id != self.id);
        }
    }
}

/// Takes back every recorded step, newest first; returns a line per step saying what was done
/// or why it could not be.
pub async fn undo_pending() -> Vec<String> {
    let pending = PENDING
        .lock()
        .map(|mut p| std::mem::take(&mut *p))
        .unwrap_or_default();
    let mut said = Vec::new();
    for (_, steps) in pending.into_iter().rev() {
        for (what, step) in steps.into_iter().rev() {
            said.push(match tokio::time::timeout(STEP_WAIT, step()).await {
                Ok(Ok(())) => format!("interrupted: {what}"),
                Ok(Err(e)) => format!("interrupted: could not {what}: {e:#}"),
                Err(_) => format!(
                    "interrupted: could not {what}: no answer within {} s",
                    STEP_WAIT.as_secs()
                ),
            });
        }
    }
    said
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// One test for the whole registry: it is process-wide, and tests run in parallel.
    #[tokio::test]
    async fn steps_are_undone_newest_first_and_finished_ones_are_forgotten() {
        let order = Arc::new(Mutex::new(Vec::new()));
        let interrupted = Undo::begin();
        for n in 1..=3 {
            let order = order.clone();
            interrupted.push(format!("step {n}"), move || async move {
                order.lock().unwrap().push(n);
                Ok(())
            });
        }
        let finished = Undo::begin();
        finished.push("never", || async {
            anyhow::bail!("a finished replacement's step ran")
        });
        finished.finish();
        let said = undo_pending().await;
        assert_eq!(*order.lock().unwrap(), vec![3, 2, 1]);
        assert_eq!(
            said,
            vec![
                "interrupted: step 3",
                "interrupted: step 2",
                "interrupted: step 1"
            ]
        );
        assert!(undo_pending().await.is_empty(), "steps run once");
    }
}
