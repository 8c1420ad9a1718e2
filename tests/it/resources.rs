//! The log group, the cluster and the IAM roles against moto: names, tags, settings, and a
//! second run that keeps what is right.

use mldeploy::aws::Aws;
use mldeploy::exit::{status_of, ExitStatus};
use mldeploy::targets::ecs::{cluster, iam, logs, Converge, Plan};
use mldeploy::targets::Action;

use crate::support::{aws, require_sandbox, unique_name};

async fn setup(prefix: &str) -> (Aws, Converge) {
    require_sandbox();
    let aws = Aws::load(None, None, None).await.unwrap();
    (
        aws,
        Converge {
            project: unique_name(prefix),
            dry_run: false,
        },
    )
}

#[tokio::test]
async fn the_log_group_is_tagged_and_its_retention_converges() {
    let (sdk, cv) = setup("it-logs").await;
    let client = sdk.logs();
    let mut plan = Plan::default();
    let name = logs::decide(&client, &cv.project, 7, &mut plan)
        .await
        .unwrap();
    let changes = plan.apply().await.unwrap();
    assert_eq!(name, format!("/ecs/{}", cv.project));
    assert_eq!(changes[0].action, Action::Create);
    let group = |name: &str| {
        let run = aws(&[
            "logs",
            "describe-log-groups",
            "--log-group-name-prefix",
            name,
        ]);
        run.expect_code(0);
        run.json()["logGroups"][0].clone()
    };
    assert_eq!(group(&name)["retentionInDays"], 7);
    let tags = aws(&["logs", "list-tags-log-group", "--log-group-name", &name]);
    assert_eq!(tags.json()["tags"]["mldeploy:project"], cv.project.as_str());

    let mut plan = Plan::default();
    logs::decide(&client, &cv.project, 14, &mut plan)
        .await
        .unwrap();
    let again = plan.apply().await.unwrap();
    assert_eq!(again[0].action, Action::Update);
    assert_eq!(
        again[0].detail.as_deref(),
        Some("retention 7 days -> 14 days")
    );
    assert_eq!(group(&name)["retentionInDays"], 14);
    let mut plan = Plan::default();
    logs::decide(&client, &cv.project, 14, &mut plan)
        .await
        .unwrap();
    assert!(plan.is_empty(), "nothing to change");
    let third = plan.apply().await.unwrap();
    assert_eq!(third[0].action, Action::Keep);
}

#[tokio::test]
async fn the_cluster_is_created_tagged_and_a_foreign_one_is_used_as_it_is() {
    let (sdk, cv) = setup("it-cluster").await;
    let ecs = sdk.ecs();
    let mut plan = Plan::default();
    let arn = cluster::decide(&ecs, &cv.project, &mut plan).await.unwrap();
    assert_eq!(arn.to_string(), "(new)");
    let changes = plan.apply().await.unwrap();
    assert_eq!(changes[0].action, Action::Create);
    assert!(
        arn.known()
            .is_some_and(|a| a.ends_with(&format!("cluster/{}", cv.project))),
        "the apply set the created cluster's ARN: {arn}"
    );
    let run = aws(&[
        "ecs",
        "describe-clusters",
        "--clusters",
        &cv.project,
        "--include",
        "TAGS",
    ]);
    let c = &run.json()["clusters"][0];
    assert_eq!(c["status"], "ACTIVE");
    assert_eq!(c["tags"][0]["key"], "mldeploy:project");
    let mut plan = Plan::default();
    cluster::decide(&ecs, &cv.project, &mut plan).await.unwrap();
    let again = plan.apply().await.unwrap();
    assert_eq!(again[0].action, Action::Keep);
    assert!(again[0].detail.is_none());

    let foreign = unique_name("it-foreigncluster");
    aws(&["ecs", "create-cluster", "--cluster-name", &foreign]).expect_code(0);
    let cv = Converge {
        project: foreign,
        dry_run: false,
    };
    let mut plan = Plan::default();
    cluster::decide(&ecs, &cv.project, &mut plan).await.unwrap();
    let changes = plan.apply().await.unwrap();
    assert_eq!(changes[0].action, Action::Keep);
    assert!(changes[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("not created by mldeploy"));
}

/// The project's roles decided for a model at `prefix` of bucket `my-models`, and carried out:
/// the roles and the changes made.
async fn roles_for(
    client: &aws_sdk_iam::Client,
    project: &str,
    bucket: &str,
    prefix: &str,
) -> anyhow::Result<(iam::Roles, Vec<mldeploy::targets::Change>)> {
    let mut plan = Plan::default();
    let roles = iam::decide(
        client,
        project,
        "us-east-1",
        Some((bucket, prefix)),
        &[],
        &[],
        &[],
        false,
        &[],
        &mut plan,
    )
    .await?;
    Ok((roles, plan.apply().await?))
}

#[tokio::test]
async fn the_roles_can_pull_log_and_read_the_model_prefix_and_nothing_else() {
    let (sdk, cv) = setup("it-iam").await;
    let client = sdk.iam();
    let (roles, changes) = roles_for(&client, &cv.project, "my-models", "mlflow/models/housing/")
        .await
        .unwrap();
    assert!(roles.changing);
    assert_eq!(
        changes.iter().map(|c| c.action).collect::<Vec<_>>(),
        [Action::Create, Action::Create]
    );
    assert!(roles
        .execution_arn
        .known()
        .unwrap()
        .ends_with(&format!("role/{}-execution", cv.project)));
    assert!(roles
        .task_arn
        .known()
        .unwrap()
        .ends_with(&format!("role/{}-task", cv.project)));

    let execution = aws(&[
        "iam",
        "get-role-policy",
        "--role-name",
        &iam::execution_role_name(&cv.project),
        "--policy-name",
        iam::EXECUTION_POLICY_NAME,
    ]);
    execution.expect_code(0);
    let execution = execution.json()["PolicyDocument"].clone();
    assert_eq!(
        execution["Statement"][1]["Resource"][0],
        format!("arn:aws:ecr:us-east-1:*:repository/{}", cv.project)
    );
    assert!(
        execution
            .to_string()
            .contains(&format!("log-group:/ecs/{}:*", cv.project)),
        "{execution}"
    );
    let policy = aws(&[
        "iam",
        "get-role-policy",
        "--role-name",
        &iam::task_role_name(&cv.project),
        "--policy-name",
        iam::MODEL_POLICY_NAME,
    ]);
    policy.expect_code(0);
    let document = &policy.json()["PolicyDocument"];
    let statements = document["Statement"].as_array().unwrap();
    for s in statements {
        for action in s["Action"].as_array().unwrap() {
            assert!(
                action == "s3:GetObject" || action == "s3:ListBucket",
                "{document}"
            );
        }
        for resource in s["Resource"].as_array().unwrap() {
            let r = resource.as_str().unwrap();
            assert!(
                r == "arn:aws:s3:::my-models"
                    || r == "arn:aws:s3:::my-models/mlflow/models/housing/*",
                "{document}"
            );
        }
    }
    let role = aws(&[
        "iam",
        "list-role-tags",
        "--role-name",
        &iam::task_role_name(&cv.project),
    ]);
    assert_eq!(role.json()["Tags"][0]["Key"], "mldeploy:project");

    let (kept, again) = roles_for(&client, &cv.project, "my-models", "mlflow/models/housing/")
        .await
        .unwrap();
    assert!(!kept.changing);
    assert!(again.iter().all(|c| c.action == Action::Keep), "{again:#?}");
    let (_, moved) = roles_for(
        &client,
        &cv.project,
        "my-models",
        "mlflow/models/housing-v2/",
    )
    .await
    .unwrap();
    assert_eq!(moved[1].action, Action::Update);
    assert_eq!(
        moved[1].detail.as_deref(),
        Some("read s3://my-models/mlflow/models/housing-v2/*")
    );
}

#[tokio::test]
async fn a_look_alike_role_without_our_tag_is_not_taken_over() {
    let (sdk, cv) = setup("it-iamforeign").await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws(&[
        "iam",
        "create-role",
        "--role-name",
        &iam::execution_role_name(&cv.project),
        "--assume-role-policy-document",
        trust,
    ])
    .expect_code(0);
    let err = roles_for(&sdk.iam(), &cv.project, "b", "p/")
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), ExitStatus::Environment);
    assert!(
        format!("{err:#}").contains("will not take over a role"),
        "{err:#}"
    );
}
