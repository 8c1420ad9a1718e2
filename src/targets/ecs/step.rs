//! A resource's part of a plan, as a value. Each resource module finds what exists, decides with
//! a pure function what the resource needs, and returns a [`Planned`]: the changes a plan reports
//! (Keep, Create or Update, with the reason), what later steps may know of the resource before
//! any call, and the calls that carry the step out. [`Converge::carry_out`] is the one place a
//! dry run stops: it reports the changes and, for a real `up`, applies the step.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use super::Converge;
use crate::targets::Change;

/// A resource's id or ARN in a plan.
#[derive(Debug, Clone)]
pub enum Id {
    /// The resource exists: AWS's id or ARN for it.
    Known(String),
    /// The plan creates it: its id is AWS's answer to the create call, set here by the step that
    /// makes the call, so a later step planned against it reads it when it runs.
    AfterApply(Later),
}

/// The id of a resource the plan creates, shared by every step planned against it and set once,
/// by the step that creates it.
#[derive(Debug, Clone, Default)]
pub struct Later(Arc<OnceLock<String>>);

impl Id {
    /// A resource the plan creates, its id not known yet.
    pub fn after_apply() -> Id {
        Id::AfterApply(Later::default())
    }

    /// The id, when the resource exists (or the step that creates it has run).
    pub fn known(&self) -> Option<&str> {
        match self {
            Id::Known(id) => Some(id),
            Id::AfterApply(later) => later.0.get().map(String::as_str),
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

    /// Whether the plan creates the resource (its id is set only when that step runs).
    pub fn is_new(&self) -> bool {
        matches!(self, Id::AfterApply(_))
    }
}

/// What a step's answer tells the plan: the ids of what it created, set where the plan has
/// [`Id::AfterApply`] for them.
pub trait Resolve {
    fn resolve(&self, answer: &Self);
}

impl Resolve for Id {
    fn resolve(&self, answer: &Id) {
        if let (Id::AfterApply(later), Some(id)) = (self, answer.known()) {
            // Set once: a step runs once, and a second answer would be the same resource.
            let _ = later.0.set(id.to_string());
        }
    }
}

impl Resolve for () {
    fn resolve(&self, _: &()) {}
}

/// A value a plan knows when it decides (a rule's header token): nothing to set.
impl Resolve for Option<String> {
    fn resolve(&self, _: &Option<String>) {}
}

impl<A: Resolve, B: Resolve> Resolve for (A, B) {
    fn resolve(&self, answer: &(A, B)) {
        self.0.resolve(&answer.0);
        self.1.resolve(&answer.1);
    }
}

impl<A: Resolve, B: Resolve, C: Resolve> Resolve for (A, B, C) {
    fn resolve(&self, answer: &(A, B, C)) {
        self.0.resolve(&answer.0);
        self.1.resolve(&answer.1);
        self.2.resolve(&answer.2);
    }
}

impl PartialEq for Id {
    /// Two ids are equal when they name the same resource: the same id once known; while the
    /// plan has not created it yet, the same resource of the plan (two target groups the plan
    /// creates are two resources, not one).
    fn eq(&self, other: &Id) -> bool {
        match (self, other) {
            (Id::AfterApply(a), Id::AfterApply(b)) if a.0.get().is_none() => {
                Arc::ptr_eq(&a.0, &b.0)
            }
            _ => self.known().is_some() && self.known() == other.known(),
        }
    }
}

impl Eq for Id {}

impl std::fmt::Display for Id {
    /// What a plan prints: the id, or "(new)" for one the apply creates.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.known() {
            Some(id) => f.write_str(id),
            None => f.write_str("(new)"),
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

/// A step of a [`Plan`]: the calls of one resource, run when the plan is applied.
type Step<'a> = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>> + 'a>;

/// Steps decided and not yet carried out, in the order they run, with the changes they make.
/// Deciding reads only; [`Plan::apply`] makes the calls without deciding again, each step
/// reading the ids of what an earlier one created ([`Id::AfterApply`]) as it runs. A dry run
/// reports the changes and never applies.
#[derive(Default)]
pub struct Plan<'a> {
    pub changes: Vec<Change>,
    steps: Vec<Step<'a>>,
}

impl<'a> Plan<'a> {
    /// Adds a resource's decision: its changes now, its step to run at apply, which sets the ids
    /// of what it creates in what the plan returned (`planned.found`).
    pub fn add<S, T, F, Fut>(&mut self, planned: Planned<S, T>, apply: F) -> T
    where
        S: 'a,
        T: Resolve + Clone + 'a,
        F: FnOnce(S) -> Fut + 'a,
        Fut: Future<Output = anyhow::Result<Option<T>>> + 'a,
    {
        self.changes.extend(planned.changes);
        if let Some(step) = planned.step {
            let found = planned.found.clone();
            self.steps.push(Box::new(move || {
                Box::pin(async move {
                    if let Some(answer) = apply(step).await? {
                        found.resolve(&answer);
                    }
                    Ok(())
                })
            }));
        }
        planned.found
    }

    /// Adds a step that changes nothing by itself (a wait for what an earlier step started),
    /// run in its place among the others.
    pub fn then<F, Fut>(&mut self, run: F)
    where
        F: FnOnce() -> Fut + 'a,
        Fut: Future<Output = anyhow::Result<()>> + 'a,
    {
        self.steps.push(Box::new(move || Box::pin(run())));
    }

    /// Whether nothing needs to change.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// A dry run's end: the changes, and no step carried out.
    pub fn discard(self) -> Vec<Change> {
        self.changes
    }

    /// Runs every step in order; the first that fails stops the rest. Returns the changes.
    pub async fn apply(self) -> anyhow::Result<Vec<Change>> {
        self.apply_checking(&|| Ok(())).await
    }

    /// [`Plan::apply`], asking `between` before each step after the first: an error there (the
    /// image failed beside the stack) stops the plan between two steps, never inside one.
    pub async fn apply_checking(
        self,
        between: &dyn Fn() -> anyhow::Result<()>,
    ) -> anyhow::Result<Vec<Change>> {
        for (i, step) in self.steps.into_iter().enumerate() {
            if i > 0 {
                between()?;
            }
            step().await?;
        }
        Ok(self.changes)
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
            Id::after_apply(),
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
        assert!(id.is_new() && id.known().is_none());
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

    #[tokio::test]
    async fn a_plan_decides_first_and_its_apply_sets_each_new_id_before_the_step_that_needs_it() {
        let calls = std::cell::RefCell::new(Vec::new());
        let calls = &calls;
        let mut plan = Plan::default();
        let vpc = plan.add(create(), |_| async {
            calls.borrow_mut().push("create vpc".to_string());
            Ok(Some(Id::Known("vpc-1".into())))
        });
        let subnet = Planned::change(
            Change::new("subnet", "p-a", Action::Create),
            Id::after_apply(),
            vpc.clone(),
        );
        let subnet = plan.add(subnet, |in_vpc: Id| async move {
            let vpc = in_vpc.applied("VPC")?.to_string();
            calls.borrow_mut().push(format!("create subnet in {vpc}"));
            Ok(Some(Id::Known("subnet-1".into())))
        });
        // Decided, not carried out: nothing was called, and the ids are not known yet.
        assert!(calls.borrow().is_empty());
        assert_eq!(vpc.to_string(), "(new)");
        assert_eq!(plan.changes.len(), 2);
        let changes = plan.apply().await.unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(
            *calls.borrow(),
            ["create vpc", "create subnet in vpc-1"].map(String::from)
        );
        assert_eq!(vpc.known(), Some("vpc-1"));
        assert_eq!(subnet.known(), Some("subnet-1"));
    }

    #[tokio::test]
    async fn a_failing_step_stops_the_plan_and_a_keep_adds_no_step() {
        let mut plan = Plan::default();
        let kept: Planned<&str> = Planned::keep(
            Change::new("VPC", "p", Action::Keep),
            Id::Known("vpc-2".into()),
        );
        plan.add(kept, |_| async {
            Err(anyhow::anyhow!("a keep was applied"))
        });
        assert!(plan.is_empty());
        plan.add(create(), |_| async {
            Err(anyhow::anyhow!("ec2:CreateVpc failed"))
        });
        let after = Id::after_apply();
        let later = Planned::change(Change::new("subnet", "p-a", Action::Create), after, ());
        let never = plan.add(later, |()| async { Ok(Some(Id::Known("subnet-9".into()))) });
        let err = plan.apply().await.unwrap_err();
        assert_eq!(err.to_string(), "ec2:CreateVpc failed");
        assert_eq!(never.known(), None, "no step runs after one that failed");
    }

    #[test]
    fn two_resources_the_plan_creates_are_two_until_and_after_they_are_known() {
        let (a, b) = (Id::after_apply(), Id::after_apply());
        assert_ne!(a, b, "two target groups to create are not the same one");
        assert_eq!(a, a.clone(), "a step's id is the one the plan returned");
        a.resolve(&Id::Known("tg-1".into()));
        assert_eq!(a, Id::Known("tg-1".into()));
        assert_ne!(a, b);
    }
}
