//! The two IAM roles, each with one inline policy scoped to this project. `<name>-execution` lets
//! ECS pull the project's image, write to its log group and read the secrets `[service.secrets]`
//! names, those only (narrower than AWS's managed AmazonECSTaskExecutionRolePolicy, which allows
//! every repository and log group). `<name>-task`
//! is what the container runs as: it reads objects under the model prefix of the model bucket,
//! and nothing else.

use aws_sdk_iam::types::Role;
use aws_sdk_iam::Client;
use serde_json::{json, Value};

use super::Converge;
use crate::aws::call_error;
use crate::aws::tags;
use crate::config::SecretResource;
use crate::exit::{self, ExitStatus};
use crate::targets::{Action, Change};

pub const EXECUTION_POLICY_NAME: &str = "mldeploy-pull-and-log";
pub const MODEL_POLICY_NAME: &str = "mldeploy-model-read";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    pub execution_arn: String,
    pub task_arn: String,
}

pub fn execution_role_name(project: &str) -> String {
    format!("{project}-execution")
}

pub fn task_role_name(project: &str) -> String {
    format!("{project}-task")
}

fn trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// Pull the project's image from ECR and write to its log group, in this region; and read exactly
/// the secrets and parameters `[service.secrets]` names, when it names any.
pub fn execution_policy(region: &str, project: &str, secrets: &[SecretResource]) -> Value {
    let mut policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "RegistryLogin",
                "Effect": "Allow",
                "Action": ["ecr:GetAuthorizationToken"],
                "Resource": ["*"]
            },
            {
                "Sid": "PullImage",
                "Effect": "Allow",
                "Action": ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
                "Resource": [format!("arn:aws:ecr:{region}:*:repository/{project}")]
            },
            {
                "Sid": "WriteLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [format!("arn:aws:logs:{region}:*:log-group:/ecs/{project}:*")]
            }
        ]
    });
    let (mut secret_arns, mut parameter_arns) = (Vec::new(), Vec::new());
    for s in secrets {
        match s {
            SecretResource::Secret(a) => secret_arns.push(a.clone()),
            SecretResource::Parameter(a) => parameter_arns.push(a.clone()),
        }
    }
    for list in [&mut secret_arns, &mut parameter_arns] {
        list.sort();
        list.dedup();
    }
    let mut extra = Vec::new();
    if !secret_arns.is_empty() {
        // A secret's ARN ends in six random characters; `-??????` lets the policy name it before
        // they are known, as AWS advises.
        let resources: Vec<String> = secret_arns
            .iter()
            .map(|a| {
                if has_random_suffix(a) {
                    a.clone()
                } else {
                    format!("{a}-??????")
                }
            })
            .collect();
        extra.push(json!({
            "Sid": "ReadSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": resources
        }));
    }
    if !parameter_arns.is_empty() {
        extra.push(json!({
            "Sid": "ReadParameters",
            "Effect": "Allow",
            "Action": ["ssm:GetParameters"],
            "Resource": parameter_arns
        }));
    }
    if let Some(statements) = policy["Statement"].as_array_mut() {
        statements.extend(extra);
    }
    policy
}

/// Whether a secret ARN already ends in Secrets Manager's `-` and six random characters.
fn has_random_suffix(arn: &str) -> bool {
    let name = arn.rsplit(':').next().unwrap_or_default();
    match name.rsplit_once('-') {
        Some((_, tail)) => tail.len() == 6 && tail.chars().all(|c| c.is_ascii_alphanumeric()),
        None => false,
    }
}

/// Read access to `s3://<bucket>/<prefix>*` (every version of the model, so a rollback needs no
/// role change) and the listing of that prefix only.
pub fn model_read_policy(bucket: &str, prefix: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadModelVersions",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [format!("arn:aws:s3:::{bucket}/{prefix}*")]
            },
            {
                "Sid": "ListModelVersions",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [format!("arn:aws:s3:::{bucket}")],
                "Condition": {"StringLike": {"s3:prefix": [format!("{prefix}*")]}}
            }
        ]
    })
}

/// IAM hands policy documents back URL-encoded.
fn decode_policy(text: &str) -> Option<Value> {
    let decoded = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()?;
    serde_json::from_str(&decoded).ok()
}

pub async fn ensure(
    iam: &Client,
    cv: &Converge,
    region: &str,
    bucket: &str,
    model_prefix: &str,
    secrets: &[SecretResource],
    changes: &mut Vec<Change>,
) -> anyhow::Result<Roles> {
    let project = cv.project.as_str();
    let execution_name = execution_role_name(project);
    let (execution_arn, mut notes) = ensure_role(
        iam,
        cv,
        &execution_name,
        "mldeploy: ECS pulls the image and writes logs",
    )
    .await?;
    let policy = execution_policy(region, project, secrets);
    if ensure_inline_policy(
        iam,
        cv,
        &execution_name,
        EXECUTION_POLICY_NAME,
        &policy,
        notes.created,
    )
    .await?
    {
        let mut what = format!("pull {project} from ECR, write /ecs/{project}");
        if !secrets.is_empty() {
            what.push_str(&format!(", read {} secret(s)", secrets.len()));
        }
        notes.add(what);
    }
    changes.push(notes.into_change(&execution_name));

    let task_name = task_role_name(project);
    let (task_arn, mut notes) =
        ensure_role(iam, cv, &task_name, "mldeploy: the service reads its model").await?;
    let policy = model_read_policy(bucket, model_prefix);
    if ensure_inline_policy(
        iam,
        cv,
        &task_name,
        MODEL_POLICY_NAME,
        &policy,
        notes.created,
    )
    .await?
    {
        notes.add(format!("read s3://{bucket}/{model_prefix}*"));
    }
    changes.push(notes.into_change(&task_name));
    Ok(Roles {
        execution_arn,
        task_arn,
    })
}

/// Puts the inline policy when it is missing or differs; says whether it did (or would).
async fn ensure_inline_policy(
    iam: &Client,
    cv: &Converge,
    role: &str,
    name: &str,
    wanted: &Value,
    new_role: bool,
) -> anyhow::Result<bool> {
    let current = if new_role {
        None
    } else {
        match iam
            .get_role_policy()
            .role_name(role)
            .policy_name(name)
            .send()
            .await
        {
            Ok(out) => decode_policy(&out.policy_document),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                None
            }
            Err(e) => return Err(call_error("iam:GetRolePolicy", e)),
        }
    };
    if current.as_ref() == Some(wanted) {
        return Ok(false);
    }
    if !cv.dry_run {
        iam.put_role_policy()
            .role_name(role)
            .policy_name(name)
            .policy_document(wanted.to_string())
            .send()
            .await
            .map_err(|e| call_error("iam:PutRolePolicy", e))?;
    }
    Ok(true)
}

/// What happened to one role, gathered into one Change.
struct RoleNotes {
    created: bool,
    what: Vec<String>,
}

impl RoleNotes {
    fn add(&mut self, what: impl Into<String>) {
        self.what.push(what.into());
    }

    fn into_change(self, name: &str) -> Change {
        let action = match (self.created, self.what.is_empty()) {
            (true, _) => Action::Create,
            (false, true) => Action::Keep,
            (false, false) => Action::Update,
        };
        let change = Change::new("IAM role", name, action);
        if self.what.is_empty() {
            change
        } else {
            change.because(self.what.join(", "))
        }
    }
}

async fn ensure_role(
    iam: &Client,
    cv: &Converge,
    name: &str,
    description: &str,
) -> anyhow::Result<(String, RoleNotes)> {
    let trust = trust_policy();
    match find_role(iam, name).await? {
        Some(role) => {
            if !tags::is_ours(role.tags(), &cv.project) {
                return Err(exit::error(
                    ExitStatus::Environment,
                    format!(
                        "{}: mldeploy will not take over a role it did not create",
                        tags::not_ours(&format!("IAM role {name}"), &cv.project)
                    ),
                ));
            }
            let mut notes = RoleNotes {
                created: false,
                what: Vec::new(),
            };
            if role
                .assume_role_policy_document()
                .and_then(decode_policy)
                .as_ref()
                != Some(&trust)
            {
                if !cv.dry_run {
                    iam.update_assume_role_policy()
                        .role_name(name)
                        .policy_document(trust.to_string())
                        .send()
                        .await
                        .map_err(|e| call_error("iam:UpdateAssumeRolePolicy", e))?;
                }
                notes.add("trust ecs-tasks.amazonaws.com only");
            }
            Ok((role.arn, notes))
        }
        None => {
            let arn = if cv.dry_run {
                super::network::TO_BE_CREATED.to_string()
            } else {
                iam.create_role()
                    .role_name(name)
                    .description(description)
                    .assume_role_policy_document(trust.to_string())
                    .tags(tags::iam(&cv.project)?)
                    .send()
                    .await
                    .map_err(|e| call_error("iam:CreateRole", e))?
                    .role
                    .map(|r| r.arn)
                    .unwrap_or_default()
            };
            Ok((
                arn,
                RoleNotes {
                    created: true,
                    what: Vec::new(),
                },
            ))
        }
    }
}

/// The IAM role named `name`, when it exists.
pub async fn find_role(iam: &Client, name: &str) -> anyhow::Result<Option<Role>> {
    match iam.get_role().role_name(name).send().await {
        Ok(out) => Ok(out.role),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(call_error("iam:GetRole", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_policy_names_only_the_model_prefix_of_the_model_bucket() {
        let p = model_read_policy("my-models", "mlflow/models/housing/");
        let text = p.to_string();
        assert!(
            !text.contains("s3:*") && !text.contains("arn:aws:s3:::*"),
            "{text}"
        );
        assert_eq!(
            p["Statement"][0]["Resource"][0],
            "arn:aws:s3:::my-models/mlflow/models/housing/*"
        );
        assert_eq!(
            p["Statement"][1]["Condition"]["StringLike"]["s3:prefix"][0],
            "mlflow/models/housing/*"
        );
    }

    #[test]
    fn the_execution_policy_names_only_this_projects_repository_and_log_group() {
        let p = execution_policy("eu-west-1", "housing", &[]);
        assert_eq!(
            p["Statement"].as_array().unwrap().len(),
            3,
            "no secrets, no secret statement"
        );
        assert_eq!(
            p["Statement"][1]["Resource"][0],
            "arn:aws:ecr:eu-west-1:*:repository/housing"
        );
        assert_eq!(
            p["Statement"][2]["Resource"][0],
            "arn:aws:logs:eu-west-1:*:log-group:/ecs/housing:*"
        );
    }

    #[test]
    fn the_execution_policy_reads_exactly_the_named_secrets_and_parameters() {
        let p = execution_policy(
            "us-east-1",
            "housing",
            &[
                SecretResource::Secret(
                    "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf".into(),
                ),
                SecretResource::Secret("arn:aws:secretsmanager:us-east-1:1:secret:token".into()),
                SecretResource::Parameter("arn:aws:ssm:us-east-1:1:parameter/prod/key".into()),
            ],
        );
        assert_eq!(
            p["Statement"][3]["Action"],
            json!(["secretsmanager:GetSecretValue"])
        );
        assert_eq!(
            p["Statement"][3]["Resource"],
            json!([
                "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf",
                "arn:aws:secretsmanager:us-east-1:1:secret:token-??????"
            ])
        );
        assert_eq!(p["Statement"][4]["Action"], json!(["ssm:GetParameters"]));
        assert_eq!(
            p["Statement"][4]["Resource"],
            json!(["arn:aws:ssm:us-east-1:1:parameter/prod/key"])
        );
    }

    #[test]
    fn policy_documents_are_decoded_from_iams_url_encoding() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%7D";
        assert_eq!(
            decode_policy(encoded),
            Some(json!({"Version": "2012-10-17"}))
        );
    }
}
