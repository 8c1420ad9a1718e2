//! The documents of the roles mldeploy makes: who may assume each (trust) and what each may do
//! (pull and log, read the model prefix, shift the load balancer's traffic).

use serde_json::{json, Value};

use crate::config::SecretResource;

pub(super) fn trust_policy(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// What ECS does to the load balancer in a blue/green, canary or linear deployment: the ALB
/// statements of AmazonECSInfrastructureRolePolicyForLoadBalancers (same Sids and actions:
/// https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonECSInfrastructureRolePolicyForLoadBalancers.html),
/// on the project's load balancer, its two target groups and its rules instead of every one.
pub fn infrastructure_policy(region: &str, project: &str, alternate_group: &str) -> Value {
    let elb = |resource: String| {
        crate::aws::partition::arn(region, "elasticloadbalancing", region, "*", &resource)
    };
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ELBReadOperations",
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:DescribeListeners",
                    "elasticloadbalancing:DescribeRules",
                    "elasticloadbalancing:DescribeTargetGroups",
                    "elasticloadbalancing:DescribeTargetHealth"
                ],
                "Resource": "*"
            },
            {
                "Sid": "TargetGroupOperations",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
                "Resource": [elb(format!("targetgroup/{project}/*")), elb(format!("targetgroup/{alternate_group}/*"))]
            },
            {
                "Sid": "ALBModifyListeners",
                "Effect": "Allow",
                "Action": "elasticloadbalancing:ModifyListener",
                "Resource": [elb(format!("listener/app/{project}/*/*"))]
            },
            {
                "Sid": "ALBModifyRules",
                "Effect": "Allow",
                "Action": "elasticloadbalancing:ModifyRule",
                "Resource": [elb(format!("listener-rule/app/{project}/*/*/*"))]
            }
        ]
    })
}

/// Pull the project's image from ECR and write to its log group, in this region; and read exactly
/// the secrets and parameters `[service.secrets]` names, when it names any.
pub fn execution_policy(
    region: &str,
    project: &str,
    secrets: &[SecretResource],
    secret_keys: &[String],
    pulls: &[String],
) -> Value {
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
                "Resource": std::iter::once(crate::aws::partition::arn(region, "ecr", region, "*", &format!("repository/{project}"))).chain(pulls.iter().cloned()).collect::<Vec<_>>()
            },
            {
                "Sid": "WriteLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [crate::aws::partition::arn(region, "logs", region, "*", &format!("log-group:/ecs/{project}:*"))]
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
    if !secret_keys.is_empty() {
        // A secret or SecureString parameter under a customer managed key is decrypted with the
        // execution role: "kms:Decrypt" on that key
        // (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html).
        let mut keys = secret_keys.to_vec();
        keys.sort();
        keys.dedup();
        extra.push(json!({
            "Sid": "DecryptSecrets",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": keys
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
pub fn model_read_policy(region: &str, bucket: &str, prefix: &str) -> Value {
    let s3 = |resource: String| crate::aws::partition::arn(region, "s3", "", "", &resource);
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadModelVersions",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [s3(format!("{bucket}/{prefix}*"))]
            },
            {
                "Sid": "ListModelVersions",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [s3(bucket.to_string())],
                "Condition": {"StringLike": {"s3:prefix": [format!("{prefix}*")]}}
            }
        ]
    })
}
