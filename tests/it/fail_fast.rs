//! Failing before the rollout, not after it: a crash-looping Docker release is failed in seconds
//! (it looked running between restarts, and `up` waited out its whole timeout), an interrupted
//! Docker `up` takes its half-made release back, every container logs with rotation, and on ECS
//! what the engine or AWS would refuse is exit 2 before anything is made: an image that cannot
//! run the container health check, a certificate the load balancer cannot use, secrets ECS
//! cannot read, a model bucket the tasks' gateway endpoint cannot reach.

use std::time::Instant;

use crate::docker_target::{on_docker, predict_on};
use crate::support::*;

/// The names of the project's release containers, running or not (the proxy aside).
fn releases_of(project: &str, all: bool) -> Vec<String> {
    let mut args = vec!["ps"];
    if all {
        args.push("-a");
    }
    let label = format!("label=mldeploy.project={project}");
    args.extend(["--filter", &label, "--format", "{{.Names}}"]);
    docker(&args)
        .stdout
        .lines()
        .filter(|n| !n.ends_with("-proxy"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_crash_looping_docker_release_fails_in_seconds_and_the_old_one_keeps_serving() {
    let (project, bucket, port) = on_docker("it-ff-crash");
    let name = &project.name;
    project.append_config("log_max_size = \"1m\"\nlog_files = 2\n");
    project.mldeploy(&["up"]).expect_code(0);
    // Every container mldeploy starts logs with rotation: the release and the proxy.
    for container in [format!("{name}-1"), format!("{name}-proxy")] {
        let log = docker(&[
            "inspect",
            "-f",
            "{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config \"max-size\"}} {{index .HostConfig.LogConfig.Config \"max-file\"}}",
            &container,
        ]);
        assert_eq!(log.stdout.trim(), "json-file 1m 2", "{container}");
    }
    // The next release exits at once, saying why; its restart policy starts it again and again.
    project.write(
        "Dockerfile",
        &SERVING_DOCKERFILE.replace(
            "CMD [\"/bin/busybox\", \"httpd\"",
            "CMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo cannot load the model >&2; exit 3\"]\n#",
        ),
    );
    let start = Instant::now();
    let run = project.mldeploy(&["up", "--model-version", "7", "--timeout", "10m"]);
    let took = start.elapsed();
    run.expect_code(1);
    assert_says(
        &run.stderr,
        &[
            "exited (exit code 3)",
            "crash-looping",
            "cannot load the model",
            &format!("{name}-1 keeps serving"),
        ],
    );
    // It looked running between restarts: before, this waited out the whole --timeout.
    assert!(
        took.as_secs() < 120,
        "failed after {took:?}, not in seconds (timeout 10m)"
    );
    assert!(predict_on(port).contains(&format!("mlflow/models/{name}/6")));
    assert_eq!(releases_of(name, true), [format!("{name}-1")]);
    assert!(!lock_exists(&bucket, name));
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}

#[test]
fn sigterm_during_a_docker_up_takes_the_half_made_release_back_and_the_old_one_serves() {
    let (project, bucket, port) = on_docker("it-ff-term");
    let name = project.name.clone();
    project.mldeploy(&["up"]).expect_code(0);
    // The next release never gets ready, so `up` is still checking it when the signal comes.
    std::fs::remove_file(project.path().join("app/ready")).unwrap();
    let second = format!("{name}-2");
    let run = signal_at(
        &project,
        "up",
        &format!("Starting {second}"),
        "TERM",
        || {
            eventually(60, "the new release runs", || {
                releases_of(&name, false).contains(&second).then_some(())
            });
        },
    );
    assert_eq!(run.code, Some(130), "{}", run.stderr);
    assert_says(
        &run.stderr,
        &[
            &format!("interrupted: removed {second}"),
            &format!("the proxy sends every request to {name}-1 again"),
            "released the deploy lock",
        ],
    );
    assert_eq!(releases_of(&name, true), [format!("{name}-1")]);
    assert_eq!(releases_of(&name, false), [format!("{name}-1")]);
    assert!(predict_on(port).contains(&format!("mlflow/models/{name}/6")));
    assert!(!lock_exists(&bucket, &name));
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}

#[test]
fn sigterm_during_an_in_place_docker_up_removes_the_candidate_and_the_old_one_serves() {
    let (project, _, port) = on_docker("it-ff-inplace");
    let name = project.name.clone();
    // target.proxy = false: releases publish the port themselves (and name no proxy image).
    let text = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("proxy_image"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(
        project.path().join("mldeploy.toml"),
        text + "proxy = false\n",
    )
    .unwrap();
    project.mldeploy(&["up"]).expect_code(0);
    std::fs::remove_file(project.path().join("app/ready")).unwrap();
    let candidate = format!("{name}-2-candidate");
    let run = signal_at(
        &project,
        "up",
        &format!("Starting {candidate}"),
        "TERM",
        || {
            eventually(60, "the candidate runs", || {
                releases_of(&name, false).contains(&candidate).then_some(())
            });
        },
    );
    assert_eq!(run.code, Some(130), "{}", run.stderr);
    assert_says(&run.stderr, &[&format!("interrupted: removed {candidate}")]);
    assert_eq!(releases_of(&name, true), [format!("{name}-1")]);
    assert!(predict_on(port).contains(&format!("mlflow/models/{name}/6")));
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}
