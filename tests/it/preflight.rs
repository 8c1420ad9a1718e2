//! On ECS, what the engine or AWS would refuse only after a rollout is found before: an image in
//! which the container health check cannot run, a certificate a listener cannot use, secrets
//! ECS could not read when a task starts, and a model bucket the tasks' S3 gateway endpoint
//! cannot reach. Each is exit 2 naming the key, with nothing of the stack made.

use crate::support::*;

/// An image with busybox only at /srv/busybox, off the PATH: no /bin/sh, wget, curl or python3
/// for the built-in check. Its web server and predict script run from there.
fn image_without_check_tools(project: &Project) {
    std::fs::create_dir_all(project.path().join("srv")).unwrap();
    std::fs::copy("/bin/busybox", project.path().join("srv/busybox")).unwrap();
    project.write(
        "Dockerfile",
        "FROM scratch\nCOPY srv /srv\nCOPY app /app\nEXPOSE 8080\nCMD [\"/srv/busybox\", \"httpd\", \"-f\", \"-p\", \"0.0.0.0:8080\", \"-h\", \"/app\"]\n",
    );
    let script = std::fs::read_to_string(project.path().join("app/cgi-bin/predict")).unwrap();
    project.write(
        "app/cgi-bin/predict",
        &script.replace("#!/bin/busybox sh", "#!/srv/busybox sh"),
    );
}

/// Asserts that nothing of the project's stack exists: no VPC, load balancer, task definition
/// or service.
fn nothing_made(project: &str) {
    assert_eq!(
        by_tag("describe-vpcs", project, "Vpcs"),
        serde_json::json!([])
    );
    let lbs = aws(&["elbv2", "describe-load-balancers", "--names", project]);
    assert_ne!(lbs.code, 0, "no load balancer {project}: {}", lbs.stdout);
    assert_eq!(revisions(project), 0, "no task definition");
}

#[test]
fn an_image_that_cannot_run_the_health_check_is_refused_and_a_command_it_has_deploys() {
    let (project, _) = deployable("it-pf-check");
    image_without_check_tools(&project);
    let run = project.mldeploy(&["up"]);
    run.expect_code(2);
    assert_says(
        &run.stderr,
        &[
            "cannot run the container health check",
            "no /bin/sh and no wget, curl, python3 or busybox on its PATH",
            "service.ready_check_command",
            "service.ready_check = false",
        ],
    );
    // The image is checked where it was built, beside the stack: nothing runs it.
    assert_eq!(revisions(&project.name), 0, "no task definition registered");
    let services = aws(&[
        "ecs",
        "describe-services",
        "--cluster",
        &project.name,
        "--services",
        &project.name,
    ]);
    let active = services.stdout.contains("\"status\": \"ACTIVE\"");
    assert!(!active, "no service: {}", services.stdout);

    // A command the image has, run without a shell (exec form) as ECS runs a CMD check.
    project.append_config(
        "ready_check_command = [\"/srv/busybox\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:8080/ready\"]\n",
    );
    project.mldeploy(&["up"]).expect_code(0);
    let (td, _) = serving(&project.name);
    let described = aws(&["ecs", "describe-task-definition", "--task-definition", &td]).json();
    assert_eq!(
        described["taskDefinition"]["containerDefinitions"][0]["healthCheck"]["command"],
        serde_json::json!([
            "CMD",
            "/srv/busybox",
            "wget",
            "-q",
            "-O",
            "/dev/null",
            "http://127.0.0.1:8080/ready"
        ])
    );
    // The sandbox ran that check in the container, with no shell, and it passed.
    let tasks = aws(&["ecs", "list-tasks", "--cluster", &project.name]).json();
    let task = tasks["taskArns"][0].as_str().unwrap().to_string();
    let health = aws(&[
        "ecs",
        "describe-tasks",
        "--cluster",
        &project.name,
        "--tasks",
        &task,
    ])
    .json()["tasks"][0]["healthStatus"]
        .clone();
    assert_eq!(health, "HEALTHY");
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}

#[test]
fn an_image_with_busybox_but_no_shell_gets_an_exec_check_written_for_it() {
    let (project, _) = deployable("it-pf-busybox");
    // /bin/busybox on the PATH, and no /bin/sh or /bin/wget beside it.
    std::fs::remove_file(project.path().join("bin/sh")).unwrap();
    std::fs::remove_file(project.path().join("bin/wget")).unwrap();
    let run = project.mldeploy(&["up"]);
    run.expect_code(0);
    assert_says(&run.stderr, &["the container health check runs \"/bin/busybox wget -q -O /dev/null http://127.0.0.1:8080/ready\" (exec form)"]);
    let (td, _) = serving(&project.name);
    let described = aws(&["ecs", "describe-task-definition", "--task-definition", &td]).json();
    assert_eq!(
        described["taskDefinition"]["containerDefinitions"][0]["healthCheck"]["command"][0],
        "CMD"
    );
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}

#[test]
fn certificates_a_listener_cannot_use_are_refused_before_anything_is_made() {
    let (project, _) = deployable("it-pf-cert");
    let domain = "models.preflight.example.com";
    let with_certificate = |arn: &str| {
        let text = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("certificate_arn") && !l.starts_with("domain"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(
            project.path().join("mldeploy.toml"),
            format!("{text}certificate_arn = \"{arn}\"\ndomain = \"{domain}\"\n"),
        )
        .unwrap();
    };
    // Requested with DNS validation and never validated: PENDING_VALIDATION.
    let pending = aws(&[
        "acm",
        "request-certificate",
        "--domain-name",
        domain,
        "--validation-method",
        "DNS",
    ])
    .expect_code(0)
    .json()["CertificateArn"]
        .as_str()
        .unwrap()
        .to_string();
    with_certificate(&pending);
    let run = project.mldeploy(&["up"]);
    run.expect_code(2);
    assert_says(
        &run.stderr,
        &["`service.certificate_arn` is PENDING_VALIDATION, not ISSUED"],
    );
    nothing_made(&project.name);

    let elsewhere = certificate_for(&[domain]).replace(":us-east-1:", ":eu-west-1:");
    with_certificate(&elsewhere);
    let run = project.mldeploy(&["up"]);
    run.expect_code(2);
    assert_says(
        &run.stderr,
        &["is a certificate in eu-west-1, but the load balancer is in us-east-1"],
    );

    let other = certificate_for(&["*.other.example.com", "other.example.com"]);
    with_certificate(&other);
    let run = project.mldeploy(&["up"]);
    run.expect_code(2);
    assert_says(
        &run.stderr,
        &["does not cover service.domain = \"models.preflight.example.com\""],
    );
    nothing_made(&project.name);
}

#[test]
fn secrets_ecs_could_not_read_are_refused_before_anything_is_made() {
    let (project, _) = deployable("it-pf-secret");
    project.append_config(
        "[service.secrets]\nTOKEN = \"arn:aws:secretsmanager:us-east-1:123456789012:secret:it-pf-no-such-secret-AbCdEf\"\n",
    );
    let run = project.mldeploy(&["up"]);
    run.expect_code(2);
    assert_says(
        &run.stderr,
        &[
            "`service.secrets.TOKEN` names a Secrets Manager secret that does not exist in us-east-1",
            "ResourceInitializationError",
        ],
    );
    nothing_made(&project.name);

    let text = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    let text = text.replace(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:it-pf-no-such-secret-AbCdEf",
        "arn:aws:ssm:us-east-1:123456789012:parameter/it-pf/no-such-parameter",
    );
    std::fs::write(project.path().join("mldeploy.toml"), text).unwrap();
    let run = project.mldeploy(&["plan"]);
    run.expect_code(2);
    assert_says(
        &run.stderr,
        &["`service.secrets.TOKEN` names an SSM parameter that does not exist in us-east-1 (/it-pf/no-such-parameter)"],
    );
    // One that exists passes the check (the plan goes on).
    aws(&[
        "ssm",
        "put-parameter",
        "--name",
        "/it-pf/no-such-parameter",
        "--type",
        "SecureString",
        "--value",
        "s3cr3t",
        "--overwrite",
    ])
    .expect_code(0);
    project.mldeploy(&["plan"]).expect_code(0);
    aws(&[
        "ssm",
        "delete-parameter",
        "--name",
        "/it-pf/no-such-parameter",
    ])
    .expect_code(0);
    nothing_made(&project.name);
}

#[test]
fn a_model_bucket_in_another_region_is_refused_behind_a_gateway_endpoint_and_warned_otherwise() {
    require_sandbox();
    let project = Project::new("it-pf-region");
    let bucket = bucket_in("eu-west-1", &["m/1/MLmodel"]);
    std::fs::write(
        project.path().join("mldeploy.toml"),
        format!(
            "[project]\nname = \"{}\"\n[model]\nbucket = \"{bucket}\"\npath = \"m/{{version}}\"\nversion = 1\n[service]\nport = {APP_PORT}\n[network]\ntasks = \"private\"\negress = \"endpoints\"\n",
            project.name
        ),
    )
    .unwrap();
    let run = project.mldeploy(&["plan"]);
    run.expect_code(2);
    assert_says(
        &run.stderr,
        &[
            &format!("`model.bucket` {bucket} is in eu-west-1"),
            "reach S3 through a gateway endpoint, which reaches only us-east-1",
        ],
    );
    nothing_made(&project.name);
    // Through a NAT gateway the bucket is reachable, at a cost the plan names.
    let text = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    std::fs::write(
        project.path().join("mldeploy.toml"),
        text.replace("egress = \"endpoints\"", "egress = \"nat\""),
    )
    .unwrap();
    let run = project.mldeploy(&["plan"]);
    run.expect_code(0);
    assert_says(&run.stderr, &["every model load crosses regions"]);
}
