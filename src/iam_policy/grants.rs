//! The grants of the deployer's policy: each call mldeploy makes, by what it may touch, scoped to
//! the project's resources where the action takes one.

use serde_json::json;

use super::{anything, arn, Grant, Scope};

/// The API calls mldeploy makes, and the actions AWS authorizes them as, grouped by what they may
/// touch. Describe and List calls that take no resource, EC2's network calls (EC2 names new
/// resources by id, not by name) and task-definition calls (ECS scopes them to no resource) are
/// allowed on `*`.
pub(super) const GRANTS: &[Grant] = &[
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
            "ecs:ListServices",
            "ecs:StopServiceDeployment",
            "ecs:StopTask",
            "ecs:UpdateService",
        ],
        // The model API's service `<p>`, and the workers' `<p>-<worker>` in the same cluster.
        resources: |s| {
            let p = &s.project;
            vec![
                arn(s, "ecs", &format!("cluster/{p}")),
                arn(s, "ecs", &format!("service/{p}/{p}")),
                arn(s, "ecs", &format!("service/{p}/{p}-*")),
                arn(s, "ecs", &format!("service-revision/{p}/{p}/*")),
                arn(s, "ecs", &format!("service-revision/{p}/{p}-*/*")),
                arn(s, "ecs", &format!("service-deployment/{p}/{p}/*")),
                arn(s, "ecs", &format!("service-deployment/{p}/{p}-*/*")),
                arn(s, "ecs", &format!("task/{p}/*")),
            ]
        },
        condition: None,
    },
    // `run` and `[deploy] release_command`: a task of one of the project's task definitions, in
    // its cluster only (RunTask authorizes the task definition, with the cluster as the
    // `ecs:cluster` condition key: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html).
    Grant {
        sid: "OneOffTasks",
        actions: &["ecs:RunTask"],
        resources: |s| {
            let p = &s.project;
            vec![
                arn(s, "ecs", &format!("task-definition/{p}:*")),
                arn(s, "ecs", &format!("task-definition/{p}-*:*")),
            ]
        },
        condition: Some(|s| {
            let cluster = super::in_partition(s, arn(s, "ecs", &format!("cluster/{}", s.project)));
            json!({"ArnEquals": {"ecs:cluster": cluster}})
        }),
    },
    // `promote --from <env>`: the source's services (the model API's and its workers'
    // `<env>-<worker>`) and tasks, as `status` reads them, and its images, copied by digest
    // through the registry API.
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
                        arn(s, "ecs", &format!("service/{p}/{p}-*")),
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
        sid: "PassTheTaskRolesToEcsTasks",
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
            s.model
                .iter()
                .map(|(bucket, prefix)| format!("arn:aws:s3:::{bucket}/{prefix}*"))
                .collect()
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
            let mut buckets: Vec<String> = s
                .model
                .iter()
                .map(|(bucket, _)| format!("arn:aws:s3:::{bucket}"))
                .collect();
            let lock = format!("arn:aws:s3:::{}", s.lock_bucket);
            if !buckets.contains(&lock) {
                buckets.push(lock);
            }
            buckets
        },
        condition: None,
    },
    // The model bucket's region, against the stack's (a gateway endpoint reaches only its own).
    Grant {
        sid: "ModelBucketRegion",
        actions: &["s3:GetBucketLocation"],
        resources: |s| {
            s.model
                .iter()
                .map(|(bucket, _)| format!("arn:aws:s3:::{bucket}"))
                .collect()
        },
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
        .chain(std::iter::once(worker_roles(s)))
        .collect()
}

/// The execution and task roles, and every worker's task role (by the workers' path, which
/// covers a worker removed from the file, whose role `up` deletes).
fn task_roles(s: &Scope) -> Vec<String> {
    ["execution", "task"]
        .iter()
        .map(|r| format!("arn:aws:iam::{}:role/{}-{r}", s.account, s.project))
        .chain(std::iter::once(worker_roles(s)))
        .collect()
}

fn worker_roles(s: &Scope) -> String {
    format!(
        "arn:aws:iam::{}:role{}*",
        s.account,
        crate::targets::ecs::iam::worker_role_path(&s.project)
    )
}
