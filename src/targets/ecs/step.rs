//! A resource's part of a plan, as a value. Each resource module finds what exists, decides with
//! a pure function what the resource needs, and returns a [`Planned`]: the changes a plan reports
//! (Keep, Create or Update, with the reason), what later steps may know of the resource before
//! any call, and the calls that carry the step out. [`Converge::carry_out`] is the one place a
//! dry run stops: it reports the changes and, for a real `up`, applies the step.

use std::future::Future;

use super::Converge;
use crate::targets::Change;

/// A resource's id or ARN in a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    /// The resource exists: AWS's id or ARN for it.
    Known(String),
    /// The plan creates it: its id is AWS's answer to the create call, known once that has run.
    AfterApply,
}

impl Id {
    /// The id, when the resource exists.
    pub fn known(&self) -> Option<&str> {
        match self {
            Id::Known(id) => Some(id),
            Id::AfterApply => None,
        }
    }

    /// The id, for a call that needs it. Steps are applied in order, so what a step depends on
    /// was created before it: an id still unknown here is mldeploy's bug, not the user's.
    pub fn applied(&self, what: &str) -> anyhow::Result<&str> {
        self.known().ok_or_else(|| {
            anyhow::anyhow!(
                "internal error: the {what} was to be created before the step that needs it; please report this"
            )
        })
    }
}

impl std::fmt::Display for Id {
    /// What a plan prints: the id, or "(new)" for one the apply creates.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Known(id) => f.write_str(id),
            Id::AfterApply => f.write_str("(new)"),
        }
    }
}

/// One resource, decided: what the plan reports, what later steps know of it, and what to call.
#[derive(Debug)]
pub struct Planned<S, T = Id> {
    /// What the plan says about the resource, in order (a VPC, then its DNS attributes).
    pub changes: Vec<Change>,
    /// What later steps know of the resource before any call: its id when it exists,
    /// [`Id::AfterApply`] when the step creates it.
    pub found: T,
    /// The calls that carry the plan out; None when nothing needs to change.
    pub step: Option<S>,
}

impl<S, T> Planned<S, T> {
    /// Nothing to change.
    pub fn keep(change: Change, found: T) -> Planned<S, T> {
        Planned {
            changes: vec![change],
            found,
            step: None,
        }
    }

    /// One change, carried out by `step`.
    pub fn change(change: Change, found: T, step: S) -> Planned<S, T> {
        Planned {
            changes: vec![change],
            found,
            step: Some(step),
        }
    }
}

impl Converge {
    /// Reports the planned changes and, unless this is a dry run, applies the step. Returns what
    /// later steps use: the apply's answer when it gives one (a created resource's id), or what
    /// the plan found.
    pub async fn carry_out<S, T, F, Fut>(
        &self,
        planned: Planned<S, T>,
        changes: &mut Vec<Change>,
        apply: F,
    ) -> anyhow::Result<T>
    where
        F: FnOnce(S) -> Fut,
        Fut: Future<Output = anyhow::Result<Option<T>>>,
    {
        changes.extend(planned.changes);
        match planned.step {
            Some(step) if !self.dry_run => Ok(apply(step).await?.unwrap_or(planned.found)),
            _ => Ok(planned.found),
        }
    }
}

impl Converge {
    /// An id as a call or a spec takes it. A real `up` has created what it names before anyone
    /// asks; a plan shows "(new)" for what it would create.
    pub fn text(&self, id: &Id, what: &str) -> anyhow::Result<String> {
        if self.dry_run {
            Ok(id.to_string())
        } else {
            id.applied(what).map(str::to_string)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::Action;

    fn cv(dry_run: bool) -> Converge {
        Converge {
            project: "p".into(),
            dry_run,
        }
    }

    fn create() -> Planned<&'static str> {
        Planned::change(
            Change::new("VPC", "p", Action::Create),
            Id::AfterApply,
            "create",
        )
    }

    #[tokio::test]
    async fn a_dry_run_reports_the_step_and_never_applies_it() {
        let mut changes = Vec::new();
        let id = cv(true)
            .carry_out(create(), &mut changes, |_| async {
                Err(anyhow::anyhow!("a dry run applied a step"))
            })
            .await
            .unwrap();
        assert_eq!(id, Id::AfterApply);
        assert_eq!(id.to_string(), "(new)");
        assert!(id.applied("VPC").is_err());
        assert_eq!(changes, [Change::new("VPC", "p", Action::Create)]);
    }

    #[tokio::test]
    async fn an_apply_returns_the_created_id_and_a_keep_calls_nothing() {
        let mut changes = Vec::new();
        let id = cv(false)
            .carry_out(create(), &mut changes, |step| async move {
                assert_eq!(step, "create");
                Ok(Some(Id::Known("vpc-1".into())))
            })
            .await
            .unwrap();
        assert_eq!(id.applied("VPC").unwrap(), "vpc-1");
        let kept: Planned<&str> = Planned::keep(
            Change::new("VPC", "p", Action::Keep),
            Id::Known("vpc-2".into()),
        );
        let id = cv(false)
            .carry_out(kept, &mut changes, |_| async {
                Err(anyhow::anyhow!("a keep was applied"))
            })
            .await
            .unwrap();
        assert_eq!(id.known(), Some("vpc-2"));
        assert_eq!(changes.len(), 2);
    }
}
