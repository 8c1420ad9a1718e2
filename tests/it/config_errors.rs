//! Bad input: exit 2 with the file, key and line named, before Docker or AWS is called.

use crate::support::{mldeploy_cmd, Project, Run};

/// Points Docker and AWS at nothing: a usage error must be found before either is called.
fn unreachable_everything(project: &Project, args: &[&str]) -> Run {
    let mut cmd = mldeploy_cmd();
    cmd.arg("-C")
        .arg(project.path())
        .args(args)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    Run::of(cmd)
}

#[test]
fn an_unknown_key_exits_2_naming_the_key_line_and_suggestion() {
    let project = Project::new("it-badkey");
    project.write_config("\n[image]\ncontxt = \"app\"\n");
    let run = unreachable_everything(&project, &["build"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains(
            "mldeploy.toml:9: `image.contxt` is not a known key; did you mean `image.context`?"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}

#[test]
fn a_missing_dockerfile_exits_2_naming_the_file() {
    let project = Project::new("it-nodockerfile");
    project.write_config("\n[image]\ndockerfile = \"docker/Dockerfile.prod\"\n");
    let run = unreachable_everything(&project, &["push"]);
    run.expect_code(2);
    assert!(run.stderr.contains("`image.dockerfile`"), "{}", run.stderr);
    assert!(
        run.stderr.contains("docker/Dockerfile.prod does not exist"),
        "{}",
        run.stderr
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let project = Project::new("it-many");
    std::fs::write(
        project.path().join("mldeploy.toml"),
        "[project]\nname = \"Bad_Name\"\n[model]\nbucket = \"models\"\npath = \"no-version\"\n[service]\ncpu = 256\nmemory = 4096\n",
    )
    .unwrap();
    let run = unreachable_everything(&project, &["build"]);
    run.expect_code(2);
    assert!(run.stderr.contains("has 3 problems"), "{}", run.stderr);
    assert!(
        run.stderr.contains("mldeploy.toml:2: `project.name`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("mldeploy.toml:5: `model.path`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("mldeploy.toml:8: `service.memory` = 4096 is not offered by Fargate with service.cpu = 256; valid: 512, 1024, 2048"), "{}", run.stderr);
}

#[test]
fn a_missing_config_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = mldeploy_cmd();
    cmd.arg("-C").arg(dir.path()).arg("build");
    let run = Run::of(cmd);
    run.expect_code(2);
    assert!(
        run.stderr.contains("no mldeploy.toml") && run.stderr.contains("mldeploy init"),
        "{}",
        run.stderr
    );
}

#[test]
fn json_errors_are_one_object_on_stdout() {
    let project = Project::new("it-jsonerr");
    project.write_config("\n[servce]\nport = 1\n");
    let run = unreachable_everything(&project, &["build", "--output", "json"]);
    run.expect_code(2);
    let v = run.json();
    assert_eq!(v["exit_code"], 2);
    assert_eq!(v["status"], "usage");
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("did you mean `service`?"));
}

#[test]
fn bad_flags_are_usage_errors() {
    let mut cmd = mldeploy_cmd();
    cmd.args(["push", "--no-such-flag"]);
    Run::of(cmd).expect_code(2);
}

#[test]
fn init_writes_a_config_that_loads_and_refuses_to_overwrite() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("Fraud Model");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nEXPOSE 9000\n").unwrap();
    let init = |args: &[&str]| {
        let mut cmd = mldeploy_cmd();
        cmd.arg("-C")
            .arg(&dir)
            .arg("init")
            .args(args)
            .args(["--output", "json"]);
        Run::of(cmd)
    };
    let run = init(&[]);
    run.expect_code(0);
    let v = run.json();
    assert_eq!(v["project"], "fraud-model");
    assert_eq!(v["port"], 9000);
    let text = std::fs::read_to_string(dir.join("mldeploy.toml")).unwrap();
    assert!(text.contains("name = \"fraud-model\"") && text.contains("port = 9000"));

    init(&[]).expect_code(2);
    init(&["--force", "--name", "fraud"]).expect_code(0);
    // The written file is valid: a build gets past config loading to the (absent) engine.
    let mut cmd = mldeploy_cmd();
    cmd.arg("-C")
        .arg(&dir)
        .arg("build")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    Run::of(cmd).expect_code(3);
}

#[test]
fn a_model_version_that_is_not_a_version_exits_2_before_any_call() {
    let project = Project::new("it-badversion");
    project.write_config("");
    let bad = ["", " ", "../7", "7/../8", "a b", "7\n8", "7*"];
    for version in bad {
        for command in ["up", "plan", "rollback"] {
            let run = unreachable_everything(&project, &[command, "--model-version", version]);
            run.expect_code(2);
            crate::support::assert_says(
                &run.stderr,
                &["--model-version", "is not a version", "letters, digits"],
            );
        }
    }
    // The same in mldeploy.toml: the key and its line are named.
    for version in bad {
        project.write_config(&format!("version = {}\n", toml_string(version)));
        for command in ["up", "plan", "status"] {
            let run = unreachable_everything(&project, &[command]);
            run.expect_code(2);
            crate::support::assert_says(
                &run.stderr,
                &["mldeploy.toml:7", "model.version", "is not a version"],
            );
        }
    }
}

#[test]
fn a_model_path_outside_what_the_task_role_reads_exits_2_before_any_call() {
    let project = Project::new("it-badpath");
    project.write_config("");
    // model.path is "m/{version}": the task role reads m/ and nothing else.
    let bad = [
        ("m/../secrets/7", "\"..\" segment"),
        ("m//7", "\"\" segment"),
        ("m/./7", "\".\" segment"),
        ("other/7", "is not under \"m/\""),
        ("m", "is not under \"m/\""),
        ("m/", "is not under \"m/\""),
        ("m/7*", "no wildcard"),
        ("m/7 8", "no wildcard, space"),
        ("/m/7", "\"\" segment"),
    ];
    for (path, says) in bad {
        for command in ["up", "plan"] {
            let run = unreachable_everything(&project, &[command, "--model-path", path]);
            run.expect_code(2);
            crate::support::assert_says(&run.stderr, &["--model-path", says]);
        }
    }
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    format!(
        "\"{}\"",
        text.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}
