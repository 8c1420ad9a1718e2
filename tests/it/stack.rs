//! The whole ECS stack converged against the sandbox, and real rollouts watched to the end: the
//! shape of `mldeploy up`, step by step.

use std::collections::BTreeMap;
use std::time::Duration;

use mldeploy::aws::Aws;
use mldeploy::cli::{GlobalArgs, OutputFormat};
use mldeploy::output::Printer;
use mldeploy::target::ecs::load_balancer::{self, Listening};
use mldeploy::target::ecs::service::{self, ServiceSpec};
use mldeploy::target::ecs::task_definition::{self, ReleaseTags, TaskInputs};
use mldeploy::target::ecs::watcher::Watch;
use mldeploy::target::ecs::{cluster, iam, logs, network, security, Converge};
use mldeploy::target::{Action, Change};

use crate::support::{aws, require_sandbox, unique_name};

fn quiet() -> Printer {
    Printer::new(&GlobalArgs {
        dir: None,
        output: OutputFormat::Text,
        region: None,
        profile: None,
        verbose: 0,
        quiet: true,
        no_progress: true,
    })
}

#[tokio::test]
async fn the_stack_converges_deploys_and_a_rerun_changes_nothing() {
    require_sandbox();
    let sdk = Aws::load(None, None, None).await.unwrap();
    let (ec2, ecs, elb) = (sdk.ec2(), sdk.ecs(), sdk.elbv2());
    let cv = Converge {
        project: unique_name("it-stack"),
        dry_run: false,
    };
    let project = cv.project.clone();

    // Everything but the service, as `up` converges it.
    let converge = |model_path: &'static str| {
        let (sdk, cv, ec2, elb, project) = (
            sdk.clone(),
            cv.clone(),
            ec2.clone(),
            elb.clone(),
            project.clone(),
        );
        async move {
            let mut changes: Vec<Change> = Vec::new();
            let net = network::ensure(&ec2, &cv, &mut changes).await.unwrap();
            let listening = Listening {
                container_port: 8080,
                health_check_path: "/health",
                certificate_arn: None,
            };
            let groups = security::ensure(
                &ec2,
                &cv,
                &net.vpc_id,
                &listening.ports(),
                8080,
                &mut changes,
            )
            .await
            .unwrap();
            let lb = load_balancer::ensure(&elb, &cv, &net, &groups, &listening, &mut changes)
                .await
                .unwrap();
            let roles = iam::ensure(&sdk.iam(), &cv, "us-east-1", "models", "m/", &mut changes)
                .await
                .unwrap();
            let log_group = logs::ensure(&sdk.logs(), &cv, 7, &mut changes)
                .await
                .unwrap();
            let cluster = cluster::ensure(&sdk.ecs(), &cv, &mut changes)
                .await
                .unwrap();
            let spec = task_definition::render(
                task_definition::DEFAULT_TEMPLATE,
                task_definition::DEFAULT_TEMPLATE_NAME,
                &TaskInputs {
                    project: project.clone(),
                    container_name: project.clone(),
                    image: format!(
                        "123456789012.dkr.ecr.us-east-1.amazonaws.com/{project}@sha256:{}",
                        "a".repeat(64)
                    ),
                    cpu: 256,
                    memory: 512,
                    port: 8080,
                    ready_path: "/ready".into(),
                    model_bucket: "models".into(),
                    model_path: model_path.into(),
                    environment: BTreeMap::new(),
                    secrets: BTreeMap::new(),
                    execution_role_arn: roles.execution_arn,
                    task_role_arn: roles.task_arn,
                    log_group,
                    region: "us-east-1".into(),
                },
            )
            .unwrap();
            (changes, net, groups, lb, cluster, spec)
        }
    };

    let deploy = |model_path: &'static str| {
        let (ecs, elb, cv, project) = (ecs.clone(), elb.clone(), cv.clone(), project.clone());
        async move {
            let (mut changes, net, groups, lb, cluster, spec) = converge(model_path).await;
            let serving = service::describe(&ecs, &cluster, &project)
                .await
                .unwrap()
                .and_then(|s| s.task_definition().map(str::to_string));
            let release = ReleaseTags {
                model_version: Some(model_path.rsplit('/').next().unwrap().to_string()),
                model_path: model_path.to_string(),
                image: spec.container().unwrap().image.clone(),
                ..Default::default()
            };
            let td = task_definition::ensure_registered(
                &ecs,
                &cv,
                &spec,
                &release,
                serving.as_deref(),
                &mut changes,
            )
            .await
            .unwrap();
            let deployed = service::ensure(
                &ecs,
                &cv,
                &ServiceSpec {
                    cluster: &cluster,
                    task_definition_arn: &td,
                    desired_count: 2,
                    target_group_arn: &lb.target_group_arn,
                    container_name: &project,
                    container_port: 8080,
                    subnets: &net.subnet_ids,
                    security_group: &groups.tasks,
                    force: false,
                },
                &mut changes,
            )
            .await
            .unwrap();
            if let Some(id) = &deployed.deployment_id {
                Watch {
                    ecs: &ecs,
                    elb: &elb,
                    cluster: &cluster,
                    service: &project,
                    deployment_id: id,
                    target_group_arn: &lb.target_group_arn,
                    timeout: Duration::from_secs(30),
                    poll: Duration::from_millis(200),
                }
                .run(&quiet())
                .await
                .unwrap();
            }
            (changes, deployed, td, lb)
        }
    };

    // First deploy: everything created, a deployment watched to healthy targets.
    let (changes, deployed, td1, lb) = deploy("m/6").await;
    assert!(
        changes.iter().all(|c| c.action == Action::Create),
        "{changes:#?}"
    );
    assert!(deployed.deployment_id.is_some());
    let health = aws(&[
        "elbv2",
        "describe-target-health",
        "--target-group-arn",
        &lb.target_group_arn,
    ]);
    let targets = health.json()["TargetHealthDescriptions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        targets
            .iter()
            .filter(|t| t["TargetHealth"]["State"] == "healthy")
            .count(),
        2
    );

    let svc = aws(&[
        "ecs",
        "describe-services",
        "--cluster",
        &project,
        "--services",
        &project,
    ])
    .json()["services"][0]
        .clone();
    assert_eq!(
        svc["deploymentConfiguration"]["deploymentCircuitBreaker"]["rollback"],
        true
    );
    assert_eq!(svc["deploymentConfiguration"]["maximumPercent"], 200);
    assert_eq!(svc["launchType"], "FARGATE");
    let tags = aws(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        &td1,
        "--include",
        "TAGS",
    ])
    .json()["tags"]
        .clone();
    assert!(
        tags.as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "mldeploy:model-version" && t["value"] == "6"),
        "{tags}"
    );

    // Nothing changed: no revision registered, no deployment opened.
    let (changes, deployed, td_same, _) = deploy("m/6").await;
    assert_eq!(td_same, td1);
    assert!(deployed.deployment_id.is_none());
    assert!(
        changes.iter().all(|c| c.action == Action::Keep),
        "{changes:#?}"
    );

    // A new model version: a new revision with the new MODEL_PATH, deployed and watched.
    let (changes, deployed, td2, _) = deploy("m/7").await;
    assert_ne!(td2, td1);
    assert!(deployed.deployment_id.is_some());
    assert_eq!(
        deployed.previous_task_definition.as_deref(),
        Some(td1.as_str())
    );
    let updated: Vec<_> = changes
        .iter()
        .filter(|c| c.action != Action::Keep)
        .map(|c| c.resource)
        .collect();
    assert_eq!(updated, ["task definition", "ECS service"]);
    let td = aws(&["ecs", "describe-task-definition", "--task-definition", &td2]).json()
        ["taskDefinition"]
        .clone();
    let env = td["containerDefinitions"][0]["environment"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        env.iter()
            .any(|e| e["name"] == "MODEL_PATH" && e["value"] == "m/7"),
        "{env:?}"
    );
    let svc = aws(&[
        "ecs",
        "describe-services",
        "--cluster",
        &project,
        "--services",
        &project,
    ])
    .json()["services"][0]
        .clone();
    assert_eq!(
        svc["deployments"].as_array().unwrap().len(),
        1,
        "the old deployment drained"
    );
    assert_eq!(svc["deployments"][0]["taskDefinition"], td2.as_str());
}
