//! Blue/green and canary deploys on the sandbox (whose ECS shifts traffic as ECS documents it:
//! tests/it/sandbox_strategies.rs): the new revision is tested through the test route while no
//! production request reaches it, the model gate compares its predictions with the serving
//! revision's, a failing gate or a revision that fails mid-bake is rolled back, and `rollback`
//! during the bake only moves traffic back.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::support::*;

/// The fixture's predict endpoint: the prediction depends on the model version it serves.
fn predictions(v6: &str, v7: &str) -> String {
    format!(
        r#"case "$MODEL_PATH" in */7) p={v7};; *) p={v6};; esac
echo "{{\"prediction\": $p, \"model_path\": \"$MODEL_PATH\"}}""#
    )
}

/// A deployable project deployed with `strategy`, `[gate]` comparing /prediction. The gate's
/// latency ratio is set out of reach: the fixture's busybox CGI answers in a few milliseconds,
/// most of them this loaded 2-core machine's scheduling, so a ratio of two samples' p95s would
/// judge the machine, not the revision (a CI run failed a bake on 71 ms against 14 ms). The
/// latency bounds are tested in src/gate/judge.rs.
fn shifting(prefix: &str, deploy: &str) -> (Project, String) {
    let (project, bucket) = deployable(prefix);
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!(
            "{config}[deploy]\n{deploy}\n[gate]\nrequests = [{{ path = \"/cgi-bin/predict\", body = '{{\"features\": [[8.3, 41.0]]}}' }}, {{ path = \"/cgi-bin/predict\", body = '{{\"features\": [[1.0, 2.0]]}}' }}]\nvalue = \"/prediction\"\ntolerance = 0.05\nmax_p95_ratio = 1000.0\n"
        ),
    )
    .unwrap();
    (project, bucket)
}

/// Answers to POST /cgi-bin/predict through the production route, with when they came.
struct Counter {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Counter {
    fn start(url: &str) -> Counter {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, v, url) = (stop.clone(), seen.clone(), url.to_string());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let run = predict_through(&url);
                let said = serde_json::from_str::<serde_json::Value>(&run.stdout)
                    .ok()
                    .and_then(|j| j["model_path"].as_str().map(str::to_string))
                    .unwrap_or_else(|| format!("no answer: {}{}", run.stdout, run.stderr));
                v.lock().unwrap().push((Instant::now(), said));
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
        Counter {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> Vec<(Instant, String)> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.seen.lock().unwrap().clone()
    }
}

/// `mldeploy up` with `args`, started, its stderr piped.
fn spawn_up(project: &Project, args: &[&str]) -> std::process::Child {
    mldeploy_cmd()
        .arg("-C")
        .arg(project.path())
        .arg("up")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `mldeploy up` with `args`, noting when stderr first says `marker`.
fn up_noting(
    project: &Project,
    args: &[&str],
    marker: &str,
) -> (Option<i32>, String, Option<Instant>) {
    let mut child = spawn_up(project, args);
    let mut at = None;
    let mut said = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if at.is_none() && line.contains(marker) {
            at = Some(Instant::now());
        }
        said.push_str(&line);
        said.push('\n');
    }
    (child.wait().unwrap().code(), said, at)
}

/// Runs `mldeploy up` with `args`, waits for `marker` on stderr, calls `while_running`, then
/// interrupts it: its exit code and everything it said.
fn interrupt_up_at(
    project: &Project,
    args: &[&str],
    marker: &str,
    while_running: impl FnOnce(),
) -> (Option<i32>, String) {
    let mut child = spawn_up(project, args);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if line.contains(marker) {
            break;
        }
    }
    assert!(said.contains(marker), "never printed {marker:?}:\n{said}");
    while_running();
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    for line in lines {
        said.push_str(&line.unwrap());
        said.push('\n');
    }
    (child.wait().unwrap().code(), said)
}

fn url_of(run: &Run) -> String {
    run.json()["url"].as_str().unwrap().to_string()
}

#[test]
fn a_blue_green_deploy_reaches_production_only_after_its_model_gate_passed() {
    let (project, _) = shifting("it-bg", "strategy = \"blue_green\"\nbake_time = \"1m\"");
    project.predict(&predictions("4.526", "4.6"));
    let plan = project.mldeploy(&["plan"]);
    plan.expect_code(0);
    assert_says(
        &plan.stdout,
        &[
            &format!("target group {}-alt", project.name),
            "listener rule HTTP:80 test",
            "listener rule HTTP:80 production",
            &format!("IAM role {}-lb-infrastructure", project.name),
        ],
    );
    let first = project.mldeploy(&["up", "--output", "json"]);
    first.expect_code(0);
    assert_says(
        &first.stderr,
        &["POST_TEST_TRAFFIC_SHIFT", "Model gate", "nothing serving"],
    );
    let url = url_of(&first);

    let counter = Counter::start(&url);
    let (code, said, gated) = up_noting(&project, &["--model-version", "7"], "Model gate:");
    let answers = counter.stop();
    assert_eq!(code, Some(0), "{said}");
    assert_says(
        &said,
        &[
            "change 1.6",
            "largest change",
            "allowed 5.0000 %",
            "BAKE_TIME",
        ],
    );
    let gated = gated.expect("the gate ran");
    let new: Vec<_> = answers.iter().filter(|(_, m)| m.ends_with("/7")).collect();
    assert!(
        new.iter().all(|(at, _)| *at > gated),
        "a production request reached the new revision before its gate: {answers:?}"
    );
    assert!(
        !new.is_empty(),
        "the new revision never served production: {answers:?}"
    );
    let failed: Vec<_> = answers
        .iter()
        .filter(|(_, m)| m.starts_with("no answer"))
        .collect();
    assert!(
        failed.is_empty(),
        "production failed to answer during the deploy: {failed:?}"
    );
    let after = predict_through(&url);
    assert!(after.stdout.contains("/7"), "{}", after.stdout);

    // Back to a rolling deploy on the live service: the plan says so, and it deploys where
    // production traffic now goes (the alternate target group).
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        config
            .replace("strategy = \"blue_green\"", "strategy = \"rolling\"")
            .split("[gate]")
            .next()
            .unwrap(),
    )
    .unwrap();
    let plan = project.mldeploy(&["plan"]);
    plan.expect_code(0);
    assert_says(&plan.stdout, &["BLUE_GREEN -> ROLLING"]);
    let rolled = project.mldeploy(&["up", "--model-version", "6"]);
    rolled.expect_code(0);
    assert!(predict_through(&url).stdout.contains("/6"));
    // And blue/green again.
    std::fs::write(&path, &config).unwrap();
    let plan = project.mldeploy(&["plan"]);
    assert_says(&plan.stdout, &["ROLLING -> BLUE_GREEN"]);
    let again = project.mldeploy(&["up", "--model-version", "7"]);
    again.expect_code(0);
    assert_says(&again.stderr, &["Model gate"]);
    assert!(predict_through(&url).stdout.contains("/7"));
}

#[test]
fn a_model_that_breaks_the_tolerance_is_rolled_back_before_any_production_traffic_moved() {
    let (project, _) = shifting(
        "it-bg-gate",
        "strategy = \"blue_green\"\nbake_time = \"1m\"",
    );
    project.predict(&predictions("4.526", "9.9"));
    let first = project.mldeploy(&["up", "--output", "json"]);
    first.expect_code(0);
    let url = url_of(&first);
    let serving_before = serving(&project.name).0;

    let counter = Counter::start(&url);
    let run = project.mldeploy(&["up", "--model-version", "7"]);
    let answers = counter.stop();
    run.expect_code(1);
    assert_says(
        &run.stderr,
        &[
            "the model gate failed",
            "predictions moved by up to",
            "more than gate.tolerance (5.0000 %)",
            "serving 4.526 -> new 9.9",
            "rolled back",
            &format!("{serving_before} serves again"),
        ],
    );
    assert!(
        answers.iter().all(|(_, m)| m.ends_with("/6")),
        "production saw something else than the serving revision: {answers:?}"
    );
    assert_eq!(serving(&project.name).0, serving_before);
}

#[test]
fn a_canary_whose_new_revision_starts_failing_mid_bake_is_rolled_back() {
    let (project, _) = shifting(
        "it-canary",
        "strategy = \"canary\"\ncanary_percent = 20\ncanary_bake_time = \"10m\"\nbake_time = \"1m\"\ncheck_interval = \"10s\"",
    );
    // Version 7 answers the smoke test and the gate (three predictions), then fails: a model
    // that breaks once production traffic arrives.
    project.predict(
        r#"n=$(/bin/busybox cat /app/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /app/n
case "$MODEL_PATH" in */7) if [ $n -gt 3 ]; then echo '{"error": "out of memory"}'; exit 0; fi;; esac
echo "{\"prediction\": 4.526, \"model_path\": \"$MODEL_PATH\"}""#,
    );
    project.mldeploy(&["up"]).expect_code(0);
    let serving_before = serving(&project.name).0;
    let run = project.mldeploy(&["up", "--model-version", "7"]);
    run.expect_code(1);
    assert_says(
        &run.stderr,
        &[
            "PRODUCTION_TRAFFIC_SHIFT",
            "fails the model gate during the bake",
            "held no number at /prediction",
            "stopping the deployment",
            &format!("{serving_before} serves again"),
        ],
    );
    assert_eq!(serving(&project.name).0, serving_before);
}

#[test]
fn rollback_during_the_bake_moves_traffic_back_without_a_new_deployment() {
    let (project, _) = shifting(
        "it-bg-back",
        "strategy = \"blue_green\"\nbake_time = \"1m\"",
    );
    project.predict(&predictions("4.526", "4.526"));
    let first = project.mldeploy(&["up", "--output", "json"]);
    first.expect_code(0);
    // The next deployment bakes for an hour.
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        config.replace("bake_time = \"1m\"", "bake_time = \"60m\""),
    )
    .unwrap();
    let url = url_of(&first);
    let serving_before = serving(&project.name).0;
    // The deploy bakes for an hour: stop waiting for it once it bakes (exit 130, ECS carries on).
    let (code, said) = interrupt_up_at(&project, &["--model-version", "7"], "BAKE_TIME", || {
        assert!(predict_through(&url).stdout.contains("/7"));
    });
    let status = project.mldeploy(&["status"]);
    assert_says(
        &status.stdout,
        &[
            "BLUE_GREEN deployments: production traffic",
            "100.0 % to",
            "deployment in progress: BAKE_TIME",
            "s of bake time left",
        ],
    );
    assert_eq!(code, Some(130), "{said}");
    assert_says(
        &said,
        &[
            "serves all production traffic and is baking",
            "mldeploy rollback",
        ],
    );
    let revisions_before = revisions(&project.name);
    let start = Instant::now();
    let back = project.mldeploy(&["rollback"]);
    let took = start.elapsed().as_secs_f64();
    back.expect_code(0);
    assert_says(
        &back.stderr,
        &[
            "still runs beside the new revision",
            "moved production traffic back",
        ],
    );
    assert!(predict_through(&url).stdout.contains("/6"));
    assert_eq!(serving(&project.name).0, serving_before);
    assert_eq!(
        revisions(&project.name),
        revisions_before,
        "no revision registered"
    );
    // A rolling deploy takes minutes of AWS time; this took seconds.
    assert!(
        aws_seconds(took) < 60.0,
        "the rollback took {} AWS s",
        aws_seconds(took)
    );

    // destroy removes what blue/green added: the alternate target group, the rules (with their
    // listener) and the infrastructure role.
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
    let alternate = format!("{}-alt", project.name);
    let groups = aws(&["elbv2", "describe-target-groups", "--names", &alternate]);
    assert_ne!(
        groups.code, 0,
        "{alternate} is still there: {}",
        groups.stdout
    );
    let role = aws(&[
        "iam",
        "get-role",
        "--role-name",
        &format!("{}-lb-infrastructure", project.name),
    ]);
    assert_ne!(
        role.code, 0,
        "the infrastructure role is still there: {}",
        role.stdout
    );
}

/// The service's (target group, alternate target group), by name, as ECS describes them.
fn wiring(project: &str) -> (String, String) {
    let lb = service_of(project)["loadBalancers"][0].clone();
    let name = |arn: &serde_json::Value| {
        arn.as_str()
            .unwrap_or_default()
            .split('/')
            .nth(1)
            .unwrap_or_default()
            .to_string()
    };
    (
        name(&lb["targetGroupArn"]),
        name(&lb["advancedConfiguration"]["alternateTargetGroupArn"]),
    )
}

/// The healthy targets of the target group `name`.
fn healthy_in(name: &str) -> usize {
    let arn = aws(&["elbv2", "describe-target-groups", "--names", name]).json()["TargetGroups"][0]
        ["TargetGroupArn"]
        .as_str()
        .unwrap()
        .to_string();
    aws(&[
        "elbv2",
        "describe-target-health",
        "--target-group-arn",
        &arn,
    ])
    .json()["TargetHealthDescriptions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["TargetHealth"]["State"] == "healthy")
        .count()
}

/// The resource label of the requests-per-target scaling policy.
fn scaling_label(project: &str) -> String {
    aws(&[
        "application-autoscaling",
        "describe-scaling-policies",
        "--service-namespace",
        "ecs",
        "--resource-id",
        &format!("service/{project}/{project}"),
    ])
    .json()["ScalingPolicies"][0]["TargetTrackingScalingPolicyConfiguration"]
        ["PredefinedMetricSpecification"]["ResourceLabel"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Runs `up` (or `rollback`) with `args` and checks that ECS started it in the other target
/// group, which then serves `version`: ECS swaps the two after each successful deployment.
fn lands_in_the_other_group(project: &Project, url: &str, args: &[&str], version: &str) {
    let before = wiring(&project.name);
    let run = project.mldeploy(args);
    run.expect_code(0);
    let after = wiring(&project.name);
    assert_eq!(
        after,
        (before.1.clone(), before.0.clone()),
        "`{}` did not land in the other target group:\n{}",
        args.join(" "),
        run.stderr
    );
    assert!(healthy_in(&after.0) > 0, "nothing healthy in {}", after.0);
    // The requests-per-target policy counts the live group's requests.
    let label = scaling_label(&project.name);
    assert!(
        label.contains(&format!("/targetgroup/{}/", after.0)),
        "the scaling policy still counts another group: {label}"
    );
    let answer = predict_through(url);
    assert!(
        answer.stdout.contains(&format!("/{version}\"")),
        "production does not answer from model {version} after `{}`: {}",
        args.join(" "),
        answer.stdout
    );
}

#[test]
fn successive_deployments_alternate_target_groups_through_rollback_and_a_switch_to_canary() {
    let (project, _) = shifting("it-bg-alt", "strategy = \"blue_green\"\nbake_time = \"1m\"");
    project.predict(&predictions("4.526", "4.6"));
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{config}[service.autoscaling]\nmetric = \"requests\"\nmin_count = 1\nmax_count = 2\ntarget = 100\n"),
    )
    .unwrap();
    let first = project.mldeploy(&["up", "--output", "json"]);
    first.expect_code(0);
    let url = url_of(&first);
    let live = wiring(&project.name);
    // The new stack's production rule forwards to the group the service registers its tasks in.
    let status = project.mldeploy(&["status", "--output", "json"]);
    status.expect_code(0);
    let traffic = status.json()["shift"]["traffic"].clone();
    assert!(
        traffic
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t[0] == live.0.as_str() && t[1] == 100.0),
        "{traffic}"
    );
    let plan = project.mldeploy(&["plan"]);
    plan.expect_code(0);
    assert_says(
        &plan.stdout,
        &[&format!(
            "live target group {}, the next deployment starts in {}",
            live.0, live.1
        )],
    );
    // Three deployments, each in the group the one before left idle.
    lands_in_the_other_group(&project, &url, &["up", "--model-version", "7"], "7");
    lands_in_the_other_group(&project, &url, &["up", "--model-version", "6"], "6");
    lands_in_the_other_group(&project, &url, &["up", "--model-version", "7"], "7");
    // A rollback during the bake moves traffic back: the wiring stays as it was.
    let live = wiring(&project.name);
    std::fs::write(
        &path,
        std::fs::read_to_string(&path)
            .unwrap()
            .replace("bake_time = \"1m\"", "bake_time = \"60m\""),
    )
    .unwrap();
    let (code, said) = interrupt_up_at(&project, &["--model-version", "6"], "BAKE_TIME", || {});
    assert_eq!(code, Some(130), "{said}");
    let back = project.mldeploy(&["rollback"]);
    back.expect_code(0);
    assert_says(&back.stderr, &["still runs beside the new revision"]);
    assert_eq!(wiring(&project.name), live);
    assert!(predict_through(&url).stdout.contains("/7\""));
    std::fs::write(
        &path,
        std::fs::read_to_string(&path)
            .unwrap()
            .replace("bake_time = \"60m\"", "bake_time = \"1m\""),
    )
    .unwrap();
    // A rollback after the bake is a deployment like any other.
    lands_in_the_other_group(&project, &url, &["rollback"], "6");
    // A switch to canary keeps ECS's wiring.
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        config.replace(
            "strategy = \"blue_green\"",
            "strategy = \"canary\"\ncanary_percent = 20\ncanary_bake_time = \"1m\"",
        ),
    )
    .unwrap();
    lands_in_the_other_group(&project, &url, &["up", "--model-version", "7"], "7");
}

#[test]
fn a_switch_to_blue_green_while_iam_has_not_propagated_its_role_succeeds_after_retries() {
    let (project, _) = deployable("it-bg-iam");
    project.predict(&predictions("4.526", "4.6"));
    project.mldeploy(&["up"]).expect_code(0);
    // The role ECS shifts traffic with, made ahead as mldeploy's (tagged the project's) but
    // empty, with a long IAM delay in the sandbox: mldeploy writes its policy, and ECS refuses
    // the role for 230 AWS s after that: longer than mldeploy's own 10 s wait for IAM and than
    // the rest of the `up` before UpdateService, shorter than the 240 s UpdateService is retried.
    let role = format!("{}-lb-infrastructure", project.name);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws(&[
        "iam",
        "create-role",
        "--role-name",
        &role,
        "--assume-role-policy-document",
        trust,
        "--tags",
        &format!("Key=mldeploy:project,Value={}", project.name),
        "Key=sandbox:iam-delay-seconds,Value=230",
    ])
    .expect_code(0);
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{config}[deploy]\nstrategy = \"blue_green\"\nbake_time = \"1m\"\n"),
    )
    .unwrap();
    let run = project.mldeploy(&["up", "--model-version", "7"]);
    run.expect_code(0);
    assert_says(
        &run.stderr,
        &[
            "ECS could not use the service's roles for",
            "it could after retries",
            "POST_TEST_TRAFFIC_SHIFT",
        ],
    );
    let url = format!("http://{}", load_balancer_dns(&project.name));
    assert!(predict_through(&url).stdout.contains("/7"));
}

#[test]
fn a_pause_hook_that_expires_while_the_gate_runs_is_reported_as_ecs_own_rollback() {
    // The gate's request takes 3 s on the new revision: longer than the whole PAUSE hook, which
    // lasts --timeout (1 minute, 1.2 s on the sandbox's clock). ECS takes the hook's timeout
    // action (ROLLBACK) before mldeploy answers.
    let (project, _) = shifting(
        "it-bg-hook",
        "strategy = \"blue_green\"\nbake_time = \"1m\"",
    );
    project.predict(&predictions("4.526", "4.526"));
    project.write(
        "app/cgi-bin/slow",
        "#!/bin/busybox sh\necho \"Content-Type: application/json\"\necho\ncase \"$MODEL_PATH\" in */7) /bin/busybox sleep 3;; esac\necho '{\"prediction\": 1.0}'\n",
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let slow = project.path().join("app/cgi-bin/slow");
        std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        config.replace("/cgi-bin/predict\", body", "/cgi-bin/slow\", body"),
    )
    .unwrap();
    let first = project.mldeploy(&["up", "--output", "json"]);
    first.expect_code(0);
    let url = url_of(&first);
    let run = project.mldeploy(&["up", "--model-version", "7", "--timeout", "1m"]);
    run.expect_code(1);
    assert_says(
        &run.stderr,
        &[
            "the PAUSE hook expired before mldeploy answered it",
            "rolled back",
        ],
    );
    assert!(
        !run.stderr.contains("ContinueServiceDeployment"),
        "{}",
        run.stderr
    );
    assert!(predict_through(&url).stdout.contains("/6\""));
}
