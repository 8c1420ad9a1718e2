//! Deployments on the sandbox's scaled AWS clock: a model that loads slowly is stopped in a loop
//! by ECS without a grace period and deploys with one (`service.model_load_time`); an old task's
//! target drains for the deregistration delay before ECS stops it, and the deployment completes
//! only after.

use crate::support::*;

fn with_service_keys(project: &Project, keys: &str) {
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    // The config of a `deployable` project ends in its [service] table.
    std::fs::write(&path, format!("{config}{keys}\n")).unwrap();
}

#[test]
fn a_slow_loading_model_is_stopped_in_a_loop_without_a_grace_period_and_deploys_with_one() {
    let (project, _) = deployable("it-slowload");
    // The app answers /health only once its model is loaded, 200 AWS seconds after it starts.
    std::fs::remove_file(project.path().join("app/health")).unwrap();
    project.write(
        "Dockerfile",
        &format!(
            "FROM scratch\nCOPY bin /bin\nCOPY app /app\nEXPOSE 8080\nCMD [\"/bin/busybox\", \"sh\", \"-c\", \"(/bin/busybox sleep {:.2}; echo ok > /app/health) & exec /bin/busybox httpd -f -p 0.0.0.0:8080 -h /app\"]\n",
            wall(200.0)
        ),
    );
    with_service_keys(&project, "model_load_time = \"0s\"");
    let trapped = project.mldeploy(&["up", "--timeout", "5m"]);
    trapped.expect_code(1);
    assert_says(&trapped.stderr, &["Task failed ELB health checks"]);

    // The same app, given the time its model takes: deploys.
    let config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    std::fs::write(
        project.path().join("mldeploy.toml"),
        config.replace("model_load_time = \"0s\"", "model_load_time = \"300s\""),
    )
    .unwrap();
    let plan = project.mldeploy(&["plan", "--output", "json"]);
    plan.expect_code(0);
    let service = plan.json()["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource"] == "ECS service")
        .cloned()
        .unwrap();
    assert!(
        service["detail"]
            .as_str()
            .unwrap()
            .contains("health-check grace period 0 s -> 300 s"),
        "{service}"
    );
    let deployed = project.mldeploy(&["up", "--timeout", "5m"]);
    deployed.expect_code(0);

    // A model that loads for longer than the container health check waits is warned about.
    let config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    std::fs::write(
        project.path().join("mldeploy.toml"),
        config.replace("model_load_time = \"300s\"", "model_load_time = \"10m\""),
    )
    .unwrap();
    let warned = project.mldeploy(&["plan"]);
    warned.expect_code(0);
    assert_says(
        &warned.stderr,
        &["before service.model_load_time (600 s): ECS would stop a task still loading its model"],
    );
}

#[test]
fn an_old_task_drains_for_the_deregistration_delay_before_ecs_stops_it() {
    let (project, _) = deployable("it-drain");
    // 20 AWS minutes: the drain lasts 24 s on the sandbox's clock, long enough for the three
    // awscli calls below to see it on a loaded machine (at 300 s, 6 s, CI once saw the drain end
    // between the target's "draining" and the service's deployments).
    with_service_keys(&project, "deregistration_delay = \"1200s\"");
    project.mldeploy(&["up"]).expect_code(0);
    let old = aws(&["ecs", "list-tasks", "--cluster", &project.name]).json()["taskArns"][0]
        .as_str()
        .unwrap()
        .to_string();
    let old_task = || {
        aws(&[
            "ecs",
            "describe-tasks",
            "--cluster",
            &project.name,
            "--tasks",
            &old,
        ])
        .json()["tasks"][0]
            .clone()
    };
    let tg = aws(&["elbv2", "describe-target-groups", "--names", &project.name]).json()
        ["TargetGroups"][0]["TargetGroupArn"]
        .as_str()
        .unwrap()
        .to_string();

    let mut cmd = mldeploy_cmd();
    cmd.arg("-C")
        .arg(project.path())
        .args(["up", "--model-version", "7"]);
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut rollout = cmd
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();

    // The old target drains while the new one serves: the old task is deactivating, not
    // stopped, and the deployment is not complete.
    eventually(120, "the old task's target to drain", || {
        if let Some(status) = rollout.try_wait().unwrap() {
            panic!(
                "the up ended ({status}) before its old target drained:\n{}",
                std::fs::read_to_string(log.path()).unwrap()
            );
        }
        let health = aws(&["elbv2", "describe-target-health", "--target-group-arn", &tg]).json();
        let draining = health["TargetHealthDescriptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["TargetHealth"]["State"] == "draining");
        draining.then_some(())
    });
    let task = old_task();
    assert_eq!(task["desiredStatus"], "STOPPED", "{task}");
    assert_ne!(task["lastStatus"], "STOPPED", "{task}");
    let service = service_of(&project.name);
    let deployments = service["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 2, "{service}");
    assert_eq!(deployments[0]["rolloutState"], "IN_PROGRESS", "{service}");

    let status = rollout.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        std::fs::read_to_string(log.path()).unwrap()
    );
    let task = old_task();
    assert_eq!(task["lastStatus"], "STOPPED", "{task}");
    assert_eq!(
        service_of(&project.name)["deployments"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_task_counts_once_its_container_health_check_passes_and_is_stopped_when_it_cannot() {
    let (project, _) = deployable("it-ctrcheck");
    project.mldeploy(&["up"]).expect_code(0);
    let name = &project.name;
    let task = aws(&["ecs", "list-tasks", "--cluster", name]).json()["taskArns"][0]
        .as_str()
        .unwrap()
        .to_string();
    let described = aws(&["ecs", "describe-tasks", "--cluster", name, "--tasks", &task]).json();
    assert_eq!(
        described["tasks"][0]["healthStatus"], "HEALTHY",
        "{described}"
    );

    // A container health check that never passes (a program the image has, so the preflight
    // lets it through): the load balancer finds the task healthy, ECS's container health check
    // does not, and ECS stops it after the grace period.
    project.append_config("ready_check_command = [\"/bin/busybox\", \"false\"]\n");
    let run = project.mldeploy(&["up", "--model-version", "7", "--timeout", "5m"]);
    run.expect_code(1);
    assert_says(&run.stderr, &["Task failed container health checks"]);
    let stopped = stopped_tasks(name);
    let failed = stopped
        .iter()
        .find(|t| t["stoppedReason"] == "Task failed container health checks")
        .unwrap_or_else(|| panic!("no task stopped for its health check: {stopped:?}"));
    assert_eq!(failed["healthStatus"], "UNHEALTHY", "{failed}");
    eventually(30, "ECS's rollback to the image that passes", || {
        (serving(name) == (format!("{name}:1"), 1)).then_some(())
    });
}
