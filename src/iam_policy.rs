//! The least-privilege IAM policy for the person or CI role that runs mldeploy on ECS: every AWS
//! action mldeploy calls (a unit test holds this table to the calls in the code, and an
//! integration test to the calls a whole deploy cycle makes), the registry actions the Docker
//! engine's push and pull need, and the tag actions AWS checks when a resource is created with
//! tags. Each is scoped to the project's own resources where the action allows a resource.

use serde::Serialize;
use serde_json::{json, Value};

/// What the policy is written for.
#[derive(Debug, Clone)]
pub struct Scope {
    pub region: String,
    /// The AWS account id, or `*`.
    pub account: String,
    pub project: String,
    pub model_bucket: String,
    /// The model versions' common key prefix (`model.path` up to `{version}`).
    pub model_prefix: String,
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

/// The API calls mldeploy makes, and the actions AWS authorizes them as, grouped by what they may
/// touch. Describe and List calls that take no resource, EC2's network calls (EC2 names new
/// resources by id, not by name) and task-definition calls (ECS scopes them to no resource) are
/// allowed on `*`.
const GRANTS: &[Grant] = &[
    Grant {
        sid: "ReadWhatExists",
        actions: &[
            "ec2:DescribeAvailabilityZones",
            "ec2:DescribeInternetGateways",
            "ec2:DescribeRouteTables",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSubnets",
            "ec2:DescribeVpcAttribute",
            "ec2:DescribeVpcs",
            "ecr:GetAuthorizationToken",
            "ecs:DescribeTaskDefinition",
            "ecs:ListTaskDefinitions",
            "ecs:ListTasks",
            "ecs:ListTagsForResource",
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:DescribeLoadBalancers",
            "elasticloadbalancing:DescribeRules",
            "elasticloadbalancing:DescribeTags",
            "elasticloadbalancing:DescribeTargetGroupAttributes",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTargetHealth",
            "logs:DescribeLogGroups",
        ],
        resources: anything,
        condition: None,
    },
    Grant {
        sid: "Network",
        actions: &[
            "ec2:AssociateRouteTable",
            "ec2:AttachInternetGateway",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:CreateInternetGateway",
            "ec2:CreateRoute",
            "ec2:CreateRouteTable",
            "ec2:CreateSecurityGroup",
            "ec2:CreateSubnet",
            "ec2:CreateTags",
            "ec2:CreateVpc",
            "ec2:DeleteInternetGateway",
            "ec2:DeleteRouteTable",
            "ec2:DeleteSecurityGroup",
            "ec2:DeleteSubnet",
            "ec2:DeleteVpc",
            "ec2:DetachInternetGateway",
            "ec2:DisassociateRouteTable",
            "ec2:ModifySubnetAttribute",
            "ec2:ModifyVpcAttribute",
            "ec2:RevokeSecurityGroupIngress",
        ],
        resources: anything,
        condition: None,
    },
    // Private tasks' way out: a NAT gateway with its address, or VPC endpoints.
    Grant {
        sid: "PrivateTasksEgress",
        actions: &[
            "ec2:AllocateAddress",
            "ec2:CreateNatGateway",
            "ec2:CreateVpcEndpoint",
            "ec2:DeleteNatGateway",
            "ec2:DeleteVpcEndpoints",
            "ec2:DescribeAddresses",
            "ec2:DescribeNatGateways",
            "ec2:DescribeVpcEndpoints",
            "ec2:ReleaseAddress",
            "ec2:ReplaceRoute",
        ],
        resources: anything,
        condition: None,
    },
    Grant {
        sid: "TaskDefinitions",
        actions: &[
            "ecs:DeregisterTaskDefinition",
            "ecs:RegisterTaskDefinition",
            "ecs:TagResource",
        ],
        resources: anything,
        condition: None,
    },
    Grant {
        sid: "Repository",
        actions: &[
            "ecr:BatchCheckLayerAvailability",
            "ecr:BatchGetImage",
            "ecr:CompleteLayerUpload",
            "ecr:CreateRepository",
            "ecr:DeleteRepository",
            "ecr:DescribeImages",
            "ecr:DescribeRepositories",
            "ecr:GetDownloadUrlForLayer",
            "ecr:GetLifecyclePolicy",
            "ecr:InitiateLayerUpload",
            "ecr:ListTagsForResource",
            "ecr:PutImage",
            "ecr:PutLifecyclePolicy",
            "ecr:TagResource",
            "ecr:UploadLayerPart",
        ],
        resources: |s| vec![arn(s, "ecr", &format!("repository/{}", s.project))],
        condition: None,
    },
    Grant {
        sid: "ClusterAndService",
        actions: &[
            "ecs:ContinueServiceDeployment",
            "ecs:CreateCluster",
            "ecs:CreateService",
            "ecs:DeleteCluster",
            "ecs:DeleteService",
            "ecs:DescribeClusters",
            "ecs:DescribeServiceDeployments",
            "ecs:DescribeServiceRevisions",
            "ecs:DescribeServices",
            "ecs:DescribeTasks",
            "ecs:ListServiceDeployments",
            "ecs:StopServiceDeployment",
            "ecs:UpdateService",
        ],
        resources: |s| {
            let p = &s.project;
            vec![
                arn(s, "ecs", &format!("cluster/{p}")),
                arn(s, "ecs", &format!("service/{p}/{p}")),
                arn(s, "ecs", &format!("service-revision/{p}/{p}/*")),
                arn(s, "ecs", &format!("service-deployment/{p}/{p}/*")),
                arn(s, "ecs", &format!("task/{p}/*")),
            ]
        },
        condition: None,
    },
    // `promote --from <env>`: the source's service and tasks, as `status` reads them, and its
    // image, copied by digest through the registry API.
    Grant {
        sid: "PromoteFromOtherEnvironments",
        actions: &[
            "ecr:BatchCheckLayerAvailability",
            "ecr:BatchGetImage",
            "ecr:DescribeImages",
            "ecr:GetDownloadUrlForLayer",
            "ecs:DescribeServiceDeployments",
            "ecs:DescribeServices",
            "ecs:DescribeTasks",
            "ecs:ListServiceDeployments",
        ],
        resources: |s| {
            s.promote_from
                .iter()
                .flat_map(|p| {
                    [
                        arn(s, "ecr", &format!("repository/{p}")),
                        arn(s, "ecs", &format!("service/{p}/{p}")),
                        arn(s, "ecs", &format!("service-deployment/{p}/{p}/*")),
                        arn(s, "ecs", &format!("task/{p}/*")),
                    ]
                })
                .collect()
        },
        condition: None,
    },
    Grant {
        sid: "LoadBalancer",
        actions: &[
            "elasticloadbalancing:AddTags",
            "elasticloadbalancing:CreateListener",
            "elasticloadbalancing:CreateLoadBalancer",
            "elasticloadbalancing:CreateRule",
            "elasticloadbalancing:CreateTargetGroup",
            "elasticloadbalancing:DeleteListener",
            "elasticloadbalancing:DeleteRule",
            "elasticloadbalancing:DeleteLoadBalancer",
            "elasticloadbalancing:DeleteTargetGroup",
            "elasticloadbalancing:ModifyListener",
            "elasticloadbalancing:ModifyTargetGroup",
            "elasticloadbalancing:ModifyTargetGroupAttributes",
            "elasticloadbalancing:SetSecurityGroups",
        ],
        resources: |s| {
            let p = &s.project;
            vec![
                arn(
                    s,
                    "elasticloadbalancing",
                    &format!("loadbalancer/app/{p}/*"),
                ),
                arn(s, "elasticloadbalancing", &format!("listener/app/{p}/*")),
                arn(
                    s,
                    "elasticloadbalancing",
                    &format!("listener-rule/app/{p}/*"),
                ),
                arn(s, "elasticloadbalancing", &format!("targetgroup/{p}/*")),
                arn(
                    s,
                    "elasticloadbalancing",
                    &format!(
                        "targetgroup/{}/*",
                        crate::targets::ecs::load_balancer::alternate_target_group_name(p)
                    ),
                ),
            ]
        },
        condition: None,
    },
    Grant {
        sid: "Roles",
        actions: &[
            "iam:CreateRole",
            "iam:DeleteRole",
            "iam:DeleteRolePolicy",
            "iam:DetachRolePolicy",
            "iam:GetRole",
            "iam:GetRolePolicy",
            "iam:ListAttachedRolePolicies",
            "iam:ListRolePolicies",
            "iam:PutRolePolicy",
            "iam:TagRole",
            "iam:UpdateAssumeRolePolicy",
        ],
        resources: roles,
        condition: None,
    },
    Grant {
        sid: "PassTheTwoRolesToEcsTasks",
        actions: &["iam:PassRole"],
        resources: task_roles,
        condition: Some(
            |_| json!({"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}),
        ),
    },
    Grant {
        sid: "PassTheLoadBalancerRoleToEcs",
        actions: &["iam:PassRole"],
        resources: |s| {
            vec![format!(
                "arn:aws:iam::{}:role/{}",
                s.account,
                crate::targets::ecs::iam::infrastructure_role_name(&s.project)
            )]
        },
        condition: Some(|_| json!({"StringEquals": {"iam:PassedToService": "ecs.amazonaws.com"}})),
    },
    // Application Auto Scaling's describe calls take no resource, and its scalable targets have
    // ids AWS picks; the alarms of a target-tracking policy are made with the caller's
    // permissions (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/auto-scaling-IAM.html).
    Grant {
        sid: "ServiceAutoscaling",
        actions: &[
            "application-autoscaling:DeregisterScalableTarget",
            "application-autoscaling:DescribeScalableTargets",
            "application-autoscaling:DescribeScalingPolicies",
            "application-autoscaling:PutScalingPolicy",
            "application-autoscaling:RegisterScalableTarget",
            "cloudwatch:DeleteAlarms",
            "cloudwatch:DescribeAlarms",
            "cloudwatch:PutMetricAlarm",
        ],
        resources: anything,
        condition: None,
    },
    // The first registration creates Application Auto Scaling's service-linked role for ECS.
    Grant {
        sid: "AutoscalingServiceLinkedRole",
        actions: &["iam:CreateServiceLinkedRole"],
        resources: |s| {
            vec![format!(
                "arn:aws:iam::{}:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService",
                s.account
            )]
        },
        condition: Some(
            |_| json!({"StringLike": {"iam:AWSServiceName": "ecs.application-autoscaling.amazonaws.com"}}),
        ),
    },
    Grant {
        sid: "LogGroup",
        actions: &[
            "logs:CreateLogGroup",
            "logs:DeleteLogGroup",
            "logs:FilterLogEvents",
            "logs:GetLogEvents",
            "logs:ListTagsLogGroup",
            "logs:PutRetentionPolicy",
            "logs:TagResource",
        ],
        resources: |s| {
            let group = format!("log-group:/ecs/{}", s.project);
            vec![
                arn(s, "logs", &group),
                arn(s, "logs", &format!("{group}:*")),
            ]
        },
        condition: None,
    },
    Grant {
        sid: "ReadModels",
        actions: &["s3:GetObject"],
        resources: |s| {
            vec![format!(
                "arn:aws:s3:::{}/{}*",
                s.model_bucket, s.model_prefix
            )]
        },
        condition: None,
    },
    Grant {
        sid: "DeployLock",
        actions: &["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
        resources: |s| {
            vec![format!(
                "arn:aws:s3:::{}/.mldeploy/{}/*",
                s.lock_bucket, s.project
            )]
        },
        condition: None,
    },
    Grant {
        sid: "ListModelsAndLockBuckets",
        actions: &["s3:ListBucket"],
        resources: |s| {
            let mut buckets = vec![format!("arn:aws:s3:::{}", s.model_bucket)];
            if s.lock_bucket != s.model_bucket {
                buckets.push(format!("arn:aws:s3:::{}", s.lock_bucket));
            }
            buckets
        },
        condition: None,
    },
    // The model bucket's region, against the stack's (a gateway endpoint reaches only its own).
    Grant {
        sid: "ModelBucketRegion",
        actions: &["s3:GetBucketLocation"],
        resources: |s| vec![format!("arn:aws:s3:::{}", s.model_bucket)],
        condition: None,
    },
    // Before anything changes, service.secrets must exist: described, never read.
    Grant {
        sid: "SecretsExist",
        actions: &["secretsmanager:DescribeSecret"],
        resources: |s| {
            s.secrets
                .iter()
                .filter(|a| a.contains(":secretsmanager:"))
                .map(|a| a.split(':').take(7).collect::<Vec<_>>().join(":"))
                .collect()
        },
        condition: None,
    },
    // DescribeParameters takes no resource but "*" (the Service Authorization Reference's
    // actions table for Systems Manager lists no resource type for it).
    Grant {
        sid: "ParametersExist",
        actions: &["ssm:DescribeParameters"],
        resources: |s| {
            if s.secrets.iter().any(|a| a.contains(":ssm:")) {
                vec!["*".to_string()]
            } else {
                Vec::new()
            }
        },
        condition: None,
    },
    Grant {
        sid: "DomainRecords",
        actions: &[
            "route53:ChangeResourceRecordSets",
            "route53:GetHostedZone",
            "route53:ListResourceRecordSets",
        ],
        resources: |s| {
            s.hosted_zone
                .iter()
                .map(|z| format!("arn:aws:route53:::hostedzone/{z}"))
                .collect()
        },
        condition: None,
    },
    Grant {
        sid: "FindCertificates",
        actions: &["acm:ListCertificates"],
        resources: |s| with_domain(s, anything(s)),
        condition: None,
    },
    Grant {
        sid: "Certificates",
        actions: &[
            "acm:AddTagsToCertificate",
            "acm:DescribeCertificate",
            "acm:ListTagsForCertificate",
            "acm:RequestCertificate",
        ],
        resources: |s| with_domain(s, vec![arn(s, "acm", "certificate/*")]),
        condition: None,
    },
    Grant {
        sid: "DeleteOwnCertificates",
        actions: &["acm:DeleteCertificate"],
        resources: |s| with_domain(s, vec![arn(s, "acm", "certificate/*")]),
        condition: Some(
            |s| json!({"StringEquals": {format!("aws:ResourceTag/{}", crate::aws::tags::PROJECT_TAG): s.project}}),
        ),
    },
];

/// A project with a domain looks for its certificates; with a hosted zone it requests one.
fn with_domain(s: &Scope, resources: Vec<String>) -> Vec<String> {
    if s.domain.is_some() {
        resources
    } else {
        Vec::new()
    }
}

/// The roles mldeploy makes: the two the tasks use, and the one ECS shifts traffic with.
fn roles(s: &Scope) -> Vec<String> {
    ["execution", "task", "lb-infrastructure"]
        .iter()
        .map(|r| format!("arn:aws:iam::{}:role/{}-{r}", s.account, s.project))
        .collect()
}

fn task_roles(s: &Scope) -> Vec<String> {
    ["execution", "task"]
        .iter()
        .map(|r| format!("arn:aws:iam::{}:role/{}-{r}", s.account, s.project))
        .collect()
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
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The AWS calls the code names: the string after each `call_error(` and in each
    /// `all_pages!(`, which is how every SDK call's error is reported.
    fn calls_in_code() -> BTreeSet<String> {
        let mut calls = BTreeSet::new();
        for entry in walkdir::WalkDir::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")) {
            let entry = entry.unwrap();
            if entry.path().extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap();
            for marker in ["call_error(", "all_pages!("] {
                for (at, _) in text.match_indices(marker) {
                    let rest = &text[at + marker.len()..];
                    let rest = &rest[..rest.find(';').unwrap_or(rest.len())];
                    let name = rest.split('"').skip(1).step_by(2).find(|s| is_call_name(s));
                    if let Some(name) = name {
                        calls.insert(name.to_string());
                    }
                }
            }
        }
        calls
    }

    fn is_call_name(s: &str) -> bool {
        s.split_once(':').is_some_and(|(service, op)| {
            !service.is_empty()
                && service
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && op.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && op.chars().all(|c| c.is_ascii_alphanumeric())
        })
    }

    #[test]
    fn the_policy_allows_exactly_the_calls_the_code_makes_and_what_aws_checks_besides() {
        let called: BTreeSet<String> = calls_in_code()
            .iter()
            .map(|c| action_of(c).to_string())
            .collect();
        assert!(called.len() > 60, "the scan found the calls: {called:?}");
        let allowed: BTreeSet<String> = actions().iter().map(|a| a.to_string()).collect();
        let missing: Vec<_> = called.difference(&allowed).collect();
        assert!(missing.is_empty(), "called but not allowed: {missing:?}");
        let not_called: BTreeSet<String> = NOT_CALLED.iter().map(|a| a.to_string()).collect();
        let extra: Vec<_> = allowed
            .difference(&called)
            .filter(|a| !not_called.contains(*a))
            .collect();
        assert!(extra.is_empty(), "allowed but never called: {extra:?}");
    }

    #[test]
    fn pass_role_names_exactly_the_two_roles_and_only_for_ecs_tasks() {
        let scope = Scope {
            region: "eu-west-1".into(),
            account: "123456789012".into(),
            project: "housing".into(),
            model_bucket: "models".into(),
            model_prefix: "mlflow/housing/".into(),
            lock_bucket: "locks".into(),
            domain: None,
            hosted_zone: None,
            promote_from: Vec::new(),
            secrets: Vec::new(),
        };
        let doc = document(&scope).0;
        let pass = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Action"] == json!(["iam:PassRole"]))
            .unwrap();
        assert_eq!(
            pass["Resource"],
            json!([
                "arn:aws:iam::123456789012:role/housing-execution",
                "arn:aws:iam::123456789012:role/housing-task"
            ])
        );
        assert_eq!(
            pass["Condition"]["StringEquals"]["iam:PassedToService"],
            "ecs-tasks.amazonaws.com"
        );
        let text = document(&scope).to_string();
        assert!(
            text.contains("arn:aws:s3:::models/mlflow/housing/*"),
            "{text}"
        );
        assert!(
            text.contains("arn:aws:s3:::locks/.mldeploy/housing/*"),
            "{text}"
        );
        assert!(
            text.contains("arn:aws:ecr:eu-west-1:123456789012:repository/housing"),
            "{text}"
        );
        assert!(
            !text.contains("\"s3:*\"") && !text.contains("\"iam:*\""),
            "{text}"
        );
        // In another partition every ARN is that partition's.
        let china = document(&Scope {
            region: "cn-north-1".into(),
            ..scope
        })
        .to_string();
        assert!(
            china.contains("arn:aws-cn:s3:::models/mlflow/housing/*")
                && china.contains("arn:aws-cn:ecr:cn-north-1:123456789012:repository/housing")
                && china.contains("arn:aws-cn:iam::123456789012:role/housing-execution"),
            "{china}"
        );
        assert!(!china.contains("arn:aws:"), "{china}");
    }

    #[test]
    fn route53_and_acm_are_allowed_only_to_a_project_with_a_domain_and_on_its_zone() {
        let mut scope = Scope {
            region: "eu-west-1".into(),
            account: "123456789012".into(),
            project: "housing".into(),
            model_bucket: "models".into(),
            model_prefix: "m/".into(),
            lock_bucket: "models".into(),
            domain: None,
            hosted_zone: None,
            promote_from: Vec::new(),
            secrets: Vec::new(),
        };
        let plain = document(&scope).to_string();
        assert!(
            !plain.contains("acm:") && !plain.contains("route53:"),
            "{plain}"
        );
        assert!(!plain.contains("PromoteFrom"), "{plain}");
        scope.promote_from = vec!["housing-staging".into()];
        let promoting = document(&scope).0;
        let from = promoting["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "PromoteFromOtherEnvironments")
            .cloned()
            .unwrap();
        assert!(
            from["Resource"].as_array().unwrap().contains(&json!(
                "arn:aws:ecr:eu-west-1:123456789012:repository/housing-staging"
            )),
            "{from}"
        );
        scope.promote_from.clear();
        scope.domain = Some("models.example.com".into());
        scope.hosted_zone = Some("Z0123".into());
        let doc = document(&scope).0;
        let statement = |sid: &str| {
            doc["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["Sid"] == sid)
                .cloned()
                .unwrap()
        };
        assert_eq!(
            statement("DomainRecords")["Resource"],
            json!(["arn:aws:route53:::hostedzone/Z0123"])
        );
        assert_eq!(
            statement("DeleteOwnCertificates")["Condition"]["StringEquals"]
                ["aws:ResourceTag/mldeploy:project"],
            "housing"
        );
    }
}
