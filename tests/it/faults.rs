//! Real faults injected into the sandbox: AWS going away, throttling, 5xx, refused and expired
//! credentials (through `tests/sandbox/fault_proxy.py` on loopback, in front of moto), the
//! Docker engine going away mid-build and mid-push (`tests/sandbox/engine_cut.py`), signals
//! during the rollout wait, and `up` during `destroy`. Each checks the exit code, what is said,
//! the lock, and that a re-run converges.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::support::*;

/// Starts one of the sandbox's helper scripts with `args`; returns it and the first line it prints.
fn start_helper(script: &str, args: &[&std::ffi::OsStr]) -> (Child, String) {
    let mut child = Command::new("python3")
        .arg(format!(
            "{}/tests/sandbox/{script}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the sandbox's helpers");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().to_string())
}

/// A fault proxy in front of the sandbox's AWS endpoint, with its rules (see fault_proxy.py).
struct FaultProxy {
    child: Child,
    port: u16,
    log: tempfile::NamedTempFile,
}

impl FaultProxy {
    fn start(rules: &[&str]) -> FaultProxy {
        require_sandbox();
        let log = tempfile::NamedTempFile::new().unwrap();
        let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "--upstream".as_ref(),
            endpoint.as_ref(),
            "--log".as_ref(),
            log.path().as_os_str(),
        ];
        args.extend(rules.iter().map(std::ffi::OsStr::new));
        let (child, line) = start_helper("fault_proxy.py", &args);
        let port = line.parse().expect("the proxy prints its port");
        FaultProxy { child, port, log }
    }

    /// `mldeploy <args>` in the project, through this proxy.
    fn command(&self, project: &Project, args: &[&str]) -> Command {
        let mut cmd = mldeploy_cmd();
        cmd.env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", self.port),
        )
        .arg("-C")
        .arg(project.path())
        .args(args);
        cmd
    }

    fn mldeploy(&self, project: &Project, args: &[&str]) -> Run {
        Run::of(self.command(project, args))
    }

    /// How many calls named `call` met `action` ("pass" for forwarded untouched).
    fn count(&self, call: &str, action: &str) -> usize {
        std::fs::read_to_string(self.log.path())
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["call"] == call && v["action"] == action)
            .count()
    }
}

impl FaultProxy {
    /// Every call the proxy saw, by name.
    fn calls(&self) -> std::collections::BTreeSet<String> {
        std::fs::read_to_string(self.log.path())
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["call"].as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn count_of(args: &[&str], list: &str) -> usize {
    aws(args).expect_code(0).json()[list]
        .as_array()
        .map_or(0, Vec::len)
}

/// What the project owns in the sandbox, counted by awscli: one of each after a converged `up`.
fn assert_one_of_each(project: &str) {
    let tag = format!("Name=tag:mldeploy:project,Values={project}");
    assert_eq!(
        count_of(&["ec2", "describe-vpcs", "--filters", &tag], "Vpcs"),
        1,
        "VPCs"
    );
    assert_eq!(
        count_of(&["ec2", "describe-subnets", "--filters", &tag], "Subnets"),
        2,
        "subnets"
    );
    let groups = count_of(
        &["ec2", "describe-security-groups", "--filters", &tag],
        "SecurityGroups",
    );
    assert_eq!(groups, 2, "security groups");
    let lbs = count_of(
        &["elbv2", "describe-load-balancers", "--names", project],
        "LoadBalancers",
    );
    assert_eq!(lbs, 1, "ALBs");
    let roles = aws(&["iam", "list-roles"]).expect_code(0).json()["Roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["RoleName"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{project}-"))
        })
        .count();
    assert_eq!(roles, 2, "roles");
    let services = count_of(
        &["ecs", "list-services", "--cluster", project],
        "serviceArns",
    );
    assert_eq!(services, 1, "services");
}

#[test]
fn aws_going_away_mid_up_exits_3_reports_the_lock_and_a_rerun_converges_without_duplicates() {
    let (project, bucket) = deployable("it-fault-gone");
    // CreateVpc is carried out, its answer never arrives, and the endpoint is gone after it.
    let proxy = FaultProxy::start(&["ec2:CreateVpc=lost"]);
    let mut cmd = proxy.command(&project, &["up"]);
    cmd.env("AWS_MAX_ATTEMPTS", "2");
    let run = Run::of(cmd);
    run.expect_code(3);
    assert_says(&run.stderr, &["ec2:CreateVpc", "AWS did not answer"]);
    assert_says(
        &run.stderr,
        &["could not release the deploy lock", "--force-unlock"],
    );
    assert!(lock_exists(&bucket, &project.name), "the lock stayed");

    // The next run sees that the lock's holder, on this host, is gone.
    let run = project.mldeploy(&["up"]);
    run.expect_code(4);
    assert_says(
        &run.stderr,
        &["is stale", "no longer running", "--force-unlock"],
    );

    let id = lock_id_in(&run.stderr);
    project
        .mldeploy(&["up", "--force-unlock", &id])
        .expect_code(0);
    assert_one_of_each(&project.name);
    assert!(!lock_exists(&bucket, &project.name));
    // The VPC the lost call made never had its DNS turned on; the re-run did that.
    let tag = format!("Name=tag:mldeploy:project,Values={}", project.name);
    let vpcs = aws(&["ec2", "describe-vpcs", "--filters", &tag])
        .expect_code(0)
        .json();
    let vpc = vpcs["Vpcs"][0]["VpcId"].as_str().unwrap();
    for (attribute, field) in [
        ("enableDnsSupport", "EnableDnsSupport"),
        ("enableDnsHostnames", "EnableDnsHostnames"),
    ] {
        let run = aws(&[
            "ec2",
            "describe-vpc-attribute",
            "--vpc-id",
            vpc,
            "--attribute",
            attribute,
        ]);
        assert_eq!(
            run.expect_code(0).json()[field]["Value"],
            true,
            "{attribute}"
        );
    }

    // A region where nothing of it exists.
    let run = project.mldeploy(&["status", "--region", "eu-west-1"]);
    run.expect_code(3);
    assert_says(&run.stderr, &["eu-west-1"]);
}

#[test]
fn throttling_and_5xx_answers_are_retried_with_backoff_and_said_with_v() {
    let (project, _bucket) = deployable("it-fault-throttle");
    let proxy = FaultProxy::start(&[
        "ecs:DescribeServices=throttle*2",
        "elasticloadbalancing:DescribeTargetHealth=unavailable*2",
        "ecr:GetAuthorizationToken=throttle*1",
    ]);
    let run = proxy.mldeploy(&project, &["up", "-v"]);
    run.expect_code(0);
    assert_says(
        &run.stderr,
        &[
            "retrying ecs:DescribeServices (attempt 2 of 6) after",
            "HTTP 400 ThrottlingException",
            "retrying ecs:DescribeServices (attempt 3 of 6)",
            "HTTP 503",
        ],
    );
    assert_eq!(proxy.count("ecs:DescribeServices", "throttle"), 2);
    assert_eq!(
        proxy.count("elasticloadbalancing:DescribeTargetHealth", "unavailable"),
        2
    );
    assert_eq!(proxy.count("ecr:GetAuthorizationToken", "throttle"), 1);
    assert!(proxy.count("ecs:DescribeServices", "pass") >= 1);
}

#[test]
fn throttling_that_never_ends_exits_3_after_the_configured_attempts() {
    let (project, bucket) = deployable("it-fault-throttled");
    let proxy = FaultProxy::start(&["ec2:DescribeVpcs=throttle"]);
    let mut cmd = proxy.command(&project, &["up"]);
    cmd.env("AWS_MAX_ATTEMPTS", "3");
    let run = Run::of(cmd);
    run.expect_code(3);
    assert_says(
        &run.stderr,
        &["ec2:DescribeVpcs", "RequestLimitExceeded", "3 attempts"],
    );
    assert_eq!(proxy.count("ec2:DescribeVpcs", "throttle"), 3);
    assert!(
        !lock_exists(&bucket, &project.name),
        "the lock was released"
    );

    // Without AWS_MAX_ATTEMPTS, the profile's max_attempts counts, as in every AWS SDK.
    let profiles = tempfile::tempdir().unwrap();
    let file = profiles.path().join("config");
    std::fs::write(&file, "[profile flaky]\nmax_attempts = 2\n").unwrap();
    let mut cmd = proxy.command(&project, &["up", "--profile", "flaky"]);
    cmd.env_remove("AWS_MAX_ATTEMPTS")
        .env("AWS_CONFIG_FILE", &file);
    let run = Run::of(cmd);
    run.expect_code(3);
    assert_says(&run.stderr, &["ec2:DescribeVpcs", "2 attempts"]);
    assert_eq!(proxy.count("ec2:DescribeVpcs", "throttle"), 5);
}

#[test]
fn access_denied_exits_3_naming_the_call_and_permission_without_retrying() {
    let (project, bucket) = deployable("it-fault-denied");
    let proxy = FaultProxy::start(&["iam:CreateRole=deny"]);
    let run = proxy.mldeploy(&project, &["up"]);
    run.expect_code(3);
    assert_says(
        &run.stderr,
        &[
            "iam:CreateRole was refused",
            "need permission for iam:CreateRole",
        ],
    );
    assert_eq!(proxy.count("iam:CreateRole", "deny"), 1, "not retried");
    assert!(
        !lock_exists(&bucket, &project.name),
        "the lock was released"
    );
    project.mldeploy(&["up"]).expect_code(0);
    assert_one_of_each(&project.name);
}

#[test]
fn expired_credentials_exit_3_saying_to_refresh_them() {
    let (project, bucket) = deployable("it-fault-expired");
    let proxy = FaultProxy::start(&["(ec2|ecs|ecr|iam|elasticloadbalancing|logs):.*=expired"]);
    let run = proxy.mldeploy(&project, &["up"]);
    run.expect_code(3);
    assert_says(&run.stderr, &["have expired", "refresh them"]);
    assert!(
        !lock_exists(&bucket, &project.name),
        "the lock was released"
    );
}

#[test]
fn missing_credentials_exit_3_naming_where_credentials_come_from() {
    let (project, _bucket) = deployable("it-fault-nocreds");
    let home = tempfile::tempdir().unwrap();
    let mut cmd = mldeploy_cmd();
    cmd.arg("-C")
        .arg(project.path())
        .arg("status")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("HOME", home.path())
        .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("none"))
        .env("AWS_CONFIG_FILE", home.path().join("none"))
        // Nothing may leave the machine: no instance metadata.
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let run = Run::of(cmd);
    run.expect_code(3);
    assert_says(&run.stderr, &["no AWS credentials", "AWS_PROFILE"]);
}

#[test]
fn sigterm_during_the_rollout_wait_exits_130_and_releases_the_lock() {
    signal_during_rollout("TERM");
}

#[test]
fn up_while_destroy_runs_exits_4_naming_destroy_and_the_destroy_finishes() {
    let (project, bucket) = deployable("it-fault-collide");
    project.mldeploy(&["up"]).expect_code(0);
    let proxy = FaultProxy::start(&["elasticloadbalancing:DeleteLoadBalancer=delay:4"]);
    let destroy = proxy
        .command(&project, &["destroy", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(60, "destroy to reach DeleteLoadBalancer", || {
        (proxy.count("elasticloadbalancing:DeleteLoadBalancer", "delay:4") > 0).then_some(())
    });
    let run = project.mldeploy(&["up"]);
    run.expect_code(4);
    assert_says(
        &run.stderr,
        &["another deploy holds the lock", "`mldeploy destroy`"],
    );
    let out = destroy.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!lock_exists(&bucket, &project.name));
}

/// A proxy in front of the engine that goes away `after` seconds into a request matching
/// `pattern`, and the file that says it did.
struct EngineCut {
    child: Child,
    socket: PathBuf,
    cut: PathBuf,
    _dir: tempfile::TempDir,
}

impl EngineCut {
    fn start(pattern: &str, after: f64) -> EngineCut {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let cut = dir.path().join("cut");
        let after = after.to_string();
        let (child, line) = start_helper(
            "engine_cut.py",
            &[
                socket.as_os_str(),
                pattern.as_ref(),
                after.as_ref(),
                cut.as_os_str(),
            ],
        );
        assert_eq!(line, "ready");
        EngineCut {
            child,
            socket,
            cut,
            _dir: dir,
        }
    }

    fn up(&self, project: &Project) -> Run {
        let mut cmd = mldeploy_cmd();
        cmd.env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .arg("-C")
            .arg(project.path())
            .arg("up");
        Run::of(cmd)
    }

    /// The request line the cut came in, or a failure if the engine was never cut.
    fn cut_during(&self) -> String {
        std::fs::read_to_string(&self.cut).expect("the engine was cut mid-request")
    }
}

impl Drop for EngineCut {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_engine_going_away_mid_build_exits_3_and_the_next_up_completes() {
    let (project, bucket) = deployable("it-fault-buildcut");
    let serving = std::fs::read_to_string(project.path().join("Dockerfile")).unwrap();
    project.write("Dockerfile", &slow_dockerfile());
    let cut = EngineCut::start(r"POST /(v[0-9.]+/)?build", 1.5);
    let run = cut.up(&project);
    run.expect_code(3);
    assert_says(&cut.cut_during(), &["/build"]);
    assert_says(&run.stderr, &["Docker engine"]);
    assert!(
        !lock_exists(&bucket, &project.name),
        "the lock was released"
    );
    project.write("Dockerfile", &serving);
    project.mldeploy(&["up"]).expect_code(0);
}

#[test]
fn the_engine_going_away_mid_push_exits_3_and_the_next_up_completes() {
    let (project, bucket) = deployable("it-fault-pushcut");
    let cut = EngineCut::start(r"POST /v[0-9.]+/images/.+/push", 0.0);
    let run = cut.up(&project);
    run.expect_code(3);
    assert_says(&cut.cut_during(), &["/push"]);
    assert_says(&run.stderr, &["Docker engine"]);
    assert!(
        !lock_exists(&bucket, &project.name),
        "the lock was released"
    );
    project.mldeploy(&["up"]).expect_code(0);
}

#[test]
fn of_two_runs_breaking_one_stale_lock_only_the_first_goes_on() {
    let (project, bucket) = deployable("it-fault-breakers");
    // A stale lock: a holder on another host whose lock expired long ago.
    let stale = serde_json::json!({
        "id": "stale", "host": "gone-runner", "user": "ci", "pid": 1, "command": "up",
        "ci_run": null, "acquired_at": 0, "expires_at": 1
    });
    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(body.path(), stale.to_string()).unwrap();
    let key = format!(".mldeploy/{}/lock", project.name);
    let put = [
        "s3api",
        "put-object",
        "--bucket",
        &bucket,
        "--key",
        &key,
        "--body",
    ];
    aws(&[&put[..], &[body.path().to_str().unwrap()]].concat()).expect_code(0);

    // The second breaker read the stale lock, and its delete is slow to arrive...
    let proxy = FaultProxy::start(&["s3:DeleteObject=delay:3*1"]);
    let second = proxy
        .command(&project, &["up", "--force-unlock", "stale"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(60, "the second breaker to send its delete", || {
        (proxy.count("s3:DeleteObject", "delay:3") > 0).then_some(())
    });
    // ...while the first breaks it and takes the lock.
    let first = project.mldeploy(&["up", "--force-unlock", "stale"]);
    let second = second.wait_with_output().unwrap();
    let second_err = String::from_utf8_lossy(&second.stderr);
    first.expect_code(0);
    assert_says(
        &first.stderr,
        &["broke the deploy lock held by ci@gone-runner"],
    );
    assert_eq!(second.status.code(), Some(4), "{second_err}");
    assert_says(&second_err, &["changed while it was being broken"]);
    assert!(
        !lock_exists(&bucket, &project.name),
        "the first released its lock"
    );
}

#[test]
fn the_iam_policy_allows_every_call_a_deploy_cycle_makes_and_nothing_else() {
    let (project, _) = deployable("it-iampolicy");
    // Private tasks behind a NAT gateway: their subnets, table, gateway and address too.
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{config}[network]\ntasks = \"private\"\n")).unwrap();
    let proxy = FaultProxy::start(&[]);
    let steps: &[(&[&str], i32)] = &[
        (&["up", "--model-version", "99"], 2),
        (&["plan"], 0),
        (&["up"], 0),
        (&["up", "--model-version", "7"], 0),
        (&["rollback"], 0),
        (&["rollback", "--model-version", "7"], 0),
        // A one-off task, and one stopped at its --timeout.
        (&["run", "--", "/bin/busybox", "echo", "ran"], 0),
        (
            &[
                "run",
                "--timeout",
                "1s",
                "--",
                "/bin/busybox",
                "sleep",
                "600",
            ],
            1,
        ),
    ];
    for (args, code) in steps {
        proxy.mldeploy(&project, args).expect_code(*code);
    }
    // The same service switched to blue/green and scaled: the rules, the infrastructure role,
    // the hook, the scalable target and its policy.
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{config}[service.autoscaling]\nmin_count = 1\nmax_count = 3\n[deploy]\nstrategy = \"blue_green\"\nbake_time = \"1m\"\n"),
    )
    .unwrap();
    let steps: &[(&[&str], i32)] = &[
        (&["up", "--model-version", "6"], 0),
        (&["status"], 0),
        (&["history"], 0),
        (&["logs", "--since", "10m"], 0),
        (&["destroy", "--yes"], 0),
    ];
    for (args, code) in steps {
        proxy.mldeploy(&project, args).expect_code(*code);
    }
    let policy = project.mldeploy(&[
        "iam-policy",
        "--account",
        "123456789012",
        "--output",
        "json",
    ]);
    policy.expect_code(0);
    let allowed: std::collections::BTreeSet<String> = policy.json()["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let seen: std::collections::BTreeSet<String> = proxy
        .calls()
        .iter()
        .map(|c| mldeploy::iam_policy::action_of(c).to_string())
        .collect();
    assert!(seen.len() > 50, "the proxy saw the cycle: {seen:?}");
    let denied: Vec<_> = seen.difference(&allowed).collect();
    assert!(
        denied.is_empty(),
        "calls the policy does not allow: {denied:?}"
    );
    // What the cycle did not call: actions AWS checks without a call of that name, and the
    // repairs a converged stack never needs.
    let unseen: Vec<&String> = allowed
        .difference(&seen)
        .filter(|a| !mldeploy::iam_policy::NOT_CALLED.contains(&a.as_str()))
        .collect();
    assert_eq!(
        unseen, REPAIRS_ONLY,
        "allowed, never called, and not a repair"
    );
}

/// Calls only a drifted or half-made stack needs (a first `up` creates everything and a
/// converged one changes nothing, so a clean cycle never makes them), the stop of a
/// deployment in its bake, which the blue/green tests make, the VPC endpoints of private
/// tasks without a NAT gateway, which tests/it/private_network.rs makes, and the removal of
/// blue/green rules from HTTP:80 when a domain is added, which tests/it/domain.rs makes.
const REPAIRS_ONLY: &[&str] = &[
    "ec2:CreateVpcEndpoint",  // private tasks with network.egress = "endpoints"
    "ec2:DeleteVpcEndpoints", // and their teardown
    "ec2:ReplaceRoute",       // a private table's default route to a NAT gateway gone
    "ec2:RevokeSecurityGroupIngress", // a rule opening the tasks' port wider
    "ecs:StopServiceDeployment", // a rollback during the bake, or a check failing in it
    "elasticloadbalancing:DeleteRule", // blue/green rules left on a listener that stopped forwarding
    "elasticloadbalancing:ModifyListener", // a listener changed by hand
    "elasticloadbalancing:ModifyTargetGroup", // a health check changed by hand
    "elasticloadbalancing:SetSecurityGroups", // the load balancer's groups changed by hand
    "iam:DetachRolePolicy",            // a managed policy attached to a role by hand
    "iam:UpdateAssumeRolePolicy",      // a role's trust changed by hand
];

#[test]
fn a_first_up_whose_build_fails_beside_the_stack_stops_between_steps_and_a_rerun_converges() {
    let (project, bucket) = deployable("it-fault-build");
    let serving = std::fs::read_to_string(project.path().join("Dockerfile")).unwrap();
    project.write("Dockerfile", FAILING_BUILD_DOCKERFILE);
    let run = project.mldeploy(&["up"]);
    run.expect_code(1);
    assert_says(
        &run.stderr,
        &[
            "while the image is built and pushed",
            "the build failed at Step 3/",
            "returned a non-zero code: 7",
        ],
    );
    assert!(!lock_exists(&bucket, &project.name), "the lock is released");
    let services = aws(&["ecs", "list-services", "--cluster", &project.name]);
    assert!(
        !services.stdout.contains(&project.name),
        "no service without an image: {}",
        services.stdout
    );

    project.write("Dockerfile", &serving);
    project.mldeploy(&["up"]).expect_code(0);
    assert_one_of_each(&project.name);
}

#[test]
fn a_second_up_while_one_with_workers_runs_exits_4_and_applies_nothing() {
    let (project, bucket) = deployable("it-fault-wklock");
    let name = project.name.clone();
    project.write(".dockerignore", "mldeploy.toml\n");
    project.append_config(
        "[workers.scorer]\ncommand = [\"/bin/busybox\", \"sh\", \"-c\", \"while true; do /bin/busybox sleep 5; done\"]\n",
    );
    project.mldeploy(&["up"]).expect_code(0);

    // The first moves every service to model 7, held up while it registers their revisions; the
    // second asks for the same meanwhile.
    let proxy = FaultProxy::start(&["ecs:RegisterTaskDefinition=delay:6"]);
    let first = proxy
        .command(&project, &["up", "--model-version", "7"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually(60, "the first up to register a revision", || {
        (proxy.count("ecs:RegisterTaskDefinition", "delay:6") > 0).then_some(())
    });
    let second = project.mldeploy(&["up", "--model-version", "7", "--force"]);
    second.expect_code(4);
    assert_says(
        &second.stderr,
        &["another deploy holds the lock", "`mldeploy up`"],
    );
    let out = first.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Only the first's revisions exist: the second registered and deployed nothing.
    let scorer = format!("{name}-scorer");
    for family in [&name, &scorer] {
        let runs = service_in(&name, family)["taskDefinition"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(runs.ends_with(&format!("/{family}:2")), "{runs}");
        let third = aws(&[
            "ecs",
            "describe-task-definition",
            "--task-definition",
            &format!("{family}:3"),
        ]);
        assert_ne!(third.code, 0, "{family}:3 was registered: {}", third.stdout);
    }
    assert!(!lock_exists(&bucket, &name));
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}
