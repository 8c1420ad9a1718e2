//! Security groups against moto's EC2: the tasks open only to the load balancer's group.

use mldeploy::aws::Aws;
use mldeploy::exit::{status_of, ExitStatus};
use mldeploy::targets::ecs::{security, Converge, Id};
use mldeploy::targets::Action;

use crate::support::{aws, require_sandbox, unique_name};

async fn ec2_and_vpc() -> (aws_sdk_ec2::Client, String) {
    require_sandbox();
    let run = aws(&["ec2", "create-vpc", "--cidr-block", "10.9.0.0/16"]);
    run.expect_code(0);
    let vpc = run.json()["Vpc"]["VpcId"].as_str().unwrap().to_string();
    (Aws::load(None, None, None).await.unwrap().ec2(), vpc)
}

fn ingress(group: &Id) -> serde_json::Value {
    let group_id = group.known().expect("the group exists");
    let run = aws(&["ec2", "describe-security-groups", "--group-ids", group_id]);
    run.expect_code(0);
    run.json()["SecurityGroups"][0]["IpPermissions"].clone()
}

/// The project's groups in `vpc` for a listener on 80 open to `allow_from` and tasks on 8080.
async fn groups_on_80(
    ec2: &aws_sdk_ec2::Client,
    cv: &Converge,
    vpc: &str,
    allow_from: &[String],
    changes: &mut Vec<mldeploy::targets::Change>,
) -> anyhow::Result<security::SecurityGroups> {
    let vpc = Id::Known(vpc.to_string());
    security::ensure(ec2, cv, &vpc, &[80], allow_from, 8080, false, changes).await
}

#[tokio::test]
async fn the_tasks_admit_only_the_load_balancers_group_and_drift_is_undone() {
    let (ec2, vpc) = ec2_and_vpc().await;
    let cv = Converge {
        project: unique_name("it-sg"),
        dry_run: false,
    };
    let world = ["0.0.0.0/0".to_string()];
    let mut changes = Vec::new();
    let groups = groups_on_80(&ec2, &cv, &vpc, &world, &mut changes)
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
        groups.alb.known().unwrap()
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
        groups.tasks.known().unwrap(),
        "--protocol",
        "tcp",
        "--port",
        "8080",
        "--cidr",
        "0.0.0.0/0",
    ])
    .expect_code(0);
    let mut again = Vec::new();
    let same = groups_on_80(&ec2, &cv, &vpc, &world, &mut again)
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
    groups_on_80(&ec2, &cv, &vpc, &world, &mut third)
        .await
        .unwrap();
    assert!(third.iter().all(|c| c.action == Action::Keep), "{third:#?}");

    // network.allow_from narrows who reaches the load balancer: the world's rule goes.
    let office = ["203.0.113.0/24".to_string(), "2001:db8::/32".to_string()];
    let mut fourth = Vec::new();
    groups_on_80(&ec2, &cv, &vpc, &office, &mut fourth)
        .await
        .unwrap();
    let update = fourth
        .iter()
        .find(|c| c.action == Action::Update)
        .expect("an update");
    assert_eq!(update.name, security::alb_group_name(&cv.project));
    let alb = ingress(&groups.alb);
    assert_eq!(alb.as_array().unwrap().len(), 1, "{alb}");
    assert_eq!(alb[0]["IpRanges"][0]["CidrIp"], "203.0.113.0/24", "{alb}");
    assert_eq!(
        alb[0]["Ipv6Ranges"][0]["CidrIpv6"], "2001:db8::/32",
        "{alb}"
    );
    assert_eq!(alb[0]["IpRanges"].as_array().unwrap().len(), 1, "{alb}");
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
    let err = groups_on_80(&ec2, &cv, &vpc, &["0.0.0.0/0".to_string()], &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), ExitStatus::Environment);
    assert!(
        format!("{err:#}").contains("will not take over a group it did not create"),
        "{err:#}"
    );
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_holding(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    crate::support::files_under(dir)
        .into_iter()
        .filter(|f| {
            std::fs::read(f)
                .map(|bytes| String::from_utf8_lossy(&bytes).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

#[test]
fn no_secret_reaches_output_or_files_and_the_task_role_reads_only_the_model_prefix() {
    use crate::support::{
        assert_says, deployable, mldeploy_cmd, secret_in_config, unique_name, Run,
    };
    let (project, _bucket) = deployable("it-nosecret");
    let value = format!("s3cr3t-{}", unique_name("v"));
    secret_in_config(&project, "API_KEY", &value);

    // Credentials of this test's own, so they can be told from anything else on the machine.
    let access_key = format!("AKIA{}", unique_name("K").replace('-', "").to_uppercase());
    let secret_key = format!("secret-key-{}", unique_name("s"));
    let session_token = format!("session-token-{}", unique_name("t"));
    let home = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| -> Run {
        let mut cmd = mldeploy_cmd();
        cmd.env("AWS_ACCESS_KEY_ID", &access_key)
            .env("AWS_SECRET_ACCESS_KEY", &secret_key)
            .env("AWS_SESSION_TOKEN", &session_token)
            .env("HOME", home.path())
            .env("TMPDIR", tmp.path())
            .arg("-C")
            .arg(project.path())
            .args(args);
        Run::of(cmd)
    };
    let mut printed = String::new();
    for (args, code) in [
        (&["up", "-vv"][..], 0),
        (&["up", "-vv"][..], 0),
        (&["status", "-vv"][..], 0),
        (&["history", "-vv"][..], 0),
        (&["logs", "--since", "10m"][..], 0),
        (&["rollback", "--model-version", "99", "-vv"][..], 2),
    ] {
        let r = run(args);
        assert_eq!(r.code, code, "{args:?}\n{}", r.stderr);
        printed.push_str(&r.stdout);
        printed.push_str(&r.stderr);
    }
    assert_says(&printed, &["Region us-east-1"]);

    let token = aws(&["ecr", "get-authorization-token"])
        .expect_code(0)
        .json()["authorizationData"][0]["authorizationToken"]
        .as_str()
        .unwrap()
        .to_string();
    let password = aws(&["ecr", "get-login-password"])
        .expect_code(0)
        .stdout
        .trim()
        .to_string();
    for (what, needle) in [
        ("the ECR token", token.as_str()),
        ("the registry password", password.as_str()),
        ("the secret's value", value.as_str()),
        ("the secret access key", secret_key.as_str()),
        ("the session token", session_token.as_str()),
    ] {
        assert!(!printed.contains(needle), "{what} was printed");
        for dir in [home.path(), tmp.path(), project.path()] {
            assert_eq!(
                files_holding(dir, needle),
                Vec::<std::path::PathBuf>::new(),
                "{what} was written"
            );
        }
    }

    // The task role reads objects under the model's prefix, and nothing wider.
    let role = format!("{}-task", project.name);
    let names = aws(&["iam", "list-role-policies", "--role-name", &role])
        .expect_code(0)
        .json();
    for name in names["PolicyNames"].as_array().unwrap() {
        let policy = aws(&[
            "iam",
            "get-role-policy",
            "--role-name",
            &role,
            "--policy-name",
            name.as_str().unwrap(),
        ])
        .expect_code(0)
        .json()["PolicyDocument"]
            .to_string();
        assert!(
            !policy.contains("s3:*") && !policy.contains("\"*\""),
            "{policy}"
        );
        assert!(
            policy.contains(&format!("mlflow/models/{}/", project.name)),
            "{policy}"
        );
    }
    let attached = aws(&["iam", "list-attached-role-policies", "--role-name", &role])
        .expect_code(0)
        .json();
    assert_eq!(attached["AttachedPolicies"], serde_json::json!([]));
}
