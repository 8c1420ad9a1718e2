//! `mldeploy up` and `plan` end to end against the sandbox.

use std::process::Stdio;

use crate::support::*;

fn tagged_vpcs(project: &str) -> usize {
    let run = aws(&[
        "ec2",
        "describe-vpcs",
        "--filters",
        &format!("Name=tag:mldeploy:project,Values={project}"),
    ]);
    run.json()["Vpcs"].as_array().unwrap().len()
}

#[test]
fn up_deploys_reports_and_a_second_up_changes_nothing() {
    let (project, bucket) = deployable("it-up");
    let run = project.mldeploy(&["up", "--output", "json"]);
    run.expect_code(0);
    let report = run.json();
    for key in [
        "url",
        "image",
        "task_definition",
        "model_path",
        "model_version",
        "cluster",
        "service",
        "deployment_id",
    ] {
        assert!(!report[key].is_null(), "{key} missing from {report}");
    }
    assert_eq!(report["model_version"], "6");
    assert_eq!(
        report["model_path"],
        format!("mlflow/models/{}/6", project.name)
    );
    assert!(
        report["image"].as_str().unwrap().contains("@sha256:"),
        "deploys by digest: {report}"
    );
    assert!(report["url"].as_str().unwrap().starts_with("http://"));
    assert_eq!(report["healthy_targets"], 1);
    // The smoke test asked the service through its load balancer: /ready, then the prediction.
    let smoke = report["smoke"].as_array().unwrap();
    assert_eq!(smoke.len(), 2, "{report}");
    assert!(smoke[0]["url"].as_str().unwrap().ends_with("/ready"));
    assert_eq!(smoke[1]["method"], "POST");
    assert_eq!(smoke[1]["status"], 200);
    // And so does an independent client: the container really serves model version 6.
    let url = report["url"].as_str().unwrap();
    let answer = predict_through(url);
    answer.expect_code(0);
    assert!(
        answer
            .stdout
            .contains(&format!("mlflow/models/{}/6", project.name)),
        "{}",
        answer.stdout
    );
    assert!(
        run.stderr.contains("Deployment ") && run.stderr.contains(" completed in "),
        "{}",
        run.stderr
    );
    // The lock is released after a successful run.
    assert!(
        !lock_exists(&bucket, &project.name),
        "the lock was left behind"
    );

    let again = project.mldeploy(&["up", "--output", "json"]);
    again.expect_code(0);
    let second = again.json();
    assert!(
        second["deployment_id"].is_null(),
        "no UpdateService when nothing changed: {second}"
    );
    assert_eq!(second["task_definition"], report["task_definition"]);
    assert!(
        second["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["action"] == "keep"),
        "{second}"
    );
    assert_eq!(revisions(&project.name), 1);

    let newer = project.mldeploy(&["up", "--model-version", "7", "--output", "json"]);
    newer.expect_code(0);
    let third = newer.json();
    assert_eq!(revisions(&project.name), 2);
    assert!(!third["deployment_id"].is_null());
    let td = aws(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        third["task_definition"].as_str().unwrap(),
    ]);
    let env = td.json()["taskDefinition"]["containerDefinitions"][0]["environment"].clone();
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "MODEL_PATH"
                && e["value"] == format!("mlflow/models/{}/7", project.name)),
        "{env}"
    );
    assert_eq!(serving(&project.name), (format!("{}:2", project.name), 1));
    let answer = predict_through(url);
    assert!(
        answer
            .stdout
            .contains(&format!("mlflow/models/{}/7", project.name)),
        "the load balancer now reaches version 7's tasks: {}",
        answer.stdout
    );
}

#[test]
fn a_failed_smoke_test_redeploys_the_revision_that_served_and_exits_1() {
    let (project, bucket) = deployable("it-upsmoke");
    project.mldeploy(&["up"]).expect_code(0);
    // The new image is healthy and ready, but its prediction endpoint answers HTML.
    project.predict("echo '<html>internal error</html>'");
    let run = project.mldeploy(&["up"]);
    run.expect_code(1);
    let name = &project.name;
    assert!(
        run.stderr.contains("smoke test failed: POST http://")
            && run.stderr.contains("/cgi-bin/predict answered 200 but the body is not JSON: <html>internal error</html>"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "{name}:2 failed its smoke test; rolled back: {name}:1 serves again"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(serving(name), (format!("{name}:1"), 1));
    let url = format!(
        "http://{}",
        aws(&["elbv2", "describe-load-balancers", "--names", name]).json()["LoadBalancers"][0]
            ["DNSName"]
            .as_str()
            .unwrap()
    );
    assert!(
        predict_through(&url).stdout.contains("\"prediction\""),
        "the old image answers again"
    );
    assert!(!lock_exists(&bucket, name), "the lock was released");
}

#[test]
fn with_no_rollback_a_failing_revision_keeps_serving_and_a_rerun_still_fails() {
    let (project, _) = deployable("it-upnorollback");
    project.mldeploy(&["up"]).expect_code(0);
    project.predict("echo 'not json'");
    let run = project.mldeploy(&["up", "--no-rollback"]);
    run.expect_code(1);
    let name = &project.name;
    assert!(
        run.stderr.contains(&format!(
            "{name}:2 fails its smoke test and keeps serving (--no-rollback)"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(serving(name), (format!("{name}:2"), 1));
    // Nothing changed since, so nothing is deployed: but success is still not reported.
    let again = project.mldeploy(&["up", "--output", "json"]);
    again.expect_code(1);
    assert!(
        again.stderr.contains(&format!(
            "{name}:2, which was serving already, fails its smoke test"
        )),
        "{}",
        again.stderr
    );
    assert_eq!(again.json()["exit_code"], 1);
}

#[test]
fn a_crash_looping_image_exits_1_with_its_exit_code_and_ecs_rolls_back() {
    let (project, _) = deployable("it-upcrash");
    project.mldeploy(&["up"]).expect_code(0);
    project.write(
        "Dockerfile",
        &SERVING_DOCKERFILE.replace(
            "CMD [",
            "CMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo model not found >&2; exit 3\"]\n#",
        ),
    );
    let run = project.mldeploy(&["up"]);
    run.expect_code(1);
    let name = &project.name;
    assert!(
        run.stderr
            .contains("Essential container in task exited (exit code 3)"),
        "{}",
        run.stderr
    );
    // Whichever the watcher saw first: the breaker's rollback or the third stopped task.
    assert!(
        run.stderr.contains(&format!("{name}:1 serves again"))
            || run.stderr.contains(&format!("ECS rolled back to {name}:1"))
            || run.stderr.contains("keep stopping (3 stopped)"),
        "{}",
        run.stderr
    );
    eventually(30, "ECS's rollback to complete", || {
        (serving(name) == (format!("{name}:1"), 1)).then_some(())
    });
    // ECS's history: the rolled-back deployment never served, and makes no new one.
    let statuses = eventually(30, "the service deployment to end", || {
        let list = aws(&[
            "ecs",
            "list-service-deployments",
            "--cluster",
            name,
            "--service",
            name,
        ]);
        // ECS promises no order: newest first by creation time.
        let mut listed: Vec<(String, String)> = list.json()["serviceDeployments"]
            .as_array()?
            .iter()
            .map(|d| {
                (
                    d["createdAt"].to_string(),
                    d["status"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        listed.sort();
        let statuses: Vec<String> = listed.into_iter().rev().map(|(_, s)| s).collect();
        (statuses.first().map(String::as_str) == Some("ROLLBACK_SUCCESSFUL")).then_some(statuses)
    });
    assert_eq!(statuses, ["ROLLBACK_SUCCESSFUL", "SUCCESSFUL"]);
    let back = project.mldeploy(&["rollback"]);
    back.expect_code(2);
    assert_says(
        &back.stderr,
        &[&format!("holds no release that served before {name}:1")],
    );
}

#[test]
fn a_missing_model_version_exits_2_before_any_change() {
    let (project, _) = deployable("it-upmissing");
    let run = project.mldeploy(&["up", "--model-version", "99"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("model version 99 does not exist"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("versions present (newest first): 7, 6"),
        "{}",
        run.stderr
    );
    assert_eq!(tagged_vpcs(&project.name), 0, "nothing was created");
    let repo = aws(&[
        "ecr",
        "describe-repositories",
        "--repository-names",
        &project.name,
    ]);
    assert_ne!(repo.code, 0, "no repository was created");
}

#[test]
fn a_plan_shows_the_stack_and_changes_nothing() {
    let (project, _) = deployable("it-plan");
    // [service] is the file's last table.
    project
        .append_config("cpu = 1024\nmemory = 2048\ndesired_count = 2\nlog_retention_days = 30\n");
    let run = project.mldeploy(&["plan", "--output", "json"]);
    run.expect_code(0);
    let plan = run.json();
    assert_eq!(plan["dry_run"], true);
    // By hand, from us-east-1's prices: Fargate 2 x 730 h x (1 x 0.04048 + 2 x 0.004445) =
    // 72.0802; load balancer 730 h x (0.0225 + 1 LCU x 0.008) = 22.265; public IPv4 (2 tasks
    // and the load balancer's 2 zones) 4 x 730 h x 0.005 = 14.60; logs 2 GB x 0.50 + 2 GB x
    // (30 x 24 / 730) months x 0.03 = 1.0592. Total 110.0044.
    assert_eq!(plan["cost"]["monthly_usd"], 110.0, "{}", plan["cost"]);
    assert_eq!(plan["cost"]["prices_of"], "us-east-1");
    let text = project.mldeploy(&["plan"]);
    text.expect_code(0);
    assert_says(
        &text.stdout,
        &[
            "Estimated cost: about 110 USD a month (us-east-1 list prices",
            "Not counted:",
        ],
    );
    let resources: Vec<_> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["resource"].as_str().unwrap().to_string())
        .collect();
    for wanted in [
        "VPC",
        "security group",
        "load balancer",
        "target group",
        "listener",
        "IAM role",
        "log group",
        "ECS cluster",
        "task definition",
        "ECS service",
    ] {
        assert!(
            resources.iter().any(|r| r == wanted),
            "{wanted} missing from the plan: {resources:?}"
        );
    }
    assert_eq!(tagged_vpcs(&project.name), 0);
    assert_eq!(revisions(&project.name), 0);
}

#[test]
fn of_two_concurrent_ups_exactly_one_proceeds_and_the_other_exits_4() {
    let (project, _) = deployable("it-uprace");
    // Build first, so both runs reach the lock at once rather than one while the other builds.
    project.mldeploy(&["build"]).expect_code(0);
    let spawn = || {
        mldeploy_cmd()
            .arg("-C")
            .arg(project.path())
            .arg("up")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let mut codes = [a.status.code().unwrap(), b.status.code().unwrap()];
    codes.sort();
    let stderr = format!(
        "{}\n{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    assert_eq!(codes, [0, 4], "{stderr}");
    assert!(
        stderr.contains("another deploy holds the lock") && stderr.contains("`mldeploy up`"),
        "{stderr}"
    );
}

#[test]
fn an_interrupted_up_releases_its_lock_and_exits_130() {
    let (project, bucket) = deployable("it-upint");
    // The interrupt lands in the build, while the lock is held.
    let run = interrupt_during_build(&project, "up", || {
        assert!(lock_exists(&bucket, &project.name), "up holds the lock")
    });
    assert_eq!(run.code, Some(130), "{}", run.stderr);
    let location = format!("s3://{bucket}/.mldeploy/{}/lock", project.name);
    assert!(
        run.stderr
            .contains(&format!("released the deploy lock {location}")),
        "{}",
        run.stderr
    );
    assert!(!lock_exists(&bucket, &project.name), "the lock is gone");
}

#[test]
fn a_projects_own_template_is_rendered_and_registered() {
    let (project, _) = deployable("it-uptemplate");
    with_template(&project, |t| {
        t.replace(
            r#"{ "name": "MODEL_PATH", "value": {{ model_path | tojson }} }"#,
            r#"{ "name": "MODEL_PATH", "value": {{ model_path | tojson }} }, { "name": "FLAVOUR", "value": "custom" }"#,
        )
    });
    let run = project.mldeploy(&["up", "--output", "json"]);
    run.expect_code(0);
    let td = aws(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        run.json()["task_definition"].as_str().unwrap(),
    ]);
    let env = td.json()["taskDefinition"]["containerDefinitions"][0]["environment"].clone();
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "FLAVOUR" && e["value"] == "custom"),
        "{env}"
    );
}

#[test]
fn a_template_mldeploy_cannot_register_exits_2_before_any_change() {
    let (project, bucket) = deployable("it-upbadtemplate");
    with_template(&project, |t| {
        t.replace(
            r#""essential": true,"#,
            r#""essential": true, "ulimits": [],"#,
        )
    });
    let run = project.mldeploy(&["up"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("deploy/task-definition.json")
            && run.stderr.contains("unknown field `ulimits`"),
        "{}",
        run.stderr
    );
    assert_eq!(tagged_vpcs(&project.name), 0);
    assert!(!lock_exists(&bucket, &project.name), "no lock was taken");
    let repo = aws(&[
        "ecr",
        "describe-repositories",
        "--repository-names",
        &project.name,
    ]);
    assert_ne!(repo.code, 0, "no repository was created");
}

/// Two public subnets of a VPC mldeploy did not create, in two zones: the VPC's main route
/// table sends 0.0.0.0/0 to its internet gateway, so tasks with public IPs reach ECR.
fn users_subnets() -> (String, Vec<String>) {
    let (vpc, subnets) = isolated_subnets();
    let igw = aws(&["ec2", "create-internet-gateway"]).json()["InternetGateway"]
        ["InternetGatewayId"]
        .as_str()
        .unwrap()
        .to_string();
    aws(&[
        "ec2",
        "attach-internet-gateway",
        "--internet-gateway-id",
        &igw,
        "--vpc-id",
        &vpc,
    ])
    .expect_code(0);
    let main = aws(&[
        "ec2",
        "describe-route-tables",
        "--filters",
        &format!("Name=vpc-id,Values={vpc}"),
        "Name=association.main,Values=true",
    ])
    .json()["RouteTables"][0]["RouteTableId"]
        .as_str()
        .unwrap()
        .to_string();
    aws(&[
        "ec2",
        "create-route",
        "--route-table-id",
        &main,
        "--destination-cidr-block",
        "0.0.0.0/0",
        "--gateway-id",
        &igw,
    ])
    .expect_code(0);
    (vpc, subnets)
}

/// Two subnets of a new VPC with no way out: no gateway, no endpoints.
fn isolated_subnets() -> (String, Vec<String>) {
    let vpc = aws(&["ec2", "create-vpc", "--cidr-block", "10.20.0.0/16"]).json()["Vpc"]["VpcId"]
        .as_str()
        .unwrap()
        .to_string();
    let subnets = [
        ("10.20.1.0/24", "us-east-1a"),
        ("10.20.2.0/24", "us-east-1b"),
    ]
    .iter()
    .map(|(cidr, zone)| {
        let run = aws(&[
            "ec2",
            "create-subnet",
            "--vpc-id",
            &vpc,
            "--cidr-block",
            cidr,
            "--availability-zone",
            zone,
        ]);
        run.json()["Subnet"]["SubnetId"]
            .as_str()
            .unwrap()
            .to_string()
    })
    .collect();
    (vpc, subnets)
}

fn name_subnets(project: &Project, subnets: &[&str]) {
    let mut config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    let list: Vec<String> = subnets.iter().map(|s| format!("\"{s}\"")).collect();
    config.push_str(&format!("[network]\nsubnets = [{}]\n", list.join(", ")));
    std::fs::write(project.path().join("mldeploy.toml"), config).unwrap();
}

#[test]
fn subnets_from_which_a_task_could_not_reach_ecr_are_refused_before_anything_changes() {
    let (project, _) = deployable("it-upisolated");
    let (_, subnets) = isolated_subnets();
    name_subnets(&project, &[&subnets[0], &subnets[1]]);
    let run = project.mldeploy(&["up"]);
    run.expect_code(2);
    assert_says(
        &run.stderr,
        &[
            "network.subnets",
            &subnets[0],
            "no internet or NAT gateway",
            "an S3 gateway endpoint on its route table",
            "a ecr.api interface endpoint with private DNS",
        ],
    );
    let cluster = aws(&["ecs", "describe-clusters", "--clusters", &project.name]).json();
    assert!(
        !cluster["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["status"] == "ACTIVE"),
        "{cluster}"
    );
}

#[test]
fn up_deploys_into_the_subnets_network_names_and_creates_no_vpc() {
    let (project, _) = deployable("it-upsubnets");
    let (vpc, subnets) = users_subnets();
    name_subnets(&project, &[&subnets[0], &subnets[1]]);
    let run = project.mldeploy(&["up", "--output", "json"]);
    run.expect_code(0);
    assert_eq!(tagged_vpcs(&project.name), 0);
    let lb = aws(&["elbv2", "describe-load-balancers", "--names", &project.name]).json()
        ["LoadBalancers"][0]
        .clone();
    assert_eq!(lb["VpcId"], vpc.as_str());
    let svc = service_of(&project.name);
    let used: Vec<_> = svc["networkConfiguration"]["awsvpcConfiguration"]["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(used, subnets);
    let groups = aws(&[
        "ec2",
        "describe-security-groups",
        "--filters",
        &format!("Name=vpc-id,Values={vpc}"),
        &format!("Name=tag:mldeploy:project,Values={}", project.name),
    ]);
    assert_eq!(
        groups.json()["SecurityGroups"].as_array().unwrap().len(),
        2,
        "the groups live in the user's VPC"
    );
}

#[test]
fn an_unknown_subnet_exits_3_before_any_change() {
    let (project, bucket) = deployable("it-upnosubnet");
    name_subnets(
        &project,
        &["subnet-00000000000000000", "subnet-00000000000000001"],
    );
    let run = project.mldeploy(&["up"]);
    run.expect_code(3);
    assert!(
        run.stderr.contains("network.subnets names a subnet"),
        "{}",
        run.stderr
    );
    assert!(!lock_exists(&bucket, &project.name));
    assert_ne!(
        aws(&[
            "ecr",
            "describe-repositories",
            "--repository-names",
            &project.name
        ])
        .code,
        0,
        "nothing was pushed"
    );
}

#[test]
fn targets_that_fail_their_health_checks_fail_the_deployment_with_the_reason() {
    let (project, _) = deployable("it-upunhealthy");
    // The web server answers /ready but not the load balancer's /health: 404. Within the grace
    // period ECS leaves the unhealthy task running, which is when the watcher sees why.
    std::fs::remove_file(project.path().join("app/health")).unwrap();
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{config}model_load_time = \"5m\"\n")).unwrap();
    let run = project.mldeploy(&["up", "-v"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains(
            "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("Health checks failed with these codes: [404]"),
        "the unhealthy target's reason is shown while waiting: {}",
        run.stderr
    );
}

#[test]
fn an_interrupt_during_the_rollout_says_what_was_in_flight_and_releases_the_lock() {
    signal_during_rollout("INT");
}

/// A security group of the user's in `vpc`, admitting tcp/5432 from `cidr`.
fn users_group(vpc: &str, name: &str, cidr: &str) -> String {
    let id = aws(&[
        "ec2",
        "create-security-group",
        "--group-name",
        &unique_name(name),
        "--description",
        "the user's own",
        "--vpc-id",
        vpc,
    ])
    .json()["GroupId"]
        .as_str()
        .unwrap()
        .to_string();
    aws(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &id,
        "--protocol",
        "tcp",
        "--port",
        "5432",
        "--cidr",
        cidr,
    ])
    .expect_code(0);
    id
}

fn ingress_of(group: &str) -> serde_json::Value {
    aws(&["ec2", "describe-security-groups", "--group-ids", group]).json()["SecurityGroups"][0]
        ["IpPermissions"]
        .clone()
}

#[test]
fn security_groups_network_names_join_the_tasks_and_are_never_modified() {
    let (project, bucket) = deployable("it-upgroups");
    let (vpc, subnets) = users_subnets();
    let open = users_group(&vpc, "wide-open", "0.0.0.0/0");
    let db = users_group(&vpc, "db-clients", "10.20.0.0/16");
    name_subnets(&project, &[&subnets[0], &subnets[1]]);
    let config = project.path().join("mldeploy.toml");
    let with_groups = |group: &str| {
        let text = std::fs::read_to_string(&config).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("security_groups"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&config, format!("{text}security_groups = [\"{group}\"]\n")).unwrap();
    };

    with_groups(&open);
    let refused = project.mldeploy(&["up"]);
    refused.expect_code(2);
    assert!(
        refused.stderr.contains(&format!(
            "network.security_groups: {open} admits the whole internet (tcp/5432 from 0.0.0.0/0)"
        )),
        "{}",
        refused.stderr
    );
    assert!(
        !lock_exists(&bucket, &project.name),
        "refused before the lock"
    );

    with_groups(&db);
    let before = ingress_of(&db);
    let run = project.mldeploy(&["up", "--output", "json"]);
    run.expect_code(0);
    let svc = service_of(&project.name);
    let groups: Vec<&str> = svc["networkConfiguration"]["awsvpcConfiguration"]["securityGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert!(groups.contains(&db.as_str()), "{groups:?}");
    assert_eq!(
        ingress_of(&db),
        before,
        "the user's group is left as it was"
    );
    assert!(
        run.json()["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == db.as_str()
                && c["action"] == "keep"
                && c["detail"] == "named in [network], attached to the tasks"),
        "{}",
        run.stdout
    );
    // Dropping the group from mldeploy.toml detaches it, through a new deployment.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(&format!("security_groups = [\"{db}\"]\n"), ""),
    )
    .unwrap();
    let detached = project.mldeploy(&["up", "--output", "json"]);
    detached.expect_code(0);
    assert!(
        !detached.json()["deployment_id"].is_null(),
        "{}",
        detached.stdout
    );
}

#[test]
fn secrets_reach_the_container_through_value_from_and_are_never_printed() {
    let (project, _) = deployable("it-upsecrets");
    let value = format!("pw-{}", project.name);
    let arn = secret_in_config(&project, "DB_PASSWORD", &value);
    // The service says how long its password is, never what it is.
    project.predict(r#"echo "{\"password_length\": ${#DB_PASSWORD}}""#);

    let run = project.mldeploy(&["up", "--output", "json", "-vv"]);
    run.expect_code(0);
    let report = run.json();
    let td = aws(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        report["task_definition"].as_str().unwrap(),
    ])
    .json();
    assert_eq!(
        td["taskDefinition"]["containerDefinitions"][0]["secrets"],
        serde_json::json!([{"name": "DB_PASSWORD", "valueFrom": arn}])
    );
    let policy = execution_role_policy(&project.name);
    let reads: Vec<_> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Action"][0] == "secretsmanager:GetSecretValue")
        .collect();
    assert_eq!(reads.len(), 1, "{policy}");
    assert_eq!(
        reads[0]["Resource"],
        serde_json::json!([arn]),
        "exactly that secret"
    );
    let answer = predict_through(report["url"].as_str().unwrap());
    assert!(
        answer
            .stdout
            .contains(&format!("\"password_length\": {}", value.len())),
        "the container got the secret: {}",
        answer.stdout
    );
    assert!(
        !run.stdout.contains(&value) && !run.stderr.contains(&value),
        "the secret's value was printed"
    );
}

#[test]
fn a_first_up_waits_for_iam_to_settle_and_a_later_up_does_not() {
    let (project, _) = deployable("it-iamdelay");
    // mldeploy's 10 s for IAM, 3 wall seconds here: longer than the rest of the stack and the
    // build of this small image take after the roles are made, so the wait shows.
    let mut cmd = mldeploy_cmd();
    cmd.arg("-C")
        .arg(project.path())
        .arg("up")
        .env("MLDEPLOY_TIME_SCALE", "0.3");
    let first = Run::of(cmd);
    first.expect_code(0);
    assert_says(
        &first.stderr,
        &["Waiting", "for IAM to make the changed role usable"],
    );
    let second = project.mldeploy(&["up", "--force"]);
    second.expect_code(0);
    assert!(!second.stderr.contains("for IAM"), "{}", second.stderr);

    // The sandbox keeps IAM's delay: tasks started before IAM has the execution role's change
    // stop as ECS stops them (the circuit breaker may roll back, and its rollback's tasks stop
    // too), and once IAM has it the service is healthy again. `status --wait` follows the
    // rollbacks and does not call a service failed for a primary ECS has since replaced.
    let role = format!("{}-execution", project.name);
    rewrite_role_policy(&role, "mldeploy-pull-and-log");
    aws(&[
        "ecs",
        "update-service",
        "--cluster",
        &project.name,
        "--service",
        &project.name,
        "--force-new-deployment",
    ])
    .expect_code(0);
    let reason = eventually(20, "a task stopped for the role", || {
        stopped_tasks(&project.name).iter().find_map(|t| {
            t["stoppedReason"]
                .as_str()
                .filter(|r| r.contains("unable to assume the role"))
                .map(str::to_string)
        })
    });
    assert!(reason.contains(&role), "{reason}");
    let status = project.mldeploy(&["status", "--wait", "--timeout", "60s"]);
    status.expect_code(0);
}

/// awscli with a task's credentials, as the endpoint gave them.
fn as_task(credentials: &serde_json::Value, args: &[&str]) -> Run {
    let mut cmd = std::process::Command::new("aws");
    cmd.args(args)
        .env(
            "AWS_ACCESS_KEY_ID",
            credentials["AccessKeyId"].as_str().unwrap(),
        )
        .env(
            "AWS_SECRET_ACCESS_KEY",
            credentials["SecretAccessKey"].as_str().unwrap(),
        )
        .env("AWS_SESSION_TOKEN", credentials["Token"].as_str().unwrap());
    Run::of(cmd)
}

#[test]
fn a_task_gets_its_roles_credentials_which_read_its_model_prefix_only_and_only_once_iam_has_a_change(
) {
    let (project, bucket) = deployable("it-taskrole");
    project.mldeploy(&["up"]).expect_code(0);
    let model = format!("mlflow/models/{}/6/MLmodel", project.name);
    let outside = format!("other/{}/secret", project.name);
    aws(&[
        "s3api",
        "put-object",
        "--bucket",
        &bucket,
        "--key",
        &outside,
    ])
    .expect_code(0);

    // The task's container has the credentials endpoint's path, and fetches them there.
    let tasks = aws(&["ecs", "list-tasks", "--cluster", &project.name]).json();
    let task = tasks["taskArns"][0].as_str().unwrap().to_string();
    let label = format!("label=mldeploy.sandbox.task={task}");
    let container = docker(&["ps", "-q", "--filter", &label])
        .stdout
        .trim()
        .to_string();
    let env = docker(&["inspect", "-f", "{{json .Config.Env}}", &container]).stdout;
    let uri = serde_json::from_str::<Vec<String>>(env.trim())
        .unwrap()
        .into_iter()
        .find_map(|e| {
            e.strip_prefix("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=")
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no credentials path in {env}"));
    let fetched = docker(&[
        "exec",
        &container,
        "/bin/busybox",
        "wget",
        "-qO-",
        &format!("http://169.254.170.2{uri}"),
    ]);
    fetched.expect_code(0);
    let credentials: serde_json::Value = serde_json::from_str(&fetched.stdout).unwrap();
    assert_eq!(
        credentials["RoleArn"].as_str().unwrap().rsplit('/').next(),
        Some(format!("{}-task", project.name).as_str())
    );

    // With them: the model prefix can be read, nothing else in the bucket.
    let head = |key: &str| {
        as_task(
            &credentials,
            &["s3api", "head-object", "--bucket", &bucket, "--key", key],
        )
    };
    head(&model).expect_code(0);
    let denied = head(&outside);
    assert_ne!(denied.code, 0);
    assert_says(&denied.stderr, &["403"]);

    // A change to the role's policy is not in effect at once: until IAM has it, the task's
    // reads are denied; then they pass again.
    let role = format!("{}-task", project.name);
    rewrite_role_policy(&role, "mldeploy-model-read");
    let pending = head(&model);
    assert_ne!(pending.code, 0, "read while IAM had not the change yet");
    assert_says(&pending.stderr, &["403"]);
    eventually(
        20,
        "the task's read to pass once IAM has the change",
        || (head(&model).code == 0).then_some(()),
    );
}

#[test]
fn a_secret_under_a_customer_managed_key_gets_kms_decrypt_on_that_key_for_the_execution_role() {
    let (project, _) = deployable("it-upkms");
    let key =
        aws(&["kms", "create-key", "--description", &project.name]).json()["KeyMetadata"].clone();
    let (key_id, key_arn) = (
        key["KeyId"].as_str().unwrap().to_string(),
        key["Arn"].as_str().unwrap().to_string(),
    );
    let value = format!("pw-{}", project.name);
    secret_in_config_with(&project, "DB_PASSWORD", &value, &["--kms-key-id", &key_id]);
    project.predict(r#"echo "{\"password_length\": ${#DB_PASSWORD}}""#);
    // Without kms:Decrypt on the key ECS cannot read the secret and every task stops with
    // "Access to KMS is not allowed" (the sandbox holds the execution role to it).
    let run = project.mldeploy(&["up", "--output", "json"]);
    run.expect_code(0);
    let policy = execution_role_policy(&project.name);
    let decrypt: Vec<_> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Action"][0] == "kms:Decrypt")
        .collect();
    assert_eq!(decrypt.len(), 1, "{policy}");
    assert_eq!(decrypt[0]["Resource"], serde_json::json!([key_arn]));
    let url = run.json()["url"].as_str().unwrap().to_string();
    let answer = predict_through(&url);
    assert!(
        answer
            .stdout
            .contains(&format!("\"password_length\": {}", value.len())),
        "{}",
        answer.stdout
    );
}
