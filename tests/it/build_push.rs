//! `build` and `push` against the real engine, the real registry and moto's ECR.

use std::process::Command;

use crate::support::*;

fn describe_digests(repository: &str) -> Vec<(String, Vec<String>)> {
    let run = aws(&["ecr", "describe-images", "--repository-name", repository]);
    run.expect_code(0);
    run.json()["imageDetails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let tags = d["imageTags"]
                .as_array()
                .map(|t| t.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            (d["imageDigest"].as_str().unwrap().to_string(), tags)
        })
        .collect()
}

#[test]
fn a_pushed_image_can_be_pulled_ecr_lists_its_digest_and_a_second_push_sends_nothing() {
    require_sandbox();
    let project = Project::new("it-push");
    let first = project.mldeploy(&["push", "--output", "json"]);
    first.expect_code(0);
    let report = first.json();
    let (tag, digest) = (
        report["tag"].as_str().unwrap(),
        report["digest"].as_str().unwrap(),
    );
    assert_eq!(report["pushed"], true);
    assert_eq!(report["built"], true);
    assert_eq!(report["repository"], project.repository());
    assert_eq!(
        report["image"],
        format!("{}:{tag}@{digest}", project.repository())
    );
    assert!(tag.starts_with("ctx-") && digest.starts_with("sha256:"));
    assert!(
        first.stderr.contains(" : COPY bin /bin") && first.stderr.contains("Step 2/"),
        "build steps are shown:\n{}",
        first.stderr
    );
    assert!(
        first.stderr.contains(": Pushed"),
        "layer progress is shown:\n{}",
        first.stderr
    );

    // ECR (moto, fed by the registry) lists the digest the push reported.
    let listed = eventually(15, "ECR to list the pushed image", || {
        let images = describe_digests(&project.name);
        images
            .into_iter()
            .find(|(d, tags)| d == digest && tags.iter().any(|t| t == tag))
    });
    assert_eq!(listed.0, digest);

    // Unchanged project: nothing is built or pushed, and the reference is the same.
    let second = project.mldeploy(&["push", "--output", "json"]);
    second.expect_code(0);
    let again = second.json();
    assert_eq!(again["pushed"], false);
    assert_eq!(again["built"], false);
    assert_eq!(again["image"], report["image"]);
    assert!(
        second.stderr.contains("nothing to push"),
        "{}",
        second.stderr
    );
    assert!(
        !second.stderr.contains("Step 1/"),
        "no build on an unchanged re-run:\n{}",
        second.stderr
    );

    // Remove every local copy, then pull the printed reference with the docker CLI.
    docker(&[
        "rmi",
        "-f",
        &format!("{}:{tag}", project.name),
        &format!("{}:{tag}", project.repository()),
    ])
    .expect_code(0);
    docker(&["image", "inspect", report["image"].as_str().unwrap()]).expect_code(1);
    let config = logged_in_docker_config();
    let mut pull = Command::new("docker");
    pull.arg("--config")
        .arg(config.path())
        .args(["pull", report["image"].as_str().unwrap()]);
    Run::of(pull).expect_code(0);
    let run = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        report["image"].as_str().unwrap(),
        "/bin/busybox",
        "cat",
        "/app/id.txt",
    ]);
    run.expect_code(0);
    assert_eq!(run.stdout.trim(), project.name);

    // Without a local image, the content tag in ECR is enough: still nothing to build or push.
    docker(&["rmi", "-f", report["image"].as_str().unwrap()]);
    let third = project.mldeploy(&["push", "--output", "json"]);
    third.expect_code(0);
    assert_eq!(third.json()["pushed"], false);
    assert_eq!(describe_digests(&project.name).len(), 1);
}

#[test]
fn the_repository_is_created_tagged_scanned_and_with_a_lifecycle_policy() {
    require_sandbox();
    let project = Project::new("it-repo");
    project.write_config("\n[image]\nkeep_images = 12\n");
    project.mldeploy(&["push"]).expect_code(0);

    let run = aws(&[
        "ecr",
        "describe-repositories",
        "--repository-names",
        &project.name,
    ]);
    run.expect_code(0);
    let repo = &run.json()["repositories"][0];
    assert_eq!(repo["imageScanningConfiguration"]["scanOnPush"], true);
    let arn = repo["repositoryArn"].as_str().unwrap();

    let tags = aws(&["ecr", "list-tags-for-resource", "--resource-arn", arn]);
    tags.expect_code(0);
    let tags = tags.json();
    assert!(
        tags["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["Key"] == "mldeploy:project" && t["Value"] == project.name.as_str()),
        "{tags}"
    );

    let policy = aws(&[
        "ecr",
        "get-lifecycle-policy",
        "--repository-name",
        &project.name,
    ]);
    policy.expect_code(0);
    let text: serde_json::Value =
        serde_json::from_str(policy.json()["lifecyclePolicyText"].as_str().unwrap()).unwrap();
    assert_eq!(text["rules"][0]["selection"]["countNumber"], 12);

    // A changed keep_images converges the policy on the next push.
    project.write_config("\n[image]\nkeep_images = 40\n");
    project.mldeploy(&["push"]).expect_code(0);
    let policy = aws(&[
        "ecr",
        "get-lifecycle-policy",
        "--repository-name",
        &project.name,
    ]);
    let text: serde_json::Value =
        serde_json::from_str(policy.json()["lifecyclePolicyText"].as_str().unwrap()).unwrap();
    assert_eq!(text["rules"][0]["selection"]["countNumber"], 40);
}

#[test]
fn a_changed_file_changes_the_tag_and_an_ignored_one_does_not() {
    require_sandbox();
    let project = Project::new("it-tag");
    project.write(".dockerignore", "app/scratch\n**/*.log\n");
    let tag_of = |p: &Project| {
        let run = p.mldeploy(&["build", "--output", "json"]);
        run.expect_code(0);
        run.json()["tag"].as_str().unwrap().to_string()
    };
    let first = tag_of(&project);
    assert_eq!(
        tag_of(&project),
        first,
        "an unchanged context gives the same tag"
    );

    project.write("app/scratch/notes.txt", "ignored");
    project.write("app/debug.log", "ignored");
    assert_eq!(
        tag_of(&project),
        first,
        "ignored files do not change the tag"
    );

    project.write("app/model.txt", "v2");
    let second = tag_of(&project);
    assert_ne!(second, first);

    // What .dockerignore excludes is not in the image.
    let image = format!("{}:{second}", project.name);
    let run = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "/bin/busybox",
        "find",
        "/app",
    ]);
    run.expect_code(0);
    assert!(run.stdout.contains("/app/model.txt"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("scratch") && !run.stdout.contains(".log"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_failing_build_step_exits_1_naming_the_step_and_the_engines_message() {
    require_sandbox();
    let project = Project::new("it-buildfail");
    project.write("Dockerfile", FAILING_BUILD_DOCKERFILE);
    let run = project.mldeploy(&["build"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("the build failed at Step 3/")
            && run.stderr.contains(" : RUN [\"/bin/busybox\", \"sh\""),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("returned a non-zero code: 7"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unreachable_engine_exits_3_and_says_how_to_fix_it() {
    let project = Project::new("it-noengine");
    for command in ["build", "push"] {
        let mut cmd = mldeploy_cmd();
        cmd.arg("-C")
            .arg(project.path())
            .arg(command)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env("AWS_REGION", "us-east-1");
        let run = Run::of(cmd);
        run.expect_code(3);
        assert!(
            run.stderr
                .contains("Docker engine at unix:///nonexistent/docker.sock"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("DOCKER_HOST"), "{}", run.stderr);
    }
}

#[test]
fn the_registry_token_is_never_written_to_disk() {
    require_sandbox();
    let project = Project::new("it-token");
    let home = tempfile::tempdir().unwrap();
    let mut cmd = mldeploy_cmd();
    cmd.arg("-C")
        .arg(project.path())
        .args(["push", "-v"])
        .env("HOME", home.path())
        .env_remove("DOCKER_CONFIG");
    let run = Run::of(cmd);
    run.expect_code(0);
    let token = aws(&["ecr", "get-login-password"])
        .stdout
        .trim()
        .to_string();
    assert!(!token.is_empty());
    assert!(
        !run.stdout.contains(&token) && !run.stderr.contains(&token),
        "the token was printed"
    );
    assert!(
        files_under(home.path()).is_empty(),
        "mldeploy wrote under HOME: {:?}",
        files_under(home.path())
    );
    for file in files_under(project.path()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&token),
            "{} holds the token",
            file.display()
        );
    }
}

#[test]
fn an_interrupted_build_exits_130_promptly() {
    require_sandbox();
    let project = Project::new("it-sigint");
    let run = interrupt_during_build(&project, "build", || {});
    assert_eq!(run.code, Some(130), "{}", run.stderr);
    assert!(
        run.took < std::time::Duration::from_secs(10),
        "took {:?}",
        run.took
    );
    assert!(run.stderr.contains("interrupted"), "{}", run.stderr);
}

#[test]
fn an_image_built_in_a_git_checkout_carries_the_commit() {
    require_sandbox();
    let project = Project::new("it-git");
    let git = |args: &[&str]| {
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(project.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args);
        Run::of(cmd).expect_code(0).stdout.trim().to_string()
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "fixture"]);
    let commit = git(&["rev-parse", "HEAD"]);

    let run = project.mldeploy(&["build", "--output", "json"]);
    run.expect_code(0);
    let report = run.json();
    assert_eq!(report["git_commit"], commit.as_str());
    let labels = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        report["image"].as_str().unwrap(),
    ]);
    let labels: serde_json::Value = serde_json::from_str(labels.stdout.trim()).unwrap();
    assert_eq!(labels["org.opencontainers.image.revision"], commit.as_str());
    assert_eq!(labels["mldeploy.project"], project.name.as_str());
}

#[test]
fn an_existing_repository_without_our_tag_is_used_but_not_changed() {
    require_sandbox();
    let project = Project::new("it-foreign");
    aws(&[
        "ecr",
        "create-repository",
        "--repository-name",
        &project.name,
    ])
    .expect_code(0);
    let run = project.mldeploy(&["push", "--output", "json"]);
    run.expect_code(0);
    assert_eq!(run.json()["repository_created"], false);
    assert!(
        run.stderr.contains("lacks the mldeploy:project tag"),
        "{}",
        run.stderr
    );
    // No lifecycle policy was put on a repository mldeploy does not own.
    let policy = aws(&[
        "ecr",
        "get-lifecycle-policy",
        "--repository-name",
        &project.name,
    ]);
    assert_ne!(policy.code, 0, "a policy was set: {}", policy.stdout);
    assert!(
        policy.stderr.contains("LifecyclePolicyNotFoundException"),
        "{}",
        policy.stderr
    );
}

#[test]
fn an_unreachable_aws_endpoint_exits_3_naming_the_call() {
    require_sandbox();
    let project = Project::new("it-noaws");
    let mut cmd = mldeploy_cmd();
    cmd.arg("-C")
        .arg(project.path())
        .arg("push")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    let run = Run::of(cmd);
    run.expect_code(3);
    assert!(
        run.stderr
            .contains("ecr:DescribeRepositories: AWS did not answer"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Connection refused"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("DispatchFailure {"),
        "no Debug dumps: {}",
        run.stderr
    );
}
