//! The rollout watcher's failure paths, driven by scripted SDK answers (aws-smithy-mocks):
//! moto cannot produce a circuit-breaker rollback, a crash loop or a rollout that never ends.

use std::time::Duration;

use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_ecs::types::{Container, Deployment, DeploymentRolloutState, Service, Task};
use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use mldeploy::cli::{GlobalArgs, OutputFormat};
use mldeploy::exit::{status_of, ExitStatus};
use mldeploy::output::Printer;
use mldeploy::targets::ecs::watcher::Watch;

const NEW: &str = "ecs-svc/1111";
const TD2: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/app:2";
const TD1: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/app:1";

fn quiet() -> Printer {
    Printer::new(&GlobalArgs {
        dir: None,
        config: None,
        output: OutputFormat::Text,
        region: None,
        profile: None,
        verbose: 0,
        quiet: true,
        no_progress: true,
        env: None,
        target: None,
    })
}

fn deployment(
    id: &str,
    status: &str,
    state: DeploymentRolloutState,
    td: &str,
    reason: &str,
) -> Deployment {
    Deployment::builder()
        .id(id)
        .status(status)
        .rollout_state(state)
        .rollout_state_reason(reason)
        .task_definition(td)
        .desired_count(2)
        .running_count(0)
        .pending_count(2)
        .build()
}

fn services(deployments: Vec<Deployment>) -> DescribeServicesOutput {
    DescribeServicesOutput::builder()
        .services(
            Service::builder()
                .service_name("app")
                .status("ACTIVE")
                .set_deployments(Some(deployments))
                .build(),
        )
        .build()
}

fn in_progress() -> DescribeServicesOutput {
    services(vec![
        deployment(NEW, "PRIMARY", DeploymentRolloutState::InProgress, TD2, ""),
        deployment(
            "ecs-svc/0000",
            "ACTIVE",
            DeploymentRolloutState::Completed,
            TD1,
            "",
        ),
    ])
}

fn no_targets() -> aws_sdk_elasticloadbalancingv2::Client {
    let health = mock!(aws_sdk_elasticloadbalancingv2::Client::describe_target_health)
        .sequence()
        .output(|| DescribeTargetHealthOutput::builder().build())
        .repeatedly()
        .build();
    mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::MatchAny,
        [&health]
    )
}

fn no_stopped_tasks() -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_ecs::Client::list_tasks)
        .sequence()
        .output(|| ListTasksOutput::builder().build())
        .repeatedly()
        .build()
}

/// An ECS client that answers DescribeServices with `describe` and has no stopped tasks.
fn ecs_answering(describe: aws_smithy_mocks::Rule) -> aws_sdk_ecs::Client {
    mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&describe, &no_stopped_tasks()]
    )
}

async fn watch(
    ecs: &aws_sdk_ecs::Client,
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    timeout: Duration,
) -> anyhow::Error {
    Watch {
        ecs,
        elb,
        cluster: "app",
        service: "app",
        deployment_id: NEW,
        target_group_arn: Some(
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/app/1",
        ),
        timeout,
        poll: Duration::from_millis(20),
    }
    .run(&quiet())
    .await
    .expect_err("the watcher must not report success")
}

#[tokio::test]
async fn scripted_a_circuit_breaker_rollback_exits_1_and_names_the_revision_rolled_back_to() {
    let describe = mock!(aws_sdk_ecs::Client::describe_services)
        .sequence()
        .output(in_progress)
        .times(2)
        .output(|| {
            services(vec![
                deployment(
                    "ecs-svc/2222",
                    "PRIMARY",
                    DeploymentRolloutState::InProgress,
                    TD1,
                    "",
                ),
                deployment(
                    NEW,
                    "ACTIVE",
                    DeploymentRolloutState::Failed,
                    TD2,
                    "ECS deployment circuit breaker: tasks failed to start.",
                ),
            ])
        })
        .repeatedly()
        .build();
    let ecs = ecs_answering(describe);
    let err = watch(&ecs, &no_targets(), Duration::from_secs(30)).await;
    assert_eq!(status_of(&err), ExitStatus::Failed);
    let text = format!("{err:#}");
    assert!(
        text.contains("circuit breaker: tasks failed to start"),
        "{text}"
    );
    assert!(text.contains("ECS rolled back to app:1"), "{text}");
}

#[tokio::test]
async fn scripted_a_deployment_that_vanishes_is_a_rollback_not_a_success() {
    let describe = mock!(aws_sdk_ecs::Client::describe_services)
        .sequence()
        .output(in_progress)
        .output(|| {
            services(vec![deployment(
                "ecs-svc/0000",
                "PRIMARY",
                DeploymentRolloutState::Completed,
                TD1,
                "",
            )])
        })
        .repeatedly()
        .build();
    let ecs = ecs_answering(describe);
    let err = watch(&ecs, &no_targets(), Duration::from_secs(30)).await;
    assert_eq!(status_of(&err), ExitStatus::Failed);
    assert!(format!("{err:#}").contains("app:1 serves again"), "{err:#}");
}

#[tokio::test]
async fn scripted_a_crash_loop_exits_1_with_the_stopped_reasons_and_exit_codes() {
    let describe = mock!(aws_sdk_ecs::Client::describe_services)
        .sequence()
        .output(in_progress)
        .repeatedly()
        .build();
    let list = mock!(aws_sdk_ecs::Client::list_tasks)
        .sequence()
        .output(|| {
            ListTasksOutput::builder()
                .task_arns("arn:aws:ecs:us-east-1:1:task/app/t1")
                .task_arns("arn:aws:ecs:us-east-1:1:task/app/t2")
                .task_arns("arn:aws:ecs:us-east-1:1:task/app/t3")
                .build()
        })
        .repeatedly()
        .build();
    let tasks = mock!(aws_sdk_ecs::Client::describe_tasks)
        .sequence()
        .output(|| {
            let task = |n: &str, started_by: &str| {
                Task::builder()
                    .task_arn(format!("arn:aws:ecs:us-east-1:1:task/app/{n}"))
                    .started_by(started_by)
                    .stopped_reason("Essential container in task exited")
                    .containers(Container::builder().exit_code(3).build())
                    .build()
            };
            DescribeTasksOutput::builder()
                .tasks(task("t1", NEW))
                .tasks(task("t2", NEW))
                .tasks(task("t3", NEW))
                .tasks(task("t9", "ecs-svc/0000"))
                .build()
        })
        .repeatedly()
        .build();
    let ecs = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, [&describe, &list, &tasks]);
    let err = watch(&ecs, &no_targets(), Duration::from_secs(30)).await;
    assert_eq!(status_of(&err), ExitStatus::Failed);
    let text = format!("{err:#}");
    assert!(
        text.contains("keep stopping (3 stopped)"),
        "only our deployment's tasks count: {text}"
    );
    assert!(
        text.contains("Essential container in task exited (exit code 3)"),
        "{text}"
    );
}

#[tokio::test]
async fn scripted_a_rollout_that_never_completes_fails_at_the_deadline_saying_what_it_waited_for() {
    let describe = mock!(aws_sdk_ecs::Client::describe_services)
        .sequence()
        .output(in_progress)
        .repeatedly()
        .build();
    let ecs = ecs_answering(describe);
    let started = std::time::Instant::now();
    let err = watch(&ecs, &no_targets(), Duration::from_secs(1)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status_of(&err), ExitStatus::Failed);
    let text = format!("{err:#}");
    assert!(text.contains("timed out after 1s"), "{text}");
    assert!(text.contains("app:2 IN_PROGRESS: 0/2 running, 2 pending, 0/2 healthy targets, 1 older deployment(s) draining"), "{text}");
}
