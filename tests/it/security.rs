//! Security groups against moto's EC2: the tasks open only to the load balancer's group.

use mldeploy::aws::Aws;
use mldeploy::exit::{status_of, ExitStatus};
use mldeploy::target::ecs::{security, Converge};
use mldeploy::target::Action;

use crate::support::{aws, require_sandbox, unique_name};

async fn ec2_and_vpc() -> (aws_sdk_ec2::Client, String) {
    require_sandbox();
    let run = aws(&["ec2", "create-vpc", "--cidr-block", "10.9.0.0/16"]);
    run.expect_code(0);
    let vpc = run.json()["Vpc"]["VpcId"].as_str().unwrap().to_string();
    (Aws::load(None, None, None).await.unwrap().ec2(), vpc)
}

fn ingress(group_id: &str) -> serde_json::Value {
    let run = aws(&["ec2", "describe-security-groups", "--group-ids", group_id]);
    run.expect_code(0);
    run.json()["SecurityGroups"][0]["IpPermissions"].clone()
}

#[tokio::test]
async fn the_tasks_admit_only_the_load_balancers_group_and_drift_is_undone() {
    let (ec2, vpc) = ec2_and_vpc().await;
    let cv = Converge {
        project: unique_name("it-sg"),
        dry_run: false,
    };
    let mut changes = Vec::new();
    let groups = security::ensure(&ec2, &cv, &vpc, &[80], 8080, &mut changes)
        .await
        .unwrap();
    assert_eq!(changes.len(), 2);
    assert!(changes.iter().all(|c| c.action == Action::Create));

    let alb = ingress(&groups.alb);
    assert_eq!(alb.as_array().unwrap().len(), 1);
    assert_eq!(alb[0]["FromPort"], 80);
    assert_eq!(alb[0]["IpRanges"][0]["CidrIp"], "0.0.0.0/0");
    let tasks = ingress(&groups.tasks);
    assert_eq!(tasks.as_array().unwrap().len(), 1, "{tasks}");
    assert_eq!(tasks[0]["FromPort"], 8080);
    assert_eq!(
        tasks[0]["UserIdGroupPairs"][0]["GroupId"],
        groups.alb.as_str()
    );
    assert!(
        tasks[0]["IpRanges"].as_array().unwrap().is_empty(),
        "never open to the world: {tasks}"
    );

    // Someone opens the tasks to the world by hand: the next run takes it back.
    aws(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &groups.tasks,
        "--protocol",
        "tcp",
        "--port",
        "8080",
        "--cidr",
        "0.0.0.0/0",
    ])
    .expect_code(0);
    let mut again = Vec::new();
    let same = security::ensure(&ec2, &cv, &vpc, &[80], 8080, &mut again)
        .await
        .unwrap();
    assert_eq!(same, groups);
    let update = again
        .iter()
        .find(|c| c.action == Action::Update)
        .expect("an update");
    assert_eq!(update.name, security::tasks_group_name(&cv.project));
    assert_eq!(
        update.detail.as_deref(),
        Some("remove tcp/8080 from 0.0.0.0/0")
    );
    let tasks = ingress(&groups.tasks);
    assert!(
        tasks
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["IpRanges"].as_array().unwrap().is_empty()),
        "{tasks}"
    );

    let mut third = Vec::new();
    security::ensure(&ec2, &cv, &vpc, &[80], 8080, &mut third)
        .await
        .unwrap();
    assert!(third.iter().all(|c| c.action == Action::Keep), "{third:#?}");
}

#[tokio::test]
async fn a_look_alike_group_without_our_tag_is_not_taken_over() {
    let (ec2, vpc) = ec2_and_vpc().await;
    let project = unique_name("it-sgforeign");
    let name = security::alb_group_name(&project);
    aws(&[
        "ec2",
        "create-security-group",
        "--group-name",
        &name,
        "--description",
        "someone else's",
        "--vpc-id",
        &vpc,
    ])
    .expect_code(0);
    let cv = Converge {
        project,
        dry_run: false,
    };
    let err = security::ensure(&ec2, &cv, &vpc, &[80], 8080, &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), ExitStatus::Environment);
    assert!(
        format!("{err:#}").contains("will not take over a group it did not create"),
        "{err:#}"
    );
}
