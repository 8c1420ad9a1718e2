//! The Docker target's cut-over behind its proxy, measured from outside: a client that keeps
//! asking through the host port during an upgrade gets every answer, where the in-place path
//! (`target.proxy = false`) drops some; a new release that fails its checks never answers a
//! user's request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::docker_target::on_docker;
use crate::support::*;

/// What a client saw while it asked: the model paths that answered, and the failures.
#[derive(Debug, Default)]
struct Seen {
    answers: Vec<String>,
    failures: Vec<String>,
}

/// Asks POST /cgi-bin/predict through `port` every 20 ms until stopped (at most 20 minutes).
fn keep_asking(port: u16) -> (Arc<AtomicBool>, JoinHandle<Seen>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut seen = Seen::default();
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..60_000 {
            if flag.load(Ordering::SeqCst) {
                break;
            }
            let run = predict_through(&url);
            match run.stdout.split("mlflow/models/").nth(1) {
                Some(rest) if run.code == 0 => seen
                    .answers
                    .push(rest.split('"').next().unwrap_or(rest).to_string()),
                _ => seen
                    .failures
                    .push(format!("{} {}", run.stdout.trim(), run.stderr.trim())),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        seen
    });
    (stop, handle)
}

/// Runs mldeploy while a client keeps asking; returns what it saw.
fn asked_during(project: &Project, port: u16, args: &[&str], code: i32) -> Seen {
    let (stop, asking) = keep_asking(port);
    std::thread::sleep(Duration::from_millis(200));
    let run = project.mldeploy(args);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    run.expect_code(code);
    asking.join().unwrap()
}

#[test]
fn an_upgrade_behind_the_proxy_drops_no_request_and_the_in_place_path_does() {
    let (project, _, port) = on_docker("it-cut");
    let name = &project.name;
    project.mldeploy(&["up"]).expect_code(0);

    let upgrade = asked_during(&project, port, &["up", "--model-version", "7"], 0);
    assert!(
        upgrade.failures.is_empty(),
        "no request failed: {:?}",
        upgrade.failures
    );
    let v6 = format!("{name}/6");
    let v7 = format!("{name}/7");
    assert!(
        upgrade.answers.contains(&v6) && upgrade.answers.contains(&v7),
        "the client saw the old release, then the new one: {:?}",
        upgrade.answers
    );
    let first_new = upgrade.answers.iter().position(|a| *a == v7).unwrap();
    assert!(
        upgrade.answers[first_new..].iter().all(|a| *a == v7),
        "once the new release answered, only it did"
    );

    // A release that never gets ready: users only ever see the serving one.
    std::fs::remove_file(project.path().join("app/ready")).unwrap();
    let failing = asked_during(
        &project,
        port,
        &["up", "--model-version", "6", "--timeout", "5s"],
        1,
    );
    assert!(failing.failures.is_empty(), "{:?}", failing.failures);
    assert!(
        failing.answers.iter().all(|a| *a == v7),
        "the failing release (model 6) answered no user: {:?}",
        failing.answers
    );
    project.serve("/ready", "ready");

    // The in-place path: once the proxy has given the port back, an upgrade drops requests
    // between the old container stopping and the new one answering.
    let config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    let in_place = config
        .lines()
        .filter(|l| !l.starts_with("proxy_image"))
        .collect::<Vec<_>>()
        .join("\n")
        + "\nproxy = false\n";
    std::fs::write(project.path().join("mldeploy.toml"), in_place).unwrap();
    project
        .mldeploy(&["up", "--model-version", "6"])
        .expect_code(0);
    let dropped = asked_during(&project, port, &["up", "--model-version", "7"], 0);
    assert!(
        !dropped.failures.is_empty(),
        "the in-place cut-over dropped requests ({} answered)",
        dropped.answers.len()
    );
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}
