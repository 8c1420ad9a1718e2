//! One-off tasks: `mldeploy run` returns the command's own exit code and streams its output, as a
//! task of a service's current release; Ctrl-C and --timeout stop the task; a task that cannot
//! start is exit 1 with ECS's reason. `[deploy] release_command` runs with the new release
//! before any service rolls out, and when it fails nothing rolls out. The same on a Docker host.

use crate::docker_target::{on_docker, predict_on};
use crate::support::*;

/// A command in exec form for the test image's busybox shell.
fn sh(script: &str) -> String {
    format!(r#"["/bin/busybox", "sh", "-c", "{script}"]"#)
}

fn run_in(project: &Project, args: &[&str], command: &str) -> Run {
    let mut all: Vec<&str> = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--", "/bin/busybox", "sh", "-c", command]);
    project.mldeploy(&all)
}

/// `mldeploy run` of `echo <says>; <then>` in the background, once the task has said `says`
/// (so it runs).
fn running(project: &Project, says: &str, then: &str) -> std::process::Child {
    use std::io::BufRead;
    let mut child = mldeploy_cmd()
        .arg("-C")
        .arg(project.path())
        .args(["run", "--", "/bin/busybox", "sh", "-c"])
        .arg(format!("echo {says}; {then}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), says);
    child
}

/// The project's tasks that `who` started (ECS's startedBy), running or stopped, as
/// DescribeTasks shows them.
fn tasks_started_by(project: &str, who: &str) -> Vec<serde_json::Value> {
    let mut arns: Vec<String> = Vec::new();
    for status in ["RUNNING", "STOPPED"] {
        let listed = aws(&[
            "ecs",
            "list-tasks",
            "--cluster",
            project,
            "--desired-status",
            status,
        ])
        .json();
        arns.extend(
            listed["taskArns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string()),
        );
    }
    if arns.is_empty() {
        return Vec::new();
    }
    let mut args = vec!["ecs", "describe-tasks", "--cluster", project, "--tasks"];
    args.extend(arns.iter().map(String::as_str));
    aws(&args).json()["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["startedBy"] == who)
        .cloned()
        .collect()
}

#[test]
fn run_streams_a_command_of_the_release_and_exits_with_its_code() {
    let (project, _bucket) = deployable("it-run");
    let name = project.name.clone();
    project.write(".dockerignore", "mldeploy.toml\n");
    project.append_config(&format!(
        "[workers.scorer]\ncommand = {}\nmodel = false\nenvironment = {{ ROLE = \"scoring\" }}\n",
        sh("while true; do /bin/busybox sleep 5; done")
    ));
    project.mldeploy(&["up"]).expect_code(0);

    // The model API's release: its environment, the command's output on stdout.
    let ok = run_in(&project, &[], "echo hello $MODEL_PATH; echo to stderr >&2");
    ok.expect_code(0);
    assert_says(
        &ok.stdout,
        &[&format!("hello mlflow/models/{name}/6"), "to stderr"],
    );
    assert_says(&ok.stderr, &["exited with code 0"]);
    // A worker's release, and the command's own exit code.
    let three = run_in(&project, &["--service", "scorer"], "echo $ROLE; exit 3");
    three.expect_code(3);
    assert_says(&three.stdout, &["scoring"]);
    let ran = tasks_started_by(&name, "mldeploy-run");
    assert_eq!(ran.len(), 2, "{ran:?}");
    assert!(ran.iter().all(|t| t["lastStatus"] == "STOPPED"), "{ran:?}");
    assert!(ran.iter().any(|t| t["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .contains(&format!("{name}-scorer:"))));

    // JSON: each line, then how it ended.
    let json = run_in(&project, &["--output", "json"], "echo one; exit 5");
    json.expect_code(5);
    let lines: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["line"], "one");
    assert_eq!(lines.last().unwrap()["exit_code"], 5);
    assert_eq!(lines.last().unwrap()["service"], name.as_str());

    // Bad names and commands that cannot start.
    let unknown = run_in(&project, &["--service", "nope"], "true");
    unknown.expect_code(2);
    assert_says(&unknown.stderr, &["--service nope", "scorer"]);
    let missing = project.mldeploy(&["run", "--", "/bin/no-such-program"]);
    missing.expect_code(1);
    assert_says(
        &missing.stderr,
        &[
            "stopped before the command ran",
            "CannotStartContainerError",
        ],
    );

    // Past --timeout the task is stopped.
    let slow = run_in(
        &project,
        &["--timeout", "3s"],
        "echo started; /bin/busybox sleep 600",
    );
    slow.expect_code(1);
    assert_says(&slow.stderr, &["--timeout of 3s", "was stopped"]);

    // Ctrl-C stops the task too (exit 130).
    let child = running(&project, "waiting", "/bin/busybox sleep 600");
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert_says(&stderr, &["interrupted: stopped task"]);
    let stopped = eventually(60, "the interrupted task to stop", || {
        let all = tasks_started_by(&name, "mldeploy-run");
        let stopped: Vec<_> = all
            .into_iter()
            .filter(|t| t["stoppedReason"] == "mldeploy run was interrupted")
            .collect();
        (stopped.len() == 1 && stopped[0]["lastStatus"] == "STOPPED").then_some(stopped)
    });
    assert_eq!(stopped[0]["stopCode"], "UserInitiated");

    // A run killed outright cannot stop its task: destroy does, and deletes the cluster
    // (which ECS refuses while a task runs in it). The task would run for 28 wall hours; the
    // destroy may wait 2 minutes.
    let mut killed = running(&project, "orphan", "/bin/busybox sleep 5000000");
    killed.kill().unwrap();
    killed.wait().unwrap();
    let orphan = tasks_started_by(&name, "mldeploy-run");
    assert!(
        orphan.iter().any(|t| t["desiredStatus"] == "RUNNING"),
        "{orphan:?}"
    );
    project
        .mldeploy(&["destroy", "--yes", "--timeout", "2m"])
        .expect_code(0);
    let clusters = aws(&["ecs", "describe-clusters", "--clusters", &name]).json();
    assert_ne!(clusters["clusters"][0]["status"], "ACTIVE", "{clusters}");
}

#[test]
fn a_failing_release_command_changes_nothing_and_a_passing_one_runs_once_per_release() {
    let (project, _bucket) = deployable("it-relcmd");
    let name = project.name.clone();
    project.write(".dockerignore", "mldeploy.toml\n");
    let config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    let with_command = |script: &str| {
        std::fs::write(
            project.path().join("mldeploy.toml"),
            format!("{config}[deploy]\nrelease_command = {}\n", sh(script)),
        )
        .unwrap();
    };
    with_command("echo migrating $MODEL_PATH");
    let first = project.mldeploy(&["up"]);
    first.expect_code(0);
    assert_says(
        &first.stderr,
        &[
            "Running the release command",
            &format!("| migrating mlflow/models/{name}/6"),
        ],
    );
    let (before, _) = serving(&name);
    let families = revisions(&name);

    // It fails: nothing rolls out, and the error says why with its lines.
    with_command("echo cannot migrate $MODEL_PATH; exit 4");
    let plan = project.mldeploy(&["plan", "--model-version", "7"]);
    plan.expect_code(0);
    assert_says(&plan.stdout, &["release command"]);
    let failed = project.mldeploy(&["up", "--model-version", "7"]);
    failed.expect_code(1);
    assert_says(
        &failed.stderr,
        &[
            "exited with code 4",
            "nothing rolled out",
            &format!("cannot migrate mlflow/models/{name}/7"),
        ],
    );
    let (after, _) = serving(&name);
    assert_eq!(
        after, before,
        "the service moved after a failed release command"
    );
    let service = service_of(&name);
    assert_eq!(
        service["deployments"].as_array().unwrap().len(),
        1,
        "{service}"
    );
    assert_eq!(
        revisions(&name),
        families + 1,
        "the new revision is registered, not deployed"
    );

    // It passes: the release goes out; a no-op up does not run it again.
    with_command("echo migrating $MODEL_PATH");
    let passed = project.mldeploy(&["up", "--model-version", "7"]);
    passed.expect_code(0);
    assert_says(
        &passed.stderr,
        &[&format!("| migrating mlflow/models/{name}/7")],
    );
    assert_ne!(serving(&name).0, before);
    let again = project.mldeploy(&["up", "--model-version", "7"]);
    again.expect_code(0);
    assert!(
        !again.stderr.contains("Running the release command"),
        "{}",
        again.stderr
    );
    assert_eq!(tasks_started_by(&name, "mldeploy-release").len(), 3);

    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}

#[test]
fn on_a_docker_host_run_and_the_release_command_use_a_container_of_the_release() {
    let (project, _bucket, port) = on_docker("it-dkrun");
    let name = project.name.clone();
    project.mldeploy(&["up"]).expect_code(0);
    let ok = run_in(&project, &[], "echo hello $MODEL_PATH");
    ok.expect_code(0);
    assert_says(&ok.stdout, &[&format!("hello mlflow/models/{name}/6")]);
    run_in(&project, &[], "exit 3").expect_code(3);
    let left = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=mldeploy.project={name}"),
        "--filter",
        "label=mldeploy.role=run",
        "-q",
    ]);
    assert_eq!(left.stdout.trim(), "", "run left its container");

    project.append_config(&format!(
        "[deploy]\nrelease_command = {}\n",
        sh("echo no $MODEL_PATH; exit 2")
    ));
    let failed = project.mldeploy(&["up", "--model-version", "7"]);
    failed.expect_code(1);
    assert_says(
        &failed.stderr,
        &["exited with code 2", &format!("no mlflow/models/{name}/7")],
    );
    let answer = predict_on(port);
    assert!(
        answer.contains(&format!("mlflow/models/{name}/6")),
        "{answer}"
    );
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}
