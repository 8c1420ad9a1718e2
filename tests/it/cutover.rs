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

/// Runs mldeploy while a client keeps asking; returns what it saw, and the run.
fn asked_during(project: &Project, port: u16, args: &[&str], code: i32) -> (Seen, Run) {
    let (stop, asking) = keep_asking(port);
    std::thread::sleep(Duration::from_millis(200));
    let run = project.mldeploy(args);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    run.expect_code(code);
    (asking.join().unwrap(), run)
}

#[test]
fn an_upgrade_behind_the_proxy_drops_no_request_and_the_in_place_path_does() {
    let (project, _, port) = on_docker("it-cut");
    let name = &project.name;
    project.mldeploy(&["up"]).expect_code(0);
    // Connections waiting in the accept queue of the listener Caddy closes on a reload move to
    // its new one, where the kernel can (5.14 and later; the sandbox's engine is this host).
    if std::path::Path::new("/proc/sys/net/ipv4/tcp_migrate_req").exists() {
        let sysctls = docker(&[
            "inspect",
            "--format",
            "{{json .HostConfig.Sysctls}}",
            &format!("{name}-proxy"),
        ]);
        assert!(
            sysctls
                .stdout
                .contains("\"net.ipv4.tcp_migrate_req\":\"1\""),
            "{}",
            sysctls.stdout
        );
    }

    let (upgrade, _) = asked_during(&project, port, &["up", "--model-version", "7"], 0);
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
    let (failing, _) = asked_during(
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
    let (dropped, _) = asked_during(&project, port, &["up", "--model-version", "7"], 0);
    assert!(
        !dropped.failures.is_empty(),
        "the in-place cut-over dropped requests ({} answered)",
        dropped.answers.len()
    );
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}

#[test]
fn a_domain_on_the_docker_target_gets_a_certificate_through_acme_and_http_redirects() {
    let var = |name: &str| std::env::var(name).expect("set by `scripts/sandbox env`");
    let (project, _, _) = on_docker("it-acme");
    let domain = var("SANDBOX_ACME_DOMAIN");
    let (http, https) = (
        var("SANDBOX_ACME_HTTP_PORT"),
        var("SANDBOX_ACME_HTTPS_PORT"),
    );
    // pebble's own HTTPS certificate is the sandbox CA's: the proxy trusts it through the file.
    std::fs::copy(
        var("SANDBOX_ACME_CA_ROOT"),
        project.path().join("acme-ca.pem"),
    )
    .unwrap();
    let plain = std::fs::read_to_string(project.path().join("mldeploy.toml"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("host_port"))
        .collect::<Vec<_>>()
        .join("\n");
    // First plain HTTP on the port pebble validates on; then the domain is added to the live
    // deployment, whose proxy must then publish the HTTPS port too. mldeploy.toml stays out of
    // the image, so the release is unchanged and only the proxy is made anew.
    project.write(".dockerignore", "mldeploy.toml\n");
    std::fs::write(
        project.path().join("mldeploy.toml"),
        format!("{plain}\nhost_port = {http}\n"),
    )
    .unwrap();
    project.mldeploy(&["up"]).expect_code(0);
    let config = plain.replace(
        "[service]\n",
        &format!("[service]\ndomain = \"{domain}\"\n"),
    );
    assert!(
        config.contains(&format!("domain = \"{domain}\"")),
        "{config}"
    );
    std::fs::write(
        project.path().join("mldeploy.toml"),
        format!(
            "{config}\nhost_port = {http}\nhttps_port = {https}\nacme_ca = \"{}\"\nacme_ca_root = \"acme-ca.pem\"\n",
            var("SANDBOX_ACME_DIRECTORY")
        ),
    )
    .unwrap();

    let up = project.mldeploy(&["up", "--output", "json"]);
    up.expect_code(0);
    let url = format!("https://{domain}:{https}");
    assert_eq!(up.json()["url"], url);
    assert!(
        up.stderr.contains("already serves this image and model")
            && up.stderr.contains("making it anew"),
        "the same release, behind a proxy made anew with the HTTPS port: {}",
        up.stderr
    );
    // The smoke test ran over HTTPS to the domain, verifying the certificate.
    assert!(up.stderr.contains(&format!("{url}/ready")), "{}", up.stderr);

    // The certificate is pebble's: trusted with pebble's roots alone, not with the sandbox CA.
    let with = |roots: &str| {
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-sS", "--max-time", "10", "--cacert", roots])
            .arg(format!("{url}/ready"));
        Run::of(cmd)
    };
    let pebble = with(&var("SANDBOX_ACME_ROOTS"));
    assert_eq!(
        (pebble.code, pebble.stdout.trim()),
        (0, "ready"),
        "{}",
        pebble.stderr
    );
    assert_ne!(with(&var("SANDBOX_ACME_CA_ROOT")).code, 0);
    // HTTP is redirected to HTTPS on the port users reach.
    let mut redirect = std::process::Command::new("curl");
    redirect
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .arg(format!("http://{domain}:{http}/ready"));
    let redirect = Run::of(redirect);
    assert_eq!(redirect.stdout, format!("308 {url}/ready"));

    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
    let volumes = docker(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("label=mldeploy.project={}", project.name),
    ]);
    assert!(
        volumes.stdout.trim().is_empty(),
        "the certificates' volume is removed"
    );
}

#[test]
fn the_model_gate_runs_behind_the_docker_proxy_before_any_user_sees_the_new_model() {
    let (project, _, port) = on_docker("it-dkgate");
    let name = &project.name;
    project.predict(
        r#"case "$MODEL_PATH" in */7) p=9.9;; *) p=4.526;; esac
echo "{\"prediction\": $p, \"model_path\": \"$MODEL_PATH\"}""#,
    );
    let config = std::fs::read_to_string(project.path().join("mldeploy.toml")).unwrap();
    std::fs::write(
        project.path().join("mldeploy.toml"),
        format!(
            "{config}[gate]\nrequests = [{{ path = \"/cgi-bin/predict\", body = '{{\"features\": [[8.3, 41.0]]}}' }}]\nvalue = \"/prediction\"\ntolerance = 0.05\nmax_p95_ratio = 1000.0\n"
        ),
    )
    .unwrap();
    project.mldeploy(&["up"]).expect_code(0);

    // Version 7 moves the prediction by 119 %: refused before the proxy switches.
    let (refused, run) = asked_during(&project, port, &["up", "--model-version", "7"], 1);
    assert_says(
        &run.stderr,
        &[
            "the model gate failed",
            "serving 4.526 -> new 9.9",
            &format!("{name}-1 keeps serving"),
        ],
    );
    assert!(refused.failures.is_empty(), "{:?}", refused.failures);
    let v6 = format!("{name}/6");
    assert!(
        refused.answers.iter().all(|a| *a == v6),
        "{:?}",
        refused.answers
    );

    // An image-only change must give the same predictions, and does: it passes, with its report.
    project.write("app/build.txt", "2\n");
    let passed = project.mldeploy(&["up", "--output", "json"]);
    passed.expect_code(0);
    let gate = &passed.json()["gate"];
    assert_eq!(gate["failures"], serde_json::json!([]), "{gate}");
    assert_eq!(gate["model_changed"], false, "{gate}");
    assert_eq!(gate["rows"].as_array().map(Vec::len), Some(1), "{gate}");
    project.mldeploy(&["destroy", "--yes"]).expect_code(0);
}
