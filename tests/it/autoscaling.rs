//! `[service.autoscaling]`: the scalable target and target-tracking policy converged by `up`,
//! the autoscaler's desired count left alone by a later `up`, shown by `status`, and removed by
//! `destroy` (Application Auto Scaling of the sandbox's moto, which checks the service exists).

use crate::support::*;

fn scalable_targets(stack: &str) -> serde_json::Value {
    let run = aws(&[
        "application-autoscaling",
        "describe-scalable-targets",
        "--service-namespace",
        "ecs",
        "--resource-ids",
        &format!("service/{stack}/{stack}"),
    ]);
    run.expect_code(0);
    run.json()["ScalableTargets"].clone()
}

fn set_config(project: &Project, from: &str, to: &str) {
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    assert!(config.contains(from), "{config}");
    std::fs::write(&path, config.replace(from, to)).unwrap();
}

#[test]
fn autoscaling_is_converged_left_to_the_autoscaler_by_a_later_up_and_removed_by_destroy() {
    let (project, _) = deployable("it-scale");
    let table = "[service.autoscaling]\nmin_count = 1\nmax_count = 4\ntarget = 60\n";
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{config}{table}")).unwrap();
    let name = project.name.clone();

    let plan = project.mldeploy(&["plan"]);
    plan.expect_code(0);
    assert_says(
        &plan.stdout,
        &["autoscaling target", "1-4 tasks", "average CPU at 60 %"],
    );
    project.mldeploy(&["up"]).expect_code(0);
    let targets = scalable_targets(&name);
    assert_eq!(targets[0]["MinCapacity"], 1, "{targets}");
    assert_eq!(targets[0]["MaxCapacity"], 4, "{targets}");
    let policies = aws(&[
        "application-autoscaling",
        "describe-scaling-policies",
        "--service-namespace",
        "ecs",
        "--resource-id",
        &format!("service/{name}/{name}"),
    ])
    .json();
    let policy = &policies["ScalingPolicies"][0];
    assert_eq!(
        policy["PolicyName"], "mldeploy-target-tracking",
        "{policies}"
    );
    let tracking = &policy["TargetTrackingScalingPolicyConfiguration"];
    assert_eq!(tracking["TargetValue"], 60.0, "{policies}");
    assert_eq!(
        tracking["PredefinedMetricSpecification"]["PredefinedMetricType"],
        "ECSServiceAverageCPUUtilization"
    );

    // The autoscaler scales out; a later up (a new model version) leaves its count alone.
    aws(&[
        "ecs",
        "update-service",
        "--cluster",
        &name,
        "--service",
        &name,
        "--desired-count",
        "3",
    ])
    .expect_code(0);
    let plan = project.mldeploy(&["plan", "--model-version", "7"]);
    assert!(
        !plan.stdout.contains("desired count 3 ->"),
        "{}",
        plan.stdout
    );
    assert_says(
        &plan.stdout,
        &["keep   autoscaling target", "keep   scaling policy"],
    );
    project
        .mldeploy(&["up", "--model-version", "7"])
        .expect_code(0);
    assert_eq!(service_of(&name)["desiredCount"], 3);
    let status = project.mldeploy(&["status", "--output", "json"]);
    let status = status.json();
    assert_eq!(status["autoscaling"]["min_count"], 1, "{status}");
    assert_eq!(status["autoscaling"]["max_count"], 4, "{status}");
    let text = project.mldeploy(&["status"]);
    assert_says(
        &text.stdout,
        &["autoscaling: 1-4 tasks, average CPU at 60 %"],
    );

    // A narrower range is an update; no table at all removes mldeploy's registration.
    set_config(&project, "max_count = 4", "max_count = 2");
    let plan = project.mldeploy(&["plan", "--model-version", "7"]);
    assert_says(
        &plan.stdout,
        &["update autoscaling target", "1-4 -> 1-2 tasks"],
    );
    set_config(
        &project,
        "[service.autoscaling]\nmin_count = 1\nmax_count = 2\ntarget = 60\n",
        "",
    );
    let plan = project.mldeploy(&["plan", "--model-version", "7"]);
    assert_says(
        &plan.stdout,
        &["delete autoscaling", "no [service.autoscaling]"],
    );

    let destroy = project.mldeploy(&["destroy", "--yes"]);
    destroy.expect_code(0);
    assert_says(&destroy.stderr, &["autoscaling target"]);
    assert_eq!(scalable_targets(&name), serde_json::json!([]));
}
