//! A plan's steps: what converging one resource did, or would do in a dry run, as a [`Change`]
//! (create, update and why, or keep).

use serde::Serialize;

/// What converging one resource did, or would do in a dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The kind of resource, as AWS names it ("VPC", "subnet", "security group").
    pub resource: &'static str,
    /// Its name or id.
    pub name: String,
    pub action: Action,
    /// Why, for an update; what was found, for a keep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Keep,
    /// Only ever something mldeploy made by mistake, like the empty twin a retried call left.
    Delete,
}

impl Change {
    pub fn new(resource: &'static str, name: impl Into<String>, action: Action) -> Change {
        Change {
            resource,
            name: name.into(),
            action,
            detail: None,
        }
    }

    pub fn because(mut self, detail: impl Into<String>) -> Change {
        self.detail = Some(detail.into());
        self
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = match self.action {
            Action::Create => "create",
            Action::Update => "update",
            Action::Keep => "keep  ",
            Action::Delete => "delete",
        };
        write!(f, "{verb} {} {}", self.resource, self.name)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}
