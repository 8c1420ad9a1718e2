//! `mldeploy destroy` end to end against the sandbox: everything of the project goes, nothing
//! else does, and the model artifacts stay.

use crate::support::*;

/// How many of `project`'s resources each AWS API still lists, by what lists them.
fn leftovers(project: &str) -> Vec<(&'static str, usize)> {
    let tagged = format!("Name=tag:mldeploy:project,Values={project}");
    let count = |run: Run, key: &str| -> usize {
        if run.code != 0 {
            return 0; // "not found" answers are errors in awscli
        }
        run.json()[key].as_array().map(Vec::len).unwrap_or(0)
    };
    let active_services = {
        let run = aws(&[
            "ecs",
            "describe-services",
            "--cluster",
            project,
            "--services",
            project,
        ]);
        if run.code != 0 {
            0
        } else {
            run.json()["services"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["status"] == "ACTIVE")
                .count()
        }
    };
    let active_clusters = {
        let run = aws(&["ecs", "describe-clusters", "--clusters", project]);
        run.json()["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "ACTIVE")
            .count()
    };
    let log_groups = {
        let run = aws(&[
            "logs",
            "describe-log-groups",
            "--log-group-name-prefix",
            &format!("/ecs/{project}"),
        ]);
        run.json()["logGroups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["logGroupName"] == format!("/ecs/{project}"))
            .count()
    };
    let roles = [format!("{project}-execution"), format!("{project}-task")]
        .iter()
        .filter(|r| aws(&["iam", "get-role", "--role-name", r]).code == 0)
        .count();
    vec![
        ("ecs services", active_services),
        ("ecs clusters", active_clusters),
        (
            "task definitions",
            count(
                aws(&[
                    "ecs",
                    "list-task-definitions",
                    "--family-prefix",
                    project,
                    "--status",
                    "ACTIVE",
                ]),
                "taskDefinitionArns",
            ),
        ),
        (
            "load balancers",
            count(
                aws(&["elbv2", "describe-load-balancers", "--names", project]),
                "LoadBalancers",
            ),
        ),
        (
            "target groups",
            count(
                aws(&["elbv2", "describe-target-groups", "--names", project]),
                "TargetGroups",
            ),
        ),
        ("log groups", log_groups),
        ("iam roles", roles),
        (
            "security groups",
            count(
                aws(&["ec2", "describe-security-groups", "--filters", &tagged]),
                "SecurityGroups",
            ),
        ),
        (
            "subnets",
            count(
                aws(&["ec2", "describe-subnets", "--filters", &tagged]),
                "Subnets",
            ),
        ),
        (
            "route tables",
            count(
                aws(&["ec2", "describe-route-tables", "--filters", &tagged]),
                "RouteTables",
            ),
        ),
        (
            "internet gateways",
            count(
                aws(&["ec2", "describe-internet-gateways", "--filters", &tagged]),
                "InternetGateways",
            ),
        ),
        (
            "vpcs",
            count(aws(&["ec2", "describe-vpcs", "--filters", &tagged]), "Vpcs"),
        ),
        (
            "ecr repositories",
            count(
                aws(&[
                    "ecr",
                    "describe-repositories",
                    "--repository-names",
                    project,
                ]),
                "repositories",
            ),
        ),
    ]
}

fn nothing_left(project: &str) -> bool {
    leftovers(project).iter().all(|(_, n)| *n == 0)
}

#[test]
fn destroy_removes_every_resource_of_the_project_and_nothing_else() {
    let (project, bucket) = deployable("it-destroy");
    let (neighbour, _) = deployable("it-destroyn");
    project.mldeploy(&["up"]).expect_code(0);
    neighbour.mldeploy(&["up"]).expect_code(0);
    let name = &project.name;
    assert!(
        leftovers(name).iter().all(|(_, n)| *n > 0),
        "{:?}",
        leftovers(name)
    );
    // A look-alike: a group named like the project's tasks group, in someone else's VPC, untagged.
    let vpc = aws(&["ec2", "create-vpc", "--cidr-block", "10.30.0.0/16"]).json()["Vpc"]["VpcId"]
        .as_str()
        .unwrap()
        .to_string();
    let lookalike = aws(&[
        "ec2",
        "create-security-group",
        "--group-name",
        &format!("{name}-tasks"),
        "--description",
        "not mldeploy's",
        "--vpc-id",
        &vpc,
    ])
    .json()["GroupId"]
        .as_str()
        .unwrap()
        .to_string();

    let plan = project.mldeploy(&["destroy", "--dry-run", "--output", "json"]);
    plan.expect_code(0);
    assert!(
        plan.json()["deleted"].as_array().unwrap().len() >= 17,
        "{}",
        plan.stdout
    );
    assert!(!nothing_left(name), "a dry run deletes nothing");

    let run = project.mldeploy(&["destroy", "--yes", "--output", "json"]);
    run.expect_code(0);
    assert_eq!(
        leftovers(name).iter().filter(|(_, n)| *n > 0).count(),
        0,
        "{:?}",
        leftovers(name)
    );
    let report = run.json();
    assert!(
        report["not_ours"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == lookalike.as_str()),
        "the look-alike is reported: {report}"
    );
    assert!(
        aws(&["ec2", "describe-security-groups", "--group-ids", &lookalike]).code == 0,
        "the look-alike survives"
    );
    for version in ["6", "7"] {
        let key = format!("mlflow/models/{name}/{version}/MLmodel");
        assert_eq!(
            aws(&["s3api", "head-object", "--bucket", &bucket, "--key", &key]).code,
            0,
            "model {version} is still in S3"
        );
    }
    assert!(
        run.stderr.contains("deleted ECS service")
            || report["deleted"].as_array().unwrap().len() >= 17
    );
    assert!(!lock_exists(&bucket, name), "the lock object is gone");
    // The neighbour still serves.
    let status = neighbour.mldeploy(&["status", "--output", "json"]);
    status.expect_code(0);
    assert_eq!(status.json()["healthy"], true);

    let again = project.mldeploy(&["destroy", "--yes"]);
    again.expect_code(0);
    assert!(
        again
            .stdout
            .contains(&format!("{name}: nothing to destroy")),
        "{}",
        again.stdout
    );
    assert!(
        again.stdout.contains("left security group"),
        "{}",
        again.stdout
    );
}

#[test]
fn destroy_without_yes_and_without_a_terminal_exits_2_and_deletes_nothing() {
    let (project, _) = deployable("it-destroyno");
    project.mldeploy(&["up"]).expect_code(0);
    let before = leftovers(&project.name);
    let run = project.mldeploy(&["destroy"]);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("there is no terminal to confirm on: pass --yes")
            && run.stderr.contains("nothing was deleted"),
        "{}",
        run.stderr
    );
    assert_eq!(leftovers(&project.name), before);

    // Keeping the images and the logs keeps exactly those.
    project
        .mldeploy(&["destroy", "--yes", "--keep-images", "--keep-logs"])
        .expect_code(0);
    let left: Vec<_> = leftovers(&project.name)
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(what, _)| what)
        .collect();
    assert_eq!(left, ["log groups", "ecr repositories"]);
}

#[test]
fn destroy_while_an_up_holds_the_lock_exits_4_and_deletes_nothing() {
    let (project, bucket) = deployable("it-destroylock");
    project.mldeploy(&["up"]).expect_code(0);
    let before = leftovers(&project.name);
    let run = interrupt_during_build(&project, "up", || {
        assert!(lock_exists(&bucket, &project.name), "up holds the lock");
        let destroy = project.mldeploy(&["destroy", "--yes"]);
        destroy.expect_code(4);
        assert!(
            destroy.stderr.contains("another deploy holds the lock")
                && destroy.stderr.contains("`mldeploy up`"),
            "{}",
            destroy.stderr
        );
    });
    assert_eq!(run.code, Some(130));
    assert_eq!(leftovers(&project.name), before, "nothing was deleted");
    assert!(!lock_exists(&bucket, &project.name));
}

#[test]
fn a_destroy_that_fails_part_way_goes_on_reports_what_is_left_and_a_rerun_finishes() {
    let (project, _) = deployable("it-destroypart");
    project.mldeploy(&["up"]).expect_code(0);
    let name = &project.name;
    // Someone else's service in the project's cluster: ECS will not delete the cluster under it.
    let ours = service_of(name);
    let vpc = &ours["networkConfiguration"]["awsvpcConfiguration"];
    let network = format!(
        "awsvpcConfiguration={{subnets=[{}],securityGroups=[{}],assignPublicIp=ENABLED}}",
        vpc["subnets"][0].as_str().unwrap(),
        vpc["securityGroups"][0].as_str().unwrap()
    );
    aws(&[
        "ecs",
        "create-service",
        "--cluster",
        name,
        "--service-name",
        "someone-elses",
        "--task-definition",
        ours["taskDefinition"].as_str().unwrap(),
        "--desired-count",
        "0",
        "--launch-type",
        "FARGATE",
        "--network-configuration",
        &network,
    ])
    .expect_code(0);

    // Long enough for the network interfaces of the stopped tasks to go (the sandbox keeps them
    // 4 s, as AWS keeps them minutes), while the cluster never empties.
    let run = project.mldeploy(&["destroy", "--yes", "--timeout", "12s"]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains(&format!("could not delete ECS cluster {name}"))
            && run.stderr.contains("ClusterContainsServicesException"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("1 resource(s) could not be deleted")
            && run.stderr.contains("run `mldeploy destroy` again"),
        "{}",
        run.stderr
    );
    let left: Vec<_> = leftovers(name)
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(w, _)| w)
        .collect();
    assert_eq!(
        left,
        ["ecs clusters"],
        "everything after the cluster was still deleted"
    );

    aws(&[
        "ecs",
        "delete-service",
        "--cluster",
        name,
        "--service",
        "someone-elses",
        "--force",
    ])
    .expect_code(0);
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
    assert!(nothing_left(name), "{:?}", leftovers(name));
}

/// `mldeploy destroy` on a pseudo-terminal (util-linux `script`), typing `answer` at its prompt.
fn destroy_on_a_terminal(project: &Project, answer: &str) -> Run {
    use std::io::Write;
    let command = format!(
        "{} -C {} destroy",
        env!("CARGO_BIN_EXE_mldeploy"),
        project.path().display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("NO_COLOR", "1")
        .env_remove("CI")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux script runs");
    writeln!(child.stdin.take().unwrap(), "{answer}").unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn on_a_terminal_destroy_asks_for_the_project_name() {
    let (project, _) = deployable("it-destroytty");
    project.mldeploy(&["up"]).expect_code(0);
    let name = &project.name;
    let refused = destroy_on_a_terminal(&project, "no");
    refused.expect_code(2);
    // On a terminal, stdout and stderr both arrive through the one pty.
    assert!(
        refused
            .stdout
            .contains(&format!("Type the project name ({name})"))
            && refused
                .stdout
                .contains("not confirmed; nothing was deleted"),
        "{}",
        refused.stdout
    );
    assert!(!nothing_left(name));
    destroy_on_a_terminal(&project, name).expect_code(0);
    assert!(nothing_left(name), "{:?}", leftovers(name));
}

#[test]
fn destroy_goes_on_without_the_lock_when_its_bucket_is_gone() {
    let (project, bucket) = deployable("it-destroynobucket");
    project.mldeploy(&["up"]).expect_code(0);
    aws(&["s3", "rb", &format!("s3://{bucket}"), "--force"]).expect_code(0);
    let run = project.mldeploy(&["destroy", "--yes"]);
    run.expect_code(0);
    assert_says(
        &run.stderr,
        &[
            &format!("the lock bucket {bucket} no longer exists"),
            "without the deploy lock",
        ],
    );
    let left: Vec<_> = leftovers(&project.name)
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn destroy_waits_for_the_network_interfaces_stopped_tasks_leave_and_says_so() {
    let (project, _) = deployable("it-destroyeni");
    project.mldeploy(&["up"]).expect_code(0);
    let enis = |project: &str| {
        let service = service_of(project);
        let subnet = service["networkConfiguration"]["awsvpcConfiguration"]["subnets"][0]
            .as_str()
            .unwrap()
            .to_string();
        aws(&[
            "ec2",
            "describe-network-interfaces",
            "--filters",
            &format!("Name=subnet-id,Values={subnet}"),
        ])
        .expect_code(0)
        .json()["NetworkInterfaces"]
            .as_array()
            .unwrap()
            .len()
    };
    assert!(
        enis(&project.name) > 0,
        "the task has its network interface"
    );
    let run = project.mldeploy(&["destroy", "--yes"]);
    run.expect_code(0);
    assert_says(
        &run.stderr,
        &[
            "waiting to delete security group",
            "has a dependent object",
            "network interface",
        ],
    );
    assert!(
        leftovers(&project.name).iter().all(|(_, n)| *n == 0),
        "{:?}",
        leftovers(&project.name)
    );
}
