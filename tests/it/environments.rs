//! Environments: `[env.<name>]` tables of one mldeploy.toml deployed side by side as their own
//! stacks (`<project>-<env>`), each with its own lock and history, picked by `--env` or
//! `MLDEPLOY_ENV`; the base file alone stays its own project.

use crate::lock::lock_from_elsewhere;
use crate::support::*;

/// Appends `[env...]` tables to the project's mldeploy.toml.
fn with_environments(project: &Project, tables: &str) {
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(path, format!("{config}{tables}")).unwrap();
}

#[test]
fn two_environments_deploy_side_by_side_from_one_file_with_their_own_names_locks_and_histories() {
    let (project, bucket) = deployable("it-env");
    with_environments(&project, "[env.staging.service]\ndesired_count = 1\n[env.prod]\nmodel = { version = 7 }\n[env.prod.service]\ndesired_count = 2\n");
    let staging = format!("{}-staging", project.name);
    let prod = format!("{}-prod", project.name);

    let up = project.mldeploy(&["--env", "staging", "up", "--output", "json"]);
    up.expect_code(0);
    assert_eq!(up.json()["model_version"], "6");
    let mut cmd = mldeploy_cmd();
    cmd.arg("-C")
        .arg(project.path())
        .args(["up", "--output", "json"])
        .env("MLDEPLOY_ENV", "prod");
    let up = Run::of(cmd);
    up.expect_code(0);
    assert_eq!(up.json()["model_version"], "7");

    // Their own names: a service each, in its own cluster, sized as its environment says.
    for (stack, count) in [(&staging, 1), (&prod, 2)] {
        let svc = service_of(stack);
        assert_eq!(svc["serviceName"], stack.as_str(), "{svc}");
        assert_eq!(svc["desiredCount"], count, "{svc}");
    }
    // The base file alone is a project with nothing deployed.
    project.mldeploy(&["status"]).expect_code(3);

    // Their own histories.
    for (env, model) in [("staging", "6"), ("prod", "7")] {
        let history = project.mldeploy(&["--env", env, "history", "--output", "json"]);
        history.expect_code(0);
        let history = history.json();
        let releases = history["releases"].as_array().unwrap();
        assert_eq!(releases.len(), 1, "{history}");
        assert_eq!(releases[0]["model_version"], model, "{history}");
    }

    // Every environment at once, one line each, and the worst exit code.
    let all = project.mldeploy(&["status", "--all"]);
    all.expect_code(0);
    assert_says(
        &all.stdout,
        &[
            &format!("staging      {staging}: healthy"),
            &format!("prod         {prod}: healthy"),
        ],
    );
    assert_eq!(all.stdout.lines().count(), 2, "{}", all.stdout);

    // Their own locks: prod's held elsewhere stops prod only.
    lock_from_elsewhere(&bucket, &prod, "77-1-1", 600);
    project.mldeploy(&["--env", "prod", "up"]).expect_code(4);
    project.mldeploy(&["--env", "staging", "up"]).expect_code(0);
    project
        .mldeploy(&[
            "--env",
            "prod",
            "destroy",
            "--yes",
            "--force-unlock",
            "77-1-1",
        ])
        .expect_code(0);
    let all = project.mldeploy(&["status", "--all", "--output", "json"]);
    all.expect_code(3);
    let all = all.json();
    assert_eq!(all["environments"][0]["env"], "prod", "{all}");
    assert!(all["environments"][0]["error"].is_string(), "{all}");
    assert_eq!(all["environments"][1]["report"]["healthy"], true, "{all}");
    project
        .mldeploy(&["--env", "staging", "destroy", "--yes"])
        .expect_code(0);
    for stack in [&staging, &prod] {
        let gone = aws(&["ecs", "describe-clusters", "--clusters", stack]).json();
        let active = gone["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["status"] == "ACTIVE");
        assert!(!active, "{stack}'s cluster is still there: {gone}");
    }
}

#[test]
fn an_environment_the_file_lacks_exits_2_listing_the_ones_it_has() {
    let (project, _) = deployable("it-envno");
    with_environments(&project, "[env.staging.service]\ndesired_count = 1\n");
    let run = project.mldeploy(&["--env", "qa", "up"]);
    run.expect_code(2);
    assert_says(&run.stderr, &["no [env.qa]", "environments: staging"]);
}

/// The image digest (`sha256:...`) a stack's service runs.
fn serving_digest(stack: &str) -> String {
    let td = service_of(stack)["taskDefinition"]
        .as_str()
        .unwrap()
        .to_string();
    let described = aws(&["ecs", "describe-task-definition", "--task-definition", &td]).json();
    let image = described["taskDefinition"]["containerDefinitions"][0]["image"]
        .as_str()
        .unwrap()
        .to_string();
    image.rsplit_once('@').unwrap().1.to_string()
}

#[test]
fn promote_deploys_the_exact_digest_and_model_version_serving_in_staging_and_refuses_an_unhealthy_one(
) {
    let (project, _) = deployable("it-promo");
    // prod asks for model version 7 itself; promote deploys staging's 6.
    with_environments(
        &project,
        "[env.staging]\n[env.prod]\nmodel = { version = 7 }\n",
    );
    let staging = format!("{}-staging", project.name);
    let prod = format!("{}-prod", project.name);
    project.mldeploy(&["--env", "staging", "up"]).expect_code(0);
    let digest = serving_digest(&staging);

    // The plan copies the image and changes nothing: prod has no repository afterwards.
    let plan = project.mldeploy(&["promote", "--from", "staging", "--to", "prod", "--dry-run"]);
    plan.expect_code(0);
    assert_says(
        &plan.stdout,
        &[&digest, "copied by digest from", "Nothing was changed"],
    );
    let repo = aws(&["ecr", "describe-repositories", "--repository-names", &prod]);
    assert_ne!(repo.code, 0, "the plan created {prod}'s repository");

    let promoted = project.mldeploy(&[
        "promote", "--from", "staging", "--to", "prod", "--output", "json",
    ]);
    promoted.expect_code(0);
    let report = promoted.json();
    assert_eq!(report["model_version"], "6", "{report}");
    assert!(
        report["image"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{prod}@{digest}")),
        "{report}"
    );
    assert_eq!(
        report["promoted_from"],
        format!("staging ({staging} revision 1)"),
        "{report}"
    );
    // Exactly staging's image, by digest, in prod's own repository, and what prod's service runs.
    assert_eq!(serving_digest(&prod), digest);
    let images = aws(&[
        "ecr",
        "describe-images",
        "--repository-name",
        &prod,
        "--image-ids",
        &format!("imageDigest={digest}"),
    ]);
    images.expect_code(0);
    let history = project.mldeploy(&["--env", "prod", "history", "--output", "json"]);
    history.expect_code(0);
    let history = history.json();
    assert_eq!(
        history["releases"][0]["promoted_from"],
        format!("staging ({staging} revision 1)"),
        "{history}"
    );
    assert_eq!(history["releases"][0]["model_version"], "6", "{history}");
    let text = project.mldeploy(&["--env", "prod", "history"]);
    assert_says(&text.stdout, &["promoted from staging"]);

    // An unhealthy staging is promoted nowhere: prod keeps what it serves. Staging's target
    // group is made to check a path its app does not serve, so every task of staging fails the
    // load balancer's checks, the ones ECS starts to replace them too: staging stays unhealthy
    // (one broken container would be replaced by a healthy one within the grace period).
    let prod_serving = service_of(&prod)["taskDefinition"].clone();
    let target_group = service_of(&staging)["loadBalancers"][0]["targetGroupArn"]
        .as_str()
        .unwrap()
        .to_string();
    aws(&[
        "elbv2",
        "modify-target-group",
        "--target-group-arn",
        &target_group,
        "--health-check-path",
        "/not-served",
    ])
    .expect_code(0);
    eventually(20, "staging to be reported unhealthy", || {
        let run = project.mldeploy(&["--env", "staging", "status"]);
        (run.code == 1).then_some(())
    });
    let refused = project.mldeploy(&["promote", "--from", "staging", "--to", "prod"]);
    refused.expect_code(1);
    assert_says(
        &refused.stderr,
        &["staging", "is not healthy", "mldeploy status --env staging"],
    );
    assert_eq!(service_of(&prod)["taskDefinition"], prod_serving);

    // The same environment on both sides is refused before any call.
    let same = project.mldeploy(&["promote", "--from", "prod", "--to", "prod"]);
    same.expect_code(2);
    for env in ["staging", "prod"] {
        project
            .mldeploy(&["--env", env, "destroy", "--yes"])
            .expect_code(0);
    }
}

/// The image the first container of `service`'s task definition in cluster `stack` runs.
fn image_of_service(stack: &str, service: &str) -> String {
    let td = service_in(stack, service)["taskDefinition"]
        .as_str()
        .unwrap_or_else(|| panic!("no service {service} in {stack}"))
        .to_string();
    aws(&["ecs", "describe-task-definition", "--task-definition", &td]).json()["taskDefinition"]
        ["containerDefinitions"][0]["image"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn promote_ships_the_image_a_worker_of_its_own_runs_in_staging_by_digest() {
    let (project, _) = deployable("it-promow");
    project.write(".dockerignore", "mldeploy.toml\nscorer\n");
    own_image(&project, "tested in staging");
    project.append_config(
        "[workers.scorer]\ncommand = [\"/bin/busybox\", \"sh\", \"-c\", \"cat /msg.txt; while true; do /bin/busybox sleep 5; done\"]\n[workers.scorer.image]\ncontext = \"scorer\"\n",
    );
    with_environments(&project, "[env.staging]\n[env.prod]\n");
    let staging = format!("{}-staging", project.name);
    let prod = format!("{}-prod", project.name);
    project.mldeploy(&["--env", "staging", "up"]).expect_code(0);
    let tested = image_of_service(&staging, &format!("{staging}-scorer"));
    let digest = tested.rsplit_once('@').unwrap().1.to_string();
    // The worker's context changes after staging was deployed: prod still gets what staging ran.
    own_image(&project, "changed since");

    let plan = project.mldeploy(&["promote", "--from", "staging", "--to", "prod", "--dry-run"]);
    plan.expect_code(0);
    assert_says(
        &plan.stdout,
        &[
            &digest,
            "worker scorer's, copied by digest from",
            "Nothing was changed",
        ],
    );
    project
        .mldeploy(&["promote", "--from", "staging", "--to", "prod"])
        .expect_code(0);
    let shipped = image_of_service(&prod, &format!("{prod}-scorer"));
    assert!(
        shipped.ends_with(&format!("/{prod}@{digest}")),
        "prod's scorer runs {shipped}, staging's ran {tested}"
    );
    assert_ne!(
        image_of_service(&prod, &prod),
        shipped,
        "the model API runs the project's image"
    );
    for env in ["staging", "prod"] {
        project
            .mldeploy(&["--env", env, "destroy", "--yes"])
            .expect_code(0);
    }
}
