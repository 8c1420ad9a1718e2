//! CPU architecture: the task runs on the architecture its image was built for, an image
//! Fargate cannot run is refused before anything changes, and the sandbox stops a task whose
//! image does not match its task definition, as Fargate does.

use crate::support::*;

/// A [`deployable`] project whose image shares no build step with other tests' images: the
/// engine's classic builder does not tell platforms apart in its cache, so a foreign-platform
/// layer of a shared step would be offered to every other build.
fn own_layers(prefix: &str) -> (Project, String) {
    let (project, bucket) = deployable(prefix);
    // A COPY first: the classic builder gives a first step that only sets metadata (ENV) the
    // engine's own platform whatever was asked, and then refuses its own layer.
    let dockerfile = SERVING_DOCKERFILE.replacen(
        "FROM scratch\n",
        "FROM scratch\nCOPY app/id.txt /test-image-id\n",
        1,
    );
    project.write("Dockerfile", &dockerfile);
    (project, bucket)
}

/// Adds `[image] platform = ...` to a [`deployable`] project's config.
fn with_platform(project: &Project, platform: &str) {
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("[image]\nplatform = \"{platform}\"\n{config}"),
    )
    .unwrap();
}

fn repository_exists(name: &str) -> bool {
    aws(&["ecr", "describe-repositories", "--repository-names", name]).code == 0
}

fn local_platform(reference: &str) -> String {
    docker(&[
        "image",
        "inspect",
        "-f",
        "{{.Os}}/{{.Architecture}}",
        reference,
    ])
    .stdout
    .trim()
    .to_string()
}

#[test]
fn an_arm64_image_runs_on_arm64_and_a_template_pinning_x86_64_is_refused_before_any_change() {
    let (project, _) = own_layers("it-arm64");
    let native = project.mldeploy(&["build", "--output", "json"]);
    native.expect_code(0);
    assert_eq!(native.json()["platform"], "linux/amd64", "the engine's own");
    with_platform(&project, "linux/arm64");
    with_template(&project, |t| {
        t.replace(
            r#""cpuArchitecture": {{ cpu_architecture | tojson }}"#,
            r#""cpuArchitecture": "X86_64""#,
        )
    });
    let refused = project.mldeploy(&["up"]);
    refused.expect_code(2);
    assert_says(
        &refused.stderr,
        &[
            "deploy/task-definition.json",
            "runtimePlatform.cpuArchitecture is \"X86_64\", but the image is linux/arm64",
            "CannotPullContainerError",
        ],
    );
    assert!(
        !refused
            .stderr
            .contains(&format!("Building {}:", project.name)),
        "refused before the build: {}",
        refused.stderr
    );
    assert!(
        !repository_exists(&project.name),
        "nothing in AWS changed: no repository"
    );

    // The built-in template follows the image.
    let path = project.path().join("mldeploy.toml");
    let config = std::fs::read_to_string(&path).unwrap().replace(
        "task_definition_template = \"deploy/task-definition.json\"\n",
        "",
    );
    std::fs::write(&path, config).unwrap();
    let run = project.mldeploy(&["up", "--output", "json"]);
    run.expect_code(0);
    // The engine's classic builder answered from its cache with the amd64 layers of the build
    // before; mldeploy built again without the cache rather than use them.
    assert_says(&run.stderr, &["Building again without the cache"]);
    // The image this `up` built: the last one it names (the native build before has another
    // tag, since the platform is part of the content hash).
    let marker = format!("Building {}:", project.name);
    let local = run
        .stderr
        .rsplit_once(&marker)
        .and_then(|(_, after)| after.split_whitespace().next())
        .map(|tag| format!("{}:{tag}", project.name))
        .unwrap_or_else(|| panic!("no build in:\n{}", run.stderr));
    assert_eq!(local_platform(&local), "linux/arm64");
    let td_arn = run.json()["task_definition"].as_str().unwrap().to_string();
    let td = aws(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        &td_arn,
    ])
    .json();
    assert_eq!(
        td["taskDefinition"]["runtimePlatform"]["cpuArchitecture"], "ARM64",
        "{td}"
    );
    let status = project.mldeploy(&["status", "--output", "json"]);
    status.expect_code(0);

    // The sandbox is as strict as Fargate: the same image in a revision without ARM64 cannot
    // be pulled, and its tasks stop saying so.
    let mut copy = td["taskDefinition"].clone();
    copy.as_object_mut().unwrap().remove("runtimePlatform");
    let x86 = register_copy(copy);
    aws(&[
        "ecs",
        "update-service",
        "--cluster",
        &project.name,
        "--service",
        &project.name,
        "--task-definition",
        &x86,
    ])
    .expect_code(0);
    let reason = eventually(60, "a stopped task of the X86_64 revision", || {
        stopped_tasks(&project.name).iter().find_map(|t| {
            (t["taskDefinitionArn"] == x86.as_str())
                .then(|| t["stoppedReason"].as_str().unwrap_or_default().to_string())
        })
    });
    assert_says(
        &reason,
        &[
            "CannotPullContainerError",
            "does not contain descriptor matching platform 'linux/amd64'",
        ],
    );
}

#[test]
fn an_image_fargate_cannot_run_or_a_platform_that_is_none_exits_2_naming_it() {
    let (project, _) = own_layers("it-s390x");
    with_platform(&project, "arm64");
    let bad = project.mldeploy(&["up"]);
    bad.expect_code(2);
    assert_says(
        &bad.stderr,
        &["image.platform", "\"arm64\" is not a platform"],
    );

    with_platform(&project, "linux/s390x");
    let path = project.path().join("mldeploy.toml");
    let config =
        std::fs::read_to_string(&path)
            .unwrap()
            .replacen("[image]\nplatform = \"arm64\"\n", "", 1);
    std::fs::write(&path, config).unwrap();
    let refused = project.mldeploy(&["up"]);
    refused.expect_code(2);
    assert_says(
        &refused.stderr,
        &["is a linux/s390x image; Fargate runs linux/amd64 and linux/arm64 images only"],
    );
    assert!(!repository_exists(&project.name), "nothing in AWS changed");
}
