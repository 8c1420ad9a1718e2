//! The least-privilege IAM policy for the person or CI role that runs mldeploy on ECS: every AWS
//! action mldeploy calls (a unit test holds this table to the calls in the code, and an
//! integration test to the calls a whole deploy cycle makes), the registry actions the Docker
//! engine's push and pull need, and the tag actions AWS checks when a resource is created with
//! tags. Each is scoped to the project's own resources where the action allows a resource.

use serde::Serialize;
use serde_json::{json, Value};

mod grants;
use grants::GRANTS;

/// What the policy is written for.
#[derive(Debug, Clone)]
pub struct Scope {
    pub region: String,
    /// The AWS account id, or `*`.
    pub account: String,
    pub project: String,
    /// The model bucket and the model versions' common key prefix (`model.path` up to
    /// `{version}`); None for a project without `[model]`.
    pub model: Option<(String, String)>,
    pub lock_bucket: String,
    /// `service.domain`: its certificates are looked for, and one requested with a zone.
    pub domain: Option<String>,
    /// `service.hosted_zone_id`: the zone whose records mldeploy keeps.
    pub hosted_zone: Option<String>,
    /// The stacks of the file's other environments, which `promote --to` this one reads: what
    /// serves there, and its image.
    pub promote_from: Vec<String>,
    /// `service.secrets`' Secrets Manager secrets and SSM parameters (ARNs), which `up` checks
    /// exist before anything changes.
    pub secrets: Vec<String>,
}

/// One statement: its id, what it allows, and on what. A statement whose resources a project
/// has none of (no domain, no hosted zone) is left out of its policy.
struct Grant {
    sid: &'static str,
    actions: &'static [&'static str],
    resources: fn(&Scope) -> Vec<String>,
    condition: Option<fn(&Scope) -> Value>,
}

fn anything(_: &Scope) -> Vec<String> {
    vec!["*".into()]
}

fn arn(s: &Scope, service: &str, rest: &str) -> String {
    format!("arn:aws:{service}:{}:{}:{rest}", s.region, s.account)
}

/// The grants are written in the `aws` partition; the policy names the region's
/// (`aws-cn`, `aws-us-gov`, ...: see [`crate::aws::partition`]).
fn in_partition(s: &Scope, arn: String) -> String {
    match arn.strip_prefix("arn:aws:") {
        Some(rest) => format!("arn:{}:{rest}", crate::aws::partition::of(&s.region)),
        None => arn,
    }
}

/// Actions AWS checks that mldeploy never calls by name: the Docker engine's push and pull
/// through the registry, and tagging a resource as it is created.
pub const NOT_CALLED: &[&str] = &[
    "acm:AddTagsToCertificate",
    "cloudwatch:DeleteAlarms",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:PutMetricAlarm",
    "ec2:CreateTags",
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:GetDownloadUrlForLayer",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:TagResource",
    "ecr:UploadLayerPart",
    "ecs:TagResource",
    "elasticloadbalancing:AddTags",
    "iam:CreateServiceLinkedRole",
    "iam:PassRole",
    "iam:TagRole",
    "logs:TagResource",
];

/// The IAM action that authorizes an API call: most are named alike; S3's HEAD and list calls
/// are not.
pub fn action_of(call: &str) -> &str {
    match call {
        "s3:HeadObject" => "s3:GetObject",
        "s3:HeadBucket" | "s3:ListObjectsV2" => "s3:ListBucket",
        other => other,
    }
}

/// Every action the policy allows.
pub fn actions() -> std::collections::BTreeSet<&'static str> {
    GRANTS
        .iter()
        .flat_map(|g| g.actions.iter().copied())
        .collect()
}

/// The policy document, as IAM takes it.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct PolicyDocument(Value);

impl std::fmt::Display for PolicyDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_string_pretty(&self.0).map_err(|_| std::fmt::Error)?;
        write!(f, "{text}")
    }
}

pub fn document(scope: &Scope) -> PolicyDocument {
    let statements: Vec<Value> = GRANTS
        .iter()
        .filter(|g| !(g.resources)(scope).is_empty())
        .map(|g| {
            let mut statement = json!({
                "Sid": g.sid,
                "Effect": "Allow",
                "Action": g.actions,
                "Resource": (g.resources)(scope)
                    .into_iter()
                    .map(|arn| in_partition(scope, arn))
                    .collect::<Vec<_>>(),
            });
            if let Some(condition) = g.condition {
                statement["Condition"] = condition(scope);
            }
            statement
        })
        .collect();
    PolicyDocument(json!({"Version": "2012-10-17", "Statement": statements}))
}

#[cfg(test)]
mod tests;
