//! `mldeploy logs` against the sandbox, whose ECS sends each task container's output to
//! CloudWatch Logs as the awslogs driver does.

use std::io::BufRead;
use std::time::Duration;

use crate::support::*;

/// The fixture's web server, after saying which model it loads.
const TALKING_DOCKERFILE: &str = "FROM scratch\nCOPY bin /bin\nCOPY app /app\nCMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo loading model from $MODEL_PATH; exec /bin/busybox httpd -f -p 0.0.0.0:8080 -h /app\"]\n";

fn task_ids(project: &str) -> Vec<String> {
    let run = aws(&[
        "ecs",
        "list-tasks",
        "--cluster",
        project,
        "--service-name",
        project,
    ]);
    run.json()["taskArns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect()
}

#[test]
fn logs_show_the_services_lines_with_the_task_that_wrote_them() {
    let (project, _) = deployable("it-logs");
    project.write("Dockerfile", TALKING_DOCKERFILE);
    project.mldeploy(&["up"]).expect_code(0);
    let wanted = format!("loading model from mlflow/models/{}/6", project.name);
    let line = eventually(20, "the startup line in CloudWatch", || {
        let run = project.mldeploy(&["logs", "--since", "5m", "--output", "json"]);
        run.expect_code(0);
        run.json()["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["message"] == wanted.as_str())
            .cloned()
    });
    assert_eq!(task_ids(&project.name), [line["task"].as_str().unwrap()]);
    let text = project.mldeploy(&["logs"]);
    let short = &line["task"].as_str().unwrap()[..8];
    assert!(
        text.stdout.contains(&format!("[{short}] {wanted}")),
        "{}",
        text.stdout
    );

    // --follow prints what is there, then keeps going until interrupted; with --output json,
    // as JSON Lines.
    let mut child = mldeploy_cmd()
        .arg("-C")
        .arg(project.path())
        .args(["logs", "--follow", "--output", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let got = rx.recv_timeout(Duration::from_secs(20));
    child.kill().unwrap();
    child.wait().unwrap();
    let line: serde_json::Value = serde_json::from_str(&got.unwrap()).unwrap();
    assert!(
        line["message"].as_str().unwrap().contains(&wanted),
        "{line}"
    );
    assert!(
        line["time"].is_string() && line["task"].is_string(),
        "{line}"
    );
}

#[test]
fn a_crashed_tasks_last_lines_are_in_the_logs() {
    let (project, _) = deployable("it-logscrash");
    project.write(
        "Dockerfile",
        "FROM scratch\nCOPY bin /bin\nCMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo cannot read s3://$MODEL_BUCKET_NAME/$MODEL_PATH >&2; exit 3\"]\n",
    );
    let up = project.mldeploy(&["up"]);
    up.expect_code(1);
    // It failed because its tasks crashed, not before them.
    assert!(
        up.stderr.contains("(exit code 3)"),
        "up failed for another reason than the crash:\n{}",
        up.stderr
    );
    let run = project.mldeploy(&["logs", "--since", "5m"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("cannot read s3://")
            && run
                .stdout
                .contains(&format!("mlflow/models/{}/6", project.name)),
        "{}",
        run.stdout
    );
}

#[test]
fn logs_of_a_project_never_deployed_exit_3() {
    let (project, _) = deployable("it-logsnone");
    let run = project.mldeploy(&["logs"]);
    run.expect_code(3);
    assert!(
        run.stderr
            .contains(&format!("there is no log group /ecs/{}", project.name)),
        "{}",
        run.stderr
    );
    let follow = project.mldeploy(&["logs", "--follow", "--output", "json"]);
    follow.expect_code(3);
}
